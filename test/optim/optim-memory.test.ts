// Optimizers are counted by memory() and disposable: their state (Adam's two moments, amsgrad's
// running maximum, SGD's momentum buffer) is in numBytes from the step that makes it until
// dispose(); the parameters they reference are reported apart (optimizerParamBytes).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { memory, tensor, tidy, zeros, type Tensor } from '../../src/tensor/index.ts';
import { Adam, AdamW, SGD, type Optimizer } from '../../src/optim/index.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

// 12 float32 + 5 float64 elements: 48 + 40 bytes of parameters.
const PARAM_BYTES = 12 * 4 + 5 * 8;

function params(): Tensor[] {
  return [zeros([3, 4], 'float32').requiresGrad_(), zeros([5], 'float64').requiresGrad_()];
}

/** One step on loss = sum over parameters of sum((p - 1)^2). */
function step(opt: Optimizer, ps: Tensor[]): void {
  opt.zeroGrad();
  tidy(() => {
    ps.map((p) => p.sub(1).square().sum().to('float64'))
      .reduce((a, b) => a.add(b))
      .backward();
  });
  opt.step();
}

/** memory() minus a baseline. */
function delta(base: ReturnType<typeof memory>): Omit<ReturnType<typeof memory>, 'numTensors'> & { numTensors: number } {
  const m = memory();
  return {
    numTensors: m.numTensors - base.numTensors,
    numBytes: m.numBytes - base.numBytes,
    numOptimizers: m.numOptimizers - base.numOptimizers,
    optimizerStateBytes: m.optimizerStateBytes - base.optimizerStateBytes,
    optimizerParamBytes: m.optimizerParamBytes - base.optimizerParamBytes,
  };
}

describe('optimizer memory accounting and dispose()', () => {
  for (const [name, make, stateCopies] of [
    ['Adam', (ps: Tensor[]) => new Adam(ps, { lr: 0.1 }), 2],
    ['Adam amsgrad', (ps: Tensor[]) => new Adam(ps, { lr: 0.1, amsgrad: true }), 3],
    ['AdamW', (ps: Tensor[]) => new AdamW(ps, { lr: 0.1 }), 2],
    ['SGD momentum', (ps: Tensor[]) => new SGD(ps, { lr: 0.1, momentum: 0.9 }), 1],
    ['SGD', (ps: Tensor[]) => new SGD(ps, { lr: 0.1 }), 0],
  ] as const) {
    it(`${name}: state bytes appear at the first step (${stateCopies} per parameter) and go at dispose()`, () => {
      const ps = params();
      const base = memory();
      const opt = make(ps);
      assert.deepEqual(
        delta(base),
        { numTensors: 0, numBytes: 0, numOptimizers: 1, optimizerStateBytes: 0, optimizerParamBytes: PARAM_BYTES },
        'after construction',
      );
      step(opt, ps);
      const stateBytes = stateCopies * PARAM_BYTES;
      // Gradients are held by libtorch, not by handles, so numTensors and the tensor bytes do not move.
      assert.deepEqual(
        delta(base),
        { numTensors: 0, numBytes: stateBytes, numOptimizers: 1, optimizerStateBytes: stateBytes, optimizerParamBytes: PARAM_BYTES },
        'after step 1',
      );
      step(opt, ps);
      assert.equal(delta(base).numBytes, stateBytes, 'step 2 allocates no more state');
      opt.dispose();
      assert.deepEqual(
        delta(base),
        { numTensors: 0, numBytes: 0, numOptimizers: 0, optimizerStateBytes: 0, optimizerParamBytes: 0 },
        'after dispose',
      );
      opt.dispose();
      assert.equal(delta(base).numOptimizers, 0, 'a second dispose() changes nothing');
      for (const p of ps) p.dispose();
    });
  }

  it('Adam: the first step adds exactly 2 x 4 bytes x numel for a float32 parameter', () => {
    const p = zeros([256, 64]).requiresGrad_();
    const opt = new Adam([p]);
    const before = memory().numBytes;
    step(opt, [p]);
    assert.equal(memory().numBytes - before, 2 * 4 * 256 * 64);
    opt.dispose();
    assert.equal(memory().numBytes, before);
    p.dispose();
  });

  it('loadStateDict counts the loaded state; stateDict copies are ordinary tensors', () => {
    const ps = params();
    const a = new Adam(ps, { lr: 0.1 });
    step(a, ps);
    const sd = a.stateDict();
    const base = memory();
    const b = new Adam(ps, { lr: 0.1 });
    b.loadStateDict(sd);
    assert.deepEqual(
      delta(base),
      {
        numTensors: 0,
        numBytes: 2 * PARAM_BYTES,
        numOptimizers: 1,
        optimizerStateBytes: 2 * PARAM_BYTES,
        optimizerParamBytes: PARAM_BYTES,
      },
      'after load',
    );
    b.dispose();
    a.dispose();
    for (const t of Object.values(sd.tensors)) t.dispose();
    for (const p of ps) p.dispose();
  });

  it('a disposed optimizer throws a clear error on every use; its parameters stay usable', () => {
    const ps = params();
    const opt = new Adam(ps, { lr: 0.1 });
    step(opt, ps);
    opt.dispose();
    assert.equal(opt.isDisposed, true);
    const disposedError = /Adam: optimizer already disposed/;
    assert.throws(() => opt.step(), disposedError);
    assert.throws(() => opt.zeroGrad(), disposedError);
    assert.throws(() => opt.stateDict(), disposedError);
    assert.throws(() => {
      opt.paramGroups[0]!.lr = 0.01;
    }, disposedError);
    assert.equal(opt.paramGroups[0]!.lr, 0.1, 'a refused lr change is not recorded');
    const moved = ps[0]!.toNumbers();
    assert.notDeepEqual(moved, new Array<number>(12).fill(0), 'the step before dispose() moved the parameters');
    assert.deepEqual(
      ps[0]!.add(1).toNumbers(),
      moved.map((v) => Math.fround(v + 1)),
    );
    for (const p of ps) p.dispose();
  });

  it('an optimizer never disposed is released by the garbage collector', async () => {
    // Finalisers of earlier tests' garbage run after gc(), from the event loop: settle them first.
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    const base = memory();
    (() => {
      const ps = [tensor([1, 2, 3], [3], 'float64').requiresGrad_()];
      const opt = new Adam(ps);
      step(opt, ps);
      ps[0]!.dispose();
    })();
    assert.equal(delta(base).numOptimizers, 1);
    for (let i = 0; i < 10 && memory().numOptimizers > base.numOptimizers; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(
      delta(base),
      { numTensors: 0, numBytes: 0, numOptimizers: 0, optimizerStateBytes: 0, optimizerParamBytes: 0 },
      'after GC',
    );
  });
});

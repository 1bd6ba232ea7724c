// Disposal, tidy/keep, memory accounting, grad-mode scopes, autograd API and error paths.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  F,
  grad,
  isGradEnabled,
  keep,
  matmul,
  memory,
  noGrad,
  enableGrad,
  ones,
  randn,
  setNumThreads,
  getNumThreads,
  tensor,
  tidy,
  zeros,
  type Tensor,
} from '../../src/tensor/index.ts';

describe('dispose and tidy', () => {
  it('dispose frees the handle and use-after-dispose throws', () => {
    const base = memory().numTensors;
    const t = ones([4, 4]);
    assert.equal(memory().numTensors, base + 1);
    assert.equal(memory().numBytes >= 64, true);
    t.dispose();
    assert.equal(memory().numTensors, base);
    assert.equal(t.isDisposed, true);
    t.dispose(); // idempotent
    assert.throws(() => t.shape, /tensor already disposed/);
    assert.throws(() => t.add(1), /tensor already disposed/);
    assert.throws(() => t.toTypedArray(), /tensor already disposed/);
    assert.throws(() => F.relu(t), /tensor already disposed/);
  });

  it('tidy frees intermediates and keeps the result, nested structures and keep()', () => {
    const base = memory().numTensors;
    let inner: Tensor | undefined;
    const kept = tidy(() => {
      const a = ones([3]);
      inner = a.mul(2);
      keep(a.add(5));
      return { out: [inner.add(1)], other: new Map([['x', a.sub(1)]]) };
    });
    assert.equal(inner!.isDisposed, true);
    assert.deepEqual(kept.out[0]!.toNumbers(), [3, 3, 3]);
    assert.deepEqual(kept.other.get('x')!.toNumbers(), [0, 0, 0]);
    // result (2 tensors) + the keep()-ed one survive
    assert.equal(memory().numTensors, base + 3);
    kept.out[0]!.dispose();
    kept.other.get('x')!.dispose();
    assert.equal(memory().numTensors, base + 1);
  });

  it('nested tidy moves results to the outer scope', () => {
    const base = memory().numTensors;
    const r = tidy(() => {
      const x = tidy(() => ones([2]).add(1));
      const y = x.mul(3);
      return y;
    });
    assert.deepEqual(r.toNumbers(), [6, 6]);
    assert.equal(memory().numTensors, base + 1);
    r.dispose();
  });

  it('tidy frees everything when fn throws and refuses async functions', () => {
    const base = memory().numTensors;
    assert.throws(
      () =>
        tidy(() => {
          ones([2]);
          throw new Error('boom');
        }),
      /boom/,
    );
    assert.equal(memory().numTensors, base);
    assert.throws(() => tidy(async () => ones([1])), /synchronous/);
    assert.throws(() => tidy((() => Promise.resolve(1)) as () => unknown), /Promise/);
    assert.equal(memory().numTensors, base);
  });

  it('a loop inside tidy leaves numTensors unchanged', () => {
    const w = randn([8, 8]).requiresGrad_();
    const base = memory().numTensors;
    for (let i = 0; i < 200; i++) {
      tidy(() => {
        const loss = matmul(randn([4, 8]), w)
          .relu()
          .sum();
        loss.backward();
      });
      w.grad = null;
    }
    assert.equal(memory().numTensors, base);
    w.dispose();
  });
});

describe('autograd', () => {
  it('backward accumulates into leaves; detach and noGrad stop recording', () => {
    const x = tensor([1, 2, 3]).requiresGrad_();
    assert.equal(x.requiresGrad, true);
    assert.equal(x.isLeaf, true);
    x.mul(x).sum().backward();
    assert.deepEqual(x.grad!.toNumbers(), [2, 4, 6]);
    x.mul(3).sum().backward();
    assert.deepEqual(x.grad!.toNumbers(), [5, 7, 9]); // accumulated
    x.grad = null;
    assert.equal(x.grad, null);
    assert.equal(x.detach().requiresGrad, false);
    const y = noGrad(() => x.mul(2));
    assert.equal(y.requiresGrad, false);
    assert.equal(isGradEnabled(), true);
    noGrad(() => {
      assert.equal(isGradEnabled(), false);
      noGrad(() => assert.equal(isGradEnabled(), false));
      assert.equal(isGradEnabled(), false);
      assert.equal(enableGrad(() => x.mul(2)).requiresGrad, true);
    });
    assert.equal(isGradEnabled(), true);
    assert.throws(
      () =>
        noGrad(() => {
          throw new Error('inner');
        }),
      /inner/,
    );
    assert.equal(isGradEnabled(), true, 'grad mode restored after a throw');
  });

  it('backward with an explicit gradient, grad() and second derivatives', () => {
    const x = tensor([1, 2]).requiresGrad_();
    x.mul(x).backward(tensor([1, 10]));
    assert.deepEqual(x.grad!.toNumbers(), [2, 40]);
    const z = tensor([3]).requiresGrad_();
    const y = z.pow(3);
    const [dy] = grad(y, z, null, { createGraph: true });
    assert.deepEqual(dy!.toNumbers(), [27]);
    const [d2] = grad(dy!, z);
    assert.deepEqual(d2!.toNumbers(), [18]);
    const u = tensor([1]).requiresGrad_();
    assert.deepEqual(grad(z.mul(2), [z, u], null, { allowUnused: true })[1], null);
  });

  it('refuses backward on a tensor without grad and on a non-scalar without gradient', () => {
    assert.throws(() => ones([1]).sum().backward(), /backward: tensor does not require grad/);
    const x = ones([2]).requiresGrad_();
    assert.throws(() => x.mul(2).backward(), /only for scalar outputs/);
  });
});

describe('errors become JavaScript errors', () => {
  it('argument checks name the op and the argument', () => {
    assert.throws(() => F.conv2d(zeros([3, 64, 64]), zeros([4, 3, 3, 3])), { message: 'conv2d: x must be 4-D, got [3, 64, 64]' });
    assert.throws(() => F.conv2d(zeros([1, 2, 8, 8]), zeros([4, 3, 3, 3])), /conv2d: x has 2 channels but weight \[4, 3, 3, 3\]/);
    assert.throws(() => matmul(zeros([2, 3]), zeros([4, 2])), /matmul: shapes \[2, 3\] and \[4, 2\] cannot be multiplied/);
    assert.throws(
      () => F.batchNorm(zeros([2, 3, 4]), zeros([2]), ones([3]), null, null, false),
      /batchNorm: runningMean must have shape \[3\], got \[2\]/,
    );
    assert.throws(
      () => ones([2]).reshape(['a' as unknown as number]),
      /reshape: expected an array of integers|reshape: shape must be an array of integers/,
    );
    assert.throws(() => zeros([2, 2]).select(0, 5), /select: index 5 out of range/);
    assert.throws(() => F.interpolate(zeros([1, 1, 4, 4]), { size: 2, mode: 'trilinear' }), /trilinear needs a 5-D x/);
    assert.throws(() => tensor(new Float32Array(3), [2, 2]), /tensor: data has 3 elements/);
    assert.throws(() => zeros([2]).to('float16' as 'float32'), /unknown dtype 'float16'/);
  });

  it("libtorch's own errors (c10::Error) carry libtorch's message and the process survives", () => {
    assert.throws(() => ones([6]).reshape(4), /shape '\[4\]' is invalid for input of size 6/);
    assert.throws(() => ones([2, 3]).add(ones([4])), /must match the size of tensor b/);
    assert.throws(() => ones([2, 3]).view(3, 2).transpose(0, 1).view(6), /view size is not compatible/);
    assert.throws(() => ones([2], 'int64').mean(), /mean\(\): could not infer output dtype|Long/);
    // a leaf that requires grad cannot be modified in place while grad mode is on
    assert.throws(() => ones([2]).requiresGrad_().fill_(1), /leaf Variable that requires grad/);
    assert.equal(ones([1]).add(1).item(), 2);
  });

  it('sets the thread count', () => {
    const n = getNumThreads();
    setNumThreads(1);
    assert.equal(getNumThreads(), 1);
    setNumThreads(n);
    assert.equal(getNumThreads(), n);
    assert.throws(() => setNumThreads(0), /positive integer/);
  });
});

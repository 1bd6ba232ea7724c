// Optimizers against update rules worked out in plain JS (float64), groups, state round trips,
// schedules and clipping.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { noGrad, tensor, tidy, type Tensor } from '../../src/tensor/index.ts';
import { Adam, AdamW, CosineAnnealingLR, LinearWarmup, SGD, StepLR, clipGradNorm, type Optimizer } from '../../src/optim/index.ts';
import { assertClose } from '../tensor/helpers.ts';

const C = [0.5, -1, 2];
const P0 = [1, -2, 0.3];

// loss = sum(c * p) + 0.5 * sum(p^2)  =>  grad = c + p
function backwardOn(p: Tensor): void {
  tidy(() =>
    p
      .mul(tensor(C, [3], 'float64'))
      .sum()
      .add(p.square().sum().mul(0.5))
      .backward(),
  );
}

function runSteps(opt: Optimizer, p: Tensor, n: number): void {
  for (let i = 0; i < n; i++) {
    opt.zeroGrad();
    backwardOn(p);
    opt.step();
  }
}

function sgdRef(n: number, lr: number, mom: number, damp: number, nesterov: boolean, wd: number): number[] {
  const p = P0.slice();
  let buf: number[] | null = null;
  for (let s = 0; s < n; s++) {
    let d = p.map((v, i) => C[i]! + v + wd * v);
    if (mom !== 0) {
      buf = buf ? buf.map((b, i) => mom * b + (1 - damp) * d[i]!) : d.slice();
      d = nesterov ? d.map((v, i) => v + mom * buf![i]!) : buf.slice();
    }
    for (let i = 0; i < 3; i++) p[i] = p[i]! - lr * d[i]!;
  }
  return p;
}

function adamRef(n: number, lr: number, b1: number, b2: number, eps: number, wd: number, decoupled: boolean, amsgrad: boolean): number[] {
  const p = P0.slice();
  const m = [0, 0, 0];
  const v = [0, 0, 0];
  const vmax = [0, 0, 0];
  for (let s = 1; s <= n; s++) {
    for (let i = 0; i < 3; i++) {
      let g = C[i]! + p[i]!;
      if (decoupled) p[i] = p[i]! * (1 - lr * wd);
      else g += wd * p[i]!;
      m[i] = b1 * m[i]! + (1 - b1) * g;
      v[i] = b2 * v[i]! + (1 - b2) * g * g;
      vmax[i] = Math.max(vmax[i]!, v[i]!);
      const vh = amsgrad ? vmax[i]! : v[i]!;
      const denom = Math.sqrt(vh) / Math.sqrt(1 - b2 ** s) + eps;
      p[i] = p[i]! - (lr / (1 - b1 ** s)) * (m[i]! / denom);
    }
  }
  return p;
}

const param = (): Tensor => tensor(P0, [3], 'float64').requiresGrad_();

describe('optimizers follow torch.optim update rules', () => {
  it('SGD: plain, momentum with dampening, Nesterov with weight decay', () => {
    for (const [mom, damp, nest, wd] of [
      [0, 0, false, 0],
      [0.9, 0.1, false, 0],
      [0.9, 0, true, 0.05],
    ] as const) {
      const p = param();
      runSteps(new SGD([p], { lr: 0.1, momentum: mom, dampening: damp, nesterov: nest, weightDecay: wd }), p, 4);
      assertClose(p.toNumbers(), sgdRef(4, 0.1, mom, damp, nest, wd), 1e-12, 1e-10, `SGD momentum=${mom} nesterov=${nest}`);
    }
  });

  it('Adam (L2 weight decay, amsgrad) and AdamW (decoupled)', () => {
    let p = param();
    runSteps(new Adam([p], { lr: 0.05 }), p, 5);
    assertClose(p.toNumbers(), adamRef(5, 0.05, 0.9, 0.999, 1e-8, 0, false, false), 1e-12, 1e-9, 'Adam');
    p = param();
    runSteps(new Adam([p], { lr: 0.05, betas: [0.8, 0.9], weightDecay: 0.1, amsgrad: true }), p, 5);
    assertClose(p.toNumbers(), adamRef(5, 0.05, 0.8, 0.9, 1e-8, 0.1, false, true), 1e-12, 1e-9, 'Adam amsgrad');
    p = param();
    runSteps(new AdamW([p], { lr: 0.05, weightDecay: 0.2 }), p, 5);
    assertClose(p.toNumbers(), adamRef(5, 0.05, 0.9, 0.999, 1e-8, 0.2, true, false), 1e-12, 1e-9, 'AdamW');
  });

  it('parameter groups have their own learning rate and weight decay; lr is settable', () => {
    const a = param();
    const b = param();
    const opt = new SGD([{ params: [a] }, { params: [b], lr: 0.01, weightDecay: 0.5 }], { lr: 0.1 });
    assert.equal(opt.paramGroups[1]!.lr, 0.01);
    runSteps(opt, a, 1);
    // b has no gradient yet: untouched
    assert.deepEqual(b.toNumbers(), P0);
    opt.zeroGrad();
    backwardOn(b);
    opt.step();
    // a's gradient was dropped by zeroGrad: only b moved
    assertClose(a.toNumbers(), sgdRef(1, 0.1, 0, 0, false, 0), 1e-12, 1e-10);
    assertClose(b.toNumbers(), sgdRef(1, 0.01, 0, 0, false, 0.5), 1e-12, 1e-10);
    opt.paramGroups[0]!.lr = 0;
    const before = a.toNumbers();
    runSteps(opt, a, 1);
    assert.deepEqual(a.toNumbers(), before);
    assert.throws(() => new SGD([{ params: [a] }, { params: [a] }], { lr: 0.1 }), /more than one group/);
    assert.throws(() => {
      opt.paramGroups[0]!.lr = -1;
    }, /lr must be a non-negative number/);
  });

  it('stateDict/loadStateDict resume exactly', () => {
    const p1 = param();
    const opt1 = new Adam([{ params: [p1], lr: 0.03 }], { amsgrad: true });
    runSteps(opt1, p1, 3);
    const sd = opt1.stateDict();
    assert.deepEqual(Object.keys(sd.tensors).sort(), ['state.0.exp_avg', 'state.0.exp_avg_sq', 'state.0.max_exp_avg_sq']);
    assert.equal(sd.meta.state['0']!.step, 3);
    const json = JSON.parse(JSON.stringify(sd.meta)) as typeof sd.meta;
    const p2 = noGrad(() => p1.detach().clone()).requiresGrad_();
    const opt2 = new Adam([p2], { lr: 1 });
    opt2.loadStateDict({ tensors: sd.tensors, meta: json });
    assert.equal(opt2.paramGroups[0]!.lr, 0.03);
    runSteps(opt1, p1, 2);
    runSteps(opt2, p2, 2);
    assert.deepEqual(p2.toNumbers(), p1.toNumbers());
    assert.throws(() => new SGD([param()], { lr: 0.1 }).loadStateDict(sd), /state is for Adam/);
    const bad = {
      tensors: { 'state.0.exp_avg': tensor([1, 2], [2], 'float64'), 'state.0.exp_avg_sq': tensor([1, 2], [2], 'float64') },
      meta: json,
    };
    assert.throws(() => new Adam([param()]).loadStateDict(bad), /has shape \[2\], parameter has \[3\]/);
  });
});

describe('schedules and clipping', () => {
  const opt = (): SGD => new SGD([param()], { lr: 1 });

  it('StepLR and CosineAnnealingLR', () => {
    const o = opt();
    const s = new StepLR(o, { stepSize: 2, gamma: 0.5 });
    const lrs = [o.paramGroups[0]!.lr];
    for (let i = 0; i < 5; i++) {
      s.step();
      lrs.push(o.paramGroups[0]!.lr);
    }
    assert.deepEqual(lrs, [1, 1, 0.5, 0.5, 0.25, 0.25]);
    const o2 = opt();
    const c = new CosineAnnealingLR(o2, { tMax: 4, etaMin: 0.2 });
    const got = [];
    for (let i = 0; i < 5; i++) {
      c.step();
      got.push(o2.paramGroups[0]!.lr);
    }
    assertClose(
      got,
      [1, 2, 3, 4, 4].map((e) => 0.2 + (0.8 * (1 + Math.cos((Math.PI * e) / 4))) / 2),
    );
  });

  it('LinearWarmup then the wrapped schedule; state round trip', () => {
    const o = opt();
    const w = new LinearWarmup(o, { warmupSteps: 4, after: new StepLR(o, { stepSize: 2, gamma: 0.1 }) });
    const lrs = [o.paramGroups[0]!.lr];
    for (let i = 0; i < 7; i++) {
      w.step();
      lrs.push(o.paramGroups[0]!.lr);
    }
    assertClose(lrs, [0, 0.25, 0.5, 0.75, 1, 1, 0.1, 0.1], 1e-12);
    const o2 = opt();
    const w2 = new LinearWarmup(o2, { warmupSteps: 4, after: new StepLR(o2, { stepSize: 2, gamma: 0.1 }) });
    w2.loadStateDict(w.stateDict());
    assertClose([o2.paramGroups[0]!.lr], [0.1], 1e-12);
  });

  it('clipGradNorm scales gradients to maxNorm and returns the norm before', () => {
    const a = tensor([0, 0], [2], 'float64').requiresGrad_();
    const b = tensor([0], [1], 'float64').requiresGrad_();
    tidy(() =>
      a
        .mul(tensor([3, 0], [2], 'float64'))
        .sum()
        .add(b.mul(4).sum())
        .backward(),
    );
    const n = clipGradNorm([a, b], 1);
    assertClose([n], [5], 1e-12);
    assertClose(a.grad!.toNumbers(), [0.6, 0], 1e-6);
    assertClose(b.grad!.toNumbers(), [0.8], 1e-6);
    assertClose([clipGradNorm([a, b], 10)], [1], 1e-5);
    assertClose(a.grad!.toNumbers(), [0.6, 0], 1e-6); // under the limit: unchanged
    assertClose([clipGradNorm([a, b], 10, Infinity)], [0.8], 1e-6);
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, memory, noGrad, ones, randn, tensor, tidy, type Tensor } from '../../src/tensor/index.ts';
import {
  AdaptiveAvgPool2d,
  AdaptiveAvgPool3d,
  AvgPool2d,
  AvgPool3d,
  BatchNorm2d,
  BatchNorm3d,
  Conv2d,
  Conv3d,
  ConvTranspose2d,
  ConvTranspose3d,
  Dropout,
  Dropout2d,
  Dropout3d,
  GELU,
  GroupNorm,
  Identity,
  InstanceNorm2d,
  InstanceNorm3d,
  LeakyReLU,
  Linear,
  MaxPool2d,
  MaxPool3d,
  ReLU,
  Sequential,
  Sigmoid,
  Upsample,
} from '../../src/nn/index.ts';
import { assertClose, vals } from './helpers.ts';

function setData(t: Tensor, data: number[]): void {
  noGrad(() => {
    const src = tensor(data, t.shape, t.dtype);
    t.copy_(src);
    src.dispose();
  });
}

test('PyTorch default initialisation: same values as torch 1.13 for the same seed', () => {
  // Reference values printed by Debian's python3-torch 1.13.1:
  //   torch.manual_seed(0); nn.Conv2d(2, 3, 3) / nn.Linear(4, 2) / nn.ConvTranspose2d(2, 4, 2)
  manualSeed(0);
  const conv = new Conv2d(2, 3, 3);
  assertClose(
    vals(conv.weight).slice(0, 4),
    [-0.0017646604683250189, 0.12644097208976746, -0.19399359822273254, -0.17346249520778656],
    1e-7,
    'conv.weight',
  );
  assertClose(vals(conv.bias!), [0.15803514420986176, -0.13878203928470612, 0.043921709060668945], 1e-7, 'conv.bias');
  manualSeed(0);
  const lin = new Linear(4, 2);
  assertClose(
    vals(lin.weight),
    [
      -0.003743410110473633, 0.26822179555892944, -0.4115225672721863, -0.3679695129394531, -0.19257718324661255, 0.13407868146896362,
      -0.009906589984893799, 0.39644473791122437,
    ],
    1e-7,
    'linear.weight',
  );
  assertClose(vals(lin.bias!), [-0.04437202215194702, 0.1323062777519226], 1e-7, 'linear.bias');
  manualSeed(0);
  const ct = new ConvTranspose2d(2, 4, 2);
  assert.deepEqual(ct.weight.shape, [2, 4, 2, 2]);
  assertClose(
    vals(ct.weight).slice(0, 4),
    [-0.0018717050552368164, 0.13411089777946472, -0.20576128363609314, -0.18398475646972656],
    1e-7,
    'convT.weight',
  );
  assertClose(vals(ct.bias!), [-0.16204491257667542, -0.11508321762084961, -0.1746601164340973, -0.23414024710655212], 1e-7, 'convT.bias');
  // Bounds: +-1/sqrt(fanIn), fanIn = 16 * 27 for this Conv3d.
  const c3 = new Conv3d(16, 8, 3);
  const bound = 1 / Math.sqrt(16 * 27);
  assert.ok(vals(c3.weight).every((v) => Math.abs(v) <= bound));
  assert.ok(Math.max(...vals(c3.weight).map(Math.abs)) > 0.9 * bound, 'fills the whole range');
  for (const m of [conv, lin, ct, c3]) m.dispose();
});

test('Conv2d: a 1x1 convolution with set weights computes 2*a - b + 0.5', () => {
  const conv = new Conv2d(2, 1, 1);
  setData(conv.weight, [2, -1]);
  setData(conv.bias!, [0.5]);
  const x = tensor([1, 2, 3, 4, /* channel 2 */ 10, 20, 30, 40], [1, 2, 2, 2]);
  const y = conv.forward(x);
  assert.deepEqual(y.shape, [1, 1, 2, 2]);
  assertClose(vals(y), [2 - 10 + 0.5, 4 - 20 + 0.5, 6 - 30 + 0.5, 8 - 40 + 0.5]);
  for (const t of [x, y]) t.dispose();
  conv.dispose();
});

test('Conv2d 3x3 on a ones image: interior sums 9 weights, corners 4 (zero padding)', () => {
  const conv = new Conv2d(1, 1, 3, { padding: 1, bias: false });
  setData(conv.weight, new Array(9).fill(1));
  const y = tidy(() => conv.forward(ones([1, 1, 4, 4])));
  assert.deepEqual(vals(y), [4, 6, 6, 4, 6, 9, 9, 6, 6, 9, 9, 6, 4, 6, 6, 4]);
  y.dispose();
  conv.dispose();
});

test('convolution output shapes: stride, dilation, groups, same padding (odd and even kernels), 3d', () => {
  const cases: [() => Conv2d | Conv3d, number[], number[]][] = [
    [() => new Conv2d(3, 8, 3, { stride: 2, padding: 1 }), [2, 3, 9, 9], [2, 8, 5, 5]],
    [() => new Conv2d(4, 4, 3, { dilation: 2, groups: 2 }), [1, 4, 10, 10], [1, 4, 6, 6]],
    [() => new Conv2d(1, 2, [3, 5], { padding: 'same' }), [1, 1, 7, 8], [1, 2, 7, 8]],
    [() => new Conv2d(1, 2, 4, { padding: 'same' }), [1, 1, 7, 8], [1, 2, 7, 8]],
    [() => new Conv2d(1, 2, 4, { padding: 'valid' }), [1, 1, 7, 8], [1, 2, 4, 5]],
    [() => new Conv3d(2, 4, 3, { padding: 1 }), [1, 2, 5, 6, 7], [1, 4, 5, 6, 7]],
    [() => new Conv3d(2, 4, [1, 3, 3], { stride: [1, 2, 2] }), [1, 2, 5, 7, 7], [1, 4, 5, 3, 3]],
  ];
  for (const [make, inShape, outShape] of cases) {
    const m = make();
    const y = tidy(() => m.forward(randn(inShape)));
    assert.deepEqual(y.shape, outShape, m.toString());
    y.dispose();
    m.dispose();
  }
  // 'same' with an even kernel pads the extra row/column after the data, as PyTorch does.
  const even = new Conv2d(1, 1, 2, { padding: 'same', bias: false });
  setData(even.weight, [1, 2, 3, 4]);
  const ye = tidy(() => even.forward(tensor([1, 2, 3, 4], [1, 1, 2, 2])));
  assert.deepEqual(vals(ye), [30, 14, 11, 4]);
  ye.dispose();
  even.dispose();
  assert.throws(() => new Conv2d(3, 4, 3, { groups: 2 }), /groups=2 must divide in=3/);
  assert.throws(() => new Conv2d(1, 1, 3, { padding: 'same', stride: 2 }), /'same' needs stride 1/);
  const c = new Conv2d(3, 4, 3);
  assert.throws(() => tidy(() => c.forward(randn([1, 2, 8, 8]))), /Conv2d: expected input \[N, 3, \*, \*\], got \[1, 2, 8, 8\]/);
  c.dispose();
});

test('ConvTranspose2d: stride-2 2x2 kernel scatters each input into a block', () => {
  const ct = new ConvTranspose2d(1, 1, 2, { stride: 2 });
  setData(ct.weight, [1, 2, 3, 4]);
  setData(ct.bias!, [0]);
  const x = tensor([1, 2], [1, 1, 1, 2]);
  const y = ct.forward(x);
  assert.deepEqual(y.shape, [1, 1, 2, 4]);
  assert.deepEqual(vals(y), [1, 2, 2, 4, 3, 4, 6, 8]);
  for (const t of [x, y]) t.dispose();
  ct.dispose();
  const ct3 = new ConvTranspose3d(4, 2, 2, { stride: 2 });
  const y3 = tidy(() => ct3.forward(randn([1, 4, 3, 4, 5])));
  assert.deepEqual(y3.shape, [1, 2, 6, 8, 10]);
  const ctp = new ConvTranspose2d(2, 2, 3, { stride: 2, padding: 1, outputPadding: 1 });
  const yp = tidy(() => ctp.forward(randn([1, 2, 5, 5])));
  assert.deepEqual(yp.shape, [1, 2, 10, 10]);
  for (const t of [y3, yp]) t.dispose();
  ct3.dispose();
  ctp.dispose();
});

test('BatchNorm2d: batch statistics in training, running statistics updated by the formula', () => {
  const bn = new BatchNorm2d(2, { momentum: 0.1 });
  // Channel 0 holds 1..4, channel 1 holds 10, 10, 10, 14 (one sample, 2x2).
  const x = tensor([1, 2, 3, 4, 10, 10, 10, 14], [1, 2, 2, 2]);
  const y = bn.forward(x);
  const mean = [2.5, 11];
  const biasedVar = [1.25, 3];
  const unbiasedVar = [5 / 3, 4];
  const expected = [1, 2, 3, 4]
    .map((v) => (v - mean[0]!) / Math.sqrt(biasedVar[0]! + 1e-5))
    .concat([10, 10, 10, 14].map((v) => (v - mean[1]!) / Math.sqrt(biasedVar[1]! + 1e-5)));
  assertClose(vals(y), expected, 1e-5, 'train output');
  assertClose(
    vals(bn.runningMean!),
    mean.map((m) => 0.9 * 0 + 0.1 * m),
    1e-6,
    'running_mean',
  );
  assertClose(
    vals(bn.runningVar!),
    unbiasedVar.map((v) => 0.9 * 1 + 0.1 * v),
    1e-6,
    'running_var',
  );
  assert.equal(bn.numBatchesTracked!.item(), 1);

  // Eval: normalise with the running statistics, which stay put.
  bn.eval();
  const rm = vals(bn.runningMean!);
  const rv = vals(bn.runningVar!);
  const ye = bn.forward(x);
  const xs = [1, 2, 3, 4, 10, 10, 10, 14];
  assertClose(
    vals(ye),
    xs.map((v, i) => (v - rm[i >> 2]!) / Math.sqrt(rv[i >> 2]! + 1e-5)),
    1e-5,
    'eval output',
  );
  assertClose(vals(bn.runningMean!), rm, 0);
  assert.equal(bn.numBatchesTracked!.item(), 1);

  // Affine parameters scale and shift.
  setData(bn.weight!, [2, 3]);
  setData(bn.bias!, [1, -1]);
  const ya = bn.forward(x);
  assertClose(
    vals(ya),
    vals(ye).map((v, i) => (i < 4 ? 2 * v + 1 : 3 * v - 1)),
    1e-5,
    'affine',
  );
  for (const t of [x, y, ye, ya]) t.dispose();
  bn.dispose();
});

test('BatchNorm with momentum null keeps a cumulative average; BatchNorm3d checks its input', () => {
  const bn = new BatchNorm2d(1, { momentum: null });
  const batches = [
    [0, 2],
    [4, 6],
    [8, 10],
  ];
  for (const b of batches) tidy(() => bn.forward(tensor(b, [2, 1, 1, 1])));
  // Cumulative mean of the batch means 1, 5, 9; unbiased variance 2 each batch.
  assertClose(vals(bn.runningMean!), [5], 1e-6);
  assertClose(vals(bn.runningVar!), [2], 1e-6);
  assert.equal(bn.numBatchesTracked!.item(), 3);
  bn.dispose();
  const bn3 = new BatchNorm3d(3);
  const y = tidy(() => bn3.forward(randn([2, 3, 2, 3, 4])));
  assert.deepEqual(y.shape, [2, 3, 2, 3, 4]);
  assert.throws(() => tidy(() => bn3.forward(randn([2, 3, 4, 4]))), /BatchNorm3d: expected input \[N, 3, \*, \*, \*\]/);
  y.dispose();
  bn3.dispose();
});

test('InstanceNorm and GroupNorm normalise per sample', () => {
  const inorm = new InstanceNorm2d(2);
  assert.equal(inorm.parameters().length, 0, 'no affine by default');
  assert.equal(inorm.namedBuffers().length, 0, 'no running stats by default');
  const x = tensor([1, 2, 3, 4, 10, 10, 10, 14, /* sample 2 */ 0, 0, 0, 4, -1, 1, -1, 1], [2, 2, 2, 2]);
  const y = inorm.forward(x);
  const norm = (g: number[]): number[] => {
    const m = g.reduce((a, b) => a + b) / g.length;
    const v = g.reduce((a, b) => a + (b - m) ** 2, 0) / g.length;
    return g.map((e) => (e - m) / Math.sqrt(v + 1e-5));
  };
  const xs = vals(x);
  const groupsOf = (size: number): number[] => {
    const out: number[] = [];
    for (let i = 0; i < xs.length; i += size) out.push(...norm(xs.slice(i, i + size)));
    return out;
  };
  assertClose(vals(y), groupsOf(4), 1e-5, 'instance norm');
  // GroupNorm with one group per sample normalises over all of a sample's channels.
  const gn = new GroupNorm(1, 2);
  const yg = gn.forward(x);
  assertClose(vals(yg), groupsOf(8), 1e-5, 'group norm, 1 group');
  const gn2 = new GroupNorm(2, 2);
  const yg2 = gn2.forward(x);
  assertClose(vals(yg2), groupsOf(4), 1e-5, 'group norm, 2 groups');
  assert.throws(() => new GroupNorm(3, 4), /divisible by numGroups=3/);
  const in3 = new InstanceNorm3d(2, { affine: true });
  assert.deepEqual(
    in3.namedParameters().map(([n]) => n),
    ['weight', 'bias'],
  );
  const y3 = tidy(() => in3.forward(randn([1, 2, 3, 3, 3])));
  assert.deepEqual(y3.shape, [1, 2, 3, 3, 3]);
  for (const t of [x, y, yg, yg2, y3]) t.dispose();
  for (const m of [inorm, gn, gn2, in3]) m.dispose();
});

test('InstanceNorm with running stats averages the per-instance statistics (and counts no batches)', () => {
  const m = new InstanceNorm2d(1, { trackRunningStats: true });
  const x = tensor([1, 2, 3, 4, 0, 0, 0, 4], [2, 1, 2, 2]);
  tidy(() => m.forward(x));
  // Instance means 2.5 and 1, unbiased variances 5/3 and 4 (PyTorch gives 0.175, 1.18333, 0).
  assertClose(vals(m.runningMean!), [0.1 * ((2.5 + 1) / 2)], 1e-6);
  assertClose(vals(m.runningVar!), [0.9 + 0.1 * ((5 / 3 + 4) / 2)], 1e-6);
  assert.equal(m.numBatchesTracked!.item(), 0);
  m.eval();
  const y = m.forward(x);
  const rm = 0.175;
  const rv = 0.9 + 0.1 * ((5 / 3 + 4) / 2);
  assertClose(
    vals(y),
    vals(x).map((v) => (v - rm) / Math.sqrt(rv + 1e-5)),
    1e-5,
  );
  x.dispose();
  y.dispose();
  m.dispose();
});

test('Linear with set weights', () => {
  const lin = new Linear(3, 2);
  setData(lin.weight, [1, 0, -1, 0.5, 0.5, 0.5]);
  setData(lin.bias!, [0, 10]);
  const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  const y = lin.forward(x);
  assert.deepEqual(y.shape, [2, 2]);
  assertClose(vals(y), [1 - 3, 10 + 3, 4 - 6, 10 + 7.5]);
  assert.throws(() => lin.forward(tensor([1, 2], [1, 2])), /Linear: expected input \[\.\.\., 3\]/);
  for (const t of [x, y]) t.dispose();
  lin.dispose();
});

test('Dropout: identity in eval; in training, zeros or scaled by 1/(1-p); Dropout2d drops whole channels', () => {
  manualSeed(3);
  const x = ones([4, 8, 5, 5]);
  const d = new Dropout(0.5);
  const yt = d.forward(x);
  const v = vals(yt);
  assert.ok(v.every((e) => e === 0 || e === 2));
  const kept = v.filter((e) => e === 2).length / v.length;
  assert.ok(kept > 0.4 && kept < 0.6, `kept ${kept}`);
  d.eval();
  const ye = d.forward(x);
  assert.deepEqual(vals(ye), vals(x));
  const d2 = new Dropout2d(0.5);
  const y2 = d2.forward(x);
  const v2 = vals(y2);
  let dropped = 0;
  for (let c = 0; c < 32; c++) {
    const ch = v2.slice(c * 25, (c + 1) * 25);
    assert.ok(ch.every((e) => e === ch[0]) && (ch[0] === 0 || ch[0] === 2), `channel ${c} is all-or-nothing`);
    if (ch[0] === 0) dropped++;
  }
  assert.ok(dropped > 4 && dropped < 28, `dropped ${dropped} of 32 channels`);
  const x3 = ones([2, 6, 2, 3, 3]);
  const y3 = new Dropout3d(0.5).forward(x3);
  const v3 = vals(y3);
  for (let c = 0; c < 12; c++) {
    const ch = v3.slice(c * 18, (c + 1) * 18);
    assert.ok(ch.every((e) => e === ch[0]) && (ch[0] === 0 || ch[0] === 2), `3d channel ${c} is all-or-nothing`);
  }
  x3.dispose();
  y3.dispose();
  assert.throws(() => new Dropout(1.5), /p must be in \[0, 1\]/);
  for (const t of [x, yt, ye, y2]) t.dispose();
});

test('pooling: hand cases for max/avg, shapes for 3d, adaptive average equals the mean', () => {
  const x = tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [1, 1, 4, 4]);
  const mp = tidy(() => new MaxPool2d(2).forward(x));
  assert.deepEqual(vals(mp), [6, 8, 14, 16]);
  const ap = tidy(() => new AvgPool2d(2).forward(x));
  assert.deepEqual(vals(ap), [3.5, 5.5, 11.5, 13.5]);
  const mps = tidy(() => new MaxPool2d(3, { stride: 1, padding: 1 }).forward(x));
  assert.deepEqual(vals(mps), [6, 7, 8, 8, 10, 11, 12, 12, 14, 15, 16, 16, 14, 15, 16, 16]);
  const aa = tidy(() => new AdaptiveAvgPool2d(1).forward(x));
  assert.deepEqual(aa.shape, [1, 1, 1, 1]);
  assert.deepEqual(vals(aa), [8.5]);
  const x3 = randn([1, 2, 4, 6, 8]);
  const shapes = tidy(() => [new MaxPool3d(2), new AvgPool3d([1, 2, 2]), new AdaptiveAvgPool3d([1, 2, 3])].map((m) => m.forward(x3).shape));
  assert.deepEqual(shapes, [
    [1, 2, 2, 3, 4],
    [1, 2, 4, 3, 4],
    [1, 2, 1, 2, 3],
  ]);
  assert.throws(() => new MaxPool2d(2).forward(x3), /MaxPool2d: expected a 4-d input/);
  for (const t of [x, mp, ap, mps, aa, x3]) t.dispose();
});

test('Upsample: nearest doubles each pixel; bilinear/trilinear sizes', () => {
  const x = tensor([1, 2, 3, 4], [1, 1, 2, 2]);
  const y = new Upsample({ scaleFactor: 2 }).forward(x);
  assert.deepEqual(y.shape, [1, 1, 4, 4]);
  assert.deepEqual(vals(y), [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  const yb = new Upsample({ size: [3, 3], mode: 'bilinear', alignCorners: true }).forward(x);
  assertClose(vals(yb), [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4]);
  const yt = tidy(() => new Upsample({ scaleFactor: [1, 2, 2], mode: 'trilinear' }).forward(randn([1, 1, 2, 3, 4])));
  assert.deepEqual(yt.shape, [1, 1, 2, 6, 8]);
  assert.throws(() => new Upsample({}), /exactly one of size and scaleFactor/);
  assert.throws(() => new Upsample({ size: 4, mode: 'trilinear' }).forward(x), /wrong number of dimensions/);
  for (const t of [x, y, yb, yt]) t.dispose();
});

test('activations and Sequential', () => {
  const x = tensor([-2, -0.5, 0, 1, 3], [5]);
  const r = tidy(() => ({
    relu: vals(new ReLU().forward(x)),
    leaky: vals(new LeakyReLU(0.1).forward(x)),
    sig: vals(new Sigmoid().forward(x)),
    gelu: vals(new GELU().forward(x)),
  }));
  assert.deepEqual(r.relu, [0, 0, 0, 1, 3]);
  assertClose(r.leaky, [-0.2, -0.05, 0, 1, 3]);
  assertClose(
    r.sig,
    vals(x).map((v) => 1 / (1 + Math.exp(-v))),
  );
  // GELU(x) = x * Phi(x); Phi at -2, -0.5, 1, 3 from standard normal tables.
  assertClose(r.gelu, [-2 * 0.022750131948179195, -0.5 * 0.3085375387259869, 0, 0.8413447460685429, 3 * 0.9986501019683699]);
  assert.equal(new Identity().forward(x), x);

  const lin = new Linear(5, 1, { bias: false });
  setData(lin.weight, [1, 1, 1, 1, 1]);
  const seq = new Sequential(new ReLU(), new Identity(), lin, new LeakyReLU(0.5));
  const xin = tensor([-2, -0.5, 0, 1, 3], [1, 5]);
  const y = seq.forward(xin);
  assertClose(vals(y), [4]);
  const neg = tensor([-1, -1, -1, -1, -7], [1, 5]);
  setData(lin.weight, [-1, -1, -1, -1, -1]);
  const yn = seq.forward(neg);
  assertClose(vals(yn), [0]);
  assert.deepEqual(vals(neg), [-1, -1, -1, -1, -7], 'Sequential never disposes its input');
  assert.equal(seq.length, 4);
  for (const t of [x, xin, y, yn, neg]) t.dispose();
  seq.dispose();
});

test('a forward pass outside tidy leaves only its output alive', () => {
  const cases: [{ forward(x: Tensor): Tensor; dispose(): void }, number[]][] = [
    [new Conv2d(2, 3, 4, { padding: 'same' }), [1, 2, 5, 5]],
    [new Conv3d(2, 3, 3), [1, 2, 4, 4, 4]],
    [new ConvTranspose2d(2, 3, 2, { stride: 2 }), [1, 2, 3, 3]],
    [new BatchNorm2d(2), [2, 2, 3, 3]],
    [new BatchNorm2d(2, { momentum: null }), [2, 2, 3, 3]],
    [new InstanceNorm2d(2, { trackRunningStats: true, affine: true }), [2, 2, 3, 3]],
    [new GroupNorm(1, 2), [2, 2, 3, 3]],
    [
      new Sequential(
        new Conv2d(2, 2, 3),
        new BatchNorm2d(2),
        new ReLU(),
        new Identity(),
        new MaxPool2d(2),
        new Upsample({ scaleFactor: 2 }),
      ),
      [1, 2, 6, 6],
    ],
  ];
  for (const [m, shape] of cases) {
    const x = randn(shape);
    const before = memory().numTensors;
    const y = m.forward(x);
    assert.equal(memory().numTensors, before + 1, `${String(m)} made exactly one tensor`);
    y.dispose();
    x.dispose();
    m.dispose();
  }
});

test('gradients through layers match central finite differences (float64)', () => {
  manualSeed(5);
  const layers: [string, { forward(x: Tensor): Tensor; parameters(): Tensor[]; zeroGrad(): void; dispose(): void }, number[]][] = [
    ['conv same/even', new Conv2d(2, 2, 2, { padding: 'same', dtype: 'float64' }), [2, 2, 3, 3]],
    ['convT', new ConvTranspose2d(2, 1, 3, { stride: 2, padding: 1, outputPadding: 1, dtype: 'float64' }), [1, 2, 2, 2]],
    ['batchnorm', new BatchNorm2d(2, { dtype: 'float64' }), [3, 2, 2, 2]],
    ['groupnorm', new GroupNorm(2, 4, { dtype: 'float64' }), [2, 4, 2, 2]],
    ['linear', new Linear(3, 2, { dtype: 'float64' }), [4, 3]],
  ];
  for (const [label, m, shape] of layers) {
    const x = randn(shape).to('float64');
    // A random projection makes the loss depend on every output element differently.
    const probe = tidy(() => m.forward(x));
    const r = randn(probe.shape).to('float64');
    probe.dispose();
    const loss = (): Tensor => m.forward(x).mul(r).sum();
    // BatchNorm in training would move its running stats on every call; they do not affect the loss.
    for (const p of m.parameters()) {
      m.zeroGrad();
      tidy(() => loss().backward());
      const g = p.grad!;
      const analytic = vals(g);
      g.dispose();
      const base = vals(p);
      const eps = 1e-6;
      const numeric = base.map((_, i) => {
        const at = (d: number): number => {
          const v = base.slice();
          v[i]! += d;
          noGrad(() => {
            const t = tensor(new Float64Array(v), p.shape, 'float64');
            p.copy_(t);
            t.dispose();
          });
          return tidy(() => loss().item());
        };
        return (at(eps) - at(-eps)) / (2 * eps);
      });
      noGrad(() => {
        const t = tensor(new Float64Array(base), p.shape, 'float64');
        p.copy_(t);
        t.dispose();
      });
      assertClose(analytic, numeric, 1e-5, `${label} d/d${p.shape.join('x')}`);
    }
    x.dispose();
    r.dispose();
    m.dispose();
  }
});

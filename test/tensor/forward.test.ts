// Forward values against hand-computed cases and identities.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  F,
  arange,
  cat,
  eye,
  full,
  linspace,
  manualSeed,
  matmul,
  ones,
  pad,
  rand,
  randint,
  randn,
  stack,
  tensor,
  where,
  zeros,
} from '../../src/tensor/index.ts';
import { assertClose, values } from './helpers.ts';

describe('creation and data out', () => {
  it('round-trips every dtype through typed arrays', () => {
    const f32 = tensor(new Float32Array([1.5, -2, 3]));
    assert.equal(f32.dtype, 'float32');
    assert.deepEqual(Array.from(f32.toTypedArray() as Float32Array), [1.5, -2, 3]);
    const f64 = tensor(new Float64Array([0.1, 0.2]), [2, 1]);
    assert.equal(f64.dtype, 'float64');
    assert.deepEqual(f64.shape, [2, 1]);
    assert.deepEqual(Array.from(f64.toTypedArray() as Float64Array), [0.1, 0.2]);
    const i16 = tensor(new Int16Array([-1024, 3000]));
    assert.equal(i16.dtype, 'int16');
    assert.deepEqual(Array.from(i16.toTypedArray() as Int16Array), [-1024, 3000]);
    const i32 = tensor(new Int32Array([7, -8]));
    assert.equal(i32.dtype, 'int32');
    const i64 = tensor(new BigInt64Array([2n ** 40n, -5n]));
    assert.equal(i64.dtype, 'int64');
    const back = i64.toTypedArray();
    assert.ok(back instanceof BigInt64Array);
    assert.deepEqual(Array.from(back), [2n ** 40n, -5n]);
    const u8 = tensor(new Uint8Array([0, 255]));
    assert.equal(u8.dtype, 'uint8');
    const b = tensor([true, false, true]);
    assert.equal(b.dtype, 'bool');
    assert.deepEqual(b.toNumbers(), [1, 0, 1]);
    assert.equal(tensor(new Uint8Array([1, 0]), [2], 'bool').dtype, 'bool');
    assert.equal(i32.to('float64').dtype, 'float64');
  });

  it('infers nested shapes and reports properties', () => {
    const t = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.deepEqual(t.shape, [2, 3]);
    assert.equal(t.ndim, 2);
    assert.equal(t.numel, 6);
    assert.deepEqual(t.toArray(), [
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.equal(tensor(3.5).item(), 3.5);
    assert.deepEqual(tensor(3.5).shape, []);
    assert.throws(() => tensor([[1, 2], [3]]), /rectangular/);
    assert.throws(() => tensor(new Float32Array(5), [2, 3]), /5 elements but shape \[2, 3\] needs 6/);
  });

  it('makes constants, ranges and identity', () => {
    assert.deepEqual(values(zeros([2, 2])), [0, 0, 0, 0]);
    assert.deepEqual(values(ones([3], 'int32')), [1, 1, 1]);
    assert.deepEqual(values(full([2], 7)), [7, 7]);
    assert.deepEqual(values(arange(5)), [0, 1, 2, 3, 4]);
    assert.equal(arange(5).dtype, 'int64');
    assert.deepEqual(values(arange(1, 2, 0.25)), [1, 1.25, 1.5, 1.75]);
    assert.deepEqual(values(linspace(0, 1, 5)), [0, 0.25, 0.5, 0.75, 1]);
    assert.deepEqual(values(eye(2)), [1, 0, 0, 1]);
  });

  it('seeded random draws repeat and have the right range', () => {
    manualSeed(7);
    const a = values(randn([100]));
    manualSeed(7);
    assert.deepEqual(values(randn([100])), a);
    const u = values(rand([1000]));
    assert.ok(u.every((v) => v >= 0 && v < 1));
    const m = u.reduce((s, v) => s + v, 0) / u.length;
    assert.ok(Math.abs(m - 0.5) < 0.05, `mean of rand ${m}`);
    const k = values(randint(3, 6, [500]));
    assert.ok(k.every((v) => v >= 3 && v < 6 && Number.isInteger(v)));
    assert.deepEqual(new Set(k), new Set([3, 4, 5]));
  });
});

describe('elementwise, reductions and shape ops', () => {
  const a = () =>
    tensor([
      [1, -2, 3],
      [-4, 5, -6],
    ]);

  it('arithmetic with broadcasting and scalar promotion', () => {
    assert.deepEqual(values(a().add(tensor([10, 20, 30]))), [11, 18, 33, 6, 25, 24]);
    assert.deepEqual(values(a().mul(2)), [2, -4, 6, -8, 10, -12]);
    assert.deepEqual(values(a().sub(1).div(2)), [0, -1.5, 1, -2.5, 2, -3.5]);
    assert.deepEqual(values(tensor([1, 2, 3]).pow(2)), [1, 4, 9]);
    assert.deepEqual(values(tensor([1, 2]).rsub(10)), [9, 8]);
    assert.equal(tensor(new Int32Array([1, 2])).add(1).dtype, 'int32');
    assert.equal(tensor(new Int32Array([1, 2])).add(0.5).dtype, 'float32');
    assert.equal(tensor([1, 2]).add(1).dtype, 'float32');
    assert.deepEqual(values(a().maximum(0)), [1, 0, 3, 0, 5, 0]);
    assert.deepEqual(values(a().minimum(tensor([0, 0, 0]))), [0, -2, 0, -4, 0, -6]);
    assert.deepEqual(values(tensor([7, -7]).remainder(3)), [1, 2]);
  });

  it('unary functions', () => {
    assert.deepEqual(values(a().abs()), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(values(a().relu()), [1, 0, 3, 0, 5, 0]);
    assert.deepEqual(values(a().sign()), [1, -1, 1, -1, 1, -1]);
    assertClose(values(tensor([0, 1]).exp()), [1, Math.E]);
    assertClose(values(tensor([1, Math.E]).log()), [0, 1]);
    assertClose(values(tensor([0]).sigmoid()), [0.5]);
    assertClose(values(F.leakyRelu(tensor([-2, 3]), 0.1)), [-0.2, 3]);
    // gelu(1) = 1 * Phi(1) = 0.8413447
    assertClose(values(F.gelu(tensor([1]))), [0.8413447], 1e-6);
    assertClose(values(tensor([4, 9]).sqrt()), [2, 3]);
    assertClose(values(tensor([4]).rsqrt()), [0.5]);
    assert.deepEqual(
      values(tensor([-1.5, 0.2, 2.7]).clamp(-1, 1)),
      [-1, 0.2, 1].map((v) => Math.fround(v)),
    );
    assert.deepEqual(values(tensor([-1.5, 2.5, 0.4]).floor()), [-2, 2, 0]);
    assert.deepEqual(values(tensor([-1.5, 2.5, 0.6]).round()), [-2, 2, 1]); // half to even, like PyTorch
  });

  it('comparisons and logic give bool tensors', () => {
    const t = tensor([1, 2, 3]);
    const g = t.gt(1);
    assert.equal(g.dtype, 'bool');
    assert.deepEqual(values(g), [0, 1, 1]);
    assert.deepEqual(values(t.eq(2)), [0, 1, 0]);
    assert.deepEqual(values(t.le(tensor([3, 1, 3]))), [1, 0, 1]);
    assert.deepEqual(values(t.ge(2).logicalAnd(t.lt(3))), [0, 1, 0]);
    assert.deepEqual(values(t.gt(2).logicalOr(t.lt(2)).logicalNot()), [0, 1, 0]);
    assert.deepEqual(values(where(t.gt(1), t, 0)), [0, 2, 3]);
  });

  it('reductions', () => {
    const t = a();
    assert.equal(t.sum().item(), -3);
    assert.deepEqual(values(t.sum(0)), [-3, 3, -3]);
    assert.deepEqual(t.sum(1, true).shape, [2, 1]);
    assert.deepEqual(values(t.mean(1)), [2 / 3, -5 / 3].map(Math.fround));
    assert.equal(t.max().item(), 5);
    assert.equal(t.min().item(), -6);
    assert.deepEqual(values(t.amax(1)), [3, 5]);
    assert.deepEqual(values(t.argmax(1)), [2, 1]);
    assert.equal(t.argmax().item(), 4);
    assertClose(values(tensor([1, 2, 3, 4]).std()), [Math.sqrt(5 / 3)], 1e-6);
    assertClose(values(tensor([1, 2, 3, 4]).var(undefined, false, false)), [1.25], 1e-6);
    assertClose(values(tensor([3, 4]).norm()), [5]);
    assertClose(values(tensor([3, -4]).norm(1)), [7]);
    assert.deepEqual(values(tensor([1, 2, 3]).cumsum(0)), [1, 3, 6]);
    const { values: v, indices } = tensor([5, 1, 9, 3]).topk(2);
    assert.deepEqual(values(v), [9, 5]);
    assert.deepEqual(values(indices), [2, 0]);
  });

  it('views, slices and joins', () => {
    const t = arange(6).reshape(2, 3);
    assert.deepEqual(values(t.transpose(0, 1)), [0, 3, 1, 4, 2, 5]);
    assert.deepEqual(values(t.permute([1, 0]).contiguous()), [0, 3, 1, 4, 2, 5]);
    assert.deepEqual(values(t.slice(1, 1)), [1, 2, 4, 5]);
    assert.deepEqual(values(t.slice(1, 0, 3, 2)), [0, 2, 3, 5]);
    assert.deepEqual(values(t.slice(1, -1)), [2, 5]);
    assert.deepEqual(values(t.select(0, 1)), [3, 4, 5]);
    assert.deepEqual(values(t.index(0)), [0, 1, 2]);
    assert.deepEqual(values(t.flip(1)), [2, 1, 0, 5, 4, 3]);
    // rot90 counter-clockwise: [[0,1,2],[3,4,5]] -> [[2,5],[1,4],[0,3]]
    assert.deepEqual(values(t.rot90(1, [0, 1])), [2, 5, 1, 4, 0, 3]);
    assert.deepEqual(t.unsqueeze(0).shape, [1, 2, 3]);
    assert.deepEqual(t.unsqueeze(0).squeeze().shape, [2, 3]);
    assert.deepEqual(t.flatten().shape, [6]);
    assert.deepEqual(values(cat([t, t], 0)).length, 12);
    assert.deepEqual(stack([t, t], 1).shape, [2, 2, 3]);
    assert.deepEqual(values(tensor([1, 2]).repeat(2)), [1, 2, 1, 2]);
    assert.deepEqual(values(tensor([[1], [2]]).expand(2, 2)), [1, 1, 2, 2]);
    assert.deepEqual(values(t.indexSelect(1, tensor([2, 0], [2], 'int64'))), [2, 0, 5, 3]);
    assert.deepEqual(values(pad(tensor([[1, 2]]), [1, 1])), [0, 1, 2, 0]);
    assert.deepEqual(values(pad(tensor([[[1, 2, 3]]]), [2, 0], 'reflect')), [3, 2, 1, 2, 3]);
    assert.deepEqual(values(pad(tensor([[[1, 2]]]), [0, 2], 'replicate')), [1, 2, 2, 2]);
  });

  it('matmul', () => {
    const m = matmul(
      tensor([
        [1, 2],
        [3, 4],
      ]),
      tensor([
        [5, 6],
        [7, 8],
      ]),
    );
    assert.deepEqual(values(m), [19, 22, 43, 50]);
    assert.deepEqual(
      values(
        matmul(
          tensor([
            [1, 2],
            [3, 4],
          ]),
          tensor([1, 1]),
        ),
      ),
      [3, 7],
    );
  });
});

describe('neural-network ops', () => {
  it('conv2d and convTranspose2d on hand cases', () => {
    // 3x3 input, 2x2 all-ones kernel, no padding: sums of 2x2 windows.
    const x = arange(9).float().reshape(1, 1, 3, 3);
    const w = ones([1, 1, 2, 2]);
    assert.deepEqual(values(F.conv2d(x, w, tensor([1]))), [9, 13, 21, 25]);
    assert.deepEqual(F.conv2d(x, w, null, { padding: 1 }).shape, [1, 1, 4, 4]);
    assert.deepEqual(values(F.conv2d(x, w, null, { stride: 2, padding: 1 })), [0, 3, 9, 24]);
    // Transposed conv with stride 2 and a 2x2 kernel scatters each input into its own 2x2 block.
    const y = F.convTranspose2d(
      tensor([
        [
          [
            [1, 2],
            [3, 4],
          ],
        ],
      ]),
      ones([1, 1, 2, 2]),
      null,
      { stride: 2 },
    );
    assert.deepEqual(values(y), [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
    const z = F.conv3d(ones([1, 2, 3, 3, 3]), ones([4, 2, 3, 3, 3]));
    assert.deepEqual(values(z), [54, 54, 54, 54]);
  });

  it('batchNorm normalises per channel and updates running statistics', () => {
    const x = tensor([1, 3, 10, 30], [2, 2, 1, 1]); // channel 0: {1, 10}; channel 1: {3, 30}
    const rm = zeros([2]);
    const rv = ones([2]);
    const y = F.batchNorm(x, rm, rv, null, null, true, 0.1, 0);
    assertClose(values(y), [-1, -1, 1, 1], 1e-5);
    // running mean = 0.9*0 + 0.1*mean; running var uses the unbiased batch variance.
    assertClose(values(rm), [0.55, 1.65], 1e-6);
    assertClose(values(rv), [0.9 + 0.1 * 40.5, 0.9 + 0.1 * 364.5], 1e-4);
    const e = F.batchNorm(tensor([2, 2], [1, 2]), tensor([1, 1]), tensor([4, 4]), tensor([2, 1]), tensor([0, 1]), false, 0.1, 0);
    assertClose(values(e), [1, 1.5]);
  });

  it('instance, group and layer norm', () => {
    const x = tensor([1, 2, 3, 4, 10, 20, 30, 40], [1, 2, 4]);
    const s = Math.sqrt(1.25);
    const unit = [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s];
    assertClose(values(F.instanceNorm(x, null, null, null, null, true, 0.1, 0)), [...unit, ...unit], 1e-5);
    assertClose(values(F.groupNorm(x, 2, null, null, 0)), [...unit, ...unit], 1e-5);
    assertClose(values(F.layerNorm(tensor([1, 2, 3, 4], [1, 4]), [4], null, null, 0)), unit, 1e-5);
  });

  it('pooling and interpolation', () => {
    const x = arange(16).float().reshape(1, 1, 4, 4);
    assert.deepEqual(values(F.maxPool2d(x, 2)), [5, 7, 13, 15]);
    assert.deepEqual(values(F.avgPool2d(x, 2)), [2.5, 4.5, 10.5, 12.5]);
    assert.deepEqual(values(F.adaptiveAvgPool2d(x, 1)), [7.5]);
    assert.deepEqual(values(F.adaptiveMaxPool2d(x, 1)), [15]);
    assert.deepEqual(values(F.maxPool3d(arange(8).float().reshape(1, 1, 2, 2, 2), 2)), [7]);
    const small = tensor([
      [
        [
          [1, 2],
          [3, 4],
        ],
      ],
    ]);
    assert.deepEqual(values(F.interpolate(small, { scaleFactor: 2 })), [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
    // align_corners=true bilinear 2->3 puts the midpoints between the corners.
    assertClose(values(F.interpolate(small, { size: 3, mode: 'bilinear', alignCorners: true })), [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4]);
    const v = F.interpolate(ones([1, 1, 2, 2, 2]), { scaleFactor: 2, mode: 'trilinear' });
    assert.deepEqual(v.shape, [1, 1, 4, 4, 4]);
    assertClose(values(v.mean()), [1]);
  });

  it('softmax, dropout and losses', () => {
    assertClose(values(F.softmax(tensor([0, Math.log(3)]), 0)), [0.25, 0.75]);
    assertClose(values(F.logSoftmax(tensor([0, 0]), 0)), [-Math.LN2, -Math.LN2]);
    manualSeed(1);
    const d = values(F.dropout(ones([10000]), 0.3, true));
    const kept = d.filter((v) => v !== 0);
    assert.ok(kept.every((v) => Math.abs(v - 1 / 0.7) < 1e-5));
    assert.ok(Math.abs(kept.length / 10000 - 0.7) < 0.03);
    assert.deepEqual(values(F.dropout(ones([5]), 0.5, false)), [1, 1, 1, 1, 1]);
    const d2 = F.dropout2d(ones([1, 64, 2, 2]), 0.5, true).sum([2, 3]);
    assert.ok(
      values(d2).every((v) => v === 0 || Math.abs(v - 8) < 1e-5),
      'dropout2d zeroes whole channels',
    );
    // BCE with logits: -[y log s(x) + (1-y) log(1-s(x))]; at x=0 it is log 2 for any y.
    assertClose(values(F.binaryCrossEntropyWithLogits(zeros([3]), tensor([0, 1, 0.5]))), [Math.LN2]);
    assertClose(
      values(F.binaryCrossEntropyWithLogits(tensor([2]), tensor([1]), { posWeight: tensor([3]) })),
      [3 * Math.log(1 + Math.exp(-2))],
      1e-6,
    );
    // Cross-entropy with uniform logits over 4 classes is log 4; class weights and ignoreIndex.
    const logits = zeros([3, 4]);
    assertClose(values(F.crossEntropy(logits, tensor([0, 1, 2], [3], 'int64'))), [Math.log(4)]);
    const lg = tensor([
      [2, 0],
      [0, 2],
      [1, 1],
    ]);
    const tgt = tensor([0, 0, 1], [3], 'int64');
    const l = [Math.log(1 + Math.exp(-2)), Math.log(1 + Math.exp(2)), Math.LN2];
    assertClose(values(F.crossEntropy(lg, tgt, { weight: tensor([1, 3]) })), [(l[0]! + l[1]! + 3 * l[2]!) / 5], 1e-6);
    assertClose(values(F.crossEntropy(lg, tgt, { ignoreIndex: 1 })), [(l[0]! + l[1]!) / 2], 1e-6);
    assertClose(values(F.crossEntropy(lg, tgt, { reduction: 'none' })), l, 1e-6);
    assertClose(values(F.mseLoss(tensor([1, 2]), tensor([0, 0]))), [2.5]);
    assertClose(values(F.l1Loss(tensor([1, -2]), tensor([0, 0]), { reduction: 'sum' })), [3]);
  });
});

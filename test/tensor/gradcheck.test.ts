// Every differentiable op's gradient against central finite differences in float64.
import { describe, it, before } from 'node:test';
import { F, cat, manualSeed, matmul, pad, rand, randn, stack, tensor, where, type Tensor } from '../../src/tensor/index.ts';
import { awayFromZero, gradcheck } from './helpers.ts';

const r = (...s: number[]): Tensor => randn(s, 'float64');
const pos = (...s: number[]): Tensor => rand(s, 'float64').add(0.5);

describe('gradients match finite differences (float64)', () => {
  before(() => manualSeed(1234));

  it('binary arithmetic with broadcasting', () => {
    gradcheck('add', (a, b) => a.add(b), [r(2, 3), r(3)]);
    gradcheck('sub', (a, b) => a.sub(b), [r(2, 3), r(2, 1)]);
    gradcheck('mul', (a, b) => a.mul(b), [r(2, 3), r(2, 3)]);
    gradcheck('div', (a, b) => a.div(b), [r(2, 3), pos(2, 3)]);
    gradcheck('pow tensor', (a, b) => a.pow(b), [pos(2, 3), r(2, 3)]);
    gradcheck('pow scalar', (a) => a.pow(3), [r(4)]);
    gradcheck('rsub/rdiv', (a) => a.rsub(2).add(a.rdiv(3)), [pos(4)]);
    gradcheck('maximum/minimum', (a, b) => a.maximum(b).add(a.minimum(b).mul(2)), [r(5), r(5)]);
  });

  it('unary maths and activations', () => {
    gradcheck('neg', (a) => a.neg(), [r(4)]);
    gradcheck('abs', (a) => a.abs(), [awayFromZero([5])]);
    gradcheck('exp', (a) => a.exp(), [r(4)]);
    gradcheck('log', (a) => a.log(), [pos(4)]);
    gradcheck('sqrt', (a) => a.sqrt(), [pos(4)]);
    gradcheck('rsqrt', (a) => a.rsqrt(), [pos(4)]);
    gradcheck('sin/cos', (a) => a.sin().add(a.cos()), [r(4)]);
    gradcheck('tanh', (a) => a.tanh(), [r(4)]);
    gradcheck('sigmoid', (a) => F.sigmoid(a), [r(4)]);
    gradcheck('relu', (a) => F.relu(a), [awayFromZero([6])]);
    gradcheck('leakyRelu', (a) => F.leakyRelu(a, 0.2), [awayFromZero([6])]);
    gradcheck('gelu', (a) => F.gelu(a), [r(6)]);
    gradcheck('silu/softplus', (a) => F.silu(a).add(F.softplus(a)), [r(6)]);
    gradcheck('clamp', (a) => a.clamp(-0.5, 0.5), [tensor([-1.2, -0.3, 0.1, 0.4, 0.9], [5], 'float64')]);
    gradcheck('square/reciprocal', (a) => a.square().add(a.reciprocal()), [pos(4)]);
  });

  it('reductions', () => {
    gradcheck('sum all', (a) => a.sum(), [r(2, 3)]);
    gradcheck('sum dims keepdim', (a) => a.sum([0, 2], true), [r(2, 3, 2)]);
    gradcheck('mean dim', (a) => a.mean(1), [r(2, 3)]);
    gradcheck('amax', (a) => a.amax(1), [r(3, 4)]);
    gradcheck('amin all', (a) => a.amin(), [r(3, 4)]);
    gradcheck('std', (a) => a.std(1), [r(3, 4)]);
    gradcheck('var all', (a) => a.var(), [r(3, 4)]);
    gradcheck('norm', (a) => a.norm(2, 1), [r(3, 4)]);
    gradcheck('logsumexp', (a) => a.logsumexp(1), [r(3, 4)]);
    gradcheck('cumsum', (a) => a.cumsum(1), [r(2, 4)]);
    gradcheck('prod', (a) => a.prod(1), [pos(2, 3)]);
  });

  it('shape ops', () => {
    gradcheck('reshape/permute', (a) => a.reshape(2, 3, 2).permute(2, 0, 1), [r(3, 4)]);
    gradcheck('transpose/contiguous', (a) => a.transpose(0, 1).contiguous(), [r(3, 4)]);
    gradcheck('slice step', (a) => a.slice(1, 1, 4, 2), [r(2, 5)]);
    gradcheck('select/narrow', (a) => a.select(0, 1).add(a.narrow(0, 0, 1).squeeze(0)), [r(2, 3)]);
    gradcheck('flip/rot90', (a) => a.flip([1]).add(a.rot90(1, [0, 1]).rot90(-1, [0, 1])), [r(3, 3)]);
    gradcheck('expand/repeat', (a) => a.expand(2, 3).add(a.repeat(2, 1)), [r(1, 3)]);
    gradcheck('cat/stack', (a, b) => cat([a, b], 1).add(stack([a, b], 2).flatten(1)), [r(2, 2), r(2, 2)]);
    gradcheck('pad constant', (a) => pad(a, [1, 2, 0, 1], 'constant', 0.5), [r(1, 1, 2, 3)]);
    gradcheck('pad reflect', (a) => pad(a, [1, 1, 1, 1], 'reflect'), [r(1, 1, 3, 3)]);
    gradcheck('pad replicate', (a) => pad(a, [1, 1, 1, 1], 'replicate'), [r(1, 1, 3, 3)]);
    gradcheck('indexSelect', (a) => a.indexSelect(1, tensor([2, 0, 2], [3], 'int64')), [r(2, 3)]);
    gradcheck('where', (a, b) => where(a.gt(0), a, b), [awayFromZero([5]), r(5)]);
    gradcheck(
      'gather',
      (a) =>
        a.gather(
          1,
          tensor(
            [
              [0, 0, 2],
              [1, 2, 1],
            ],
            [2, 3],
            'int64',
          ),
        ),
      [r(2, 3)],
    );
    gradcheck('maskedFill', (a) => a.maskedFill(tensor([true, false, true, false]), 2), [r(4)]);
    gradcheck('lerp', (a, b) => a.lerp(b, 0.3), [r(3), r(3)]);
  });

  it('matmul and linear', () => {
    gradcheck('matmul 2d', (a, b) => matmul(a, b), [r(2, 3), r(3, 4)]);
    gradcheck('matmul batched', (a, b) => matmul(a, b), [r(2, 2, 3), r(3, 2)]);
    gradcheck('linear', (x, w, b) => F.linear(x, w, b), [r(3, 4), r(2, 4), r(2)]);
  });

  it('convolutions', () => {
    gradcheck('conv2d', (x, w, b) => F.conv2d(x, w, b, { stride: 2, padding: 1 }), [r(1, 2, 5, 5), r(3, 2, 3, 3), r(3)]);
    gradcheck('conv2d groups dilation', (x, w) => F.conv2d(x, w, null, { groups: 2, dilation: 2, padding: 2 }), [
      r(1, 4, 4, 4),
      r(2, 2, 3, 3),
    ]);
    gradcheck('conv3d', (x, w, b) => F.conv3d(x, w, b, { padding: 1 }), [r(1, 1, 3, 3, 3), r(2, 1, 3, 3, 3), r(2)]);
    gradcheck('convTranspose2d', (x, w, b) => F.convTranspose2d(x, w, b, { stride: 2, padding: 1, outputPadding: 1 }), [
      r(1, 2, 3, 3),
      r(2, 3, 3, 3),
      r(3),
    ]);
    gradcheck('conv1d', (x, w, b) => F.conv1d(x, w, b, { padding: 1, stride: 2 }), [r(2, 2, 5), r(3, 2, 3), r(3)]);
    gradcheck('convTranspose3d', (x, w, b) => F.convTranspose3d(x, w, b, { stride: 2 }), [r(1, 2, 2, 2, 2), r(2, 1, 2, 2, 2), r(1)]);
  });

  it('normalisation', () => {
    gradcheck('batchNorm training', (x, w, b) => F.batchNorm(x, null, null, w, b, true, 0.1, 1e-5), [r(3, 2, 2, 2), r(2), r(2)]);
    gradcheck(
      'batchNorm eval',
      (x, w) => F.batchNorm(x, tensor([0.1, -0.2], [2], 'float64'), tensor([1.5, 0.5], [2], 'float64'), w, null, false, 0.1, 1e-5),
      [r(2, 2, 3), r(2)],
    );
    gradcheck('instanceNorm', (x, w, b) => F.instanceNorm(x, null, null, w, b, true, 0.1, 1e-5), [r(2, 2, 3, 3), r(2), r(2)]);
    gradcheck('groupNorm', (x, w, b) => F.groupNorm(x, 2, w, b, 1e-5), [r(2, 4, 3), r(4), r(4)]);
    gradcheck('layerNorm', (x, w, b) => F.layerNorm(x, [3], w, b, 1e-5), [r(2, 3), r(3), r(3)]);
  });

  it('pooling and resampling', () => {
    gradcheck('maxPool2d', (x) => F.maxPool2d(x, 2), [r(1, 2, 4, 4)]);
    gradcheck('maxPool3d', (x) => F.maxPool3d(x, 2), [r(1, 1, 4, 4, 4)]);
    gradcheck('avgPool2d', (x) => F.avgPool2d(x, 3, 2, 1), [r(1, 1, 5, 5)]);
    gradcheck('avgPool3d', (x) => F.avgPool3d(x, 2), [r(1, 1, 4, 4, 4)]);
    gradcheck('adaptiveAvgPool2d', (x) => F.adaptiveAvgPool2d(x, [2, 3]), [r(1, 2, 5, 7)]);
    gradcheck('adaptiveMaxPool2d', (x) => F.adaptiveMaxPool2d(x, 2), [r(1, 1, 4, 4)]);
    gradcheck('adaptiveAvgPool3d', (x) => F.adaptiveAvgPool3d(x, 1), [r(1, 2, 3, 3, 3)]);
    gradcheck('bilinear', (x) => F.interpolate(x, { scaleFactor: 2, mode: 'bilinear' }), [r(1, 1, 3, 3)]);
    gradcheck('bilinear alignCorners', (x) => F.interpolate(x, { size: [5, 4], mode: 'bilinear', alignCorners: true }), [r(1, 1, 3, 3)]);
    gradcheck('trilinear', (x) => F.interpolate(x, { size: 3, mode: 'trilinear' }), [r(1, 1, 2, 2, 2)]);
    gradcheck('nearest', (x) => F.interpolate(x, { scaleFactor: 2 }), [r(1, 1, 2, 3)]);
    gradcheck('nearest 3d', (x) => F.interpolate(x, { size: [3, 4, 2] }), [r(1, 1, 2, 2, 2)]);
    gradcheck('adaptiveMaxPool3d', (x) => F.adaptiveMaxPool3d(x, 1), [r(1, 2, 2, 2, 2)]);
  });

  it('dropout (re-seeded so every evaluation draws the same mask)', () => {
    gradcheck(
      'dropout',
      (x) => {
        manualSeed(5);
        return F.dropout(x, 0.4, true);
      },
      [r(12)],
    );
    gradcheck(
      'dropout2d',
      (x) => {
        manualSeed(6);
        return F.dropout2d(x, 0.5, true);
      },
      [r(1, 6, 2, 2)],
    );
  });

  it('softmax and losses', () => {
    gradcheck('softmax', (x) => F.softmax(x, 1), [r(2, 4)]);
    gradcheck('logSoftmax', (x) => F.logSoftmax(x, 0), [r(3, 2)]);
    gradcheck('bceWithLogits', (x, t) => F.binaryCrossEntropyWithLogits(x, t), [r(2, 3), rand([2, 3], 'float64')], { wrt: [0] });
    gradcheck(
      'bceWithLogits posWeight none',
      (x, t, pw) => F.binaryCrossEntropyWithLogits(x, t, { posWeight: pw, reduction: 'none' }),
      [r(2, 3), rand([2, 3], 'float64'), pos(3)],
      { wrt: [0] },
    );
    const target = tensor([0, 2, 1, 2], [2, 2], 'int64');
    gradcheck(
      'crossEntropy weight ignore',
      (x, w) => F.crossEntropy(x.reshape(2, 3, 2), target, { weight: w, ignoreIndex: 1 }),
      [r(2, 6), pos(3)],
      { wrt: [0] },
    );
    gradcheck('crossEntropy smoothing', (x) => F.crossEntropy(x, tensor([1, 0], [2], 'int64'), { labelSmoothing: 0.1 }), [r(2, 3)]);
    gradcheck('nllLoss', (x) => F.nllLoss(F.logSoftmax(x, 1), tensor([1, 0], [2], 'int64')), [r(2, 3)]);
    gradcheck('mse/l1', (a, b) => F.mseLoss(a, b).add(F.l1Loss(a, b)), [r(5), r(5)]);
    gradcheck('smoothL1', (a, b) => F.smoothL1Loss(a, b, { reduction: 'sum' }), [r(5), r(5)]);
  });

  it('a Dice loss composed in TypeScript', () => {
    const dice = (logits: Tensor, target: Tensor): Tensor => {
      const p = F.sigmoid(logits);
      const inter = p.mul(target).sum([1, 2]);
      const denom = p.sum([1, 2]).add(target.sum([1, 2]));
      return inter.mul(2).add(1).div(denom.add(1)).rsub(1).mean();
    };
    gradcheck('dice', dice, [r(2, 3, 3), rand([2, 3, 3], 'float64').gt(0.5).double()], { wrt: [0] });
  });
});

describe('gradcheck itself', () => {
  it('fails on a wrong gradient (detach hides half of d(a*a)/da)', async () => {
    const assert = (await import('node:assert/strict')).default;
    assert.throws(() => gradcheck('wrong', (a) => a.detach().mul(a), [randn([3], 'float64')]), /d\/d\(input 0\)/);
  });
});

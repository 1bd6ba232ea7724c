/**
 * Weight initialisers, after `torch.nn.init`. They draw from the engine's generator, so
 * `manualSeed(s)` before building a network makes its initial weights reproducible (and, since the
 * engine is libtorch, equal to PyTorch's for the same seed and construction order).
 */
import { noGrad, type Tensor } from '../tensor/index.ts';

export type Nonlinearity = 'linear' | 'conv1d' | 'conv2d' | 'conv3d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';

/** torch.nn.init.calculate_gain. `param` is the leaky-ReLU slope (default 0.01). */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv1d':
    case 'conv2d':
    case 'conv3d':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.sqrt(2.0);
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      return Math.sqrt(2.0 / (1 + slope ** 2));
    }
    case 'selu':
      return 3.0 / 4;
  }
}

/** Fan-in and fan-out of a weight of shape [out, in, ...kernel] (PyTorch's convention). */
export function calculateFanInAndFanOut(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new Error(`fan in/out needs a tensor with at least 2 dimensions, got [${shape.join(', ')}]`);
  let receptive = 1;
  for (const s of shape.slice(2)) receptive *= s;
  return { fanIn: shape[1]! * receptive, fanOut: shape[0]! * receptive };
}

export function uniform_(t: Tensor, a = 0, b = 1): Tensor {
  noGrad(() => t.uniform_(a, b));
  return t;
}

export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  noGrad(() => t.normal_(mean, std));
  return t;
}

export function constant_(t: Tensor, value: number): Tensor {
  noGrad(() => t.fill_(value));
  return t;
}

export function zeros_(t: Tensor): Tensor {
  return constant_(t, 0);
}

export function ones_(t: Tensor): Tensor {
  return constant_(t, 1);
}

export interface KaimingOptions {
  /** Negative slope of the following leaky ReLU (default 0). */
  a?: number;
  mode?: 'fanIn' | 'fanOut';
  nonlinearity?: Nonlinearity;
}

function kaimingStd(t: Tensor, o: KaimingOptions): number {
  const { fanIn, fanOut } = calculateFanInAndFanOut(t.shape);
  const fan = (o.mode ?? 'fanIn') === 'fanIn' ? fanIn : fanOut;
  const gain = calculateGain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0);
  return gain / Math.sqrt(fan);
}

/** He initialisation, uniform; same arithmetic order as PyTorch so the bounds agree to the last bit. */
export function kaimingUniform_(t: Tensor, o: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3.0) * kaimingStd(t, o);
  return uniform_(t, -bound, bound);
}

export function kaimingNormal_(t: Tensor, o: KaimingOptions = {}): Tensor {
  return normal_(t, 0, kaimingStd(t, o));
}

export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = calculateFanInAndFanOut(t.shape);
  const std = gain * Math.sqrt(2.0 / (fanIn + fanOut));
  const a = Math.sqrt(3.0) * std;
  return uniform_(t, -a, a);
}

export function xavierNormal_(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = calculateFanInAndFanOut(t.shape);
  return normal_(t, 0, gain * Math.sqrt(2.0 / (fanIn + fanOut)));
}

/**
 * PyTorch's default for conv and linear layers: weight kaiming-uniform with a=sqrt(5) (a bound of
 * 1/sqrt(fanIn)), then bias uniform in +-1/sqrt(fanIn). The weight is drawn first, as in PyTorch.
 */
export function defaultLayerInit_(weight: Tensor, bias: Tensor | null): void {
  kaimingUniform_(weight, { a: Math.sqrt(5) });
  if (bias !== null) {
    const { fanIn } = calculateFanInAndFanOut(weight.shape);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform_(bias, -bound, bound);
  }
}

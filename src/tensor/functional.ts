/**
 * Functional ops (the `F` namespace): the counterparts of torch.nn.functional, each calling the
 * same ATen entry point. Sizes accept a number (every spatial dim) or one number per dim.
 */
import type { Code, NativeTensor } from '../native/binding.ts';
import { INTERP_MODE, POINT_LOSS, REDUCTION, UNARY_OP, type ReductionName } from '../native/op-codes.ts';
import { Tensor, native } from './tensor.ts';

export type Size = number | number[];
export type Reduction = ReductionName;
type OptT = Tensor | null | undefined;

function sz(v: Size | undefined, dflt: number): number[] {
  if (v === undefined) return [dflt];
  return typeof v === 'number' ? [v] : v;
}

function h(t: OptT): NativeTensor | null {
  return t ? t.handle : null;
}

function reductionCode(op: string, r: Reduction | undefined): Code<typeof REDUCTION> {
  const name = r ?? 'mean';
  if (!Object.hasOwn(REDUCTION, name)) throw new TypeError(`${op}: reduction must be 'none', 'mean' or 'sum', got '${String(r)}'`);
  return REDUCTION[name];
}

export interface ConvOptions {
  stride?: Size;
  padding?: Size;
  dilation?: Size;
  groups?: number;
}

export interface ConvTransposeOptions extends ConvOptions {
  outputPadding?: Size;
}

function conv(nd: number, x: Tensor, w: Tensor, b: OptT, o: ConvOptions): Tensor {
  return new Tensor(native.conv(x.handle, w.handle, h(b), sz(o.stride, 1), sz(o.padding, 0), sz(o.dilation, 1), o.groups ?? 1, nd));
}

function convT(nd: number, x: Tensor, w: Tensor, b: OptT, o: ConvTransposeOptions): Tensor {
  return new Tensor(
    native.convTranspose(
      x.handle,
      w.handle,
      h(b),
      sz(o.stride, 1),
      sz(o.padding, 0),
      sz(o.outputPadding, 0),
      o.groups ?? 1,
      sz(o.dilation, 1),
      nd,
    ),
  );
}

/** x [N, C, L], w [O, C/groups, k]. */
export function conv1d(x: Tensor, w: Tensor, b?: OptT, o: ConvOptions = {}): Tensor {
  return conv(1, x, w, b, o);
}
/** x [N, C, H, W], w [O, C/groups, kh, kw]. */
export function conv2d(x: Tensor, w: Tensor, b?: OptT, o: ConvOptions = {}): Tensor {
  return conv(2, x, w, b, o);
}
/** x [N, C, D, H, W], w [O, C/groups, kd, kh, kw]. */
export function conv3d(x: Tensor, w: Tensor, b?: OptT, o: ConvOptions = {}): Tensor {
  return conv(3, x, w, b, o);
}
/** w [C, O/groups, kh, kw] (PyTorch's layout for transposed convolutions). */
export function convTranspose2d(x: Tensor, w: Tensor, b?: OptT, o: ConvTransposeOptions = {}): Tensor {
  return convT(2, x, w, b, o);
}
export function convTranspose3d(x: Tensor, w: Tensor, b?: OptT, o: ConvTransposeOptions = {}): Tensor {
  return convT(3, x, w, b, o);
}
export function convTranspose1d(x: Tensor, w: Tensor, b?: OptT, o: ConvTransposeOptions = {}): Tensor {
  return convT(1, x, w, b, o);
}

/** y = x w^T + b, w [out, in]. */
export function linear(x: Tensor, w: Tensor, b?: OptT): Tensor {
  return new Tensor(native.linear(x.handle, w.handle, h(b)));
}

/**
 * Batch normalisation over dim 1. In training, batch statistics are used and the running
 * statistics (when given) are updated in place with `momentum`.
 */
export function batchNorm(
  x: Tensor,
  runningMean: OptT,
  runningVar: OptT,
  weight: OptT = null,
  bias: OptT = null,
  training = false,
  momentum = 0.1,
  eps = 1e-5,
): Tensor {
  return new Tensor(native.batchNorm(x.handle, h(runningMean), h(runningVar), h(weight), h(bias), training, momentum, eps));
}

export function instanceNorm(
  x: Tensor,
  runningMean: OptT = null,
  runningVar: OptT = null,
  weight: OptT = null,
  bias: OptT = null,
  useInputStats = true,
  momentum = 0.1,
  eps = 1e-5,
): Tensor {
  return new Tensor(native.instanceNorm(x.handle, h(runningMean), h(runningVar), h(weight), h(bias), useInputStats, momentum, eps));
}

export function groupNorm(x: Tensor, groups: number, weight?: OptT, bias?: OptT, eps = 1e-5): Tensor {
  return new Tensor(native.groupNorm(x.handle, groups, h(weight), h(bias), eps));
}

export function layerNorm(x: Tensor, normalizedShape: number[], weight?: OptT, bias?: OptT, eps = 1e-5): Tensor {
  return new Tensor(native.layerNorm(x.handle, normalizedShape, h(weight), h(bias), eps));
}

function maxPool(nd: number, x: Tensor, k: Size, stride?: Size, padding: Size = 0, dilation: Size = 1, ceilMode = false): Tensor {
  const ks = sz(k, 1);
  return new Tensor(native.maxPool(x.handle, ks, stride === undefined ? ks : sz(stride, 1), sz(padding, 0), sz(dilation, 1), ceilMode, nd));
}
function avgPool(nd: number, x: Tensor, k: Size, stride?: Size, padding: Size = 0, ceilMode = false, countIncludePad = true): Tensor {
  const ks = sz(k, 1);
  return new Tensor(native.avgPool(x.handle, ks, stride === undefined ? ks : sz(stride, 1), sz(padding, 0), ceilMode, countIncludePad, nd));
}
/** stride defaults to the kernel size, like PyTorch. */
export function maxPool2d(x: Tensor, k: Size, stride?: Size, padding?: Size, dilation?: Size, ceilMode?: boolean): Tensor {
  return maxPool(2, x, k, stride, padding, dilation, ceilMode);
}
export function maxPool3d(x: Tensor, k: Size, stride?: Size, padding?: Size, dilation?: Size, ceilMode?: boolean): Tensor {
  return maxPool(3, x, k, stride, padding, dilation, ceilMode);
}
export function avgPool2d(x: Tensor, k: Size, stride?: Size, padding?: Size, ceilMode?: boolean, countIncludePad?: boolean): Tensor {
  return avgPool(2, x, k, stride, padding, ceilMode, countIncludePad);
}
export function avgPool3d(x: Tensor, k: Size, stride?: Size, padding?: Size, ceilMode?: boolean, countIncludePad?: boolean): Tensor {
  return avgPool(3, x, k, stride, padding, ceilMode, countIncludePad);
}
export function adaptiveAvgPool2d(x: Tensor, size: Size): Tensor {
  return new Tensor(native.adaptivePool(x.handle, sz(size, 1), false, 2));
}
export function adaptiveAvgPool3d(x: Tensor, size: Size): Tensor {
  return new Tensor(native.adaptivePool(x.handle, sz(size, 1), false, 3));
}
export function adaptiveMaxPool2d(x: Tensor, size: Size): Tensor {
  return new Tensor(native.adaptivePool(x.handle, sz(size, 1), true, 2));
}
export function adaptiveMaxPool3d(x: Tensor, size: Size): Tensor {
  return new Tensor(native.adaptivePool(x.handle, sz(size, 1), true, 3));
}

export interface InterpolateOptions {
  size?: Size;
  scaleFactor?: Size;
  mode?: 'nearest' | 'bilinear' | 'trilinear';
  alignCorners?: boolean;
}

/** Resizes [N, C, H, W] (nearest, bilinear) or [N, C, D, H, W] (nearest, trilinear). */
export function interpolate(x: Tensor, o: InterpolateOptions): Tensor {
  const mode = o.mode ?? 'nearest';
  const shape = x.shape;
  const nd = shape.length - 2;
  if (nd !== 2 && nd !== 3) throw new Error(`interpolate: x must be 4-D or 5-D, got [${shape.join(', ')}]`);
  if (mode === 'bilinear' && nd !== 2) throw new Error(`interpolate: bilinear needs a 4-D x, got [${shape.join(', ')}]`);
  if (mode === 'trilinear' && nd !== 3) throw new Error(`interpolate: trilinear needs a 5-D x, got [${shape.join(', ')}]`);
  if (mode !== 'nearest' && mode !== 'bilinear' && mode !== 'trilinear') throw new Error(`interpolate: unknown mode '${String(mode)}'`);
  if ((o.size === undefined) === (o.scaleFactor === undefined)) throw new Error('interpolate: give exactly one of size and scaleFactor');
  const fill = (v: Size, what: string): number[] => {
    const a = typeof v === 'number' ? new Array<number>(nd).fill(v) : v;
    if (a.length !== nd) throw new Error(`interpolate: ${what} must have ${nd} entries, got ${a.length}`);
    return a;
  };
  let size: number[];
  let scales: number[] | null = null;
  if (o.size !== undefined) {
    size = fill(o.size, 'size');
  } else {
    scales = fill(o.scaleFactor!, 'scaleFactor');
    size = scales.map((s, i) => Math.floor(shape[i + 2]! * s));
  }
  if (mode === 'nearest' && o.alignCorners) throw new Error('interpolate: alignCorners only applies to bilinear and trilinear');
  return new Tensor(
    native.interpolate(x.handle, size, mode === 'nearest' ? INTERP_MODE.nearest : INTERP_MODE.linear, o.alignCorners ?? false, scales),
  );
}

export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  return new Tensor(native.dropout(x.handle, p, training, false));
}
/** Zeroes whole channels (dim 1) of a 4-D input. */
export function dropout2d(x: Tensor, p = 0.5, training = true): Tensor {
  return new Tensor(native.dropout(x.handle, p, training, true));
}
export function dropout3d(x: Tensor, p = 0.5, training = true): Tensor {
  return new Tensor(native.dropout(x.handle, p, training, true));
}

export function softmax(x: Tensor, dim: number): Tensor {
  return new Tensor(native.softmax(x.handle, dim, false));
}
export function logSoftmax(x: Tensor, dim: number): Tensor {
  return new Tensor(native.softmax(x.handle, dim, true));
}
export function relu(x: Tensor): Tensor {
  return new Tensor(native.unary(UNARY_OP.relu, x.handle));
}
export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor {
  return new Tensor(native.leakyRelu(x.handle, negativeSlope));
}
export function gelu(x: Tensor): Tensor {
  return new Tensor(native.unary(UNARY_OP.gelu, x.handle));
}
export function sigmoid(x: Tensor): Tensor {
  return new Tensor(native.unary(UNARY_OP.sigmoid, x.handle));
}
export function tanh(x: Tensor): Tensor {
  return new Tensor(native.unary(UNARY_OP.tanh, x.handle));
}
export function silu(x: Tensor): Tensor {
  return new Tensor(native.unary(UNARY_OP.silu, x.handle));
}
export function softplus(x: Tensor): Tensor {
  return new Tensor(native.unary(UNARY_OP.softplus, x.handle));
}

export interface BceOptions {
  weight?: Tensor | null;
  posWeight?: Tensor | null;
  reduction?: Reduction;
}

/** Numerically stable sigmoid + binary cross-entropy; target has the logits' shape. */
export function binaryCrossEntropyWithLogits(logits: Tensor, target: Tensor, o: BceOptions = {}): Tensor {
  return new Tensor(
    native.bceWithLogits(
      logits.handle,
      target.handle,
      h(o.weight),
      h(o.posWeight),
      reductionCode('binaryCrossEntropyWithLogits', o.reduction),
    ),
  );
}

export interface CrossEntropyOptions {
  /** Per-class weights [C]. */
  weight?: Tensor | null;
  ignoreIndex?: number;
  reduction?: Reduction;
  labelSmoothing?: number;
}

/** logits [N, C, ...]; target int64 class indices [N, ...] or class probabilities [N, C, ...]. */
export function crossEntropy(logits: Tensor, target: Tensor, o: CrossEntropyOptions = {}): Tensor {
  return new Tensor(
    native.crossEntropy(
      logits.handle,
      target.handle,
      h(o.weight),
      reductionCode('crossEntropy', o.reduction),
      o.ignoreIndex ?? -100,
      o.labelSmoothing ?? 0,
    ),
  );
}

export function nllLoss(
  logProbs: Tensor,
  target: Tensor,
  o: { weight?: Tensor | null; ignoreIndex?: number; reduction?: Reduction } = {},
): Tensor {
  return new Tensor(
    native.nllLoss(logProbs.handle, target.handle, h(o.weight), reductionCode('nllLoss', o.reduction), o.ignoreIndex ?? -100),
  );
}

export function mseLoss(input: Tensor, target: Tensor, o: { reduction?: Reduction } = {}): Tensor {
  return new Tensor(native.pointLoss(POINT_LOSS.mseLoss, input.handle, target.handle, reductionCode('mseLoss', o.reduction), 1));
}

export function l1Loss(input: Tensor, target: Tensor, o: { reduction?: Reduction } = {}): Tensor {
  return new Tensor(native.pointLoss(POINT_LOSS.l1Loss, input.handle, target.handle, reductionCode('l1Loss', o.reduction), 1));
}

export function smoothL1Loss(input: Tensor, target: Tensor, o: { reduction?: Reduction; beta?: number } = {}): Tensor {
  return new Tensor(
    native.pointLoss(POINT_LOSS.smoothL1Loss, input.handle, target.handle, reductionCode('smoothL1Loss', o.reduction), o.beta ?? 1),
  );
}

/** int64 class indices -> int64 one-hot with a trailing class dim. */
export function oneHot(x: Tensor, numClasses = -1): Tensor {
  return new Tensor(native.oneHot(x.handle, numClasses));
}

export { where, pad, matmul, cat, stack } from './ops.ts';

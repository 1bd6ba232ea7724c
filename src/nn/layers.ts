/** Linear, dropout, pooling, resampling and activation layers: thin wrappers over `F`. */
import { F, zeros, type DType, type Tensor } from '../tensor/index.ts';
import { ntuple, type Size } from './conv.ts';
import { defaultLayerInit_ } from './init.ts';
import { Module } from './module.ts';

export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(inFeatures: number, outFeatures: number, o: { bias?: boolean; dtype?: DType } = {}) {
    super();
    if (!Number.isInteger(inFeatures) || inFeatures <= 0 || !Number.isInteger(outFeatures) || outFeatures <= 0) {
      throw new Error(`Linear: features must be positive integers, got in=${inFeatures} out=${outFeatures}`);
    }
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const dtype = o.dtype ?? 'float32';
    this.weight = this.registerParameter('weight', zeros([outFeatures, inFeatures], dtype));
    this.bias = this.registerParameter('bias', (o.bias ?? true) ? zeros([outFeatures], dtype) : null);
    this.resetParameters();
  }

  resetParameters(): void {
    defaultLayerInit_(this.weight, this.bias);
  }

  forward(x: Tensor): Tensor {
    if (x.ndim < 1 || x.shape[x.ndim - 1] !== this.inFeatures) {
      throw new Error(`Linear: expected input [..., ${this.inFeatures}], got [${x.shape.join(', ')}]`);
    }
    return F.linear(x, this.weight, this.bias ?? undefined);
  }

  protected override extraRepr(): string {
    return `${this.inFeatures}, ${this.outFeatures}${this.bias === null ? ', bias=false' : ''}`;
  }
}

abstract class _DropoutNd extends Module {
  readonly p: number;

  constructor(p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new Error(`${this.typeName}: p must be in [0, 1], got ${p}`);
    this.p = p;
  }

  protected override extraRepr(): string {
    return `p=${this.p}`;
  }
}

/** Zeroes elements with probability p in training and scales the rest by 1/(1-p); identity in eval. */
export class Dropout extends _DropoutNd {
  forward(x: Tensor): Tensor {
    return F.dropout(x, this.p, this.training);
  }
}

/** Zeroes whole channels of [N, C, H, W] input. */
export class Dropout2d extends _DropoutNd {
  forward(x: Tensor): Tensor {
    if (x.ndim !== 4) throw new Error(`Dropout2d: expected input [N, C, H, W], got [${x.shape.join(', ')}]`);
    return F.dropout2d(x, this.p, this.training);
  }
}

/** Zeroes whole channels of [N, C, D, H, W] input. */
export class Dropout3d extends _DropoutNd {
  forward(x: Tensor): Tensor {
    if (x.ndim !== 5) throw new Error(`Dropout3d: expected input [N, C, D, H, W], got [${x.shape.join(', ')}]`);
    return F.dropout3d(x, this.p, this.training);
  }
}

export interface PoolOptions {
  /** Default: the kernel size. */
  stride?: Size;
  padding?: Size;
}

abstract class _PoolNd extends Module {
  readonly kernelSize: number[];
  readonly stride: number[];
  readonly padding: number[];

  protected constructor(
    protected readonly nd: number,
    kernelSize: Size,
    o: PoolOptions,
  ) {
    super();
    this.kernelSize = ntuple(kernelSize, nd, `${this.typeName} kernelSize`, 1);
    this.stride = ntuple(o.stride ?? this.kernelSize, nd, `${this.typeName} stride`, 1);
    this.padding = ntuple(o.padding ?? 0, nd, `${this.typeName} padding`);
    if (this.padding.some((p, i) => p > this.kernelSize[i]! / 2)) {
      throw new Error(`${this.typeName}: padding must be at most half the kernel size`);
    }
  }

  protected checkInput(x: Tensor): void {
    if (x.ndim !== this.nd + 2) {
      throw new Error(`${this.typeName}: expected a ${this.nd + 2}-d input [N, C, ...], got [${x.shape.join(', ')}]`);
    }
  }

  protected override extraRepr(): string {
    return `kernelSize=[${this.kernelSize.join(', ')}], stride=[${this.stride.join(', ')}], padding=[${this.padding.join(', ')}]`;
  }
}

export class MaxPool2d extends _PoolNd {
  constructor(kernelSize: Size, o: PoolOptions = {}) {
    super(2, kernelSize, o);
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x);
    return F.maxPool2d(x, this.kernelSize, this.stride, this.padding);
  }
}

export class MaxPool3d extends _PoolNd {
  constructor(kernelSize: Size, o: PoolOptions = {}) {
    super(3, kernelSize, o);
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x);
    return F.maxPool3d(x, this.kernelSize, this.stride, this.padding);
  }
}

export class AvgPool2d extends _PoolNd {
  constructor(kernelSize: Size, o: PoolOptions = {}) {
    super(2, kernelSize, o);
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x);
    return F.avgPool2d(x, this.kernelSize, this.stride, this.padding);
  }
}

export class AvgPool3d extends _PoolNd {
  constructor(kernelSize: Size, o: PoolOptions = {}) {
    super(3, kernelSize, o);
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x);
    return F.avgPool3d(x, this.kernelSize, this.stride, this.padding);
  }
}

export class AdaptiveAvgPool2d extends Module {
  readonly outputSize: number[];

  constructor(outputSize: Size) {
    super();
    this.outputSize = ntuple(outputSize, 2, 'AdaptiveAvgPool2d outputSize', 1);
  }

  forward(x: Tensor): Tensor {
    if (x.ndim !== 4) throw new Error(`AdaptiveAvgPool2d: expected input [N, C, H, W], got [${x.shape.join(', ')}]`);
    return F.adaptiveAvgPool2d(x, this.outputSize);
  }

  protected override extraRepr(): string {
    return `outputSize=[${this.outputSize.join(', ')}]`;
  }
}

export class AdaptiveAvgPool3d extends Module {
  readonly outputSize: number[];

  constructor(outputSize: Size) {
    super();
    this.outputSize = ntuple(outputSize, 3, 'AdaptiveAvgPool3d outputSize', 1);
  }

  forward(x: Tensor): Tensor {
    if (x.ndim !== 5) throw new Error(`AdaptiveAvgPool3d: expected input [N, C, D, H, W], got [${x.shape.join(', ')}]`);
    return F.adaptiveAvgPool3d(x, this.outputSize);
  }

  protected override extraRepr(): string {
    return `outputSize=[${this.outputSize.join(', ')}]`;
  }
}

export type UpsampleMode = 'nearest' | 'bilinear' | 'trilinear';

export interface UpsampleOptions {
  size?: Size;
  scaleFactor?: number | readonly number[];
  mode?: UpsampleMode;
  alignCorners?: boolean;
}

export class Upsample extends Module {
  readonly size: number[] | undefined;
  readonly scaleFactor: number[] | number | undefined;
  readonly mode: UpsampleMode;
  readonly alignCorners: boolean | undefined;

  constructor(o: UpsampleOptions) {
    super();
    if ((o.size === undefined) === (o.scaleFactor === undefined)) {
      throw new Error('Upsample: give exactly one of size and scaleFactor');
    }
    this.mode = o.mode ?? 'nearest';
    if (this.mode === 'nearest' && o.alignCorners !== undefined) {
      throw new Error('Upsample: alignCorners only applies to bilinear and trilinear modes');
    }
    this.size = o.size === undefined ? undefined : typeof o.size === 'number' ? [o.size] : [...o.size];
    this.scaleFactor = typeof o.scaleFactor === 'number' || o.scaleFactor === undefined ? o.scaleFactor : [...o.scaleFactor];
    this.alignCorners = o.alignCorners;
  }

  forward(x: Tensor): Tensor {
    const nd = x.ndim - 2;
    const need = this.mode === 'bilinear' ? 2 : this.mode === 'trilinear' ? 3 : nd;
    if (nd < 1 || nd !== need) throw new Error(`Upsample(${this.mode}): input [${x.shape.join(', ')}] has the wrong number of dimensions`);
    const size = this.size?.length === 1 ? new Array<number>(nd).fill(this.size[0]!) : this.size;
    const scaleFactor = typeof this.scaleFactor === 'number' ? new Array<number>(nd).fill(this.scaleFactor) : this.scaleFactor;
    return F.interpolate(x, {
      ...(size !== undefined ? { size } : {}),
      ...(scaleFactor !== undefined ? { scaleFactor } : {}),
      mode: this.mode,
      ...(this.alignCorners !== undefined ? { alignCorners: this.alignCorners } : {}),
    });
  }

  protected override extraRepr(): string {
    const what = this.size !== undefined ? `size=[${this.size.join(', ')}]` : `scaleFactor=${JSON.stringify(this.scaleFactor)}`;
    return `${what}, mode='${this.mode}'`;
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return F.relu(x);
  }
}

export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }

  forward(x: Tensor): Tensor {
    return F.leakyRelu(x, this.negativeSlope);
  }

  protected override extraRepr(): string {
    return `negativeSlope=${this.negativeSlope}`;
  }
}

export class GELU extends Module {
  forward(x: Tensor): Tensor {
    return F.gelu(x);
  }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return F.sigmoid(x);
  }
}

/**
 * Returns its input (the same tensor object): the caller must not dispose both the input and the
 * output of a forward pass through Identity.
 */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

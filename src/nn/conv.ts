/**
 * Convolutions. `_ConvNd` holds the hyper-parameters and the weights; the subclasses only fix the
 * number of spatial dimensions and call the functional op (as in `torch/nn/modules/conv.py`).
 */
import { F, pad, zeros, type DType, type Tensor } from '../tensor/index.ts';
import { defaultLayerInit_ } from './init.ts';
import { Module } from './module.ts';

export type Size = number | readonly number[];

export interface ConvOptions {
  stride?: Size;
  /** Zero padding per side, or 'valid' (none) / 'same' (output size = input size; stride 1 only). */
  padding?: Size | 'same' | 'valid';
  dilation?: Size;
  groups?: number;
  bias?: boolean;
  dtype?: DType;
}

export interface ConvTransposeOptions {
  stride?: Size;
  padding?: Size;
  outputPadding?: Size;
  dilation?: Size;
  groups?: number;
  bias?: boolean;
  dtype?: DType;
}

/** Expand a size to one value per spatial dimension, checking it. */
export function ntuple(v: Size, n: number, what: string, min = 0): number[] {
  const out = typeof v === 'number' ? new Array<number>(n).fill(v) : [...v];
  if (out.length !== n || !out.every((x) => Number.isInteger(x) && x >= min)) {
    throw new Error(`${what} must be an integer >= ${min} or ${n} of them, got ${JSON.stringify(v)}`);
  }
  return out;
}

export abstract class _ConvNd extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: number[];
  readonly stride: number[];
  /** Symmetric padding per spatial dimension, or 'same' (worked out per call, maybe asymmetric). */
  readonly padding: number[] | 'same';
  readonly dilation: number[];
  readonly groups: number;
  readonly transposed: boolean;
  readonly outputPadding: number[];
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  protected constructor(
    nd: number,
    inChannels: number,
    outChannels: number,
    kernelSize: Size,
    transposed: boolean,
    o: ConvOptions & { outputPadding?: Size },
  ) {
    super();
    const groups = o.groups ?? 1;
    if (!Number.isInteger(inChannels) || inChannels <= 0 || !Number.isInteger(outChannels) || outChannels <= 0) {
      throw new Error(`${this.typeName}: channels must be positive integers, got in=${inChannels} out=${outChannels}`);
    }
    if (!Number.isInteger(groups) || groups <= 0 || inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new Error(`${this.typeName}: groups=${groups} must divide in=${inChannels} and out=${outChannels}`);
    }
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = ntuple(kernelSize, nd, `${this.typeName} kernelSize`, 1);
    this.stride = ntuple(o.stride ?? 1, nd, `${this.typeName} stride`, 1);
    this.dilation = ntuple(o.dilation ?? 1, nd, `${this.typeName} dilation`, 1);
    this.groups = groups;
    this.transposed = transposed;
    this.outputPadding = ntuple(o.outputPadding ?? 0, nd, `${this.typeName} outputPadding`);
    const p = o.padding ?? 0;
    if (p === 'same') {
      if (this.stride.some((s) => s !== 1)) throw new Error(`${this.typeName}: padding='same' needs stride 1`);
      this.padding = 'same';
    } else {
      this.padding = ntuple(p === 'valid' ? 0 : p, nd, `${this.typeName} padding`);
    }
    this.outputPadding.forEach((op, i) => {
      if (op >= Math.max(this.stride[i]!, this.dilation[i]!)) {
        throw new Error(`${this.typeName}: outputPadding must be smaller than stride or dilation`);
      }
    });
    // Transposed weights are [in, out/groups, ...k]; ordinary ones [out, in/groups, ...k].
    const shape = transposed
      ? [inChannels, outChannels / groups, ...this.kernelSize]
      : [outChannels, inChannels / groups, ...this.kernelSize];
    const dtype = o.dtype ?? 'float32';
    this.weight = this.registerParameter('weight', zeros(shape, dtype));
    this.bias = this.registerParameter('bias', (o.bias ?? true) ? zeros([outChannels], dtype) : null);
    this.resetParameters();
  }

  resetParameters(): void {
    defaultLayerInit_(this.weight, this.bias);
  }

  protected checkInput(x: Tensor): void {
    const nd = this.kernelSize.length;
    if (x.ndim !== nd + 2 || x.shape[1] !== this.inChannels) {
      throw new Error(
        `${this.typeName}: expected input [N, ${this.inChannels}, ${new Array(nd).fill('*').join(', ')}], got [${x.shape.join(', ')}]`,
      );
    }
  }

  /**
   * 'same' padding as (symmetric padding for the op, input padded beforehand or null). An even
   * total is split evenly; an odd one puts the extra element on the far side, as PyTorch does.
   */
  protected samePadding(x: Tensor): { sym: number[]; padded: Tensor | null } {
    if (this.padding !== 'same') return { sym: this.padding, padded: null };
    const total = this.kernelSize.map((k, i) => this.dilation[i]! * (k - 1));
    const sym = total.map((t) => Math.floor(t / 2));
    if (total.every((t) => t % 2 === 0)) return { sym, padded: null };
    // F.pad wants [lastBefore, lastAfter, secondLastBefore, ...].
    const extra: number[] = [];
    for (let i = total.length - 1; i >= 0; i--) extra.push(0, total[i]! % 2);
    return { sym, padded: pad(x, extra) };
  }

  /** The forward pass of an ordinary convolution through its functional op (2D or 3D). */
  protected convolve(x: Tensor, op: typeof F.conv2d): Tensor {
    this.checkInput(x);
    const { sym, padded } = this.samePadding(x);
    try {
      return op(padded ?? x, this.weight, this.bias ?? undefined, {
        stride: this.stride,
        padding: sym,
        dilation: this.dilation,
        groups: this.groups,
      });
    } finally {
      padded?.dispose();
    }
  }

  /** The forward pass of a transposed convolution (its options cannot ask for 'same' padding). */
  protected convolveTransposed(x: Tensor, op: typeof F.convTranspose2d): Tensor {
    this.checkInput(x);
    return op(x, this.weight, this.bias ?? undefined, {
      stride: this.stride,
      padding: this.padding as number[],
      outputPadding: this.outputPadding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }

  protected override extraRepr(): string {
    const parts = [`${this.inChannels}, ${this.outChannels}`, `kernelSize=[${this.kernelSize.join(', ')}]`];
    if (this.stride.some((s) => s !== 1)) parts.push(`stride=[${this.stride.join(', ')}]`);
    if (this.padding === 'same') parts.push(`padding='same'`);
    else if (this.padding.some((p) => p !== 0)) parts.push(`padding=[${this.padding.join(', ')}]`);
    if (this.dilation.some((d) => d !== 1)) parts.push(`dilation=[${this.dilation.join(', ')}]`);
    if (this.outputPadding.some((d) => d !== 0)) parts.push(`outputPadding=[${this.outputPadding.join(', ')}]`);
    if (this.groups !== 1) parts.push(`groups=${this.groups}`);
    if (this.bias === null) parts.push('bias=false');
    return parts.join(', ');
  }
}

export class Conv2d extends _ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: Size, options: ConvOptions = {}) {
    super(2, inChannels, outChannels, kernelSize, false, options);
  }

  forward(x: Tensor): Tensor {
    return this.convolve(x, F.conv2d);
  }
}

export class Conv3d extends _ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: Size, options: ConvOptions = {}) {
    super(3, inChannels, outChannels, kernelSize, false, options);
  }

  forward(x: Tensor): Tensor {
    return this.convolve(x, F.conv3d);
  }
}

export class ConvTranspose2d extends _ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: Size, options: ConvTransposeOptions = {}) {
    super(2, inChannels, outChannels, kernelSize, true, options);
  }

  forward(x: Tensor): Tensor {
    return this.convolveTransposed(x, F.convTranspose2d);
  }
}

export class ConvTranspose3d extends _ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: Size, options: ConvTransposeOptions = {}) {
    super(3, inChannels, outChannels, kernelSize, true, options);
  }

  forward(x: Tensor): Tensor {
    return this.convolveTransposed(x, F.convTranspose3d);
  }
}

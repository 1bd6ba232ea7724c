/**
 * Building blocks shared by the U-Net, the residual U-Net and the joint model.
 * Forward passes do not dispose their intermediates: callers run them inside `tidy()`, and
 * autograd keeps what backward needs anyway.
 */
import {
  Module,
  type TensorModule,
  Conv2d,
  BatchNorm2d,
  InstanceNorm2d,
  GroupNorm,
  ConvTranspose2d,
  Sequential,
  Identity,
} from '../nn/index.ts';
import { cat, type Tensor } from '../tensor/index.ts';

export type NormKind = 'batch' | 'instance' | 'group';

export function makeNorm(kind: NormKind, channels: number): Module {
  switch (kind) {
    case 'batch':
      return new BatchNorm2d(channels);
    case 'instance':
      return new InstanceNorm2d(channels, { affine: true });
    case 'group':
      return new GroupNorm(Math.min(8, channels), channels);
  }
}

/** conv3x3 (stride s) -> norm -> ReLU. */
export class ConvNormAct extends Module {
  readonly conv: Conv2d;
  readonly norm: Module;
  constructor(inCh: number, outCh: number, norm: NormKind, stride = 1, kernel = 3) {
    super();
    this.conv = this.registerModule('conv', new Conv2d(inCh, outCh, kernel, { stride, padding: (kernel - 1) / 2, bias: false }));
    this.norm = this.registerModule('norm', makeNorm(norm, outCh));
  }
  forward(x: Tensor): Tensor {
    return (this.norm as TensorModule).forward(this.conv.forward(x)).relu();
  }
}

/** Two ConvNormAct: the U-Net block. The first one may downsample with stride 2. */
export class DoubleConv extends Module {
  readonly a: ConvNormAct;
  readonly b: ConvNormAct;
  constructor(inCh: number, outCh: number, norm: NormKind, stride = 1) {
    super();
    this.a = this.registerModule('a', new ConvNormAct(inCh, outCh, norm, stride));
    this.b = this.registerModule('b', new ConvNormAct(outCh, outCh, norm));
  }
  forward(x: Tensor): Tensor {
    return this.b.forward(this.a.forward(x));
  }
}

/**
 * Pre-activation-free basic residual block (He et al. 2016): conv-norm-ReLU-conv-norm plus a
 * shortcut (1x1 conv + norm when the shape changes), then ReLU.
 */
export class ResidualBlock extends Module {
  readonly conv1: Conv2d;
  readonly norm1: Module;
  readonly conv2: Conv2d;
  readonly norm2: Module;
  readonly shortcut: Module;
  constructor(inCh: number, outCh: number, norm: NormKind, stride = 1) {
    super();
    this.conv1 = this.registerModule('conv1', new Conv2d(inCh, outCh, 3, { stride, padding: 1, bias: false }));
    this.norm1 = this.registerModule('norm1', makeNorm(norm, outCh));
    this.conv2 = this.registerModule('conv2', new Conv2d(outCh, outCh, 3, { padding: 1, bias: false }));
    this.norm2 = this.registerModule('norm2', makeNorm(norm, outCh));
    this.shortcut = this.registerModule(
      'shortcut',
      stride !== 1 || inCh !== outCh
        ? new Sequential(new Conv2d(inCh, outCh, 1, { stride, bias: false }), makeNorm(norm, outCh))
        : new Identity(),
    );
  }
  forward(x: Tensor): Tensor {
    const h = (this.norm1 as TensorModule).forward(this.conv1.forward(x)).relu();
    const r = (this.norm2 as TensorModule).forward(this.conv2.forward(h));
    return r.add((this.shortcut as TensorModule).forward(x)).relu();
  }
}

export type BlockKind = 'double' | 'residual';

export function makeBlock(kind: BlockKind, inCh: number, outCh: number, norm: NormKind, stride = 1): TensorModule {
  return kind === 'residual' ? new ResidualBlock(inCh, outCh, norm, stride) : new DoubleConv(inCh, outCh, norm, stride);
}

/** Decoder step: transposed-conv upsampling x2, concatenation with the skip, a block. */
export class UpBlock extends Module<[Tensor, Tensor], Tensor> {
  readonly up: ConvTranspose2d;
  readonly block: TensorModule;
  constructor(inCh: number, skipCh: number, outCh: number, kind: BlockKind, norm: NormKind) {
    super();
    this.up = this.registerModule('up', new ConvTranspose2d(inCh, skipCh, 2, { stride: 2 }));
    this.block = this.registerModule('block', makeBlock(kind, 2 * skipCh, outCh, norm));
  }
  forward(x: Tensor, skip: Tensor): Tensor {
    return this.block.forward(cat([this.up.forward(x), skip], 1));
  }
}

/**
 * The segmentation baselines: U-Net (Ronneberger et al. 2015; two conv-norm-ReLU per level) and
 * residual U-Net (residual blocks, stride-2 convolutions to downsample). Both: transposed-conv
 * upsampling, skip concatenation, a 1x1 head giving one foreground logit per pixel.
 */
import { Module, Conv2d, MaxPool2d, ModuleList, type TensorModule } from '../nn/index.ts';
import type { Tensor } from '../tensor/index.ts';
import { makeBlock, UpBlock, type BlockKind } from './blocks.ts';
import { validateModelConfig, type ResUNetConfig, type UNetConfig } from './config.ts';
import type { SegmentationOutput } from './types.ts';

export class EncoderDecoder extends Module<[Tensor], SegmentationOutput> {
  readonly config: UNetConfig | ResUNetConfig;
  readonly encoder: ModuleList<TensorModule>;
  readonly decoder: ModuleList<UpBlock>;
  readonly head: Conv2d;
  private readonly pool: MaxPool2d | null;

  constructor(config: UNetConfig | ResUNetConfig) {
    super();
    validateModelConfig(config);
    this.config = config;
    const kind: BlockKind = config.arch === 'resunet' ? 'residual' : 'double';
    const f = config.features;
    // U-Net downsamples with max pooling; the residual U-Net with a stride-2 first convolution.
    this.pool = kind === 'double' ? new MaxPool2d(2) : null;
    this.encoder = this.registerModule('encoder', new ModuleList<TensorModule>());
    for (let i = 0; i < f.length; i++) {
      const stride = i > 0 && kind === 'residual' ? 2 : 1;
      this.encoder.append(makeBlock(kind, i === 0 ? config.inChannels : f[i - 1]!, f[i]!, config.norm, stride));
    }
    this.decoder = this.registerModule('decoder', new ModuleList<UpBlock>());
    for (let i = f.length - 1; i > 0; i--) this.decoder.append(new UpBlock(f[i]!, f[i - 1]!, f[i - 1]!, kind, config.norm));
    this.head = this.registerModule('head', new Conv2d(f[0]!, 1, 1));
  }

  forward(x: Tensor): SegmentationOutput {
    const skips: Tensor[] = [];
    let h = x;
    let i = 0;
    for (const block of this.encoder) {
      if (i++ > 0 && this.pool) h = this.pool.forward(h);
      h = block.forward(h);
      skips.push(h);
    }
    let j = 0;
    for (const up of this.decoder) h = up.forward(h, skips[skips.length - 2 - j++]!);
    const logits = this.head.forward(h);
    return { maskLogits: logits, rawMaskLogits: logits, classLogits: null };
  }
}

export class UNet extends EncoderDecoder {
  constructor(config: Omit<UNetConfig, 'arch'>) {
    super({ ...config, arch: 'unet' });
  }
}

export class ResUNet extends EncoderDecoder {
  constructor(config: Omit<ResUNetConfig, 'arch'>) {
    super({ ...config, arch: 'resunet' });
  }
}

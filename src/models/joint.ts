/**
 * The joint segmentation-classification network of the method (docs/method.md):
 * - a residual U-Net segmentation branch;
 * - a ResNet classification branch over the same input, at the same scales, predicting the
 *   nodule's size class in the slice (0 = none, small, medium, large);
 * - a feature combination block (FCB) at every encoder scale: the two branches' maps are
 *   concatenated, mixed by a 1x1 convolution with normalisation and ReLU, and the result is added
 *   back to both branches (our reading: the paper does not give the block's exact form);
 * - a Soft Threshold Dynamics layer on the segmentation logits whose volume constraint comes
 *   from the classifier's size class (the size prior).
 * Each part can be switched off for the ablations (config.fcb, config.std, config.sizePrior).
 */
import { Module, Conv2d, Linear, Dropout, ModuleList, type TensorModule } from '../nn/index.ts';
import { cat, tensor, noGrad, F, type Tensor } from '../tensor/index.ts';
import { makeNorm, ResidualBlock, UpBlock } from './blocks.ts';
import { validateModelConfig, type JointConfig, type SizePriorConfig } from './config.ts';
import { SoftThresholdDynamics, type AreaBounds } from './std.ts';
import type { SegmentationOutput } from './types.ts';

/**
 * Feature combination block: both branches' maps concatenated, mixed by a 1x1 convolution with
 * normalisation and ReLU into each branch's width, and added back to each branch (residual, so a
 * block that learns nothing useful can fade to zero).
 */
export class FeatureCombinationBlock extends Module<[Tensor, Tensor], [Tensor, Tensor]> {
  readonly toSeg: Conv2d;
  readonly segNorm: TensorModule;
  readonly toCls: Conv2d;
  readonly clsNorm: TensorModule;
  constructor(segChannels: number, clsChannels: number, norm: JointConfig['norm']) {
    super();
    this.toSeg = this.registerModule('toSeg', new Conv2d(segChannels + clsChannels, segChannels, 1, { bias: false }));
    this.segNorm = this.registerModule('segNorm', makeNorm(norm, segChannels));
    this.toCls = this.registerModule('toCls', new Conv2d(segChannels + clsChannels, clsChannels, 1, { bias: false }));
    this.clsNorm = this.registerModule('clsNorm', makeNorm(norm, clsChannels));
  }
  forward(seg: Tensor, cls: Tensor): [Tensor, Tensor] {
    const both = cat([seg, cls], 1);
    const s = this.segNorm.forward(this.toSeg.forward(both)).relu();
    const c = this.clsNorm.forward(this.toCls.forward(both)).relu();
    return [seg.add(s), cls.add(c)];
  }
}

export interface JointNetOptions {
  /**
   * Foreground area interval per size class, in pixels of the input patch: [min, max] for classes
   * 0..numClasses-1. Required when config.sizePrior is set (see `classAreaIntervalsPx`).
   */
  classAreaIntervalsPx?: Array<[number, number]>;
}

/**
 * Area intervals (pixels) of the size classes: none = [0, 0], small = [1 px, e0], medium = [e0, e1],
 * large = [e1, whole patch], from the size bins' edges (mm2) and the patch's pixel spacing.
 */
export function classAreaIntervalsPx(edgesMm2: readonly [number, number], spacingMm: number, patchSize: number): Array<[number, number]> {
  const px = (mm2: number) => mm2 / (spacingMm * spacingMm);
  const all = patchSize * patchSize;
  return [
    [0, 0],
    [1, px(edgesMm2[0])],
    [px(edgesMm2[0]), px(edgesMm2[1])],
    [px(edgesMm2[1]), all],
  ];
}

export class JointNet extends Module<[Tensor], SegmentationOutput> {
  readonly config: JointConfig;
  readonly segEncoder: ModuleList<ResidualBlock>;
  readonly clsEncoder: ModuleList<ResidualBlock>;
  readonly fcbs: ModuleList<FeatureCombinationBlock> | null;
  readonly decoder: ModuleList<UpBlock>;
  readonly head: Conv2d;
  readonly classifierDropout: Dropout;
  readonly classifier: Linear;
  /** Per-slice nodule type from the classifier's pooled features (config.typeClasses > 0). */
  readonly typeClassifier: Linear | null;
  readonly std: SoftThresholdDynamics | null;
  readonly intervalsPx: Array<[number, number]> | null;

  constructor(config: JointConfig, options: JointNetOptions = {}) {
    super();
    validateModelConfig(config);
    this.config = config;
    const f = config.features;
    const cf = config.clsFeatures;
    this.segEncoder = this.registerModule('segEncoder', new ModuleList<ResidualBlock>());
    this.clsEncoder = this.registerModule('clsEncoder', new ModuleList<ResidualBlock>());
    for (let i = 0; i < f.length; i++) {
      const inCh = i === 0 ? config.inChannels : f[i - 1]!;
      this.segEncoder.append(new ResidualBlock(inCh, f[i]!, config.norm, i === 0 ? 1 : 2));
      this.clsEncoder.append(new ResidualBlock(i === 0 ? config.inChannels : cf[i - 1]!, cf[i]!, config.norm, i === 0 ? 1 : 2));
    }
    this.fcbs = config.fcb
      ? this.registerModule('fcbs', new ModuleList(f.map((c, i) => new FeatureCombinationBlock(c, cf[i]!, config.norm))))
      : null;
    this.decoder = this.registerModule('decoder', new ModuleList<UpBlock>());
    for (let i = f.length - 1; i > 0; i--) this.decoder.append(new UpBlock(f[i]!, f[i - 1]!, f[i - 1]!, 'residual', config.norm));
    this.head = this.registerModule('head', new Conv2d(f[0]!, 1, 1));
    this.classifierDropout = this.registerModule('classifierDropout', new Dropout(config.classifierDropout));
    this.classifier = this.registerModule('classifier', new Linear(cf[cf.length - 1]!, config.numClasses));
    // Registered only when asked for, so that files without it still load strictly.
    this.typeClassifier = config.typeClasses
      ? this.registerModule('typeClassifier', new Linear(cf[cf.length - 1]!, config.typeClasses))
      : null;
    this.std = config.std
      ? this.registerModule(
          'std',
          new SoftThresholdDynamics(config.std, { iterations: config.std.iterations, kernelHalfSize: config.std.kernelHalfSize }),
        )
      : null;
    if (config.sizePrior) {
      const iv = options.classAreaIntervalsPx;
      if (!iv || iv.length !== config.numClasses) {
        throw new RangeError(`JointNet: sizePrior needs classAreaIntervalsPx with ${config.numClasses} intervals`);
      }
      this.intervalsPx = iv.map(([a, b]) => [a, b]);
    } else {
      this.intervalsPx = null;
    }
  }

  forward(x: Tensor): SegmentationOutput {
    const skips: Tensor[] = [];
    let s = x;
    let c = x;
    for (let i = 0; i < this.segEncoder.length; i++) {
      s = this.segEncoder.at(i).forward(s);
      c = this.clsEncoder.at(i).forward(c);
      if (this.fcbs) [s, c] = this.fcbs.at(i).forward(s, c);
      skips.push(s);
    }
    let h = s;
    let j = 0;
    for (const up of this.decoder) h = up.forward(h, skips[skips.length - 2 - j++]!);
    const raw = this.head.forward(h);
    const pooled = c.mean([2, 3]);
    const dropped = this.classifierDropout.forward(pooled);
    const classLogits = this.classifier.forward(dropped);
    const typeLogits = this.typeClassifier ? { typeLogits: this.typeClassifier.forward(dropped) } : {};
    if (!this.std) return { maskLogits: raw, rawMaskLogits: raw, classLogits, ...typeLogits };
    const bounds =
      this.intervalsPx && this.config.sizePrior
        ? areaBoundsFromClasses(classLogits, this.intervalsPx, this.config.sizePrior, raw.shape[2]! * raw.shape[3]!)
        : undefined;
    const maskLogits = this.std.forward(raw, bounds);
    return { maskLogits, rawMaskLogits: raw, classLogits, ...typeLogits };
  }
}

/**
 * The size prior: per-image area bounds from the classifier's probabilities (no gradient: the
 * classifier learns from its own cross-entropy, the constraint only uses its answer).
 */
export function areaBoundsFromClasses(
  classLogits: Tensor,
  intervalsPx: ReadonlyArray<readonly [number, number]>,
  prior: SizePriorConfig,
  patchAreaPx: number,
): AreaBounds {
  const probs = noGrad(() => F.softmax(classLogits.detach(), 1).toTypedArray() as Float32Array);
  const n = classLogits.shape[0]!;
  const k = classLogits.shape[1]!;
  const min = new Float32Array(n);
  const max = new Float32Array(n);
  const widened = intervalsPx.map(([a, b]) => [a * (1 - prior.margin), Math.min(patchAreaPx, b * (1 + prior.margin))] as const);
  for (let i = 0; i < n; i++) {
    const p = probs.subarray(i * k, (i + 1) * k);
    if (prior.mode === 'expected') {
      let lo = 0,
        hi = 0;
      for (let c = 0; c < k; c++) {
        lo += p[c]! * widened[c]![0];
        hi += p[c]! * widened[c]![1];
      }
      min[i] = lo;
      max[i] = hi;
    } else {
      let best = 0;
      for (let c = 1; c < k; c++) if (p[c]! > p[best]!) best = c;
      if (p[best]! >= prior.confidence) {
        min[i] = widened[best]![0];
        max[i] = widened[best]![1];
      } else {
        min[i] = 0;
        max[i] = patchAreaPx;
      }
    }
  }
  return { min: tensor(min, [n]), max: tensor(max, [n]) };
}

/**
 * Model configurations. A config is saved in the weights file's metadata, so a file alone
 * rebuilds its model (see `src/models/io.ts`).
 */
import type { NormKind } from './blocks.ts';

export interface StdConfig {
  /** Iterations T (reference: 10). */
  iterations: number;
  /** Gaussian kernel half-size in pixels (reference: 3). */
  kernelHalfSize: number;
  /** Initial values of the learnable scalars (reference: sigma 10, lambda 5, eps 1). */
  sigma: number;
  lambda: number;
  eps: number;
}

export interface SizePriorConfig {
  /**
   * 'argmax': the interval of the most probable class, applied when its probability is at least
   * `confidence`; 'expected': the interval's bounds averaged under the class probabilities.
   */
  mode: 'argmax' | 'expected';
  confidence: number;
  /** Relative widening of each class's area interval (0.25 = 25% each side). */
  margin: number;
}

interface CommonConfig {
  /** Input channels: 1 for 2D, k for a 2.5D stack of k slices. */
  inChannels: number;
  /** Channels per resolution level; length = levels (the last is the bottleneck). */
  features: number[];
  norm: NormKind;
}

export interface UNetConfig extends CommonConfig {
  arch: 'unet';
}

export interface ResUNetConfig extends CommonConfig {
  arch: 'resunet';
}

export interface JointConfig extends CommonConfig {
  arch: 'joint';
  /**
   * Channels of the classification branch per level (same length as features). A narrower
   * classifier costs a quarter of the segmentation encoder at half width.
   */
  clsFeatures: number[];
  /** Size classes predicted by the classification branch (0 = no nodule, then small/medium/large). */
  numClasses: number;
  /** Feature combination blocks at every encoder scale (false = the "without FCB" ablation). */
  fcb: boolean;
  /** Soft Threshold Dynamics layer (null = the "without STD" ablation). */
  std: StdConfig | null;
  /** Volume constraint from the classifier's size class (null = "without size prior"). */
  sizePrior: SizePriorConfig | null;
  /** Dropout before the classifier's linear layer. */
  classifierDropout: number;
  /**
   * Nodule types predicted per slice from the same pooled features as the size class (0 or
   * absent = no type head; 3 = solid, part-solid, ground-glass): an auxiliary target that makes
   * the classification branch, and the nodule-level heads that read it, learn the type.
   */
  typeClasses?: number;
}

export type ModelConfig = UNetConfig | ResUNetConfig | JointConfig;

export const DEFAULT_STD: StdConfig = { iterations: 10, kernelHalfSize: 3, sigma: 10, lambda: 5, eps: 1 };
export const DEFAULT_SIZE_PRIOR: SizePriorConfig = { mode: 'argmax', confidence: 0.8, margin: 0.25 };

export function defaultJointConfig(overrides: Partial<JointConfig> = {}): JointConfig {
  return {
    arch: 'joint',
    inChannels: 1,
    features: [16, 32, 64, 128, 256],
    clsFeatures: [8, 16, 32, 64, 128],
    norm: 'batch',
    numClasses: 4,
    fcb: true,
    std: { ...DEFAULT_STD },
    sizePrior: { ...DEFAULT_SIZE_PRIOR },
    classifierDropout: 0.2,
    ...overrides,
  };
}

/** Throws a RangeError naming the option when a config cannot build a network. */
export function validateModelConfig(c: ModelConfig): void {
  const where = `model config (${c.arch})`;
  if (!Number.isInteger(c.inChannels) || c.inChannels < 1)
    throw new RangeError(`${where}: inChannels must be a positive integer, got ${c.inChannels}`);
  if (!Array.isArray(c.features) || c.features.length < 2)
    throw new RangeError(`${where}: features needs at least 2 levels, got ${JSON.stringify(c.features)}`);
  for (const f of c.features)
    if (!Number.isInteger(f) || f < 1)
      throw new RangeError(`${where}: features must be positive integers, got ${JSON.stringify(c.features)}`);
  if (!['batch', 'instance', 'group'].includes(c.norm))
    throw new RangeError(`${where}: norm must be batch, instance or group, got ${String(c.norm)}`);
  if (c.arch === 'joint') {
    if (
      !Array.isArray(c.clsFeatures) ||
      c.clsFeatures.length !== c.features.length ||
      c.clsFeatures.some((f) => !Number.isInteger(f) || f < 1)
    ) {
      throw new RangeError(
        `${where}: clsFeatures must be positive integers, one per level of features (${c.features.length}), got ${JSON.stringify(c.clsFeatures)}`,
      );
    }
    if (!Number.isInteger(c.numClasses) || c.numClasses < 2) throw new RangeError(`${where}: numClasses must be >= 2, got ${c.numClasses}`);
    if (c.sizePrior && !c.std) throw new RangeError(`${where}: sizePrior needs the STD layer (std must not be null)`);
    if (c.std) {
      if (!Number.isInteger(c.std.iterations) || c.std.iterations < 0)
        throw new RangeError(`${where}: std.iterations must be a non-negative integer`);
      if (!Number.isInteger(c.std.kernelHalfSize) || c.std.kernelHalfSize < 1)
        throw new RangeError(`${where}: std.kernelHalfSize must be a positive integer`);
      for (const k of ['sigma', 'lambda', 'eps'] as const) if (!(c.std[k] > 0)) throw new RangeError(`${where}: std.${k} must be positive`);
    }
    if (c.sizePrior) {
      if (c.sizePrior.mode !== 'argmax' && c.sizePrior.mode !== 'expected')
        throw new RangeError(`${where}: sizePrior.mode must be argmax or expected`);
      if (!(c.sizePrior.margin >= 0)) throw new RangeError(`${where}: sizePrior.margin must be >= 0`);
    }
    if (c.typeClasses !== undefined && !(Number.isInteger(c.typeClasses) && (c.typeClasses === 0 || c.typeClasses >= 2)))
      throw new RangeError(`${where}: typeClasses must be 0 or an integer >= 2, got ${c.typeClasses}`);
    if (!(c.classifierDropout >= 0 && c.classifierDropout < 1)) throw new RangeError(`${where}: classifierDropout must be in [0, 1)`);
  } else if (c.arch !== 'unet' && c.arch !== 'resunet') {
    throw new RangeError(`model config: unknown arch ${JSON.stringify((c as { arch: unknown }).arch)}`);
  }
}

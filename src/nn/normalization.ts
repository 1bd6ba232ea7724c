/** Normalisation layers, after `torch/nn/modules/batchnorm.py`, `instancenorm.py`, `normalization.py`. */
import { F, noGrad, ones, zeros, type DType, type Tensor } from '../tensor/index.ts';
import { Module, nameMatches, type AnyModule, type NamePattern } from './module.ts';

export interface NormOptions {
  eps?: number;
  /** Running-average factor; null means a cumulative average (1 / batches seen). */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
  dtype?: DType;
}

/** Shared state of batch and instance norm: affine weight/bias and running statistics. */
export abstract class _NormBase extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor | null;
  readonly runningVar: Tensor | null;
  /** int64 scalar, as in PyTorch; drives the cumulative average when momentum is null. */
  readonly numBatchesTracked: Tensor | null;
  protected abstract readonly spatialDims: number;

  protected constructor(numFeatures: number, o: NormOptions, defaults: { affine: boolean; track: boolean }) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures <= 0) {
      throw new Error(`${this.typeName}: numFeatures must be a positive integer, got ${numFeatures}`);
    }
    this.numFeatures = numFeatures;
    this.eps = o.eps ?? 1e-5;
    this.momentum = o.momentum === undefined ? 0.1 : o.momentum;
    this.affine = o.affine ?? defaults.affine;
    this.trackRunningStats = o.trackRunningStats ?? defaults.track;
    const dtype = o.dtype ?? 'float32';
    this.weight = this.registerParameter('weight', this.affine ? ones([numFeatures], dtype) : null);
    this.bias = this.registerParameter('bias', this.affine ? zeros([numFeatures], dtype) : null);
    const track = this.trackRunningStats;
    this.runningMean = this.registerBuffer('running_mean', track ? zeros([numFeatures], dtype) : null);
    this.runningVar = this.registerBuffer('running_var', track ? ones([numFeatures], dtype) : null);
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', track ? zeros([], 'int64') : null);
  }

  /** Running statistics back to mean 0, variance 1, no batches seen. */
  resetRunningStats(): void {
    noGrad(() => {
      this.runningMean?.zero_();
      this.runningVar?.fill_(1);
      this.numBatchesTracked?.zero_();
    });
  }

  resetParameters(): void {
    this.resetRunningStats();
    noGrad(() => {
      this.weight?.fill_(1);
      this.bias?.zero_();
    });
  }

  protected checkInput(x: Tensor): void {
    const want = this.spatialDims + 2;
    if (x.ndim !== want || x.shape[1] !== this.numFeatures) {
      throw new Error(
        `${this.typeName}: expected input [N, ${this.numFeatures}, ${new Array(this.spatialDims).fill('*').join(', ')}], got [${x.shape.join(', ')}]`,
      );
    }
  }

  /**
   * Count one more batch when training with running stats, and return the averaging factor for
   * this step (PyTorch's exponential_average_factor).
   */
  protected averagingFactor(): number {
    let factor = this.momentum ?? 0;
    if (this.training && this.numBatchesTracked !== null) {
      const n = Number(this.numBatchesTracked.item()) + 1;
      noGrad(() => this.numBatchesTracked!.fill_(n));
      factor = this.momentum ?? 1 / n;
    }
    return factor;
  }

  protected override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=${this.affine}, trackRunningStats=${this.trackRunningStats}`;
  }
}

export abstract class _BatchNorm extends _NormBase {
  /**
   * A frozen BatchNorm stays in eval mode (uses and keeps its running statistics) even when the
   * network around it is put in training mode: the usual set-up for fine-tuning on small batches.
   * Its affine parameters are frozen separately, with `freeze()`.
   */
  get bnFrozen(): boolean {
    return this._bnFrozen;
  }

  set bnFrozen(v: boolean) {
    this._bnFrozen = v;
    if (v) this.training = false;
  }

  private _bnFrozen = false;

  constructor(numFeatures: number, options: NormOptions = {}) {
    super(numFeatures, options, { affine: true, track: true });
  }

  protected override setTrainingFlag(mode: boolean): void {
    this.training = mode && !this._bnFrozen;
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x);
    const factor = this.averagingFactor();
    // Batch statistics in training, or whenever there are no running statistics to use.
    const useBatchStats = this.training || this.runningMean === null;
    const track = !this.training || this.trackRunningStats;
    return F.batchNorm(
      x,
      track ? this.runningMean : null,
      track ? this.runningVar : null,
      this.weight,
      this.bias,
      useBatchStats,
      factor,
      this.eps,
    );
  }
}

/**
 * Set `bnFrozen` on every BatchNorm in `root` (whose dotted name matches `pattern`, when given) and
 * return how many were set. With frozen=true they switch to eval mode at once and stay there.
 */
export function freezeBatchNorm(root: AnyModule, frozen = true, pattern?: NamePattern): number {
  let n = 0;
  for (const [name, m] of root.namedModules()) {
    if (m instanceof _BatchNorm && (pattern === undefined || nameMatches(name, pattern))) {
      m.bnFrozen = frozen;
      if (!frozen) m.training = root.training;
      n++;
    }
  }
  return n;
}

export class BatchNorm2d extends _BatchNorm {
  protected readonly spatialDims = 2;
}

export class BatchNorm3d extends _BatchNorm {
  protected readonly spatialDims = 3;
}

/** Per-sample, per-channel normalisation; by default no affine transform and no running stats. */
export abstract class _InstanceNorm extends _NormBase {
  constructor(numFeatures: number, options: NormOptions = {}) {
    super(numFeatures, options, { affine: false, track: false });
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x);
    // PyTorch's instance norm neither counts batches nor averages cumulatively.
    const factor = this.momentum ?? 0;
    return F.instanceNorm(
      x,
      this.runningMean,
      this.runningVar,
      this.weight,
      this.bias,
      this.training || !this.trackRunningStats,
      factor,
      this.eps,
    );
  }
}

export class InstanceNorm2d extends _InstanceNorm {
  protected readonly spatialDims = 2;
}

export class InstanceNorm3d extends _InstanceNorm {
  protected readonly spatialDims = 3;
}

export interface GroupNormOptions {
  eps?: number;
  affine?: boolean;
  dtype?: DType;
}

/** Normalises groups of channels per sample; works for any number of spatial dimensions. */
export class GroupNorm extends Module {
  readonly numGroups: number;
  readonly numChannels: number;
  readonly eps: number;
  readonly affine: boolean;
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;

  constructor(numGroups: number, numChannels: number, o: GroupNormOptions = {}) {
    super();
    if (!Number.isInteger(numGroups) || numGroups <= 0 || numChannels % numGroups !== 0) {
      throw new Error(`GroupNorm: numChannels=${numChannels} must be divisible by numGroups=${numGroups}`);
    }
    this.numGroups = numGroups;
    this.numChannels = numChannels;
    this.eps = o.eps ?? 1e-5;
    this.affine = o.affine ?? true;
    const dtype = o.dtype ?? 'float32';
    this.weight = this.registerParameter('weight', this.affine ? ones([numChannels], dtype) : null);
    this.bias = this.registerParameter('bias', this.affine ? zeros([numChannels], dtype) : null);
  }

  forward(x: Tensor): Tensor {
    if (x.ndim < 2 || x.shape[1] !== this.numChannels) {
      throw new Error(`GroupNorm: expected input [N, ${this.numChannels}, ...], got [${x.shape.join(', ')}]`);
    }
    return F.groupNorm(x, this.numGroups, this.weight ?? undefined, this.bias ?? undefined, this.eps);
  }

  protected override extraRepr(): string {
    return `${this.numGroups}, ${this.numChannels}, eps=${this.eps}, affine=${this.affine}`;
  }
}

/**
 * Learning-rate schedules. Each computes the rate in closed form from the step count, so a
 * schedule restored from stateDict() continues exactly. Call step() once per epoch or iteration.
 */
import type { Optimizer } from './optimizer.ts';

export abstract class LRScheduler {
  readonly baseLrs: number[];
  lastEpoch = 0;

  constructor(readonly optimizer: Optimizer) {
    this.baseLrs = optimizer.paramGroups.map((g) => g.lr);
  }

  /** The learning rates at step `epoch` (0 = before the first step()). */
  abstract lrAt(epoch: number): number[];

  step(): void {
    this.lastEpoch++;
    this.apply();
  }

  getLastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  stateDict(): { lastEpoch: number } {
    return { lastEpoch: this.lastEpoch };
  }

  loadStateDict(s: { lastEpoch: number }): void {
    this.lastEpoch = s.lastEpoch;
    this.apply();
  }

  protected apply(): void {
    const lrs = this.lrAt(this.lastEpoch);
    this.optimizer.paramGroups.forEach((g, i) => {
      g.lr = lrs[i]!;
    });
  }
}

/** lr = base * gamma^floor(epoch / stepSize). */
export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;
  constructor(optimizer: Optimizer, o: { stepSize: number; gamma?: number }) {
    super(optimizer);
    if (!Number.isInteger(o.stepSize) || o.stepSize < 1)
      throw new RangeError(`StepLR: stepSize must be a positive integer, got ${o.stepSize}`);
    this.stepSize = o.stepSize;
    this.gamma = o.gamma ?? 0.1;
  }
  lrAt(epoch: number): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** Math.floor(epoch / this.stepSize));
  }
}

/** lr = etaMin + (base - etaMin) (1 + cos(pi epoch / tMax)) / 2, held at etaMin after tMax. */
export class CosineAnnealingLR extends LRScheduler {
  readonly tMax: number;
  readonly etaMin: number;
  constructor(optimizer: Optimizer, o: { tMax: number; etaMin?: number }) {
    super(optimizer);
    if (!(o.tMax > 0)) throw new RangeError(`CosineAnnealingLR: tMax must be > 0, got ${o.tMax}`);
    this.tMax = o.tMax;
    this.etaMin = o.etaMin ?? 0;
  }
  lrAt(epoch: number): number[] {
    const e = Math.min(epoch, this.tMax);
    return this.baseLrs.map((b) => this.etaMin + ((b - this.etaMin) * (1 + Math.cos((Math.PI * e) / this.tMax))) / 2);
  }
}

/**
 * Linear warm-up from startFactor * lr to lr over warmupSteps steps, then the wrapped schedule
 * (if any) runs from its own step 0.
 */
export class LinearWarmup extends LRScheduler {
  readonly warmupSteps: number;
  readonly startFactor: number;
  readonly after: LRScheduler | undefined;
  constructor(optimizer: Optimizer, o: { warmupSteps: number; startFactor?: number; after?: LRScheduler }) {
    super(optimizer);
    if (!Number.isInteger(o.warmupSteps) || o.warmupSteps < 1)
      throw new RangeError(`LinearWarmup: warmupSteps must be a positive integer, got ${o.warmupSteps}`);
    if (o.after && o.after.optimizer !== optimizer) throw new Error('LinearWarmup: the wrapped schedule must drive the same optimizer');
    this.warmupSteps = o.warmupSteps;
    this.startFactor = o.startFactor ?? 0;
    this.after = o.after;
    this.apply();
  }
  lrAt(epoch: number): number[] {
    if (epoch < this.warmupSteps) {
      const f = this.startFactor + ((1 - this.startFactor) * epoch) / this.warmupSteps;
      const base = this.after ? this.after.lrAt(0) : this.baseLrs;
      return base.map((b) => b * f);
    }
    return this.after ? this.after.lrAt(epoch - this.warmupSteps) : this.baseLrs;
  }
}

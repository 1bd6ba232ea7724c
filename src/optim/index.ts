/** Optimizers, learning-rate schedules and gradient clipping (see docs/engine-api.md). */
export {
  Optimizer,
  SGD,
  Adam,
  AdamW,
  ParamGroupView,
  clipGradNorm,
  type ParamGroup,
  type SGDOptions,
  type AdamOptions,
  type OptimizerStateDict,
} from './optimizer.ts';
export { LRScheduler, StepLR, CosineAnnealingLR, LinearWarmup } from './schedule.ts';

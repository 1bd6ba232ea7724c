/** Per-nodule 3D evaluation of a model on crops with reference masks (validation, `eval`). */
import type { CropCase, SliceConfig } from '../data/index.ts';
import { segmentVolume, type PredictOptions } from '../inference/index.ts';
import { MetricAccumulator, segmentationMetrics } from '../metrics/index.ts';
import type { SegmentationNetwork } from '../models/types.ts';

export interface CropEvalOptions extends PredictOptions {
  threshold?: number;
  /** Skip the 95% Hausdorff distance (faster validation during training). */
  skipHd95?: boolean;
  onCase?: (done: number, total: number) => void;
}

export function evaluateOnCrops(
  model: SegmentationNetwork,
  cases: readonly CropCase[],
  slice: SliceConfig,
  options: CropEvalOptions = {},
): MetricAccumulator {
  const acc = new MetricAccumulator();
  cases.forEach((c, i) => {
    const seg = segmentVolume(model, c.image, slice, options);
    const ref = { data: c.mask, dims: c.image.dims, spacingMm: c.image.spacingMm };
    acc.update(
      c.id,
      segmentationMetrics({ data: seg.mask.data, dims: c.image.dims, spacingMm: c.image.spacingMm }, ref, { hd95: !options.skipHd95 }),
    );
    options.onCase?.(i + 1, cases.length);
  });
  return acc;
}

/**
 * Segmenting nodules given where they are: a crop centred on the nodule, or prompts (points) in a
 * whole scan. Shared by `noduleseg segment` and the viewer's server.
 */
import { Volume, cropAround, pasteCrop, type Vec3 } from '../io/index.ts';
import { measureNodule, type NoduleMeasures } from '../metrics/index.ts';
import type { ModelInfo, SegmentationNetwork } from '../models/index.ts';
import { segmentVolume, type CropSegmentation } from './predict.ts';

export interface NoduleResult {
  /** 1-based label of this nodule in the label mask. */
  label: number;
  promptVoxel: Vec3;
  promptWorldMm: Vec3;
  measures: NoduleMeasures;
  /** Centroid in world mm (LPS); null for an empty mask. */
  centroidWorldMm: Vec3 | null;
  /** Bounding box in world mm (LPS) of the voxel centres; null when empty. */
  boundingBoxWorldMm: [Vec3, Vec3] | null;
  /** Size-class probabilities (none, small, medium, large) on the axial slice through the centroid. */
  sizeClassProbabilities: number[] | null;
  sizeClass: string | null;
  /** Mean foreground probability inside the mask, and the share of mask voxels with p < 0.7. */
  meanProbability: number;
  uncertainFraction: number;
  warnings: string[];
}

export interface SegmentOptions {
  threshold?: number;
  flipTta?: boolean;
  batchSize?: number;
}

const CLASS_NAMES = ['none', 'small', 'medium', 'large'];

/** The crop size (voxels) around a prompt: the model's field of view in-plane, +-25 mm in z. */
export function promptCropSize(volume: Volume, info: ModelInfo): Vec3 {
  const fovMm = info.slice.patchSize * info.slice.spacingMm;
  const [sx, sy, sz] = volume.spacingMm;
  return [Math.ceil(fovMm / sx) + 2, Math.ceil(fovMm / sy) + 2, Math.max(1, 2 * Math.ceil(25 / sz) + 1)];
}

/** Segments the nodule at the centre of a crop; the mask is on the crop's grid. */
export function segmentCrop(model: SegmentationNetwork, info: ModelInfo, crop: Volume, options: SegmentOptions = {}): { seg: CropSegmentation; nodule: NoduleResult } {
  const centre: Vec3 = [(crop.dims[0] - 1) / 2, (crop.dims[1] - 1) / 2, (crop.dims[2] - 1) / 2];
  const seg = segmentVolume(model, crop, info.slice, { threshold: options.threshold ?? info.threshold, flipTta: options.flipTta, batchSize: options.batchSize, centreVoxel: centre });
  return { seg, nodule: describeNodule(1, crop, seg, centre, crop, [0, 0, 0]) };
}

/**
 * Segments one nodule per prompt (voxel coordinates of `scan`) and pastes them into one label
 * mask on the scan's grid (label k for prompt k; a later nodule does not overwrite an earlier).
 */
export function segmentAtPrompts(
  model: SegmentationNetwork,
  info: ModelInfo,
  scan: Volume,
  promptsVoxel: Vec3[],
  options: SegmentOptions & { onNodule?: (done: number, total: number) => void } = {},
): { labels: Uint8Array; nodules: NoduleResult[] } {
  if (promptsVoxel.length > 255) throw new RangeError('segmentAtPrompts: at most 255 nodules per label mask');
  const labels = scan.withData(new Uint8Array(scan.voxelCount), 'SEG');
  const nodules: NoduleResult[] = [];
  const size = promptCropSize(scan, info);
  promptsVoxel.forEach((p, k) => {
    const { crop, startVoxel } = cropAround(scan, { voxel: p }, size);
    const local: Vec3 = [p[0] - startVoxel[0], p[1] - startVoxel[1], p[2] - startVoxel[2]];
    const seg = segmentVolume(model, crop, info.slice, { threshold: options.threshold ?? info.threshold, flipTta: options.flipTta, batchSize: options.batchSize, centreVoxel: local });
    const labelled = Uint8Array.from(seg.mask.data, (v) => (v ? k + 1 : 0));
    pasteCrop(labels, crop.withData(labelled, 'SEG'), 'fill');
    nodules.push(describeNodule(k + 1, crop, seg, local, scan, startVoxel));
    options.onNodule?.(k + 1, promptsVoxel.length);
  });
  return { labels: labels.data, nodules };
}

function describeNodule(label: number, crop: Volume, seg: CropSegmentation, promptLocal: Vec3, frame: Volume, startVoxel: Vec3): NoduleResult {
  const measures = measureNodule({ data: seg.mask.data, dims: crop.dims, spacingMm: crop.spacingMm }, crop.data);
  const toFrame = (v: readonly number[]): Vec3 => [v[0]! + startVoxel[0], v[1]! + startVoxel[1], v[2]! + startVoxel[2]];
  let sumP = 0, n = 0, unsure = 0;
  for (let i = 0; i < seg.mask.data.length; i++) {
    if (!seg.mask.data[i]) continue;
    const p = seg.probability.data[i]!;
    sumP += p;
    n++;
    if (p < 0.7) unsure++;
  }
  let classProbs: number[] | null = null;
  if (seg.classProbs && seg.numClasses > 0) {
    const z = measures.centroidVoxel ? Math.round(measures.centroidVoxel[2]) : Math.round(promptLocal[2]);
    classProbs = Array.from(seg.classProbs.subarray(z * seg.numClasses, (z + 1) * seg.numClasses), (v) => Math.round(v * 1e4) / 1e4);
  }
  const warnings: string[] = [];
  if (measures.voxelCount === 0) warnings.push('no nodule found at this point');
  const uncertainFraction = n ? unsure / n : 1;
  if (n && uncertainFraction > 0.5) warnings.push('the model is unsure of this outline (most voxels have probability < 0.7)');
  if (classProbs && Math.max(...classProbs) < 0.5) warnings.push('the size classifier is unsure (no class above 0.5)');
  let sizeClass: string | null = null;
  if (classProbs) sizeClass = CLASS_NAMES[classProbs.indexOf(Math.max(...classProbs))] ?? null;
  const bb = measures.boundingBoxVoxels;
  return {
    label,
    promptVoxel: toFrame(promptLocal),
    promptWorldMm: frame.voxelToWorld(toFrame(promptLocal)),
    measures,
    centroidWorldMm: measures.centroidVoxel ? frame.voxelToWorld(toFrame(measures.centroidVoxel)) : null,
    boundingBoxWorldMm: bb ? [frame.voxelToWorld(toFrame(bb[0])), frame.voxelToWorld(toFrame(bb[1]))] : null,
    sizeClassProbabilities: classProbs,
    sizeClass,
    meanProbability: n ? sumP / n : 0,
    uncertainFraction,
    warnings,
  };
}

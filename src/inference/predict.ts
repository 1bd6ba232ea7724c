/**
 * Running a segmentation network over a crop: slices in batches, probabilities back onto the
 * crop's grid, threshold, the 3D component at the prompt and the holes it encloses.
 */
import { tensor, tidy, noGrad, F } from '../tensor/index.ts';
import { sliceGrid, volumeToSlices, slicesToProbability, type SliceConfig } from '../data/index.ts';
import type { Volume, Vec3 } from '../io/volume.ts';
import type { SegmentationNetwork } from '../models/types.ts';
import { fillHolesInPlane, keepComponentAt } from './components.ts';
import { trimAtConstriction } from './profile.ts';
import { applyRefineStage, type RefineStage } from './refine.ts';

export interface PredictOptions {
  /** Slices per forward pass. */
  batchSize?: number;
  /**
   * Average over horizontal/vertical flips (test-time augmentation, 4 passes); 'dihedral' adds the
   * in-plane transpose of each (8 passes; square patches only).
   */
  flipTta?: boolean | 'dihedral';
}

export interface SlicePrediction {
  /** Foreground probability per slice [Z, P, P]. */
  probs: Float32Array;
  /** Size-class probabilities [Z, K], or null for segmentation-only models. */
  classProbs: Float32Array | null;
  numClasses: number;
}

/**
 * Forward passes over [Z, C, P, P] inputs in batches, in eval mode, without gradients. The
 * model's training flag is restored afterwards.
 */
export function predictSlices(
  model: SegmentationNetwork,
  input: Float32Array,
  shape: readonly [number, number, number, number],
  options: PredictOptions = {},
): SlicePrediction {
  const [z, c, p, q] = shape;
  const batch = Math.max(1, options.batchSize ?? 64);
  const wasTraining = model.training;
  model.eval();
  const probs = new Float32Array(z * p * q);
  let classProbs: Float32Array | null = null;
  let numClasses = 0;
  try {
    noGrad(() => {
      for (let s = 0; s < z; s += batch) {
        const n = Math.min(batch, z - s);
        tidy(() => {
          const x = tensor(input.subarray(s * c * p * q, (s + n) * c * p * q), [n, c, p, q]);
          const out = model.forward(x);
          let prob = out.maskLogits.sigmoid();
          let cls = out.classLogits ? F.softmax(out.classLogits, 1) : null;
          if (options.flipTta) {
            // The flips of the slice (after its plain pass above) and, for 'dihedral', of its transpose.
            const bases = options.flipTta === 'dihedral' ? [false, true] : [false];
            if (bases.length > 1 && p !== q) throw new RangeError(`predictSlices: transposes need square patches, got ${p} x ${q}`);
            let passes = 1;
            for (const transposed of bases) {
              const base = transposed ? x.transpose(2, 3) : x;
              for (const dims of [[], [3], [2], [2, 3]]) {
                if (!transposed && dims.length === 0) continue;
                const o = model.forward(dims.length ? base.flip(dims) : base);
                let back = o.maskLogits.sigmoid();
                if (dims.length) back = back.flip(dims);
                prob = prob.add(transposed ? back.transpose(2, 3) : back);
                if (cls && o.classLogits) cls = cls.add(F.softmax(o.classLogits, 1));
                passes++;
              }
            }
            prob = prob.div(passes);
            if (cls) cls = cls.div(passes);
          }
          probs.set(prob.toTypedArray() as Float32Array, s * p * q);
          if (cls) {
            numClasses = cls.shape[1]!;
            classProbs ??= new Float32Array(z * numClasses);
            classProbs.set(cls.toTypedArray() as Float32Array, s * numClasses);
          }
        });
      }
    });
  } finally {
    model.train(wasTraining);
  }
  return { probs, classProbs, numClasses };
}

export interface CropSegmentation {
  mask: Volume<Uint8Array>;
  probability: Volume<Float32Array>;
  /** Size-class probabilities per axial slice [Z, K] (null without a classifier). */
  classProbs: Float32Array | null;
  numClasses: number;
  /** Where the patches were centred (voxels): the prompt, or the nodule found near it (recentreMm). */
  centreVoxel: Vec3;
}

export interface SegmentCropOptions extends PredictOptions {
  threshold?: number;
  /** The prompt: where the nodule is, in voxels of `volume` (default: the volume's centre). */
  centreVoxel?: Vec3;
  /**
   * Where the prompt was (voxels), for a model with a prompt channel, when the patches are
   * centred elsewhere (recentred on the nodule found); default: centreVoxel.
   */
  promptVoxel?: Vec3;
  /** Keep only the 3D component at the prompt (default true). */
  keepPromptComponent?: boolean;
  /** Then cut that component where it narrows to a waist and widens again along z (default true). */
  trimAtConstriction?: boolean;
  /**
   * When the nodule found lies more than this far (mm, in-plane) from the prompt, segment again
   * with the patches centred on it (default: never). The network was trained on patches centred
   * on the nodule, and a click or a detector's candidate is rarely at its centre.
   */
  recentreMm?: number;
  /** The model's refinement stage (ModelInfo.refine), applied to the probability before the level. */
  refine?: RefineStage;
  /** Fill the holes the nodule encloses in each slice (fillEnclosedHoles; default true). */
  fillHoles?: boolean;
  /**
   * A level below `threshold` (the model's any-reader level) whose mask's holes are filled too: a
   * wall that the default level draws with gaps is often closed there.
   */
  holeLevel?: number;
}

/**
 * A thresholded mask cut to the nodule at the prompt: its 3D component there, then (with `trim`)
 * cut where it narrows to a waist and widens again along z, and the component at the prompt again.
 */
export function cutAtPrompt(mask: Uint8Array, volume: Pick<Volume, 'dims' | 'spacingMm'>, promptVoxel: Vec3, trim = true): Uint8Array {
  let out = keepComponentAt(mask, volume.dims, volume.spacingMm, promptVoxel);
  if (trim) {
    trimAtConstriction(out, volume.dims, volume.spacingMm, promptVoxel[2]);
    out = keepComponentAt(out, volume.dims, volume.spacingMm, promptVoxel);
  }
  return out;
}

/**
 * Adds to `mask` (in place) the holes it encloses in each axial slice and, with `wider` (a wider
 * mask of the same nodule, drawn at a lower level), the holes that one encloses. The LIDC readers
 * outline a nodule's outer edge slice by slice, so the air of a cavity or bubble inside it is in
 * their masks while the network's probability there is low. Five folds, 802 nodules, with the
 * any-reader level's holes: +0.0003 / +0.0002 / +0.0002 against the union / consensus / each
 * reader, 138 nodules changed, none worse by type; the one cavitated nodule 0.53 -> 0.62.
 */
export function fillEnclosedHoles(mask: Uint8Array, dims: Vec3, wider?: Uint8Array): void {
  if (wider) {
    const filled = Uint8Array.from(wider);
    fillHolesInPlane(filled, dims);
    for (let i = 0; i < mask.length; i++) if (filled[i] && !wider[i]) mask[i] = 1;
  }
  fillHolesInPlane(mask, dims);
}

/** Segments the nodule of a crop (or of a scan around a prompt) on the volume's own grid. */
export function segmentVolume(
  model: SegmentationNetwork,
  volume: Volume,
  slice: SliceConfig,
  options: SegmentCropOptions = {},
): CropSegmentation {
  const first = segmentOnce(model, volume, slice, options);
  if (options.recentreMm === undefined || options.keepPromptComponent === false) return first;
  const prompt = first.centreVoxel;
  const centroid = maskCentroid(first.mask.data, volume.dims);
  if (!centroid) return first;
  const [sx, sy] = volume.spacingMm;
  const offMm = Math.hypot((centroid[0] - prompt[0]) * sx, (centroid[1] - prompt[1]) * sy);
  if (offMm <= options.recentreMm) return first;
  return segmentOnce(model, volume, slice, { ...options, centreVoxel: centroid, promptVoxel: options.promptVoxel ?? prompt });
}

/** The centroid (voxels) of a mask's foreground, or null when it is empty. */
export function maskCentroid(mask: ArrayLike<number>, dims: Vec3): Vec3 | null {
  const [nx, ny] = dims;
  let n = 0,
    x = 0,
    y = 0,
    z = 0;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    n++;
    x += i % nx;
    y += Math.floor(i / nx) % ny;
    z += Math.floor(i / (nx * ny));
  }
  return n ? [x / n, y / n, z / n] : null;
}

function segmentOnce(model: SegmentationNetwork, volume: Volume, slice: SliceConfig, options: SegmentCropOptions): CropSegmentation {
  const grid = sliceGrid(volume, slice, options.centreVoxel, options.promptVoxel);
  const x = volumeToSlices(grid);
  const pred = predictSlices(model, x.input, x.shape, options);
  const probability = slicesToProbability(pred.probs, grid);
  if (options.refine)
    probability.data.set(
      applyRefineStage(options.refine, {
        hu: volume.data,
        probability: probability.data,
        dims: volume.dims,
        spacingMm: volume.spacingMm,
        promptVoxel: grid.centreVoxel,
      }),
    );
  const threshold = options.threshold ?? 0.5;
  // The mask at a level, cut to the nodule at the prompt as asked.
  const maskAt = (level: number) => {
    const m = Uint8Array.from(probability.data, (p) => (p > level ? 1 : 0));
    return options.keepPromptComponent !== false ? cutAtPrompt(m, volume, grid.centreVoxel, options.trimAtConstriction !== false) : m;
  };
  const mask = maskAt(threshold);
  if (options.fillHoles !== false) {
    const h = options.holeLevel;
    fillEnclosedHoles(mask, volume.dims, h !== undefined && h < threshold ? maskAt(h) : undefined);
  }
  return {
    mask: volume.withData(mask, 'SEG'),
    probability,
    classProbs: pred.classProbs,
    numClasses: pred.numClasses,
    centreVoxel: [...grid.centreVoxel] as Vec3,
  };
}

/**
 * The pure parts of the nodule features (no libtorch): which slices hold the nodule, pooling
 * per-slice features over them, and the HU statistics and size of the mask.
 */
import type { Vec3 } from '../io/volume.ts';
import { axisMeasures, solidComponentMask, SOLID_COMPONENT_HU } from '../guidelines/measurements.ts';

/** The axial slices (z) holding mask voxels; the prompt's slice when the mask is empty. */
export function noduleSlices(mask: Uint8Array, dims: Vec3, promptZ: number): number[] {
  const [nx, ny, nz] = dims;
  const out: number[] = [];
  for (let z = 0; z < nz; z++) {
    const base = z * nx * ny;
    for (let i = 0; i < nx * ny; i++) {
      if (mask[base + i]) {
        out.push(z);
        break;
      }
    }
  }
  return out.length ? out : [Math.min(nz - 1, Math.max(0, Math.round(promptZ)))];
}

/** HU statistics inside the mask, and the nodule's size: the names of huFeatures' values. */
export const HU_STATISTIC_NAMES = [
  'meanHU',
  'stdHU',
  'p10HU',
  'p50HU',
  'p90HU',
  'maxHU',
  'fracBelowMinus600HU',
  'fracMinus600ToMinus300HU',
  'fracMinus300To100HU',
  'fracAbove100HU',
  'fracAbove300HU',
  'logVolumeMm3',
  'logLongestAxialDiameterMm',
  'logMeanDiameterMm',
] as const;

/**
 * The nodule's make-up as a radiologist reads it (compositionFeatures' values): how much of it is
 * a solid component and how large that is against the whole (the consolidation-to-tumour ratio of
 * the part-solid literature), and the HU mix of its core, away from the partial-volume rim that
 * makes every small solid nodule look part ground-glass at its edge.
 */
export const COMPOSITION_FEATURE_NAMES = [
  'solidComponentVolumeFraction',
  'solidComponentDiameterRatio',
  'coreFracBelowMinus800HU',
  'coreFracMinus800ToMinus300HU',
  'coreFracAboveMinus300HU',
] as const;

/**
 * Every HU feature the heads may read, in order. Heads store the names they were trained on and
 * read a prefix of this list, so new names go at the end only.
 */
export const HU_FEATURE_NAMES = [...HU_STATISTIC_NAMES, ...COMPOSITION_FEATURE_NAMES] as const;

/**
 * HU statistics inside the mask (the raw image, not the network's clipped input: calcium above
 * 400 HU is clipped there) and the size; zeros-like values for an empty mask.
 */
export function huFeatures(
  image: ArrayLike<number>,
  mask: Uint8Array,
  voxelVolumeMm3: number,
  longestAxialDiameterMm: number,
  meanDiameterMm: number,
): Float32Array {
  const values: number[] = [];
  for (let i = 0; i < mask.length; i++) if (mask[i]) values.push(image[i]!);
  const out = new Float32Array(HU_STATISTIC_NAMES.length);
  const n = values.length;
  if (n === 0) {
    out.fill(0);
    out[0] = -1000;
    return out;
  }
  values.sort((a, b) => a - b);
  const q = (p: number) => values[Math.min(n - 1, Math.floor(p * (n - 1) + 0.5))]!;
  let sum = 0,
    sq = 0;
  let b0 = 0,
    b1 = 0,
    b2 = 0,
    b3 = 0,
    b4 = 0;
  for (const v of values) {
    sum += v;
    sq += v * v;
    if (v < -600) b0++;
    else if (v < -300) b1++;
    else if (v < 100) b2++;
    if (v >= 100) b3++;
    if (v >= 300) b4++;
  }
  const mean = sum / n;
  out.set([
    mean,
    Math.sqrt(Math.max(0, sq / n - mean * mean)),
    q(0.1),
    q(0.5),
    q(0.9),
    values[n - 1]!,
    b0 / n,
    b1 / n,
    b2 / n,
    b3 / n,
    b4 / n,
    Math.log(n * voxelVolumeMm3),
    Math.log(Math.max(0.1, longestAxialDiameterMm)),
    Math.log(Math.max(0.1, meanDiameterMm)),
  ]);
  return out;
}

/**
 * COMPOSITION_FEATURE_NAMES' values: the solid component (the mask's voxels >= solidThresholdHU,
 * their largest 3D piece, as the report measures it) as a share of the volume and of the longest
 * axial diameter, and the HU mix of the core (mask voxels whose four in-plane neighbours are all
 * in the mask; the whole mask when nothing is left). Zeros for an empty mask.
 */
export function compositionFeatures(
  image: ArrayLike<number>,
  mask: Uint8Array,
  dims: Vec3,
  spacingMm: Vec3,
  solidThresholdHU = SOLID_COMPONENT_HU,
): Float32Array {
  const out = new Float32Array(COMPOSITION_FEATURE_NAMES.length);
  const whole = axisMeasures({ data: mask, dims, spacingMm });
  if (whole.voxelCount === 0) return out;
  const solid = axisMeasures({ data: solidComponentMask(mask, image, dims, solidThresholdHU), dims, spacingMm });
  const [nx, ny] = dims;
  const inMask = (i: number) => mask[i] !== 0;
  const bins = [0, 0, 0];
  const count = (core: boolean) => {
    let n = 0;
    for (let i = 0; i < mask.length; i++) {
      if (!mask[i]) continue;
      if (core) {
        const x = i % nx,
          y = Math.floor(i / nx) % ny;
        if (x === 0 || y === 0 || x === nx - 1 || y === ny - 1) continue;
        if (!inMask(i - 1) || !inMask(i + 1) || !inMask(i - nx) || !inMask(i + nx)) continue;
      }
      const v = image[i]!;
      bins[v < -800 ? 0 : v < solidThresholdHU ? 1 : 2]!++;
      n++;
    }
    return n;
  };
  let n = count(true);
  if (n === 0) n = count(false);
  out.set([
    solid.voxelCount / whole.voxelCount,
    whole.longAxisMm > 0 ? solid.longAxisMm / whole.longAxisMm : 0,
    bins[0]! / n,
    bins[1]! / n,
    bins[2]! / n,
  ]);
  return out;
}

/** Per-slice features [S x W] -> their mean over the slices, weighted by each slice's mask area. */
export function poolSlices(perSlice: Float32Array, width: number, weights: readonly number[]): Float32Array {
  const n = perSlice.length / width;
  if (!Number.isInteger(n) || n !== weights.length)
    throw new RangeError(`poolSlices: ${perSlice.length} values are not ${weights.length} slices of ${width}`);
  const total = weights.reduce((a, b) => a + b, 0);
  const w = total > 0 ? weights.map((x) => x / total) : weights.map(() => 1 / n);
  const out = new Float32Array(width);
  for (let r = 0; r < n; r++) for (let j = 0; j < width; j++) out[j]! += w[r]! * perSlice[r * width + j]!;
  return out;
}

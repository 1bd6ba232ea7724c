/**
 * A nodule's cross-section along z rises from one end to its widest slice and falls to the other
 * end. When a whole scan's mask, followed away from the prompt, shrinks to a waist and then
 * widens again, what lies beyond the waist is something else the nodule touches (the chest wall
 * past the nodule's end, a vessel): the mask is cut at the waist.
 */
import { sliceAreasMm2 } from '../data/index.ts';

export interface ConstrictionOptions {
  /** Cut when a slice's area exceeds the smallest area since the widest slice by this factor... */
  growthFactor: number;
  /** ...and by at least this much (mm2), so that a few voxels of noise at an end never cut. */
  minGrowthMm2: number;
}

export const DEFAULT_CONSTRICTION: ConstrictionOptions = { growthFactor: 2, minGrowthMm2: 5 };

/**
 * The slices [first, last] to keep, walking from the prompt slice each way: an area may first
 * rise (a prompt off the widest slice), then falls; once it has fallen, a rise above
 * growthFactor x the smallest area since ends the walk at that smallest slice. An empty slice
 * ends it too.
 */
export function keptSliceRange(
  areaMm2: ArrayLike<number>,
  promptSlice: number,
  options: Partial<ConstrictionOptions> = {},
): [number, number] {
  const o = { ...DEFAULT_CONSTRICTION, ...options };
  const n = areaMm2.length;
  let z0 = Math.min(n - 1, Math.max(0, Math.round(promptSlice)));
  // A prompt on an empty slice (the component kept is the nearest one): walk from its nearest slice.
  if (!(areaMm2[z0]! > 0)) {
    let best = -1;
    for (let z = 0; z < n; z++) if (areaMm2[z]! > 0 && (best < 0 || Math.abs(z - z0) < Math.abs(best - z0))) best = z;
    if (best < 0) return [z0, z0];
    z0 = best;
  }
  const walk = (step: 1 | -1): number => {
    let peak = areaMm2[z0]!;
    let valley = Infinity;
    let valleyAt = z0;
    let last = z0;
    for (let z = z0 + step; z >= 0 && z < n; z += step) {
      const a = areaMm2[z]!;
      if (!(a > 0)) break;
      if (valley === Infinity) {
        // Still rising (or level): the widest slice so far.
        if (a >= peak) {
          peak = a;
          last = z;
          continue;
        }
        valley = a;
        valleyAt = z;
      } else if (a < valley) {
        valley = a;
        valleyAt = z;
      } else if (a > o.growthFactor * valley && a - valley > o.minGrowthMm2) {
        return valleyAt;
      }
      last = z;
    }
    return last;
  };
  const up = walk(1);
  const down = walk(-1);
  return [Math.min(up, down), Math.max(up, down)];
}

/** Clears the slices of `mask` outside keptSliceRange of its per-slice areas; returns the range. */
export function trimAtConstriction(
  mask: Uint8Array,
  dims: readonly [number, number, number],
  spacingMm: readonly [number, number, number],
  promptSlice: number,
  options: Partial<ConstrictionOptions> = {},
): [number, number] {
  const plane = dims[0] * dims[1];
  const [lo, hi] = keptSliceRange(sliceAreasMm2(mask, dims, spacingMm), promptSlice, options);
  mask.fill(0, 0, lo * plane);
  mask.fill(0, (hi + 1) * plane);
  return [lo, hi];
}

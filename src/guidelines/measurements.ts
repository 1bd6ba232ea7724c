/**
 * A nodule's size as Lung-RADS v2022 and Fleischner 2017 define it: the long axis (longest
 * diameter on an axial slice), the short axis (the longest extent perpendicular to it on the
 * same slice), their mean rounded to 0.1 mm (Lung-RADS) and to the nearest mm (Fleischner), and
 * the volume; for a part-solid nodule the same for its solid component.
 *
 * The solid component is the mask's voxels at or above a HU threshold (SOLID_COMPONENT_HU by
 * default, configurable with --solid-hu), its largest 3D connected piece. Readers judge the
 * solid part by eye on a lung window; the threshold is our automatic stand-in (docs/report.md).
 */
import { fillComponent26 } from '../inference/components.ts';
import { measureNodule } from '../metrics/measures.ts';
import type { MaskGrid } from '../metrics/grid.ts';
import { roundToTenthMm } from './lung-rads.ts';
import { roundToMm } from './fleischner.ts';

/**
 * Default solid-component threshold (HU): voxels of -300 HU or more count as solid. Ground
 * glass lies roughly between -750 and -300 HU and soft tissue above -100 HU, so -300 HU splits
 * the two with margin for partial volume at the solid part's rim.
 */
export const SOLID_COMPONENT_HU = -300;

export interface AxisMeasures {
  /** Longest diameter on an axial slice, mm. */
  longAxisMm: number;
  /** Longest extent perpendicular to the long axis on the same slice, mm. */
  shortAxisMm: number;
  /** (long + short) / 2 rounded to 0.1 mm: the Lung-RADS v2022 size. */
  meanDiameterLungRadsMm: number;
  /** (long + short) / 2 rounded to the nearest mm: the Fleischner 2017 size. */
  meanDiameterFleischnerMm: number;
  volumeMm3: number;
  /** z index (voxels) of the slice of the long axis; -1 when empty. */
  axialSlice: number;
  voxelCount: number;
}

export interface GuidelineMeasures extends AxisMeasures {
  /** The solid component (voxels >= solidThresholdHU); null when not measured (no image). */
  solidComponent: AxisMeasures | null;
  solidThresholdHU: number;
}

/** The axis measures of a mask (all zeros for an empty one). */
export function axisMeasures(mask: MaskGrid): AxisMeasures {
  const m = measureNodule(mask);
  const mean = (m.longestAxialDiameterMm + m.perpendicularDiameterMm) / 2;
  return {
    longAxisMm: m.longestAxialDiameterMm,
    shortAxisMm: m.perpendicularDiameterMm,
    meanDiameterLungRadsMm: roundToTenthMm(mean),
    meanDiameterFleischnerMm: roundToMm(mean),
    volumeMm3: m.volumeMm3,
    axialSlice: m.longestDiameterSlice,
    voxelCount: m.voxelCount,
  };
}

/** The mask's voxels at or above `thresholdHU`, their largest 26-connected piece. */
export function solidComponentMask(
  mask: ArrayLike<number>,
  image: ArrayLike<number>,
  dims: readonly [number, number, number],
  thresholdHU: number,
): Uint8Array {
  const solid = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) solid[i] = mask[i] && image[i]! >= thresholdHU ? 1 : 0;
  return largestComponent(solid, dims);
}

/** Guideline measures of a nodule mask; with its image, the solid component too. */
export function guidelineMeasures(
  mask: MaskGrid,
  image: ArrayLike<number> | null,
  solidThresholdHU = SOLID_COMPONENT_HU,
): GuidelineMeasures {
  if (!Number.isFinite(solidThresholdHU)) throw new RangeError(`solid component threshold must be a number of HU, got ${solidThresholdHU}`);
  const whole = axisMeasures(mask);
  const solidComponent = image
    ? axisMeasures({ data: solidComponentMask(mask.data, image, mask.dims, solidThresholdHU), dims: mask.dims, spacingMm: mask.spacingMm })
    : null;
  return { ...whole, solidComponent, solidThresholdHU };
}

/** The largest 26-connected component of a 0/1 mask (a new mask; ties: the first found). */
export function largestComponent(mask: Uint8Array, dims: readonly [number, number, number]): Uint8Array {
  const label = new Int32Array(mask.length);
  const stack = new Int32Array(mask.length);
  let best = 0,
    bestSize = 0,
    next = 0;
  for (let s = 0; s < mask.length; s++) {
    if (!mask[s] || label[s]) continue;
    const id = ++next;
    const size = fillComponent26(mask, dims, s, label, id, stack);
    if (size > bestSize) [best, bestSize] = [id, size];
  }
  const out = new Uint8Array(mask.length);
  if (best) for (let i = 0; i < mask.length; i++) out[i] = label[i] === best ? 1 : 0;
  return out;
}

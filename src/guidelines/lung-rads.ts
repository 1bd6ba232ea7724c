/**
 * Lung-RADS v2022 (American College of Radiology), baseline screening exam, one nodule: the
 * category and its management. Decision support for the radiologist, who assigns the category;
 * the rows are those of the v2022 table for a baseline exam (no prior CT, so no "new" or
 * "growing" rows), in docs/report.md.
 *
 * Size is the mean of the long and short axis on the axial slice of the longest diameter,
 * rounded to 0.1 mm (v2022); the solid component of a part-solid nodule is measured the same way.
 * Category 4X (a category 3 or 4 nodule with features that raise the suspicion of cancer, such
 * as spiculation) is the reader's call: suspicious features are flagged, the category is never
 * raised to 4X here.
 */
import type { NoduleType } from '../data/nodule-type.ts';

export const LUNG_RADS_VERSION = 'Lung-RADS v2022 (baseline)';

export type LungRadsCategory = '1' | '2' | '3' | '4A' | '4B';

export interface LungRadsInput {
  type: NoduleType;
  /** Mean of long and short axis (mm); rounded to 0.1 mm here, as v2022 says. */
  meanDiameterMm: number;
  /** Part-solid only: the solid component's mean diameter (mm), rounded to 0.1 mm here. */
  solidComponentMeanDiameterMm?: number | null;
  /** A benign pattern of calcification (complete, central, popcorn, laminated) or fat: category 1. */
  benignCalcification: boolean;
  /** Features that raise suspicion (e.g. "spiculation"): flagged for 4X on categories 3 and 4. */
  suspiciousFeatures?: readonly string[];
}

export interface LungRadsResult {
  version: string;
  category: LungRadsCategory;
  /** The table row that gave the category, with the measured size. */
  reason: string;
  /** v2022 management of the category. */
  management: string;
  /** Set when the category is 3, 4A or 4B and suspicious features were found: the reader may assign 4X. */
  consider4X: string | null;
}

/** Management per category (v2022). */
export const LUNG_RADS_MANAGEMENT: Record<LungRadsCategory, string> = {
  '1': 'Continue annual screening with LDCT in 12 months',
  '2': 'Continue annual screening with LDCT in 12 months',
  '3': 'LDCT in 6 months',
  '4A': 'LDCT in 3 months; PET/CT may be considered if there is a solid nodule or solid component of 8 mm or more',
  '4B': 'Diagnostic chest CT with or without contrast; PET/CT may be considered if there is a solid nodule or solid component of 8 mm or more; tissue sampling; and/or referral for further clinical evaluation',
};

/** Rounds to 0.1 mm as v2022 does (half away from zero, on a value that is never negative). */
export function roundToTenthMm(mm: number): number {
  return Math.round(mm * 10 + 1e-9) / 10;
}

function checkSize(name: string, mm: number): void {
  if (!Number.isFinite(mm) || mm < 0) throw new RangeError(`Lung-RADS: ${name} must be a size in mm >= 0, got ${mm}`);
}

/** The v2022 baseline category of one nodule. */
export function lungRadsBaseline(input: LungRadsInput): LungRadsResult {
  checkSize('meanDiameterMm', input.meanDiameterMm);
  const d = roundToTenthMm(input.meanDiameterMm);
  const mm = (x: number) => `${x.toFixed(1)} mm`;
  let category: LungRadsCategory;
  let reason: string;
  if (input.benignCalcification) {
    category = '1';
    reason = 'nodule with a benign pattern of calcification';
  } else if (input.type === 'solid') {
    if (d < 6) [category, reason] = ['2', `solid nodule < 6 mm (${mm(d)})`];
    else if (d < 8) [category, reason] = ['3', `solid nodule >= 6 to < 8 mm (${mm(d)})`];
    else if (d < 15) [category, reason] = ['4A', `solid nodule >= 8 to < 15 mm (${mm(d)})`];
    else [category, reason] = ['4B', `solid nodule >= 15 mm (${mm(d)})`];
  } else if (input.type === 'part-solid') {
    const raw = input.solidComponentMeanDiameterMm;
    if (raw === undefined || raw === null) throw new RangeError('Lung-RADS: a part-solid nodule needs solidComponentMeanDiameterMm');
    checkSize('solidComponentMeanDiameterMm', raw);
    const s = roundToTenthMm(raw);
    if (d < 6) [category, reason] = ['2', `part-solid nodule < 6 mm total mean diameter (${mm(d)})`];
    else if (s < 6) [category, reason] = ['3', `part-solid nodule >= 6 mm total (${mm(d)}) with solid component < 6 mm (${mm(s)})`];
    else if (s < 8)
      [category, reason] = ['4A', `part-solid nodule >= 6 mm total (${mm(d)}) with solid component >= 6 to < 8 mm (${mm(s)})`];
    else [category, reason] = ['4B', `part-solid nodule with solid component >= 8 mm (${mm(s)}; total ${mm(d)})`];
  } else {
    if (d < 30) [category, reason] = ['2', `ground-glass (non-solid) nodule < 30 mm (${mm(d)})`];
    else [category, reason] = ['3', `ground-glass (non-solid) nodule >= 30 mm (${mm(d)})`];
  }
  const features = input.suspiciousFeatures ?? [];
  const consider4X =
    category !== '1' && category !== '2' && features.length > 0
      ? `category ${category} nodule with ${features.join(', ')}: the reader may assign 4X`
      : null;
  return { version: LUNG_RADS_VERSION, category, reason, management: LUNG_RADS_MANAGEMENT[category], consider4X };
}

/**
 * Fleischner Society 2017 guidelines for incidental pulmonary nodules (MacMahon H, et al.
 * Radiology 2017;284:228-243): the recommended follow-up of one nodule. Decision support for
 * the radiologist.
 *
 * Size is the mean of the long and short axis on the axial slice of the longest diameter,
 * rounded to the nearest millimetre (the guideline's rule), so "6-8 mm" holds 6, 7 and 8 mm.
 * The guideline does not apply to patients under 35, to lung cancer screening, to patients with
 * a known cancer or to immunosuppressed patients; it is then not applied, with the reason.
 */
import type { NoduleType } from '../data/nodule-type.ts';

export const FLEISCHNER_VERSION = 'Fleischner Society 2017';

export type FleischnerRisk = 'low' | 'high';

export interface FleischnerContext {
  /** Patient's risk of lung cancer (smoking, exposure, family history...); null: both given. */
  risk: FleischnerRisk | null;
  /** Years; null when unknown (then the reader checks the guideline's age limit). */
  ageYears: number | null;
  /** 'screening': a screening programme, where Lung-RADS applies instead. */
  setting: 'incidental' | 'screening';
  knownCancer: boolean;
  immunosuppressed: boolean;
}

export const DEFAULT_FLEISCHNER_CONTEXT: FleischnerContext = {
  risk: null,
  ageYears: null,
  setting: 'incidental',
  knownCancer: false,
  immunosuppressed: false,
};

export interface FleischnerInput {
  type: NoduleType;
  /** Mean of long and short axis (mm); rounded to the nearest mm here. */
  meanDiameterMm: number;
  /** Part-solid only: the solid component's mean diameter (mm). */
  solidComponentMeanDiameterMm?: number | null;
  /** More than one nodule in the scan (the guideline's "multiple" rows). */
  multiple: boolean;
  benignCalcification: boolean;
}

export interface FleischnerResult {
  version: string;
  applicable: boolean;
  /** The follow-up, or why the guideline does not apply. */
  recommendation: string;
  /** The table row: e.g. "solid, single, 6-8 mm (7 mm)"; null when not applicable. */
  row: string | null;
}

export function roundToMm(mm: number): number {
  return Math.round(mm + 1e-9);
}

type Pair = { low: string; high: string };
const both = (s: string): Pair => ({ low: s, high: s });

/** The guideline's table (solid: by risk; subsolid: the same for both). */
const SOLID_SINGLE: Record<'lt6' | '6to8' | 'gt8', Pair> = {
  lt6: { low: 'No routine follow-up', high: 'Optional CT at 12 months' },
  '6to8': { low: 'CT at 6-12 months, then consider CT at 18-24 months', high: 'CT at 6-12 months, then CT at 18-24 months' },
  gt8: both('Consider CT at 3 months, PET/CT, or tissue sampling'),
};
const SOLID_MULTIPLE: Record<'lt6' | '6to8' | 'gt8', Pair> = {
  lt6: { low: 'No routine follow-up', high: 'Optional CT at 12 months' },
  '6to8': { low: 'CT at 3-6 months, then consider CT at 18-24 months', high: 'CT at 3-6 months, then at 18-24 months' },
  gt8: both('CT at 3-6 months, then consider CT at 18-24 months'),
};
const SUBSOLID = {
  groundGlassLt6: 'No routine follow-up',
  groundGlassGe6: 'CT at 6-12 months to confirm persistence, then CT every 2 years until 5 years',
  partSolidLt6: 'No routine follow-up',
  partSolidGe6: 'CT at 3-6 months to confirm persistence; if unchanged and the solid component remains < 6 mm, annual CT for 5 years',
  multipleLt6: 'CT at 3-6 months; if stable, consider CT at 2 and 4 years',
  multipleGe6: 'CT at 3-6 months; subsequent management based on the most suspicious nodule(s)',
} as const;

/** Why the guideline does not apply to this patient, or null. */
export function fleischnerExclusion(ctx: FleischnerContext): string | null {
  if (ctx.setting === 'screening') return 'not applicable in lung cancer screening (use Lung-RADS)';
  if (ctx.ageYears !== null && ctx.ageYears < 35) return `not applicable to patients under 35 (age ${ctx.ageYears})`;
  if (ctx.knownCancer) return 'not applicable to patients with a known cancer';
  if (ctx.immunosuppressed) return 'not applicable to immunosuppressed patients';
  return null;
}

/** The Fleischner 2017 recommendation for one nodule. */
export function fleischner2017(input: FleischnerInput, ctx: FleischnerContext = DEFAULT_FLEISCHNER_CONTEXT): FleischnerResult {
  if (!Number.isFinite(input.meanDiameterMm) || input.meanDiameterMm < 0)
    throw new RangeError(`Fleischner: meanDiameterMm must be a size in mm >= 0, got ${input.meanDiameterMm}`);
  if (ctx.ageYears !== null && !(ctx.ageYears >= 0)) throw new RangeError(`Fleischner: ageYears must be >= 0, got ${ctx.ageYears}`);
  const excluded = fleischnerExclusion(ctx);
  if (excluded) return { version: FLEISCHNER_VERSION, applicable: false, recommendation: excluded, row: null };
  if (input.benignCalcification) {
    return {
      version: FLEISCHNER_VERSION,
      applicable: false,
      recommendation: 'benign pattern of calcification: no follow-up under the guideline',
      row: null,
    };
  }
  const d = roundToMm(input.meanDiameterMm);
  const number = input.multiple ? 'multiple' : 'single';
  const ageNote = ctx.ageYears === null ? ' (applies from age 35)' : '';
  let text: string;
  let row: string;
  if (input.type === 'solid') {
    const band = d < 6 ? 'lt6' : d <= 8 ? '6to8' : 'gt8';
    const label = { lt6: '< 6 mm', '6to8': '6-8 mm', gt8: '> 8 mm' }[band];
    const pair = (input.multiple ? SOLID_MULTIPLE : SOLID_SINGLE)[band];
    row = `solid, ${number}, ${label} (${d} mm)`;
    if (ctx.risk) text = pair[ctx.risk];
    else text = pair.low === pair.high ? pair.low : `low risk: ${pair.low}; high risk: ${pair.high}`;
  } else {
    const small = d < 6;
    const kind = input.type === 'part-solid' ? 'part-solid' : 'ground-glass';
    row = `subsolid (${kind}), ${number}, ${small ? '< 6 mm' : '>= 6 mm'} (${d} mm)`;
    if (input.multiple) text = small ? SUBSOLID.multipleLt6 : SUBSOLID.multipleGe6;
    else if (kind === 'ground-glass') text = small ? SUBSOLID.groundGlassLt6 : SUBSOLID.groundGlassGe6;
    else {
      text = small ? SUBSOLID.partSolidLt6 : SUBSOLID.partSolidGe6;
      const s = input.solidComponentMeanDiameterMm;
      if (!small && s !== undefined && s !== null && roundToMm(s) >= 6)
        text += '; a persistent part-solid nodule with a solid component of 6 mm or more is highly suspicious';
    }
  }
  return { version: FLEISCHNER_VERSION, applicable: true, recommendation: text + ageNote, row };
}

/**
 * The report's clinical part: each segmented, classified nodule with its Lung-RADS v2022
 * category and Fleischner 2017 recommendation (decision support), from the patient context the
 * user gave (--risk, --age, --setting, --cancer, --immunosuppressed).
 */
import type { NoduleResult } from '../inference/nodules.ts';
import {
  assessNodule,
  DEFAULT_FLEISCHNER_CONTEXT,
  type FleischnerContext,
  type FleischnerResult,
  type LungRadsResult,
} from '../guidelines/index.ts';

export type ReportedNodule = NoduleResult & {
  /** null when the model has no nodule-level heads (no type) or nothing was segmented. */
  lungRads: LungRadsResult | null;
  fleischner: FleischnerResult | null;
};

/**
 * A nodule typed solid or ground-glass whose part-solid probability reaches this level gets a
 * warning with the category it would have as part-solid. The type head rarely calls part-solid
 * (LIDC's part-solid label is not separable from its features, docs/report.md). In its per-fold
 * cross-validation (5 folds, 802 held-out nodules, scripts/classify/cv-heads.ts) the shipped
 * type head calls 4 of the 24 part-solid nodules part-solid. This level flags 16 of the other 20,
 * and 119 of 702 solid nodules (17%).
 */
export const PART_SOLID_REVIEW_PROBABILITY = 0.12;

/** Why a nodule has no category, for the report's warnings. */
export const NO_TYPE_WARNING = 'no Lung-RADS or Fleischner: the model file has no nodule-level heads, so the nodule type is unknown';

/**
 * Adds the guidelines to every nodule of one scan; Fleischner's "multiple" rows apply when the
 * scan has more than one segmented nodule.
 */
export function withGuidelines(
  nodules: readonly NoduleResult[],
  context: FleischnerContext = DEFAULT_FLEISCHNER_CONTEXT,
): ReportedNodule[] {
  const found = nodules.filter((n) => n.measures.voxelCount > 0).length;
  return nodules.map((n) => withGuidelinesOne(n, found, context));
}

/** One nodule of a scan holding `noduleCount` segmented nodules. */
export function withGuidelinesOne(
  n: NoduleResult,
  noduleCount: number,
  context: FleischnerContext = DEFAULT_FLEISCHNER_CONTEXT,
): ReportedNodule {
  if (n.measures.voxelCount === 0) return { ...n, lungRads: null, fleischner: null };
  if (n.type === null || n.calcified === null)
    return { ...n, lungRads: null, fleischner: null, warnings: [...n.warnings, NO_TYPE_WARNING] };
  const a = assessNodule({ type: n.type, calcified: n.calcified, spiculation: n.spiculation }, n.guidelineMeasures, noduleCount, context);
  const pPartSolid = n.typeProbabilities?.[1] ?? 0;
  if (n.type === 'part-solid' || pPartSolid < PART_SOLID_REVIEW_PROBABILITY)
    return { ...n, lungRads: a.lungRads, fleischner: a.fleischner };
  const alt = assessNodule(
    { type: 'part-solid', calcified: n.calcified, spiculation: n.spiculation },
    n.guidelineMeasures,
    noduleCount,
    context,
  ).lungRads;
  const warning =
    `possibly part-solid (probability ${pPartSolid.toFixed(2)}): check for a solid component on a mediastinal window; ` +
    `read as part-solid it would be Lung-RADS ${alt.category} (${alt.reason})`;
  return { ...n, lungRads: a.lungRads, fleischner: a.fleischner, warnings: [...n.warnings, warning] };
}

/** The one-line summary of a nodule for the terminal and the viewer. */
export function clinicalSummary(n: ReportedNodule): string {
  if (n.measures.voxelCount === 0) return 'no nodule found';
  const g = n.guidelineMeasures;
  const size = `${g.longAxisMm.toFixed(1)} x ${g.shortAxisMm.toFixed(1)} mm (mean ${g.meanDiameterLungRadsMm.toFixed(1)} mm)`;
  if (!n.type || !n.typeProbabilities) return size;
  const p = Math.max(...n.typeProbabilities);
  const parts = [`${n.type} (p ${p.toFixed(2)})`, size];
  if (n.type === 'part-solid' && g.solidComponent)
    parts.push(`solid component ${((g.solidComponent.longAxisMm + g.solidComponent.shortAxisMm) / 2).toFixed(1)} mm`);
  if (n.lungRads) parts.push(`Lung-RADS ${n.lungRads.category}`);
  if (n.fleischner) parts.push(`Fleischner: ${n.fleischner.recommendation}`);
  return parts.join(', ');
}

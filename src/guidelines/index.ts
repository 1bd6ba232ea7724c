/**
 * The guidelines applied to one characterised, measured nodule: Lung-RADS v2022 (baseline
 * screening) and Fleischner 2017 (incidental). Pure functions of the nodule's type, calcification,
 * suspicious features and guideline measures; decision support, the radiologist decides.
 */
import type { NoduleType } from '../data/nodule-type.ts';
import { lungRadsBaseline, type LungRadsResult } from './lung-rads.ts';
import { fleischner2017, DEFAULT_FLEISCHNER_CONTEXT, type FleischnerContext, type FleischnerResult } from './fleischner.ts';
import type { GuidelineMeasures } from './measurements.ts';

export {
  lungRadsBaseline,
  roundToTenthMm,
  LUNG_RADS_VERSION,
  LUNG_RADS_MANAGEMENT,
  type LungRadsCategory,
  type LungRadsInput,
  type LungRadsResult,
} from './lung-rads.ts';
export {
  fleischner2017,
  fleischnerExclusion,
  roundToMm,
  FLEISCHNER_VERSION,
  DEFAULT_FLEISCHNER_CONTEXT,
  type FleischnerContext,
  type FleischnerInput,
  type FleischnerResult,
  type FleischnerRisk,
} from './fleischner.ts';
export {
  guidelineMeasures,
  axisMeasures,
  solidComponentMask,
  largestComponent,
  SOLID_COMPONENT_HU,
  type AxisMeasures,
  type GuidelineMeasures,
} from './measurements.ts';

/** Probability at or above which a binary finding (calcified, spiculated) is taken as present. */
export const FINDING_PROBABILITY = 0.5;

export interface NoduleFindings {
  type: NoduleType;
  /** Probability that the nodule is calcified. */
  calcified: number;
  /** Probability of marked spiculation (LIDC rating >= 3); null without that head. */
  spiculation: number | null;
}

export interface GuidelineAssessment {
  lungRads: LungRadsResult;
  fleischner: FleischnerResult;
}

/** Lung-RADS and Fleischner for one nodule; `noduleCount` > 1 selects Fleischner's "multiple" rows. */
export function assessNodule(
  findings: NoduleFindings,
  measures: GuidelineMeasures,
  noduleCount: number,
  context: FleischnerContext = DEFAULT_FLEISCHNER_CONTEXT,
): GuidelineAssessment {
  const calcified = findings.calcified >= FINDING_PROBABILITY;
  const solid =
    findings.type === 'part-solid'
      ? measures.solidComponent
        ? (measures.solidComponent.longAxisMm + measures.solidComponent.shortAxisMm) / 2
        : 0
      : null;
  const mean = (measures.longAxisMm + measures.shortAxisMm) / 2;
  const suspicious = findings.spiculation !== null && findings.spiculation >= FINDING_PROBABILITY ? ['spiculation'] : [];
  return {
    lungRads: lungRadsBaseline({
      type: findings.type,
      meanDiameterMm: mean,
      solidComponentMeanDiameterMm: solid,
      benignCalcification: calcified,
      suspiciousFeatures: suspicious,
    }),
    fleischner: fleischner2017(
      {
        type: findings.type,
        meanDiameterMm: mean,
        solidComponentMeanDiameterMm: solid,
        multiple: noduleCount > 1,
        benignCalcification: calcified,
      },
      context,
    ),
  };
}

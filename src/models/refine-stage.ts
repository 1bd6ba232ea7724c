/**
 * The refinement stage as the model file stores it (ModelInfo.refine): a small dense network over
 * per-voxel features of the 2D network's probability and the HU around it, applied by
 * inference/refine.ts and fitted by train/refine.ts. Here only its form and its check, so that a
 * model file is validated where it is read.
 */
export const REFINE_FORMAT = 'noduleseg.refine';

/**
 * Every feature of one voxel this version computes, in order. A stage stores the names it was
 * fitted on (any subset, in this order), and is given only those: a stage fitted before a feature
 * was added reads the same values it was fitted on.
 */
export const REFINE_FEATURE_NAMES = [
  'logit',
  'logitMeanZ',
  'logitMaxZ',
  'logitMinZ',
  'logitMeanPlane3',
  'logitMean3x3x3',
  'hu',
  'huMeanPlane3',
  'huBelow800',
  'hu800to500',
  'hu500to300',
  'hu300to0',
  'huAbove0',
  'logitXhuBelow800',
  'logitXhu800to500',
  'logitXhu500to300',
  'logitXhu300to0',
  'zSpacingMm',
  'radiusOverPredicted',
  'zOffsetOverPredicted',
  'logPredictedDiameterMm',
  // Wider context (session 16): two slices away, 5 x 5 and 9 x 9 in plane, the HU's texture, where
  // the slice lies along the nodule found and what kind of nodule it is.
  'logitMeanZ2',
  'logitMaxZ2',
  'logitMeanPlane5',
  'logitMeanPlane9',
  'huMeanPlane5',
  'huStdPlane3',
  'sliceAreaOverMax',
  'inPredictedComponent',
  'predictedMeanHu',
  'predictedShareAbove300',
] as const;

/** The features of the stages of session 15 (the first 21). */
export const REFINE_FEATURES_V1: readonly string[] = REFINE_FEATURE_NAMES.slice(0, 21);

export interface RefineLayer {
  inFeatures: number;
  outFeatures: number;
  /** [out x in], row-major. */
  weight: number[];
  bias: number[];
}

export interface RefineStage {
  format: typeof REFINE_FORMAT;
  version: 1;
  features: readonly string[];
  /** Standardisation of the features: (x - mean) / std. */
  mean: number[];
  std: number[];
  /** Dense layers with ReLU between them; the last has one output, added to the network's logit. */
  layers: RefineLayer[];
  /** How it was fitted and measured. */
  provenance: Record<string, unknown>;
}

/** Checks a stage read from a file; the message says what is wrong. */
export function validateRefineStage(s: unknown): RefineStage {
  const stage = s as RefineStage;
  if (!stage || typeof stage !== 'object' || stage.format !== REFINE_FORMAT || stage.version !== 1)
    throw new Error(`refinement stage: not ${REFINE_FORMAT} v1`);
  if (!Array.isArray(stage.features) || stage.features.length === 0) throw new Error('refinement stage: no features');
  featureColumns(stage.features);
  const D = stage.features.length;
  const finite = (a: unknown, n: number) =>
    Array.isArray(a) && a.length === n && a.every((v) => typeof v === 'number' && Number.isFinite(v));
  if (!finite(stage.mean, D) || !finite(stage.std, D) || stage.std.some((v) => !(v > 0)))
    throw new Error('refinement stage: bad standardisation');
  if (!Array.isArray(stage.layers) || stage.layers.length === 0) throw new Error('refinement stage: no layers');
  let width: number = D;
  stage.layers.forEach((l, k) => {
    if (
      l.inFeatures !== width ||
      !(l.outFeatures >= 1) ||
      !finite(l.weight, l.inFeatures * l.outFeatures) ||
      !finite(l.bias, l.outFeatures)
    )
      throw new Error(`refinement stage: layer ${k} is malformed`);
    width = l.outFeatures;
  });
  if (width !== 1) throw new Error('refinement stage: the last layer must have one output');
  return stage;
}

/** Columns of `names` in REFINE_FEATURE_NAMES; throws on an unknown, repeated or out-of-order name. */
export function featureColumns(names: readonly string[]): number[] {
  const all: readonly string[] = REFINE_FEATURE_NAMES;
  const cols = names.map((n) => all.indexOf(n));
  const bad = names.find((_name, k) => cols[k]! < 0 || (k > 0 && cols[k]! <= cols[k - 1]!));
  if (bad !== undefined) throw new Error(`refinement stage: feature '${bad}' is not one this version computes, in its order`);
  if (cols[0] !== 0) throw new Error("refinement stage: its first feature must be 'logit' (the network's own)");
  return cols;
}

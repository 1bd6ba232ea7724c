/**
 * Fitting and scoring the nodule-level heads on cached features (scripts/classify/): the labels
 * each head learns from the LIDC ratings, the feature columns it reads, training on standardised
 * rows and the metrics. Shared by train-heads.ts (settings chosen by CV on `train`, shipped heads)
 * and cv-heads.ts (the chosen settings cross-validated with per-fold networks).
 */
import { NODULE_TYPES, noduleTypeOfTexture, type NoduleType } from '../data/nodule-type.ts';
import { trainHead, featureStats, type HeadTrainOptions } from './train.ts';
import { headForward, type Head, type HeadName } from './heads.ts';
import { confusionMatrix, accuracyOf, cohenKappa, recallPerClass, rocAuc } from './metrics.ts';

/** One cached nodule: its LIDC ratings (max-voting) and its features (cache-features.ts). */
export interface RatedNodule {
  id: string;
  patientId: string;
  split: 'train' | 'val';
  texture: number;
  calcification: number;
  malignancy: number;
  spiculation: number;
  net: number[];
  hu: number[];
}

export type FeatureSet = 'network' | 'hu' | 'network+hu';

/**
 * A head's settings: the training options, the features it reads and, for the type, a prior
 * correction: log(class frequency) x prior is taken off each class's logit, so that a rare type
 * (22 part-solid nodules of 689) is not always outvoted by solid.
 */
export interface HeadSetting extends HeadTrainOptions {
  set: FeatureSet;
  prior: number;
}

export const typeIndexOf = (r: RatedNodule) => NODULE_TYPES.indexOf(noduleTypeOfTexture(r.texture) as NoduleType);

/** Each head: its label (null = left out of training and scoring) and its classes. */
export const HEAD_SPECS: Record<
  HeadName,
  { classes: string[]; label: (r: RatedNodule) => number | null; scoreLabel: (r: RatedNodule) => number | null }
> = {
  type: { classes: [...NODULE_TYPES], label: typeIndexOf, scoreLabel: typeIndexOf },
  calcified: { classes: ['no', 'yes'], label: (r) => (r.calcification !== 6 ? 1 : 0), scoreLabel: (r) => (r.calcification !== 6 ? 1 : 0) },
  // P(rating >= 4): trained on every nodule (3 is "not >= 4"), scored as the literature does (3 left out).
  malignancy: {
    classes: ['<=3', '>=4'],
    label: (r) => (r.malignancy >= 4 ? 1 : 0),
    scoreLabel: (r) => (r.malignancy >= 4 ? 1 : r.malignancy <= 2 ? 0 : null),
  },
  spiculation: { classes: ['<=2', '>=3'], label: (r) => (r.spiculation >= 3 ? 1 : 0), scoreLabel: (r) => (r.spiculation >= 3 ? 1 : 0) },
};
export const HEAD_NAMES = Object.keys(HEAD_SPECS) as HeadName[];

/** The widths of the two feature blocks (network, then HU), read from the rows. */
export interface FeatureWidths {
  net: number;
  hu: number;
}
export const widthsOf = (rows: readonly RatedNodule[]): FeatureWidths => ({ net: rows[0]!.net.length, hu: rows[0]!.hu.length });

/** The columns [from, to) of the full feature vector (network, then HU) that a set reads. */
export const columnsOf = (set: FeatureSet, w: FeatureWidths): [number, number] =>
  set === 'network' ? [0, w.net] : set === 'hu' ? [w.net, w.net + w.hu] : [0, w.net + w.hu];

/** The full feature matrix (network, then HU) of `rs`, row-major. */
export function featureMatrix(rs: readonly RatedNodule[], w: FeatureWidths): Float32Array {
  const d = w.net + w.hu;
  const x = new Float32Array(rs.length * d);
  rs.forEach((r, i) => {
    x.set(r.net, i * d);
    x.set(r.hu, i * d + w.net);
  });
  return x;
}

export function standardised(x: Float32Array, n: number, stats: { mean: Float32Array; std: Float32Array }): Float32Array {
  const d = stats.mean.length;
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out[i * d + j] = (x[i * d + j]! - stats.mean[j]!) / stats.std[j]!;
  return out;
}

/**
 * Trains one head on standardised full-width rows, reading only its set's columns; the head
 * returned takes the full vector (zero weights on the other columns), so every shipped head reads
 * the one feature vector `segment` computes.
 */
export function fitHead(xs: Float32Array, n: number, widths: FeatureWidths, labels: number[], classes: string[], s: HeadSetting): Head {
  const d = widths.net + widths.hu;
  const [a, b] = columnsOf(s.set, widths);
  const w = b - a;
  const sub = new Float32Array(n * w);
  for (let i = 0; i < n; i++) sub.set(xs.subarray(i * d + a, i * d + b), i * w);
  const head = trainHead(sub, labels, classes, s);
  const first = head.layers[0]!;
  const weight = new Float32Array(first.outFeatures * d);
  for (let o = 0; o < first.outFeatures; o++) weight.set(first.weight.subarray(o * w, (o + 1) * w), o * d + a);
  head.layers[0] = { ...first, inFeatures: d, weight };
  if (s.prior > 0 && classes.length > 2) {
    const last = head.layers[head.layers.length - 1]!;
    const bias = Float32Array.from(last.bias);
    classes.forEach((_, k) => {
      const f = labels.filter((y) => y === k).length / n;
      if (f > 0) bias[k]! -= s.prior * Math.log(f);
    });
    head.layers[head.layers.length - 1] = { ...last, bias };
  }
  return head;
}

/** Probabilities of `test` rows from a head trained on `train` rows (standardised on `train`). */
export function fitPredict(name: HeadName, train: readonly RatedNodule[], test: readonly RatedNodule[], s: HeadSetting): number[][] {
  const spec = HEAD_SPECS[name];
  const widths = widthsOf(train);
  const tr = train.filter((r) => spec.label(r) !== null);
  const xTr = featureMatrix(tr, widths);
  const stats = featureStats(xTr, tr.length);
  const head = fitHead(
    standardised(xTr, tr.length, stats),
    tr.length,
    widths,
    tr.map((r) => spec.label(r)!),
    spec.classes,
    s,
  );
  const xTe = standardised(featureMatrix(test, widths), test.length, stats);
  const d = stats.mean.length;
  return test.map((_, i) => headForward(head, xTe.subarray(i * d, (i + 1) * d)));
}

export interface HeadScores {
  n: number;
  accuracy: number;
  kappa?: number;
  recall?: number[];
  confusion?: number[][];
  auc?: number;
}

/** A head's metrics on `rs` given its probabilities (type: argmax; two classes: the 0.5 cut and AUC). */
export function scoreHead(name: HeadName, rs: readonly RatedNodule[], probs: number[][]): HeadScores {
  const spec = HEAD_SPECS[name];
  const keep = rs.map((r, i) => [spec.scoreLabel(r), probs[i]!] as const).filter(([y]) => y !== null) as Array<readonly [number, number[]]>;
  const truth = keep.map(([y]) => y);
  if (name === 'type') {
    const pred = keep.map(([, p]) => p.indexOf(Math.max(...p)));
    const m = confusionMatrix(truth, pred, 3);
    return { n: keep.length, accuracy: accuracyOf(m), kappa: cohenKappa(m), recall: recallPerClass(m), confusion: m };
  }
  const p1 = keep.map(([, p]) => p[0]!);
  const m = confusionMatrix(
    truth,
    p1.map((p) => (p >= 0.5 ? 1 : 0)),
    2,
  );
  return {
    n: keep.length,
    accuracy: accuracyOf(m),
    auc: rocAuc(
      p1,
      truth.map((y) => y === 1),
    ),
    confusion: m,
    recall: recallPerClass(m),
    kappa: cohenKappa(m),
  };
}

/** Scores rounded for printing. */
export function summariseScores(s: HeadScores): Record<string, number | number[]> {
  const r3 = (v: number) => Math.round(v * 1000) / 1000;
  return {
    n: s.n,
    accuracy: r3(s.accuracy),
    ...(s.kappa !== undefined ? { kappa: r3(s.kappa) } : {}),
    ...(s.auc !== undefined ? { auc: r3(s.auc) } : {}),
    ...(s.recall ? { recall: s.recall.map(r3) } : {}),
  };
}

/**
 * Trains and measures the nodule-level heads on the feature cache of cache-features.ts:
 * settings chosen by 5-fold patient-level cross-validation on `train` (folds stratified by type,
 * src/data/folds.ts), then trained on all of `train` and measured once on `val`. With --write,
 * the heads go into a copy of the model file (metadata entry noduleseg.heads; the tensors are
 * copied byte for byte).
 *
 *   node --import tsx scripts/classify/train-heads.ts --features runs/classify/features.json --md runs/classify/heads.md \
 *     --write models/noduleseg.safetensors --from models/noduleseg.safetensors
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { stratifiedPatientFolds } from '../../src/data/folds.ts';
import { noduleTypeOfTexture, NODULE_TYPES, type NoduleType } from '../../src/data/nodule-type.ts';
import { HU_FEATURE_NAMES } from '../../src/classify/features.ts';
import { trainHead, featureStats, DEFAULT_HEAD_TRAINING, type HeadTrainOptions } from '../../src/classify/train.ts';
import {
  headForward,
  serialiseHeads,
  HEADS_KEY,
  HEADS_FORMAT,
  type NoduleHeads,
  type Head,
  type HeadName,
} from '../../src/classify/heads.ts';
import { confusionMatrix, accuracyOf, cohenKappa, recallPerClass, rocAuc } from '../../src/classify/metrics.ts';
import { readSafetensors, writeSafetensors } from '../../src/nn/safetensors.ts';
import { writeFileAtomic } from '../../src/io/atomic.ts';
import { setNumThreads } from '../../src/tensor/index.ts';

const { values } = parseArgs({
  options: {
    features: { type: 'string', default: 'runs/classify/features.json' },
    md: { type: 'string', default: 'runs/classify/heads.md' },
    json: { type: 'string', default: 'runs/classify/heads.json' },
    from: { type: 'string' },
    write: { type: 'string' },
    threads: { type: 'string', default: '1' },
  },
});
setNumThreads(Number(values.threads));

interface Row {
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
const cache = JSON.parse(readFileSync(values.features!, 'utf8')) as { model: string; rows: Row[] };
const rows = cache.rows.filter((r) => noduleTypeOfTexture(r.texture) !== null);
const typeOf = (r: Row) => NODULE_TYPES.indexOf(noduleTypeOfTexture(r.texture) as NoduleType);
const netWidth = rows[0]!.net.length;

type FeatureSet = 'network' | 'hu' | 'network+hu';
const huWidth = rows[0]!.hu.length;
if (huWidth !== HU_FEATURE_NAMES.length)
  throw new Error(
    `${values.features}: ${huWidth} HU features, this version computes ${HU_FEATURE_NAMES.length}; run cache-features.ts again`,
  );
/** The columns [from, to) of the full feature vector (network, then HU) that a set reads. */
const columnsOf = (set: FeatureSet): [number, number] =>
  set === 'network' ? [0, netWidth] : set === 'hu' ? [netWidth, netWidth + huWidth] : [0, netWidth + huWidth];

/**
 * A head's settings: the training options, the features it reads and, for the type, a prior
 * correction: log(class frequency) x prior is taken off each class's logit, so that a rare type
 * (22 part-solid nodules of 689) is not always outvoted by solid.
 */
interface HeadSetting extends HeadTrainOptions {
  set: FeatureSet;
  prior: number;
}

/** Each head: its label (null = left out of training and scoring) and its classes. */
const HEADS: Record<HeadName, { classes: string[]; label: (r: Row) => number | null; scoreLabel: (r: Row) => number | null }> = {
  type: { classes: [...NODULE_TYPES], label: typeOf, scoreLabel: typeOf },
  calcified: { classes: ['no', 'yes'], label: (r) => (r.calcification !== 6 ? 1 : 0), scoreLabel: (r) => (r.calcification !== 6 ? 1 : 0) },
  // P(rating >= 4): trained on every nodule (3 is "not >= 4"), scored as the literature does (3 left out).
  malignancy: {
    classes: ['<=3', '>=4'],
    label: (r) => (r.malignancy >= 4 ? 1 : 0),
    scoreLabel: (r) => (r.malignancy >= 4 ? 1 : r.malignancy <= 2 ? 0 : null),
  },
  spiculation: { classes: ['<=2', '>=3'], label: (r) => (r.spiculation >= 3 ? 1 : 0), scoreLabel: (r) => (r.spiculation >= 3 ? 1 : 0) },
};
const HEAD_NAMES = Object.keys(HEADS) as HeadName[];

/** The full feature matrix (network, then HU) of `rs`, row-major. */
function matrix(rs: Row[]): Float32Array {
  const d = netWidth + huWidth;
  const x = new Float32Array(rs.length * d);
  rs.forEach((r, i) => {
    x.set(r.net, i * d);
    x.set(r.hu, i * d + netWidth);
  });
  return x;
}

function standardised(x: Float32Array, n: number, stats: { mean: Float32Array; std: Float32Array }): Float32Array {
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
function fitHead(xs: Float32Array, n: number, labels: number[], classes: string[], s: HeadSetting): Head {
  const d = netWidth + huWidth;
  const [a, b] = columnsOf(s.set);
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

/** Probabilities of `test` rows from a head trained on `train` rows. */
function fitPredict(name: HeadName, train: Row[], test: Row[], s: HeadSetting): number[][] {
  const spec = HEADS[name];
  const tr = train.filter((r) => spec.label(r) !== null);
  const xTr = matrix(tr);
  const stats = featureStats(xTr, tr.length);
  const head = fitHead(
    standardised(xTr, tr.length, stats),
    tr.length,
    tr.map((r) => spec.label(r)!),
    spec.classes,
    s,
  );
  const xTe = standardised(matrix(test), test.length, stats);
  const d = stats.mean.length;
  return test.map((_, i) => headForward(head, xTe.subarray(i * d, (i + 1) * d)));
}

interface Scores {
  n: number;
  accuracy: number;
  kappa?: number;
  recall?: number[];
  confusion?: number[][];
  auc?: number;
}

function score(name: HeadName, rs: Row[], probs: number[][]): Scores {
  const spec = HEADS[name];
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

const train = rows.filter((r) => r.split === 'train');
const val = rows.filter((r) => r.split === 'val');
const K = 5,
  SEED = 1;
const folds = stratifiedPatientFolds(
  train.map((r) => ({ patientId: r.patientId, noduleType: noduleTypeOfTexture(r.texture) })),
  K,
  SEED,
);

/** Out-of-fold probabilities over `train` (every nodule predicted by the heads of the other 4 folds). */
const cvMemo = new Map<string, number[][]>();
function crossValidate(name: HeadName, o: HeadSetting): number[][] {
  const key = JSON.stringify([name, o]);
  const hit = cvMemo.get(key);
  if (hit) return hit;
  const out: number[][] = new Array(train.length);
  for (let f = 0; f < K; f++) {
    const idx = train.map((r, i) => [r, i] as const).filter(([r]) => folds.get(r.patientId) === f);
    const p = fitPredict(
      name,
      train.filter((r) => folds.get(r.patientId) !== f),
      idx.map(([r]) => r),
      o,
    );
    idx.forEach(([, i], k) => {
      out[i] = p[k]!;
    });
  }
  cvMemo.set(key, out);
  return out;
}

/**
 * The figure of merit that picks a head's settings on cross-validation (compared in order). The
 * type's is kappa, the issue's measure. Choosing by the mean recall of the three types among the
 * settings with accuracy >= 0.85 and kappa >= 0.6 was tried in session 9: CV part-solid recall
 * 7 of 22 at kappa 0.611, but val kappa 0.446 (8 of 107 solid nodules called part-solid), so
 * the target failed on val (docs/report.md).
 */
function merit(name: HeadName, s: Scores): [number, number] {
  if (name === 'type') return [1, s.kappa!];
  if (name === 'calcified') return [1, s.kappa!];
  return [1, s.auc!];
}
const better = (a: [number, number], b: [number, number]) => a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);

const SETS: FeatureSet[] = ['network', 'hu', 'network+hu'];
/**
 * Logistic regression over the features read (all, or the HU and composition features alone),
 * L2, class balance and, for the type, the prior correction; then one small MLP at the best of
 * those. The heads chosen by AUC keep balance 0.5: AUC does not see the balance, which only moves
 * the 0.5 cut that the spiculation flag reads (balance 1 doubled the nodules flagged in session 9). No L2 below 0.01: at 0.001 on ~500 features the calcified head called a 23 mm
 * suspicious solid nodule calcified (Lung-RADS 1 instead of 4B; docs/report.md, session 8).
 */
function gridOf(name: HeadName): HeadSetting[] {
  const out: HeadSetting[] = [];
  for (const set of ['network+hu', 'hu'] as FeatureSet[])
    for (const l2 of [1e-2, 1e-1, 1])
      for (const balance of name === 'malignancy' || name === 'spiculation' ? [0.5] : [0.5, 1])
        for (const prior of name === 'type' ? [0, 0.25, 0.5] : [0])
          out.push({ ...DEFAULT_HEAD_TRAINING, hidden: 0, l2, balance, set, prior });
  return out;
}

// Each head's settings are chosen by cross-validation on train; the other feature sets are then
// scored with those settings, for comparison.
const t0 = Date.now();
const finalCv = {} as Record<HeadName, { o: HeadSetting; cv: Scores; val: Scores }>;
const bySet = {} as Record<HeadName, Record<FeatureSet, Scores>>;
for (const name of HEAD_NAMES) {
  let best: { o: HeadSetting; s: Scores } | null = null;
  const tryOne = (o: HeadSetting) => {
    const s = score(name, train, crossValidate(name, o));
    if (!best || better(merit(name, s), merit(name, best.s))) best = { o, s };
  };
  for (const o of gridOf(name)) tryOne(o);
  tryOne({ ...best!.o, hidden: 16, dropout: 0.2 });
  const chosen = best!;
  finalCv[name] = { o: chosen.o, cv: chosen.s, val: score(name, val, fitPredict(name, train, val, chosen.o)) };
  bySet[name] = {} as Record<FeatureSet, Scores>;
  for (const set of SETS)
    bySet[name][set] = set === chosen.o.set ? chosen.s : score(name, train, crossValidate(name, { ...chosen.o, set }));
  process.stderr.write(
    `${name}: ${JSON.stringify(summary(chosen.s))} val ${JSON.stringify(summary(finalCv[name].val))} ${JSON.stringify({ set: chosen.o.set, hidden: chosen.o.hidden, l2: chosen.o.l2, balance: chosen.o.balance, prior: chosen.o.prior })} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`,
  );
}

function summary(s: Scores): Record<string, number | number[]> {
  const r3 = (v: number) => Math.round(v * 1000) / 1000;
  return {
    n: s.n,
    accuracy: r3(s.accuracy),
    ...(s.kappa !== undefined ? { kappa: r3(s.kappa) } : {}),
    ...(s.auc !== undefined ? { auc: r3(s.auc) } : {}),
    ...(s.recall ? { recall: s.recall.map(r3) } : {}),
  };
}

// The shipped heads: trained on all of train with the chosen settings; one standardisation.
const xTrain = matrix(train);
const stats = featureStats(xTrain, train.length);
const xs = standardised(xTrain, train.length, stats);
const heads = {} as Record<HeadName, Head>;
for (const name of HEAD_NAMES)
  heads[name] = fitHead(
    xs,
    train.length,
    train.map((r) => HEADS[name].label(r)!),
    HEADS[name].classes,
    finalCv[name].o,
  );

const r3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '-');
const lines: string[] = [];
lines.push(
  `Features: ${netWidth} network + ${huWidth} HU, size and composition (each head reads all or the last ${huWidth} only). Cross-validation: ${K} folds by patient on train (${train.length} nodules), seed ${SEED}; val: ${val.length} nodules, heads trained on all of train.`,
  '',
);
lines.push(
  '| head | settings | CV accuracy | CV kappa | CV AUC | val accuracy | val kappa | val AUC |',
  '|---|---|---:|---:|---:|---:|---:|---:|',
);
for (const name of HEAD_NAMES) {
  const { o, cv, val: v } = finalCv[name];
  lines.push(
    `| ${name} | ${o.hidden ? `MLP ${o.hidden}` : 'logistic'} on ${o.set}, L2 ${o.l2}, balance ${o.balance}${o.prior ? `, prior ${o.prior}` : ''} | ${r3(cv.accuracy)} | ${r3(cv.kappa ?? NaN)} | ${r3(cv.auc ?? NaN)} | ${r3(v.accuracy)} | ${r3(v.kappa ?? NaN)} | ${r3(v.auc ?? NaN)} |`,
  );
}
lines.push('', 'Type, confusion matrices (rows: LIDC label; columns: predicted; solid, part-solid, ground-glass):', '');
for (const [what, s] of [
  ['CV', finalCv.type.cv],
  ['val', finalCv.type.val],
] as const) {
  lines.push(`${what} (recall ${s.recall!.map(r3).join(' / ')}):`, '', '| | solid | part-solid | ground-glass |', '|---|---:|---:|---:|');
  s.confusion!.forEach((row, i) => {
    lines.push(`| ${NODULE_TYPES[i]} | ${row.join(' | ')} |`);
  });
  lines.push('');
}
lines.push(
  'Feature sets compared (CV on train, each head with its chosen settings):',
  '',
  '| head | network | hu | network+hu |',
  '|---|---|---|---|',
);
for (const name of HEAD_NAMES)
  lines.push(`| ${name} | ${SETS.map((s) => JSON.stringify(summary(bySet[name][s])).replace(/"/g, '').replace(/,/g, ', ')).join(' | ')} |`);
const md = lines.join('\n') + '\n';
process.stdout.write(md);
writeFileAtomic(values.md!, md);
writeFileAtomic(values.json!, JSON.stringify({ heads: finalCv, bySet }, null, 1) + '\n');

if (values.write) {
  if (!values.from) throw new Error('--write needs --from <model file> (the model whose features were cached)');
  const src = readSafetensors(values.from);
  const nh: NoduleHeads = {
    format: HEADS_FORMAT,
    version: 1,
    features: { network: netWidth, hu: [...HU_FEATURE_NAMES] },
    mean: stats.mean,
    std: stats.std,
    heads,
    provenance: {
      command:
        'node --import tsx scripts/classify/cache-features.ts --threads 1 && node --import tsx scripts/classify/train-heads.ts --from models/noduleseg.safetensors --write models/noduleseg.safetensors',
      data: `lidc-crops train split (${train.length} nodules with a texture rating), labels: LIDC characteristics by max-voting`,
      crossValidation: Object.fromEntries(HEAD_NAMES.map((n) => [n, summary(finalCv[n].cv)])),
      val: Object.fromEntries(HEAD_NAMES.map((n) => [n, summary(finalCv[n].val)])),
      settings: Object.fromEntries(HEAD_NAMES.map((n) => [n, finalCv[n].o])),
    },
  };
  writeSafetensors(values.write, src.tensors, { ...src.metadata, [HEADS_KEY]: serialiseHeads(nh) });
  process.stderr.write(`${values.write}: heads written\n`);
}

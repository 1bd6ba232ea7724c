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
import { noduleTypeOfTexture, NODULE_TYPES } from '../../src/data/nodule-type.ts';
import { HU_FEATURE_NAMES } from '../../src/classify/features.ts';
import { featureStats, DEFAULT_HEAD_TRAINING } from '../../src/classify/train.ts';
import { serialiseHeads, HEADS_KEY, HEADS_FORMAT, type NoduleHeads, type Head, type HeadName } from '../../src/classify/heads.ts';
import {
  HEAD_NAMES,
  HEAD_SPECS,
  featureMatrix,
  fitHead,
  fitPredict,
  scoreHead,
  standardised,
  summariseScores,
  widthsOf,
  type FeatureSet,
  type HeadScores,
  type HeadSetting,
  type RatedNodule,
} from '../../src/classify/fit.ts';
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

const cache = JSON.parse(readFileSync(values.features!, 'utf8')) as { model: string; rows: RatedNodule[] };
const rows = cache.rows.filter((r) => noduleTypeOfTexture(r.texture) !== null);
const widths = widthsOf(rows);
const netWidth = widths.net,
  huWidth = widths.hu;
if (huWidth !== HU_FEATURE_NAMES.length)
  throw new Error(
    `${values.features}: ${huWidth} HU features, this version computes ${HU_FEATURE_NAMES.length}; run cache-features.ts again`,
  );

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
function merit(name: HeadName, s: HeadScores): [number, number] {
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
const finalCv = {} as Record<HeadName, { o: HeadSetting; cv: HeadScores; val: HeadScores }>;
const bySet = {} as Record<HeadName, Record<FeatureSet, HeadScores>>;
for (const name of HEAD_NAMES) {
  let best: { o: HeadSetting; s: HeadScores } | null = null;
  const tryOne = (o: HeadSetting) => {
    const s = scoreHead(name, train, crossValidate(name, o));
    if (!best || better(merit(name, s), merit(name, best.s))) best = { o, s };
  };
  for (const o of gridOf(name)) tryOne(o);
  tryOne({ ...best!.o, hidden: 16, dropout: 0.2 });
  const chosen = best!;
  finalCv[name] = { o: chosen.o, cv: chosen.s, val: scoreHead(name, val, fitPredict(name, train, val, chosen.o)) };
  bySet[name] = {} as Record<FeatureSet, HeadScores>;
  for (const set of SETS)
    bySet[name][set] = set === chosen.o.set ? chosen.s : scoreHead(name, train, crossValidate(name, { ...chosen.o, set }));
  process.stderr.write(
    `${name}: ${JSON.stringify(summariseScores(chosen.s))} val ${JSON.stringify(summariseScores(finalCv[name].val))} ${JSON.stringify({ set: chosen.o.set, hidden: chosen.o.hidden, l2: chosen.o.l2, balance: chosen.o.balance, prior: chosen.o.prior })} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`,
  );
}

// The shipped heads: trained on all of train with the chosen settings; one standardisation.
const xTrain = featureMatrix(train, widths);
const stats = featureStats(xTrain, train.length);
const xs = standardised(xTrain, train.length, stats);
const heads = {} as Record<HeadName, Head>;
for (const name of HEAD_NAMES)
  heads[name] = fitHead(
    xs,
    train.length,
    widths,
    train.map((r) => HEAD_SPECS[name].label(r)!),
    HEAD_SPECS[name].classes,
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
  lines.push(
    `| ${name} | ${SETS.map((s) => JSON.stringify(summariseScores(bySet[name][s])).replace(/"/g, '').replace(/,/g, ', ')).join(' | ')} |`,
  );
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
      crossValidation: Object.fromEntries(HEAD_NAMES.map((n) => [n, summariseScores(finalCv[n].cv)])),
      val: Object.fromEntries(HEAD_NAMES.map((n) => [n, summariseScores(finalCv[n].val)])),
      settings: Object.fromEntries(HEAD_NAMES.map((n) => [n, finalCv[n].o])),
    },
  };
  writeSafetensors(values.write, src.tensors, { ...src.metadata, [HEADS_KEY]: serialiseHeads(nh) });
  process.stderr.write(`${values.write}: heads written\n`);
}

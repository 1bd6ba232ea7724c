/**
 * The shipped heads' settings cross-validated the way they are used: per fold, the features come
 * from the network trained without that fold (`train --fold i/k`, the folds of `benchmark cv`),
 * the heads are trained on the other folds' nodules and predict the held-out ones, which neither
 * the network nor the heads saw. train-heads.ts's CV reads one network trained on all of `train`,
 * which has seen every nodule it is cross-validated on. The table also gives the reach of the
 * part-solid review warning (src/report/assess.ts) at a few levels around the shipped one.
 *
 *   node --import tsx scripts/classify/cache-features.ts --model runs/cv-ggo-1/best.safetensors --out runs/classify/features-fold1.json   # each fold
 *   node --import tsx scripts/classify/cv-heads.ts --features 'runs/classify/features-fold{fold}.json' --model models/noduleseg.safetensors --md runs/classify/cv-heads.md
 */
import { parseArgs } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import { stratifiedPatientFolds } from '../../src/data/folds.ts';
import { noduleTypeOfTexture, NODULE_TYPES } from '../../src/data/nodule-type.ts';
import { readSafetensors } from '../../src/nn/safetensors.ts';
import { HEADS_KEY, parseHeads, type HeadName } from '../../src/classify/heads.ts';
import {
  HEAD_NAMES,
  fitPredict,
  scoreHead,
  summariseScores,
  typeIndexOf,
  type HeadSetting,
  type RatedNodule,
} from '../../src/classify/fit.ts';
import { writeFileAtomic } from '../../src/io/atomic.ts';
import { setNumThreads } from '../../src/tensor/index.ts';
import { reviewWarningCounts } from '../../src/classify/metrics.ts';
import { PART_SOLID_REVIEW_PROBABILITY } from '../../src/report/assess.ts';

const { values } = parseArgs({
  options: {
    features: { type: 'string', default: 'runs/classify/features-fold{fold}.json' },
    model: { type: 'string', default: 'models/noduleseg.safetensors' },
    folds: { type: 'string', default: '5' },
    'fold-seed': { type: 'string', default: '1' },
    md: { type: 'string', default: 'runs/classify/cv-heads.md' },
    // the out-of-fold probabilities, one row per held-out nodule
    json: { type: 'string' },
    threads: { type: 'string', default: '1' },
    // e.g. --override 'type={"set":"hu","prior":0.25}': settings to try in place of the shipped ones
    override: { type: 'string', multiple: true, default: [] },
  },
});
setNumThreads(Number(values.threads));
const K = Number(values.folds),
  SEED = Number(values['fold-seed']);
const text = readSafetensors(values.model!).metadata[HEADS_KEY];
if (text === undefined) throw new Error(`${values.model}: no nodule-level heads`);
const settings = parseHeads(text).provenance['settings'] as Record<string, HeadSetting> | undefined;
if (!settings || HEAD_NAMES.some((n) => !settings[n]?.set)) throw new Error(`${values.model}: its heads do not record their settings`);
for (const o of values.override!) {
  const eq = o.indexOf('=');
  const name = o.slice(0, eq) as HeadName;
  if (!HEAD_NAMES.includes(name)) throw new Error(`--override: expected <head>=<json>, got ${o}`);
  settings[name] = { ...settings[name]!, ...(JSON.parse(o.slice(eq + 1)) as Partial<HeadSetting>) };
}

const pooled: { rows: RatedNodule[]; probs: Record<string, number[][]> } = {
  rows: [],
  probs: Object.fromEntries(HEAD_NAMES.map((n) => [n, []])),
};
const perFold: string[] = [];
for (let f = 0; f < K; f++) {
  const file = values.features!.replace('{fold}', String(f + 1));
  if (!existsSync(file)) {
    process.stderr.write(`${file}: missing, fold ${f + 1} left out\n`);
    continue;
  }
  const all = (JSON.parse(readFileSync(file, 'utf8')) as { rows: RatedNodule[] }).rows;
  // The fold assignment of train --fold and benchmark cv: every crop of train + val, by patient.
  const folds = stratifiedPatientFolds(
    all.map((r) => ({ patientId: r.patientId, noduleType: noduleTypeOfTexture(r.texture) })),
    K,
    SEED,
  );
  const rated = all.filter((r) => noduleTypeOfTexture(r.texture) !== null);
  const train = rated.filter((r) => folds.get(r.patientId) !== f);
  const test = rated.filter((r) => folds.get(r.patientId) === f);
  const cells: string[] = [];
  for (const name of HEAD_NAMES) {
    const p = fitPredict(name, train, test, settings[name]!);
    pooled.probs[name]!.push(...p);
    const s = scoreHead(name, test, p);
    cells.push(name === 'type' || name === 'calcified' ? s.kappa!.toFixed(3) : s.auc!.toFixed(3));
  }
  pooled.rows.push(...test);
  perFold.push(`| ${f + 1} | ${test.length} | ${cells.join(' | ')} |`);
  process.stderr.write(`fold ${f + 1}: ${test.length} held-out nodules\n`);
}
if (!pooled.rows.length) throw new Error(`no feature cache found (${values.features})`);

const r3 = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v.toFixed(3) : '-');
const lines = [
  `Heads cross-validated with per-fold networks: ${perFold.length} of ${K} folds over lidc-crops train + val (fold seed ${SEED}), ${pooled.rows.length} held-out nodules; settings of ${values.model}.`,
  '',
  '| head | settings | accuracy | kappa | AUC | recall |',
  '|---|---|---:|---:|---:|---|',
];
const scores = Object.fromEntries(HEAD_NAMES.map((n) => [n, scoreHead(n, pooled.rows, pooled.probs[n]!)]));
for (const name of HEAD_NAMES) {
  const s = scores[name]!,
    o = settings[name]!;
  lines.push(
    `| ${name} (${s.n}) | ${o.hidden ? `MLP ${o.hidden}` : 'logistic'} on ${o.set}, L2 ${o.l2}, balance ${o.balance}${o.prior ? `, prior ${o.prior}` : ''} | ${r3(s.accuracy)} | ${r3(s.kappa)} | ${r3(s.auc)} | ${s.recall!.map(r3).join(' / ')} |`,
  );
}
lines.push(
  '',
  'Per fold (type and calcified: kappa; malignancy and spiculation: AUC):',
  '',
  `| fold | nodules | ${HEAD_NAMES.join(' | ')} |`,
  '|---:|---:|---:|---:|---:|---:|',
  ...perFold,
);
lines.push(
  '',
  'Type, pooled confusion matrix (rows: LIDC label by max-voting; columns: predicted):',
  '',
  '| | solid | part-solid | ground-glass | recall |',
  '|---|---:|---:|---:|---:|',
);
scores['type']!.confusion!.forEach((row, i) => {
  lines.push(`| ${NODULE_TYPES[i]} (${row.reduce((a, b) => a + b, 0)}) | ${row.join(' | ')} | ${r3(scores['type']!.recall![i])} |`);
});
// The part-solid review warning (src/report/assess.ts) on the same out-of-fold probabilities.
const pct = (a: number, b: number) => (b ? `${Math.round((100 * a) / b)}%` : '-');
const levels = [...new Set([0.08, 0.1, PART_SOLID_REVIEW_PROBABILITY, 0.15, 0.2])].sort((a, b) => a - b);
const warn = reviewWarningCounts(pooled.rows.map(typeIndexOf), pooled.probs['type']!, levels);
const w0 = warn[0]!;
lines.push(
  '',
  `Part-solid review warning (typed solid or ground-glass, part-solid probability >= the level; shipped level ${PART_SOLID_REVIEW_PROBABILITY}):`,
  '',
  `| review level | part-solid typed + flagged (of ${w0.partSolid}) | solid flagged (of ${w0.solid}) | ground-glass flagged (of ${w0.groundGlass}) |`,
  '|---:|---:|---:|---:|',
  ...warn.map((c) => {
    const l = c.level === PART_SOLID_REVIEW_PROBABILITY ? `**${c.level.toFixed(2)}**` : c.level.toFixed(2);
    return `| ${l} | ${c.partSolidTyped} + ${c.partSolidFlagged} (${pct(c.partSolidTyped + c.partSolidFlagged, c.partSolid)}) | ${c.solidFlagged} (${pct(c.solidFlagged, c.solid)}) | ${c.groundGlassFlagged} (${pct(c.groundGlassFlagged, c.groundGlass)}) |`;
  }),
);
const md = lines.join('\n') + '\n';
if (values.json)
  writeFileAtomic(
    values.json,
    JSON.stringify(
      pooled.rows.map((r, i) => ({
        id: r.id,
        texture: r.texture,
        calcification: r.calcification,
        malignancy: r.malignancy,
        spiculation: r.spiculation,
        ...Object.fromEntries(HEAD_NAMES.map((n) => [n, pooled.probs[n]![i]])),
      })),
    ) + '\n',
  );
process.stdout.write(md);
writeFileAtomic(values.md!, md);
process.stderr.write(`${JSON.stringify(Object.fromEntries(HEAD_NAMES.map((n) => [n, summariseScores(scores[n]!)])))}\n`);

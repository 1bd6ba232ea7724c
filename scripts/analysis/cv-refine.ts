/**
 * A second stage across slices on the fold models' probabilities (nnU-Net's cascade in its
 * smallest form): does a voxel's 2D probability, read with its neighbours in the slices above and
 * below, the HU around it and where it lies against the predicted nodule, say more than the 2D
 * probability alone? Stacked cross-validation: each fold's held-out crops get their probability
 * from that fold's network (never trained on them), and each fold's second stage is fitted on the
 * other folds' held-out probabilities only, so no nodule's label reaches its own prediction.
 *
 *   node --import tsx scripts/analysis/cv-refine.ts --dump runs/oof-probs --models 'runs/cv-shift-{fold}/best.safetensors' --threads 2
 *   node --import tsx scripts/analysis/cv-refine.ts --in runs/oof-probs --hidden 0,16 --levels 0.1,0.25,0.3,0.35,0.4,0.45 --out runs/cv-refine.json
 *
 * The dump (scripts/refine/oof.ts) keeps each held-out crop's probability, one plain pass at the
 * centre; each level's mask is cut at the centre as `segment` cuts a crop's. It prints, per stage
 * (the network alone, a stage of each --hidden width) and level, the Dice against the union, the
 * consensus and each reader, and the paired change against the network at the same level.
 */
import { parseArgs } from 'node:util';
import { cropCentreVoxel, lidcCropsDir, loadCrops, type CropCase } from '../../src/data/index.ts';
import { setNumThreads } from '../../src/tensor/index.ts';
import { refineRows } from '../../src/inference/refine.ts';
import { fitRefineStage, DEFAULT_REFINE_FIT, isRefineWeighting, refineFeatureSet, typeBalanceWeights } from '../../src/train/refine.ts';
import { scoreCrop, usableReaderMasks } from '../../src/eval/benchmark.ts';
import { readReaderIndex } from '../../src/eval/readers.ts';
import { cutAtPrompt } from '../../src/inference/predict.ts';
import { writeFileAtomic } from '../../src/io/atomic.ts';
import { dumpOof, readOof, type OofCrop } from '../refine/oof.ts';

const { values } = parseArgs({
  options: {
    dump: { type: 'string' },
    in: { type: 'string' },
    folds: { type: 'string', default: '1,2,3,4,5' },
    models: { type: 'string', default: 'runs/cv-shift-{fold}/best.safetensors' },
    hidden: { type: 'string', default: '0' },
    steps: { type: 'string', default: '400' },
    weighting: { type: 'string', default: 'crop' },
    features: { type: 'string', default: 'all' },
    'type-balance': { type: 'string', default: '0' },
    levels: { type: 'string', default: '0.35,0.4,0.45,0.5' },
    out: { type: 'string' },
    threads: { type: 'string', default: '2' },
  },
});
setNumThreads(Number(values.threads));
const folds = values.folds!.split(',').map(Number);

if (values.dump) {
  dumpOof(loadCrops(), folds, values.models!, values.dump);
  process.exit(0);
}
if (!values.in) throw new Error('give --dump DIR or --in DIR');

const dir = lidcCropsDir();
const readerIndex = readReaderIndex(dir);
// v1: the 21 features of session 15; all: every feature this version computes.
const features = refineFeatureSet(values.features!);
const weighting = values.weighting!;
if (!features || !isRefineWeighting(weighting)) throw new Error('--features is v1 or all, --weighting voxel or crop');
const rows = readOof(loadCrops({ labels: 'agreement' }), folds, values.in, features);
process.stderr.write(`${rows.length} crops, ${rows.reduce((s, r) => s + r.voxels.length, 0)} region voxels\n`);

// A level is a number, or d<alpha>: per nodule, alpha times the best expected Dice against the
// probability taken as a soft target (the level that maximises it is half that Dice).
const levels = values.levels!.split(',');
const expectedDiceLevel = (prob: ArrayLike<number>, alpha: number) => {
  const q = Float32Array.from(prob)
    .filter((v) => v > 1e-3)
    .sort()
    .reverse();
  let total = 0;
  for (const v of q) total += v;
  let c = 0,
    best = 0;
  q.forEach((v, k) => {
    c += v;
    best = Math.max(best, (2 * c) / (k + 1 + total));
  });
  return alpha * best;
};
const levelOf = (spec: string, prob: ArrayLike<number>) =>
  spec.startsWith('d') ? expectedDiceLevel(prob, Number(spec.slice(1))) : Number(spec);
const hiddens = values.hidden!.split(',').map(Number);
// Crop weights by type (typeBalanceWeights), each an exponent: 0 leaves the crops alike.
const balances = values['type-balance']!.split(',').map(Number);
interface Result {
  id: string;
  type: string | null;
  fold: number;
  scores: Record<string, { union: number; consensus: number; reader: number }>;
}
const results = new Map<string, Result>();
const score = (r: OofCrop, prob: ArrayLike<number>, key: string) => {
  const readers = usableReaderMasks(dir, readerIndex, r.crop);
  for (const spec of levels) {
    const level = levelOf(spec, prob);
    const mask = cutAtPrompt(
      Uint8Array.from(prob, (v) => (v > level ? 1 : 0)),
      r.crop.image,
      cropCentreVoxel(r.crop.image.dims),
    );
    // Score against the union mask of metadata (loadCrops' agreement labels replace `mask` by the consensus).
    const s = scoreCrop(unionCrop(r.crop), mask, readers);
    const res = results.get(r.crop.id) ?? { id: r.crop.id, type: s.type, fold: r.fold, scores: {} };
    results.set(r.crop.id, res);
    res.scores[`${key}@${spec}`] = { union: s.diceUnion, consensus: s.diceConsensus, reader: s.diceReaders };
  }
};
const unionCrops = new Map(loadCrops().map((c) => [c.id, c]));
const unionCrop = (c: CropCase) => unionCrops.get(c.id)!;

for (const r of rows) score(r, r.probability, '2d');
for (const hidden of hiddens)
  for (const balance of balances) {
    const key = `h${hidden}${balance ? `b${balance}` : ''}`;
    for (const f of folds) {
      process.stderr.write(`${key}, fold ${f}\n`);
      const train = rows.filter((r) => r.fold !== f);
      const weights = typeBalanceWeights(
        train.map((r) => r.crop.noduleType),
        balance,
      );
      const stage = fitRefineStage(
        train.map((r, k) => ({ ...r.rows, weight: weights[k]! })),
        { ...DEFAULT_REFINE_FIT, features, hidden, steps: Number(values.steps), weighting },
      );
      const fit = stage.provenance['fit'] as { rows: number; networkLoss: number; stageLoss: number };
      process.stderr.write(`  ${fit.rows} rows, loss ${fit.networkLoss.toFixed(4)} -> ${fit.stageLoss.toFixed(4)}\n`);
      for (const r of rows.filter((q) => q.fold === f)) {
        const refined = Float32Array.from(r.probability);
        const p = refineRows(stage, r.rows.x);
        r.voxels.forEach((v, k) => {
          refined[v] = p[k]!;
        });
        score(r, refined, key);
      }
    }
  }

const meanOf = (v: number[]) => {
  const ok = v.filter(Number.isFinite);
  return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : Number.NaN;
};
const list = [...results.values()];
const keys = Object.keys(list[0]!.scores);
console.log(
  '| stage @ level | vs union | vs consensus | vs each reader | part-solid cons. | ground-glass cons. | paired cons. vs 2d@same (SE) |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const k of keys) {
  const m = (rs: Result[], w: 'union' | 'consensus' | 'reader') => meanOf(rs.map((r) => r.scores[k]![w]));
  const ref = `2d@${k.split('@')[1]}`;
  const diffs = list.map((r) => r.scores[k]!.consensus - r.scores[ref]!.consensus).filter(Number.isFinite);
  const md = meanOf(diffs);
  const se = Math.sqrt(diffs.reduce((s, d) => s + (d - md) ** 2, 0) / (diffs.length - 1) / diffs.length);
  console.log(
    `| ${k} | ${m(list, 'union').toFixed(3)} | ${m(list, 'consensus').toFixed(3)} | ${m(list, 'reader').toFixed(3)} | ${m(
      list.filter((r) => r.type === 'part-solid'),
      'consensus',
    ).toFixed(3)} | ${m(
      list.filter((r) => r.type === 'ground-glass'),
      'consensus',
    ).toFixed(3)} | ${md >= 0 ? '+' : ''}${md.toFixed(3)} (${se.toFixed(3)}) |`,
  );
}
// Per nodule, every stage and level (JSON).
if (values.out) writeFileAtomic(values.out, JSON.stringify(list));

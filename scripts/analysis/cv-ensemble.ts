/**
 * Two (or more) trainings of a fold, averaged: each held-out crop's probabilities from every
 * model of the fold (one plain pass at the centre, as cv-levels.ts), their mean thresholded at
 * the level and cut as `segment` cuts a crop's mask, scored like `benchmark cv`. Prints each
 * model alone and the average, by type, and the paired difference of the average against the
 * first model. Whether averaging trainings steadies the faint ground-glass nodules that move
 * between trainings (docs/results.md, "Next").
 *
 *   node --import tsx scripts/analysis/cv-ensemble.ts --folds 3,4 --models 'runs/cv-shift-{fold}/best.safetensors,runs/cv-ggo-{fold}/best.safetensors'
 */
import { parseArgs } from 'node:util';
import { cropCentreVoxel, foldSplit, lidcCropsDir, loadCrops } from '../../src/data/index.ts';
import { loadModel } from '../../src/models/index.ts';
import { setNumThreads } from '../../src/tensor/index.ts';
import { scoreCrop, summariseGroup, usableReaderMasks, type CropBenchmarkRow } from '../../src/eval/benchmark.ts';
import { readReaderIndex } from '../../src/eval/readers.ts';
import { cutAtPrompt, segmentVolume } from '../../src/inference/predict.ts';

const { values } = parseArgs({
  options: {
    folds: { type: 'string', default: '3,4' },
    models: { type: 'string', default: 'runs/cv-shift-{fold}/best.safetensors,runs/cv-ggo-{fold}/best.safetensors' },
    threshold: { type: 'string', default: '0.4' },
    threads: { type: 'string', default: '1' },
  },
});
setNumThreads(Number(values.threads));
const LEVEL = Number(values.threshold);
const patterns = values.models!.split(',');
const names = [...patterns.map((p, k) => `model ${k + 1} (${p})`), 'average'];

const all = loadCrops();
const dir = lidcCropsDir();
const readerIndex = readReaderIndex(dir);
const rows: CropBenchmarkRow[][] = names.map(() => []);

for (const f of values.folds!.split(',').map(Number)) {
  const held = foldSplit(all, 5, f - 1, 1).heldOut;
  // probs[model][crop]: one model in memory at a time.
  const probs: Float32Array[][] = [];
  for (const pattern of patterns) {
    const { model, info } = loadModel(pattern.replaceAll('{fold}', String(f)));
    model.eval();
    // One plain pass at the crop's centre, as `segment` computes it (the cut is applied below).
    probs.push(held.map((c) => segmentVolume(model, c.image, info.slice, { keepPromptComponent: false }).probability.data));
    model.dispose();
    process.stderr.write(`fold ${f}: ${pattern} done\n`);
  }
  held.forEach((c, i) => {
    const readers = usableReaderMasks(dir, readerIndex, c);
    const mean = new Float32Array(probs[0]![i]!.length);
    for (const p of probs) {
      const q = p[i]!;
      for (let j = 0; j < q.length; j++) mean[j]! += q[j]! / probs.length;
    }
    const centre = cropCentreVoxel(c.image.dims);
    [...probs.map((p) => p[i]!), mean].forEach((prob, k) => {
      const mask = cutAtPrompt(
        Uint8Array.from(prob, (v) => (v > LEVEL ? 1 : 0)),
        c.image,
        centre,
      );
      rows[k]!.push(scoreCrop(c, mask, readers));
    });
  });
}

const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '-');
console.log(
  `Folds ${values.folds}, ${rows[0]!.length} held-out nodules, level ${LEVEL}, one pass at the centre (union / consensus / each reader).\n`,
);
const groups: Array<[string, (r: CropBenchmarkRow) => boolean]> = [
  ['all', () => true],
  ['solid', (r) => r.type === 'solid'],
  ['part-solid', (r) => r.type === 'part-solid'],
  ['ground-glass', (r) => r.type === 'ground-glass'],
];
console.log(`| | ${groups.map(([g]) => g).join(' | ')} |`);
console.log(`|---|${groups.map(() => '---').join('|')}|`);
rows.forEach((rs, k) => {
  const cells = groups.map(([g, keep]) => {
    const s = summariseGroup(g, rs.filter(keep));
    return `${f3(s.diceUnion)} / ${f3(s.diceConsensus)} / ${f3(s.diceReaders)}`;
  });
  console.log(`| ${names[k]} | ${cells.join(' | ')} |`);
});
// Paired: the average against the first model, per nodule.
const paired = (k: 'diceUnion' | 'diceConsensus' | 'diceReaders', keep: (r: CropBenchmarkRow) => boolean) => {
  const d = rows[0]!
    .map((r, i) => [r, rows[rows.length - 1]![i]!] as const)
    .filter(([r, e]) => keep(r) && Number.isFinite(r[k]) && Number.isFinite(e[k]))
    .map(([r, e]) => e[k] - r[k]);
  const m = d.reduce((a, b) => a + b, 0) / d.length;
  const se = Math.sqrt(d.reduce((a, b) => a + (b - m) ** 2, 0) / (d.length - 1) / d.length);
  return `${m >= 0 ? '+' : ''}${m.toFixed(3)} (${se.toFixed(3)})`;
};
console.log(
  `| average - model 1 (SE) | ${groups.map(([, keep]) => (['diceUnion', 'diceConsensus', 'diceReaders'] as const).map((k) => paired(k, keep)).join(' / ')).join(' | ')} |`,
);

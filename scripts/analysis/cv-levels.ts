/**
 * The mask's probability level, per nodule, on the cross-validation fold models: each held-out
 * crop's probabilities are computed once (plain, as `segment` does), thresholded at every level
 * of LEVELS and cut as `segment` cuts a crop's mask; each level's mask is scored like
 * `benchmark cv` (union, 50% consensus, each reader) and its volume set against the readers'
 * mean volume. It prints the table by level and a level chosen per nodule size (the equivalent
 * diameter of the mask at the reference level, what inference knows of the size), chosen out of
 * fold: each fold's levels are the best on the other folds, so that no nodule's level is fitted
 * on that nodule. `--in` prints the tables of a JSON written before, without the models.
 *
 *   node --import tsx scripts/analysis/cv-levels.ts --folds 1,2,3,4,5 --models 'runs/cv-ggo-{fold}/best.safetensors' --out runs/cv-levels.json
 *   node --import tsx scripts/analysis/cv-levels.ts --in runs/cv-levels.json
 */
import { parseArgs } from 'node:util';
import { cropCentreVoxel, foldSplit, lidcCropsDir, loadCrops } from '../../src/data/index.ts';
import { loadModel } from '../../src/models/index.ts';
import { setNumThreads } from '../../src/tensor/index.ts';
import { scoreCrop, usableReaderMasks } from '../../src/eval/benchmark.ts';
import { readReaderIndex } from '../../src/eval/readers.ts';
import { cutAtPrompt, segmentVolume } from '../../src/inference/predict.ts';
import { writeFileAtomic } from '../../src/io/atomic.ts';
import { readFileSync } from 'node:fs';

const { values } = parseArgs({
  options: {
    folds: { type: 'string', default: '1,2,3,4,5' },
    models: { type: 'string', default: 'runs/cv-ggo-{fold}/best.safetensors' },
    out: { type: 'string', default: 'runs/cv-levels.json' },
    in: { type: 'string' },
    'reference-level': { type: 'string', default: '0.4' },
    threads: { type: 'string', default: '1' },
  },
});
setNumThreads(Number(values.threads));
const LEVELS = [0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65];
const REFERENCE_LEVEL = Number(values['reference-level']);

interface LevelScore {
  level: number;
  diceUnion: number;
  diceConsensus: number;
  diceReaders: number;
  predictedVoxels: number;
}
interface NoduleLevels {
  id: string;
  fold: number;
  type: string | null;
  sizeGroup: string | null;
  readers: number;
  /** Equivalent-sphere diameter (mm) of the mask at the reference level: what inference knows of the size. */
  predictedDiameterMm: number;
  /** The readers' mean volume (voxels); NaN without reader masks. */
  meanReaderVoxels: number;
  unionVoxels: number;
  levels: LevelScore[];
}

/** Scores every held-out crop of `folds` at every level. */
function scoreLevels(folds: number[]): NoduleLevels[] {
  const all = loadCrops();
  const dir = lidcCropsDir();
  const readerIndex = readReaderIndex(dir);
  const out: NoduleLevels[] = [];
  for (const f of folds) {
    const { model, info } = loadModel(values.models!.replaceAll('{fold}', String(f)));
    model.eval();
    const held = foldSplit(all, 5, f - 1, 1).heldOut;
    const t0 = Date.now();
    held.forEach((c, k) => {
      const centre = cropCentreVoxel(c.image.dims);
      // One plain pass at the centre, as `segment` computes it; each level is cut below.
      const prob = segmentVolume(model, c.image, info.slice, { centreVoxel: centre, keepPromptComponent: false }).probability.data;
      const readers = usableReaderMasks(dir, readerIndex, c);
      const maskAt = (t: number) =>
        cutAtPrompt(
          Uint8Array.from(prob, (v) => (v > t ? 1 : 0)),
          c.image,
          centre,
        );
      const voxelMm3 = c.image.spacingMm[0] * c.image.spacingMm[1] * c.image.spacingMm[2];
      const refMask = maskAt(REFERENCE_LEVEL);
      const refVoxels = refMask.reduce((s, v) => s + v, 0);
      const levels = LEVELS.map((level) => {
        const r = scoreCrop(c, maskAt(level), readers);
        return {
          level,
          diceUnion: r.diceUnion,
          diceConsensus: r.diceConsensus,
          diceReaders: r.diceReaders,
          predictedVoxels: r.predictedVoxels,
        };
      });
      const first = scoreCrop(c, refMask, readers);
      out.push({
        id: c.id,
        fold: f,
        type: first.type,
        sizeGroup: first.sizeGroup,
        readers: first.readers,
        predictedDiameterMm: Math.cbrt((6 * refVoxels * voxelMm3) / Math.PI),
        meanReaderVoxels: readers.length ? readers.reduce((s, m) => s + m.reduce((a, v) => a + v, 0), 0) / readers.length : Number.NaN,
        unionVoxels: first.unionVoxels,
        levels,
      });
      if ((k + 1) % 40 === 0) process.stderr.write(`fold ${f} ${k + 1}/${held.length} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
    });
    model.dispose();
  }
  return out;
}

const nodules: NoduleLevels[] = values.in
  ? (JSON.parse(readFileSync(values.in, 'utf8')) as NoduleLevels[])
  : scoreLevels(values.folds!.split(',').map(Number));
if (!values.in) {
  writeFileAtomic(values.out!, JSON.stringify(nodules));
  process.stderr.write(`${nodules.length} nodules -> ${values.out}\n`);
}

const meanOf = (v: number[]) => {
  const ok = v.filter((x) => Number.isFinite(x));
  return ok.length ? ok.reduce((a, x) => a + x, 0) / ok.length : Number.NaN;
};
const medianOf = (v: number[]) => {
  const ok = v.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return ok.length ? (ok[(ok.length - 1) >> 1]! + ok[ok.length >> 1]!) / 2 : Number.NaN;
};
const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '-');
const at = (n: NoduleLevels, level: number) => n.levels.find((l) => l.level === level)!;
const levelsOf = nodules[0]?.levels.map((l) => l.level) ?? [];
const foldsIn = [...new Set(nodules.map((n) => n.fold))].sort((a, b) => a - b);
const byType = (t: string) => nodules.filter((n) => n.type === t);

console.log(`Folds ${foldsIn.join(', ')}: ${nodules.length} held-out nodules, one pass at the centre.\n`);
console.log(
  '| level | vs union | vs 50% consensus | vs each reader | part-solid vs consensus | ground-glass vs consensus | volume / mean reader (median) |',
);
console.log('|---:|---:|---:|---:|---:|---:|---:|');
for (const level of levelsOf) {
  const mean = (rs: NoduleLevels[], k: 'diceUnion' | 'diceConsensus' | 'diceReaders') => meanOf(rs.map((n) => at(n, level)[k]));
  const volume = medianOf(nodules.map((n) => at(n, level).predictedVoxels / n.meanReaderVoxels));
  console.log(
    `| ${level} | ${f3(mean(nodules, 'diceUnion'))} | ${f3(mean(nodules, 'diceConsensus'))} | ${f3(mean(nodules, 'diceReaders'))} | ${f3(mean(byType('part-solid'), 'diceConsensus'))} | ${f3(mean(byType('ground-glass'), 'diceConsensus'))} | ${volume.toFixed(2)} |`,
  );
}

// A level per size bin (predicted diameter), chosen on the other folds for each fold.
const BINS_MM = [0, 5, 8, 12, 20, Number.POSITIVE_INFINITY];
const binOf = (n: NoduleLevels) => BINS_MM.findIndex((b, i) => n.predictedDiameterMm >= b && n.predictedDiameterMm < BINS_MM[i + 1]!);
const bestLevel = (rs: NoduleLevels[]) => {
  let best = levelsOf[0]!,
    bestDice = Number.NEGATIVE_INFINITY;
  for (const level of levelsOf) {
    const d = meanOf(rs.map((n) => at(n, level).diceConsensus));
    if (d > bestDice) [best, bestDice] = [level, d];
  }
  return best;
};
const perSize: number[] = [],
  single: number[] = [];
const chosen: string[] = [];
for (const f of foldsIn) {
  const others = nodules.filter((n) => n.fold !== f);
  const held = nodules.filter((n) => n.fold === f);
  const one = bestLevel(others);
  const perBin = BINS_MM.slice(0, -1).map((_, b) => {
    const inBin = others.filter((n) => binOf(n) === b);
    return inBin.length ? bestLevel(inBin) : one;
  });
  for (const n of held) {
    perSize.push(at(n, perBin[binOf(n)]!).diceConsensus);
    single.push(at(n, one).diceConsensus);
  }
  chosen.push(`fold ${f}: one level ${one}, per size ${perBin.join(' / ')}`);
}
console.log(
  `\nLevel chosen out of fold against the consensus: one level ${f3(meanOf(single))}, a level per predicted diameter (${BINS_MM.slice(1, -1).join(' / ')} mm bins) ${f3(meanOf(perSize))}.`,
);
for (const c of chosen) console.log(`- ${c}`);

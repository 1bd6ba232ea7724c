/**
 * The mask's probability level, per nodule, on the cross-validation fold models: each held-out
 * crop's probabilities are computed once (plain, as `segment` does), thresholded at every level
 * of LEVELS and cut as `segment` cuts a crop's mask; each level's mask is scored like
 * `benchmark cv` (union, 50% consensus, each reader) and its volume set against the readers'
 * mean volume. With the equivalent diameter of the mask at the shipped level, this is what a
 * level chosen per nodule size needs; the choice itself is made out of fold by
 * cv-levels-choose.ts, so that no nodule's level is fitted on that nodule.
 *
 *   node --import tsx scripts/analysis/cv-levels.ts --folds 1,2,3,4,5 --models 'runs/cv-ggo-{fold}/best.safetensors' --out runs/cv-levels.json
 */
import { parseArgs } from 'node:util';
import { foldSplit, lidcCropsDir, loadCrops, sliceGrid, slicesToProbability, volumeToSlices } from '../../src/data/index.ts';
import { loadModel } from '../../src/models/index.ts';
import { noGrad, setNumThreads, tensor, tidy } from '../../src/tensor/index.ts';
import { scoreCrop, usableReaderMasks } from '../../src/eval/benchmark.ts';
import { readReaderIndex } from '../../src/eval/readers.ts';
import { cutAtPrompt } from '../../src/inference/predict.ts';
import { writeFileAtomic } from '../../src/io/atomic.ts';
import type { Vec3 } from '../../src/io/volume.ts';

const { values } = parseArgs({
  options: {
    folds: { type: 'string', default: '1,2,3,4,5' },
    models: { type: 'string', default: 'runs/cv-ggo-{fold}/best.safetensors' },
    out: { type: 'string', default: 'runs/cv-levels.json' },
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

const all = loadCrops();
const dir = lidcCropsDir();
const readerIndex = readReaderIndex(dir);
const out: NoduleLevels[] = [];
const folds = values.folds!.split(',').map(Number);
for (const f of folds) {
  const { model, info } = loadModel(values.models!.replaceAll('{fold}', String(f)));
  model.eval();
  const held = foldSplit(all, 5, f - 1, 1).heldOut;
  const t0 = Date.now();
  held.forEach((c, k) => {
    const [nx, ny, nz] = c.image.dims;
    const centre: Vec3 = [(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2];
    const grid = sliceGrid(c.image, info.slice, centre);
    const x = volumeToSlices(grid);
    let prob: Float32Array = new Float32Array(0);
    noGrad(() =>
      tidy(() => {
        const p = model.forward(tensor(x.input, x.shape)).maskLogits.sigmoid();
        prob = slicesToProbability(p.toTypedArray() as Float32Array, grid).data;
      }),
    );
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
writeFileAtomic(values.out!, JSON.stringify(out));
process.stderr.write(`${out.length} nodules -> ${values.out}\n`);

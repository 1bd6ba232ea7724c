/**
 * Inference-time variants of the cross-validation fold models, without retraining: test-time
 * averaging (flips; flips and transposes; zoom), smoothing along z, and ending the mask where the
 * size classifier says "none", each at several thresholds. Each crop's probabilities are
 * computed once per variant and thresholded every way; the mask is then cut as `segment` cuts it
 * (the 3D component at the centre, the waist along z). Scored per nodule like `benchmark cv`.
 *
 *   node --import tsx scripts/analysis/cv-inference-variants.ts --folds 1,2 [--models 'runs/cv-agreement-{fold}/best.safetensors']
 */
import { parseArgs } from 'node:util';
import { foldSplit, lidcCropsDir, loadCrops, sliceGrid, slicesToProbability, volumeToSlices, type CropCase } from '../../src/data/index.ts';
import { loadModel, type ModelInfo } from '../../src/models/index.ts';
import type { SegmentationNetwork } from '../../src/models/types.ts';
import { F, noGrad, setNumThreads, type Tensor, tensor, tidy } from '../../src/tensor/index.ts';
import { scoreCrop, summariseGroup, usableReaderMasks, type CropBenchmarkRow } from '../../src/eval/benchmark.ts';
import { readReaderIndex } from '../../src/eval/readers.ts';
import { keepComponentAt } from '../../src/inference/components.ts';
import { cutAtPrompt } from '../../src/inference/predict.ts';
import type { Vec3 } from '../../src/io/volume.ts';

const { values } = parseArgs({
  options: {
    folds: { type: 'string', default: '1,2' },
    models: { type: 'string', default: 'runs/cv-agreement-{fold}/best.safetensors' },
    threads: { type: 'string', default: '1' },
  },
});
setNumThreads(Number(values.threads));
const THRESHOLDS = [0.3, 0.35, 0.4, 0.45, 0.5];

type Transform = [forward: (t: Tensor) => Tensor, inverse: (t: Tensor) => Tensor];
const identity: Transform = [(t) => t, (t) => t];
const flips: Transform[] = [[3], [2], [2, 3]].map((d) => [(t) => t.flip(d), (t) => t.flip(d)]);
// A transpose of the plane, then each flip: with the flips, the 8 symmetries of the square.
const transposes: Transform[] = [[], [3], [2], [2, 3]].map((d) => [
  (t) => (d.length ? t.flip(d) : t).transpose(2, 3),
  (t) => {
    const b = t.transpose(2, 3);
    return d.length ? b.flip(d) : b;
  },
]);

/** Mean foreground probability over `transforms`, on the crop's grid; and the size classes per slice. */
function probability(
  model: SegmentationNetwork,
  info: ModelInfo,
  c: CropCase,
  centre: Vec3,
  spacingMm: number,
  transforms: Transform[],
): { prob: Float32Array; none: Float32Array } {
  const grid = sliceGrid(c.image, { ...info.slice, spacingMm }, centre);
  const x = volumeToSlices(grid);
  let prob: Float32Array = new Float32Array(0);
  let none: Float32Array = new Float32Array(0);
  noGrad(() =>
    tidy(() => {
      const input = tensor(x.input, x.shape);
      let sum: Tensor | null = null;
      for (const [fwd, inv] of transforms) {
        const out = model.forward(fwd(input));
        const p = inv(out.maskLogits.sigmoid());
        sum = sum ? sum.add(p) : p;
        if (out.classLogits && none.length === 0) none = F.softmax(out.classLogits, 1).select(1, 0).toTypedArray() as Float32Array;
      }
      prob = slicesToProbability(sum!.div(transforms.length).toTypedArray() as Float32Array, grid).data;
    }),
  );
  return { prob, none };
}

/** Thresholded, then cut as `segment` cuts a crop's mask. */
function maskOf(prob: Float32Array, c: CropCase, centre: Vec3, threshold: number): Uint8Array {
  return cutAtPrompt(
    Uint8Array.from(prob, (v) => (v > threshold ? 1 : 0)),
    c.image,
    centre,
  );
}

/** Clears every slice from the first one (walking away from the centre slice) whose P(none) >= level. */
function cutAtNone(mask: Uint8Array, none: Float32Array, dims: Vec3, centreZ: number, level: number): Uint8Array {
  const [nx, ny, nz] = dims;
  const out = Uint8Array.from(mask);
  for (const step of [1, -1]) {
    let ended = false;
    for (let z = Math.round(centreZ) + step; z >= 0 && z < nz; z += step) {
      ended ||= none[z]! >= level;
      if (ended) out.fill(0, z * nx * ny, (z + 1) * nx * ny);
    }
  }
  return out;
}

const all = loadCrops();
const dir = lidcCropsDir();
const readerIndex = readReaderIndex(dir);
const rows = new Map<string, CropBenchmarkRow[]>();
const push = (k: string, r: CropBenchmarkRow) => {
  const list = rows.get(k) ?? [];
  list.push(r);
  rows.set(k, list);
};
const folds = values.folds!.split(',').map(Number);
for (const f of folds) {
  const { model, info } = loadModel(values.models!.replaceAll('{fold}', String(f)));
  model.eval();
  for (const c of foldSplit(all, 5, f - 1, 1).heldOut) {
    const [nx, ny, nz] = c.image.dims;
    const centre: Vec3 = [(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2];
    const s = info.slice.spacingMm;
    const plain = probability(model, info, c, centre, s, [identity]);
    const flip4 = probability(model, info, c, centre, s, [identity, ...flips]);
    const d8 = probability(model, info, c, centre, s, [identity, ...flips, ...transposes]);
    const zoom06 = probability(model, info, c, centre, 0.6, [identity, ...flips]).prob;
    const zoom08 = probability(model, info, c, centre, 0.8, [identity, ...flips]).prob;
    const slab = nx * ny;
    const variants: Record<string, Float32Array> = {
      plain: plain.prob,
      'flips (4)': flip4.prob,
      'flips+transposes (8)': d8.prob,
      '8 + zoom 0.6/0.8 mm (16)': d8.prob.map((v, i) => (v + zoom06[i]! + zoom08[i]!) / 3),
      '8, z smoothing 1-2-1': d8.prob.map((v, i) => {
        const z = Math.floor(i / slab);
        return 0.25 * (z > 0 ? d8.prob[i - slab]! : v) + 0.5 * v + 0.25 * (z < nz - 1 ? d8.prob[i + slab]! : v);
      }),
    };
    const readers = usableReaderMasks(dir, readerIndex, c);
    for (const [name, prob] of Object.entries(variants))
      for (const t of THRESHOLDS) push(`${name} | ${t}`, scoreCrop(c, maskOf(prob, c, centre, t), readers));
    const cut = cutAtNone(maskOf(plain.prob, c, centre, 0.4), plain.none, c.image.dims, centre[2], 0.5);
    push('plain, cut at "none" >= 0.5 | 0.4', scoreCrop(c, keepComponentAt(cut, c.image.dims, c.image.spacingMm, centre), readers));
  }
  model.dispose();
  process.stderr.write(`fold ${f} done\n`);
}

const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '-');
console.log(`Folds ${folds.join(', ')}; per-nodule means.\n`);
console.log(
  '| variant | threshold | vs union | vs 50% consensus | vs each reader | solid vs consensus | part-solid vs consensus | ground-glass vs consensus | >= 20 mm vs consensus |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const [key, rs] of rows) {
  const [name, t] = key.split(' | ');
  const a = summariseGroup('all', rs);
  const byType = (type: string) =>
    summariseGroup(
      type,
      rs.filter((r) => r.type === type),
    ).diceConsensus;
  const big = summariseGroup(
    'big',
    rs.filter((r) => r.sizeGroup === '>= 20 mm'),
  ).diceConsensus;
  console.log(
    `| ${name} | ${t} | ${f3(a.diceUnion)} | ${f3(a.diceConsensus)} | ${f3(a.diceReaders)} | ${f3(byType('solid'))} | ${f3(byType('part-solid'))} | ${f3(byType('ground-glass'))} | ${f3(big)} |`,
  );
}

/**
 * Val Dice / sensitivity / precision of every combination (probability average) of the given
 * models, at thresholds 0.5 and 0.4. T = threads, TTA=1 adds flip test-time augmentation.
 *
 *   NODULESEG_DATA=../shared/data T=2 TTA=1 node --import tsx scripts/analysis/ensemble.ts a.safetensors b.safetensors ...
 */
import { loadCrops, sliceGrid } from '../../src/data/index.ts';
import { loadModel } from '../../src/models/io.ts';
import { segmentVolume, keepComponentAt } from '../../src/inference/index.ts';
import { segmentationMetrics } from '../../src/metrics/index.ts';
import { setNumThreads } from '../../src/tensor/index.ts';
setNumThreads(Number(process.env.T ?? 1));
const files = process.argv.slice(2);
const models = files.map((f) => loadModel(f));
const crops = loadCrops({ splits: ['val'] });
const tta = process.env.TTA === '1';
const probsPer: Float32Array[][] = models.map(() => []);
for (const c of crops)
  models.forEach((m, k) => {
    probsPer[k]!.push(segmentVolume(m.model, c.image, m.info.slice, { flipTta: tta }).probability.data);
  });
function score(sel: number[], thr = 0.5) {
  let sd = 0,
    ss = 0,
    sp = 0;
  crops.forEach((c, i) => {
    const avg = new Float32Array(c.mask.length);
    for (const k of sel) {
      const p = probsPer[k]![i]!;
      for (let j = 0; j < avg.length; j++) avg[j]! += p[j]! / sel.length;
    }
    let m = new Uint8Array(avg.length);
    for (let j = 0; j < m.length; j++) m[j] = avg[j]! > thr ? 1 : 0;
    m = keepComponentAt(
      m,
      c.image.dims,
      c.image.spacingMm,
      sliceGrid(c.image, models[0]!.info.slice).centreVoxel,
    ) as Uint8Array<ArrayBuffer>;
    const grid = { dims: c.image.dims, spacingMm: c.image.spacingMm };
    const r = segmentationMetrics({ data: m, ...grid }, { data: c.mask, ...grid }, { hd95: false });
    sd += r.dice;
    ss += r.sensitivity;
    sp += r.precision || 0;
  });
  const n = crops.length;
  return `dice ${(sd / n).toFixed(4)} sens ${(ss / n).toFixed(4)} prec ${(sp / n).toFixed(4)}`;
}
const combos: number[][] = [];
for (let mask = 1; mask < 1 << files.length; mask++) combos.push(files.map((_, k) => k).filter((k) => mask & (1 << k)));
for (const s of combos) console.log(s.map((k) => files[k]).join('+'), 'thr0.5', score(s), '| thr0.4', score(s, 0.4));

/**
 * Val Dice per threshold, by the nodule's predicted equivalent diameter (at 0.5), and what the
 * best threshold per size bin would give (chosen on val itself: an upper bound).
 *
 *   NODULESEG_DATA=../shared/data node --import tsx scripts/analysis/threshold-by-size.ts models/noduleseg.safetensors
 */
import { loadCrops, sliceGrid } from '../../src/data/index.ts';
import { loadModel } from '../../src/models/io.ts';
import { segmentVolume, keepComponentAt } from '../../src/inference/index.ts';
import { overlapCounts } from '../../src/metrics/index.ts';
import { setNumThreads } from '../../src/tensor/index.ts';
setNumThreads(1);
const m = loadModel(process.argv[2]!);
const crops = loadCrops({ splits: ['val'] });
const thrs = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7];
const rows: Array<{ dPred: number; dice: number[] }> = [];
for (const c of crops) {
  const p = segmentVolume(m.model, c.image, m.info.slice, {}).probability.data;
  const cv = sliceGrid(c.image, m.info.slice).centreVoxel;
  const [sx, sy, sz] = c.image.spacingMm;
  let v = 0; // voxels of the 0.5 mask: the predicted size
  const dice = thrs.map((t) => {
    let mk = new Uint8Array(p.length);
    for (let j = 0; j < p.length; j++) mk[j] = p[j]! > t ? 1 : 0;
    mk = keepComponentAt(mk, c.image.dims, c.image.spacingMm, cv) as Uint8Array<ArrayBuffer>;
    const grid = { dims: c.image.dims, spacingMm: c.image.spacingMm };
    const { tp, predicted, reference } = overlapCounts({ data: mk, ...grid }, { data: c.mask, ...grid });
    if (t === 0.5) v = predicted;
    return predicted + reference ? (2 * tp) / (predicted + reference) : 1;
  });
  rows.push({ dPred: Math.cbrt((6 * v * sx * sy * sz) / Math.PI), dice });
}
const bins = [
  [0, 5],
  [5, 8],
  [8, 12],
  [12, 100],
];
let total = 0;
for (const [lo, hi] of bins) {
  const s = rows.filter((r) => r.dPred >= lo! && r.dPred < hi!);
  const means = thrs.map((_, k) => s.reduce((a, r) => a + r.dice[k]!, 0) / s.length);
  const best = means.indexOf(Math.max(...means));
  total += means[best]! * s.length;
  console.log(lo, hi, s.length, means.map((x) => x.toFixed(3)).join(' '), 'best', thrs[best]);
}
console.log(
  'all@0.5',
  (rows.reduce((a, r) => a + r.dice[3]!, 0) / rows.length).toFixed(4),
  'per-bin best',
  (total / rows.length).toFixed(4),
);

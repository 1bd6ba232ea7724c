/**
 * Picks the mask threshold of a model on the val split (never on test data): one forward pass per
 * crop, then per-nodule 3D Dice at each candidate threshold. With --write, stores the best
 * threshold in the model file (atomically).
 *   node --import tsx scripts/tune-threshold.ts <model.safetensors> [--tta] [--write]
 */
import { loadCrops, sliceGrid, volumeToSlices, slicesToProbability } from '../src/data/index.ts';
import { predictSlices, keepComponentAt } from '../src/inference/index.ts';
import { segmentationMetrics, summarize } from '../src/metrics/index.ts';
import { loadModel, saveModel } from '../src/models/index.ts';

const file = process.argv[2];
if (!file) throw new Error('usage: tune-threshold.ts <model> [--tta] [--write]');
const tta = process.argv.includes('--tta');
const { model, info } = loadModel(file);
const cases = loadCrops({ splits: ['val'] });
const thresholds = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6];
const dice: number[][] = thresholds.map(() => []);
const sens: number[][] = thresholds.map(() => []);
const prec: number[][] = thresholds.map(() => []);
for (const c of cases) {
  const grid = sliceGrid(c.image, info.slice);
  const x = volumeToSlices(grid);
  const pred = predictSlices(model, x.input, x.shape, { flipTta: tta });
  const prob = slicesToProbability(pred.probs, grid);
  const ref = { data: c.mask, dims: c.image.dims, spacingMm: c.image.spacingMm };
  thresholds.forEach((t, k) => {
    const m = new Uint8Array(prob.data.length);
    for (let i = 0; i < m.length; i++) m[i] = prob.data[i]! > t ? 1 : 0;
    const kept = keepComponentAt(m, c.image.dims, c.image.spacingMm, grid.centreVoxel);
    const r = segmentationMetrics({ data: kept, dims: c.image.dims, spacingMm: c.image.spacingMm }, ref, { hd95: false });
    dice[k]!.push(r.dice);
    sens[k]!.push(r.sensitivity);
    prec[k]!.push(r.precision);
  });
}
console.log(`val: ${cases.length} nodules, flip TTA ${tta ? 'on' : 'off'}`);
console.log('| threshold | Dice | sensitivity | precision |\n|---|---|---|---|');
let best = 0;
thresholds.forEach((t, k) => {
  const d = summarize(dice[k]!).mean;
  if (d > summarize(dice[best]!).mean) best = k;
  console.log(`| ${t} | ${d.toFixed(4)} | ${summarize(sens[k]!).mean.toFixed(4)} | ${summarize(prec[k]!).mean.toFixed(4)} |`);
});
console.log(`best threshold ${thresholds[best]} (Dice ${summarize(dice[best]!).mean.toFixed(4)})`);
if (process.argv.includes('--write')) {
  saveModel(file, model, {
    slice: info.slice,
    sizeBins: info.sizeBins,
    threshold: thresholds[best]!,
    provenance: { ...info.provenance, thresholdTunedOnVal: thresholds[best] },
  });
  console.log(`threshold ${thresholds[best]} written to ${file}`);
}
model.dispose();

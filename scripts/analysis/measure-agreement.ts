/**
 * How well the measurements a reader would take from the model's masks (volume, longest axial
 * diameter and its perpendicular) agree with the same measurements taken from the reference
 * masks, with the same code (`measureNodule`). Bland-Altman style: mean difference (bias), its
 * 95% limits of agreement, and the share of nodules within a clinically meaningful tolerance
 * (1.5 mm on diameters, 25% on volume, the order of the QIBA volumetry repeatability claim).
 *
 *   scripts/eval-val.sh models/noduleseg.safetensors runs/eval-shipped
 *   node --import tsx scripts/analysis/measure-agreement.ts runs/eval-shipped
 */
import { readdirSync } from 'node:fs';
import { readVolume } from '../../src/io/index.ts';
import { measureNodule, type NoduleMeasures } from '../../src/metrics/index.ts';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: measure-agreement.ts <eval dir with pred/ and ref/>');
  process.exit(2);
}
const rows: Array<{ pred: NoduleMeasures; ref: NoduleMeasures }> = [];
for (const f of readdirSync(`${dir}/pred`)
  .filter((x) => x.endsWith('.nii.gz'))
  .sort()) {
  const [p, r] = [await readVolume(`${dir}/pred/${f}`), await readVolume(`${dir}/ref/${f}`)];
  const grid = { dims: r.dims, spacingMm: r.spacingMm };
  rows.push({
    pred: measureNodule({ data: Uint8Array.from(p.data as ArrayLike<number>, (v) => (v ? 1 : 0)), ...grid }),
    ref: measureNodule({ data: Uint8Array.from(r.data as ArrayLike<number>, (v) => (v ? 1 : 0)), ...grid }),
  });
}

const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
const sd = (v: number[]) => {
  const m = mean(v);
  return Math.sqrt(v.reduce((s, x) => s + (x - m) ** 2, 0) / (v.length - 1));
};
const pct = (v: number) => `${(100 * v).toFixed(0)}%`;

console.log(`${rows.length} nodules (${dir})\n`);
console.log('| measure | reference mean | bias (model - reference) | 95% limits of agreement | within tolerance |');
console.log('|---|---:|---:|---:|---:|');
for (const [name, key] of [
  ['longest axial diameter (mm)', 'longestAxialDiameterMm'],
  ['perpendicular diameter (mm)', 'perpendicularDiameterMm'],
  ['equivalent diameter (mm)', 'equivalentDiameterMm'],
] as const) {
  const d = rows.map((r) => r.pred[key] - r.ref[key]);
  const [b, s] = [mean(d), sd(d)];
  const within = d.filter((x) => Math.abs(x) <= 1.5).length / d.length;
  console.log(
    `| ${name} | ${mean(rows.map((r) => r.ref[key])).toFixed(2)} | ${b >= 0 ? '+' : ''}${b.toFixed(2)} | ${(b - 1.96 * s).toFixed(2)} to ${(b + 1.96 * s).toFixed(2)} | ${pct(within)} within 1.5 mm |`,
  );
}
// Volume: differences grow with size, so the agreement is taken on the log ratio.
const logRatio = rows.filter((r) => r.pred.volumeMm3 > 0).map((r) => Math.log(r.pred.volumeMm3 / r.ref.volumeMm3));
const [b, s] = [mean(logRatio), sd(logRatio)];
const within = rows.filter((r) => Math.abs(r.pred.volumeMm3 / r.ref.volumeMm3 - 1) <= 0.25).length / rows.length;
const ratio = (x: number) => `${x >= 0 ? '+' : ''}${(100 * (Math.exp(x) - 1)).toFixed(1)}%`;
console.log(
  `| volume (mm3), as a ratio | ${mean(rows.map((r) => r.ref.volumeMm3)).toFixed(0)} | ${ratio(b)} | ${ratio(b - 1.96 * s)} to ${ratio(b + 1.96 * s)} | ${pct(within)} within 25% |`,
);
const empty = rows.length - logRatio.length;
if (empty) console.log(`\n${empty} empty prediction(s) left out of the volume ratio.`);

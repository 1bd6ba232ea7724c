/**
 * Per-nodule metrics from `noduleseg eval --csv` grouped by the nodule's diameter in the
 * lidc-crops metadata (mm): mean Dice, sensitivity and precision per size bin.
 *
 *   NODULESEG_DATA=../shared/data node --import tsx scripts/analysis/dice-by-size.ts runs/eval-val/metrics.csv
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lidcCropsDir } from '../../src/data/index.ts';

const csv = process.argv[2] ?? 'runs/eval-val/metrics.csv';
const rows = (file: string) => {
  const [head, ...lines] = readFileSync(file, 'utf8').replace(/\r/g, '').split('\n').filter(Boolean);
  const cols = head!.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i]!, v])) as Record<string, string>);
};
const diameter = new Map(rows(join(lidcCropsDir(), 'metadata.csv')).map((r) => [r['case']!, Number(r['diameter_mm'])]));
const metrics = rows(csv).filter((r) => r['case'] !== 'mean' && diameter.has(r['case']!));
console.log('| diameter (metadata) | nodules | Dice | sensitivity | precision |\n|---|---:|---:|---:|---:|');
for (const [lo, hi] of [
  [0, 5],
  [5, 8],
  [8, 12],
  [12, 20],
  [20, 1000],
] as const) {
  const s = metrics.filter((r) => diameter.get(r['case']!)! >= lo && diameter.get(r['case']!)! < hi);
  const mean = (k: string) => (s.reduce((a, r) => a + Number(r[k]), 0) / s.length).toFixed(3);
  console.log(
    `| ${hi === 1000 ? `>= ${lo}` : `${lo}-${hi}`} mm | ${s.length} | ${mean('dice')} | ${mean('sensitivity')} | ${mean('precision')} |`,
  );
}

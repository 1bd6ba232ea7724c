/**
 * Paired comparison of two `benchmark crops` (or `benchmark cv`) CSVs of the same nodules: per
 * group (all, each type, each size, pleural contact, how many readers marked the nodule), the
 * mean of each model and the mean per-nodule difference B - A with its standard error, for Dice
 * against the union, the 50% consensus and each reader; and the readers' own agreement (each
 * against the rest of their panel) on the group.
 *
 *   node --import tsx scripts/analysis/compare-benchmarks.ts A.csv B.csv
 *   node --import tsx scripts/analysis/compare-benchmarks.ts f1-a.csv,f2-a.csv f1-b.csv,f2-b.csv   # folds pooled
 */
import { readFileSync } from 'node:fs';
import { parseCsv } from '../../src/data/crops.ts';

const [aPath, bPath] = process.argv.slice(2);
if (!aPath || !bPath) {
  console.error('usage: compare-benchmarks.ts A.csv B.csv');
  process.exit(2);
}
// A comma-separated list pools several files (one per fold); an id must not repeat.
const rows = (list: string) => {
  const m = new Map<string, Record<string, string>>();
  for (const p of list.split(','))
    for (const r of parseCsv(readFileSync(p, 'utf8'), p)) {
      if (m.has(r['id']!)) throw new Error(`${p}: ${r['id']} is already in another file of ${list}`);
      m.set(r['id']!, r);
    }
  return m;
};
const A = rows(aPath),
  B = rows(bPath);
const ids = [...A.keys()].filter((k) => B.has(k));
const groups: Array<[string, (r: Record<string, string>) => boolean]> = [
  ['all', () => true],
  ...['solid', 'part-solid', 'ground-glass'].map((t): [string, (r: Record<string, string>) => boolean] => [
    `type: ${t}`,
    (r) => r['type'] === t,
  ]),
  ...['3-6 mm', '6-10 mm', '10-20 mm', '>= 20 mm'].map((g): [string, (r: Record<string, string>) => boolean] => [
    `size: ${g}`,
    (r) => r['sizeGroup'] === g,
  ]),
  ['pleural: attached', (r) => r['pleural'] === 'true'],
  ['pleural: free', (r) => r['pleural'] === 'false'],
  // Their 50% consensus is two readers for three or four, their union for one or two.
  ...['4', '3'].map((n): [string, (r: Record<string, string>) => boolean] => [`readers: ${n}`, (r) => r['readers'] === n]),
  ['readers: 1-2', (r) => r['readers'] === '1' || r['readers'] === '2'],
  ...['4', '3'].map((n): [string, (r: Record<string, string>) => boolean] => [
    `ground-glass, readers: ${n}`,
    (r) => r['type'] === 'ground-glass' && r['readers'] === n,
  ]),
];
const metrics = ['diceUnion', 'diceConsensus', 'diceReaders'] as const;
console.log(`${ids.length} nodules in both; A = ${aPath}, B = ${bPath}\n`);
console.log('| group | n | ' + metrics.map((m) => `${m} A | B | B - A (SE)`).join(' | ') + ' | readers vs the rest of their panel |');
console.log('|---|---:|' + metrics.map(() => '---:|---:|---:').join('|') + '|---:|');
for (const [name, keep] of groups) {
  const sel = ids.filter((id) => keep(A.get(id)!));
  if (!sel.length) continue;
  const cells = metrics.map((m) => {
    // An empty cell is an undefined metric (no usable reader masks), not 0.
    const pairs = sel
      .filter((id) => A.get(id)![m] !== '' && B.get(id)![m] !== '')
      .map((id) => [Number(A.get(id)![m]), Number(B.get(id)![m])] as const);
    if (!pairs.length) return '- | - | -';
    const n = pairs.length;
    const ma = pairs.reduce((s, p) => s + p[0], 0) / n,
      mb = pairs.reduce((s, p) => s + p[1], 0) / n;
    const d = pairs.map(([a, b]) => b - a);
    const md = d.reduce((s, x) => s + x, 0) / n;
    const se = n > 1 ? Math.sqrt(d.reduce((s, x) => s + (x - md) ** 2, 0) / (n - 1) / n) : Number.NaN;
    return `${ma.toFixed(3)} | ${mb.toFixed(3)} | ${md >= 0 ? '+' : ''}${md.toFixed(3)} (${Number.isFinite(se) ? se.toFixed(3) : '-'})`;
  });
  // The readers' own level on the group, beside the model's Dice against each reader (nodules with 2+ readers).
  const panel = sel.map((id) => A.get(id)!['panelLevel']!).filter((v) => v !== '' && v !== undefined);
  const panelMean = panel.length ? (panel.reduce((s, v) => s + Number(v), 0) / panel.length).toFixed(3) : '-';
  console.log(`| ${name} | ${sel.length} | ${cells.join(' | ')} | ${panelMean} |`);
}

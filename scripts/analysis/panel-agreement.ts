/**
 * The readers' own agreement on the crops, with no model: each reader against the union of the
 * rest of their panel, and their 50% consensus against their union; by type, over the crops whose
 * reader masks match their mask (union Dice >= 0.95). The level `benchmark crops` sets the model beside.
 *
 *   node --import tsx scripts/analysis/panel-agreement.ts [train|val|all]
 */
import { lidcCropsDir, loadCrops } from '../../src/data/index.ts';
import { agreementMask, diceOf, panelAgreement, readReaderIndex, readReaderMasks } from '../../src/eval/readers.ts';
import { MIN_READER_UNION_DICE } from '../../src/eval/benchmark.ts';

const split = process.argv[2] ?? 'all';
const cases = loadCrops({ splits: split === 'all' ? ['train', 'val'] : [split as 'train' | 'val'] });
const dir = lidcCropsDir();
const index = readReaderIndex(dir);
const by = new Map<string, { panel: number[]; cons: number[] }>();
for (const c of cases) {
  const r = index.get(c.id);
  if (!r || r.readers < 2 || r.unionDice < MIN_READER_UNION_DICE) continue;
  const masks = readReaderMasks(dir, c.id, c.image, r.readers);
  if (masks.length < 2) continue;
  for (const g of ['all', c.noduleType ?? 'unknown']) {
    const e = by.get(g) ?? { panel: [], cons: [] };
    e.panel.push(panelAgreement(masks));
    e.cons.push(diceOf(agreementMask(masks, 0.5), c.mask));
    by.set(g, e);
  }
}
const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
console.log(
  `| ${split} | nodules (2+ readers, union Dice >= ${MIN_READER_UNION_DICE}) | reader vs rest of panel | 50% consensus vs union |`,
);
console.log('|---|---:|---:|---:|');
for (const [g, e] of by) console.log(`| ${g} | ${e.panel.length} | ${mean(e.panel).toFixed(3)} | ${mean(e.cons).toFixed(3)} |`);

/**
 * How far the radiologists themselves agree, on the two whole scans whose XML holds every
 * reader's outline (the crops only hold the union). For each nodule outlined by 4 readers:
 * - each pair of readers (Dice of their two masks);
 * - each reader against the union of the other three;
 * - the union of two readers against the union of the other two (3 ways to split 4 readers),
 *   which is how two independent 2-reader panels would agree on the crops' kind of reference.
 * Masks follow the crops' convention (outline pixels excluded), on the scan's own grid.
 *
 *   node --import tsx scripts/analysis/reader-agreement.ts ../shared/data/lidc-scans/LIDC-IDRI-0001 ../shared/data/lidc-scans/LIDC-IDRI-0003
 */
import { readLidcScan, rasteriseNodule, sortedIntersectionSize } from '../../src/io/index.ts';

/** Sorted union of sorted voxel lists. */
function union(lists: Int32Array[]): Int32Array {
  const s = new Set<number>();
  for (const l of lists) for (const v of l) s.add(v);
  return Int32Array.from(s).sort();
}

const dice = (a: Int32Array, b: Int32Array) => (2 * sortedIntersectionSize(a, b)) / Math.max(1, a.length + b.length);
const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / Math.max(1, v.length);
const f3 = (v: number) => v.toFixed(3);

const dirs = process.argv.slice(2);
if (dirs.length === 0) {
  console.error('usage: reader-agreement.ts <lidc-scan-dir> [...]');
  process.exit(2);
}
const all = { pair: [] as number[], oneVsRest: [] as number[], twoVsTwo: [] as number[] };
console.log('| scan | nodule | voxels (union) | reader pairs | reader vs other 3 | 2 readers vs other 2 |');
console.log('|---|---|---:|---:|---:|---:|');
for (const dir of dirs) {
  const scan = await readLidcScan(dir);
  const vol = scan.series.volume;
  for (const nodule of scan.nodules) {
    if (nodule.readers.length !== 4 || nodule.reads.length !== 4) continue;
    const masks = nodule.reads.map((r) => rasteriseNodule(r, vol).voxels);
    const pair: number[] = [];
    const oneVsRest: number[] = [];
    const twoVsTwo: number[] = [];
    for (let a = 0; a < 4; a++) {
      for (let b = a + 1; b < 4; b++) pair.push(dice(masks[a]!, masks[b]!));
      oneVsRest.push(dice(masks[a]!, union(masks.filter((_, i) => i !== a))));
    }
    for (const partner of [1, 2, 3]) {
      const rest = [1, 2, 3].filter((i) => i !== partner);
      twoVsTwo.push(dice(union([masks[0]!, masks[partner]!]), union(rest.map((i) => masks[i]!))));
    }
    all.pair.push(...pair);
    all.oneVsRest.push(...oneVsRest);
    all.twoVsTwo.push(mean(twoVsTwo));
    const id = dir.replace(/\/+$/, '').split('/').pop();
    console.log(
      `| ${id} | ${nodule.index} | ${union(masks).length} | ${f3(mean(pair))} | ${f3(mean(oneVsRest))} | ${f3(mean(twoVsTwo))} |`,
    );
  }
}
console.log(`| all | ${all.twoVsTwo.length} nodules | | ${f3(mean(all.pair))} | ${f3(mean(all.oneVsRest))} | ${f3(mean(all.twoVsTwo))} |`);

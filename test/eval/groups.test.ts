import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noduleTypeOfTexture, isSubsolid } from '../../src/data/index.ts';
import { sizeGroupOf, touchesPleura } from '../../src/eval/groups.ts';
import { groupSummaries, scoreCrop, cropRowsCsv, type CropBenchmarkRow } from '../../src/eval/benchmark.ts';
import { agreementMask, diceOf, panelAgreement, readerLevel, unionMask } from '../../src/eval/readers.ts';
import { Volume } from '../../src/io/index.ts';
import type { CropCase } from '../../src/data/index.ts';

test('nodule type from the LIDC texture: labels and ratings', () => {
  assert.equal(noduleTypeOfTexture('Solid'), 'solid');
  assert.equal(noduleTypeOfTexture('Solid/Mixed'), 'solid');
  assert.equal(noduleTypeOfTexture('Part Solid/Mixed'), 'part-solid');
  assert.equal(noduleTypeOfTexture('Non-Solid/GGO'), 'ground-glass');
  assert.equal(noduleTypeOfTexture('Non-Solid/Mixed'), 'ground-glass');
  assert.deepEqual(
    [5, 4, 3, 2, 1].map((r) => noduleTypeOfTexture(r)),
    ['solid', 'solid', 'part-solid', 'ground-glass', 'ground-glass'],
  );
  assert.equal(noduleTypeOfTexture('3'), 'part-solid');
  assert.equal(noduleTypeOfTexture(''), null);
  assert.equal(noduleTypeOfTexture('Calcified'), null);
  assert.equal(noduleTypeOfTexture(7), null);
  assert.equal(isSubsolid('part-solid') && isSubsolid('ground-glass') && !isSubsolid('solid') && !isSubsolid(null), true);
});

test('size groups by diameter', () => {
  assert.deepEqual([3.2, 5.99, 6, 9.9, 10, 19.9, 20, 35].map(sizeGroupOf), [
    '3-6 mm',
    '3-6 mm',
    '6-10 mm',
    '6-10 mm',
    '10-20 mm',
    '10-20 mm',
    '>= 20 mm',
    '>= 20 mm',
  ]);
  assert.equal(sizeGroupOf(Number.NaN), null);
});

/** A 60 x 60 x 5 crop at 0.7 mm of lung (-850 HU) with a 4 mm-radius disc nodule at (cx, 30). */
function scene(cx: number, extra: (x: number, y: number) => number | null): { hu: Int16Array; mask: Uint8Array } {
  const n = 60,
    nz = 5;
  const hu = new Int16Array(n * n * nz),
    mask = new Uint8Array(n * n * nz);
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < n; y++)
      for (let x = 0; x < n; x++) {
        const i = x + n * (y + n * z);
        const inside = z >= 1 && z <= 3 && ((x - cx) * 0.7) ** 2 + ((y - 30) * 0.7) ** 2 <= 16;
        mask[i] = inside ? 1 : 0;
        hu[i] = inside ? 30 : (extra(x, y) ?? -850);
      }
  return { hu, mask };
}

test('pleural contact from the crop: a wall next to the nodule counts, a vessel reaching the edge does not', () => {
  const dims: [number, number, number] = [60, 60, 5],
    sp: [number, number, number] = [0.7, 0.7, 2];
  // Alone in lung.
  const free = scene(30, () => null);
  assert.equal(touchesPleura(free.hu, free.mask, dims, sp), false);
  // Chest wall: x >= 37 (the disc reaches x = 35.7), a large dense region at the crop's edge, 1 mm away.
  const wall = scene(30, (x) => (x >= 37 ? 40 : null));
  assert.equal(touchesPleura(wall.hu, wall.mask, dims, sp), true);
  // The same wall 5 mm away is beyond the 2 mm ring.
  const far = scene(30, (x) => (x >= 43 ? 40 : null));
  assert.equal(touchesPleura(far.hu, far.mask, dims, sp), false);
  // A 2-pixel vessel from the nodule to the crop's edge: small, so not wall.
  const vessel = scene(30, (x, y) => (y >= 29 && y <= 30 && x > 30 ? 20 : null));
  assert.equal(touchesPleura(vessel.hu, vessel.mask, dims, sp), false);
});

test('readers: consensus, union, panel agreement and the model against each reader', () => {
  const a = Uint8Array.from([1, 1, 1, 1, 0, 0]);
  const b = Uint8Array.from([0, 1, 1, 1, 1, 0]);
  const c = Uint8Array.from([0, 0, 1, 1, 0, 0]);
  assert.deepEqual([...agreementMask([a, b, c], 0.5)], [0, 1, 1, 1, 0, 0]); // 2 of 3
  assert.deepEqual([...unionMask([a, b, c])], [1, 1, 1, 1, 1, 0]);
  assert.deepEqual([...agreementMask([a, b], 0.5)], [1, 1, 1, 1, 1, 0]); // 1 of 2
  assert.equal(diceOf(a, b), 6 / 8);
  // a vs b+c: b∪c = b; b vs a∪c = a; c vs a∪b (5 voxels).
  const panel = (6 / 8 + 6 / 8 + (2 * 2) / (2 + 5)) / 3;
  assert.ok(Math.abs(panelAgreement([a, b, c]) - panel) < 1e-12);
  assert.ok(Number.isNaN(panelAgreement([a])));
  assert.ok(Math.abs(readerLevel(a, [a, b]) - (1 + 6 / 8) / 2) < 1e-12);
});

test('crop rows: scored against union, consensus and readers, grouped by type', () => {
  const dims: [number, number, number] = [6, 1, 1];
  const image = new Volume({ data: new Int16Array(6).fill(-850), dims, spacingMm: [1, 1, 1], originMm: [0, 0, 0] });
  const readers = [Uint8Array.from([1, 1, 1, 1, 0, 0]), Uint8Array.from([0, 1, 1, 1, 1, 0]), Uint8Array.from([0, 0, 1, 1, 0, 0])];
  const mk = (id: string, t: CropCase['noduleType']): CropCase => ({
    id,
    patientId: id,
    split: 'val',
    image,
    mask: unionMask(readers),
    sliceAreaMm2: Float64Array.of(5),
    diameterMm: 7,
    noduleType: t,
  });
  const pred = Uint8Array.from([0, 1, 1, 1, 0, 0]);
  const r = scoreCrop(mk('a', 'part-solid'), pred, readers);
  assert.equal(r.diceConsensus, 1);
  assert.equal(r.diceUnion, (2 * 3) / (3 + 5));
  assert.equal(r.sizeGroup, '6-10 mm');
  assert.equal(r.readers, 3);
  const rows: CropBenchmarkRow[] = [r, scoreCrop(mk('b', 'solid'), unionMask(readers), readers)];
  const g = groupSummaries(rows);
  assert.equal(g.find((x) => x.group === 'all')!.nodules, 2);
  assert.equal(g.find((x) => x.group === 'type: part-solid')!.diceConsensus, 1);
  assert.equal(g.find((x) => x.group === 'type: solid')!.diceUnion, 1);
  assert.equal(g.find((x) => x.group === 'type: ground-glass')!.nodules, 0);
  // No any-reader mask: no score. With one (the prediction widened by a voxel), it is scored on
  // the same references, and the group means skip the crops without one.
  assert.ok(Number.isNaN(r.anyReaderDiceUnion) && Number.isNaN(r.anyReaderDiceConsensus));
  const wide = scoreCrop(mk('a', 'part-solid'), pred, readers, Uint8Array.from([0, 1, 1, 1, 1, 0]));
  assert.equal(wide.diceUnion, r.diceUnion, 'the default mask is scored as before');
  assert.equal(wide.anyReaderDiceUnion, (2 * 4) / (4 + 5));
  assert.equal(wide.anyReaderDiceConsensus, (2 * 3) / (4 + 3));
  const withWide = groupSummaries([wide, rows[1]!]).find((x) => x.group === 'all')!;
  assert.equal(withWide.anyReaderDiceUnion, wide.anyReaderDiceUnion);
  assert.ok(cropRowsCsv([r, wide]).split('\n')[1]!.endsWith(',,'), 'no any-reader mask: empty cells');
});

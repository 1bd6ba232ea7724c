/** Guideline measures: long and short axis, the two roundings, volume, the solid component. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { guidelineMeasures, axisMeasures, largestComponent, solidComponentMask, SOLID_COMPONENT_HU } from '../../src/guidelines/index.ts';

/** A part-solid nodule: an ellipse of ground glass (-600 HU) holding a disc of soft tissue (+40 HU), on a 0.5 x 0.5 x 1 mm grid. */
function partSolid(): { data: Uint8Array; image: Int16Array; dims: [number, number, number]; spacingMm: [number, number, number] } {
  const dims: [number, number, number] = [60, 60, 9];
  const spacingMm: [number, number, number] = [0.5, 0.5, 1];
  const data = new Uint8Array(dims[0] * dims[1] * dims[2]);
  const image = new Int16Array(data.length).fill(-900);
  for (let z = 0; z < dims[2]; z++)
    for (let y = 0; y < dims[1]; y++)
      for (let x = 0; x < dims[0]; x++) {
        const i = x + dims[0] * (y + dims[1] * z);
        const u = (x - 29.5) * 0.5,
          v = (y - 29.5) * 0.5,
          w = z - 4;
        // ellipse 20 x 12 mm in-plane at the middle slice, thinner above and below
        const r = (u / 10) ** 2 + (v / 6) ** 2 + (w / 4.5) ** 2;
        if (r <= 1) {
          data[i] = 1;
          image[i] = u * u + v * v + w * w <= 3 * 3 ? 40 : -600;
        }
      }
  return { data, image, dims, spacingMm };
}

test('long and short axis on the slice of the longest diameter; mean rounded both ways', () => {
  const n = partSolid();
  const m = guidelineMeasures(n, n.image);
  assert.equal(m.axialSlice, 4);
  assert.ok(Math.abs(m.longAxisMm - 20) <= 0.6, `long axis ${m.longAxisMm}`);
  assert.ok(Math.abs(m.shortAxisMm - 12) <= 1, `short axis ${m.shortAxisMm}`);
  const mean = (m.longAxisMm + m.shortAxisMm) / 2;
  assert.equal(m.meanDiameterLungRadsMm, Math.round(mean * 10) / 10);
  assert.equal(m.meanDiameterFleischnerMm, Math.round(mean));
  let count = 0;
  for (const v of n.data) count += v;
  assert.equal(m.voxelCount, count);
  assert.ok(Math.abs(m.volumeMm3 - count * 0.25) < 1e-9);
  assert.equal(m.solidThresholdHU, SOLID_COMPONENT_HU);
});

test('solid component: the voxels at or above the threshold, measured the same way; configurable', () => {
  const n = partSolid();
  const m = guidelineMeasures(n, n.image);
  const s = m.solidComponent!;
  assert.ok(Math.abs(s.longAxisMm - 6) <= 0.6, `solid long axis ${s.longAxisMm}`);
  assert.ok(Math.abs(s.shortAxisMm - 6) <= 0.6, `solid short axis ${s.shortAxisMm}`);
  assert.ok(s.volumeMm3 > 0 && s.volumeMm3 < m.volumeMm3 / 4);
  // a threshold below the ground glass makes the whole nodule solid; above soft tissue, nothing
  assert.equal(guidelineMeasures(n, n.image, -700).solidComponent!.voxelCount, m.voxelCount);
  assert.equal(guidelineMeasures(n, n.image, 100).solidComponent!.voxelCount, 0);
  assert.equal(guidelineMeasures(n, n.image, 100).solidComponent!.longAxisMm, 0);
  assert.equal(guidelineMeasures(n, null).solidComponent, null);
  assert.throws(() => guidelineMeasures(n, n.image, Number.NaN), RangeError);
});

test('solid component keeps the largest connected piece (a vessel crossing the ground glass is dropped)', () => {
  const dims: [number, number, number] = [10, 3, 1];
  const mask = new Uint8Array(30).fill(1);
  const image = new Int16Array(30).fill(-600);
  for (const x of [1, 2, 3, 4]) image[x + 10] = 30; // 4 voxels
  image[8 + 10] = 30; // 1 voxel apart
  const solid = solidComponentMask(mask, image, dims, -300);
  assert.deepEqual(
    [...solid].map((v, i) => (v ? i : -1)).filter((i) => i >= 0),
    [11, 12, 13, 14],
  );
  assert.equal(
    largestComponent(new Uint8Array(30), dims).reduce((a, b) => a + b, 0),
    0,
  );
});

test('an empty mask measures zero', () => {
  const m = axisMeasures({ data: new Uint8Array(8), dims: [2, 2, 2], spacingMm: [1, 1, 1] });
  assert.deepEqual(
    [m.longAxisMm, m.shortAxisMm, m.meanDiameterLungRadsMm, m.meanDiameterFleischnerMm, m.volumeMm3, m.axialSlice],
    [0, 0, 0, 0, 0, -1],
  );
});

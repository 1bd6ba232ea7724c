import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_SLICE_CONFIG,
  SliceDataset,
  computeSizeBins,
  lidcCropsDir,
  loadCrops,
  missingDataReason,
  withAgreementLabels,
  type CropCase,
} from '../../src/data/index.ts';
import { Volume } from '../../src/io/index.ts';

const missing = missingDataReason(lidcCropsDir());

function disc(r: number): Uint8Array {
  const m = new Uint8Array(20 * 20 * 3);
  for (let z = 0; z < 3; z++)
    for (let y = 0; y < 20; y++)
      for (let x = 0; x < 20; x++) if (z === 1 && (x - 10) ** 2 + (y - 10) ** 2 <= r * r) m[x + 20 * (y + 20 * z)] = 1;
  return m;
}

/** A crop whose union is disc(6) on the middle slice. */
function discCrop(noduleType: CropCase['noduleType']): CropCase {
  const image = new Volume({ data: new Int16Array(1200).fill(-850), dims: [20, 20, 3], spacingMm: [0.7, 0.7, 2], originMm: [0, 0, 0] });
  return {
    id: 'x',
    patientId: 'p',
    split: 'train',
    image,
    mask: disc(6),
    sliceAreaMm2: Float64Array.of(0, 1, 0),
    diameterMm: 8,
    noduleType,
  };
}

/** Index of (x, y) on the middle slice. */
const at = (x: number, y: number) => x + 20 * (y + 20);

test("agreement labels: the readers' share is the target, their 50% consensus the mask", () => {
  const readers = [disc(3), disc(4), disc(6)];
  const c = discCrop('solid');
  withAgreementLabels(c, readers);
  assert.equal(c.target![at(10, 10)], 1);
  assert.ok(Math.abs(c.target![at(14, 10)]! - 2 / 3) < 1e-6); // inside r=4 and r=6
  assert.ok(Math.abs(c.target![at(16, 10)]! - 1 / 3) < 1e-6); // inside r=6 only
  assert.equal(c.mask[at(14, 10)], 1);
  assert.equal(c.mask[at(16, 10)], 0);
  assert.equal(
    c.mask.reduce((s, v) => s + v, 0),
    disc(4).reduce((s, v) => s + v, 0),
  );
  assert.ok(Math.abs(c.sliceAreaMm2[1]! - disc(4).reduce((s, v) => s + v, 0) * 0.49) < 1e-9);
});

test("panel agreement: three or four readers' counts over the panel of four, one or two readers' over their own count", () => {
  const crop = () => discCrop('ground-glass');
  const near = (a: number | undefined, b: number) => Math.abs(a! - b) < 1e-6;
  const three = crop();
  withAgreementLabels(three, [disc(3), disc(4), disc(6)], 'panel');
  assert.ok(near(three.target![at(10, 10)], 3 / 4)); // all three readers
  assert.ok(near(three.target![at(14, 10)], 2 / 4)); // the consensus rim: two readers
  assert.ok(near(three.target![at(16, 10)], 1 / 4)); // one reader
  assert.equal(three.mask[at(14, 10)], 1);
  assert.equal(three.mask[at(16, 10)], 0);
  // the 50% consensus sits between 0.25 and 0.5 whether three or four readers marked the nodule
  const four = crop();
  withAgreementLabels(four, [disc(3), disc(4), disc(5), disc(6)], 'panel');
  assert.ok(near(four.target![at(15, 10)], 2 / 4)); // inside r=5 and r=6
  assert.ok(near(four.target![at(16, 10)], 1 / 4));
  assert.equal(four.mask[at(15, 10)], 1);
  assert.equal(four.mask[at(16, 10)], 0);
  // two readers: their consensus is their union, so a one-reader voxel keeps 1/2
  const two = crop();
  withAgreementLabels(two, [disc(3), disc(6)], 'panel');
  assert.ok(near(two.target![at(16, 10)], 1 / 2));
  assert.equal(two.mask[at(16, 10)], 1);
  // the readers' own share is unchanged by the option's default
  const own = crop();
  withAgreementLabels(own, [disc(3), disc(4), disc(6)]);
  assert.ok(near(own.target![at(16, 10)], 1 / 3));
});

test('agreement-labelled crops give soft targets; union-labelled ones give the mask', { skip: missing ?? false }, () => {
  const union = loadCrops({ splits: ['train'], limit: 6 });
  const soft = loadCrops({ splits: ['train'], limit: 6, labels: 'agreement' });
  assert.ok(
    soft.some((c) => c.target),
    'some of the first crops have usable reader masks',
  );
  const bins = computeSizeBins(union);
  const du = new SliceDataset({ cases: union, slice: DEFAULT_SLICE_CONFIG, sizeBins: bins });
  const ds = new SliceDataset({ cases: soft, slice: DEFAULT_SLICE_CONFIG, sizeBins: bins });
  const idx = Array.from({ length: Math.min(du.length, 24) }, (_, i) => i);
  const bu = du.batch(idx);
  assert.deepEqual([...bu.target], [...bu.mask]);
  const bs = ds.batch(Array.from({ length: Math.min(ds.length, 24) }, (_, i) => i));
  let fractional = 0;
  for (let i = 0; i < bs.target.length; i++) {
    const t = bs.target[i]!;
    assert.ok(t >= 0 && t <= 1 + 1e-6);
    if (t > 0.01 && t < 0.99) fractional++;
  }
  assert.ok(fractional > 0, 'soft targets have values between 0 and 1');
  // The union-labelled cases are unchanged by loading the other labels (separate cache entries).
  assert.equal(loadCrops({ splits: ['train'], limit: 1 })[0]!.target, undefined);
  // Over the panel: the same consensus mask, the same target where four readers marked the
  // nodule, three quarters of it where three did (the 11th train crop is the first of those).
  const own = loadCrops({ splits: ['train'], limit: 12, labels: 'agreement' });
  const panel = loadCrops({ splits: ['train'], limit: 12, labels: 'panel-agreement' });
  let threeReaders = 0;
  for (let k = 0; k < own.length; k++) {
    const s = own[k]!,
      p = panel[k]!;
    assert.equal(p.id, s.id);
    assert.deepEqual([...p.mask], [...s.mask]);
    if (!s.target) continue;
    const peak = p.target!.reduce((m, v) => Math.max(m, v), 0);
    const scale = Math.abs(peak - 0.75) < 1e-6 ? 0.75 : 1;
    assert.ok(scale === 0.75 || peak === 1, `${p.id}: panel target peaks at ${peak}`);
    if (scale === 0.75) threeReaders++;
    for (let i = 0; i < s.target.length; i++) assert.ok(Math.abs(p.target![i]! - scale * s.target[i]!) < 1e-6);
  }
  assert.ok(threeReaders > 0, 'a three-reader crop is among the first 12');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  computeSizeBins,
  drawAugment,
  huStats,
  loadCrops,
  loadSizeBins,
  loadTrainVal,
  missingDataReason,
  lidcCropsDir,
  dataRoot,
  mulberry32,
  saveSizeBins,
  SliceDataset,
  sizeClassOf,
  sliceGrid,
  slicesToMask,
  stackSlices,
  volumeToSlices,
  inputChannels,
  validateSliceConfig,
  DEFAULT_SLICE_CONFIG,
  NODULE_TYPES,
  type AugmentConfig,
  type SliceConfig,
} from '../../src/data/index.ts';
import { isUserError } from '../../src/errors.ts';

const skip = missingDataReason(lidcCropsDir());
if (skip) console.log(`skipping lidc-crops tests: ${skip}`);

const DEFAULT_AUGMENT_FOR_TEST: AugmentConfig = {
  flip: true,
  rot90: true,
  rotateScaleProb: 0.5,
  maxRotateDeg: 15,
  zoomRange: [0.9, 1.1],
  intensityScale: 0.1,
  intensityShift: 0.05,
  shiftOnNoduleProb: 0,
};
const NONE: AugmentConfig = {
  flip: false,
  rot90: false,
  rotateScaleProb: 0,
  maxRotateDeg: 0,
  zoomRange: [1, 1],
  intensityScale: 0,
  intensityShift: 0,
  shiftOnNoduleProb: 0,
};

test('data root honours NODULESEG_DATA', () => {
  const before = process.env['NODULESEG_DATA'];
  process.env['NODULESEG_DATA'] = '/nonexistent/nodule-data';
  try {
    assert.equal(dataRoot(), '/nonexistent/nodule-data');
    assert.match(missingDataReason(lidcCropsDir()) ?? '', /lidc-crops not found/);
    assert.throws(
      () => loadCrops(),
      (e) => isUserError(e) && /\/nonexistent\/nodule-data\/lidc-crops not found/.test(e.message),
    );
  } finally {
    if (before === undefined) delete process.env['NODULESEG_DATA'];
    else process.env['NODULESEG_DATA'] = before;
  }
});

test('stacks replicate edge slices', () => {
  assert.deepEqual(stackSlices(0, 5, 3), [0, 0, 1]);
  assert.deepEqual(stackSlices(4, 5, 5), [2, 3, 4, 4, 4]);
  assert.deepEqual(stackSlices(2, 5, 1), [2]);
  assert.deepEqual(stackSlices(0, 1, 3), [0, 0, 0]);
});

test('mulberry32 is seeded and uniform-ish', () => {
  const a = mulberry32(42);
  const b = mulberry32(42);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(
    xs,
    Array.from({ length: 1000 }, () => b()),
  );
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
});

test('a crops folder with a missing file fails with a one-line message naming it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'noduleseg-crops-'));
  mkdirSync(join(dir, 'image'));
  mkdirSync(join(dir, 'mask'));
  writeFileSync(join(dir, 'splits.csv'), 'case,patient_id,split\nX_R_1,X,train\n');
  writeFileSync(join(dir, 'metadata.csv'), 'case,diameter_mm\nX_R_1,5\n');
  assert.throws(
    () => loadCrops({ dir }),
    (e) => isUserError(e) && e.message.includes(join(dir, 'image', 'X_R_1.nii.gz')) && !e.message.includes('\n'),
  );
  writeFileSync(join(dir, 'splits.csv'), 'case,patient_id,split\nX_R_1,X,test\n');
  assert.throws(
    () => loadCrops({ dir }),
    (e) => isUserError(e) && /unknown split "test"/.test(e.message),
  );
});

test('lidc-crops pipeline: decode, bins, shapes, labels, augmentation, inference twin', { skip: skip ?? false }, async (t) => {
  let t0 = performance.now();
  const all = loadCrops();
  const decodeMs = performance.now() - t0;
  console.log(`decoded ${all.length} crops (${2 * all.length} NIfTI files) in ${decodeMs.toFixed(0)} ms`);
  assert.equal(all.length, 802);
  const train = all.filter((c) => c.split === 'train');
  const val = all.filter((c) => c.split === 'val');
  assert.equal(train.length, 689);
  assert.equal(val.length, 113);
  assert.equal(new Set(train.map((c) => c.patientId)).size, 374);
  assert.ok(!val.some((c) => train.some((d) => d.patientId === c.patientId)), 'split is by patient');
  assert.ok(decodeMs < 20000, `decoding took ${decodeMs} ms`);
  // Loading again hits the in-memory cache.
  t0 = performance.now();
  assert.equal(loadCrops()[0], all[0]);
  assert.ok(performance.now() - t0 < 1000);

  await t.test('size bins are the training tertiles and round-trip through JSON', () => {
    const bins = computeSizeBins(train);
    assert.ok(bins.edgesMm2[0] > 0 && bins.edgesMm2[1] > bins.edgesMm2[0]);
    assert.throws(() => computeSizeBins(val), /training cases only/);
    const counts = [0, 0, 0, 0];
    for (const c of train) for (const a of c.sliceAreaMm2) counts[sizeClassOf(a, bins)]!++;
    const nonzero = counts[1]! + counts[2]! + counts[3]!;
    assert.equal(nonzero, bins.nonzeroSlices);
    for (const k of [1, 2, 3]) assert.ok(Math.abs(counts[k]! / nonzero - 1 / 3) < 0.01, `class ${k}: ${counts[k]} of ${nonzero}`);
    assert.equal(sizeClassOf(0, bins), 0);
    const dir = mkdtempSync(join(tmpdir(), 'noduleseg-bins-'));
    saveSizeBins(join(dir, 'bins.json'), bins);
    assert.deepEqual(loadSizeBins(join(dir, 'bins.json')), bins);
    writeFileSync(join(dir, 'bad.json'), '{"format":"x"}');
    assert.throws(
      () => loadSizeBins(join(dir, 'bad.json')),
      (e) => isUserError(e) && e.message.includes('bad.json'),
    );
  });

  const data = loadTrainVal({ slice: { contextSlices: 3 }, augment: NONE });
  const P = DEFAULT_SLICE_CONFIG.patchSize;

  await t.test('batch shapes and value ranges (2.5D, window normalisation)', () => {
    const b = data.train.batch([0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(b.imageShape, [8, 3, P, P]);
    assert.deepEqual(b.maskShape, [8, 1, P, P]);
    assert.equal(b.image.length, 8 * 3 * P * P);
    assert.equal(b.mask.length, 8 * P * P);
    assert.equal(b.sizeClass.length, 8);
    assert.ok(b.image.every((x) => x >= 0 && x <= 1));
    assert.ok(b.mask.every((x) => x === 0 || x === 1));
    // Sample 0 is slice 0 of case 0: the stack repeats it below.
    assert.equal(b.slice[0], 0);
    assert.deepEqual(b.image.subarray(0, P * P), b.image.subarray(P * P, 2 * P * P));
  });

  await t.test('label statistics: presence, size classes and resampled mask area agree', () => {
    const stats = data.train.labelStats();
    const total = train.reduce((s, c) => s + c.image.dims[2], 0);
    assert.equal(stats.samples, total);
    assert.equal(
      stats.sizeClassCounts.reduce((a, b) => a + b, 0),
      total,
    );
    assert.equal(stats.sizeClassCounts[0], total - stats.withNodule);
    console.log(
      `train: ${stats.samples} slices, ${stats.withNodule} with nodule, size classes ${stats.sizeClassCounts.join('/')}; val: ${data.val.length} slices`,
    );
    let checked = 0;
    let ratioSum = 0;
    const typed = [0, 0, 0];
    for (const b of data.train.batches(512, null)) {
      for (let n = 0; n < b.sizeClass.length; n++) {
        assert.equal(b.presence[n], b.areaMm2[n]! > 0 ? 1 : 0);
        assert.equal(b.sizeClass[n], sizeClassOf(b.areaMm2[n]!, data.sizeBins));
        // The type label: the case's type on its nodule slices, NO_TYPE (-1) elsewhere.
        const type = data.train.cases[b.caseIndex[n]!]!.noduleType;
        assert.equal(b.noduleType[n], b.areaMm2[n]! > 0 && type ? NODULE_TYPES.indexOf(type) : -1);
        if (b.noduleType[n]! >= 0) typed[b.noduleType[n]!]!++;
        if (b.areaMm2[n]! > 20) {
          let count = 0;
          for (let p = 0; p < P * P; p++) count += b.mask[n * P * P + p]!;
          ratioSum += (count * DEFAULT_SLICE_CONFIG.spacingMm ** 2) / b.areaMm2[n]!;
          checked++;
        }
      }
    }
    assert.deepEqual(typed, stats.typeCounts);
    assert.ok(
      typed.every((k) => k > 0),
      `every type has nodule slices: ${typed.join('/')}`,
    );
    const meanRatio = ratioSum / checked;
    assert.ok(checked > 1000);
    assert.ok(Math.abs(meanRatio - 1) < 0.1, `resampled / original nodule area ${meanRatio}`);
  });

  await t.test('2.5D centre channel equals the 2D sample', () => {
    const flat = new SliceDataset({ cases: train, slice: { ...DEFAULT_SLICE_CONFIG, contextSlices: 1 }, sizeBins: data.sizeBins });
    const a = flat.batch([100]);
    const b = data.train.batch([100]);
    assert.deepEqual(b.image.subarray(P * P, 2 * P * P), a.image);
  });

  await t.test('HU statistics for z-scoring', () => {
    const all = huStats(train, { minHU: -1000, maxHU: 400, region: 'all' });
    const nod = huStats(train, { minHU: -1000, maxHU: 400, region: 'nodule' });
    assert.equal(
      nod.voxels,
      train.reduce((s, c) => s + c.mask.reduce((a, b) => a + b, 0), 0),
    );
    // Nodules are soft tissue; the crops around them are mostly lung (air).
    assert.ok(nod.meanHU > -400 && nod.meanHU < 100, `nodule mean ${nod.meanHU}`);
    assert.ok(all.meanHU < nod.meanHU - 200, `crop mean ${all.meanHU}`);
    assert.ok(nod.stdHU > 50 && nod.stdHU < 700);
  });

  await t.test('z-score normalisation', () => {
    const z: SliceConfig = {
      ...DEFAULT_SLICE_CONFIG,
      normalisation: { kind: 'zscore', meanHU: -500, stdHU: 250, minHU: -1000, maxHU: 400 },
    };
    const w = new SliceDataset({ cases: train, slice: DEFAULT_SLICE_CONFIG, sizeBins: data.sizeBins }).batch([50]);
    const s = new SliceDataset({ cases: train, slice: z, sizeBins: data.sizeBins }).batch([50]);
    for (let p = 0; p < P * P; p += 97) {
      const hu = w.image[p]! * 1400 - 1000;
      assert.ok(Math.abs(s.image[p]! - (hu + 500) / 250) < 1e-3);
    }
  });

  await t.test('augmentation is seeded, and flips / 90-degree turns are exact permutations', () => {
    const aug = new SliceDataset({
      cases: train,
      slice: DEFAULT_SLICE_CONFIG,
      sizeBins: data.sizeBins,
      augment: { ...NONE, flip: true, rot90: true },
    });
    const plain = new SliceDataset({ cases: train, slice: DEFAULT_SLICE_CONFIG, sizeBins: data.sizeBins });
    const idx = [5, 300, 1234, 4000];
    const a1 = aug.batch(idx, 7);
    const a2 = aug.batch(idx, 7);
    assert.deepEqual(a1.image, a2.image);
    assert.deepEqual(a1.mask, a2.mask);
    const a3 = aug.batch([idx[2]!], 7); // same sample alone: same augmentation
    assert.deepEqual(a3.image, a1.image.subarray(2 * P * P, 3 * P * P));
    const base = plain.batch(idx);
    let changed = 0;
    for (let n = 0; n < idx.length; n++) {
      const img = base.image.subarray(n * P * P, (n + 1) * P * P);
      const got = a1.image.subarray(n * P * P, (n + 1) * P * P);
      const found = dihedral(img, P).some((cand) => maxAbsDiff(cand, got) < 1e-4);
      assert.ok(found, `sample ${idx[n]} is not a flip/turn of the original`);
      if (maxAbsDiff(img, got) > 1e-4) changed++;
      const m = Float32Array.from(base.mask.subarray(n * P * P, (n + 1) * P * P));
      const mg = Float32Array.from(a1.mask.subarray(n * P * P, (n + 1) * P * P));
      assert.ok(
        dihedral(m, P).some((cand) => maxAbsDiff(cand, mg) === 0),
        'mask follows the image',
      );
    }
    assert.ok(changed > 0, 'some sample changed');
    const full = new SliceDataset({
      cases: train,
      slice: DEFAULT_SLICE_CONFIG,
      sizeBins: data.sizeBins,
      augment: {
        ...NONE,
        flip: true,
        rotateScaleProb: 1,
        maxRotateDeg: 15,
        zoomRange: [0.9, 1.1],
        intensityScale: 0.1,
        intensityShift: 0.05,
      },
    });
    assert.deepEqual(full.batch(idx, 3).image, full.batch(idx, 3).image);
    assert.notDeepEqual(full.batch(idx, 3).image, full.batch(idx, 4).image);
    const d = drawAugment({ ...NONE, rotateScaleProb: 1, maxRotateDeg: 15, zoomRange: [0.9, 1.1] }, mulberry32(1));
    const det = d.A[0] * d.A[3] - d.A[1] * d.A[2];
    assert.ok(det > 1 / 1.1 ** 2 - 1e-9 && det < 1 / 0.9 ** 2 + 1e-9);
  });

  await t.test('patches shifted onto the nodule: the same nodule, off the centre; other streams unchanged', () => {
    // Without the shift, the draws are those of before it existed (it is drawn last, only when on).
    const before = drawAugment(DEFAULT_AUGMENT_FOR_TEST, mulberry32(9));
    const withOption = drawAugment({ ...DEFAULT_AUGMENT_FOR_TEST, shiftOnNoduleProb: 1 }, mulberry32(9));
    assert.deepEqual(withOption.A, before.A);
    assert.equal(before.shiftPick, null);
    assert.ok(withOption.shiftPick !== null && withOption.shiftPick >= 0 && withOption.shiftPick < 1);
    const plain = new SliceDataset({ cases: train, slice: DEFAULT_SLICE_CONFIG, sizeBins: data.sizeBins });
    const shifted = new SliceDataset({
      cases: train,
      slice: DEFAULT_SLICE_CONFIG,
      sizeBins: data.sizeBins,
      augment: { ...NONE, shiftOnNoduleProb: 1 },
    });
    const idx = Array.from({ length: 400 }, (_, i) => (i * 37) % plain.length).filter((i) => plain.batch([i]).presence[0] === 1);
    const a = plain.batch(idx);
    const b = shifted.batch(idx, 11);
    assert.deepEqual(b.sizeClass, a.sizeClass);
    const h = (P - 1) / 2;
    let moved = 0,
      sameArea = 0;
    for (let n = 0; n < idx.length; n++) {
      const [areaA] = centroidOf(a.mask.subarray(n * P * P, (n + 1) * P * P), P);
      const [areaB, cx, cy] = centroidOf(b.mask.subarray(n * P * P, (n + 1) * P * P), P);
      if (Math.hypot(cx - h, cy - h) > 1) moved++;
      if (Math.abs(areaB - areaA) <= 0.1 * areaA + 2) sameArea++;
    }
    assert.ok(moved > 0.5 * idx.length, `${moved} of ${idx.length} masks off the centre`);
    assert.ok(sameArea > 0.9 * idx.length, `${sameArea} of ${idx.length} masks of the same area`);
    assert.deepEqual(shifted.batch(idx, 11).image, b.image);
  });

  await t.test('the cached path (flips, turns, no augmentation) equals direct resampling', () => {
    const aug: AugmentConfig = { ...DEFAULT_AUGMENT_FOR_TEST };
    const lungWindow = [{ minHU: -1000, maxHU: -300 }];
    for (const [k, extraWindows, promptChannel] of [
      [1, undefined, undefined],
      [3, undefined, undefined],
      [3, lungWindow, undefined],
      [1, undefined, { sigmaMm: 8 }],
      [3, lungWindow, { sigmaMm: 8 }],
    ] as const) {
      const slice: SliceConfig = {
        ...DEFAULT_SLICE_CONFIG,
        contextSlices: k,
        ...(extraWindows ? { extraWindows: [...extraWindows] } : {}),
        ...(promptChannel ? { promptChannel } : {}),
      };
      const cached = new SliceDataset({ cases: train, slice, sizeBins: data.sizeBins, augment: aug });
      const direct = new SliceDataset({ cases: train, slice, sizeBins: data.sizeBins, augment: aug, cache: false });
      const idx = Array.from({ length: 300 }, (_, i) => (i * 97) % cached.length);
      for (const seed of [5, null]) {
        const a = cached.batch(idx, seed);
        const b = direct.batch(idx, seed);
        assert.ok(maxAbsDiff(a.image, b.image) < 1e-5, `k=${k} seed=${seed}: ${maxAbsDiff(a.image, b.image)}`);
        assert.deepEqual(a.mask, b.mask);
        assert.deepEqual(a.sizeClass, b.sizeClass);
      }
    }
  });

  await t.test('epoch order is a seeded permutation', () => {
    const o1 = data.train.order(11);
    assert.deepEqual(o1, data.train.order(11));
    assert.notDeepEqual(o1, data.train.order(12));
    assert.deepEqual(
      [...o1].sort((a, b) => a - b),
      Array.from({ length: data.train.length }, (_, i) => i),
    );
    // Batches follow the order; the last one is short unless dropped.
    const it = data.train.batches(1000, 11);
    const first = it.next().value!;
    assert.deepEqual(
      first.caseIndex,
      Int32Array.from(o1.subarray(0, 1000), (s) => data.train.sampleCase[s]!),
    );
    const sizes = [
      ...new SliceDataset({ cases: train.slice(0, 40), slice: DEFAULT_SLICE_CONFIG, sizeBins: data.sizeBins }).batches(64, 1),
    ].map((b) => b.imageShape[0]);
    const total = train.slice(0, 40).reduce((a, c) => a + c.image.dims[2], 0);
    assert.equal(
      sizes.reduce((a, b) => a + b, 0),
      total,
    );
    assert.ok(sizes.slice(0, -1).every((x) => x === 64));
  });

  await t.test('inference twin: same input as training, and the inverse resampling restores the mask', () => {
    const ci = 10;
    const c = train[ci]!;
    const grid = sliceGrid(c.image, { ...DEFAULT_SLICE_CONFIG, contextSlices: 3 });
    const x = volumeToSlices(grid);
    const nz = c.image.dims[2];
    assert.deepEqual(x.shape, [nz, 3, P, P]);
    const first = [...data.train.sampleCase].indexOf(ci);
    const b = data.train.batch(Array.from({ length: nz }, (_, z) => first + z));
    assert.deepEqual(x.input, b.image);
    // Feed the resampled training masks back as probabilities: the crop mask comes back.
    const mask = slicesToMask(Float32Array.from(b.mask), grid);
    assert.deepEqual(mask.dims, c.image.dims);
    assert.ok(mask.sameGrid(c.image, 0));
    const dice = diceOf(mask.data, c.mask);
    assert.ok(dice > 0.9, `dice ${dice}`);
  });

  await t.test('an extra intensity window: one more stack of channels, the same slices clipped to it, in training and inference', () => {
    const ci = 10;
    const c = train[ci]!;
    const slice: SliceConfig = { ...DEFAULT_SLICE_CONFIG, contextSlices: 3, extraWindows: [{ minHU: -1000, maxHU: -300 }] };
    assert.equal(inputChannels(slice), 6);
    const x = volumeToSlices(sliceGrid(c.image, slice));
    const nz = c.image.dims[2];
    assert.deepEqual(x.shape, [nz, 6, P, P]);
    const plain = volumeToSlices(sliceGrid(c.image, { ...DEFAULT_SLICE_CONFIG, contextSlices: 3 }));
    const plane = P * P;
    let inGlass = 0;
    for (let z = 0; z < nz; z++) {
      for (let ch = 0; ch < 3; ch++) {
        const wide = plain.input.subarray((z * 3 + ch) * plane, (z * 3 + ch + 1) * plane);
        assert.deepEqual(x.input.subarray((z * 6 + ch) * plane, (z * 6 + ch + 1) * plane), wide);
        const narrow = x.input.subarray((z * 6 + 3 + ch) * plane, (z * 6 + 4 + ch) * plane);
        for (let p = 0; p < plane; p++) {
          // Both are linear in HU inside the narrow window; above it the narrow one saturates at 1.
          const hu = wide[p]! * 1400 - 1000;
          const expected = hu >= -300 ? 1 : hu <= -1000 ? 0 : (hu + 1000) / 700;
          assert.ok(Math.abs(narrow[p]! - expected) < 1e-4, `z ${z} ch ${ch} pixel ${p}: ${narrow[p]} for ${hu} HU`);
          if (hu > -800 && hu < -300) inGlass++;
        }
      }
    }
    assert.ok(inGlass > 0, 'the crop has ground-glass-range pixels');
    const ds = new SliceDataset({ cases: train, slice, sizeBins: data.sizeBins });
    const first = [...ds.sampleCase].indexOf(ci);
    const b = ds.batch(Array.from({ length: nz }, (_, z) => first + z));
    assert.deepEqual(b.imageShape, [nz, 6, P, P]);
    assert.deepEqual(x.input, b.image);
  });

  await t.test('the prompt channel: a Gaussian of the distance from the prompt, last, the same in training and inference', () => {
    const ci = 10;
    const c = train[ci]!;
    const sigmaMm = 8;
    const slice: SliceConfig = { ...DEFAULT_SLICE_CONFIG, promptChannel: { sigmaMm } };
    assert.equal(inputChannels(slice), 2);
    assert.equal(inputChannels({ ...slice, contextSlices: 3, extraWindows: [{ minHU: -1000, maxHU: -300 }] }), 7);
    for (const bad of [{ sigmaMm: 0 }, { sigmaMm: -1 }, { sigma: 8 }])
      assert.throws(() => validateSliceConfig({ ...slice, promptChannel: bad as never }), /promptChannel/);
    const [nx, ny, nz] = c.image.dims;
    const sz = c.image.spacingMm[2];
    const plane = P * P;
    const h = (P - 1) / 2;
    const x = volumeToSlices(sliceGrid(c.image, slice));
    assert.deepEqual(x.shape, [nz, 2, P, P]);
    const plain = volumeToSlices(sliceGrid(c.image, DEFAULT_SLICE_CONFIG));
    const zc = (nz - 1) / 2;
    for (let z = 0; z < nz; z++) {
      assert.deepEqual(x.input.subarray(2 * z * plane, (2 * z + 1) * plane), plain.input.subarray(z * plane, (z + 1) * plane));
      const ch = x.input.subarray((2 * z + 1) * plane, (2 * z + 2) * plane);
      // Pixel (u, v) lies (u - h, v - h) * 0.7 mm from the prompt in-plane, (z - zc) * sz along z.
      for (const [u, v] of [
        [31, 31],
        [0, 0],
        [40, 20],
      ] as const) {
        const d2 = ((u - h) * 0.7) ** 2 + ((v - h) * 0.7) ** 2 + ((z - zc) * sz) ** 2;
        assert.ok(Math.abs(ch[u + P * v]! - Math.exp(-d2 / (2 * sigmaMm ** 2))) < 1e-5, `z ${z} (${u}, ${v}): ${ch[u + P * v]}`);
      }
    }
    // A prompt away from the patches' centre (recentred patches): its peak is where the prompt is.
    const prompt: [number, number, number] = [(nx - 1) / 2 + 6, (ny - 1) / 2 - 4, 0];
    const off = volumeToSlices(sliceGrid(c.image, slice, undefined, prompt));
    const ch0 = off.input.subarray(plane, 2 * plane);
    const peak = ch0.indexOf(Math.max(...ch0));
    const ku = c.image.spacingMm[0] / 0.7;
    const kv = c.image.spacingMm[1] / 0.7;
    assert.ok(Math.abs((peak % P) - (h + 6 * ku)) <= 0.5 && Math.abs(Math.floor(peak / P) - (h - 4 * kv)) <= 0.5, `peak at ${peak}`);
    // Training without augmentation sees what inference sees.
    const ds = new SliceDataset({ cases: train, slice, sizeBins: data.sizeBins });
    const first = [...ds.sampleCase].indexOf(ci);
    assert.deepEqual(ds.batch(Array.from({ length: nz }, (_, z) => first + z)).image, x.input);
    // With augmentation, about half of the centred patches are prompted on a voxel of the nodule
    // instead of its centre.
    const aug = new SliceDataset({ cases: train, slice, sizeBins: data.sizeBins, augment: { ...NONE } });
    const idx = Array.from({ length: 300 }, (_, i) => (i * 53) % aug.length);
    const b = aug.batch(idx, 9);
    let offCentre = 0;
    idx.forEach((s, n) => {
      const cc = train[aug.sampleCase[s]!]!;
      const z = aug.sampleSlice[s]!;
      const ch = b.image.subarray((2 * n + 1) * plane, (2 * n + 2) * plane);
      const top = ch.indexOf(Math.max(...ch));
      // The peak's distance along z from this slice, from its value and in-plane offset.
      const inPlane2 = ((top % P) - h) ** 2 * 0.49 + (Math.floor(top / P) - h) ** 2 * 0.49;
      const dz2 = Math.max(0, -2 * sigmaMm ** 2 * Math.log(ch[top]!) - inPlane2);
      if (inPlane2 > 2 || Math.abs(Math.sqrt(dz2) - Math.abs(z - (cc.image.dims[2] - 1) / 2) * cc.image.spacingMm[2]) > 0.5) offCentre++;
    });
    assert.ok(offCentre > 0.3 * idx.length && offCentre < 0.7 * idx.length, `${offCentre} of ${idx.length} prompts off the centre`);
  });

  await t.test('epoch timing', () => {
    for (const k of [1, 3]) {
      const ds = loadTrainVal({ slice: { contextSlices: k } }).train;
      const ms: number[] = [];
      for (const seed of [1, 2]) {
        const t1 = performance.now();
        let n = 0;
        for (const b of ds.batches(64, seed)) n += b.imageShape[0];
        ms.push(performance.now() - t1);
        assert.equal(n, ds.length);
      }
      console.log(
        `epoch of ${ds.length} augmented ${k === 1 ? '2D' : '2.5D (k=3)'} samples, 64x64: ${ms[0]!.toFixed(0)} ms first (fills the patch cache), ${ms[1]!.toFixed(0)} ms next`,
      );
      assert.ok(ms[1]! < 15000);
    }
  });
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** The 8 flips/turns of a P x P image. */
function dihedral(img: Float32Array, P: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let t = 0; t < 8; t++) {
    const r = new Float32Array(P * P);
    for (let v = 0; v < P; v++) {
      for (let u = 0; u < P; u++) {
        let x = t & 4 ? P - 1 - u : u;
        let y = v;
        for (let q = 0; q < (t & 3); q++) [x, y] = [P - 1 - y, x];
        r[u + P * v] = img[x + P * y]!;
      }
    }
    out.push(r);
  }
  return out;
}

function diceOf(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let inter = 0;
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < a.length; i++) {
    inter += a[i]! && b[i]! ? 1 : 0;
    sa += a[i]! ? 1 : 0;
    sb += b[i]! ? 1 : 0;
  }
  return (2 * inter) / (sa + sb);
}

/** Pixel count and centroid (u, v) of a P x P mask. */
function centroidOf(m: ArrayLike<number>, P: number): [number, number, number] {
  let n = 0,
    u = 0,
    v = 0;
  for (let i = 0; i < P * P; i++) {
    if (!m[i]) continue;
    n++;
    u += i % P;
    v += Math.floor(i / P);
  }
  return n ? [n, u / n, v / n] : [0, Number.NaN, Number.NaN];
}

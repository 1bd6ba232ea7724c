import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { readImageNode } from '@itk-wasm/image-io';
import { PNG } from 'pngjs';
import {
  AIR_HU,
  cropAround,
  gridOffset,
  pasteCrop,
  readDicomSeries,
  readNifti,
  readVolume,
  renderOverlayPng,
  Volume,
  writeItkImage,
  writeNifti,
  writeNiftiMask,
  type Mat3,
  type Vec3,
} from '../../src/io/index.ts';
import { lidcCropsDir, missingDataReason } from '../../src/data/paths.ts';
import { tempDir, writeFakeSeries } from './helpers.ts';

const theta = 0.3;
// An oblique direction (rotation about z then a small tilt) so that axis mix-ups show.
const OBLIQUE: Mat3 = (() => {
  const c = Math.cos(theta);
  const s = Math.sin(theta);
  const t = 0.1;
  const ct = Math.cos(t);
  const st = Math.sin(t);
  // Rz(theta) * Rx(t)
  return [c, -s * ct, s * st, s, c * ct, -c * st, 0, st, ct] as Mat3;
})();

function sample(direction: Mat3 = OBLIQUE): Volume<Int16Array> {
  const dims: Vec3 = [7, 5, 4];
  const data = new Int16Array(7 * 5 * 4).map((_, i) => ((i * 37) % 2001) - 1000);
  // Spacing and origin exactly representable in float32, so NIfTI round trips are exact.
  return new Volume({ data, dims, spacingMm: [0.703125, 0.5, 2.5], originMm: [-120.25, 33.5, -301.125], direction });
}

function close(a: readonly number[], b: readonly number[], tol: number, what: string): void {
  assert.equal(a.length, b.length);
  a.forEach((x, i) => {
    assert.ok(Math.abs(x - b[i]!) <= tol, `${what}[${i}]: ${x} vs ${b[i]}`);
  });
}

test('world <-> voxel on an oblique grid', () => {
  const v = sample();
  const w = v.voxelToWorld([0, 0, 0]);
  close(w, v.originMm, 0, 'origin');
  // One step along i moves spacing[0] mm along the first direction column.
  const w1 = v.voxelToWorld([1, 0, 0]);
  close([w1[0] - w[0], w1[1] - w[1], w1[2] - w[2]], [OBLIQUE[0] * 0.703125, OBLIQUE[3] * 0.703125, OBLIQUE[6] * 0.703125], 1e-12, 'step');
  for (const p of [
    [0, 0, 0],
    [6, 4, 3],
    [2.5, -1.25, 7.75],
  ])
    close(v.worldToVoxel(v.voxelToWorld(p)), p, 1e-9, 'round trip');
  assert.throws(
    () => new Volume({ data: new Int16Array(5), dims: [2, 2, 2], spacingMm: [1, 1, 1], originMm: [0, 0, 0] }),
    /data has 5 voxels/,
  );
  assert.throws(
    () => new Volume({ data: new Int16Array(8), dims: [2, 2, 2], spacingMm: [1, 0, 1], originMm: [0, 0, 0] }),
    /spacing must be positive/,
  );
});

for (const ext of ['nii', 'nii.gz']) {
  test(`NIfTI round trip (.${ext}): voxels and geometry`, async () => {
    const dir = tempDir('nifti');
    const v = sample();
    const path = join(dir, `a.${ext}`);
    writeNifti(path, v);
    const r = readNifti(path);
    assert.deepEqual(r.dims, v.dims);
    assert.deepEqual(r.spacingMm, v.spacingMm);
    assert.deepEqual(r.originMm, v.originMm);
    close(r.direction, v.direction, 1e-6, 'direction'); // stored as float32 quaternion/sform
    assert.deepEqual(r.data, v.data);
    // ITK reads our file to the same place.
    const itk = await readImageNode(path);
    close(itk.origin, v.originMm, 1e-6, 'itk origin');
    close(Array.from(itk.direction, Number), v.direction, 1e-6, 'itk direction');
    close(itk.spacing, v.spacingMm, 1e-6, 'itk spacing');
    assert.deepEqual(readdirSync(dir), [`a.${ext}`], 'no temporary files left');
  });
}

for (const ext of ['mhd', 'mha', 'nrrd']) {
  test(`${ext} round trip through itk-wasm: voxels and geometry`, async () => {
    const dir = tempDir(ext);
    const v = sample();
    const path = join(dir, `a.${ext}`);
    await writeItkImage(path, v);
    const r = await readVolume(path);
    assert.deepEqual(r.dims, v.dims);
    close(r.spacingMm, v.spacingMm, 1e-12, 'spacing');
    close(r.originMm, v.originMm, 1e-12, 'origin');
    close(r.direction, v.direction, 1e-12, 'direction');
    assert.deepEqual(r.data, v.data);
    assert.deepEqual(readdirSync(dir).sort(), ext === 'mhd' ? ['a.mhd', 'a.raw'] : [`a.${ext}`]);
  });
}

test('compressed MetaImage (.zraw) round trip', async () => {
  const dir = tempDir('zraw');
  const v = sample();
  await writeItkImage(join(dir, 'a.mhd'), v, { compress: true });
  assert.ok(readdirSync(dir).includes('a.zraw'));
  assert.deepEqual((await readVolume(join(dir, 'a.mhd'))).data, v.data);
});

test('NIfTI scl_slope/scl_inter are applied; sform wins over qform', () => {
  const dir = tempDir('scl');
  const v = sample([1, 0, 0, 0, 1, 0, 0, 0, 1]);
  writeNifti(join(dir, 'a.nii'), v);
  const bytes = readFileSync(join(dir, 'a.nii'));
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  dv.setFloat32(112, 2, true);
  dv.setFloat32(116, -5, true);
  // Move the sform origin: the reader must follow the sform (code 1) rather than the qform.
  dv.setFloat32(280 + 12, 50, true);
  writeFileSync(join(dir, 'b.nii'), bytes);
  const r = readNifti(join(dir, 'b.nii'));
  assert.equal(r.data[3], v.data[3]! * 2 - 5);
  assert.ok(r.data instanceof Int16Array);
  assert.equal(r.originMm[0], -50); // RAS x 50 is LPS x -50
});

test('a mask written for a NIfTI image keeps the source header geometry byte for byte', {
  skip: missingDataReason(lidcCropsDir()) ?? false,
}, () => {
  const src = join(lidcCropsDir(), 'image', 'LIDC-IDRI-0001_R_1.nii.gz');
  const img = readNifti(src);
  const mask = new Uint8Array(img.voxelCount).map((_, i) => (i % 7 === 0 ? 1 : 0));
  const dir = tempDir('mask');
  writeNiftiMask(join(dir, 'm.nii.gz'), mask, img);
  const back = readNifti(join(dir, 'm.nii.gz'));
  assert.ok(back.data instanceof Uint8Array);
  assert.deepEqual(back.data, mask);
  assert.deepEqual([back.dims, back.spacingMm, back.originMm, back.direction], [img.dims, img.spacingMm, img.originMm, img.direction]);
  const a = gunzipSync(readFileSync(src));
  const b = gunzipSync(readFileSync(join(dir, 'm.nii.gz')));
  for (const [from, to] of [
    [76, 108],
    [252, 328],
  ])
    assert.deepEqual(b.subarray(from!, to!), a.subarray(from!, to!), `header bytes ${from}..${to}`);
  assert.throws(() => writeNiftiMask(join(dir, 'bad.nii.gz'), new Uint8Array(5), img), /mask has 5 voxels/);
  assert.deepEqual(readdirSync(dir), ['m.nii.gz']);
});

test('our NIfTI reader agrees with itk-wasm on the crops (voxels and geometry)', {
  skip: missingDataReason(lidcCropsDir()) ?? false,
}, async () => {
  for (const id of ['LIDC-IDRI-0001_R_1', 'LIDC-IDRI-0003_R_3']) {
    const p = join(lidcCropsDir(), 'image', `${id}.nii.gz`);
    const ours = readNifti(p);
    const itk = await readImageNode(p);
    assert.deepEqual([...ours.dims], itk.size);
    close(ours.originMm, itk.origin, 1e-9, 'origin');
    close(ours.spacingMm, itk.spacing, 1e-9, 'spacing');
    close(ours.direction, Array.from(itk.direction, Number), 1e-9, 'direction');
    assert.deepEqual(ours.data, itk.data);
  }
});

test('DICOM series: sorted along the normal whatever the file order; spacing and rescale', async () => {
  const dir = tempDir('dcm');
  // Files written in shuffled z order with InstanceNumber disagreeing with position.
  writeFakeSeries(dir, [
    { z: 34, instance: 1 },
    { z: 30, instance: 5 },
    { z: 36, instance: 2, slope: 2, intercept: -2048 },
    { z: 32, instance: 3 },
  ]);
  const r = await readDicomSeries(dir);
  const v = r.volume;
  assert.deepEqual(v.dims, [4, 3, 4]);
  assert.deepEqual(v.spacingMm, [0.75, 0.5, 2]);
  assert.deepEqual(v.originMm, [-10, -20, 30]);
  assert.deepEqual(
    r.files.map((f) => f.slice(-10)),
    ['IM0002.dcm', 'IM0004.dcm', 'IM0001.dcm', 'IM0003.dcm'],
  );
  // Slice k = 3 is the third file written (n = 2): raw i + 20, slope 2, intercept -2048.
  assert.equal(v.data[3 * 12 + 5], (5 + 20) * 2 - 2048);
  assert.equal(v.data[0], 0 + 10 - 1024);
  assert.equal(v.modality, 'CT');
  close(v.voxelToWorld([1, 2, 3]), [-10 + 0.75, -20 + 2 * 0.5, 36], 1e-12, 'world');
});

test('DICOM: RLE-compressed slices decode (through GDCM) to the same HU, each with its own rescale', async () => {
  const dir = tempDir('rle');
  const slices = [{ z: 0 }, { z: 2, slope: 2, intercept: -2048 }, { z: 4 }];
  writeFakeSeries(join(dir, 'plain'), slices);
  writeFakeSeries(
    join(dir, 'rle'),
    slices.map((s) => ({ ...s, rle: true })),
  );
  const plain = (await readDicomSeries(join(dir, 'plain'))).volume;
  const rle = (await readDicomSeries(join(dir, 'rle'))).volume;
  assert.deepEqual(rle.data, plain.data);
  assert.equal(rle.data[12], (0 + 10) * 2 - 2048);
  assert.deepEqual([rle.dims, rle.spacingMm, rle.originMm], [plain.dims, plain.spacingMm, plain.originMm]);
  // A corrupt compressed file is a one-line error naming it.
  const files = writeFakeSeries(join(dir, 'bad'), [
    { z: 0, rle: true },
    { z: 2, rle: true, truncateBy: 30 },
  ]);
  await assert.rejects(
    readVolume(join(dir, 'bad')),
    (e: unknown) => e instanceof Error && e.message.startsWith(files[1]!) && !e.message.includes('\n'),
  );
});

test('DICOM: a folder with two series asks which one; --series picks it', async () => {
  const dir = tempDir('dcm2');
  writeFakeSeries(join(dir, 'a'), [{ z: 0 }, { z: 2 }]);
  writeFakeSeries(join(dir, 'b'), [
    { z: 0, series: '1.2.826.0.1.3680043.10.1453.8.2' },
    { z: 1, series: '1.2.826.0.1.3680043.10.1453.8.2' },
    { z: 2, series: '1.2.826.0.1.3680043.10.1453.8.2' },
  ]);
  await assert.rejects(readDicomSeries(dir), /2 series in this folder, choose one: .*8\.1 \(CT, 2 files\).*8\.2 \(CT, 3 files\)/);
  assert.equal((await readDicomSeries(dir, { seriesUid: '1.2.826.0.1.3680043.10.1453.8.2' })).volume.dims[2], 3);
});

test('crop around a centre (world or voxel), air outside, and paste back', () => {
  const v = sample();
  const { crop, startVoxel } = cropAround(v, { voxel: [1, 3, 0] }, [4, 4, 3]);
  assert.deepEqual(startVoxel, [-1, 1, -1]);
  assert.deepEqual(crop.dims, [4, 4, 3]);
  close(crop.originMm, v.voxelToWorld(startVoxel), 1e-12, 'crop origin');
  assert.deepEqual(crop.direction, v.direction);
  for (let k = 0; k < 3; k++) {
    for (let j = 0; j < 4; j++) {
      for (let i = 0; i < 4; i++) {
        const [x, y, z] = [i - 1, j + 1, k - 1];
        const inside = x >= 0 && y >= 0 && z >= 0 && x < 7 && y < 5 && z < 4;
        assert.equal(crop.data[crop.index(i, j, k)], inside ? v.data[v.index(x, y, z)] : AIR_HU);
      }
    }
  }
  // The same centre given in world mm (slightly off the voxel centre) gives the same crop.
  const again = cropAround(v, { worldMm: v.voxelToWorld([1.2, 2.8, 0.3]) }, [4, 4, 3]).crop;
  assert.deepEqual(again.data, crop.data);
  // Paste back: the crop finds its own place through its geometry.
  const target = v.withData(new Int16Array(v.voxelCount));
  assert.deepEqual(pasteCrop(target, crop), startVoxel);
  assert.deepEqual(gridOffset(crop, v), startVoxel);
  for (let n = 0; n < v.voxelCount; n++) {
    const z = Math.floor(n / 35);
    const y = Math.floor(n / 7) % 5;
    const x = n % 7;
    const inCrop = x <= 2 && y >= 1 && y <= 4 && z <= 1;
    assert.equal(target.data[n], inCrop ? v.data[n] : 0);
  }
  // A whole-volume round trip: crop everything with a margin, paste into zeros, get v back.
  const big = cropAround(v, { voxel: [3, 2, 2] }, [11, 9, 8]).crop;
  const t2 = v.withData(new Int16Array(v.voxelCount));
  pasteCrop(t2, big);
  assert.deepEqual(t2.data, v.data);
  // Masks paste as a union with mode 'max'.
  const m = v.withData(new Uint8Array(v.voxelCount));
  m.data[0] = 1;
  const cm = cropAround(m, { voxel: [3, 2, 2] }, [3, 3, 3], 0).crop;
  cm.data.fill(1);
  pasteCrop(m, cm, 'max');
  assert.equal(m.data[0], 1);
  assert.equal(
    m.data.reduce((a, b) => a + b, 0),
    28,
  );
  // Labels paste with mode 'fill': zeros of the crop and voxels already labelled are left alone.
  const lab = v.withData(new Uint8Array(v.voxelCount));
  const c1 = cropAround(lab, { voxel: [3, 2, 2] }, [3, 3, 3], 0).crop;
  c1.data.fill(1);
  pasteCrop(lab, c1, 'fill');
  const c2 = cropAround(lab, { voxel: [4, 2, 2] }, [3, 3, 3], 0).crop;
  c2.data.fill(2);
  c2.data[0] = 0;
  pasteCrop(lab, c2, 'fill');
  assert.equal(lab.data.filter((x) => x === 1).length, 27);
  assert.equal(lab.data.filter((x) => x === 2).length, 9);
  // Off-grid crops are refused rather than silently misplaced.
  const shifted = new Volume({
    data: crop.data,
    dims: crop.dims,
    spacingMm: crop.spacingMm,
    originMm: [crop.originMm[0] + 0.3, crop.originMm[1], crop.originMm[2]],
    direction: crop.direction,
  });
  assert.throws(() => pasteCrop(target, shifted), /not on the target grid/);
});

test('PNG overlay: lung window grey levels, red outline, montage layout', () => {
  const dims: Vec3 = [40, 30, 5];
  const data = new Int16Array(40 * 30 * 5).fill(-1350);
  const v = new Volume({ data, dims, spacingMm: [1, 1, 1], originMm: [0, 0, 0], modality: 'CT' });
  const mask = new Uint8Array(v.voxelCount);
  for (const k of [1, 2, 3]) for (let j = 10; j < 15; j++) for (let i = 12; i < 20; i++) mask[v.index(i, j, k)] = 1;
  data[v.index(0, 0, 2)] = 150;
  const one = PNG.sync.read(Buffer.from(renderOverlayPng(v, mask, { fullSlice: true, scale: 1, slices: [2] })));
  assert.deepEqual([one.width, one.height], [40, 30]);
  const px = (img: PNG, x: number, y: number) => [...img.data.subarray(4 * (x + img.width * y), 4 * (x + img.width * y) + 3)];
  assert.deepEqual(px(one, 0, 0), [255, 255, 255]); // top of the lung window
  assert.deepEqual(px(one, 1, 0), [0, 0, 0]); // bottom of the window
  assert.deepEqual(px(one, 12, 10), [255, 40, 40]); // outline
  assert.deepEqual(px(one, 15, 12), [0, 0, 0]); // inside the mask: CT shows through
  const montage = PNG.sync.read(Buffer.from(renderOverlayPng(v, mask, { slices: 'all-mask', columns: 3, scale: 2, marginVoxels: 2 })));
  // Three tiles of (8 + 4) x (5 + 4) voxels at scale 2, with 2-pixel gaps.
  assert.deepEqual([montage.width, montage.height], [3 * 24 + 2 * 2, 18]);
});

test('big-endian NIfTI is read the same as little-endian', () => {
  const dir = tempDir('be');
  const v = sample([1, 0, 0, 0, 1, 0, 0, 0, 1]);
  writeNifti(join(dir, 'le.nii'), v);
  const le = readFileSync(join(dir, 'le.nii'));
  const be = Buffer.from(le);
  const swap = (off: number, n: number) => be.subarray(off, off + n).reverse();
  swap(0, 4); // sizeof_hdr
  for (let a = 0; a < 8; a++) swap(40 + 2 * a, 2); // dim
  for (const o of [70, 72, 252, 254]) swap(o, 2); // datatype, bitpix, qform_code, sform_code
  for (let o = 76; o < 120; o += 4) swap(o, 4); // pixdim, vox_offset, scl_slope, scl_inter
  for (let o = 256; o < 328; o += 4) swap(o, 4); // quatern, qoffset, srow
  for (let p = 352; p < be.length; p += 2) swap(p, 2); // int16 voxels
  writeFileSync(join(dir, 'be.nii'), be);
  const r = readNifti(join(dir, 'be.nii'));
  assert.deepEqual(r.data, v.data);
  assert.deepEqual([r.dims, r.spacingMm, r.originMm, r.direction], [v.dims, v.spacingMm, v.originMm, v.direction]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import dcmjs from 'dcmjs';
import { readDicomSeries, listDicomSeries } from '../../src/io/dicom.ts';
import { readVolume } from '../../src/io/read.ts';
import { readNifti } from '../../src/io/nifti.ts';
import { gridOffset } from '../../src/io/crop.ts';
import {
  consensusVoxels,
  findLidcXml,
  groupNodules,
  noduleReport,
  parseLidcXml,
  rasteriseNodule,
  readersNeeded,
  sortedIntersectionSize,
  voxelsToMask,
} from '../../src/io/lidc.ts';
import { lidcCropsDir, lidcScansDir, missingDataReason } from '../../src/data/paths.ts';

test('sortedIntersectionSize counts the indices two sorted voxel lists share', () => {
  assert.equal(sortedIntersectionSize(Int32Array.of(1, 3, 5, 9), Int32Array.of(0, 3, 4, 5, 10)), 2);
  assert.equal(sortedIntersectionSize(Int32Array.of(), Int32Array.of(1)), 0);
  assert.equal(sortedIntersectionSize(Int32Array.of(2, 7), Int32Array.of(2, 7)), 2);
  assert.equal(sortedIntersectionSize(Int32Array.of(1, 2), Int32Array.of(3, 4)), 0);
});

const scans = lidcScansDir();
const skip = missingDataReason(scans) ?? missingDataReason(lidcCropsDir());
if (skip) console.log(`skipping real-scan tests: ${skip}`);

function seriesDir(patient: string): string {
  let d = join(scans, patient);
  for (let i = 0; i < 2; i++) d = join(d, readdirSync(d).find((n) => !n.startsWith('.'))!);
  return d;
}

function header(file: string): Record<string, unknown> {
  const b = readFileSync(file);
  const dict = dcmjs.data.DicomMessage.readFile(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
  return dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict);
}

const EXPECT = {
  'LIDC-IDRI-0001': { slices: 133, nodules: 1, small: 9, non: 13, crops: { R_1: 1 } },
  'LIDC-IDRI-0003': { slices: 140, nodules: 4, small: 0, non: 38, crops: { R_2: 2, R_3: 3, R_4: 4 } },
} as const;

for (const [patient, expect] of Object.entries(EXPECT)) {
  test(`${patient}: DICOM series and LIDC reads`, { skip: skip ?? false }, async (t) => {
    const dir = seriesDir(patient);
    const series = await readDicomSeries(join(scans, patient));
    const vol = series.volume;

    await t.test('dims, spacing, modality, HU range', () => {
      assert.deepEqual(vol.dims, [512, 512, expect.slices]);
      const h = header(series.files[0]!);
      const ps = h['PixelSpacing'] as number[];
      assert.deepEqual([vol.spacingMm[0], vol.spacingMm[1]], [ps[1], ps[0]]);
      assert.ok(Math.abs(vol.spacingMm[2] - 2.5) < 1e-6, `slice step ${vol.spacingMm[2]}`);
      assert.equal(vol.modality, 'CT');
      assert.deepEqual(series.warnings, []);
      assert.deepEqual(
        listDicomSeries(dir).map((s) => s.files),
        [expect.slices],
      );
      const { min, max } = vol.range();
      // The same range from every file's pixels decoded by dcmjs (an independent parser).
      let lo = Infinity;
      let hi = -Infinity;
      for (const f of series.files) {
        const h = header(f);
        const buf = (h['PixelData'] as ArrayBuffer[])[0]!;
        const px = Number(h['PixelRepresentation']) === 1 ? new Int16Array(buf) : new Uint16Array(buf);
        const slope = Number(h['RescaleSlope'] ?? 1);
        const inter = Number(h['RescaleIntercept'] ?? 0);
        for (let p = 0; p < px.length; p++) {
          const v = px[p]! * slope + inter;
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      }
      assert.deepEqual([min, max], [lo, hi]);
      assert.ok(min <= -1000 && max >= 1000);
      console.log(`${patient}: ${vol.dims.join('x')}, HU ${min}..${max}`);
    });

    await t.test('slices are ordered along the normal; slice positions match each header (read by dcmjs)', () => {
      for (const k of [0, 1, Math.floor(expect.slices / 2), expect.slices - 1]) {
        const h = header(series.files[k]!);
        const ipp = h['ImagePositionPatient'] as number[];
        const w = vol.voxelToWorld([0, 0, k]);
        for (let a = 0; a < 3; a++) assert.ok(Math.abs(w[a]! - ipp[a]!) < 1e-3, `slice ${k} axis ${a}: ${w[a]} vs ${ipp[a]}`);
      }
      // The file with InstanceNumber 1, wherever it sits.
      const k1 = series.files.findIndex((f) => Number(header(f)['InstanceNumber']) === 1);
      assert.ok(k1 >= 0);
      const h1 = header(series.files[k1]!);
      const w1 = vol.voxelToWorld([0, 0, k1]);
      (h1['ImagePositionPatient'] as number[]).forEach((v, a) => {
        assert.ok(Math.abs(w1[a]! - v) < 1e-3);
      });
      // Rescaled pixels of that slice equal dcmjs's raw pixels * slope + intercept.
      const buf1 = (h1['PixelData'] as ArrayBuffer[])[0]!;
      const raw = Number(h1['PixelRepresentation']) === 1 ? new Int16Array(buf1) : new Uint16Array(buf1);
      const slope = Number(h1['RescaleSlope'] ?? 1);
      const inter = Number(h1['RescaleIntercept'] ?? 0);
      const n = 512 * 512;
      for (let p = 0; p < n; p += 997) assert.equal(vol.data[k1 * n + p], raw[p]! * slope + inter);
    });

    await t.test('world <-> voxel', () => {
      for (const ijk of [
        [0, 0, 0],
        [511, 511, expect.slices - 1],
        [100.5, 37.25, 3],
      ]) {
        const back = vol.worldToVoxel(vol.voxelToWorld(ijk));
        ijk.forEach((v, a) => {
          assert.ok(Math.abs(back[a]! - v) < 1e-9);
        });
      }
    });

    await t.test('readVolume on the folder gives the same volume', async () => {
      const again = await readVolume(join(scans, patient));
      assert.deepEqual(again.dims, vol.dims);
      assert.deepEqual(again.originMm, vol.originMm);
    });

    const xmlPath = findLidcXml(
      join(scans, patient),
      series.volume.source?.format === 'dicom' ? series.volume.source.series.seriesInstanceUid : '',
    );
    const xml = parseLidcXml(xmlPath);
    const nodules = groupNodules(xml, vol);

    await t.test('XML: readers, nodules >= 3 mm, small nodules, non-nodules', () => {
      assert.equal(xml.readers.length, 4);
      assert.equal(xml.smallNodules.length, expect.small);
      assert.equal(xml.nonNodules.length, expect.non);
      assert.equal(nodules.length, expect.nodules);
      assert.ok(
        xml.nodules.every((n) => n.rois.every((r) => r.sopInstanceUid.startsWith('1.3.6.1.4.1.14519'))),
        'UIDs stay strings',
      );
      for (const n of nodules) {
        const r = noduleReport(n, vol, xml, 'any');
        console.log(
          `${patient} nodule ${r.index}: ${r.readers} readers, ${r.volumeMm3.toFixed(0)} mm3, ${r.longestAxialDiameterMm.toFixed(1)} mm, centre [${r.centreMm.map((v) => v.toFixed(1)).join(', ')}]`,
        );
        assert.ok(r.volumeMm3 > 0 && r.longestAxialDiameterMm > 3);
        assert.equal(new Set(n.reads.map((x) => x.reader)).size, n.reads.length, 'one read per reader in a nodule');
        // Consensus levels nest: all <= 0.5 <= any.
        const any = consensusVoxels(n, 'any').length;
        const half = consensusVoxels(n, 0.5).length;
        const all = consensusVoxels(n, 'all').length;
        assert.ok(all <= half && half <= any && any === n.voxels.length);
        assert.equal(readersNeeded(0.5, 4), 2);
        assert.equal(readersNeeded({ readers: 3 }, 4), 3);
      }
    });

    await t.test('the union of the readers equals each lidc-crops mask voxel for voxel', () => {
      for (const [crop, noduleIndex] of Object.entries(expect.crops)) {
        const m = readNifti(join(lidcCropsDir(), 'mask', `${patient}_${crop}.nii.gz`), { raw: true });
        const nodule = nodules.find((n) => n.index === noduleIndex)!;
        const union = voxelsToMask(consensusVoxels(nodule, 'any'), vol.voxelCount);
        const off = gridOffset(m, vol); // the crop's place in the scan, from its NIfTI geometry
        const [nx, ny] = vol.dims;
        const [sx, sy, sz] = m.dims;
        let diff = 0;
        let cropOn = 0;
        let inside = 0;
        for (let k = 0; k < sz; k++) {
          for (let j = 0; j < sy; j++) {
            for (let i = 0; i < sx; i++) {
              const a = m.data[i + sx * (j + sy * k)]! > 0 ? 1 : 0;
              const b = union[off[0] + i + nx * (off[1] + j + ny * (off[2] + k))]!;
              cropOn += a;
              inside += b;
              if (a !== b) diff++;
            }
          }
        }
        assert.ok(cropOn > 100);
        assert.equal(diff, 0, `${crop}: ${diff} voxels differ`);
        assert.equal(inside, nodule.voxels.length, `${crop}: the union reaches outside the crop`);
        // Keeping the outline pixels would not match: the convention matters.
        const withOutline = new Set<number>();
        for (const r of nodule.reads) for (const v of rasteriseNodule(r, vol, { includeOutline: true }).voxels) withOutline.add(v);
        assert.ok(withOutline.size > nodule.voxels.length * 1.1);
      }
    });
  });
}

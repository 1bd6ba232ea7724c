import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import { PNG } from 'pngjs';
import { isUserError } from '../../src/errors.ts';
import { consensusMask, readDicomSeg, readLidcScan, readNifti, SEG_SOP_CLASS, Volume, writeDicomSeg } from '../../src/io/index.ts';
import { lidcScansDir, missingDataReason } from '../../src/data/paths.ts';
import { runCliBatch, smallFakeCt, tempDir, type CliResult } from './helpers.ts';

test('DICOM SEG references its source series and reads back voxel for voxel', async () => {
  const dir = tempDir('seg');
  const ct = await smallFakeCt(dir);
  const mask = new Uint8Array(ct.voxelCount);
  for (let j = 2; j < 7; j++) for (let i = 3; i < 9; i++) mask[ct.index(i, j, 1)] = 1;
  mask[ct.index(0, 0, 3)] = 1;
  const out = join(dir, 'seg', 'mask.dcm');
  writeDicomSeg(out, mask, ct);
  const back = readDicomSeg(out, ct);
  assert.deepEqual(back.mask, mask);
  assert.equal(back.frames, 2); // only slices with mask
  const src = ct.source?.format === 'dicom' ? ct.source.series : null;
  assert.ok(src);
  assert.equal(back.referencedSeriesUid, src.seriesInstanceUid);
  assert.equal(back.studyInstanceUid, src.studyInstanceUid);
  assert.equal(back.frameOfReferenceUid, src.frameOfReferenceUid);
  // An independent parser sees a binary SEG with the source instances referenced.
  const ds = dicomParser.parseDicom(readFileSync(out));
  assert.equal(ds.string('x00080016'), SEG_SOP_CLASS);
  assert.equal(ds.string('x00080060'), 'SEG');
  assert.equal(ds.uint16('x00280100'), 1);
  assert.equal(ds.string('x00620001'), 'BINARY');
  assert.notEqual(ds.string('x0020000e'), src.seriesInstanceUid, 'a SEG is a new series');
  // It repeats the CT's patient and study (Type 2 attributes the source has).
  assert.deepEqual(
    ['x00100010', 'x00100020', 'x00100030', 'x00100040', 'x00080030'].map((t) => ds.string(t)),
    ['Fake^Patient', 'FAKE', '19600101', 'F', '101500'],
  );
  const refs = ds.elements['x00081115']!.items![0]!.dataSet!.elements['x0008114a']!.items!;
  assert.deepEqual(
    refs.map((r) => r.dataSet!.string('x00081155')),
    src.sopInstanceUids,
  );
  // An empty mask still makes a valid SEG (one empty frame).
  writeDicomSeg(join(dir, 'seg', 'empty.dcm'), new Uint8Array(ct.voxelCount), ct);
  assert.equal(
    readDicomSeg(join(dir, 'seg', 'empty.dcm'), ct).mask.reduce((a, b) => a + b, 0),
    0,
  );
});

test('DICOM SEG with a second segment (a wider extent): each segment reads back on its own', async () => {
  const dir = tempDir('seg-two');
  const ct = await smallFakeCt(dir);
  const inner = new Uint8Array(ct.voxelCount);
  const outer = new Uint8Array(ct.voxelCount);
  for (let j = 2; j < 7; j++) for (let i = 3; i < 9; i++) inner[ct.index(i, j, 1)] = 1;
  // The extent holds the mask and goes one slice further (a slice segment 1 has no frame on).
  for (let j = 1; j < 8; j++) for (let i = 2; i < 10; i++) for (const k of [1, 2]) outer[ct.index(i, j, k)] = 1;
  const out = join(dir, 'two.dcm');
  writeDicomSeg(out, inner, ct, { moreSegments: [{ mask: outer, label: 'Nodule, any-reader extent', description: 'wider' }] });
  const back = readDicomSeg(out, ct);
  assert.equal(back.frames, 3, 'one frame for segment 1, two for segment 2');
  assert.deepEqual(back.segmentLabels, ['Nodule', 'Nodule, any-reader extent']);
  assert.deepEqual(
    back.segments.map((s) => s.number),
    [1, 2],
  );
  assert.deepEqual(back.mask, inner, 'mask is segment 1');
  assert.deepEqual(back.segments[0]!.mask, inner);
  assert.deepEqual(back.segments[1]!.mask, outer);
  // Frames index (segment, position), the position counted over the slices of all frames.
  const ds = dicomParser.parseDicom(readFileSync(out));
  const indexValues = ds.elements['x52009230']!.items!.map((f) => {
    const content = f.dataSet!.elements['x00209111']!.items![0]!.dataSet!;
    return [content.uint32('x00209157', 0), content.uint32('x00209157', 1)];
  });
  assert.deepEqual(indexValues, [
    [1, 1],
    [2, 1],
    [2, 2],
  ]);
  assert.equal(ds.elements['x00620002']!.items![1]!.dataSet!.string('x00620006'), 'wider');
  assert.throws(
    () => writeDicomSeg(join(dir, 'bad.dcm'), inner, ct, { moreSegments: [{ mask: new Uint8Array(3), label: 'x' }] }),
    RangeError,
  );
});

const hasDciodvfy = spawnSync('sh', ['-c', 'command -v dciodvfy']).status === 0;

/** dciodvfy's lines that start with "Error" (it writes its findings to stderr, the IOD name too). */
function dciodvfyErrors(file: string): { text: string; errors: string[] } {
  const r = spawnSync('dciodvfy', [file], { encoding: 'utf8' });
  assert.equal(r.error, undefined, String(r.error));
  const text = `${r.stdout}\n${r.stderr}`;
  return { text, errors: text.split('\n').filter((l) => /^\s*Error/.test(l)) };
}

test('DICOM SEG: dciodvfy finds no error (dicom3tools)', {
  skip: hasDciodvfy ? false : 'dciodvfy (dicom3tools) is not installed: apt-get install dicom3tools',
}, async () => {
  const dir = tempDir('seg-dciodvfy');
  const ct = await smallFakeCt(dir);
  const mask = new Uint8Array(ct.voxelCount);
  for (let j = 2; j < 7; j++) for (let i = 3; i < 9; i++) for (const k of [1, 3]) mask[ct.index(i, j, k)] = 1;
  // A mask over two slices (frames with a gap between their source slices) and an empty one.
  const wider = mask.map((v, i) => (v || (i % 10 > 1 && Math.floor(i / 10) % 12 === 8) ? 1 : 0));
  for (const [name, m, more] of [
    ['mask.dcm', mask, []],
    ['empty.dcm', new Uint8Array(ct.voxelCount), []],
    // Two segments: the mask and a wider extent that overlaps it.
    ['two.dcm', mask, [{ mask: wider, label: 'Nodule, any-reader extent', description: 'as far as any one reader would draw it' }]],
  ] as const) {
    const out = join(dir, name);
    writeDicomSeg(out, m, ct, { algorithmType: 'AUTOMATIC', algorithmName: 'noduleseg test', moreSegments: more });
    const { text, errors } = dciodvfyErrors(out);
    assert.match(text, /Segmentation/, `dciodvfy did not recognise ${name} as a Segmentation:\n${text}`);
    assert.deepEqual(errors, [], `${name}:\n${text}`);
  }
  // The dimension index (segment, position) that dciodvfy checks frame by frame.
  const ds = dicomParser.parseDicom(readFileSync(join(dir, 'mask.dcm')));
  const dims = ds.elements['x00209222']!.items!.map((i) => i.dataSet!.attributeTag('x00209165'));
  assert.deepEqual(dims, ['x0062000b', 'x00200032']);
  const perFrame = ds.elements['x52009230']!.items!;
  assert.equal(perFrame.length, 2);
  const indexValues = perFrame.map((f) => {
    const content = f.dataSet!.elements['x00209111']!.items![0]!.dataSet!;
    return [content.uint32('x00209157', 0), content.uint32('x00209157', 1)];
  });
  assert.deepEqual(indexValues, [
    [1, 1],
    [1, 2],
  ]);
});

test('DICOM SEG needs a DICOM source', () => {
  const v = new Volume({ data: new Int16Array(8), dims: [2, 2, 2], spacingMm: [1, 1, 1], originMm: [0, 0, 0] });
  const dir = tempDir('seg-bad');
  assert.throws(
    () => writeDicomSeg(join(dir, 'x.dcm'), new Uint8Array(8), v),
    (e) => isUserError(e) && /not read from a DICOM series/.test(e.message),
  );
  assert.ok(!existsSync(join(dir, 'x.dcm')));
});

const skip = missingDataReason(lidcScansDir());
test('LIDC-IDRI-0001 consensus as SEG, NIfTI and PNG from the command line', { skip: skip ?? false }, async () => {
  const dir = tempDir('lidc-real');
  const scan = join(lidcScansDir(), 'LIDC-IDRI-0001');
  const [r] = runCliBatch([
    ['lidc', scan, '--agreement', 'any', '--output', join(dir, 'm.nii.gz'), '--seg', join(dir, 'm.dcm'), '--png', join(dir, 'm.png')],
  ]) as [CliResult];
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /4 readers; 1 nodule\(s\) >= 3 mm; 9 mark\(s\) of nodules < 3 mm; 13 non-nodule mark\(s\)/);
  const { series, nodules } = await readLidcScan(scan);
  const expected = consensusMask(nodules, 'any', series.volume.voxelCount);
  const nifti = readNifti(join(dir, 'm.nii.gz'));
  assert.ok(nifti.sameGrid(series.volume, 1e-4), 'the NIfTI mask lies on the series grid');
  assert.deepEqual(nifti.data, expected);
  assert.deepEqual(readDicomSeg(join(dir, 'm.dcm'), series.volume).mask, expected);
  const png = PNG.sync.read(readFileSync(join(dir, 'm.png')));
  assert.ok(png.width > 50 && png.height > 50);
});

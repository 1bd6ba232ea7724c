/**
 * The DICOM SR (TID 1500): written beside a SEG for a small fabricated CT series, read back by
 * dcmjs, and, where installed, by dcmtk's dsrdump and checked by dicom3tools' dciodvfy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import dcmjs from 'dcmjs';
import { encodeDicomSeg, Volume } from '../../src/io/index.ts';
import { writeDicomSr, segUidsOf, ENHANCED_SR_SOP_CLASS, type SrNodule } from '../../src/io/dicom-sr.ts';
import { isUserError } from '../../src/errors.ts';
import { smallFakeCt, tempDir } from '../io/helpers.ts';

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

const nodule: SrNodule = {
  segmentNumber: 1,
  trackingId: 'Nodule 1',
  volumeMm3: 523.6,
  longAxisMm: 11.25,
  shortAxisMm: 8.5,
  meanDiameterMm: 9.9,
  anyReaderVolumeMm3: 700.2,
  solidComponent: { meanDiameterMm: 6.4, volumeMm3: 120, thresholdHU: -300 },
  type: 'part-solid',
  typeProbability: 0.81,
  malignancySuspicion: 0.42,
  lungRads: {
    version: 'Lung-RADS v2022 (baseline)',
    category: '4A',
    reason: 'part-solid nodule >= 6 mm total (9.9 mm) with solid component >= 6 to < 8 mm (6.4 mm)',
  },
  fleischner: { version: 'Fleischner Society 2017', recommendation: 'CT at 3-6 months to confirm persistence' },
  slices: [1, 2],
};

async function fixture() {
  const dir = tempDir('sr');
  const ct = await smallFakeCt(dir);
  const mask = new Uint8Array(ct.voxelCount);
  for (let j = 2; j < 7; j++) for (let i = 3; i < 9; i++) for (const k of [1, 2]) mask[ct.index(i, j, k)] = 1;
  const seg = encodeDicomSeg(mask, ct);
  const segUids = segUidsOf(seg);
  const out = join(dir, 'out', 'report-sr.dcm');
  writeDicomSr(out, [nodule], ct, {
    segSopInstanceUid: segUids.sopInstanceUid,
    segSeriesInstanceUid: segUids.seriesInstanceUid,
    algorithmName: 'noduleseg joint',
    algorithmVersion: 'test',
  });
  return { dir, ct, seg, segUids, out };
}

type Ds = Record<string, unknown>;
const seq = (x: unknown): Ds[] => (Array.isArray(x) ? (x as Ds[]) : x ? [x as Ds] : []);
const meaning = (item: Ds) => String(seq(item['ConceptNameCodeSequence'])[0]?.['CodeMeaning'] ?? '');

test('SR: a TID 1500 report referencing the SEG and the source series, values read back', async () => {
  const { ct, segUids, out } = await fixture();
  const buf = readFileSync(out);
  const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(
    dcmjs.data.DicomMessage.readFile(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer).dict,
  );
  const src = ct.source?.format === 'dicom' ? ct.source.series : null;
  assert.ok(src);
  assert.equal(ds['SOPClassUID'], ENHANCED_SR_SOP_CLASS);
  assert.equal(ds['Modality'], 'SR');
  assert.equal(ds['StudyInstanceUID'], src.studyInstanceUid);
  assert.equal(ds['PatientID'], 'FAKE');
  assert.equal(meaning(ds), 'Imaging Measurement Report');
  assert.equal(seq(ds['ContentTemplateSequence'])[0]!['TemplateIdentifier'], '1500');
  const measurements = seq(ds['ContentSequence']).find((i) => meaning(i) === 'Imaging Measurements')!;
  const group = seq(measurements['ContentSequence'])[0]!;
  const items = seq(group['ContentSequence']);
  const byName = (n: string) => items.find((i) => meaning(i) === n)!;
  const value = (n: string) => Number(seq(byName(n)['MeasuredValueSequence'])[0]!['NumericValue']);
  assert.equal(value('Volume'), 523.6);
  assert.equal(value('Long Axis'), 11.25);
  assert.equal(value('Short Axis'), 8.5);
  assert.equal(value('Diameter'), 9.9);
  assert.equal(value('Volume as any one reader would draw it'), 700.2);
  assert.equal(value('Solid component mean diameter'), 6.4);
  assert.equal(byName('Nodule type')['TextValue'], 'part-solid');
  assert.equal(byName('Lung-RADS v2022 (baseline) category')['TextValue'], '4A');
  assert.equal(byName('Fleischner Society 2017 recommendation')['TextValue'], 'CT at 3-6 months to confirm persistence');
  const segRef = seq(byName('Referenced Segment')['ReferencedSOPSequence'])[0]!;
  assert.equal(segRef['ReferencedSOPInstanceUID'], segUids.sopInstanceUid);
  assert.equal(segRef['ReferencedSegmentNumber'], 1);
  assert.equal(byName('Source series for segmentation')['UID'], src.seriesInstanceUid);
  // The evidence lists the SEG and the nodule's source images.
  const evidence = seq(seq(ds['CurrentRequestedProcedureEvidenceSequence'])[0]!['ReferencedSeriesSequence']);
  assert.deepEqual(
    seq(evidence[0]!['ReferencedSOPSequence']).map((r) => r['ReferencedSOPInstanceUID']),
    [src.sopInstanceUids[1], src.sopInstanceUids[2]],
  );
  assert.equal(evidence[1]!['SeriesInstanceUID'], segUids.seriesInstanceUid);
});

test('SR: dciodvfy finds no error (dicom3tools)', {
  skip: has('dciodvfy') ? false : 'dciodvfy (dicom3tools) is not installed',
}, async () => {
  const { out } = await fixture();
  const r = spawnSync('dciodvfy', [out], { encoding: 'utf8' });
  const text = `${r.stdout}${r.stderr}`;
  assert.match(text, /EnhancedSR/);
  const errors = text.split('\n').filter((l) => /^Error/.test(l));
  assert.deepEqual(errors, []);
});

test('SR: dsrdump (dcmtk) reads the tree back', { skip: has('dsrdump') ? false : 'dsrdump (dcmtk) is not installed' }, async () => {
  const { out } = await fixture();
  const r = spawnSync('dsrdump', [out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Enhanced SR Document/);
  assert.match(r.stdout, /"Imaging Measurement Report"/);
  assert.match(r.stdout, /"Referenced Segment"\)=\(SG image,,1\)/);
  assert.match(r.stdout, /"Long Axis"\)="11.25" \(mm,UCUM/);
  assert.match(r.stdout, /"Volume as any one reader would draw it"\)="700.2" \(mm3,UCUM/);
  assert.match(r.stdout, /"Lung-RADS v2022 \(baseline\) category"\)="4A"/);
});

test('SR: a source that is not a DICOM series is a user error and writes nothing', () => {
  const v = new Volume({ data: new Int16Array(8), dims: [2, 2, 2], spacingMm: [1, 1, 1], originMm: [0, 0, 0] });
  const dir = tempDir('sr-bad');
  assert.throws(
    () =>
      writeDicomSr(join(dir, 'x.dcm'), [nodule], v, {
        segSopInstanceUid: '1.2',
        segSeriesInstanceUid: '1.3',
        algorithmName: 'n',
        algorithmVersion: 'v',
      }),
    (e) => isUserError(e) && /not read from a DICOM series/.test(e.message),
  );
  assert.ok(!existsSync(join(dir, 'x.dcm')));
});

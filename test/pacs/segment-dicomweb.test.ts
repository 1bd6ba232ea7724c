// segment --dicomweb against a real Orthanc: LIDC-IDRI-0001 uploaded by STOW-RS, segmented at its
// large nodule from the server, the SEG read back from Orthanc and compared voxel for voxel with
// the same run from the local folder; both times reported (target: remote within 1.5x local).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDicomSeg, readNifti, readVolume } from '../../src/io/index.ts';
import {
  DICOMWEB_URL,
  LIDC1_NODULE,
  LIDC1_SERIES,
  LIDC1_STUDY,
  ORTHANC_PASSWORD,
  authEnv,
  client,
  emptyOrthanc,
  lidc1Dir,
  noOrthanc,
  noScans,
  runBin,
  uploadLidc1,
} from './helpers.ts';

test('segment --dicomweb: fetch, segment, store the SEG and SR; the SEG on Orthanc equals the local run voxel for voxel', {
  skip: noOrthanc || noScans,
  timeout: 240_000,
}, async (t) => {
  await emptyOrthanc();
  await uploadLidc1();
  const dir = mkdtempSync(join(tmpdir(), 'noduleseg-segdw-'));
  try {
    // Errors first (no model load): each one line, exit 1, nothing written, no password shown.
    const wrong = await runBin(
      ['segment', '--dicomweb', DICOMWEB_URL, '--study', LIDC1_STUDY, '--point', LIDC1_NODULE, '-o', join(dir, 'x.dcm')],
      { NODULESEG_DICOMWEB_USER: 'noduleseg', NODULESEG_DICOMWEB_PASSWORD: 'wrong-sekrit' },
    );
    assert.equal(wrong.code, 1);
    assert.equal(wrong.stderr.trim(), `noduleseg: ${DICOMWEB_URL}: the server refused our credentials (401 Unauthorized, basic auth)`);
    const missing = await runBin(
      ['segment', '--dicomweb', DICOMWEB_URL, '--study', '1.2.3', '--point', LIDC1_NODULE, '-o', join(dir, 'x.dcm')],
      authEnv,
    );
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr.trim(), `noduleseg: ${DICOMWEB_URL}: study 1.2.3 not found`);
    const noPrompt = await runBin(['segment', '--dicomweb', DICOMWEB_URL, '--study', LIDC1_STUDY], authEnv);
    assert.equal(noPrompt.code, 1);
    assert.match(noPrompt.stderr, /^noduleseg: --dicomweb: say where the nodules are/);
    assert.throws(() => readFileSync(join(dir, 'x.dcm')));

    // The same run from the local folder and from the server (same process start-up for both).
    const local = await runBin([
      'segment',
      '-i',
      lidc1Dir(),
      '--point',
      LIDC1_NODULE,
      '-o',
      join(dir, 'local.dcm'),
      '--any-reader',
      join(dir, 'local-any.nii.gz'),
      '--html',
      join(dir, 'local.html'),
    ]);
    assert.equal(local.code, 0, local.stderr);
    const remote = await runBin(
      ['segment', '--dicomweb', DICOMWEB_URL, '--study', LIDC1_STUDY, '--point', LIDC1_NODULE, '-o', join(dir, 'remote.dcm')],
      authEnv,
    );
    assert.equal(remote.code, 0, remote.stderr);
    t.diagnostic(
      `LIDC-IDRI-0001 at one point: local folder ${(local.ms / 1000).toFixed(1)} s, from Orthanc and stored back ${(remote.ms / 1000).toFixed(1)} s (${(remote.ms / local.ms).toFixed(2)}x)`,
    );
    type Stored = { seriesInstanceUid: string; sopInstanceUid: string; stored: boolean };
    const report = JSON.parse(readFileSync(join(dir, 'remote.json'), 'utf8')) as { input: string; pacs: { seg: Stored; sr: Stored } };
    assert.equal(report.pacs.seg.stored, true);
    assert.equal(report.pacs.sr.stored, true);
    assert.equal(report.input, `${DICOMWEB_URL} study ${LIDC1_STUDY} series ${LIDC1_SERIES}`);
    for (const text of [remote.stdout, remote.stderr, readFileSync(join(dir, 'remote.json'), 'utf8')])
      assert.ok(!text.includes(ORTHANC_PASSWORD), 'no password in the output');

    // Read it back from Orthanc: one SEG series with one instance, the UIDs of the report.
    const c = client();
    const segs = await c.searchSeries(LIDC1_STUDY, { modality: 'SEG' });
    assert.equal(segs.length, 1);
    assert.equal(segs[0]!.seriesInstanceUid, report.pacs.seg.seriesInstanceUid);
    const srs = await c.searchSeries(LIDC1_STUDY, { modality: 'SR' });
    assert.deepEqual(
      srs.map((s) => s.seriesInstanceUid),
      [report.pacs.sr.seriesInstanceUid],
    );
    assert.deepEqual(await c.searchInstances(LIDC1_STUDY, report.pacs.sr.seriesInstanceUid), [report.pacs.sr.sopInstanceUid]);
    const back = await c.retrieveSeries(LIDC1_STUDY, segs[0]!.seriesInstanceUid, join(dir, 'back'));
    assert.equal(back.length, 1);
    assert.deepEqual(readFileSync(back[0]!), readFileSync(join(dir, 'remote.dcm')), 'the local .dcm is the SEG stored');
    const volume = await readVolume(lidc1Dir());
    const fromPacs = readDicomSeg(back[0]!, volume);
    const fromLocal = readDicomSeg(join(dir, 'local.dcm'), volume);
    assert.equal(fromPacs.referencedSeriesUid, LIDC1_SERIES);
    let n = 0;
    let diff = 0;
    for (let i = 0; i < fromLocal.mask.length; i++) {
      n += fromLocal.mask[i]!;
      if (fromLocal.mask[i] !== fromPacs.mask[i]) diff++;
    }
    assert.ok(n > 1000, `the nodule has ${n} voxels`);
    assert.equal(diff, 0, 'voxel for voxel');
    // Segment 2 is the any-reader extent, the same on Orthanc, equal to the --any-reader file
    // and holding segment 1; the HTML key images outline it too.
    assert.deepEqual(fromLocal.segmentLabels, ['Nodule', 'Nodule, any-reader extent']);
    assert.deepEqual(fromPacs.segmentLabels, fromLocal.segmentLabels);
    const extent = fromLocal.segments[1]!.mask;
    assert.deepEqual(fromPacs.segments[1]!.mask, extent);
    const anyReaderFile = readNifti(join(dir, 'local-any.nii.gz')).data;
    let wide = 0;
    for (let i = 0; i < extent.length; i++) {
      assert.equal(extent[i], anyReaderFile[i] ? 1 : 0);
      if (fromLocal.mask[i]) assert.equal(extent[i], 1);
      wide += extent[i]!;
    }
    assert.ok(wide > n, `the extent (${wide} voxels) is wider than the mask (${n})`);
    const reported = JSON.parse(readFileSync(join(dir, 'local.json'), 'utf8')) as { nodules: Array<{ anyReaderVolumeMm3: number }> };
    const [sx, sy, sz] = volume.spacingMm;
    assert.ok(Math.abs(reported.nodules[0]!.anyReaderVolumeMm3 - wide * sx * sy * sz) < 1e-3 * wide * sx * sy * sz);
    assert.match(readFileSync(join(dir, 'local.html'), 'utf8'), /Yellow: as far as any one radiologist would draw it/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// segment --dicomweb against a real Orthanc: LIDC-IDRI-0001 uploaded by STOW-RS, segmented at its
// large nodule from the server, the SEG read back from Orthanc and compared voxel for voxel with
// the same run from the local folder; both times reported (target: remote within 1.5x local).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDicomSeg, readVolume } from '../../src/io/index.ts';
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
    const local = await runBin(['segment', '-i', lidc1Dir(), '--point', LIDC1_NODULE, '-o', join(dir, 'local.dcm')]);
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
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

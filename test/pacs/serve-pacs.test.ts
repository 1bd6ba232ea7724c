// serve --dicomweb against a real Orthanc, over the viewer's HTTP API: search studies, list
// series, open one from the PACS, segment a nodule, "Save to PACS" (stored once when saved twice),
// the SEG read back from Orthanc; errors as one-line messages; no credential in the log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDicomSeg, readVolume } from '../../src/io/index.ts';
import { startServe } from '../server/helpers.ts';
import { DICOMWEB_URL, LIDC1_SERIES, LIDC1_STUDY, ORTHANC_PASSWORD, authEnv, client, emptyOrthanc, noOrthanc, noScans, uploadLidc1Slab } from './helpers.ts';

const SLAB = 24;

test('serve --dicomweb: search, open a series from the PACS, segment, Save to PACS (once)', { skip: noOrthanc || noScans, timeout: 180_000 }, async () => {
  await emptyOrthanc();
  await uploadLidc1Slab(SLAB);
  const data = mkdtempSync(join(tmpdir(), 'noduleseg-serve-pacs-'));
  const serve = await startServe(['--data', data, '--dicomweb', DICOMWEB_URL], authEnv, 120_000);
  const call = async (path: string, method = 'GET', body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(serve.url.replace(/\/$/, '') + path, { method, ...(body ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  try {
    assert.equal((await call('/api/info')).json['pacs'], DICOMWEB_URL);
    // Search by patient ID, by a part of the ID as a name would be, by accession; and a miss.
    type Study = { studyInstanceUid: string; accessionNumber: string };
    const byId = (await call('/api/pacs/studies?patient=LIDC-IDRI-0001')).json['studies'] as Study[];
    assert.deepEqual(byId.map((s) => s.studyInstanceUid), [LIDC1_STUDY]);
    const byAccession = (await call(`/api/pacs/studies?accession=${byId[0]!.accessionNumber}`)).json['studies'] as Study[];
    assert.deepEqual(byAccession.map((s) => s.studyInstanceUid), [LIDC1_STUDY]);
    assert.deepEqual((await call('/api/pacs/studies?patient=NOBODY')).json['studies'], []);
    const series = (await call(`/api/pacs/series?study=${LIDC1_STUDY}`)).json['series'] as Array<{ seriesInstanceUid: string; modality: string }>;
    assert.deepEqual(series.map((s) => [s.seriesInstanceUid, s.modality]), [[LIDC1_SERIES, 'CT']]);

    // Errors: a missing study (404), a malformed UID (400), saving a scan not from the PACS.
    const missing = await call('/api/pacs/open?study=1.2.3', 'POST');
    assert.equal(missing.status, 404);
    assert.equal(missing.json['error'], `${DICOMWEB_URL}: study 1.2.3 not found`);
    assert.equal((await call('/api/pacs/series?study=1.2;3')).status, 400);

    // Open, segment the large nodule, save; save again: stored once.
    const opened = await call(`/api/pacs/open?study=${LIDC1_STUDY}&series=${LIDC1_SERIES}`, 'POST');
    assert.equal(opened.status, 200, JSON.stringify(opened.json));
    assert.deepEqual(opened.json['dims'], [512, 512, SLAB]);
    assert.equal(opened.json['dicom'], true);
    const id = String(opened.json['id']);
    const early = await call(`/api/pacs/save?session=${id}`, 'POST');
    assert.equal(early.status, 400);
    assert.match(String(early.json['error']), /no nodule to save yet/);
    const seg = await call(`/api/sessions/${id}/nodules`, 'POST', { pointMm: [56.2, 86.3, -115.9] });
    assert.equal(seg.status, 200, JSON.stringify(seg.json));
    const voxels = (seg.json['nodule'] as { voxelCount: number }).voxelCount;
    assert.ok(voxels > 1000, `${voxels} voxels`);
    const saved = await call(`/api/pacs/save?session=${id}`, 'POST');
    assert.equal(saved.status, 200, JSON.stringify(saved.json));
    assert.equal(saved.json['stored'], true);
    const again = await call(`/api/pacs/save?session=${id}`, 'POST');
    assert.equal(again.json['stored'], false);
    assert.equal(again.json['seriesInstanceUid'], saved.json['seriesInstanceUid']);

    // On Orthanc: one SEG, referencing the series, with the nodule's voxels.
    const c = client();
    const segs = await c.searchSeries(LIDC1_STUDY, { modality: 'SEG' });
    assert.deepEqual(segs.map((s) => s.seriesInstanceUid), [saved.json['seriesInstanceUid']]);
    const dir = mkdtempSync(join(tmpdir(), 'noduleseg-serve-pacs-back-'));
    try {
      const [file] = await c.retrieveSeries(LIDC1_STUDY, segs[0]!.seriesInstanceUid, join(dir, 'seg'));
      await c.retrieveSeries(LIDC1_STUDY, LIDC1_SERIES, join(dir, 'ct'));
      const back = readDicomSeg(file!, await readVolume(join(dir, 'ct')));
      assert.equal(back.referencedSeriesUid, LIDC1_SERIES);
      assert.equal(back.mask.reduce((a, v) => a + (v ? 1 : 0), 0), voxels);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.ok(!serve.log().includes(ORTHANC_PASSWORD), 'no password in the server log');
  } finally {
    await serve.stop();
    rmSync(data, { recursive: true, force: true });
  }
});

// serve --dicomweb against a real Orthanc, over the viewer's HTTP API: search studies, list
// series, open one from the PACS, segment a nodule, "Save to PACS" (stored once when saved twice),
// the SEG read back from Orthanc; errors as one-line messages; no credential in the log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDicomSeg, readVolume } from '../../src/io/index.ts';
import { startServe } from '../server/helpers.ts';
import {
  DICOMWEB_URL,
  LIDC1_SERIES,
  LIDC1_STUDY,
  ORTHANC_PASSWORD,
  authEnv,
  client,
  emptyOrthanc,
  noOrthanc,
  noScans,
  uploadLidc1Slab,
} from './helpers.ts';

const SLAB = 24;
const NODULE_MM = [56.2, 86.3, -115.9];
const CHROMIUM = '/usr/bin/chromium';
// Software GL (SwiftShader) gives WebGL2 with these; no GPU, no network, no profile state.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** What the page exposes as window.viewer (web/app.js). */
interface PageGlobal {
  viewer: {
    state: { session: { id: string; dims: number[]; nodules: Array<{ voxelCount: number }> } };
    goToWorldLps: (p: number[]) => void;
    pagePointOf: (p: number[]) => number[] | null;
  };
}

test('serve --dicomweb in a browser: search the PACS, open a series, click a nodule, Save to PACS (stored once)', {
  skip: noOrthanc || noScans,
  timeout: 180_000,
}, async () => {
  await emptyOrthanc();
  await uploadLidc1Slab(SLAB);
  const data = mkdtempSync(join(tmpdir(), 'noduleseg-serve-pacs-'));
  const serve = await startServe(['--data', data, '--dicomweb', DICOMWEB_URL], authEnv, 120_000);
  const call = async (path: string, method = 'GET', body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(serve.url.replace(/\/$/, '') + path, {
      method,
      ...(body ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  try {
    assert.equal((await call('/api/info')).json['pacs'], DICOMWEB_URL);
    // Search by patient ID, by a part of the ID as a name would be, by accession; and a miss.
    type Study = { studyInstanceUid: string; accessionNumber: string };
    const byId = (await call('/api/pacs/studies?patient=LIDC-IDRI-0001')).json['studies'] as Study[];
    assert.deepEqual(
      byId.map((s) => s.studyInstanceUid),
      [LIDC1_STUDY],
    );
    const byAccession = (await call(`/api/pacs/studies?accession=${byId[0]!.accessionNumber}`)).json['studies'] as Study[];
    assert.deepEqual(
      byAccession.map((s) => s.studyInstanceUid),
      [LIDC1_STUDY],
    );
    assert.deepEqual((await call('/api/pacs/studies?patient=NOBODY')).json['studies'], []);
    const series = (await call(`/api/pacs/series?study=${LIDC1_STUDY}`)).json['series'] as Array<{
      seriesInstanceUid: string;
      modality: string;
    }>;
    assert.deepEqual(
      series.map((s) => [s.seriesInstanceUid, s.modality]),
      [[LIDC1_SERIES, 'CT']],
    );

    // Errors: a missing study (404), a malformed UID (400).
    const missing = await call('/api/pacs/open?study=1.2.3', 'POST');
    assert.equal(missing.status, 404);
    assert.equal(missing.json['error'], `${DICOMWEB_URL}: study 1.2.3 not found`);
    assert.equal((await call('/api/pacs/series?study=1.2;3')).status, 400);

    // In the browser: search, pick the study and its series, click the nodule, Save to PACS.
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup.sh as root (apt-get install chromium)`);
    const browser = await chromium.launchPersistentContext(join(data, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1400, height: 850 },
    });
    let id = '';
    let voxels = 0;
    let savedUid = '';
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(serve.url);
      await page.waitForSelector('body[data-ready="1"]', { state: 'attached', timeout: 30_000 });
      await page.waitForSelector('#pacs-group:not([hidden])', { timeout: 30_000 });
      assert.equal(await page.textContent('#pacs-server'), DICOMWEB_URL);
      await page.fill('#pacs-patient', 'LIDC-IDRI-0001');
      await page.click('#pacs-search button[type="submit"]');
      await page.waitForFunction("document.querySelector('#pacs-studies')?.textContent?.includes('LIDC-IDRI-0001')");
      assert.equal(await page.locator('#pacs-studies li').count(), 1);
      await page.click('#pacs-studies li');
      await page.waitForSelector('#pacs-series li');
      await page.click('button[data-view="axial"]');
      await page.click('#pacs-series li');
      await page.waitForSelector('body[data-scan]', { state: 'attached', timeout: 60_000 });
      assert.equal(await page.isHidden('#message'), true, `no error: ${await page.textContent('#message')}`);
      const session = await page.evaluate(() => (globalThis as unknown as PageGlobal).viewer.state.session);
      assert.deepEqual(session.dims, [512, 512, SLAB]);
      id = session.id;
      const early = await call(`/api/pacs/save?session=${id}`, 'POST');
      assert.equal(early.status, 400);
      assert.match(String(early.json['error']), /no nodule to save yet/);
      // Click on the nodule where the axial view shows it.
      const at = await page.evaluate((c) => {
        const v = (globalThis as unknown as PageGlobal).viewer;
        v.goToWorldLps(c);
        return v.pagePointOf(c);
      }, NODULE_MM);
      assert.ok(at, 'the nodule is on screen');
      await page.mouse.click(at[0]!, at[1]!);
      await page.waitForSelector('body[data-overlay="1"]', { state: 'attached', timeout: 60_000 });
      voxels = await page.evaluate(() => (globalThis as unknown as PageGlobal).viewer.state.session.nodules[0]!.voxelCount);
      assert.ok(voxels > 1000, `${voxels} voxels`);
      await page.click('#pacs-save');
      await page.waitForSelector('body[data-pacs-saved]', { state: 'attached', timeout: 60_000 });
      savedUid = (await page.getAttribute('body', 'data-pacs-saved')) ?? '';
      assert.match((await page.textContent('#pacs-status')) ?? '', /^Stored on the PACS: SEG series /);
      assert.deepEqual(pageErrors, []);
    } finally {
      await browser.close();
    }
    // Saved again (through the API): the PACS already has it, nothing stored.
    const again = await call(`/api/pacs/save?session=${id}`, 'POST');
    assert.equal(again.status, 200, JSON.stringify(again.json));
    assert.equal(again.json['stored'], false);
    assert.equal(again.json['seriesInstanceUid'], savedUid);
    // Its SR went with it (stored once too), and it is on the PACS.
    const sr = again.json['sr'] as { stored: boolean; seriesInstanceUid: string };
    assert.equal(sr.stored, false);
    const srs = await client().searchSeries(LIDC1_STUDY, { modality: 'SR' });
    assert.ok(
      srs.some((s) => s.seriesInstanceUid === sr.seriesInstanceUid),
      `the SR series ${sr.seriesInstanceUid} is on the PACS`,
    );
    const saved = { json: { seriesInstanceUid: savedUid } };

    // On Orthanc: one SEG, referencing the series, with the nodule's voxels.
    const c = client();
    const segs = await c.searchSeries(LIDC1_STUDY, { modality: 'SEG' });
    assert.deepEqual(
      segs.map((s) => s.seriesInstanceUid),
      [saved.json['seriesInstanceUid']],
    );
    const dir = mkdtempSync(join(tmpdir(), 'noduleseg-serve-pacs-back-'));
    try {
      const [file] = await c.retrieveSeries(LIDC1_STUDY, segs[0]!.seriesInstanceUid, join(dir, 'seg'));
      await c.retrieveSeries(LIDC1_STUDY, LIDC1_SERIES, join(dir, 'ct'));
      const back = readDicomSeg(file!, await readVolume(join(dir, 'ct')));
      assert.equal(back.referencedSeriesUid, LIDC1_SERIES);
      assert.equal(
        back.mask.reduce((a, v) => a + (v ? 1 : 0), 0),
        voxels,
      );
      // Segment 2: the nodule's any-reader extent, holding its mask.
      assert.deepEqual(back.segmentLabels, ['Nodule', 'Nodule, any-reader extent']);
      const extent = back.segments[1]!.mask;
      assert.ok(back.mask.every((v, i) => !v || extent[i] === 1));
      assert.ok(extent.reduce((a, v) => a + v, 0) > voxels);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.ok(!serve.log().includes(ORTHANC_PASSWORD), 'no password in the server log');
  } finally {
    await serve.stop();
    rmSync(data, { recursive: true, force: true });
  }
});

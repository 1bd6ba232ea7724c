// End to end in a real browser: Debian's chromium (software WebGL2) driven by playwright-core,
// against `noduleseg serve` on the LIDC-IDRI-0001 scan.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { lidcScansDir, missingDataReason } from '../../src/data/index.ts';
import { decodeNifti1 } from '../../src/io/nifti.ts';
import { runCli, startServe, writeSphereCt } from './helpers.ts';

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
const missing = missingDataReason(lidcScansDir());
/** Where the screenshot goes: $NODULESEG_TEST_OUT, else a folder under the system temp dir. */
const OUT_DIR = process.env['NODULESEG_TEST_OUT'] ?? join(tmpdir(), 'noduleseg-test-out');

/** What the page exposes as window.viewer (see web/app.js); `globalThis` keeps this file free of DOM types. */
interface PageGlobal {
  viewer: {
    state: { session: { lidc: Array<{ index: number; volumeMm3: number; centreMm: number[] }>; nodules: PanelNodule[] } };
    nv: { drawBitmap: Uint8Array | null; volumes: Array<{ cal_min: number }> };
    goToWorldLps: (p: number[]) => void;
    pagePointOf: (p: number[]) => number[] | null;
  };
}

interface PanelNodule {
  label: number;
  volumeMm3: number;
  voxelCount: number;
  promptWorldMm: [number, number, number];
  promptBoxWorldMm: number[][] | null;
  lidcMatch: { index: number; dice: number } | null;
}

test('viewer: open LIDC-IDRI-0001, click the large nodule, see its mask, download it', {
  skip: missing ?? false,
  timeout: 120_000,
}, async () => {
  // Set-up installs chromium (scripts/setup.sh); without it this test must fail, not skip.
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup.sh as root (apt-get install chromium)`);
  const t0 = Date.now();
  const laps: string[] = [];
  let tLap = t0;
  const lap = (what: string): void => {
    laps.push(`${what} ${((Date.now() - tLap) / 1000).toFixed(1)} s`);
    tLap = Date.now();
  };
  const work = mkdtempSync(join(tmpdir(), 'noduleseg-e2e-'));
  mkdirSync(OUT_DIR, { recursive: true });
  const srv = await startServe(['--data', lidcScansDir()]);
  lap('server start');
  const ctx = await chromium.launchPersistentContext(join(work, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1400, height: 850 },
    acceptDownloads: true,
  });
  try {
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    lap('browser start');
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    // Nothing may leave the machine: every request goes to the viewer's own server.
    const elsewhere: string[] = [];
    page.on('request', (r) => {
      const u = r.url();
      if (!u.startsWith(srv.url) && !u.startsWith('data:') && !u.startsWith('blob:')) elsewhere.push(u);
    });
    const failed: string[] = [];
    page.on('response', (r) => {
      if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
    });
    await page.goto(srv.url);
    await page.waitForSelector('body[data-ready="1"]', { state: 'attached', timeout: 30_000 });
    lap('page ready');
    assert.equal(await page.evaluate("!!document.createElement('canvas').getContext('webgl2')"), true, 'WebGL2 in chromium');

    // Open the scan from the list (the DICOM series of LIDC-IDRI-0001, with its XML).
    const options = await page.$$eval('#scan-list option', (os) => os.map((o) => (o as unknown as { value: string }).value));
    const series = options.find((v) => v.startsWith('LIDC-IDRI-0001/'));
    assert.ok(series, `LIDC-IDRI-0001 in the scan list: ${options.join(', ')}`);
    await page.click('button[data-view="axial"]');
    await page.selectOption('#scan-list', series);
    await page.click('#open-scan');
    await page.waitForSelector('body[data-scan]', { state: 'attached', timeout: 60_000 });
    lap('scan open');
    assert.equal(await page.isHidden('#message'), true, `no error: ${await page.textContent('#message')}`);

    // The readers' largest nodule, from the LIDC XML the server read beside the series.
    const lidc = await page.evaluate(() => (globalThis as unknown as PageGlobal).viewer.state.session.lidc);
    assert.ok(lidc.length >= 1, 'LIDC reads listed');
    assert.equal(await page.locator('#lidc-list li').count(), lidc.length);
    const big = lidc.reduce((a, b) => (b.volumeMm3 > a.volumeMm3 ? b : a));
    assert.ok(big.volumeMm3 > 5000, `the large nodule: ${big.volumeMm3} mm3`);

    // Go to its centre slice and click on it, with the mouse, where the axial view shows it.
    const at = await page.evaluate((c) => {
      const v = (globalThis as unknown as PageGlobal).viewer;
      v.goToWorldLps(c);
      return v.pagePointOf(c);
    }, big.centreMm);
    assert.ok(at, 'the nodule centre is on screen');
    const tClick = Date.now();
    await page.mouse.click(at[0]!, at[1]!);
    await page.waitForSelector('body[data-overlay="1"]', { state: 'attached', timeout: 60_000 });
    const clickToMaskS = (Date.now() - tClick) / 1000;
    lap('click to mask');
    const status = (await page.textContent('#status')) ?? '';
    const nodule = await page.evaluate(() => (globalThis as unknown as PageGlobal).viewer.state.session.nodules[0]!);
    const drawn = await page.evaluate(() => {
      const bm = (globalThis as unknown as PageGlobal).viewer.nv.drawBitmap;
      return bm ? bm.reduce((n, v) => n + (v ? 1 : 0), 0) : 0;
    });
    process.stdout.write(
      `click -> mask shown in ${clickToMaskS.toFixed(2)} s (page: ${status}); ${nodule.volumeMm3.toFixed(1)} mm3, LIDC Dice ${nodule.lidcMatch?.dice}\n`,
    );
    assert.ok(drawn > 0, 'the mask is drawn over the scan');
    assert.ok(
      Math.hypot(
        nodule.promptWorldMm[0] - big.centreMm[0]!,
        nodule.promptWorldMm[1] - big.centreMm[1]!,
        nodule.promptWorldMm[2] - big.centreMm[2]!,
      ) < 1.5,
      `clicked at ${nodule.promptWorldMm}, the centre is ${big.centreMm}`,
    );
    assert.equal(nodule.lidcMatch?.index, big.index);
    assert.ok(nodule.lidcMatch!.dice > 0.7, `Dice with the readers' consensus ${nodule.lidcMatch!.dice}`);
    assert.equal(Number(await page.getAttribute('#nodule-panel', 'data-volume-mm3')), nodule.volumeMm3, 'the panel shows the volume');

    // The command line on the same series and point, while the browser goes on.
    const seriesDir = join(lidcScansDir(), series);
    const cliDone = runCli([
      'segment',
      '-i',
      seriesDir,
      `--point=${nodule.promptWorldMm.join(',')}`,
      '-o',
      join(work, 'cli.nii.gz'),
      '--threads',
      '1',
    ]);

    // Downloads: the label mask (NIfTI on the scan's grid), the DICOM SEG, the JSON report.
    const download = async (id: string, file: string): Promise<Buffer> => {
      const [d] = await Promise.all([page.waitForEvent('download'), page.click(id)]);
      await d.saveAs(join(work, file));
      return readFileSync(join(work, file));
    };
    const mask = decodeNifti1(gunzipSync(await download('#dl-mask', 'mask.nii.gz')), 'mask.nii.gz');
    assert.deepEqual(mask.dims, [512, 512, 133]);
    let on = 0;
    for (const v of mask.data) if (v === nodule.label) on++;
    assert.equal(on, nodule.voxelCount);
    const voxelMm3 = mask.spacingMm[0] * mask.spacingMm[1] * mask.spacingMm[2];
    assert.ok(
      Math.abs(on * voxelMm3 - nodule.volumeMm3) < 1e-3 * nodule.volumeMm3,
      `voxels x voxel volume = ${on * voxelMm3} vs ${nodule.volumeMm3}`,
    );
    lap('mask download');
    const seg = await download('#dl-seg', 'seg.dcm');
    assert.equal(seg.subarray(128, 132).toString('latin1'), 'DICM');
    const report = JSON.parse((await download('#dl-report', 'report.json')).toString('utf8')) as {
      nodules: Array<{ measures: { volumeMm3: number } }>;
    };
    assert.equal(report.nodules[0]!.measures.volumeMm3, nodule.volumeMm3);

    lap('SEG and report downloads');
    // All views + 3D, and the readers' consensus drawn beside the model's mask: blue (3) where
    // only the readers marked. The screenshot shows both.
    await page.click('button[data-view="multi"]');
    const countValue = (v: number): Promise<number> =>
      page.evaluate((value) => {
        const bm = (globalThis as unknown as PageGlobal).viewer.nv.drawBitmap;
        return bm ? bm.reduce((n, x) => n + (x === value ? 1 : 0), 0) : 0;
      }, v);
    const selectedBefore = await countValue(2);
    await page.check('#show-lidc');
    await page.waitForFunction("document.body.dataset.busy === '0'");
    assert.ok((await countValue(3)) > 0, 'LIDC consensus shown');
    assert.equal(await countValue(2), selectedBefore, 'the model mask is still drawn over it');
    await page.waitForTimeout(300);
    const shot = join(OUT_DIR, 'viewer.png');
    await page.screenshot({ path: shot });
    process.stdout.write(`screenshot: ${shot}\n`);
    await page.uncheck('#show-lidc');
    await page.waitForFunction("document.body.dataset.busy === '0'");
    assert.equal(await countValue(3), 0);
    lap('LIDC overlay on/off, screenshot');
    // The any-reader extent: yellow (4) beyond the mask, the mask itself unchanged; off again.
    assert.equal(await countValue(4), 0);
    await page.check('#show-any-reader');
    await page.waitForFunction("document.body.dataset.busy === '0'");
    assert.ok((await countValue(4)) > 0, 'any-reader extent shown');
    assert.equal(await countValue(2), selectedBefore, 'the model mask is still drawn over it');
    await page.uncheck('#show-any-reader');
    await page.waitForFunction("document.body.dataset.busy === '0'");
    assert.equal(await countValue(4), 0);
    lap('any-reader overlay on/off');
    // The mediastinal window (each window change re-uploads the scan: seconds in software WebGL).
    await page.click('button[data-window="mediastinal"]');
    assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobal).viewer.nv.volumes[0]!.cal_min), -160);

    lap('window');
    // Same volume as `noduleseg segment --point` at the same point.
    const cli = await cliDone;
    lap('waiting for the CLI');
    assert.equal(cli.code, 0, cli.stderr);
    const cliReport = JSON.parse(readFileSync(join(work, 'cli.json'), 'utf8')) as {
      nodules: Array<{ measures: { volumeMm3: number; voxelCount: number } }>;
    };
    assert.equal(nodule.voxelCount, cliReport.nodules[0]!.measures.voxelCount);
    assert.ok(
      Math.abs(nodule.volumeMm3 - cliReport.nodules[0]!.measures.volumeMm3) < 1e-6,
      `viewer ${nodule.volumeMm3} vs CLI ${cliReport.nodules[0]!.measures.volumeMm3} mm3`,
    );

    // Removing the nodule clears the overlay.
    await page.click('#nodule-list li[data-label="1"] button');
    await page.waitForSelector('body[data-overlay="0"]', { state: 'attached', timeout: 30_000 });
    lap('remove');

    // The box tool: drag a box around the same nodule on the axial view.
    await page.click('button[data-view="axial"]');
    await page.check('#box-tool');
    const half = 19; // mm: the nodule is 31 mm long; box + 2 mm margins stay inside the 45 mm field of view
    const corners = [
      [big.centreMm[0]! - half, big.centreMm[1]! - half, big.centreMm[2]!],
      [big.centreMm[0]! + half, big.centreMm[1]! + half, big.centreMm[2]!],
    ];
    const ends = await page.evaluate((cs) => {
      const v = (globalThis as unknown as PageGlobal).viewer;
      v.goToWorldLps(cs[0]!);
      return cs.map((c) => v.pagePointOf(c));
    }, corners);
    assert.ok(ends[0] && ends[1], 'both corners on screen');
    await page.mouse.move(ends[0]![0]!, ends[0]![1]!);
    await page.mouse.down();
    await page.mouse.move(ends[1]![0]!, ends[1]![1]!, { steps: 5 });
    const drawnBox = await page.locator('#box-rect').boundingBox();
    assert.ok(
      drawnBox && Math.abs(drawnBox.width - Math.abs(ends[1]![0]! - ends[0]![0]!)) < 6,
      `the box is drawn while dragging: ${JSON.stringify(drawnBox)}`,
    );
    await page.mouse.up();
    assert.equal(await page.isHidden('#box-rect'), true, 'and hidden on release');
    await page.waitForSelector('body[data-overlay="1"]', { state: 'attached', timeout: 60_000 });
    const boxed = await page.evaluate(() => (globalThis as unknown as PageGlobal).viewer.state.session.nodules[0]!);
    process.stdout.write(
      `box -> ${boxed.volumeMm3.toFixed(1)} mm3, LIDC Dice ${boxed.lidcMatch?.dice}, box ${JSON.stringify(boxed.promptBoxWorldMm)}\n`,
    );
    assert.ok(boxed.promptBoxWorldMm, 'the nodule was segmented from a box');
    // The drag's corners come back through screen pixels: each side within about a pixel's worth of mm.
    const [g0, g1] = boxed.promptBoxWorldMm as [number[], number[]];
    for (let d = 0; d < 3; d++) {
      const got = [Math.min(g0[d]!, g1[d]!), Math.max(g0[d]!, g1[d]!)];
      const want = [Math.min(corners[0]![d]!, corners[1]![d]!), Math.max(corners[0]![d]!, corners[1]![d]!)];
      assert.ok(Math.abs(got[0]! - want[0]!) < 1.5 && Math.abs(got[1]! - want[1]!) < 1.5, `box axis ${d}: ${got} vs ${want}`);
    }
    assert.equal(boxed.lidcMatch?.index, big.index);
    assert.ok(boxed.lidcMatch!.dice > 0.7, `Dice with the readers' consensus ${boxed.lidcMatch!.dice}`);
    assert.match((await page.textContent('#status')) ?? '', /segmented in the box/);
    assert.deepEqual(pageErrors, [], 'no script errors in the page');
    assert.deepEqual(elsewhere, [], 'no request to anywhere but the viewer server');
    assert.deepEqual(failed, [], 'no failed request');
    lap('box');
    process.stdout.write(`e2e total ${((Date.now() - t0) / 1000).toFixed(1)} s: ${laps.join(', ')}\n`);
  } finally {
    await ctx.close();
    await srv.stop();
    rmSync(work, { recursive: true, force: true });
  }
});

test('viewer: a malformed upload shows its error in the page; a good upload opens and segments', { timeout: 90_000 }, async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup.sh as root (apt-get install chromium)`);
  const work = mkdtempSync(join(tmpdir(), 'noduleseg-e2e-up-'));
  mkdirSync(join(work, 'data'));
  const sphere = join(work, 'sphere.nii.gz');
  writeSphereCt(sphere, 6);
  const bad = join(work, 'broken.nii.gz');
  writeFileSync(bad, Buffer.from('not an image '.repeat(40)));
  const srv = await startServe(['--data', join(work, 'data')]);
  const ctx = await chromium.launchPersistentContext(join(work, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1200, height: 760 },
  });
  try {
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    await page.goto(srv.url);
    await page.waitForSelector('body[data-ready="1"]', { state: 'attached', timeout: 30_000 });
    await page.click('button[data-view="axial"]');
    // The broken file: a one-line error naming it, in the page.
    await page.setInputFiles('#upload-files', bad);
    await page.waitForSelector('#message:not([hidden])', { timeout: 30_000 });
    const message = (await page.textContent('#message')) ?? '';
    assert.match(message, /broken\.nii\.gz/);
    assert.ok(!message.includes('noduleseg-serve-'), `no server paths: ${message}`);
    // The page and the server go on: the good file opens and a click on the sphere segments it.
    await page.setInputFiles('#upload-files', sphere);
    await page.waitForSelector('body[data-scan]', { state: 'attached', timeout: 30_000 });
    assert.equal(await page.isHidden('#message'), true);
    const centre = [-20 + 32 * 0.7, -30 + 32 * 0.7, -100 + 12 * 1.25];
    const at = await page.evaluate((c) => {
      const v = (globalThis as unknown as PageGlobal).viewer;
      v.goToWorldLps(c);
      return v.pagePointOf(c);
    }, centre);
    assert.ok(at);
    await page.mouse.click(at[0]!, at[1]!);
    await page.waitForSelector('body[data-overlay="1"]', { state: 'attached', timeout: 30_000 });
    const n = await page.evaluate(() => (globalThis as unknown as PageGlobal).viewer.state.session.nodules[0]!);
    // A 6 mm sphere: 905 mm3; the shipped model's outline within a third of it.
    assert.ok(Math.abs(n.volumeMm3 - 904.8) < 300, `sphere volume ${n.volumeMm3} mm3`);
    assert.equal(await page.textContent('#nodule-list li[data-label="1"] .grow').then((t) => t?.includes('mm³')), true);
  } finally {
    await ctx.close();
    await srv.stop();
    rmSync(work, { recursive: true, force: true });
  }
});

// `noduleseg serve` with the model in a worker thread: the server answers while a segmentation
// runs, the queue is bounded, jobs whose client went away are dropped, internal errors are 500s.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, type ClientRequest } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { decodeNifti1 } from '../../src/io/nifti.ts';
import { runCli, startServe, writeSphereCt, type ServeProcess } from './helpers.ts';

/** The sphere's centre in world mm (LPS) for writeSphereCt's default grid: origin + dims / 2 * spacing. */
const CENTRE = [-20 + 32 * 0.7, -30 + 32 * 0.7, -100 + 12 * 1.25];

interface Health {
  status: string;
  model: { loaded: boolean; file: string; arch: string };
  queue: { running: number; waiting: number; max: number };
  jobs: { completed: number; failed: number; dropped: number; discarded: number; workerRestarts: number };
  uptimeS: number;
}

interface Answer {
  status: number;
  headers: Headers;
  json: Record<string, unknown>;
}

async function api(srv: ServeProcess, path: string, init?: RequestInit): Promise<Answer> {
  const res = await fetch(new URL(path, srv.url), init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: JSON.parse(text) as Record<string, unknown> };
}

const health = async (srv: ServeProcess): Promise<Health> => (await api(srv, '/health')).json as unknown as Health;

async function openScan(srv: ServeProcess, path: string): Promise<string> {
  const r = await api(srv, `/api/open?path=${encodeURIComponent(path)}`, { method: 'POST' });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return String(r.json['id']);
}

const segment = (srv: ServeProcess, id: string, body: unknown): Promise<Answer> =>
  api(srv, `/api/sessions/${id}/nodules`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** A segmentation request on a raw socket, so that the test can hang up before the answer. */
function segmentRaw(srv: ServeProcess, id: string, body: unknown): ClientRequest {
  const req = request({
    host: '127.0.0.1',
    port: srv.port,
    method: 'POST',
    path: `/api/sessions/${id}/nodules`,
    headers: { 'content-type': 'application/json' },
  });
  req.on('error', () => undefined); // the test destroys it
  req.end(JSON.stringify(body));
  return req;
}

/** Polls /health until `ok` holds (or fails after `timeoutMs`). */
async function waitFor(srv: ServeProcess, ok: (h: Health) => boolean, what: string, timeoutMs = 30_000): Promise<Health> {
  const t0 = Date.now();
  for (;;) {
    const h = await health(srv);
    if (ok(h)) return h;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(h)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Waits until the server's log (its stderr, piped: it may arrive after the response) matches `re`. */
async function logMatching(srv: ServeProcess, re: RegExp, timeoutMs = 10_000): Promise<string> {
  const t0 = Date.now();
  while (!re.test(srv.log()) && Date.now() - t0 < timeoutMs) await new Promise((r) => setTimeout(r, 10));
  return srv.log();
}

async function nodules(srv: ServeProcess, id: string): Promise<number> {
  return ((await api(srv, `/api/sessions/${id}`)).json['nodules'] as unknown[]).length;
}

const root = mkdtempSync(join(tmpdir(), 'noduleseg-worker-test-'));
const data = join(root, 'data');

describe('noduleseg serve: the model in a worker thread', () => {
  let srv: ServeProcess;
  before(async () => {
    mkdirSync(data, { recursive: true });
    writeSphereCt(join(data, 'large.nii.gz'), 7);
    srv = await startServe(['--data', data, '--max-queue', '1']);
  });
  after(async () => {
    const code = await srv.stop();
    assert.equal(code, 0, `clean exit on SIGTERM: ${srv.log()}`);
  });

  test('GET /health: the model loaded, the queue, the uptime', async () => {
    const r = await api(srv, '/health');
    assert.equal(r.status, 200);
    const h = r.json as unknown as Health;
    assert.equal(h.status, 'ok');
    assert.equal(h.model.loaded, true);
    assert.equal(h.model.file, 'noduleseg.safetensors');
    assert.deepEqual(h.queue, { running: 0, waiting: 0, max: 1 });
    assert.ok(h.uptimeS >= 0);
  });

  test('answers /health and a static page within 100 ms while a segmentation runs', async () => {
    const id = await openScan(srv, 'large.nii.gz');
    const pending = segment(srv, id, { pointMm: CENTRE });
    await waitFor(srv, (h) => h.queue.running === 1, 'the segmentation to start');
    const healthMs: number[] = [];
    const pageMs: number[] = [];
    for (let k = 0; k < 5; k++) {
      let t0 = performance.now();
      const h = await health(srv);
      const dh = performance.now() - t0;
      t0 = performance.now();
      const page = await fetch(new URL('/', srv.url));
      await page.text();
      const dp = performance.now() - t0;
      assert.equal(page.status, 200);
      // Only samples taken while the model was busy count.
      if (h.queue.running !== 1) break;
      healthMs.push(dh);
      pageMs.push(dp);
    }
    const r = await pending;
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.ok(healthMs.length > 0, 'at least one /health answer came while the model ran');
    const fmt = (v: number[]): string => v.map((x) => x.toFixed(1)).join(', ');
    console.log(`# during a segmentation (${r.json['segmentMs']} ms): /health in ${fmt(healthMs)} ms; GET / in ${fmt(pageMs)} ms`);
    // The goal is < 100 ms; the bound is loose because CI machines are shared.
    assert.ok(Math.max(...healthMs) < 1000, `/health took ${fmt(healthMs)} ms`);
    assert.ok(Math.max(...pageMs) < 1000, `GET / took ${fmt(pageMs)} ms`);
  });

  test('answers /health while a scan is read (scans are decoded on a worker thread)', async () => {
    writeSphereCt(join(data, 'big.nii.gz'), 7, [320, 320, 160]);
    const healthMs: number[] = [];
    let opened = false;
    const t0 = performance.now();
    const opening = openScan(srv, 'big.nii.gz').finally(() => (opened = true));
    while (!opened) {
      const t = performance.now();
      await health(srv);
      if (!opened) healthMs.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 20));
    }
    await opening;
    const openMs = performance.now() - t0;
    const fmt = (v: number[]): string => `max ${Math.max(...v).toFixed(1)} ms over ${v.length}`;
    console.log(`# while a 320 x 320 x 160 scan opened (${openMs.toFixed(0)} ms): /health ${fmt(healthMs)}`);
    assert.ok(healthMs.length >= 2, `at least two /health answers came while the scan was read (open took ${openMs.toFixed(0)} ms)`);
    // The goal is < 100 ms; the bound is loose because CI machines are shared.
    assert.ok(Math.max(...healthMs) < 1000, `/health: ${fmt(healthMs)}`);
  });

  test('the same voxels as `segment --point` and `--box`', async () => {
    const id = await openScan(srv, 'large.nii.gz');
    const box = [
      [CENTRE[0]! - 3, CENTRE[1]! - 3, CENTRE[2]! - 4],
      [CENTRE[0]! + 3, CENTRE[1]! + 3, CENTRE[2]! + 4],
    ];
    const dir = mkdtempSync(join(tmpdir(), 'noduleseg-worker-cli-'));
    try {
      const cases: Array<[string, unknown, string]> = [
        ['point', { pointMm: CENTRE }, `--point=${CENTRE.join(',')}`],
        ['box', { boxMm: box }, `--box=${box.flat().join(',')}`],
      ];
      for (const [name, body, arg] of cases) {
        const id2 = name === 'point' ? id : await openScan(srv, 'large.nii.gz');
        const r = await segment(srv, id2, body);
        assert.equal(r.status, 200, JSON.stringify(r.json));
        const cli = await runCli(['segment', '-i', join(data, 'large.nii.gz'), arg, '-o', join(dir, `${name}.nii.gz`), '--threads', '1']);
        assert.equal(cli.code, 0, cli.stderr);
        const mask = decodeNifti1(
          gunzipSync(Buffer.from(await (await fetch(new URL(`/api/sessions/${id2}/labels.nii.gz`, srv.url))).arrayBuffer())),
          'labels.nii.gz',
        );
        const cliMask = decodeNifti1(gunzipSync(readFileSync(join(dir, `${name}.nii.gz`))), 'cli');
        assert.deepEqual(
          Array.from(mask.data, (v) => (v ? 1 : 0)),
          Array.from(cliMask.data, (v) => (v ? 1 : 0)),
          `${name}: the same voxels as the CLI`,
        );
        const rep = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as {
          nodules: Array<{ measures: { volumeMm3: number }; meanProbability: number }>;
        };
        const nodule = r.json['nodule'] as { volumeMm3: number; meanProbability: number };
        assert.equal(nodule.volumeMm3, rep.nodules[0]!.measures.volumeMm3, `${name}: volume`);
        assert.equal(nodule.meanProbability, rep.nodules[0]!.meanProbability, `${name}: mean probability`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a full queue gets 503 with Retry-After and a one-line message', async () => {
    const id = await openScan(srv, 'large.nii.gz');
    // One runs, one waits (--max-queue 1), the third is refused.
    const points = [0, 1, 2].map((k) => [CENTRE[0]! + k * 0.7, CENTRE[1]!, CENTRE[2]!]);
    const answers = await Promise.all(points.map((p) => segment(srv, id, { pointMm: p })));
    const statuses = answers.map((a) => a.status).sort();
    assert.deepEqual(statuses, [200, 200, 503], JSON.stringify(answers.map((a) => a.json)));
    const busy = answers.find((a) => a.status === 503)!;
    assert.match(String(busy.json['error']), /^busy: .*try again/);
    assert.ok(!String(busy.json['error']).includes('\n'));
    assert.match(busy.headers.get('retry-after') ?? '', /^\d+$/);
    assert.equal(await nodules(srv, id), 2);
  });

  test('a queued job whose client hangs up is dropped; a running one has its result discarded', async () => {
    const before = await health(srv);
    const id = await openScan(srv, 'large.nii.gz');
    const other = await openScan(srv, 'large.nii.gz');
    // A keeps the model busy; B waits behind it and its client goes away.
    const a = segment(srv, id, { pointMm: CENTRE });
    await waitFor(srv, (h) => h.queue.running === 1, 'A to start');
    const b = segmentRaw(srv, other, { pointMm: CENTRE });
    await waitFor(srv, (h) => h.queue.waiting === 1, 'B to be queued');
    b.destroy();
    const afterDrop = await waitFor(srv, (h) => h.jobs.dropped === before.jobs.dropped + 1, 'B to be dropped');
    assert.equal(afterDrop.queue.waiting, 0, 'B left the queue');
    assert.equal((await a).status, 200);
    assert.equal(await nodules(srv, other), 0, 'B never ran');
    // C runs, then its client goes away: nothing is added to its scan.
    const c = segmentRaw(srv, other, { pointMm: CENTRE });
    await waitFor(srv, (h) => h.queue.running === 1, 'C to start');
    c.destroy();
    const done = await waitFor(srv, (h) => h.jobs.discarded === before.jobs.discarded + 1 && h.queue.running === 0, 'C to finish');
    assert.equal(done.jobs.completed, before.jobs.completed + 1, 'only A completed');
    assert.equal(await nodules(srv, other), 0, "C's result was discarded");
    assert.match(await logMatching(srv, /dropped before it started: its client went away/), /dropped before it started/);
    assert.match(await logMatching(srv, /result discarded/), /result discarded/);
  });
});

describe('noduleseg serve: internal errors', () => {
  let srv: ServeProcess;
  before(async () => {
    mkdirSync(data, { recursive: true });
    writeSphereCt(join(data, 'large.nii.gz'), 7);
    // The first segmentation throws a RangeError inside the worker, the second kills the worker.
    srv = await startServe(['--data', data], { NODULESEG_SERVE_FAULT: 'throw,exit' });
  });
  after(async () => {
    try {
      const code = await srv.stop();
      assert.equal(code, 0, `clean exit on SIGTERM: ${srv.log()}`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('an internal error (a RangeError included) is a 500 with a generic message and a log line with its stack', async () => {
    const id = await openScan(srv, 'large.nii.gz');
    const r = await segment(srv, id, { pointMm: CENTRE });
    assert.equal(r.status, 500, JSON.stringify(r.json));
    assert.equal(r.json['error'], 'internal error; the server log has the details');
    const stack = /in the model worker ---\nRangeError: injected internal error[^\n]*\n\s+at /;
    const log = await logMatching(srv, stack);
    assert.match(log, /error on POST \/api\/sessions\/.*RangeError: injected internal error/s);
    assert.match(log, stack);
    // A user's mistake stays a 4xx with its message.
    const outside = await segment(srv, id, { pointMm: [1e6, 0, 0] });
    assert.equal(outside.status, 400);
    assert.equal(outside.json['error'], 'the point lies outside the scan');
  });

  test('a model worker that dies gives a 500, is restarted and segments again', async () => {
    const id = await openScan(srv, 'large.nii.gz');
    const r = await segment(srv, id, { pointMm: CENTRE });
    assert.equal(r.status, 500, JSON.stringify(r.json));
    assert.match(await logMatching(srv, /the model worker stopped/), /the model worker stopped/);
    const h = await waitFor(srv, (x) => x.model.loaded && x.jobs.workerRestarts === 1, 'the worker to restart', 60_000);
    assert.equal(h.status, 'ok');
    // The scans opened before the crash are sent to the new worker.
    const again = await segment(srv, id, { pointMm: CENTRE });
    assert.equal(again.status, 200, JSON.stringify(again.json));
    assert.ok((again.json['nodule'] as { voxelCount: number }).voxelCount > 0);
  });
});

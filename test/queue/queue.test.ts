// The job queue against real Redis and Orthanc: two workers on 4 jobs, one killed by SIGKILL in the
// middle of a job; every job completes exactly once and no SEG is stored twice. Plus a job that
// fails for good (dead-letter list, no retry), progress, SIGTERM, submit's dedup and errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { QueueEvents, Queue } from 'bullmq';
import { connectionOf, type SegJobResult } from '../../src/queue/jobs.ts';
import { submit } from '../../src/queue/submit.ts';
import { deadLetters } from '../../src/queue/list.ts';
import { keepSecondsOf } from '../../src/queue/sweep.ts';
import {
  LIDC1_STUDY,
  ORTHANC_PASSWORD,
  REDIS_URL,
  DICOMWEB_URL,
  client,
  emptyOrthanc,
  noOrthanc,
  noRedis,
  noScans,
  orthancInstanceCount,
  runBin,
  uploadLidc1Slab,
} from '../pacs/helpers.ts';
import { startWorkerProc } from './helpers.ts';

const SLAB = 24;
// Four prompts on and around the large nodule: four distinct jobs, four SEGs.
const POINTS = ['56.2,86.3,-115.9', '58,88,-115', '54,85,-117', '57,84,-114'];

/** Queues one point job (3 attempts, kept 1 h) and returns its id. */
async function submitPoint(
  queue: string,
  point: string,
  o: { dicomweb?: string; study?: string; backoffS?: number } = {},
): Promise<string> {
  const ids: string[] = [];
  await submit({
    redisUrl: REDIS_URL,
    queue,
    dicomweb: o.dicomweb ?? DICOMWEB_URL,
    study: o.study ?? LIDC1_STUDY,
    point,
    attempts: 3,
    backoffS: o.backoffS ?? 1,
    keep: '1h',
    out: (id) => ids.push(id),
    err: () => undefined,
  });
  assert.equal(ids.length, 1, 'submit printed one job id');
  return ids[0]!;
}

test('queue: 2 workers, 4 jobs, one worker SIGKILLed mid-job: each job completes once, each SEG stored once', {
  skip: noOrthanc || noRedis || noScans,
  timeout: 240_000,
}, async (t) => {
  await emptyOrthanc();
  await uploadLidc1Slab(SLAB);
  const queue = `test-${process.pid}-${Date.now()}`;
  const connection = connectionOf(REDIS_URL);
  const events = new QueueEvents(queue, { connection });
  const q = new Queue(queue, { connection });
  const completed = new Map<string, number>();
  const segmenting = new Set<string>();
  events.on('completed', ({ jobId }) => completed.set(jobId, (completed.get(jobId) ?? 0) + 1));
  events.on('progress', ({ jobId, data }) => {
    if (typeof data === 'object' && data && (data as { stage?: string }).stage === 'segmenting') segmenting.add(jobId);
  });
  await events.waitUntilReady();
  // Short locks so that the killed worker's job is taken over within seconds.
  const opts = ['--threads', '1', '--lock-seconds', '6', '--stalled-seconds', '3'];
  const a = startWorkerProc(queue, opts);
  const b = startWorkerProc(queue, opts);
  try {
    await Promise.all([a.waitFor(/ready/), b.waitFor(/ready/)]);
    const ids: string[] = [];
    for (const point of POINTS) ids.push(await submitPoint(queue, point));
    // The same job again is not queued twice.
    assert.equal(await submitPoint(queue, POINTS[0]!), ids[0]);
    assert.equal(new Set(ids).size, 4);

    // Kill A once it is in the middle of a job (fetched, model running).
    const started = await a.waitFor(/job seg-\w+: started/);
    const victim = /job (seg-\w+)/.exec(started)![1]!;
    const t0 = Date.now();
    while (!segmenting.has(victim) && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 50));
    assert.ok(!completed.has(victim), 'killed before its job completed');
    a.proc.kill('SIGKILL');
    await a.exited;

    // Everything completes on B.
    const deadline = Date.now() + 200_000;
    while (ids.some((id) => !completed.has(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    for (const id of ids) assert.equal(completed.get(id), 1, `job ${id} completed exactly once`);
    await b.waitFor(new RegExp(`job ${victim}: started \\(attempt \\d+, taken over after a stall\\)`), 1000);
    t.diagnostic(`worker A killed during ${victim}; B took it over after the lock lapsed`);

    // One SEG per job on Orthanc, each stored once; the results name them.
    const c = client();
    const segs = await c.searchSeries(LIDC1_STUDY, { modality: 'SEG' });
    assert.equal(segs.length, 4);
    assert.equal((await c.searchSeries(LIDC1_STUDY, { modality: 'SR' })).length, 4);
    assert.equal(await orthancInstanceCount(), SLAB + 4 + 4, 'the slab, 4 SEGs and 4 SRs: nothing twice');
    const results = await Promise.all(ids.map(async (id) => (await q.getJob(id))!));
    for (const job of results) {
      const r = job.returnvalue as SegJobResult;
      assert.ok(segs.some((s) => s.seriesInstanceUid === r.seg.seriesInstanceUid));
      assert.deepEqual(await c.searchInstances(LIDC1_STUDY, r.seg.seriesInstanceUid), [r.seg.sopInstanceUid]);
      assert.deepEqual(await c.searchInstances(LIDC1_STUDY, r.sr.seriesInstanceUid), [r.sr.sopInstanceUid]);
      assert.deepEqual(job.progress, { stage: 'done', percent: 100 });
      assert.equal(r.nodules.length, 1);
      assert.equal(keepSecondsOf(job, 'completed'), 3600);
    }

    // A job that cannot succeed: not retried, on the dead-letter list with its error.
    const bad = await submitPoint(queue, POINTS[0]!, { study: '1.2.3.4' });
    await b.waitFor(new RegExp(`job ${bad}: failed for good`), 30_000);
    const dead = await deadLetters(REDIS_URL, queue, 10);
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.id, bad);
    assert.equal(dead[0]!.attempts, 1);
    assert.equal(dead[0]!.error, `${DICOMWEB_URL}: study 1.2.3.4 not found`);

    // `noduleseg jobs` lists the states.
    const listed = await runBin(['jobs', '--queue', queue], { NODULESEG_REDIS_URL: REDIS_URL });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /completed 4, failed 1/);
    for (const id of ids) assert.match(listed.stdout, new RegExp(`${id}  completed`));

    // SIGTERM: B stops cleanly (no job running).
    b.proc.kill('SIGTERM');
    assert.equal(await b.exited, 0);
    for (const line of [...a.lines, ...b.lines]) assert.ok(!line.includes(ORTHANC_PASSWORD), 'no password in the logs');
  } finally {
    for (const w of [a, b]) if (w.proc.exitCode === null) w.proc.kill('SIGKILL');
    await events.close();
    await q.obliterate({ force: true });
    await q.close();
  }
});

test('queue: a DICOMweb server down at first: the job is retried with back-off and completes on its second attempt', {
  skip: noOrthanc || noRedis || noScans,
  timeout: 180_000,
}, async () => {
  await emptyOrthanc();
  await uploadLidc1Slab(SLAB);
  // A loopback port with nothing behind it yet; a TCP relay to Orthanc opens on it after the first failure.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const orthanc = new URL(DICOMWEB_URL);
  const url = `http://127.0.0.1:${port}${orthanc.pathname}`;
  const queue = `test-retry-${process.pid}-${Date.now()}`;
  const connection = connectionOf(REDIS_URL);
  const q = new Queue(queue, { connection });
  const w = startWorkerProc(queue, ['--threads', '1'], url);
  const sockets = new Set<Socket>();
  const relay = createServer((sock) => {
    const up = connect(Number(orthanc.port), orthanc.hostname);
    for (const s of [sock, up]) {
      sockets.add(s);
      s.on('error', () => undefined);
    }
    sock.pipe(up);
    up.pipe(sock);
  });
  try {
    await w.waitFor(/ready/);
    const id = await submitPoint(queue, POINTS[0]!, { dicomweb: url, backoffS: 2 });
    const first = await w.waitFor(new RegExp(`job ${id}: (failed|done)`), 60_000);
    assert.match(first, /failed \(attempt 1\), retried later: .*cannot reach/);
    await new Promise<void>((r) => relay.listen(port, '127.0.0.1', r));
    await w.waitFor(new RegExp(`job ${id}: done`), 120_000);
    // The worker logs "done" just before BullMQ records the completion: wait for the record.
    const t0 = Date.now();
    while ((await q.getJobState(id)) !== 'completed' && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 100));
    const job = await q.getJob(id);
    assert.equal(await job?.getState(), 'completed');
    assert.equal(job?.attemptsMade, 2, 'completed on its second attempt');
    assert.equal((await client().searchSeries(LIDC1_STUDY, { modality: 'SEG' })).length, 1);
    assert.equal((await deadLetters(REDIS_URL, queue, 10)).length, 0);
  } finally {
    if (w.proc.exitCode === null) w.proc.kill('SIGKILL');
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => (relay.listening ? relay.close(() => r()) : r()));
    await q.obliterate({ force: true });
    await q.close();
  }
});

test('submit and worker: one-line errors before any work', { skip: noRedis, timeout: 60_000 }, async () => {
  const noServer = await runBin(['submit', '--study', '1.2.3', '--point', '1,2,3'], { NODULESEG_REDIS_URL: REDIS_URL });
  assert.equal(noServer.code, 1);
  assert.match(noServer.stderr, /^noduleseg: --dicomweb <url> is required/);
  const closed = await runBin(['jobs', '--redis', 'redis://:sekrit@127.0.0.1:1']);
  assert.equal(closed.code, 1);
  assert.equal(closed.stderr.trim(), 'noduleseg: redis://:***@127.0.0.1:1: cannot reach Redis (connection refused)');
});

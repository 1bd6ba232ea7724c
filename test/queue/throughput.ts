// Throughput of the queue (not part of the suite; minutes): 20 jobs on LIDC-IDRI-0001 (whole scan,
// 20 points around its large nodule) with 1 worker (2 threads) and with 2 workers (1 thread each),
// one of which is SIGKILLed mid-job after 5 jobs and restarted (as a supervisor would). Checks
// that every job completes exactly once and that Orthanc holds exactly 20 SEGs after each run.
//   bash scripts/services.sh node --import tsx test/queue/throughput.ts [--two-first]
import assert from 'node:assert/strict';
import { QueueEvents, Queue } from 'bullmq';
import { connectionOf } from '../../src/queue/jobs.ts';
import { submit } from '../../src/queue/submit.ts';
import {
  DICOMWEB_URL,
  LIDC1_STUDY,
  REDIS_URL,
  client,
  emptyOrthanc,
  noOrthanc,
  noRedis,
  noScans,
  orthancInstanceCount,
  uploadLidc1,
} from '../pacs/helpers.ts';
import { startWorkerProc, type WorkerProc } from './helpers.ts';

const why = noOrthanc || noRedis || noScans;
if (why) {
  console.error(`throughput: skipped: ${why}`);
  process.exit(0);
}
const JOBS = 20;
const points = Array.from(
  { length: JOBS },
  (_, i) => `${(56.2 + (i % 5) * 0.6 - 1.2).toFixed(1)},${(86.3 + Math.floor(i / 5) * 0.6 - 0.9).toFixed(1)},-115.9`,
);

async function runOnce(workers: number, threads: number, kill: boolean): Promise<Record<string, unknown>> {
  await emptyOrthanc();
  await uploadLidc1();
  const queue = `bench-${process.pid}-${workers}-${Date.now()}`;
  const connection = connectionOf(REDIS_URL);
  const events = new QueueEvents(queue, { connection });
  const q = new Queue(queue, { connection });
  const completed = new Map<string, number>();
  const segmenting = new Set<string>();
  events.on('completed', ({ jobId }) => completed.set(jobId, (completed.get(jobId) ?? 0) + 1));
  events.on('progress', ({ jobId, data }) => {
    if ((data as { stage?: string }).stage === 'segmenting') segmenting.add(jobId);
  });
  await events.waitUntilReady();
  const opts = ['--threads', String(threads), '--lock-seconds', '10', '--stalled-seconds', '5'];
  const procs: WorkerProc[] = Array.from({ length: workers }, () => startWorkerProc(queue, opts));
  const tStart = Date.now();
  await Promise.all(procs.map((p) => p.waitFor(/ready/)));
  const startupS = (Date.now() - tStart) / 1000;
  const ids: string[] = [];
  const t0 = Date.now();
  for (const point of points)
    await submit({
      redisUrl: REDIS_URL,
      queue,
      dicomweb: DICOMWEB_URL,
      study: LIDC1_STUDY,
      point,
      attempts: 3,
      backoffS: 1,
      keep: '1h',
      out: (id) => ids.push(id),
      err: () => undefined,
    });
  let killed: string | null = null;
  while (ids.some((id) => !completed.has(id))) {
    await new Promise((r) => setTimeout(r, 200));
    if (kill && !killed && completed.size >= 5) {
      // Worker 0's next job, once its model is running: SIGKILL, then a fresh worker in its place.
      const active = [...segmenting].filter((id) => !completed.has(id));
      const mine = active.find((id) => procs[0]!.lines.some((l) => l.includes(`job ${id}: started`)));
      if (mine) {
        killed = mine;
        procs[0]!.proc.kill('SIGKILL');
        await procs[0]!.exited;
        procs.push(startWorkerProc(queue, opts));
        console.error(`killed worker 0 during ${mine}; a new worker started`);
      }
    }
    if (Date.now() - t0 > 1_500_000) throw new Error('timed out');
  }
  const elapsedS = (Date.now() - t0) / 1000;
  for (const id of ids) assert.equal(completed.get(id), 1, `${id} completed exactly once`);
  const segs = await client().searchSeries(LIDC1_STUDY, { modality: 'SEG' });
  assert.equal(segs.length, JOBS, 'one SEG per job');
  assert.equal(await orthancInstanceCount(), 133 + 2 * JOBS, 'a SEG and an SR per job, nothing stored twice');
  const jobs = await Promise.all(ids.map((id) => q.getJob(id)));
  const perJob = jobs.map((j) => (j!.returnvalue as { ms: { total: number } }).ms.total / 1000);
  const notStoredAgain = jobs.filter((j) => !(j!.returnvalue as { seg: { stored: boolean } }).seg.stored).length;
  for (const p of procs) if (p.proc.exitCode === null) p.proc.kill('SIGTERM');
  await Promise.all(procs.map((p) => p.exited));
  await events.close();
  await q.obliterate({ force: true });
  await q.close();
  const result = {
    workers,
    threadsPerWorker: threads,
    killed,
    jobs: JOBS,
    workerStartupS: Number(startupS.toFixed(1)),
    elapsedS: Number(elapsedS.toFixed(1)),
    jobsPerMinute: Number(((JOBS / elapsedS) * 60).toFixed(2)),
    meanJobS: Number((perJob.reduce((a, b) => a + b, 0) / JOBS).toFixed(1)),
    segsFoundAlreadyStored: notStoredAgain,
  };
  console.log(JSON.stringify(result));
  return result;
}

// --two-first: the 2-worker run first (the background load drifts; alternate the order between runs).
const twoFirst = process.argv.includes('--two-first');
const [one, two] = twoFirst ? [null, await runOnce(2, 1, true)] : [await runOnce(1, 2, false), null];
const oneR = one ?? (await runOnce(1, 2, false));
const twoR = two ?? (await runOnce(2, 1, true));
console.log(
  `throughput: 1 worker ${oneR['jobsPerMinute']} jobs/min, 2 workers (one killed and restarted) ${twoR['jobsPerMinute']} jobs/min: ${((twoR['jobsPerMinute'] as number) / (oneR['jobsPerMinute'] as number)).toFixed(2)}x`,
);

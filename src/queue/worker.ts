/**
 * `noduleseg worker`: takes segmentation jobs from the BullMQ queue, one at a time, with one model
 * load per process (in a model thread, so that the job lock is renewed while the model runs).
 * Per job: the series by WADO-RS into a temporary folder, the model at the job's prompts, the SEG
 * and the SR (UIDs derived from the job and the model) stored by STOW-RS unless the server
 * already has them.
 *
 * Failures: a DICOMweb error that may pass (network, timeout, 429, 5xx) or an internal error is
 * retried with back-off; a user error (no such study, not CT, a point outside the image, 401) is
 * not. A job that fails for good goes to the dead-letter list with its error. A worker killed
 * mid-job leaves a stalled job that another worker takes once the lock expires.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Job, Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { isUserError } from '../errors.ts';
import type { DicomWebAuth } from '../pacs/auth.ts';
import { DicomWebClient, DicomWebError } from '../pacs/dicomweb.ts';
import { storeSegOnce } from '../pacs/store.ts';
import { canonicalJson, fileDigest, segUidsFor, srUidsFor } from '../pacs/uids.ts';
import { connectionOf, type JobProgress, type JobStage, publicRedisUrl, type SegJobData, type SegJobResult, jobIdOf } from './jobs.ts';
import { ModelHost, type SegmentReply } from './model-host.ts';
import { deadLetterKey } from './dead-letter.ts';
import { keepSecondsOf, sweepExpired } from './sweep.ts';

export interface WorkerOptions {
  redisUrl: string;
  queue: string;
  dicomweb: string;
  auth: DicomWebAuth;
  modelFile: string;
  threads: number | null;
  lockMs: number;
  stalledMs: number;
  /** How often to remove finished jobs past their keep time (BullMQ does it only when another job finishes). */
  sweepMs: number;
  log: (line: string) => void;
}

export interface RunningWorker {
  /** Resolves when the worker has stopped (after stop(), or a fatal error). */
  done: Promise<void>;
  /** Graceful: the running job finishes, no new one is taken. */
  stop: () => Promise<void>;
}

const percentOf: Record<JobStage, number> = { fetching: 5, segmenting: 40, storing: 85, done: 100 };

export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  const client = new DicomWebClient(o.dicomweb, { auth: o.auth });
  const me = `${hostname()}:${process.pid}`;
  const modelDigest = fileDigest(o.modelFile);
  const host = new ModelHost({ modelFile: o.modelFile, threads: o.threads });
  await host.start();
  const redis = new Redis(o.redisUrl, { maxRetriesPerRequest: null });

  const processJob = async (job: Job<SegJobData, SegJobResult>): Promise<SegJobResult> => {
    const d = job.data;
    const t0 = performance.now();
    const stage = (s: JobStage): Promise<void> => job.updateProgress({ stage: s, percent: percentOf[s] } satisfies JobProgress);
    if (d.dicomweb !== client.label) throw new UnrecoverableError(`job for ${d.dicomweb}, but this worker serves ${client.label}`);
    o.log(`job ${job.id}: started (attempt ${job.attemptsMade + 1}${job.stalledCounter ? `, taken over after a stall` : ''})`);
    try {
      await stage('fetching');
      const series = d.study ? await client.ctSeries(d.study, d.series ?? undefined) : await client.findCtSeries(d.series!);
      const dir = mkdtempSync(join(tmpdir(), 'noduleseg-job-'));
      const key = canonicalJson({ job: jobIdOf(d), model: modelDigest });
      const uids = segUidsFor(key);
      const srUids = srUidsFor(key);
      let reply: SegmentReply;
      let tFetch = 0;
      try {
        await client.retrieveSeries(series.studyInstanceUid, series.seriesInstanceUid, dir);
        tFetch = performance.now();
        await stage('segmenting');
        reply = await host.segment({ dir, prompts: d.prompts, threshold: d.threshold, tta: d.tta, uids, srUids });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      const tSeg = performance.now();
      await stage('storing');
      const stored = await storeSegOnce(client, reply.studyInstanceUid, reply.seg, uids);
      const storedSr = await storeSegOnce(client, reply.studyInstanceUid, reply.sr, srUids);
      await stage('done');
      const tEnd = performance.now();
      const ms = {
        fetch: Math.round(tFetch - t0),
        segment: Math.round(tSeg - tFetch),
        store: Math.round(tEnd - tSeg),
        total: Math.round(tEnd - t0),
      };
      o.log(
        `job ${job.id}: done in ${(ms.total / 1000).toFixed(1)} s; SEG ${stored.stored ? 'stored' : 'already on the server, not stored again'} (series ${uids.seriesInstanceUid})`,
      );
      return {
        studyInstanceUid: reply.studyInstanceUid,
        seriesInstanceUid: reply.seriesInstanceUid,
        seg: { seriesInstanceUid: stored.seriesInstanceUid, sopInstanceUid: stored.sopInstanceUid, stored: stored.stored },
        sr: { seriesInstanceUid: storedSr.seriesInstanceUid, sopInstanceUid: storedSr.sopInstanceUid, stored: storedSr.stored },
        nodules: reply.nodules,
        worker: me,
        ms,
      };
    } catch (e) {
      // The user's mistakes are not retried; what may pass (network, server busy, a crash) is.
      if (isUserError(e) && !(e instanceof DicomWebError && e.transient)) throw new UnrecoverableError(e.message);
      throw e;
    }
  };

  const worker = new Worker<SegJobData, SegJobResult>(o.queue, processJob, {
    connection: connectionOf(o.redisUrl),
    concurrency: 1,
    lockDuration: o.lockMs,
    stalledInterval: o.stalledMs,
    maxStalledCount: 2,
    autorun: false,
  });
  worker.on('failed', (job, err) => {
    if (!job) return;
    const final = err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    o.log(
      `job ${job.id}: ${final ? 'failed for good' : `failed (attempt ${job.attemptsMade}), retried later`}: ${err.message.split('\n')[0]}`,
    );
    if (!final) return;
    const keepS = keepSecondsOf(job, 'failed') ?? 7 * 86400;
    const now = Date.now();
    const entry = JSON.stringify({
      id: job.id,
      data: job.data,
      error: err.message,
      attempts: job.attemptsMade,
      failedAt: new Date(now).toISOString(),
      worker: me,
    });
    redis
      .multi()
      .zadd(deadLetterKey(o.queue), now, entry)
      .zremrangebyscore(deadLetterKey(o.queue), 0, now - keepS * 1000)
      .exec()
      .catch((e: unknown) => o.log(`dead-letter list: ${String(e)}`));
  });
  worker.on('error', (e) => o.log(`worker: ${e.message}`));

  const sweepQueue = new Queue(o.queue, { connection: connectionOf(o.redisUrl) });
  let sweeping: Promise<void> | null = null;
  const sweep = (): void => {
    if (sweeping) return; // the last one is still walking a long list
    sweeping = sweepExpired(sweepQueue)
      .then(
        (n) => (n > 0 ? o.log(`removed ${n} finished job${n === 1 ? '' : 's'} past their keep time`) : undefined),
        (e: unknown) => o.log(`sweep of expired jobs: ${e instanceof Error ? e.message : String(e)}`),
      )
      .finally(() => {
        sweeping = null;
      });
  };
  // setInterval takes at most 2^31-1 ms (24.8 days); beyond, Node would fire every millisecond.
  const sweepTimer = setInterval(sweep, Math.min(o.sweepMs, 2 ** 31 - 1));
  sweepTimer.unref();

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      clearInterval(sweepTimer);
      await worker.close();
      await sweeping;
      await sweepQueue.close();
      await host.stop();
      await redis.quit().catch(() => undefined);
    })());
  const done = worker.run().then(() => stop());
  await worker.waitUntilReady();
  sweep();
  o.log(`worker ${me}: ready (model ${host.arch}; queue ${o.queue} on ${publicRedisUrl(o.redisUrl)}; DICOMweb ${client.label})`);
  return { done, stop };
}

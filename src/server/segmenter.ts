/**
 * The model on its own thread: one worker (model-worker.ts) per model, a bounded queue in front of
 * it, and cancellation of jobs whose client went away. The event loop only posts messages, so
 * the server keeps answering while the model runs.
 */
import type { Worker } from 'node:worker_threads';
import type { Volume, VoxelArray } from '../io/index.ts';
import type { NodulePrompt, NoduleResult } from '../inference/index.ts';
import { HttpError } from './http-error.ts';
import { startWorkerThread } from './worker-start.ts';
import { fromWire as fromWireAt } from '../worker-thread.ts';
import type { Fault, FromWorker, ModelSummary, SharedScan, ToWorker, WireError, WorkerInit } from './worker-protocol.ts';

/** The worker dying (a native crash, out of memory) is retried this many times, then the model is gone. */
const MAX_RESTARTS = 3;

export interface SegmenterOptions {
  modelFile: string;
  threads: number | null;
  /** Jobs allowed to wait behind the running one; more get a 503. */
  maxQueue: number;
  log: (line: string) => void;
  /** Test hook: faults for the first jobs, in order (see NODULESEG_SERVE_FAULT in index.ts). */
  faults?: Fault[];
}

export interface SegmentOutput {
  /** Sorted voxel indices of the mask in the scan. */
  voxels: Int32Array;
  /** The same for the any-reader mask (null for a model without that level). */
  anyReaderVoxels: Int32Array | null;
  nodule: NoduleResult;
  /** Time in the model worker. */
  ms: number;
}

/** The job was dropped (or its result discarded) because its request went away: nobody to answer. */
export class Cancelled extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Cancelled';
  }
}

export interface SegmenterStatus {
  loaded: boolean;
  running: number;
  waiting: number;
  maxQueue: number;
  completed: number;
  failed: number;
  dropped: number;
  discarded: number;
  restarts: number;
}

interface Job {
  id: number;
  scanId: string;
  prompt: NodulePrompt;
  signal: AbortSignal | undefined;
  resolve: (out: SegmentOutput) => void;
  reject: (e: unknown) => void;
  detach: () => void;
}

/** The model worker (model-worker.ts) with its start-up data. */
function startWorker(init: WorkerInit): Worker {
  return startWorkerThread('model-worker', init);
}

/** An Error rebuilt from the worker's: a UserError stays one (a 4xx); anything else keeps its stack for the log. */
const fromWire = (e: WireError): Error => fromWireAt(e, 'model worker');

/** A copy of the volume whose voxels live in shared memory, so the worker reads them without a copy. */
export function shareVolume(volume: Volume): Volume {
  const src = volume.data;
  if (src.buffer instanceof SharedArrayBuffer) return volume;
  const shared = new SharedArrayBuffer(src.byteLength);
  new Uint8Array(shared).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  const Ctor = src.constructor as new (buffer: SharedArrayBuffer) => VoxelArray;
  return volume.withData(new Ctor(shared));
}

export class Segmenter {
  private worker: Worker | null = null;
  private ready = false;
  private closing = false;
  private readonly scans = new Map<string, SharedScan>();
  private readonly waiting: Job[] = [];
  private running: Job | null = null;
  private nextId = 1;
  private lastMs = 1000;
  private readonly faults: Fault[];
  private readonly counts = { completed: 0, failed: 0, dropped: 0, discarded: 0, restarts: 0 };

  private constructor(
    private readonly opts: SegmenterOptions,
    readonly model: ModelSummary,
  ) {
    this.faults = [...(opts.faults ?? [])];
  }

  /** Starts the worker and resolves once the model is loaded in it (a bad model file rejects). */
  static async start(opts: SegmenterOptions): Promise<Segmenter> {
    const worker = startWorker({ modelFile: opts.modelFile, threads: opts.threads });
    const model = await whenReady(worker);
    const s = new Segmenter(opts, model);
    s.attach(worker);
    return s;
  }

  /** Makes a scan available to the worker; `volume`'s voxels should be shared (see shareVolume). */
  openScan(scanId: string, volume: Volume): void {
    const scan: SharedScan = {
      data: shareVolume(volume).data,
      dims: volume.dims,
      spacingMm: volume.spacingMm,
      originMm: volume.originMm,
      direction: volume.direction,
      modality: volume.modality,
    };
    this.scans.set(scanId, scan);
    if (this.ready) this.send({ type: 'open', scanId, scan });
  }

  closeScan(scanId: string): void {
    if (!this.scans.delete(scanId)) return;
    if (this.ready) this.send({ type: 'close', scanId });
  }

  /**
   * Queues a segmentation. Rejects with a 503 HttpError when the queue is full, with Cancelled
   * when `signal` aborts (before the job starts: it is dropped; while it runs: its result is
   * discarded), with a UserError for the user's mistakes and with an Error for anything else.
   */
  segment(scanId: string, prompt: NodulePrompt, signal?: AbortSignal): Promise<SegmentOutput> {
    if (this.closing) return Promise.reject(new HttpError(503, 'the server is shutting down'));
    if (!this.ready && this.counts.restarts >= MAX_RESTARTS)
      return Promise.reject(new Error('the model worker has stopped for good; restart the server'));
    if (signal?.aborted) return Promise.reject(new Cancelled('the request went away before its job was queued'));
    if (this.waiting.length >= this.opts.maxQueue && (this.running || !this.ready)) {
      const waitS = Math.max(1, Math.ceil(((this.waiting.length + 1) * this.lastMs) / 1000));
      return Promise.reject(
        new HttpError(
          503,
          `busy: ${this.waiting.length + 1} segmentation${this.waiting.length ? 's' : ''} ahead of this one (at most ${this.opts.maxQueue} may wait); try again in a few seconds`,
          { 'retry-after': String(waitS) },
        ),
      );
    }
    return new Promise<SegmentOutput>((resolve, reject) => {
      const job: Job = { id: this.nextId++, scanId, prompt, signal, resolve, reject, detach: () => undefined };
      if (signal) {
        const onAbort = (): void => this.abort(job);
        signal.addEventListener('abort', onAbort, { once: true });
        job.detach = () => signal.removeEventListener('abort', onAbort);
      }
      this.waiting.push(job);
      this.pump();
    });
  }

  status(): SegmenterStatus {
    return {
      loaded: this.ready,
      running: this.running ? 1 : 0,
      waiting: this.waiting.length,
      maxQueue: this.opts.maxQueue,
      ...this.counts,
    };
  }

  /** Stops the worker; queued jobs are refused. */
  async close(): Promise<void> {
    this.closing = true;
    for (const job of this.waiting.splice(0)) this.settle(job, new HttpError(503, 'the server is shutting down'));
    if (this.running) this.settle(this.running, new HttpError(503, 'the server is shutting down'));
    this.running = null;
    this.scans.clear();
    await this.worker?.terminate();
  }

  private abort(job: Job): void {
    const k = this.waiting.indexOf(job);
    if (k >= 0) {
      this.waiting.splice(k, 1);
      this.counts.dropped++;
      this.opts.log(`segmentation ${job.id} dropped before it started: its client went away`);
      this.settle(job, new Cancelled('the request went away before its job started'));
    }
    // A running job cannot be stopped inside libtorch; its result is discarded when it arrives.
  }

  private settle(job: Job, result: SegmentOutput | unknown, ok = false): void {
    job.detach();
    if (ok) job.resolve(result as SegmentOutput);
    else job.reject(result);
  }

  private send(m: ToWorker): void {
    this.worker!.postMessage(m);
  }

  private pump(): void {
    if (this.running || !this.ready || this.closing) return;
    const job = this.waiting.shift();
    if (!job) return;
    if (!this.scans.has(job.scanId)) {
      // Closed (or pushed out by newer scans) while the job waited.
      this.settle(job, new HttpError(404, 'this scan is no longer open on the server; open it again'));
      this.pump();
      return;
    }
    this.running = job;
    this.send({ type: 'segment', jobId: job.id, scanId: job.scanId, prompt: job.prompt, fault: this.faults.shift() ?? null });
  }

  private attach(worker: Worker): void {
    this.worker = worker;
    this.ready = true;
    // Scans opened while a restarted worker was loading its model.
    for (const [scanId, scan] of this.scans) this.send({ type: 'open', scanId, scan });
    let crash: unknown = null;
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (e) => (crash = e));
    worker.on('exit', (code) => {
      if (this.worker !== worker) return;
      this.ready = false;
      this.worker = null;
      if (this.closing) return;
      const why = crash instanceof Error ? (crash.stack ?? crash.message) : `exit code ${code}`;
      this.opts.log(`the model worker stopped (${why})`);
      const job = this.running;
      this.running = null;
      if (job) {
        this.counts.failed++;
        this.settle(
          job,
          new Error(`the model worker stopped while segmenting (${crash instanceof Error ? crash.message : `exit code ${code}`})`),
        );
      }
      this.restart();
    });
  }

  private restart(): void {
    if (this.counts.restarts >= MAX_RESTARTS) {
      this.opts.log(`the model worker stopped ${MAX_RESTARTS + 1} times; segmentation is off until the server restarts`);
      for (const job of this.waiting.splice(0)) this.settle(job, new Error('the model worker has stopped for good'));
      return;
    }
    this.counts.restarts++;
    const worker = startWorker({ modelFile: this.opts.modelFile, threads: this.opts.threads });
    whenReady(worker).then(
      () => {
        if (this.closing) {
          void worker.terminate();
          return;
        }
        this.opts.log('the model worker is back');
        this.attach(worker);
        this.pump();
      },
      (e: unknown) => {
        this.opts.log(`the model worker could not restart: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        this.counts.restarts = MAX_RESTARTS;
        this.restart();
      },
    );
  }

  private onMessage(m: FromWorker): void {
    if (m.type !== 'done' && m.type !== 'failed') return;
    const job = this.running;
    if (!job || job.id !== m.jobId) return; // a job settled when the worker was thought lost
    this.running = null;
    if (m.type === 'done') this.lastMs = m.ms;
    if (job.signal?.aborted) {
      this.counts.discarded++;
      this.opts.log(`segmentation ${job.id} finished after its client went away: result discarded`);
      this.settle(job, new Cancelled('the request went away while its job ran'));
    } else if (m.type === 'done') {
      this.counts.completed++;
      this.settle(job, { voxels: m.voxels, anyReaderVoxels: m.anyReaderVoxels, nodule: m.nodule, ms: m.ms }, true);
    } else {
      this.counts.failed++;
      this.settle(job, fromWire(m.error));
    }
    this.pump();
  }
}

/** Resolves with the model's summary once the worker has loaded it; rejects if it fails or dies first. */
function whenReady(worker: Worker): Promise<ModelSummary> {
  return new Promise((resolve, reject) => {
    let failure: unknown = null;
    const onMessage = (m: FromWorker): void => {
      if (m.type === 'ready') {
        cleanup();
        resolve(m.model);
      } else if (m.type === 'startFailed') failure = fromWire(m.error);
    };
    const onError = (e: unknown): void => {
      failure ??= e;
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(failure ?? new Error(`the model worker exited (code ${code}) before loading the model`));
    };
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

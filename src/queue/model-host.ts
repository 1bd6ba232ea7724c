/** The main-thread side of the model thread (model-thread.ts): start it, run one job at a time. */
import type { Worker } from 'node:worker_threads';
import { startWorkerThread, fromWire as fromWireAt } from '../worker-thread.ts';
import type { FromModelThread, ModelThreadInit, ToModelThread, WireError } from './model-protocol.ts';

type SegmentRequest = Omit<Extract<ToModelThread, { type: 'segment' }>, 'type' | 'id'>;
export type SegmentReply = Omit<Extract<FromModelThread, { type: 'done' }>, 'type' | 'id'>;

/** The thread's entry: the compiled .js beside this file, or the .ts source through tsx. */
function startThread(init: ModelThreadInit): Worker {
  return startWorkerThread(import.meta.url, 'model-thread', init);
}

const fromWire = (e: WireError): Error => fromWireAt(e, 'model thread');

export class ModelHost {
  private thread: Worker | null = null;
  private nextId = 1;
  private pending = new Map<number, { resolve: (r: SegmentReply) => void; reject: (e: Error) => void }>();
  arch = '';

  constructor(private readonly init: ModelThreadInit) {}

  /** Starts the thread and waits for the model to load. */
  async start(): Promise<void> {
    const thread = startThread(this.init);
    this.thread = thread;
    await new Promise<void>((resolve, reject) => {
      const onExit = (code: number): void => reject(new Error(`model thread exited (code ${code}) while loading the model`));
      thread.once('exit', onExit);
      thread.once('error', reject);
      thread.on('message', (m: FromModelThread) => {
        if (m.type === 'ready') {
          this.arch = m.arch;
          thread.off('exit', onExit);
          thread.off('error', reject);
          resolve();
        } else if (m.type === 'startFailed') reject(fromWire(m.error));
        else if (m.type === 'done' || m.type === 'failed') {
          const p = this.pending.get(m.id);
          this.pending.delete(m.id);
          if (m.type === 'done')
            p?.resolve({
              seg: m.seg,
              sr: m.sr,
              nodules: m.nodules,
              studyInstanceUid: m.studyInstanceUid,
              seriesInstanceUid: m.seriesInstanceUid,
              ms: m.ms,
            });
          else p?.reject(fromWire(m.error));
        }
      });
    });
    // A crash of the thread (native abort, out of memory) fails what was running; the next job restarts it.
    thread.on('exit', (code) => {
      if (this.thread === thread) this.thread = null;
      for (const p of this.pending.values()) p.reject(new Error(`model thread exited (code ${code})`));
      this.pending.clear();
    });
  }

  async segment(req: SegmentRequest): Promise<SegmentReply> {
    if (!this.thread) await this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.thread!.postMessage({ type: 'segment', id, ...req } satisfies ToModelThread);
    });
  }

  async stop(): Promise<void> {
    const t = this.thread;
    this.thread = null;
    if (t) await t.terminate();
  }
}

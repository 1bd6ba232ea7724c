/** Starting the viewer's worker threads, from the compiled build or from the TypeScript sources. */
import type { Worker } from 'node:worker_threads';
import { startWorkerThread as startBeside } from '../worker-thread.ts';

/** A worker running `<name>.js` beside this file, or `<name>.ts` through tsx from the sources. */
export function startWorkerThread(name: string, workerData: unknown): Worker {
  return startBeside(import.meta.url, name, workerData);
}

/**
 * Worker threads of the compiled build or of the TypeScript sources, and errors across them: the
 * viewer's model worker, the queue's model thread and `segment`'s crop threads start the same way.
 */
import { Worker } from 'node:worker_threads';
import { isUserError, UserError } from './errors.ts';

/**
 * A worker running `<name>.js` beside the caller's module (`callerUrl`, its import.meta.url), or
 * `<name>.ts` through tsx when the caller runs from its sources.
 */
export function startWorkerThread(callerUrl: string, name: string, workerData: unknown): Worker {
  const fromSources = callerUrl.endsWith('.ts');
  const entry = new URL(`./${name}${fromSources ? '.ts' : '.js'}`, callerUrl);
  if (!fromSources) return new Worker(entry, { workerData });
  // Node 20 loads a worker's entry before hooks given by --import apply, so a .ts entry is
  // imported from a small bootstrap that registers tsx's loader in the worker first.
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(code, { eval: true, workerData });
}

/** An error as it crosses threads (structured clone keeps no class). */
export interface WireError {
  user: boolean;
  name: string;
  message: string;
  stack: string | null;
}

export function toWire(e: unknown): WireError {
  if (e instanceof Error) return { user: isUserError(e), name: e.name, message: e.message, stack: e.stack ?? null };
  return { user: false, name: 'Error', message: String(e), stack: null };
}

/** The error rebuilt: a UserError stays one; anything else keeps the thread's stack. */
export function fromWire(e: WireError, where: string): Error {
  if (e.user) return new UserError(e.message);
  const err = new Error(`${where}: ${e.name}: ${e.message}`);
  if (e.stack) err.stack = `${err.message}\n--- in the ${where} ---\n${e.stack}`;
  return err;
}

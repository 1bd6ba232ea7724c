/** Starting the viewer's worker threads, from the compiled build or from the TypeScript sources. */
import { Worker } from 'node:worker_threads';

/**
 * A worker running `<name>.js` beside this file, or `<name>.ts` through tsx when the server runs
 * from its sources.
 */
export function startWorkerThread(name: string, workerData: unknown): Worker {
  const fromSources = import.meta.url.endsWith('.ts');
  const entry = new URL(`./${name}${fromSources ? '.ts' : '.js'}`, import.meta.url);
  if (!fromSources) return new Worker(entry, { workerData });
  // Node 20 loads a worker's entry before hooks given by --import apply, so a .ts entry is
  // imported from a small bootstrap that registers tsx's loader in the worker first.
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(code, { eval: true, workerData });
}

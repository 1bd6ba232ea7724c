// Workers as real processes (bin/noduleseg worker) against the test Redis and Orthanc.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/data/paths.ts';
import { DICOMWEB_URL, REDIS_URL, authEnv } from '../pacs/helpers.ts';

export interface WorkerProc {
  proc: ChildProcess;
  lines: string[];
  /** Resolves with the first log line matching `re` (rejects after `timeoutMs`). */
  waitFor: (re: RegExp, timeoutMs?: number) => Promise<string>;
  exited: Promise<number | null>;
}

export function startWorkerProc(queue: string, extra: string[] = [], dicomweb: string = DICOMWEB_URL): WorkerProc {
  const proc = spawn(
    process.execPath,
    [join(REPO_ROOT, 'bin', 'noduleseg'), 'worker', '--dicomweb', dicomweb, '--queue', queue, ...extra],
    { cwd: REPO_ROOT, env: { ...process.env, ...authEnv, NODULESEG_REDIS_URL: REDIS_URL }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  let buf = '';
  proc.stderr!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const waitFor = (re: RegExp, timeoutMs = 120_000): Promise<string> => {
    const seen = lines.find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; log:\n${lines.join('\n')}`)),
        timeoutMs,
      );
      waiters.push({
        re,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      void exited.then((code) => reject(new Error(`worker exited (${code}) before a line matching ${re}; log:\n${lines.join('\n')}`)));
    });
  };
  return { proc, lines, waitFor, exited };
}

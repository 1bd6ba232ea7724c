/**
 * `--nproc n`: starts n local workers of the same command with torchrun's variables (a free
 * loopback port, WORLD_SIZE, RANK, LOCAL_RANK; OMP_NUM_THREADS = cores / n unless set), waits for
 * them, and fails when any fails. A worker that dies makes the others fail on their own within
 * seconds (their collectives lose the peer); those still running after a grace period are stopped,
 * as torchrun does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';

/** How long the other workers get to report the failure themselves before they are stopped. */
const GRACE_MS = 15_000;

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** argv without `--nproc n` / `--nproc=n` (the workers must not launch again). */
export function withoutNproc(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--nproc') {
      i++;
      continue;
    }
    if (a.startsWith('--nproc=')) continue;
    out.push(a);
  }
  return out;
}

export interface LaunchOptions {
  /** The command to run per worker: executable and arguments. */
  command: string;
  args: string[];
  env?: Record<string, string | undefined>;
  log?: (line: string) => void;
}

/** Runs nproc workers; resolves to 0 when all succeed, else the first failure's exit code (>= 1). */
export async function launchLocal(nproc: number, options: LaunchOptions): Promise<number> {
  const log = options.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const port = await freePort();
  const threads = Math.max(1, Math.floor(availableParallelism() / nproc));
  const base = { ...process.env, ...options.env };
  const children: ChildProcess[] = [];
  const exits: Promise<{ rank: number; code: number; signal: NodeJS.Signals | null }>[] = [];
  for (let rank = 0; rank < nproc; rank++) {
    const env = {
      ...base,
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(port),
      WORLD_SIZE: String(nproc),
      RANK: String(rank),
      LOCAL_RANK: String(rank),
      OMP_NUM_THREADS: base['OMP_NUM_THREADS'] ?? String(threads),
    };
    const child = spawn(options.command, options.args, { env, stdio: 'inherit' });
    children.push(child);
    exits.push(
      new Promise((resolve) => {
        child.once('exit', (code, signal) => resolve({ rank, code: code ?? 1, signal }));
        child.once('error', (e) => {
          log(`noduleseg: cannot start worker ${rank}: ${e.message}`);
          resolve({ rank, code: 1, signal: null });
        });
      }),
    );
  }
  const forward = (sig: NodeJS.Signals) => () => {
    for (const c of children) if (c.exitCode === null) c.kill(sig);
  };
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    let failure: { rank: number; code: number; signal: NodeJS.Signals | null } | null = null;
    let timer: NodeJS.Timeout | undefined;
    const pending = new Set(exits.map((_, i) => i));
    while (pending.size > 0) {
      const r = await Promise.race([...pending].map((i) => exits[i]!));
      pending.delete(r.rank);
      if ((r.code !== 0 || r.signal) && !failure) {
        failure = r;
        log(
          `noduleseg: worker rank ${r.rank} ${r.signal ? `was killed by ${r.signal}` : `exited with code ${r.code}`}; waiting up to ${GRACE_MS / 1000} s for the others to stop`,
        );
        timer = setTimeout(() => {
          for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
        }, GRACE_MS);
      }
    }
    if (timer) clearTimeout(timer);
    return failure ? Math.max(1, failure.code) : 0;
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}

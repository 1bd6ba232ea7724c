// Runs noduleseg command lines in a long-lived child process (test/property/child.ts), one at a
// time, with a time limit per command: a command past its limit is a hang, the child is killed
// and the next command gets a fresh one.
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { ChildReply, ChildRequest } from './child.ts';

export type RunOutcome =
  | ({ kind: 'done' } & ChildReply)
  | { kind: 'hang'; limitMs: number; stderr: string }
  | { kind: 'died'; exit: string; stderr: string };

export class CliChild {
  private child: ChildProcess | null = null;
  private nextId = 1;
  /** What the child printed outside the captured commands (crash traces, libtorch warnings). */
  private loose = '';

  private start(): ChildProcess {
    const c = fork(join(import.meta.dirname, 'child.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // One intra-op thread: the cases are tiny and CI has two cores.
      env: { ...process.env, OMP_NUM_THREADS: '1' },
    });
    c.stdout!.on('data', (b: Buffer) => (this.loose += b.toString()));
    c.stderr!.on('data', (b: Buffer) => (this.loose += b.toString()));
    this.child = c;
    return c;
  }

  run(args: readonly string[], limitMs: number): Promise<RunOutcome> {
    const c = this.child ?? this.start();
    const id = this.nextId++;
    this.loose = '';
    return new Promise((resolve) => {
      const finish = (o: RunOutcome) => {
        clearTimeout(timer);
        c.off('message', onMessage);
        c.off('exit', onExit);
        resolve(o);
      };
      const onMessage = (m: ChildReply) => {
        if (m.id === id) finish({ kind: 'done', ...m });
      };
      const onExit = (code: number | null, signal: string | null) => {
        this.child = null;
        finish({ kind: 'died', exit: signal ?? `code ${code}`, stderr: this.loose.slice(-2000) });
      };
      const timer = setTimeout(() => {
        c.off('exit', onExit);
        c.kill('SIGKILL');
        this.child = null;
        finish({ kind: 'hang', limitMs, stderr: this.loose.slice(-2000) });
      }, limitMs);
      c.on('message', onMessage);
      c.on('exit', onExit);
      c.send({ id, args: [...args] } satisfies ChildRequest);
    });
  }

  stop(): void {
    this.child?.kill('SIGKILL');
    this.child = null;
  }
}

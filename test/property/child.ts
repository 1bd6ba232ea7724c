// The child side of test/property/driver.ts: runs command lines one after another in this process
// (one tsx start-up and one model load per run, not per case), each with stdout and stderr
// captured, and answers over the IPC channel. A hang or a hard crash kills only this process.
import { main } from '../../src/cli/main.ts';

export interface ChildRequest {
  id: number;
  args: string[];
}

export interface ChildReply {
  id: number;
  /** The exit code main() returned; 99 when it threw (a crash, not a UserError). */
  code: number;
  stdout: string;
  stderr: string;
  elapsedMs: number;
}

const out = process.stdout.write.bind(process.stdout);
const err = process.stderr.write.bind(process.stderr);

process.on('message', (m: ChildRequest) => {
  void run(m).then((r) => process.send!(r));
});

async function run({ id, args }: ChildRequest): Promise<ChildReply> {
  let stdout = '';
  let stderr = '';
  const text = (s: string | Uint8Array) => (typeof s === 'string' ? s : Buffer.from(s).toString());
  process.stdout.write = ((s: string | Uint8Array) => {
    stdout += text(s);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => {
    stderr += text(s);
    return true;
  }) as typeof process.stderr.write;
  const t0 = performance.now();
  let code: number;
  try {
    code = await main(['node', 'noduleseg', ...args]);
  } catch (e) {
    code = 99;
    stderr += `CRASH ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  return { id, code, stdout, stderr, elapsedMs: performance.now() - t0 };
}

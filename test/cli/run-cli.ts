/** Runs the command line in-process (one tsx start-up for many cases) and captures its output. */
import { main } from '../../src/cli/main.ts';

export async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => ((stdout += typeof s === 'string' ? s : Buffer.from(s).toString()), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => ((stderr += typeof s === 'string' ? s : Buffer.from(s).toString()), true)) as typeof process.stderr.write;
  try {
    const code = await main(['node', 'noduleseg', ...args]);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

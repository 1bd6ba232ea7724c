// Runs several command lines in one process (one tsx start-up instead of one per case) and
// writes each one's exit code and output to a JSON file. Used by the io tests:
//   node --import tsx test/io/cli-runner.ts <cases.json> <results.json>
// where cases.json is string[][] (argv after "noduleseg").
import { readFileSync, writeFileSync } from 'node:fs';
import { main } from '../../src/cli/main.ts';

const [casesPath, resultsPath] = process.argv.slice(2) as [string, string];
const cases = JSON.parse(readFileSync(casesPath, 'utf8')) as string[][];
const results: Array<{ code: number; stdout: string; stderr: string }> = [];
const out = process.stdout.write.bind(process.stdout);
const err = process.stderr.write.bind(process.stderr);
for (const args of cases) {
  let stdout = '';
  let stderr = '';
  process.stdout.write = ((s: string | Uint8Array) => {
    stdout += typeof s === 'string' ? s : Buffer.from(s).toString();
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => {
    stderr += typeof s === 'string' ? s : Buffer.from(s).toString();
    return true;
  }) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(['node', 'noduleseg', ...args]);
  } catch (e) {
    code = 99; // a crash (not a UserError): the test reports it
    stderr += `CRASH ${e instanceof Error ? e.stack : String(e)}`;
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  results.push({ code, stdout, stderr });
}
writeFileSync(resultsPath, JSON.stringify(results));

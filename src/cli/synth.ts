import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { writeSynthSet } from '../synth/index.ts';

interface SynthCliOptions {
  output: string;
  count: string;
  seed: string;
  valFraction: string;
}

function parseIntStrict(flag: string, v: string, min: number): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new UserError(`${flag}: expected an integer >= ${min}, got "${v}"`);
  return n;
}

export function register(program: Command): void {
  program
    .command('synth')
    .description('write synthetic CT nodule crops with exact masks (lidc-crops layout: image/, mask/, metadata.csv, splits.csv)')
    .requiredOption('-o, --output <dir>', 'new (or empty) folder for the set')
    .option('-n, --count <n>', 'number of nodules', '100')
    .option('--seed <n>', 'seed (same seed, same set)', '1')
    .option('--val-fraction <f>', 'share of cases marked val in splits.csv', '0.2')
    .action((opts: SynthCliOptions) => {
      const count = parseIntStrict('--count', opts.count, 1);
      const seed = parseIntStrict('--seed', opts.seed, 0);
      const vf = Number(opts.valFraction);
      if (opts.valFraction.trim() === '' || !(vf >= 0 && vf < 1)) throw new UserError(`--val-fraction: expected a number in [0, 1), got "${opts.valFraction}"`);
      const t0 = performance.now();
      const r = writeSynthSet(opts.output, {
        count,
        seed,
        valFraction: vf,
        onCase: (d, n) => {
          if (d % 50 === 0 || d === n) process.stderr.write(`synth: ${d}/${n}\n`);
        },
      });
      process.stderr.write(`synth: ${r.cases} crops (${r.train} train, ${r.val} val) in ${opts.output} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
    });
}

import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { intAtLeastArg, numberInArg } from './args.ts';

interface SynthCliOptions {
  output: string;
  count: string;
  seed: string;
  valFraction: string;
}

export function register(program: Command): void {
  program
    .command('synth')
    .description('write synthetic CT nodule crops with exact masks (lidc-crops layout: image/, mask/, metadata.csv, splits.csv)')
    .requiredOption('-o, --output <dir>', 'new (or empty) folder for the set')
    .option('-n, --count <n>', 'number of nodules', '100')
    .option('--seed <n>', 'seed (same seed, same set)', '1')
    .option('--val-fraction <f>', 'share of cases marked val in splits.csv', '0.2')
    .action(async (opts: SynthCliOptions) => {
      const count = intAtLeastArg('--count', 1)(opts.count);
      const seed = intAtLeastArg('--seed', 0)(opts.seed);
      const vf = numberInArg('--val-fraction', 0, 1, false, true)(opts.valFraction);
      // The set goes into a new or empty folder (writeSynthSet refuses a non-empty one), so it can
      // replace nothing; a file there is refused here in one line.
      if (existsSync(opts.output) && !statSync(opts.output).isDirectory())
        throw new UserError(`${opts.output}: is a file, expected a new or empty folder`);
      const { writeSynthSet } = await import('../synth/index.ts');
      const t0 = performance.now();
      const r = writeSynthSet(opts.output, {
        count,
        seed,
        valFraction: vf,
        onCase: (d, n) => {
          if (d % 50 === 0 || d === n) process.stderr.write(`synth: ${d}/${n}\n`);
        },
      });
      process.stderr.write(
        `synth: ${r.cases} crops (${r.train} train, ${r.val} val) in ${opts.output} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`,
      );
    });
}

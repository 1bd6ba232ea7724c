import type { Command } from 'commander';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { writeFilesAtomicSet } from '../io/atomic.ts';
import { imageStem, isImagePath } from '../io/formats.ts';
import { refuseOutputsOverInputs } from '../io/guard.ts';
import { makeProgress } from './progress.ts';

export function register(program: Command): void {
  program
    .command('eval')
    .description('per-nodule 3D metrics (Dice, sensitivity, precision, IoU, HD95, volume error) of predicted masks against references')
    .requiredOption('--pred <dir>', 'folder of predicted masks')
    .requiredOption('--ref <dir>', 'folder of reference masks (matched by file name)')
    .option('--csv <file>', 'write per-nodule metrics as CSV')
    .option('--md <file>', 'write the summary as a markdown table')
    .action(async (opts: { pred: string; ref: string; csv?: string; md?: string }) => {
      for (const d of [opts.pred, opts.ref]) {
        if (!existsSync(d) || !statSync(d).isDirectory()) throw new UserError(`${d}: not a folder`);
      }
      refuseOutputsOverInputs([opts.csv, opts.md], [opts.pred, opts.ref]);
      // Loaded here, not at start-up: the other commands and --help do without them.
      const { readVolume } = await import('../io/read.ts');
      const { MetricAccumulator, metricsCsv, segmentationMetrics, summaryMarkdown } = await import('../metrics/index.ts');
      const stem = imageStem;
      const refs = new Map(
        readdirSync(opts.ref)
          .filter(isImagePath)
          .map((f) => [stem(f), f]),
      );
      const preds = readdirSync(opts.pred).filter(isImagePath);
      const pairs = preds.filter((f) => refs.has(stem(f)));
      if (pairs.length === 0) throw new UserError(`${opts.pred}: no predicted mask has a reference of the same name in ${opts.ref}`);
      const missing = [...refs.keys()].filter((k) => !preds.some((f) => stem(f) === k));
      const acc = new MetricAccumulator();
      const progress = makeProgress();
      progress.start(pairs.length, 'evaluating');
      for (const [n, f] of pairs.entries()) {
        const pred = await readVolume(join(opts.pred, f));
        const ref = await readVolume(join(opts.ref, refs.get(stem(f))!));
        if (!pred.sameGrid(ref))
          throw new UserError(`${join(opts.pred, f)}: not on the grid of its reference ${join(opts.ref, refs.get(stem(f))!)}`);
        acc.update(stem(f), segmentationMetrics(pred, ref));
        progress.update(n + 1);
      }
      progress.stop();
      const md = summaryMarkdown(acc.aggregate());
      // Both or neither: a failed --md must not leave the --csv behind.
      writeFilesAtomicSet([
        ...(opts.csv ? [[opts.csv, metricsCsv(acc.cases)] as const] : []),
        ...(opts.md ? [[opts.md, md] as const] : []),
      ]);
      process.stdout.write(`${pairs.length} nodules\n\n${md}`);
      if (missing.length)
        process.stderr.write(
          `warning: ${missing.length} reference masks have no prediction (not counted): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}\n`,
        );
    });
}

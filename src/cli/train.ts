import type { Command } from 'commander';
import { join } from 'node:path';
import { loadTrainConfig } from '../train/config.ts';
import { train } from '../train/trainer.ts';
import { loadScanNegatives, loadValScans } from '../train/scans.ts';
import { parseFoldSpec } from '../data/index.ts';
import { UserError } from '../errors.ts';
import { makeProgress } from './progress.ts';
import { nonNegativeIntArg, positiveIntArg, positiveNumberArg } from './args.ts';
import { addDataParallelOptions, runDataParallel, type DataParallelCliOptions } from '../distributed/cli.ts';

export function register(program: Command): void {
  const cmd = program
    .command('train')
    .description('train a model from a JSON config on lidc-crops (validation on val each epoch)')
    .requiredOption('-c, --config <file>', 'training config (JSON); see configs/')
    .option('-o, --out <dir>', 'output folder (default runs/<config name>)')
    .option(
      '--resume',
      "continue from <out>/latest.ckpt.safetensors (the config must be the checkpoint's, but for epochs, maxSteps, timeBudgetMinutes, threads, valEvery)",
    )
    .option('--force', "with --resume: go on even though the config differs from the checkpoint's")
    .option('--epochs <n>', 'override the number of epochs', positiveIntArg('--epochs'))
    .option('--time-budget <minutes>', 'stop after this many minutes of training', positiveNumberArg('--time-budget'))
    .option('--seed <n>', 'override the seed', nonNegativeIntArg('--seed'))
    .option('--threads <n>', 'intra-op threads (default: all cores)', nonNegativeIntArg('--threads'))
    .option(
      '--fold <i/k>',
      'cross-validation: train on train + val except fold i of k (patient-level, stratified by type), validate on fold i',
    )
    .option('--fold-seed <n>', 'seed of the fold assignment', nonNegativeIntArg('--fold-seed'), 1);
  addDataParallelOptions(cmd).action(
    async (
      opts: {
        config: string;
        out?: string;
        resume?: boolean;
        force?: boolean;
        epochs?: number;
        timeBudget?: number;
        seed?: number;
        threads?: number;
        fold?: string;
        foldSeed: number;
      } & DataParallelCliOptions,
    ) => {
      const cfg = loadTrainConfig(opts.config);
      if (opts.epochs !== undefined) cfg.epochs = opts.epochs;
      if (opts.timeBudget !== undefined) cfg.timeBudgetMinutes = opts.timeBudget;
      if (opts.seed !== undefined) cfg.seed = opts.seed;
      if (opts.threads !== undefined) cfg.threads = opts.threads;
      if (opts.fold !== undefined) {
        const f = parseFoldSpec(opts.fold);
        if (!f) throw new UserError(`--fold: expected i/k with 1 <= i <= k and k >= 2, got "${opts.fold}"`);
        cfg.fold = { ...f, seed: opts.foldSeed };
      }
      const outDir = opts.out ?? join('runs', cfg.name);
      // Data-parallel under a launcher or with --nproc; the body is one worker's part.
      await runDataParallel(opts, async (distributed, isMain) => {
        const progress = makeProgress();
        const log = (s: string) => {
          if (isMain) process.stderr.write(s + '\n');
        };
        const negatives = await loadScanNegatives(cfg, log);
        const valScans = await loadValScans(cfg);
        const result = train(cfg, {
          distributed,
          negatives,
          valScans,
          outDir,
          resume: opts.resume ?? false,
          forceResume: opts.force ?? false,
          command: `noduleseg ${process.argv.slice(2).join(' ')}`,
          events: {
            onMessage: log,
            onEpochStart: (e, n, steps) => progress.start(steps, `epoch ${e}/${n}`),
            onStep: (s, _n, info) => progress.update(s, `loss ${info.loss.toFixed(4)} ${info.samplesPerSecond.toFixed(1)} samples/s`),
            onEpochEnd: (r, best) => {
              progress.stop();
              const byType = r.valDiceByType
                ? Object.entries(r.valDiceByType)
                    .map(([k, v]) => `${k} ${v.toFixed(3)}`)
                    .join(', ')
                : '';
              const scans = r.valScanDice !== undefined ? ` whole-scan points ${r.valScanDice.toFixed(4)}` : '';
              const val =
                r.valDice !== undefined
                  ? ` val dice ${r.valDice.toFixed(4)} sens ${r.valSensitivity!.toFixed(4)} prec ${r.valPrecision!.toFixed(4)}${byType ? ` (${byType})` : ''}${scans}${best ? ' (best)' : ''}`
                  : '';
              log(
                `epoch ${r.epoch}: loss ${r.trainLoss.toFixed(4)} lr ${r.lr.toExponential(2)} ${r.samplesPerSecond.toFixed(1)} samples/s ${r.seconds.toFixed(0)} s${val}`,
              );
            },
          },
        });
        if (isMain)
          log(
            `best val Dice ${result.bestValDice.toFixed(4)} at epoch ${result.bestEpoch}; model: ${result.bestModelPath}; ${(result.trainSeconds / 60).toFixed(1)} min of training`,
          );
      });
    },
  );
}

import type { Command } from 'commander';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { refuseOutputsOverInputs } from '../io/guard.ts';
import type { TrainerEvents } from '../train/trainer.ts';
import type { FinetuneSettings } from '../transfer/index.ts';
import { makeProgress } from './progress.ts';
import { nonNegativeIntArg, numberInArg, positiveIntArg } from './args.ts';
import { addDataParallelOptions, runDataParallel, type DataParallelCliOptions } from '../distributed/cli.ts';

interface FinetuneCliOptions extends DataParallelCliOptions {
  from: string;
  data: string;
  freeze: string;
  output: string;
  epochs?: number;
  steps?: number;
  lr?: number;
  lrDecay?: number;
  batchSize?: number;
  seed?: number;
  threads?: number;
  valFraction?: number;
  folds?: number;
  candidates?: string;
  slices?: string;
  workDir?: string;
}

/**
 * DEFAULT_FINETUNE's epochs, lr and batch size for the help text: src/transfer loads libtorch,
 * which --help must not (a test checks the two agree).
 */
export const HELP_DEFAULTS = { epochs: 10, lr: 3e-4, batchSize: 16 } as const;

export function register(program: Command): void {
  const cmd = program
    .command('finetune')
    .description('fine-tune a model on your own crops with some layers frozen (or --freeze auto to pick the strategy by cross-validation)')
    .requiredOption('--from <weights>', 'the model to start from (.safetensors model file, e.g. models/noduleseg.safetensors)')
    .requiredOption('--data <dir>', 'folder with image/ and mask/ NIfTI crops like lidc-crops (splits.csv optional)')
    .requiredOption('--freeze <strategy>', 'none | stem | encoder:K | encoder | classifier | all-but-head | auto')
    .option('-o, --output <file>', 'the fine-tuned model file', 'finetuned.safetensors')
    .option('--epochs <n>', `training epochs (default ${HELP_DEFAULTS.epochs})`, positiveIntArg('--epochs'))
    .option('--steps <n>', 'a fixed number of optimizer steps instead of --epochs', positiveIntArg('--steps'))
    .option('--lr <x>', `learning rate of the top layers (default ${HELP_DEFAULTS.lr})`, numberInArg('--lr', 0, 1, true, false))
    .option(
      '--lr-decay <f>',
      'discriminative rates: each encoder stage, deeper to shallower, trains at f times the one above (default 1)',
      numberInArg('--lr-decay', 0, 1, true, false),
    )
    .option('--batch-size <n>', `slices per step (default ${HELP_DEFAULTS.batchSize})`, positiveIntArg('--batch-size'))
    .option('--seed <n>', 'seed of the split, the folds and training (default 1)', nonNegativeIntArg('--seed'))
    .option('--threads <n>', 'intra-op threads (default: all cores)', positiveIntArg('--threads'))
    .option(
      '--val-fraction <f>',
      'without splits.csv: share of the patients held out for validation (default 0.2)',
      numberInArg('--val-fraction', 0, 1, true, true),
    )
    .option('--folds <k>', 'auto: cross-validation folds (default 3)', positiveIntArg('--folds'))
    .option('--candidates <list>', 'auto: comma-separated strategies to compare (default: all that fit the model)')
    .option('--slices <which>', 'training slices: all, or only those with nodule (default all)')
    .option('--work-dir <dir>', 'keep the run folder (checkpoints, log, curves) here instead of a temporary one');
  addDataParallelOptions(cmd).action(async (opts: FinetuneCliOptions) => {
    await runFinetune(opts);
  });
}

async function runFinetune(opts: FinetuneCliOptions): Promise<void> {
  // Every argument is checked before any work, so a mistake costs nothing and writes nothing.
  if (!/\.safetensors$/i.test(opts.output)) throw new UserError(`${opts.output}: the output must end in .safetensors`);
  if (existsSync(opts.output) && statSync(opts.output).isDirectory()) throw new UserError(`${opts.output}: is a folder`);
  if (!existsSync(dirname(resolve(opts.output)))) throw new UserError(`${opts.output}: its folder does not exist`);
  refuseOutputsOverInputs([opts.output, opts.workDir], [opts.from, opts.data]);
  // Loaded here, not at start-up: libtorch and the trainer are for this command only.
  const { setNumThreads } = await import('../tensor/index.ts');
  const {
    autoFinetune,
    checkStrategy,
    DEFAULT_FINETUNE,
    disposeSourceModel,
    finetune,
    loadCropFolder,
    loadSourceModel,
    parseStrategy,
    splitByPatient,
  } = await import('../transfer/index.ts');
  const auto = opts.freeze.trim() === 'auto';
  const strategy = auto ? null : parseStrategy(opts.freeze);
  if (!auto && (opts.folds !== undefined || opts.candidates !== undefined))
    throw new UserError('--folds and --candidates go with --freeze auto');
  if (auto && opts.valFraction !== undefined)
    throw new UserError('--val-fraction does not apply to --freeze auto (it cross-validates on all the cases)');
  if (opts.slices !== undefined && opts.slices !== 'all' && opts.slices !== 'nodule')
    throw new UserError(`--slices: expected all or nodule, got "${opts.slices}"`);
  if (opts.folds !== undefined && opts.folds < 2) throw new UserError(`--folds: expected an integer >= 2, got ${opts.folds}`);
  const settings: FinetuneSettings = {
    ...DEFAULT_FINETUNE,
    ...(opts.epochs !== undefined ? { epochs: opts.epochs } : {}),
    maxSteps: opts.steps ?? null,
    ...(opts.lr !== undefined ? { lr: opts.lr } : {}),
    ...(opts.lrDecay !== undefined ? { lrDecay: opts.lrDecay } : {}),
    ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
    sliceSelection: (opts.slices as 'all' | 'nodule' | undefined) ?? DEFAULT_FINETUNE.sliceSelection,
  };
  if (settings.threads > 0) setNumThreads(settings.threads);
  // Data-parallel under a launcher or with --nproc; the body is one worker's part (rank 0 reports and writes).
  await runDataParallel(opts, async (distributed, isMain) => {
    const source = loadSourceModel(opts.from);
    const log = (s: string) => {
      if (isMain) process.stderr.write(s + '\n');
    };
    const workDir = opts.workDir ?? mkdtempSync(join(tmpdir(), 'noduleseg-finetune-'));
    const command = `noduleseg ${process.argv.slice(2).join(' ')}`;
    try {
      if (strategy) checkStrategy(source.info, strategy);
      const folder = loadCropFolder(opts.data);
      const data = resolve(opts.data);
      let bestModel: string;
      if (auto) {
        const candidates = opts.candidates
          ?.split(',')
          .map((s) => s.trim())
          .filter((s) => s.length > 0);
        if (candidates && candidates.length === 0) throw new UserError('--candidates: empty list');
        const r = autoFinetune({
          source,
          cases: folder.cases,
          ...(candidates ? { candidates } : {}),
          folds: opts.folds ?? 3,
          settings,
          data,
          outDir: workDir,
          print: (line) => {
            if (isMain) process.stdout.write(line + '\n');
          },
          onRun: (s, f, k) => log(`auto: ${s}, fold ${f}/${k}`),
          command,
          distributed,
        });
        bestModel = r.final.bestModelPath;
      } else {
        if (folder.hasSplits && opts.valFraction !== undefined)
          throw new UserError(`--val-fraction: ${opts.data} has a splits.csv, which sets the split`);
        const cases = folder.hasSplits
          ? { train: folder.cases.filter((c) => c.split === 'train'), val: folder.cases.filter((c) => c.split === 'val') }
          : splitByPatient(folder.cases, opts.valFraction ?? 0.2, settings.seed);
        if (cases.train.length === 0) throw new UserError(`${opts.data}: no training cases`);
        log(
          `fine-tuning ${opts.from} with --freeze ${opts.freeze}${settings.lrDecay !== 1 ? ` --lr-decay ${settings.lrDecay}` : ''}: ${cases.train.length} train / ${cases.val.length} val nodules`,
        );
        const r = finetune({
          source,
          strategy: strategy!,
          cases,
          data,
          settings,
          outDir: workDir,
          events: trainEvents(log),
          command,
          distributed,
        });
        log(`frozen: ${r.frozenParameters.length} parameter tensors; trained: ${r.trainableParameters.length}`);
        if (r.bestEpoch < 0) throw new UserError('validation Dice was undefined at every epoch: no model to save');
        log(
          cases.val.length > 0
            ? `best val Dice ${r.bestValDice.toFixed(4)} at epoch ${r.bestEpoch}`
            : `trained ${r.epochs} epochs (no validation cases)`,
        );
        bestModel = r.bestModelPath;
      }
      if (isMain) writeFileAtomic(opts.output, readFileSync(bestModel));
      log(`model: ${opts.output}`);
    } finally {
      disposeSourceModel(source);
      if (!opts.workDir) rmSync(workDir, { recursive: true, force: true });
    }
  });
}

function trainEvents(log: (s: string) => void): TrainerEvents {
  const progress = makeProgress();
  return {
    onMessage: log,
    onEpochStart: (e, n, steps) => progress.start(steps, `epoch ${e}/${n}`),
    onStep: (s, _n, info) => progress.update(s, `loss ${info.loss.toFixed(4)}`),
    onEpochEnd: (r, best) => {
      progress.stop();
      const val = r.valDice !== undefined ? ` val dice ${r.valDice.toFixed(4)}${best ? ' (best)' : ''}` : '';
      log(`epoch ${r.epoch}: loss ${r.trainLoss.toFixed(4)} lr ${r.lr.toExponential(2)} ${r.seconds.toFixed(0)} s${val}`);
    },
  };
}

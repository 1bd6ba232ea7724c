/**
 * The transfer-learning experiment of docs/transfer.md, on one thread, resumable.
 *
 *   node --import tsx scripts/transfer-experiment.ts [--out runs/transfer] [--tiny]
 *
 * Target: small subsets (25 and 50 nodules) of the thin-slice (slice spacing <= 1.5 mm) LIDC
 * `train` crops, evaluated on every thin-slice `val` crop. Sources: a synthetic set made by
 * src/synth, and the thick-slice (> 1.5 mm) LIDC `train` crops. For each subset size and seed:
 * training from scratch, and fine-tuning from each source with every freezing strategy (and
 * discriminative rates), all with the same fixed number of steps.
 *
 * Every run writes <out>/results/<run>.json when it ends; a run whose file exists is skipped, and
 * an interrupted pretraining resumes from its checkpoint, so a killed experiment is restarted with
 * the same command. At the end scripts/transfer-table.ts fills docs/transfer.md from the results.
 * --tiny: 1 seed, 1 size, one strategy, a few steps (checks the pipeline end to end in minutes).
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadCrops, mixSeed, mulberry32, shuffle, type CropCase } from '../src/data/index.ts';
import { writeFileAtomic } from '../src/io/atomic.ts';
import { defaultJointConfig, loadModel } from '../src/models/index.ts';
import { evaluateOnCrops } from '../src/eval/crops.ts';
import { setNumThreads } from '../src/tensor/index.ts';
import { writeSynthSet } from '../src/synth/index.ts';
import { DEFAULT_TRAIN, type TrainConfig } from '../src/train/config.ts';
import { train, type TrainResult } from '../src/train/trainer.ts';
import {
  DEFAULT_FINETUNE,
  disposeSourceModel,
  finetune,
  loadCropFolder,
  loadSourceModel,
  parseStrategy,
  type SourceModel,
} from '../src/transfer/index.ts';
import { writeTransferTable } from './transfer-table.ts';

const { values: args } = parseArgs({
  options: {
    out: { type: 'string', default: 'runs/transfer' },
    tiny: { type: 'boolean', default: false },
    docs: { type: 'string', default: 'docs/transfer.md' },
    // Overrides of the plan below (partial or exploratory runs; the documented run uses none).
    seeds: { type: 'string' },
    sizes: { type: 'string' },
    strategies: { type: 'string' },
    steps: { type: 'string' },
    'pretrain-steps': { type: 'string' },
    'pretrain-minutes': { type: 'string' },
    'synth-count': { type: 'string' },
    'val-limit': { type: 'string' },
    'scratch-factors': { type: 'string' },
  },
});
const nums = (v: string | undefined): number[] | undefined => v?.split(',').map(Number);
const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));

const TINY = args.tiny;
const OUT = resolve(args.out);
/** Sizing (docs/transfer.md, "Sizing"): measured on this 2-core machine, one thread. */
const PLAN = {
  seeds: nums(args.seeds) ?? (TINY ? [1] : [1, 2, 3]),
  sizes: nums(args.sizes) ?? (TINY ? [25] : [25, 50]),
  /** Variants: a strategy name, or "none@0.5" = no freezing with --lr-decay 0.5. */
  strategies:
    args.strategies?.split(',') ??
    (TINY ? ['encoder:2'] : ['none', 'stem', 'encoder:2', 'encoder', 'classifier', 'all-but-head', 'none@0.5']),
  sources: ['synthetic', 'lidc-thick'] as const,
  /** Optimizer steps of every target run (scratch and fine-tunes alike), batch 16. */
  steps: num(args.steps) ?? (TINY ? 3 : 32),
  /** Longer scratch baselines, with these many times the steps (scratch cannot learn much in 32). */
  scratchLongFactors: nums(args['scratch-factors']) ?? [4],
  batchSize: 16,
  /** One optimizer setting for every target run: only the start and the freezing differ. */
  lr: 1e-3,
  synthCount: num(args['synth-count']) ?? (TINY ? 24 : 200),
  pretrainSteps: num(args['pretrain-steps']) ?? (TINY ? 6 : 800),
  pretrainMinutes: num(args['pretrain-minutes']) ?? (TINY ? 0.3 : 6),
  /** Validation cases of each pretraining (its own held-out set, never the target's). */
  pretrainVal: TINY ? 4 : 24,
};
const THIN_MAX_MM = 1.5;

/** The experiment's network: the joint model at half the shipped width (fits the time budget). */
const MODEL = defaultJointConfig({ features: [8, 16, 32, 64, 128], clsFeatures: [4, 8, 16, 32, 64] });

function baseConfig(name: string, over: Partial<TrainConfig>): TrainConfig {
  return {
    ...DEFAULT_TRAIN,
    name,
    model: MODEL,
    sliceSelection: 'all',
    batchSize: PLAN.batchSize,
    threads: 1,
    valEvery: Number.MAX_SAFE_INTEGER,
    ...over,
  };
}

const log = (s: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);

function isThin(c: CropCase): boolean {
  return c.image.spacingMm[2] <= THIN_MAX_MM;
}

/** Pretrains a source once (resuming an interrupted run); returns its best model file. */
function pretrain(name: string, cases: { train: CropCase[]; val: CropCase[] }): string {
  const dir = join(OUT, `pretrain-${name}`);
  const done = join(dir, 'done.json');
  if (existsSync(done)) return (JSON.parse(readFileSync(done, 'utf8')) as { model: string }).model;
  log(
    `pretraining ${name}: ${cases.train.length} train / ${cases.val.length} val crops, up to ${PLAN.pretrainSteps} steps or ${PLAN.pretrainMinutes} min`,
  );
  const t0 = performance.now();
  const cfg = baseConfig(`pretrain-${name}`, {
    maxSteps: PLAN.pretrainSteps,
    timeBudgetMinutes: PLAN.pretrainMinutes,
    optimizer: { kind: 'adam', lr: 1e-3, weightDecay: 0 },
    schedule: { kind: 'cosine', warmupEpochs: 0.2, minLrFactor: 0.01 },
    valEvery: 1,
    seed: 1,
  });
  const r = train(cfg, {
    outDir: dir,
    resume: true,
    cases,
    dataDescription: `transfer experiment source "${name}"`,
    events: {
      onEpochEnd: (rec) =>
        log(
          `  ${name} epoch ${rec.epoch}: loss ${rec.trainLoss.toFixed(3)} val Dice ${rec.valDice?.toFixed(4) ?? '-'} (${rec.seconds.toFixed(0)} s)`,
        ),
    },
  });
  writeFileAtomic(
    done,
    JSON.stringify(
      {
        model: r.bestModelPath,
        bestValDice: r.bestValDice,
        bestEpoch: r.bestEpoch,
        trainSeconds: r.trainSeconds,
        wallSeconds: (performance.now() - t0) / 1000,
      },
      null,
      2,
    ) + '\n',
  );
  return r.bestModelPath;
}

export interface RunResult {
  size: number;
  seed: number;
  source: string;
  strategy: string;
  lrDecay: number;
  steps: number;
  valCases: number;
  valDice: number;
  valSensitivity: number;
  valPrecision: number;
  trainSeconds: number;
  wallSeconds: number;
}

function record(
  file: string,
  base: Omit<RunResult, 'valDice' | 'valSensitivity' | 'valPrecision' | 'trainSeconds' | 'wallSeconds'>,
  r: TrainResult,
  t0: number,
): void {
  const last = r.log.at(-1)!;
  const res: RunResult = {
    ...base,
    valDice: last.valDice ?? Number.NaN,
    valSensitivity: last.valSensitivity ?? Number.NaN,
    valPrecision: last.valPrecision ?? Number.NaN,
    trainSeconds: r.trainSeconds,
    wallSeconds: (performance.now() - t0) / 1000,
  };
  writeFileAtomic(file, JSON.stringify(res, null, 2) + '\n');
  log(
    `  ${base.size} nodules, seed ${base.seed}, ${base.source} ${base.strategy}: val Dice ${res.valDice.toFixed(4)} (${res.wallSeconds.toFixed(0)} s)`,
  );
}

function main(): void {
  setNumThreads(1);
  mkdirSync(join(OUT, 'results'), { recursive: true });
  const tStart = performance.now();
  const all = loadCrops();
  const thinTrain = all.filter((c) => c.split === 'train' && isThin(c));
  const thickTrain = all.filter((c) => c.split === 'train' && !isThin(c));
  const thinVal = all.filter((c) => c.split === 'val' && isThin(c));
  const thickVal = all.filter((c) => c.split === 'val' && !isThin(c));
  const valLimit = num(args['val-limit']) ?? (TINY ? 6 : undefined);
  const evalCases = valLimit !== undefined ? thinVal.slice(0, valLimit) : thinVal;
  log(
    `LIDC: ${thinTrain.length} thin / ${thickTrain.length} thick train crops; ${thinVal.length} thin / ${thickVal.length} thick val crops; evaluating on ${evalCases.length} thin val crops`,
  );

  const synthDir = join(OUT, 'synthetic-data');
  if (!existsSync(join(synthDir, 'splits.csv'))) {
    log(`writing ${PLAN.synthCount} synthetic crops`);
    rmSync(synthDir, { recursive: true, force: true });
    writeSynthSet(synthDir, { count: PLAN.synthCount, seed: 2026, valFraction: Math.min(0.12, PLAN.pretrainVal / PLAN.synthCount) });
  }
  const synth = loadCropFolder(synthDir).cases;
  const sourceFiles: Record<(typeof PLAN.sources)[number], string> = {
    synthetic: pretrain('synthetic', { train: synth.filter((c) => c.split === 'train'), val: synth.filter((c) => c.split === 'val') }),
    'lidc-thick': pretrain('lidc-thick', { train: TINY ? thickTrain.slice(0, 20) : thickTrain, val: thickVal.slice(0, PLAN.pretrainVal) }),
  };
  const sources = new Map<string, SourceModel>(Object.entries(sourceFiles).map(([k, f]) => [k, loadSourceModel(f)]));

  const tmp = join(OUT, 'tmp');
  for (const seed of PLAN.seeds) {
    // Nested subsets: the 25 are the first half of the 50 of the same seed.
    const order = shuffle([...thinTrain], mulberry32(mixSeed(seed, 0x7a26e7)));
    for (const size of PLAN.sizes) {
      const subset = order.slice(0, size);
      const cases = { train: subset, val: evalCases };
      const runs: Array<{ source: string; strategy: string }> = [
        { source: 'scratch', strategy: 'scratch' },
        ...PLAN.scratchLongFactors.map((f) => ({ source: 'scratch', strategy: `scratch-x${f}` })),
      ];
      // 'as-is': the source model on the target's val set without any fine-tuning (0 steps).
      for (const source of PLAN.sources) for (const strategy of ['as-is', ...PLAN.strategies]) runs.push({ source, strategy });
      for (const run of runs) {
        const file = join(OUT, 'results', `${size}-${run.source}-${run.strategy.replace(/[:@]/g, '_')}-s${seed}.json`);
        if (existsSync(file)) continue;
        const [name, decayText] = run.strategy.split('@') as [string, string | undefined];
        const lrDecay = decayText ? Number(decayText) : 1;
        const longFactor = /^scratch-x(\d+)$/.exec(run.strategy);
        const steps = longFactor ? PLAN.steps * Number(longFactor[1]) : PLAN.steps;
        const base = { size, seed, source: run.source, strategy: run.strategy, lrDecay, steps, valCases: evalCases.length };
        if (run.strategy === 'as-is') {
          const t0 = performance.now();
          const { model, info } = loadModel(sourceFiles[run.source as (typeof PLAN.sources)[number]]);
          const m = evaluateOnCrops(model, evalCases, info.slice, { threshold: info.threshold }).aggregate();
          model.dispose();
          const res: RunResult = {
            ...base,
            steps: 0,
            valDice: m.dice.mean,
            valSensitivity: m.sensitivity.mean,
            valPrecision: m.precision.mean,
            trainSeconds: 0,
            wallSeconds: (performance.now() - t0) / 1000,
          };
          writeFileAtomic(file, JSON.stringify(res, null, 2) + '\n');
          log(`  ${size} nodules, seed ${seed}, ${run.source} as-is: val Dice ${res.valDice.toFixed(4)}`);
          continue;
        }
        const outDir = join(tmp, `${size}-${run.source}-${seed}`);
        rmSync(outDir, { recursive: true, force: true });
        const t0 = performance.now();
        let r: TrainResult;
        if (run.source === 'scratch') {
          r = train(
            baseConfig('scratch', {
              maxSteps: steps,
              seed,
              optimizer: { kind: 'adam', lr: PLAN.lr, weightDecay: 0 },
              schedule: { kind: 'cosine', warmupEpochs: 0, minLrFactor: 0.01 },
            }),
            {
              outDir,
              cases,
              dataDescription: `${size} thin-slice LIDC train nodules (seed ${seed})`,
            },
          );
        } else {
          r = finetune({
            source: sources.get(run.source)!,
            strategy: parseStrategy(name),
            cases,
            data: `${size} thin-slice LIDC train nodules (seed ${seed})`,
            settings: {
              ...DEFAULT_FINETUNE,
              maxSteps: PLAN.steps,
              batchSize: PLAN.batchSize,
              lr: PLAN.lr,
              lrDecay,
              seed,
              threads: 1,
              sliceSelection: 'all',
              valEvery: Number.MAX_SAFE_INTEGER,
            },
            outDir,
          });
        }
        record(file, base, r, t0);
        rmSync(outDir, { recursive: true, force: true });
      }
    }
  }
  for (const s of sources.values()) disposeSourceModel(s);
  rmSync(tmp, { recursive: true, force: true });
  log(`all runs done (${((performance.now() - tStart) / 60000).toFixed(1)} min in this invocation)`);
  writeTransferTable(join(OUT, 'results'), args.docs!, OUT);
  log(`table written to ${args.docs}`);
}

main();

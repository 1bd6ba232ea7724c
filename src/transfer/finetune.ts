/**
 * Fine-tuning a saved model on a small set of crops with a freezing strategy, through the
 * project's one trainer (src/train/trainer.ts): the source weights and the strategy go in
 * through its prepareModel hook, discriminative rates through its parameter groups.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { DEFAULT_AUGMENT, type CropCase } from '../data/index.ts';
import { buildModel, readModelInfo, type ModelInfo } from '../models/index.ts';
import { loadTensors } from '../nn/index.ts';
import { keep, type Tensor } from '../tensor/index.ts';
import { DEFAULT_TRAIN, type TrainConfig } from '../train/config.ts';
import { train, type TrainerEvents, type TrainResult } from '../train/trainer.ts';
import type { DistributedTraining } from '../distributed/index.ts';
import { applyStrategy, frozenPrefixes, stageParamGroups, strategyName, type Strategy } from './strategies.ts';

/** A source model in memory: its description, weights and file hash (loaded once, reused by every run). */
export interface SourceModel {
  file: string;
  info: ModelInfo;
  sha256: string;
  tensors: Record<string, Tensor>;
}

export function loadSourceModel(file: string): SourceModel {
  const info = readModelInfo(file);
  const bytes = readFileSync(file);
  const { tensors } = loadTensors(file);
  for (const t of Object.values(tensors)) keep(t);
  return { file, info, sha256: createHash('sha256').update(bytes).digest('hex'), tensors };
}

export function disposeSourceModel(s: SourceModel): void {
  for (const t of Object.values(s.tensors)) t.dispose();
}

export interface FinetuneSettings {
  epochs: number;
  /** Fixed optimizer-step budget (overrides epochs); null = epochs. */
  maxSteps: number | null;
  lr: number;
  /** Per-stage rate multiplier, deeper to shallower (1 = one rate for all). */
  lrDecay: number;
  batchSize: number;
  seed: number;
  /** 0 = all cores. */
  threads: number;
  sliceSelection: 'all' | 'nodule';
  /** Validate every k epochs (always after the last). */
  valEvery: number;
}

export const DEFAULT_FINETUNE: FinetuneSettings = {
  epochs: 10,
  maxSteps: null,
  lr: 3e-4,
  lrDecay: 1,
  batchSize: 16,
  seed: 1,
  threads: 0,
  sliceSelection: 'all',
  valEvery: 1,
};

/** The training config of a fine-tune: the source's architecture, slicing and threshold; no warm-up. */
export function finetuneConfig(info: ModelInfo, s: FinetuneSettings, name = 'finetune'): TrainConfig {
  return {
    ...DEFAULT_TRAIN,
    name,
    model: info.config,
    slice: info.slice,
    augment: DEFAULT_AUGMENT,
    sliceSelection: s.sliceSelection,
    epochs: s.epochs,
    maxSteps: s.maxSteps,
    batchSize: s.batchSize,
    optimizer: { kind: 'adam', lr: s.lr, weightDecay: 0 },
    schedule: { kind: 'cosine', warmupEpochs: 0, minLrFactor: 0.01 },
    seed: s.seed,
    threads: s.threads,
    threshold: info.threshold,
    valEvery: s.valEvery,
  };
}

/** Throws the strategy's UserError (e.g. classifier on a U-Net) before any training starts. */
export function checkStrategy(info: ModelInfo, strategy: Strategy): string[] {
  const model = buildModel(info.config, info.slice, info.sizeBins);
  try {
    return frozenPrefixes(model, strategy);
  } finally {
    model.dispose();
  }
}

export interface FinetuneRun {
  source: SourceModel;
  strategy: Strategy;
  cases: { train: CropCase[]; val: CropCase[] };
  /** Where the data came from (recorded in the model). */
  data: string;
  settings: FinetuneSettings;
  /** The trainer's run folder (checkpoints, log, best model). */
  outDir: string;
  events?: TrainerEvents;
  command?: string;
  /** More provenance (e.g. the auto table). */
  provenance?: Record<string, unknown>;
  /** Data-parallel (see TrainOptions.distributed). */
  distributed?: DistributedTraining;
}

export interface FinetuneResult extends TrainResult {
  frozenParameters: string[];
  trainableParameters: string[];
}

export function finetune(run: FinetuneRun): FinetuneResult {
  const { source, strategy, settings } = run;
  checkStrategy(source.info, strategy);
  const cfg = finetuneConfig(source.info, settings);
  const record: Record<string, unknown> = {
    from: run.source.file,
    fromSha256: source.sha256,
    fromName: source.info.provenance['name'] ?? null,
    strategy: strategyName(strategy),
    lrDecay: settings.lrDecay,
    data: run.data,
    trainCases: run.cases.train.map((c) => c.id),
    valCases: run.cases.val.map((c) => c.id),
    epochs: settings.epochs,
    maxSteps: settings.maxSteps,
    seed: settings.seed,
    lr: settings.lr,
    ...run.provenance,
  };
  let frozen: string[] = [];
  let trainable: string[] = [];
  const result = train(cfg, {
    outDir: run.outDir,
    cases: run.cases,
    sizeBins: source.info.sizeBins,
    command: run.command,
    events: run.events,
    dataDescription: run.data,
    provenance: { finetune: record },
    distributed: run.distributed,
    prepareModel: (model) => {
      try {
        model.loadStateDict(source.tensors, { strict: true });
      } catch (e) {
        throw new UserError(`${source.file}: weights do not match the model they describe: ${(e as Error).message.split('\n').join('; ')}`);
      }
      const applied = applyStrategy(model, strategy);
      frozen = applied.frozenParameters;
      trainable = applied.trainableParameters;
      record['frozenPrefixes'] = applied.frozenPrefixes;
      record['frozenParameters'] = applied.frozenParameters.length;
      record['trainableParameters'] = applied.trainableParameters.length;
      record['frozenBatchNorms'] = applied.frozenBatchNorms;
    },
    paramGroups: (model) => stageParamGroups(model, settings.lrDecay),
  });
  return { ...result, frozenParameters: frozen, trainableParameters: trainable };
}

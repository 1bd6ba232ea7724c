/**
 * The training lifecycle (nnU-Net's shape, without its size): data -> model -> per epoch
 * (train steps, validation with per-nodule 3D Dice, latest + best checkpoints, JSONL log,
 * PNG curves). Seeded; resumable from the latest checkpoint, losing at most one epoch.
 */
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCrops, SliceDataset, computeSizeBins, foldSplit, mixSeed, type CropCase, type SizeBins } from '../data/index.ts';
import { evaluateOnCrops } from '../eval/crops.ts';
import { NO_TYPE, segmentationLoss } from '../losses/index.ts';
import { buildModel, saveModel, MODEL_FORMAT, type ModelInfo, type SegmentationNetwork } from '../models/index.ts';
import { Adam, AdamW, SGD, clipGradNorm, type Optimizer } from '../optim/index.ts';
import { manualSeed, setNumThreads, tensor, tidy, type Tensor } from '../tensor/index.ts';
import { writePlotPng } from '../report/plot.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { UserError } from '../errors.ts';
import { saveCheckpoint, loadCheckpoint, shareCheckpoint, type CheckpointState, type EpochRecord } from './checkpoint.ts';
import { DataParallel, SyncBatchNorm, shardLength, shardOf, type DistributedTraining } from '../distributed/index.ts';
import { checkResumeConfig, type SyntheticSampling, type TrainConfig } from './config.ts';
import type { ValScan } from './scans.ts';
import { TRAIN_OUTPUT_FILES } from './output-files.ts';
import { benchmarkScan } from '../eval/scans.ts';
import { syntheticCropCases } from '../synth/cases.ts';

export interface TrainerEvents {
  onEpochStart?(epoch: number, totalEpochs: number, steps: number): void;
  /** `lrs`: the learning rate of each parameter group at this step. */
  onStep?(step: number, steps: number, info: { loss: number; samplesPerSecond: number; lrs: number[] }): void;
  onEpochEnd?(record: EpochRecord, isBest: boolean): void;
  onValidation?(done: number, total: number): void;
  onMessage?(text: string): void;
}

export interface TrainOptions {
  outDir: string;
  resume?: boolean;
  /** Resume even when the config differs from the checkpoint's (settings of how long and how it runs may always change). */
  forceResume?: boolean;
  /** Command line that started this run, recorded in the model file. */
  command?: string;
  events?: TrainerEvents;
  /** Pre-loaded cases (tests, experiments); default: lidc-crops train/val. */
  cases?: { train: CropCase[]; val: CropCase[] };
  sizeBins?: SizeBins;
  /**
   * Called on the freshly built (seeded) model before the optimizer is made: fine-tuning loads
   * its initial weights and freezes layers here.
   */
  prepareModel?: (model: SegmentationNetwork) => void;
  /**
   * Parameter groups with learning-rate multipliers of the schedule's rate (discriminative
   * rates). Frozen parameters are dropped from them, and groups left empty too. Default: one
   * group of every trainable parameter.
   */
  paramGroups?: (model: SegmentationNetwork) => TrainParamGroup[];
  /** Merged into the saved model's provenance (how it was made). */
  provenance?: Record<string, unknown>;
  /** What the data was, for the provenance (default: the lidc-crops splits, or "custom cases"). */
  dataDescription?: string;
  /**
   * Negative cases (empty masks) added to the training set, made by loadScanNegatives from the
   * config's sampling.scanNegatives; required when the config asks for them.
   */
  negatives?: CropCase[];
  /** Whole scans segmented from a point at each validation (loadValScans of the config's valScans). */
  valScans?: ValScan[];
  /**
   * Data-parallel training (one process per replica): batchSize is per replica, each rank trains on
   * its shard of every epoch, gradients are averaged; rank 0 alone validates, logs and saves.
   */
  distributed?: DistributedTraining;
}

export interface TrainParamGroup {
  name: string;
  params: Tensor[];
  lrScale: number;
}

export interface TrainResult {
  bestValDice: number;
  bestEpoch: number;
  epochs: number;
  log: EpochRecord[];
  bestModelPath: string;
  /** The last epoch's network (best.safetensors is the best on validation). */
  lastModelPath: string;
  trainSeconds: number;
}

export const ATTRIBUTION =
  'Trained on LIDC-IDRI (CC BY 3.0): Armato SG III, et al. Medical Physics 38(2):915-931, 2011; doi 10.7937/K9/TCIA.2015.LO9QL9SX; Clark K, et al. J Digit Imaging 26(6):1045-1057, 2013.';

/**
 * The optimizer over the trainable parameters, one optimizer group per non-empty parameter group
 * (their lrScale is returned in the same order). Frozen parameters never reach the optimizer, so
 * weight decay cannot move them either.
 */
export function makeOptimizer(
  cfg: TrainConfig,
  model: SegmentationNetwork,
  groups?: TrainParamGroup[],
): { optimizer: Optimizer; lrScales: number[]; groupNames: string[] } {
  const given = groups ?? [{ name: 'all', params: model.parameters(), lrScale: 1 }];
  const kept = given.map((g) => ({ ...g, params: g.params.filter((p) => p.requiresGrad) })).filter((g) => g.params.length > 0);
  if (kept.length === 0) throw new UserError('nothing to train: every parameter is frozen');
  const o = cfg.optimizer;
  const pg = kept.map((g) => ({ params: g.params, lr: o.lr * g.lrScale }));
  let optimizer: Optimizer;
  switch (o.kind) {
    case 'adam':
      optimizer = new Adam(pg, { lr: o.lr, weightDecay: o.weightDecay });
      break;
    case 'adamw':
      optimizer = new AdamW(pg, { lr: o.lr, weightDecay: o.weightDecay });
      break;
    case 'sgd':
      optimizer = new SGD(pg, { lr: o.lr, weightDecay: o.weightDecay, momentum: o.momentum ?? 0.9, nesterov: true });
      break;
  }
  return { optimizer, lrScales: kept.map((g) => g.lrScale), groupNames: kept.map((g) => g.name) };
}

/** Optimizer steps of the whole run: maxSteps when set, else epochs x steps per epoch. */
export function totalSteps(cfg: TrainConfig, stepsPerEpoch: number): number {
  return cfg.maxSteps ?? cfg.epochs * stepsPerEpoch;
}

/** Learning rate at a global step: linear warm-up, then cosine to minLrFactor * lr (or constant). */
export function lrAt(cfg: TrainConfig, step: number, stepsPerEpoch: number): number {
  const base = cfg.optimizer.lr;
  const warm = Math.round(cfg.schedule.warmupEpochs * stepsPerEpoch);
  if (step < warm) return (base * (step + 1)) / warm;
  if (cfg.schedule.kind === 'constant') return base;
  const total = Math.max(1, totalSteps(cfg, stepsPerEpoch) - warm);
  const t = Math.min(1, (step - warm) / total);
  const min = base * cfg.schedule.minLrFactor;
  return min + ((base - min) * (1 + Math.cos(Math.PI * t))) / 2;
}

export function train(cfg: TrainConfig, options: TrainOptions): TrainResult {
  const dist = options.distributed ?? null;
  const worldSize = dist?.group.worldSize ?? 1;
  const rank = dist?.group.rank ?? 0;
  // Rank 0 alone reports, validates and writes; the other ranks train and wait for it.
  const isMain = rank === 0;
  const ev = isMain ? (options.events ?? {}) : {};
  if (isMain) mkdirSync(options.outDir, { recursive: true });
  if (cfg.threads > 0) setNumThreads(cfg.threads);
  if (cfg.sampling.scanNegatives && !options.negatives)
    throw new UserError('the config asks for sampling.scanNegatives: load them with loadScanNegatives and pass them as options.negatives');
  const cases = options.cases ?? loadSplitCases(cfg);
  const sizeBins = options.sizeBins ?? computeSizeBins(cases.train);
  const synthetic = cfg.sampling.synthetic ? syntheticCasesOf(cfg.sampling.synthetic) : [];
  const trainCases = trainingCases(cases.train, cfg, [...(options.negatives ?? []), ...synthetic]);
  const trainSet = new SliceDataset({ cases: trainCases, slice: cfg.slice, sizeBins, augment: cfg.augment, slices: cfg.sliceSelection });
  const stats = trainSet.labelStats();
  ev.onMessage?.(
    `data: ${cases.train.length} train / ${cases.val.length} val nodules` +
      (trainCases.length !== cases.train.length
        ? ` (${trainCases.length - cases.train.length - (options.negatives?.length ?? 0) - synthetic.length} repeats of subsolid nodules, ${options.negatives?.length ?? 0} negatives from whole scans${synthetic.length ? `, ${synthetic.length} synthetic nodules` : ''})`
        : '') +
      `, ${stats.samples} training slices (${stats.withNodule} with nodule; size classes ${stats.sizeClassCounts.join('/')}` +
      (cfg.loss.type > 0 ? `; types ${stats.typeCounts.join('/')}` : '') +
      ')',
  );

  manualSeed(cfg.seed);
  const model = buildModel(cfg.model, cfg.slice, sizeBins);
  options.prepareModel?.(model);
  const { optimizer, lrScales } = makeOptimizer(cfg, model, options.paramGroups?.(model));
  const syncBn = dist?.syncBn ? new SyncBatchNorm(dist.group) : null;
  if (syncBn) {
    const n = syncBn.convert(model);
    ev.onMessage?.(`sync-bn: ${n} batch norms normalise over the global batch of ${worldSize} workers`);
  }
  const latestPath = join(options.outDir, TRAIN_OUTPUT_FILES.latestCheckpoint);
  const bestPath = join(options.outDir, TRAIN_OUTPUT_FILES.best);
  // Under --fold the best epoch is chosen on the held-out fold itself; the last epoch's network is
  // the one a fold's scores can be taken from without that choice.
  const lastPath = join(options.outDir, TRAIN_OUTPUT_FILES.last);
  const logPath = join(options.outDir, TRAIN_OUTPUT_FILES.log);
  const saveNetwork = (file: string, metrics: Record<string, number>): void =>
    saveModel(file, model, { slice: cfg.slice, sizeBins, threshold: cfg.threshold, provenance: provenance(cfg, options, metrics) });
  if (isMain) writeFileAtomic(join(options.outDir, TRAIN_OUTPUT_FILES.config), JSON.stringify(cfg, null, 2) + '\n');

  let epoch = 0,
    step = 0,
    bestValDice = -1,
    bestEpoch = -1,
    trainSeconds = 0;
  let log: EpochRecord[] = [];
  let resumed: CheckpointState | null = null;
  // Distributed: rank 0's checkpoint, sent to every rank (no shared file system needed).
  if (options.resume && (dist ? dist.group.anyTrue(isMain && existsSync(latestPath)) : existsSync(latestPath))) {
    const st = dist ? shareCheckpoint(latestPath, model, optimizer, dist.group) : loadCheckpoint(latestPath, model, optimizer);
    resumed = st;
    if (!options.forceResume) checkResumeConfig(st.config, cfg, latestPath);
    ({ epoch, step, bestValDice, bestEpoch, trainSeconds, log } = st);
    ev.onMessage?.(`resumed from ${latestPath} after epoch ${epoch} (best val Dice ${bestValDice.toFixed(4)} at epoch ${bestEpoch})`);
    if (isMain) writeFileSync(logPath, log.map((r) => JSON.stringify(r)).join('\n') + (log.length ? '\n' : ''));
  } else if (isMain && existsSync(logPath)) {
    writeFileSync(logPath, '');
  }

  if (trainSet.length === 0) throw new UserError('no training slices (no training cases, or none with nodule slices)');
  const stepsPerEpoch = Math.ceil(shardLength(trainSet.length, worldSize) / cfg.batchSize);
  // DDP: replicas start from rank 0's weights (and its resumed state).
  const ddp = dist ? new DataParallel(dist.group, model, { bucketCapMb: dist.bucketCapMb }) : null;
  ddp?.broadcastState();
  if (ddp)
    ev.onMessage?.(
      `data-parallel: ${worldSize} workers x batch ${cfg.batchSize}, ${stepsPerEpoch} steps per epoch, gradients all-reduced in ${ddp.bucketSizes.length} bucket(s)`,
    );
  if (resumed && resumed.stepsPerEpoch !== undefined && resumed.stepsPerEpoch !== stepsPerEpoch) {
    // Another world size (or batch size): the schedule continues from the same share of the run.
    const was = step;
    step = Math.round((step * stepsPerEpoch) / resumed.stepsPerEpoch);
    ev.onMessage?.(
      `resumed with ${worldSize} worker(s) where the checkpoint had ${resumed.worldSize ?? 1}: ${resumed.stepsPerEpoch} -> ${stepsPerEpoch} steps per epoch, step ${was} -> ${step}`,
    );
  }
  const allSteps = totalSteps(cfg, stepsPerEpoch);
  const epochs = Math.ceil(allSteps / stepsPerEpoch);
  const validate = cases.val.length > 0;
  // Size classes are imbalanced (most slices of a crop have no nodule): weight CE by inverse frequency.
  const counts = stats.sizeClassCounts.map((c) => Math.max(1, c));
  const inv = counts.map((c) => stats.samples / (counts.length * c));
  const classWeight = tensor(Float32Array.from(inv), [inv.length]);
  // Types are imbalanced too (solid slices outnumber part-solid ones about 7 to 1 even with the
  // subsolid repeats): the square root of inverse frequency, so the rare class counts without
  // its few slices dominating the branch.
  const typeTotal = stats.typeCounts.reduce((a, b) => a + b, 0);
  const typeInv = stats.typeCounts.map((c) => Math.sqrt(typeTotal / (stats.typeCounts.length * Math.max(1, c))));
  const typeWeight = cfg.loss.type > 0 ? tensor(Float32Array.from(typeInv), [typeInv.length]) : null;
  const budgetSeconds = cfg.timeBudgetMinutes === null ? Infinity : cfg.timeBudgetMinutes * 60;
  let stopForBudget = false;

  while (epoch < epochs && step < allSteps && !stopForBudget) {
    model.train();
    const stepsThisEpoch = Math.min(stepsPerEpoch, allSteps - step);
    ev.onEpochStart?.(epoch + 1, epochs, stepsThisEpoch);
    const t0 = performance.now();
    let sumLoss = 0,
      sumDice = 0,
      sumBce = 0,
      sumCls = 0,
      sumType = 0,
      nTyped = 0,
      nSteps = 0,
      nSamples = 0;
    let b = 0;
    for (const batch of epochBatches(trainSet, cfg.batchSize, mixSeed(cfg.seed, epoch + 1), rank, worldSize)) {
      if (step >= allSteps) break;
      // DDP's broadcast_buffers: every replica holds rank 0's running statistics.
      if (!syncBn) ddp?.broadcastBuffers();
      const lr = lrAt(cfg, step, stepsPerEpoch);
      optimizer.paramGroups.forEach((g, i) => {
        g.lr = lr * lrScales[i]!;
      });
      const parts = tidy(() => {
        const x = tensor(batch.image, batch.imageShape);
        const y = tensor(batch.target, batch.maskShape);
        const cls = tensor(batch.sizeClass, [batch.sizeClass.length]).to('int64');
        const out = model.forward(x);
        const typed = batch.noduleType.reduce((n, t) => n + (t !== NO_TYPE ? 1 : 0), 0);
        const typeTarget = typeWeight
          ? { labels: tensor(batch.noduleType, [batch.noduleType.length]).to('int64'), count: typed, weight: typeWeight }
          : undefined;
        const loss = segmentationLoss(out, y, cls, cfg.loss, classWeight, typeTarget);
        optimizer.zeroGrad();
        if (syncBn) syncBn.backward(loss.total);
        else loss.total.backward();
        ddp?.syncGradients();
        if (cfg.gradClip > 0)
          clipGradNorm(
            optimizer.paramGroups.flatMap((g) => [...g.params]),
            cfg.gradClip,
          );
        optimizer.step();
        return { total: loss.total.item(), dice: loss.dice, bce: loss.bce, cls: loss.cls, type: loss.type };
      });
      step++;
      nSteps++;
      nSamples += batch.sizeClass.length;
      sumLoss += parts.total;
      sumDice += parts.dice;
      sumBce += parts.bce;
      sumCls += Number.isFinite(parts.cls) ? parts.cls : 0;
      if (Number.isFinite(parts.type)) {
        sumType += parts.type;
        nTyped++;
      }
      const elapsed = (performance.now() - t0) / 1000;
      ev.onStep?.(++b, stepsThisEpoch, {
        loss: sumLoss / nSteps,
        samplesPerSecond: (nSamples * worldSize) / elapsed,
        lrs: optimizer.paramGroups.map((g) => g.lr),
      });
      const overBudget = trainSeconds + elapsed > budgetSeconds;
      // Every rank stops at the same step (rank clocks differ).
      if (dist && Number.isFinite(budgetSeconds) ? dist.group.anyTrue(overBudget) : overBudget) {
        stopForBudget = true;
        ev.onMessage?.(`time budget of ${cfg.timeBudgetMinutes} min reached during epoch ${epoch + 1} (step ${b}/${stepsThisEpoch})`);
        break;
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    trainSeconds += seconds;
    epoch++;
    if (dist) {
      // The epoch's numbers over all ranks (samples/s is then the whole run's).
      const sums = Float64Array.of(sumLoss, sumDice, sumBce, sumCls, sumType, nTyped, nSteps, nSamples);
      dist.group.allReduce([sums]);
      [sumLoss, sumDice, sumBce, sumCls, sumType, nTyped, nSteps, nSamples] = sums;
    }
    const record: EpochRecord = {
      epoch,
      trainLoss: sumLoss / nSteps,
      trainDice: sumDice / nSteps,
      trainBce: sumBce / nSteps,
      trainCls: sumCls / nSteps,
      ...(typeWeight && nTyped > 0 ? { trainType: sumType / nTyped } : {}),
      lr: optimizer.paramGroups[0]!.lr,
      samplesPerSecond: nSamples / seconds,
      seconds,
    };
    let isBest = false;
    const last = epoch === epochs || step >= allSteps || stopForBudget;
    if (!isMain) {
      // Validation and saving are rank 0's; this rank waits for its record at the broadcast below.
    } else if (!validate && last) {
      // No validation cases (a final fit on all the data): the model is the last epoch's.
      isBest = true;
      bestEpoch = epoch;
      saveNetwork(bestPath, { epoch, steps: step, trainSeconds });
    } else if (validate && (epoch % cfg.valEvery === 0 || last)) {
      const acc = evaluateOnCrops(model, cases.val, cfg.slice, {
        threshold: cfg.threshold,
        skipHd95: true,
        flipTta: cfg.valFlipTta,
        onCase: ev.onValidation,
      });
      const s = acc.aggregate();
      record.valDice = s.dice.mean;
      record.valSensitivity = s.sensitivity.mean;
      record.valPrecision = s.precision.mean;
      record.valDiceByType = diceByType(
        cases.val,
        acc.cases.map((c) => c.metrics.dice),
      );
      if (options.valScans?.length) {
        const info: ModelInfo = {
          format: MODEL_FORMAT,
          version: 1,
          config: cfg.model,
          slice: cfg.slice,
          sizeBins,
          threshold: cfg.threshold,
          provenance: {},
        };
        const rows = options.valScans.flatMap((v) => benchmarkScan(model, info, v.volume, v.name, v.lesions, { prompts: ['point'] }));
        record.valScanDice = rows.reduce((a, r) => a + r.diceUnion, 0) / Math.max(1, rows.length);
      }
      if (s.dice.mean > bestValDice) {
        isBest = true;
        bestValDice = s.dice.mean;
        bestEpoch = epoch;
        saveNetwork(bestPath, {
          epoch,
          steps: step,
          valDice: s.dice.mean,
          valSensitivity: s.sensitivity.mean,
          valPrecision: s.precision.mean,
          trainSeconds,
        });
      }
    }
    if (dist) {
      // Rank 0's validation and choice of best, sent to every rank (the others wait here while it
      // validates), so that all return the same log and best epoch.
      // NaN (a metric without a nodule) travels as a string: JSON has no NaN.
      const text = JSON.stringify({ record, bestValDice, bestEpoch, isBest }, (_k, v: unknown) =>
        typeof v === 'number' && !Number.isFinite(v) ? String(v) : v,
      );
      const sent = dist.group.broadcastBytes(isMain ? Buffer.from(text) : null, 0);
      if (!isMain) {
        const shared = JSON.parse(Buffer.from(sent).toString('utf8'), (_k, v: unknown) =>
          v === 'NaN' || v === 'Infinity' || v === '-Infinity' ? Number(v) : v,
        ) as {
          record: EpochRecord;
          bestValDice: number;
          bestEpoch: number;
          isBest: boolean;
        };
        Object.assign(record, shared.record);
        ({ bestValDice, bestEpoch, isBest } = shared);
      }
    }
    log.push(record);
    if (isMain && last) {
      saveNetwork(lastPath, { epoch, steps: step, ...(record.valDice !== undefined ? { valDice: record.valDice } : {}), trainSeconds });
    }
    if (isMain) {
      appendFileSync(logPath, JSON.stringify(record) + '\n');
      saveCheckpoint(latestPath, model, optimizer, {
        config: cfg,
        epoch,
        step,
        bestValDice,
        bestEpoch,
        log,
        trainSeconds,
        worldSize,
        stepsPerEpoch,
      });
      writeCurves(join(options.outDir, TRAIN_OUTPUT_FILES.curves), log);
    }
    ev.onEpochEnd?.(record, isBest);
  }
  classWeight.dispose();
  typeWeight?.dispose();
  // The optimizer's moments are as large as the model: freed now, not at some later GC.
  optimizer.dispose();
  model.dispose();
  return { bestValDice, bestEpoch, epochs: epoch, log, bestModelPath: bestPath, lastModelPath: lastPath, trainSeconds };
}

/** One epoch in batches; with W workers, this rank's shard of it (DistributedSampler's). */
function* epochBatches(
  set: SliceDataset,
  batchSize: number,
  seed: number,
  rank: number,
  worldSize: number,
): Generator<ReturnType<SliceDataset['batch']>> {
  if (worldSize === 1) {
    yield* set.batches(batchSize, seed);
    return;
  }
  const mine = shardOf(set.order(seed), rank, worldSize);
  for (let s = 0; s < mine.length; s += batchSize) yield set.batch(mine.subarray(s, Math.min(mine.length, s + batchSize)), seed);
}

function diceByType(val: readonly CropCase[], dice: readonly number[]): Record<string, number> {
  const sums = new Map<string, { s: number; n: number }>();
  val.forEach((c, i) => {
    const d = dice[i]!;
    if (!c.noduleType || !Number.isFinite(d)) return;
    const e = sums.get(c.noduleType) ?? { s: 0, n: 0 };
    e.s += d;
    e.n++;
    sums.set(c.noduleType, e);
  });
  return Object.fromEntries([...sums].map(([k, e]) => [k, e.s / e.n]));
}

/** The config's synthetic nodules (sampling.synthetic), the same for every run of one config. */
function syntheticCasesOf(s: SyntheticSampling): CropCase[] {
  return syntheticCropCases({
    counts: s.counts,
    seed: s.seed,
    overrides: { groundGlassEdgeMm: s.groundGlassEdgeMm, groundGlassTextureHU: s.groundGlassTextureHU },
  });
}

/**
 * The training set of one epoch: every crop once, those of a repeated type (sampling.typeRepeat)
 * again, then the negatives (and any synthetic nodules: each once). Repeats are the same case objects: their slices are separate
 * samples, each with its own augmentation stream.
 */
export function trainingCases(train: readonly CropCase[], cfg: TrainConfig, negatives: readonly CropCase[]): CropCase[] {
  const out: CropCase[] = [...train];
  for (const c of train) {
    const times = c.noduleType ? cfg.sampling.typeRepeat[c.noduleType] : 1;
    for (let k = 1; k < times; k++) out.push(c);
  }
  return [...out, ...negatives];
}

function loadSplitCases(cfg: TrainConfig): { train: CropCase[]; val: CropCase[] } {
  if (cfg.fold) {
    // Cross-validation over train + val: the held-in folds are this run's training cases.
    const { train, heldOut } = foldSplit(loadCrops({ labels: cfg.labels }), cfg.fold.count, cfg.fold.index, cfg.fold.seed);
    const asTrain = train.map((c) => (c.split === 'train' ? c : { ...c, split: 'train' as const }));
    return {
      train: cfg.trainLimit !== null ? asTrain.slice(0, cfg.trainLimit) : asTrain,
      val: cfg.valLimit !== null ? heldOut.slice(0, cfg.valLimit) : heldOut,
    };
  }
  const train = loadCrops({ splits: ['train'], labels: cfg.labels, ...(cfg.trainLimit !== null ? { limit: cfg.trainLimit } : {}) });
  const val = loadCrops({ splits: ['val'], labels: cfg.labels, ...(cfg.valLimit !== null ? { limit: cfg.valLimit } : {}) });
  return { train, val };
}

function provenance(cfg: TrainConfig, options: TrainOptions, metrics: Record<string, number>): Record<string, unknown> {
  return {
    name: cfg.name,
    command: options.command ?? null,
    data:
      options.dataDescription ??
      (options.cases
        ? 'custom cases'
        : cfg.fold
          ? `lidc-crops train + val, cross-validation fold ${cfg.fold.index + 1} of ${cfg.fold.count} held out (seed ${cfg.fold.seed})`
          : 'lidc-crops train split; validated on the val split'),
    attribution: ATTRIBUTION,
    trainConfig: cfg,
    ...options.provenance,
    ...metrics,
    createdAt: new Date().toISOString(),
  };
}

function writeCurves(file: string, log: EpochRecord[]): void {
  const x = log.map((r) => r.epoch);
  const val = log.filter((r) => r.valDice !== undefined);
  writePlotPng(file, [
    {
      title: 'training loss',
      series: [
        { label: 'loss', x, y: log.map((r) => r.trainLoss), color: [200, 60, 40] },
        { label: 'dice loss', x, y: log.map((r) => r.trainDice), color: [40, 90, 200] },
      ],
    },
    {
      title: 'validation (per nodule)',
      yRange: [0, 1],
      series: [
        { label: 'dice', x: val.map((r) => r.epoch), y: val.map((r) => r.valDice!), color: [30, 140, 60] },
        { label: 'sensitivity', x: val.map((r) => r.epoch), y: val.map((r) => r.valSensitivity!), color: [200, 120, 0] },
        { label: 'precision', x: val.map((r) => r.epoch), y: val.map((r) => r.valPrecision!), color: [120, 40, 160] },
      ],
    },
  ]);
}

/**
 * Training checkpoints: model weights, optimizer state, epoch, log and config in one safetensors
 * file (tensor names prefixed "model." and "optim."), written atomically so a kill never leaves
 * a half-written file.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProcessGroup } from '../distributed/group.ts';
import { UserError } from '../errors.ts';
import { loadTensors, saveTensors } from '../nn/index.ts';
import type { Optimizer, OptimizerStateDict } from '../optim/index.ts';
import type { Tensor } from '../tensor/index.ts';
import type { SegmentationNetwork } from '../models/types.ts';
import type { TrainConfig } from './config.ts';

export const CHECKPOINT_FORMAT = 'noduleseg.checkpoint';

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  trainDice: number;
  trainBce: number;
  trainCls: number;
  /** Mean type cross-entropy (configs with loss.type > 0). */
  trainType?: number;
  lr: number;
  samplesPerSecond: number;
  seconds: number;
  valDice?: number;
  valSensitivity?: number;
  valPrecision?: number;
  /** Mean val Dice per nodule type (solid, part-solid, ground-glass), where val has that type. */
  valDiceByType?: Record<string, number>;
  /** Mean Dice vs the readers' union of the whole-scan nodules prompted by a point (valScans), logged, not selected on. */
  valScanDice?: number;
}

export interface CheckpointState {
  format: typeof CHECKPOINT_FORMAT;
  config: TrainConfig;
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps taken. */
  step: number;
  bestValDice: number;
  bestEpoch: number;
  log: EpochRecord[];
  optimizerMeta: OptimizerStateDict['meta'];
  trainSeconds: number;
  /** Workers of the run that wrote it, and its optimizer steps per epoch (absent: one worker, older files). */
  worldSize?: number;
  stepsPerEpoch?: number;
}

export function saveCheckpoint(
  file: string,
  model: SegmentationNetwork,
  optimizer: Optimizer,
  state: Omit<CheckpointState, 'format' | 'optimizerMeta'>,
): void {
  const tensors: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(model.stateDict())) tensors[`model.${k}`] = t;
  const opt = optimizer.stateDict();
  for (const [k, t] of Object.entries(opt.tensors)) tensors[`optim.${k}`] = t;
  const full: CheckpointState = { format: CHECKPOINT_FORMAT, optimizerMeta: opt.meta, ...state };
  try {
    saveTensors(file, tensors, { [CHECKPOINT_FORMAT]: JSON.stringify(full) });
  } finally {
    for (const t of Object.values(opt.tensors)) t.dispose();
  }
}

/** Restores model and optimizer from a checkpoint; returns the training state. */
export function loadCheckpoint(file: string, model: SegmentationNetwork, optimizer: Optimizer): CheckpointState {
  if (!existsSync(file)) throw new UserError(`${file}: no checkpoint to resume from`);
  let loaded: { tensors: Record<string, Tensor>; metadata: Record<string, string> };
  try {
    loaded = loadTensors(file);
  } catch (e) {
    throw new UserError(`${file}: unreadable checkpoint: ${(e as Error).message}`);
  }
  const { tensors, metadata } = loaded;
  try {
    const raw = metadata[CHECKPOINT_FORMAT];
    if (!raw) throw new UserError(`${file}: not a noduleseg checkpoint`);
    const state = JSON.parse(raw) as CheckpointState;
    const modelSd: Record<string, Tensor> = {};
    const optTensors: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(tensors)) {
      if (k.startsWith('model.')) modelSd[k.slice(6)] = t;
      else if (k.startsWith('optim.')) optTensors[k.slice(6)] = t;
    }
    try {
      model.loadStateDict(modelSd, { strict: true });
      optimizer.loadStateDict({ tensors: optTensors, meta: state.optimizerMeta });
    } catch (e) {
      throw new UserError(`${file}: checkpoint does not match this configuration: ${(e as Error).message.split('\n').join('; ')}`);
    }
    return state;
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}

/**
 * Distributed resume: rank 0 reads its checkpoint and sends the bytes to every rank, so the other
 * machines need no copy of the run folder; all ranks restore the same state.
 */
export function shareCheckpoint(file: string, model: SegmentationNetwork, optimizer: Optimizer, group: ProcessGroup): CheckpointState {
  const bytes = group.broadcastBytes(group.isMain ? readFileSync(file) : null, 0);
  if (group.isMain) return loadCheckpoint(file, model, optimizer);
  const dir = mkdtempSync(join(tmpdir(), 'noduleseg-resume-'));
  try {
    const copy = join(dir, 'latest.ckpt.safetensors');
    writeFileSync(copy, bytes);
    return loadCheckpoint(copy, model, optimizer);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

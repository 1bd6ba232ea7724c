/**
 * One training process for the distributed tests: trains a tiny U-Net on a synthetic crop folder
 * through the real trainer, data-parallel when the launcher variables are set (WORLD_SIZE, ...),
 * and writes its final weights to `<weightsDir>/rank<r>.json`.
 * Usage: node --import tsx test/distributed/worker.ts '<WorkerSpec or WorkerSpec[] as JSON>' (a list
 * runs one after the other in the same group, which saves starting processes).
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SLICE_CONFIG, type SizeBins } from '../../src/data/index.ts';
import { ProcessGroup, distEnvFrom } from '../../src/distributed/index.ts';
import type { NormKind } from '../../src/models/blocks.ts';
import { setNumThreads } from '../../src/tensor/index.ts';
import { resolveTrainConfig } from '../../src/train/config.ts';
import { train } from '../../src/train/trainer.ts';
import { loadCropFolder } from '../../src/transfer/index.ts';

export interface WorkerSpec {
  data: string;
  outDir: string;
  weightsDir: string;
  /** Per worker. */
  batchSize: number;
  maxSteps: number;
  norm: NormKind;
  syncBn: boolean;
  resume: boolean;
  timeoutSeconds: number;
  /** A pause after each step (rank 0's, so every rank's), to give a test time to act mid-run. */
  stepDelayMs?: number;
  /** DDP's bucket size (default 25 MB). */
  bucketCapMb?: number;
  /** The shipped architecture (joint: U-Net, size classifier, feature combination, STD layer), tiny; default a plain U-Net. */
  arch?: 'unet' | 'joint';
}

const BINS: SizeBins = {
  format: 'noduleseg.size-bins',
  version: 1,
  edgesMm2: [15, 40],
  classes: ['none', 'small', 'medium', 'large'],
  nonzeroSlices: 0,
  source: 'test',
};

export function workerConfig(spec: WorkerSpec) {
  return resolveTrainConfig(
    {
      name: 'ddp-test',
      model:
        spec.arch === 'joint'
          ? { arch: 'joint', inChannels: 1, features: [4, 8, 16], norm: spec.norm }
          : { arch: 'unet', inChannels: 1, features: [4, 8], norm: spec.norm },
      slice: { ...DEFAULT_SLICE_CONFIG, patchSize: 32 },
      // A loss that is a mean over the samples (BCE alone), so W batches of b average to one of W * b.
      loss: { dice: 0, bce: 1, cls: 0, raw: 0 },
      batchSize: spec.batchSize,
      maxSteps: spec.maxSteps,
      epochs: 1000,
      schedule: { kind: 'cosine', warmupEpochs: 0.5, minLrFactor: 0.1 },
      optimizer: { kind: 'adam', lr: 3e-3, weightDecay: 0 },
      threads: 1,
      seed: 7,
    },
    'test worker',
  );
}

/** Trains as one worker of `group` (or alone) and writes its final weights. */
export function runWorker(spec: WorkerSpec, group: ProcessGroup | null): void {
  const rank = group?.rank ?? 0;
  const cases = loadCropFolder(spec.data).cases;
  const cfg = workerConfig(spec);
  let dump: (() => void) | undefined;
  train(cfg, {
    outDir: spec.outDir,
    resume: spec.resume,
    cases: { train: cases, val: [] },
    sizeBins: BINS,
    ...(group
      ? { distributed: { group, syncBn: spec.syncBn, ...(spec.bucketCapMb !== undefined ? { bucketCapMb: spec.bucketCapMb } : {}) } }
      : {}),
    events: {
      onMessage: (s) => process.stderr.write(`[rank ${rank}] ${s}\n`),
      onEpochEnd: (r) => process.stderr.write(`[rank ${rank}] epoch ${r.epoch} loss ${r.trainLoss.toFixed(5)}\n`),
      onStep: () => {
        if (spec.stepDelayMs) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, spec.stepDelayMs);
      },
    },
    prepareModel: (model) => {
      // The trainer disposes the model when it returns: take its weights just before.
      const dispose = model.dispose.bind(model);
      dump = () => {
        const weights: Record<string, number[]> = {};
        for (const [k, t] of Object.entries(model.stateDict()))
          if (t.dtype === 'float32') weights[k] = Array.from(t.toTypedArray() as Float32Array);
        writeFileSync(join(spec.weightsDir, `rank${rank}.json`), JSON.stringify(weights));
      };
      model.dispose = () => {
        dump?.();
        dispose();
      };
    },
  });
}

async function main(): Promise<void> {
  const parsed = JSON.parse(process.argv[2]!) as WorkerSpec | WorkerSpec[];
  const specs = Array.isArray(parsed) ? parsed : [parsed];
  setNumThreads(1);
  const env = distEnvFrom();
  const group = env ? ProcessGroup.init(env, { timeoutSeconds: specs[0]!.timeoutSeconds }) : null;
  try {
    for (const spec of specs) runWorker(spec, group);
    group?.barrier();
  } finally {
    group?.shutdown();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    process.stderr.write(`worker: ${(e as Error).message}\n`);
    process.exit(1);
  });
}

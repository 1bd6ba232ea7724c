// Tiny source models and tiny synthetic crop sets for the transfer tests (no real data needed).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SLICE_CONFIG, type SizeBins, type SliceConfig } from '../../src/data/index.ts';
import { buildModel, defaultJointConfig, saveModel, type ModelConfig } from '../../src/models/index.ts';
import { loadTensors } from '../../src/nn/index.ts';
import { manualSeed, randn, tidy } from '../../src/tensor/index.ts';
import { writeSynthSet } from '../../src/synth/index.ts';
import { DEFAULT_TRAIN } from '../../src/train/config.ts';
import { train } from '../../src/train/trainer.ts';
import { loadCropFolder } from '../../src/transfer/index.ts';

export const TINY_SLICE: SliceConfig = { ...DEFAULT_SLICE_CONFIG, patchSize: 32 };
export const TINY_BINS: SizeBins = {
  format: 'noduleseg.size-bins',
  version: 1,
  edgesMm2: [15, 40],
  classes: ['none', 'small', 'medium', 'large'],
  nonzeroSlices: 0,
  source: 'test',
};

export function tempDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `noduleseg-${tag}-`));
}

export function tinyConfig(arch: ModelConfig['arch']): ModelConfig {
  if (arch === 'joint') return defaultJointConfig({ features: [4, 8, 16], clsFeatures: [2, 4, 8] });
  return { arch, inChannels: 1, features: [4, 8, 16], norm: 'batch' };
}

/**
 * A source model file with random weights and non-default batch-norm statistics (a few forward
 * passes in training mode), so frozen statistics can be told from reset ones.
 */
export function writeTinySource(dir: string, arch: ModelConfig['arch'], seed = 1): string {
  manualSeed(seed);
  const model = buildModel(tinyConfig(arch), TINY_SLICE, TINY_BINS);
  model.train();
  for (let i = 0; i < 2; i++) tidy(() => model.forward(randn([4, 1, 32, 32]).mul(0.3).add(0.2)));
  const file = join(dir, `${arch}.safetensors`);
  saveModel(file, model, { slice: TINY_SLICE, sizeBins: TINY_BINS, threshold: 0.5, provenance: { name: `tiny-${arch}` } });
  model.dispose();
  return file;
}

/** count small synthetic crops (32 x 32 x 6 voxels, 8 mm nodules) in lidc-crops layout. */
export function writeTinyData(dir: string, count: number, seed = 3): string {
  const out = join(dir, 'data');
  writeSynthSet(out, {
    count,
    seed,
    valFraction: 0.25,
    overrides: { dims: [32, 32, 6], spacingMm: [0.7, 0.7, 1.5], diameterMm: 8, backgroundVessels: 0, supersample: 2 },
  });
  return out;
}

/** Every tensor of a safetensors file as raw bytes, by name. */
export function fileTensorBytes(file: string): Map<string, Buffer> {
  const { tensors } = loadTensors(file);
  const out = new Map<string, Buffer>();
  for (const [k, t] of Object.entries(tensors)) {
    const a = t.toTypedArray();
    out.set(k, Buffer.from(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength)));
    t.dispose();
  }
  return out;
}

/**
 * A joint source model trained for 40 steps on tiny synthetic crops (val Dice about 0.5), so that
 * fine-tuning strategies differ in what they predict (an untrained model predicts all or nothing).
 */
export function writePretrainedSource(dir: string): string {
  const pre = join(dir, 'pretrain');
  const data = join(pre, 'data');
  writeSynthSet(data, {
    count: 10,
    seed: 9,
    valFraction: 0.2,
    overrides: { dims: [32, 32, 6], spacingMm: [0.7, 0.7, 1.5], diameterMm: 8, backgroundVessels: 0, supersample: 2 },
  });
  const cases = loadCropFolder(data).cases;
  const r = train(
    {
      ...DEFAULT_TRAIN,
      name: 'tiny-pretrained',
      model: tinyConfig('joint'),
      slice: TINY_SLICE,
      maxSteps: 40,
      batchSize: 8,
      optimizer: { kind: 'adam', lr: 1e-2, weightDecay: 0 },
      schedule: { kind: 'constant', warmupEpochs: 0, minLrFactor: 1 },
      threads: 1,
      seed: 1,
    },
    { outDir: join(pre, 'run'), cases: { train: cases.filter((c) => c.split === 'train'), val: [] }, sizeBins: TINY_BINS },
  );
  return r.bestModelPath;
}

/**
 * A model file: safetensors weights plus, in its metadata, everything needed to rebuild and run
 * the model (architecture config, slice sampling, size bins, threshold) and how it was made.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { loadTensors, readSafetensors, writeSafetensors, type StFile } from '../nn/index.ts';
import type { SizeBins, SliceConfig } from '../data/index.ts';
import { validateModelConfig, type ModelConfig } from './config.ts';
import { JointNet, classAreaIntervalsPx } from './joint.ts';
import { EncoderDecoder } from './unet.ts';
import type { SegmentationNetwork } from './types.ts';
import { validateRefineStage, type RefineStage } from './refine-stage.ts';

export const MODEL_FORMAT = 'noduleseg.model';

export interface ModelInfo {
  format: typeof MODEL_FORMAT;
  version: 1;
  config: ModelConfig;
  slice: SliceConfig;
  sizeBins: SizeBins;
  /** Probability threshold for the mask. */
  threshold: number;
  /**
   * For a model trained on the readers' agreement (its probability is the share of readers who
   * would mark a voxel): the lower level whose mask comes closest to the union of the readers.
   * The report gives the volume at that level beside the default one, as the range readers draw.
   */
  anyReaderThreshold?: number;
  /**
   * A refinement stage across slices applied to the network's probability before any level is
   * drawn (inference/refine.ts); absent in models made before it, which are the network alone.
   */
  refine?: RefineStage;
  /** Free-form provenance: training command, data, epochs, metrics, attribution. */
  provenance: Record<string, unknown>;
}

/** Builds a network from its config (the explicit registry of architectures). */
export function buildModel(config: ModelConfig, slice: SliceConfig, sizeBins: SizeBins): SegmentationNetwork {
  validateModelConfig(config);
  switch (config.arch) {
    case 'unet':
    case 'resunet':
      return new EncoderDecoder(config);
    case 'joint':
      return new JointNet(config, {
        classAreaIntervalsPx: config.sizePrior ? classAreaIntervalsPx(sizeBins.edgesMm2, slice.spacingMm, slice.patchSize) : undefined,
      });
  }
}

export function saveModel(file: string, model: SegmentationNetwork, info: Omit<ModelInfo, 'format' | 'version' | 'config'>): void {
  const full: ModelInfo = { format: MODEL_FORMAT, version: 1, config: model.config, ...info };
  model.save(file, { [MODEL_FORMAT]: JSON.stringify(full) });
}

/** Reads a model file's description without loading its weights. */
export function readModelInfo(file: string): ModelInfo {
  return readModelFile(file).info;
}

/** A model file's safetensors contents and its validated description. */
function readModelFile(file: string): { contents: StFile; info: ModelInfo } {
  if (!existsSync(file)) throw new UserError(`${file}: model file not found`);
  let contents: StFile;
  try {
    contents = readSafetensors(file);
  } catch (e) {
    throw new UserError(`${file}: not a readable model file: ${(e as Error).message}`);
  }
  const raw = contents.metadata[MODEL_FORMAT];
  if (!raw) throw new UserError(`${file}: safetensors file without noduleseg model metadata`);
  let info: ModelInfo;
  try {
    info = JSON.parse(raw) as ModelInfo;
  } catch {
    throw new UserError(`${file}: model metadata is not valid JSON`);
  }
  if (info.format !== MODEL_FORMAT || info.version !== 1)
    throw new UserError(`${file}: unsupported model format ${String(info.format)} v${String(info.version)}`);
  if (!(info.threshold > 0 && info.threshold < 1)) throw new UserError(`${file}: threshold ${String(info.threshold)} is not in (0, 1)`);
  const any = info.anyReaderThreshold;
  if (any !== undefined && !(any > 0 && any < info.threshold))
    throw new UserError(`${file}: anyReaderThreshold ${String(any)} must be in (0, threshold)`);
  if (info.refine !== undefined) {
    try {
      validateRefineStage(info.refine);
    } catch (e) {
      throw new UserError(`${file}: ${(e as Error).message}`);
    }
  }
  try {
    validateModelConfig(info.config);
  } catch (e) {
    throw new UserError(`${file}: ${(e as Error).message}`);
  }
  return { contents, info };
}

/** The levels a model file's masks are drawn at, and why they were chosen. */
export interface ModelLevels {
  /** Absent: the file's threshold is kept. */
  threshold?: number;
  /** Absent: the file's any-reader level is kept. */
  anyReaderThreshold?: number;
  note?: string;
}

/**
 * Copies a model file with new levels: its tensors and every other metadata entry (the
 * nodule-level heads among them) byte for byte, the description with the levels set and a
 * `levels` entry in its provenance saying from what and why.
 */
export function writeModelLevels(input: string, output: string, levels: ModelLevels): ModelInfo {
  if (resolve(input) === resolve(output)) throw new UserError(`${output}: the output may not be the input`);
  const { contents, info: before } = readModelFile(input);
  const threshold = levels.threshold ?? before.threshold;
  const anyReader = levels.anyReaderThreshold ?? before.anyReaderThreshold;
  if (!(threshold > 0 && threshold < 1)) throw new UserError(`${input}: threshold ${threshold} is not in (0, 1)`);
  if (anyReader !== undefined && !(anyReader > 0 && anyReader < threshold))
    throw new UserError(`${input}: any-reader level ${anyReader} must be in (0, threshold ${threshold})`);
  const info: ModelInfo = {
    ...before,
    threshold,
    ...(anyReader !== undefined ? { anyReaderThreshold: anyReader } : {}),
    provenance: {
      ...before.provenance,
      levels: { threshold, anyReaderThreshold: anyReader ?? null, from: input, note: levels.note ?? null },
    },
  };
  writeSafetensors(output, contents.tensors, { ...contents.metadata, [MODEL_FORMAT]: JSON.stringify(info) });
  return info;
}

/** Rebuilds the network from the file alone and loads its weights (strict). */
export function loadModel(file: string): { model: SegmentationNetwork; info: ModelInfo } {
  const info = readModelInfo(file);
  const model = buildModel(info.config, info.slice, info.sizeBins);
  const { tensors } = loadTensors(file);
  try {
    model.loadStateDict(tensors, { strict: true });
  } catch (e) {
    model.dispose();
    throw new UserError(`${file}: weights do not match the model they describe: ${(e as Error).message.split('\n').join('; ')}`);
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
  model.eval();
  return { model, info };
}

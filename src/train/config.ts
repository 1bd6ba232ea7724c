/** Training configuration: a JSON file, merged over defaults, validated with messages that name the file. */
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import {
  DEFAULT_AUGMENT,
  DEFAULT_SLICE_CONFIG,
  NODULE_TYPES,
  inputChannels,
  validateSliceConfig,
  type AugmentConfig,
  type CropLabels,
  type NoduleType,
  type ScanNegativeOptions,
  type SliceConfig,
} from '../data/index.ts';
import { DEFAULT_LOSS_WEIGHTS, type SegLossWeights } from '../losses/index.ts';
import { DEFAULT_SIZE_PRIOR, DEFAULT_STD, defaultJointConfig, validateModelConfig, type ModelConfig } from '../models/index.ts';

export interface TrainConfig {
  name: string;
  model: ModelConfig;
  slice: SliceConfig;
  /** null: no augmentation. */
  augment: AugmentConfig | null;
  /** Which slices of the training crops are samples: all, or only those with nodule. */
  sliceSelection: 'all' | 'nodule';
  epochs: number;
  /**
   * Stop after this many optimizer steps in total (the schedule spans them, and the number of
   * epochs follows from it); null = epochs x steps per epoch. Fine-tuning uses a fixed step budget.
   */
  maxSteps: number | null;
  batchSize: number;
  optimizer: { kind: 'adam' | 'adamw' | 'sgd'; lr: number; weightDecay: number; momentum?: number };
  /** Per-iteration cosine decay after a linear warm-up, or a constant rate. */
  schedule: { kind: 'cosine' | 'constant'; warmupEpochs: number; minLrFactor: number };
  loss: SegLossWeights;
  /** Gradient-norm clipping (0 = off). */
  gradClip: number;
  seed: number;
  /** Intra-op threads (0 = all cores). */
  threads: number;
  threshold: number;
  /** Stop training after this many minutes (then validate and save); null = no limit. */
  timeBudgetMinutes: number | null;
  /** Validate every k epochs (and always after the last). */
  valEvery: number;
  /** Use only the first N cases of each split (quick runs, tests); null = all. */
  trainLimit: number | null;
  valLimit: number | null;
  /** Flip test-time augmentation during validation. */
  valFlipTta: boolean;
  sampling: SamplingConfig;
  /**
   * Cross-validation: train on every fold of train + val but `index` (0-based), validate on it
   * (stratifiedPatientFolds with `seed`); null: the train / val split of splits.csv.
   */
  fold: { index: number; count: number; seed: number } | null;
  /**
   * LIDC scan folders (relative to the data folder, or absolute) whose nodules are segmented
   * from a point at each validation, and their mean Dice logged (valScanDice). Logged only: the
   * best checkpoint is still chosen on the crops.
   */
  valScans: string[];
  /**
   * The label of a crop: 'union' of the readers (mask/), or their 'agreement' (the share of
   * readers per voxel as a soft target; validation then scores against their 50% consensus), or
   * 'panel-agreement' (the share of LIDC's four-reader panel: withAgreementLabels).
   */
  labels: CropLabels;
}

/**
 * What the training set is made of beyond one pass over the crops: subsolid nodules repeated
 * (the crops hold 94 of 689), and negatives from whole scans (patches whose centre is not nodule).
 */
export interface SamplingConfig {
  /** Each crop of this type is seen this many times per epoch (integers >= 1). */
  typeRepeat: Record<NoduleType, number>;
  /** null: none. `scans`: LIDC scan folders, relative to the data folder (or absolute). */
  scanNegatives: (Partial<ScanNegativeOptions> & { scans: string[] }) | null;
  /**
   * null: none. Synthetic nodules (src/synth) added to each epoch, `counts` of each type, each seen
   * once (not repeated by typeRepeat); ground glass with a soft edge of `groundGlassEdgeMm` (its
   * density the target) and a texture of `groundGlassTextureHU`.
   */
  synthetic: SyntheticSampling | null;
}

export interface SyntheticSampling {
  counts: Partial<Record<NoduleType, number>>;
  seed: number;
  groundGlassEdgeMm: number;
  groundGlassTextureHU: number;
}

export function defaultModelFor(arch: ModelConfig['arch'], inChannels: number): ModelConfig {
  const features = [16, 32, 64, 128, 256];
  if (arch === 'joint') return defaultJointConfig({ inChannels, features, clsFeatures: features.map((c) => c / 2) });
  return { arch, inChannels, features, norm: 'batch' };
}

export const DEFAULT_TRAIN: Omit<TrainConfig, 'model' | 'name'> = {
  slice: DEFAULT_SLICE_CONFIG,
  augment: DEFAULT_AUGMENT,
  sliceSelection: 'all',
  epochs: 20,
  maxSteps: null,
  batchSize: 32,
  optimizer: { kind: 'adam', lr: 1e-3, weightDecay: 0 },
  schedule: { kind: 'cosine', warmupEpochs: 1, minLrFactor: 0.01 },
  loss: DEFAULT_LOSS_WEIGHTS,
  gradClip: 5,
  seed: 1,
  threads: 0,
  threshold: 0.5,
  timeBudgetMinutes: null,
  valEvery: 1,
  trainLimit: null,
  valLimit: null,
  valFlipTta: false,
  sampling: { typeRepeat: { solid: 1, 'part-solid': 1, 'ground-glass': 1 }, scanNegatives: null, synthetic: null },
  fold: null,
  valScans: [],
  labels: 'union',
};

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses a config object (from a file or code) over the defaults. `where` names it in errors. */
export function resolveTrainConfig(raw: unknown, where: string): TrainConfig {
  if (!isObject(raw)) throw new UserError(`${where}: a training config must be a JSON object`);
  const known = new Set(['name', 'model', ...Object.keys(DEFAULT_TRAIN)]);
  for (const k of Object.keys(raw)) if (!known.has(k) && !k.startsWith('$')) throw new UserError(`${where}: unknown setting "${k}"`);
  checkNestedKeys(raw, where);
  const slice: SliceConfig = { ...DEFAULT_SLICE_CONFIG, ...(isObject(raw['slice']) ? (raw['slice'] as Partial<SliceConfig>) : {}) };
  const modelRaw = isObject(raw['model']) ? raw['model'] : {};
  const arch = (modelRaw['arch'] ?? 'joint') as ModelConfig['arch'];
  if (arch !== 'unet' && arch !== 'resunet' && arch !== 'joint')
    throw new UserError(`${where}: model.arch must be unet, resunet or joint, got ${JSON.stringify(arch)}`);
  const model = { ...defaultModelFor(arch, inputChannels(slice)), ...modelRaw } as ModelConfig;
  // A joint model given only `features` gets a classification branch of half their width.
  if (
    model.arch === 'joint' &&
    modelRaw['features'] !== undefined &&
    modelRaw['clsFeatures'] === undefined &&
    Array.isArray(model.features)
  ) {
    model.clsFeatures = model.features.map((c) => Math.max(1, Math.ceil(c / 2)));
  }
  const cfg: TrainConfig = {
    ...DEFAULT_TRAIN,
    ...(raw as Partial<TrainConfig>),
    name: typeof raw['name'] === 'string' ? raw['name'] : 'model',
    model,
    slice,
    augment:
      raw['augment'] === null
        ? null
        : { ...DEFAULT_AUGMENT, ...(isObject(raw['augment']) ? (raw['augment'] as Partial<AugmentConfig>) : {}) },
    optimizer: {
      ...DEFAULT_TRAIN.optimizer,
      ...(isObject(raw['optimizer']) ? (raw['optimizer'] as Partial<TrainConfig['optimizer']>) : {}),
    },
    schedule: { ...DEFAULT_TRAIN.schedule, ...(isObject(raw['schedule']) ? (raw['schedule'] as Partial<TrainConfig['schedule']>) : {}) },
    loss: { ...DEFAULT_TRAIN.loss, ...(isObject(raw['loss']) ? (raw['loss'] as Partial<SegLossWeights>) : {}) },
    sampling: resolveSampling(raw['sampling'], where),
  };
  try {
    validateSliceConfig(cfg.slice);
    validateModelConfig(cfg.model);
  } catch (e) {
    throw new UserError(`${where}: ${(e as Error).message}`);
  }
  if (cfg.model.inChannels !== inputChannels(cfg.slice)) {
    const windows = 1 + (cfg.slice.extraWindows?.length ?? 0);
    const prompt = cfg.slice.promptChannel ? ' + 1 prompt channel' : '';
    const each = windows > 1 || prompt ? ` x ${windows} intensity windows${prompt} = ${inputChannels(cfg.slice)}` : '';
    throw new UserError(
      `${where}: model.inChannels (${cfg.model.inChannels}) must equal slice.contextSlices (${cfg.slice.contextSlices})${each}`,
    );
  }
  const posInt = (k: keyof TrainConfig) => {
    const v = cfg[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      throw new UserError(`${where}: ${k} must be a positive integer, got ${JSON.stringify(v)}`);
  };
  posInt('epochs');
  posInt('batchSize');
  posInt('valEvery');
  if (!['adam', 'adamw', 'sgd'].includes(cfg.optimizer.kind)) throw new UserError(`${where}: optimizer.kind must be adam, adamw or sgd`);
  if (!(cfg.optimizer.lr > 0)) throw new UserError(`${where}: optimizer.lr must be positive`);
  if (!['cosine', 'constant'].includes(cfg.schedule.kind)) throw new UserError(`${where}: schedule.kind must be cosine or constant`);
  if (!(cfg.threshold > 0 && cfg.threshold < 1)) throw new UserError(`${where}: threshold must be in (0, 1)`);
  if (cfg.loss.diceOver !== 'batch' && cfg.loss.diceOver !== 'sample')
    throw new UserError(`${where}: loss.diceOver must be batch or sample, got ${JSON.stringify(cfg.loss.diceOver)}`);
  if (!(cfg.loss.type >= 0)) throw new UserError(`${where}: loss.type must be >= 0, got ${JSON.stringify(cfg.loss.type)}`);
  if (cfg.loss.type > 0 && !(cfg.model.arch === 'joint' && cfg.model.typeClasses === NODULE_TYPES.length))
    throw new UserError(`${where}: loss.type needs a joint model with typeClasses ${NODULE_TYPES.length} (${NODULE_TYPES.join(', ')})`);
  if (!(cfg.sliceSelection === 'all' || cfg.sliceSelection === 'nodule'))
    throw new UserError(`${where}: sliceSelection must be all or nodule`);
  if (cfg.maxSteps !== null && !(Number.isInteger(cfg.maxSteps) && cfg.maxSteps >= 1))
    throw new UserError(`${where}: maxSteps must be a positive integer or null`);
  if (cfg.timeBudgetMinutes !== null && !(cfg.timeBudgetMinutes > 0))
    throw new UserError(`${where}: timeBudgetMinutes must be positive or null`);
  if (cfg.labels !== 'union' && cfg.labels !== 'agreement' && cfg.labels !== 'panel-agreement')
    throw new UserError(`${where}: labels must be union, agreement or panel-agreement, got ${JSON.stringify(cfg.labels)}`);
  if (!Array.isArray(cfg.valScans) || cfg.valScans.some((x) => typeof x !== 'string'))
    throw new UserError(`${where}: valScans must be a list of folders`);
  const f = cfg.fold;
  if (
    f !== null &&
    !(
      isObject(f) &&
      Number.isInteger(f.count) &&
      f.count >= 2 &&
      Number.isInteger(f.index) &&
      f.index >= 0 &&
      f.index < f.count &&
      Number.isInteger(f.seed)
    )
  ) {
    throw new UserError(`${where}: fold must be null or {index, count, seed} with 0 <= index < count, count >= 2`);
  }
  return cfg;
}

/**
 * The keys each nested setting may hold (a typo such as optimizer.learningRate would otherwise be
 * ignored and the default used without a word). Keys starting with "$" are comments.
 */
const NESTED_KEYS: Record<string, readonly string[]> = {
  slice: [...Object.keys(DEFAULT_SLICE_CONFIG), 'extraWindows', 'promptChannel'],
  augment: Object.keys(DEFAULT_AUGMENT),
  optimizer: ['kind', 'lr', 'weightDecay', 'momentum'],
  schedule: Object.keys(DEFAULT_TRAIN.schedule),
  loss: Object.keys(DEFAULT_TRAIN.loss),
  fold: ['index', 'count', 'seed'],
};
const NORMALISATION_KEYS: Record<string, readonly string[]> = {
  window: ['kind', 'minHU', 'maxHU'],
  zscore: ['kind', 'meanHU', 'stdHU', 'minHU', 'maxHU'],
};
const MODEL_KEYS: Record<ModelConfig['arch'], readonly string[]> = {
  unet: ['arch', 'inChannels', 'features', 'norm'],
  resunet: ['arch', 'inChannels', 'features', 'norm'],
  joint: [...Object.keys(defaultJointConfig()), 'typeClasses'],
};
const STD_KEYS = Object.keys(DEFAULT_STD);
const SIZE_PRIOR_KEYS = Object.keys(DEFAULT_SIZE_PRIOR);

function refuseUnknownKeys(value: unknown, allowed: readonly string[], path: string, where: string): void {
  if (value === undefined || value === null) return;
  if (!isObject(value)) throw new UserError(`${where}: ${path} must be an object, got ${JSON.stringify(value)}`);
  for (const k of Object.keys(value)) {
    if (!allowed.includes(k) && !k.startsWith('$'))
      throw new UserError(`${where}: unknown setting "${path}.${k}" (${path} takes ${allowed.join(', ')})`);
  }
}

/** Every nested object of a raw config holds only keys its setting knows; the message names the key path. */
function checkNestedKeys(raw: Json, where: string): void {
  for (const [key, allowed] of Object.entries(NESTED_KEYS)) refuseUnknownKeys(raw[key], allowed, key, where);
  const slice = raw['slice'];
  if (isObject(slice) && slice['normalisation'] !== undefined) {
    const n = slice['normalisation'];
    const kind = isObject(n) ? n['kind'] : undefined;
    const allowed = typeof kind === 'string' ? NORMALISATION_KEYS[kind] : undefined;
    if (!allowed) throw new UserError(`${where}: slice.normalisation.kind must be window or zscore, got ${JSON.stringify(kind)}`);
    refuseUnknownKeys(n, allowed, 'slice.normalisation', where);
  }
  const model = raw['model'];
  if (model !== undefined) {
    if (!isObject(model)) throw new UserError(`${where}: model must be an object`);
    const arch = model['arch'] ?? 'joint';
    if (arch === 'unet' || arch === 'resunet' || arch === 'joint') {
      refuseUnknownKeys(model, MODEL_KEYS[arch], 'model', where);
      if (arch === 'joint') {
        refuseUnknownKeys(model['std'], STD_KEYS, 'model.std', where);
        refuseUnknownKeys(model['sizePrior'], SIZE_PRIOR_KEYS, 'model.sizePrior', where);
      }
    }
  }
}

/**
 * Settings a resumed run may change: how long it trains and how it runs, not what it learns.
 * Any other difference between a checkpoint's config and the one given is refused unless forced.
 */
const RESUMABLE_CHANGES = new Set(['epochs', 'maxSteps', 'timeBudgetMinutes', 'threads', 'valEvery']);

/** The key paths (a.b.c) where two configs differ, `RESUMABLE_CHANGES` left out; [] when they agree. */
export function configDifferences(saved: unknown, given: unknown, path = ''): string[] {
  if (path === '' && isObject(saved) && isObject(given)) {
    const out: string[] = [];
    for (const k of new Set([...Object.keys(saved), ...Object.keys(given)])) {
      if (!RESUMABLE_CHANGES.has(k) && !k.startsWith('$')) out.push(...configDifferences(saved[k], given[k], k));
    }
    return out;
  }
  if (isObject(saved) && isObject(given)) {
    // "$..." keys are comments, at every level.
    return [...new Set([...Object.keys(saved), ...Object.keys(given)])]
      .filter((k) => !k.startsWith('$'))
      .flatMap((k) => configDifferences(saved[k], given[k], `${path}.${k}`));
  }
  if (Array.isArray(saved) && Array.isArray(given) && saved.length === given.length) {
    return saved.flatMap((v, i) => configDifferences(v, given[i], `${path}[${i}]`));
  }
  return JSON.stringify(saved) === JSON.stringify(given) ? [] : [path];
}

/** Refuses to resume a run whose config changed (what changed, and how to go on anyway). */
export function checkResumeConfig(saved: TrainConfig, given: TrainConfig, checkpoint: string): void {
  const changed = configDifferences(saved, given);
  if (changed.length === 0) return;
  const shown = changed.slice(0, 5).map((p) => `${p} ${JSON.stringify(valueAt(saved, p))} -> ${JSON.stringify(valueAt(given, p))}`);
  throw new UserError(
    `${checkpoint}: the config differs from the checkpoint's (${shown.join('; ')}${changed.length > 5 ? `; and ${changed.length - 5} more` : ''}): resume with the same config, or add --force`,
  );
}

function valueAt(obj: unknown, path: string): unknown {
  let v: unknown = obj;
  for (const part of path.split(/\.|\[(\d+)\]/).filter((x) => x !== undefined && x !== '')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

const NEGATIVE_KEYS = new Set(['scans', 'count', 'minDistanceMm', 'endGapMm', 'endSpanMm', 'endJitterMm', 'endPerSlice', 'seed']);

function resolveSampling(raw: unknown, where: string): SamplingConfig {
  const out: SamplingConfig = { typeRepeat: { ...DEFAULT_TRAIN.sampling.typeRepeat }, scanNegatives: null, synthetic: null };
  if (raw === undefined) return out;
  if (!isObject(raw)) throw new UserError(`${where}: sampling must be an object`);
  for (const k of Object.keys(raw))
    if (k !== 'typeRepeat' && k !== 'scanNegatives' && k !== 'synthetic' && !k.startsWith('$'))
      throw new UserError(`${where}: unknown setting "sampling.${k}"`);
  if (raw['synthetic'] !== undefined && raw['synthetic'] !== null) out.synthetic = resolveSynthetic(raw['synthetic'], where);
  if (raw['typeRepeat'] !== undefined) {
    const tr = raw['typeRepeat'];
    if (!isObject(tr)) throw new UserError(`${where}: sampling.typeRepeat must be an object`);
    for (const [k, v] of Object.entries(tr)) {
      if (!(NODULE_TYPES as readonly string[]).includes(k))
        throw new UserError(`${where}: sampling.typeRepeat: unknown type "${k}" (${NODULE_TYPES.join(', ')})`);
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
        throw new UserError(`${where}: sampling.typeRepeat.${k} must be a positive integer, got ${JSON.stringify(v)}`);
      out.typeRepeat[k as NoduleType] = v;
    }
  }
  const sn = raw['scanNegatives'];
  if (sn !== undefined && sn !== null) {
    if (!isObject(sn)) throw new UserError(`${where}: sampling.scanNegatives must be an object or null`);
    for (const k of Object.keys(sn))
      if (!NEGATIVE_KEYS.has(k) && !k.startsWith('$')) throw new UserError(`${where}: unknown setting "sampling.scanNegatives.${k}"`);
    const scans = sn['scans'];
    if (!Array.isArray(scans) || scans.length === 0 || scans.some((x) => typeof x !== 'string'))
      throw new UserError(`${where}: sampling.scanNegatives.scans must be a non-empty list of folders`);
    for (const k of ['count', 'endPerSlice', 'seed']) {
      const v = sn[k];
      if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= 0))
        throw new UserError(`${where}: sampling.scanNegatives.${k} must be a non-negative integer`);
    }
    for (const k of ['minDistanceMm', 'endGapMm', 'endSpanMm', 'endJitterMm']) {
      const v = sn[k];
      if (v !== undefined && !(typeof v === 'number' && v >= 0))
        throw new UserError(`${where}: sampling.scanNegatives.${k} must be a non-negative number (mm)`);
    }
    out.scanNegatives = sn as SamplingConfig['scanNegatives'];
  }
  return out;
}

const SYNTHETIC_KEYS = new Set(['counts', 'seed', 'groundGlassEdgeMm', 'groundGlassTextureHU']);

function resolveSynthetic(raw: unknown, where: string): SyntheticSampling {
  if (!isObject(raw)) throw new UserError(`${where}: sampling.synthetic must be an object or null`);
  for (const k of Object.keys(raw))
    if (!SYNTHETIC_KEYS.has(k) && !k.startsWith('$')) throw new UserError(`${where}: unknown setting "sampling.synthetic.${k}"`);
  const counts = raw['counts'];
  if (!isObject(counts) || Object.keys(counts).length === 0)
    throw new UserError(`${where}: sampling.synthetic.counts must name at least one type`);
  const out: SyntheticSampling = { counts: {}, seed: 1, groundGlassEdgeMm: 0, groundGlassTextureHU: 0 };
  for (const [k, v] of Object.entries(counts)) {
    if (!(NODULE_TYPES as readonly string[]).includes(k))
      throw new UserError(`${where}: sampling.synthetic.counts: unknown type "${k}" (${NODULE_TYPES.join(', ')})`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
      throw new UserError(`${where}: sampling.synthetic.counts.${k} must be a non-negative integer, got ${JSON.stringify(v)}`);
    out.counts[k as NoduleType] = v;
  }
  const seed = raw['seed'];
  if (seed !== undefined) {
    if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0)
      throw new UserError(`${where}: sampling.synthetic.seed must be a non-negative integer`);
    out.seed = seed;
  }
  for (const k of ['groundGlassEdgeMm', 'groundGlassTextureHU'] as const) {
    const v = raw[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v))
      throw new UserError(`${where}: sampling.synthetic.${k} must be a non-negative number`);
    out[k] = v;
  }
  return out;
}

export function loadTrainConfig(file: string): TrainConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`${file}: cannot read config: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  return resolveTrainConfig(raw, file);
}

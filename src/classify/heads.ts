/**
 * The nodule-level heads: small classifiers on the frozen network's pooled features and the
 * mask's HU statistics (features.ts), predicting the nodule's type (solid, part-solid,
 * ground-glass), calcification, the LIDC readers' malignancy suspicion (rating >= 4) and marked
 * spiculation (rating >= 3).
 *
 * They are stored in the model file's metadata under HEADS_KEY (JSON, weights as base64
 * float32), not as tensors: every loader of this project loads the file's tensors strictly, so
 * new tensor names would break the loaders already out there, while an extra metadata entry is
 * ignored by them. Applying them is plain arithmetic (no libtorch), so it is pure and testable.
 */
import { NODULE_TYPES, type NoduleType } from '../data/nodule-type.ts';

export const HEADS_KEY = 'noduleseg.heads';
export const HEADS_FORMAT = 'noduleseg.heads';

/** One fully connected layer: weight [out x in] row-major, bias [out]. */
export interface DenseLayer {
  inFeatures: number;
  outFeatures: number;
  weight: Float32Array;
  bias: Float32Array;
}

/**
 * A head: layers with ReLU between them; the last has one output (sigmoid: the probability of
 * the positive class) or k outputs (softmax over `classes`).
 */
export interface Head {
  classes: string[];
  layers: DenseLayer[];
}

export type HeadName = 'type' | 'calcified' | 'malignancy' | 'spiculation';

export interface NoduleHeads {
  format: typeof HEADS_FORMAT;
  version: 1;
  /** Which features, in order: the network's pooled features, then HU_FEATURE_NAMES. */
  features: { network: number; hu: readonly string[] };
  /** Standardisation applied before the heads: (x - mean) / std. */
  mean: Float32Array;
  std: Float32Array;
  heads: Record<HeadName, Head>;
  /** How they were made and measured (command, data, cross-validation and val numbers). */
  provenance: Record<string, unknown>;
}

export interface NoduleClassification {
  type: NoduleType;
  /** Probabilities of solid, part-solid, ground-glass (NODULE_TYPES' order). */
  typeProbabilities: [number, number, number];
  /** Probability that the LIDC readers rated the nodule calcified. */
  calcified: number;
  /** Probability of a malignancy rating >= 4: the radiologists' suspicion on LIDC, not a diagnosis. */
  malignancySuspicion: number;
  /** Probability of marked spiculation (rating >= 3). */
  spiculation: number;
}

/** The forward pass of one head on standardised features. */
export function headForward(head: Head, x: Float32Array): number[] {
  let h: Float32Array = x;
  head.layers.forEach((layer, n) => {
    if (h.length !== layer.inFeatures) throw new RangeError(`head layer ${n}: expected ${layer.inFeatures} inputs, got ${h.length}`);
    const out = new Float32Array(layer.outFeatures);
    for (let o = 0; o < layer.outFeatures; o++) {
      let s = layer.bias[o]!;
      const row = o * layer.inFeatures;
      for (let i = 0; i < layer.inFeatures; i++) s += layer.weight[row + i]! * h[i]!;
      out[o] = n < head.layers.length - 1 ? Math.max(0, s) : s;
    }
    h = out;
  });
  if (h.length === 1) return [1 / (1 + Math.exp(-h[0]!))];
  const max = Math.max(...h);
  const e = Array.from(h, (v) => Math.exp(v - max));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

/** Standardises raw features with the heads' statistics. */
export function standardise(heads: NoduleHeads, raw: Float32Array): Float32Array {
  const d = heads.mean.length;
  if (raw.length !== d) throw new RangeError(`nodule heads: expected ${d} features, got ${raw.length}`);
  const out = new Float32Array(d);
  for (let i = 0; i < d; i++) out[i] = (raw[i]! - heads.mean[i]!) / heads.std[i]!;
  return out;
}

const round4 = (v: number) => Math.round(v * 1e4) / 1e4;

/** Type, calcification, malignancy suspicion and spiculation of one nodule from its raw features. */
export function classifyNodule(heads: NoduleHeads, raw: Float32Array): NoduleClassification {
  const x = standardise(heads, raw);
  const t = headForward(heads.heads.type, x).map(round4);
  let best = 0;
  for (let i = 1; i < t.length; i++) if (t[i]! > t[best]!) best = i;
  return {
    type: NODULE_TYPES[best]!,
    typeProbabilities: [t[0]!, t[1]!, t[2]!],
    calcified: round4(headForward(heads.heads.calcified, x)[0]!),
    malignancySuspicion: round4(headForward(heads.heads.malignancy, x)[0]!),
    spiculation: round4(headForward(heads.heads.spiculation, x)[0]!),
  };
}

const toB64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
function fromB64(s: unknown, n: number, what: string): Float32Array {
  if (typeof s !== 'string') throw new Error(`${what}: missing`);
  const b = Buffer.from(s, 'base64');
  if (b.byteLength !== n * 4) throw new Error(`${what}: expected ${n} float32 values, got ${b.byteLength} bytes`);
  const out = new Float32Array(n);
  new Uint8Array(out.buffer).set(b);
  if (out.some((v) => !Number.isFinite(v))) throw new Error(`${what}: not finite`);
  return out;
}

/** The metadata string of the heads. */
export function serialiseHeads(h: NoduleHeads): string {
  const heads = Object.fromEntries(
    Object.entries(h.heads).map(([k, head]) => [
      k,
      {
        classes: head.classes,
        layers: head.layers.map((l) => ({
          inFeatures: l.inFeatures,
          outFeatures: l.outFeatures,
          weight: toB64(l.weight),
          bias: toB64(l.bias),
        })),
      },
    ]),
  );
  return JSON.stringify({
    format: h.format,
    version: h.version,
    features: h.features,
    mean: toB64(h.mean),
    std: toB64(h.std),
    heads,
    provenance: h.provenance,
  });
}

const HEAD_NAMES: readonly HeadName[] = ['type', 'calcified', 'malignancy', 'spiculation'];

/** Parses and checks the heads' metadata string; throws an Error naming what is wrong. */
export function parseHeads(text: string): NoduleHeads {
  const j = JSON.parse(text) as Record<string, unknown>;
  if (j['format'] !== HEADS_FORMAT || j['version'] !== 1)
    throw new Error(`unsupported heads format ${String(j['format'])} v${String(j['version'])}`);
  const features = j['features'] as { network?: unknown; hu?: unknown };
  if (!features || !Number.isInteger(features.network) || !Array.isArray(features.hu) || !features.hu.every((x) => typeof x === 'string'))
    throw new Error('heads: bad feature description');
  const d = (features.network as number) + features.hu.length;
  const mean = fromB64(j['mean'], d, 'heads mean');
  const std = fromB64(j['std'], d, 'heads std');
  if (std.some((v) => !(v > 0))) throw new Error('heads: std must be > 0');
  const rawHeads = j['heads'] as Record<string, { classes?: unknown; layers?: unknown }>;
  const heads = {} as Record<HeadName, Head>;
  for (const name of HEAD_NAMES) {
    const h = rawHeads?.[name];
    if (!h || !Array.isArray(h.classes) || !Array.isArray(h.layers) || h.layers.length === 0)
      throw new Error(`heads: head "${name}" missing`);
    let inF = d;
    const layers = (h.layers as Array<Record<string, unknown>>).map((l, n) => {
      const i = l['inFeatures'],
        o = l['outFeatures'];
      if (i !== inF || !Number.isInteger(o) || (o as number) < 1) throw new Error(`heads: head "${name}" layer ${n} has a bad shape`);
      inF = o as number;
      return {
        inFeatures: i,
        outFeatures: o as number,
        weight: fromB64(l['weight'], (i as number) * (o as number), `heads ${name} weight`),
        bias: fromB64(l['bias'], o as number, `heads ${name} bias`),
      };
    });
    const k = (h.classes as unknown[]).length;
    if (!(inF === k || (inF === 1 && k === 2))) throw new Error(`heads: head "${name}" ends in ${inF} outputs for ${k} classes`);
    heads[name] = { classes: h.classes as string[], layers };
  }
  if (heads.type.classes.join() !== NODULE_TYPES.join()) throw new Error(`heads: type classes must be ${NODULE_TYPES.join(', ')}`);
  return {
    format: HEADS_FORMAT,
    version: 1,
    features: { network: features.network as number, hu: features.hu as string[] },
    mean,
    std,
    heads,
    provenance: (j['provenance'] as Record<string, unknown>) ?? {},
  };
}

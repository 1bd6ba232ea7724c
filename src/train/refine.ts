/**
 * Fitting the refinement stage (inference/refine.ts) on held-out probabilities: full-batch Adam
 * on binary cross-entropy against the readers' share per voxel, the network's logit as an offset,
 * so that the stage learns only the correction and starts as the network itself.
 */
import { tensor, tidy, keep, noGrad, manualSeed, F, type Tensor } from '../tensor/index.ts';
import { Linear, Module } from '../nn/index.ts';
import { Adam } from '../optim/index.ts';
import { featureStats } from '../classify/train.ts';
import { standardised } from '../classify/fit.ts';
import { REFINE_FEATURE_NAMES, REFINE_FEATURES_V1, REFINE_FORMAT, featureColumns, type RefineStage } from '../inference/refine.ts';

/** One crop's rows: its region's features (refineFeatures) and the readers' share per voxel. */
export interface RefineRows {
  x: Float32Array;
  /** Target in [0, 1] per row: the share of readers who marked the voxel. */
  y: Float32Array;
  /** The crop's weight against the others' (default 1), as typeBalanceWeights gives it. */
  weight?: number;
}

export interface RefineFitOptions {
  /** The features the rows hold (refineFeatures' names), stored with the stage. */
  features: readonly string[];
  /** Width of the hidden layer (0: a linear correction). */
  hidden: number;
  steps: number;
  lr: number;
  seed: number;
  /**
   * How the rows count in the loss: 'voxel' (every voxel alike, so large nodules dominate) or
   * 'crop' (each crop's rows weigh as much in all as any other crop's, as the per-nodule mean Dice counts them).
   */
  weighting: 'voxel' | 'crop';
}

/**
 * The shipped recipe of session 16: every feature, 16 hidden units, each crop alike (session 15:
 * REFINE_FEATURES_V1, linear, every voxel alike).
 */
export const DEFAULT_REFINE_FIT: RefineFitOptions = {
  features: REFINE_FEATURE_NAMES,
  hidden: 16,
  steps: 400,
  lr: 0.01,
  seed: 1,
  weighting: 'crop',
};

/** The feature sets the fitting scripts take by name (--features): session 15's 21, or every one. */
export function refineFeatureSet(name: string): readonly string[] | undefined {
  const sets: Record<string, readonly string[]> = { v1: REFINE_FEATURES_V1, all: REFINE_FEATURE_NAMES };
  return Object.hasOwn(sets, name) ? sets[name] : undefined;
}

export const isRefineWeighting = (w: string): w is RefineFitOptions['weighting'] => w === 'voxel' || w === 'crop';

/**
 * Crop weights that balance the nodule types: each crop weighs (its type's share of the crops)
 * ^ -exponent, so 0 leaves them alike and 1 gives each type the same weight in all. A crop of
 * unknown type counts as solid, the type most crops are.
 */
export function typeBalanceWeights(types: readonly (string | null)[], exponent: number): number[] {
  const count = new Map<string, number>();
  const key = (t: string | null) => t ?? 'solid';
  for (const t of types) count.set(key(t), (count.get(key(t)) ?? 0) + 1);
  return types.map((t) => (count.get(key(t))! / types.length) ** -exponent);
}

class Correction extends Module<[Tensor], Tensor> {
  readonly layers: Linear[];
  constructor(d: number, hidden: number) {
    super();
    this.layers =
      hidden > 0
        ? [this.registerModule('l0', new Linear(d, hidden)), this.registerModule('l1', new Linear(hidden, 1))]
        : [this.registerModule('l0', new Linear(d, 1))];
  }
  forward(x: Tensor): Tensor {
    let h = this.layers[0]!.forward(x);
    for (let k = 1; k < this.layers.length; k++) h = this.layers[k]!.forward(h.relu());
    return h;
  }
}

/** Fits a stage on the rows of many crops; `provenance` is stored with it. */
export function fitRefineStage(crops: readonly RefineRows[], o: RefineFitOptions, provenance: Record<string, unknown> = {}): RefineStage {
  featureColumns(o.features);
  const D = o.features.length;
  const n = crops.reduce((s, c) => s + c.y.length, 0);
  if (n === 0) throw new RangeError('fitRefineStage: no rows');
  const x = new Float32Array(n * D),
    y = new Float32Array(n),
    base = new Float32Array(n),
    weight = new Float32Array(n);
  let at = 0;
  for (const c of crops) {
    if (c.x.length !== c.y.length * D) throw new RangeError(`fitRefineStage: ${c.x.length} values are not ${c.y.length} rows of ${D}`);
    x.set(c.x, at * D);
    y.set(c.y, at);
    for (let k = 0; k < c.y.length; k++) base[at + k] = c.x[k * D]!;
    const w = c.weight ?? 1;
    weight.fill(o.weighting === 'crop' ? w / Math.max(1, c.y.length) : w, at, at + c.y.length);
    at += c.y.length;
  }
  // Weights average 1 whatever the weighting, so the learning rate means the same.
  let total = 0;
  for (let k = 0; k < n; k++) total += weight[k]!;
  if (!(total > 0)) throw new RangeError('fitRefineStage: the crops weigh nothing');
  for (let k = 0; k < n; k++) weight[k] = (weight[k]! * n) / total;
  // The same standardisation as the nodule-level heads (a constant column gets std 1).
  const stats = featureStats(x, n);
  const mean = Array.from(stats.mean),
    std = Array.from(stats.std);
  manualSeed(o.seed);
  const net = new Correction(D, o.hidden);
  const last = net.layers[net.layers.length - 1]!;
  noGrad(() => {
    last.weight.zero_();
    last.bias!.zero_();
  });
  const opt = new Adam(net.parameters(), { lr: o.lr });
  const X = keep(tensor(standardised(x, n, stats), [n, D]));
  const Y = keep(tensor(y, [n, 1]));
  const B = keep(tensor(base, [n, 1]));
  const W = keep(tensor(weight, [n, 1]));
  let finalLoss = Number.NaN;
  try {
    net.train(true);
    for (let s = 0; s < o.steps; s++)
      tidy(() => {
        opt.zeroGrad();
        const loss = F.binaryCrossEntropyWithLogits(net.forward(X).add(B), Y, { weight: W });
        loss.backward();
        opt.step();
        if (s === o.steps - 1) finalLoss = (loss.toTypedArray() as Float32Array)[0]!;
      });
    const baseLoss = tidy(() => (F.binaryCrossEntropyWithLogits(B, Y, { weight: W }).toTypedArray() as Float32Array)[0]!);
    return {
      format: REFINE_FORMAT,
      version: 1,
      features: [...o.features],
      mean,
      std,
      layers: net.layers.map((l) => ({
        inFeatures: l.inFeatures,
        outFeatures: l.outFeatures,
        weight: Array.from(l.weight.toTypedArray() as Float32Array),
        bias: Array.from(l.bias!.toTypedArray() as Float32Array),
      })),
      provenance: {
        ...provenance,
        fit: {
          hidden: o.hidden,
          steps: o.steps,
          lr: o.lr,
          seed: o.seed,
          weighting: o.weighting,
          rows: n,
          crops: crops.length,
          networkLoss: baseLoss,
          stageLoss: finalLoss,
        },
      },
    };
  } finally {
    X.dispose();
    Y.dispose();
    B.dispose();
    W.dispose();
    net.dispose();
  }
}

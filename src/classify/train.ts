/**
 * Training a nodule-level head on cached, standardised features, in the project's tensor API:
 * full-batch Adam on class-weighted cross-entropy with an L2 penalty (logistic regression when
 * `hidden` is 0, else one hidden ReLU layer with dropout).
 */
import { tensor, tidy, keep, manualSeed, F, type Tensor } from '../tensor/index.ts';
import { Linear, Dropout, Module } from '../nn/index.ts';
import { Adam } from '../optim/index.ts';
import type { Head, DenseLayer } from './heads.ts';

export interface HeadTrainOptions {
  hidden: number;
  /** L2 penalty on the weights (not the biases), per sample. */
  l2: number;
  steps: number;
  lr: number;
  dropout: number;
  /** Class weights: inverse class frequency raised to this power (0 = unweighted, 1 = balanced). */
  balance: number;
  seed: number;
}

export const DEFAULT_HEAD_TRAINING: HeadTrainOptions = { hidden: 0, l2: 1e-2, steps: 300, lr: 0.02, dropout: 0.2, balance: 0.5, seed: 1 };

class Mlp extends Module<[Tensor], Tensor> {
  readonly layers: Linear[];
  readonly drop: Dropout;
  constructor(d: number, hidden: number, k: number, p: number) {
    super();
    this.layers =
      hidden > 0
        ? [this.registerModule('l0', new Linear(d, hidden)), this.registerModule('l1', new Linear(hidden, k))]
        : [this.registerModule('l0', new Linear(d, k))];
    this.drop = this.registerModule('drop', new Dropout(p));
  }
  forward(x: Tensor): Tensor {
    if (this.layers.length === 1) return this.layers[0]!.forward(x);
    return this.layers[1]!.forward(this.drop.forward(this.layers[0]!.forward(this.drop.forward(x)).relu()));
  }
}

/**
 * Trains one head on x [n x d] (standardised) and labels 0..k-1; a two-class head is returned
 * with one output (the positive class's logit minus the negative's, so sigmoid gives softmax's p1).
 */
export function trainHead(
  x: Float32Array,
  labels: readonly number[],
  classes: readonly string[],
  o: HeadTrainOptions = DEFAULT_HEAD_TRAINING,
): Head {
  const n = labels.length,
    k = classes.length,
    d = x.length / n;
  if (!Number.isInteger(d) || d < 1) throw new RangeError(`trainHead: ${x.length} values are not ${n} rows`);
  manualSeed(o.seed);
  const counts = new Array<number>(k).fill(0);
  for (const y of labels) counts[y]!++;
  const weights = counts.map((c) => (c ? (n / (k * c)) ** o.balance : 0));
  const net = new Mlp(d, o.hidden, k, o.dropout);
  const opt = new Adam(net.parameters(), { lr: o.lr });
  const X = keep(tensor(x, [n, d]));
  const Y = keep(
    tensor(
      BigInt64Array.from(labels, (v) => BigInt(v)),
      [n],
    ),
  );
  const W = keep(tensor(Float32Array.from(weights), [k]));
  try {
    net.train(true);
    for (let s = 0; s < o.steps; s++) {
      tidy(() => {
        opt.zeroGrad();
        let loss = F.crossEntropy(net.forward(X), Y, { weight: W });
        for (const l of net.layers)
          loss = loss.add(
            l.weight
              .square()
              .sum()
              .mul(o.l2 / 2),
          );
        loss.backward();
        opt.step();
      });
    }
    net.train(false);
    const layers: DenseLayer[] = net.layers.map((l) => ({
      inFeatures: l.inFeatures,
      outFeatures: l.outFeatures,
      weight: Float32Array.from(l.weight.toTypedArray() as Float32Array),
      bias: Float32Array.from(l.bias!.toTypedArray() as Float32Array),
    }));
    if (k === 2) {
      const last = layers[layers.length - 1]!;
      const m = last.inFeatures;
      const w = new Float32Array(m);
      for (let i = 0; i < m; i++) w[i] = last.weight[m + i]! - last.weight[i]!;
      layers[layers.length - 1] = { inFeatures: m, outFeatures: 1, weight: w, bias: Float32Array.of(last.bias[1]! - last.bias[0]!) };
    }
    return { classes: [...classes], layers };
  } finally {
    X.dispose();
    Y.dispose();
    W.dispose();
    net.dispose();
  }
}

/** Column means and standard deviations (a constant column gets std 1). */
export function featureStats(x: Float32Array, n: number): { mean: Float32Array; std: Float32Array } {
  const d = x.length / n;
  const mean = new Float32Array(d),
    std = new Float32Array(d);
  for (let j = 0; j < d; j++) {
    let s = 0,
      q = 0;
    for (let i = 0; i < n; i++) {
      const v = x[i * d + j]!;
      s += v;
      q += v * v;
    }
    const m = s / n;
    mean[j] = m;
    const sd = Math.sqrt(Math.max(0, q / n - m * m));
    std[j] = sd > 1e-6 ? sd : 1;
  }
  return { mean, std };
}

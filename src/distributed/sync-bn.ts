/**
 * Synchronised batch norm (PyTorch's SyncBatchNorm): in training, every BatchNorm normalises with
 * the mean and variance of the whole global batch, all ranks together, and its backward uses the
 * global sums of dy and dy * x_hat, so W replicas of batch b compute what one model does on W * b.
 *
 * Our autograd has no custom functions or hooks, so the backward runs in segments: each batch
 * norm's output is a fresh leaf (its forward runs outside autograd), the loss is backpropagated to
 * those leaves, and then, last batch norm first, each one's input gradient is formed from the
 * all-reduced sums and backpropagated from its input down to the leaves before it. One backward in
 * all, plus three small all-reduces per batch norm (two forward, one backward).
 */
import { _BatchNorm, type AnyModule } from '../nn/index.ts';
import { keep, noGrad, tensor, zerosLike, type Tensor } from '../tensor/index.ts';
import type { ProcessGroup } from './group.ts';

interface TapeEntry {
  /** The batch norm's input (in the graph) and output (a leaf). */
  x: Tensor;
  y: Tensor;
  xHat: Tensor;
  /** [1, C, 1, ...] */
  invStd: Tensor;
  weight: Tensor | null;
  bias: Tensor | null;
  dims: number[];
  /** Values per channel over the global batch. */
  count: number;
}

function channelView(t: Tensor, ndim: number): Tensor {
  const shape = new Array<number>(ndim).fill(1);
  shape[1] = t.numel;
  return t.reshape(shape);
}

/** Per-channel sums of `t` over `dims`, as float64 (they are then summed over the ranks). */
function channelSums(t: Tensor, dims: number[]): Float64Array {
  const s = t.sum(dims);
  const out = Float64Array.from(s.toTypedArray() as Float32Array);
  s.dispose();
  return out;
}

export class SyncBatchNorm {
  private readonly group: ProcessGroup;
  private tape: TapeEntry[] = [];
  private converted = 0;
  private readonly params: Tensor[] = [];

  constructor(group: ProcessGroup) {
    this.group = group;
  }

  /** Batch norms converted so far. */
  get count(): number {
    return this.converted;
  }

  /**
   * Makes every BatchNorm of `model` synchronised in training (convert_sync_batchnorm); in eval
   * mode, and when frozen, they keep their own forward. Returns how many were converted.
   */
  convert(model: AnyModule): number {
    let n = 0;
    for (const [, m] of model.namedModules()) {
      if (!(m instanceof _BatchNorm)) continue;
      const bn = m;
      const own = bn.forward.bind(bn);
      bn.forward = (x: Tensor): Tensor => (bn.training ? this.forward(bn, x) : own(x));
      n++;
    }
    this.converted += n;
    if (n > 0) this.params.push(...model.parameters());
    return n;
  }

  private forward(bn: _BatchNorm, x: Tensor): Tensor {
    const C = x.shape[1]!;
    if (x.ndim < 3 || C !== bn.numFeatures)
      throw new Error(`SyncBatchNorm: expected input [N, ${bn.numFeatures}, ...], got [${x.shape.join(', ')}]`);
    const dims = [0, ...Array.from({ length: x.ndim - 2 }, (_, i) => i + 2)];
    const record = x.requiresGrad || bn.weight?.requiresGrad === true || bn.bias?.requiresGrad === true;
    // The model may dispose its tensors (or free them in a tidy scope of its own) before the
    // backward: the tape holds handles of its own, kept until the backward disposes them.
    const xOwn = record ? keep(x.view(x.shape)) : null;
    const out = noGrad(() => {
      // Two passes over the global batch: its mean, then the squared deviations from it (no
      // cancellation, as in one batch norm over all the data).
      const sums = new Float64Array(C + 1);
      sums.set(channelSums(x, dims));
      sums[C] = x.numel / C;
      this.group.allReduce([sums]);
      const count = sums[C]!;
      const mean = new Float32Array(C);
      for (let c = 0; c < C; c++) mean[c] = sums[c]! / count;
      const meanT = channelView(tensor(mean, [C]), x.ndim);
      const xc = x.sub(meanT);
      const sq = channelSums(xc.mul(xc), dims);
      this.group.allReduce([sq]);
      const varBiased = Float32Array.from(sq, (v) => v / count);
      const invStd = channelView(
        tensor(
          Float32Array.from(varBiased, (v) => 1 / Math.sqrt(v + bn.eps)),
          [C],
        ),
        x.ndim,
      );
      const xHat = xc.mul(invStd);
      let y = xHat;
      if (bn.weight) y = y.mul(channelView(bn.weight, x.ndim));
      if (bn.bias) y = y.add(channelView(bn.bias, x.ndim));
      this.updateRunningStats(bn, mean, varBiased, count);
      if (!xOwn) return { y, leaf: null };
      const leaf = keep(y.detach().requiresGrad_(true));
      // The same on every rank (same model), so the backward's all-reduces stay in step.
      this.tape.push({ x: xOwn, y: leaf, xHat: keep(xHat), invStd: keep(invStd), weight: bn.weight, bias: bn.bias, dims, count });
      return { y, leaf };
    });
    // The model gets a view of the leaf (with autograd on), so its gradient gathers in the leaf.
    return out.leaf ? out.leaf.view(out.leaf.shape) : out.y;
  }

  private updateRunningStats(bn: _BatchNorm, mean: Float32Array, varBiased: Float32Array, count: number): void {
    if (!bn.trackRunningStats || !bn.runningMean || !bn.runningVar) return;
    // PyTorch's exponential_average_factor: momentum, or a cumulative average when it is null.
    let factor = bn.momentum ?? 0;
    if (bn.numBatchesTracked) {
      const n = Number(bn.numBatchesTracked.item()) + 1;
      bn.numBatchesTracked.fill_(n);
      factor = bn.momentum ?? 1 / n;
    }
    const unbiased = Float32Array.from(varBiased, (v) => (count > 1 ? (v * count) / (count - 1) : v));
    const m = tensor(mean, [mean.length]);
    const v = tensor(unbiased, [unbiased.length]);
    bn.runningMean.mulScalar_(1 - factor).addScaled_(m, factor);
    bn.runningVar.mulScalar_(1 - factor).addScaled_(v, factor);
    m.dispose();
    v.dispose();
  }

  /** Forgets the batch norms recorded since the last backward (a forward that is not trained on). */
  reset(): void {
    for (const e of this.tape) disposeEntry(e);
    this.tape = [];
  }

  /**
   * Backpropagates `loss` through the model with synchronised batch-norm gradients (replaces
   * loss.backward()). Parameter gradients are this rank's share; DataParallel averages them.
   */
  backward(loss: Tensor): void {
    const tape = this.tape;
    this.tape = [];
    // Every gradient that the segments add to gets a buffer of its own first. libtorch's
    // AccumulateGrad adopts an incoming gradient as .grad when there is none, and one tensor can
    // reach two leaves (both inputs of an add): later segments would then add into both through
    // the shared buffer, counting their part twice (seen on residual blocks).
    noGrad(() => {
      const ownBuffer = (t: Tensor) => {
        const g = t.grad;
        if (g) return g.dispose();
        const z = zerosLike(t);
        t.grad = z;
        z.dispose();
      };
      for (const e of tape) ownBuffer(e.y);
      for (const p of this.params) if (p.requiresGrad) ownBuffer(p);
    });
    // Segments can share nodes (one input feeding two batch norms), so graphs are kept until the
    // step's tensors are disposed.
    loss.backward(undefined, { retainGraph: true });
    for (let i = tape.length - 1; i >= 0; i--) {
      const e = tape[i]!;
      const C = e.invStd.numel;
      const dx = noGrad(() => {
        const dy = e.y.grad ?? zerosLike(e.y);
        const local = new Float64Array(2 * C);
        local.set(channelSums(dy, e.dims), 0);
        local.set(channelSums(dy.mul(e.xHat), e.dims), C);
        // Affine gradients from this rank's sums (autograd's, for this rank's part of the batch).
        accumulate(e.bias, local.subarray(0, C));
        accumulate(e.weight, local.subarray(C));
        this.group.allReduce([local]);
        const meanDy = channelView(
          tensor(
            Float32Array.from(local.subarray(0, C), (v) => v / e.count),
            [C],
          ),
          dy.ndim,
        );
        const meanDyXHat = channelView(
          tensor(
            Float32Array.from(local.subarray(C), (v) => v / e.count),
            [C],
          ),
          dy.ndim,
        );
        let scale = e.invStd;
        if (e.weight) scale = scale.mul(channelView(e.weight, dy.ndim));
        return dy.sub(meanDy).sub(e.xHat.mul(meanDyXHat)).mul(scale);
      });
      if (e.x.requiresGrad) e.x.backward(dx, { retainGraph: true });
      disposeEntry(e);
    }
  }
}

function disposeEntry(e: TapeEntry): void {
  for (const t of [e.x, e.y, e.xHat, e.invStd]) if (!t.isDisposed) t.dispose();
}

function accumulate(param: Tensor | null, sums: Float64Array): void {
  if (!param?.requiresGrad) return;
  const add = tensor(Float32Array.from(sums), param.shape);
  const g = param.grad;
  if (g) {
    g.addScaled_(add, 1);
    g.dispose();
  } else param.grad = add;
  add.dispose();
}

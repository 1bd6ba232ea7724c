/**
 * Data-parallel replicas, as PyTorch's DistributedDataParallel: rank 0's parameters and buffers
 * are broadcast at the start; after each backward the gradients are all-reduced in buckets and
 * averaged, so every replica takes the same optimizer step.
 *
 * Our autograd has no per-parameter hooks, so the buckets are reduced after the whole backward
 * (DDP overlaps them with it); Gloo still pipelines the buckets, which are all sent at once.
 */
import { noGrad, tensor, type Tensor } from '../tensor/index.ts';
import type { ProcessGroup } from './group.ts';

/** What DDP needs of a model. */
export interface Replica {
  parameters(): Tensor[];
  buffers(): Tensor[];
}

export interface DataParallelOptions {
  /** DDP's bucket_cap_mb (default 25 MB). */
  bucketCapMb?: number;
}

interface Bucket {
  params: Tensor[];
  /** Offset of each parameter in `flat` (floats). */
  offsets: number[];
  flat: Float32Array;
}

const BYTES_PER_FLOAT = 4;

/** Splits `tensors` (in the given order) into buckets of at most capBytes (one tensor may exceed it alone). */
function makeBuckets(tensors: Tensor[], capBytes: number): Bucket[] {
  const buckets: Bucket[] = [];
  let cur: Tensor[] = [];
  let curFloats = 0;
  const close = () => {
    if (cur.length === 0) return;
    const offsets: number[] = [];
    let off = 0;
    for (const t of cur) {
      offsets.push(off);
      off += t.numel;
    }
    buckets.push({ params: cur, offsets, flat: new Float32Array(off) });
    cur = [];
    curFloats = 0;
  };
  for (const t of tensors) {
    if (cur.length > 0 && (curFloats + t.numel) * BYTES_PER_FLOAT > capBytes) close();
    cur.push(t);
    curFloats += t.numel;
  }
  close();
  return buckets;
}

/**
 * Copies each bucket slot back into its tensor (under noGrad): into the tensor itself ('values')
 * or into its gradient ('grads'; a parameter without one gets the slot as its gradient).
 */
function unflatten(b: Bucket, into: 'values' | 'grads'): void {
  noGrad(() => {
    b.params.forEach((p, i) => {
      const off = b.offsets[i]!;
      const value = tensor(b.flat.subarray(off, off + p.numel), p.shape);
      if (into === 'values') p.copy_(value);
      else {
        const g = p.grad;
        if (g) {
          g.copy_(value);
          g.dispose();
        } else p.grad = value;
      }
      // Only this handle goes: a gradient set from it keeps its own reference to the data.
      value.dispose();
    });
  });
}

export class DataParallel {
  readonly group: ProcessGroup;
  private readonly model: Replica;
  /** Trainable parameters, last registered first (the order their gradients become ready in DDP). */
  private readonly gradBuckets: Bucket[];
  private readonly capBytes: number;

  constructor(group: ProcessGroup, model: Replica, options: DataParallelOptions = {}) {
    this.group = group;
    this.model = model;
    this.capBytes = (options.bucketCapMb ?? 25) * 1024 * 1024;
    const trainable = model.parameters().filter((p) => p.requiresGrad);
    for (const p of trainable) if (p.dtype !== 'float32') throw new Error(`DataParallel: parameters must be float32, got ${p.dtype}`);
    this.gradBuckets = makeBuckets([...trainable].reverse(), this.capBytes);
  }

  /** Sizes of the gradient buckets in floats (for logs and tests). */
  get bucketSizes(): number[] {
    return this.gradBuckets.map((b) => b.flat.length);
  }

  /** Every parameter and float buffer takes rank 0's value (DDP's start; also after a resume). */
  broadcastState(): void {
    const floats = [...this.model.parameters(), ...this.model.buffers()].filter((t) => t.dtype === 'float32');
    this.broadcastTensors(floats);
  }

  /**
   * Float buffers (batch-norm running statistics) take rank 0's value: DDP's broadcast_buffers,
   * done before each forward so that every replica holds the statistics rank 0 will save.
   */
  broadcastBuffers(): void {
    const floats = this.model.buffers().filter((t) => t.dtype === 'float32');
    if (floats.length > 0) this.broadcastTensors(floats);
  }

  private broadcastTensors(ts: Tensor[]): void {
    const buckets = makeBuckets(ts, this.capBytes);
    for (const b of buckets) {
      b.params.forEach((t, i) => {
        b.flat.set(t.toTypedArray() as Float32Array, b.offsets[i]!);
      });
    }
    this.group.broadcast(
      buckets.map((b) => b.flat),
      0,
    );
    for (const b of buckets) unflatten(b, 'values');
  }

  /**
   * Averages the gradients over the ranks, in place. A parameter without a gradient on this rank
   * (unused in its forward) counts as zero, and receives the average, as DDP with
   * find_unused_parameters does.
   */
  syncGradients(): void {
    for (const b of this.gradBuckets) {
      b.params.forEach((p, i) => {
        const off = b.offsets[i]!;
        const g = p.grad;
        if (g) {
          b.flat.set(g.toTypedArray() as Float32Array, off);
          g.dispose();
        } else b.flat.fill(0, off, off + p.numel);
      });
    }
    this.group.allReduce(
      this.gradBuckets.map((b) => b.flat),
      { average: true },
    );
    for (const b of this.gradBuckets) unflatten(b, 'grads');
  }
}

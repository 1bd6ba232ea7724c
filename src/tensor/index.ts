/**
 * The tensor engine: a PyTorch-like Tensor over libtorch (see docs/engine-api.md).
 * Intra-op threads default to every available core.
 */
import { availableParallelism } from 'node:os';
import { native } from './tensor.ts';

export { Tensor, isFloatDType, type DType, type TypedArray, type NestedArray } from './tensor.ts';
export {
  tensor,
  fromTypedArray,
  zeros,
  ones,
  empty,
  full,
  zerosLike,
  onesLike,
  fullLike,
  arange,
  linspace,
  eye,
  rand,
  randn,
  randint,
  randperm,
  type TensorData,
} from './creation.ts';
export { cat, stack, pad, matmul, where, add, sub, mul, div, maximum, minimum, type PadMode } from './ops.ts';
export { grad, type GradOptions } from './autograd.ts';
export {
  tidy,
  keep,
  memory,
  type MemoryInfo,
  noGrad,
  enableGrad,
  isGradEnabled,
  setNumThreads,
  getNumThreads,
  manualSeed,
  torchVersion,
} from './engine.ts';
export * as F from './functional.ts';

// libtorch's OpenMP default can be 1 under some affinity settings; the contract says all cores,
// unless the user pinned a count through OMP_NUM_THREADS.
if (!process.env.OMP_NUM_THREADS) native.setNumThreads(availableParallelism());

/**
 * The native addon's typed surface and its loader. Everything the engine calls in C++ is declared
 * here, so the TypeScript API in src/tensor and src/optim is the only place that touches it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  OP_TABLE,
  type BINARY_OP,
  type INTERP_MODE,
  type OpFamily,
  type OPTIMIZER_KIND,
  type POINT_LOSS,
  type REDUCE_OP,
  type REDUCTION,
  type UNARY_OP,
} from './op-codes.ts';

/** A code of one op-table family (src/native/op-codes.ts), e.g. Code<typeof BINARY_OP>. */
export type Code<Family extends Record<string, number>> = Family[keyof Family];

/** A handle owning one at::Tensor. Ops take and return handles; src/tensor wraps them. */
export interface NativeTensor {
  dispose(): void;
  isDisposed(): boolean;
  shape(): number[];
  /** A DTYPE_CODE value (DTYPE_CODES index). */
  dtype(): number;
  requiresGrad(): boolean;
  setRequiresGrad(b: boolean): void;
  grad(): NativeTensor | null;
  setGrad(g: NativeTensor | null): void;
  isLeaf(): boolean;
  item(): number;
  /** A copy of the (contiguous) data. */
  toBuffer(): ArrayBuffer;
  nbytes(): number;
  /** Reports the bytes to V8 as external memory (for a tensor leaving every tidy scope). */
  reportExternal(): void;
}

/** A JS number or boolean becomes a PyTorch-style wrapped scalar on the native side. */
export type NativeOperand = NativeTensor | number | boolean;
type Opt<T> = T | null | undefined;

/** Optimizer hyper-parameters per group (every field set; the TS side fills defaults). */
export interface NativeParamGroup {
  params: NativeTensor[];
  lr: number;
  weightDecay: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  beta1: number;
  beta2: number;
  eps: number;
  amsgrad: boolean;
}

/** Made with an OPTIMIZER_KIND code. Every method but dispose/isDisposed throws once disposed. */
export interface NativeOptimizer {
  step(): void;
  zeroGrad(setToNone: boolean): void;
  setLr(group: number, lr: number): void;
  getLr(group: number): number;
  setWeightDecay(group: number, wd: number): void;
  /** State of parameter `index` (flattened over groups): step count and named buffers. */
  getState(index: number): { step: number; tensors: Record<string, NativeTensor> } | null;
  setState(index: number, step: number, tensors: Record<string, NativeTensor>): void;
  numParams(): number;
  /** Bytes of this optimizer's state (moments, momentum buffers). */
  stateBytes(): number;
  /** Frees the state and drops the parameter references now; idempotent. */
  dispose(): void;
  isDisposed(): boolean;
}

/** memory(): what the addon holds for JS. */
export interface NativeMemoryInfo {
  /** Live tensor handles. */
  numTensors: number;
  /** Bytes of those handles (views count their own elements) plus optimizerStateBytes. */
  numBytes: number;
  /** Optimizers neither disposed nor collected. */
  numOptimizers: number;
  /** Optimizer state (Adam moments, momentum buffers), included in numBytes. */
  optimizerStateBytes: number;
  /**
   * Bytes of the parameters optimizers reference. Not in numBytes: the parameters' own handles
   * count them while alive; this is what an optimizer keeps alive after they are disposed.
   */
  optimizerParamBytes: number;
}

export interface NativeAddon {
  NativeTensor: new () => NativeTensor;
  NativeOptimizer: new (kind: Code<typeof OPTIMIZER_KIND>, groups: NativeParamGroup[]) => NativeOptimizer;
  /** The op table the addon was built from (native/ops.def): names in code order. */
  opTable(): Record<OpFamily, string[]>;
  // creation
  fromBuffer(data: ArrayBufferView, dtype: number, shape: number[]): NativeTensor;
  zeros(shape: number[], dtype: number): NativeTensor;
  ones(shape: number[], dtype: number): NativeTensor;
  empty(shape: number[], dtype: number): NativeTensor;
  full(shape: number[], value: number, dtype: number): NativeTensor;
  arange(start: number, end: number, step: number, dtype: number): NativeTensor;
  linspace(start: number, end: number, steps: number, dtype: number): NativeTensor;
  eye(n: number, m: number, dtype: number): NativeTensor;
  rand(shape: number[], dtype: number): NativeTensor;
  randn(shape: number[], dtype: number): NativeTensor;
  randint(low: number, high: number, shape: number[], dtype: number): NativeTensor;
  randperm(n: number): NativeTensor;
  // memory, threads, seeding, grad mode
  memory(): NativeMemoryInfo;
  /** Off while a tidy scope is open: scoped tensors are freed by the scope, not the GC. */
  setExternalReporting(enabled: boolean): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  manualSeed(seed: number): void;
  setGradEnabled(enabled: boolean): void;
  isGradEnabled(): boolean;
  torchVersion(): string;
  // elementwise
  binary(op: Code<typeof BINARY_OP>, a: NativeOperand, b: NativeOperand): NativeTensor;
  unary(op: Code<typeof UNARY_OP>, x: NativeTensor): NativeTensor;
  leakyRelu(x: NativeTensor, slope: number): NativeTensor;
  clamp(x: NativeTensor, min: Opt<number>, max: Opt<number>): NativeTensor;
  where(cond: NativeTensor, a: NativeOperand, b: NativeOperand): NativeTensor;
  to(x: NativeTensor, dtype: number): NativeTensor;
  lerp(a: NativeTensor, b: NativeTensor, w: number): NativeTensor;
  copy_(dst: NativeTensor, src: NativeTensor): void;
  fill_(dst: NativeTensor, v: number): void;
  zero_(dst: NativeTensor): void;
  uniform_(dst: NativeTensor, a: number, b: number): void;
  normal_(dst: NativeTensor, mean: number, std: number): void;
  mulScalar_(dst: NativeTensor, v: number): void;
  addScaled_(dst: NativeTensor, other: NativeTensor, alpha: number): void;
  clamp_(dst: NativeTensor, min: Opt<number>, max: Opt<number>): void;
  // reductions
  reduce(op: Code<typeof REDUCE_OP>, x: NativeTensor, dims: number[] | null, keepdim: boolean, unbiased: boolean): NativeTensor;
  norm(x: NativeTensor, p: number, dims: number[] | null, keepdim: boolean): NativeTensor;
  argReduce(x: NativeTensor, dim: number | null, keepdim: boolean, isMin: boolean): NativeTensor;
  topk(x: NativeTensor, k: number, dim: number, largest: boolean, sorted: boolean): [NativeTensor, NativeTensor];
  sort(x: NativeTensor, dim: number, descending: boolean): [NativeTensor, NativeTensor];
  cumsum(x: NativeTensor, dim: number): NativeTensor;
  // shape
  reshape(x: NativeTensor, shape: number[]): NativeTensor;
  view(x: NativeTensor, shape: number[]): NativeTensor;
  flatten(x: NativeTensor, start: number, end: number): NativeTensor;
  squeeze(x: NativeTensor, dim: number | null): NativeTensor;
  unsqueeze(x: NativeTensor, dim: number): NativeTensor;
  permute(x: NativeTensor, dims: number[]): NativeTensor;
  transpose(x: NativeTensor, a: number, b: number): NativeTensor;
  expand(x: NativeTensor, shape: number[]): NativeTensor;
  slice(x: NativeTensor, dim: number, start: number, end: number | null, step: number): NativeTensor;
  select(x: NativeTensor, dim: number, index: number): NativeTensor;
  indexSelect(x: NativeTensor, dim: number, index: NativeTensor): NativeTensor;
  narrow(x: NativeTensor, dim: number, start: number, length: number): NativeTensor;
  flip(x: NativeTensor, dims: number[]): NativeTensor;
  rot90(x: NativeTensor, k: number, dims: number[]): NativeTensor;
  repeat(x: NativeTensor, reps: number[]): NativeTensor;
  cat(xs: NativeTensor[], dim: number): NativeTensor;
  stack(xs: NativeTensor[], dim: number): NativeTensor;
  pad(x: NativeTensor, pads: number[], mode: string, value: number): NativeTensor;
  gather(x: NativeTensor, dim: number, index: NativeTensor): NativeTensor;
  maskedFill(x: NativeTensor, mask: NativeTensor, value: number): NativeTensor;
  maskedSelect(x: NativeTensor, mask: NativeTensor): NativeTensor;
  oneHot(x: NativeTensor, numClasses: number): NativeTensor;
  tril(x: NativeTensor, diagonal: number, upper: boolean): NativeTensor;
  // nn
  matmul(a: NativeTensor, b: NativeTensor): NativeTensor;
  linear(x: NativeTensor, w: NativeTensor, b: Opt<NativeTensor>): NativeTensor;
  conv(
    x: NativeTensor,
    w: NativeTensor,
    b: Opt<NativeTensor>,
    stride: number[],
    padding: number[],
    dilation: number[],
    groups: number,
    nd: number,
  ): NativeTensor;
  convTranspose(
    x: NativeTensor,
    w: NativeTensor,
    b: Opt<NativeTensor>,
    stride: number[],
    padding: number[],
    outputPadding: number[],
    groups: number,
    dilation: number[],
    nd: number,
  ): NativeTensor;
  batchNorm(
    x: NativeTensor,
    rm: Opt<NativeTensor>,
    rv: Opt<NativeTensor>,
    w: Opt<NativeTensor>,
    b: Opt<NativeTensor>,
    training: boolean,
    momentum: number,
    eps: number,
  ): NativeTensor;
  instanceNorm(
    x: NativeTensor,
    rm: Opt<NativeTensor>,
    rv: Opt<NativeTensor>,
    w: Opt<NativeTensor>,
    b: Opt<NativeTensor>,
    useInputStats: boolean,
    momentum: number,
    eps: number,
  ): NativeTensor;
  groupNorm(x: NativeTensor, groups: number, w: Opt<NativeTensor>, b: Opt<NativeTensor>, eps: number): NativeTensor;
  layerNorm(x: NativeTensor, shape: number[], w: Opt<NativeTensor>, b: Opt<NativeTensor>, eps: number): NativeTensor;
  maxPool(
    x: NativeTensor,
    k: number[],
    stride: number[],
    padding: number[],
    dilation: number[],
    ceilMode: boolean,
    nd: number,
  ): NativeTensor;
  avgPool(
    x: NativeTensor,
    k: number[],
    stride: number[],
    padding: number[],
    ceilMode: boolean,
    countIncludePad: boolean,
    nd: number,
  ): NativeTensor;
  adaptivePool(x: NativeTensor, size: number[], isMax: boolean, nd: number): NativeTensor;
  interpolate(
    x: NativeTensor,
    size: number[],
    mode: Code<typeof INTERP_MODE>,
    alignCorners: boolean,
    scales: number[] | null,
  ): NativeTensor;
  dropout(x: NativeTensor, p: number, training: boolean, featureWise: boolean): NativeTensor;
  softmax(x: NativeTensor, dim: number, log: boolean): NativeTensor;
  bceWithLogits(
    x: NativeTensor,
    t: NativeTensor,
    w: Opt<NativeTensor>,
    posWeight: Opt<NativeTensor>,
    reduction: Code<typeof REDUCTION>,
  ): NativeTensor;
  crossEntropy(
    x: NativeTensor,
    t: NativeTensor,
    w: Opt<NativeTensor>,
    reduction: Code<typeof REDUCTION>,
    ignoreIndex: number,
    labelSmoothing: number,
  ): NativeTensor;
  nllLoss(x: NativeTensor, t: NativeTensor, w: Opt<NativeTensor>, reduction: Code<typeof REDUCTION>, ignoreIndex: number): NativeTensor;
  pointLoss(kind: Code<typeof POINT_LOSS>, a: NativeTensor, b: NativeTensor, reduction: Code<typeof REDUCTION>, beta: number): NativeTensor;
  // autograd
  backward(t: NativeTensor, grad: Opt<NativeTensor>, retainGraph: boolean, createGraph: boolean): void;
  grad(
    outputs: NativeTensor[],
    inputs: NativeTensor[],
    gradOutputs: NativeTensor[] | null,
    retainGraph: boolean,
    createGraph: boolean,
    allowUnused: boolean,
  ): (NativeTensor | null)[];
  // optimizers
  clipGradNorm(params: NativeTensor[], maxNorm: number, normType: number): number;
}

/** dtype names in code order (the dtype family of native/ops.def). */
export const DTYPE_CODES = OP_TABLE.dtype;

const here = dirname(fileURLToPath(import.meta.url));
/** NODULESEG_NATIVE_ADDON selects another build (e.g. one against a second libtorch, for testing). */
export const ADDON_PATH = process.env.NODULESEG_NATIVE_ADDON ?? join(here, '..', '..', 'build', 'Release', 'noduleseg_native.node');

/** The load error with its likely cause and fix (exported for tests). */
export function explainLoadError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const causes: string[] = [];
  if (/lib(torch|c10|torch_cpu)[^:]*\.so[^:]*: cannot open shared object/.test(msg)) {
    causes.push(
      'libtorch is missing or moved: install it with `apt-get install -y libtorch-dev`, or set LIBTORCH=/path/to/libtorch and run `npm run setup`',
    );
  } else if (/undefined symbol/.test(msg)) {
    causes.push(
      'the addon was built against another libtorch (or another C++ ABI) than the one found at run time: rebuild with `npx node-gyp rebuild -j 2` (LIBTORCH set as when it runs)',
    );
  } else if (/NODE_MODULE_VERSION|was compiled against a different Node\.js version/.test(msg)) {
    causes.push('the addon was built for another Node.js version: rebuild with `npx node-gyp rebuild -j 2`');
  } else if (/cannot open shared object/.test(msg)) {
    causes.push('a shared library it needs is missing (see the message above); `npm run setup` installs the system packages');
  } else {
    causes.push('a broken build: rebuild with `npx node-gyp rebuild -j 2`; the log is in build-native.log');
  }
  return `noduleseg: cannot load the native addon ${ADDON_PATH}: ${msg}\n  cause and fix: ${causes.join('; ')}`;
}

/**
 * Why the addon's op table differs from src/native/op-codes.ts, or null when they agree. A
 * mismatch means one of them was made from another native/ops.def: codes would run wrong ops.
 */
export function opTableMismatch(addonTable: Partial<Record<string, readonly string[]>> | undefined): string | null {
  if (!addonTable) return 'the addon has no opTable() (built before the op table existed)';
  for (const family of Object.keys(OP_TABLE) as OpFamily[]) {
    const want: readonly string[] = OP_TABLE[family];
    const got = addonTable[family];
    if (!got) return `the addon has no '${family}' op family`;
    const n = Math.max(want.length, got.length);
    for (let i = 0; i < n; i++) {
      if (want[i] !== got[i])
        return `${family} code ${i} is '${got[i] ?? '(none)'}' in the addon but '${want[i] ?? '(none)'}' in src/native/op-codes.ts`;
    }
  }
  return null;
}

let cached: NativeAddon | undefined;

/** Loads the addon once; the error names the likely cause and the fix. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  if (!existsSync(ADDON_PATH)) {
    throw new Error(
      `noduleseg: the native addon is not built (${ADDON_PATH} is missing).\n` +
        '  fix: run `npm run setup` (installs libtorch-dev and a C++ toolchain if missing, then builds it);\n' +
        '  with another libtorch: LIBTORCH=/path/to/libtorch npm run setup',
    );
  }
  // libgomp reads its wait policy once, when libtorch loads. Its default (spin at barriers)
  // made 2-thread ops ~8x slower whenever another process held a core (measured: conv2d
  // fwd+bwd 80 ms vs 11 ms passive, 6 ms single-threaded). An explicit setting is kept.
  if (process.env.OMP_WAIT_POLICY === undefined) process.env.OMP_WAIT_POLICY = 'PASSIVE';
  const require = createRequire(import.meta.url);
  let addon: NativeAddon;
  try {
    addon = require(ADDON_PATH) as NativeAddon;
  } catch (e) {
    throw new Error(explainLoadError(e), { cause: e });
  }
  const mismatch = opTableMismatch(typeof addon.opTable === 'function' ? addon.opTable() : undefined);
  if (mismatch) {
    throw new Error(
      `noduleseg: the native addon ${ADDON_PATH} does not match src/native/op-codes.ts: ${mismatch}.\n` +
        '  fix: rebuild the addon (`npx node-gyp rebuild -j 2`); if native/ops.def changed, first run `node scripts/gen-op-codes.mjs`',
    );
  }
  cached = addon;
  return cached;
}

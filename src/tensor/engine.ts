/**
 * Tensor lifetimes: tidy scopes, keep(), memory() and the grad-mode scopes. Every Tensor made while
 * a scope is open is recorded in it; closing the scope disposes all of them except the result.
 */
import { loadNative, type NativeMemoryInfo } from '../native/binding.ts';

/** What the engine needs from a tensor (the Tensor class implements it). */
export interface Tracked {
  dispose(): void;
  readonly isDisposed: boolean;
  /** @internal set by keep(): no tidy scope frees it. */
  _kept: boolean;
  /** @internal reports its native bytes to V8 once it leaves every tidy scope. */
  _escape(): void;
}

const scopes: Tracked[][] = [];
let isTensor: (v: unknown) => v is Tracked = (_v: unknown): _v is Tracked => false;

/** @internal called by tensor.ts once the Tensor class exists (avoids an import cycle). */
export function _setTensorCheck(fn: (v: unknown) => v is Tracked): void {
  isTensor = fn;
}

/** @internal records a new tensor in the innermost open scope. */
export function track(t: Tracked): void {
  const s = scopes.length ? scopes[scopes.length - 1] : undefined;
  if (s) s.push(t);
}

function isAsync(fn: (...args: never[]) => unknown): boolean {
  return fn.constructor.name === 'AsyncFunction';
}

// Collects tensors in a tidy result: a tensor, or arrays / plain objects / Maps of them (nested).
function collect(v: unknown, out: Set<Tracked>, depth = 0): void {
  if (v === null || typeof v !== 'object' || depth > 32) return;
  if (isTensor(v)) {
    out.add(v);
    return;
  }
  if (Array.isArray(v)) {
    for (const x of v) collect(x, out, depth + 1);
  } else if (v instanceof Map) {
    for (const x of v.values()) collect(x, out, depth + 1);
  } else if (Object.getPrototypeOf(v) === Object.prototype) {
    for (const x of Object.values(v)) collect(x, out, depth + 1);
  }
}

/**
 * Runs fn and disposes every tensor created inside it except those in its result (a tensor, or
 * arrays/objects/Maps of tensors) and those passed to keep(). Returned tensors move to the
 * enclosing scope. Synchronous only: an async function (or a returned Promise) is refused,
 * because tensors made after the first await would escape the scope.
 */
export function tidy<T>(fn: () => T): T {
  if (typeof fn !== 'function') throw new TypeError('tidy: fn must be a function');
  if (isAsync(fn)) throw new TypeError('tidy: fn must be synchronous (an async function would let tensors escape the scope)');
  const scope: Tracked[] = [];
  // Scoped tensors are freed by the scope, so they are not reported to V8 as external memory
  // (that would start GC cycles in the middle of training steps); see native/memory.cc.
  if (scopes.length === 0) loadNative().setExternalReporting(false);
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    popScope();
    for (const t of scope) if (!t._kept) t.dispose();
    throw e;
  }
  popScope();
  if (result instanceof Promise) {
    for (const t of scope) if (!t._kept) t.dispose();
    throw new TypeError('tidy: fn returned a Promise; tidy scopes are synchronous');
  }
  const keepSet = new Set<Tracked>();
  collect(result, keepSet);
  const parent = scopes.length ? scopes[scopes.length - 1] : undefined;
  for (const t of scope) {
    if (t._kept || t.isDisposed) continue;
    if (keepSet.has(t)) {
      if (parent) parent.push(t);
      else t._escape();
    } else {
      t.dispose();
    }
  }
  return result;
}

/** Exempts t from every tidy scope (it lives until disposed explicitly or collected). */
export function keep<T extends Tracked>(t: T): T {
  t._kept = true;
  t._escape();
  return t;
}

function popScope(): void {
  scopes.pop();
  if (scopes.length === 0) loadNative().setExternalReporting(true);
}

/**
 * What the addon holds: live tensor handles and their bytes (views count their own elements) plus
 * optimizer state; optimizers and the parameter bytes they keep alive (see NativeMemoryInfo).
 */
export type MemoryInfo = NativeMemoryInfo;
export function memory(): MemoryInfo {
  return loadNative().memory();
}

function gradScope<T>(enabled: boolean, name: string, fn: () => T): T {
  if (isAsync(fn)) throw new TypeError(`${name}: fn must be synchronous (grad mode is per call stack)`);
  const native = loadNative();
  const prev = native.isGradEnabled();
  native.setGradEnabled(enabled);
  try {
    const r = fn();
    if (r instanceof Promise) throw new TypeError(`${name}: fn returned a Promise; grad-mode scopes are synchronous`);
    return r;
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs fn with gradient recording off (like torch.no_grad()); nests. */
export function noGrad<T>(fn: () => T): T {
  return gradScope(false, 'noGrad', fn);
}

/** Runs fn with gradient recording on, even inside noGrad. */
export function enableGrad<T>(fn: () => T): T {
  return gradScope(true, 'enableGrad', fn);
}

export function isGradEnabled(): boolean {
  return loadNative().isGradEnabled();
}

/** Sets the intra-op thread count (libtorch's at::set_num_threads). */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`setNumThreads: n must be a positive integer, got ${n}`);
  loadNative().setNumThreads(n);
}

export function getNumThreads(): number {
  return loadNative().getNumThreads();
}

/** Seeds libtorch's default generator (rand, randn, randint, dropout, uniform_, normal_). */
export function manualSeed(seed: number): void {
  loadNative().manualSeed(seed);
}

/** The libtorch version the addon was compiled against (e.g. "1.13.0"). */
export function torchVersion(): string {
  return loadNative().torchVersion();
}

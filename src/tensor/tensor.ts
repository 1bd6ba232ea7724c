/**
 * The Tensor class: a thin wrapper over one native handle (an at::Tensor). Methods call the addon
 * directly; every result is a new Tensor recorded in the innermost tidy scope.
 */
import { DTYPE_CODES, loadNative, type NativeOperand, type NativeTensor } from '../native/binding.ts';
import { BINARY_OP, DTYPE_CODE, REDUCE_OP, UNARY_OP, type BinaryOp, type ReduceOp, type UnaryOp } from '../native/op-codes.ts';
import { _setTensorCheck, track, type Tracked } from './engine.ts';

export type DType = (typeof DTYPE_CODES)[number];
export type TypedArray = Float32Array | Float64Array | Int16Array | Int32Array | BigInt64Array | Uint8Array;
/** A nested array of numbers (what toArray() returns). */
export type NestedArray = number | NestedArray[];

export const native = loadNative();

export function dtypeCode(d: DType): number {
  const c: number | undefined = DTYPE_CODE[d];
  if (c === undefined) throw new TypeError(`unknown dtype '${String(d)}' (expected one of ${DTYPE_CODES.join(', ')})`);
  return c;
}

export function isFloatDType(d: DType): boolean {
  return d === 'float32' || d === 'float64';
}

function dimList(dim: number | number[] | undefined | null): number[] | null {
  if (dim === undefined || dim === null) return null;
  return typeof dim === 'number' ? [dim] : dim;
}

// Accepts reshape([2, 3]) and reshape(2, 3).
function sizesArg(op: string, args: (number | number[])[]): number[] {
  if (args.length === 1 && Array.isArray(args[0])) return args[0];
  for (const a of args) if (typeof a !== 'number') throw new TypeError(`${op}: expected an array of integers or integers`);
  return args as number[];
}

function operand(v: Tensor | number | boolean, op: string, arg: string): NativeOperand {
  if (v instanceof Tensor) return v.handle;
  if (typeof v === 'number' || typeof v === 'boolean') return v;
  throw new TypeError(`${op}: ${arg} must be a Tensor or a number`);
}

export class Tensor implements Tracked {
  /** @internal */
  _h: NativeTensor;
  /** @internal */
  _kept = false;
  private _disposed = false;
  private _shape: number[] | undefined;
  private _dtype: DType | undefined;

  /** @internal use the creation functions (tensor, zeros, ...) instead. */
  constructor(h: NativeTensor) {
    this._h = h;
    track(this);
  }

  /** @internal the native handle; throws once disposed. */
  get handle(): NativeTensor {
    if (this._disposed) throw new Error('tensor already disposed');
    return this._h;
  }

  get shape(): number[] {
    if (this._disposed) throw new Error('tensor already disposed');
    if (!this._shape) this._shape = this._h.shape();
    return this._shape.slice();
  }

  get dtype(): DType {
    if (this._disposed) throw new Error('tensor already disposed');
    if (!this._dtype) this._dtype = DTYPE_CODES[this._h.dtype()] as DType;
    return this._dtype;
  }

  get ndim(): number {
    if (this._disposed) throw new Error('tensor already disposed');
    if (!this._shape) this._shape = this._h.shape();
    return this._shape.length;
  }

  get numel(): number {
    if (this._disposed) throw new Error('tensor already disposed');
    if (!this._shape) this._shape = this._h.shape();
    let n = 1;
    for (const s of this._shape) n *= s;
    return n;
  }

  /** @internal */
  _escape(): void {
    if (!this._disposed) this._h.reportExternal();
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Frees the native tensor now (other tensors sharing its storage keep it alive). Idempotent. */
  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    this._h.dispose();
  }

  // ---- autograd --------------------------------------------------------------------------------

  get requiresGrad(): boolean {
    return this.handle.requiresGrad();
  }

  requiresGrad_(b = true): this {
    this.handle.setRequiresGrad(b);
    return this;
  }

  setRequiresGrad(b: boolean): this {
    return this.requiresGrad_(b);
  }

  /** The accumulated gradient (a new handle each read, sharing libtorch's grad), or null. */
  get grad(): Tensor | null {
    const g = this.handle.grad();
    return g ? new Tensor(g) : null;
  }

  set grad(g: Tensor | null) {
    this.handle.setGrad(g ? g.handle : null);
  }

  get isLeaf(): boolean {
    return this.handle.isLeaf();
  }

  backward(grad?: Tensor, options: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    const create = options.createGraph ?? false;
    native.backward(this.handle, grad ? grad.handle : null, options.retainGraph ?? create, create);
  }

  detach(): Tensor {
    return new Tensor(native.unary(UNARY_OP.detach, this.handle));
  }

  // ---- data out --------------------------------------------------------------------------------

  /** A copy of the data: Float32Array for float32, BigInt64Array for int64, Uint8Array for uint8/bool. */
  toTypedArray(): TypedArray {
    const buf = this.handle.toBuffer();
    switch (this.dtype) {
      case 'float32':
        return new Float32Array(buf);
      case 'float64':
        return new Float64Array(buf);
      case 'int16':
        return new Int16Array(buf);
      case 'int32':
        return new Int32Array(buf);
      case 'int64':
        return new BigInt64Array(buf);
      case 'uint8':
      case 'bool':
        return new Uint8Array(buf);
    }
  }

  /** The data as plain numbers (int64 converted with Number()). */
  toNumbers(): number[] {
    const a = this.toTypedArray();
    return a instanceof BigInt64Array ? Array.from(a, (v) => Number(v)) : Array.from(a);
  }

  /** Nested arrays of numbers in the tensor's shape (a number for a 0-d tensor). */
  toArray(): NestedArray {
    const flat = this.toNumbers();
    const shape = this.shape;
    if (shape.length === 0) return flat[0]!;
    let pos = 0;
    const build = (d: number): NestedArray[] => {
      const out: NestedArray[] = [];
      for (let i = 0; i < shape[d]!; i++) out.push(d === shape.length - 1 ? flat[pos++]! : build(d + 1));
      return out;
    };
    return build(0);
  }

  item(): number {
    return this.handle.item();
  }

  toString(): string {
    if (this._disposed) return 'Tensor(disposed)';
    const head = `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
    if (this.numel > 64) return head;
    return `${head} ${JSON.stringify(this.toArray())}`;
  }

  // ---- views and shape -------------------------------------------------------------------------

  reshape(...shape: (number | number[])[]): Tensor {
    return new Tensor(native.reshape(this.handle, sizesArg('reshape', shape)));
  }
  view(...shape: (number | number[])[]): Tensor {
    return new Tensor(native.view(this.handle, sizesArg('view', shape)));
  }
  flatten(start = 0, end = -1): Tensor {
    return new Tensor(native.flatten(this.handle, start, end));
  }
  squeeze(dim?: number): Tensor {
    return new Tensor(native.squeeze(this.handle, dim ?? null));
  }
  unsqueeze(dim: number): Tensor {
    return new Tensor(native.unsqueeze(this.handle, dim));
  }
  permute(...dims: (number | number[])[]): Tensor {
    return new Tensor(native.permute(this.handle, sizesArg('permute', dims)));
  }
  transpose(a: number, b: number): Tensor {
    return new Tensor(native.transpose(this.handle, a, b));
  }
  contiguous(): Tensor {
    return new Tensor(native.unary(UNARY_OP.contiguous, this.handle));
  }
  expand(...shape: (number | number[])[]): Tensor {
    return new Tensor(native.expand(this.handle, sizesArg('expand', shape)));
  }
  /** Elements start..end-1 (end exclusive, may be omitted; negatives count from the end) along dim. */
  slice(dim: number, start: number, end?: number, step = 1): Tensor {
    return new Tensor(native.slice(this.handle, dim, start, end ?? null, step));
  }
  select(dim: number, index: number): Tensor {
    return new Tensor(native.select(this.handle, dim, index));
  }
  /** Alias of select(0, i): t.index(i) is t[i] in PyTorch. */
  index(i: number): Tensor {
    return this.select(0, i);
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return new Tensor(native.indexSelect(this.handle, dim, index.handle));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return new Tensor(native.narrow(this.handle, dim, start, length));
  }
  flip(dims: number | number[]): Tensor {
    return new Tensor(native.flip(this.handle, typeof dims === 'number' ? [dims] : dims));
  }
  rot90(k = 1, dims: [number, number] = [0, 1]): Tensor {
    return new Tensor(native.rot90(this.handle, k, dims));
  }
  repeat(...reps: (number | number[])[]): Tensor {
    return new Tensor(native.repeat(this.handle, sizesArg('repeat', reps)));
  }
  clone(): Tensor {
    return new Tensor(native.unary(UNARY_OP.clone, this.handle));
  }
  to(dtype: DType): Tensor {
    return new Tensor(native.to(this.handle, dtypeCode(dtype)));
  }
  float(): Tensor {
    return this.to('float32');
  }
  double(): Tensor {
    return this.to('float64');
  }
  long(): Tensor {
    return this.to('int64');
  }
  gather(dim: number, index: Tensor): Tensor {
    return new Tensor(native.gather(this.handle, dim, index.handle));
  }
  maskedFill(mask: Tensor, value: number): Tensor {
    return new Tensor(native.maskedFill(this.handle, mask.handle, value));
  }
  maskedSelect(mask: Tensor): Tensor {
    return new Tensor(native.maskedSelect(this.handle, mask.handle));
  }

  // ---- elementwise -----------------------------------------------------------------------------

  private bin(op: BinaryOp, other: Tensor | number | boolean): Tensor {
    return new Tensor(native.binary(BINARY_OP[op], this.handle, operand(other, op, 'other')));
  }
  add(o: Tensor | number): Tensor {
    return this.bin('add', o);
  }
  sub(o: Tensor | number): Tensor {
    return this.bin('sub', o);
  }
  mul(o: Tensor | number): Tensor {
    return this.bin('mul', o);
  }
  div(o: Tensor | number): Tensor {
    return this.bin('div', o);
  }
  pow(o: Tensor | number): Tensor {
    return this.bin('pow', o);
  }
  maximum(o: Tensor | number): Tensor {
    return this.bin('maximum', o);
  }
  minimum(o: Tensor | number): Tensor {
    return this.bin('minimum', o);
  }
  remainder(o: Tensor | number): Tensor {
    return this.bin('remainder', o);
  }
  floorDivide(o: Tensor | number): Tensor {
    return this.bin('floorDivide', o);
  }
  /** Elementwise atan2(this, other): the angle of (other, this) in radians, in [-pi, pi]. */
  atan2(o: Tensor | number): Tensor {
    return this.bin('atan2', o);
  }
  eq(o: Tensor | number): Tensor {
    return this.bin('eq', o);
  }
  ne(o: Tensor | number): Tensor {
    return this.bin('ne', o);
  }
  gt(o: Tensor | number): Tensor {
    return this.bin('gt', o);
  }
  ge(o: Tensor | number): Tensor {
    return this.bin('ge', o);
  }
  lt(o: Tensor | number): Tensor {
    return this.bin('lt', o);
  }
  le(o: Tensor | number): Tensor {
    return this.bin('le', o);
  }
  logicalAnd(o: Tensor | boolean): Tensor {
    return this.bin('logicalAnd', o);
  }
  logicalOr(o: Tensor | boolean): Tensor {
    return this.bin('logicalOr', o);
  }
  logicalXor(o: Tensor | boolean): Tensor {
    return this.bin('logicalXor', o);
  }
  /** other - this (for number - tensor). */
  rsub(o: number): Tensor {
    return new Tensor(native.binary(BINARY_OP.sub, o, this.handle));
  }
  /** other / this (for number / tensor). */
  rdiv(o: number): Tensor {
    return new Tensor(native.binary(BINARY_OP.div, o, this.handle));
  }

  private un(op: UnaryOp): Tensor {
    return new Tensor(native.unary(UNARY_OP[op], this.handle));
  }
  neg(): Tensor {
    return this.un('neg');
  }
  abs(): Tensor {
    return this.un('abs');
  }
  exp(): Tensor {
    return this.un('exp');
  }
  log(): Tensor {
    return this.un('log');
  }
  log1p(): Tensor {
    return this.un('log1p');
  }
  log2(): Tensor {
    return this.un('log2');
  }
  expm1(): Tensor {
    return this.un('expm1');
  }
  sqrt(): Tensor {
    return this.un('sqrt');
  }
  rsqrt(): Tensor {
    return this.un('rsqrt');
  }
  square(): Tensor {
    return this.un('square');
  }
  reciprocal(): Tensor {
    return this.un('reciprocal');
  }
  sin(): Tensor {
    return this.un('sin');
  }
  cos(): Tensor {
    return this.un('cos');
  }
  tan(): Tensor {
    return this.un('tan');
  }
  tanh(): Tensor {
    return this.un('tanh');
  }
  erf(): Tensor {
    return this.un('erf');
  }
  sigmoid(): Tensor {
    return this.un('sigmoid');
  }
  relu(): Tensor {
    return this.un('relu');
  }
  gelu(): Tensor {
    return this.un('gelu');
  }
  silu(): Tensor {
    return this.un('silu');
  }
  softplus(): Tensor {
    return this.un('softplus');
  }
  leakyRelu(slope = 0.01): Tensor {
    return new Tensor(native.leakyRelu(this.handle, slope));
  }
  floor(): Tensor {
    return this.un('floor');
  }
  ceil(): Tensor {
    return this.un('ceil');
  }
  round(): Tensor {
    return this.un('round');
  }
  trunc(): Tensor {
    return this.un('trunc');
  }
  sign(): Tensor {
    return this.un('sign');
  }
  isnan(): Tensor {
    return this.un('isnan');
  }
  isfinite(): Tensor {
    return this.un('isfinite');
  }
  logicalNot(): Tensor {
    return this.un('logicalNot');
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    return new Tensor(native.clamp(this.handle, min ?? null, max ?? null));
  }
  lerp(end: Tensor, weight: number): Tensor {
    return new Tensor(native.lerp(this.handle, end.handle, weight));
  }

  // ---- reductions ------------------------------------------------------------------------------

  private red(op: ReduceOp, dim: number | number[] | undefined, keepdim: boolean, unbiased = true): Tensor {
    return new Tensor(native.reduce(REDUCE_OP[op], this.handle, dimList(dim), keepdim, unbiased));
  }
  sum(dim?: number | number[], keepdim = false): Tensor {
    return this.red('sum', dim, keepdim);
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return this.red('mean', dim, keepdim);
  }
  amax(dim?: number | number[], keepdim = false): Tensor {
    return this.red('amax', dim, keepdim);
  }
  amin(dim?: number | number[], keepdim = false): Tensor {
    return this.red('amin', dim, keepdim);
  }
  /** Maximum over all elements, or over dim (values only; use argmax for indices). */
  max(dim?: number | number[], keepdim = false): Tensor {
    return this.red('amax', dim, keepdim);
  }
  min(dim?: number | number[], keepdim = false): Tensor {
    return this.red('amin', dim, keepdim);
  }
  prod(dim?: number | number[], keepdim = false): Tensor {
    return this.red('prod', dim, keepdim);
  }
  /** Standard deviation (unbiased by default, like PyTorch). */
  std(dim?: number | number[], keepdim = false, unbiased = true): Tensor {
    return this.red('std', dim, keepdim, unbiased);
  }
  var(dim?: number | number[], keepdim = false, unbiased = true): Tensor {
    return this.red('var', dim, keepdim, unbiased);
  }
  logsumexp(dim?: number | number[], keepdim = false): Tensor {
    return this.red('logsumexp', dim, keepdim);
  }
  any(dim?: number | number[], keepdim = false): Tensor {
    return this.red('any', dim, keepdim);
  }
  all(dim?: number | number[], keepdim = false): Tensor {
    return this.red('all', dim, keepdim);
  }
  /** Vector p-norm over all elements or over dim. */
  norm(p = 2, dim?: number | number[], keepdim = false): Tensor {
    return new Tensor(native.norm(this.handle, p, dimList(dim), keepdim));
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argReduce(this.handle, dim ?? null, keepdim, false));
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argReduce(this.handle, dim ?? null, keepdim, true));
  }
  topk(k: number, dim = -1, largest = true, sorted = true): { values: Tensor; indices: Tensor } {
    const [v, i] = native.topk(this.handle, k, dim, largest, sorted);
    return { values: new Tensor(v), indices: new Tensor(i) };
  }
  sort(dim = -1, descending = false): { values: Tensor; indices: Tensor } {
    const [v, i] = native.sort(this.handle, dim, descending);
    return { values: new Tensor(v), indices: new Tensor(i) };
  }
  cumsum(dim: number): Tensor {
    return new Tensor(native.cumsum(this.handle, dim));
  }

  // ---- in place (for optimizers and initialisers; use under noGrad on parameters) ---------------

  copy_(src: Tensor): this {
    native.copy_(this.handle, src.handle);
    return this;
  }
  fill_(v: number): this {
    native.fill_(this.handle, v);
    return this;
  }
  zero_(): this {
    native.zero_(this.handle);
    return this;
  }
  uniform_(a = 0, b = 1): this {
    native.uniform_(this.handle, a, b);
    return this;
  }
  normal_(mean = 0, std = 1): this {
    native.normal_(this.handle, mean, std);
    return this;
  }
  mulScalar_(v: number): this {
    native.mulScalar_(this.handle, v);
    return this;
  }
  /** this += alpha * other */
  addScaled_(other: Tensor, alpha = 1): this {
    native.addScaled_(this.handle, other.handle, alpha);
    return this;
  }
  clamp_(min?: number | null, max?: number | null): this {
    native.clamp_(this.handle, min ?? null, max ?? null);
    return this;
  }
}

_setTensorCheck((v: unknown): v is Tracked => v instanceof Tensor);

/** Tensor creation: from JS data (always copied), constants, ranges and seeded random draws. */
import { Tensor, dtypeCode, native, type DType, type NestedArray, type TypedArray } from './tensor.ts';

export type TensorData = TypedArray | Int8Array | Uint16Array | Uint32Array | Uint8ClampedArray | NestedArray | boolean[] | number;

function checkShape(op: string, shape: number[]): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`${op}: shape must be an array of integers`);
  for (const s of shape) {
    if (!Number.isInteger(s) || s < 0) throw new TypeError(`${op}: shape must hold non-negative integers, got [${shape.join(', ')}]`);
  }
  return shape;
}

function naturalDType(data: ArrayBufferView): DType | undefined {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Uint8Array) return 'uint8';
  return undefined;
}

function flattenNested(data: unknown[], shape: number[], out: number[], depth: number): void {
  if (depth === shape.length) shape.push(data.length);
  else if (shape[depth] !== data.length) throw new TypeError('tensor: nested arrays must be rectangular');
  const nested = data.length > 0 && Array.isArray(data[0]);
  for (const v of data) {
    if (Array.isArray(v) !== nested) throw new TypeError('tensor: nested arrays must be rectangular');
    if (Array.isArray(v)) flattenNested(v, shape, out, depth + 1);
    else if (typeof v === 'number') out.push(v);
    else if (typeof v === 'boolean') out.push(v ? 1 : 0);
    else throw new TypeError(`tensor: data must hold numbers, got ${typeof v}`);
  }
}

/**
 * A tensor from a typed array (its dtype unless `dtype` says otherwise), a (nested) number array
 * (float32 unless `dtype`), a boolean array (bool) or a number (0-d). `shape` defaults to the
 * data's own shape. The data is copied.
 */
export function tensor(data: TensorData, shape?: number[], dtype?: DType): Tensor {
  if (typeof data === 'number') {
    const d = dtype ?? 'float32';
    return new Tensor(native.full(shape ? checkShape('tensor', shape) : [], data, dtypeCode(d)));
  }
  if (ArrayBuffer.isView(data)) {
    let src: ArrayBufferView = data;
    let nat = naturalDType(data);
    if (!nat) {
      // Int8/Uint16/Uint32/Uint8Clamped have no libtorch twin here: widen them.
      if (data instanceof Uint8ClampedArray) {
        src = new Uint8Array(data.buffer, data.byteOffset, data.length);
        nat = 'uint8';
      } else if (data instanceof Uint32Array) {
        src = BigInt64Array.from(data, (v) => BigInt(v));
        nat = 'int64';
      } else if (data instanceof Int8Array || data instanceof Uint16Array) {
        src = Int32Array.from(data);
        nat = 'int32';
      } else throw new TypeError('tensor: unsupported typed array');
    }
    const len = (src as TypedArray).length;
    const s = shape ? checkShape('tensor', shape) : [len];
    if (dtype === 'bool' && nat === 'uint8') nat = 'bool';
    const t = new Tensor(native.fromBuffer(src, dtypeCode(nat), s));
    if (!dtype || dtype === nat) return t;
    const c = t.to(dtype);
    t.dispose();
    return c;
  }
  if (Array.isArray(data)) {
    const flat: number[] = [];
    const inferred: number[] = [];
    flattenNested(data, inferred, flat, 0);
    const isBool = data.length > 0 && flat.length > 0 && allBool(data);
    const d = dtype ?? (isBool ? 'bool' : 'float32');
    const s = shape ? checkShape('tensor', shape) : inferred;
    // float64 keeps integers exact up to 2^53 before the cast to the target dtype.
    return tensor(d === 'float32' ? Float32Array.from(flat) : Float64Array.from(flat), s, d);
  }
  throw new TypeError('tensor: data must be a typed array, an array of numbers or a number');
}

function allBool(data: unknown[]): boolean {
  for (const v of data) {
    if (Array.isArray(v)) {
      if (!allBool(v)) return false;
    } else if (typeof v !== 'boolean') return false;
  }
  return true;
}

/** A tensor holding a copy of `data` with the matching dtype. */
export function fromTypedArray(data: TypedArray, shape: number[]): Tensor {
  return tensor(data, shape);
}

export function zeros(shape: number[], dtype: DType = 'float32'): Tensor {
  return new Tensor(native.zeros(checkShape('zeros', shape), dtypeCode(dtype)));
}

export function ones(shape: number[], dtype: DType = 'float32'): Tensor {
  return new Tensor(native.ones(checkShape('ones', shape), dtypeCode(dtype)));
}

/** Uninitialised memory: only for tensors that are overwritten before they are read. */
export function empty(shape: number[], dtype: DType = 'float32'): Tensor {
  return new Tensor(native.empty(checkShape('empty', shape), dtypeCode(dtype)));
}

export function full(shape: number[], value: number, dtype: DType = 'float32'): Tensor {
  return new Tensor(native.full(checkShape('full', shape), value, dtypeCode(dtype)));
}

export function zerosLike(t: Tensor, dtype?: DType): Tensor {
  return zeros(t.shape, dtype ?? t.dtype);
}

export function onesLike(t: Tensor, dtype?: DType): Tensor {
  return ones(t.shape, dtype ?? t.dtype);
}

export function fullLike(t: Tensor, value: number, dtype?: DType): Tensor {
  return full(t.shape, value, dtype ?? t.dtype);
}

/** arange(end) or arange(start, end, step); int64 when every argument is an integer, like PyTorch. */
export function arange(start: number, end?: number, step = 1, dtype?: DType): Tensor {
  const [a, b] = end === undefined ? [0, start] : [start, end];
  const d = dtype ?? (Number.isInteger(a) && Number.isInteger(b) && Number.isInteger(step) ? 'int64' : 'float32');
  return new Tensor(native.arange(a, b, step, dtypeCode(d)));
}

export function linspace(start: number, end: number, steps: number, dtype: DType = 'float32'): Tensor {
  return new Tensor(native.linspace(start, end, steps, dtypeCode(dtype)));
}

export function eye(n: number, m?: number, dtype: DType = 'float32'): Tensor {
  return new Tensor(native.eye(n, m ?? n, dtypeCode(dtype)));
}

/** Uniform [0, 1) draws from libtorch's generator (seed it with manualSeed). */
export function rand(shape: number[], dtype: DType = 'float32'): Tensor {
  return new Tensor(native.rand(checkShape('rand', shape), dtypeCode(dtype)));
}

export function randn(shape: number[], dtype: DType = 'float32'): Tensor {
  return new Tensor(native.randn(checkShape('randn', shape), dtypeCode(dtype)));
}

/** Integers in [low, high). */
export function randint(low: number, high: number, shape: number[], dtype: DType = 'int64'): Tensor {
  return new Tensor(native.randint(low, high, checkShape('randint', shape), dtypeCode(dtype)));
}

export function randperm(n: number): Tensor {
  return new Tensor(native.randperm(n));
}

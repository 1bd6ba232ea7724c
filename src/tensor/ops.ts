/** Free functions over tensors: joining, padding, matmul, where, and function forms of methods. */
import type { NativeTensor } from '../native/binding.ts';
import { BINARY_OP } from '../native/op-codes.ts';
import { Tensor, native } from './tensor.ts';

function handles(op: string, ts: Tensor[]): NativeTensor[] {
  if (!Array.isArray(ts)) throw new TypeError(`${op}: tensors must be an array of Tensors`);
  return ts.map((t, i) => {
    if (!(t instanceof Tensor)) throw new TypeError(`${op}: tensors[${i}] must be a Tensor`);
    return t.handle;
  });
}

export function cat(ts: Tensor[], dim = 0): Tensor {
  return new Tensor(native.cat(handles('cat', ts), dim));
}

export function stack(ts: Tensor[], dim = 0): Tensor {
  return new Tensor(native.stack(handles('stack', ts), dim));
}

export type PadMode = 'constant' | 'reflect' | 'replicate' | 'circular';

/** PyTorch's F.pad: pads = [lastBefore, lastAfter, secondLastBefore, secondLastAfter, ...]. */
export function pad(t: Tensor, pads: number[], mode: PadMode = 'constant', value = 0): Tensor {
  return new Tensor(native.pad(t.handle, pads, mode, value));
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  return new Tensor(native.matmul(a.handle, b.handle));
}

/** Elementwise cond ? a : b (cond a bool tensor; a and b tensors or numbers, broadcast). */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  return new Tensor(native.where(cond.handle, a instanceof Tensor ? a.handle : a, b instanceof Tensor ? b.handle : b));
}

export function add(a: Tensor | number, b: Tensor | number): Tensor {
  return new Tensor(native.binary(BINARY_OP.add, a instanceof Tensor ? a.handle : a, b instanceof Tensor ? b.handle : b));
}
export function sub(a: Tensor | number, b: Tensor | number): Tensor {
  return new Tensor(native.binary(BINARY_OP.sub, a instanceof Tensor ? a.handle : a, b instanceof Tensor ? b.handle : b));
}
export function mul(a: Tensor | number, b: Tensor | number): Tensor {
  return new Tensor(native.binary(BINARY_OP.mul, a instanceof Tensor ? a.handle : a, b instanceof Tensor ? b.handle : b));
}
export function div(a: Tensor | number, b: Tensor | number): Tensor {
  return new Tensor(native.binary(BINARY_OP.div, a instanceof Tensor ? a.handle : a, b instanceof Tensor ? b.handle : b));
}
export function maximum(a: Tensor, b: Tensor | number): Tensor {
  return a.maximum(b);
}
export function minimum(a: Tensor, b: Tensor | number): Tensor {
  return a.minimum(b);
}

/** Small helpers shared by the nn tests. */
import assert from 'node:assert/strict';
import type { Tensor } from '../../src/tensor/index.ts';

/** A float tensor's values as plain numbers. */
export function vals(t: Tensor): number[] {
  return Array.from(t.toTypedArray() as ArrayLike<number>, Number);
}

export function assertClose(actual: readonly number[], expected: readonly number[], tol = 1e-5, what = ''): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.ok(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)), `${what}[${i}]: ${a} vs ${e} (all: ${actual.join(', ')})`);
  }
}

/** Raw bytes of a tensor's data, for bit-exact comparisons. */
export function bytes(t: Tensor): Buffer {
  const a = t.toTypedArray();
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

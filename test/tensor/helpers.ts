/** Test helpers: finite-difference gradient checks and approximate comparisons. */
import assert from 'node:assert/strict';
import { noGrad, randn, tensor, tidy, type Tensor } from '../../src/tensor/index.ts';

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-5, rtol = 1e-5, what = ''): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      assert.fail(`${what}: element ${i}: got ${a}, expected ${e} (atol ${atol}, rtol ${rtol})`);
    }
  }
}

export function values(t: Tensor): number[] {
  return t.toNumbers();
}

/**
 * Compares autograd's gradient of sum(f(inputs) * r) (r random, fixed) with central finite
 * differences, for every element of every input in `wrt` (default all). Inputs must be float64.
 */
export function gradcheck(
  name: string,
  f: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  opts: { eps?: number; atol?: number; rtol?: number; wrt?: number[] } = {},
): void {
  const eps = opts.eps ?? 1e-6;
  const atol = opts.atol ?? 1e-6;
  const rtol = opts.rtol ?? 1e-4;
  const wrt = opts.wrt ?? inputs.map((_, i) => i);
  tidy(() => {
    for (const x of inputs) assert.equal(x.dtype, 'float64', `${name}: gradcheck inputs must be float64`);
    const outShape = noGrad(() => f(...inputs).shape);
    const r = randn(outShape, 'float64');
    const loss = (xs: Tensor[]): number =>
      tidy(() =>
        f(...xs)
          .mul(r)
          .sum()
          .item(),
      );
    const leaves = inputs.map((x, i) => (wrt.includes(i) ? x.clone().requiresGrad_() : x));
    f(...leaves)
      .mul(r)
      .sum()
      .backward();
    for (const i of wrt) {
      const leaf = leaves[i]!;
      const g = leaf.grad;
      assert.ok(g, `${name}: input ${i} got no gradient`);
      const analytic = g.toNumbers();
      const data = Float64Array.from(inputs[i]!.toNumbers());
      const shape = inputs[i]!.shape;
      const numeric: number[] = [];
      noGrad(() => {
        for (let j = 0; j < data.length; j++) {
          const orig = data[j]!;
          data[j] = orig + eps;
          const xp = inputs.slice();
          xp[i] = tensor(data, shape, 'float64');
          const lp = loss(xp);
          data[j] = orig - eps;
          xp[i] = tensor(data, shape, 'float64');
          const lm = loss(xp);
          data[j] = orig;
          numeric.push((lp - lm) / (2 * eps));
        }
      });
      assertClose(analytic, numeric, atol, rtol, `${name}: d/d(input ${i})`);
    }
  });
}

/** float64 normal draws kept away from 0 by at least `margin` (for ops with a kink at 0). */
export function awayFromZero(shape: number[], margin = 0.1): Tensor {
  return tidy(() => {
    const x = randn(shape, 'float64');
    return x.sign().mul(x.abs().add(margin));
  });
}

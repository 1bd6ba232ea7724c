// A value case for every entry of the op table (native/ops.def), against values computed in plain
// JS. Gradient checks alone would pass with two codes swapped (tan for tanh: both have gradients);
// values do not. The table below is typed by the generated op list, and the last test walks that
// list at run time too, so an op added to ops.def without a case here fails (tsc and this test).
//
// References follow PyTorch's semantics where they differ from Math.*: round is half-to-even,
// remainder and floorDivide follow Python (sign of the divisor; 1 // 0.1 == 9), pow follows C99
// (pow(1, NaN) == 1), NaN is true for the logical ops.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OP_TABLE, type OpFamily } from '../../src/native/op-codes.ts';
import { F, tensor, type DType, type Tensor } from '../../src/tensor/index.ts';
import { Adam, AdamW, SGD, type Optimizer } from '../../src/optim/index.ts';

/** Element-wise comparison: NaN matches NaN, infinities must match exactly. */
function expectValues(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rtol = 1e-12, atol = 1e-15): void {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} values, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const ok = Number.isNaN(e) ? Number.isNaN(a) : !Number.isFinite(e) ? a === e : Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok) assert.fail(`${what}: element ${i}: got ${a}, expected ${e}`);
  }
}

// ---- plain-JS references ------------------------------------------------------------------------

/** erf by its everywhere-positive series, 2/sqrt(pi) e^(-x^2) sum 2^n x^(2n+1) / (2n+1)!! (no cancellation). */
function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (!Number.isFinite(x)) return Math.sign(x);
  let term = x;
  let sum = x;
  for (let n = 0; n < 10000 && Math.abs(term) > Math.abs(sum) * 1e-18; n++) {
    term *= (2 * x * x) / (2 * n + 3);
    sum += term;
  }
  return Math.min(1, Math.max(-1, (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum));
}

function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const f = Math.floor(x);
  const d = x - f;
  const r = d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
  return r === 0 ? (x < 0 || Object.is(x, -0) ? -0 : 0) : r;
}

/** Python's float floor division (CPython float_floor_div), which ATen's div(..., 'floor') follows. */
function floorDivide(a: number, b: number): number {
  if (b === 0) return a / b;
  const mod = a % b;
  let div = (a - mod) / b;
  if (mod !== 0 && b < 0 !== mod < 0) div -= 1;
  if (div === 0) return a / b < 0 || Object.is(a / b, -0) ? -0 : 0;
  let fl = Math.floor(div);
  if (div - fl > 0.5) fl += 1;
  return fl;
}

/** Python's % (result has the divisor's sign). */
function remainder(a: number, b: number): number {
  let m = a % b;
  if (m !== 0 && b < 0 !== m < 0) m += b;
  return m;
}

/** C99 pow, which differs from Math.pow for a base of 1 or -1 with a NaN or infinite exponent. */
function powC(a: number, b: number): number {
  if (a === 1 || b === 0) return 1;
  if (a === -1 && (b === Infinity || b === -Infinity)) return 1;
  return a ** b;
}

const truthy = (x: number): boolean => x !== 0; // NaN is true, like C++ and PyTorch
const bit = (b: boolean): number => (b ? 1 : 0);

// ---- inputs -------------------------------------------------------------------------------------

/** Unary inputs: negatives, both zeros, halves (rounding), large (softplus threshold), infinities, NaN. */
const X = [-Infinity, -3.5, -2.5, -1, -0.5, -0, 0, 0.25, 0.5, 1, 1.5, 2.5, 3, 20.5, Infinity, NaN];
/** Binary operands: every pair of these (a as a column, b as a row). */
const A = [-2.5, -1, -0, 0, 0.5, 1, 2, 3, Infinity, -Infinity, NaN];

function unaryCase(f: (x: number) => number, apply: (t: Tensor) => Tensor, opts: { inputs?: number[]; rtol?: number } = {}): () => void {
  return () => {
    const xs = opts.inputs ?? X;
    const out = apply(tensor(xs, [xs.length], 'float64'));
    expectValues(out.toNumbers(), xs.map(f), 'values', opts.rtol);
  };
}

function binaryCase(
  f: (a: number, b: number) => number,
  apply: (a: Tensor, b: Tensor) => Tensor,
  intPairs?: [number, number, number][],
): () => void {
  return () => {
    const out = apply(tensor(A, [A.length, 1], 'float64'), tensor(A, [1, A.length], 'float64'));
    const expected = A.flatMap((a) => A.map((b) => f(a, b)));
    expectValues(out.toNumbers(), expected, 'float64 grid');
    // A number on the right-hand side goes through the wrapped-scalar path.
    expectValues(
      apply(tensor([-3, 0.5, 4], [3], 'float64'), tensor(2, [], 'float64')).toNumbers(),
      [-3, 0.5, 4].map((a) => f(a, 2)),
      'with a 0-d operand',
    );
    if (intPairs) {
      const out64 = apply(
        tensor(
          intPairs.map((p) => p[0]),
          [intPairs.length],
          'int64',
        ),
        tensor(
          intPairs.map((p) => p[1]),
          [intPairs.length],
          'int64',
        ),
      );
      expectValues(
        out64.toNumbers(),
        intPairs.map((p) => p[2]),
        'int64',
      );
    }
  };
}

/** A 2x3 input with negatives and a zero; reductions are checked over all dims, dim 1 and dim 0. */
const R = [
  [1, -2, 0.5],
  [3, -0.25, 0],
];
function reduceCase(
  f: (xs: number[]) => number,
  apply: (t: Tensor, dim?: number) => Tensor,
  input: number[][] = R,
  rtol = 1e-12,
): () => void {
  return () => {
    const t = tensor(input.flat(), [2, 3], 'float64');
    expectValues([apply(t).item()], [f(input.flat())], 'all dims', rtol);
    expectValues(apply(t, 1).toNumbers(), input.map(f), 'dim 1', rtol);
    expectValues(
      apply(t, 0).toNumbers(),
      [0, 1, 2].map((j) => f(input.map((row) => row[j]!))),
      'dim 0',
      rtol,
    );
  };
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const mean = (xs: number[]): number => sum(xs) / xs.length;
const variance = (xs: number[], unbiased: boolean): number => {
  const m = mean(xs);
  return sum(xs.map((x) => (x - m) ** 2)) / (xs.length - (unbiased ? 1 : 0));
};

function lossCase(name: 'mseLoss' | 'l1Loss' | 'smoothL1Loss', perElement: (d: number) => number, beta?: number): () => void {
  return () => {
    const input = [-1.5, 0, 0.25, 2, -3];
    const target = [0.5, 0, -0.5, 2.2, 1];
    const d = input.map((v, i) => v - target[i]!);
    const e = d.map(perElement);
    const a = tensor(input, [5], 'float64');
    const b = tensor(target, [5], 'float64');
    const o = beta === undefined ? {} : { beta };
    expectValues(F[name](a, b, { ...o, reduction: 'none' }).toNumbers(), e, 'reduction none');
    expectValues([F[name](a, b, { ...o, reduction: 'mean' }).item()], [mean(e)], 'reduction mean');
    expectValues([F[name](a, b, { ...o, reduction: 'sum' }).item()], [sum(e)], 'reduction sum');
  };
}

/** A reduction through the three losses that take one besides the point losses. */
function reductionCase(r: 'none' | 'mean' | 'sum'): () => void {
  const reduce = (xs: number[]): number[] => (r === 'none' ? xs : [r === 'mean' ? mean(xs) : sum(xs)]);
  return () => {
    const z = [-2, 0, 1.5, 3];
    const y = [0, 1, 1, 0];
    const bce = z.map((zi, i) => Math.max(zi, 0) - zi * y[i]! + Math.log1p(Math.exp(-Math.abs(zi))));
    expectValues(
      F.binaryCrossEntropyWithLogits(tensor(z, [4], 'float64'), tensor(y, [4], 'float64'), { reduction: r }).toNumbers(),
      reduce(bce),
      'bceWithLogits',
    );
    const logits = [
      [1, -1, 0.5],
      [0, 2, -3],
    ];
    const cls = [2, 0];
    const ce = logits.map((row, i) => Math.log(sum(row.map(Math.exp))) - row[cls[i]!]!);
    const lt = tensor(logits.flat(), [2, 3], 'float64');
    const ct = tensor(cls, [2], 'int64');
    expectValues(F.crossEntropy(lt, ct, { reduction: r }).toNumbers(), reduce(ce), 'crossEntropy');
    expectValues(F.nllLoss(F.logSoftmax(lt, 1), ct, { reduction: r }).toNumbers(), reduce(ce), 'nllLoss');
  };
}

// One step from p = P0 with gradient g = G (loss sum(G * p)), against torch.optim's rules.
const P0 = [1, -2, 0.5];
const G = [0.5, -1, 2];
function optimizerCase(make: (p: Tensor) => Optimizer, expected: number[]): () => void {
  return () => {
    const p = tensor(P0, [3], 'float64').requiresGrad_();
    const opt = make(p);
    p.mul(tensor(G, [3], 'float64'))
      .sum()
      .backward();
    opt.step();
    expectValues(p.toNumbers(), expected, 'parameters after one step');
    opt.dispose();
  };
}
const adamStep = (lr: number, eps: number, g: number[]): number[] => g.map((gi) => (lr * gi) / (Math.abs(gi) + eps));

function dtypeCase(dtype: DType, values: number[]): () => void {
  return () => {
    const t = tensor(values, [values.length], dtype);
    assert.equal(t.dtype, dtype);
    expectValues(t.toNumbers(), values, `${dtype} round trip`);
    const back = tensor(
      values.map((v) => v * 1),
      [values.length],
      'float64',
    ).to(dtype);
    assert.equal(back.dtype, dtype);
    expectValues(back.toNumbers(), values, `float64 -> ${dtype}`);
    assert.equal(t.handle.nbytes(), values.length * { float32: 4, float64: 8, int16: 2, int32: 4, int64: 8, uint8: 1, bool: 1 }[dtype]);
  };
}

/** [0, 1] on a 1x1x1x2 image resized to 1x4. */
function interpolateCheck(mode: 'nearest' | 'bilinear', alignCorners: boolean, expected: number[]): void {
  const x = tensor([0, 1], [1, 1, 1, 2], 'float64');
  const out = F.interpolate(x, { size: [1, 4], mode, ...(alignCorners ? { alignCorners } : {}) });
  expectValues(out.toNumbers(), expected, `${mode}${alignCorners ? ' alignCorners' : ''}`);
}

// ---- the table ----------------------------------------------------------------------------------

type Cases = { [Fam in OpFamily]: Record<(typeof OP_TABLE)[Fam][number], () => void> };

const CASES: Cases = {
  binary: {
    add: binaryCase(
      (a, b) => a + b,
      (a, b) => a.add(b),
    ),
    sub: binaryCase(
      (a, b) => a - b,
      (a, b) => a.sub(b),
    ),
    mul: binaryCase(
      (a, b) => a * b,
      (a, b) => a.mul(b),
    ),
    div: binaryCase(
      (a, b) => a / b,
      (a, b) => a.div(b),
    ),
    pow: binaryCase(powC, (a, b) => a.pow(b)),
    maximum: binaryCase(
      (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
      (a, b) => a.maximum(b),
    ),
    minimum: binaryCase(
      (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
      (a, b) => a.minimum(b),
    ),
    eq: binaryCase(
      (a, b) => bit(a === b),
      (a, b) => a.eq(b),
    ),
    ne: binaryCase(
      (a, b) => bit(a !== b),
      (a, b) => a.ne(b),
    ),
    gt: binaryCase(
      (a, b) => bit(a > b),
      (a, b) => a.gt(b),
    ),
    ge: binaryCase(
      (a, b) => bit(a >= b),
      (a, b) => a.ge(b),
    ),
    lt: binaryCase(
      (a, b) => bit(a < b),
      (a, b) => a.lt(b),
    ),
    le: binaryCase(
      (a, b) => bit(a <= b),
      (a, b) => a.le(b),
    ),
    logicalAnd: binaryCase(
      (a, b) => bit(truthy(a) && truthy(b)),
      (a, b) => a.logicalAnd(b),
    ),
    logicalOr: binaryCase(
      (a, b) => bit(truthy(a) || truthy(b)),
      (a, b) => a.logicalOr(b),
    ),
    logicalXor: binaryCase(
      (a, b) => bit(truthy(a) !== truthy(b)),
      (a, b) => a.logicalXor(b),
    ),
    remainder: binaryCase(remainder, (a, b) => a.remainder(b), [
      [-7, 2, 1],
      [7, -2, -1],
      [-7, -2, -1],
      [7, 2, 1],
      [0, 3, 0],
      [-6, 3, 0],
    ]),
    floorDivide: binaryCase(floorDivide, (a, b) => a.floorDivide(b), [
      [-7, 2, -4],
      [7, -2, -4],
      [-7, -2, 3],
      [7, 2, 3],
      [0, 3, 0],
      [-6, 3, -2],
    ]),
    atan2: binaryCase(Math.atan2, (a, b) => a.atan2(b)),
  },
  unary: {
    neg: unaryCase(
      (x) => -x,
      (t) => t.neg(),
    ),
    abs: unaryCase(Math.abs, (t) => t.abs()),
    exp: unaryCase(Math.exp, (t) => t.exp()),
    log: unaryCase(Math.log, (t) => t.log()),
    sqrt: unaryCase(Math.sqrt, (t) => t.sqrt()),
    rsqrt: unaryCase(
      (x) => 1 / Math.sqrt(x),
      (t) => t.rsqrt(),
    ),
    sin: unaryCase(Math.sin, (t) => t.sin()),
    cos: unaryCase(Math.cos, (t) => t.cos()),
    tanh: unaryCase(Math.tanh, (t) => t.tanh()),
    sigmoid: unaryCase(
      (x) => 1 / (1 + Math.exp(-x)),
      (t) => t.sigmoid(),
    ),
    relu: unaryCase(
      (x) => (Number.isNaN(x) ? NaN : Math.max(x, 0)),
      (t) => t.relu(),
    ),
    // gelu(-inf) is NaN in ATen (x * 0.5 * (1 + erf(x / sqrt 2)) = -inf * 0), so the formula holds there too.
    gelu: unaryCase(
      (x) => x * 0.5 * (1 + erf(x / Math.SQRT2)),
      (t) => t.gelu(),
      { rtol: 1e-11 },
    ),
    floor: unaryCase(Math.floor, (t) => t.floor()),
    round: unaryCase(roundHalfEven, (t) => t.round()),
    // libtorch 1.13 computes sign as (0 < x) - (x < 0): 0 for NaN, where Math.sign gives NaN.
    sign: unaryCase(
      (x) => (Number.isNaN(x) ? 0 : Math.sign(x)),
      (t) => t.sign(),
    ),
    logicalNot: unaryCase(
      (x) => bit(!truthy(x)),
      (t) => t.logicalNot(),
    ),
    ceil: unaryCase(Math.ceil, (t) => t.ceil()),
    log1p: unaryCase(Math.log1p, (t) => t.log1p(), { inputs: [...X, -0.999, 1e-10, -1e-10] }),
    expm1: unaryCase(Math.expm1, (t) => t.expm1(), { inputs: [...X, 1e-10, -1e-10] }),
    reciprocal: unaryCase(
      (x) => 1 / x,
      (t) => t.reciprocal(),
    ),
    square: unaryCase(
      (x) => x * x,
      (t) => t.square(),
    ),
    contiguous: () => {
      // Values in row-major order of the transposed view; an already contiguous tensor is returned as is.
      const t = tensor([1, -2, 3, -4, 5, -6], [2, 3], 'float64');
      expectValues(t.transpose(0, 1).contiguous().toNumbers(), [1, -4, -2, 5, 3, -6], 'transposed');
      const same = t.contiguous();
      same.fill_(7);
      expectValues(t.toNumbers(), [7, 7, 7, 7, 7, 7], 'contiguous input shares its storage');
    },
    clone: () => {
      const t = tensor([1, -0, NaN, -Infinity], [4], 'float64');
      const c = t.clone();
      expectValues(c.toNumbers(), [1, -0, NaN, -Infinity], 'values');
      c.fill_(3);
      expectValues(t.toNumbers(), [1, -0, NaN, -Infinity], 'a clone has its own storage');
    },
    detach: () => {
      const t = tensor([2, -3], [2], 'float64').requiresGrad_();
      const d = t.mul(2).detach();
      expectValues(d.toNumbers(), [4, -6], 'values');
      assert.equal(d.requiresGrad, false);
      assert.equal(d.isLeaf, true);
    },
    isnan: unaryCase(
      (x) => bit(Number.isNaN(x)),
      (t) => t.isnan(),
    ),
    softplus: unaryCase(
      (x) => (x > 20 ? x : Math.log1p(Math.exp(x))),
      (t) => t.softplus(),
    ),
    silu: unaryCase(
      (x) => x / (1 + Math.exp(-x)),
      (t) => t.silu(),
    ),
    trunc: unaryCase(Math.trunc, (t) => t.trunc()),
    erf: unaryCase(erf, (t) => t.erf(), { rtol: 1e-13 }),
    isfinite: unaryCase(
      (x) => bit(Number.isFinite(x)),
      (t) => t.isfinite(),
    ),
    log2: unaryCase(Math.log2, (t) => t.log2(), { inputs: [...X, 1024, 0.125] }),
    tan: unaryCase(Math.tan, (t) => t.tan(), { inputs: [...X, Math.PI / 4, -1.5] }),
  },
  reduce: {
    sum: reduceCase(sum, (t, d) => t.sum(d)),
    mean: reduceCase(mean, (t, d) => t.mean(d)),
    amax: reduceCase(
      (xs) => Math.max(...xs),
      (t, d) => t.amax(d),
    ),
    amin: reduceCase(
      (xs) => Math.min(...xs),
      (t, d) => t.amin(d),
    ),
    std: () => {
      reduceCase(
        (xs) => Math.sqrt(variance(xs, true)),
        (t, d) => t.std(d),
      )();
      reduceCase(
        (xs) => Math.sqrt(variance(xs, false)),
        (t, d) => t.std(d, false, false),
      )();
    },
    var: () => {
      reduceCase(
        (xs) => variance(xs, true),
        (t, d) => t.var(d),
      )();
      reduceCase(
        (xs) => variance(xs, false),
        (t, d) => t.var(d, false, false),
      )();
    },
    logsumexp: reduceCase(
      (xs) => Math.log(sum(xs.map(Math.exp))),
      (t, d) => t.logsumexp(d ?? [0, 1]),
    ),
    any: reduceCase(
      (xs) => bit(xs.some(truthy)),
      (t, d) => t.any(d),
      [
        [0, 0, 0],
        [0, 2, 0],
      ],
    ),
    all: reduceCase(
      (xs) => bit(xs.every(truthy)),
      (t, d) => t.all(d),
      [
        [1, -1, 1],
        [0, 2, 3],
      ],
    ),
    prod: reduceCase(
      (xs) => xs.reduce((a, b) => a * b, 1),
      (t, d) => t.prod(d),
      [
        [1, -2, 0.5],
        [3, -0.25, 4],
      ],
    ),
  },
  pointLoss: {
    mseLoss: lossCase('mseLoss', (d) => d * d),
    l1Loss: lossCase('l1Loss', Math.abs),
    smoothL1Loss: () => {
      lossCase('smoothL1Loss', (d) => (Math.abs(d) < 1 ? 0.5 * d * d : Math.abs(d) - 0.5))();
      lossCase('smoothL1Loss', (d) => (Math.abs(d) < 0.5 ? (0.5 * d * d) / 0.5 : Math.abs(d) - 0.25), 0.5)();
    },
  },
  interpMode: {
    // [0, 1] on 2 pixels -> 4 pixels
    nearest: () => interpolateCheck('nearest', false, [0, 0, 1, 1]),
    linear: () => {
      interpolateCheck('bilinear', false, [0, 0.25, 0.75, 1]); // source x = (x + 0.5) / 2 - 0.5, clamped
      interpolateCheck('bilinear', true, [0, 1 / 3, 2 / 3, 1]); // source x = x / 3
    },
  },
  reduction: {
    none: reductionCase('none'),
    mean: reductionCase('mean'),
    sum: reductionCase('sum'),
  },
  optimizerKind: {
    SGD: optimizerCase(
      (p) => new SGD([p], { lr: 0.1 }),
      P0.map((p, i) => p - 0.1 * G[i]!),
    ),
    // Step 1 of Adam is p - lr * g / (|g| + eps) (bias-corrected moments are g and g^2).
    Adam: optimizerCase(
      (p) => new Adam([p], { lr: 0.1, weightDecay: 0.2 }),
      (() => {
        const g = G.map((gi, i) => gi + 0.2 * P0[i]!); // L2 weight decay enters the gradient
        return P0.map((p, i) => p - adamStep(0.1, 1e-8, g)[i]!);
      })(),
    ),
    AdamW: optimizerCase(
      (p) => new AdamW([p], { lr: 0.1, weightDecay: 0.2 }),
      P0.map((p, i) => p * (1 - 0.1 * 0.2) - adamStep(0.1, 1e-8, G)[i]!),
    ),
  },
  dtype: {
    float32: dtypeCase('float32', [-1.5, 0, 0.25, 2 ** 127]),
    float64: dtypeCase('float64', [-1.5, 0, 1e-300, 1e300]),
    int16: dtypeCase('int16', [-32768, -1, 0, 32767]),
    int32: dtypeCase('int32', [-2147483648, -1, 0, 2147483647]),
    int64: dtypeCase('int64', [-(2 ** 53), -1, 0, 2 ** 53]),
    uint8: dtypeCase('uint8', [0, 1, 128, 255]),
    bool: dtypeCase('bool', [0, 1, 1, 0]),
  },
};

const FAMILIES = Object.keys(OP_TABLE) as OpFamily[];

for (const family of FAMILIES) {
  const cases = CASES[family] as Record<string, (() => void) | undefined>;
  describe(`op table: ${family}`, () => {
    for (const name of OP_TABLE[family]) {
      it(`${name} matches plain JS`, () => {
        const run = cases[name];
        assert.ok(run, `${family} op '${name}' has no value case in test/tensor/op-values.test.ts`);
        run();
      });
    }
  });
}

describe('op table coverage', () => {
  it('every op of every family has a value case, and every case names an op of the table', () => {
    const missing: string[] = [];
    const extra: string[] = [];
    for (const family of FAMILIES) {
      const names: readonly string[] = OP_TABLE[family];
      const cases = Object.keys(CASES[family]);
      for (const n of names) if (!cases.includes(n)) missing.push(`${family}.${n}`);
      for (const c of cases) if (!names.includes(c)) extra.push(`${family}.${c}`);
    }
    assert.deepEqual(missing, [], `ops without a value case: ${missing.join(', ')}`);
    assert.deepEqual(extra, [], `value cases for ops not in native/ops.def: ${extra.join(', ')}`);
    assert.deepEqual(FAMILIES.sort(), Object.keys(CASES).sort());
  });

  it('the JS references themselves: PyTorch semantics where Math.* differs', () => {
    assert.equal(roundHalfEven(2.5), 2);
    assert.equal(roundHalfEven(-0.5), -0);
    assert.equal(roundHalfEven(1.5), 2);
    assert.equal(floorDivide(1, 0.1), 9); // Math.floor(1 / 0.1) is 10
    assert.equal(floorDivide(Infinity, 2), NaN);
    assert.equal(remainder(-7, 2), 1);
    assert.equal(powC(1, NaN), 1);
    // erf(0.5) = 0.520499877813046537..., erf(-2.5) = -0.999593047982555041...
    expectValues([erf(0.5), erf(-2.5), erf(3.5), erf(-0)], [0.5204998778130465, -0.999593047982555, 0.9999992569016276, -0], 'erf', 1e-15);
  });
});

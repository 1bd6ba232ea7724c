// The addon recognises its handles by N-API type tags: a value that is not a handle of the
// expected class is refused with a TypeError before any native pointer is read. Before the tags
// an object was unwrapped and its `magic_` field read through whatever pointer it held (an
// optimizer passed as a tensor was read as a TensorWrap). A crash here would end the test run.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadNative, type NativeOptimizer, type NativeTensor } from '../../src/native/binding.ts';
import { DTYPE_CODE, OPTIMIZER_KIND, UNARY_OP } from '../../src/native/op-codes.ts';

const native = loadNative();

function makeTensor(): NativeTensor {
  return native.fromBuffer(new Float32Array([1, -2, 3, 4]), DTYPE_CODE.float32, [4]);
}

function makeOptimizer(param: NativeTensor): NativeOptimizer {
  return new native.NativeOptimizer(OPTIMIZER_KIND.SGD, [
    {
      params: [param],
      lr: 0.1,
      weightDecay: 0,
      momentum: 0,
      dampening: 0,
      nesterov: false,
      beta1: 0,
      beta2: 0,
      eps: 0,
      amsgrad: false,
    },
  ]);
}

/** Values that are not tensor handles, each with what the error should call it. */
function foreignValues(opt: NativeOptimizer, real: NativeTensor): [string, unknown, RegExp][] {
  return [
    ['a plain {}', {}, /not a handle of this addon/],
    ['an object with the old magic field', { magic_: 0x7e450a11 }, /not a handle of this addon/],
    ["a copy of a handle's own fields", Object.assign({}, real), /not a handle of this addon/],
    ['an object inheriting from a real handle', Object.create(real as object) as unknown, /not a handle of this addon/],
    ['an object with NativeTensor.prototype', Object.create(native.NativeTensor.prototype) as unknown, /not a handle of this addon/],
    ['an optimizer handle', opt, /an optimizer handle/],
    ['an array', [real], /an array/],
    ['a typed array', new Float32Array(4), /a typed array/],
    ['null', null, /null/],
    ['a number', 3, /a number/],
  ];
}

describe('N-API type tags on tensor and optimizer handles', () => {
  it('a tensor argument that is not a tensor handle is a TypeError naming what it was', () => {
    const real = makeTensor();
    const opt = makeOptimizer(makeTensor());
    for (const [what, v, named] of foreignValues(opt, real)) {
      assert.throws(
        () => native.unary(UNARY_OP.neg, v as NativeTensor),
        (e: unknown) => {
          assert.ok(e instanceof TypeError, `${what}: ${String(e)} is not a TypeError`);
          assert.match(e.message, /^neg: x must be a Tensor, got /, what);
          assert.match(e.message, named, what);
          return true;
        },
        what,
      );
    }
    // and the real handle still works
    assert.deepEqual(Array.from(new Float32Array(native.unary(UNARY_OP.neg, real).toBuffer())), [-1, 2, -3, -4]);
    opt.dispose();
  });

  it('in arrays, optimizer groups and optimizer state too', () => {
    const real = makeTensor();
    const opt = makeOptimizer(makeTensor());
    assert.throws(
      () => native.cat([real, opt as unknown as NativeTensor], 0),
      (e: unknown) => e instanceof TypeError && /cat: tensors\[1\] must be a Tensor, got an optimizer handle/.test(e.message),
    );
    assert.throws(
      () => makeOptimizer({ magic_: 0x7e450a11 } as unknown as NativeTensor),
      (e: unknown) => e instanceof TypeError && /params\[0\] must be a Tensor/.test(e.message),
    );
    assert.throws(
      () => opt.setState(0, 1, { momentum_buffer: {} as NativeTensor }),
      (e: unknown) => e instanceof TypeError && /state 'momentum_buffer' must be a Tensor/.test(e.message),
    );
    opt.dispose();
  });

  it('a method called on the wrong kind of object is a TypeError, not a misread pointer', () => {
    const real = makeTensor();
    const opt = makeOptimizer(makeTensor());
    const shape = native.NativeTensor.prototype.shape as (this: unknown) => number[];
    const step = native.NativeOptimizer.prototype.step as (this: unknown) => void;
    for (const [what, self] of [
      ['an optimizer', opt],
      ['a plain object', {}],
      ['a forged object', { magic_: 0x7e450a11 }],
    ] as const) {
      assert.throws(() => shape.call(self), TypeError, `shape on ${what}`);
    }
    for (const [what, self] of [
      ['a tensor', real],
      ['a plain object', {}],
    ] as const) {
      assert.throws(() => step.call(self), TypeError, `step on ${what}`);
    }
    assert.deepEqual(real.shape(), [4]);
    opt.dispose();
  });

  it('a disposed tensor handle is named as such (an Error, not a TypeError); dispose is idempotent', () => {
    const t = makeTensor();
    t.dispose();
    t.dispose();
    assert.equal(t.isDisposed(), true);
    assert.throws(
      () => t.shape(),
      (e: unknown) => e instanceof Error && !(e instanceof TypeError) && e.message === 'tensor already disposed',
    );
    assert.throws(
      () => native.unary(UNARY_OP.neg, t),
      (e: unknown) => e instanceof Error && !(e instanceof TypeError) && e.message === 'neg: x: tensor already disposed',
    );
  });

  it('an optimizer refuses use after dispose; dispose is idempotent', () => {
    const opt = makeOptimizer(makeTensor());
    assert.equal(opt.isDisposed(), false);
    opt.dispose();
    opt.dispose();
    assert.equal(opt.isDisposed(), true);
    assert.throws(() => opt.step(), /optimizer already disposed/);
    assert.throws(() => opt.getLr(0), /optimizer already disposed/);
  });
});

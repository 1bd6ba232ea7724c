import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { manualSeed, memory, noGrad, randn, tensor, tidy, zeros, type Tensor } from '../../src/tensor/index.ts';
import {
  BatchNorm2d,
  Conv2d,
  Linear,
  Module,
  ModuleList,
  ReLU,
  Sequential,
  AdaptiveAvgPool2d,
  freezeBatchNorm,
  loadTensors,
  nameMatches,
  readSafetensors,
  saveTensors,
} from '../../src/nn/index.ts';
import { bytes, vals } from './helpers.ts';

const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'noduleseg-nn-'));
process.on('exit', () => fs.rmSync(tmpDir, { recursive: true, force: true }));

/** conv -> bn -> relu -> pool -> flatten -> head (Linear, ReLU, Linear). */
class Net extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  readonly head: Sequential;
  readonly scale: Tensor;

  constructor() {
    super();
    this.conv = this.registerModule('conv', new Conv2d(1, 2, 3, { padding: 1 }));
    this.bn = this.registerModule('bn', new BatchNorm2d(2));
    this.head = this.registerModule('head', new Sequential(new Linear(2, 3), new ReLU(), new Linear(3, 1)));
    this.scale = this.registerParameter('scale', tensor([1.5], [1]));
  }

  forward(x: Tensor): Tensor {
    return tidy(() => {
      const h = new AdaptiveAvgPool2d(1).forward(this.bn.forward(this.conv.forward(x)).relu());
      return this.head.forward(h.flatten(1)).mul(this.scale);
    });
  }
}

class Raw extends Module {
  add(kind: 'p' | 'b' | 'nb' | 'm', name: string): void {
    if (kind === 'p') this.registerParameter(name, zeros([1]));
    else if (kind === 'b') this.registerBuffer(name, zeros([1]));
    else if (kind === 'nb') this.registerBuffer(name, zeros([1]), false);
    else this.registerModule(name, new ReLU());
  }
  forward(x: Tensor): Tensor {
    return x;
  }
}

test('names are validated: no dots, no empty names, no duplicates across kinds', () => {
  const m = new Raw();
  m.add('p', 'w');
  assert.throws(() => m.add('p', 'a.b'), /parameter name "a\.b" must be non-empty and contain no "\."/);
  assert.throws(() => m.add('b', ''), /buffer name "" must be non-empty/);
  assert.throws(() => m.add('p', 'w'), /parameter name "w" is already registered/);
  assert.throws(() => m.add('b', 'w'), /buffer name "w" is already registered/);
  assert.throws(() => m.add('m', 'w'), /module name "w" is already registered/);
  m.add('m', 'act');
  assert.throws(() => m.add('p', 'act'), /"act" is already registered/);
  m.add('b', 'stats');
  m.add('nb', 'cache');
  assert.deepEqual(
    m.namedBuffers().map(([n]) => n),
    ['stats', 'cache'],
  );
  assert.deepEqual(Object.keys(m.stateDict()), ['w', 'stats'], 'non-persistent buffers are not saved');
  m.dispose();
});

test('dotted names come from walking the tree, in registration order', () => {
  const net = new Net();
  assert.deepEqual(
    net.namedParameters().map(([n]) => n),
    ['scale', 'conv.weight', 'conv.bias', 'bn.weight', 'bn.bias', 'head.0.weight', 'head.0.bias', 'head.2.weight', 'head.2.bias'],
  );
  assert.deepEqual(
    net.namedBuffers().map(([n]) => n),
    ['bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked'],
  );
  assert.deepEqual(
    net.namedModules().map(([n]) => n),
    ['', 'conv', 'bn', 'head', 'head.0', 'head.1', 'head.2'],
  );
  assert.deepEqual(net.children(), [net.conv, net.bn, net.head]);
  assert.equal(net.parameters().length, 9);
  assert.ok(
    net.parameters().every((p) => p.requiresGrad),
    'registered parameters require grad',
  );
  assert.deepEqual(
    net.namedParameters(false).map(([n]) => n),
    ['scale'],
  );
  assert.equal(net.getSubmodule('head.2'), net.head.at(2));
  assert.throws(() => net.getSubmodule('head.7'), /no submodule "head\.7"/);
  assert.equal(net.bn.numBatchesTracked!.dtype, 'int64');
  assert.match(net.toString(), /\(conv\): Conv2d\(1, 2, kernelSize=\[3, 3\], padding=\[1, 1\]\)/);
  net.dispose();
});

test('a parameter shared by two modules is listed once', () => {
  const a = new Linear(2, 2);
  class Tied extends Module {
    constructor() {
      super();
      this.registerModule('a', a);
      this.registerModule('b', a);
    }
    forward(x: Tensor): Tensor {
      return x;
    }
  }
  const t = new Tied();
  assert.deepEqual(
    t.namedParameters().map(([n]) => n),
    ['a.weight', 'a.bias'],
  );
  t.dispose();
});

test('train() and eval() recurse and return the module; a frozen BatchNorm stays in eval', () => {
  const net = new Net();
  assert.ok(net.modules().every((m) => m.training));
  assert.equal(net.eval(), net);
  assert.ok(net.modules().every((m) => !m.training));
  assert.equal(net.train(), net);
  assert.ok(net.modules().every((m) => m.training));
  net.bn.bnFrozen = true;
  assert.equal(net.bn.training, false);
  net.train();
  assert.equal(net.bn.training, false, 'train() honours bnFrozen');
  assert.equal(net.conv.training, true);
  const before = bytes(net.bn.runningMean!);
  tidy(() => net.forward(randn([2, 1, 4, 4])));
  assert.deepEqual(bytes(net.bn.runningMean!), before, 'frozen BN keeps its running statistics');
  assert.equal(net.bn.numBatchesTracked!.item(), 0);
  net.bn.bnFrozen = false;
  net.train(true);
  assert.equal(net.bn.training, true);
  net.dispose();
});

test('freeze/unfreeze select parameters by glob or RegExp on dotted names', () => {
  const net = new Net();
  const frozen = (): string[] =>
    net
      .namedParameters()
      .filter(([, p]) => !p.requiresGrad)
      .map(([n]) => n);
  net.freeze('conv');
  assert.deepEqual(frozen(), ['conv.weight', 'conv.bias']);
  net.unfreeze();
  net.freeze('head.*.weight');
  assert.deepEqual(frozen(), ['head.0.weight', 'head.2.weight']);
  net.unfreeze('head.0');
  assert.deepEqual(frozen(), ['head.2.weight']);
  net.unfreeze().freeze(/^(bn|scale)/);
  assert.deepEqual(frozen(), ['scale', 'bn.weight', 'bn.bias']);
  net.unfreeze().freeze('**.bias');
  assert.deepEqual(frozen(), ['conv.bias', 'bn.bias', 'head.0.bias', 'head.2.bias']);
  net.freeze();
  assert.equal(frozen().length, 9);
  assert.throws(() => net.unfreeze('encoder'), /unfreeze\(encoder\) matches no parameter/);
  net.dispose();
});

test('nameMatches: glob segments, prefixes and RegExp', () => {
  assert.ok(nameMatches('enc.0.conv.weight', 'enc'));
  assert.ok(nameMatches('enc.0.conv.weight', 'enc.*.conv'));
  assert.ok(!nameMatches('encoder.0.weight', 'enc'), 'a prefix must end at a dot');
  assert.ok(nameMatches('encoder.0.weight', 'enc*'));
  assert.ok(!nameMatches('a.b.c', '*.c'), '* does not cross dots');
  assert.ok(nameMatches('a.b.c', '**.c'));
  assert.ok(nameMatches('layer1.weight', 'layer?.weight'));
  assert.ok(nameMatches('x.bn.weight', /bn/g));
  assert.ok(nameMatches('x.bn.weight', /bn/g), 'a /g RegExp gives the same answer twice');
});

test('state dict round trip through a safetensors file gives equal outputs and keeps parameter objects', () => {
  manualSeed(1);
  const a = new Net();
  // One training step moves the BatchNorm running statistics away from their initial values.
  tidy(() => a.forward(randn([4, 1, 5, 5])));
  assert.equal(a.bn.numBatchesTracked!.item(), 1);
  a.eval();
  const file = path.join(tmpDir, 'net.safetensors');
  a.save(file, { arch: 'Net', epoch: '3' });

  const st = readSafetensors(file);
  assert.deepEqual([...st.tensors.keys()].sort(), Object.keys(a.stateDict()).sort());
  assert.equal(st.tensors.get('bn.num_batches_tracked')!.dtype, 'int64');

  manualSeed(2);
  const b = new Net().eval();
  const paramsBefore = b.parameters();
  const x = randn([3, 1, 5, 5]);
  const ya = vals(tidy(() => a.forward(x)));
  assert.notDeepEqual(vals(tidy(() => b.forward(x))), ya);
  const { metadata, result } = b.load(file);
  assert.deepEqual(metadata, { arch: 'Net', epoch: '3' });
  assert.deepEqual(result, { missingKeys: [], unexpectedKeys: [], mismatched: [] });
  assert.deepEqual(vals(tidy(() => b.forward(x))), ya);
  for (const [k, t] of Object.entries(a.stateDict())) assert.deepEqual(bytes(b.stateDict()[k]!), bytes(t), k);
  const paramsAfter = b.parameters();
  assert.ok(
    paramsBefore.every((p, i) => p === paramsAfter[i]),
    'loading copies in place',
  );
  assert.ok(paramsAfter.every((p) => p.requiresGrad && !p.isDisposed));

  // Tensor-level helpers: every dtype survives.
  const tfile = path.join(tmpDir, 'tensors.safetensors');
  const src: Record<string, Tensor> = {
    f64: tensor([1.25, -2], [2], 'float64'),
    i32: tensor([7, -8, 9], [3], 'int32'),
    u8: tensor([255], [1, 1], 'uint8'),
    b: tensor([1, 0, 1], [3], 'bool'),
    // A non-contiguous view is written in row-major order of its own shape.
    view: tensor([0, 1, 2, 3, 4, 5], [2, 3], 'int64').transpose(0, 1),
  };
  saveTensors(tfile, src);
  const back = loadTensors(tfile);
  for (const [k, t] of Object.entries(src)) {
    assert.equal(back.tensors[k]!.dtype, t.dtype, k);
    assert.deepEqual(back.tensors[k]!.shape, t.shape, k);
    assert.deepEqual(bytes(back.tensors[k]!), bytes(t), k);
    assert.deepEqual(back.tensors[k]!.toArray(), t.toArray(), k);
    back.tensors[k]!.dispose();
    t.dispose();
  }
  x.dispose();
  a.dispose();
  b.dispose();
});

test('loadStateDict lists every missing, unexpected and mismatched entry in one error', () => {
  const net = new Net();
  const sd: Record<string, Tensor> = { ...net.stateDict() };
  const badShape = zeros([2, 1, 5, 5]);
  const badDtype = zeros([2], 'float64');
  const extra = zeros([1]);
  delete sd['head.2.bias'];
  delete sd['bn.running_var'];
  sd['conv.weight'] = badShape;
  sd['bn.weight'] = badDtype;
  sd['head.3.weight'] = extra;
  const before = bytes(net.conv.bias!);
  const fresh = noGrad(() => net.conv.bias!.add(1));
  sd['conv.bias'] = fresh;

  assert.throws(
    () => net.loadStateDict(sd),
    (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, /5 problem\(s\)/);
      assert.match(e.message, /missing key "bn\.running_var"/);
      assert.match(e.message, /missing key "head\.2\.bias"/);
      assert.match(e.message, /unexpected key "head\.3\.weight"/);
      assert.match(e.message, /"conv\.weight": expected float32 \[2, 1, 3, 3\], got float32 \[2, 1, 5, 5\]/);
      assert.match(e.message, /"bn\.weight": expected float32 \[2\], got float64 \[2\]/);
      return true;
    },
  );
  assert.deepEqual(bytes(net.conv.bias!), before, 'a strict failure copies nothing');

  const r = net.loadStateDict(sd, { strict: false });
  assert.deepEqual(r.missingKeys, ['bn.running_var', 'head.2.bias']);
  assert.deepEqual(r.unexpectedKeys, ['head.3.weight']);
  assert.deepEqual(
    r.mismatched.map((m) => m.key),
    ['conv.weight', 'bn.weight'],
  );
  assert.deepEqual(bytes(net.conv.bias!), bytes(fresh), 'non-strict copies what matches');

  // The same through a file: the message names the file.
  const file = path.join(tmpDir, 'small.safetensors');
  new Linear(2, 3).save(file);
  assert.throws(
    () => net.load(file),
    (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.ok(e.message.startsWith(`${file}: does not match this Net`), e.message);
      assert.match(e.message, /unexpected key "weight"/);
      assert.match(e.message, /missing key "conv\.weight"/);
      return true;
    },
  );
  fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 40));
  assert.throws(() => net.load(file), new RegExp(`${file.replace(/[.]/g, '\\.')}: not a valid safetensors file: truncated`));
  for (const t of [badShape, badDtype, extra, fresh]) t.dispose();
  net.dispose();
});

test('ModuleList registers children but has no forward; dispose frees every tensor', () => {
  const list = new ModuleList([new Linear(1, 1), new Linear(1, 2, { bias: false })]);
  assert.equal(list.length, 2);
  assert.deepEqual(
    list.namedParameters().map(([n]) => n),
    ['0.weight', '0.bias', '1.weight'],
  );
  assert.throws(() => list.forward(), /ModuleList has no forward/);
  assert.throws(() => list.at(5), /index 5 out of range/);
  const ps = list.parameters();
  list.dispose();
  assert.ok(ps.every((p) => p.isDisposed));
  assert.ok(list.isDisposed);
  assert.throws(() => list.stateDict(), /already disposed/);
});

test('a module built inside tidy() keeps its tensors; forward/backward leaks nothing', () => {
  const net = tidy(() => {
    const n = new Net();
    tidy(() => n.forward(randn([2, 1, 4, 4])));
    return n;
  });
  assert.ok(net.stateDict()['conv.weight']!.numel === 18 && !net.conv.weight.isDisposed, 'parameters survive tidy');
  assert.equal(net.bn.numBatchesTracked!.item(), 1);
  const x = randn([2, 1, 4, 4]);
  const before = memory().numTensors;
  for (let i = 0; i < 3; i++) {
    tidy(() => {
      const loss = net.forward(x).square().mean();
      loss.backward();
    });
    for (const p of net.parameters()) p.grad?.dispose();
  }
  assert.ok(
    net.parameters().every((p) => {
      const g = p.grad;
      g?.dispose();
      return g !== null;
    }),
  );
  net.zeroGrad();
  assert.ok(
    net.parameters().every((p) => p.grad === null),
    'zeroGrad drops every gradient',
  );
  // The only tensors that may remain are the parameters' gradients, held natively, not as handles.
  assert.equal(memory().numTensors, before);
  x.dispose();
  net.dispose();
});

test('gradients reach every trainable parameter and skip frozen ones', () => {
  manualSeed(4);
  const net = new Net();
  net.freeze('conv.weight').freeze(/^head\.0\./);
  const x = randn([3, 1, 4, 4]);
  tidy(() => net.forward(x).square().sum().backward());
  for (const [name, p] of net.namedParameters()) {
    const g = p.grad;
    if (name === 'conv.weight' || name.startsWith('head.0.')) assert.equal(g, null, `${name} is frozen`);
    else {
      assert.ok(g !== null, `${name} has a gradient`);
      assert.deepEqual(g.shape, p.shape, name);
      assert.ok(
        vals(g).some((v) => v !== 0),
        `${name} gradient is not all zero`,
      );
      g.dispose();
    }
  }
  x.dispose();
  net.dispose();
});

test('freezeBatchNorm freezes the BatchNorms selected by name', () => {
  const net = new Net();
  assert.equal(freezeBatchNorm(net, true, 'conv'), 0);
  assert.equal(freezeBatchNorm(net), 1);
  assert.equal(net.bn.bnFrozen, true);
  assert.equal(net.train().bn.training, false);
  assert.equal(freezeBatchNorm(net, false), 1);
  assert.equal(net.bn.training, true, 'unfreezing restores the network mode');
  net.dispose();
});

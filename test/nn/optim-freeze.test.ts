import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { manualSeed, randn, tidy, type Tensor } from '../../src/tensor/index.ts';
import { AdamW, SGD } from '../../src/optim/index.ts';
import { BatchNorm2d, Conv2d, Linear, Module, ReLU, Sequential } from '../../src/nn/index.ts';
import { assertClose, bytes, vals } from './helpers.ts';

class Small extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  readonly head: Sequential;

  constructor() {
    super();
    this.conv = this.registerModule('conv', new Conv2d(1, 3, 3, { padding: 1 }));
    this.bn = this.registerModule('bn', new BatchNorm2d(3));
    this.head = this.registerModule('head', new Sequential(new Linear(3, 4), new ReLU(), new Linear(4, 1)));
  }

  forward(x: Tensor): Tensor {
    return tidy(() => this.head.forward(this.bn.forward(this.conv.forward(x)).relu().mean([2, 3])));
  }
}

function trainStep(net: Small, opt: { step(): void; zeroGrad(): void }, x: Tensor): void {
  opt.zeroGrad();
  tidy(() => net.forward(x).square().mean().backward());
  opt.step();
}

test('a frozen parameter is byte-identical after optimizer steps, even with weight decay', () => {
  manualSeed(6);
  const net = new Small();
  net.freeze('conv').freeze('bn');
  net.bn.bnFrozen = true;
  net.train();
  // The optimizer gets every parameter: freezing alone must keep the frozen ones fixed.
  const opt = new AdamW(net.parameters(), { lr: 0.05, weightDecay: 0.1 });
  const snapshot = new Map(Object.entries(net.stateDict()).map(([k, t]) => [k, bytes(t)]));
  const x = randn([4, 1, 6, 6]);
  for (let i = 0; i < 3; i++) trainStep(net, opt, x);
  for (const [k, t] of Object.entries(net.stateDict())) {
    const frozen = k.startsWith('conv.') || k.startsWith('bn.');
    if (frozen) assert.deepEqual(bytes(t), snapshot.get(k), `${k} is frozen`);
    else assert.notDeepEqual(bytes(t), snapshot.get(k), `${k} trains`);
  }
  x.dispose();
  net.dispose();
});

test('an optimizer built before loadStateDict updates the loaded values (parameters stay the same objects)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'noduleseg-nnopt-'));
  try {
    manualSeed(7);
    const src = new Small();
    const file = path.join(dir, 'small.safetensors');
    src.save(file);
    manualSeed(8);
    const net = new Small();
    const opt = new SGD(net.parameters(), { lr: 0.1 });
    net.load(file);
    const x = randn([2, 1, 5, 5]);
    opt.zeroGrad();
    tidy(() => net.forward(x).sum().backward());
    const expected = net.namedParameters().map(([name, p]) => {
      const g = p.grad!;
      const gv = vals(g);
      g.dispose();
      const want = vals(src.stateDict()[name]!).map((v, i) => v - 0.1 * gv[i]!);
      return [name, want] as const;
    });
    opt.step();
    for (const [name, want] of expected) {
      const p = net.namedParameters().find(([n]) => n === name)![1];
      assertClose(vals(p), want, 1e-6, name);
    }
    x.dispose();
    src.dispose();
    net.dispose();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

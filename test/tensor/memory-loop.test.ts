// A 5,000-step training loop (each step would leak ~50 KiB if tidy failed) keeps a flat RSS and returns numTensors to its baseline; tensors
// that are never disposed are still freed by the garbage collector (the safety net).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { F, manualSeed, matmul, memory, randn, tidy, zeros, ones } from '../../src/tensor/index.ts';
import { Adam } from '../../src/optim/index.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('memory stays flat', () => {
  it('5,000 training steps: RSS growth under 16 MiB and numTensors back to baseline', () => {
    manualSeed(3);
    const base = memory().numTensors;
    const [w, b, target] = tidy(() => [randn([64, 64]).mul(0.1), zeros([64]), ones([32, 64]).mul(0.5)]);
    w.requiresGrad_();
    b.requiresGrad_();
    const opt = new Adam([w, b], { lr: 1e-3 });
    const step = (): number => {
      opt.zeroGrad();
      const loss = tidy(() => {
        const l = F.mseLoss(F.sigmoid(matmul(randn([32, 64]), w).add(b)), target);
        l.backward();
        return l.item();
      });
      opt.step();
      return loss;
    };
    for (let i = 0; i < 500; i++) step();
    gc();
    const rss0 = process.memoryUsage().rss;
    let last = 0;
    for (let i = 0; i < 4500; i++) last = step();
    gc();
    const growth = (process.memoryUsage().rss - rss0) / 2 ** 20;
    assert.ok(Number.isFinite(last));
    console.log(`# RSS growth over 4,500 steps: ${growth.toFixed(1)} MiB`);
    assert.ok(growth < 16, `RSS grew by ${growth.toFixed(1)} MiB over 4,500 steps`);
    // parameters (2), target, optimizer state copies are native-only: only our 3 handles remain
    assert.equal(memory().numTensors, base + 3);
    for (const t of [w, b, target]) t.dispose();
    assert.equal(memory().numTensors, base);
  });

  it('tensors that are never disposed are freed by the garbage collector', async () => {
    gc();
    const base = memory().numTensors;
    (() => {
      for (let i = 0; i < 200; i++) ones([64]).add(1);
    })();
    assert.ok(memory().numTensors >= base + 200);
    for (let i = 0; i < 5 && memory().numTensors > base; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(memory().numTensors <= base, `${memory().numTensors - base} leaked tensors still alive after GC`);
  });
});

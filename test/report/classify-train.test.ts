/** Training a head in the tensor API (libtorch). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { headForward } from '../../src/classify/heads.ts';
import { trainHead, featureStats } from '../../src/classify/train.ts';

test('trainHead learns separable classes (three and two) and exports a two-class head as one sigmoid', () => {
  const n = 60,
    d = 3;
  const x = new Float32Array(n * d);
  const y3: number[] = [],
    y2: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    x.set([c === 0 ? 2 : -1, c === 1 ? 2 : -1, Math.sin(i)], i * d);
    y3.push(c);
    y2.push(c === 2 ? 1 : 0);
  }
  const { mean } = featureStats(x, n);
  assert.equal(mean.length, d);
  const opts = { hidden: 0, l2: 1e-3, steps: 200, lr: 0.1, dropout: 0, balance: 1, seed: 1 };
  const three = trainHead(x, y3, ['a', 'b', 'c'], opts);
  const two = trainHead(x, y2, ['no', 'yes'], { ...opts, hidden: 8 });
  assert.equal(two.layers[two.layers.length - 1]!.outFeatures, 1);
  let right3 = 0,
    right2 = 0;
  for (let i = 0; i < n; i++) {
    const row = x.subarray(i * d, (i + 1) * d);
    const p = headForward(three, row);
    right3 += p.indexOf(Math.max(...p)) === y3[i] ? 1 : 0;
    right2 += (headForward(two, row)[0]! >= 0.5 ? 1 : 0) === y2[i] ? 1 : 0;
  }
  assert.equal(right3, n);
  assert.equal(right2, n);
});

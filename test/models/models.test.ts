import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor, tidy, full, noGrad, manualSeed, memory, type Tensor } from '../../src/tensor/index.ts';
import { Adam } from '../../src/optim/index.ts';
import {
  buildModel,
  saveModel,
  loadModel,
  readModelInfo,
  writeModelLevels,
  defaultJointConfig,
  softThresholdDynamics,
  volumeShift,
  JointNet,
  classAreaIntervalsPx,
  type ModelConfig,
} from '../../src/models/index.ts';
import { segmentationLoss, softDiceLoss, nonEmptySampleDiceLoss, DEFAULT_LOSS_WEIGHTS } from '../../src/losses/index.ts';
import { DEFAULT_SLICE_CONFIG, type SizeBins } from '../../src/data/index.ts';
import { readSafetensors, writeSafetensors } from '../../src/nn/index.ts';

const BINS: SizeBins = {
  format: 'noduleseg.size-bins',
  version: 1,
  edgesMm2: [10, 40],
  classes: ['none', 'small', 'medium', 'large'],
  nonzeroSlices: 3,
  source: 'test',
};
const SLICE = { ...DEFAULT_SLICE_CONFIG, patchSize: 32 };

function configs(): ModelConfig[] {
  const features = [4, 8, 16];
  return [
    { arch: 'unet', inChannels: 1, features, norm: 'batch' },
    { arch: 'resunet', inChannels: 3, features, norm: 'group' },
    defaultJointConfig({ features, clsFeatures: [4, 4, 8] }),
    defaultJointConfig({ features, clsFeatures: features, fcb: false, std: null, sizePrior: null }),
    defaultJointConfig({ features, clsFeatures: features, sizePrior: null, norm: 'instance' }),
    defaultJointConfig({ features, clsFeatures: features, sizePrior: { mode: 'expected', confidence: 0, margin: 0.1 } }),
  ];
}

test('every network: output shapes and a gradient for every parameter', () => {
  manualSeed(3);
  for (const cfg of configs()) {
    const model = buildModel(cfg, SLICE, BINS);
    tidy(() => {
      const x = tensor(
        Float32Array.from({ length: 2 * cfg.inChannels * 32 * 32 }, (_, i) => Math.sin(i * 0.37)),
        [2, cfg.inChannels, 32, 32],
      );
      const out = model.forward(x);
      assert.deepEqual(out.maskLogits.shape, [2, 1, 32, 32], cfg.arch);
      assert.deepEqual(out.rawMaskLogits.shape, [2, 1, 32, 32]);
      if (cfg.arch === 'joint') assert.deepEqual(out.classLogits!.shape, [2, 4]);
      else assert.equal(out.classLogits, null);
      const y = tensor(
        Float32Array.from({ length: 2 * 32 * 32 }, (_, i) => (((i % 32) - 16) ** 2 + (((i >> 5) % 32) - 16) ** 2 < 40 ? 1 : 0)),
        [2, 1, 32, 32],
      );
      const loss = segmentationLoss(out, y, cfg.arch === 'joint' ? tensor([2, 0], [2], 'int64') : null, DEFAULT_LOSS_WEIGHTS);
      loss.total.backward();
      for (const [name, p] of model.namedParameters()) {
        const g = p.grad;
        assert.ok(g !== null, `${cfg.arch}: no gradient for ${name}`);
        assert.ok(Number.isFinite(g.abs().sum().item()), `${cfg.arch}: non-finite gradient for ${name}`);
      }
    });
    model.dispose();
  }
});

test('constructor rejects impossible configs, naming the option', () => {
  assert.throws(() => buildModel({ arch: 'unet', inChannels: 0, features: [4, 8], norm: 'batch' }, SLICE, BINS), /inChannels/);
  assert.throws(() => buildModel(defaultJointConfig({ std: null }), SLICE, BINS), /sizePrior needs the STD layer/);
  assert.throws(() => buildModel(defaultJointConfig({ clsFeatures: [8, 16] }), SLICE, BINS), /clsFeatures must be/);
  assert.throws(() => new JointNet(defaultJointConfig({ features: [4, 8], clsFeatures: [4, 8] })), /classAreaIntervalsPx/);
});

/** A disc of logits (+4 inside, -4 outside) with 4% of pixels flipped (speckle). */
function noisyDisc(size: number, radius: number, seed: number): { logits: Float32Array; clean: Uint8Array } {
  let s = seed;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const logits = new Float32Array(size * size);
  const clean = new Uint8Array(size * size);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const inside = (x - size / 2 + 0.5) ** 2 + (y - size / 2 + 0.5) ** 2 <= radius * radius;
      clean[y * size + x] = inside ? 1 : 0;
      const flip = rnd() < 0.04;
      logits[y * size + x] = (inside !== flip ? 4 : -4) * (0.5 + rnd());
    }
  return { logits, clean };
}

function errors(pred: Float32Array, clean: Uint8Array): number {
  let e = 0;
  for (let i = 0; i < clean.length; i++) e += pred[i]! > 0 !== (clean[i] === 1) ? 1 : 0;
  return e;
}

test('STD removes speckle from a noisy disc', () => {
  const { logits, clean } = noisyDisc(48, 12, 11);
  const rawErrors = errors(logits, clean);
  const out = tidy(() => {
    const z = tensor(logits, [1, 1, 48, 48]);
    const p = { sigma: tensor([2]), lambda: tensor([5]), eps: tensor([1]) };
    return softThresholdDynamics(z, p, { iterations: 10, kernelHalfSize: 3 }).toTypedArray() as Float32Array;
  });
  const stdErrors = errors(out, clean);
  assert.ok(rawErrors > 50, `fixture has speckle (${rawErrors} wrong pixels)`);
  assert.ok(stdErrors < rawErrors / 5, `STD left ${stdErrors} wrong pixels of ${rawErrors}`);
});

test('the volume constraint brings each image area into its interval', () => {
  const { logits } = noisyDisc(48, 12, 5);
  const discArea = Math.PI * 144;
  tidy(() => {
    const z = tensor(Float32Array.from([...logits, ...logits, ...logits]), [3, 1, 48, 48]);
    // Image 0: ask for a smaller nodule; 1: larger; 2: already within its (wide) interval.
    const bounds = { min: tensor([100, 700, 0]), max: tensor([200, 800, 2304]) };
    const p = { sigma: tensor([2]), lambda: tensor([5]), eps: tensor([1]) };
    const area = softThresholdDynamics(z, p, { iterations: 10, kernelHalfSize: 3 }, bounds).sigmoid().sum([1, 2, 3]).toNumbers();
    assert.ok(Math.abs(area[0]! - 200) < 0.5, `area ${area[0]} should be at the upper bound 200`);
    assert.ok(Math.abs(area[1]! - 700) < 0.5, `area ${area[1]} should be at the lower bound 700`);
    assert.ok(Math.abs(area[2]! - discArea) < 0.15 * discArea, `unconstrained area ${area[2]} near the disc's ${discArea}`);
    const b = volumeShift(z, { min: full([3], 0), max: full([3], 2304) }).toNumbers();
    assert.deepEqual(b, [0, 0, 0], 'no shift when every area is within bounds');
  });
});

test('STD is differentiable in its input and in sigma, lambda, eps (finite differences, float64)', () => {
  const { logits } = noisyDisc(12, 4, 2);
  const z0 = Float64Array.from(logits, (v) => v * 0.3);
  const f = (z: Tensor, s: Tensor, l: Tensor, e: Tensor) =>
    softThresholdDynamics(z, { sigma: s, lambda: l, eps: e }, { iterations: 3, kernelHalfSize: 2 }).sigmoid().pow(2).sum();
  tidy(() => {
    const z = tensor(z0, [1, 1, 12, 12], 'float64').requiresGrad_(true);
    const s = tensor([1.5], [1], 'float64').requiresGrad_(true);
    const l = tensor([0.7], [1], 'float64').requiresGrad_(true);
    const e = tensor([0.9], [1], 'float64').requiresGrad_(true);
    f(z, s, l, e).backward();
    const analytic = { s: s.grad!.item(), l: l.grad!.item(), e: e.grad!.item(), z: (z.grad!.toTypedArray() as Float64Array)[30]! };
    const h = 1e-6;
    const at = (ds: number, dl: number, de: number, dz: number) =>
      noGrad(() => {
        const zz = Float64Array.from(z0);
        zz[30]! += dz;
        return f(
          tensor(zz, [1, 1, 12, 12], 'float64'),
          tensor([1.5 + ds], [1], 'float64'),
          tensor([0.7 + dl], [1], 'float64'),
          tensor([0.9 + de], [1], 'float64'),
        ).item();
      });
    const num = {
      s: (at(h, 0, 0, 0) - at(-h, 0, 0, 0)) / (2 * h),
      l: (at(0, h, 0, 0) - at(0, -h, 0, 0)) / (2 * h),
      e: (at(0, 0, h, 0) - at(0, 0, -h, 0)) / (2 * h),
      z: (at(0, 0, 0, h) - at(0, 0, 0, -h)) / (2 * h),
    };
    for (const k of ['s', 'l', 'e', 'z'] as const) {
      assert.ok(Math.abs(analytic[k] - num[k]) <= 1e-6 + 1e-5 * Math.abs(num[k]), `${k}: analytic ${analytic[k]} vs numeric ${num[k]}`);
    }
  });
});

test('size-class intervals follow the bins and the patch spacing', () => {
  const iv = classAreaIntervalsPx([10, 40], 0.5, 32);
  assert.deepEqual(iv, [
    [0, 0],
    [1, 40],
    [40, 160],
    [160, 1024],
  ]);
});

test('a few training steps of the joint model lower the loss', () => {
  manualSeed(7);
  const model = buildModel(defaultJointConfig({ features: [4, 8, 16], clsFeatures: [2, 4, 8] }), SLICE, BINS);
  const opt = new Adam(model.parameters(), { lr: 3e-3 });
  // Discs of three sizes at random offsets; class = size (1..3).
  const n = 12;
  const img = new Float32Array(n * 32 * 32);
  const msk = new Float32Array(n * 32 * 32);
  const cls = new BigInt64Array(n);
  for (let b = 0; b < n; b++) {
    const r = [3, 5, 8][b % 3]!;
    const cx = 14 + (b % 5),
      cy = 15 + (b % 4);
    cls[b] = BigInt((b % 3) + 1);
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++) {
        const inside = (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
        img[b * 1024 + y * 32 + x] = inside ? 0.7 : 0.1 + 0.05 * Math.sin(x * y);
        msk[b * 1024 + y * 32 + x] = inside ? 1 : 0;
      }
  }
  const before = memory().numTensors;
  const losses: number[] = [];
  for (let step = 0; step < 40; step++) {
    losses.push(
      tidy(() => {
        const out = model.forward(tensor(img, [n, 1, 32, 32]));
        const loss = segmentationLoss(out, tensor(msk, [n, 1, 32, 32]), tensor(cls, [n]), DEFAULT_LOSS_WEIGHTS);
        opt.zeroGrad();
        loss.total.backward();
        opt.step();
        return loss.total.item();
      }),
    );
  }
  assert.equal(memory().numTensors, before, 'training steps leave no tensors behind');
  const first = losses.slice(0, 3).reduce((a, b) => a + b) / 3;
  const last = losses.slice(-3).reduce((a, b) => a + b) / 3;
  assert.ok(last < 0.6 * first, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  model.dispose();
});

test('soft Dice loss: 0 for a perfect prediction, ~1 for a disjoint one', () => {
  tidy(() => {
    const t = tensor(Float32Array.from([1, 1, 0, 0]), [1, 1, 2, 2]);
    const good = tensor(Float32Array.from([20, 20, -20, -20]), [1, 1, 2, 2]);
    const bad = tensor(Float32Array.from([-20, -20, 20, 20]), [1, 1, 2, 2]);
    assert.ok(softDiceLoss(good, t, { smooth: 0 }).item() < 1e-6);
    assert.ok(softDiceLoss(bad, t, { smooth: 0 }).item() > 0.999);
  });
});

test('per-sample Dice loss: every nodule slice weighs the same, empty slices are left out', () => {
  tidy(() => {
    // Sample 0: a large target (6 px) predicted exactly; sample 1: a 1-px target missed; sample 2: empty, predicted full.
    const t = tensor(Float32Array.from([1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), [3, 1, 2, 4]);
    const lg = tensor(
      Float32Array.from([20, 20, 20, 20, 20, 20, -20, -20, -20, -20, -20, -20, -20, -20, -20, -20, 20, 20, 20, 20, 20, 20, 20, 20]),
      [3, 1, 2, 4],
    );
    // Mean over the two non-empty samples of (1 - Dice): (0 + 1) / 2, whatever the empty one does.
    assert.ok(Math.abs(nonEmptySampleDiceLoss(lg, t, 0).item() - 0.5) < 1e-5);
    // A batch Dice sees mostly the large target and the empty sample's 8 false pixels instead.
    const batch = softDiceLoss(lg, t, { smooth: 0 }).item();
    assert.ok(Math.abs(batch - (1 - (2 * 6) / (14 + 7))) < 1e-5, String(batch));
    // All samples empty: no Dice term at all.
    assert.equal(nonEmptySampleDiceLoss(lg, tensor(new Float32Array(24), [3, 1, 2, 4]), 0).item(), 0);
    // The default loss stays the batch Dice; diceOver = 'sample' switches.
    const out = { maskLogits: lg, rawMaskLogits: lg, classLogits: null };
    const viaBatch = segmentationLoss(out, t, null, { ...DEFAULT_LOSS_WEIGHTS, bce: 0 }).dice;
    const viaSample = segmentationLoss(out, t, null, { ...DEFAULT_LOSS_WEIGHTS, bce: 0, diceOver: 'sample' }).dice;
    // (smooth 1 there: the missed 1-px slice scores 1 - 1/2, so the mean is 0.25.)
    assert.ok(Math.abs(viaBatch - (1 - 13 / 22)) < 1e-5 && Math.abs(viaSample - 0.25) < 1e-5, `${viaBatch} ${viaSample}`);
  });
});

test('a model file rebuilds its model alone, with identical outputs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'noduleseg-model-'));
  try {
    manualSeed(5);
    const cfg = defaultJointConfig({ features: [4, 8, 16], clsFeatures: [2, 4, 8] });
    const model = buildModel(cfg, SLICE, BINS);
    const file = join(dir, 'm.safetensors');
    saveModel(file, model, { slice: SLICE, sizeBins: BINS, threshold: 0.4, provenance: { note: 'test' } });
    const { model: again, info } = loadModel(file);
    assert.equal(info.threshold, 0.4);
    assert.deepEqual(info.config, cfg);
    model.eval();
    tidy(() => {
      const x = tensor(
        Float32Array.from({ length: 2 * 1024 }, (_, i) => Math.cos(i)),
        [2, 1, 32, 32],
      );
      const a = model.forward(x).maskLogits.toNumbers();
      const b = again.forward(x).maskLogits.toNumbers();
      assert.deepEqual(a, b);
    });
    assert.throws(() => loadModel(join(dir, 'missing.safetensors')), /model file not found/);
    model.dispose();
    again.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('new levels copy a model file: tensors and other metadata (the heads) unchanged, the input untouched', () => {
  const dir = mkdtempSync(join(tmpdir(), 'noduleseg-levels-'));
  try {
    manualSeed(5);
    const model = buildModel(defaultJointConfig({ features: [4, 8, 16], clsFeatures: [2, 4, 8] }), SLICE, BINS);
    const plain = join(dir, 'plain.safetensors'),
      input = join(dir, 'in.safetensors'),
      output = join(dir, 'out.safetensors');
    saveModel(plain, model, { slice: SLICE, sizeBins: BINS, threshold: 0.35, anyReaderThreshold: 0.25, provenance: { note: 'test' } });
    model.dispose();
    const saved = readSafetensors(plain);
    writeSafetensors(input, saved.tensors, { ...saved.metadata, 'noduleseg.heads': '{"heads":"kept"}' });
    const inputBytes = readFileSync(input);
    const info = writeModelLevels(input, output, { threshold: 0.35, anyReaderThreshold: 0.2, note: 'cv' });
    assert.equal(info.anyReaderThreshold, 0.2);
    const back = readModelInfo(output);
    assert.equal(back.threshold, 0.35);
    assert.equal(back.anyReaderThreshold, 0.2);
    assert.deepEqual(back.provenance['levels'], { threshold: 0.35, anyReaderThreshold: 0.2, from: input, note: 'cv' });
    assert.equal(back.provenance['note'], 'test');
    const out = readSafetensors(output);
    assert.equal(out.metadata['noduleseg.heads'], '{"heads":"kept"}');
    assert.deepEqual([...out.tensors.keys()], [...saved.tensors.keys()]);
    for (const [name, t] of saved.tensors) assert.deepEqual(out.tensors.get(name)!.data, t.data, name);
    // Only the threshold given: the any-reader level is kept.
    assert.equal(writeModelLevels(output, join(dir, 'out2.safetensors'), { threshold: 0.3 }).anyReaderThreshold, 0.2);
    // Neither given: both kept.
    const kept = writeModelLevels(output, join(dir, 'out3.safetensors'), {});
    assert.deepEqual([kept.threshold, kept.anyReaderThreshold], [0.35, 0.2]);
    assert.throws(() => writeModelLevels(input, join(dir, 'bad.safetensors'), { threshold: 0.2 }), /any-reader level 0.25 must be in/);
    assert.throws(() => writeModelLevels(input, input, { threshold: 0.35 }), /the output may not be the input/);
    assert.ok(!existsSync(join(dir, 'bad.safetensors')));
    assert.deepEqual(readFileSync(input), inputBytes);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the type head: logits per slice, a loss on the typed slices only, saved and rebuilt with the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'noduleseg-type-'));
  try {
    manualSeed(7);
    const cfg = defaultJointConfig({ features: [4, 8, 16], clsFeatures: [2, 4, 8], typeClasses: 3 });
    const model = buildModel(cfg, SLICE, BINS) as JointNet;
    const plain = buildModel(defaultJointConfig({ features: [4, 8, 16], clsFeatures: [2, 4, 8] }), SLICE, BINS);
    assert.ok(!plain.namedParameters().some(([name]) => name.startsWith('typeClassifier')), 'no type head unless asked for');
    const x = () =>
      tensor(
        Float32Array.from({ length: 3 * 1024 }, (_, i) => Math.sin(i * 0.21)),
        [3, 1, 32, 32],
      );
    const y = () => tensor(new Float32Array(3 * 1024).fill(0), [3, 1, 32, 32]);
    tidy(() => assert.equal(plain.forward(x()).typeLogits, undefined));
    model.eval(); // no dropout, so the two forward passes below agree
    tidy(() => {
      const out = model.forward(x());
      assert.deepEqual(out.typeLogits!.shape, [3, 3]);
      const logits = out.typeLogits!.toNumbers();
      const weight = [1, 3, 2];
      const labels = [0, -1, 2];
      const w = { ...DEFAULT_LOSS_WEIGHTS, type: 0.5 };
      const target = { labels: tensor(labels, [3], 'int64'), count: 2, weight: tensor(weight, [3]) };
      const withType = segmentationLoss(out, y(), tensor([0, 0, 0], [3], 'int64'), w, undefined, target);
      const without = segmentationLoss(out, y(), tensor([0, 0, 0], [3], 'int64'), w);
      // Weighted cross-entropy over slices 0 and 2 only, by hand.
      let num = 0,
        den = 0;
      for (const i of [0, 2]) {
        const row = logits.slice(i * 3, i * 3 + 3);
        const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
        num += weight[labels[i]!]! * (lse - row[labels[i]!]!);
        den += weight[labels[i]!]!;
      }
      assert.ok(Math.abs(withType.type - num / den) < 1e-5, `type loss ${withType.type} vs ${num / den}`);
      assert.ok(Math.abs(withType.total.item() - without.total.item() - 0.5 * withType.type) < 1e-5);
      assert.ok(Number.isNaN(without.type));
      // No typed slice in the batch: no type term (cross-entropy over nothing would be 0/0).
      const none = segmentationLoss(out, y(), null, w, undefined, { labels: tensor([-1, -1, -1], [3], 'int64'), count: 0 });
      assert.ok(Number.isNaN(none.type) && Number.isFinite(none.total.item()));
      model.train();
      const trained = model.forward(x());
      segmentationLoss(trained, y(), null, w, undefined, target).total.backward();
      assert.ok(model.typeClassifier!.weight.grad!.abs().sum().item() > 0, 'the type head learns');
      model.eval();
    });
    const file = join(dir, 'typed.safetensors');
    saveModel(file, model, { slice: SLICE, sizeBins: BINS, threshold: 0.4, provenance: { note: 'test' } });
    const { model: again, info } = loadModel(file);
    assert.equal((info.config as ReturnType<typeof defaultJointConfig>).typeClasses, 3);
    tidy(() => assert.deepEqual(again.forward(x()).typeLogits!.toNumbers(), model.forward(x()).typeLogits!.toNumbers()));
    assert.throws(() => buildModel(defaultJointConfig({ typeClasses: 1 }), SLICE, BINS), /typeClasses must be 0 or an integer >= 2/);
    model.dispose();
    plain.dispose();
    again.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

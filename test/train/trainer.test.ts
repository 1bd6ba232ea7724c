import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inputChannels, loadCrops, missingDataReason, lidcCropsDir } from '../../src/data/index.ts';
import { loadModel, readModelInfo } from '../../src/models/index.ts';
import { configDifferences, resolveTrainConfig, loadTrainConfig } from '../../src/train/config.ts';
import { train, lrAt, trainingCases } from '../../src/train/trainer.ts';
import { TRAIN_OUTPUT_FILES } from '../../src/train/output-files.ts';

const missing = missingDataReason(lidcCropsDir());

test('training configs in configs/ all resolve', () => {
  const names = readdirSync('configs')
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length));
  assert.ok(names.length >= 18, names.join(', '));
  for (const name of names) {
    const cfg = loadTrainConfig(join('configs', `${name}.json`));
    assert.equal(cfg.name, name);
    assert.equal(cfg.model.inChannels, inputChannels(cfg.slice));
  }
  const windowed = loadTrainConfig(join('configs', 'joint-2d-agreement-ggo-window.json'));
  assert.equal(windowed.model.inChannels, 2);
});

test('bad configs are refused naming the file and the setting', () => {
  assert.throws(() => resolveTrainConfig({ epochs: 0 }, 'x.json'), /x\.json: epochs must be a positive integer/);
  assert.throws(() => resolveTrainConfig({ model: { arch: 'vnet' } }, 'x.json'), /x\.json: model\.arch must be/);
  assert.throws(
    () => resolveTrainConfig({ slice: { contextSlices: 3 }, model: { arch: 'unet', inChannels: 1 } }, 'y.json'),
    /y\.json: model\.inChannels \(1\) must equal slice\.contextSlices \(3\)/,
  );
  assert.throws(
    () =>
      resolveTrainConfig(
        { slice: { contextSlices: 3, extraWindows: [{ minHU: -1000, maxHU: -300 }] }, model: { arch: 'unet', inChannels: 3 } },
        'y.json',
      ),
    /y\.json: model\.inChannels \(3\) must equal slice\.contextSlices \(3\) x 2 intensity windows = 6/,
  );
  assert.throws(
    () => resolveTrainConfig({ slice: { extraWindows: [{ minHU: -300, maxHU: -1000 }] } }, 'v.json'),
    /v\.json: SliceConfig\.extraWindows\[0\] must be \{minHU, maxHU\} with maxHU > minHU/,
  );
  assert.throws(() => resolveTrainConfig({ slice: { extraWindows: [{ min: -1000, maxHU: -300 }] } }, 'v.json'), /extraWindows\[0\]/);
  assert.equal(resolveTrainConfig({ slice: { extraWindows: [{ minHU: -1000, maxHU: -300 }] } }, 'v.json').model.inChannels, 2);
  assert.throws(() => resolveTrainConfig({ lr: 1 }, 'z.json'), /unknown setting "lr"/);
  assert.throws(
    () => resolveTrainConfig({ loss: { diceOver: 'nodule' } }, 'w.json'),
    /w\.json: loss\.diceOver must be batch or sample, got "nodule"/,
  );
  assert.equal(resolveTrainConfig({ loss: { diceOver: 'sample' } }, 'w.json').loss.diceOver, 'sample');
  assert.throws(
    () => resolveTrainConfig({ loss: { type: 0.5 } }, 't.json'),
    /t\.json: loss\.type needs a joint model with typeClasses 3 \(solid, part-solid, ground-glass\)/,
  );
  assert.throws(() => resolveTrainConfig({ loss: { type: -1 } }, 't.json'), /loss\.type must be >= 0/);
  assert.equal(resolveTrainConfig({ model: { typeClasses: 3 }, loss: { type: 0.5 } }, 't.json').loss.type, 0.5);
  assert.throws(() => loadTrainConfig('/nonexistent/cfg.json'), /cannot read config/);
});

test('sampling, folds and valScans: defaults, checks that name the nested setting', () => {
  const d = resolveTrainConfig({}, 'd.json');
  assert.deepEqual(d.sampling, { typeRepeat: { solid: 1, 'part-solid': 1, 'ground-glass': 1 }, scanNegatives: null, synthetic: null });
  const syn = loadTrainConfig(join('configs', 'joint-2d-agreement-ggo-shift-synth.json'));
  assert.deepEqual(syn.sampling.synthetic, { counts: { 'ground-glass': 100 }, seed: 1, groundGlassEdgeMm: 2, groundGlassTextureHU: 60 });
  assert.throws(
    () => resolveTrainConfig({ sampling: { synthetic: { counts: { ggo: 3 } } } }, 's.json'),
    /sampling\.synthetic\.counts: unknown type "ggo"/,
  );
  assert.throws(
    () => resolveTrainConfig({ sampling: { synthetic: { counts: { solid: -1 } } } }, 's.json'),
    /counts\.solid must be a non-negative integer/,
  );
  assert.throws(() => resolveTrainConfig({ sampling: { synthetic: { counts: {} } } }, 's.json'), /must name at least one type/);
  assert.throws(
    () => resolveTrainConfig({ sampling: { synthetic: { counts: { solid: 1 }, edgeMm: 2 } } }, 's.json'),
    /unknown setting "sampling\.synthetic\.edgeMm"/,
  );
  assert.equal(d.fold, null);
  assert.deepEqual(d.valScans, []);
  const ws = loadTrainConfig(join('configs', 'joint-2d-wholescan.json'));
  assert.deepEqual(ws.sampling.typeRepeat, { solid: 1, 'part-solid': 2, 'ground-glass': 2 });
  assert.deepEqual(ws.sampling.scanNegatives?.scans, ['lidc-scans/LIDC-IDRI-0001']);
  assert.throws(
    () => resolveTrainConfig({ sampling: { typeRepeat: { subsolid: 2 } } }, 's.json'),
    /s\.json: sampling\.typeRepeat: unknown type "subsolid"/,
  );
  assert.throws(
    () => resolveTrainConfig({ sampling: { typeRepeat: { solid: 0 } } }, 's.json'),
    /sampling\.typeRepeat\.solid must be a positive integer/,
  );
  assert.throws(() => resolveTrainConfig({ sampling: { negatives: {} } }, 's.json'), /unknown setting "sampling\.negatives"/);
  assert.throws(() => resolveTrainConfig({ sampling: { scanNegatives: { scans: [] } } }, 's.json'), /scans must be a non-empty list/);
  assert.throws(
    () => resolveTrainConfig({ sampling: { scanNegatives: { scans: ['a'], cnt: 3 } } }, 's.json'),
    /unknown setting "sampling\.scanNegatives\.cnt"/,
  );
  assert.throws(
    () => resolveTrainConfig({ sampling: { scanNegatives: { scans: ['a'], minDistanceMm: -1 } } }, 's.json'),
    /minDistanceMm must be a non-negative number/,
  );
  assert.throws(() => resolveTrainConfig({ fold: { index: 5, count: 5, seed: 1 } }, 'f.json'), /f\.json: fold must be null or/);
  assert.throws(() => resolveTrainConfig({ valScans: 'x' }, 'v.json'), /valScans must be a list/);
});

test('a typo in a nested setting is refused with its key path', () => {
  assert.throws(
    () => resolveTrainConfig({ optimizer: { learningRate: 1e-3 } }, 'o.json'),
    /o\.json: unknown setting "optimizer\.learningRate" \(optimizer takes kind, lr, weightDecay, momentum\)/,
  );
  assert.throws(() => resolveTrainConfig({ schedule: { warmup: 1 } }, 'o.json'), /unknown setting "schedule\.warmup"/);
  assert.throws(() => resolveTrainConfig({ loss: { dic: 1 } }, 'o.json'), /unknown setting "loss\.dic"/);
  assert.throws(() => resolveTrainConfig({ augment: { flips: true } }, 'o.json'), /unknown setting "augment\.flips"/);
  assert.throws(() => resolveTrainConfig({ slice: { patch: 64 } }, 'o.json'), /unknown setting "slice\.patch"/);
  assert.throws(
    () => resolveTrainConfig({ slice: { normalisation: { kind: 'window', minHu: -1000 } } }, 'o.json'),
    /unknown setting "slice\.normalisation\.minHu"/,
  );
  assert.throws(
    () => resolveTrainConfig({ slice: { normalisation: { kind: 'minmax' } } }, 'o.json'),
    /slice\.normalisation\.kind must be window or zscore/,
  );
  assert.throws(() => resolveTrainConfig({ model: { arch: 'joint', std: { iters: 5 } } }, 'o.json'), /unknown setting "model\.std\.iters"/);
  assert.throws(
    () => resolveTrainConfig({ model: { arch: 'unet', clsFeatures: [1, 2] } }, 'o.json'),
    /unknown setting "model\.clsFeatures"/,
  );
  assert.throws(
    () => resolveTrainConfig({ model: { arch: 'joint', sizePrior: { mod: 'argmax' } } }, 'o.json'),
    /unknown setting "model\.sizePrior\.mod"/,
  );
  assert.throws(() => resolveTrainConfig({ optimizer: 3 }, 'o.json'), /optimizer must be an object/);
  // Comments ("$...") are allowed at every level, and null still turns a part off.
  const ok = resolveTrainConfig(
    { optimizer: { $why: 'x', lr: 2e-3 }, model: { arch: 'joint', std: null, sizePrior: null }, augment: null },
    'ok.json',
  );
  assert.equal(ok.optimizer.lr, 2e-3);
  assert.equal(ok.augment, null);
});

test('resume: the differences between configs, by key path', () => {
  const a = resolveTrainConfig({ epochs: 5 }, 'a');
  assert.deepEqual(configDifferences(a, resolveTrainConfig({ epochs: 9, threads: 1, timeBudgetMinutes: 3 }, 'b')), []);
  assert.deepEqual(
    configDifferences(a, resolveTrainConfig({ optimizer: { lr: 5e-4 }, model: { features: [8, 16, 32, 64, 128] } }, 'b')).sort(),
    [
      'model.clsFeatures[0]',
      'model.clsFeatures[1]',
      'model.clsFeatures[2]',
      'model.clsFeatures[3]',
      'model.clsFeatures[4]',
      'model.features[0]',
      'model.features[1]',
      'model.features[2]',
      'model.features[3]',
      'model.features[4]',
      'optimizer.lr',
    ],
  );
  assert.deepEqual(configDifferences(a, resolveTrainConfig({ valScans: ['x'] }, 'b')), ['valScans']);
  // Comments may change, at any level.
  assert.deepEqual(
    configDifferences(
      resolveTrainConfig({ $why: 'a', optimizer: { $why: 'b' } }, 'a'),
      resolveTrainConfig({ $why: 'c', optimizer: { $why: 'd' } }, 'b'),
    ),
    [],
  );
});

test('training cases: subsolid crops repeated, negatives appended; negatives asked for must be given', () => {
  const cfg = resolveTrainConfig({ sampling: { typeRepeat: { 'part-solid': 3, 'ground-glass': 2 } } }, 'r.json');
  const mk = (id: string, t: 'solid' | 'part-solid' | 'ground-glass' | null) =>
    ({ id, noduleType: t }) as unknown as Parameters<typeof trainingCases>[0][number];
  const out = trainingCases([mk('s', 'solid'), mk('p', 'part-solid'), mk('g', 'ground-glass'), mk('u', null)], cfg, [mk('n', null)]);
  assert.deepEqual(
    out.map((c) => c.id),
    ['s', 'p', 'g', 'u', 'p', 'p', 'g', 'n'],
  );
  assert.throws(
    () =>
      train(resolveTrainConfig({ sampling: { scanNegatives: { scans: ['x'] } } }, 'n.json'), {
        outDir: mkdtempSync(join(tmpdir(), 'noduleseg-neg-')),
        cases: { train: [], val: [] },
      }),
    /loadScanNegatives/,
  );
});

test('learning rate: linear warm-up then cosine to the floor', () => {
  const cfg = resolveTrainConfig({ epochs: 10, optimizer: { lr: 1e-3 }, schedule: { warmupEpochs: 1, minLrFactor: 0.1 } }, 'cfg');
  assert.ok(Math.abs(lrAt(cfg, 0, 10) - 1e-4) < 1e-12);
  assert.ok(Math.abs(lrAt(cfg, 9, 10) - 1e-3) < 1e-12);
  assert.ok(Math.abs(lrAt(cfg, 10, 10) - 1e-3) < 1e-12);
  assert.ok(Math.abs(lrAt(cfg, 100, 10) - 1e-4) < 1e-9);
  assert.ok(lrAt(cfg, 50, 10) < 1e-3 && lrAt(cfg, 50, 10) > 1e-4);
});

test('train on a few real crops, keep best and latest, resume where it stopped', { skip: missing ?? false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'noduleseg-train-'));
  try {
    const cases = { train: loadCrops({ splits: ['train'], limit: 12 }), val: loadCrops({ splits: ['val'], limit: 3 }) };
    const cfg = resolveTrainConfig(
      { name: 't', model: { arch: 'joint', features: [4, 8, 16], clsFeatures: [2, 4, 8] }, epochs: 1, batchSize: 16, threads: 1 },
      'test',
    );
    const r1 = train(cfg, { outDir: dir, cases });
    assert.equal(r1.epochs, 1);
    // Exactly the files the CLI's path check guards (src/train/output-files.ts).
    assert.deepEqual(readdirSync(dir).sort(), Object.values(TRAIN_OUTPUT_FILES).sort());
    // "Killed" after epoch 1: resume with a longer schedule and continue from epoch 2.
    const cfg2 = { ...cfg, epochs: 2 };
    const r2 = train(cfg2, { outDir: dir, cases, resume: true });
    assert.equal(r2.epochs, 2);
    assert.deepEqual(
      r2.log.map((r) => r.epoch),
      [1, 2],
    );
    const lines = readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 2);
    // last.safetensors is epoch 2's network whichever epoch validated best.
    assert.equal(readModelInfo(join(dir, 'last.safetensors')).provenance['epoch'], 2);
    assert.equal(r2.lastModelPath, join(dir, 'last.safetensors'));
    // A changed learning rate is refused on resume (naming the setting), and accepted when forced.
    const cfg3 = { ...cfg, epochs: 3, optimizer: { ...cfg.optimizer, lr: 5e-4 } };
    assert.throws(
      () => train(cfg3, { outDir: dir, cases, resume: true }),
      /latest\.ckpt\.safetensors: the config differs from the checkpoint's \(optimizer\.lr 0\.001 -> 0\.0005\).*--force/,
    );
    assert.deepEqual(
      train(cfg3, { outDir: dir, cases, resume: true, forceResume: true }).log.map((r) => r.epoch),
      [1, 2, 3],
    );
    const { model, info } = loadModel(join(dir, 'best.safetensors'));
    assert.equal(info.config.arch, 'joint');
    assert.match(String(info.provenance['attribution']), /LIDC-IDRI/);
    model.dispose();
    // A checkpoint of another architecture is refused with a message naming the file.
    const other = resolveTrainConfig({ model: { arch: 'unet', features: [4, 8, 16] } }, 'o');
    assert.throws(
      () => train({ ...other, epochs: 3 }, { outDir: dir, cases, resume: true }),
      /latest\.ckpt\.safetensors: checkpoint does not match/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the type target: trained on the nodule slices, logged, and kept in the model file', { skip: missing ?? false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'noduleseg-train-type-'));
  try {
    const cases = { train: loadCrops({ splits: ['train'], limit: 8 }), val: loadCrops({ splits: ['val'], limit: 2 }) };
    const cfg = resolveTrainConfig(
      {
        name: 'typed',
        model: { arch: 'joint', features: [4, 8, 16], clsFeatures: [2, 4, 8], typeClasses: 3 },
        loss: { type: 0.5 },
        epochs: 1,
        batchSize: 16,
        threads: 1,
      },
      'test',
    );
    const r = train(cfg, { outDir: dir, cases });
    const rec = r.log[0]!;
    assert.ok(rec.trainType !== undefined && rec.trainType > 0 && Number.isFinite(rec.trainType), `trainType ${rec.trainType}`);
    const { model, info } = loadModel(join(dir, 'best.safetensors'));
    assert.equal(info.config.arch === 'joint' && info.config.typeClasses, 3);
    assert.ok(model.namedParameters().some(([name]) => name === 'typeClassifier.weight'));
    model.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

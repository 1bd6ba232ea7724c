// Fine-tuning: which parameters each strategy freezes, that frozen tensors stay byte-identical
// through training (batch-norm statistics included), discriminative rates, the auto pick.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../src/errors.ts';
import { buildModel, readModelInfo } from '../../src/models/index.ts';
import { _BatchNorm } from '../../src/nn/index.ts';
import { setNumThreads } from '../../src/tensor/index.ts';
import {
  DEFAULT_FINETUNE,
  applyStrategy,
  disposeSourceModel,
  finetune,
  formatAutoTable,
  loadCropFolder,
  loadSourceModel,
  parseStrategy,
  pickWinner,
  stageParamGroups,
  type AutoRow,
  type FinetuneSettings,
  type Strategy,
} from '../../src/transfer/index.ts';
import { TINY_BINS, TINY_SLICE, fileTensorBytes, tempDir, tinyConfig, writeTinyData, writeTinySource } from './helpers.ts';

setNumThreads(1);
const dir = tempDir('ft');
after(() => rmSync(dir, { recursive: true, force: true }));
const data = writeTinyData(dir, 6);
const folder = loadCropFolder(data);
const cases = { train: folder.cases.filter((c) => c.split === 'train'), val: folder.cases.filter((c) => c.split === 'val') };
const settings: FinetuneSettings = { ...DEFAULT_FINETUNE, maxSteps: 4, batchSize: 8, lr: 1e-2, threads: 1, seed: 5 };

function run(
  arch: 'joint' | 'resunet',
  strategy: string,
  lrDecay = 1,
  onLrs?: (lrs: number[]) => void,
): { before: Map<string, Buffer>; after: Map<string, Buffer>; file: string; frozen: string[] } {
  const src = writeTinySource(dir, arch);
  const source = loadSourceModel(src);
  try {
    const r = finetune({
      source,
      strategy: parseStrategy(strategy),
      cases,
      data,
      settings: { ...settings, lrDecay },
      outDir: join(dir, `run-${arch}-${strategy}-${lrDecay}`),
      events: { onStep: (_s, _n, info) => onLrs?.(info.lrs) },
    });
    return { before: fileTensorBytes(src), after: fileTensorBytes(r.bestModelPath), file: r.bestModelPath, frozen: r.frozenParameters };
  } finally {
    disposeSourceModel(source);
  }
}

/** Every frozen tensor (parameters and, in frozen batch norms, running statistics) byte-identical; every other parameter and statistic changed. */
function checkFrozen(r: ReturnType<typeof run>, isFrozen: (name: string) => boolean): void {
  assert.deepEqual([...r.after.keys()].sort(), [...r.before.keys()].sort());
  let frozenSeen = 0,
    trainedSeen = 0;
  for (const [name, bytes] of r.after) {
    const before = r.before.get(name)!;
    if (isFrozen(name)) {
      assert.ok(bytes.equals(before), `${name} is frozen and must not change`);
      frozenSeen++;
    } else if (!name.endsWith('num_batches_tracked')) {
      assert.ok(!bytes.equals(before), `${name} trains and must change`);
      trainedSeen++;
    }
  }
  assert.ok(frozenSeen > 0 && trainedSeen > 0, `${frozenSeen} frozen, ${trainedSeen} trained`);
}

test('encoder:2 on the joint model: frozen parameters and BN statistics byte-identical, the rest trained', () => {
  const r = run('joint', 'encoder:2');
  const frozen = (n: string) => /^(segEncoder|clsEncoder|fcbs)\.[01]\./.test(n);
  checkFrozen(r, frozen);
  assert.ok(r.frozen.every(frozen) && r.frozen.length > 0);
  // Running statistics of a frozen BN are among the unchanged tensors, of a trained one among the changed.
  assert.ok(r.before.has('segEncoder.0.norm1.running_mean') && r.before.has('decoder.0.block.norm1.running_var'));
  const info = readModelInfo(r.file);
  const ft = info.provenance['finetune'] as Record<string, unknown>;
  assert.equal(ft['strategy'], 'encoder:2');
  assert.match(String(ft['fromSha256']), /^[0-9a-f]{64}$/);
  assert.equal(ft['data'], data);
  assert.equal(ft['seed'], 5);
  assert.equal(ft['maxSteps'], 4);
  assert.deepEqual(ft['frozenPrefixes'], ['segEncoder.0', 'clsEncoder.0', 'fcbs.0', 'segEncoder.1', 'clsEncoder.1', 'fcbs.1']);
});

test('classifier on the joint model and all-but-head on the residual U-Net keep exactly their parts', () => {
  checkFrozen(run('joint', 'classifier'), (n) => /^(clsEncoder|classifier)\./.test(n) || /^fcbs\.\d\.(toCls|clsNorm)\./.test(n));
  checkFrozen(run('resunet', 'all-but-head'), (n) => !n.startsWith('head.'));
});

test('--lr-decay 0.5: each encoder stage steps at half the rate of the one above it', () => {
  const seen: number[][] = [];
  run('joint', 'none', 0.5, (lrs) => seen.push(lrs));
  assert.equal(seen.length, 4);
  const base = seen[0]![0]!;
  assert.ok(Math.abs(base - settings.lr) < 1e-12, `first step at the base rate, got ${base}`);
  for (const lrs of seen) {
    assert.equal(lrs.length, 4);
    lrs.forEach((lr, i) => {
      assert.ok(Math.abs(lr - lrs[0]! * 0.5 ** i) < 1e-12, `group ${i}: ${lr}`);
    });
  }
  assert.ok(seen[3]![0]! < seen[0]![0]!, 'the schedule decays');
});

const joint = () => buildModel(tinyConfig('joint'), TINY_SLICE, TINY_BINS);
const stage = (i: number) => (n: string) =>
  n.startsWith(`segEncoder.${i}.`) || n.startsWith(`clsEncoder.${i}.`) || n.startsWith(`fcbs.${i}.`);

test('each strategy freezes exactly the parameters it names (joint model)', () => {
  const expected: Array<[string, (n: string) => boolean]> = [
    ['none', () => false],
    ['stem', stage(0)],
    ['encoder:2', (n) => stage(0)(n) || stage(1)(n)],
    ['encoder', (n) => stage(0)(n) || stage(1)(n) || stage(2)(n)],
    ['classifier', (n) => n.startsWith('clsEncoder.') || n.startsWith('classifier.') || /^fcbs\.\d\.(toCls|clsNorm)\./.test(n)],
    ['all-but-head', (n) => !n.startsWith('head.') && !n.startsWith('std.')],
  ];
  const model = joint();
  try {
    const all = model.namedParameters().map(([n]) => n);
    for (const [name, isFrozen] of expected) {
      const applied = applyStrategy(model, parseStrategy(name));
      assert.deepEqual(applied.frozenParameters, all.filter(isFrozen), name);
      assert.deepEqual(
        applied.trainableParameters,
        all.filter((n) => !isFrozen(n)),
        name,
      );
      // Batch norms: frozen (eval mode, stats kept) exactly inside the frozen parts.
      model.train();
      for (const [mn, m] of model.namedModules()) {
        if (!(m instanceof _BatchNorm)) continue;
        const frozen = isFrozen(`${mn}.weight`);
        assert.equal(m.bnFrozen, frozen, `${name}: ${mn}`);
        assert.equal(m.training, !frozen, `${name}: ${mn} training flag`);
      }
    }
    assert.ok(all.some(stage(2)) && all.some((n) => n.startsWith('decoder.')), 'the model has the parts the test expects');
  } finally {
    model.dispose();
  }
});

test('U-Net and residual U-Net: encoder stages and all-but-head; classifier and too many stages are refused', () => {
  for (const arch of ['unet', 'resunet'] as const) {
    const model = buildModel(tinyConfig(arch), TINY_SLICE, TINY_BINS);
    try {
      const all = model.namedParameters().map(([n]) => n);
      assert.deepEqual(
        applyStrategy(model, parseStrategy('encoder:2')).frozenParameters,
        all.filter((n) => /^encoder\.[01]\./.test(n)),
      );
      assert.deepEqual(applyStrategy(model, parseStrategy('all-but-head')).trainableParameters, ['head.weight', 'head.bias']);
      assert.throws(
        () => applyStrategy(model, parseStrategy('classifier')),
        (e: unknown) => e instanceof UserError && /no classification branch/.test(e.message),
      );
      assert.throws(
        () => applyStrategy(model, parseStrategy('encoder:4')),
        (e: unknown) => e instanceof UserError && /has 3 encoder stages/.test(e.message),
      );
    } finally {
      model.dispose();
    }
  }
});

test('strategy names parse, and bad ones name the flag', () => {
  const ok: Array<[string, Strategy]> = [
    ['none', { kind: 'none' }],
    ['encoder', { kind: 'encoder', stages: 'all' }],
    ['encoder:3', { kind: 'encoder', stages: 3 }],
  ];
  for (const [t, s] of ok) assert.deepEqual(parseStrategy(t), s);
  for (const bad of ['encoder:0', 'encoder:x', 'head', '']) assert.throws(() => parseStrategy(bad), /--freeze: /);
});

test('--lr-decay: top at the base rate, encoder stage i of L at decay^(L-i); every parameter in one group', () => {
  const model = joint();
  try {
    const groups = stageParamGroups(model, 0.5);
    assert.deepEqual(
      groups.map((g) => [g.name, g.lrScale]),
      [
        ['top', 1],
        ['stage 2', 0.5],
        ['stage 1', 0.25],
        ['stage 0', 0.125],
      ],
    );
    const names = new Map(model.namedParameters().map(([n, t]) => [t, n]));
    const seen = groups.flatMap((g) => g.params);
    assert.equal(new Set(seen).size, seen.length);
    assert.equal(seen.length, names.size);
    for (const [i, g] of groups.slice(1).entries())
      assert.ok(
        g.params.every((p) => stage(2 - i)(names.get(p)!)),
        g.name,
      );
    assert.ok(groups[0]!.params.every((p) => /^(decoder|head|std|classifier)\./.test(names.get(p)!)));
    assert.equal(stageParamGroups(model, 1).length, 1);
    assert.throws(() => stageParamGroups(model, 0), /--lr-decay/);
    assert.throws(() => stageParamGroups(model, 1.5), /--lr-decay/);
  } finally {
    model.dispose();
  }
});

test('auto: the winner is read from the printed means (ties to the earlier row), and the table shows them', () => {
  const row = (strategy: string, foldDice: number[]): AutoRow => {
    const mean = foldDice.reduce((a, b) => a + b, 0) / foldDice.length;
    const sd = Math.sqrt(foldDice.reduce((a, b) => a + (b - mean) ** 2, 0) / (foldDice.length - 1));
    return { strategy, foldDice, mean, sd, printedMean: mean.toFixed(4), printedSd: sd.toFixed(4) };
  };
  assert.equal(pickWinner([row('none', [0.5, 0.6]), row('stem', [0.7, 0.7]), row('encoder', [0.6, 0.65])]), 'stem');
  // 0.61236 and 0.61244 both print as 0.6124: the reader sees a tie, so the first listed wins.
  const tie = [row('none', [0.61236, 0.61236]), row('encoder', [0.61244, 0.61244])];
  assert.equal(tie[0]!.printedMean, tie[1]!.printedMean);
  assert.equal(pickWinner(tie), 'none');
  const table = formatAutoTable([row('none', [0.5, 0.6]), row('stem', [0.7, 0.7])], 2);
  assert.match(table, /^none\s+0\.5000\s+0\.6000\s+0\.5500 ± 0\.0707$/m);
  assert.match(table, /^stem\s+0\.7000\s+0\.7000\s+0\.7000 ± 0\.0000$/m);
});

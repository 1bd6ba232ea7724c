import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildModel } from '../../src/models/index.ts';
import { UserError } from '../../src/errors.ts';
import { _BatchNorm } from '../../src/nn/index.ts';
import { applyStrategy, formatAutoTable, parseStrategy, pickWinner, stageParamGroups, type AutoRow, type Strategy } from '../../src/transfer/index.ts';
import { TINY_BINS, TINY_SLICE, tinyConfig } from './helpers.ts';

const joint = () => buildModel(tinyConfig('joint'), TINY_SLICE, TINY_BINS);
const stage = (i: number) => (n: string) => n.startsWith(`segEncoder.${i}.`) || n.startsWith(`clsEncoder.${i}.`) || n.startsWith(`fcbs.${i}.`);

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
      assert.deepEqual(applied.trainableParameters, all.filter((n) => !isFrozen(n)), name);
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
      assert.deepEqual(applyStrategy(model, parseStrategy('encoder:2')).frozenParameters, all.filter((n) => /^encoder\.[01]\./.test(n)));
      assert.deepEqual(applyStrategy(model, parseStrategy('all-but-head')).trainableParameters, ['head.weight', 'head.bias']);
      assert.throws(() => applyStrategy(model, parseStrategy('classifier')), (e: unknown) => e instanceof UserError && /no classification branch/.test(e.message));
      assert.throws(() => applyStrategy(model, parseStrategy('encoder:4')), (e: unknown) => e instanceof UserError && /has 3 encoder stages/.test(e.message));
    } finally {
      model.dispose();
    }
  }
});

test('strategy names parse, and bad ones name the flag', () => {
  const ok: Array<[string, Strategy]> = [['none', { kind: 'none' }], ['encoder', { kind: 'encoder', stages: 'all' }], ['encoder:3', { kind: 'encoder', stages: 3 }]];
  for (const [t, s] of ok) assert.deepEqual(parseStrategy(t), s);
  for (const bad of ['encoder:0', 'encoder:x', 'head', '']) assert.throws(() => parseStrategy(bad), /--freeze: /);
});

test('--lr-decay: top at the base rate, encoder stage i of L at decay^(L-i); every parameter in one group', () => {
  const model = joint();
  try {
    const groups = stageParamGroups(model, 0.5);
    assert.deepEqual(groups.map((g) => [g.name, g.lrScale]), [['top', 1], ['stage 2', 0.5], ['stage 1', 0.25], ['stage 0', 0.125]]);
    const names = new Map(model.namedParameters().map(([n, t]) => [t, n]));
    const seen = groups.flatMap((g) => g.params);
    assert.equal(new Set(seen).size, seen.length);
    assert.equal(seen.length, names.size);
    for (const [i, g] of groups.slice(1).entries()) assert.ok(g.params.every((p) => stage(2 - i)(names.get(p)!)), g.name);
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

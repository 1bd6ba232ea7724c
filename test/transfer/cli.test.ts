// The finetune and synth commands in a child process: --freeze auto's choice against the table it
// prints, and one-line errors (exit 1, no output file) for bad arguments.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readModelInfo } from '../../src/models/index.ts';
import { runCliBatch } from '../io/helpers.ts';
import { tempDir, writePretrainedSource, writeTinyData, writeTinySource } from './helpers.ts';

const dir = tempDir('ftcli');
after(() => rmSync(dir, { recursive: true, force: true }));
const data = writeTinyData(dir, 6);
const joint = writeTinySource(dir, 'joint');
const unet = writeTinySource(dir, 'unet');
const pretrained = writePretrainedSource(dir);
const out = (name: string) => join(dir, `${name}.safetensors`);
const common = ['--threads', '1', '--batch-size', '8', '--lr', '0.01'];
// A folder without image/ and mask/, beside (not around) the outputs, which may not lie inside an input folder.
const notCrops = join(dir, 'not-crops');
mkdirSync(notCrops, { recursive: true });

const bad: Array<[string, string[], RegExp]> = [
  ['strategy', ['finetune', '--from', joint, '--data', data, '--freeze', 'bogus', '-o', out('b1')], /--freeze: unknown strategy "bogus"/],
  [
    'stages',
    ['finetune', '--from', joint, '--data', data, '--freeze', 'encoder:9', '-o', out('b2')],
    /encoder:9: this joint model has 3 encoder stages/,
  ],
  [
    'classifier-unet',
    ['finetune', '--from', unet, '--data', data, '--freeze', 'classifier', '-o', out('b3')],
    /a unet model has no classification branch/,
  ],
  [
    'decay0',
    ['finetune', '--from', joint, '--data', data, '--freeze', 'none', '--lr-decay', '0', '-o', out('b4')],
    /--lr-decay: expected a number in \(0, 1\]/,
  ],
  [
    'decay2',
    ['finetune', '--from', joint, '--data', data, '--freeze', 'none', '--lr-decay', '2', '-o', out('b5')],
    /--lr-decay: expected a number/,
  ],
  [
    'no-data',
    ['finetune', '--from', joint, '--data', join(dir, 'nope'), '--freeze', 'none', '-o', out('b6')],
    /nope: data folder not found/,
  ],
  [
    'not-crops',
    ['finetune', '--from', joint, '--data', notCrops, '--freeze', 'none', '-o', out('b7')],
    /expected image\/ and mask\/ folders/,
  ],
  [
    'output-ext',
    ['finetune', '--from', joint, '--data', data, '--freeze', 'none', '-o', join(dir, 'b8.pt')],
    /b8\.pt: the output must end in \.safetensors/,
  ],
  [
    'folds-without-auto',
    ['finetune', '--from', joint, '--data', data, '--freeze', 'none', '--folds', '3', '-o', out('b9')],
    /--folds and --candidates go with --freeze auto/,
  ],
  [
    'no-weights',
    ['finetune', '--from', join(dir, 'missing.safetensors'), '--data', data, '--freeze', 'none', '-o', out('b10')],
    /missing\.safetensors: model file not found/,
  ],
  [
    'folds1',
    ['finetune', '--from', joint, '--data', data, '--freeze', 'auto', '--folds', '1', '-o', out('b11')],
    /--folds: expected an integer >= 2/,
  ],
  [
    'folds-too-many',
    ['finetune', '--from', joint, '--data', data, '--freeze', 'auto', '--folds', '9', '-o', out('b12')],
    /--folds 9: the data has only 6 patient/,
  ],
  [
    'candidate-unet',
    ['finetune', '--from', unet, '--data', data, '--freeze', 'auto', '--candidates', 'none,classifier', '-o', out('b13')],
    /no classification branch/,
  ],
  [
    'val-fraction-auto',
    ['finetune', '--from', joint, '--data', data, '--freeze', 'auto', '--val-fraction', '0.3', '-o', out('b15')],
    /--val-fraction does not apply to --freeze auto/,
  ],
  [
    'val-fraction-splits',
    ['finetune', '--from', joint, '--data', data, '--freeze', 'none', '--val-fraction', '0.3', '-o', out('b16')],
    /has a splits\.csv/,
  ],
  [
    'steps0',
    ['finetune', '--from', joint, '--data', data, '--freeze', 'none', '--steps', '0', '-o', out('b14')],
    /--steps: expected a positive integer/,
  ],
  ['synth-count', ['synth', '-o', join(dir, 'syn-bad'), '--count', '0'], /--count: expected an integer >= 1/],
  ['synth-nonempty', ['synth', '-o', data, '--count', '2'], /exists and is not empty/],
];

const results = runCliBatch([
  [
    'finetune',
    '--from',
    pretrained,
    '--data',
    data,
    '--freeze',
    'auto',
    '--folds',
    '2',
    '--candidates',
    'none,all-but-head,encoder',
    '--steps',
    '6',
    ...common,
    '-o',
    out('auto'),
  ],
  ['finetune', '--from', unet, '--data', data, '--freeze', 'encoder:2', '--steps', '3', ...common, '-o', out('unet-ft')],
  ['synth', '-o', join(dir, 'syn'), '--count', '1', '--seed', '4'],
  ...bad.map(([, args]) => args),
]);

test('--freeze auto prints the table and picks the strategy with the best printed mean', () => {
  const r = results[0]!;
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  const rows = lines
    .filter((l) => /^(none|all-but-head|encoder)\s/.test(l))
    .map((l) => {
      const m = /^(\S+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+) ± ([\d.]+)$/.exec(l);
      assert.ok(m, `table row: ${l}`);
      return { strategy: m[1]!, folds: [Number(m[2]), Number(m[3])], mean: Number(m[4]) };
    });
  assert.deepEqual(
    rows.map((x) => x.strategy),
    ['none', 'all-but-head', 'encoder'],
  );
  for (const row of rows)
    assert.ok(Math.abs((row.folds[0]! + row.folds[1]!) / 2 - row.mean) < 1e-4 + 1e-9, `${row.strategy}: the mean is the folds' mean`);
  let best = rows[0]!;
  for (const row of rows) if (row.mean > best.mean) best = row;
  const said = /^best: (\S+) /m.exec(r.stdout);
  assert.equal(said?.[1], best.strategy, r.stdout);
  const info = readModelInfo(out('auto'));
  const ft = info.provenance['finetune'] as {
    strategy: string;
    trainCases: string[];
    valCases: string[];
    auto: { winner: string; table: Array<{ strategy: string; mean: string }> };
  };
  assert.equal(ft.strategy, best.strategy);
  assert.equal(ft.auto.winner, best.strategy);
  assert.deepEqual(
    ft.auto.table.map((t) => [t.strategy, Number(t.mean)]),
    rows.map((x) => [x.strategy, x.mean]),
  );
  assert.equal(ft.trainCases.length, 6, 'the winner is trained on all the data');
  assert.ok(new Set(rows.map((x) => x.mean)).size > 1, `the strategies should differ: ${r.stdout}`);
  assert.deepEqual(ft.valCases, []);
});

test('finetune works for a U-Net source too', () => {
  const r = results[1]!;
  assert.equal(r.code, 0, r.stderr);
  const info = readModelInfo(out('unet-ft'));
  assert.equal(info.config.arch, 'unet');
  assert.equal((info.provenance['finetune'] as { strategy: string }).strategy, 'encoder:2');
});

test('synth writes the lidc-crops layout', () => {
  assert.equal(results[2]!.code, 0, results[2]!.stderr);
  for (const f of ['image/SYN-0001.nii.gz', 'mask/SYN-0001.nii.gz', 'metadata.csv', 'splits.csv'])
    assert.ok(existsSync(join(dir, 'syn', f)), f);
});

test('bad arguments: one line naming the problem, exit 1, no output', () => {
  bad.forEach(([name, args, re], i) => {
    const r = results[i + 3]!;
    assert.equal(r.code, 1, `${name}: ${r.stderr}`);
    assert.match(r.stderr, /^noduleseg: [^\n]+\n$/, `${name}: ${r.stderr}`);
    assert.match(r.stderr, re, name);
    const o = args[args.indexOf(args.includes('-o') ? '-o' : '--output') + 1]!;
    if (args[0] === 'finetune') assert.ok(!existsSync(o), `${name}: no output file`);
  });
  assert.ok(!existsSync(join(dir, 'syn-bad')));
});

/**
 * `segment` with the report options: the arguments checked before anything runs (one line, exit 1,
 * no output), and a DICOM series segmented by a small model carrying heads, giving the JSON
 * fields, the SEG, the SR (checked by dciodvfy where installed) and the HTML page.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_SLICE_CONFIG, NODULE_TYPES, type SizeBins } from '../../src/data/index.ts';
import { buildModel, saveModel, defaultJointConfig } from '../../src/models/index.ts';
import { manualSeed } from '../../src/tensor/index.ts';
import { readSafetensors, writeSafetensors } from '../../src/nn/safetensors.ts';
import { serialiseHeads, HEADS_KEY, HEADS_FORMAT, type NoduleHeads, type Head } from '../../src/classify/heads.ts';
import { networkFeatureCount } from '../../src/classify/features.ts';
import { HU_FEATURE_NAMES } from '../../src/classify/pooling.ts';
import type { JointNet } from '../../src/models/joint.ts';
import { SOLID_COMPONENT_HU } from '../../src/guidelines/index.ts';
import { SOLID_HU_HELP } from '../../src/cli/segment.ts';
import { runCliBatch, tempDir, writeFakeSeries } from '../io/helpers.ts';

const BINS: SizeBins = {
  format: 'noduleseg.size-bins',
  version: 1,
  edgesMm2: [27.6, 82.1],
  classes: ['none', 'small', 'medium', 'large'],
  nonzeroSlices: 3,
  source: 'test',
};
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

/** A tiny joint network with (untrained, seeded) heads in its metadata, as the training script writes them. */
function tinyModelWithHeads(dir: string): string {
  manualSeed(1);
  const model = buildModel(defaultJointConfig({ features: [4, 8, 16], clsFeatures: [2, 4, 8] }), DEFAULT_SLICE_CONFIG, BINS);
  const plain = join(dir, 'plain.safetensors');
  saveModel(plain, model, { slice: DEFAULT_SLICE_CONFIG, sizeBins: BINS, threshold: 0.5, provenance: {} });
  const d = networkFeatureCount(model as JointNet) + HU_FEATURE_NAMES.length;
  model.dispose();
  let seed = 7;
  const rnd = () => {
    seed = (seed * 16807) % 2147483647;
    return (seed / 2147483647 - 0.5) * 0.2;
  };
  const head = (out: number, classes: string[]): Head => ({
    classes,
    layers: [{ inFeatures: d, outFeatures: out, weight: Float32Array.from({ length: d * out }, rnd), bias: new Float32Array(out) }],
  });
  const heads: NoduleHeads = {
    format: HEADS_FORMAT,
    version: 1,
    features: { network: d - HU_FEATURE_NAMES.length, hu: [...HU_FEATURE_NAMES] },
    mean: new Float32Array(d),
    std: new Float32Array(d).fill(100),
    heads: {
      type: head(3, [...NODULE_TYPES]),
      calcified: head(1, ['no', 'yes']),
      malignancy: head(1, ['<=3', '>=4']),
      spiculation: head(1, ['<=2', '>=3']),
    },
    provenance: { note: 'test heads, untrained' },
  };
  const src = readSafetensors(plain);
  const file = join(dir, 'tiny-heads.safetensors');
  writeSafetensors(file, src.tensors, { ...src.metadata, [HEADS_KEY]: serialiseHeads(heads) });
  return file;
}

test('segment: the report options are checked before the model runs; nothing is written', () => {
  const dir = tempDir('report-args');
  const ct = join(dir, 'ct');
  writeFakeSeries(
    ct,
    [0, 2, 4].map((z) => ({ z, rows: 16, cols: 16 })),
  );
  const out = join(dir, 'out');
  const cases: Array<[string[], RegExp]> = [
    [['segment', '-i', ct, '--voxel', '8,8,1', '--risk', 'medium'], /--risk: expected low or high, got "medium"/],
    [['segment', '-i', ct, '--voxel', '8,8,1', '--age', 'old'], /--age: expected an age in years/],
    [['segment', '-i', ct, '--voxel', '8,8,1', '--setting', 'clinic'], /--setting: expected incidental or screening/],
    [['segment', '-i', ct, '--voxel', '8,8,1', '--solid-hu', 'soft'], /--solid-hu: expected a number of HU/],
    [
      ['segment', '-i', ct, '--voxel', '8,8,1', '--sr', join(out, 'sr.txt'), '-o', join(out, 'seg.dcm')],
      /sr\.txt: the SR file must end in \.dcm/,
    ],
    [
      ['segment', '-i', ct, '--voxel', '8,8,1', '--sr', join(out, 'sr.dcm'), '-o', join(out, 'mask.nii.gz')],
      /sr\.dcm: the SR references the DICOM SEG; give -o <file\.dcm> too/,
    ],
    [['segment', '-i', ct, '--voxel', '8,8,1', '--html', join(out, 'r.pdf')], /r\.pdf: the HTML report must end in \.html/],
  ];
  const results = runCliBatch(cases.map(([a]) => a));
  results.forEach((r, i) => {
    assert.equal(r.code, 1, `${cases[i]![0].join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.trim(), cases[i]![1]);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });
  assert.ok(!existsSync(out), 'nothing written');
  assert.equal(SOLID_HU_HELP, SOLID_COMPONENT_HU, 'the help text quotes the default threshold');
});

test('segment: a DICOM series with a model carrying heads -> JSON with type and categories, SEG, SR, HTML', () => {
  const dir = tempDir('report-cli');
  const model = tinyModelWithHeads(dir);
  const ct = join(dir, 'ct');
  writeFakeSeries(
    ct,
    [0, 2, 4, 6, 8].map((z) => ({ z, rows: 40, cols: 40 })),
  );
  const out = join(dir, 'out');
  mkdirSync(out);
  const args = [
    'segment',
    '-i',
    ct,
    '-m',
    model,
    '--voxel',
    '20,20,2',
    '--threshold',
    '0.01',
    '--threads',
    '1',
    '-o',
    join(out, 'seg.dcm'),
    '--sr',
    join(out, 'sr.dcm'),
    '--html',
    join(out, 'report.html'),
    '--risk',
    'high',
    '--age',
    '61',
  ];
  const out2 = join(dir, 'out2');
  const [r, r2] = runCliBatch([
    args,
    [
      'segment',
      '-i',
      ct,
      '-m',
      model,
      '--voxel',
      '20,20,2',
      '--threshold',
      '0.01',
      '--threads',
      '1',
      '-o',
      join(out2, 'mask.nii.gz'),
      '--solid-hu',
      '-2000',
    ],
  ]);
  assert.equal(r!.code, 0, r!.stderr);
  assert.equal(r2!.code, 1, 'an HU below -1024 is refused');
  assert.match(r2!.stderr, /--solid-hu: expected a number of HU/);
  assert.ok(!existsSync(out2));
  assert.deepEqual(readdirSync(out).sort(), ['report.html', 'seg.dcm', 'seg.json', 'sr.dcm']);
  const report = JSON.parse(readFileSync(join(out, 'seg.json'), 'utf8')) as {
    patient: Record<string, unknown>;
    nodules: Array<Record<string, unknown>>;
  };
  assert.deepEqual(report.patient, { risk: 'high', ageYears: 61, setting: 'incidental', knownCancer: false, immunosuppressed: false });
  const n = report.nodules[0]!;
  assert.ok((n['measures'] as { voxelCount: number }).voxelCount > 0);
  assert.ok(NODULE_TYPES.includes(n['type'] as (typeof NODULE_TYPES)[number]));
  const p = n['typeProbabilities'] as number[];
  assert.equal(p.length, 3);
  assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-3);
  assert.equal(p.indexOf(Math.max(...p)), NODULE_TYPES.indexOf(n['type'] as (typeof NODULE_TYPES)[number]));
  for (const k of ['calcified', 'malignancySuspicion']) assert.ok((n[k] as number) >= 0 && (n[k] as number) <= 1, k);
  const lungRads = n['lungRads'] as { version: string; category: string; reason: string };
  assert.equal(lungRads.version, 'Lung-RADS v2022 (baseline)');
  assert.match(lungRads.category, /^(1|2|3|4A|4B)$/);
  assert.equal((n['fleischner'] as { version: string }).version, 'Fleischner Society 2017');
  assert.equal((n['guidelineMeasures'] as { solidThresholdHU: number }).solidThresholdHU, SOLID_COMPONENT_HU);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, new RegExp(`Category ${lungRads.category}`));
  assert.match(html, /data:image\/png;base64,/);
  // --solid-hu reaches the measurement: at -1024 HU every voxel of the nodule is solid.
  const [r3] = runCliBatch([
    [
      'segment',
      '-i',
      ct,
      '-m',
      model,
      '--voxel',
      '20,20,2',
      '--threshold',
      '0.01',
      '--threads',
      '1',
      '--report',
      join(dir, 'all-solid.json'),
      '--solid-hu',
      '-1024',
    ],
  ]);
  assert.equal(r3!.code, 0, r3!.stderr);
  const g = (
    JSON.parse(readFileSync(join(dir, 'all-solid.json'), 'utf8')) as {
      nodules: Array<{ guidelineMeasures: { solidThresholdHU: number; voxelCount: number; solidComponent: { voxelCount: number } } }>;
    }
  ).nodules[0]!.guidelineMeasures;
  assert.equal(g.solidThresholdHU, -1024);
  assert.ok(g.voxelCount > 0);
  assert.equal(g.solidComponent.voxelCount, g.voxelCount);
  const sr = readFileSync(join(out, 'sr.dcm'));
  assert.equal(sr.subarray(128, 132).toString('latin1'), 'DICM');
  if (has('dciodvfy')) {
    const v = spawnSync('dciodvfy', [join(out, 'sr.dcm')], { encoding: 'utf8' });
    assert.deepEqual(
      `${v.stdout}${v.stderr}`.split('\n').filter((l) => /^Error/.test(l)),
      [],
    );
  }
});

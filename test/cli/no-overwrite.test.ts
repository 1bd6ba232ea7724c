// Issue 13, "no data lost": an output that is, or lies inside, an input is refused before any work
// (one line, exit 1, nothing written), and so are non-finite voxels. Small synthetic files only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Volume, writeNifti } from '../../src/io/index.ts';
import { DEFAULT_MODEL } from '../../src/cli/segment.ts';
import { runCliBatch, tempDir } from '../io/helpers.ts';

/** A small CT-like crop (int16) written as NIfTI. */
function writeCrop(path: string): void {
  const data = new Int16Array(8 * 8 * 4).map((_, i) => (i % 7 === 0 ? 40 : -850));
  writeNifti(path, new Volume({ data, dims: [8, 8, 4], spacingMm: [0.7, 0.7, 1.25], originMm: [0, 0, 0], modality: 'CT' }));
}

/** A float MetaImage (header + detached raw) whose voxels are `values`. */
function writeFloatMhd(dir: string, stem: string, values: number[]): string {
  const raw = Buffer.from(new Float32Array(values).buffer);
  writeFileSync(join(dir, `${stem}.raw`), raw);
  const head = [
    'ObjectType = Image',
    'NDims = 3',
    `DimSize = ${values.length / 4} 2 2`,
    'ElementSpacing = 1 1 1',
    'ElementType = MET_FLOAT',
    'ElementByteOrderMSB = False',
    `ElementDataFile = ${stem}.raw`,
  ];
  writeFileSync(join(dir, `${stem}.mhd`), head.join('\n') + '\n');
  return join(dir, `${stem}.mhd`);
}

/** Every file under `dir` with its bytes, to show that a refused command changed nothing. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(p, readFileSync(p).toString('base64'));
      else out.set(p, 'link');
    }
  };
  walk(dir);
  return out;
}

test('outputs over inputs are refused before any work, in every command that writes', () => {
  const dir = tempDir('no-overwrite');
  try {
    const crops = join(dir, 'crops');
    mkdirSync(crops);
    writeCrop(join(crops, 'a.nii.gz'));
    const scan = join(dir, 'scan.nii.gz');
    writeCrop(scan);
    // The model is never loaded when the paths are refused: any existing file does.
    const model = join(dir, 'model.safetensors');
    writeFileSync(model, 'not loaded');
    symlinkSync(scan, join(dir, 'scan-link.nii.gz'));
    symlinkSync(crops, join(dir, 'crops-link'));
    mkdirSync(join(dir, 'sub'));
    const mhd = writeFloatMhd(dir, 'ct', [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    linkSync(scan, join(dir, 'scan-hardlink.nii.gz'));
    const pred = join(dir, 'pred');
    const ref = join(dir, 'ref');
    mkdirSync(pred);
    mkdirSync(ref);
    const dicom = join(dir, 'dicom');
    mkdirSync(dicom);
    const run = join(dir, 'run');
    mkdirSync(run);
    copyFileSync('configs/joint-2d.json', join(run, 'config.json'));
    writeFileSync(join(dir, 'a-file'), 'not a folder');

    const seg = ['segment', '-m', model];
    const cases: Array<[string[], RegExp]> = [
      // segment: a folder of crops into itself, into a folder inside it, through a symlink
      [[...seg, '-i', crops, '-o', crops], /crops: is the input itself/],
      [[...seg, '-i', `${crops}/`, '-o', join(crops, 'masks')], /crops\/masks: lies inside the input folder/],
      [[...seg, '-i', crops, '-o', join(dir, 'crops-link')], /crops-link: is the input/],
      [[...seg, '-i', crops, '-o', join(dir, 'masks'), '--png', crops], /crops: is the input/],
      [
        [...seg, '-i', crops, '-o', join(dir, 'masks'), '--report', join(crops, 'a.nii.gz')],
        /a\.nii\.gz: is the input|lies inside the input folder/,
      ],
      // segment: one file onto itself, by a symlink, a hard link, another spelling, the report
      [[...seg, '-i', scan, '-o', scan], /scan\.nii\.gz: is the input/],
      [[...seg, '-i', scan, '-o', join(dir, 'scan-link.nii.gz')], /scan-link\.nii\.gz: is the input/],
      [[...seg, '-i', scan, '-o', join(dir, 'scan-hardlink.nii.gz')], /scan-hardlink\.nii\.gz: is the input/],
      [[...seg, '-i', join(dir, 'sub', '..', '.', 'scan.nii.gz'), '-o', join(dir, 'scan.nii.gz')], /scan\.nii\.gz: is the input/],
      [[...seg, '-i', join(dir, 'crops-link', 'a.nii.gz'), '-o', join(crops, 'a.nii.gz')], /a\.nii\.gz: is the input/],
      [[...seg, '-i', scan, '-o', join(dir, 'mask.nii.gz'), '--report', model], /model\.safetensors: is the input/],
      [[...seg, '-i', scan, '-o', join(dir, 'scan.nii')], /this case passes the guard/],
      // segment: a MetaImage's detached data file is an input too
      [[...seg, '-i', mhd, '-o', join(dir, 'mask.nii.gz'), '--report', join(dir, 'ct.raw')], /ct\.raw: is the input/],
      // segment: a DICOM folder with a prompt: no output inside it
      [[...seg, '-i', dicom, '--point', '0,0,0', '-o', join(dicom, 'nodule.nii.gz')], /nodule\.nii\.gz: lies inside the input folder/],
      // eval
      [['eval', '--pred', pred, '--ref', ref, '--csv', join(pred, 'metrics.csv')], /metrics\.csv: lies inside the input folder/],
      [['eval', '--pred', pred, '--ref', ref, '--md', ref], /ref: is the input/],
      // lidc
      [['lidc', dicom, '--output', join(dicom, 'consensus.nii.gz')], /consensus\.nii\.gz: lies inside the input folder/],
      [['lidc', dicom, '--png', join(dicom, 'x.png')], /x\.png: lies inside the input folder/],
      // finetune
      [['finetune', '--from', model, '--data', crops, '--freeze', 'none', '-o', model], /model\.safetensors: is the input/],
      [
        ['finetune', '--from', model, '--data', crops, '--freeze', 'none', '-o', join(crops, 'mine.safetensors')],
        /mine\.safetensors: lies inside the input folder/,
      ],
      [
        ['finetune', '--from', model, '--data', crops, '--freeze', 'none', '-o', join(dir, 'mine.safetensors'), '--work-dir', crops],
        /crops: is the input/,
      ],
      // train: its --out may not take its own config's place
      [['train', '--config', join(run, 'config.json'), '--out', run], /config\.json: is the input/],
      // synth: a file is not a folder for the set
      [['synth', '--output', join(dir, 'a-file'), '--count', '1'], /a-file: is a file, expected a new or empty folder/],
    ];
    const before = snapshot(dir);
    const results = runCliBatch(cases.map(([a]) => a));
    for (const [k, [args, re]] of cases.entries()) {
      const r = results[k]!;
      if (re.source.includes('passes the guard')) {
        // A different output beside the input is allowed: it gets as far as loading the (fake) model.
        assert.match(r.stderr, /model\.safetensors: not a readable model file/, r.stderr);
        continue;
      }
      assert.equal(r.code, 1, `${args.join(' ')} -> ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
      assert.match(r.stderr, /^noduleseg: /);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    }
    assert.deepEqual(snapshot(dir), before, 'a refused command writes and changes nothing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('non-finite voxels (NaN or infinity in a float NIfTI or MetaImage) are refused with one line naming the file', () => {
  const dir = tempDir('non-finite');
  try {
    const nan = join(dir, 'nan.nii.gz');
    writeNifti(
      nan,
      new Volume({ data: new Float32Array(4 * 4 * 2).fill(Number.NaN), dims: [4, 4, 2], spacingMm: [1, 1, 1], originMm: [0, 0, 0] }),
    );
    const inf = writeFloatMhd(dir, 'inf', [
      0,
      1,
      2,
      3,
      Number.POSITIVE_INFINITY,
      5,
      6,
      7,
      8,
      9,
      10,
      11,
      12,
      13,
      14,
      Number.NEGATIVE_INFINITY,
    ]);
    const fine = writeFloatMhd(dir, 'fine', [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    const out = join(dir, 'out');
    const cases: Array<[string[], RegExp]> = [
      [['inspect', nan], /nan\.nii\.gz: 32 of 32 voxels are not finite/],
      [['inspect', inf], /inf\.mhd: 2 of 16 voxels are not finite \(NaN or infinity; the first is voxel 4\)/],
      [['segment', '-i', nan, '-o', join(out, 'mask.nii.gz'), '-m', DEFAULT_MODEL], /nan\.nii\.gz: 32 of 32 voxels are not finite/],
    ];
    const results = runCliBatch([...cases.map(([a]) => a), ['inspect', fine]]);
    for (const [k, [args, re]] of cases.entries()) {
      const r = results[k]!;
      assert.equal(r.code, 1, `${args.join(' ')} -> ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    }
    assert.ok(!existsSync(out), 'no output for a refused input');
    assert.equal(results[cases.length]!.code, 0, results[cases.length]!.stderr);
    assert.match(results[cases.length]!.stdout, /range: +0 \.\. 15/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writes as a set: a failure on a later output leaves no earlier one behind, nor the folders made for them', async () => {
  const { writeFilesAtomicSet } = await import('../../src/io/atomic.ts');
  const dir = tempDir('set');
  try {
    writeFileSync(join(dir, 'blocker'), 'a file where a folder would go');
    assert.throws(
      () =>
        writeFilesAtomicSet([
          [join(dir, 'new', 'deep', 'a.txt'), 'a'],
          [join(dir, 'b.txt'), 'b'],
          [join(dir, 'blocker', 'c.txt'), 'c'],
        ]),
      /blocker\/c\.txt: cannot create its folder \(a file is in the way\)/,
    );
    assert.deepEqual(readdirSync(dir), ['blocker']);
    // segment: the mask is written only if the report can be too (the report's folder is blocked here).
    const crop = join(dir, 'crop.nii.gz');
    writeCrop(crop);
    const [r] = runCliBatch([
      [
        'segment',
        '-i',
        crop,
        '-o',
        join(dir, 'out', 'mask.nii.gz'),
        '--png',
        join(dir, 'pngs'),
        '--report',
        join(dir, 'blocker', 'r.json'),
        '--threads',
        '1',
      ],
    ]);
    assert.ok(r);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr.trim(), /^noduleseg: .*blocker\/r\.json: cannot create its folder \(a file is in the way\)$/);
    assert.deepEqual(readdirSync(dir).sort(), ['blocker', 'crop.nii.gz']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { lidcCropsDir, missingDataReason, DEFAULT_SLICE_CONFIG, type SizeBins } from '../../src/data/index.ts';
import { readVolume, Volume } from '../../src/io/index.ts';
import { writeItkImage } from '../../src/io/itk.ts';
import { buildModel, saveModel, defaultJointConfig } from '../../src/models/index.ts';
import { segmentationMetrics } from '../../src/metrics/index.ts';
import { manualSeed } from '../../src/tensor/index.ts';
import { DEFAULT_MODEL, MAX_CROP_THREADS, cropThreadCount } from '../../src/cli/segment.ts';
import { runCliBatch } from '../io/helpers.ts';
import { fillHolesInPlane } from '../../src/inference/components.ts';

const missing = missingDataReason(lidcCropsDir());
const BINS: SizeBins = {
  format: 'noduleseg.size-bins',
  version: 1,
  edgesMm2: [27.6, 82.1],
  classes: ['none', 'small', 'medium', 'large'],
  nonzeroSlices: 3,
  source: 'test',
};

function tinyModel(dir: string): string {
  manualSeed(1);
  const model = buildModel(defaultJointConfig({ features: [4, 8, 16], clsFeatures: [2, 4, 8] }), DEFAULT_SLICE_CONFIG, BINS);
  const file = join(dir, 'tiny.safetensors');
  saveModel(file, model, { slice: DEFAULT_SLICE_CONFIG, sizeBins: BINS, threshold: 0.5, provenance: {} });
  model.dispose();
  return file;
}

test('a folder of crops is segmented in one crop thread per core, up to the cap; --workers or --threads decide', () => {
  assert.equal(cropThreadCount({}, 200, 2), 2);
  assert.equal(cropThreadCount({}, 200, 16), MAX_CROP_THREADS);
  assert.equal(cropThreadCount({}, 1, 2), 1, 'never more threads than crops');
  assert.equal(cropThreadCount({}, 200, 1), 1);
  assert.equal(cropThreadCount({ threads: 2 }, 200, 2), 1, '--threads: one crop at a time, on that many threads');
  assert.equal(cropThreadCount({ workers: 3 }, 200, 2), 3);
  assert.equal(cropThreadCount({ workers: 0 }, 200, 2), 2, '--workers 0 is automatic');
});

test('segment: bad arguments and files end with one line, exit 1 and no output', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'noduleseg-seg-'));
  try {
    const model = tinyModel(dir);
    const image = join(dir, 'img.nii.gz');
    // A small synthetic CT: a 6 mm-radius sphere of soft tissue in air.
    const data = new Int16Array(40 * 40 * 12).map((_, i) => {
      const x = i % 40,
        y = Math.floor(i / 40) % 40,
        z = Math.floor(i / 1600);
      return ((x - 20) * 0.7) ** 2 + ((y - 20) * 0.7) ** 2 + ((z - 6) * 1.25) ** 2 < 36 ? 40 : -850;
    });
    const { writeNifti } = await import('../../src/io/index.ts');
    writeNifti(image, new Volume({ data, dims: [40, 40, 12], spacingMm: [0.7, 0.7, 1.25], originMm: [0, 0, 0], modality: 'CT' }));
    writeFileSync(join(dir, 'bad.safetensors'), 'not a model');
    const folder = join(dir, 'crops');
    mkdirSync(folder);
    writeFileSync(join(folder, 'a-good.nii.gz'), readFileSync(image));
    writeFileSync(join(folder, 'b-bad.nii.gz'), 'not gzip at all');
    const twins = join(dir, 'twins');
    mkdirSync(twins);
    writeFileSync(join(twins, 'a-good.nii.gz'), readFileSync(image));
    writeFileSync(join(twins, 'a-good.nii'), 'same stem');
    const keptOut = join(dir, 'kept-out');
    mkdirSync(keptOut);
    writeFileSync(join(keptOut, 'earlier.txt'), 'a file the user had');
    const cases: Array<[string[], RegExp]> = [
      [['segment', '-i', join(dir, 'nope.nii.gz'), '-m', model], /nope\.nii\.gz: no such file or folder/],
      [['segment', '-i', image, '-m', join(dir, 'missing.safetensors')], /missing\.safetensors: model file not found/],
      [['segment', '-i', image, '-m', join(dir, 'bad.safetensors')], /bad\.safetensors: not a readable model file/],
      [['segment', '-i', image, '-m', model, '--threshold', '2'], /--threshold: expected a probability/],
      [['segment', '-i', image, '-m', model, '--voxel', '1,2'], /--voxel: expected three numbers/],
      [['segment', '-i', image, '-m', model, '--voxel', '1,2,300'], /lies outside the image/],
      [['segment', '-i', image, '-m', model, '-o', join(dir, 'out.png')], /must end in \.nii\.gz, \.nii or \.dcm/],
      [['segment', '-i', image, '-m', model, '-o', join(dir, 'out.dcm')], /DICOM SEG output needs a DICOM series input/],
      [
        ['segment', '-i', image, '-m', model, '--point', '1,2,3', '--voxel', '1,2,3'],
        /only one of --point, --voxel, --points, --box, --voxel-box/,
      ],
      [['segment', '-i', image, '-m', model, '--voxel-box', '1,2,3,4,5'], /--voxel-box: expected six numbers/],
      [['segment', '-i', image, '-m', model, '--box', '1,2,3,4,5,6', '--voxel', '1,2,3'], /only one of/],
      [
        ['segment', '-i', image, '-m', model, '--voxel-box', '100,100,100,120,120,120'],
        /the centre of box 1 \(voxel 110\.0, 110\.0, 110\.0\) lies outside the image/,
      ],
      // A folder whose second crop is corrupt: no mask of the first may be left behind.
      [['segment', '-i', folder, '-m', model, '-o', join(dir, 'new-out', 'nested'), '--png', join(dir, 'new-png')], /b-bad\.nii\.gz/],
      [['segment', '-i', twins, '-m', model, '-o', join(dir, 'twins-out')], /both be written as a-good\.nii\.gz/],
      [['segment', '-i', folder, '-m', model, '-o', keptOut], /b-bad\.nii\.gz/],
      // The any-reader mask: a model without that level, a wrong extension, one file for two outputs, a folder.
      [
        [
          'segment',
          '-i',
          image,
          '-m',
          model,
          '--voxel',
          '20,20,6',
          '-o',
          join(dir, 'ar-out.nii.gz'),
          '--any-reader',
          join(dir, 'ar.nii.gz'),
        ],
        /ar\.nii\.gz: the model tiny\.safetensors has no any-reader level/,
      ],
      [
        ['segment', '-i', image, '-m', model, '--voxel', '20,20,6', '--any-reader', join(dir, 'ar.png')],
        /ar\.png: the any-reader mask must end in \.nii\.gz or \.nii/,
      ],
      [
        ['segment', '-i', image, '-m', model, '--voxel', '20,20,6', '-o', join(dir, 'ar2.nii.gz'), '--any-reader', join(dir, 'ar2.nii.gz')],
        /ar2\.nii\.gz: --any-reader must be a file of its own/,
      ],
      [
        ['segment', '-i', folder, '-m', model, '-o', join(dir, 'ar-folder'), '--any-reader', join(dir, 'ar3.nii.gz')],
        /not of a folder of crops/,
      ],
    ];
    // Command lines run in a child process: capturing this process's stdout would hide the test
    // runner's own reports.
    const results = runCliBatch([
      ...cases.map(([a]) => a),
      ['segment', '-i', image, '-m', model, '-o', join(dir, 'mask.nii.gz'), '--voxel', '20,20,6'],
    ]);
    for (const [k, [args, re]] of cases.entries()) {
      const r = results[k]!;
      assert.equal(r.code, 1, `${args.join(' ')} -> ${r.stderr}`);
      assert.match(r.stderr, re);
      // Progress lines (non-TTY) may come before the error; the error itself is one line.
      const lines = r.stderr
        .trim()
        .split('\n')
        .filter((l) => !/^segmenting crops /.test(l));
      assert.equal(lines.length, 1, `one line: ${r.stderr}`);
    }
    assert.ok(!existsSync(join(dir, 'out.dcm')) && !existsSync(join(dir, 'out.png')));
    assert.ok(!existsSync(join(dir, 'new-out')) && !existsSync(join(dir, 'new-png')), 'folders made for a failed run are removed');
    assert.ok(!existsSync(join(dir, 'twins-out')));
    for (const f of ['ar-out.nii.gz', 'ar-out.json', 'ar.nii.gz', 'ar.png', 'ar2.nii.gz', 'ar-folder', 'ar3.nii.gz'])
      assert.ok(!existsSync(join(dir, f)), `${f} written by a failed run`);
    assert.deepEqual(readdirSync(keptOut), ['earlier.txt'], 'an existing output folder keeps only what it had');
    // The pipeline itself, with an untrained model: a mask on the input's exact grid and a report.
    const out = join(dir, 'mask.nii.gz');
    const r = results[cases.length]!;
    assert.equal(r.code, 0, r.stderr);
    const mask = await readVolume(out);
    const ct = await readVolume(image);
    assert.ok(mask.sameGrid(ct));
    const report = JSON.parse(readFileSync(join(dir, 'mask.json'), 'utf8')) as { nodules: Array<{ label: number; promptVoxel: number[] }> };
    assert.equal(report.nodules.length, 1);
    assert.deepEqual(report.nodules[0]!.promptVoxel, [20, 20, 6]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('segment with the shipped model: three real crops reach Dice >= 0.7 each', { skip: missing ?? false }, async () => {
  assert.ok(existsSync(DEFAULT_MODEL), `the shipped model ${DEFAULT_MODEL} is missing`);
  const dir = mkdtempSync(join(tmpdir(), 'noduleseg-seg3-'));
  try {
    const crops = lidcCropsDir();
    const ids = ['LIDC-IDRI-0181_R_2', 'LIDC-IDRI-0260_R_3', 'LIDC-IDRI-0252_R_1'];
    mkdirSync(join(dir, 'in'));
    // Every image format of the one extension list is picked up from a folder: two NIfTI, one MetaImage (.mha).
    for (const id of ids.slice(0, 2)) symlinkSync(resolve(crops, 'image', `${id}.nii.gz`), join(dir, 'in', `${id}.nii.gz`));
    await writeItkImage(join(dir, 'in', `${ids[2]}.mha`), await readVolume(join(crops, 'image', `${ids[2]}.nii.gz`)));
    // One crop at a time (--threads 1), and three side by side in crop threads: the same masks.
    const [r, side] = runCliBatch([
      ['segment', '-i', join(dir, 'in'), '-o', join(dir, 'out'), '--threads', '1'],
      ['segment', '-i', join(dir, 'in'), '-o', join(dir, 'out-threads'), '--workers', '3'],
    ]);
    assert.ok(r && side);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(side.code, 0, side.stderr);
    const cases = (f: string) =>
      JSON.parse(readFileSync(join(dir, f, 'report.json'), 'utf8')).cases as Record<string, { measures: unknown }>;
    assert.deepEqual(Object.keys(cases('out-threads')), Object.keys(cases('out')), 'the report lists the crops in the same order');
    for (const id of ids) {
      assert.ok(
        readFileSync(join(dir, 'out-threads', `${id}.nii.gz`)).equals(readFileSync(join(dir, 'out', `${id}.nii.gz`))),
        `${id}: same mask`,
      );
      assert.deepEqual(cases('out-threads')[id]!.measures, cases('out')[id]!.measures);
    }
    assert.deepEqual(
      readdirSync(join(dir, 'out'))
        .filter((f) => f.endsWith('.nii.gz'))
        .sort(),
      ids.map((i) => `${i}.nii.gz`).sort(),
    );
    for (const id of ids) {
      const pred = await readVolume(join(dir, 'out', `${id}.nii.gz`));
      const ref = await readVolume(join(crops, 'mask', `${id}.nii.gz`));
      assert.ok(pred.sameGrid(ref), `${id}: output on the input's grid`);
      const m = segmentationMetrics(pred, ref, { hd95: false });
      assert.ok(m.dice >= 0.7, `${id}: Dice ${m.dice.toFixed(3)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('segment fills the air a nodule encloses in a slice; --no-fill-holes leaves it out', { skip: missing ?? false }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'noduleseg-holes-'));
  try {
    // The one cavitated nodule of lidc-crops: a ground-glass wall around air.
    const image = join(lidcCropsDir(), 'image', 'LIDC-IDRI-1011_R_1.nii.gz');
    const [filled, open] = runCliBatch([
      ['segment', '-i', image, '-o', join(dir, 'filled.nii.gz'), '--threads', '1'],
      ['segment', '-i', image, '-o', join(dir, 'open.nii.gz'), '--threads', '1', '--no-fill-holes'],
    ]);
    assert.equal(filled!.code, 0, filled!.stderr);
    assert.equal(open!.code, 0, open!.stderr);
    const a = (await readVolume(join(dir, 'filled.nii.gz'))).data,
      b = (await readVolume(join(dir, 'open.nii.gz'))).data;
    const dims = (await readVolume(image)).dims;
    const holes = (m: ArrayLike<number>) =>
      fillHolesInPlane(
        Uint8Array.from(m, (v) => (v ? 1 : 0)),
        dims,
      );
    assert.equal(holes(a), 0, 'no hole left in any slice');
    assert.ok(holes(b) > 0, 'without filling, the cavity is a hole');
    for (let i = 0; i < b.length; i++) if (b[i]) assert.ok(a[i], 'filling only adds voxels');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('segment with a box prompt: the mask stays inside the box plus its margin; a box flat in z limits it in-plane only', {
  skip: missing ?? false,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'noduleseg-box-'));
  try {
    const id = 'LIDC-IDRI-0260_R_3';
    const image = join(lidcCropsDir(), 'image', `${id}.nii.gz`);
    const ref = await readVolume(join(lidcCropsDir(), 'mask', `${id}.nii.gz`));
    const [nx, ny, nz] = ref.dims;
    // Bounding box (voxels) and voxel count of a mask on the crop's grid.
    const extent = (m: ArrayLike<number>) => {
      const a = [nx, ny, nz],
        b = [-1, -1, -1];
      let count = 0;
      for (let i = 0; i < m.length; i++) {
        if (!m[i]) continue;
        count++;
        const v = [i % nx, Math.floor(i / nx) % ny, Math.floor(i / (nx * ny))];
        for (let d = 0; d < 3; d++) {
          a[d] = Math.min(a[d]!, v[d]!);
          b[d] = Math.max(b[d]!, v[d]!);
        }
      }
      return { lo: a, hi: b, count };
    };
    const { lo, hi } = extent(ref.data as ArrayLike<number>);
    const xMid = Math.floor((lo[0]! + hi[0]!) / 2);
    const zMid = Math.round((lo[2]! + hi[2]!) / 2);
    const box = (a: number[], b: number[]) => [...a, ...b].join(',');
    const runs: Record<string, string[]> = {
      point: ['--voxel', [(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2].join(','), '--any-reader', join(dir, 'point-any.nii.gz')],
      crop: ['--any-reader', join(dir, 'crop-any.nii.gz')],
      whole: ['--voxel-box', box(lo, hi)],
      half: ['--voxel-box', box(lo, [xMid, hi[1]!, hi[2]!])],
      flat: ['--voxel-box', box([lo[0]!, lo[1]!, zMid], [hi[0]!, hi[1]!, zMid])],
    };
    const names = Object.keys(runs);
    const results = runCliBatch(names.map((n) => ['segment', '-i', image, '-o', join(dir, `${n}.nii.gz`), '--threads', '1', ...runs[n]!]));
    const masks: Record<string, Uint8Array> = {};
    for (const [k, n] of names.entries()) {
      assert.equal(results[k]!.code, 0, `${n}: ${results[k]!.stderr}`);
      masks[n] = Uint8Array.from((await readVolume(join(dir, `${n}.nii.gz`))).data as ArrayLike<number>, (v) => (v ? 1 : 0));
    }
    const dice = (a: Uint8Array, b: Uint8Array) =>
      segmentationMetrics(
        { data: a, dims: ref.dims, spacingMm: ref.spacingMm },
        { data: b, dims: ref.dims, spacingMm: ref.spacingMm },
        { hd95: false },
      ).dice;
    const margin = ref.spacingMm.map((s) => 2 / s);
    // A box around the whole reference nodule gives the point's answer.
    assert.ok(dice(masks['whole']!, masks['point']!) > 0.95, `whole box vs point: ${dice(masks['whole']!, masks['point']!).toFixed(3)}`);
    // Half the box: nothing beyond its x edge plus the margin, and less than the whole nodule.
    const half = extent(masks['half']!);
    assert.ok(half.count > 0 && half.count < 0.8 * extent(masks['point']!).count, `half box kept ${half.count} voxels`);
    assert.ok(half.hi[0]! <= xMid + margin[0]!, `half box reaches x=${half.hi[0]} (edge ${xMid} + ${margin[0]!.toFixed(1)})`);
    // A box drawn on one slice: the nodule still spans several slices.
    const flat = extent(masks['flat']!);
    assert.ok(flat.hi[2]! - flat.lo[2]! >= 2, `flat box mask spans slices ${flat.lo[2]}..${flat.hi[2]}`);
    for (let d = 0; d < 2; d++) assert.ok(flat.lo[d]! >= lo[d]! - margin[d]! && flat.hi[d]! <= hi[d]! + margin[d]!);
    const report = JSON.parse(readFileSync(join(dir, 'half.json'), 'utf8')) as { nodules: Array<{ promptBoxVoxels: number[][] | null }> };
    assert.deepEqual(report.nodules[0]!.promptBoxVoxels, [lo, [xMid, hi[1], hi[2]]]);
    // --any-reader, from a point and for the crop as a whole: a mask on the crop's grid, labelled as
    // the default one, that holds it and more, whose volume is the report's any-reader volume.
    const voxelMm3 = ref.spacingMm[0] * ref.spacingMm[1] * ref.spacingMm[2];
    for (const n of ['point', 'crop']) {
      const wide = await readVolume(join(dir, `${n}-any.nii.gz`));
      assert.ok(wide.sameGrid(ref));
      assert.deepEqual([...new Set(Array.from(wide.data as ArrayLike<number>))].sort(), [0, 1]);
      const w = Uint8Array.from(wide.data as ArrayLike<number>, (v) => (v ? 1 : 0));
      const m = masks[n]!;
      assert.ok(
        m.every((v, i) => !v || w[i]),
        `${n}: the any-reader mask holds the mask`,
      );
      const [wc, mc] = [extent(w).count, extent(m).count];
      assert.ok(wc > mc, `${n}: any-reader ${wc} voxels, mask ${mc}`);
      const rep = JSON.parse(readFileSync(join(dir, `${n}.json`), 'utf8')) as { nodules: Array<{ anyReaderVolumeMm3: number }> };
      assert.ok(Math.abs(rep.nodules[0]!.anyReaderVolumeMm3 - wc * voxelMm3) < 1e-6 * wc * voxelMm3, `${n}: report vs file`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('segment --points: a LUNA16-style CSV of world points (the reader shared with the job queue)', {
  skip: missing ?? false,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'noduleseg-points-'));
  try {
    const crop = resolve(lidcCropsDir(), 'image', 'LIDC-IDRI-0001_R_1.nii.gz');
    writeFileSync(join(dir, 'points.csv'), 'seriesuid,coordX,coordY,coordZ\nx, 57.59 ,85.29,-115\n');
    writeFileSync(join(dir, 'bad.csv'), 'x,y,z\n1,2,3\n');
    const [ok, bad] = runCliBatch([
      ['segment', '-i', crop, '--points', join(dir, 'points.csv'), '-o', join(dir, 'out', 'm.nii.gz'), '--threads', '1'],
      ['segment', '-i', crop, '--points', join(dir, 'bad.csv'), '-o', join(dir, 'bad', 'm.nii.gz'), '--threads', '1'],
    ]);
    assert.equal(ok?.code, 0, ok?.stderr);
    const report = JSON.parse(readFileSync(join(dir, 'out', 'm.json'), 'utf8')) as { nodules: Array<{ measures: { voxelCount: number } }> };
    assert.equal(report.nodules.length, 1);
    assert.ok(report.nodules[0]!.measures.voxelCount > 0);
    assert.equal(bad?.code, 1);
    assert.match(bad?.stderr.trim() ?? '', /^noduleseg: .*bad\.csv: needs the columns coordX, coordY, coordZ$/);
    assert.ok(!existsSync(join(dir, 'bad')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

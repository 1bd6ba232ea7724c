import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Volume, writeNifti } from '../../src/io/index.ts';
import { runCliBatch, tempDir, writeFakeSeries } from './helpers.ts';

test('inspect prints dims, spacing, origin, value range and modality (file, DICOM folder, JSON)', () => {
  const dir = tempDir('inspect');
  const v = new Volume({
    data: new Int16Array(24).map((_, i) => i * 10 - 100),
    dims: [4, 3, 2],
    spacingMm: [0.5, 0.75, 2],
    originMm: [1.5, -2, 3],
  });
  writeNifti(join(dir, 'a.nii.gz'), v);
  writeFakeSeries(join(dir, 'ct'), [{ z: 0 }, { z: 2.5 }, { z: 5 }]);
  const [file, folder, json] = runCliBatch([
    ['inspect', join(dir, 'a.nii.gz')],
    ['inspect', join(dir, 'ct')],
    ['inspect', '--json', join(dir, 'ct')],
  ]);
  assert.equal(file!.code, 0, file!.stderr);
  assert.match(file!.stdout, /format: +NIfTI-1 \(gzip\)/);
  assert.match(file!.stdout, /dims: +4 x 3 x 2 voxels \(int16\)/);
  assert.match(file!.stdout, /spacing: +0\.5000 x 0\.7500 x 2\.0000 mm/);
  assert.match(file!.stdout, /origin: +\(1\.500, -2\.000, 3\.000\) mm, LPS/);
  assert.match(file!.stdout, /range: +-100 \.\. 130/);
  assert.match(file!.stdout, /modality: +unknown/);
  assert.equal(folder!.code, 0, folder!.stderr);
  assert.match(folder!.stdout, /modality: +CT/);
  assert.match(folder!.stdout, /dims: +4 x 3 x 3 voxels/);
  assert.match(folder!.stdout, /spacing: +0\.7500 x 0\.5000 x 2\.5000 mm/);
  assert.match(folder!.stdout, /origin: +\(-10\.000, -20\.000, 0\.000\) mm, LPS/);
  assert.match(folder!.stdout, /HU range: +-1024 \.\. -993/);
  const info = JSON.parse(json!.stdout) as { dims: number[]; modality: string; range: { min: number; max: number } };
  assert.deepEqual(info.dims, [4, 3, 3]);
  assert.equal(info.modality, 'CT');
  assert.deepEqual(info.range, { min: -1024, max: -993 });
});

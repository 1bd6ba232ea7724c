import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IMAGE_EXTENSIONS_TEXT, imageFormatOf, imageStem, isImagePath, isItkPath, isNiftiPath } from '../../src/io/formats.ts';

test('one extension list: formats, stems and the text the messages show', () => {
  assert.equal(IMAGE_EXTENSIONS_TEXT, '.nii.gz, .nii, .mha, .mhd, .nrrd, .nhdr');
  const cases: Array<[string, string | undefined, string]> = [
    ['a.nii.gz', 'nifti', 'a'],
    ['A.NII', 'nifti', 'A'],
    ['b.mha', 'metaimage', 'b'],
    ['b.mhd', 'metaimage', 'b'],
    ['c.nrrd', 'nrrd', 'c'],
    ['c.nhdr', 'nrrd', 'c'],
    ['d.raw', undefined, 'd.raw'],
    ['e.gz', undefined, 'e.gz'],
    ['f.nii.gz.txt', undefined, 'f.nii.gz.txt'],
  ];
  for (const [name, format, stem] of cases) {
    assert.equal(imageFormatOf(name), format, name);
    assert.equal(isImagePath(name), format !== undefined, name);
    assert.equal(imageStem(name), stem, name);
  }
  assert.ok(isNiftiPath('x/y.nii.gz') && !isNiftiPath('y.mha'));
  assert.ok(isItkPath('y.mha') && isItkPath('y.nhdr') && !isItkPath('y.nii'));
});

test('voxel spacings outside a micrometre to a metre are refused naming the file (they overflowed into NaN volumes)', async () => {
  const { refuseBadGeometry } = await import('../../src/io/volume.ts');
  const identity = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  for (const s of [1e-30, 1e-4, 2e3, 1e30]) {
    assert.throws(
      () => refuseBadGeometry('x.nii', [0.7, s, 1.25], [0, 0, 0], identity),
      /^UserError: x\.nii: voxel spacing \[.*\] mm is outside 0\.001-1000 mm/,
    );
  }
  refuseBadGeometry('x.nii', [0.001, 0.7, 1000], [0, 0, 0], identity);
});

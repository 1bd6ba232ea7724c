// Counter-examples found by the property test (bad-input.property.test.ts), shrunk by fast-check
// and kept here as plain cases: each crashed a command, hung it or let non-finite values through
// before its reader was fixed. Each is written as the mutation that produced it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isUserError } from '../../src/errors.ts';
import { readVolume } from '../../src/io/read.ts';
import { fillInside, readLidcScan } from '../../src/io/lidc.ts';
import { runCliBatch, tempDir } from '../io/helpers.ts';
import { loadFixtures } from './fixtures.ts';
import {
  applyDicom,
  applyMeta,
  applyNifti,
  applyXml,
  type DicomMutation,
  type MetaMutation,
  type NiftiMutation,
  type XmlMutation,
} from './mutations.ts';

const dir = tempDir('regress');
const fx = await loadFixtures(join(dir, 'fixtures'), { real: false });
const image = fx.images.synthetic!;
const series = fx.series.synthetic!;

function nifti(name: string, m: Omit<NiftiMutation, 'base' | 'gzip' | 'gzipOps'>): string {
  const p = join(dir, name);
  writeFileSync(p, applyNifti(image.niftiImage, { base: 'synthetic', gzip: false, gzipOps: [], ...m }));
  return p;
}

function meta(name: string, ops: MetaMutation['ops']): string {
  const p = join(dir, `${name}.mhd`);
  const { header, data } = applyMeta(
    image.metaImage.header,
    image.metaImage.data,
    { base: 'synthetic', container: 'mhd', ops },
    `${name}.raw`,
  );
  writeFileSync(p, header);
  writeFileSync(join(dir, `${name}.raw`), data);
  return p;
}

function dicom(name: string, ops: DicomMutation['ops'], xml?: XmlMutation['ops']): string {
  const d = join(dir, name);
  mkdirSync(d);
  for (const [file, bytes] of applyDicom(series.slices, { base: 'synthetic', ops })) writeFileSync(join(d, file), bytes);
  writeFileSync(join(d, series.xmlName), xml ? applyXml(series.xml, { base: 'synthetic', ops: xml }) : series.xml);
  return d;
}

// [what, path, what the one-line message must say]
const REFUSED: Array<[string, string, RegExp]> = [
  // Was a RangeError from the Volume constructor ("origin must be finite"): a qoffset past the
  // float32 range is infinite. (Shrunk from a real crop; here on the synthetic one, qform only.)
  [
    'NIfTI with an infinite qform offset',
    nifti('qoffset.nii', {
      ops: [
        { op: 'field', field: 'sform_code', value: 0 },
        { op: 'field', field: 'qoffset_y', value: -3.4028235677973366e38 },
      ],
    }),
    /the origin is not finite/,
  ],
  // Was "direction matrix is singular" (a RangeError) in segment --point: ITK reads this
  // TransformMatrix as all zeros.
  [
    'MetaImage with a TransformMatrix of ";"',
    meta('transform', [{ op: 'duplicate', key: 'TransformMatrix', value: ';' }]),
    /orientation .* not a unit vector/,
  ],
  [
    'MetaImage with a singular TransformMatrix',
    meta('singular', [{ op: 'set', key: 'TransformMatrix', value: '1 0 0 1 0 0 0 0 1' }]),
    /orientation .* (degenerate|not a unit vector)/,
  ],
  // Was a RangeError (typed array length) before the pixel data was found truncated.
  [
    'DICOM with Rows and Columns 65535 on every slice',
    dicom('huge', [{ op: 'size', slice: -1, rows: 65535, cols: 65535 }]),
    /IM0001\.dcm: truncated pixel data \(640 of 8589672450 bytes\)/,
  ],
  // Were read as NaN / infinite HU without a word.
  [
    'DICOM with RescaleSlope "abc"',
    dicom('slope-nan', [{ op: 'tag', slice: 2, tag: 'RescaleSlope', value: ['abc'] }]),
    /IM0003\.dcm: RescaleSlope "abc" and RescaleIntercept "-1024" must be finite numbers/,
  ],
  [
    'DICOM with a slope that overflows float32',
    dicom('slope-inf', [{ op: 'tag', slice: 2, tag: 'RescaleSlope', value: ['1e38'] }]),
    /320 of 1920 voxels are not finite/,
  ],
  // A slice normal of zero length: every slice at one position, or with one slice a singular direction.
  [
    'DICOM with parallel orientation vectors',
    dicom('iop-parallel', [{ op: 'tag', slice: -1, tag: 'ImageOrientationPatient', value: ['1', '0', '0', '1', '0', '0'] }]),
    /IM0001\.dcm: ImageOrientationPatient "1\\0\\0\\1\\0\\0" is not two orthogonal directions/,
  ],
  [
    'DICOM with one slice and orientation vectors of length 2',
    dicom('iop-long', [
      ...[1, 2, 3, 4, 5].map((slice) => ({ op: 'remove' as const, slice })),
      { op: 'tag', slice: 0, tag: 'ImageOrientationPatient', value: ['2', '0', '0', '0', '2', '0'] },
    ]),
    /IM0001\.dcm: the orientation .* has an axis of length 2/,
  ],
];

for (const [what, path, reason] of REFUSED) {
  test(`regression: ${what} is refused in one line naming it`, async () => {
    await assert.rejects(readVolume(path), (e: unknown) => {
      assert.ok(isUserError(e), `expected a UserError, got ${e instanceof Error ? e.stack : String(e)}`);
      assert.ok(e.message.startsWith(path), `names the input: ${e.message}`);
      assert.match(e.message, reason);
      assert.ok(!e.message.includes('\n'), 'one line');
      return true;
    });
  });
}

test('regression: the same inputs from the command line: exit 1, one line, nothing on stdout', () => {
  const results = runCliBatch(REFUSED.map(([, path]) => ['inspect', path]));
  results.forEach((r, n) => {
    const [what, path] = REFUSED[n]!;
    assert.equal(r.code, 1, `${what}: ${r.stderr}`);
    assert.equal(r.stdout, '', what);
    assert.match(r.stderr, /^noduleseg: [^\n]+\n$/, what);
    assert.ok(r.stderr.includes(path), what);
  });
});

// Was a hang: fillInside walked every scanline from the outline's lowest y to 1e9.
test('regression: an LIDC outline with a coordinate of 1e9 is read in moments', { timeout: 10_000 }, async () => {
  const d = dicom('xml-far', [], [{ op: 'text', element: 'yCoord', nth: 3, value: '1e9' }]);
  const t0 = performance.now();
  const scan = await readLidcScan(d);
  assert.ok(performance.now() - t0 < 5000, 'quick');
  assert.equal(scan.xml.nodules.length, 2);
  // Within the slice's bounds the fill is what it was; outside nothing is listed.
  const square: Array<[number, number]> = [
    [2, 2],
    [6, 2],
    [6, 6],
    [2, 6],
  ];
  assert.deepEqual(fillInside(square, { width: 20, height: 16 }), fillInside(square));
  const far = fillInside(
    [
      [2, 2],
      [6, 2],
      [6, 1e9],
      [2, 1e9],
    ],
    { width: 20, height: 16 },
  );
  assert.ok(far.every(([x, y]) => x >= 0 && x < 20 && y >= 0 && y < 16));
  // x 3..5 on rows 2..15: only the four corners are outline pixels here.
  assert.equal(far.length, 3 * 14);
});

// Found while writing the catalogue (not by the generator, which does not block outputs): eval
// wrote --csv, then failed on --md and left the CSV behind.
test('regression: eval whose --md cannot be written leaves no --csv', () => {
  const d = join(dir, 'eval-blocked');
  for (const side of ['pred', 'ref']) {
    mkdirSync(join(d, side), { recursive: true });
    writeFileSync(join(d, side, 'case.nii'), image.niftiMask);
  }
  writeFileSync(join(d, 'blocker'), 'x');
  const csv = join(d, 'out', 'metrics.csv');
  const [r] = runCliBatch([
    ['eval', '--pred', join(d, 'pred'), '--ref', join(d, 'ref'), '--csv', csv, '--md', join(d, 'blocker', 'summary.md')],
  ]);
  assert.equal(r!.code, 1, r!.stderr);
  assert.match(r!.stderr, /blocker\/summary\.md: cannot/);
  assert.equal(r!.stdout, '');
  assert.ok(!existsSync(csv), 'no CSV left behind');
});

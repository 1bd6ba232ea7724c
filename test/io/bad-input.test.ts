import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { isUserError } from '../../src/errors.ts';
import { parseLidcXml, readVolume, readNifti, Volume, writeNifti, writeItkImage } from '../../src/io/index.ts';
import { niftiHeader, runCliBatch, tempDir, writeFakeSeries, type CliResult } from './helpers.ts';

const dir = tempDir('bad');
const good = new Volume({ data: new Int16Array(24).map((_, i) => i), dims: [4, 3, 2], spacingMm: [1, 1, 2], originMm: [0, 0, 0] });
writeNifti(join(dir, 'good.nii'), good);
const goodBytes = readFileSync(join(dir, 'good.nii'));
await writeItkImage(join(dir, 'good.mhd'), good);
const mhd = readFileSync(join(dir, 'good.mhd'), 'utf8');

function put(name: string, bytes: Uint8Array | string): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

function nifti(h: Parameters<typeof niftiHeader>[0], voxels: number): Uint8Array {
  const head = niftiHeader(h);
  const out = new Uint8Array(head.length + voxels * 2);
  out.set(head);
  return out;
}

function folderWith(name: string, file: string, text: string): string {
  const d = join(dir, name);
  mkdirSync(d);
  writeFileSync(join(d, file), text);
  return d;
}

function series(name: string, slices: Parameters<typeof writeFakeSeries>[1]): string {
  const d = join(dir, name);
  writeFakeSeries(d, slices);
  return d;
}

// Each case: a path, and what the one-line message must say.
const CASES: Array<[string, string, RegExp]> = [
  ['missing file', join(dir, 'nope.nii.gz'), /no such file or folder/],
  ['empty file', put('empty.nii.gz', new Uint8Array(0)), /empty file/],
  ['truncated gzip', put('cut.nii.gz', gzipSync(goodBytes).subarray(0, 40)), /truncated or corrupt gzip/],
  ['truncated voxel data', put('cut.nii', goodBytes.subarray(0, 352 + 20)), /truncated voxel data \(20 of 48 bytes/],
  ['truncated header', put('short.nii', goodBytes.subarray(0, 100)), /truncated NIfTI header \(100 of 348 bytes\)/],
  [
    'non-image named .nii',
    put('text.nii', 'this is not an image, just some text that is long enough to be read as a header'.repeat(5)),
    /not a NIfTI file/,
  ],
  ['unknown extension', put('notes.txt', 'hello'), /unknown image format/],
  ['non-image named .nrrd', put('junk.nrrd', 'hello world'), /not a NRRD file/],
  ['non-image named .mhd', put('junk.mhd', 'hello world'), /not a MetaImage header/],
  [
    'wrongly shaped NIfTI (dims bigger than the data)',
    put('shape.nii', nifti({ dims: [4, 3, 5], pixdim: [1, 1, 1, 1] }, 24)),
    /truncated voxel data \(48 of 120 bytes/,
  ],
  [
    'wrongly shaped MetaImage (DimSize vs data)',
    put('shape.mhd', mhd.replace('DimSize = 4 3 2', 'DimSize = 4 3 9').replace('ElementDataFile = good.raw', 'ElementDataFile = good.raw')),
    /truncated voxel data \(48 of 216 bytes/,
  ],
  [
    'MetaImage NDims disagreeing with DimSize',
    put('ndims.mhd', mhd.replace('DimSize = 4 3 2', 'DimSize = 4 3')),
    /NDims = 3 but DimSize has 2 values/,
  ],
  ['MetaImage with its data file missing', put('lost.mhd', mhd.replace('good.raw', 'lost.raw')), /data file lost\.raw is missing/],
  ['4D NIfTI', put('4d.nii', nifti({ dims: [4, 3, 2, 2], pixdim: [1, 1, 1, 1, 1] }, 48)), /4D image \[4, 3, 2, 2\] is not supported/],
  [
    '4D MetaImage',
    put('4d.mhd', mhd.replace('NDims = 3', 'NDims = 4').replace('DimSize = 4 3 2', 'DimSize = 4 3 1 2')),
    /4D image \[4, 3, 1, 2\] is not supported/,
  ],
  [
    'zero spacing (NIfTI)',
    put('zero.nii', nifti({ dims: [4, 3, 2], pixdim: [1, 1, 0, 1] }, 24)),
    /spacing must be positive, got pixdim\[2\] = 0/,
  ],
  [
    'negative spacing (NIfTI)',
    put('neg.nii', nifti({ dims: [4, 3, 2], pixdim: [1, -1, 1, 1] }, 24)),
    /spacing must be positive, got pixdim\[1\] = -1/,
  ],
  [
    'zero spacing (MetaImage)',
    put('zero.mhd', mhd.replace(/ElementSpacing = .*/, 'ElementSpacing = 1 0 2')),
    /spacing must be positive, got \[1, 0, 2\]/,
  ],
  ['DICOM folder with no images', folderWith('nodcm', 'readme.txt', 'x'), /no DICOM images in this folder/],
  [
    'DICOM series with a gap',
    series('gap', [{ z: 0 }, { z: 2 }, { z: 4 }, { z: 8 }, { z: 10 }]),
    /gap in the series: about 1 slice\(s\) missing between .*IM0003\.dcm and .*IM0004\.dcm \(4\.000 mm step, 2\.000 mm expected\)/,
  ],
  [
    'DICOM series with uneven spacing',
    series('uneven', [{ z: 0 }, { z: 2 }, { z: 4.5 }, { z: 6 }, { z: 8 }]),
    /uneven slice spacing \(steps from 1\.500 to 2\.500 mm\)/,
  ],
  ['DICOM slices at the same position', series('dup', [{ z: 0 }, { z: 2 }, { z: 2 }]), /two slices at the same position/],
  [
    'non-CT modality',
    series('mr', [
      { z: 0, modality: 'MR' },
      { z: 2, modality: 'MR' },
    ]),
    /modality is MR, only CT is supported/,
  ],
  [
    'truncated DICOM file',
    series('cutdcm', [{ z: 0 }, { z: 2, truncateBy: 10 }]),
    /IM0002\.dcm: (corrupt or truncated DICOM file|truncated pixel data)/,
  ],
];

for (const [what, path, reason] of CASES) {
  test(`bad input: ${what}`, async () => {
    await assert.rejects(readVolume(path), (e: unknown) => {
      assert.ok(isUserError(e), `expected a UserError, got ${String(e)}`);
      assert.ok(e.message.includes(path.split('/').slice(-1)[0]!), `message names the file: ${e.message}`);
      assert.match(e.message, reason);
      assert.ok(!e.message.includes('\n'), 'one line');
      return true;
    });
  });
}

test('bad input from the command line: exit 1, one line naming the file, nothing on stdout', () => {
  const results = runCliBatch(CASES.map(([, path]) => ['inspect', path]));
  results.forEach((r, n) => {
    const [what, , reason] = CASES[n]!;
    assert.equal(r.code, 1, `${what}: ${r.stderr}`);
    assert.equal(r.stdout, '', what);
    assert.match(r.stderr, /^noduleseg: [^\n]+\n$/, what);
    assert.match(r.stderr, reason, what);
  });
});

test('bad input: malformed and non-LIDC XML', () => {
  const bad = put('bad.xml', '<LidcReadMessage><readingSession><unblindedReadNodule></readingSession></LidcReadMessage>');
  assert.throws(
    () => parseLidcXml(bad),
    (e) => isUserError(e) && /bad\.xml: malformed XML \(line 1: /.test(e.message) && !e.message.includes('\n'),
  );
  const other = put('other.xml', '<?xml version="1.0"?><html><body/></html>');
  assert.throws(() => parseLidcXml(other), /other\.xml: not an LIDC read/);
  const nan = put(
    'nan.xml',
    '<LidcReadMessage><readingSession><unblindedReadNodule><noduleID>1</noduleID><roi><imageZposition>abc</imageZposition></roi></unblindedReadNodule></readingSession></LidcReadMessage>',
  );
  assert.throws(() => parseLidcXml(nan), /nan\.xml: imageZposition of 1 is not a number \("abc"\)/);
  assert.throws(() => parseLidcXml(put('empty.xml', '')), /empty\.xml: empty file/);
});

/** A 12x12 fake series with an LIDC XML: one reader outlines a 5x5 square on slices 1 and 2. */
function lidcFolder(name: string, xml: string | null): string {
  const d = join(dir, name);
  writeFakeSeries(
    d,
    [0, 2, 4, 6].map((z) => ({ z, rows: 12, cols: 12 })),
  );
  if (xml !== null) writeFileSync(join(d, '001.xml'), xml);
  return d;
}

function lidcXml(series: string): string {
  const square = (x0: number, y0: number, n: number) => {
    const pts: string[] = [];
    for (let x = x0; x < x0 + n; x++) pts.push(`${x},${y0}`);
    for (let y = y0 + 1; y < y0 + n; y++) pts.push(`${x0 + n - 1},${y}`);
    for (let x = x0 + n - 2; x >= x0; x--) pts.push(`${x},${y0 + n - 1}`);
    for (let y = y0 + n - 2; y > y0; y--) pts.push(`${x0},${y}`);
    return pts.map((p) => `<edgeMap><xCoord>${p.split(',')[0]}</xCoord><yCoord>${p.split(',')[1]}</yCoord></edgeMap>`).join('');
  };
  const roi = (n: number, z: number) =>
    `<roi><imageZposition>${z}</imageZposition><imageSOP_UID>1.2.826.0.1.3680043.10.1453.9.${n}</imageSOP_UID><inclusion>TRUE</inclusion>${square(3, 4, 5)}</roi>`;
  return `<?xml version="1.0"?><LidcReadMessage xmlns="http://www.nih.gov"><ResponseHeader><SeriesInstanceUid>${series}</SeriesInstanceUid></ResponseHeader>
<readingSession><servicingRadiologistID>r1</servicingRadiologistID><unblindedReadNodule><noduleID>N1</noduleID><characteristics><malignancy>4</malignancy></characteristics>${roi(2, 2)}${roi(3, 4)}</unblindedReadNodule>
<nonNodule><nonNoduleID>nn</nonNoduleID><imageZposition>0</imageZposition><imageSOP_UID>x</imageSOP_UID><locus><xCoord>1</xCoord><yCoord>1</yCoord></locus></nonNodule></readingSession>
<readingSession><servicingRadiologistID>r2</servicingRadiologistID><unblindedReadNodule><noduleID>S1</noduleID><roi><imageZposition>6</imageZposition><imageSOP_UID>1.2.826.0.1.3680043.10.1453.9.4</imageSOP_UID><inclusion>TRUE</inclusion><edgeMap><xCoord>9</xCoord><yCoord>9</yCoord></edgeMap></roi></unblindedReadNodule></readingSession>
</LidcReadMessage>`;
}

const SERIES = '1.2.826.0.1.3680043.10.1453.8.1';

test('lidc command on a fabricated series: lists, writes the mask (outline excluded)', () => {
  const d = lidcFolder('lidc-ok', lidcXml(SERIES));
  const out = join(dir, 'lidc-ok-out', 'mask.nii.gz');
  const [r] = runCliBatch([['lidc', d, '--agreement', 'any', '--output', out, '--json']]) as [CliResult];
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as {
    readers: number;
    smallNodules: number;
    nonNodules: number;
    nodules: Array<{ voxels: number; readers: number; characteristics: { malignancy: number } }>;
  };
  assert.equal(report.readers, 2);
  assert.equal(report.smallNodules, 1);
  assert.equal(report.nonNodules, 1);
  assert.equal(report.nodules.length, 1);
  // A 5x5 outline leaves 3x3 inside on each of its two slices.
  assert.equal(report.nodules[0]!.voxels, 18);
  assert.equal(report.nodules[0]!.characteristics.malignancy, 4);
  const m = readNifti(out);
  assert.deepEqual(m.dims, [12, 12, 4]);
  assert.deepEqual(m.originMm, [-10, -20, 0]);
  let sum = 0;
  for (const v of m.data) sum += v;
  assert.equal(sum, 18);
  assert.equal(m.data[m.index(4, 5, 1)], 1);
  assert.equal(m.data[m.index(3, 4, 1)], 0); // outline pixel
  assert.equal(m.data[m.index(4, 5, 0)], 0);
});

test('lidc command: bad XML, no XML, bad agreement, bad series: exit 1, one line, no output file', () => {
  const cases: Array<[string, string[], RegExp]> = [
    [lidcFolder('lidc-badxml', '<LidcReadMessage><oops></LidcReadMessage>'), [], /001\.xml: malformed XML/],
    [lidcFolder('lidc-noxml', null), [], /no LIDC XML \(\.xml\) beside the series/],
    [lidcFolder('lidc-otherxml', lidcXml('1.2.3.999')), [], /no LIDC XML for series/],
    [lidcFolder('lidc-agree', lidcXml(SERIES)), ['--agreement', 'most'], /--agreement: expected a fraction/],
    [lidcFolder('lidc-nodule', lidcXml(SERIES)), ['--nodule', '7'], /--nodule: no nodule 7/],
    [series('lidc-gap', [{ z: 0 }, { z: 2 }, { z: 6 }]), [], /gap in the series/],
    // The NIfTI is written first, then the PNG fails: the NIfTI must be removed again.
    [lidcFolder('lidc-blocked', lidcXml(SERIES)), ['--png', join(put('blocker-file', 'x'), 'm.png')], /blocker-file\/m\.png: cannot/],
  ];
  const outDir = (folder: string) => join(dir, `${folder.split('/').pop()}-out`);
  const results = runCliBatch(cases.map(([folder, extra]) => ['lidc', folder, '--output', join(outDir(folder), 'm.nii.gz'), ...extra]));
  for (const [n, [folder, , reason]] of cases.entries()) {
    const r = results[n]!;
    assert.equal(r.code, 1, `${folder}: ${r.stderr}`);
    assert.match(r.stderr, /^noduleseg: [^\n]+\n$/);
    assert.match(r.stderr, reason);
    assert.equal(r.stdout, '', 'nothing listed when the command fails');
    assert.ok(!existsSync(join(outDir(folder), 'm.nii.gz')), 'no output file');
  }
});

test('a failed write leaves no file and no temporary file behind', async () => {
  const d = join(dir, 'w');
  mkdirSync(d);
  writeFileSync(join(d, 'blocker'), 'x');
  // The target's folder is a file: the write must fail cleanly.
  assert.throws(
    () => writeNifti(join(d, 'blocker', 'm.nii.gz'), good),
    (e) => isUserError(e) && /blocker\/m\.nii\.gz: cannot (write|create its folder)/.test(e.message),
  );
  await assert.rejects(writeItkImage(join(d, 'blocker', 'm.mhd'), good), (e) => isUserError(e));
  assert.throws(() => writeNifti(join(d, 'm.txt'), good), /must end in \.nii or \.nii\.gz/);
  assert.deepEqual(readdirSync(d), ['blocker']);
});

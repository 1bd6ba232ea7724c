// The valid files the property test mutates: small ones synthesised with the project's own writers
// (always there), and real ones from ../shared/data (LIDC-IDRI-0001) when it is present.
import dicomParser from 'dicom-parser';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { lidcCropsDir, lidcScansDir, missingDataReason } from '../../src/data/paths.ts';
import { readNifti, Volume, writeItkImage, writeNifti, type Vec3 } from '../../src/io/index.ts';
import { writeFakeSeries } from '../io/helpers.ts';

export type Base = 'synthetic' | 'real';

export interface ImageBase {
  /** Uncompressed NIfTI-1 bytes of the image and of a 0/1 mask on its grid. */
  niftiImage: Uint8Array;
  niftiMask: Uint8Array;
  /** MetaImage header text (without its ElementDataFile line) and voxel bytes, image and mask. */
  metaImage: { header: string; data: Uint8Array };
  metaMask: { header: string; data: Uint8Array };
  /** A world point (LPS mm) near the middle, for segment --point. */
  pointMm: Vec3;
}

export interface SeriesBase {
  /** File name -> bytes, in slice order. */
  slices: Array<[string, Uint8Array]>;
  xmlName: string;
  xml: string;
  pointMm: Vec3;
}

export interface Fixtures {
  images: Partial<Record<Base, ImageBase>>;
  series: Partial<Record<Base, SeriesBase>>;
  /** Why the real files are left out, or null. */
  realMissing: string | null;
}

const REAL_CASE = 'LIDC-IDRI-0001_R_1';
/** Slices of LIDC-IDRI-0001 through its large nodule (world z, mm) and a point inside it. */
const REAL_SLICES_Z = [-122.5, -120, -117.5, -115, -112.5];
const REAL_POINT_MM: Vec3 = [56.4, 86.3, -116.0];

async function metaOf(dir: string, name: string, vol: Volume): Promise<{ header: string; data: Uint8Array }> {
  await writeItkImage(join(dir, `${name}.mhd`), vol);
  const text = readFileSync(join(dir, `${name}.mhd`), 'utf8');
  const dataFile = /^ElementDataFile\s*=\s*(.*?)\s*$/m.exec(text)![1]!;
  return { header: text.replace(/^ElementDataFile.*$/m, ''), data: new Uint8Array(readFileSync(join(dir, dataFile))) };
}

/** A 20x18x8 int16 crop: lung-like background with a soft-tissue sphere in the middle. */
function syntheticVolumes(): { image: Volume; mask: Volume } {
  const dims: Vec3 = [20, 18, 8];
  const spacingMm: Vec3 = [0.7, 0.7, 1.25];
  const image = new Int16Array(dims[0] * dims[1] * dims[2]);
  const mask = new Uint8Array(image.length);
  for (let k = 0, n = 0; k < dims[2]; k++) {
    for (let j = 0; j < dims[1]; j++) {
      for (let i = 0; i < dims[0]; i++, n++) {
        const rMm = Math.hypot((i - 9.5) * spacingMm[0], (j - 8.5) * spacingMm[1], (k - 3.5) * spacingMm[2]);
        mask[n] = rMm < 3.5 ? 1 : 0;
        image[n] = mask[n] ? 30 + ((i * 7 + j * 3) % 20) : -850 + ((i + j + k) % 30);
      }
    }
  }
  const geometry = { dims, spacingMm, originMm: [-10, -20, 30] as Vec3 };
  return { image: new Volume({ data: image, ...geometry }), mask: new Volume({ data: mask, ...geometry }) };
}

/** An LIDC read of a series whose slices have SOP UIDs `${sopPrefix}${k + 1}` at z = zOf(k). */
export function syntheticLidcXml(seriesUid: string, sopPrefix: string, zOf: (k: number) => number): string {
  const square = (x0: number, y0: number, n: number) => {
    const pts: Array<[number, number]> = [];
    for (let x = x0; x < x0 + n; x++) pts.push([x, y0]);
    for (let y = y0 + 1; y < y0 + n; y++) pts.push([x0 + n - 1, y]);
    for (let x = x0 + n - 2; x >= x0; x--) pts.push([x, y0 + n - 1]);
    for (let y = y0 + n - 2; y > y0; y--) pts.push([x0, y]);
    return pts.map(([x, y]) => `<edgeMap><xCoord>${x}</xCoord><yCoord>${y}</yCoord></edgeMap>`).join('');
  };
  const roi = (k: number, inclusion = 'TRUE', size = 6) =>
    `<roi><imageZposition>${zOf(k)}</imageZposition><imageSOP_UID>${sopPrefix}${k + 1}</imageSOP_UID><inclusion>${inclusion}</inclusion>${square(5, 4, size)}</roi>`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<LidcReadMessage xmlns="http://www.nih.gov"><ResponseHeader><SeriesInstanceUid>${seriesUid}</SeriesInstanceUid><StudyInstanceUID>1.2.3</StudyInstanceUID></ResponseHeader>
<readingSession><servicingRadiologistID>r1</servicingRadiologistID><unblindedReadNodule><noduleID>N1</noduleID><characteristics><subtlety>4</subtlety><texture>5</texture><malignancy>4</malignancy></characteristics>${roi(2)}${roi(3)}${roi(3, 'FALSE', 3)}</unblindedReadNodule>
<nonNodule><nonNoduleID>nn</nonNoduleID><imageZposition>${zOf(0)}</imageZposition><imageSOP_UID>${sopPrefix}1</imageSOP_UID><locus><xCoord>1</xCoord><yCoord>1</yCoord></locus></nonNodule></readingSession>
<readingSession><servicingRadiologistID>r2</servicingRadiologistID><unblindedReadNodule><noduleID>N2</noduleID><characteristics><malignancy>3</malignancy></characteristics>${roi(2)}${roi(4)}</unblindedReadNodule>
<unblindedReadNodule><noduleID>S1</noduleID><roi><imageZposition>${zOf(5)}</imageZposition><imageSOP_UID>${sopPrefix}6</imageSOP_UID><inclusion>TRUE</inclusion><edgeMap><xCoord>9</xCoord><yCoord>9</yCoord></edgeMap></roi></unblindedReadNodule></readingSession>
</LidcReadMessage>
`;
}

function realSeriesDir(): string {
  let d = join(lidcScansDir(), 'LIDC-IDRI-0001');
  for (let i = 0; i < 2; i++) d = join(d, readdirSync(d).find((n) => !n.startsWith('.'))!);
  return d;
}

/** `real: false` leaves the shared data alone (the regression tests need only the synthetic files). */
export async function loadFixtures(dir: string, options: { real?: boolean } = {}): Promise<Fixtures> {
  mkdirSync(dir, { recursive: true });
  const images: Fixtures['images'] = {};
  const series: Fixtures['series'] = {};

  const syn = syntheticVolumes();
  writeNifti(join(dir, 'syn.nii'), syn.image);
  writeNifti(join(dir, 'syn-mask.nii'), syn.mask);
  images.synthetic = {
    niftiImage: new Uint8Array(readFileSync(join(dir, 'syn.nii'))),
    niftiMask: new Uint8Array(readFileSync(join(dir, 'syn-mask.nii'))),
    metaImage: await metaOf(dir, 'syn', syn.image),
    metaMask: await metaOf(dir, 'syn-mask', syn.mask),
    pointMm: syn.image.voxelToWorld([9.5, 8.5, 3.5]),
  };

  const synSeriesDir = join(dir, 'syn-series');
  const zOf = (k: number) => 2 * k;
  const files = writeFakeSeries(
    synSeriesDir,
    [0, 1, 2, 3, 4, 5].map((k) => ({ z: zOf(k), rows: 16, cols: 20 })),
  );
  series.synthetic = {
    slices: files.map((f) => [f.split('/').pop()!, new Uint8Array(readFileSync(f))]),
    xmlName: '001.xml',
    xml: syntheticLidcXml('1.2.826.0.1.3680043.10.1453.8.1', '1.2.826.0.1.3680043.10.1453.9.', zOf),
    // Columns 0.75 mm apart from x = -10, rows 0.5 mm apart from y = -20 (writeFakeSeries).
    pointMm: [-10 + 8 * 0.75, -20 + 7 * 0.5, 5],
  };

  const realMissing = options.real === false ? 'not asked for' : (missingDataReason(lidcCropsDir()) ?? missingDataReason(lidcScansDir()));
  if (realMissing === null) {
    const image = gunzipSync(readFileSync(join(lidcCropsDir(), 'image', `${REAL_CASE}.nii.gz`)));
    const mask = gunzipSync(readFileSync(join(lidcCropsDir(), 'mask', `${REAL_CASE}.nii.gz`)));
    const imageVol = readNifti(join(lidcCropsDir(), 'image', `${REAL_CASE}.nii.gz`));
    const maskVol = readNifti(join(lidcCropsDir(), 'mask', `${REAL_CASE}.nii.gz`));
    images.real = {
      niftiImage: new Uint8Array(image),
      niftiMask: new Uint8Array(mask),
      metaImage: await metaOf(dir, 'real', imageVol),
      metaMask: await metaOf(dir, 'real-mask', maskVol),
      pointMm: imageVol.voxelToWorld(imageVol.dims.map((d) => (d - 1) / 2)),
    };
    const sdir = realSeriesDir();
    const byZ = new Map<number, [string, Uint8Array]>();
    let xmlName = '';
    for (const name of readdirSync(sdir)) {
      if (name.endsWith('.xml')) xmlName = name;
      if (!name.endsWith('.dcm')) continue;
      const bytes = new Uint8Array(readFileSync(join(sdir, name)));
      // The header is enough to place the slice: stop before the pixels.
      const ds = dicomParser.parseDicom(bytes, { untilTag: 'x7fe00010' });
      const z = Number((ds.string('x00200032') ?? '').split('\\')[2]);
      byZ.set(z, [name, bytes]);
    }
    series.real = {
      slices: REAL_SLICES_Z.map((z) => byZ.get(z)!),
      xmlName,
      xml: readFileSync(join(sdir, xmlName), 'utf8'),
      pointMm: REAL_POINT_MM,
    };
  }
  return { images, series, realMissing };
}

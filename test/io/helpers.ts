// Small fabricated inputs for the io tests, written to temporary folders.
import dcmjs from 'dcmjs';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDicomSeries } from '../../src/io/index.ts';
import type { Volume } from '../../src/io/volume.ts';

export function tempDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `noduleseg-${tag}-`));
}

export interface FakeSlice {
  z: number;
  modality?: string;
  series?: string;
  instance?: number;
  rows?: number;
  cols?: number;
  slope?: number;
  intercept?: number;
  /** Drop the last bytes of the file (a truncated copy). */
  truncateBy?: number;
  /** Store the pixels RLE Lossless compressed (transfer syntax 1.2.840.10008.1.2.5). */
  rle?: boolean;
}

/** PackBits as DICOM RLE uses it (PS3.5 G.3.1), literal runs only: valid, if not small. */
function packBits(src: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < src.length; i += 128) {
    const n = Math.min(128, src.length - i);
    out.push(n - 1, ...src.subarray(i, i + n));
  }
  if (out.length % 2) out.push(0);
  return out;
}

/** One RLE frame of int16 pixels: a 64-byte header, then the high-byte and low-byte segments. */
function rleFrame(px: Int16Array): ArrayBuffer {
  const hi = Uint8Array.from(px, (v) => (v >> 8) & 255);
  const lo = Uint8Array.from(px, (v) => v & 255);
  const s1 = packBits(hi);
  const s2 = packBits(lo);
  const out = new Uint8Array(64 + s1.length + s2.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 2, true);
  dv.setUint32(4, 64, true);
  dv.setUint32(8, 64 + s1.length, true);
  out.set(s1, 64);
  out.set(s2, 64 + s1.length);
  return out.buffer;
}

/** Writes single-frame CT-like DICOM files (int16, 4x3 by default) with dcmjs. */
export function writeFakeSeries(dir: string, slices: FakeSlice[]): string[] {
  mkdirSync(dir, { recursive: true });
  return slices.map((s, n) => {
    const rows = s.rows ?? 3;
    const cols = s.cols ?? 4;
    const px = new Int16Array(rows * cols).map((_, i) => i + 10 * n);
    const sop = `1.2.826.0.1.3680043.10.1453.9.${n + 1}`;
    const series = s.series ?? '1.2.826.0.1.3680043.10.1453.8.1';
    const ds = {
      SOPClassUID: '1.2.840.10008.5.1.4.1.1.2',
      SOPInstanceUID: sop,
      Modality: s.modality ?? 'CT',
      SeriesInstanceUID: series,
      StudyInstanceUID: '1.2.826.0.1.3680043.10.1453.7.1',
      FrameOfReferenceUID: '1.2.826.0.1.3680043.10.1453.6.1',
      PatientID: 'FAKE',
      PatientName: 'Fake^Patient',
      PatientBirthDate: '19600101',
      PatientSex: 'F',
      StudyTime: '101500',
      InstanceNumber: s.instance ?? n + 1,
      ImagePositionPatient: [-10, -20, s.z],
      ImageOrientationPatient: [1, 0, 0, 0, 1, 0],
      PixelSpacing: [0.5, 0.75],
      SliceThickness: 2,
      Rows: rows,
      Columns: cols,
      BitsAllocated: 16,
      BitsStored: 16,
      HighBit: 15,
      PixelRepresentation: 1,
      SamplesPerPixel: 1,
      PhotometricInterpretation: 'MONOCHROME2',
      RescaleSlope: s.slope ?? 1,
      RescaleIntercept: s.intercept ?? -1024,
      PixelData: [s.rle ? rleFrame(px) : px.buffer],
      _vrMap: { PixelData: s.rle ? 'OB' : 'OW' },
    };
    const meta = dcmjs.data.DicomMetaDictionary.denaturalizeDataset({
      MediaStorageSOPClassUID: ds.SOPClassUID,
      MediaStorageSOPInstanceUID: sop,
      TransferSyntaxUID: s.rle ? '1.2.840.10008.1.2.5' : '1.2.840.10008.1.2.1',
      ImplementationClassUID: '1.2.826.0.1.3680043.10.1453.1',
    });
    const dict = new dcmjs.data.DicomDict(meta);
    dict.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(ds);
    let bytes = new Uint8Array(dict.write({ fragmentMultiframe: false }));
    if (s.truncateBy) bytes = bytes.subarray(0, bytes.length - s.truncateBy);
    const file = join(dir, `IM${String(n + 1).padStart(4, '0')}.dcm`);
    writeFileSync(file, bytes);
    return file;
  });
}

/** A NIfTI-1 header (348 bytes + 4 extension bytes) with the given fields, little endian. */
/** A small CT series (10 x 12, four slices 2 mm apart) written under `dir`/ct and read back. */
export async function smallFakeCt(dir: string): Promise<Volume> {
  writeFakeSeries(
    join(dir, 'ct'),
    [0, 2, 4, 6].map((z) => ({ z, rows: 12, cols: 10 })),
  );
  return (await readDicomSeries(join(dir, 'ct'))).volume;
}

export function niftiHeader(o: {
  dims: number[];
  datatype?: number;
  bitpix?: number;
  pixdim?: number[];
  qform?: number;
  sform?: number;
}): Uint8Array {
  const b = new Uint8Array(352);
  const dv = new DataView(b.buffer);
  dv.setInt32(0, 348, true);
  dv.setInt16(40, o.dims.length, true);
  o.dims.forEach((d, a) => {
    dv.setInt16(42 + 2 * a, d, true);
  });
  for (let a = o.dims.length; a < 7; a++) dv.setInt16(42 + 2 * a, 1, true);
  dv.setInt16(70, o.datatype ?? 4, true);
  dv.setInt16(72, o.bitpix ?? 16, true);
  const pix = o.pixdim ?? [1, 1, 1, 1];
  pix.forEach((p, a) => {
    dv.setFloat32(76 + 4 * a, p, true);
  });
  dv.setFloat32(108, 352, true);
  dv.setFloat32(112, 1, true);
  dv.setInt16(252, o.qform ?? 1, true);
  dv.setInt16(254, o.sform ?? 0, true);
  b.set([0x6e, 0x2b, 0x31, 0], 344);
  return b;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs command lines through test/io/cli-runner.ts in one child process. */
export function runCliBatch(cases: string[][]): CliResult[] {
  const d = tempDir('cli');
  writeFileSync(join(d, 'cases.json'), JSON.stringify(cases));
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'cli-runner.ts'), join(d, 'cases.json'), join(d, 'results.json')],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(readFileSync(join(d, 'results.json'), 'utf8')) as CliResult[];
}

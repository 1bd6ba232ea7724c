/**
 * A CT series from a folder of single-frame DICOM files, through dicom-parser.
 *
 * dicom-parser gives the elements; what no library does for us here is the series logic: pick
 * the series, order slices along the slice normal (not by InstanceNumber or file name, which
 * scanners do not keep consistent), check the spacing, and apply each slice's rescale (ITK's
 * series reader applies the first slice's rescale to all slices, which is wrong when they differ).
 * Compressed pixel data (JPEG, JPEG 2000, RLE...) is decoded file by file by @itk-wasm/dicom
 * (GDCM), which applies that file's own rescale.
 */
import dicomParser from 'dicom-parser';
import { readImageDicomFileSeriesNode } from '@itk-wasm/dicom';
import { quietly } from './itk.ts';
import { readdirSync, readFileSync, type Stats, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { describeFsError } from './atomic.ts';
import { cross, dot, refuseBadGeometry, refuseNonFinite, Volume, type DicomSeriesRef, type Mat3, type Vec3 } from './volume.ts';

const UNCOMPRESSED = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.2']);

export interface DicomSeriesSummary {
  seriesInstanceUid: string;
  modality: string;
  description: string;
  files: number;
}

export interface DicomReadOptions {
  /** Which series, when the folder holds several. */
  seriesUid?: string;
  /**
   * Accept uneven slice spacing up to this fraction of the median step (default 0.01); larger
   * deviations are refused. A step over 1.5 steps is always a gap (missing slices).
   */
  spacingTolerance?: number;
}

export interface DicomSeriesResult {
  volume: Volume;
  /** Files in volume slice order (k = 0 first). */
  files: string[];
  /** Non-fatal findings worth telling the user, one line each (e.g. slightly uneven spacing). */
  warnings: string[];
  /** Series found in the folder, the chosen one included. */
  seriesInFolder: DicomSeriesSummary[];
}

interface SliceHeader {
  file: string;
  ds: dicomParser.DataSet;
  bytes: Uint8Array;
}

/** Every file under `dir` (three levels deep at most: patient/study/series). */
function listFiles(dir: string, depth = 0): string[] {
  const out: string[] = [];
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) {
      if (depth < 3) out.push(...listFiles(p, depth + 1));
    } else if (ent.isFile()) out.push(p);
  }
  return out.sort();
}

function isPart10(bytes: Uint8Array): boolean {
  return bytes.length > 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

function str(ds: dicomParser.DataSet, tag: string): string {
  return (ds.string(tag) ?? '').trim();
}

function nums(ds: dicomParser.DataSet, tag: string): number[] {
  const s = ds.string(tag);
  if (!s) return [];
  return s.split('\\').map((x) => Number.parseFloat(x));
}

/** Lists the series of a folder without decoding pixels. */
export function listDicomSeries(dir: string): DicomSeriesSummary[] {
  return summarise(scanFolder(dir).slices);
}

function summarise(slices: SliceHeader[]): DicomSeriesSummary[] {
  const by = new Map<string, DicomSeriesSummary>();
  for (const s of slices) {
    const uid = str(s.ds, 'x0020000e');
    const cur = by.get(uid) ?? { seriesInstanceUid: uid, modality: str(s.ds, 'x00080060'), description: str(s.ds, 'x0008103e'), files: 0 };
    cur.files++;
    by.set(uid, cur);
  }
  return [...by.values()];
}

function scanFolder(dir: string): { slices: SliceHeader[]; skipped: number } {
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (e) {
    throw new UserError(`${dir}: cannot read (${describeFsError(e)})`, { cause: e });
  }
  if (!st.isDirectory()) throw new UserError(`${dir}: not a folder (a DICOM series is read from its folder)`);
  const slices: SliceHeader[] = [];
  let skipped = 0;
  for (const file of listFiles(dir)) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(file);
    } catch {
      skipped++;
      continue;
    }
    // Only Part 10 files (with the DICM preamble) are considered; XML and other files are skipped.
    if (!isPart10(bytes)) {
      skipped++;
      continue;
    }
    let ds: dicomParser.DataSet;
    try {
      ds = dicomParser.parseDicom(bytes);
    } catch (e) {
      const msg = typeof e === 'string' ? e : e instanceof Error ? e.message : 'parse error';
      throw new UserError(`${file}: corrupt or truncated DICOM file (${msg.split('\n')[0]})`, { cause: e });
    }
    if (!ds.elements['x7fe00010']) {
      skipped++; // no pixels: SR, presentation state, SEG without frames...
      continue;
    }
    slices.push({ file, ds, bytes });
  }
  return { slices, skipped };
}

export async function readDicomSeries(dir: string, options: DicomReadOptions = {}): Promise<DicomSeriesResult> {
  const { slices: all } = scanFolder(dir);
  if (all.length === 0) throw new UserError(`${dir}: no DICOM images in this folder`);
  const seriesInFolder = summarise(all);
  let uid = options.seriesUid;
  if (uid === undefined) {
    if (seriesInFolder.length > 1) {
      const list = seriesInFolder
        .map((s) => `${s.seriesInstanceUid} (${s.modality}, ${s.files} files${s.description ? `, ${s.description}` : ''})`)
        .join('; ');
      throw new UserError(`${dir}: ${seriesInFolder.length} series in this folder, choose one: ${list}`);
    }
    uid = seriesInFolder[0]!.seriesInstanceUid;
  }
  const slices = all.filter((s) => str(s.ds, 'x0020000e') === uid);
  if (slices.length === 0) throw new UserError(`${dir}: no series ${uid} in this folder`);
  const first = slices[0]!;
  const modality = str(first.ds, 'x00080060');
  if (modality !== 'CT') throw new UserError(`${first.file}: modality is ${modality || 'missing'}, only CT is supported`);

  const warnings: string[] = [];
  const rows = first.ds.uint16('x00280010') ?? 0;
  const cols = first.ds.uint16('x00280011') ?? 0;
  const iop = nums(first.ds, 'x00200037');
  const ps = nums(first.ds, 'x00280030');
  if (rows < 1 || cols < 1) throw new UserError(`${first.file}: missing Rows/Columns`);
  if (iop.length !== 6 || iop.some((x) => !Number.isFinite(x)))
    throw new UserError(`${first.file}: missing or invalid ImageOrientationPatient`);
  if (ps.length !== 2 || ps.some((x) => !(x > 0)))
    throw new UserError(`${first.file}: pixel spacing must be positive, got "${str(first.ds, 'x00280030')}"`);
  const rowDir: Vec3 = [iop[0]!, iop[1]!, iop[2]!];
  const colDir: Vec3 = [iop[3]!, iop[4]!, iop[5]!];
  const normal = cross(rowDir, colDir);
  // Two orthogonal unit vectors, else the slice normal and every position along it are wrong.
  if (Math.abs(dot(rowDir, colDir)) > 1e-3)
    throw new UserError(`${first.file}: ImageOrientationPatient "${str(first.ds, 'x00200037')}" is not two orthogonal directions`);
  refuseBadGeometry(
    first.file,
    [ps[1]!, ps[0]!, 1],
    [0, 0, 0],
    [rowDir[0], colDir[0], normal[0], rowDir[1], colDir[1], normal[1], rowDir[2], colDir[2], normal[2]],
  );

  const placed = slices.map((s) => {
    const ipp = nums(s.ds, 'x00200032');
    if (ipp.length !== 3 || ipp.some((x) => !Number.isFinite(x))) throw new UserError(`${s.file}: missing or invalid ImagePositionPatient`);
    const o = nums(s.ds, 'x00200037');
    if (o.length !== 6 || o.some((x, n) => Math.abs(x - iop[n]!) > 1e-4))
      throw new UserError(`${s.file}: orientation differs from the rest of the series`);
    if ((s.ds.uint16('x00280010') ?? 0) !== rows || (s.ds.uint16('x00280011') ?? 0) !== cols)
      throw new UserError(`${s.file}: image size differs from the rest of the series`);
    if ((s.ds.intString('x00280008') ?? 1) > 1) throw new UserError(`${s.file}: multi-frame DICOM is not supported`);
    return { ...s, ipp: ipp as Vec3, d: dot(normal, ipp) };
  });
  placed.sort((a, b) => a.d - b.d);

  let sliceStep: number;
  if (placed.length === 1) {
    sliceStep = first.ds.floatString('x00180088') ?? first.ds.floatString('x00180050') ?? 1;
    if (!(sliceStep > 0)) sliceStep = 1;
    warnings.push(`${dir}: one slice only; slice spacing taken as ${sliceStep} mm`);
  } else {
    const steps = placed.slice(1).map((p, n) => p.d - placed[n]!.d);
    const dup = steps.findIndex((s) => s < 1e-3);
    if (dup >= 0)
      throw new UserError(`${placed[dup + 1]!.file}: two slices at the same position (${placed[dup]!.d.toFixed(3)} mm along the normal)`);
    const sorted = [...steps].sort((a, b) => a - b);
    // Lower median: with few slices a gap must not become the expected step.
    const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
    const gapAt = steps.findIndex((s) => s > 1.5 * median);
    if (gapAt >= 0) {
      const missing = Math.round(steps[gapAt]! / median) - 1;
      throw new UserError(
        `${dir}: gap in the series: about ${missing} slice(s) missing between ${placed[gapAt]!.file} and ${placed[gapAt + 1]!.file} (${steps[gapAt]!.toFixed(3)} mm step, ${median.toFixed(3)} mm expected)`,
      );
    }
    const tol = options.spacingTolerance ?? 0.01;
    const worst = Math.max(...steps.map((s) => Math.abs(s - median)));
    const span = placed[placed.length - 1]!.d - placed[0]!.d;
    sliceStep = span / (placed.length - 1);
    if (worst > tol * median) {
      throw new UserError(
        `${dir}: uneven slice spacing (steps from ${sorted[0]!.toFixed(3)} to ${sorted[sorted.length - 1]!.toFixed(3)} mm); resample it first or raise the tolerance`,
      );
    }
    if (worst > 1e-3)
      warnings.push(
        `${dir}: slightly uneven slice spacing (up to ${worst.toFixed(4)} mm off ${median.toFixed(4)} mm); using the mean step ${sliceStep.toFixed(4)} mm`,
      );
  }

  // Voxels: i along a row (rowDir), j down the columns (colDir), k along the normal.
  const n = rows * cols;
  // Every slice's pixels are checked before the volume is allocated: Rows and Columns come from
  // the header, and a damaged one could ask for terabytes. A compressed slice is checked by
  // decoding it (the decoder reports the true size); the first one is decoded here for that.
  const pixels = placed.map((s) => {
    const ts = str(s.ds, 'x00020010');
    if (!UNCOMPRESSED.has(ts)) return null;
    const el = s.ds.elements['x7fe00010']!;
    const bits = s.ds.uint16('x00280100') ?? 16;
    const signed = (s.ds.uint16('x00280103') ?? 0) === 1;
    if ((s.ds.uint16('x00280002') ?? 1) !== 1) throw new UserError(`${s.file}: colour images are not CT`);
    if (bits !== 16 && bits !== 8) throw new UserError(`${s.file}: ${bits}-bit pixels are not supported`);
    const bpp = bits / 8;
    if (el.length < n * bpp || el.dataOffset + n * bpp > s.bytes.length)
      throw new UserError(`${s.file}: truncated pixel data (${Math.min(el.length, s.bytes.length - el.dataOffset)} of ${n * bpp} bytes)`);
    const slope = s.ds.floatString('x00281053') ?? 1;
    const inter = s.ds.floatString('x00281052') ?? 0;
    // floatString gives NaN for text that is not a number: that would make every voxel NaN.
    if (!Number.isFinite(slope) || !Number.isFinite(inter)) {
      throw new UserError(
        `${s.file}: RescaleSlope "${str(s.ds, 'x00281053')}" and RescaleIntercept "${str(s.ds, 'x00281052')}" must be finite numbers`,
      );
    }
    return { el, bpp, signed, slope, inter, le: ts !== '1.2.840.10008.1.2.2' };
  });
  const firstCompressed = pixels.indexOf(null);
  const decodedFirst = firstCompressed >= 0 ? await decodeCompressed(placed[firstCompressed]!.file, cols, rows) : null;
  const raw = new Float64Array(n * placed.length);
  let integral = true;
  let lo = Infinity;
  let hi = -Infinity;
  for (const [k, s] of placed.entries()) {
    const off = k * n;
    const px = pixels[k]!;
    if (px === null) {
      // Values come back rescaled by the file's own slope/intercept.
      const hu = k === firstCompressed ? decodedFirst! : await decodeCompressed(s.file, cols, rows);
      for (let p = 0; p < n; p++) {
        const v = hu[p]!;
        raw[off + p] = v;
        if (!Number.isInteger(v)) integral = false;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      continue;
    }
    const { el, bpp, signed, slope, inter, le } = px;
    if (!Number.isInteger(slope) || !Number.isInteger(inter)) integral = false;
    const dv = new DataView(s.bytes.buffer, s.bytes.byteOffset + el.dataOffset, n * bpp);
    for (let p = 0; p < n; p++) {
      const v = bpp === 2 ? (signed ? dv.getInt16(2 * p, le) : dv.getUint16(2 * p, le)) : signed ? dv.getInt8(p) : dv.getUint8(p);
      const hu = v * slope + inter;
      raw[off + p] = hu;
      if (hu < lo) lo = hu;
      if (hu > hi) hi = hu;
    }
  }
  const data = integral && lo >= -32768 && hi <= 32767 ? Int16Array.from(raw) : Float32Array.from(raw);
  // A huge slope overflows float32 to infinity.
  refuseNonFinite(data, dir);

  const direction: Mat3 = [rowDir[0], colDir[0], normal[0], rowDir[1], colDir[1], normal[1], rowDir[2], colDir[2], normal[2]];
  refuseBadGeometry(dir, [ps[1]!, ps[0]!, sliceStep], placed[0]!.ipp, direction);
  const ds0 = placed[0]!.ds;
  const series: DicomSeriesRef = {
    studyInstanceUid: str(ds0, 'x0020000d'),
    seriesInstanceUid: uid,
    frameOfReferenceUid: str(ds0, 'x00200052'),
    sopClassUid: str(ds0, 'x00080016'),
    sopInstanceUids: placed.map((p) => str(p.ds, 'x00080018')),
    patientId: str(ds0, 'x00100020'),
    patientName: str(ds0, 'x00100010'),
    studyDate: str(ds0, 'x00080020'),
    studyId: str(ds0, 'x00200010'),
    accessionNumber: str(ds0, 'x00080050'),
    patientBirthDate: str(ds0, 'x00100030'),
    patientSex: str(ds0, 'x00100040'),
    studyTime: str(ds0, 'x00080030'),
    referringPhysicianName: str(ds0, 'x00080090'),
  };
  const volume = new Volume({
    data,
    dims: [cols, rows, placed.length],
    // PixelSpacing is (between rows, between columns): i steps across columns.
    spacingMm: [ps[1]!, ps[0]!, sliceStep],
    originMm: placed[0]!.ipp,
    direction,
    modality: 'CT',
    source: { format: 'dicom', path: dir, series },
  });
  return { volume, files: placed.map((p) => p.file), warnings, seriesInFolder };
}

/** One compressed single-frame file through GDCM (itk-wasm): its pixels, rescaled. */
async function decodeCompressed(file: string, cols: number, rows: number): Promise<ArrayLike<number>> {
  let data: unknown;
  let size: number[];
  try {
    const r = await quietly(() => readImageDicomFileSeriesNode({ inputImages: [file], singleSortedSeries: true }));
    data = r.outputImage.data;
    size = r.outputImage.size;
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split('\n').find((l) => l.trim()) ?? 'decoder failed';
    throw new UserError(`${file}: cannot decode the compressed pixel data (${msg.trim()})`, { cause: e });
  }
  if (size[0] !== cols || size[1] !== rows || !data || typeof data !== 'object' || !('length' in data)) {
    throw new UserError(`${file}: the decoder returned ${size.join('x')} pixels, expected ${cols}x${rows}`);
  }
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) throw new UserError(`${file}: 64-bit pixels are not supported`);
  return data as ArrayLike<number>;
}

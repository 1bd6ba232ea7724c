/**
 * MetaImage (.mhd/.mha + .raw/.zraw), NRRD (.nrrd/.nhdr) and NIfTI-2 through @itk-wasm/image-io.
 * ITK images are already LPS with a row-major direction, like Volume.
 */
import { readImageNode, writeImageNode, type Image } from '@itk-wasm/image-io';
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { UserError } from '../errors.ts';
import { describeFsError, writeFilesAtomic } from './atomic.ts';
import { isItkPath } from './formats.ts';
import { refuseBadGeometry, refuseNonFinite, Volume, type Mat3, type Vec3, type VoxelArray } from './volume.ts';

export { isItkPath } from './formats.ts';

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return (
    m
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.length > 0) ?? 'unreadable'
  );
}

export async function readItkImage(path: string): Promise<Volume> {
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new UserError(`${path}: is a folder, expected an image file`);
    if (st.size === 0) throw new UserError(`${path}: empty file`);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${path}: cannot read (${describeFsError(e)})`, { cause: e });
  }
  checkHeader(path);
  let img: Image;
  try {
    img = await quietly(() => readImageNode(path));
  } catch (e) {
    throw new UserError(`${path}: not a readable image (${firstLine(e)})`, { cause: e });
  }
  return fromItkImage(img, path);
}

/**
 * itk-wasm prints a failing pipeline's exception with console.log/console.error before it
 * throws; we report the failure ourselves in one line, so those two are muted for the call.
 * (Only the console functions: the process streams, which other code may be using, are not.)
 */
export async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const log = console.log;
  const error = console.error;
  console.log = () => undefined;
  console.error = () => undefined;
  try {
    return await fn();
  } finally {
    console.log = log;
    console.error = error;
  }
}

const META_BYTES: Record<string, number> = {
  MET_CHAR: 1,
  MET_UCHAR: 1,
  MET_SHORT: 2,
  MET_USHORT: 2,
  MET_INT: 4,
  MET_UINT: 4,
  MET_LONG: 4,
  MET_ULONG: 4,
  MET_LONG_LONG: 8,
  MET_ULONG_LONG: 8,
  MET_FLOAT: 4,
  MET_DOUBLE: 8,
};
const NRRD_BYTES: Record<string, number> = {
  'signed char': 1,
  int8: 1,
  int8_t: 1,
  uchar: 1,
  'unsigned char': 1,
  uint8: 1,
  uint8_t: 1,
  short: 2,
  'short int': 2,
  'signed short': 2,
  'signed short int': 2,
  int16: 2,
  int16_t: 2,
  ushort: 2,
  'unsigned short': 2,
  'unsigned short int': 2,
  uint16: 2,
  uint16_t: 2,
  int: 4,
  'signed int': 4,
  int32: 4,
  int32_t: 4,
  uint: 4,
  'unsigned int': 4,
  uint32: 4,
  uint32_t: 4,
  float: 4,
  double: 8,
  longlong: 8,
  int64: 8,
  int64_t: 8,
  ulonglong: 8,
  uint64: 8,
  uint64_t: 8,
};

/**
 * Reads the text header of a MetaImage or NRRD file and checks what ITK would only report as an
 * opaque exception: dimensions, 4D, spacing, and that the voxel data is all there.
 */
function checkHeader(path: string): void {
  const fd = openSync(path, 'r');
  let head: string;
  try {
    const b = Buffer.alloc(65536);
    const n = readSync(fd, b, 0, b.length, 0);
    head = b.subarray(0, n).toString('latin1');
  } finally {
    closeSync(fd);
  }
  const ext = extname(path).toLowerCase();
  if (ext === '.mhd' || ext === '.mha') checkMeta(path, head);
  else checkNrrd(path, head);
}

function positiveInts(path: string, what: string, v: string | undefined): number[] {
  const xs = (v ?? '')
    .trim()
    .split(/\s+/)
    .filter((t) => t.length > 0)
    .map(Number);
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < 1)) throw new UserError(`${path}: invalid ${what} "${v ?? ''}"`);
  return xs;
}

function checkDims(path: string, dims: number[]): void {
  if (dims.length > 3 && dims.slice(3).some((d) => d > 1))
    throw new UserError(`${path}: ${dims.length}D image [${dims.join(', ')}] is not supported; noduleseg reads 3D volumes`);
  if (dims.length < 2) throw new UserError(`${path}: ${dims.length}D image is not a volume`);
}

function checkSpacing(path: string, spacing: number[]): void {
  if (spacing.some((x) => !(x > 0))) throw new UserError(`${path}: voxel spacing must be positive, got [${spacing.join(', ')}]`);
}

function checkMeta(path: string, head: string): void {
  const end = head.search(/^ElementDataFile\s*=.*$/m);
  if (end < 0) throw new UserError(`${path}: not a MetaImage header (no ElementDataFile)`);
  const lineEnd = head.indexOf('\n', end);
  const fields = new Map<string, string>();
  for (const line of head.slice(0, lineEnd < 0 ? head.length : lineEnd).split(/\r?\n/)) {
    const m = /^\s*(\w+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) fields.set(m[1]!, m[2]!);
  }
  const dims = positiveInts(path, 'DimSize', fields.get('DimSize'));
  const nd = Number(fields.get('NDims'));
  if (nd !== dims.length) throw new UserError(`${path}: NDims = ${fields.get('NDims')} but DimSize has ${dims.length} values`);
  checkDims(path, dims);
  const sp = fields.get('ElementSpacing') ?? fields.get('ElementSize');
  if (sp !== undefined) checkSpacing(path, sp.trim().split(/\s+/).map(Number));
  const bytes = META_BYTES[fields.get('ElementType') ?? ''];
  if (!bytes) throw new UserError(`${path}: unsupported ElementType "${fields.get('ElementType') ?? ''}"`);
  if ((fields.get('ElementNumberOfChannels') ?? '1') !== '1') throw new UserError(`${path}: multi-channel images are not supported`);
  const compressed = /^true$/i.test(fields.get('CompressedData') ?? 'False');
  const dataFile = fields.get('ElementDataFile')!;
  const need = dims.reduce((a, b) => a * b, 1) * bytes;
  let have: number;
  if (dataFile === 'LOCAL') {
    have = statSync(path).size - (lineEnd < 0 ? head.length : lineEnd + 1);
  } else if (/^LIST|%/.test(dataFile)) {
    return; // slice lists and patterns: left to ITK
  } else {
    const p = join(dirname(path), dataFile);
    if (!existsSync(p)) throw new UserError(`${path}: its data file ${dataFile} is missing`);
    have = statSync(p).size;
    if (have === 0) throw new UserError(`${p}: empty data file`);
  }
  if (!compressed && have < need)
    throw new UserError(`${path}: truncated voxel data (${have} of ${need} bytes for DimSize ${dims.join(' ')})`);
}

function checkNrrd(path: string, head: string): void {
  if (!/^NRRD000\d/.test(head)) throw new UserError(`${path}: not a NRRD file (no NRRD000x magic)`);
  const blank = head.search(/\r?\n\r?\n/);
  const headerText = blank < 0 ? head : head.slice(0, blank);
  const fields = new Map<string, string>();
  for (const line of headerText.split(/\r?\n/).slice(1)) {
    if (line.startsWith('#')) continue;
    const m = /^([^:]+):=?\s*(.*?)\s*$/.exec(line);
    if (m) fields.set(m[1]!.trim().toLowerCase(), m[2]!);
  }
  const dims = positiveInts(path, 'sizes', fields.get('sizes'));
  if (Number(fields.get('dimension')) !== dims.length)
    throw new UserError(`${path}: dimension = ${fields.get('dimension')} but sizes has ${dims.length} values`);
  checkDims(path, dims);
  const spacings = fields.get('spacings');
  if (spacings !== undefined)
    checkSpacing(
      path,
      spacings
        .split(/\s+/)
        .filter((t) => t !== 'nan' && t !== 'NaN')
        .map(Number),
    );
  const dirs = fields.get('space directions');
  if (dirs !== undefined) {
    const vecs = [...dirs.matchAll(/\(([^)]*)\)/g)].map((m) => m[1]!.split(',').map(Number));
    checkSpacing(
      path,
      vecs.map((v) => Math.hypot(...v)),
    );
  }
  const bytes = NRRD_BYTES[(fields.get('type') ?? '').toLowerCase()];
  if (!bytes) throw new UserError(`${path}: unsupported NRRD type "${fields.get('type') ?? ''}"`);
  const encoding = (fields.get('encoding') ?? 'raw').toLowerCase();
  if (encoding !== 'raw' || blank < 0) return; // compressed or detached: left to ITK
  const dataFile = fields.get('data file') ?? fields.get('datafile');
  const need = dims.reduce((a, b) => a * b, 1) * bytes;
  let have: number;
  if (dataFile) {
    const p = join(dirname(path), dataFile);
    if (!existsSync(p)) throw new UserError(`${path}: its data file ${dataFile} is missing`);
    have = statSync(p).size;
  } else {
    const sep = /\r?\n\r?\n/.exec(head)!;
    have = statSync(path).size - Buffer.byteLength(head.slice(0, sep.index + sep[0].length), 'latin1');
  }
  if (have < need) throw new UserError(`${path}: truncated voxel data (${have} of ${need} bytes for sizes ${dims.join(' ')})`);
}

export function fromItkImage(img: Image, path: string): Volume {
  const dim = img.imageType.dimension;
  const size = [...img.size];
  if (img.imageType.components !== 1)
    throw new UserError(`${path}: ${img.imageType.components}-component pixels are not supported; expected a scalar image`);
  if (dim > 3 && size.slice(3).some((s) => s > 1))
    throw new UserError(`${path}: ${dim}D image [${size.join(', ')}] is not supported; noduleseg reads 3D volumes`);
  if (dim < 2) throw new UserError(`${path}: ${dim}D image is not a volume`);
  const dims: Vec3 = [size[0]!, size[1]!, size[2] ?? 1];
  const spacingMm: Vec3 = [img.spacing[0]!, img.spacing[1]!, img.spacing[2] ?? 1];
  if (spacingMm.some((s) => !(s > 0))) throw new UserError(`${path}: voxel spacing must be positive, got [${spacingMm.join(', ')}]`);
  const originMm: Vec3 = [img.origin[0]!, img.origin[1]!, img.origin[2] ?? 0];
  const direction = [1, 0, 0, 0, 1, 0, 0, 0, 1] as Mat3;
  for (let r = 0; r < Math.min(dim, 3); r++)
    for (let c = 0; c < Math.min(dim, 3); c++) direction[3 * r + c] = Number(img.direction[r * dim + c]);
  refuseBadGeometry(path, spacingMm, originMm, direction);
  const data = img.data as VoxelArray | null;
  if (!data) throw new UserError(`${path}: no voxel data`);
  if (data.length !== dims[0] * dims[1] * dims[2])
    throw new UserError(`${path}: voxel data (${data.length}) does not match dims [${dims.join(', ')}]`);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array)
    throw new UserError(`${path}: 64-bit integer voxels are not supported`);
  refuseNonFinite(data, path);
  return new Volume({ data, dims, spacingMm, originMm, direction, source: { format: 'itk', path } });
}

const COMPONENT: Record<string, string> = {
  Int8Array: 'int8',
  Uint8Array: 'uint8',
  Int16Array: 'int16',
  Uint16Array: 'uint16',
  Int32Array: 'int32',
  Uint32Array: 'uint32',
  Float32Array: 'float32',
  Float64Array: 'float64',
};

/** itk-wasm's Image is a plain data class, so a structurally equal object literal is one. */
export function toItkImage(vol: Volume): Image {
  const componentType = COMPONENT[vol.data.constructor.name] as Image['imageType']['componentType'];
  return {
    imageType: { dimension: 3, componentType, pixelType: 'Scalar', components: 1 },
    name: 'Image',
    origin: [...vol.originMm],
    spacing: [...vol.spacingMm],
    direction: new Float64Array(vol.direction),
    size: [...vol.dims],
    metadata: new Map(),
    data: vol.data,
  };
}

/** Writes MetaImage or NRRD (by the extension) atomically, header and data file together. */
export async function writeItkImage(path: string, vol: Volume, options: { compress?: boolean } = {}): Promise<void> {
  if (!isItkPath(path)) throw new UserError(`${path}: expected .mhd, .mha, .nrrd or .nhdr`);
  await writeFilesAtomic(path, async (tmpPath) => {
    await writeImageNode(toItkImage(vol), tmpPath, { useCompression: options.compress ?? false });
    const dir = tmpPath.slice(0, tmpPath.length - basename(tmpPath).length);
    const names = readdirSync(dir);
    if (!existsSync(tmpPath)) throw new Error('the writer produced no file');
    return names;
  });
}

/**
 * NIfTI-1 (.nii, .nii.gz) read and write.
 *
 * Written by hand on purpose: @itk-wasm/image-io reads NIfTI correctly but starts a WebAssembly
 * pipeline per call (about 30 ms a file here), so the 1,604 files of lidc-crops took about 50 s;
 * this reader takes about 1 ms a file. Its output is checked against itk-wasm in the tests.
 * NIfTI-2 files go through itk-wasm.
 */
import { isNiftiPath } from './formats.ts';
import { gunzipSync, gzipSync } from 'node:zlib';
import { readFileSync, statSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { describeFsError, writeFileAtomic } from './atomic.ts';
import { refuseBadGeometry, refuseNonFinite, Volume, type Mat3, type Vec3, type VoxelArray } from './volume.ts';

const HEADER_BYTES = 348;

const DATATYPES: Record<number, { bytes: number; name: string }> = {
  2: { bytes: 1, name: 'uint8' },
  4: { bytes: 2, name: 'int16' },
  8: { bytes: 4, name: 'int32' },
  16: { bytes: 4, name: 'float32' },
  64: { bytes: 8, name: 'float64' },
  256: { bytes: 1, name: 'int8' },
  512: { bytes: 2, name: 'uint16' },
  768: { bytes: 4, name: 'uint32' },
};

export { isNiftiPath };

/** Reads the whole file, gunzipping when it starts with the gzip magic. */
function readMaybeGz(path: string): Uint8Array {
  let raw: Buffer;
  try {
    if (statSync(path).isDirectory()) throw new UserError(`${path}: is a folder, expected a NIfTI file`);
    raw = readFileSync(path);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${path}: cannot read (${describeFsError(e)})`, { cause: e });
  }
  if (raw.length === 0) throw new UserError(`${path}: empty file`);
  if (raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return gunzipSync(raw);
    } catch (e) {
      throw new UserError(`${path}: truncated or corrupt gzip data (${describeFsError(e)})`, { cause: e });
    }
  }
  return raw;
}

/** Is this NIfTI-2 (540-byte header)? Then the caller hands it to itk-wasm. */
export function niftiVersion(bytes: Uint8Array): 1 | 2 | 0 {
  if (bytes.length < 4) return 0;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = dv.getInt32(0, true);
  const be = dv.getInt32(0, false);
  if (le === 348 || be === 348) return 1;
  if (le === 540 || be === 540) return 2;
  return 0;
}

export interface NiftiReadOptions {
  /** Skip applying scl_slope/scl_inter (masks never need it). Default false. */
  raw?: boolean;
}

/** Decodes a NIfTI-1 file already in memory (gunzipped). `path` only names it in errors. */
export function decodeNifti1(bytes: Uint8Array, path: string, options: NiftiReadOptions = {}): Volume {
  if (bytes.length < HEADER_BYTES) throw new UserError(`${path}: truncated NIfTI header (${bytes.length} of 348 bytes)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let le = true;
  if (dv.getInt32(0, true) !== HEADER_BYTES) {
    if (dv.getInt32(0, false) !== HEADER_BYTES) throw new UserError(`${path}: not a NIfTI-1 file (bad header size)`);
    le = false;
  }
  const magic = String.fromCharCode(bytes[344]!, bytes[345]!, bytes[346]!);
  if (magic !== 'n+1' && magic !== 'ni1') throw new UserError(`${path}: not a NIfTI-1 file (magic "${magic}")`);
  if (magic === 'ni1') throw new UserError(`${path}: two-file NIfTI (.hdr/.img) is not supported; convert it to .nii`);
  const i16 = (o: number) => dv.getInt16(o, le);
  const f32 = (o: number) => dv.getFloat32(o, le);

  const ndim = i16(40);
  if (ndim < 1 || ndim > 7) throw new UserError(`${path}: invalid NIfTI dim[0] = ${ndim}`);
  const dim = [1, 1, 1, 1, 1, 1, 1];
  for (let a = 0; a < ndim; a++) dim[a] = i16(42 + 2 * a);
  if (dim.some((d) => d < 1)) throw new UserError(`${path}: invalid dimensions [${dim.slice(0, ndim).join(', ')}]`);
  if (ndim > 3 && dim.slice(3).some((d) => d > 1)) {
    throw new UserError(`${path}: ${ndim}D image [${dim.slice(0, ndim).join(', ')}] is not supported; noduleseg reads 3D volumes`);
  }
  const datatype = i16(70);
  const dt = DATATYPES[datatype];
  if (!dt) throw new UserError(`${path}: unsupported NIfTI datatype ${datatype}`);
  const pixdim = [0, 0, 0, 0].map((_, a) => f32(76 + 4 * a)) as [number, number, number, number];
  for (let a = 1; a <= 3; a++) {
    if (!(pixdim[a]! > 0) || !Number.isFinite(pixdim[a]!)) {
      throw new UserError(`${path}: voxel spacing must be positive, got pixdim[${a}] = ${pixdim[a]}`);
    }
  }
  const voxOffset = Math.max(HEADER_BYTES, Math.floor(f32(108)));
  const dims: Vec3 = [dim[0]!, dim[1]!, dim[2]!];
  const n = dims[0] * dims[1] * dims[2];
  const need = voxOffset + n * dt.bytes;
  if (bytes.length < need) {
    throw new UserError(
      `${path}: truncated voxel data (${bytes.length - voxOffset} of ${n * dt.bytes} bytes for dims [${dims.join(', ')}] ${dt.name})`,
    );
  }
  const data = decodeVoxels(bytes, voxOffset, n, datatype, le);

  const geom = niftiGeometry(dv, le, pixdim, path);
  refuseBadGeometry(path, geom.spacingMm, geom.originMm, geom.direction);
  let out: VoxelArray = data;
  const slope = f32(112);
  const inter = f32(116);
  if (!options.raw && slope !== 0 && Number.isFinite(slope) && (slope !== 1 || inter !== 0)) out = rescale(data, slope, inter);
  refuseNonFinite(out, path);

  return new Volume({
    data: out,
    dims,
    spacingMm: geom.spacingMm,
    originMm: geom.originMm,
    direction: geom.direction,
    modality: 'unknown',
    source: { format: 'nifti', path, header: new Uint8Array(bytes.subarray(0, HEADER_BYTES)) },
  });
}

function decodeVoxels(bytes: Uint8Array, offset: number, n: number, datatype: number, le: boolean): VoxelArray {
  const nativeLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  const bpv = DATATYPES[datatype]!.bytes;
  // Copy into a fresh aligned buffer; the typed array views it directly when byte order matches.
  // (Buffer.slice would share memory, so copy explicitly.)
  const copy = new Uint8Array(n * bpv);
  copy.set(bytes.subarray(offset, offset + n * bpv));
  const buf = copy.buffer;
  if (bpv > 1 && le !== nativeLE) {
    const u8 = new Uint8Array(buf);
    for (let p = 0; p < u8.length; p += bpv) u8.subarray(p, p + bpv).reverse();
  }
  switch (datatype) {
    case 2:
      return new Uint8Array(buf);
    case 4:
      return new Int16Array(buf);
    case 8:
      return new Int32Array(buf);
    case 16:
      return new Float32Array(buf);
    case 64:
      return new Float64Array(buf);
    case 256:
      return new Int8Array(buf);
    case 512:
      return new Uint16Array(buf);
    default:
      return new Uint32Array(buf);
  }
}

/** Applies scl_slope/scl_inter; keeps int16 when the result is integral and fits (CT in HU). */
function rescale(data: VoxelArray, slope: number, inter: number): VoxelArray {
  const integral = Number.isInteger(slope) && Number.isInteger(inter) && !(data instanceof Float32Array || data instanceof Float64Array);
  if (integral) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let n = 0; n < data.length; n++) {
      const v = data[n]! * slope + inter;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (lo >= -32768 && hi <= 32767) {
      const out = new Int16Array(data.length);
      for (let n = 0; n < data.length; n++) out[n] = data[n]! * slope + inter;
      return out;
    }
  }
  const out = new Float32Array(data.length);
  for (let n = 0; n < data.length; n++) out[n] = data[n]! * slope + inter;
  return out;
}

interface Geometry {
  spacingMm: Vec3;
  originMm: Vec3;
  direction: Mat3;
}

/**
 * The voxel-to-world transform, as the NIfTI-1 standard orders it: the sform when sform_code > 0,
 * else the qform when qform_code > 0, else pixdim scaling alone. NIfTI world is RAS; we return LPS
 * (x and y negated), the convention of DICOM and ITK.
 */
function niftiGeometry(dv: DataView, le: boolean, pixdim: number[], path: string): Geometry {
  const f32 = (o: number) => dv.getFloat32(o, le);
  const qformCode = dv.getInt16(252, le);
  const sformCode = dv.getInt16(254, le);
  let m: number[]; // 3x4 RAS affine, row-major
  if (sformCode > 0) {
    m = [
      ...[0, 1, 2, 3].map((c) => f32(280 + 4 * c)),
      ...[0, 1, 2, 3].map((c) => f32(296 + 4 * c)),
      ...[0, 1, 2, 3].map((c) => f32(312 + 4 * c)),
    ];
  } else if (qformCode > 0) {
    const b = f32(256);
    const c = f32(260);
    const d = f32(264);
    let a = 1 - (b * b + c * c + d * d);
    a = a < 1e-7 ? 0 : Math.sqrt(a);
    const qfac = pixdim[0]! < 0 ? -1 : 1;
    const R = [
      a * a + b * b - c * c - d * d,
      2 * (b * c - a * d),
      2 * (b * d + a * c),
      2 * (b * c + a * d),
      a * a + c * c - b * b - d * d,
      2 * (c * d - a * b),
      2 * (b * d - a * c),
      2 * (c * d + a * b),
      a * a + d * d - c * c - b * b,
    ];
    const s = [pixdim[1]!, pixdim[2]!, pixdim[3]! * qfac];
    const q = [f32(268), f32(272), f32(276)];
    m = [];
    for (let r = 0; r < 3; r++) m.push(R[3 * r]! * s[0]!, R[3 * r + 1]! * s[1]!, R[3 * r + 2]! * s[2]!, q[r]!);
  } else {
    // Method 1 of the standard (no orientation): pixdim only. ITK maps it the same way.
    m = [pixdim[1]!, 0, 0, 0, 0, pixdim[2]!, 0, 0, 0, 0, pixdim[3]!, 0];
  }
  const spacingMm: Vec3 = [0, 0, 0];
  const direction = [0, 0, 0, 0, 0, 0, 0, 0, 0] as Mat3;
  for (let c = 0; c < 3; c++) {
    const col = [m[c]!, m[4 + c]!, m[8 + c]!];
    const len = Math.hypot(col[0]!, col[1]!, col[2]!);
    if (!(len > 0) || !Number.isFinite(len))
      throw new UserError(`${path}: voxel spacing must be positive (axis ${c} of the ${sformCode > 0 ? 'sform' : 'qform'} is zero)`);
    // pixdim holds the spacing as stored; prefer it when the affine agrees (as ITK does), so
    // float32 round-off in the affine does not change it.
    const p = pixdim[c + 1]!;
    spacingMm[c] = Math.abs(len - p) <= 1e-4 * p ? p : len;
    // RAS -> LPS: negate the x and y rows.
    // (+ 0 turns -0 into 0, for tidy printing.)
    direction[c] = -col[0]! / len + 0;
    direction[3 + c] = -col[1]! / len + 0;
    direction[6 + c] = col[2]! / len + 0;
  }
  return { spacingMm, originMm: [-m[3]!, -m[7]!, m[11]!], direction };
}

/** Reads a NIfTI-1 file (.nii or .nii.gz). NIfTI-2 is left to the caller (itk-wasm). */
export function readNifti(path: string, options: NiftiReadOptions = {}): Volume {
  const bytes = readMaybeGz(path);
  const v = niftiVersion(bytes);
  if (v === 2) throw new UserError(`${path}: NIfTI-2 file; read it with readVolume`);
  if (v === 0)
    throw new UserError(
      bytes.length < 4 ? `${path}: truncated NIfTI header (${bytes.length} of 348 bytes)` : `${path}: not a NIfTI file (bad header size)`,
    );
  return decodeNifti1(bytes, path, options);
}

export function readNiftiBytes(path: string): Uint8Array {
  return readMaybeGz(path);
}

const WRITE_TYPES = new Map<string, { code: number; bytes: number }>([
  ['Uint8Array', { code: 2, bytes: 1 }],
  ['Int16Array', { code: 4, bytes: 2 }],
  ['Int32Array', { code: 8, bytes: 4 }],
  ['Float32Array', { code: 16, bytes: 4 }],
  ['Float64Array', { code: 64, bytes: 8 }],
  ['Int8Array', { code: 256, bytes: 1 }],
  ['Uint16Array', { code: 512, bytes: 2 }],
  ['Uint32Array', { code: 768, bytes: 4 }],
]);

/**
 * Encodes a volume as NIfTI-1. When the volume came from a NIfTI file, its header is reused for
 * the geometry fields (qform, sform, pixdim, codes) byte for byte, so a mask lies on its source
 * grid exactly; otherwise both qform and sform are written from the volume's geometry.
 */
export function encodeNifti(vol: Volume): Uint8Array {
  const t = WRITE_TYPES.get(vol.data.constructor.name);
  if (!t) throw new TypeError(`encodeNifti: unsupported voxel array ${vol.data.constructor.name}`);
  const header = new Uint8Array(HEADER_BYTES);
  const dv = new DataView(header.buffer);
  const src = vol.source?.format === 'nifti' ? vol.source.header : undefined;
  const srcLE = src ? new DataView(src.buffer, src.byteOffset, src.byteLength).getInt32(0, true) === HEADER_BYTES : true;
  const sameDims = src
    ? [0, 1, 2].every((a) => new DataView(src.buffer, src.byteOffset, 348).getInt16(42 + 2 * a, srcLE) === vol.dims[a])
    : false;
  if (src && srcLE && sameDims) {
    header.set(src);
  } else {
    writeGeometry(dv, vol);
  }
  dv.setInt32(0, HEADER_BYTES, true);
  dv.setInt16(40, 3, true);
  for (let a = 0; a < 3; a++) dv.setInt16(42 + 2 * a, vol.dims[a]!, true);
  for (let a = 3; a < 7; a++) dv.setInt16(42 + 2 * a, 1, true);
  dv.setInt16(70, t.code, true);
  dv.setInt16(72, t.bytes * 8, true);
  for (let a = 4; a < 8; a++) dv.setFloat32(76 + 4 * a, 0, true);
  dv.setFloat32(108, 352, true);
  dv.setFloat32(112, 1, true); // scl_slope: voxels are stored as they are
  dv.setFloat32(116, 0, true);
  dv.setFloat32(124, 0, true); // cal_max/min
  dv.setFloat32(128, 0, true);
  dv.setUint8(123, 2 | 8); // mm, seconds
  header.set([0x6e, 0x2b, 0x31, 0], 344); // "n+1\0"
  const out = new Uint8Array(352 + vol.data.byteLength);
  out.set(header, 0);
  out.set(new Uint8Array(vol.data.buffer, vol.data.byteOffset, vol.data.byteLength), 352);
  return out;
}

function writeGeometry(dv: DataView, vol: Volume): void {
  const d = vol.direction;
  // LPS -> RAS for the file.
  const R = [-d[0], -d[1], -d[2], -d[3], -d[4], -d[5], d[6], d[7], d[8]];
  const det = R[0]! * (R[4]! * R[8]! - R[5]! * R[7]!) - R[1]! * (R[3]! * R[8]! - R[5]! * R[6]!) + R[2]! * (R[3]! * R[7]! - R[4]! * R[6]!);
  const qfac = det < 0 ? -1 : 1;
  if (qfac < 0) for (const r of [2, 5, 8]) R[r] = -R[r]!;
  const [b, c, dd] = matrixToQuaternion(R);
  const o = [-vol.originMm[0], -vol.originMm[1], vol.originMm[2]];
  dv.setFloat32(76, qfac, true);
  for (let a = 0; a < 3; a++) dv.setFloat32(80 + 4 * a, vol.spacingMm[a]!, true);
  dv.setInt16(252, 1, true); // qform_code: scanner
  dv.setInt16(254, 1, true); // sform_code: scanner
  dv.setFloat32(256, b, true);
  dv.setFloat32(260, c, true);
  dv.setFloat32(264, dd, true);
  for (let a = 0; a < 3; a++) dv.setFloat32(268 + 4 * a, o[a]!, true);
  for (let r = 0; r < 3; r++) {
    for (let col = 0; col < 3; col++) {
      const sign = r < 2 ? -1 : 1;
      dv.setFloat32(280 + 16 * r + 4 * col, sign * d[3 * r + col]! * vol.spacingMm[col]!, true);
    }
    dv.setFloat32(280 + 16 * r + 12, o[r]!, true);
  }
}

/** Quaternion (b, c, d) of a proper rotation, as nifti_mat44_to_quatern does. */
function matrixToQuaternion(R: number[]): [number, number, number] {
  const [r11, r12, r13, r21, r22, r23, r31, r32, r33] = R as [number, number, number, number, number, number, number, number, number];
  let a = r11 + r22 + r33 + 1;
  let b: number;
  let c: number;
  let d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33);
    const yd = 1 + r22 - (r11 + r33);
    const zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r12 + r21)) / b;
      d = (0.25 * (r13 + r31)) / b;
      a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r12 + r21)) / c;
      d = (0.25 * (r23 + r32)) / c;
      a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r13 + r31)) / d;
      c = (0.25 * (r23 + r32)) / d;
      a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) {
      b = -b;
      c = -c;
      d = -d;
    }
  }
  return [b, c, d];
}

/** The bytes of a NIfTI-1 file for `path` (gzipped when it ends in .gz). */
export function encodeNiftiFile(path: string, vol: Volume): Uint8Array {
  if (!isNiftiPath(path)) throw new UserError(`${path}: a NIfTI output must end in .nii or .nii.gz`);
  const bytes = encodeNifti(vol);
  return /\.gz$/i.test(path) ? gzipSync(bytes, { level: 6 }) : bytes;
}

/** Writes a volume as NIfTI-1 (.nii or .nii.gz by the name), atomically. */
export function writeNifti(path: string, vol: Volume): void {
  writeFileAtomic(path, encodeNiftiFile(path, vol));
}

/** A uint8 mask on `reference`'s grid, written with the reference's geometry exactly. */
export function writeNiftiMask(path: string, mask: Uint8Array, reference: Volume): void {
  if (mask.length !== reference.voxelCount) {
    throw new RangeError(`writeNiftiMask: mask has ${mask.length} voxels, the reference grid ${reference.voxelCount}`);
  }
  writeNifti(path, reference.withData(mask, 'SEG'));
}

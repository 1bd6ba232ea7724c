/**
 * The safetensors file format (https://github.com/huggingface/safetensors), on plain typed arrays.
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON (padded with spaces so the data
 * starts 8-byte aligned), then the tensors' little-endian bytes back to back. The header maps each
 * tensor name to {dtype, shape, data_offsets:[begin, end]} (offsets relative to the data section);
 * an optional "__metadata__" entry is a string-to-string map.
 *
 * Writing mirrors the reference Rust implementation: tensors are laid out by dtype (widest first,
 * so every tensor is aligned to its element size), then by name, and the JSON is compact.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../errors.ts';

/** Element types, named as in the engine's `DType`. */
export type DType = 'float32' | 'float64' | 'int16' | 'int32' | 'int64' | 'uint8' | 'bool';

/** bool is stored one byte per element (0 or 1), as in safetensors and PyTorch. */
export type TypedArrayFor<D extends DType> = D extends 'float32'
  ? Float32Array
  : D extends 'float64'
    ? Float64Array
    : D extends 'int16'
      ? Int16Array
      : D extends 'int32'
        ? Int32Array
        : D extends 'int64'
          ? BigInt64Array
          : Uint8Array;

export type StTypedArray = Float32Array | Float64Array | Int16Array | Int32Array | BigInt64Array | Uint8Array;

export interface StEntry {
  dtype: DType;
  shape: number[];
  data: StTypedArray;
}

export interface StFile {
  /** Tensors in file order (by data offset). */
  tensors: Map<string, StEntry>;
  metadata: Record<string, string>;
}

interface DTypeInfo {
  code: string;
  size: number;
  /** Position in the Rust `Dtype` enum; the writer sorts by it, descending. */
  rank: number;
  make: (n: number) => StTypedArray;
  accepts: (a: StTypedArray) => boolean;
}

const DTYPES: Record<DType, DTypeInfo> = {
  bool: { code: 'BOOL', size: 1, rank: 0, make: (n) => new Uint8Array(n), accepts: (a) => a instanceof Uint8Array },
  uint8: { code: 'U8', size: 1, rank: 1, make: (n) => new Uint8Array(n), accepts: (a) => a instanceof Uint8Array },
  int16: { code: 'I16', size: 2, rank: 5, make: (n) => new Int16Array(n), accepts: (a) => a instanceof Int16Array },
  int32: { code: 'I32', size: 4, rank: 9, make: (n) => new Int32Array(n), accepts: (a) => a instanceof Int32Array },
  float32: {
    code: 'F32',
    size: 4,
    rank: 11,
    make: (n) => new Float32Array(n),
    accepts: (a) => a instanceof Float32Array,
  },
  float64: {
    code: 'F64',
    size: 8,
    rank: 12,
    make: (n) => new Float64Array(n),
    accepts: (a) => a instanceof Float64Array,
  },
  int64: {
    code: 'I64',
    size: 8,
    rank: 13,
    make: (n) => new BigInt64Array(n),
    accepts: (a) => a instanceof BigInt64Array,
  },
};

const CODE_TO_DTYPE = new Map<string, DType>((Object.keys(DTYPES) as DType[]).map((d) => [DTYPES[d].code, d] as const));

/** The safetensors code ("F32", ...) for a dtype. */
export function safetensorsDTypeCode(d: DType): string {
  return DTYPES[d].code;
}

export function dtypeByteSize(d: DType): number {
  return DTYPES[d].size;
}

/** Same limit as the reference reader: a larger header is treated as corruption. */
const MAX_HEADER_BYTES = 100_000_000;
const HOST_LE = os.endianness() === 'LE';

function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

function validShape(shape: unknown): shape is number[] {
  return Array.isArray(shape) && shape.every((s) => Number.isSafeInteger(s) && (s as number) >= 0);
}

/** Copy `n` elements of `size` bytes, swapping byte order when the host is big-endian. */
function copyLE(src: Uint8Array, dst: Uint8Array, size: number): void {
  if (HOST_LE || size === 1) {
    dst.set(src);
    return;
  }
  for (let i = 0; i < src.length; i += size) {
    for (let j = 0; j < size; j++) dst[i + j] = src[i + size - 1 - j]!;
  }
}

function bytesOf(a: StTypedArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Serialise to the exact bytes of a safetensors file. */
export function encodeSafetensors(entries: Record<string, StEntry> | Map<string, StEntry>, metadata?: Record<string, string>): Uint8Array {
  const list = entries instanceof Map ? [...entries] : Object.entries(entries);
  for (const [name, e] of list) {
    if (name === '__metadata__') throw new Error(`safetensors: "__metadata__" is reserved, not a tensor name`);
    const info = DTYPES[e.dtype];
    if (info === undefined) throw new Error(`safetensors: tensor "${name}" has unsupported dtype ${String(e.dtype)}`);
    if (!validShape(e.shape)) throw new Error(`safetensors: tensor "${name}" has invalid shape ${JSON.stringify(e.shape)}`);
    if (!info.accepts(e.data)) {
      throw new Error(`safetensors: tensor "${name}" is ${e.dtype} but its data is a ${e.data.constructor.name}`);
    }
    const n = numelOf(e.shape);
    if (e.data.length !== n) {
      throw new Error(`safetensors: tensor "${name}" has shape [${e.shape.join(', ')}] (${n} elements) but ${e.data.length} values`);
    }
  }
  list.sort(([na, a], [nb, b]) => DTYPES[b.dtype].rank - DTYPES[a.dtype].rank || (na < nb ? -1 : na > nb ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    const meta: Record<string, string> = {};
    for (const k of Object.keys(metadata).sort()) {
      const v = metadata[k];
      if (typeof v !== 'string') throw new Error(`safetensors: metadata "${k}" must be a string`);
      meta[k] = v;
    }
    header['__metadata__'] = meta;
  }
  let offset = 0;
  for (const [name, e] of list) {
    const nbytes = e.data.length * DTYPES[e.dtype].size;
    header[name] = { dtype: DTYPES[e.dtype].code, shape: e.shape, data_offsets: [offset, offset + nbytes] };
    offset += nbytes;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = json.length + ((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  let pos = 8 + padded;
  for (const [, e] of list) {
    const src = bytesOf(e.data);
    if (e.dtype === 'bool') {
      // Any non-zero byte is true; the format stores exactly 0 or 1.
      for (let i = 0; i < src.length; i++) out[pos + i] = src[i] !== 0 ? 1 : 0;
    } else {
      copyLE(src, out.subarray(pos, pos + src.length), DTYPES[e.dtype].size);
    }
    pos += src.length;
  }
  return out;
}

/**
 * Write a safetensors file atomically: a temporary file in the same directory, fsync, rename.
 * A reader never sees a half-written file, and a crash leaves the previous file intact.
 */
export function writeSafetensors(
  file: string,
  entries: Record<string, StEntry> | Map<string, StEntry>,
  metadata?: Record<string, string>,
): void {
  const bytes = encodeSafetensors(entries, metadata);
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', 0o644);
    let written = 0;
    while (written < bytes.length) written += fs.writeSync(fd, bytes, written, bytes.length - written);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw new Error(`cannot write ${file}: ${(e as Error).message}`, { cause: e });
  }
  // Persist the rename itself; some file systems refuse fsync on a directory, which is harmless.
  try {
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    /* directory fsync unsupported */
  }
}

/** Parse safetensors bytes; `source` names the file in error messages. */
export function decodeSafetensors(bytes: Uint8Array, source = '<buffer>'): StFile {
  const fail = (reason: string): never => {
    throw new UserError(`${source}: not a valid safetensors file: ${reason}`);
  };
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, less than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n64} exceeds ${MAX_HEADER_BYTES} bytes`);
  const n = Number(n64);
  if (8 + n > bytes.length) fail(`truncated: header says ${n} bytes of JSON but the file has ${bytes.length - 8} after the length`);
  let headerText: string;
  try {
    headerText = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header is not a JSON object');
  const dataLen = bytes.length - 8 - n;
  const metadata: Record<string, string> = {};
  const found: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('"__metadata__" is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`"__metadata__" value for "${k}" is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`entry "${name}" is not an object`);
    const { dtype: code, shape, data_offsets: offs } = raw as Record<string, unknown>;
    const dtype = typeof code === 'string' ? CODE_TO_DTYPE.get(code) : undefined;
    if (dtype === undefined) fail(`tensor "${name}" has unsupported dtype ${JSON.stringify(code)}`);
    if (!validShape(shape)) fail(`tensor "${name}" has invalid shape ${JSON.stringify(shape)}`);
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((o) => Number.isSafeInteger(o) && (o as number) >= 0) ||
      (offs[0] as number) > (offs[1] as number)
    ) {
      fail(`tensor "${name}" has invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    if (end > dataLen) fail(`tensor "${name}" data_offsets [${begin}, ${end}] run past the ${dataLen} data bytes (truncated?)`);
    const want = numelOf(shape as number[]) * DTYPES[dtype as DType].size;
    if (end - begin !== want) {
      fail(`tensor "${name}" has ${end - begin} bytes but ${dtype} [${(shape as number[]).join(', ')}] needs ${want}`);
    }
    found.push({ name, dtype: dtype as DType, shape: shape as number[], begin, end });
  }
  // The data section must be covered exactly, without gaps or overlaps.
  found.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expect = 0;
  for (const t of found) {
    if (t.begin < expect) fail(`tensor "${t.name}" overlaps the previous tensor (starts at ${t.begin}, expected ${expect})`);
    if (t.begin > expect) fail(`gap in the data before tensor "${t.name}" (starts at ${t.begin}, expected ${expect})`);
    expect = t.end;
  }
  if (expect !== dataLen) fail(`tensors cover ${expect} data bytes but the file has ${dataLen} (trailing or missing data)`);

  const tensors = new Map<string, StEntry>();
  const dataStart = 8 + n;
  for (const t of found) {
    const info = DTYPES[t.dtype];
    // Copy into a fresh, aligned array: the file's data need not be aligned to the element size.
    const data = info.make((t.end - t.begin) / info.size);
    copyLE(bytes.subarray(dataStart + t.begin, dataStart + t.end), bytesOf(data), info.size);
    if (t.dtype === 'bool' && (data as Uint8Array).some((v) => v > 1)) fail(`tensor "${t.name}" (BOOL) holds a byte other than 0 or 1`);
    tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data });
  }
  return { tensors, metadata };
}

/** Read and validate a safetensors file; any defect throws an error naming the file and the reason. */
export function readSafetensors(file: string): StFile {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new UserError(`cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  return decodeSafetensors(bytes, file);
}

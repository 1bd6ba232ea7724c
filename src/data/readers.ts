/** Each radiologist's own mask of a crop (lidc-crops/readers/), their union and consensus. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { UserError } from '../errors.ts';
import { describeFsError } from '../io/atomic.ts';
import { decodeNifti1 } from '../io/nifti.ts';
import type { Volume } from '../io/volume.ts';
import { parseCsv } from './crops.ts';

export interface ReaderInfo {
  readers: number;
  /** Dice of the union of the reader masks against the crop's mask/ file. */
  unionDice: number;
  matched: boolean;
}

/** readers.csv by case id; an empty map when the folder has no readers/ data. */
export function readReaderIndex(cropsDir: string): Map<string, ReaderInfo> {
  const path = join(cropsDir, 'readers.csv');
  if (!existsSync(path)) return new Map();
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`${path}: cannot read (${describeFsError(e)})`, { cause: e });
  }
  return new Map(
    parseCsv(text, path).map((r) => [
      r['case']!,
      { readers: Number(r['n_readers']), unionDice: Number(r['union_dice']), matched: r['status'] === 'matched' },
    ]),
  );
}

/** The reader masks of one crop (0/1 on the crop's grid); [] when it has none. */
export function readReaderMasks(cropsDir: string, id: string, grid: Volume, count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let k = 0; k < count; k++) {
    const path = join(cropsDir, 'readers', `${id}_r${k}.nii.gz`);
    if (!existsSync(path)) continue;
    let raw: Buffer;
    try {
      raw = readFileSync(path);
    } catch (e) {
      throw new UserError(`${path}: cannot read (${describeFsError(e)})`, { cause: e });
    }
    let bytes: Uint8Array;
    try {
      bytes = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
    } catch (e) {
      throw new UserError(`${path}: truncated or corrupt gzip data`, { cause: e });
    }
    const v = decodeNifti1(bytes, path, { raw: true });
    if (!v.sameGrid(grid, 1e-3)) throw new UserError(`${path}: not on the grid of its crop`);
    out.push(Uint8Array.from(v.data as ArrayLike<number>, (x) => (x > 0 ? 1 : 0)));
  }
  return out;
}

/** Voxels marked by at least ceil(share * n) of the n masks (share 0.5: the 50% consensus). */
export function agreementMask(masks: readonly Uint8Array[], share = 0.5): Uint8Array {
  if (masks.length === 0) throw new RangeError('agreementMask: no masks');
  const need = Math.max(1, Math.ceil(share * masks.length - 1e-9));
  const n = masks[0]!.length;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let votes = 0;
    for (const m of masks) votes += m[i]!;
    out[i] = votes >= need ? 1 : 0;
  }
  return out;
}

/** Voxels marked by any of the masks. */
export function unionMask(masks: readonly Uint8Array[]): Uint8Array {
  return agreementMask(masks, 0);
}

/** Reader masks whose union scores below this against the crop's mask were not aligned well enough to use (the data README's rule). */
export const MIN_READER_UNION_DICE = 0.95;

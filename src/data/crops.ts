/**
 * The lidc-crops set in memory: every crop's image (int16 HU) and mask (uint8), decoded once.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { UserError } from '../errors.ts';
import { describeFsError } from '../io/atomic.ts';
import { decodeNifti1 } from '../io/nifti.ts';
import type { Vec3 } from '../io/volume.ts';
import type { Volume } from '../io/volume.ts';
import { lidcCropsDir, requireData } from './paths.ts';
import { noduleTypeOfTexture, type NoduleType } from './nodule-type.ts';
import { agreementMask, MIN_READER_UNION_DICE, readReaderIndex, readReaderMasks } from './readers.ts';

export type Split = 'train' | 'val';

export interface CropCase {
  /** e.g. "LIDC-IDRI-0001_R_1" */
  id: string;
  patientId: string;
  split: Split;
  /** int16 HU on the crop's grid. */
  image: Volume<Int16Array>;
  /** 0/1 on the same grid. */
  mask: Uint8Array;
  /** Nodule area per axial slice (mm2), from the mask. */
  sliceAreaMm2: Float64Array;
  /** The nodule's diameter from metadata.csv (mm). */
  diameterMm: number;
  /** Type from metadata.csv's Texture (null when unknown, and for negatives taken from whole scans). */
  noduleType: NoduleType | null;
  /**
   * With agreement labels: the share of the readers who marked each voxel (0..1), the training
   * target; `mask` and `sliceAreaMm2` are then the readers' 50% consensus. Absent: the target is
   * the mask (the union of the readers).
   */
  target?: Float32Array;
  /**
   * For a model with a prompt channel: where this case is prompted (voxels of the crop, any real
   * position). Negatives past a nodule's end carry that nodule's centre; absent: the crop's centre,
   * or in training a voxel of the nodule.
   */
  promptVoxel?: Vec3;
}

/**
 * What a crop's label is: the union of the readers (mask/), or their agreement (readers/):
 * 'agreement' is the share of the readers who marked the nodule, 'panel-agreement' the share of
 * LIDC's panel of four (see withAgreementLabels).
 */
export type CropLabels = 'union' | 'agreement' | 'panel-agreement';

/** Each LIDC scan was read by a panel of four radiologists. */
export const LIDC_PANEL_READERS = 4;

/** Minimal CSV (the set's files have no quoted fields; a quote is refused rather than misread). */
export function parseCsv(text: string, path: string): Array<Record<string, string>> {
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  if (lines.length === 0) throw new UserError(`${path}: empty CSV`);
  if (text.includes('"')) throw new UserError(`${path}: quoted CSV fields are not supported`);
  const head = lines[0]!.split(',');
  return lines.slice(1).map((l, n) => {
    const cells = l.split(',');
    if (cells.length !== head.length) throw new UserError(`${path}: line ${n + 2} has ${cells.length} fields, the header ${head.length}`);
    return Object.fromEntries(head.map((h, c) => [h, cells[c]!]));
  });
}

export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`${path}: cannot read (${describeFsError(e)})`, { cause: e });
  }
}

function readGz(path: string): Uint8Array {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (e) {
    throw new UserError(`${path}: cannot read (${describeFsError(e)})`, { cause: e });
  }
  try {
    return raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
  } catch (e) {
    throw new UserError(`${path}: truncated or corrupt gzip data`, { cause: e });
  }
}

export interface LoadCropsOptions {
  /** The lidc-crops folder; default from NODULESEG_DATA or ../shared/data. */
  dir?: string;
  /** Only these splits (default both). */
  splits?: Split[];
  /** At most this many cases, in splits.csv order (for quick runs and tests). */
  limit?: number;
  /**
   * 'union' (default): the mask/ files. 'agreement': for crops whose reader masks match their
   * mask (MIN_READER_UNION_DICE), the readers' share as the target and their 50% consensus as the
   * mask; the other crops keep the union.
   */
  labels?: CropLabels;
}

const cache = new Map<string, CropCase>();

/**
 * Loads the crops listed in splits.csv. Decoded crops are cached for the life of the process,
 * so a train and a val dataset built one after the other decode each file once.
 */
export function loadCrops(options: LoadCropsOptions = {}): CropCase[] {
  const dir = requireData(options.dir ?? lidcCropsDir());
  const splits = parseCsv(readText(join(dir, 'splits.csv')), join(dir, 'splits.csv'));
  const meta = new Map(parseCsv(readText(join(dir, 'metadata.csv')), join(dir, 'metadata.csv')).map((r) => [r['case']!, r]));
  const want = new Set<Split>(options.splits ?? ['train', 'val']);
  const labels = options.labels ?? 'union';
  const readerIndex = labels === 'union' ? null : readReaderIndex(dir);
  const out: CropCase[] = [];
  for (const row of splits) {
    const split = row['split'] as Split;
    if (split !== 'train' && split !== 'val')
      throw new UserError(`${join(dir, 'splits.csv')}: unknown split "${row['split']}" for ${row['case']}`);
    if (!want.has(split)) continue;
    if (options.limit !== undefined && out.length >= options.limit) break;
    const id = row['case']!;
    const key = `${dir}\u0000${id}\u0000${labels}`;
    let c = cache.get(key);
    if (!c) {
      const m = meta.get(id);
      c = decodeCropFiles(
        join(dir, 'image', `${id}.nii.gz`),
        join(dir, 'mask', `${id}.nii.gz`),
        id,
        row['patient_id']!,
        split,
        Number(m?.['diameter_mm'] ?? Number.NaN),
      );
      c.noduleType = noduleTypeOfTexture(m?.['Texture_value'] ?? m?.['Texture'] ?? '');
      const r = readerIndex?.get(id);
      if (r && r.readers > 0 && r.unionDice >= MIN_READER_UNION_DICE)
        withAgreementLabels(c, readReaderMasks(dir, id, c.image, r.readers), labels === 'panel-agreement' ? 'panel' : 'readers');
      cache.set(key, c);
    }
    out.push(c);
  }
  return out;
}

/** Decodes one crop (int16 HU image and its mask on the same grid) into a case. */
export function decodeCropFiles(
  imagePath: string,
  maskPath: string,
  id: string,
  patientId: string,
  split: Split,
  diameterMm: number,
): CropCase {
  const img = decodeNifti1(readGz(imagePath), imagePath);
  const m = decodeNifti1(readGz(maskPath), maskPath, { raw: true });
  if (!(img.data instanceof Int16Array)) throw new UserError(`${imagePath}: expected int16 HU voxels, got ${img.data.constructor.name}`);
  if (!img.sameGrid(m, 1e-3)) throw new UserError(`${maskPath}: mask grid differs from its image`);
  const mask = new Uint8Array(m.data.length);
  for (let n = 0; n < mask.length; n++) mask[n] = m.data[n]! > 0 ? 1 : 0;
  const sliceAreaMm2 = sliceAreasMm2(mask, img.dims, img.spacingMm);
  return {
    id,
    patientId,
    split,
    image: img as Volume<Int16Array>,
    mask,
    sliceAreaMm2,
    diameterMm,
    noduleType: null,
  };
}

/**
 * Turns a union-labelled case into an agreement-labelled one, in place, from its reader masks.
 * The mask becomes the readers' 50% consensus (at least ceil(n / 2) of the n who marked it).
 * The target is each voxel's count of readers over `share`:
 * - 'readers': over n. A voxel one reader drew is 1/3 in a nodule three readers marked, 1/4 in
 *   one four marked, though the consensus is two readers in both.
 * - 'panel': over LIDC's panel of four when three or four readers marked the nodule, so that the
 *   consensus (two readers) is 0.5 and one reader 0.25 in every such nodule, and a nodule only
 *   three of the four marked (fainter, less agreed) gets the lower target it has among the panel.
 *   Nodules of one or two readers, whose consensus is their union, keep the share over n (0.5 or
 *   more), so that their consensus stays above the same level.
 */
export function withAgreementLabels(c: CropCase, readerMasks: readonly Uint8Array[], share: 'readers' | 'panel' = 'readers'): void {
  if (readerMasks.length === 0) return;
  const n = readerMasks.length;
  const over = share === 'panel' && n >= 3 ? Math.max(n, LIDC_PANEL_READERS) : n;
  const target = new Float32Array(c.mask.length);
  for (const m of readerMasks) for (let i = 0; i < m.length; i++) target[i]! += m[i]! / over;
  const consensus = agreementMask(readerMasks, 0.5);
  c.target = target;
  c.mask = consensus;
  c.sliceAreaMm2 = sliceAreasMm2(consensus, c.image.dims, c.image.spacingMm);
}

/** Area (mm2) of a 0/1 mask on each axial slice. */
export function sliceAreasMm2(
  mask: ArrayLike<number>,
  dims: readonly [number, number, number],
  spacingMm: readonly [number, number, number],
): Float64Array {
  const [nx, ny, nz] = dims;
  const plane = nx * ny;
  const pixelMm2 = spacingMm[0] * spacingMm[1];
  const area = new Float64Array(nz);
  for (let k = 0; k < nz; k++) {
    let count = 0;
    for (let p = k * plane; p < (k + 1) * plane; p++) count += mask[p] ? 1 : 0;
    area[k] = count * pixelMm2;
  }
  return area;
}

/** The crop centre in voxels: the set centres each nodule in its crop. */
export function cropCentreVoxel(dims: Vec3): Vec3 {
  return [(dims[0] - 1) / 2, (dims[1] - 1) / 2, (dims[2] - 1) / 2];
}

/**
 * Mean and standard deviation of HU, clipped to [minHU, maxHU], over the nodule voxels (as
 * nnU-Net normalises CT by its foreground) or all voxels: the numbers a z-score
 * normalisation needs. Pass the training cases only.
 */
export function huStats(
  cases: readonly CropCase[],
  options: { minHU: number; maxHU: number; region: 'nodule' | 'all' },
): { meanHU: number; stdHU: number; voxels: number } {
  let n = 0;
  let sum = 0;
  let sum2 = 0;
  for (const c of cases) {
    const d = c.image.data;
    for (let i = 0; i < d.length; i++) {
      if (options.region === 'nodule' && !c.mask[i]) continue;
      const v = Math.min(options.maxHU, Math.max(options.minHU, d[i]!));
      n++;
      sum += v;
      sum2 += v * v;
    }
  }
  if (n === 0) throw new RangeError('huStats: no voxels');
  const meanHU = sum / n;
  return { meanHU, stdHU: Math.sqrt(Math.max(0, sum2 / n - meanHU * meanHU)), voxels: n };
}

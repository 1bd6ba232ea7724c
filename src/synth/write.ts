/**
 * A synthetic data set on disk, in lidc-crops' layout: image/<case>.nii.gz (int16 HU),
 * mask/<case>.nii.gz (uint8), metadata.csv (one row per nodule, with how it was drawn) and
 * splits.csv (train/val by case, each case its own "patient"). loadCrops and finetune read it.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { describeFsError } from '../io/atomic.ts';
import { encodeNiftiFile } from '../io/nifti.ts';
import { Volume } from '../io/volume.ts';
import { mixSeed, mulberry32, shuffle } from '../data/prng.ts';
import { drawSynthParams, renderSynthCase, type SynthCase, type SynthParams } from './generator.ts';

export interface SynthSetOptions {
  count: number;
  seed: number;
  /** Share of cases marked val in splits.csv. */
  valFraction: number;
  /** Fixed parameters for every case (the rest are drawn). */
  overrides?: Partial<SynthParams>;
  onCase?: (done: number, total: number) => void;
}

export function synthCaseId(i: number): string {
  return `SYN-${String(i + 1).padStart(4, '0')}`;
}

/** The i-th case of a seeded set (the same whatever the set's size). */
export function synthCase(seed: number, i: number, overrides: Partial<SynthParams> = {}): SynthCase {
  const caseSeed = mixSeed(seed, i + 1);
  const params = drawSynthParams(mulberry32(caseSeed), overrides);
  return renderSynthCase(params, mixSeed(caseSeed, 0x1ea7));
}

const META_HEADER =
  'case,patient_id,nodule_id,diameter_mm,type,shape,attachment,spacing_x_mm,spacing_y_mm,spacing_z_mm,dim_x,dim_y,dim_z,noise_hu,mask_volume_mm3';

/**
 * Writes the set into `dir`, which must not exist or be empty. Files are made in a temporary
 * folder beside it and moved in at the end, so a failure leaves no partial set.
 */
export function writeSynthSet(dir: string, o: SynthSetOptions): { cases: number; train: number; val: number } {
  if (!Number.isInteger(o.count) || o.count < 1) throw new UserError(`--count: expected a positive integer, got ${o.count}`);
  if (!(o.valFraction >= 0 && o.valFraction < 1)) throw new UserError(`--val-fraction: expected a number in [0, 1), got ${o.valFraction}`);
  const target = resolve(dir);
  if (existsSync(target) && readdirSync(target).length > 0) throw new UserError(`${dir}: exists and is not empty`);
  const parent = dirname(target);
  try {
    mkdirSync(parent, { recursive: true });
  } catch (e) {
    throw new UserError(`${dir}: cannot create its folder (${describeFsError(e)})`);
  }
  const tmp = mkdtempSync(join(parent, `.${basename(target)}.tmp-`));
  try {
    mkdirSync(join(tmp, 'image'));
    mkdirSync(join(tmp, 'mask'));
    const ids = Array.from({ length: o.count }, (_, i) => synthCaseId(i));
    const nVal = Math.round(o.valFraction * o.count);
    const valIds = new Set(shuffle([...ids], mulberry32(mixSeed(o.seed, 0x5b1))).slice(0, nVal));
    const meta: string[] = [META_HEADER];
    for (let i = 0; i < o.count; i++) {
      const c = synthCase(o.seed, i, o.overrides);
      const id = ids[i]!;
      const p = c.params;
      // Origin so that the crop centre is at world (0, 0, 0).
      const origin: [number, number, number] = [0, 1, 2].map((a) => (-(p.dims[a]! - 1) / 2) * p.spacingMm[a]!) as [number, number, number];
      const img = new Volume({ data: c.image, dims: p.dims, spacingMm: p.spacingMm, originMm: origin, modality: 'CT' });
      writeFileSync(join(tmp, 'image', `${id}.nii.gz`), encodeNiftiFile(`${id}.nii.gz`, img));
      writeFileSync(join(tmp, 'mask', `${id}.nii.gz`), encodeNiftiFile(`${id}.nii.gz`, img.withData(c.mask, 'SEG')));
      meta.push(
        [
          id,
          id,
          1,
          p.diameterMm.toFixed(3),
          p.type,
          p.shape,
          p.attachment,
          ...p.spacingMm.map((s) => s.toFixed(4)),
          ...p.dims,
          p.noiseHU.toFixed(1),
          c.maskVolumeMm3.toFixed(2),
        ].join(','),
      );
      o.onCase?.(i + 1, o.count);
    }
    writeFileSync(join(tmp, 'metadata.csv'), meta.join('\n') + '\n');
    writeFileSync(
      join(tmp, 'splits.csv'),
      ['case,patient_id,split', ...ids.map((id) => `${id},${id},${valIds.has(id) ? 'val' : 'train'}`)].join('\n') + '\n',
    );
    if (existsSync(target)) rmdirSync(target);
    renameSync(tmp, target);
    return { cases: o.count, train: o.count - nVal, val: nVal };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (e instanceof UserError) throw e;
    throw new UserError(`${dir}: cannot write the synthetic set (${describeFsError(e)})`, { cause: e });
  }
}

/**
 * A user's own crops for fine-tuning: a folder laid out like lidc-crops (image/ and mask/ with
 * same-named NIfTI files; splits.csv and metadata.csv optional), split by patient.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { decodeCropFiles, mixSeed, mulberry32, parseCsv, shuffle, type CropCase } from '../data/index.ts';
import { readText } from '../data/crops.ts';

export interface CropFolder {
  dir: string;
  cases: CropCase[];
  /** True when splits.csv gave each case its split. */
  hasSplits: boolean;
}

const NIFTI = /\.nii(\.gz)?$/i;

/** The patient of a case without a table: LIDC-style "<patient>_R_<n>" names, else the case itself. */
export function patientOfCaseId(id: string): string {
  const m = /^(.+)_R_\d+$/.exec(id);
  return m ? m[1]! : id;
}

/** Reads every crop of the folder; errors name the folder or file. */
export function loadCropFolder(dir: string): CropFolder {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`${dir}: data folder not found`);
  const imageDir = join(dir, 'image');
  const maskDir = join(dir, 'mask');
  if (!existsSync(imageDir) || !existsSync(maskDir))
    throw new UserError(`${dir}: expected image/ and mask/ folders of NIfTI crops (as lidc-crops)`);
  const files = readdirSync(imageDir)
    .filter((f) => NIFTI.test(f))
    .sort();
  if (files.length === 0) throw new UserError(`${imageDir}: no .nii.gz or .nii crops`);
  const splitsPath = join(dir, 'splits.csv');
  const metaPath = join(dir, 'metadata.csv');
  const splits = existsSync(splitsPath) ? new Map(parseCsv(readText(splitsPath), splitsPath).map((r) => [r['case']!, r])) : null;
  const meta = existsSync(metaPath) ? new Map(parseCsv(readText(metaPath), metaPath).map((r) => [r['case']!, r])) : null;
  const cases = files.map((f) => {
    const id = f.replace(NIFTI, '');
    const maskPath = join(maskDir, f);
    if (!existsSync(maskPath)) throw new UserError(`${maskPath}: missing (every image needs a same-named mask)`);
    const row = splits?.get(id);
    if (splits && !row) throw new UserError(`${splitsPath}: no row for case ${id}`);
    const split = row?.['split'] ?? 'train';
    if (split !== 'train' && split !== 'val') throw new UserError(`${splitsPath}: unknown split "${split}" for ${id} (train or val)`);
    const patient = row?.['patient_id'] || meta?.get(id)?.['patient_id'] || patientOfCaseId(id);
    const diameter = Number(meta?.get(id)?.['diameter_mm'] ?? Number.NaN);
    return decodeCropFiles(join(imageDir, f), maskPath, id, patient, split, diameter);
  });
  return { dir, cases, hasSplits: splits !== null };
}

/**
 * Patient-level split: whole patients go to val, in a seeded order, until about valFraction of
 * the cases are there (at least one patient each side).
 */
export function splitByPatient(cases: readonly CropCase[], valFraction: number, seed: number): { train: CropCase[]; val: CropCase[] } {
  if (!(valFraction > 0 && valFraction < 1)) throw new UserError(`--val-fraction: expected a number in (0, 1), got ${valFraction}`);
  const patients = [...new Set(cases.map((c) => c.patientId))].sort();
  if (patients.length < 2) throw new UserError(`the data has ${patients.length} patient(s): a train/val split needs at least 2`);
  shuffle(patients, mulberry32(mixSeed(seed, 0x5b1)));
  const target = Math.max(1, Math.round(valFraction * cases.length));
  const valPatients = new Set<string>();
  let n = 0;
  for (const p of patients) {
    if (n >= target || valPatients.size === patients.length - 1) break;
    valPatients.add(p);
    n += cases.filter((c) => c.patientId === p).length;
  }
  return { train: cases.filter((c) => !valPatients.has(c.patientId)), val: cases.filter((c) => valPatients.has(c.patientId)) };
}

/** k patient-disjoint folds, patients dealt round-robin in a seeded order (folds of similar size). */
export function patientFolds(cases: readonly CropCase[], k: number, seed: number): CropCase[][] {
  const patients = [...new Set(cases.map((c) => c.patientId))].sort();
  if (!Number.isInteger(k) || k < 2) throw new UserError(`--folds: expected an integer >= 2, got ${k}`);
  if (patients.length < k) throw new UserError(`--folds ${k}: the data has only ${patients.length} patient(s)`);
  shuffle(patients, mulberry32(mixSeed(seed, 0xf01d)));
  const foldOf = new Map(patients.map((p, i) => [p, i % k]));
  const folds: CropCase[][] = Array.from({ length: k }, () => []);
  for (const c of cases) folds[foldOf.get(c.patientId)!]!.push(c);
  return folds;
}

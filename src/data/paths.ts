import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';

/** The repository root (src/data/ is two levels below it). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The shared data folder: $NODULESEG_DATA when set, else ../shared/data beside the repository.
 * Returns the path whether or not it exists; see `requireData`.
 */
export function dataRoot(): string {
  const env = process.env['NODULESEG_DATA'];
  return env && env.length > 0 ? resolve(env) : resolve(REPO_ROOT, '..', 'shared', 'data');
}

export function lidcCropsDir(): string {
  return join(dataRoot(), 'lidc-crops');
}

export function lidcScansDir(): string {
  return join(dataRoot(), 'lidc-scans');
}

/** Why `dir` is not usable, or null when it exists (tests print this when they skip). */
export function missingDataReason(dir: string): string | null {
  return existsSync(dir) ? null : `${dir} not found (set NODULESEG_DATA to the folder holding lidc-crops and lidc-scans)`;
}

export function requireData(dir: string): string {
  const why = missingDataReason(dir);
  if (why) throw new UserError(why);
  return dir;
}

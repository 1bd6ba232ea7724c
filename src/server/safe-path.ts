import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';

/** Why a requested path was refused: 'outside' (403) or 'missing' (404). */
export class PathRefused extends Error {
  constructor(
    readonly reason: 'outside' | 'missing',
    message: string,
  ) {
    super(message);
    this.name = 'PathRefused';
  }
}

/** True when `child` (a real path) is `root` or lies below it. */
export function isInside(root: string, child: string): boolean {
  const rel = relative(root, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * Resolves `requested` (relative to the data folder, '/'-separated, already URL-decoded once)
 * to a real path under `rootReal`. Refuses absolute paths, '..' segments, NUL bytes and anything
 * whose real path (symlinks followed) leaves the folder, so a link inside the data folder cannot
 * reach files outside it.
 */
export function resolveUnderRoot(rootReal: string, requested: string): string {
  if (typeof requested !== 'string' || requested.length === 0) throw new PathRefused('missing', 'no path given');
  if (requested.includes('\0')) throw new PathRefused('outside', 'path contains a NUL byte');
  // Backslashes count as separators too: "..\\x" must not slip past the segment check.
  const parts = requested.split(/[\\/]+/);
  if (isAbsolute(requested) || /^[a-zA-Z]:/.test(requested) || requested.startsWith('/') || requested.startsWith('\\')) {
    throw new PathRefused('outside', `${requested}: absolute paths are refused; give a path inside the data folder`);
  }
  if (parts.some((p) => p === '..')) throw new PathRefused('outside', `${requested}: ".." is refused; give a path inside the data folder`);
  const joined = resolve(rootReal, ...parts.filter((p) => p !== '' && p !== '.'));
  if (!isInside(rootReal, joined)) throw new PathRefused('outside', `${requested}: outside the data folder`);
  let real: string;
  try {
    real = realpathSync(joined);
  } catch {
    throw new PathRefused('missing', `${requested}: not found in the data folder`);
  }
  if (!isInside(rootReal, real)) throw new PathRefused('outside', `${requested}: leads outside the data folder (symbolic link)`);
  return real;
}

import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UserError } from '../errors.ts';

/**
 * Writes a file atomically: the bytes go to a temporary file in the same folder (so the rename
 * stays on one file system) and only a complete file is renamed into place. A failure leaves
 * neither a partial file nor the temporary one.
 */
export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  const dir = dirname(path);
  ensureDir(dir, path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new UserError(`${path}: cannot write (${describeFsError(e)})`, { cause: e });
  }
}

/**
 * For writers that produce several files (MetaImage header + raw) or write through a library that
 * wants a path: `produce` writes into a fresh temporary folder beside the target, then every file
 * is renamed into place, the one named `path` last so that it never refers to a missing file.
 */
export async function writeFilesAtomic(path: string, produce: (tmpPath: string) => Promise<string[]>): Promise<void> {
  const dir = dirname(path);
  ensureDir(dir, path);
  const tmpDir = mkdtempSync(join(dir, `.${basename(path)}.tmp-`));
  try {
    const names = await produce(join(tmpDir, basename(path)));
    const main = basename(path);
    const ordered = [...names.filter((n) => n !== main), main];
    for (const n of ordered) renameSync(join(tmpDir, n), join(dir, n));
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${path}: cannot write (${describeFsError(e)})`, { cause: e });
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

function ensureDir(dir: string, path: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new UserError(`${path}: cannot create its folder (${describeFsError(e)})`, { cause: e });
  }
}

export function describeFsError(e: unknown): string {
  if (e && typeof e === 'object' && 'code' in e) {
    const code = (e as { code: unknown }).code;
    if (code === 'ENOENT') return 'no such file or folder';
    if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
    if (code === 'EISDIR') return 'is a folder';
    if (code === 'ENOTDIR') return 'not a folder';
    if (code === 'EEXIST') return 'a file is in the way';
    if (code === 'ENOSPC') return 'no space left on device';
  }
  return e instanceof Error ? e.message.split('\n')[0]! : String(e);
}

/**
 * Writes several files as a set: all bytes are ready before the first write, and if one write
 * fails the files this call already wrote are removed, so a command leaves all of its outputs
 * or none.
 */
export function writeFilesAtomicSet(files: ReadonlyArray<readonly [string, Uint8Array | string]>): void {
  // The folders this call creates (the topmost missing one of each file) go too on a failure.
  const created = new Set<string>();
  for (const [path] of files) {
    let top: string | null = null;
    for (let d = resolve(dirname(path)); !existsSync(d) && d !== dirname(d); d = dirname(d)) top = d;
    if (top) created.add(top);
  }
  const done: string[] = [];
  try {
    for (const [path, bytes] of files) {
      writeFileAtomic(path, bytes);
      done.push(path);
    }
  } catch (e) {
    for (const p of done) rmSync(p, { force: true });
    for (const d of created) rmSync(d, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Outputs may never replace inputs. Commands call `refuseOutputsOverInputs` before any work, with
 * every path they will read and every path they will write, so that `-i crops/ -o crops/` or
 * `-i scan.nii.gz -o scan.nii.gz` (also through a symlink or another spelling of the path) ends
 * with one line and writes nothing. Light on purpose: the command line loads it at start-up.
 */
import { closeSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import { UserError } from '../errors.ts';

/**
 * The path as the file system will see it: symlinks and `..` resolved. A path that does not exist
 * yet is its nearest existing folder, resolved, plus the rest (so a symlinked parent counts).
 */
export function canonicalPath(path: string): string {
  const abs = resolve(path);
  const rest: string[] = [];
  let p = abs;
  for (;;) {
    try {
      const real = realpathSync(p);
      return rest.length ? join(real, ...rest.reverse()) : real;
    } catch {
      const up = dirname(p);
      if (up === p) return abs;
      rest.push(basename(p));
      p = up;
    }
  }
}

function isInside(child: string, folder: string): boolean {
  const r = relative(folder, child);
  return r.length > 0 && r !== '..' && !r.startsWith(`..${sep}`) && !r.startsWith(sep);
}

function sameInode(a: string, b: string): boolean {
  try {
    const sa = statSync(a);
    const sb = statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

function isFolder(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Throws a UserError naming the first output that is an input (same file or folder, also a hard
 * link) or lies inside an input folder. Undefined entries (options not given) are skipped.
 * Outputs written into an output folder should be listed one by one as well, so that a file of
 * that folder which is also an input is caught.
 */
export function refuseOutputsOverInputs(outputs: ReadonlyArray<string | undefined>, inputs: ReadonlyArray<string | undefined>): void {
  const ins = inputs.filter((p): p is string => p !== undefined).map((p) => ({ given: p, real: canonicalPath(p), folder: isFolder(p) }));
  for (const out of outputs) {
    if (out === undefined) continue;
    const real = canonicalPath(out);
    for (const i of ins) {
      if (real === i.real || sameInode(real, i.real)) {
        throw new UserError(`${out}: is the input ${i.given === out ? 'itself' : i.given}; an output may not overwrite an input`);
      }
      if (i.folder && isInside(real, i.real)) {
        throw new UserError(`${out}: lies inside the input folder ${i.given}; write outputs outside it`);
      }
    }
  }
}

/**
 * The files an image path reads: itself, plus the detached data file of a MetaImage (.mhd) or
 * NRRD (.nhdr) header, found from the header's first 64 KiB (slice lists and patterns are left
 * out). Unreadable headers give just the path; the reader reports them later.
 */
export function imageInputFiles(path: string): string[] {
  const ext = extname(path).toLowerCase();
  if (ext !== '.mhd' && ext !== '.nhdr' && ext !== '.nrrd') return [path];
  let head = '';
  try {
    const fd = openSync(path, 'r');
    try {
      const b = Buffer.alloc(65536);
      head = b.subarray(0, readSync(fd, b, 0, b.length, 0)).toString('latin1');
    } finally {
      closeSync(fd);
    }
  } catch {
    return [path];
  }
  const m = ext === '.mhd' ? /^\s*ElementDataFile\s*=\s*(.*?)\s*$/m.exec(head) : /^data ?file:=?\s*(.*?)\s*$/im.exec(head);
  const data = m?.[1];
  if (!data || data === 'LOCAL' || /^LIST|%/.test(data)) return [path];
  return [path, join(dirname(path), data)];
}

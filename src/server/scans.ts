import { readdirSync, realpathSync, statSync, type Dirent } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { imageFormatOf, type ImageFormat } from '../io/formats.ts';
import { isInside } from './safe-path.ts';

export type ScanKind = 'dicom' | ImageFormat;

export interface ScanEntry {
  /** Path relative to the data folder, '/'-separated: what the page sends back to open it. */
  path: string;
  kind: ScanKind;
  /** DICOM: number of files in the folder; files: size in bytes. */
  files?: number;
  bytes?: number;
  /** A DICOM folder with an .xml beside the slices (LIDC reads). */
  hasXml?: boolean;
}

/** Limits so a huge or looping folder cannot stall the server. */
const MAX_DEPTH = 8;
const MAX_ENTRIES = 5000;
const MAX_DIRS = 20000;

/**
 * The scans under `rootReal`: DICOM series folders (a folder holding .dcm files), NIfTI,
 * MetaImage and NRRD files. Symbolic links are followed only when they stay inside the folder.
 */
export function listScans(rootReal: string): ScanEntry[] {
  const out: ScanEntry[] = [];
  const seen = new Set<string>();
  let dirs = 0;
  const walk = (dir: string, depth: number): void => {
    if (out.length >= MAX_ENTRIES || dirs++ >= MAX_DIRS || seen.has(dir)) return;
    seen.add(dir);
    let ents: Dirent[];
    try {
      ents = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    ents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    let dcm = 0;
    let xml = false;
    const subdirs: string[] = [];
    for (const e of ents) {
      if (e.name.startsWith('.')) continue;
      let p = join(dir, e.name);
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        try {
          const real = realpathSync(p);
          if (!isInside(rootReal, real)) continue;
          const st = statSync(real);
          isDir = st.isDirectory();
          isFile = st.isFile();
          if (isDir) p = real;
        } catch {
          continue;
        }
      }
      if (isDir) subdirs.push(p);
      else if (isFile) {
        if (/\.dcm$/i.test(e.name)) dcm++;
        else if (/\.xml$/i.test(e.name)) xml = true;
        else {
          const kind = imageFormatOf(e.name);
          if (kind && out.length < MAX_ENTRIES) {
            let bytes: number | undefined;
            try {
              bytes = statSync(p).size;
            } catch {
              bytes = undefined;
            }
            out.push({ path: toRel(rootReal, join(dir, e.name)), kind, bytes });
          }
        }
      }
    }
    if (dcm > 0) out.push({ path: toRel(rootReal, dir) || '.', kind: 'dicom', files: dcm, hasXml: xml });
    if (depth < MAX_DEPTH) for (const d of subdirs) walk(d, depth + 1);
  };
  walk(rootReal, 0);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function toRel(root: string, p: string): string {
  return relative(root, p).split(sep).join('/');
}

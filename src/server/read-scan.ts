/**
 * Reading the scans the viewer opens (a file or DICOM folder under --data, or an upload) on a
 * worker thread of its own: a whole DICOM series takes seconds to decode, and the server's event
 * loop must keep answering meanwhile. The worker (scan-reader.ts) runs `readScanFiles`; the server
 * calls `readScanOffThread`.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isUserError, UserError } from '../errors.ts';
import { isImagePath } from '../io/formats.ts';
import {
  consensusVoxels,
  noduleReport,
  readLidcScan,
  readVolume,
  Volume,
  type LidcScan,
  type VolumeInit,
  type VoxelArray,
} from '../io/index.ts';
import { HttpError } from './http-error.ts';
import type { LidcRead } from './session.ts';
import { startWorkerThread } from './worker-start.ts';

/** What to read: a path under the data folder, or the files of an upload saved in `dir`. */
export type ScanRequest = { kind: 'path'; path: string } | { kind: 'upload'; dir: string; names: string[] };

export interface ScanRead {
  volume: Volume;
  lidc: LidcRead[];
  notes: string[];
  /** What the page calls it (an upload's file name, or "DICOM folder (n files)"). */
  name: string;
}

/** The LIDC readers' nodules as the page shows them. */
export function lidcReadsOf(scan: LidcScan): LidcRead[] {
  return scan.nodules.map((n) => ({ ...noduleReport(n, scan.series.volume, scan.xml), consensus: consensusVoxels(n) }));
}

async function readPath(path: string): Promise<Omit<ScanRead, 'name'>> {
  if (statSync(path).isDirectory() && readdirSync(path).some((f) => /\.xml$/i.test(f))) {
    try {
      const scan = await readLidcScan(path);
      return { volume: scan.series.volume, lidc: lidcReadsOf(scan), notes: scan.series.warnings };
    } catch (e) {
      if (!isUserError(e)) throw e;
      const volume = await readVolume(path);
      return { volume, lidc: [], notes: [`LIDC reads not shown: ${e.message}`] };
    }
  }
  return { volume: await readVolume(path), lidc: [], notes: [] };
}

/** Reads a scan on the calling thread (the worker's). An upload is one image file (a .mhd with its .raw), or one DICOM series (and its XML). */
export async function readScanFiles(req: ScanRequest): Promise<ScanRead> {
  if (req.kind === 'path') return { ...(await readPath(req.path)), name: req.path };
  const images = req.names.filter(isImagePath);
  if (images.length > 1) throw new HttpError(400, `upload one scan at a time (got ${images.join(', ')})`);
  if (images.length === 1) return { volume: await readVolume(join(req.dir, images[0]!)), lidc: [], notes: [], name: images[0]! };
  const n = req.names.length;
  return { ...(await readPath(req.dir)), name: `DICOM folder (${n} file${n > 1 ? 's' : ''})` };
}

/** A read as it crosses the thread boundary: the voxels in shared memory, so nothing is copied on the server's side. */
export type ScanReadMessage =
  | { ok: true; volume: VolumeInit<VoxelArray>; lidc: LidcRead[]; notes: string[]; name: string }
  | { ok: false; user: boolean; status: number | null; name: string; message: string; stack: string | null };

export function toMessage(read: ScanRead): { message: ScanReadMessage; transfer: ArrayBuffer[] } {
  const v = read.volume;
  const src = v.data;
  const shared = new SharedArrayBuffer(src.byteLength);
  new Uint8Array(shared).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  const data = new (src.constructor as new (b: SharedArrayBuffer) => VoxelArray)(shared);
  const volume: VolumeInit<VoxelArray> = {
    data,
    dims: v.dims,
    spacingMm: v.spacingMm,
    originMm: v.originMm,
    direction: v.direction,
    modality: v.modality,
    source: v.source,
  };
  // The consensus voxel lists move rather than copy.
  const transfer = read.lidc.map((r) => r.consensus.buffer as ArrayBuffer).filter((b, i, all) => all.indexOf(b) === i);
  return { message: { ok: true, volume, lidc: read.lidc, notes: read.notes, name: read.name }, transfer };
}

export function errorMessage(e: unknown): ScanReadMessage {
  const status = e instanceof HttpError ? e.status : null;
  if (e instanceof Error)
    return { ok: false, user: status !== null || isUserError(e), status, name: e.name, message: e.message, stack: e.stack ?? null };
  return { ok: false, user: false, status: null, name: 'Error', message: String(e), stack: null };
}

/**
 * Reads a scan on a new worker thread and resolves with it on this one. User errors (a bad file)
 * come back as UserError or HttpError; anything else as an Error carrying the worker's stack.
 */
export function readScanOffThread(req: ScanRequest): Promise<ScanRead> {
  return new Promise((resolve, reject) => {
    const worker = startWorkerThread('scan-reader', req);
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      f();
      void worker.terminate();
    };
    worker.once('message', (m: ScanReadMessage) =>
      settle(() => {
        if (m.ok) return resolve({ volume: new Volume(m.volume), lidc: m.lidc, notes: m.notes, name: m.name });
        if (m.status !== null) return reject(new HttpError(m.status, m.message));
        if (m.user) return reject(new UserError(m.message));
        const err = new Error(`scan reader: ${m.name}: ${m.message}`);
        if (m.stack) err.stack = `${err.message}\n--- in the scan reader ---\n${m.stack}`;
        reject(err);
      }),
    );
    worker.once('error', (e) => settle(() => reject(e)));
    worker.once('exit', (code) => settle(() => reject(new Error(`scan reader: the worker exited (code ${code}) before answering`))));
  });
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isUserError } from '../errors.ts';
import type { Vec3, Volume } from '../io/index.ts';
import { imageStem } from '../io/formats.ts';
import { HttpError } from './http-error.ts';
import { PathRefused, resolveUnderRoot } from './safe-path.ts';
import { readScanOffThread, type ScanRead } from './read-scan.ts';
import { listScans } from './scans.ts';
import { Cancelled, shareVolume, type Segmenter } from './segmenter.ts';
import { Session, type DisplayStep, type LidcRead, type SessionPrompt } from './session.ts';
import { readBody, saveMultipart, formatBytes } from './upload.ts';
import type { PacsRoutes } from './pacs-routes.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const WEB_DIR = resolve(HERE, '../../web');
/** NiiVue's self-contained ES module (no imports of its own), served as it is from node_modules. */
const NIIVUE_JS = resolve(dirname(fileURLToPath(import.meta.resolve('@niivue/niivue'))), '../../dist/index.js');

/** The only static files the server hands out: a fixed table, so no URL can name another file. */
const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: join(WEB_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/index.html': { file: join(WEB_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { file: join(WEB_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: join(WEB_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
  '/vendor/niivue.js': { file: NIIVUE_JS, type: 'text/javascript; charset=utf-8' },
  '/pacs.js': { file: join(WEB_DIR, 'pacs.js'), type: 'text/javascript; charset=utf-8' },
};

export interface ViewerServerOptions {
  dataDir: string;
  segmenter: Segmenter;
  modelSummary: Record<string, unknown>;
  /** Largest accepted upload, bytes. */
  maxUploadBytes: number;
  /** Scans kept open at once; the least recently used is closed beyond this. */
  maxSessions: number;
  /** Host the server is bound to; on a loopback address only loopback Host headers are served. */
  host: string;
  log: (line: string) => void;
  /** serve --dicomweb: the PACS routes (/api/pacs/...), see pacs-routes.ts. */
  pacs?: PacsRoutes;
}

const JSON_LIMIT_BYTES = 64 * 1024;
const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** The viewer's HTTP server (not yet listening) and a cleanup for its upload area. */
export function createViewerServer(opts: ViewerServerOptions): { server: Server; dispose: () => void } {
  const rootReal = realpathSync(opts.dataDir);
  const tempRoot = mkdtempSync(join(tmpdir(), 'noduleseg-serve-'));
  const sessions = new Map<string, Session>();
  const loopbackOnly = LOOPBACK.has(opts.host);
  const startedAt = performance.now();

  const closeSession = (id: string): void => {
    sessions.delete(id);
    opts.segmenter.closeScan(id);
  };

  const addSession = (name: string, volume: Volume, lidc: LidcRead[], notes: string[]): Session => {
    // The voxels go to shared memory once, here: the model worker reads them without a copy per click.
    const s = new Session(randomUUID(), name, shareVolume(volume), lidc, notes);
    sessions.set(s.id, s);
    opts.segmenter.openScan(s.id, s.volume);
    while (sessions.size > opts.maxSessions) {
      const oldest = [...sessions.values()].sort((a, b) => a.lastUsed - b.lastUsed)[0]!;
      closeSession(oldest.id);
    }
    return s;
  };

  const getSession = (id: string): Session => {
    const s = SESSION_ID.test(id) ? sessions.get(id) : undefined;
    if (!s) throw new HttpError(404, 'this scan is no longer open on the server; open it again');
    s.lastUsed = Date.now();
    return s;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (loopbackOnly) {
      // A page from another site resolving its name to 127.0.0.1 (DNS rebinding) sends its own Host.
      const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
      if (!LOOPBACK.has(host)) throw new HttpError(403, 'this server only answers requests addressed to the local machine');
    }
    // Another site's page may send requests here (it cannot read the answers, but it could open
    // scans or upload): a browser names that page in Origin, which must be this server.
    const origin = req.headers.origin;
    if (origin !== undefined && !sameOrigin(origin, req.headers.host)) throw new HttpError(403, 'requests from other sites are refused');
    const url = new URL(req.url ?? '/', 'http://local');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const fixed = STATIC[path];
    if (fixed && (method === 'GET' || method === 'HEAD')) {
      return send(res, 200, readFileSync(fixed.file), fixed.type, { 'cache-control': 'no-cache' });
    }
    if (path === '/health' && (method === 'GET' || method === 'HEAD')) {
      // Answered by the event loop alone, also while the model worker is busy.
      const q = opts.segmenter.status();
      return sendJson(res, q.loaded ? 200 : 503, {
        status: q.loaded ? 'ok' : 'model unavailable',
        model: { loaded: q.loaded, file: opts.modelSummary['file'], arch: opts.modelSummary['arch'] },
        queue: { running: q.running, waiting: q.waiting, max: q.maxQueue },
        jobs: { completed: q.completed, failed: q.failed, dropped: q.dropped, discarded: q.discarded, workerRestarts: q.restarts },
        sessions: sessions.size,
        uptimeS: Math.round((performance.now() - startedAt) / 100) / 10,
      });
    }
    if (path === '/api/info' && method === 'GET') {
      return sendJson(res, 200, {
        dataFolder: basename(rootReal),
        model: opts.modelSummary,
        maxUploadBytes: opts.maxUploadBytes,
        maxUpload: formatBytes(opts.maxUploadBytes),
        pacs: opts.pacs?.label ?? null,
      });
    }
    if (path === '/api/scans' && method === 'GET') return sendJson(res, 200, { scans: listScans(rootReal) });
    if (path === '/api/open' && method === 'POST') {
      const requested = url.searchParams.get('path') ?? '';
      const real = resolveUnderRoot(rootReal, requested);
      // On a worker thread: decoding a DICOM series takes seconds, and /health and the other pages must not wait.
      const { volume, lidc, notes } = await readScanOffThread({ kind: 'path', path: real });
      const s = addSession(requested, volume, lidc, notes);
      opts.log(`opened ${requested}: ${volume.dims.join(' x ')} voxels${lidc.length ? `, ${lidc.length} LIDC nodules` : ''}`);
      return sendJson(res, 200, describeSession(s));
    }
    if (path === '/api/upload' && method === 'POST') {
      const body = await readBody(req, opts.maxUploadBytes);
      const up = await saveMultipart(body, req.headers['content-type'], tempRoot);
      let read: ScanRead;
      try {
        read = await readScanOffThread({ kind: 'upload', dir: up.dir, names: up.names });
      } catch (e) {
        // Error messages name the file: show the uploaded name, not the server's temporary folder.
        const message = (e instanceof Error ? e.message : String(e))
          .split(up.dir + '/')
          .join('')
          .split(up.dir)
          .join('upload');
        if (e instanceof HttpError) throw new HttpError(e.status, message);
        // Whatever a reader throws on a malformed upload is the upload's fault, not the server's;
        // an error that is not a UserError is logged all the same, in case it is a reader's bug.
        if (!isUserError(e)) opts.log(`upload not read: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        throw new HttpError(400, isUserError(e) ? message : `the upload could not be read (${message})`);
      } finally {
        // Removed before answering: the volume is in memory now.
        up.cleanup();
      }
      const s = addSession(`upload: ${read.name}`, read.volume, read.lidc, read.notes);
      opts.log(`opened an upload (${up.names.length} file${up.names.length > 1 ? 's' : ''}): ${read.volume.dims.join(' x ')} voxels`);
      return sendJson(res, 200, describeSession(s));
    }
    if (opts.pacs && path.startsWith('/api/pacs/')) {
      const ctx = {
        addSession,
        getSession,
        describe: describeSession,
        modelArch: String(opts.modelSummary['arch'] ?? 'model'),
        tempRoot,
        log: opts.log,
        sendJson: (r: ServerResponse, status: number, v: unknown) => sendJson(r, status, v),
      };
      if (await opts.pacs.handle(req, res, url, ctx)) return;
    }
    const m = /^\/api\/sessions\/([^/]+)(\/.*)?$/.exec(path);
    if (m) {
      const s = getSession(m[1]!);
      const rest = m[2] ?? '';
      if (rest === '' && method === 'GET') return sendJson(res, 200, describeSession(s));
      if (rest === '' && method === 'DELETE') {
        closeSession(s.id);
        return sendJson(res, 200, { closed: true });
      }
      // Display copies: the path carries the parameters so that NiiVue sees a name ending in .nii.
      const scanMatch = /^\/scan-([12])\.nii$/.exec(rest);
      if (scanMatch && method === 'GET')
        return send(res, 200, s.scanBytes(Number(scanMatch[1]) as DisplayStep), 'application/octet-stream');
      // overlay-<step>-<selected label>-<LIDC consensus 0|1>[-<any-reader extent 0|1>]-<cache buster>.nii
      const overlayMatch = /^\/overlay-([12])-(\d+)-([01])(?:-([01]))?(?:-\w+)?\.nii$/.exec(rest);
      if (overlayMatch && method === 'GET') {
        const bytes = s.overlayNifti(
          Number(overlayMatch[2]),
          Number(overlayMatch[1]) as DisplayStep,
          overlayMatch[3] === '1',
          overlayMatch[4] === '1',
        );
        return send(res, 200, bytes, 'application/octet-stream', { 'cache-control': 'no-store' });
      }
      if (rest === '/nodules' && method === 'POST') {
        // The page going away (tab closed, scan changed) closes the socket before the answer:
        // a queued job is then dropped, a running one's result discarded.
        const gone = new AbortController();
        res.once('close', () => {
          if (!res.writableFinished) gone.abort();
        });
        const body = parseJson(await readBody(req, JSON_LIMIT_BYTES));
        const prompt = parsePrompt(body);
        if (prompt.kind === 'point') {
          // A click inside a nodule already segmented selects it.
          const at = s.voxelIndexAt(prompt.pointMm);
          const existing = at >= 0 ? s.noduleAt(at) : undefined;
          if (existing) return sendJson(res, 200, { nodule: Session.view(existing, s.nodules.length), existing: true });
        }
        const labelsBefore = new Set(s.nodules.map((x) => x.label));
        const t0 = performance.now();
        const n = await s.segment(opts.segmenter, prompt, gone.signal);
        const ms = performance.now() - t0;
        opts.log(`nodule ${n.label} on ${s.name}: ${n.result.measures.volumeMm3.toFixed(1)} mm3 in ${(ms / 1000).toFixed(2)} s`);
        // Every nodule's view again: one more nodule moves the others to Fleischner's "multiple" rows.
        const views = s.nodules.map((x) => Session.view(x, s.nodules.length));
        return sendJson(res, 200, {
          nodule: views.find((v) => v.label === n.label) ?? Session.view(n, s.nodules.length),
          nodules: views,
          existing: false,
          replaced: labelsBefore.has(n.label),
          segmentMs: Math.round(ms),
        });
      }
      const del = /^\/nodules\/(\d+)$/.exec(rest);
      if (del && method === 'DELETE') {
        if (!s.remove(Number(del[1]))) throw new HttpError(404, `no nodule ${del[1]} on this scan`);
        return sendJson(res, 200, describeSession(s));
      }
      const stem = downloadStem(s.name);
      if (rest === '/labels.nii.gz' && method === 'GET') {
        return send(res, 200, s.labelMaskNiftiGz(), 'application/gzip', attachment(`${stem}-nodules.nii.gz`));
      }
      if (rest === '/seg.dcm' && method === 'GET') {
        if (!s.isDicom) throw new HttpError(400, 'a DICOM SEG needs a scan read from DICOM; download the NIfTI mask instead');
        if (s.nodules.length === 0) throw new HttpError(400, 'no nodule to put in a DICOM SEG yet');
        return send(
          res,
          200,
          s.dicomSeg(String(opts.modelSummary['arch'] ?? 'model')),
          'application/dicom',
          attachment(`${stem}-nodules-seg.dcm`),
        );
      }
      if (rest === '/report.html' && method === 'GET') {
        if (s.nodules.length === 0) throw new HttpError(400, 'no nodule to report yet');
        const html = s.htmlReport(`${String(opts.modelSummary['file'] ?? 'model')} (${String(opts.modelSummary['arch'] ?? 'model')})`);
        return send(res, 200, Buffer.from(html), 'text/html; charset=utf-8', attachment(`${stem}-nodules.html`));
      }
      if (rest === '/report.json' && method === 'GET') {
        const text = JSON.stringify(s.report(opts.modelSummary), null, 2) + '\n';
        return send(res, 200, Buffer.from(text), 'application/json; charset=utf-8', attachment(`${stem}-nodules.json`));
      }
    }
    throw new HttpError(404, `not found: ${method} ${path}`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      // Nobody is left to answer (the segmenter logged the drop).
      if (e instanceof Cancelled) return void res.destroy();
      const [status, message] = errorStatus(e);
      // A bug (or a failure of the machine) is logged with its stack; the page only gets a generic line.
      if (status >= 500 && !(e instanceof HttpError))
        opts.log(`error on ${req.method} ${req.url}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(res, status, { error: message }, e instanceof HttpError ? e.headers : {});
    });
  });
  // Slow or stuck clients must not hold sockets for ever.
  server.requestTimeout = 10 * 60 * 1000;
  server.headersTimeout = 60 * 1000;
  const dispose = (): void => {
    for (const id of [...sessions.keys()]) closeSession(id);
    rmSync(tempRoot, { recursive: true, force: true });
  };
  return { server, dispose };
}

function describeSession(s: Session): Record<string, unknown> {
  return {
    id: s.id,
    name: s.name,
    dims: s.volume.dims,
    spacingMm: s.volume.spacingMm,
    modality: s.volume.modality,
    dicom: s.isDicom,
    notes: s.notes,
    nodules: s.nodules.map((n) => Session.view(n, s.nodules.length)),
    lidc: s.lidc.map(({ consensus: _c, ...r }) => r),
  };
}

/** Reads a scan from the data folder; a DICOM folder with an LIDC XML also yields the readers' nodules. */
function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    const u = new URL(origin);
    return u.protocol === 'http:' && host !== undefined && u.host === host.toLowerCase();
  } catch {
    return false; // "null" and other opaque origins
  }
}

/**
 * The one error taxonomy: the user's mistakes (HttpError, a refused path, a UserError) get their
 * status and message; anything else, RangeErrors included, is a bug or a machine failure: 500
 * with a generic message (the details go to the log, not to the page).
 */
function errorStatus(e: unknown): [number, string] {
  if (e instanceof HttpError) return [e.status, e.message];
  if (e instanceof PathRefused) return [e.reason === 'outside' ? 403 : 404, e.message];
  if (isUserError(e)) return [400, e.message];
  return [500, 'internal error; the server log has the details'];
}

const isVec3 = (v: unknown): v is Vec3 => Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x));

/** `{"pointMm": [x, y, z]}` or `{"boxMm": [[x0, y0, z0], [x1, y1, z1]]}`, world mm (LPS). */
function parsePrompt(body: Record<string, unknown>): SessionPrompt {
  const point = body['pointMm'];
  const box = body['boxMm'];
  if ((point === undefined) === (box === undefined))
    throw new HttpError(400, 'expected one of pointMm (three numbers) or boxMm (two corners of three numbers), world mm (LPS)');
  if (point !== undefined) {
    if (!isVec3(point)) throw new HttpError(400, 'pointMm: expected three numbers (world mm, LPS)');
    return { kind: 'point', pointMm: point };
  }
  if (!Array.isArray(box) || box.length !== 2 || !isVec3(box[0]) || !isVec3(box[1])) {
    throw new HttpError(400, 'boxMm: expected two opposite corners of three numbers each (world mm, LPS)');
  }
  return { kind: 'box', cornersMm: [box[0], box[1]] };
}

function parseJson(buf: Buffer): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(buf.toString('utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new HttpError(400, 'expected a JSON object');
}

function downloadStem(name: string): string {
  const stem =
    name
      .replace(/^upload: /, '')
      .split('/')
      .filter(Boolean)
      .pop() ?? 'scan';
  return (
    imageStem(stem)
      .replace(/[^A-Za-z0-9._-]/g, '_')
      .slice(0, 80) || 'scan'
  );
}

function attachment(file: string): Record<string, string> {
  return { 'content-disposition': `attachment; filename="${file}"`, 'cache-control': 'no-store' };
}

function send(res: ServerResponse, status: number, body: Uint8Array, type: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': String(body.byteLength),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    ...extra,
  });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown, extra: Record<string, string> = {}): void {
  send(res, status, Buffer.from(JSON.stringify(value)), 'application/json; charset=utf-8', { 'cache-control': 'no-store', ...extra });
}

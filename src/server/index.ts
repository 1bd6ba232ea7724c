/**
 * The browser viewer (`noduleseg serve`): a local HTTP server for a single-page NiiVue viewer that
 * opens scans from one data folder (or uploads), segments nodules where the user clicks, and
 * hands back the masks and reports. Public surface: `startViewer`.
 */
import type { AddressInfo } from 'node:net';
import { basename } from 'node:path';
import { createViewerServer } from './server.ts';
import { Segmenter } from './segmenter.ts';
import type { Fault } from './worker-protocol.ts';
import type { DicomWebAuth } from '../pacs/auth.ts';
import { createPacsRoutes } from './pacs-routes.ts';

export interface ViewerOptions {
  dataDir: string;
  modelFile: string;
  /** 0 picks a free port. */
  port: number;
  host: string;
  maxUploadBytes: number;
  maxSessions?: number;
  /** Segmentations allowed to wait behind the running one (more get a 503); default 4. */
  maxQueue?: number;
  /** libtorch intra-op threads in the model worker; default: all cores (or OMP_NUM_THREADS). */
  threads?: number;
  log?: (line: string) => void;
  /** serve --dicomweb: studies searched, series opened and SEGs saved on this DICOMweb server. */
  dicomweb?: { url: string; auth: DicomWebAuth };
}

export interface RunningViewer {
  url: string;
  port: number;
  close: () => Promise<void>;
}

/**
 * NODULESEG_SERVE_FAULT=throw,exit,... (a test hook): the first segmentations fail in that order,
 * `throw` with an internal error in the worker, `exit` with the worker dying.
 */
function faultsFromEnv(): Fault[] {
  const v = process.env['NODULESEG_SERVE_FAULT'];
  if (!v) return [];
  return v.split(',').map((f) => {
    if (f !== 'throw' && f !== 'exit') throw new Error(`NODULESEG_SERVE_FAULT: expected throw or exit, got "${f}"`);
    return f;
  });
}

/** Loads the model once, in its worker thread, then listens. Resolves when the server accepts connections. */
export async function startViewer(opts: ViewerOptions): Promise<RunningViewer> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const segmenter = await Segmenter.start({
    modelFile: opts.modelFile,
    threads: opts.threads ?? null,
    maxQueue: opts.maxQueue ?? 4,
    log,
    faults: faultsFromEnv(),
  });
  const { arch, threshold, slice } = segmenter.model;
  const modelSummary = { file: basename(opts.modelFile), arch, threshold, slice };
  const { server, dispose } = createViewerServer({
    dataDir: opts.dataDir,
    segmenter,
    modelSummary,
    maxUploadBytes: opts.maxUploadBytes,
    maxSessions: opts.maxSessions ?? 6,
    host: opts.host,
    log,
    pacs: opts.dicomweb ? createPacsRoutes(opts.dicomweb.url, opts.dicomweb.auth) : undefined,
  });
  try {
    await new Promise<void>((resolveListen, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolveListen();
      });
    });
  } catch (e) {
    dispose();
    await segmenter.close();
    throw e;
  }
  const port = (server.address() as AddressInfo).port;
  const hostInUrl = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${hostInUrl}:${port}/`,
    port,
    close: async () => {
      const closed = new Promise<void>((done) => server.close(() => done()));
      server.closeAllConnections();
      dispose();
      await segmenter.close();
      await closed;
    },
  };
}

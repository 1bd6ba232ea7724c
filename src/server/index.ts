/**
 * The browser viewer (`noduleseg serve`): a local HTTP server for a single-page NiiVue viewer that
 * opens scans from one data folder (or uploads), segments nodules where the user clicks, and
 * hands back the masks and reports. Public surface: `startViewer`.
 */
import type { AddressInfo } from 'node:net';
import { basename } from 'node:path';
import { loadModel } from '../models/index.ts';
import { createViewerServer } from './server.ts';
import { Segmenter } from './session.ts';

export interface ViewerOptions {
  dataDir: string;
  modelFile: string;
  /** 0 picks a free port. */
  port: number;
  host: string;
  maxUploadBytes: number;
  maxSessions?: number;
  log?: (line: string) => void;
}

export interface RunningViewer {
  url: string;
  port: number;
  close: () => Promise<void>;
}

/** Loads the model once, then listens. Resolves when the server accepts connections. */
export async function startViewer(opts: ViewerOptions): Promise<RunningViewer> {
  const { model, info } = loadModel(opts.modelFile);
  const modelSummary = { file: basename(opts.modelFile), arch: info.config.arch, threshold: info.threshold, slice: info.slice };
  const segmenter = new Segmenter(model, info, info.config.arch);
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { server, dispose } = createViewerServer({
    dataDir: opts.dataDir,
    segmenter,
    modelSummary,
    maxUploadBytes: opts.maxUploadBytes,
    maxSessions: opts.maxSessions ?? 6,
    host: opts.host,
    log,
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
    model.dispose();
    throw e;
  }
  const port = (server.address() as AddressInfo).port;
  const hostInUrl = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${hostInUrl}:${port}/`,
    port,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
        dispose();
        model.dispose();
      }),
  };
}

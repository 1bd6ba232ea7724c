import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../errors.ts';
import type { RunningViewer, ViewerOptions } from '../server/index.ts';
import { dataRoot } from '../data/paths.ts';
import { DEFAULT_MODEL } from './segment.ts';
import { nonNegativeIntArg, positiveNumberArg } from './args.ts';

interface ServeCliOptions {
  port: number;
  host: string;
  data?: string;
  model: string;
  threads?: number;
  maxUploadMb: number;
  maxQueue: number;
  dicomweb?: string;
  dicomwebAuth?: string;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('browser viewer: open a scan, click a nodule, see and download its segmentation')
    .option('-p, --port <n>', 'port (0 = any free port)', parsePort, 8600)
    .option('--host <address>', 'address to listen on (another than 127.0.0.1 exposes the viewer to the network)', '127.0.0.1')
    .option('-d, --data <folder>', 'folder of scans the viewer may open (default: $NODULESEG_DATA or ../shared/data)')
    .option('-m, --model <file>', 'model file', DEFAULT_MODEL)
    .option('--threads <n>', 'intra-op threads (default: all cores)', nonNegativeIntArg('--threads'))
    .option('--max-upload-mb <n>', 'largest upload accepted, MiB', positiveNumberArg('--max-upload-mb'), 1024)
    .option(
      '--max-queue <n>',
      'segmentations that may wait behind the running one; more are answered 503 (busy)',
      nonNegativeIntArg('--max-queue'),
      4,
    )
    .option(
      '--dicomweb <url>',
      'also browse a DICOMweb server (PACS): search studies, open series, "Save to PACS". Credentials: NODULESEG_DICOMWEB_USER/_PASSWORD, _TOKEN or --dicomweb-auth',
    )
    .option('--dicomweb-auth <file>', 'with --dicomweb: a JSON file {"username","password"} or {"token"}')
    .action(async (opts: ServeCliOptions) => {
      await runServe(opts);
    });
}

function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UserError(`--port: expected a port number 0-65535, got "${v}"`);
  return n;
}

async function runServe(opts: ServeCliOptions): Promise<void> {
  const dataDir = resolve(opts.data ?? dataRoot());
  if (!existsSync(dataDir) || !statSync(dataDir).isDirectory())
    throw new UserError(`${dataDir}: no such data folder (give --data <folder>)`);
  if (!existsSync(opts.model)) {
    throw new UserError(
      `${opts.model}: model file not found${opts.model === DEFAULT_MODEL ? ' (the shipped model is missing from this checkout)' : ''}`,
    );
  }
  // Loaded here, not at start-up: the server is for this command only. The model (and the
  // thread count) live in the server's model worker.
  const { startViewer } = await import('../server/index.ts');
  let dicomweb: ViewerOptions['dicomweb'];
  if (opts.dicomweb !== undefined) {
    const { resolveAuth, checkServerUrl } = await import('../pacs/auth.ts');
    checkServerUrl(opts.dicomweb);
    dicomweb = { url: opts.dicomweb, auth: resolveAuth(opts.dicomwebAuth) };
  } else if (opts.dicomwebAuth !== undefined) throw new UserError('--dicomweb-auth goes with --dicomweb <url>');
  let viewer: RunningViewer;
  try {
    viewer = await startViewer({
      dataDir,
      modelFile: opts.model,
      port: opts.port,
      host: opts.host,
      maxUploadBytes: Math.round(opts.maxUploadMb * 1024 * 1024),
      maxQueue: opts.maxQueue,
      ...(dicomweb ? { dicomweb } : {}),
      ...(opts.threads ? { threads: opts.threads } : {}),
    });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new UserError(`port ${opts.port} is in use; pick another with --port (0 = any free port)`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new UserError(`--host ${opts.host}: not an address of this machine`);
    throw e;
  }
  process.stdout.write(`noduleseg viewer: ${viewer.url} (scans from ${dataDir}; Ctrl-C to stop)\n`);
  if (opts.host !== '127.0.0.1' && opts.host !== 'localhost' && opts.host !== '::1') {
    process.stderr.write(`noduleseg: listening on ${opts.host}: anyone who can reach this address can open the scans in ${dataDir}\n`);
  }
  // Runs until a signal; the upload area is removed on the way out.
  await new Promise<void>((done) => {
    const stop = (): void => {
      void viewer.close().then(done);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

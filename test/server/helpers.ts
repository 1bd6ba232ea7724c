// Starts `noduleseg serve` in a child process (as a user would) and talks to it over HTTP.
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/data/paths.ts';
import { Volume, writeNifti } from '../../src/io/index.ts';

export interface ServeProcess {
  url: string;
  port: number;
  proc: ChildProcess;
  /** Everything the server wrote to stderr so far (its log). */
  log: () => string;
  /** SIGTERM, then the exit code (the server removes its upload folder on the way out). */
  stop: () => Promise<number | null>;
}

export async function startServe(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<ServeProcess> {
  const proc = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'noduleseg'), 'serve', '--port', '0', '--threads', '1', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, OMP_NUM_THREADS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((done) => proc.once('exit', (code) => done(code)));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start in ${timeoutMs} ms: ${err}`)), timeoutMs);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /noduleseg viewer: (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]!);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before listening: ${err}`));
    });
  });
  return {
    url,
    port: Number(new URL(url).port),
    proc,
    log: () => err,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

export interface RawResponse {
  status: number;
  body: string;
}

/** A request with the path sent exactly as given (fetch would normalise "..") and any Host header. */
export function rawRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Buffer,
): Promise<RawResponse> {
  return new Promise((resolveRes, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolveRes({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A small synthetic CT: a soft-tissue sphere of radius `radiusMm` in lung-like air, 0.7 x 0.7 x 1.25 mm voxels. */
export function writeSphereCt(path: string, radiusMm: number, dims: [number, number, number] = [64, 64, 24]): Volume {
  const [nx, ny, nz] = dims;
  const spacingMm: [number, number, number] = [0.7, 0.7, 1.25];
  const data = new Int16Array(nx * ny * nz).map((_, i) => {
    const x = i % nx,
      y = Math.floor(i / nx) % ny,
      z = Math.floor(i / (nx * ny));
    const r2 = ((x - nx / 2) * spacingMm[0]) ** 2 + ((y - ny / 2) * spacingMm[1]) ** 2 + ((z - nz / 2) * spacingMm[2]) ** 2;
    return r2 < radiusMm ** 2 ? 40 : -850;
  });
  const vol = new Volume({ data, dims, spacingMm, originMm: [-20, -30, -100], modality: 'CT' });
  writeNifti(path, vol);
  return vol;
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `noduleseg <args>` in a child process without blocking this one (the server tests keep talking HTTP meanwhile). */
export function runCli(args: string[]): Promise<CliRun> {
  return new Promise((done, reject) => {
    const p = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'noduleseg'), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, OMP_NUM_THREADS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

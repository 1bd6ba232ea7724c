import type { IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HttpError } from './http-error.ts';

/**
 * Reads a request body into memory, at most `limitBytes`. A larger body is drained (so the client
 * can read the 413 answer instead of a reset connection) up to a hard cap, then the socket is cut.
 */
export async function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  const tooBig = (): HttpError => new HttpError(413, `the upload is larger than the limit of ${formatBytes(limitBytes)}`);
  const chunks: Buffer[] = [];
  let total = 0;
  let over = Number.isFinite(declared) && declared > limitBytes;
  const hardCap = limitBytes * 4 + (16 << 20);
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limitBytes) over = true;
    if (over) {
      chunks.length = 0;
      if (total > hardCap) {
        req.socket.destroy();
        throw tooBig();
      }
      continue;
    }
    chunks.push(chunk);
  }
  if (over) throw tooBig();
  return Buffer.concat(chunks, total);
}

export function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(n % (1 << 20) ? 1 : 0)} MiB` : `${Math.ceil(n / 1024)} KiB`;
}

export interface UploadedFiles {
  dir: string;
  names: string[];
  /** Removes the files: always called, whether the upload could be read or not. */
  cleanup: () => void;
}

/** A safe local name for an uploaded file: its last path segment, odd characters replaced. */
export function safeUploadName(name: string, taken: Set<string>): string {
  const base = (name.split(/[\\/]/).pop() ?? '').replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  let out = base.length > 0 ? base.slice(-120) : 'file';
  for (let k = 2; taken.has(out); k++) out = `${k}-${out}`;
  taken.add(out);
  return out;
}

/**
 * Parses a multipart/form-data body (WHATWG fetch's parser, no extra dependency) and writes its
 * files into a fresh folder under `tempRoot`.
 */
export async function saveMultipart(body: Buffer, contentType: string | undefined, tempRoot: string): Promise<UploadedFiles> {
  if (!contentType || !/^multipart\/form-data;\s*boundary=/i.test(contentType)) {
    throw new HttpError(400, 'an upload must be sent as multipart/form-data (one or more files)');
  }
  let form: FormData;
  try {
    form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
  } catch {
    throw new HttpError(400, 'the upload is not a readable multipart/form-data body');
  }
  const files: File[] = [];
  for (const [, v] of form.entries()) if (typeof v !== 'string') files.push(v);
  if (files.length === 0) throw new HttpError(400, 'the upload holds no file');
  const dir = mkdtempSync(join(tempRoot, 'upload-'));
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    const taken = new Set<string>();
    const names: string[] = [];
    for (const f of files) {
      const name = safeUploadName(f.name, taken);
      writeFileSync(join(dir, name), new Uint8Array(await f.arrayBuffer()), { flag: 'wx' });
      names.push(name);
    }
    return { dir, names, cleanup };
  } catch (e) {
    cleanup();
    throw e;
  }
}

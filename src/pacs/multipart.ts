/**
 * multipart/related bodies (RFC 2387) as DICOMweb uses them: WADO-RS answers with one part per
 * instance, STOW-RS takes one. Small enough to write here rather than depend on a library.
 */
import { randomBytes } from 'node:crypto';

/** The boundary parameter of a Content-Type header, or null. */
export function boundaryOf(contentType: string): string | null {
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2] ?? null) : null;
}

export interface Part {
  headers: Record<string, string>;
  body: Uint8Array;
}

/**
 * Splits a multipart body into its parts (the preamble and epilogue are dropped). Part bodies are
 * views into `body`, not copies.
 */
export function parseMultipart(body: Uint8Array, boundary: string): Part[] {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const delim = Buffer.from(`--${boundary}`, 'latin1');
  const parts: Part[] = [];
  let at = buf.indexOf(delim);
  if (at < 0) throw new Error(`multipart body without its boundary`);
  for (;;) {
    let start = at + delim.length;
    if (buf[start] === 0x2d && buf[start + 1] === 0x2d) break; // "--": the closing delimiter
    // The rest of the delimiter line (transport padding), then CRLF.
    const eol = buf.indexOf('\r\n', start, 'latin1');
    if (eol < 0) throw new Error('multipart body cut short');
    start = eol + 2;
    const next = buf.indexOf(Buffer.concat([Buffer.from('\r\n', 'latin1'), delim]), start);
    if (next < 0) throw new Error('multipart body cut short (no closing boundary)');
    const headEnd = buf.indexOf('\r\n\r\n', start, 'latin1');
    const headers: Record<string, string> = {};
    let bodyStart = start;
    if (headEnd >= 0 && headEnd <= next) {
      for (const line of buf.subarray(start, headEnd).toString('latin1').split('\r\n')) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      bodyStart = headEnd + 4;
    } else if (buf[start] === 0x0d && buf[start + 1] === 0x0a) {
      bodyStart = start + 2; // a part without headers
    }
    parts.push({ headers, body: new Uint8Array(buf.buffer, buf.byteOffset + bodyStart, next - bodyStart) });
    at = next + 2;
  }
  return parts;
}

/** A multipart/related body of `parts` (each with its own Content-Type) and its Content-Type header. */
export function buildMultipart(
  parts: ReadonlyArray<{ contentType: string; body: Uint8Array }>,
  type: string,
): { body: Buffer; contentType: string } {
  const boundary = `noduleseg-${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${p.contentType}\r\nContent-Length: ${p.body.byteLength}\r\n\r\n`, 'latin1'));
    chunks.push(Buffer.from(p.body.buffer, p.body.byteOffset, p.body.byteLength));
    chunks.push(Buffer.from('\r\n', 'latin1'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="${type}"; boundary=${boundary}` };
}

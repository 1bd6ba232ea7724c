/**
 * Credentials for a DICOMweb server: from the environment or a file, never from the command line
 * (where `ps` and shell histories show them). Nothing here puts a secret in a message: errors name
 * the variable or the file, never its contents.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';

/** How requests authenticate; `header` is the Authorization value and must never be printed. */
export interface DicomWebAuth {
  kind: 'none' | 'basic' | 'bearer';
  header: string | null;
}

export const NO_AUTH: DicomWebAuth = { kind: 'none', header: null };

/** The environment variables read, in order of precedence. */
export const AUTH_ENV = {
  file: 'NODULESEG_DICOMWEB_AUTH_FILE',
  token: 'NODULESEG_DICOMWEB_TOKEN',
  user: 'NODULESEG_DICOMWEB_USER',
  password: 'NODULESEG_DICOMWEB_PASSWORD',
} as const;

function basic(user: string, password: string): DicomWebAuth {
  return { kind: 'basic', header: `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}` };
}

function bearer(token: string): DicomWebAuth {
  return { kind: 'bearer', header: `Bearer ${token}` };
}

/**
 * A credentials file: JSON `{"username": "...", "password": "..."}` or `{"token": "..."}`.
 * A parse error is reported without the parser's message, which quotes the text.
 */
export function readAuthFile(file: string): DicomWebAuth {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`${file}: cannot read the DICOMweb credentials file`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = null;
  }
  const o = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  if (typeof o['token'] === 'string' && o['token']) return bearer(o['token']);
  if (typeof o['username'] === 'string' && typeof o['password'] === 'string') return basic(o['username'], o['password']);
  throw new UserError(`${file}: expected JSON {"username": ..., "password": ...} or {"token": ...}`);
}

/** Credentials from `file` (an option naming a file is fine on a command line), else the environment. */
export function resolveAuth(file: string | undefined, env: NodeJS.ProcessEnv = process.env): DicomWebAuth {
  const fromFile = file ?? env[AUTH_ENV.file];
  if (fromFile) return readAuthFile(fromFile);
  const token = env[AUTH_ENV.token];
  if (token) return bearer(token);
  const user = env[AUTH_ENV.user];
  if (user !== undefined && user !== '') {
    const password = env[AUTH_ENV.password];
    if (password === undefined) throw new UserError(`${AUTH_ENV.user} is set but ${AUTH_ENV.password} is not`);
    return basic(user, password);
  }
  return NO_AUTH;
}

/**
 * A server URL as it may appear in messages and reports: no user or password, no query (which can
 * carry a token), no fragment. A URL that carries credentials is refused: they belong in the
 * environment or a file.
 */
export function checkServerUrl(url: string, what = '--dicomweb'): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // Not echoed: a malformed URL can still hold a password.
    throw new UserError(`${what}: not a URL (expected http://host:port/dicom-web)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new UserError(`${what}: expected an http:// or https:// URL, got ${u.protocol}`);
  if (u.username || u.password) {
    throw new UserError(
      `${what}: the URL carries credentials; put them in ${AUTH_ENV.user}/${AUTH_ENV.password}, ${AUTH_ENV.token} or a file (${AUTH_ENV.file})`,
    );
  }
  return u;
}

/** The URL without credentials, query or fragment, for messages and reports. */
export function publicUrl(url: string | URL): string {
  try {
    const u = new URL(String(url));
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return '(invalid URL)';
  }
}

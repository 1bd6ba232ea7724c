// The real Orthanc and Redis started by scripts/services.sh (npm test runs the suite inside it).
// Tests that need them skip with the reason when they are absent (a non-root developer without
// the packages, or a run outside scripts/services.sh).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { lidcScansDir, missingDataReason } from '../../src/data/index.ts';
import { REPO_ROOT } from '../../src/data/paths.ts';
import type { DicomWebAuth } from '../../src/pacs/auth.ts';
import { DicomWebClient } from '../../src/pacs/dicomweb.ts';

export const ORTHANC_URL = process.env['NODULESEG_TEST_ORTHANC_URL'] ?? '';
export const ORTHANC_USER = process.env['NODULESEG_TEST_ORTHANC_USER'] ?? '';
export const ORTHANC_PASSWORD = process.env['NODULESEG_TEST_ORTHANC_PASSWORD'] ?? '';
export const REDIS_URL = process.env['NODULESEG_TEST_REDIS_URL'] ?? '';
export const DICOMWEB_URL = ORTHANC_URL ? `${ORTHANC_URL}/dicom-web` : '';

const HOW =
  'run the tests through `npm test` or `bash scripts/services.sh node --import tsx --test <file>` (as root it installs orthanc, orthanc-dicomweb and redis-server)';
/** Why the Orthanc tests cannot run, or false. */
export const noOrthanc: string | false = ORTHANC_URL ? false : `no Orthanc (NODULESEG_TEST_ORTHANC_URL is unset): ${HOW}`;
export const noRedis: string | false = REDIS_URL ? false : `no Redis (NODULESEG_TEST_REDIS_URL is unset): ${HOW}`;
export const noScans: string | false = missingDataReason(lidcScansDir()) ?? false;

export const auth: DicomWebAuth = {
  kind: 'basic',
  header: `Basic ${Buffer.from(`${ORTHANC_USER}:${ORTHANC_PASSWORD}`).toString('base64')}`,
};
/** The environment a child noduleseg needs to reach the test Orthanc. */
export const authEnv = { NODULESEG_DICOMWEB_USER: ORTHANC_USER, NODULESEG_DICOMWEB_PASSWORD: ORTHANC_PASSWORD };

export function client(): DicomWebClient {
  return new DicomWebClient(DICOMWEB_URL, { auth });
}

/** Orthanc's own REST API (not DICOMweb), for emptying it between tests. */
async function orthanc(path: string, method = 'GET'): Promise<unknown> {
  const res = await fetch(ORTHANC_URL + path, { method, headers: { authorization: auth.header! } });
  if (!res.ok) throw new Error(`Orthanc ${method} ${path}: ${res.status}`);
  return method === 'GET' ? res.json() : null;
}

export async function emptyOrthanc(): Promise<void> {
  for (const id of (await orthanc('/studies')) as string[]) await orthanc(`/studies/${id}`, 'DELETE');
}

/** Orthanc's count of stored instances (all studies). */
export async function orthancInstanceCount(): Promise<number> {
  return ((await orthanc('/instances')) as string[]).length;
}

export const LIDC1_STUDY = '1.3.6.1.4.1.14519.5.2.1.6279.6001.298806137288633453246975630178';
export const LIDC1_SERIES = '1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192';
/** The large nodule of LIDC-IDRI-0001 (lidc-crops metadata), world mm LPS. */
export const LIDC1_NODULE = '56.2,86.3,-115.9';

export function lidc1Dir(): string {
  return join(lidcScansDir(), 'LIDC-IDRI-0001', LIDC1_STUDY, LIDC1_SERIES);
}

export function lidc1Files(): string[] {
  const dir = lidc1Dir();
  return readdirSync(dir)
    .filter((f) => f.endsWith('.dcm'))
    .sort()
    .map((f) => join(dir, f));
}

/** LIDC-IDRI-0001 onto the test Orthanc by STOW-RS (in a few requests, as a PACS gateway would). */
export async function uploadLidc1(): Promise<void> {
  const files = lidc1Files();
  const c = client();
  for (let i = 0; i < files.length; i += 50) await c.store(files.slice(i, i + 50).map((f) => readFileSync(f)));
}

/**
 * A small copy of LIDC-IDRI-0001 for the queue tests: the `count` slices nearest the large
 * nodule (z -115.9 mm), same UIDs. Fast to fetch, read and segment; the queue is what is tested.
 */
export async function uploadLidc1Slab(count = 24): Promise<void> {
  const { default: dicomParser } = await import('dicom-parser');
  const z = (f: string): number => {
    const ds = dicomParser.parseDicom(readFileSync(f), { untilTag: 'x00200032' });
    return Number((ds.string('x00200032') ?? '0\\0\\0').split('\\')[2]);
  };
  const files = lidc1Files()
    .map((f) => ({ f, d: Math.abs(z(f) + 115.9) }))
    .sort((a, b) => a.d - b.d)
    .slice(0, count)
    .map((x) => x.f);
  await client().store(files.map((f) => readFileSync(f)));
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** bin/noduleseg as a user runs it, with extra environment. */
export function runBin(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'noduleseg'), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, ms: performance.now() - t0 }));
  });
}

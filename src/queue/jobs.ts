/**
 * The segmentation job on the queue (BullMQ on Redis), shared by submit, worker and jobs. Light:
 * no libtorch, no BullMQ here (the commands import BullMQ in their actions).
 */
import { UserError } from '../errors.ts';
import type { Vec3 } from '../io/volume.ts';
import { canonicalJson, sha256Hex } from '../pacs/uids.ts';

export const DEFAULT_QUEUE = 'noduleseg';
/** The environment variable a Redis URL (which can hold a password) may come from instead of --redis. */
export const REDIS_ENV = 'NODULESEG_REDIS_URL';

/** Where the nodules are, in world mm (LPS): points and/or boxes (two opposite corners). */
export interface JobPrompts {
  points: Vec3[];
  boxes: Array<[Vec3, Vec3]>;
}

/** A job's data: which series, where its nodules are, and how to segment. Never credentials. */
export interface SegJobData {
  /** The DICOMweb server (public form, no credentials); a worker takes only jobs for its own server. */
  dicomweb: string;
  study: string | null;
  series: string | null;
  prompts: JobPrompts;
  threshold: number | null;
  tta: boolean;
}

export interface SegJobResult {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  seg: { seriesInstanceUid: string; sopInstanceUid: string; stored: boolean };
  sr: { seriesInstanceUid: string; sopInstanceUid: string; stored: boolean };
  nodules: unknown[];
  worker: string;
  ms: { fetch: number; segment: number; store: number; total: number };
}

export type JobStage = 'fetching' | 'segmenting' | 'storing' | 'done';

export interface JobProgress {
  stage: JobStage;
  percent: number;
}

/** The job's identity: equal data, equal id, so a job submitted twice is queued once. */
export function jobIdOf(data: SegJobData): string {
  return `seg-${sha256Hex(canonicalJson(data)).slice(0, 24)}`;
}

/** A Redis URL with its password replaced, for messages and logs. */
export function publicRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(invalid Redis URL)';
  }
}

/** The Redis URL from --redis or the environment; checked, never echoed with its password. */
export function redisUrlOf(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const url = flag ?? env[REDIS_ENV];
  if (!url) throw new UserError(`no Redis: give --redis <url> or set ${REDIS_ENV} (e.g. redis://127.0.0.1:6379)`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError('--redis: not a URL (expected redis://host:port)');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new UserError(`--redis: expected redis:// or rediss://, got ${u.protocol}`);
  return url;
}

/** BullMQ's connection options for a URL (workers need maxRetriesPerRequest null: they block on Redis). */
export function connectionOf(url: string): { url: string; maxRetriesPerRequest: null; enableOfflineQueue: boolean } {
  return { url, maxRetriesPerRequest: null, enableOfflineQueue: true };
}

/** "7d", "12h", "30m", "90s" or a number of seconds -> seconds. */
export function parseDurationS(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([smhd]?)$/.exec(text.trim());
  if (!m) throw new UserError(`${flag}: expected a duration like 90s, 30m, 12h or 7d, got "${text}"`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(m[1]) * unit);
}

/**
 * Fails fast, in one line, when Redis cannot be reached or refuses us (BullMQ's clients would wait
 * and retry for ever). ioredis is imported here, at call time: the command modules stay light.
 */
export async function checkRedis(url: string, timeoutMs = 5000): Promise<void> {
  const { Redis } = await import('ioredis');
  const r = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    enableOfflineQueue: false,
  });
  let cause = '';
  // The first connection error, reported below.
  r.on('error', (e: Error & { code?: string }) => {
    cause ||= `${e.code ?? ''} ${e.message}`;
  });
  try {
    await r.connect();
    await r.ping();
  } catch (e) {
    const m = `${cause} ${e instanceof Error ? e.message : String(e)}`;
    const why = /NOAUTH|WRONGPASS|invalid password|invalid username/i.test(m)
      ? 'Redis refused the credentials'
      : /ECONNREFUSED/.test(m)
        ? 'cannot reach Redis (connection refused)'
        : /ENOTFOUND|EAI_AGAIN/.test(m)
          ? 'cannot reach Redis (unknown host)'
          : /timeout|ETIMEDOUT/i.test(m)
            ? `cannot reach Redis (no answer within ${Math.round(timeoutMs / 1000)} s)`
            : 'cannot reach Redis';
    throw new UserError(`${publicRedisUrl(url)}: ${why}`);
  } finally {
    r.disconnect();
  }
}

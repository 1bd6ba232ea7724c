/** `noduleseg jobs`: the queue's jobs and their states, results and errors; the dead-letter list. */
import { type Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { UserError } from '../errors.ts';
import { type DeadLetter, deadLetterKey } from './dead-letter.ts';
import { checkRedis, connectionOf, type JobProgress, type SegJobData, type SegJobResult } from './jobs.ts';

export const STATES = ['waiting', 'active', 'delayed', 'completed', 'failed'] as const;
export type State = (typeof STATES)[number];

export interface JobRow {
  id: string;
  state: string;
  progress: JobProgress | null;
  attempts: number;
  study: string | null;
  series: string | null;
  prompts: number;
  result: SegJobResult | null;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
}

export interface ListOptions {
  redisUrl: string;
  queue: string;
  states: State[];
  limit: number;
}

export function parseStates(text: string | undefined): State[] {
  if (!text) return [...STATES];
  const s = text
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  const bad = s.find((x) => !(STATES as readonly string[]).includes(x));
  if (bad) throw new UserError(`--state: "${bad}" is not one of ${STATES.join(', ')}`);
  return s as State[];
}

async function rowOf(job: Job<SegJobData, SegJobResult>): Promise<JobRow> {
  const p = job.progress as unknown;
  return {
    id: String(job.id),
    state: await job.getState(),
    progress: p && typeof p === 'object' && 'stage' in p ? (p as JobProgress) : null,
    attempts: job.attemptsMade,
    study: job.data.study,
    series: job.data.series,
    prompts: job.data.prompts.points.length + job.data.prompts.boxes.length,
    result: job.returnvalue ?? null,
    error: job.failedReason || null,
    createdAt: new Date(job.timestamp).toISOString(),
    finishedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
  };
}

export async function listJobs(o: ListOptions): Promise<{ counts: Record<string, number>; jobs: JobRow[] }> {
  await checkRedis(o.redisUrl);
  const queue = new Queue<SegJobData, SegJobResult>(o.queue, { connection: connectionOf(o.redisUrl) });
  try {
    const counts = await queue.getJobCounts(...STATES);
    const jobs = await queue.getJobs(o.states, 0, o.limit - 1, true);
    return { counts, jobs: await Promise.all(jobs.filter((j): j is Job<SegJobData, SegJobResult> => Boolean(j)).map(rowOf)) };
  } finally {
    await queue.close();
  }
}

export async function deadLetters(redisUrl: string, queue: string, limit: number): Promise<DeadLetter[]> {
  await checkRedis(redisUrl);
  const r = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    const entries = await r.zrevrange(deadLetterKey(queue), 0, limit - 1);
    return entries.map((e) => JSON.parse(e) as DeadLetter);
  } finally {
    r.disconnect();
  }
}

/** One line per job, for a terminal. */
export function formatRow(j: JobRow): string {
  const where = j.study
    ? `study …${j.study.slice(-12)}${j.series ? ` series …${j.series.slice(-12)}` : ''}`
    : `series …${(j.series ?? '').slice(-12)}`;
  const progress = j.state === 'active' && j.progress ? ` ${j.progress.stage} ${j.progress.percent}%` : '';
  const tail =
    j.state === 'completed' && j.result
      ? `SEG ${j.result.seg.seriesInstanceUid}${j.result.seg.stored ? '' : ' (already stored)'}, ${j.result.nodules.length} nodule(s), ${(j.result.ms.total / 1000).toFixed(1)} s on ${j.result.worker}`
      : j.error
        ? `error: ${j.error.split('\n')[0]}`
        : '';
  return `${j.id}  ${j.state}${progress}  attempts ${j.attempts}  ${where}  ${j.prompts} prompt(s)${tail ? `  ${tail}` : ''}`;
}

/** `noduleseg submit`: segmentation jobs onto the queue (see src/cli/submit.ts for the options). */
import { Queue, QueueEvents } from 'bullmq';
import { UserError } from '../errors.ts';
import type { Vec3 } from '../io/volume.ts';
import { parseBoxes, parseTriples } from '../cli/segment.ts';
import { checkServerUrl, publicUrl } from '../pacs/auth.ts';
import { checkUid } from '../pacs/dicomweb.ts';
import { readCandidatesCsv } from '../io/candidates.ts';
import {
  checkRedis,
  connectionOf,
  type JobPrompts,
  type SegJobData,
  type SegJobResult,
  jobIdOf,
  parseDurationS,
  publicRedisUrl,
} from './jobs.ts';

export interface SubmitOptions {
  redisUrl: string;
  queue: string;
  dicomweb: string;
  study?: string;
  series?: string;
  point?: string;
  box?: string;
  points?: string;
  threshold?: number;
  tta?: boolean;
  attempts: number;
  backoffS: number;
  keep: string;
  wait?: boolean;
  /** Where lines go: job ids to `out` (one per line, for scripts), messages to `err`. */
  out: (line: string) => void;
  err: (line: string) => void;
}

/** The jobs these options describe: one per series (a candidates CSV with a seriesuid column and no --study/--series gives one per series in it). */
export function jobsOf(o: Omit<SubmitOptions, 'redisUrl' | 'queue' | 'attempts' | 'backoffS' | 'keep' | 'out' | 'err'>): SegJobData[] {
  const server = publicUrl(checkServerUrl(o.dicomweb));
  if (o.study !== undefined) checkUid(o.study, '--study');
  if (o.series !== undefined) checkUid(o.series, '--series');
  const points: Vec3[] = o.point ? parseTriples(o.point, '--point') : [];
  const boxes: Array<[Vec3, Vec3]> = o.box ? parseBoxes(o.box, '--box') : [];
  const candidates = o.points ? readCandidatesCsv(o.points) : [];
  if (points.length + boxes.length + candidates.length === 0)
    throw new UserError('say where the nodules are: --point, --box or --points <csv>');
  const base = { dicomweb: server, threshold: o.threshold ?? null, tta: o.tta ?? false };
  const job = (study: string | null, series: string | null, prompts: JobPrompts): SegJobData => ({ ...base, study, series, prompts });
  if (o.study === undefined && o.series === undefined) {
    // A candidates list over many series: one job per series, its study found by the worker.
    if (points.length + boxes.length > 0 || candidates.some((c) => c.seriesUid === null)) {
      throw new UserError('give --study <uid> (and --series), or --points with a CSV that has a seriesuid column');
    }
    const bySeries = new Map<string, Vec3[]>();
    for (const c of candidates)
      bySeries.set(checkUid(c.seriesUid!, `${o.points}: seriesuid`), [...(bySeries.get(c.seriesUid!) ?? []), c.point]);
    return [...bySeries].map(([series, pts]) => job(null, series, { points: pts, boxes: [] }));
  }
  // One series: a CSV's rows of other series (when it names them) are not ours.
  const mine = candidates.filter((c) => c.seriesUid === null || o.series === undefined || c.seriesUid === o.series).map((c) => c.point);
  if (o.points && points.length + boxes.length + mine.length === 0) throw new UserError(`${o.points}: no row for series ${o.series}`);
  return [job(o.study ?? null, o.series ?? null, { points: [...points, ...mine], boxes })];
}

export async function submit(o: SubmitOptions): Promise<void> {
  const jobs = jobsOf(o);
  const keepS = parseDurationS(o.keep, '--keep');
  await checkRedis(o.redisUrl);
  const connection = connectionOf(o.redisUrl);
  const queue = new Queue<SegJobData, SegJobResult>(o.queue, { connection });
  const events = o.wait ? new QueueEvents(o.queue, { connection }) : null;
  try {
    if (events) await events.waitUntilReady();
    const ids: string[] = [];
    for (const data of jobs) {
      const id = jobIdOf(data);
      ids.push(id);
      const existing = await queue.getJob(id);
      const what = data.study ? `study ${data.study}${data.series ? ` series ${data.series}` : ''}` : `series ${data.series}`;
      const n = data.prompts.points.length + data.prompts.boxes.length;
      if (existing) {
        o.err(`${id}: already on the queue (${await existing.getState()}), not added again: ${what}`);
      } else {
        await queue.add('segment', data, {
          jobId: id,
          attempts: o.attempts,
          backoff: { type: 'exponential', delay: o.backoffS * 1000 },
          removeOnComplete: { age: keepS },
          removeOnFail: { age: keepS },
        });
        o.err(`${id}: queued on ${o.queue} (${publicRedisUrl(o.redisUrl)}): ${what}, ${n} prompt${n === 1 ? '' : 's'}`);
      }
      o.out(id);
    }
    if (events) {
      let failed = 0;
      for (const id of ids) {
        const job = await queue.getJob(id);
        if (!job) continue;
        try {
          const r = (await job.waitUntilFinished(events)) as SegJobResult;
          o.err(`${id}: done; SEG series ${r.seg.seriesInstanceUid}${r.seg.stored ? '' : ' (already stored)'}`);
        } catch (e) {
          failed++;
          o.err(`${id}: failed: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
      if (failed) throw new UserError(`${failed} of ${ids.length} job(s) failed (noduleseg jobs --state failed shows them)`);
    }
  } finally {
    await events?.close();
    await queue.close();
  }
}

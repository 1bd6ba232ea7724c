/**
 * Removing finished jobs whose keep time (`submit --keep`) has passed. BullMQ applies a job's
 * removeOnComplete/removeOnFail age only when some later job finishes, so on a queue that has gone
 * quiet an expired result would stay in Redis for good; the worker runs this sweep at start and
 * then periodically.
 */
import type { Job, Queue } from 'bullmq';

/** The keep time (s) a finished job was submitted with; null when it is kept until removed by hand. */
export function keepSecondsOf(job: Pick<Job, 'opts'>, state: 'completed' | 'failed'): number | null {
  const keep = state === 'completed' ? job.opts.removeOnComplete : job.opts.removeOnFail;
  if (typeof keep === 'object' && keep !== null && 'age' in keep && typeof keep.age === 'number') return keep.age;
  return null;
}

/** Finished jobs of `queue` past their keep time at `nowMs`, removed; returns how many. */
export async function sweepExpired(queue: Queue, nowMs: number = Date.now(), pageSize = 500): Promise<number> {
  let removed = 0;
  for (const state of ['completed', 'failed'] as const) {
    // Oldest first, page by page; a job kept longer than the ones after it does not stop the walk.
    for (let start = 0; ; start += pageSize) {
      const jobs = await queue.getJobs([state], start, start + pageSize - 1, true);
      if (jobs.length === 0) break;
      let removedHere = 0;
      for (const job of jobs) {
        const keepS = keepSecondsOf(job, state);
        if (keepS === null || job.finishedOn === undefined || job.finishedOn + keepS * 1000 > nowMs) continue;
        await job.remove().then(
          () => removedHere++,
          () => undefined, // taken by another worker's sweep or by BullMQ meanwhile
        );
      }
      removed += removedHere;
      start -= removedHere; // removed jobs leave the list: the next page starts that much earlier
      if (jobs.length < pageSize) break;
    }
  }
  return removed;
}

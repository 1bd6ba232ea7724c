import type { Command } from 'commander';
import { positiveIntArg } from './args.ts';

interface JobsCliOptions {
  redis?: string;
  queue: string;
  state?: string;
  limit: number;
  json?: boolean;
  deadLetter?: boolean;
}

export function register(program: Command): void {
  program
    .command('jobs')
    .description(
      "list the queue's jobs: state, progress, attempts, result (the stored SEG) or error; --dead-letter for jobs that failed for good",
    )
    .option('--redis <url>', 'Redis (redis://host:port; default $NODULESEG_REDIS_URL)')
    .option('--queue <name>', 'queue name', 'noduleseg')
    .option('--state <states>', 'only these states, comma-separated: waiting, active, delayed, completed, failed')
    .option('--limit <n>', 'at most this many jobs per state', positiveIntArg('--limit'), 100)
    .option('--json', 'JSON (with the full results: nodules, UIDs, timings)')
    .option('--dead-letter', 'the dead-letter list (jobs that failed for good, with their error)')
    .action(async (opts: JobsCliOptions) => {
      const { redisUrlOf } = await import('../queue/jobs.ts');
      const { listJobs, deadLetters, parseStates, formatRow } = await import('../queue/list.ts');
      const redisUrl = redisUrlOf(opts.redis);
      if (opts.deadLetter) {
        const dead = await deadLetters(redisUrl, opts.queue, opts.limit);
        if (opts.json) process.stdout.write(`${JSON.stringify(dead, null, 2)}\n`);
        else
          for (const d of dead)
            process.stdout.write(
              `${d.id}  failed ${d.failedAt} after ${d.attempts} attempt(s) on ${d.worker}: ${d.error.split('\n')[0]}\n`,
            );
        return;
      }
      const { counts, jobs } = await listJobs({ redisUrl, queue: opts.queue, states: parseStates(opts.state), limit: opts.limit });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ counts, jobs }, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        `${Object.entries(counts)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}\n`,
      );
      for (const j of jobs) process.stdout.write(`${formatRow(j)}\n`);
    });
}

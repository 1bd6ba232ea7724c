import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { DEFAULT_MODEL } from './segment.ts';
import { nonNegativeIntArg, positiveNumberArg } from './args.ts';

interface WorkerCliOptions {
  redis?: string;
  queue: string;
  dicomweb?: string;
  dicomwebAuth?: string;
  model: string;
  threads?: number;
  lockSeconds: number;
  stalledSeconds: number;
  sweepEvery: string;
}

export function register(program: Command): void {
  program
    .command('worker')
    .description(
      'run queued segmentation jobs (from `noduleseg submit`): one model load, one job at a time; run as many as you like, on any machines that reach Redis and the DICOMweb server',
    )
    .option('--redis <url>', 'Redis (redis://host:port; default $NODULESEG_REDIS_URL)')
    .option('--queue <name>', 'queue name', 'noduleseg')
    .option(
      '--dicomweb <url>',
      'the DICOMweb server this worker fetches from and stores to (jobs for another are refused). Credentials: NODULESEG_DICOMWEB_USER/_PASSWORD, _TOKEN or --dicomweb-auth',
    )
    .option('--dicomweb-auth <file>', 'a JSON file {"username","password"} or {"token"}')
    .option('-m, --model <file>', 'model file', DEFAULT_MODEL)
    .option('--threads <n>', 'intra-op threads (default: all cores)', nonNegativeIntArg('--threads'))
    .option(
      '--lock-seconds <s>',
      "job lock, renewed while the job runs; a killed worker's job is taken over after it lapses",
      positiveNumberArg('--lock-seconds'),
      30,
    )
    .option('--stalled-seconds <s>', 'how often to look for jobs of killed workers', positiveNumberArg('--stalled-seconds'), 30)
    .option('--sweep-every <duration>', 'how often to remove results and errors past their keep time (submit --keep): 90s, 30m, 12h', '10m')
    .action(async (opts: WorkerCliOptions) => {
      if (!opts.dicomweb) throw new UserError('--dicomweb <url> is required (the server this worker serves)');
      if (!existsSync(opts.model)) throw new UserError(`${opts.model}: model file not found`);
      const { redisUrlOf, checkRedis, parseDurationS } = await import('../queue/jobs.ts');
      const sweepMs = parseDurationS(opts.sweepEvery, '--sweep-every') * 1000;
      if (sweepMs <= 0) throw new UserError(`--sweep-every: expected a duration above zero, got "${opts.sweepEvery}"`);
      const { resolveAuth } = await import('../pacs/auth.ts');
      const { startWorker } = await import('../queue/worker.ts');
      const redisUrl = redisUrlOf(opts.redis);
      const auth = resolveAuth(opts.dicomwebAuth);
      await checkRedis(redisUrl);
      const log = (line: string): void => void process.stderr.write(`${new Date().toISOString()} ${line}\n`);
      const w = await startWorker({
        redisUrl,
        queue: opts.queue,
        dicomweb: opts.dicomweb,
        auth,
        modelFile: opts.model,
        threads: opts.threads || null,
        lockMs: Math.round(opts.lockSeconds * 1000),
        stalledMs: Math.round(opts.stalledSeconds * 1000),
        sweepMs,
        log,
      });
      // SIGTERM/SIGINT: finish the running job, take no other, then exit. A second signal exits at
      // once; the job's lock then lapses and another worker takes it over.
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals): void => {
        if (++signals > 1) {
          log(`${sig} again: exiting now; the running job will be taken over by another worker`);
          process.exit(1);
        }
        log(`${sig}: finishing the running job, then stopping`);
        void w.stop();
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      await w.done;
      log('worker stopped');
    });
}

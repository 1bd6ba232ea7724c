import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { positiveIntArg, nonNegativeIntArg } from './args.ts';

interface SubmitCliOptions {
  redis?: string;
  queue: string;
  dicomweb?: string;
  study?: string;
  series?: string;
  point?: string;
  box?: string;
  points?: string;
  threshold?: string;
  tta?: boolean;
  attempts: number;
  backoffSeconds: number;
  keep: string;
  wait?: boolean;
}

export function register(program: Command): void {
  program
    .command('submit')
    .description(
      'put segmentation jobs (a study or series on a DICOMweb server and where its nodules are) on the job queue in Redis; `noduleseg worker` runs them',
    )
    .option('--redis <url>', 'Redis (redis://host:port; default $NODULESEG_REDIS_URL, which keeps a password off the command line)')
    .option('--queue <name>', 'queue name', 'noduleseg')
    .option('--dicomweb <url>', 'the DICOMweb server holding the series (the workers store the SEG there)')
    .option('--study <uid>', 'Study Instance UID')
    .option('--series <uid>', "Series Instance UID (default: the study's largest CT series)")
    .option('--point <x,y,z>', 'nodule position in world mm (LPS); repeatable as "x,y,z;x,y,z"')
    .option('--box <x0,y0,z0,x1,y1,z1>', 'a box around a nodule, two opposite corners in world mm; repeatable with ";"')
    .option(
      '--points <csv>',
      'LUNA16-style CSV (coordX,coordY,coordZ); with a seriesuid column and no --study/--series, one job per series',
    )
    .option('--threshold <p>', "probability threshold (default: the model's)")
    .option('--tta', 'average over flipped inputs')
    .option('--attempts <n>', 'tries before a job goes to the dead-letter list', positiveIntArg('--attempts'), 3)
    .option('--backoff-seconds <s>', 'first retry after this long, then doubling', nonNegativeIntArg('--backoff-seconds'), 10)
    .option('--keep <duration>', 'how long results and errors stay in Redis (90s, 30m, 12h, 7d)', '7d')
    .option('--wait', 'wait for the jobs to finish and print their outcome')
    .action(async (opts: SubmitCliOptions) => {
      const { redisUrlOf } = await import('../queue/jobs.ts');
      const { submit } = await import('../queue/submit.ts');
      if (!opts.dicomweb) throw new UserError('--dicomweb <url> is required (the server the workers fetch from and store to)');
      const threshold = opts.threshold === undefined ? undefined : Number(opts.threshold);
      if (threshold !== undefined && !(threshold > 0 && threshold < 1))
        throw new UserError(`--threshold: expected a probability in (0, 1), got "${opts.threshold}"`);
      await submit({
        redisUrl: redisUrlOf(opts.redis),
        queue: opts.queue,
        dicomweb: opts.dicomweb,
        study: opts.study,
        series: opts.series,
        point: opts.point,
        box: opts.box,
        points: opts.points,
        threshold,
        tta: opts.tta,
        attempts: opts.attempts,
        backoffS: opts.backoffSeconds,
        keep: opts.keep,
        wait: opts.wait,
        out: (l) => process.stdout.write(`${l}\n`),
        err: (l) => process.stderr.write(`${l}\n`),
      });
    });
}

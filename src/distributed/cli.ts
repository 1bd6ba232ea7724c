/**
 * The data-parallel part of `train` and `finetune`: their options, `--nproc n` (start n local
 * workers of the same command line), and joining the group that a launcher's variables describe.
 */
import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { DEFAULT_TIMEOUT_SECONDS, DistributedError, ProcessGroup, distEnvFrom } from './group.ts';
import { launchLocal, withoutNproc } from './launch.ts';
import type { DistributedTraining } from './index.ts';

export interface DataParallelCliOptions {
  nproc?: number;
  syncBn?: boolean;
  distTimeout?: number;
}

function positiveInt(flag: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UserError(`${flag}: expected a positive integer, got "${v}"`);
    return n;
  };
}

function positiveSeconds(flag: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!(Number.isFinite(n) && n > 0)) throw new UserError(`${flag}: expected a positive number of seconds, got "${v}"`);
    return n;
  };
}

export function addDataParallelOptions(cmd: Command): Command {
  return cmd
    .option(
      '--nproc <n>',
      'data-parallel: start n local workers (each trains on its shard of every epoch, the batch size per worker)',
      positiveInt('--nproc'),
    )
    .option('--sync-bn', 'data-parallel: batch norm over the global batch of all workers (default: each worker its own)')
    .option(
      '--dist-timeout <seconds>',
      `data-parallel: a collective (or waiting while rank 0 validates) fails after this long (default ${DEFAULT_TIMEOUT_SECONDS})`,
      positiveSeconds('--dist-timeout'),
    );
}

/**
 * Runs `body` as this process's part of the run: with `--nproc n` (n > 1) starts the workers and
 * waits for them instead; under a launcher (WORLD_SIZE, RANK, ... set) joins its group first.
 * `body` gets the group (undefined when alone) and whether this process reports (rank 0).
 */
export async function runDataParallel(
  opts: DataParallelCliOptions,
  body: (dist: DistributedTraining | undefined, isMain: boolean) => Promise<void>,
): Promise<void> {
  const env = distEnvFrom();
  if (opts.nproc !== undefined && opts.nproc > 1) {
    if (env)
      throw new UserError(
        `--nproc ${opts.nproc}: this process is already worker ${env.rank} of ${env.worldSize} (WORLD_SIZE is set); use one or the other`,
      );
    const code = await launchLocal(opts.nproc, {
      command: process.execPath,
      args: [...process.execArgv, ...withoutNproc(process.argv.slice(1))],
    });
    if (code !== 0)
      throw new DistributedError(
        `data-parallel run of ${opts.nproc} workers failed (exit code ${code}); the last checkpoint resumes it with --resume`,
      );
    return;
  }
  if (!env) {
    if (opts.syncBn) process.stderr.write('--sync-bn: one worker, whose batch norm already spans its whole batch\n');
    await body(undefined, true);
    return;
  }
  const group = ProcessGroup.init(env, opts.distTimeout !== undefined ? { timeoutSeconds: opts.distTimeout } : {});
  try {
    if (group.isMain)
      process.stderr.write(
        `data-parallel: ${group.worldSize} workers, rendezvous at ${env.masterAddr}:${env.masterPort}, Gloo${opts.syncBn ? ', sync-bn' : ''}\n`,
      );
    await body({ group, syncBn: opts.syncBn ?? false }, group.isMain);
    // Nobody leaves while a peer may still need it (rank 0 hosts the store).
    group.barrier();
  } finally {
    group.shutdown();
  }
}

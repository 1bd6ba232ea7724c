/**
 * `npm run bench:ddp`: training throughput (samples/s) of the shipped architecture (joint 2D
 * network, 64 x 64 slices, batch 16 per worker, the trainer's own loop on synthetic crops) as
 * 1 worker x 1 thread, 1 worker x 2 threads, and 2 data-parallel workers x 1 thread (Gloo on
 * loopback). Each runs WARMUP steps, then TIMED steps are timed on rank 0. Ends with the line
 *   ratio ddp2=<2 workers / 1 worker x 1 thread> threads2=<1 worker x 2 threads / 1 worker x 1 thread>
 * Run it on an otherwise idle machine: it measures speed. BENCH_STEPS=n changes TIMED.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WARMUP = 3;
const TIMED = Number(process.env.BENCH_STEPS ?? 8);
const BATCH_PER_WORKER = 16;
const CROPS = 48;

interface Job {
  data: string;
  outDir: string;
  threads: number;
}

/** One worker: trains WARMUP + TIMED steps; rank 0 prints `samples/s <x>` over the timed steps. */
async function worker(job: Job): Promise<void> {
  const { setNumThreads } = await import('../src/tensor/index.ts');
  const { ProcessGroup, distEnvFrom } = await import('../src/distributed/index.ts');
  const { resolveTrainConfig } = await import('../src/train/config.ts');
  const { train } = await import('../src/train/trainer.ts');
  const { loadCropFolder } = await import('../src/transfer/index.ts');
  setNumThreads(job.threads);
  const env = distEnvFrom();
  const group = env ? ProcessGroup.init(env, { timeoutSeconds: 300 }) : null;
  const world = group?.worldSize ?? 1;
  const cfg = resolveTrainConfig(
    {
      name: 'bench-ddp',
      model: { arch: 'joint' },
      augment: { flip: true, rot90: false, rotateScaleProb: 0, intensityScale: 0, intensityShift: 0 },
      loss: { diceOver: 'sample' },
      batchSize: BATCH_PER_WORKER,
      maxSteps: WARMUP + TIMED,
      threads: job.threads,
    },
    'bench',
  );
  let t0 = 0;
  let t1 = 0;
  try {
    train(cfg, {
      outDir: job.outDir,
      cases: { train: loadCropFolder(job.data).cases, val: [] },
      ...(group ? { distributed: { group, syncBn: false } } : {}),
      events: {
        onStep: (step) => {
          if (step === WARMUP) t0 = performance.now();
          if (step === WARMUP + TIMED) t1 = performance.now();
        },
      },
    });
    group?.barrier();
  } finally {
    group?.shutdown();
  }
  if (!group || group.isMain) process.stdout.write(`samples/s ${((TIMED * BATCH_PER_WORKER * world) / ((t1 - t0) / 1000)).toFixed(3)}\n`);
}

async function run(data: string, tmp: string, name: string, workers: number, threads: number): Promise<number> {
  const { freePort } = await import('../src/distributed/launch.ts');
  const self = fileURLToPath(import.meta.url);
  const port = await freePort();
  const procs = Array.from({ length: workers }, (_, rank) => {
    const job: Job = { data, outDir: join(tmp, `${name}-${rank}`), threads };
    const env = {
      ...process.env,
      OMP_NUM_THREADS: String(threads),
      ...(workers > 1
        ? { MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), WORLD_SIZE: String(workers), RANK: String(rank), LOCAL_RANK: String(rank) }
        : {}),
    };
    const child = spawn(process.execPath, ['--import', 'tsx', self, '--worker', JSON.stringify(job)], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    return new Promise<string>((resolve, reject) =>
      child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${name} rank ${rank} exited with ${code}`)))),
    );
  });
  return Promise.all(procs).then((outs) => {
    const m = /samples\/s ([\d.]+)/.exec(outs.join('\n'));
    if (!m) throw new Error(`${name}: no measurement`);
    return Number(m[1]);
  });
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'noduleseg-bench-ddp-'));
  try {
    const { writeSynthSet } = await import('../src/synth/index.ts');
    const data = join(tmp, 'data');
    writeSynthSet(data, {
      count: CROPS,
      seed: 5,
      valFraction: 0,
      overrides: { dims: [64, 64, 8], spacingMm: [0.7, 0.7, 1.5], supersample: 1 },
    });
    process.stdout.write(
      `joint 2D network, batch ${BATCH_PER_WORKER} per worker, ${WARMUP} warm-up + ${TIMED} timed steps, ${CROPS} synthetic crops\n`,
    );
    const one = await run(data, tmp, '1x1', 1, 1);
    process.stdout.write(`1 worker x 1 thread:   ${one.toFixed(2)} samples/s\n`);
    const threads2 = await run(data, tmp, '1x2', 1, 2);
    process.stdout.write(`1 worker x 2 threads:  ${threads2.toFixed(2)} samples/s\n`);
    const ddp2 = await run(data, tmp, '2x1', 2, 1);
    process.stdout.write(`2 workers x 1 thread:  ${ddp2.toFixed(2)} samples/s (data-parallel, Gloo on loopback)\n`);
    process.stdout.write(`ratio ddp2=${(ddp2 / one).toFixed(2)} threads2=${(threads2 / one).toFixed(2)}\n`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const i = process.argv.indexOf('--worker');
if (i >= 0) await worker(JSON.parse(process.argv[i + 1]!) as Job);
else await main();

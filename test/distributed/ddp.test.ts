// Data-parallel training on c10d (Gloo) with real worker processes on loopback: 2 workers with
// batch b end where 1 worker with batch 2b does (without batch norm, and with --sync-bn); a killed
// worker makes the other fail fast, naming it, and the run resumes with another world size.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildModel } from '../../src/models/index.ts';
import { spawnSync } from 'node:child_process';
import { ProcessGroup, SyncBatchNorm, distEnvFrom, freePort, shardOf, withoutNproc } from '../../src/distributed/index.ts';
import { manualSeed, randn, tidy } from '../../src/tensor/index.ts';
import { DEFAULT_SLICE_CONFIG, type SizeBins } from '../../src/data/index.ts';
import { readModelInfo } from '../../src/models/index.ts';
import { tempDir, writeTinyData, writeTinySource } from '../transfer/helpers.ts';
import { runWorker, workerConfig, type WorkerSpec } from './worker.ts';

// setup.sh builds native/c10d except against a LIBTORCH without Gloo's headers.
const libtorch = process.env['LIBTORCH'];
const skip =
  libtorch && !existsSync(join(libtorch, 'include', 'gloo', 'config.h'))
    ? `${libtorch} has no include/gloo: the c10d addon is not built`
    : false;
const dir = tempDir('ddp');
after(() => rmSync(dir, { recursive: true, force: true }));
const data = writeTinyData(dir, 8);
const WORKER = join(import.meta.dirname, 'worker.ts');
const STEPS = 5;
const B = 4;

type Weights = Record<string, number[]>;
const BINS: SizeBins = {
  format: 'noduleseg.size-bins',
  version: 1,
  edgesMm2: [15, 40],
  classes: ['none', 'small', 'medium', 'large'],
  nonzeroSlices: 0,
  source: 'test',
};

function spec(name: string, over: Partial<WorkerSpec>): WorkerSpec {
  const outDir = join(dir, name);
  const weightsDir = join(outDir, 'weights');
  mkdirSync(weightsDir, { recursive: true });
  return {
    data,
    outDir,
    weightsDir,
    batchSize: B,
    maxSteps: STEPS,
    norm: 'group',
    syncBn: false,
    resume: false,
    timeoutSeconds: 60,
    ...over,
  };
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** ms from start. */
  at: number;
}

function startWorkers(
  s: WorkerSpec | WorkerSpec[],
  worldSize: number,
  port: number,
): { pids: (number | undefined)[]; kill: (rank: number) => void; exits: Promise<Exit>[] } {
  const t0 = performance.now();
  const children = Array.from({ length: worldSize }, (_, rank) =>
    spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(s)], {
      env: {
        ...process.env,
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        WORLD_SIZE: String(worldSize),
        RANK: String(rank),
        LOCAL_RANK: String(rank),
        OMP_NUM_THREADS: '1',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  const exits = children.map(
    (c) =>
      new Promise<Exit>((resolve) => {
        let stderr = '';
        c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        c.on('close', (code, signal) => resolve({ code, signal, stderr, at: performance.now() - t0 }));
      }),
  );
  return { pids: children.map((c) => c.pid), kill: (rank) => children[rank]!.kill('SIGKILL'), exits };
}

/** Runs the specs one after the other on the same worker processes; each spec's weights by rank. */
async function runWorkers(specs: WorkerSpec[], worldSize: number): Promise<Weights[][]> {
  const { exits } = startWorkers(specs, worldSize, await freePort());
  const done = await Promise.all(exits);
  done.forEach((e, r) => {
    assert.equal(e.code, 0, `rank ${r} failed:\n${e.stderr}`);
  });
  return specs.map((s) => done.map((_, r) => JSON.parse(readFileSync(join(s.weightsDir, `rank${r}.json`), 'utf8')) as Weights));
}

// One pair of worker processes trains the three set-ups in turn (starting processes is the slow part).
let pairRuns: Promise<Weights[][]> | undefined;
function pairResults(): Promise<Weights[][]> {
  // Buckets of 1 KB: the gradients go in several all-reduces, as a real model's do.
  pairRuns ??= runWorkers(
    [
      spec('ddp-group', { bucketCapMb: 1 / 1024 }),
      spec('ddp-syncbn', { norm: 'batch', syncBn: true }),
      spec('ddp-bn', { norm: 'batch', syncBn: false }),
      spec('ddp-joint', { arch: 'joint', norm: 'batch', syncBn: true }),
    ],
    2,
  );
  return pairRuns;
}

function maxDiff(a: Weights, b: Weights): number {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  let m = 0;
  for (const k of Object.keys(a)) {
    a[k]!.forEach((v, i) => {
      m = Math.max(m, Math.abs(v - b[k]![i]!));
    });
  }
  return m;
}

function initialWeights(s: WorkerSpec): Weights {
  const cfg = workerConfig(s);
  manualSeed(cfg.seed);
  const model = buildModel(cfg.model, cfg.slice, BINS);
  const out: Weights = {};
  for (const [k, t] of Object.entries(model.stateDict())) if (t.dtype === 'float32') out[k] = Array.from(t.toTypedArray() as Float32Array);
  model.dispose();
  return out;
}

function reference(name: string, norm: WorkerSpec['norm'], arch: WorkerSpec['arch'] = 'unet'): Weights {
  const s = spec(name, { batchSize: 2 * B, norm, arch });
  runWorker(s, null);
  return JSON.parse(readFileSync(join(s.weightsDir, 'rank0.json'), 'utf8')) as Weights;
}

test('shards: DistributedSampler order (padded by the head, rank r takes r, r + W, ...)', () => {
  const order = Int32Array.from([5, 3, 9, 0, 7]);
  assert.deepEqual(Array.from(shardOf(order, 0, 2)), [5, 9, 7]);
  assert.deepEqual(Array.from(shardOf(order, 1, 2)), [3, 0, 5]);
  // Batch k of every rank together: batch k of one worker with W times the batch.
  const both = [...shardOf(order, 0, 2).subarray(0, 2), ...shardOf(order, 1, 2).subarray(0, 2)].sort();
  assert.deepEqual(both, Array.from(order.subarray(0, 4)).sort());
  assert.throws(() => shardOf(order, 2, 2), /rank 2 of 2/);
});

test('the launcher variables: torchrun ones, Slurm ones as fallback, errors naming the variable', () => {
  assert.equal(distEnvFrom({}), null);
  assert.equal(distEnvFrom({ WORLD_SIZE: '1', RANK: '0' }), null);
  assert.deepEqual(distEnvFrom({ MASTER_ADDR: 'h', MASTER_PORT: '29500', WORLD_SIZE: '4', RANK: '3', LOCAL_RANK: '1' }), {
    masterAddr: 'h',
    masterPort: 29500,
    worldSize: 4,
    rank: 3,
    localRank: 1,
  });
  assert.deepEqual(distEnvFrom({ MASTER_ADDR: 'h', MASTER_PORT: '29500', SLURM_NTASKS: '2', SLURM_PROCID: '1', SLURM_LOCALID: '0' }), {
    masterAddr: 'h',
    masterPort: 29500,
    worldSize: 2,
    rank: 1,
    localRank: 0,
  });
  // Inside a Slurm allocation without MASTER_ADDR: not a distributed run.
  assert.equal(distEnvFrom({ SLURM_NTASKS: '2', SLURM_PROCID: '1' }), null);
  assert.throws(() => distEnvFrom({ WORLD_SIZE: '2', RANK: '0', MASTER_PORT: '1' }), /MASTER_ADDR is not set/);
  assert.throws(() => distEnvFrom({ MASTER_ADDR: 'h', MASTER_PORT: '99999', WORLD_SIZE: '2', RANK: '0' }), /MASTER_PORT=99999/);
  assert.throws(() => distEnvFrom({ MASTER_ADDR: 'h', MASTER_PORT: '1', WORLD_SIZE: '2', RANK: '2' }), /RANK=2 must be below WORLD_SIZE=2/);
  assert.throws(
    () => distEnvFrom({ MASTER_ADDR: 'h', MASTER_PORT: '1', WORLD_SIZE: 'two', RANK: '0' }),
    /WORLD_SIZE=two: expected an integer/,
  );
  assert.deepEqual(withoutNproc(['train', '--nproc', '2', '-c', 'x', '--nproc=3', '--sync-bn']), ['train', '-c', 'x', '--sync-bn']);
});

test('sync-bn in a world of one: the same gradients as batch norm (residual blocks: an add feeds two batch norms)', { skip }, async () => {
  const group = ProcessGroup.init(
    { masterAddr: '127.0.0.1', masterPort: await freePort(), worldSize: 1, rank: 0, localRank: 0 },
    { timeoutSeconds: 30 },
  );
  const grads = (sync: boolean): Map<string, number[]> => {
    manualSeed(3);
    const model = buildModel(
      { arch: 'resunet', inChannels: 1, features: [4, 8], norm: 'batch' },
      { ...DEFAULT_SLICE_CONFIG, patchSize: 32 },
      BINS,
    );
    model.train();
    const sbn = sync ? new SyncBatchNorm(group) : null;
    sbn?.convert(model);
    manualSeed(11);
    tidy(() => {
      const out = model.forward(randn([4, 1, 32, 32]));
      const loss = out.maskLogits.mul(out.maskLogits).mean();
      if (sbn) sbn.backward(loss);
      else loss.backward();
    });
    const g = new Map(model.namedParameters().map(([k, p]) => [k, Array.from((p.grad?.toTypedArray() as Float32Array | undefined) ?? [])]));
    model.dispose();
    return g;
  };
  try {
    const plain = grads(false);
    const synced = grads(true);
    let worst = 0;
    for (const [k, a] of plain) {
      const b = synced.get(k)!;
      assert.equal(b.length, a.length, k);
      a.forEach((v, i) => {
        worst = Math.max(worst, Math.abs(v - b[i]!) / (1e-3 + Math.abs(v)));
      });
    }
    assert.ok(worst < 1e-3, `sync-bn gradients differ from batch norm by ${worst} (relative)`);
  } finally {
    group.shutdown();
  }
});

test('2 workers x batch b == 1 worker x batch 2b after 5 steps (group norm, no batch norm)', { skip }, async () => {
  const ref = reference('ref-group', 'group');
  const [r0, r1] = (await pairResults())[0]!;
  const moved = maxDiff(ref, initialWeights(spec('init', {})));
  const d = maxDiff(r0!, ref);
  process.stderr.write(
    `ddp equivalence (group norm): max |w_ddp - w_ref| = ${d.toExponential(2)} (weights moved up to ${moved.toFixed(4)})\n`,
  );
  assert.ok(moved > 1e-3, `training moved the weights by only ${moved}`);
  assert.equal(maxDiff(r0!, r1!), 0, 'the replicas differ');
  assert.ok(d < 1e-5, `2 workers differ from 1 worker with the double batch by ${d}`);
});

test('--sync-bn: 2 workers x batch b == 1 worker x batch 2b with batch norm; per-replica batch norm does not', { skip }, async () => {
  const ref = reference('ref-bn', 'batch');
  const [, [s0, s1], [p0]] = await pairResults();
  const dSync = maxDiff(s0!, ref);
  const dOwn = maxDiff(p0!, ref);
  process.stderr.write(`ddp equivalence (batch norm): sync-bn ${dSync.toExponential(2)}, per-replica ${dOwn.toExponential(2)}\n`);
  assert.equal(maxDiff(s0!, s1!), 0, 'the replicas differ');
  assert.ok(dSync < 1e-5, `sync-bn: 2 workers differ from 1 worker with the double batch by ${dSync}`);
  // Without synchronisation each replica normalises its own half: not the same model.
  assert.ok(dOwn > 1e-4, `per-replica batch norm matched the global batch (${dOwn}): the sync-bn check proves nothing`);
});

test('--sync-bn on the shipped architecture (joint network, tiny): 2 workers x b == 1 worker x 2b', { skip }, async () => {
  const ref = reference('ref-joint', 'batch', 'joint');
  const [j0, j1] = (await pairResults())[3]!;
  const d = maxDiff(j0!, ref);
  process.stderr.write(`ddp equivalence (joint network, sync-bn): ${d.toExponential(2)}\n`);
  assert.equal(maxDiff(j0!, j1!), 0, 'the replicas differ');
  assert.ok(d < 1e-5, `joint network, sync-bn: 2 workers differ from 1 worker with the double batch by ${d}`);
});

test('a killed worker makes the other exit non-zero within 60 s, naming it; the run resumes with 1 worker', { skip }, async () => {
  const s = spec('kill', { maxSteps: 60, stepDelayMs: 50 });
  const { kill, exits } = startWorkers(s, 2, await freePort());
  const ckpt = join(s.outDir, 'latest.ckpt.safetensors');
  const deadline = performance.now() + 60_000;
  while (!existsSync(ckpt) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(existsSync(ckpt), 'no checkpoint written');
  const killedAt = performance.now();
  kill(1);
  const [e0, e1] = await Promise.all(exits);
  const seconds = (performance.now() - killedAt) / 1000;
  process.stderr.write(
    `ddp kill: rank 0 exited ${seconds.toFixed(1)} s after rank 1 was killed (code ${e0!.code}): ${e0!.stderr.trim().split('\n').at(-1)}\n`,
  );
  assert.equal(e1!.signal, 'SIGKILL');
  assert.notEqual(e0!.code, 0, 'the surviving worker exited 0');
  assert.ok(seconds < 60, `the surviving worker took ${seconds} s`);
  assert.match(e0!.stderr, /rank 0 of 2: .* failed: .*peer rank 1 \(/);
  // Resume from rank 0's checkpoint with a world of one (any world size works).
  const r = spec('kill', { maxSteps: 60, resume: true });
  runWorker(r, null);
  const log = readFileSync(join(s.outDir, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { epoch: number });
  assert.ok(existsSync(join(r.weightsDir, 'rank0.json')));
  assert.deepEqual(
    log.map((x) => x.epoch),
    log.map((_, i) => i + 1),
    'epochs continue after the resume',
  );
});

test('finetune --nproc 2 --sync-bn: the command starts 2 workers; rank 0 writes the model', { skip }, () => {
  const source = writeTinySource(dir, 'unet');
  const out = join(dir, 'ft-ddp.safetensors');
  const r = spawnSync(
    join(import.meta.dirname, '..', '..', 'bin', 'noduleseg'),
    [
      'finetune',
      '--from',
      source,
      '--data',
      data,
      '--freeze',
      'none',
      '-o',
      out,
      '--nproc',
      '2',
      '--steps',
      '3',
      '--batch-size',
      '4',
      '--sync-bn',
    ],
    { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /data-parallel: 2 workers, rendezvous at 127\.0\.0\.1:\d+, Gloo, sync-bn/);
  assert.match(r.stderr, /sync-bn: \d+ batch norms normalise over the global batch of 2 workers/);
  // Reports come from rank 0 alone.
  assert.equal(r.stderr.match(/^best val Dice/gm)?.length, 1);
  assert.equal(readModelInfo(out).config.arch, 'unet');
});

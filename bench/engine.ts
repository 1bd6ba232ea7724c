/**
 * `npm run bench:engine`: a 2D U-Net (4 levels, 16 base channels, Conv-BN-ReLU blocks,
 * transposed-convolution upsampling, Adam), batch 16 at 64x64, one training step and one
 * inference pass after warm-up, timed here and in PyTorch (bench/engine_pytorch.py, Debian's
 * python3-torch) with the same thread count. The network is built directly from tensor ops and
 * F functions (parameters as plain tensors), mirroring the Python script line for line.
 * Ends with: ratio train=<ours/pytorch> infer=<ours/pytorch>
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { F, cat, full, getNumThreads, keep, manualSeed, noGrad, rand, randn, setNumThreads, tidy, zeros, ones, type Tensor } from '../src/tensor/index.ts';
import { Adam } from '../src/optim/index.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PY = '/usr/bin/python3';

const threads = Number(process.env.BENCH_THREADS ?? getNumThreads());
const batch = 16;
const size = 64;
const warmup = 3;
const trainIters = Number(process.env.BENCH_TRAIN_ITERS ?? 8);
const inferIters = Number(process.env.BENCH_INFER_ITERS ?? 20);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const levels = [16, 32, 64, 128];

interface Block { w1: Tensor; g1: Tensor; b1: Tensor; m1: Tensor; v1: Tensor; w2: Tensor; g2: Tensor; b2: Tensor; m2: Tensor; v2: Tensor }

function buildUNet(): { params: Tensor[]; forward: (x: Tensor, training: boolean) => Tensor } {
  const params: Tensor[] = [];
  const convW = (cout: number, cin: number, k: number): Tensor => {
    const w = keep(tidy(() => randn([cout, cin, k, k]).mul(Math.sqrt(2 / (cin * k * k)))).requiresGrad_());
    params.push(w);
    return w;
  };
  const vec = (n: number, v: number): Tensor => {
    const t = keep(full([n], v).requiresGrad_());
    params.push(t);
    return t;
  };
  const block = (cin: number, cout: number): Block => ({
    w1: convW(cout, cin, 3), g1: vec(cout, 1), b1: vec(cout, 0), m1: keep(zeros([cout])), v1: keep(ones([cout])),
    w2: convW(cout, cout, 3), g2: vec(cout, 1), b2: vec(cout, 0), m2: keep(zeros([cout])), v2: keep(ones([cout])),
  });
  const enc: Block[] = [];
  let cin = 1;
  for (const c of levels) {
    enc.push(block(cin, c));
    cin = c;
  }
  const ups: { w: Tensor; b: Tensor }[] = [];
  const dec: Block[] = [];
  for (let i = levels.length - 1; i > 0; i--) {
    const hi = levels[i]!;
    const lo = levels[i - 1]!;
    const w = keep(tidy(() => randn([hi, lo, 2, 2]).mul(Math.sqrt(2 / (hi * 4)))).requiresGrad_());
    params.push(w);
    ups.push({ w, b: vec(lo, 0) });
    dec.push(block(2 * lo, lo));
  }
  const headW = convW(1, levels[0]!, 1);
  const headB = vec(1, 0);

  const runBlock = (x: Tensor, p: Block, training: boolean): Tensor => {
    x = F.conv2d(x, p.w1, null, { padding: 1 });
    x = F.relu(F.batchNorm(x, p.m1, p.v1, p.g1, p.b1, training, 0.1, 1e-5));
    x = F.conv2d(x, p.w2, null, { padding: 1 });
    return F.relu(F.batchNorm(x, p.m2, p.v2, p.g2, p.b2, training, 0.1, 1e-5));
  };
  const forward = (x: Tensor, training: boolean): Tensor => {
    const skips: Tensor[] = [];
    enc.forEach((p, i) => {
      x = runBlock(x, p, training);
      if (i < enc.length - 1) {
        skips.push(x);
        x = F.maxPool2d(x, 2);
      }
    });
    ups.forEach((u, i) => {
      x = F.convTranspose2d(x, u.w, u.b, { stride: 2 });
      x = cat([x, skips.pop()!], 1);
      x = runBlock(x, dec[i]!, training);
    });
    return F.conv2d(x, headW, headB);
  };
  return { params, forward };
}

function runOurs(): { train: number; infer: number } {
  setNumThreads(threads);
  manualSeed(0);
  const net = buildUNet();
  const opt = new Adam(net.params, { lr: 1e-3 });
  const x = keep(randn([batch, 1, size, size]));
  const target = keep(tidy(() => rand([batch, 1, size, size]).gt(0.5).float()));

  const trainStep = (): void => {
    opt.zeroGrad(true);
    tidy(() => {
      F.binaryCrossEntropyWithLogits(net.forward(x, true), target).backward();
    });
    opt.step();
  };
  const infer = (): void => {
    noGrad(() => tidy(() => { net.forward(x, false); }));
  };
  const bestRate = (fn: () => void, iters: number): number => {
    let best = 0;
    for (let r = 0; r < rounds; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < iters; i++) fn();
      const dt = Number(process.hrtime.bigint() - t0) / 1e9;
      best = Math.max(best, (batch * iters) / dt);
    }
    return best;
  };
  for (let i = 0; i < warmup; i++) {
    trainStep();
    infer();
  }
  return { train: bestRate(trainStep, trainIters), infer: bestRate(infer, inferIters) };
}

function ensurePyTorch(): void {
  const probe = spawnSync(PY, ['-c', 'import torch'], { stdio: 'ignore' });
  if (probe.status === 0) return;
  console.log('bench: PyTorch (python3-torch) is missing; installing it through scripts/setup.sh');
  const r = spawnSync('bash', [join(root, 'scripts', 'setup.sh')], {
    stdio: 'inherit',
    env: { ...process.env, NODULESEG_EXTRA_APT: 'python3-torch' },
  });
  if (r.status !== 0) throw new Error('bench: could not install python3-torch (run as root: apt-get install -y python3-torch)');
}

function runPyTorch(): { train: number; infer: number; threads: number; torch: string } {
  const args = [join(root, 'bench', 'engine_pytorch.py'), threads, batch, size, warmup, trainIters, inferIters, rounds].map(String);
  const r = spawnSync(PY, args, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(threads) } });
  if (r.status !== 0) throw new Error(`bench: PyTorch side failed:\n${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as { train: number; infer: number; threads: number; torch: string };
}

ensurePyTorch();
console.log(`U-Net 2D (levels ${levels.join('/')}), batch ${batch} at ${size}x${size}, ${threads} thread(s); best of ${rounds} rounds`);
// Alternate the two sides so a slow spell on the machine does not favour either.
const ours = runOurs();
const py = runPyTorch();
const ours2 = runOurs();
const py2 = runPyTorch();
const o = { train: Math.max(ours.train, ours2.train), infer: Math.max(ours.infer, ours2.infer) };
const p = { train: Math.max(py.train, py2.train), infer: Math.max(py.infer, py2.infer) };
console.log(`noduleseg: train ${o.train.toFixed(1)} samples/s, infer ${o.infer.toFixed(1)} samples/s`);
console.log(`pytorch ${py.torch} (${py.threads} thread(s)): train ${p.train.toFixed(1)} samples/s, infer ${p.infer.toFixed(1)} samples/s`);
console.log(`ratio train=${(o.train / p.train).toFixed(3)} infer=${(o.infer / p.infer).toFixed(3)}`);

/**
 * `npm run bench:engine`: a 2D U-Net (4 levels, 16 base channels, Conv-BN-ReLU blocks,
 * transposed-convolution upsampling, Adam), batch 16 at 64x64, one training step and one
 * inference pass after warm-up, timed here and in PyTorch (bench/engine_pytorch.py, Debian's
 * python3-torch) with the same thread count. The network is built directly from tensor ops and
 * F functions (parameters as plain tensors), mirroring the Python script line for line.
 * Ends with: ratio train=<ours/pytorch> infer=<ours/pytorch>
 */
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { F, cat, full, getNumThreads, keep, manualSeed, noGrad, rand, randn, setNumThreads, tidy, torchVersion, zeros, ones, type Tensor } from '../src/tensor/index.ts';
import { Adam } from '../src/optim/index.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PY = '/usr/bin/python3';

const threads = Number(process.env.BENCH_THREADS ?? getNumThreads());
const batch = 16;
const size = 64;
const warmup = 3;
const trainIters = Number(process.env.BENCH_TRAIN_ITERS ?? 2);
const inferIters = Number(process.env.BENCH_INFER_ITERS ?? 4);
const rounds = Number(process.env.BENCH_ROUNDS ?? 20);
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

  // Each intermediate is disposed as soon as the next op has consumed it (autograd keeps what it
  // needs natively), so memory is reused while hot in cache, as with Python's refcounting.
  const then = (x: Tensor, y: Tensor): Tensor => {
    x.dispose();
    return y;
  };
  const runBlock = (x: Tensor, p: Block, training: boolean): Tensor => {
    let y = F.conv2d(x, p.w1, null, { padding: 1 });
    y = then(y, F.batchNorm(y, p.m1, p.v1, p.g1, p.b1, training, 0.1, 1e-5));
    y = then(y, F.relu(y));
    y = then(y, F.conv2d(y, p.w2, null, { padding: 1 }));
    y = then(y, F.batchNorm(y, p.m2, p.v2, p.g2, p.b2, training, 0.1, 1e-5));
    return then(y, F.relu(y));
  };
  const forward = (input: Tensor, training: boolean): Tensor => {
    const skips: Tensor[] = [];
    let x = input;
    enc.forEach((p, i) => {
      const y = runBlock(x, p, training);
      if (x !== input) x.dispose();
      x = y;
      if (i < enc.length - 1) {
        skips.push(x);
        x = F.maxPool2d(x, 2);
      }
    });
    ups.forEach((u, i) => {
      const up = F.convTranspose2d(x, u.w, u.b, { stride: 2 });
      x.dispose();
      const skip = skips.pop()!;
      const joined = cat([up, skip], 1);
      up.dispose();
      skip.dispose();
      x = then(joined, runBlock(joined, dec[i]!, training));
    });
    return then(x, F.conv2d(x, headW, headB));
  };
  return { params, forward };
}

function setupOurs(): { train: () => void; infer: () => void } {
  setNumThreads(threads);
  manualSeed(0);
  const net = buildUNet();
  const opt = new Adam(net.params, { lr: 1e-3 });
  const x = keep(randn([batch, 1, size, size]));
  const target = keep(tidy(() => rand([batch, 1, size, size]).gt(0.5).float()));
  const train = (): void => {
    opt.zeroGrad(true);
    tidy(() => {
      F.binaryCrossEntropyWithLogits(net.forward(x, true), target).backward();
    });
    opt.step();
  };
  const infer = (): void => {
    noGrad(() => tidy(() => { net.forward(x, false); }));
  };
  for (let i = 0; i < warmup; i++) {
    train();
    infer();
  }
  return { train, infer };
}

function timeOurs(fn: () => void, iters: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function ensurePyTorch(): Promise<void> {
  const probe = spawnSync(PY, ['-c', 'import torch'], { stdio: 'ignore' });
  if (probe.status === 0) return;
  console.log('bench: PyTorch (python3-torch) is missing; installing it through scripts/setup.sh');
  const r = spawnSync('bash', [join(root, 'scripts', 'setup.sh')], {
    stdio: 'inherit',
    env: { ...process.env, NODULESEG_EXTRA_APT: 'python3-torch' },
  });
  if (r.status !== 0) throw new Error('bench: could not install python3-torch (run as root: apt-get install -y python3-torch)');
}

/** The PyTorch process: warmed up, then timing "train N" / "infer N" requests. */
class PyTorchSide {
  private readonly proc;
  private readonly lines: string[] = [];
  private waiting: ((l: string) => void) | undefined;
  private stderr = '';
  info: { threads: number; torch: string } = { threads: 0, torch: '' };

  constructor() {
    const args = [join(root, 'bench', 'engine_pytorch.py'), threads, batch, size, warmup].map(String);
    this.proc = spawn(PY, args, { env: { ...process.env, OMP_NUM_THREADS: String(threads) }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr.on('data', (d: Buffer) => { this.stderr += d.toString(); });
    createInterface({ input: this.proc.stdout }).on('line', (l) => {
      if (this.waiting) { const w = this.waiting; this.waiting = undefined; w(l); } else this.lines.push(l);
    });
    this.proc.on('exit', (code) => {
      if (this.waiting && code !== 0) this.waiting(`error ${code}`);
    });
  }

  private next(): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((res) => { this.waiting = res; });
  }

  async ready(): Promise<void> {
    const l = await this.next();
    if (!l.startsWith('ready ')) throw new Error(`bench: PyTorch side failed: ${l}\n${this.stderr}`);
    this.info = JSON.parse(l.slice(6)) as { threads: number; torch: string };
  }

  async time(what: 'train' | 'infer', n: number): Promise<number> {
    this.proc.stdin.write(`${what} ${n}\n`);
    const l = await this.next();
    const s = Number(l);
    if (!Number.isFinite(s)) throw new Error(`bench: PyTorch side failed: ${l}\n${this.stderr}`);
    return s;
  }

  close(): void {
    this.proc.stdin.end();
  }
}

await ensurePyTorch();
console.log(`U-Net 2D (levels ${levels.join('/')}, Conv-BN-ReLU, transposed-conv up, Adam), batch ${batch} at ${size}x${size}, ${threads} thread(s), OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY} (both sides)`);
const py = new PyTorchSide();
await py.ready();
const ours = setupOurs();
// Short rounds, alternating the engines; the best round of each counts, so a busy spell on a
// shared machine does not favour either side.
const best = { oursTrain: 0, pyTrain: 0, oursInfer: 0, pyInfer: 0 };
for (let r = 0; r < rounds; r++) {
  // Which engine goes first alternates too, so a slow drift does not favour either.
  const oursFirst = r % 2 === 0;
  const oursTrain = (): void => { best.oursTrain = Math.max(best.oursTrain, (batch * trainIters) / timeOurs(ours.train, trainIters)); };
  const oursInfer = (): void => { best.oursInfer = Math.max(best.oursInfer, (batch * inferIters) / timeOurs(ours.infer, inferIters)); };
  if (oursFirst) oursTrain();
  best.pyTrain = Math.max(best.pyTrain, (batch * trainIters) / (await py.time('train', trainIters)));
  if (!oursFirst) oursTrain();
  if (oursFirst) oursInfer();
  best.pyInfer = Math.max(best.pyInfer, (batch * inferIters) / (await py.time('infer', inferIters)));
  if (!oursFirst) oursInfer();
}
py.close();
console.log(`noduleseg (libtorch ${torchVersion()}): train ${best.oursTrain.toFixed(1)} samples/s, infer ${best.oursInfer.toFixed(1)} samples/s`);
console.log(`pytorch ${py.info.torch} (${py.info.threads} thread(s)): train ${best.pyTrain.toFixed(1)} samples/s, infer ${best.pyInfer.toFixed(1)} samples/s`);
console.log(`ratio train=${(best.oursTrain / best.pyTrain).toFixed(3)} infer=${(best.oursInfer / best.pyInfer).toFixed(3)}`);

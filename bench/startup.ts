/**
 * `npm run bench:startup`: how long the command line takes to start, against a bare `node -e 0`.
 * Runs, side by side and interleaved (so a busy spell on this shared machine hits all of them),
 * 5 times each: node -e 0, bin/noduleseg --help, bin/noduleseg inspect <crop> (the first crop of
 * lidc-crops, else a small synthetic one), and the same two through tsx (NODULESEG_SOURCES=1:
 * what every start cost before the compiled build). Prints the median and best wall time of each
 * and their ratios to node; the target is at most 10x node for the compiled build.
 * BENCH_REPS=n changes the repetitions.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lidcCropsDir } from '../src/data/paths.ts';
import { Volume, writeNifti } from '../src/io/index.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'noduleseg');
const reps = Number(process.env.BENCH_REPS ?? 5);

function pickCrop(tmp: string): string {
  const dir = join(lidcCropsDir(), 'image');
  if (existsSync(dir)) {
    const f = readdirSync(dir)
      .filter((n) => n.endsWith('.nii.gz'))
      .sort()[0];
    if (f) return join(dir, f);
  }
  const p = join(tmp, 'crop.nii.gz');
  writeNifti(
    p,
    new Volume({
      data: new Int16Array(64 * 64 * 32).fill(-800),
      dims: [64, 64, 32],
      spacingMm: [0.7, 0.7, 1.25],
      originMm: [0, 0, 0],
      modality: 'CT',
    }),
  );
  return p;
}

/** True when bin/noduleseg will run dist/ (the rule of bin/noduleseg, read from the outside). */
function buildCurrent(): boolean {
  const stamp = join(root, 'dist', '.built');
  if (!existsSync(stamp)) return false;
  const t = statSync(stamp).mtimeMs;
  const newer = (d: string): boolean =>
    statSync(d).mtimeMs > t ||
    readdirSync(d, { withFileTypes: true }).some((e) => (e.isDirectory() ? newer(join(d, e.name)) : statSync(join(d, e.name)).mtimeMs > t));
  return !newer(join(root, 'src'));
}

interface Case {
  name: string;
  argv: string[];
  env?: Record<string, string>;
}

const tmp = mkdtempSync(join(tmpdir(), 'noduleseg-startup-'));
try {
  const crop = pickCrop(tmp);
  const cases: Case[] = [
    { name: 'node -e 0', argv: ['-e', '0'] },
    { name: 'noduleseg --help', argv: [bin, '--help'] },
    { name: 'noduleseg inspect <crop>', argv: [bin, 'inspect', crop] },
    { name: 'noduleseg --help (tsx)', argv: [bin, '--help'], env: { NODULESEG_SOURCES: '1' } },
    { name: 'noduleseg inspect <crop> (tsx)', argv: [bin, 'inspect', crop], env: { NODULESEG_SOURCES: '1' } },
  ];
  const times = cases.map(() => [] as number[]);
  for (let r = 0; r < reps; r++) {
    for (const [i, c] of cases.entries()) {
      const t0 = performance.now();
      const p = spawnSync(process.execPath, c.argv, { env: { ...process.env, ...c.env }, stdio: ['ignore', 'ignore', 'pipe'] });
      const ms = performance.now() - t0;
      if (p.status !== 0) throw new Error(`${c.name} failed (exit ${p.status}): ${p.stderr.toString()}`);
      times[i]!.push(ms);
    }
  }
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const base = median(times[0]!);
  console.log(
    `start-up, ${reps} runs each, interleaved; crop ${crop}; compiled build ${buildCurrent() ? 'current (dist/)' : 'MISSING OR STALE: bin/noduleseg ran the sources through tsx'}`,
  );
  console.log('| command | median ms | best ms | median / node |');
  console.log('|---|---:|---:|---:|');
  for (const [i, c] of cases.entries()) {
    const m = median(times[i]!);
    console.log(`| ${c.name} | ${m.toFixed(0)} | ${Math.min(...times[i]!).toFixed(0)} | ${(m / base).toFixed(1)}x |`);
  }
  const worst = Math.max(median(times[1]!), median(times[2]!)) / base;
  console.log(
    `ratio help=${(median(times[1]!) / base).toFixed(1)} inspect=${(median(times[2]!) / base).toFixed(1)} (target <= 10): ${worst <= 10 ? 'met' : 'NOT met'}`,
  );
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

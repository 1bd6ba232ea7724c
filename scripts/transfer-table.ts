/**
 * Fills docs/transfer.md (between its "transfer-results" markers) from the experiment's result
 * files, and writes every run to docs/transfer-results.csv.
 *
 *   node --import tsx scripts/transfer-table.ts [results-dir (runs/transfer/results)] [docs/transfer.md]
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../src/io/atomic.ts';
import type { RunResult } from './transfer-experiment.ts';

const BEGIN = '<!-- transfer-results:begin (scripts/transfer-table.ts writes this part) -->';
const END = '<!-- transfer-results:end -->';

interface Stat {
  mean: number;
  sd: number;
  n: number;
}

function stat(xs: number[]): Stat {
  const ok = xs.filter((x) => Number.isFinite(x));
  const n = ok.length;
  const mean = n ? ok.reduce((a, b) => a + b, 0) / n : Number.NaN;
  const sd = n > 1 ? Math.sqrt(ok.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : Number.NaN;
  return { mean, sd, n };
}

const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '–');
const pm = (s: Stat) => (s.n === 0 ? '–' : s.n > 1 ? `${f3(s.mean)} ± ${f3(s.sd)}` : f3(s.mean));
const signed = (s: Stat) => (s.n === 0 ? '–' : `${s.mean >= 0 ? '+' : ''}${f3(s.mean)}${s.n > 1 ? ` ± ${f3(s.sd)}` : ''}`);

function label(source: string, strategy: string, steps?: number): string {
  if (source === 'scratch') return `from scratch${steps !== undefined ? `, ${steps} steps` : ''}`;
  if (strategy === 'as-is') return `${source}: as-is, no fine-tuning`;
  const [name, decay] = strategy.split('@');
  return `${source}: ${name}${decay ? `, --lr-decay ${decay}` : ''}`;
}

export function readResults(dir: string): RunResult[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as RunResult);
}

export function renderTable(results: readonly RunResult[]): string {
  if (results.length === 0) return '_No results yet: run `node --import tsx scripts/transfer-experiment.ts`._';
  const sizes = [...new Set(results.map((r) => r.size))].sort((a, b) => a - b);
  const seeds = [...new Set(results.map((r) => r.seed))].sort((a, b) => a - b);
  const methods: Array<[string, string]> = [];
  for (const r of results) if (!methods.some(([s, t]) => s === r.source && t === r.strategy)) methods.push([r.source, r.strategy]);
  // The experiment's order: baselines, then each source with its strategies from least to most frozen.
  const sourceOrder = ['scratch', 'synthetic', 'lidc-thick'];
  const strategyOrder = ['scratch', 'as-is', 'none', 'stem', 'encoder:2', 'encoder', 'classifier', 'all-but-head', 'none@0.5'];
  const rank = (order: string[], x: string) => (order.includes(x) ? order.indexOf(x) : order.length);
  const stepsOf = (source: string, strategy: string) => results.find((r) => r.source === source && r.strategy === strategy)?.steps;
  methods.sort(
    (a, b) =>
      rank(sourceOrder, a[0]) - rank(sourceOrder, b[0]) ||
      rank(strategyOrder, a[1]) - rank(strategyOrder, b[1]) ||
      (stepsOf(...a) ?? 0) - (stepsOf(...b) ?? 0) ||
      a[1].localeCompare(b[1]),
  );
  // "Long" scratch: the scratch baseline given the most steps (the fairest comparison).
  const longScratch = results
    .filter((r) => r.source === 'scratch' && r.strategy !== 'scratch')
    .sort((a, b) => b.steps - a.steps)[0]?.strategy;
  const find = (size: number, seed: number, source: string, strategy: string) =>
    results.find((r) => r.size === size && r.seed === seed && r.source === source && r.strategy === strategy);
  /** Dice per seed, and the paired difference to scratch on the same seed and subset. */
  const cell = (size: number, source: string, strategy: string) => {
    const dice: number[] = [],
      delta: number[] = [],
      deltaLong: number[] = [],
      sens: number[] = [],
      prec: number[] = [];
    for (const seed of seeds) {
      const r = find(size, seed, source, strategy);
      if (!r) continue;
      dice.push(r.valDice);
      sens.push(r.valSensitivity);
      prec.push(r.valPrecision);
      const s = find(size, seed, 'scratch', 'scratch');
      if (s) delta.push(r.valDice - s.valDice);
      const l = longScratch ? find(size, seed, 'scratch', longScratch) : undefined;
      if (l) deltaLong.push(r.valDice - l.valDice);
    }
    return {
      dice: stat(dice),
      delta: stat(delta),
      deltaLong: stat(deltaLong),
      sens: stat(sens),
      prec: stat(prec),
      wins: delta.filter((d) => d > 0).length,
      paired: delta.length,
      winsLong: deltaLong.filter((d) => d > 0).length,
      pairedLong: deltaLong.length,
    };
  };
  const lines: string[] = [];
  const first = results[0]!;
  const steps = stepsOf('scratch', 'scratch') ?? first.steps;
  lines.push(
    `Per-nodule 3D Dice on the ${first.valCases} thin-slice val nodules; mean ± sd over seeds ${seeds.join(', ')}; ` +
      `every fine-tune and the first scratch baseline: ${steps} steps of batch 16` +
      (longScratch ? `; the second scratch baseline: ${stepsOf('scratch', longScratch)} steps` : '') +
      `. Δ = paired difference (same subset, same seed) to scratch with the same ${steps} steps` +
      (longScratch ? `, Δ long = to scratch with ${stepsOf('scratch', longScratch)} steps` : '') +
      '.',
  );
  lines.push('');
  const longCols = longScratch ? ' | Δ long' : '';
  lines.push(`| method | ${sizes.map((s) => `${s} nodules: Dice | Δ${longCols} | sens / prec`).join(' | ')} |`);
  lines.push(`|---|${sizes.map(() => (longScratch ? '---:|---:|---:|---:' : '---:|---:|---:')).join('|')}|`);
  for (const [source, strategy] of methods) {
    const cells = sizes.map((size) => {
      const c = cell(size, source, strategy);
      const d = source === 'scratch' ? '' : signed(c.delta);
      const dl = longScratch ? ` | ${source === 'scratch' ? '' : signed(c.deltaLong)}` : '';
      return `${pm(c.dice)} | ${d}${dl} | ${f3(c.sens.mean)} / ${f3(c.prec.mean)}`;
    });
    lines.push(`| ${label(source, strategy, source === 'scratch' ? stepsOf(source, strategy) : undefined)} | ${cells.join(' | ')} |`);
  }
  lines.push('');
  // The closing note: the best method per size, and the best on average over both sizes.
  const ranked = methods
    .filter(([s]) => s !== 'scratch')
    .map(([source, strategy]) => {
      const per = sizes.map((size) => cell(size, source, strategy));
      return {
        source,
        strategy,
        per,
        meanDice: stat(per.map((c) => c.dice.mean)).mean,
        meanDelta: stat(per.map((c) => c.delta.mean)).mean,
        meanDeltaLong: stat(per.map((c) => c.deltaLong.mean)).mean,
      };
    });
  const scratch = sizes.map((size) => cell(size, 'scratch', 'scratch'));
  const longScratchCells = sizes.map((size) => cell(size, 'scratch', longScratch ?? 'scratch'));
  for (const [i, size] of sizes.entries()) {
    const best = [...ranked].sort((a, b) => b.per[i]!.dice.mean - a.per[i]!.dice.mean)[0];
    if (!best) continue;
    const c = best.per[i]!;
    const long = longScratch
      ? ` and ${pm(longScratchCells[i]!.dice)} from scratch with ${stepsOf('scratch', longScratch)} steps: ${signed(c.deltaLong)} (better on ${c.winsLong} of ${c.pairedLong})`
      : '';
    lines.push(
      `- **${size} nodules**: best is ${label(best.source, best.strategy)}, Dice ${pm(c.dice)}, against ${pm(scratch[i]!.dice)} from scratch with the same ${steps} steps: ${signed(c.delta)} (better on ${c.wins} of ${c.paired} seeds)${long}.`,
    );
  }
  const overall = [...ranked].sort((a, b) => b.meanDice - a.meanDice)[0];
  if (overall) {
    const one = (x: number) => signed({ mean: x, sd: Number.NaN, n: 1 });
    lines.push(
      `- **Overall** (mean over the subset sizes): ${label(overall.source, overall.strategy)} wins, ${one(overall.meanDelta)} Dice over training from scratch with the same steps` +
        (longScratch ? ` and ${one(overall.meanDeltaLong)} over scratch with ${stepsOf('scratch', longScratch)} steps` : '') +
        ', on average.',
    );
    for (const source of [...new Set(ranked.map((r) => r.source))]) {
      const b = ranked.filter((r) => r.source === source).sort((a, c) => c.meanDice - a.meanDice)[0]!;
      const w = ranked.filter((r) => r.source === source).sort((a, c) => a.meanDice - c.meanDice)[0]!;
      lines.push(
        `- Source ${source}: best strategy ${label(b.source, b.strategy).split(': ')[1]} (${signed({ mean: b.meanDelta, sd: Number.NaN, n: 1 })} vs scratch), worst ${label(w.source, w.strategy).split(': ')[1]} (${signed({ mean: w.meanDelta, sd: Number.NaN, n: 1 })}).`,
      );
    }
  }
  return lines.join('\n');
}

export function resultsCsv(results: readonly RunResult[]): string {
  const cols = [
    'size',
    'seed',
    'source',
    'strategy',
    'lrDecay',
    'steps',
    'valCases',
    'valDice',
    'valSensitivity',
    'valPrecision',
    'trainSeconds',
    'wallSeconds',
  ] as const;
  return [cols.join(','), ...results.map((r) => cols.map((c) => String(r[c])).join(','))].join('\n') + '\n';
}

/** Replaces the marked part of the docs file (appends the markers when missing) and writes the CSV beside it. */
export function writeTransferTable(resultsDir: string, docsFile: string, runDir?: string): void {
  const results = readResults(resultsDir);
  const doc = existsSync(docsFile) ? readFileSync(docsFile, 'utf8') : '# Transfer learning\n';
  const body = `${BEGIN}\n${renderTable(results)}\n${END}`;
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  const next = a >= 0 && b > a ? doc.slice(0, a) + body + doc.slice(b + END.length) : `${doc.trimEnd()}\n\n${body}\n`;
  writeFileAtomic(docsFile, next);
  writeFileAtomic(join(dirname(docsFile), 'transfer-results.csv'), resultsCsv(results));
  if (runDir) writeFileAtomic(join(runDir, 'results.csv'), resultsCsv(results));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const [dir = 'runs/transfer/results', docs = 'docs/transfer.md'] = process.argv.slice(2);
  writeTransferTable(dir, docs);
  process.stderr.write(`${docs}: table from ${readResults(dir).length} runs\n`);
}

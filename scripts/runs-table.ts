/**
 * A markdown table of training runs from their log.jsonl files (what docs/results.md quotes).
 *
 *   node --import tsx scripts/runs-table.ts runs/abl4-joint-2d runs/abl4-resunet-2d ...
 *   node --import tsx scripts/runs-table.ts --by-config runs/abl4*      # mean ± sd over seeds
 *
 * Columns: the last epoch's val Dice / sensitivity / precision (equal-budget comparisons read
 * this), the best epoch's Dice, and the summed epoch times. With --by-config, runs are grouped by
 * the config name and epoch count in their config.json, and each group gives the mean ± sample
 * standard deviation over its runs (seeds) of the last epoch's numbers.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

interface EpochRecord {
  epoch: number;
  seconds: number;
  valDice?: number;
  valSensitivity?: number;
  valPrecision?: number;
}

const args = process.argv.slice(2);
// A shell glob such as runs/abl4f-* also matches the `<run>.log` console logs kept beside the run
// folders: those are skipped, any other argument without a log.jsonl is an error.
const byConfig = args.includes('--by-config');
const dirs = args.filter((a) => a !== '--by-config' && existsSync(join(a, 'log.jsonl')));
const missing = args.filter((a) => a !== '--by-config' && !a.endsWith('.log') && !existsSync(join(a, 'log.jsonl')));
if (missing.length) {
  process.stderr.write(`${missing.map((m) => join(m, 'log.jsonl')).join(', ')}: not found\n`);
  process.exit(1);
}
if (dirs.length === 0) {
  process.stderr.write('usage: runs-table.ts [--by-config] <run dir>...\n');
  process.exit(1);
}
const f3 = (x: number | undefined) => (x === undefined ? '–' : x.toFixed(3));

interface Run {
  dir: string;
  config: string;
  seed: number;
  log: EpochRecord[];
}
const runs: Run[] = dirs.map((dir) => {
  const log = readFileSync(join(dir, 'log.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as EpochRecord);
  const cfgFile = join(dir, 'config.json');
  const cfg = existsSync(cfgFile) ? (JSON.parse(readFileSync(cfgFile, 'utf8')) as { name?: string; seed?: number }) : {};
  return { dir, config: cfg.name ?? basename(dir), seed: cfg.seed ?? NaN, log };
});

const lines: string[] = [];
if (!byConfig) {
  lines.push(
    '| run | epochs | Dice (last) | sensitivity | precision | best Dice (epoch) | train time |',
    '|---|---:|---:|---:|---:|---:|---:|',
  );
  for (const { dir, log } of runs) {
    const last = log.at(-1)!;
    const best = log.reduce((a, b) => ((b.valDice ?? -1) > (a.valDice ?? -1) ? b : a));
    const minutes = log.reduce((s, r) => s + r.seconds, 0) / 60;
    lines.push(
      `| ${basename(dir)} | ${last.epoch} | ${f3(last.valDice)} | ${f3(last.valSensitivity)} | ${f3(last.valPrecision)} | ${f3(best.valDice)} (${best.epoch}) | ${minutes.toFixed(1)} min |`,
    );
  }
} else {
  const groups = new Map<string, Run[]>();
  for (const r of runs) {
    const key = `${r.config} | ${r.log.at(-1)!.epoch}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const stat = (xs: number[]) => {
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : NaN;
    return Number.isNaN(sd) ? m.toFixed(3) : `${m.toFixed(3)} ± ${sd.toFixed(3)}`;
  };
  lines.push('| config | epochs | seeds | Dice (last epoch) | per seed | sensitivity | precision |', '|---|---:|---|---:|---|---:|---:|');
  for (const [key, rs] of groups) {
    rs.sort((a, b) => a.seed - b.seed);
    const last = rs.map((r) => r.log.at(-1)!);
    lines.push(
      `| ${key} | ${rs.map((r) => r.seed).join(', ')} | ${stat(last.map((l) => l.valDice ?? NaN))} | ${last.map((l) => f3(l.valDice)).join(' / ')} | ` +
        `${stat(last.map((l) => l.valSensitivity ?? NaN))} | ${stat(last.map((l) => l.valPrecision ?? NaN))} |`,
    );
  }
}
process.stdout.write(lines.join('\n') + '\n');

/**
 * A markdown table of training runs from their log.jsonl files (what docs/results.md quotes).
 *
 *   node --import tsx scripts/runs-table.ts runs/abl4-joint-2d runs/abl4-resunet-2d ...
 *
 * Columns: the last epoch's val Dice / sensitivity / precision (equal-budget comparisons read
 * this), the best epoch's Dice, and the summed epoch times.
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

const dirs = process.argv.slice(2);
if (dirs.length === 0) {
  process.stderr.write('usage: runs-table.ts <run dir>...\n');
  process.exit(1);
}
const f3 = (x: number | undefined) => (x === undefined ? '–' : x.toFixed(3));
const lines = ['| run | epochs | Dice (last) | sensitivity | precision | best Dice (epoch) | train time |', '|---|---:|---:|---:|---:|---:|---:|'];
for (const dir of dirs) {
  const file = join(dir, 'log.jsonl');
  if (!existsSync(file)) {
    process.stderr.write(`${file}: not found\n`);
    process.exit(1);
  }
  const log = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as EpochRecord);
  const last = log.at(-1)!;
  const best = log.reduce((a, b) => ((b.valDice ?? -1) > (a.valDice ?? -1) ? b : a));
  const minutes = log.reduce((s, r) => s + r.seconds, 0) / 60;
  lines.push(`| ${basename(dir)} | ${last.epoch} | ${f3(last.valDice)} | ${f3(last.valSensitivity)} | ${f3(last.valPrecision)} | ${f3(best.valDice)} (${best.epoch}) | ${minutes.toFixed(1)} min |`);
}
process.stdout.write(lines.join('\n') + '\n');

/**
 * `--freeze auto`: k-fold cross-validation (folds by patient) of every candidate strategy on the
 * user's data, a printed table of per-fold validation Dice with mean ± sd, the winner picked from
 * the printed means (so the choice is exactly what the user reads), then the winner trained on
 * all of the data.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CropCase } from '../data/index.ts';
import { summarize } from '../metrics/index.ts';
import { finetune, checkStrategy, type FinetuneResult, type FinetuneSettings, type SourceModel } from './finetune.ts';
import { patientFolds } from './data.ts';
import { parseStrategy, strategyName, type Strategy } from './strategies.ts';
import type { DistributedTraining } from '../distributed/index.ts';

/** Candidates tried by default (classifier only where the model has a classification branch). */
export const DEFAULT_AUTO_CANDIDATES = ['none', 'stem', 'encoder:2', 'encoder', 'classifier', 'all-but-head'] as const;

export interface AutoRow {
  strategy: string;
  foldDice: number[];
  mean: number;
  sd: number;
  /** The numbers as printed; the winner is chosen from `printedMean`. */
  printedMean: string;
  printedSd: string;
}

export interface AutoOptions {
  source: SourceModel;
  cases: readonly CropCase[];
  /** Strategy names; default DEFAULT_AUTO_CANDIDATES that fit the model. */
  candidates?: readonly string[];
  folds: number;
  settings: FinetuneSettings;
  data: string;
  /** Where the final model's run folder goes. */
  outDir: string;
  print: (line: string) => void;
  onRun?: (strategy: string, fold: number, folds: number) => void;
  command?: string;
  /** Data-parallel: every fold and the final run train on all the workers. */
  distributed?: DistributedTraining;
}

export interface AutoResult {
  rows: AutoRow[];
  winner: string;
  table: string;
  final: FinetuneResult;
}

/** Candidate strategies that apply to the source model; explicit ones must all apply (else the UserError). */
export function autoCandidates(source: SourceModel, names?: readonly string[]): Strategy[] {
  if (names)
    return names.map((n) => {
      const s = parseStrategy(n, '--candidates');
      checkStrategy(source.info, s);
      return s;
    });
  return DEFAULT_AUTO_CANDIDATES.map((n) => parseStrategy(n)).filter((s) => {
    try {
      checkStrategy(source.info, s);
      return true;
    } catch {
      return false;
    }
  });
}

export function formatAutoTable(rows: readonly AutoRow[], folds: number): string {
  const w = Math.max(8, ...rows.map((r) => r.strategy.length));
  const head = ['strategy'.padEnd(w), ...Array.from({ length: folds }, (_, i) => `fold ${i + 1}`.padStart(7)), '  val Dice mean ± sd'].join(
    '  ',
  );
  const lines = rows.map((r) =>
    [r.strategy.padEnd(w), ...r.foldDice.map((d) => d.toFixed(4).padStart(7)), `  ${r.printedMean} ± ${r.printedSd}`].join('  '),
  );
  return [head, ...lines].join('\n');
}

/** The winner from the printed means; ties go to the earlier (listed first) candidate. */
export function pickWinner(rows: readonly AutoRow[]): string {
  let best = rows[0]!;
  for (const r of rows.slice(1)) if (Number(r.printedMean) > Number(best.printedMean)) best = r;
  return best.strategy;
}

export function autoFinetune(o: AutoOptions): AutoResult {
  const strategies = autoCandidates(o.source, o.candidates);
  const folds = patientFolds(o.cases, o.folds, o.settings.seed);
  const rows: AutoRow[] = [];
  for (const s of strategies) {
    const name = strategyName(s);
    const foldDice: number[] = [];
    for (let f = 0; f < folds.length; f++) {
      o.onRun?.(name, f + 1, folds.length);
      const dir = mkdtempSync(join(tmpdir(), 'noduleseg-auto-'));
      try {
        const r = finetune({
          source: o.source,
          strategy: s,
          cases: { train: folds.filter((_, i) => i !== f).flat(), val: folds[f]! },
          data: o.data,
          // Validated once, after the last step: the fold's score is the model it ends with.
          settings: { ...o.settings, valEvery: Number.MAX_SAFE_INTEGER },
          outDir: dir,
          distributed: o.distributed,
        });
        foldDice.push(r.log.at(-1)?.valDice ?? Number.NaN);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    const s2 = summarize(foldDice);
    rows.push({ strategy: name, foldDice, mean: s2.mean, sd: s2.std, printedMean: s2.mean.toFixed(4), printedSd: s2.std.toFixed(4) });
  }
  const table = formatAutoTable(rows, folds.length);
  o.print(`${folds.length}-fold cross-validation (folds by patient), validation Dice per nodule:`);
  for (const line of table.split('\n')) o.print(line);
  const winner = pickWinner(rows);
  o.print(`best: ${winner} (highest mean above); training it on all ${o.cases.length} cases`);
  const final = finetune({
    source: o.source,
    strategy: parseStrategy(winner),
    cases: { train: [...o.cases], val: [] },
    data: o.data,
    settings: o.settings,
    outDir: o.outDir,
    command: o.command,
    distributed: o.distributed,
    provenance: {
      auto: {
        folds: folds.length,
        table: rows.map((r) => ({ strategy: r.strategy, foldDice: r.foldDice, mean: r.printedMean, sd: r.printedSd })),
        winner,
      },
    },
  });
  return { rows, winner, table, final };
}

import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { refuseOutputsOverInputs } from '../io/guard.ts';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { readLidcScan } from '../io/lidc.ts';
import {
  foldSplit,
  lidcCropsDir,
  loadCrops,
  parseFoldList,
  parseFoldSpec,
  requireData,
  stratifiedPatientFolds,
  type CropCase,
} from '../data/index.ts';
import { loadModel } from '../models/index.ts';
import { setNumThreads } from '../tensor/index.ts';
import {
  benchmarkCrops,
  cropRowsCsv,
  describeClickMode,
  groupSummaries,
  groupTableMarkdown,
  parseClickMode,
  summariseGroup,
  type ClickMode,
  type CropBenchmarkRow,
} from '../eval/benchmark.ts';
import { readReaderIndex } from '../eval/readers.ts';
import { benchmarkScan, referenceLesions, scanRowsCsv, scanRowsMarkdown, type PromptKind, type ScanBenchmarkRow } from '../eval/scans.ts';
import { DEFAULT_MODEL } from './segment.ts';
import { makeProgress } from './progress.ts';
import { nonNegativeIntArg, numberInArg, positiveIntArg } from './args.ts';

const probabilityArg = (flag: string) => numberInArg(flag, 0, 1, true, true);

interface Common {
  model: string;
  threshold?: number;
  csv?: string;
  md?: string;
  /** --tta: true (the 4 flips) or its value ('flips', 'dihedral'). */
  tta?: boolean | string;
  threads?: number;
}

const TTA_HELP = "average over flipped inputs (4 passes); '--tta dihedral' adds their transposes (8)";

/** The --tta option's value as PredictOptions.flipTta takes it. */
function ttaKind(v: boolean | string | undefined): boolean | 'dihedral' {
  if (v === undefined || v === false) return false;
  if (v === true || v === 'flips') return true;
  if (v === 'dihedral') return 'dihedral';
  throw new UserError(`--tta: expected flips or dihedral, got "${v}"`);
}

/** The tables may not replace a model or land inside the data they score. */
function checkOutputs(opts: Pick<Common, 'csv' | 'md'>, inputs: string[]): void {
  refuseOutputsOverInputs([opts.csv, opts.md], inputs);
}

function selectCrops(
  split: string,
  fold: string | undefined,
  foldSeed: number,
  limit: number | undefined,
): { cases: CropCase[]; what: string } {
  let cases: CropCase[];
  let what: string;
  if (fold !== undefined) {
    const f = parseFoldSpec(fold);
    if (!f) throw new UserError(`--fold: expected i/k with 1 <= i <= k and k >= 2, got "${fold}"`);
    cases = foldSplit(loadCrops(), f.count, f.index, foldSeed).heldOut;
    what = `cross-validation fold ${f.index + 1} of ${f.count} (train + val, seed ${foldSeed})`;
  } else {
    if (!['train', 'val', 'all'].includes(split)) throw new UserError(`--split: expected train, val or all, got "${split}"`);
    cases = loadCrops({ splits: split === 'all' ? ['train', 'val'] : [split as 'train' | 'val'] });
    what = `lidc-crops ${split === 'all' ? 'train + val' : split}`;
  }
  return { cases: limit !== undefined ? cases.slice(0, limit) : cases, what };
}

const CENTRE: ClickMode = { kind: 'centre' };

function clickArg(text: string): ClickMode {
  const c = parseClickMode(text);
  if (!c) throw new UserError(`--click: expected centre, on-nodule or an offset such as 2mm, got "${text}"`);
  return c;
}

/** The table's first line says where the benchmark clicked, unless at the centre. */
const clickNote = (c: ClickMode) => (c.kind === 'centre' ? '' : `, clicked ${describeClickMode(c)}`);

function runCrops(
  modelPath: string,
  cases: readonly CropCase[],
  tta: boolean | 'dihedral',
  label: string,
  threshold: number | undefined,
  click: ClickMode,
): CropBenchmarkRow[] {
  const { model, info } = loadModel(modelPath);
  const dir = lidcCropsDir();
  const progress = makeProgress();
  progress.start(cases.length, label);
  const rows = benchmarkCrops(model, info, cases, {
    cropsDir: dir,
    readerIndex: readReaderIndex(dir),
    flipTta: tta,
    ...(threshold !== undefined ? { threshold } : {}),
    click,
    onCase: (d) => progress.update(d),
  });
  progress.stop();
  model.dispose();
  return rows;
}

export function register(program: Command): void {
  const bench = program
    .command('benchmark')
    .description(
      'the real task, measured: crops by type, size and pleural contact against each reader; cross-validation; whole scans prompted by a point or a box',
    );

  bench
    .command('crops')
    .description(
      "segment lidc-crops and score each nodule against the union of the readers, their 50% consensus and each reader, beside the readers' own agreement; grouped by type, size and pleural contact",
    )
    .option('-m, --model <file>', 'model file', DEFAULT_MODEL)
    .option('--split <name>', 'train, val or all', 'val')
    .option('--fold <i/k>', 'instead of --split: the held-out fold i of k (as train --fold)')
    .option('--fold-seed <n>', 'seed of the fold assignment', nonNegativeIntArg('--fold-seed'), 1)
    .option('--limit <n>', 'only the first n crops', positiveIntArg('--limit'))
    .option('--csv <file>', 'write one row per nodule')
    .option('--md <file>', 'write the grouped table (markdown)')
    .option('--tta [kind]', TTA_HELP)
    .option('--threshold <p>', "probability threshold (default: the model's)", probabilityArg('--threshold'))
    .option(
      '--click <where>',
      "where the prompt is: centre (the readers' centre), on-nodule (a random voxel of the readers' 50% consensus) or an in-plane offset from the centre such as 2mm",
      clickArg,
      CENTRE,
    )
    .option('--threads <n>', 'intra-op threads (default: all cores)', nonNegativeIntArg('--threads'))
    .action((opts: Common & { split: string; fold?: string; foldSeed: number; limit?: number; click: ClickMode }) => {
      checkOutputs(opts, [opts.model, lidcCropsDir()]);
      if (opts.threads) setNumThreads(opts.threads);
      if (!existsSync(opts.model)) throw new UserError(`${opts.model}: no such model file`);
      requireData(lidcCropsDir());
      const { cases, what } = selectCrops(opts.split, opts.fold, opts.foldSeed, opts.limit);
      if (cases.length === 0) throw new UserError(`${what}: no crops`);
      const rows = runCrops(opts.model, cases, ttaKind(opts.tta), 'segmenting crops', opts.threshold, opts.click);
      const md = `${cases.length} nodules of ${what}, model ${opts.model}${clickNote(opts.click)}\n\n${groupTableMarkdown(groupSummaries(rows))}`;
      if (opts.csv) writeFileAtomic(opts.csv, cropRowsCsv(rows));
      if (opts.md) writeFileAtomic(opts.md, md);
      process.stdout.write(md);
    });

  bench
    .command('cv')
    .description(
      "cross-validation: each fold's model (trained with train --fold i/k) on its held-out fold; pooled per-type table and the spread over folds",
    )
    .requiredOption('--models <pattern>', 'model file per fold, with {fold} for 1..k, e.g. runs/cv-{fold}/best.safetensors')
    .option('--folds <k>', 'number of folds', positiveIntArg('--folds'), 5)
    .option('--fold-seed <n>', 'seed of the fold assignment', nonNegativeIntArg('--fold-seed'), 1)
    .option('--only <i,j,...>', 'only these folds (1-based), while the others are still training: the tables say which folds they pool')
    .option('--csv <file>', 'write one row per nodule (with its fold)')
    .option('--md <file>', 'write the tables (markdown)')
    .option('--tta [kind]', TTA_HELP)
    .option('--threshold <p>', "probability threshold (default: the model's)", probabilityArg('--threshold'))
    .option(
      '--click <where>',
      "where the prompt is: centre (the readers' centre), on-nodule (a random voxel of the readers' 50% consensus) or an in-plane offset from the centre such as 2mm",
      clickArg,
      CENTRE,
    )
    .option('--threads <n>', 'intra-op threads (default: all cores)', nonNegativeIntArg('--threads'))
    .action((opts: Omit<Common, 'model'> & { models: string; folds: number; foldSeed: number; only?: string; click: ClickMode }) => {
      if (!opts.models.includes('{fold}')) throw new UserError(`--models: the pattern must contain {fold}, got "${opts.models}"`);
      if (opts.folds < 2) throw new UserError(`--folds: expected at least 2, got ${opts.folds}`);
      const folds = opts.only === undefined ? Array.from({ length: opts.folds }, (_, i) => i) : parseFoldList(opts.only, opts.folds);
      const paths = new Map(folds.map((i) => [i, opts.models.replaceAll('{fold}', String(i + 1))]));
      for (const [i, p] of paths)
        if (!existsSync(p)) throw new UserError(`${p}: no such model file (train it with train --fold ${i + 1}/${opts.folds})`);
      checkOutputs(opts, [...paths.values(), lidcCropsDir()]);
      if (opts.threads) setNumThreads(opts.threads);
      requireData(lidcCropsDir());
      const all = loadCrops();
      const perFold: CropBenchmarkRow[][] = [];
      let csv = '';
      for (const i of folds) {
        const held = foldSplit(all, opts.folds, i, opts.foldSeed).heldOut;
        const rows = runCrops(paths.get(i)!, held, ttaKind(opts.tta), `fold ${i + 1}/${opts.folds}`, opts.threshold, opts.click);
        perFold.push(rows);
        const part = cropRowsCsv(rows, { fold: String(i + 1) });
        csv += csv === '' ? part : part.slice(part.indexOf('\n') + 1);
      }
      const pooled = perFold.flat();
      const spread = (f: (g: ReturnType<typeof summariseGroup>) => number) => {
        const v = perFold.map((r) => f(summariseGroup('', r)));
        const m = v.reduce((s, x) => s + x, 0) / v.length;
        const sd = Math.sqrt(v.reduce((s, x) => s + (x - m) ** 2, 0) / Math.max(1, v.length - 1));
        return `${m.toFixed(3)} ± ${sd.toFixed(3)} (${v.map((x) => x.toFixed(3)).join(', ')})`;
      };
      const md =
        `${opts.folds}-fold cross-validation over lidc-crops train + val (${folds.length === opts.folds ? 'all folds' : `folds ${folds.map((i) => i + 1).join(', ')} of ${opts.folds} only`}: ${pooled.length} held-out nodules, fold seed ${opts.foldSeed}), models ${opts.models}${clickNote(opts.click)}\n\n` +
        `Per fold (mean ± sd over folds, then each fold): Dice vs union ${spread((g) => g.diceUnion)}; vs 50% consensus ${spread((g) => g.diceConsensus)}; vs each reader ${spread((g) => g.diceReaders)}\n\n` +
        `Pooled over the folds:\n\n${groupTableMarkdown(groupSummaries(pooled))}`;
      if (opts.csv) writeFileAtomic(opts.csv, csv);
      if (opts.md) writeFileAtomic(opts.md, md);
      process.stdout.write(md);
    });

  bench
    .command('folds')
    .description('print the patient-level folds (stratified by type) that train --fold and benchmark cv use: nodules of each type per fold')
    .option('--folds <k>', 'number of folds', positiveIntArg('--folds'), 5)
    .option('--fold-seed <n>', 'seed of the fold assignment', nonNegativeIntArg('--fold-seed'), 1)
    .option('--csv <file>', 'write patient,fold')
    .action((opts: { folds: number; foldSeed: number; csv?: string }) => {
      if (opts.folds < 2) throw new UserError(`--folds: expected at least 2, got ${opts.folds}`);
      requireData(lidcCropsDir());
      const cases = loadCrops();
      const folds = stratifiedPatientFolds(cases, opts.folds, opts.foldSeed);
      const lines = ['| fold | patients | nodules | solid | part-solid | ground-glass |', '|---:|---:|---:|---:|---:|---:|'];
      for (let f = 0; f < opts.folds; f++) {
        const cs = cases.filter((c) => folds.get(c.patientId) === f);
        const n = (t: string) => cs.filter((c) => c.noduleType === t).length;
        lines.push(
          `| ${f + 1} | ${new Set(cs.map((c) => c.patientId)).size} | ${cs.length} | ${n('solid')} | ${n('part-solid')} | ${n('ground-glass')} |`,
        );
      }
      if (opts.csv)
        writeFileAtomic(
          opts.csv,
          'patient,fold\n' +
            [...folds]
              .sort()
              .map(([p, f]) => `${p},${f + 1}`)
              .join('\n') +
            '\n',
        );
      process.stdout.write(lines.join('\n') + '\n');
    });

  bench
    .command('scans')
    .description(
      'whole LIDC scans (DICOM series + XML): every nodule the readers outlined, prompted by a point at their centre and by their box, scored in 3D against their union and 50% consensus',
    )
    .argument('<dirs...>', 'LIDC scan folders (a DICOM series with its XML)')
    .option('-m, --model <file>', 'model file', DEFAULT_MODEL)
    .option('--prompts <list>', 'point, box or point,box', 'point,box')
    .option('--csv <file>', 'write one row per nodule and prompt')
    .option('--md <file>', 'write the table (markdown)')
    .option('--tta [kind]', TTA_HELP)
    .option('--threshold <p>', "probability threshold (default: the model's)", probabilityArg('--threshold'))
    .option('--threads <n>', 'intra-op threads (default: all cores)', nonNegativeIntArg('--threads'))
    .action(async (dirs: string[], opts: Common & { prompts: string }) => {
      const prompts = opts.prompts.split(',').map((s) => s.trim());
      for (const p of prompts)
        if (p !== 'point' && p !== 'box') throw new UserError(`--prompts: expected point, box or point,box, got "${opts.prompts}"`);
      checkOutputs(opts, [opts.model, ...dirs]);
      if (!existsSync(opts.model)) throw new UserError(`${opts.model}: no such model file`);
      if (opts.threads) setNumThreads(opts.threads);
      const scans = [];
      for (const d of dirs) {
        if (!existsSync(d)) throw new UserError(`${d}: no such folder`);
        scans.push({ dir: d, scan: await readLidcScan(d) });
      }
      const { model, info } = loadModel(opts.model);
      const rows: ScanBenchmarkRow[] = [];
      const progress = makeProgress();
      for (const { dir, scan } of scans) {
        const name = basename(dir.replace(/\/+$/, ''));
        progress.start(scan.nodules.length * prompts.length, name);
        rows.push(
          ...benchmarkScan(model, info, scan.series.volume, name, referenceLesions(scan.nodules, scan.series.volume.dims), {
            prompts: prompts as PromptKind[],
            flipTta: ttaKind(opts.tta),
            ...(opts.threshold !== undefined ? { threshold: opts.threshold } : {}),
            onNodule: (d) => progress.update(d),
          }),
        );
        progress.stop();
      }
      model.dispose();
      const md = `${rows.length / prompts.length} nodules in ${scans.length} scan(s), model ${opts.model}\n\n${scanRowsMarkdown(rows)}`;
      if (opts.csv) writeFileAtomic(opts.csv, scanRowsCsv(rows));
      if (opts.md) writeFileAtomic(opts.md, md);
      process.stdout.write(md);
    });
}

import type { Command } from 'commander';
import { existsSync, readdirSync, statSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { basename, join, dirname, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';
import type { Vec3, Volume } from '../io/index.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { IMAGE_EXTENSIONS_TEXT, imageStem, isImagePath } from '../io/formats.ts';
import { BOX_MARGIN_MM } from '../inference/prompts.ts';
import { readCandidatesCsv } from '../io/candidates.ts';
import { imageInputFiles, refuseOutputsOverInputs } from '../io/guard.ts';
import type { ModelInfo, SegmentationNetwork } from '../models/index.ts';
import type { NodulePrompt, NoduleResult, SegmentOptions } from '../inference/index.ts';
import type { ReportedNodule } from '../report/assess.ts';
import type { FleischnerContext, FleischnerRisk } from '../guidelines/index.ts';
import type { NoduleHeads } from '../classify/index.ts';
import { makeProgress } from './progress.ts';
import { startWorkerThread, fromWire } from '../worker-thread.ts';
import type { CropThreadInit, FromCropThread, ToCropThread } from './segment-crops-protocol.ts';
import { nonNegativeIntArg } from './args.ts';

/**
 * The modules that do the work (libtorch among them) load only when segment runs, so that the
 * other commands and --help start without them.
 */
async function loadLib() {
  const [io, models, inference, tensor, classify, report, cropFile] = await Promise.all([
    import('../io/index.ts'),
    import('../models/index.ts'),
    import('../inference/index.ts'),
    import('../tensor/index.ts'),
    import('../classify/index.ts'),
    import('../report/index.ts'),
    import('./segment-crop-file.ts'),
  ]);
  return { io, models, inference, tensor, classify, report, cropFile };
}
type Lib = Awaited<ReturnType<typeof loadLib>>;

/** The model shipped in the repository. */
export const DEFAULT_MODEL = resolve(dirname(fileURLToPath(import.meta.url)), '../../models/noduleseg.safetensors');

interface SegmentCliOptions {
  input: string;
  output?: string;
  point?: string;
  voxel?: string;
  points?: string;
  box?: string;
  voxelBox?: string;
  model: string;
  report?: string;
  png?: string;
  threshold?: number;
  tta?: boolean;
  /** false with --no-refine: the network's probability without the model's refinement stage. */
  refine?: boolean;
  /** false with --no-fill-holes: the air the nodule encloses in a slice is left out of the mask. */
  fillHoles?: boolean;
  batchSize?: number;
  threads?: number;
  /** A folder of crops: how many are segmented side by side in crop threads (0 or unset: automatic). */
  workers?: number;
  /** Patient context for Fleischner 2017 (src/guidelines). */
  risk?: FleischnerRisk;
  age?: number;
  setting?: 'incidental' | 'screening';
  cancer?: boolean;
  immunosuppressed?: boolean;
  /** HU threshold of a part-solid nodule's solid component. */
  solidHu?: number;
  /** The any-reader mask (the model's any-reader level), as a second label mask (.nii.gz/.nii). */
  anyReader?: string;
  /** DICOM SR (TID 1500) and HTML report of a scan. */
  sr?: string;
  html?: string;
  /** segment --dicomweb (src/pacs/segment-dicomweb.ts): the series comes from a server and the SEG goes back there. */
  dicomweb?: string;
  study?: string;
  series?: string;
  dicomwebAuth?: string;
}

/** What segment --dicomweb adds to the local path: the report's input, and storing the SEG before any local file is written. */
export interface SegmentRemote {
  input: string;
  /** Stores the SEG and the SR (built from `reported`) on the PACS; returns both as stored. */
  store: (
    volume: Volume,
    labels: Uint8Array,
    anyReaderLabels: Uint8Array | null,
    info: ModelInfo,
    reported: ReportedNodule[],
  ) => Promise<{ seg: Uint8Array; sr: Uint8Array; report: Record<string, unknown> }>;
}

export function register(program: Command): void {
  program
    .command('segment')
    .description('segment nodules: a crop centred on a nodule, a folder of crops, or points or boxes in a whole scan')
    .option('-i, --input <path>', `a crop or scan (${IMAGE_EXTENSIONS_TEXT}), a DICOM series folder, or a folder of crops`)
    .option('-o, --output <path>', 'mask file (.nii.gz/.nii; .dcm = DICOM SEG for DICOM input) or, for a folder of crops, an output folder')
    .option('--point <x,y,z>', 'nodule position in world mm (LPS, as DICOM/ITK/LUNA16); repeatable as "x,y,z;x,y,z"')
    .option('--voxel <i,j,k>', 'nodule position in voxels (0-based); repeatable as "i,j,k;i,j,k"')
    .option('--points <csv>', 'CSV of nodule positions with LUNA16 columns coordX,coordY,coordZ (world mm)')
    .option(
      '--box <x0,y0,z0,x1,y1,z1>',
      `a box around the nodule: two opposite corners in world mm (LPS); the mask stays within it plus ${BOX_MARGIN_MM} mm (a box flat in z, drawn on one slice, limits it in-plane only); repeatable with ";"`,
    )
    .option('--voxel-box <i0,j0,k0,i1,j1,k1>', 'the same box in voxels (0-based, corners included); repeatable with ";"')
    .option('-m, --model <file>', 'model file', DEFAULT_MODEL)
    .option('--report <file>', 'write the JSON report here (default: beside the output, or stdout)')
    .option('--png <dir>', 'write PNG overlays (lung window, mask outline) into this folder')
    .option('--threshold <p>', "probability threshold (default: the model's)", parseProbability)
    .option('--tta', 'average over flipped inputs (slower, slightly smoother)')
    .option('--no-refine', "skip the model's refinement stage across slices: the 2D network's probability alone")
    .option(
      '--no-fill-holes',
      "leave the air the nodule encloses in a slice (a cavity, a bubble) out of the mask; by default it is filled in, as radiologists outline a nodule's outer edge",
    )
    .option('--batch-size <n>', 'slices per forward pass', nonNegativeIntArg('--batch-size'), 64)
    .option('--threads <n>', 'intra-op threads (default: all cores)', nonNegativeIntArg('--threads'))
    .option(
      '--workers <n>',
      `a folder of crops: crops segmented side by side, each on one intra-op thread (or --threads) (default: one per core, up to ${MAX_CROP_THREADS}; 1, or --threads alone, segments one at a time)`,
      nonNegativeIntArg('--workers'),
    )
    .option('--risk <low|high>', "the patient's lung cancer risk, for Fleischner 2017 (default: both recommendations are given)", parseRisk)
    .option('--age <years>', "the patient's age: Fleischner 2017 does not apply under 35", parseAge)
    .option(
      '--setting <incidental|screening>',
      'incidental finding (Fleischner 2017 applies) or lung cancer screening (Lung-RADS only)',
      parseSetting,
      'incidental',
    )
    .option('--cancer', 'the patient has a known cancer (Fleischner 2017 does not apply)')
    .option('--immunosuppressed', 'the patient is immunosuppressed (Fleischner 2017 does not apply)')
    .option('--solid-hu <HU>', `HU at or above which a part-solid nodule's voxel is solid (default ${SOLID_HU_HELP})`, parseHu)
    .option(
      '--sr <file.dcm>',
      'write a DICOM SR (TID 1500) of the measurements, type and categories, referencing the SEG (-o <file.dcm>) and the series',
    )
    .option('--html <file.html>', 'write a printable HTML report: key images with the mask, measurements, type, Lung-RADS and Fleischner')
    .option(
      '--any-reader <file>',
      "also write the any-reader mask (.nii.gz/.nii): the extent some radiologist would draw (the model's any-reader level), labelled as the mask; its volume is in the report either way",
    )
    .option(
      '--dicomweb <url>',
      'instead of --input: a DICOMweb server (e.g. http://host:8042/dicom-web); the SEG is stored back there. Credentials: NODULESEG_DICOMWEB_USER/_PASSWORD, _TOKEN or --dicomweb-auth',
    )
    .option('--study <uid>', 'with --dicomweb: the study (Study Instance UID)')
    .option('--series <uid>', "with --dicomweb: the CT series (default: the study's largest CT series)")
    .option('--dicomweb-auth <file>', 'with --dicomweb: a JSON file {"username","password"} or {"token"}')
    .action(async (opts: SegmentCliOptions) => {
      if (opts.dicomweb !== undefined || opts.study !== undefined || opts.series !== undefined || opts.dicomwebAuth !== undefined) {
        const { runSegmentDicomweb } = await import('../pacs/segment-dicomweb.ts');
        await runSegmentDicomweb(opts, runSegment);
      } else {
        await runSegment(opts);
      }
    });
}

/** SOLID_COMPONENT_HU of src/guidelines, for the help text without loading that module first (a test checks the two agree). */
export const SOLID_HU_HELP = -300;

function parseRisk(v: string): FleischnerRisk {
  if (v !== 'low' && v !== 'high') throw new UserError(`--risk: expected low or high, got "${v}"`);
  return v;
}

function parseAge(v: string): number {
  const a = Number(v);
  if (!(v.trim() !== '' && Number.isFinite(a) && a >= 0 && a <= 130))
    throw new UserError(`--age: expected an age in years (0 to 130), got "${v}"`);
  return a;
}

function parseSetting(v: string): 'incidental' | 'screening' {
  if (v !== 'incidental' && v !== 'screening') throw new UserError(`--setting: expected incidental or screening, got "${v}"`);
  return v;
}

function parseHu(v: string): number {
  const h = Number(v);
  if (!(v.trim() !== '' && Number.isFinite(h) && h >= -1024 && h <= 3071))
    throw new UserError(`--solid-hu: expected a number of HU (-1024 to 3071), got "${v}"`);
  return h;
}

/** The patient context of the Fleischner rules, from the options. */
function fleischnerContextOf(opts: SegmentCliOptions): FleischnerContext {
  return {
    risk: opts.risk ?? null,
    ageYears: opts.age ?? null,
    setting: opts.setting ?? 'incidental',
    knownCancer: opts.cancer === true,
    immunosuppressed: opts.immunosuppressed === true,
  };
}

function parseProbability(v: string): number {
  const p = Number(v);
  if (!(p > 0 && p < 1)) throw new UserError(`--threshold: expected a probability in (0, 1), got "${v}"`);
  return p;
}

export function parseTriples(text: string, flag: string): Vec3[] {
  return text
    .split(';')
    .filter((s) => s.trim())
    .map((s) => {
      const v = s.split(',').map((t) => Number(t.trim()));
      if (v.length !== 3 || v.some((x) => !Number.isFinite(x))) throw new UserError(`${flag}: expected three numbers "a,b,c", got "${s}"`);
      return v as Vec3;
    });
}

/** "a,b,c,d,e,f" (";"-separated for several) -> pairs of opposite corners. */
export function parseBoxes(text: string, flag: string): Array<[Vec3, Vec3]> {
  return text
    .split(';')
    .filter((s) => s.trim())
    .map((s) => {
      const v = s.split(',').map((t) => Number(t.trim()));
      if (v.length !== 6 || v.some((x) => !Number.isFinite(x)))
        throw new UserError(`${flag}: expected six numbers "x0,y0,z0,x1,y1,z1" (two opposite corners), got "${s}"`);
      return [
        [v[0]!, v[1]!, v[2]!],
        [v[3]!, v[4]!, v[5]!],
      ];
    });
}

export type { SegmentCliOptions };

async function runSegment(opts: SegmentCliOptions, remote?: SegmentRemote): Promise<void> {
  // Every argument and path is checked before the model loads, so a mistake writes nothing.
  if (!opts.input) throw new UserError('give --input <path>, or --dicomweb <url> --study <uid>');
  if (!existsSync(opts.input)) throw new UserError(`${opts.input}: no such file or folder`);
  const prompts = [opts.point, opts.voxel, opts.points, opts.box, opts.voxelBox].filter((x) => x !== undefined).length;
  if (prompts > 1) throw new UserError('give only one of --point, --voxel, --points, --box, --voxel-box');
  if (!existsSync(opts.model)) {
    throw new UserError(
      `${opts.model}: model file not found${opts.model === DEFAULT_MODEL ? ' (the shipped model is missing from this checkout)' : ''}`,
    );
  }
  const isDir = statSync(opts.input).isDirectory();
  const cropFiles = isDir ? readdirSync(opts.input).filter(isImagePath).sort() : [];
  const folderOfCrops = isDir && cropFiles.length > 0 && prompts === 0;
  if (folderOfCrops) {
    if (opts.sr || opts.html) throw new UserError(`${opts.sr ?? opts.html}: --sr and --html describe one scan, not a folder of crops`);
    if (opts.anyReader)
      throw new UserError(`${opts.anyReader}: --any-reader writes the mask of one scan or crop, not of a folder of crops`);
    checkCropFolderPaths(opts, cropFiles);
  } else {
    if (opts.output && !/\.(nii\.gz|nii|dcm)$/i.test(opts.output)) {
      throw new UserError(`${opts.output}: the output must end in .nii.gz, .nii or .dcm`);
    }
    if (opts.sr && !/\.dcm$/i.test(opts.sr)) throw new UserError(`${opts.sr}: the SR file must end in .dcm`);
    if (opts.sr && !(opts.output && /\.dcm$/i.test(opts.output)))
      throw new UserError(`${opts.sr}: the SR references the DICOM SEG; give -o <file.dcm> too`);
    if (opts.html && !/\.html?$/i.test(opts.html)) throw new UserError(`${opts.html}: the HTML report must end in .html`);
    if (opts.anyReader !== undefined) {
      if (!/\.(nii\.gz|nii)$/i.test(opts.anyReader))
        throw new UserError(`${opts.anyReader}: the any-reader mask must end in .nii.gz or .nii`);
      const others = [opts.output, reportPathOf(opts), opts.sr, opts.html].filter((p): p is string => p !== undefined);
      if (others.some((p) => resolve(p) === resolve(opts.anyReader!)))
        throw new UserError(`${opts.anyReader}: --any-reader must be a file of its own, not another output`);
    }
    refuseOutputsOverInputs(
      [opts.output, reportPathOf(opts), opts.png, opts.sr, opts.html, opts.anyReader],
      [...imageInputFiles(opts.input), opts.model, opts.points],
    );
  }
  const lib = await loadLib();
  if (opts.threads) lib.tensor.setNumThreads(opts.threads);
  const cropThreads = folderOfCrops ? cropThreadCount(opts, cropFiles.length) : 1;
  if (cropThreads > 1) {
    // Each crop thread loads the model; here only its description, for the report.
    await segmentCropFolder(lib, lib.models.readModelInfo(opts.model), opts, cropFiles, { threads: cropThreads });
    return;
  }
  const { model, info } = lib.models.loadModel(opts.model);
  try {
    if (opts.anyReader && info.anyReaderThreshold === undefined)
      throw new UserError(`${opts.anyReader}: the model ${basename(opts.model)} has no any-reader level, so no any-reader mask to write`);
    const heads = lib.classify.readHeads(opts.model, model);
    if (folderOfCrops) {
      await segmentCropFolder(lib, info, opts, cropFiles, { model, heads });
      return;
    }
    const volume = await lib.io.readVolume(opts.input);
    if (prompts === 0) {
      await segmentOneCrop(lib, model, info, opts, volume, heads);
      return;
    }
    const { boxPrompt } = lib.inference;
    let nodulePrompts: NodulePrompt[];
    if (opts.voxel) nodulePrompts = parseTriples(opts.voxel, '--voxel').map((voxel) => ({ kind: 'point', voxel }));
    else if (opts.voxelBox) nodulePrompts = parseBoxes(opts.voxelBox, '--voxel-box').map(([a, b]) => boxPrompt(a, b));
    else if (opts.box)
      nodulePrompts = parseBoxes(opts.box, '--box').map(([a, b]) => boxPrompt(volume.worldToVoxel(a), volume.worldToVoxel(b)));
    else {
      const world = opts.point ? parseTriples(opts.point, '--point') : readCandidatesCsv(opts.points!).map((c) => c.point);
      nodulePrompts = world.map((w) => ({ kind: 'point', voxel: volume.worldToVoxel(w) }));
    }
    for (const [n, prompt] of nodulePrompts.entries()) {
      const v = lib.inference.promptCentre(prompt);
      if (v.some((x, d) => x < -0.5 || x > volume.dims[d]! - 0.5)) {
        const what = prompt.kind === 'point' ? `point ${n + 1}` : `the centre of box ${n + 1}`;
        throw new UserError(
          `${opts.input}: ${what} (voxel ${v.map((x) => x.toFixed(1)).join(', ')}) lies outside the image [${volume.dims.join(' x ')}]`,
        );
      }
    }
    const progress = makeProgress();
    progress.start(nodulePrompts.length, 'segmenting nodules');
    const { labels, anyReaderVoxels, nodules } = lib.inference.segmentAtPrompts(model, info, volume, nodulePrompts, {
      ...segmentOptionsOf(opts, heads),
      onNodule: (d) => progress.update(d),
    });
    progress.stop();
    // For --any-reader, the SEG's second segment and the key images' second outline.
    const anyReaderLabels = lib.inference.labelsFromVoxelLists(anyReaderVoxels, volume.voxelCount);
    // On a PACS the SEG is stored first: a refused store leaves no local file either.
    const stored = remote
      ? await remote.store(volume, labels, anyReaderLabels, info, lib.report.withGuidelines(nodules, fleischnerContextOf(opts)))
      : undefined;
    writeOutputs(
      lib,
      opts,
      volume,
      labels,
      anyReaderLabels,
      nodules,
      info,
      stored && remote ? { input: remote.input, seg: stored.seg, sr: stored.sr, report: stored.report } : undefined,
    );
  } finally {
    model.dispose();
  }
}

/** Where the JSON report of one input goes: --report, else beside the output, else stdout (undefined). */
function reportPathOf(opts: SegmentCliOptions): string | undefined {
  return opts.report ?? (opts.output ? opts.output.replace(/\.(nii\.gz|nii|dcm)$/i, '.json') : undefined);
}

/** A folder of crops: the output folder, every file that will be written, and none over an input. */
function checkCropFolderPaths(opts: SegmentCliOptions, files: string[]): void {
  if (!opts.output) throw new UserError('--output <dir> is required for a folder of crops');
  if (isImagePath(opts.output) || /\.dcm$/i.test(opts.output))
    throw new UserError(`${opts.output}: for a folder of crops the output must be a folder`);
  const stems = files.map(imageStem);
  const twice = stems.find((s, i) => stems.indexOf(s) !== i);
  if (twice !== undefined) throw new UserError(`${opts.input}: two crops would both be written as ${twice}.nii.gz; rename one`);
  const outputs = [
    opts.output,
    ...stems.map((s) => join(opts.output!, `${s}.nii.gz`)),
    opts.report ?? join(opts.output, 'report.json'),
    ...(opts.png ? [opts.png, ...stems.map((s) => join(opts.png!, `${s}.png`))] : []),
  ];
  refuseOutputsOverInputs(outputs, [opts.input, opts.model]);
}

/** What segmentCrop and segmentAtPrompts take from the options, with the model file's heads. */
function segmentOptionsOf(opts: SegmentCliOptions, heads: NoduleHeads | null): SegmentOptions {
  return {
    threshold: opts.threshold,
    flipTta: opts.tta,
    batchSize: opts.batchSize,
    refine: opts.refine !== false,
    fillHoles: opts.fillHoles !== false,
    heads,
    ...(opts.solidHu !== undefined ? { solidThresholdHU: opts.solidHu } : {}),
  };
}

async function segmentOneCrop(
  lib: Lib,
  model: SegmentationNetwork,
  info: ModelInfo,
  opts: SegmentCliOptions,
  crop: Volume,
  heads: NoduleHeads | null,
): Promise<void> {
  const { seg, nodule, anyReaderMask } = lib.inference.segmentCrop(model, info, crop, segmentOptionsOf(opts, heads));
  writeOutputs(lib, opts, crop, seg.mask.data, anyReaderMask, [nodule], info);
}

/** A folder of crops: one at a time with the model loaded here, or side by side in crop threads. */
async function segmentCropFolder(
  lib: Lib,
  info: ModelInfo,
  opts: SegmentCliOptions,
  files: string[],
  on: { model: SegmentationNetwork; heads: NoduleHeads | null } | { threads: number },
): Promise<void> {
  if (!opts.output) throw new UserError('--output <dir> is required for a folder of crops');
  // A bad file halfway must not leave a partial set: masks and overlays go to staging folders
  // and are moved into place only after every crop has been segmented.
  const created: string[] = [];
  const stage = (dir: string): string => {
    // Remember the topmost folder this run creates, so a failed run can remove all of it.
    let top: string | null = null;
    for (let d = resolve(dir); !existsSync(d); d = dirname(d)) top = d;
    if (top) created.push(top);
    mkdirSync(dir, { recursive: true });
    return mkdtempSync(join(dir, '.noduleseg-staging-'));
  };
  const maskStage = stage(opts.output);
  const pngStage = opts.png ? stage(opts.png) : null;
  const progress = makeProgress();
  const report: Record<string, ReportedNodule> = {};
  const t0 = Date.now();
  let complete = false;
  try {
    progress.start(files.length, 'segmenting crops');
    if ('threads' in on) {
      const reported = await segmentCropsInThreads(opts, files, on.threads, { maskStage, pngStage }, (done) => progress.update(done));
      files.forEach((f, n) => {
        report[imageStem(f)] = reported[n]!;
      });
    } else
      for (const [n, f] of files.entries()) {
        const run = { options: segmentOptionsOf(opts, on.heads), fleischner: fleischnerContextOf(opts), maskStage, pngStage };
        report[imageStem(f)] = await lib.cropFile.segmentCropFile(on.model, info, join(opts.input, f), imageStem(f), run);
        progress.update(n + 1);
      }
    progress.stop();
    for (const [from, to] of [[maskStage, opts.output], ...(pngStage && opts.png ? [[pngStage, opts.png]] : [])] as Array<
      [string, string]
    >) {
      for (const name of readdirSync(from)) renameSync(join(from, name), join(to, name));
    }
    complete = true;
  } catch (e) {
    progress.stop();
    throw e;
  } finally {
    rmSync(maskStage, { recursive: true, force: true });
    if (pngStage) rmSync(pngStage, { recursive: true, force: true });
    if (!complete) for (const dir of created) rmSync(dir, { recursive: true, force: true });
  }
  const reportPath = opts.report ?? join(opts.output, 'report.json');
  writeFileAtomic(
    reportPath,
    JSON.stringify({ model: modelSummary(opts.model, info), patient: fleischnerContextOf(opts), cases: report }, null, 2) + '\n',
  );
  process.stderr.write(
    `${files.length} crops segmented in ${((Date.now() - t0) / 1000).toFixed(1)} s; masks in ${opts.output}, report ${reportPath}\n`,
  );
}

/** Crop threads a folder run starts by default at most (each holds a copy of the model). */
export const MAX_CROP_THREADS = 4;

/** How many crops are segmented side by side: --workers, else one per core (1 with --threads). */
export function cropThreadCount(
  opts: Pick<SegmentCliOptions, 'workers' | 'threads'>,
  crops: number,
  cores = availableParallelism(),
): number {
  const wanted = opts.workers ? opts.workers : opts.threads ? 1 : Math.min(cores, MAX_CROP_THREADS);
  return Math.max(1, Math.min(wanted, crops));
}

/**
 * Segments `files` in `count` crop threads (segment-crops-thread.ts), each on one intra-op thread (or --threads)
 * and handed the next crop when it is done; the masks go to the staging folders. The reports come
 * back in the order of `files`. The first failure stops every thread and is thrown.
 */
async function segmentCropsInThreads(
  opts: SegmentCliOptions,
  files: string[],
  count: number,
  stages: { maskStage: string; pngStage: string | null },
  onDone: (done: number) => void,
): Promise<ReportedNodule[]> {
  const init: CropThreadInit = {
    modelFile: opts.model,
    threads: opts.threads || 1, // with --workers and --threads both given, each thread gets --threads
    options: segmentOptionsOf(opts, null),
    fleischner: fleischnerContextOf(opts),
    ...stages,
  };
  const reported: ReportedNodule[] = new Array(files.length);
  const workers: Worker[] = [];
  let next = 0,
    done = 0;
  try {
    await new Promise<void>((resolveAll, rejectAll) => {
      // A thread is stopped only when idle: terminating one inside libtorch aborts the process.
      // So after a failure no crop is handed out, and the run ends when every crop in flight is back.
      const busy = new Set<Worker>();
      let failure: Error | null = null;
      const settle = () => {
        if (busy.size > 0) return;
        if (failure) rejectAll(failure);
        else if (done === files.length) resolveAll();
      };
      const send = (w: Worker) => {
        if (failure || next >= files.length) return;
        const index = next++;
        busy.add(w);
        w.postMessage({ index, file: join(opts.input, files[index]!), stem: imageStem(files[index]!) } satisfies ToCropThread);
      };
      for (let k = 0; k < count; k++) {
        const w = startWorkerThread(import.meta.url, 'segment-crops-thread', init);
        workers.push(w);
        busy.add(w); // loading the model
        const fail = (e: Error) => {
          failure ??= e;
          busy.delete(w);
          settle();
        };
        w.on('error', fail);
        w.on('exit', (code) => {
          if (done < files.length) fail(new Error(`crop thread: stopped (exit code ${code}) before the crops were done`));
        });
        w.on('message', (m: FromCropThread) => {
          busy.delete(w);
          if (m.type === 'startFailed' || m.type === 'failed') return fail(fromWire(m.error, 'crop thread'));
          if (m.type === 'done') {
            reported[m.index] = m.reported;
            onDone(++done);
          }
          send(w);
          settle();
        });
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return reported;
}

function modelSummary(file: string, info: ModelInfo): Record<string, unknown> {
  return { file: basename(file), arch: info.config.arch, threshold: info.threshold, slice: info.slice };
}

function writeOutputs(
  lib: Lib,
  opts: SegmentCliOptions,
  volume: Volume,
  labels: Uint8Array,
  anyReaderLabels: Uint8Array | null,
  nodules: NoduleResult[],
  info: ModelInfo,
  remote?: { input: string; seg: Uint8Array; sr: Uint8Array; report: Record<string, unknown> },
): void {
  const out = opts.output;
  const reported = lib.report.withGuidelines(nodules, fleischnerContextOf(opts));
  // Everything that can fail is built before the first file is written.
  let segBytes: Uint8Array | null = null;
  if (out && /\.dcm$/i.test(out)) {
    if (volume.source?.format !== 'dicom')
      throw new UserError(`${out}: DICOM SEG output needs a DICOM series input; write .nii.gz instead`);
    // On a PACS: the very SEG stored there (same UIDs).
    segBytes = remote ? remote.seg : lib.report.encodeNoduleSeg(volume, labels, anyReaderLabels, info.config.arch);
  }
  const extra: Array<[string, Uint8Array | string]> = [];
  if (opts.sr) {
    if (!segBytes) throw new UserError(`${opts.sr}: the SR references the DICOM SEG; give -o <file.dcm> with a DICOM series input`);
    extra.push([opts.sr, remote ? remote.sr : lib.report.encodeNoduleSr(reported, volume, segBytes, info.config.arch)]);
  }
  if (opts.html) {
    extra.push([
      opts.html,
      lib.report.noduleHtmlReport(reported, volume, labels, {
        input: remote?.input ?? opts.input ?? '',
        modelName: `${basename(opts.model)} (${info.config.arch})`,
        patient: fleischnerContextOf(opts),
        anyReaderLabels,
      }),
    ]);
  }
  // Every output is made in memory, then written as a set: a failure on the last file (a full
  // disk, a folder that cannot be made) leaves none of them behind.
  const files: Array<[string, Uint8Array | string]> = [];
  if (out) {
    files.push([out, segBytes ?? lib.io.encodeNiftiFile(out, volume.withData(labels, 'SEG'))]);
  }
  if (opts.anyReader && anyReaderLabels) {
    files.push([opts.anyReader, lib.io.encodeNiftiFile(opts.anyReader, volume.withData(anyReaderLabels, 'SEG'))]);
  }
  if (opts.png) {
    for (const n of nodules) {
      if (n.measures.voxelCount === 0) continue;
      const only = new Uint8Array(labels.length);
      for (let i = 0; i < labels.length; i++) if (labels[i] === n.label) only[i] = 1;
      files.push([join(opts.png, `nodule-${n.label}.png`), lib.io.renderOverlayPng(volume, only, { slices: 'all-mask' })]);
    }
  }
  files.push(...extra);
  const report =
    JSON.stringify(
      {
        input: remote?.input ?? opts.input,
        model: modelSummary(opts.model, info),
        patient: fleischnerContextOf(opts),
        ...remote?.report,
        nodules: reported,
      },
      null,
      2,
    ) + '\n';
  const reportPath = reportPathOf(opts);
  if (reportPath) files.push([reportPath, report]);
  lib.io.writeFilesAtomicSet(files);
  if (!reportPath) process.stdout.write(report);
  for (const n of reported) {
    const m = n.measures;
    if (m.voxelCount === 0) {
      process.stderr.write(`nodule ${n.label}: nothing segmented${n.warnings.length ? ` — ${n.warnings.join('; ')}` : ''}\n`);
      continue;
    }
    process.stderr.write(
      `nodule ${n.label}: ${m.volumeMm3.toFixed(1)} mm3${n.anyReaderVolumeMm3 !== null ? ` (up to ${n.anyReaderVolumeMm3.toFixed(1)} mm3 as any reader would draw it)` : ''}, longest axial diameter ${m.longestAxialDiameterMm.toFixed(1)} mm ` +
        `(perpendicular ${m.perpendicularDiameterMm.toFixed(1)} mm), mean ${m.meanHU.toFixed(0)} HU${n.sizeClass ? `, size class ${n.sizeClass}` : ''}` +
        `${n.type ? `; ${lib.report.clinicalSummary(n)}` : ''}${n.warnings.length ? ' — ' + n.warnings.join('; ') : ''}\n`,
    );
  }
}

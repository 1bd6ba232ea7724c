import type { Command } from 'commander';
import { existsSync, readdirSync, statSync, readFileSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { basename, join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';
import type { Vec3, Volume } from '../io/index.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { IMAGE_EXTENSIONS_TEXT, imageStem, isImagePath } from '../io/formats.ts';
import { imageInputFiles, refuseOutputsOverInputs } from '../io/guard.ts';
import type { ModelInfo, SegmentationNetwork } from '../models/index.ts';
import type { NodulePrompt, NoduleResult } from '../inference/index.ts';
import { makeProgress } from './progress.ts';
import { nonNegativeIntArg } from './args.ts';

/**
 * The modules that do the work (libtorch among them) load only when segment runs, so that the
 * other commands and --help start without them.
 */
async function loadLib() {
  const [io, models, inference, tensor] = await Promise.all([
    import('../io/index.ts'),
    import('../models/index.ts'),
    import('../inference/index.ts'),
    import('../tensor/index.ts'),
  ]);
  return { io, models, inference, tensor };
}
type Lib = Awaited<ReturnType<typeof loadLib>>;

/** BOX_MARGIN_MM of src/inference, for the help text (that module loads libtorch; a test checks the two agree). */
export const BOX_MARGIN_HELP_MM = 2;

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
  batchSize?: number;
  threads?: number;
}

export function register(program: Command): void {
  program
    .command('segment')
    .description('segment nodules: a crop centred on a nodule, a folder of crops, or points or boxes in a whole scan')
    .requiredOption('-i, --input <path>', `a crop or scan (${IMAGE_EXTENSIONS_TEXT}), a DICOM series folder, or a folder of crops`)
    .option('-o, --output <path>', 'mask file (.nii.gz/.nii; .dcm = DICOM SEG for DICOM input) or, for a folder of crops, an output folder')
    .option('--point <x,y,z>', 'nodule position in world mm (LPS, as DICOM/ITK/LUNA16); repeatable as "x,y,z;x,y,z"')
    .option('--voxel <i,j,k>', 'nodule position in voxels (0-based); repeatable as "i,j,k;i,j,k"')
    .option('--points <csv>', 'CSV of nodule positions with LUNA16 columns coordX,coordY,coordZ (world mm)')
    .option('--box <x0,y0,z0,x1,y1,z1>', `a box around the nodule: two opposite corners in world mm (LPS); the mask stays within it plus ${BOX_MARGIN_HELP_MM} mm (a box flat in z, drawn on one slice, limits it in-plane only); repeatable with ";"`)
    .option('--voxel-box <i0,j0,k0,i1,j1,k1>', 'the same box in voxels (0-based, corners included); repeatable with ";"')
    .option('-m, --model <file>', 'model file', DEFAULT_MODEL)
    .option('--report <file>', 'write the JSON report here (default: beside the output, or stdout)')
    .option('--png <dir>', 'write PNG overlays (lung window, mask outline) into this folder')
    .option('--threshold <p>', 'probability threshold (default: the model\'s)', parseProbability)
    .option('--tta', 'average over flipped inputs (slower, slightly smoother)')
    .option('--batch-size <n>', 'slices per forward pass', nonNegativeIntArg('--batch-size'), 64)
    .option('--threads <n>', 'intra-op threads (default: all cores)', nonNegativeIntArg('--threads'))
    .action(async (opts: SegmentCliOptions) => {
      await runSegment(opts);
    });
}

function parseProbability(v: string): number {
  const p = Number(v);
  if (!(p > 0 && p < 1)) throw new UserError(`--threshold: expected a probability in (0, 1), got "${v}"`);
  return p;
}

function parseTriples(text: string, flag: string): Vec3[] {
  return text.split(';').filter((s) => s.trim()).map((s) => {
    const v = s.split(',').map((t) => Number(t.trim()));
    if (v.length !== 3 || v.some((x) => !Number.isFinite(x))) throw new UserError(`${flag}: expected three numbers "a,b,c", got "${s}"`);
    return v as Vec3;
  });
}

/** "a,b,c,d,e,f" (";"-separated for several) -> pairs of opposite corners. */
function parseBoxes(text: string, flag: string): Array<[Vec3, Vec3]> {
  return text.split(';').filter((s) => s.trim()).map((s) => {
    const v = s.split(',').map((t) => Number(t.trim()));
    if (v.length !== 6 || v.some((x) => !Number.isFinite(x))) throw new UserError(`${flag}: expected six numbers "x0,y0,z0,x1,y1,z1" (two opposite corners), got "${s}"`);
    return [[v[0]!, v[1]!, v[2]!], [v[3]!, v[4]!, v[5]!]];
  });
}

function readPointsCsv(file: string): Vec3[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`${file}: cannot read the points CSV`);
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim());
  if (lines.length < 2) throw new UserError(`${file}: no points (a header with coordX,coordY,coordZ and one row per nodule)`);
  const head = lines[0]!.split(',').map((h) => h.trim());
  const ix = head.indexOf('coordX'), iy = head.indexOf('coordY'), iz = head.indexOf('coordZ');
  if (ix < 0 || iy < 0 || iz < 0) throw new UserError(`${file}: needs the columns coordX, coordY, coordZ`);
  return lines.slice(1).map((l, n) => {
    const c = l.split(',');
    const p = [Number(c[ix]), Number(c[iy]), Number(c[iz])];
    if (p.some((x) => !Number.isFinite(x))) throw new UserError(`${file}: line ${n + 2}: coordinates are not numbers`);
    return p as Vec3;
  });
}

async function runSegment(opts: SegmentCliOptions): Promise<void> {
  // Every argument and path is checked before the model loads, so a mistake writes nothing.
  if (!existsSync(opts.input)) throw new UserError(`${opts.input}: no such file or folder`);
  const prompts = [opts.point, opts.voxel, opts.points, opts.box, opts.voxelBox].filter((x) => x !== undefined).length;
  if (prompts > 1) throw new UserError('give only one of --point, --voxel, --points, --box, --voxel-box');
  if (!existsSync(opts.model)) {
    throw new UserError(`${opts.model}: model file not found${opts.model === DEFAULT_MODEL ? ' (the shipped model is missing from this checkout)' : ''}`);
  }
  const isDir = statSync(opts.input).isDirectory();
  const cropFiles = isDir ? readdirSync(opts.input).filter(isImagePath).sort() : [];
  const folderOfCrops = isDir && cropFiles.length > 0 && prompts === 0;
  if (folderOfCrops) {
    checkCropFolderPaths(opts, cropFiles);
  } else {
    if (opts.output && !/\.(nii\.gz|nii|dcm)$/i.test(opts.output)) {
      throw new UserError(`${opts.output}: the output must end in .nii.gz, .nii or .dcm`);
    }
    refuseOutputsOverInputs([opts.output, reportPathOf(opts), opts.png], [...imageInputFiles(opts.input), opts.model, opts.points]);
  }
  const lib = await loadLib();
  if (opts.threads) lib.tensor.setNumThreads(opts.threads);
  const { model, info } = lib.models.loadModel(opts.model);
  try {
    if (folderOfCrops) {
      await segmentCropFolder(lib, model, info, opts, cropFiles);
      return;
    }
    const volume = await lib.io.readVolume(opts.input);
    if (prompts === 0) {
      await segmentOneCrop(lib, model, info, opts, volume);
      return;
    }
    const { boxPrompt } = lib.inference;
    let nodulePrompts: NodulePrompt[];
    if (opts.voxel) nodulePrompts = parseTriples(opts.voxel, '--voxel').map((voxel) => ({ kind: 'point', voxel }));
    else if (opts.voxelBox) nodulePrompts = parseBoxes(opts.voxelBox, '--voxel-box').map(([a, b]) => boxPrompt(a, b));
    else if (opts.box) nodulePrompts = parseBoxes(opts.box, '--box').map(([a, b]) => boxPrompt(volume.worldToVoxel(a), volume.worldToVoxel(b)));
    else {
      const world = opts.point ? parseTriples(opts.point, '--point') : readPointsCsv(opts.points!);
      nodulePrompts = world.map((w) => ({ kind: 'point', voxel: volume.worldToVoxel(w) }));
    }
    for (const [n, prompt] of nodulePrompts.entries()) {
      const v = lib.inference.promptCentre(prompt);
      if (v.some((x, d) => x < -0.5 || x > volume.dims[d]! - 0.5)) {
        const what = prompt.kind === 'point' ? `point ${n + 1}` : `the centre of box ${n + 1}`;
        throw new UserError(`${opts.input}: ${what} (voxel ${v.map((x) => x.toFixed(1)).join(', ')}) lies outside the image [${volume.dims.join(' x ')}]`);
      }
    }
    const progress = makeProgress();
    progress.start(nodulePrompts.length, 'segmenting nodules');
    const { labels, nodules } = lib.inference.segmentAtPrompts(model, info, volume, nodulePrompts, {
      threshold: opts.threshold,
      flipTta: opts.tta,
      batchSize: opts.batchSize,
      onNodule: (d) => progress.update(d),
    });
    progress.stop();
    writeOutputs(lib, opts, volume, labels, nodules, info);
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
  if (isImagePath(opts.output) || /\.dcm$/i.test(opts.output)) throw new UserError(`${opts.output}: for a folder of crops the output must be a folder`);
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

async function segmentOneCrop(lib: Lib, model: SegmentationNetwork, info: ModelInfo, opts: SegmentCliOptions, crop: Volume): Promise<void> {
  const { seg, nodule } = lib.inference.segmentCrop(model, info, crop, { threshold: opts.threshold, flipTta: opts.tta, batchSize: opts.batchSize });
  writeOutputs(lib, opts, crop, seg.mask.data, [nodule], info);
}

async function segmentCropFolder(lib: Lib, model: SegmentationNetwork, info: ModelInfo, opts: SegmentCliOptions, files: string[]): Promise<void> {
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
  const report: Record<string, NoduleResult> = {};
  const t0 = Date.now();
  let complete = false;
  try {
    progress.start(files.length, 'segmenting crops');
    for (const [n, f] of files.entries()) {
      const crop = await lib.io.readVolume(join(opts.input, f));
      const { seg, nodule } = lib.inference.segmentCrop(model, info, crop, { threshold: opts.threshold, flipTta: opts.tta, batchSize: opts.batchSize });
      const stem = imageStem(f);
      lib.io.writeNiftiMask(join(maskStage, `${stem}.nii.gz`), seg.mask.data, crop);
      if (pngStage && nodule.measures.voxelCount > 0) lib.io.writeOverlayPng(join(pngStage, `${stem}.png`), crop, seg.mask.data);
      report[stem] = nodule;
      progress.update(n + 1);
    }
    progress.stop();
    for (const [from, to] of [[maskStage, opts.output], ...(pngStage && opts.png ? [[pngStage, opts.png]] : [])] as Array<[string, string]>) {
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
  writeFileAtomic(reportPath, JSON.stringify({ model: modelSummary(opts.model, info), cases: report }, null, 2) + '\n');
  process.stderr.write(`${files.length} crops segmented in ${((Date.now() - t0) / 1000).toFixed(1)} s; masks in ${opts.output}, report ${reportPath}\n`);
}

function modelSummary(file: string, info: ModelInfo): Record<string, unknown> {
  return { file: basename(file), arch: info.config.arch, threshold: info.threshold, slice: info.slice };
}

function writeOutputs(lib: Lib, opts: SegmentCliOptions, volume: Volume, labels: Uint8Array, nodules: NoduleResult[], info: ModelInfo): void {
  const out = opts.output;
  if (out) {
    if (/\.dcm$/i.test(out)) {
      if (volume.source?.format !== 'dicom') throw new UserError(`${out}: DICOM SEG output needs a DICOM series input; write .nii.gz instead`);
      const binary = Uint8Array.from(labels, (v) => (v ? 1 : 0));
      lib.io.writeDicomSeg(out, binary, volume, { algorithmType: 'AUTOMATIC', algorithmName: `noduleseg ${info.config.arch}`, segmentLabel: 'Nodule' });
    } else {
      lib.io.writeNiftiMask(out, labels, volume);
    }
  }
  if (opts.png) {
    mkdirSync(opts.png, { recursive: true });
    for (const n of nodules) {
      if (n.measures.voxelCount === 0) continue;
      const only = Uint8Array.from(labels, (v) => (v === n.label ? 1 : 0));
      lib.io.writeOverlayPng(join(opts.png, `nodule-${n.label}.png`), volume, only, { slices: 'all-mask' });
    }
  }
  const report = JSON.stringify({ input: opts.input, model: modelSummary(opts.model, info), nodules }, null, 2) + '\n';
  const reportPath = reportPathOf(opts);
  if (reportPath) writeFileAtomic(reportPath, report);
  else process.stdout.write(report);
  for (const n of nodules) {
    const m = n.measures;
    process.stderr.write(
      `nodule ${n.label}: ${m.volumeMm3.toFixed(1)} mm3${n.anyReaderVolumeMm3 !== null ? ` (up to ${n.anyReaderVolumeMm3.toFixed(1)} mm3 as any reader would draw it)` : ''}, longest axial diameter ${m.longestAxialDiameterMm.toFixed(1)} mm ` +
        `(perpendicular ${m.perpendicularDiameterMm.toFixed(1)} mm), mean ${m.meanHU.toFixed(0)} HU${n.sizeClass ? `, size class ${n.sizeClass}` : ''}` +
        `${n.warnings.length ? ' — ' + n.warnings.join('; ') : ''}\n`,
    );
  }
}

/**
 * Segmenting nodules given where they are: a crop centred on the nodule, or prompts (points or
 * boxes) in a whole scan. Shared by `noduleseg segment` and the viewer's server.
 */
import { type Volume, cropAround, pasteCrop, type Vec3 } from '../io/index.ts';
import { measureNodule, type NoduleMeasures } from '../metrics/index.ts';
import type { ModelInfo, SegmentationNetwork } from '../models/index.ts';
import { segmentVolume, type CropSegmentation, type SegmentCropOptions } from './predict.ts';
import { fillHolesInPlane, keepComponentAt } from './components.ts';
import { trimAtConstriction } from './profile.ts';
import { BOX_MARGIN_MM, promptCentre, type NodulePrompt } from './prompts.ts';
import { guidelineMeasures, SOLID_COMPONENT_HU, type GuidelineMeasures } from '../guidelines/measurements.ts';
import { characteriseNodule, type NoduleHeads } from '../classify/index.ts';
import type { NoduleType } from '../data/nodule-type.ts';

export { BOX_MARGIN_MM, boxPrompt, promptCentre, type NodulePrompt } from './prompts.ts';

export interface NoduleResult {
  /** 1-based label of this nodule in the label mask. */
  label: number;
  /** The point prompted, or the centre of the prompted box. */
  promptVoxel: Vec3;
  promptWorldMm: Vec3;
  /** The prompted box (voxels of the scan, and its corners in world mm, LPS); null for a point. */
  promptBoxVoxels: [Vec3, Vec3] | null;
  promptBoxWorldMm: [Vec3, Vec3] | null;
  measures: NoduleMeasures;
  /** Centroid in world mm (LPS); null for an empty mask. */
  centroidWorldMm: Vec3 | null;
  /** Bounding box in world mm (LPS) of the voxel centres; null when empty. */
  boundingBoxWorldMm: [Vec3, Vec3] | null;
  /** Size-class probabilities (none, small, medium, large) on the axial slice through the centroid. */
  sizeClassProbabilities: number[] | null;
  sizeClass: string | null;
  /**
   * With a model trained on the readers' agreement: the volume (mm3) of the wider mask at its
   * any-reader level, the extent that some radiologist would draw (the default mask is the
   * extent most would); null otherwise.
   */
  anyReaderVolumeMm3: number | null;
  anyReaderLevel: number | null;
  /** Mean foreground probability inside the mask, and the share of mask voxels with p < 0.7. */
  meanProbability: number;
  uncertainFraction: number;
  /**
   * Size as Lung-RADS and Fleischner measure it: long and short axis on the axial slice of the
   * longest diameter, their mean rounded to 0.1 mm and to the mm, volume, and the solid component
   * (voxels at or above solidThresholdHU).
   */
  guidelineMeasures: GuidelineMeasures;
  /** From the model's nodule-level heads; null without heads or for an empty mask. */
  type: NoduleType | null;
  /** solid, part-solid, ground-glass. */
  typeProbabilities: [number, number, number] | null;
  /** Probability that the LIDC readers would rate it calcified. */
  calcified: number | null;
  /** Probability of an LIDC malignancy rating >= 4: the radiologists' suspicion on LIDC, not a diagnosis. */
  malignancySuspicion: number | null;
  /** Probability of marked spiculation (LIDC rating >= 3). */
  spiculation: number | null;
  warnings: string[];
}

export interface SegmentOptions {
  threshold?: number;
  /** Test-time augmentation: the 4 flips, or 'dihedral' (the flips and their transposes, 8 passes). */
  flipTta?: boolean | 'dihedral';
  batchSize?: number;
  /** The model file's nodule-level heads (classify/readHeads); without them type and probabilities are null. */
  heads?: NoduleHeads | null;
  /** HU at or above which a voxel of the nodule is solid (default SOLID_COMPONENT_HU). */
  solidThresholdHU?: number;
  /** Segment again centred on the nodule found when it lies over RECENTRE_MM from the point (default true). */
  recentre?: boolean;
  /** Apply the model's refinement stage when it has one (default true). */
  refine?: boolean;
  /** Fill the holes the nodule encloses in each slice, at its level and the any-reader level (default true). */
  fillHoles?: boolean;
}

/**
 * A point (or a crop's centre) whose nodule is found more than this far (mm, in-plane) from it is
 * segmented again with the patches centred on that nodule. The network only saw centred nodules
 * in training; on the cross-validation folds 1-2, a click anywhere on the nodule lost 0.025 of
 * Dice against the union in one pass and 0.007 with this second one (scripts/analysis/cv-click.ts).
 */
export const RECENTRE_MM = 1;
/** How much further (mm, each side in-plane) a point's crop reaches, so that a re-centred patch still sees the scan. */
export const RECENTRE_MARGIN_MM = 10;

const CLASS_NAMES = ['none', 'small', 'medium', 'large'];
const NOTHING_AT_POINT = 'no nodule found at this point';

/**
 * The crop size (voxels) around a prompt: the model's field of view in-plane, +-25 mm in z, or
 * more in z when a box (with its margin) is taller.
 */
export function promptCropSize(volume: Volume, info: ModelInfo, prompt?: NodulePrompt): Vec3 {
  const fovMm = info.slice.patchSize * info.slice.spacingMm;
  const [sx, sy, sz] = volume.spacingMm;
  let halfZ = Math.ceil(25 / sz);
  if (prompt?.kind === 'box') halfZ = Math.max(halfZ, Math.ceil((prompt.maxVoxel[2] - prompt.minVoxel[2]) / 2 + BOX_MARGIN_MM / sz) + 1);
  const widthMm = prompt?.kind === 'box' ? fovMm : fovMm + 2 * RECENTRE_MARGIN_MM;
  return [Math.ceil(widthMm / sx) + 2, Math.ceil(widthMm / sy) + 2, Math.max(1, 2 * halfZ + 1)];
}

/** segmentVolume's options from the model file (level, stage, hole level) and the caller's. */
function modelOptions(info: ModelInfo, options: SegmentOptions): SegmentCropOptions {
  return {
    threshold: options.threshold ?? info.threshold,
    ...(info.refine && options.refine !== false ? { refine: info.refine } : {}),
    fillHoles: options.fillHoles !== false,
    ...(info.anyReaderThreshold !== undefined ? { holeLevel: info.anyReaderThreshold } : {}),
    flipTta: options.flipTta,
    batchSize: options.batchSize,
  };
}

/**
 * Segments the nodule of a crop, at its centre or at `promptVoxel` (a click elsewhere on it, as
 * `benchmark --click` measures); the mask is on the crop's grid.
 */
export function segmentCrop(
  model: SegmentationNetwork,
  info: ModelInfo,
  crop: Volume,
  options: SegmentOptions = {},
  promptVoxel?: Vec3,
): { seg: CropSegmentation; nodule: NoduleResult; anyReaderMask: Uint8Array | null } {
  const centre: Vec3 = promptVoxel ?? [(crop.dims[0] - 1) / 2, (crop.dims[1] - 1) / 2, (crop.dims[2] - 1) / 2];
  const seg = segmentVolume(model, crop, info.slice, {
    ...modelOptions(info, options),
    centreVoxel: centre,
    ...(options.recentre !== false ? { recentreMm: RECENTRE_MM } : {}),
  });
  const nodule = describeNodule(1, crop, seg, centre, crop, [0, 0, 0], options.solidThresholdHU);
  const anyReaderMask = addAnyReaderMask(nodule, info, seg, crop, seg.centreVoxel, null, [0, 0, 0], options.fillHoles !== false);
  addClassification(nodule, model, info, options.heads, crop, seg, seg.centreVoxel);
  return { seg, nodule, anyReaderMask };
}

/**
 * Segments one nodule per prompt (in voxels of `scan`) and pastes them into one label mask on the
 * scan's grid (label k for prompt k; a later nodule does not overwrite an earlier). With a model
 * that has an any-reader level, each nodule's any-reader mask comes back as the sorted scan
 * voxels it covers (`labelsFromVoxelLists` pastes them into a label mask where one is wanted: the
 * viewer's clicks need none).
 */
export function segmentAtPrompts(
  model: SegmentationNetwork,
  info: ModelInfo,
  scan: Volume,
  prompts: readonly NodulePrompt[],
  options: SegmentOptions & { onNodule?: (done: number, total: number) => void } = {},
): { labels: Uint8Array; anyReaderVoxels: Array<Int32Array | null>; nodules: NoduleResult[] } {
  if (prompts.length > 255) throw new RangeError('segmentAtPrompts: at most 255 nodules per label mask');
  const labels = scan.withData(new Uint8Array(scan.voxelCount), 'SEG');
  const nodules: NoduleResult[] = [];
  const anyReaderVoxels: Array<Int32Array | null> = [];
  prompts.forEach((prompt, k) => {
    const p = promptCentre(prompt);
    const { crop, startVoxel } = cropAround(scan, { voxel: p }, promptCropSize(scan, info, prompt));
    const local: Vec3 = [p[0] - startVoxel[0], p[1] - startVoxel[1], p[2] - startVoxel[2]];
    const seg = segmentVolume(model, crop, info.slice, {
      ...modelOptions(info, options),
      centreVoxel: local,
      keepPromptComponent: prompt.kind === 'point',
      ...(prompt.kind === 'point' && options.recentre !== false ? { recentreMm: RECENTRE_MM } : {}),
    });
    if (prompt.kind === 'box') {
      clipToBox(seg.mask.data, crop, prompt, startVoxel);
      seg.mask.data.set(keepComponentAt(seg.mask.data, crop.dims, crop.spacingMm, local));
    }
    const labelled = Uint8Array.from(seg.mask.data, (v) => (v ? k + 1 : 0));
    pasteCrop(labels, crop.withData(labelled, 'SEG'), 'fill');
    const nodule = describeNodule(k + 1, crop, seg, local, scan, startVoxel, options.solidThresholdHU);
    const anyReader = addAnyReaderMask(nodule, info, seg, crop, seg.centreVoxel, prompt, startVoxel, options.fillHoles !== false);
    anyReaderVoxels.push(anyReader ? scanVoxelsOf(anyReader, crop.dims, startVoxel, scan.dims) : null);
    addClassification(nodule, model, info, options.heads, crop, seg, seg.centreVoxel);
    if (prompt.kind === 'box') {
      nodule.promptBoxVoxels = [prompt.minVoxel, prompt.maxVoxel];
      nodule.promptBoxWorldMm = [scan.voxelToWorld(prompt.minVoxel), scan.voxelToWorld(prompt.maxVoxel)];
      nodule.warnings = nodule.warnings.map((w) => (w === NOTHING_AT_POINT ? 'no nodule found in this box' : w));
      const fovMm = info.slice.patchSize * info.slice.spacingMm;
      const wide = [0, 1].map((d) => (prompt.maxVoxel[d]! - prompt.minVoxel[d]!) * scan.spacingMm[d]! + 2 * BOX_MARGIN_MM);
      if (wide.some((w) => w > fovMm)) {
        nodule.warnings.push(
          `the box (${wide.map((w) => (w - 2 * BOX_MARGIN_MM).toFixed(1)).join(' x ')} mm in-plane) is wider than the model's field of view (${fovMm.toFixed(1)} mm): the outline may be cut at its edge`,
        );
      }
    }
    nodules.push(nodule);
    options.onNodule?.(k + 1, prompts.length);
  });
  return { labels: labels.data, anyReaderVoxels, nodules };
}

/**
 * Nodule k's voxels (scan indices, as `segmentAtPrompts` returns the any-reader masks) as label
 * k + 1 of a label mask of `voxelCount` voxels; a later nodule does not overwrite an earlier, as
 * in `segmentAtPrompts`' labels. Null when no nodule has a list (a model without the level).
 */
export function labelsFromVoxelLists(lists: ReadonlyArray<Int32Array | null>, voxelCount: number): Uint8Array | null {
  if (lists.every((l) => l === null)) return null;
  if (lists.length > 255) throw new RangeError('labelsFromVoxelLists: at most 255 nodules per label mask');
  const out = new Uint8Array(voxelCount);
  lists.forEach((list, k) => {
    for (const v of list ?? []) if (out[v] === 0) out[v] = k + 1;
  });
  return out;
}

/** The sorted scan indices of a crop mask's voxels (the crop starting at `startVoxel`; voxels outside the scan dropped). */
function scanVoxelsOf(mask: Uint8Array, dims: Vec3, startVoxel: Vec3, scanDims: Vec3): Int32Array {
  const [nx, ny, nz] = dims;
  const [sx, sy, sz] = scanDims;
  const out: number[] = [];
  // z, y, x ascending in the crop is ascending in the scan: the list comes out sorted.
  for (let z = 0; z < nz; z++) {
    const Z = z + startVoxel[2];
    if (Z < 0 || Z >= sz) continue;
    for (let y = 0; y < ny; y++) {
      const Y = y + startVoxel[1];
      if (Y < 0 || Y >= sy) continue;
      for (let x = 0; x < nx; x++) {
        const X = x + startVoxel[0];
        if (X >= 0 && X < sx && mask[x + nx * (y + ny * z)]) out.push(X + sx * (Y + sy * Z));
      }
    }
  }
  return Int32Array.from(out);
}

/** Clears the voxels of a crop's mask outside the prompt box widened by BOX_MARGIN_MM. */
function clipToBox(mask: Uint8Array, crop: Volume, box: Extract<NodulePrompt, { kind: 'box' }>, startVoxel: Vec3): void {
  const lo: number[] = [],
    hi: number[] = [];
  for (let d = 0; d < 3; d++) {
    const a = box.minVoxel[d]! - startVoxel[d]!,
      b = box.maxVoxel[d]! - startVoxel[d]!;
    const flat = b - a < 1e-6;
    const slack = BOX_MARGIN_MM / crop.spacingMm[d]!;
    lo.push(flat ? -Infinity : a - slack);
    hi.push(flat ? Infinity : b + slack);
  }
  const [nx, ny, nz] = crop.dims;
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        if (x < lo[0]! || x > hi[0]! || y < lo[1]! || y > hi[1]! || z < lo[2]! || z > hi[2]!) mask[x + nx * (y + ny * z)] = 0;
      }
    }
  }
}

/**
 * The any-reader mask of a model that has that level: its probability above the level, cut as
 * the default mask is (the box, or the 3D component at the prompt and the waist along z, and the
 * holes it encloses), joined with the default mask; its volume goes in the report. Returns the
 * mask on the crop's grid (null without that level).
 */
function addAnyReaderMask(
  nodule: NoduleResult,
  info: ModelInfo,
  seg: CropSegmentation,
  crop: Volume,
  local: Vec3,
  prompt: NodulePrompt | null,
  startVoxel: Vec3,
  fillHoles: boolean,
): Uint8Array | null {
  const level = info.anyReaderThreshold;
  if (level === undefined) return null;
  let m: Uint8Array = Uint8Array.from(seg.probability.data, (p) => (p > level ? 1 : 0));
  if (prompt?.kind === 'box') {
    clipToBox(m, crop, prompt, startVoxel);
    m = keepComponentAt(m, crop.dims, crop.spacingMm, local);
  } else {
    m = keepComponentAt(m, crop.dims, crop.spacingMm, local);
    trimAtConstriction(m, crop.dims, crop.spacingMm, local[2]);
  }
  if (fillHoles) fillHolesInPlane(m, crop.dims);
  let count = 0;
  for (let i = 0; i < m.length; i++) {
    m[i] = m[i] || seg.mask.data[i] ? 1 : 0;
    count += m[i]!;
  }
  const [sx, sy, sz] = crop.spacingMm;
  nodule.anyReaderVolumeMm3 = count * sx * sy * sz;
  nodule.anyReaderLevel = level;
  return m;
}

/** Type and probabilities from the heads, on the nodule's own crop (the grid its mask is on). */
function addClassification(
  nodule: NoduleResult,
  model: SegmentationNetwork,
  info: ModelInfo,
  heads: NoduleHeads | null | undefined,
  crop: Volume,
  seg: CropSegmentation,
  local: Vec3,
): void {
  if (!heads) return;
  const c = characteriseNodule(model, info.slice, heads, crop, seg.mask.data, local);
  if (!c) return;
  nodule.type = c.type;
  nodule.typeProbabilities = c.typeProbabilities;
  nodule.calcified = c.calcified;
  nodule.malignancySuspicion = c.malignancySuspicion;
  nodule.spiculation = c.spiculation;
}

function describeNodule(
  label: number,
  crop: Volume,
  seg: CropSegmentation,
  promptLocal: Vec3,
  frame: Volume,
  startVoxel: Vec3,
  solidThresholdHU = SOLID_COMPONENT_HU,
): NoduleResult {
  const grid = { data: seg.mask.data, dims: crop.dims, spacingMm: crop.spacingMm };
  const measures = measureNodule(grid, crop.data);
  const toFrame = (v: readonly number[]): Vec3 => [v[0]! + startVoxel[0], v[1]! + startVoxel[1], v[2]! + startVoxel[2]];
  let sumP = 0,
    n = 0,
    unsure = 0;
  for (let i = 0; i < seg.mask.data.length; i++) {
    if (!seg.mask.data[i]) continue;
    const p = seg.probability.data[i]!;
    sumP += p;
    n++;
    if (p < 0.7) unsure++;
  }
  let classProbs: number[] | null = null;
  if (seg.classProbs && seg.numClasses > 0) {
    const z = measures.centroidVoxel ? Math.round(measures.centroidVoxel[2]) : Math.round(promptLocal[2]);
    classProbs = Array.from(seg.classProbs.subarray(z * seg.numClasses, (z + 1) * seg.numClasses), (v) => Math.round(v * 1e4) / 1e4);
  }
  const warnings: string[] = [];
  if (measures.voxelCount === 0) warnings.push(NOTHING_AT_POINT);
  const uncertainFraction = n ? unsure / n : 1;
  if (n && uncertainFraction > 0.5) warnings.push('the model is unsure of this outline (most voxels have probability < 0.7)');
  if (classProbs && Math.max(...classProbs) < 0.5) warnings.push('the size classifier is unsure (no class above 0.5)');
  let sizeClass: string | null = null;
  if (classProbs) sizeClass = CLASS_NAMES[classProbs.indexOf(Math.max(...classProbs))] ?? null;
  const bb = measures.boundingBoxVoxels;
  return {
    label,
    promptVoxel: toFrame(promptLocal),
    promptWorldMm: frame.voxelToWorld(toFrame(promptLocal)),
    promptBoxVoxels: null,
    promptBoxWorldMm: null,
    measures,
    centroidWorldMm: measures.centroidVoxel ? frame.voxelToWorld(toFrame(measures.centroidVoxel)) : null,
    boundingBoxWorldMm: bb ? [frame.voxelToWorld(toFrame(bb[0])), frame.voxelToWorld(toFrame(bb[1]))] : null,
    sizeClassProbabilities: classProbs,
    sizeClass,
    anyReaderVolumeMm3: null,
    anyReaderLevel: null,
    meanProbability: n ? sumP / n : 0,
    uncertainFraction,
    guidelineMeasures: guidelineMeasures(grid, crop.data, solidThresholdHU),
    type: null,
    typeProbabilities: null,
    calcified: null,
    malignancySuspicion: null,
    spiculation: null,
    warnings,
  };
}

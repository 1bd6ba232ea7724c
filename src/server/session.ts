import { gzipSync } from 'node:zlib';
import { Volume, encodeNifti, sortedIntersectionSize, type NoduleReport, type Vec3 } from '../io/index.ts';
import type { NoduleResult } from '../inference/index.ts';
import { promptCentre, boxPrompt, type NodulePrompt } from '../inference/prompts.ts';
import { HttpError } from './http-error.ts';
import { withGuidelines, withGuidelinesOne } from '../report/assess.ts';
import { encodeNoduleSeg, encodeNoduleSr, noduleHtmlReport } from '../report/index.ts';
import { DEFAULT_FLEISCHNER_CONTEXT } from '../guidelines/index.ts';
import type { GuidelineMeasures, LungRadsResult, FleischnerResult } from '../guidelines/index.ts';
import type { NoduleType } from '../data/nodule-type.ts';
import type { Segmenter } from './segmenter.ts';

/** In-plane display subsampling: 1 = full resolution. */
export type DisplayStep = 1 | 2;
/** Overlay values, shown with NiiVue's drawing palette (1 red, 2 green, 3 blue, 4 yellow). */
const OVERLAY_SELECTED = 2;
const OVERLAY_OTHER = 1;
const OVERLAY_LIDC = 3;
const OVERLAY_ANY_READER = 4;
/** Which value a display voxel shows when a block holds several: selected > other > LIDC > any reader > none. */
const OVERLAY_RANK = [0, 3, 4, 2, 1];

/** One LIDC nodule as the page shows it: the readers' consensus (>= half of them) and its voxels. */
export interface LidcRead extends NoduleReport {
  /** Sorted voxel indices of the consensus mask (kept server-side to compare with the model). */
  consensus: Int32Array;
}

/** A segmented nodule: the report of `noduleseg segment` plus its voxels and its LIDC match. */
export interface SessionNodule {
  /** Stable id within the session; also its value in the downloaded label mask (1..255). */
  label: number;
  result: NoduleResult;
  /** Sorted voxel indices of the mask in the scan. */
  voxels: Int32Array;
  /** The same for its any-reader mask (the extent some reader would draw; null without that level). */
  anyReaderVoxels: Int32Array | null;
  /** The LIDC nodule it overlaps most, and the Dice with its consensus mask. */
  lidcMatch: { index: number; dice: number } | null;
}

/** What the page asks to segment: a clicked point or a dragged box, in world mm (LPS). */
export type SessionPrompt = { kind: 'point'; pointMm: Vec3 } | { kind: 'box'; cornersMm: [Vec3, Vec3] };

/** What the page receives for a nodule (no voxel lists). */
export interface NoduleView {
  label: number;
  volumeMm3: number;
  /** The wider extent some reader would draw (models trained on the readers' agreement), else null. */
  anyReaderVolumeMm3: number | null;
  voxelCount: number;
  equivalentDiameterMm: number;
  longestAxialDiameterMm: number;
  perpendicularDiameterMm: number;
  meanHU: number | null;
  sizeClass: string | null;
  sizeClassProbabilities: number[] | null;
  meanProbability: number;
  warnings: string[];
  promptWorldMm: Vec3;
  promptVoxel: Vec3;
  /** Two opposite corners of the prompted box (LPS mm); null for a point. */
  promptBoxWorldMm: [Vec3, Vec3] | null;
  centroidWorldMm: Vec3 | null;
  lidcMatch: { index: number; dice: number } | null;
  /** As in `segment`'s report: type and probabilities (null without the model's heads), guideline measures and categories. */
  type: NoduleType | null;
  typeProbabilities: [number, number, number] | null;
  calcified: number | null;
  malignancySuspicion: number | null;
  spiculation: number | null;
  guidelineMeasures: GuidelineMeasures;
  lungRads: LungRadsResult | null;
  fleischner: FleischnerResult | null;
}

/** One opened scan and the nodules segmented on it. Sessions never share state. */
export class Session {
  readonly nodules: SessionNodule[] = [];
  private nextLabel = 1;
  lastUsed = Date.now();

  constructor(
    readonly id: string,
    readonly name: string,
    readonly volume: Volume,
    readonly lidc: LidcRead[],
    readonly notes: string[],
  ) {}

  get isDicom(): boolean {
    return this.volume.source?.format === 'dicom';
  }

  /**
   * The scan as an uncompressed NIfTI-1 for the viewer, at full resolution (step 1) or averaged
   * over step x step in-plane blocks: software WebGL (no GPU) needs tens of seconds for a full
   * 512 x 512 CT, a quarter of that at step 2.
   */
  scanBytes(step: DisplayStep): Uint8Array {
    // Not cached: the page asks once per opening, and several open scans would otherwise hold
    // a second copy of each volume.
    return encodeNifti(step === 1 ? this.volume : downsampleInPlane(this.volume, step, 'mean'));
  }

  /** The nodule containing voxel index `i`, if any: a click inside a nodule selects it. */
  noduleAt(index: number): SessionNodule | undefined {
    return this.nodules.find((n) => binarySearch(n.voxels, index));
  }

  /** The index of the voxel nearest a world point (LPS mm), or -1 outside the scan. */
  voxelIndexAt(pointMm: Vec3): number {
    return this.voxelIndex(this.volume.worldToVoxel(pointMm));
  }

  private voxelIndex(voxel: Vec3): number {
    const v = voxel.map(Math.round);
    const [nx, ny, nz] = this.volume.dims;
    if (v[0]! < 0 || v[1]! < 0 || v[2]! < 0 || v[0]! >= nx || v[1]! >= ny || v[2]! >= nz) return -1;
    return v[0]! + nx * (v[1]! + ny * v[2]!);
  }

  /**
   * Segments at a point or in a box (world mm, LPS): the same call as `noduleseg segment --point`
   * or `--box`, with the shipped model's settings. A box whose centre lies in a nodule already on
   * the list replaces that nodule's mask (same label): drawing a box around it refines it.
   * The model runs in the segmenter's worker; when `signal` aborts, nothing is added.
   */
  async segment(segmenter: Segmenter, prompt: SessionPrompt, signal?: AbortSignal): Promise<SessionNodule> {
    const voxelPrompt: NodulePrompt =
      prompt.kind === 'point'
        ? { kind: 'point', voxel: this.volume.worldToVoxel(prompt.pointMm) }
        : boxPrompt(this.volume.worldToVoxel(prompt.cornersMm[0]), this.volume.worldToVoxel(prompt.cornersMm[1]));
    const centre = promptCentre(voxelPrompt);
    if (centre.some((x, d) => x < -0.5 || x > this.volume.dims[d]! - 0.5)) {
      throw new HttpError(400, prompt.kind === 'point' ? 'the point lies outside the scan' : "the box's centre lies outside the scan");
    }
    const replacing = prompt.kind === 'box' ? this.noduleAt(this.voxelIndex(centre)) : undefined;
    if (!replacing && this.nextLabel > 255) throw new HttpError(400, 'at most 255 nodules per scan; remove some first');
    const { voxels, anyReaderVoxels, nodule: result } = await segmenter.segment(this.id, voxelPrompt, signal);
    // The nodule being replaced may have been removed by another request meanwhile.
    const at = replacing ? this.nodules.indexOf(replacing) : -1;
    if (at < 0 && this.nextLabel > 255) throw new HttpError(400, 'at most 255 nodules per scan; remove some first');
    const label = at >= 0 ? replacing!.label : this.nextLabel++;
    const nodule: SessionNodule = { label, result: { ...result, label }, voxels, anyReaderVoxels, lidcMatch: this.matchLidc(voxels) };
    if (at >= 0) this.nodules[at] = nodule;
    else this.nodules.push(nodule);
    return nodule;
  }

  remove(label: number): boolean {
    const k = this.nodules.findIndex((n) => n.label === label);
    if (k < 0) return false;
    this.nodules.splice(k, 1);
    return true;
  }

  private matchLidc(voxels: Int32Array): { index: number; dice: number } | null {
    let best: { index: number; dice: number } | null = null;
    for (const r of this.lidc) {
      const common = sortedIntersectionSize(voxels, r.consensus);
      if (common === 0) continue;
      const dice = (2 * common) / (voxels.length + r.consensus.length);
      if (!best || dice > best.dice) best = { index: r.index, dice: Math.round(dice * 1e4) / 1e4 };
    }
    return best;
  }

  /** The label mask (each nodule's voxels hold its label) on the scan's grid. */
  labelMask(): Uint8Array {
    const out = new Uint8Array(this.volume.voxelCount);
    for (const n of this.nodules) for (const v of n.voxels) out[v] = n.label;
    return out;
  }

  /**
   * The display overlay on the display grid of `step`: OVERLAY_SELECTED for the selected nodule,
   * OVERLAY_OTHER for the others, OVERLAY_LIDC for the LIDC consensus outside them, and
   * OVERLAY_ANY_READER where some reader would draw beyond them (NiiVue's drawing colours tell
   * them apart).
   */
  overlayNifti(selected: number | null, step: DisplayStep, showLidc = false, showAnyReader = false): Uint8Array {
    const out = new Uint8Array(this.volume.voxelCount);
    if (showAnyReader) for (const n of this.nodules) for (const v of n.anyReaderVoxels ?? []) out[v] = OVERLAY_ANY_READER;
    // The readers' consensus first, so the model's masks draw over it: blue shows where only the readers are.
    if (showLidc) for (const r of this.lidc) for (const v of r.consensus) out[v] = OVERLAY_LIDC;
    for (const n of this.nodules) {
      const value = n.label === selected ? OVERLAY_SELECTED : OVERLAY_OTHER;
      for (const v of n.voxels) out[v] = out[v] === OVERLAY_SELECTED ? OVERLAY_SELECTED : value;
    }
    const full = this.volume.withData(out, 'SEG');
    return encodeNifti(step === 1 ? full : downsampleInPlane(full, step, 'label', OVERLAY_RANK));
  }

  labelMaskNiftiGz(): Uint8Array {
    return gzipSync(encodeNifti(this.volume.withData(this.labelMask(), 'SEG')), { level: 6 });
  }

  /** The nodules' any-reader masks as a label mask (null when the model has no such level). */
  anyReaderLabelMask(): Uint8Array | null {
    if (this.nodules.every((n) => n.anyReaderVoxels === null)) return null;
    const out = new Uint8Array(this.volume.voxelCount);
    for (const n of this.nodules) for (const v of n.anyReaderVoxels ?? []) out[v] = n.label; // as labelMask() does
    return out;
  }

  dicomSeg(modelName: string): Uint8Array {
    return encodeNoduleSeg(this.volume, this.labelMask(), this.anyReaderLabelMask(), modelName);
  }

  /** The DICOM SR (TID 1500) of the scan's nodules, referencing `segBytes` (the SEG as stored), as `segment --sr` writes it. */
  dicomSr(modelName: string, segBytes: Uint8Array): Uint8Array {
    return encodeNoduleSr(withGuidelines(this.nodules.map((n) => n.result)), this.volume, segBytes, modelName);
  }

  /** The printable HTML report of the scan's nodules, as `segment --html` writes it (no patient context in the viewer). */
  htmlReport(modelName: string): string {
    return noduleHtmlReport(withGuidelines(this.nodules.map((n) => n.result)), this.volume, this.labelMask(), {
      input: this.name,
      modelName,
      patient: DEFAULT_FLEISCHNER_CONTEXT,
      anyReaderLabels: this.anyReaderLabelMask(),
    });
  }

  report(model: Record<string, unknown>): Record<string, unknown> {
    return {
      scan: this.name,
      dims: this.volume.dims,
      spacingMm: this.volume.spacingMm,
      model,
      nodules: withGuidelines(this.nodules.map((n) => n.result)).map((r, i) => ({ ...r, lidcMatch: this.nodules[i]!.lidcMatch })),
      lidc: this.lidc.map(({ consensus: _c, ...r }) => r),
    };
  }

  /** `noduleCount`: the nodules on the scan (Fleischner's "multiple" rows when more than one). */
  static view(n: SessionNodule, noduleCount = 1): NoduleView {
    const r = withGuidelinesOne(n.result, noduleCount);
    const m = r.measures;
    return {
      label: n.label,
      volumeMm3: m.volumeMm3,
      anyReaderVolumeMm3: r.anyReaderVolumeMm3,
      voxelCount: m.voxelCount,
      equivalentDiameterMm: m.equivalentDiameterMm,
      longestAxialDiameterMm: m.longestAxialDiameterMm,
      perpendicularDiameterMm: m.perpendicularDiameterMm,
      meanHU: Number.isFinite(m.meanHU) ? m.meanHU : null,
      sizeClass: r.sizeClass,
      sizeClassProbabilities: r.sizeClassProbabilities,
      meanProbability: r.meanProbability,
      warnings: r.warnings,
      promptWorldMm: r.promptWorldMm,
      promptVoxel: r.promptVoxel,
      promptBoxWorldMm: r.promptBoxWorldMm,
      centroidWorldMm: r.centroidWorldMm,
      lidcMatch: n.lidcMatch,
      type: r.type,
      typeProbabilities: r.typeProbabilities,
      calcified: r.calcified,
      malignancySuspicion: r.malignancySuspicion,
      spiculation: r.spiculation,
      guidelineMeasures: r.guidelineMeasures,
      lungRads: r.lungRads,
      fleischner: r.fleischner,
    };
  }
}

function binarySearch(a: Int32Array, x: number): boolean {
  let lo = 0;
  let hi = a.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = a[mid]!;
    if (v === x) return true;
    if (v < x) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

/**
 * A coarser grid for display: step x step in-plane blocks, averaged (an image) or, for a label
 * map, the value of highest `rank` in the block (so small nodules stay visible). The new voxel
 * centres are the blocks' centres, so world coordinates line up with the full-resolution scan.
 */
export function downsampleInPlane(vol: Volume, step: number, how: 'mean' | 'label', rank: readonly number[] = []): Volume {
  const [nx, ny, nz] = vol.dims;
  const mx = Math.ceil(nx / step);
  const my = Math.ceil(ny / step);
  const src = vol.data;
  const size = mx * my * nz;
  // Integer CT stays int16 (half the bytes for the browser); rounding the mean costs < 0.5 HU.
  const out =
    how === 'label'
      ? new Uint8Array(size)
      : src instanceof Float32Array || src instanceof Float64Array
        ? new Float32Array(size)
        : new Int16Array(size);
  const round = out instanceof Int16Array;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < my; j++) {
      for (let i = 0; i < mx; i++) {
        let acc = 0;
        let n = 0;
        for (let b = 0; b < step && j * step + b < ny; b++) {
          const row = (k * ny + j * step + b) * nx;
          for (let a = 0; a < step && i * step + a < nx; a++) {
            const v = Number(src[row + i * step + a]);
            if (how === 'label') {
              if ((rank[v] ?? v) > (rank[acc] ?? acc)) acc = v;
            } else acc += v;
            n++;
          }
        }
        out[(k * my + j) * mx + i] = how === 'label' ? acc : round ? Math.round(acc / n) : acc / n;
      }
    }
  }
  const half = (step - 1) / 2;
  return new Volume({
    data: out,
    dims: [mx, my, nz],
    spacingMm: [vol.spacingMm[0] * step, vol.spacingMm[1] * step, vol.spacingMm[2]],
    originMm: vol.voxelToWorld([half, half, 0]),
    direction: vol.direction,
    modality: vol.modality,
  });
}

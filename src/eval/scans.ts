/**
 * The whole-scan benchmark: every reader-outlined nodule of a scan, prompted as a user would
 * prompt it (a point at the readers' centre, or the readers' bounding box), segmented in the
 * whole scan, and scored in 3D against the union of the readers and their 50% consensus.
 * Reads whose outlines share a voxel are one lesion (as groupNodules makes them).
 */
import type { Vec3, Volume } from '../io/volume.ts';
import { sortedIntersectionSize, sortedUnion, type LidcNodule } from '../io/lidc.ts';
import { boxPrompt, labelsFromVoxelLists, segmentAtPrompts, type NodulePrompt, type SegmentOptions } from '../inference/nodules.ts';
import type { ModelInfo } from '../models/io.ts';
import type { SegmentationNetwork } from '../models/types.ts';

/** A reference lesion on the scan's grid: the voxels some reader marked and how many did. */
export interface ReferenceLesion {
  index: number;
  /** The readers who outlined it (ids as in the XML's reading order). */
  readerIds: number[];
  /** Sorted voxel indices of the union, and the readers' votes for each. */
  voxels: Int32Array;
  votes: Uint8Array;
  /**
   * Each reader's own voxels (sorted), in the order of readerIds; absent where only the votes are
   * known (the per-reader scores are then NaN).
   */
  readerVoxels?: Int32Array[];
}

export type PromptKind = 'point' | 'box';

export interface ScanBenchmarkRow {
  scan: string;
  nodule: number;
  readers: number;
  prompt: PromptKind;
  /** The prompt: the point (voxels), or the box's two corners. */
  promptVoxels: number[];
  unionVoxels: number;
  consensusVoxels: number;
  predictedVoxels: number;
  diceUnion: number;
  diceConsensus: number;
  sensitivityUnion: number;
  precisionUnion: number;
  /** Mean Dice against each reader's own outline (NaN without per-reader voxels). */
  diceReaders: number;
  /** The readers' own agreement: each reader against the union of the others, averaged (NaN under two readers). */
  panelLevel: number;
  /** The readers' 50% consensus against their union: what drawing the consensus exactly would score there. */
  consensusVsUnion: number;
  /** The model's any-reader mask (segment --any-reader) against the union and the consensus; NaN for a model without that level. */
  anyReaderDiceUnion: number;
  anyReaderDiceConsensus: number;
}

function consensusOf(l: ReferenceLesion, share = 0.5): Int32Array {
  const need = Math.max(1, Math.ceil(share * l.readerIds.length - 1e-9));
  return l.voxels.filter((_, i) => l.votes[i]! >= need);
}

/**
 * Lesions whose voxels touch (26-neighbours) are one lesion: a reader who outlined one nodule
 * as two reads, on consecutive slices, otherwise leaves half of it scored as a nodule of its own.
 * Indices are renumbered 1.. in the order of each group's first lesion.
 */
export function mergeTouchingLesions(lesions: readonly ReferenceLesion[], dims: Vec3): ReferenceLesion[] {
  const [nx, ny, nz] = dims;
  const parent = lesions.map((_, i) => i);
  const find = (i: number): number => {
    if (parent[i] !== i) parent[i] = find(parent[i]!);
    return parent[i]!;
  };
  const sets = lesions.map((l) => new Set(l.voxels));
  for (let a = 0; a < lesions.length; a++) {
    for (let b = a + 1; b < lesions.length; b++) {
      if (find(a) === find(b)) continue;
      const other = sets[b]!;
      let touch = false;
      for (const v of lesions[a]!.voxels) {
        const x = v % nx,
          y = Math.floor(v / nx) % ny,
          z = Math.floor(v / (nx * ny));
        for (let dz = -1; dz <= 1 && !touch; dz++)
          for (let dy = -1; dy <= 1 && !touch; dy++)
            for (let dx = -1; dx <= 1 && !touch; dx++) {
              const xx = x + dx,
                yy = y + dy,
                zz = z + dz;
              if (xx >= 0 && yy >= 0 && zz >= 0 && xx < nx && yy < ny && zz < nz && other.has(xx + nx * (yy + ny * zz))) touch = true;
            }
        if (touch) break;
      }
      if (touch) parent[find(a)] = find(b);
    }
  }
  const groups = new Map<number, number[]>();
  lesions.forEach((_, i) => {
    groups.set(find(i), [...(groups.get(find(i)) ?? []), i]);
  });
  const out: ReferenceLesion[] = [];
  for (const members of [...groups.values()].sort((p, q) => p[0]! - q[0]!)) {
    const pairs: Array<[number, number]> = [];
    for (const i of members) {
      lesions[i]!.voxels.forEach((v, k) => {
        pairs.push([v, lesions[i]!.votes[k]!]);
      });
    }
    pairs.sort((p, q) => p[0] - q[0]);
    const readerIds = [...new Set(members.flatMap((i) => lesions[i]!.readerIds))].sort((p, q) => p - q);
    const perReader = members.every((i) => lesions[i]!.readerVoxels !== undefined);
    out.push({
      index: out.length + 1,
      readerIds,
      voxels: Int32Array.from(pairs, (p) => p[0]),
      votes: Uint8Array.from(pairs, (p) => p[1]),
      ...(perReader
        ? {
            // A reader's voxels in the merged lesion: theirs from every member lesion they read.
            readerVoxels: readerIds.map((id) =>
              sortedUnion(
                members.flatMap((i) => lesions[i]!.readerIds.flatMap((r, k) => (r === id ? [lesions[i]!.readerVoxels![k]!] : []))),
              ),
            ),
          }
        : {}),
    });
  }
  return out;
}

/** The reference lesions of an LIDC scan's grouped nodules (each reader's outline kept), touching ones merged. */
export function referenceLesions(nodules: readonly LidcNodule[], dims: Vec3): ReferenceLesion[] {
  return mergeTouchingLesions(
    nodules.map((n) => ({ index: n.index, readerIds: n.readers, voxels: n.voxels, votes: n.votes, readerVoxels: n.readerVoxels })),
    dims,
  );
}

/** The point a reader would click: the centroid of the 50% consensus (of the union when that is empty), to the voxel. */
export function lesionCentreVoxel(l: ReferenceLesion, dims: Vec3): Vec3 {
  const c = consensusOf(l);
  const vox = c.length ? c : l.voxels;
  const [nx, ny] = dims;
  let sx = 0,
    sy = 0,
    sz = 0;
  for (const v of vox) {
    sx += v % nx;
    sy += Math.floor(v / nx) % ny;
    sz += Math.floor(v / (nx * ny));
  }
  const n = Math.max(1, vox.length);
  return [Math.round(sx / n), Math.round(sy / n), Math.round(sz / n)];
}

/** The readers' bounding box (of the union), corners included. */
export function lesionBox(l: ReferenceLesion, dims: Vec3): [Vec3, Vec3] {
  const [nx, ny] = dims;
  const lo: Vec3 = [Infinity, Infinity, Infinity],
    hi: Vec3 = [-Infinity, -Infinity, -Infinity];
  for (const v of l.voxels) {
    const p = [v % nx, Math.floor(v / nx) % ny, Math.floor(v / (nx * ny))];
    for (let d = 0; d < 3; d++) {
      lo[d] = Math.min(lo[d]!, p[d]!);
      hi[d] = Math.max(hi[d]!, p[d]!);
    }
  }
  return [lo, hi];
}

/** Voxels of a sorted list that carry `label` in a label mask. */
function hits(labels: Uint8Array, label: number, ref: Int32Array): number {
  let tp = 0;
  for (const v of ref) if (labels[v] === label) tp++;
  return tp;
}

/** Scores label 1 of a scan-sized label mask against one lesion. */
export function scoreLesion(
  labels: Uint8Array,
  lesion: ReferenceLesion,
): Pick<
  ScanBenchmarkRow,
  | 'unionVoxels'
  | 'consensusVoxels'
  | 'predictedVoxels'
  | 'diceUnion'
  | 'diceConsensus'
  | 'sensitivityUnion'
  | 'precisionUnion'
  | 'diceReaders'
  | 'panelLevel'
  | 'consensusVsUnion'
> {
  const cons = consensusOf(lesion);
  let predicted = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === 1) predicted++;
  const tpUnion = hits(labels, 1, lesion.voxels);
  const tpConsensus = hits(labels, 1, cons);
  const readers = lesion.readerVoxels ?? [];
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
  const diceReaders = mean(readers.map((r) => (2 * hits(labels, 1, r)) / Math.max(1, predicted + r.length)));
  const panelLevel =
    readers.length < 2
      ? Number.NaN
      : mean(
          readers.map((r, k) => {
            const others = sortedUnion(readers.filter((_, j) => j !== k));
            return (2 * sortedIntersectionSize(r, others)) / Math.max(1, r.length + others.length);
          }),
        );
  return {
    unionVoxels: lesion.voxels.length,
    consensusVoxels: cons.length,
    predictedVoxels: predicted,
    diceUnion: (2 * tpUnion) / Math.max(1, predicted + lesion.voxels.length),
    diceConsensus: (2 * tpConsensus) / Math.max(1, predicted + cons.length),
    sensitivityUnion: tpUnion / Math.max(1, lesion.voxels.length),
    precisionUnion: predicted ? tpUnion / predicted : Number.NaN,
    diceReaders,
    panelLevel,
    // The consensus lies within the union, so they share all of its voxels.
    consensusVsUnion: (2 * cons.length) / Math.max(1, cons.length + lesion.voxels.length),
  };
}

export interface ScanBenchmarkOptions extends SegmentOptions {
  prompts?: readonly PromptKind[];
  onNodule?: (done: number, total: number) => void;
}

/** Each lesion of one scan, prompted alone (so that no other nodule's mask can take its voxels). */
export function benchmarkScan(
  model: SegmentationNetwork,
  info: ModelInfo,
  scan: Volume,
  scanName: string,
  lesions: readonly ReferenceLesion[],
  options: ScanBenchmarkOptions = {},
): ScanBenchmarkRow[] {
  const kinds = options.prompts ?? ['point', 'box'];
  const rows: ScanBenchmarkRow[] = [];
  let done = 0;
  for (const lesion of lesions) {
    for (const kind of kinds) {
      let prompt: NodulePrompt;
      let promptVoxels: number[];
      if (kind === 'point') {
        const p = lesionCentreVoxel(lesion, scan.dims);
        prompt = { kind: 'point', voxel: p };
        promptVoxels = [...p];
      } else {
        const [lo, hi] = lesionBox(lesion, scan.dims);
        prompt = boxPrompt(lo, hi);
        promptVoxels = [...lo, ...hi];
      }
      const { labels, anyReaderVoxels } = segmentAtPrompts(model, info, scan, [prompt], options);
      const anyReaderLabels = labelsFromVoxelLists(anyReaderVoxels, scan.voxelCount);
      const wide = anyReaderLabels ? scoreLesion(anyReaderLabels, lesion) : null;
      rows.push({
        scan: scanName,
        nodule: lesion.index,
        readers: lesion.readerIds.length,
        prompt: kind,
        promptVoxels,
        ...scoreLesion(labels, lesion),
        anyReaderDiceUnion: wide?.diceUnion ?? Number.NaN,
        anyReaderDiceConsensus: wide?.diceConsensus ?? Number.NaN,
      });
      options.onNodule?.(++done, lesions.length * kinds.length);
    }
  }
  return rows;
}

const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '-');

export function scanRowsMarkdown(rows: readonly ScanBenchmarkRow[]): string {
  const lines = [
    '| scan | nodule | readers | prompt | union voxels | consensus voxels | predicted voxels | Dice vs union | Dice vs 50% consensus | sensitivity | precision | Dice vs each reader | readers vs the rest of their panel | consensus vs union | any-reader mask vs union | any-reader mask vs consensus |',
    '|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.scan} | ${r.nodule} | ${r.readers} | ${r.prompt} | ${r.unionVoxels} | ${r.consensusVoxels} | ${r.predictedVoxels} | ${f3(r.diceUnion)} | ${f3(r.diceConsensus)} | ${f3(r.sensitivityUnion)} | ${f3(r.precisionUnion)} | ${f3(r.diceReaders)} | ${f3(r.panelLevel)} | ${f3(r.consensusVsUnion)} | ${f3(r.anyReaderDiceUnion)} | ${f3(r.anyReaderDiceConsensus)} |`,
    );
  }
  for (const kind of ['point', 'box'] as const) {
    const k = rows.filter((r) => r.prompt === kind);
    if (!k.length) continue;
    // Means over the lesions where a score exists (the panel level needs two readers).
    const m = (f: (r: ScanBenchmarkRow) => number) => {
      const xs = k.map(f).filter(Number.isFinite);
      return xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : Number.NaN;
    };
    lines.push(
      `| mean | ${k.length} nodules | | ${kind} | | | | ${f3(m((r) => r.diceUnion))} | ${f3(m((r) => r.diceConsensus))} | | | ${f3(m((r) => r.diceReaders))} | ${f3(m((r) => r.panelLevel))} | ${f3(m((r) => r.consensusVsUnion))} | ${f3(m((r) => r.anyReaderDiceUnion))} | ${f3(m((r) => r.anyReaderDiceConsensus))} |`,
    );
  }
  return lines.join('\n') + '\n';
}

export function scanRowsCsv(rows: readonly ScanBenchmarkRow[]): string {
  const cols = [
    'scan',
    'nodule',
    'readers',
    'prompt',
    'promptVoxels',
    'unionVoxels',
    'consensusVoxels',
    'predictedVoxels',
    'diceUnion',
    'diceConsensus',
    'sensitivityUnion',
    'precisionUnion',
    'diceReaders',
    'panelLevel',
    'consensusVsUnion',
    'anyReaderDiceUnion',
    'anyReaderDiceConsensus',
  ] as const;
  const lines = [cols.join(',')];
  for (const r of rows)
    lines.push(
      cols
        .map((c) =>
          c === 'promptVoxels'
            ? r.promptVoxels.join(' ')
            : typeof r[c] === 'number'
              ? !Number.isFinite(r[c])
                ? '' // no score (as in the crop benchmark's CSV)
                : Number.isInteger(r[c])
                  ? String(r[c])
                  : (r[c] as number).toFixed(4)
              : String(r[c]),
        )
        .join(','),
    );
  return lines.join('\n') + '\n';
}

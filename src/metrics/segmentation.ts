import { assertSameGrid, type MaskGrid } from './grid.ts';
import { squaredDistanceToSites, surfaceVoxels } from './distance.ts';

/** Per-nodule overlap and distance metrics of a predicted mask against a reference, in 3D. */
export interface SegmentationMetrics {
  dice: number;
  /** Voxel recall |P∩G| / |G|. */
  sensitivity: number;
  /** |P∩G| / |P|; NaN when the prediction is empty. */
  precision: number;
  iou: number;
  /** 95th percentile symmetric surface distance in mm (MONAI's definition); NaN when either mask is empty. */
  hd95Mm: number;
  /** Predicted minus reference volume, mm^3. */
  volumeErrorMm3: number;
  /** |P - G| / |G|. */
  relativeVolumeError: number;
  predictedVoxels: number;
  referenceVoxels: number;
}

export const METRIC_NAMES = ['dice', 'sensitivity', 'precision', 'iou', 'hd95Mm', 'volumeErrorMm3', 'relativeVolumeError'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** Overlap counts: true positives, predicted and reference voxels. */
export function overlapCounts(pred: MaskGrid, ref: MaskGrid): { tp: number; predicted: number; reference: number } {
  assertSameGrid(pred, ref, 'overlapCounts');
  return maskOverlap(pred.data, ref.data);
}

/** overlapCounts of two masks already known to share a grid (nonzero = inside). */
export function maskOverlap(p: ArrayLike<number>, g: ArrayLike<number>): { tp: number; predicted: number; reference: number } {
  let tp = 0,
    np = 0,
    ng = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i] ? 1 : 0,
      b = g[i] ? 1 : 0;
    np += a;
    ng += b;
    tp += a & b;
  }
  return { tp, predicted: np, reference: ng };
}

/**
 * Every metric of one nodule. An empty reference makes the overlap metrics NaN (not 0 or 1), so
 * that an accumulator can count such cases apart. Both empty: Dice NaN as well.
 */
export function segmentationMetrics(pred: MaskGrid, ref: MaskGrid, opts: { hd95?: boolean } = {}): SegmentationMetrics {
  const { tp, predicted, reference } = overlapCounts(pred, ref);
  const voxelMm3 = pred.spacingMm[0] * pred.spacingMm[1] * pred.spacingMm[2];
  const dice = predicted + reference === 0 || reference === 0 ? NaN : (2 * tp) / (predicted + reference);
  const union = predicted + reference - tp;
  return {
    dice,
    sensitivity: reference === 0 ? NaN : tp / reference,
    precision: predicted === 0 ? NaN : tp / predicted,
    iou: reference === 0 ? NaN : tp / union,
    hd95Mm: opts.hd95 === false ? NaN : hausdorff95Mm(pred, ref),
    volumeErrorMm3: (predicted - reference) * voxelMm3,
    relativeVolumeError: reference === 0 ? NaN : Math.abs(predicted - reference) / reference,
    predictedVoxels: predicted,
    referenceVoxels: reference,
  };
}

/**
 * Symmetric 95% Hausdorff distance between the surfaces of two masks, in mm: the larger of the two
 * directed 95th percentiles (MONAI compute_hausdorff_distance, percentile=95). NaN if a mask is empty.
 */
export function hausdorff95Mm(a: MaskGrid, b: MaskGrid): number {
  assertSameGrid(a, b, 'hausdorff95Mm');
  const sa = surfaceVoxels(a),
    sb = surfaceVoxels(b);
  const da = directedDistancesMm(sa, sb, a);
  const db = directedDistancesMm(sb, sa, a);
  if (da.length === 0 || db.length === 0) return NaN;
  return Math.max(percentile(da, 95), percentile(db, 95));
}

function directedDistancesMm(from: Uint8Array, to: Uint8Array, grid: MaskGrid): Float64Array {
  let count = 0,
    anyTo = false;
  for (let i = 0; i < from.length; i++) {
    count += from[i]!;
    if (to[i]) anyTo = true;
  }
  if (count === 0 || !anyTo) return new Float64Array(0);
  const d2 = squaredDistanceToSites(to, grid.dims, grid.spacingMm);
  const out = new Float64Array(count);
  let k = 0;
  for (let i = 0; i < from.length; i++) if (from[i]) out[k++] = Math.sqrt(d2[i]!);
  return out;
}

/** Linear-interpolated percentile (numpy's default), q in [0, 100]. */
export function percentile(values: ArrayLike<number>, q: number): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return NaN;
  const pos = ((sorted.length - 1) * q) / 100;
  const lo = Math.floor(pos),
    hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export interface MetricSummary {
  mean: number;
  std: number;
  median: number;
  min: number;
  max: number;
  /** Cases where the metric was defined (not NaN). */
  count: number;
  /** Cases where it was NaN (empty reference or prediction), counted apart, not averaged in. */
  undefinedCount: number;
}

/** Accumulates per-nodule metrics (MONAI's update / aggregate / reset). */
export class MetricAccumulator {
  private readonly rows: Array<{ id: string; metrics: SegmentationMetrics }> = [];

  update(id: string, metrics: SegmentationMetrics): void {
    this.rows.push({ id, metrics });
  }

  reset(): void {
    this.rows.length = 0;
  }

  get cases(): ReadonlyArray<{ id: string; metrics: SegmentationMetrics }> {
    return this.rows;
  }

  aggregate(): Record<MetricName, MetricSummary> {
    const out = {} as Record<MetricName, MetricSummary>;
    for (const name of METRIC_NAMES) out[name] = summarize(this.rows.map((r) => r.metrics[name]));
    return out;
  }
}

export function summarize(values: number[]): MetricSummary {
  const ok = values.filter((v) => Number.isFinite(v));
  const n = ok.length;
  const mean = n ? ok.reduce((s, v) => s + v, 0) / n : NaN;
  const std = n > 1 ? Math.sqrt(ok.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1)) : n === 1 ? 0 : NaN;
  return {
    mean,
    std,
    median: percentile(ok, 50),
    min: n ? Math.min(...ok) : NaN,
    max: n ? Math.max(...ok) : NaN,
    count: n,
    undefinedCount: values.length - n,
  };
}

/** CSV of the per-case metrics (one row a nodule). */
export function metricsCsv(cases: ReadonlyArray<{ id: string; metrics: SegmentationMetrics }>): string {
  const header = ['case', ...METRIC_NAMES, 'predictedVoxels', 'referenceVoxels'];
  const lines = [header.join(',')];
  for (const { id, metrics } of cases) {
    const cells = [
      csvCell(id),
      ...METRIC_NAMES.map((k) => fmt(metrics[k])),
      String(metrics.predictedVoxels),
      String(metrics.referenceVoxels),
    ];
    lines.push(cells.join(','));
  }
  return lines.join('\n') + '\n';
}

/** Markdown table of the summary: one row per metric, mean ± std, median, range, n. */
export function summaryMarkdown(summary: Record<MetricName, MetricSummary>): string {
  const lines = ['| metric | mean ± std | median | min | max | n | undefined |', '|---|---|---|---|---|---|---|'];
  for (const name of METRIC_NAMES) {
    const s = summary[name];
    lines.push(
      `| ${name} | ${fmt(s.mean)} ± ${fmt(s.std)} | ${fmt(s.median)} | ${fmt(s.min)} | ${fmt(s.max)} | ${s.count} | ${s.undefinedCount} |`,
    );
  }
  return lines.join('\n') + '\n';
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return 'NaN';
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(4);
}

function csvCell(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

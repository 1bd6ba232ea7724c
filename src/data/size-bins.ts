/**
 * Size class of the nodule in a slice: 0 = none, then small / medium / large by its area (mm2).
 * The two edges are the tertiles of the nonzero slice areas of the training split, computed once
 * and stored as JSON beside a model so that it keeps the bins it was trained with.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { describeFsError, writeFileAtomic } from '../io/atomic.ts';
import type { CropCase } from './crops.ts';

export interface SizeBins {
  format: 'noduleseg.size-bins';
  version: 1;
  /** Area edges (mm2): small < edges[0] <= medium < edges[1] <= large. */
  edgesMm2: [number, number];
  classes: ['none', 'small', 'medium', 'large'];
  /** How many nonzero slices the tertiles came from, and of which cases. */
  nonzeroSlices: number;
  source: string;
}

export const SIZE_CLASSES = ['none', 'small', 'medium', 'large'] as const;

/** Linear-interpolated quantile of sorted values (as numpy's default). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) throw new RangeError('quantile of an empty list');
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Tertiles of the nonzero per-slice nodule areas. Pass the training cases only. */
export function computeSizeBins(cases: readonly CropCase[], source = 'lidc-crops train split'): SizeBins {
  if (cases.some((c) => c.split !== 'train')) throw new RangeError('computeSizeBins: bins must come from training cases only');
  const areas: number[] = [];
  for (const c of cases) for (const a of c.sliceAreaMm2) if (a > 0) areas.push(a);
  if (areas.length < 3) throw new RangeError(`computeSizeBins: need at least 3 slices with a nodule, got ${areas.length}`);
  const sorted = Float64Array.from(areas).sort();
  return {
    format: 'noduleseg.size-bins',
    version: 1,
    edgesMm2: [quantile(sorted, 1 / 3), quantile(sorted, 2 / 3)],
    classes: ['none', 'small', 'medium', 'large'],
    nonzeroSlices: areas.length,
    source: `${source} (${cases.length} cases)`,
  };
}

export function sizeClassOf(areaMm2: number, bins: SizeBins): number {
  if (!(areaMm2 > 0)) return 0;
  if (areaMm2 < bins.edgesMm2[0]) return 1;
  if (areaMm2 < bins.edgesMm2[1]) return 2;
  return 3;
}

export function saveSizeBins(path: string, bins: SizeBins): void {
  writeFileAtomic(path, JSON.stringify(bins, null, 2) + '\n');
}

export function parseSizeBins(value: unknown, path: string): SizeBins {
  const v = value as Partial<SizeBins> | null;
  const e = v?.edgesMm2;
  if (v?.format !== 'noduleseg.size-bins' || v.version !== 1 || !Array.isArray(e) || e.length !== 2 || !(e[0]! > 0) || !(e[1]! > e[0]!)) {
    throw new UserError(`${path}: not a noduleseg size-bins file (format noduleseg.size-bins v1 with two increasing edges)`);
  }
  return {
    format: 'noduleseg.size-bins',
    version: 1,
    edgesMm2: [e[0]!, e[1]!],
    classes: ['none', 'small', 'medium', 'large'],
    nonzeroSlices: Number(v.nonzeroSlices ?? 0),
    source: String(v.source ?? ''),
  };
}

export function loadSizeBins(path: string): SizeBins {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`${path}: cannot read (${describeFsError(e)})`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UserError(`${path}: not valid JSON`);
  }
  return parseSizeBins(json, path);
}

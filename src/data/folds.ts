/**
 * Patient-level k-fold cross-validation folds, stratified by nodule type: every patient's
 * nodules fall in one fold, and the rare types (part-solid, ground-glass) are spread evenly so
 * that each fold's score sees them.
 */
import type { CropCase } from './crops.ts';
import type { NoduleType } from './nodule-type.ts';
import { mixSeed, mulberry32, shuffle } from './prng.ts';
import { UserError } from '../errors.ts';

const RARITY: Record<NoduleType, number> = { 'part-solid': 0, 'ground-glass': 1, solid: 2 };

/**
 * fold index (0..k-1) of each patient. Patients are placed one by one, those holding the rarest
 * type first (then the most nodules; ties in a seeded order), each into the fold that has the
 * fewest nodules of that type so far, then the fewest nodules overall.
 */
export function stratifiedPatientFolds(
  cases: readonly Pick<CropCase, 'patientId' | 'noduleType'>[],
  k: number,
  seed: number,
): Map<string, number> {
  if (!Number.isInteger(k) || k < 2) throw new RangeError(`folds: expected an integer >= 2, got ${k}`);
  const byPatient = new Map<string, Array<NoduleType | null>>();
  for (const c of cases) byPatient.set(c.patientId, [...(byPatient.get(c.patientId) ?? []), c.noduleType]);
  if (byPatient.size < k) throw new RangeError(`folds: ${k} folds need at least ${k} patients, the data has ${byPatient.size}`);
  const patients = shuffle([...byPatient.keys()].sort(), mulberry32(mixSeed(seed, 0xf01d)));
  const key = (p: string) => {
    const types = byPatient.get(p)!;
    const rarest = Math.min(...types.map((t) => (t ? RARITY[t] : 3)));
    return { rarest, count: types.filter((t) => t !== null && RARITY[t] === rarest).length, total: types.length };
  };
  const order = patients
    .map((p, i) => ({ p, i, ...key(p) }))
    .sort((a, b) => a.rarest - b.rarest || b.count - a.count || b.total - a.total || a.i - b.i);
  const perType = Array.from({ length: k }, () => [0, 0, 0, 0]);
  const total = new Array<number>(k).fill(0);
  const out = new Map<string, number>();
  for (const { p, rarest } of order) {
    let best = 0;
    for (let f = 1; f < k; f++) {
      if (perType[f]![rarest]! < perType[best]![rarest]! || (perType[f]![rarest] === perType[best]![rarest] && total[f]! < total[best]!))
        best = f;
    }
    out.set(p, best);
    for (const t of byPatient.get(p)!) perType[best]![t ? RARITY[t] : 3]!++;
    total[best]! += byPatient.get(p)!.length;
  }
  return out;
}

/** The cases of fold `index` (held out) and the rest (trained on). */
export function foldSplit<T extends Pick<CropCase, 'patientId' | 'noduleType'>>(
  cases: readonly T[],
  k: number,
  index: number,
  seed: number,
): { train: T[]; heldOut: T[] } {
  if (!Number.isInteger(index) || index < 0 || index >= k) throw new RangeError(`fold ${index} is not in 0..${k - 1}`);
  const folds = stratifiedPatientFolds(cases, k, seed);
  return { train: cases.filter((c) => folds.get(c.patientId) !== index), heldOut: cases.filter((c) => folds.get(c.patientId) === index) };
}

/** "i/k" (1-based i, as a user counts folds) -> { index: i - 1, count: k }. */
export function parseFoldSpec(spec: string): { index: number; count: number } | null {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
  if (!m) return null;
  const i = Number(m[1]),
    k = Number(m[2]);
  if (k < 2 || i < 1 || i > k) return null;
  return { index: i - 1, count: k };
}

/** "1,3" -> [0, 2]: distinct 1-based fold numbers within 1..k, in order. */
export function parseFoldList(text: string, folds: number): number[] {
  const parts = text.split(',').map((t) => t.trim());
  const out = parts.map((t) => Number(t));
  if (parts.some((t) => t === '') || out.some((n) => !Number.isInteger(n) || n < 1 || n > folds) || new Set(out).size !== out.length) {
    throw new UserError(`--only: expected distinct fold numbers from 1 to ${folds} separated by commas, got "${text}"`);
  }
  return out.sort((a, b) => a - b).map((n) => n - 1);
}

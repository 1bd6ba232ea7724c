/** A LUNA16-style candidates CSV: coordX, coordY, coordZ (world mm), and a seriesuid column when it spans several series. */
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import type { Vec3 } from '../io/volume.ts';

export interface Candidate {
  seriesUid: string | null;
  point: Vec3;
}

export function readCandidatesCsv(file: string): Candidate[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`${file}: cannot read the points CSV`);
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim());
  if (lines.length < 2) throw new UserError(`${file}: no points (a header with coordX,coordY,coordZ and one row per nodule)`);
  const head = lines[0]!.split(',').map((h) => h.trim());
  const [ix, iy, iz, is] = ['coordX', 'coordY', 'coordZ', 'seriesuid'].map((c) => head.indexOf(c)) as [number, number, number, number];
  if (ix < 0 || iy < 0 || iz < 0) throw new UserError(`${file}: needs the columns coordX, coordY, coordZ`);
  return lines.slice(1).map((l, n) => {
    const c = l.split(',').map((t) => t.trim());
    const p = [Number(c[ix]), Number(c[iy]), Number(c[iz])];
    if (p.some((x) => !Number.isFinite(x))) throw new UserError(`${file}: line ${n + 2}: coordinates are not numbers`);
    const s = is >= 0 ? (c[is] ?? '') : '';
    return { seriesUid: s || null, point: p as Vec3 };
  });
}

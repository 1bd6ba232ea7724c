/**
 * Box prompts on the 802 crops, cross-validated (session 19): the box is the union's bounding box
 * (the readers' box, as `benchmark scans` prompts a whole scan), optionally loosened (--loose-mm
 * each side, --loose-frac of its size); each fold's held-out probability (runs/oof-probs) with that
 * fold's dense stage, drawn as `segment` draws a box prompt (the level, clipped to the box + 2 mm,
 * the component at the centre, holes filled). Rows: the point path at 0.35 for reference, fixed
 * levels, and box-fitted levels: the highest of 0.35 ... (floor 0.2 or 0.15) whose mask spans at
 * least r of the box's extent in plane (mean of x and y; with z: of the three).
 *
 *   node --import tsx scripts/analysis/cv-box-prompts.ts --out runs/s19/box-sim.json
 *   node --import tsx scripts/analysis/cv-box-prompts.ts --loose-mm 2
 *   node --import tsx scripts/analysis/cv-box-prompts.ts --loose-frac 0.25
 */
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { cropCentreVoxel, lidcCropsDir, loadCrops } from '../../src/data/index.ts';
import { setNumThreads } from '../../src/tensor/index.ts';
import { applyRefineStage } from '../../src/inference/refine.ts';
import { readModelInfo } from '../../src/models/io.ts';
import { readOofProbabilities } from '../refine/oof.ts';
import { scoreCrop, usableReaderMasks } from '../../src/eval/benchmark.ts';
import { readReaderIndex } from '../../src/eval/readers.ts';
import { keepComponentAt, fillHolesInPlane } from '../../src/inference/components.ts';
import { cutAtPrompt, fillEnclosedHoles } from '../../src/inference/predict.ts';

const { values } = parseArgs({
  options: {
    'loose-mm': { type: 'string', default: '0' },
    'loose-frac': { type: 'string', default: '0' },
    out: { type: 'string' },
  },
});
setNumThreads(2);
const dir = lidcCropsDir();
const readerIndex = readReaderIndex(dir);
const union = new Map(loadCrops().map((c) => [c.id, c]));
const levels = [0.35, 0.3, 0.25, 0.2, 0.15];
const rows: Array<{ id: string; type: string | null; fold: number; scores: Record<string, [number, number, number]> }> = [];
for (let f = 1; f <= 5; f++) {
  const stage = readModelInfo(`runs/cv-shift-${f}/staged3-l20.safetensors`).refine!;
  for (const e of readOofProbabilities('runs/oof-probs', f)) {
    const crop = union.get(e.id)!;
    const [nx, ny, nz] = crop.image.dims;
    const sp = crop.image.spacingMm;
    const centre = cropCentreVoxel(crop.image.dims);
    const p = applyRefineStage(stage, {
      hu: crop.image.data,
      probability: Float32Array.from(e.probability),
      dims: crop.image.dims,
      spacingMm: sp,
      promptVoxel: centre,
    });
    // The union's bounding box.
    const lo = [nx, ny, nz],
      hi = [-1, -1, -1];
    for (let z = 0; z < nz; z++)
      for (let y = 0; y < ny; y++)
        for (let x = 0; x < nx; x++)
          if (crop.mask[x + nx * (y + ny * z)]) {
            const v = [x, y, z];
            for (let d = 0; d < 3; d++) {
              lo[d] = Math.min(lo[d]!, v[d]!);
              hi[d] = Math.max(hi[d]!, v[d]!);
            }
          }
    // Loosen the box: --loose-mm each side and --loose-frac of its size.
    const looseMm = Number(values['loose-mm']),
      looseFrac = Number(values['loose-frac']);
    for (let d = 0; d < 3; d++) {
      const grow = looseMm / sp[d]! + ((hi[d]! - lo[d]! + 1) * looseFrac) / 2;
      lo[d] = Math.max(0, Math.round(lo[d]! - grow));
      hi[d] = Math.min(crop.image.dims[d]! - 1, Math.round(hi[d]! + grow));
    }
    const inBox = (x: number, y: number, z: number) => {
      const v = [x, y, z];
      for (let d = 0; d < 3; d++) {
        const s = 2 / sp[d]!;
        if (v[d]! < lo[d]! - s || v[d]! > hi[d]! + s) return false;
      }
      return true;
    };
    const boxMask = (level: number) => {
      const m = new Uint8Array(p.length);
      for (let z = 0; z < nz; z++)
        for (let y = 0; y < ny; y++)
          for (let x = 0; x < nx; x++) {
            const i = x + nx * (y + ny * z);
            m[i] = p[i]! > level && inBox(x, y, z) ? 1 : 0;
          }
      const out = keepComponentAt(m, crop.image.dims, sp, centre);
      fillHolesInPlane(out, crop.image.dims);
      return out;
    };
    const extent = (m: Uint8Array) => {
      const l = [nx, ny, nz],
        h = [-1, -1, -1];
      for (let z = 0; z < nz; z++)
        for (let y = 0; y < ny; y++)
          for (let x = 0; x < nx; x++)
            if (m[x + nx * (y + ny * z)]) {
              const v = [x, y, z];
              for (let d = 0; d < 3; d++) {
                l[d] = Math.min(l[d]!, v[d]!);
                h[d] = Math.max(h[d]!, v[d]!);
              }
            }
      return [0, 1, 2].map((d) => (h[d]! < 0 ? 0 : (h[d]! - l[d]! + 1) / (hi[d]! - lo[d]! + 1)));
    };
    const readers = usableReaderMasks(dir, readerIndex, crop);
    const scores: Record<string, [number, number, number]> = {};
    const put = (k: string, m: Uint8Array) => {
      const s = scoreCrop(crop, m, readers);
      scores[k] = [s.diceUnion, s.diceConsensus, s.diceReaders];
    };
    // The point path for reference (cut at the centre, holes of the 0.2 mask).
    {
      const m = cutAtPrompt(
        Uint8Array.from(p, (v) => (v > 0.35 ? 1 : 0)),
        crop.image,
        centre,
      );
      const w = cutAtPrompt(
        Uint8Array.from(p, (v) => (v > 0.2 ? 1 : 0)),
        crop.image,
        centre,
      );
      fillEnclosedHoles(m, crop.image.dims, w);
      put('point@0.35', m);
    }
    const masks = levels.map(boxMask);
    for (const [k, m] of masks.entries()) put(`box@${levels[k]}`, m);
    // Adaptive: the highest level whose mask reaches r of the box's extent in plane (mean of x and y).
    const exts = masks.map(extent);
    for (const floor of [0.2, 0.15])
      for (const zToo of [false, true])
        for (const r of [0.7, 0.75, 0.8, 0.85]) {
          let k = 0;
          const last = levels.indexOf(floor);
          while (k < last) {
            const ex = exts[k]!;
            const m = zToo ? (ex[0]! + ex[1]! + ex[2]!) / 3 : (ex[0]! + ex[1]!) / 2;
            if (m >= r) break;
            k++;
          }
          put(`fit${r}${zToo ? 'z' : ''}f${floor}`, masks[k]!);
        }
    rows.push({ id: crop.id, type: crop.noduleType, fold: f, scores });
  }
  process.stderr.write(`fold ${f}\n`);
}
const mean = (v: number[]) => {
  const ok = v.filter(Number.isFinite);
  return ok.reduce((a, b) => a + b, 0) / ok.length;
};
console.log('| key | union | consensus | reader | GGO union | GGO cons | PS union | PS cons | solid union | solid cons |');
for (const k of Object.keys(rows[0]!.scores)) {
  const m = (rs: typeof rows, w: number) => mean(rs.map((r) => r.scores[k]![w]!)).toFixed(4);
  const g = rows.filter((r) => r.type === 'ground-glass');
  const ps = rows.filter((r) => r.type === 'part-solid');
  const so = rows.filter((r) => r.type === 'solid');
  console.log(
    `| ${k} | ${m(rows, 0)} | ${m(rows, 1)} | ${m(rows, 2)} | ${m(g, 0)} | ${m(g, 1)} | ${m(ps, 0)} | ${m(ps, 1)} | ${m(so, 0)} | ${m(so, 1)} |`,
  );
}
if (values.out) writeFileSync(values.out, JSON.stringify(rows));

/**
 * How much a perfect size prior could give: the shipped model's probabilities on val, thresholded
 * (a) at the model's threshold, (b) per nodule so that the 3D volume equals the reference volume,
 * (c) per slice so that each slice's area equals the reference area (the most voxels of highest
 * probability). (b) and (c) use the answer, so they are ceilings for any prior that fixes the
 * nodule's size, not results. The 3D component at the crop centre is kept in (a) and (b).
 *
 *   NODULESEG_DATA=../shared/data node --import tsx scripts/analysis/size-oracle.ts models/noduleseg.safetensors
 */
import { loadCrops, sliceGrid } from '../../src/data/index.ts';
import { loadModel } from '../../src/models/io.ts';
import { segmentVolume, keepComponentAt } from '../../src/inference/index.ts';
import { segmentationMetrics } from '../../src/metrics/index.ts';
import { setNumThreads } from '../../src/tensor/index.ts';

setNumThreads(1);
const m = loadModel(process.argv[2] ?? 'models/noduleseg.safetensors');
const crops = loadCrops({ splits: ['val'] });

/** 1 for the k entries of p (from `from`, `n` long) with the highest values. */
function topK(p: Float32Array, from: number, n: number, k: number, out: Uint8Array): void {
  if (k <= 0) return;
  const idx = Array.from({ length: n }, (_, i) => from + i).sort((x, y) => p[y]! - p[x]!);
  for (let i = 0; i < Math.min(k, n); i++) out[idx[i]!] = 1;
}

const rows: Array<{ d: number; base: number; volume: number; slice: number }> = [];
for (const c of crops) {
  const seg = segmentVolume(m.model, c.image, m.info.slice, { threshold: m.info.threshold });
  const p = seg.probability.data;
  const cv = sliceGrid(c.image, m.info.slice).centreVoxel;
  const [nx, ny, nz] = c.image.dims;
  const plane = nx * ny;
  const ref = c.mask;
  const dice = (pred: Uint8Array) =>
    segmentationMetrics(
      { data: pred, dims: c.image.dims, spacingMm: c.image.spacingMm },
      { data: ref, dims: c.image.dims, spacingMm: c.image.spacingMm },
      { hd95: false },
    ).dice;
  let refVoxels = 0;
  for (const x of ref) refVoxels += x;
  let byVolume = new Uint8Array(p.length);
  topK(p, 0, p.length, refVoxels, byVolume);
  byVolume = keepComponentAt(byVolume, c.image.dims, c.image.spacingMm, cv) as Uint8Array<ArrayBuffer>;
  const bySlice = new Uint8Array(p.length);
  for (let z = 0; z < nz; z++) {
    let area = 0;
    for (let j = z * plane; j < (z + 1) * plane; j++) area += ref[j]!;
    topK(p, z * plane, plane, area, bySlice);
  }
  const [sx, sy, sz] = c.image.spacingMm;
  rows.push({
    d: Math.cbrt((6 * refVoxels * sx * sy * sz) / Math.PI),
    base: dice(seg.mask.data),
    volume: dice(byVolume),
    slice: dice(bySlice),
  });
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const line = (name: string, s: typeof rows) =>
  console.log(
    `${name.padEnd(12)} n=${String(s.length).padStart(3)}  threshold ${mean(s.map((r) => r.base)).toFixed(3)}  exact volume ${mean(s.map((r) => r.volume)).toFixed(3)}  exact slice areas ${mean(s.map((r) => r.slice)).toFixed(3)}`,
  );
line('all', rows);
for (const [lo, hi] of [
  [0, 5],
  [5, 8],
  [8, 12],
  [12, 20],
  [20, 100],
] as const)
  line(
    `${lo}-${hi} mm`,
    rows.filter((r) => r.d >= lo && r.d < hi),
  );

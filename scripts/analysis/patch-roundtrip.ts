/**
 * The ceiling the patch grid puts on Dice: each val reference mask is sampled onto the training
 * patches (0.7, 0.5, 0.35 mm) as the trainer does, mapped back to the crop grid as inference
 * does, and scored against itself (docs/results.md, "Where the remaining error is").
 *
 *   NODULESEG_DATA=../shared/data node --import tsx scripts/analysis/patch-roundtrip.ts
 */
import { loadCrops, sliceGrid, slicesToMask, DEFAULT_SLICE_CONFIG } from '../../src/data/index.ts';
import { planeMap, sampleMask } from '../../src/data/slices.ts';
const crops = loadCrops({ splits: ['val'] });
for (const sp of [0.7, 0.5, 0.35]) {
  const cfg = { ...DEFAULT_SLICE_CONFIG, spacingMm: sp, patchSize: Math.round((64 * 0.7) / sp) };
  let sum = 0,
    n = 0;
  const bySize: number[][] = [[], [], []];
  for (const c of crops) {
    if (c.split !== 'val') continue;
    const g = sliceGrid(c.image, cfg);
    const [nx, ny, nz] = c.image.dims;
    const P = cfg.patchSize;
    const m = planeMap(g.centreVoxel, c.image.spacingMm, cfg);
    const probs = new Float32Array(nz * P * P);
    const tmp = new Uint8Array(P * P);
    for (let z = 0; z < nz; z++) {
      sampleMask(c.mask, nx, ny, z, m, P, tmp, 0);
      for (let k = 0; k < P * P; k++) probs[z * P * P + k] = tmp[k]!;
    }
    const back = slicesToMask(probs, g);
    let inter = 0,
      a = 0,
      b = 0;
    for (let k = 0; k < c.mask.length; k++) {
      a += c.mask[k]!;
      b += back.data[k]!;
      inter += c.mask[k]! & back.data[k]!;
    }
    const d = (2 * inter) / (a + b);
    sum += d;
    n++;
    bySize[c.diameterMm < 5 ? 0 : c.diameterMm < 10 ? 1 : 2]!.push(d);
  }
  console.log(
    sp,
    'mean roundtrip dice',
    (sum / n).toFixed(4),
    n,
    bySize.map((s) => (s.reduce((x, y) => x + y, 0) / s.length).toFixed(3)),
  );
}

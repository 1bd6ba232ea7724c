/**
 * The refinement stage: a second look, across slices, at the 2D network's probability (the
 * cascade of nnU-Net in its smallest form). The network sees one axial slice at a time; this
 * stage reads each voxel's probability with its neighbours in the slices above and below and in
 * plane, the HU around it, and where it lies against the nodule the network found, and returns a
 * corrected probability. It is fitted on the cross-validation folds' held-out probabilities
 * (src/train/refine.ts), so it learns the network's errors on nodules it never saw.
 *
 * It is a small dense network stored in the model's metadata (ModelInfo.refine) and applied in
 * plain arithmetic, like the nodule-level heads: no libtorch, pure and testable. Its output is the
 * network's own logit plus its correction, so a stage whose output layer is zero is the network.
 */
import type { Vec3 } from '../io/volume.ts';
import { keepComponentAt } from './components.ts';
import { REFINE_FEATURE_NAMES, REFINE_FEATURES_V1, featureColumns, type RefineStage } from '../models/refine-stage.ts';

export {
  REFINE_FEATURE_NAMES,
  REFINE_FEATURES_V1,
  REFINE_FORMAT,
  featureColumns,
  validateRefineStage,
  type RefineStage,
  type RefineLayer,
} from '../models/refine-stage.ts';

/** Voxels the stage reads: some probability at or above this within one voxel; elsewhere the probability is kept. */
export const REFINE_REGION_PROBABILITY = 0.01;
/** The level whose component at the prompt gives the predicted size the features are scaled by. */
export const REFINE_SIZE_LEVEL = 0.4;

/** The grid the stage reads: HU and the network's probability on the same voxels. */
export interface RefineInput {
  hu: ArrayLike<number>;
  probability: Float32Array;
  dims: Vec3;
  spacingMm: Vec3;
  /** Where the nodule is (voxels): the prompt, or the centre the patches were placed at. */
  promptVoxel: Vec3;
}

export const logitOf = (p: number): number => {
  const q = Math.min(1 - 1e-4, Math.max(1e-4, p));
  return Math.log(q / (1 - q));
};

const clampHu = (v: number) => Math.min(0.6, Math.max(-1.2, v / 1000));

/**
 * The stage's region (voxel indices) and its feature rows [voxels x names], `names` a subset of
 * REFINE_FEATURE_NAMES in its order (a stage's own list). Shared by fitting and inference, so
 * that the stage sees at run time what it was fitted on.
 */
export function refineFeatures(
  input: RefineInput,
  names: readonly string[] = REFINE_FEATURE_NAMES,
): { voxels: Int32Array; x: Float32Array } {
  const columns = featureColumns(names);
  const { hu, probability: prob, dims, spacingMm, promptVoxel } = input;
  const [nx, ny, nz] = dims;
  const [sx, sy, sz] = spacingMm;
  const plane = nx * ny;
  const cl = (v: number, n: number) => (v < 0 ? 0 : v >= n ? n - 1 : v);
  // The predicted size: the component at the prompt at REFINE_SIZE_LEVEL (other blobs in a
  // scan's crop, such as the chest wall, are not the nodule).
  const sized = keepComponentAt(
    Uint8Array.from(prob, (p) => (p > REFINE_SIZE_LEVEL ? 1 : 0)),
    dims,
    spacingMm,
    promptVoxel,
  );
  // The nodule found: its size, its area per slice (where a slice lies along it), its HU.
  let predicted = 0,
    huSum = 0,
    above300 = 0;
  const sliceArea = new Float64Array(nz);
  for (let i = 0; i < sized.length; i++) {
    if (!sized[i]) continue;
    predicted++;
    sliceArea[Math.floor(i / plane)]!++;
    huSum += hu[i]!;
    if (hu[i]! > -300) above300++;
  }
  const maxArea = Math.max(1, ...sliceArea);
  const predictedMeanHu = predicted ? clampHu(huSum / predicted) : -0.6;
  const predictedShareAbove300 = predicted ? above300 / predicted : 0;
  const diameterMm = Math.max(2, Math.cbrt((6 * predicted * sx * sy * sz) / Math.PI));
  const radiusMm = diameterMm / 2;
  const [cx, cy, cz] = promptVoxel;
  // The region: voxels with some probability >= REFINE_REGION_PROBABILITY in their 3 x 3 x 3
  // neighbourhood (edges clamped), found by dilating the few voxels above it rather than by
  // scanning every voxel's neighbourhood.
  const inRegion = new Uint8Array(prob.length);
  for (let i = 0; i < prob.length; i++) {
    if (prob[i]! < REFINE_REGION_PROBABILITY) continue;
    const x = i % nx,
      y = Math.floor(i / nx) % ny,
      z = Math.floor(i / plane);
    for (let dz = -1; dz <= 1; dz++) {
      const zz = z + dz;
      if (zz < 0 || zz >= nz) continue;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= ny) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx >= 0 && xx < nx) inRegion[zz * plane + yy * nx + xx] = 1;
        }
      }
    }
  }
  const D = columns.length;
  const all = new Float64Array(REFINE_FEATURE_NAMES.length);
  const wide = columns[columns.length - 1]! >= REFINE_FEATURES_V1.length;
  // Per-slice summed-area tables of the probability and the HU (a row and a column of zeros
  // first), so that a square's sum in plane is four reads; only for a stage with the wide features.
  const W = nx + 1,
    tablePlane = W * (ny + 1);
  const integral = (a: ArrayLike<number>) => {
    const t = new Float64Array(wide ? tablePlane * nz : 0);
    if (!wide) return t;
    for (let z = 0; z < nz; z++)
      for (let y = 0; y < ny; y++) {
        let row = 0;
        const to = z * tablePlane + (y + 1) * W + 1,
          ao = z * plane + y * nx;
        for (let x = 0; x < nx; x++) {
          row += a[ao + x]!;
          t[to + x] = t[to - W + x]! + row;
        }
      }
    return t;
  };
  const probTable = integral(prob),
    huTable = integral(hu);
  // Mean of prob (or HU) over a (2r+1)^2 square in plane at slice z, edges clamped (replicated):
  // from the table inside the grid, summed voxel by voxel where the square crosses an edge.
  const planeMean = (a: ArrayLike<number>, t: Float64Array, x: number, y: number, z: number, r: number) => {
    const n = (2 * r + 1) ** 2;
    if (x - r >= 0 && x + r < nx && y - r >= 0 && y + r < ny) {
      const zo = z * tablePlane,
        x0 = x - r,
        x1 = x + r + 1,
        y0 = (y - r) * W,
        y1 = (y + r + 1) * W;
      return (t[zo + y1 + x1]! - t[zo + y0 + x1]! - t[zo + y1 + x0]! + t[zo + y0 + x0]!) / n;
    }
    let sum = 0;
    const zz = z * plane;
    for (let dy = -r; dy <= r; dy++) {
      const yy = zz + cl(y + dy, ny) * nx;
      for (let dx = -r; dx <= r; dx++) sum += a[yy + cl(x + dx, nx)]!;
    }
    return sum / n;
  };
  let count = 0;
  for (let i = 0; i < inRegion.length; i++) count += inRegion[i]!;
  const voxels = new Int32Array(count);
  const rows = new Float32Array(count * D);
  let k = 0;
  for (let i = 0; i < inRegion.length; i++) {
    if (!inRegion[i]) continue;
    const x = i % nx,
      y = Math.floor(i / nx) % ny,
      z = Math.floor(i / plane);
    let sum3 = 0,
      sumPlane = 0,
      huPlane = 0,
      huPlane2 = 0;
    for (let dz = -1; dz <= 1; dz++) {
      const zz = cl(z + dz, nz) * plane;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = zz + cl(y + dy, ny) * nx;
        for (let dx = -1; dx <= 1; dx++) {
          const j = yy + cl(x + dx, nx);
          const v = prob[j]!;
          sum3 += v;
          if (dz === 0) {
            sumPlane += v;
            huPlane += hu[j]!;
            huPlane2 += hu[j]! * hu[j]!;
          }
        }
      }
    }
    const up = prob[cl(z + 1, nz) * plane + y * nx + x]!,
      down = prob[cl(z - 1, nz) * plane + y * nx + x]!;
    const h = hu[i]!;
    const b0 = h < -800 ? 1 : 0,
      b1 = h >= -800 && h < -500 ? 1 : 0,
      b2 = h >= -500 && h < -300 ? 1 : 0,
      b3 = h >= -300 && h < 0 ? 1 : 0,
      b4 = h >= 0 ? 1 : 0;
    const l = logitOf(prob[i]!);
    const dxMm = (x - cx) * sx,
      dyMm = (y - cy) * sy,
      dzMm = (z - cz) * sz;
    all[0] = l;
    all[1] = logitOf((up + down) / 2);
    all[2] = logitOf(Math.max(up, down));
    all[3] = logitOf(Math.min(up, down));
    all[4] = logitOf(sumPlane / 9);
    all[5] = logitOf(sum3 / 27);
    all[6] = clampHu(h);
    all[7] = clampHu(huPlane / 9);
    all[8] = b0;
    all[9] = b1;
    all[10] = b2;
    all[11] = b3;
    all[12] = b4;
    all[13] = l * b0;
    all[14] = l * b1;
    all[15] = l * b2;
    all[16] = l * b3;
    all[17] = sz / 2.5;
    all[18] = Math.hypot(dxMm, dyMm, dzMm) / radiusMm;
    all[19] = Math.abs(dzMm) / radiusMm;
    all[20] = Math.log(diameterMm);
    // The wider features (session 16), only for a stage that reads them.
    if (wide) {
      const up2 = prob[cl(z + 2, nz) * plane + y * nx + x]!,
        down2 = prob[cl(z - 2, nz) * plane + y * nx + x]!;
      all[21] = logitOf((up2 + down2) / 2);
      all[22] = logitOf(Math.max(up2, down2));
      all[23] = logitOf(planeMean(prob, probTable, x, y, z, 2));
      all[24] = logitOf(planeMean(prob, probTable, x, y, z, 4));
      all[25] = clampHu(planeMean(hu, huTable, x, y, z, 2));
      all[26] = Math.min(0.6, Math.sqrt(Math.max(0, huPlane2 / 9 - (huPlane / 9) ** 2)) / 1000);
      all[27] = sliceArea[z]! / maxArea;
      all[28] = sized[i]!;
      all[29] = predictedMeanHu;
      all[30] = predictedShareAbove300;
    }
    const o = k * D;
    for (let c = 0; c < D; c++) rows[o + c] = all[columns[c]!]!;
    voxels[k++] = i;
  }
  return { voxels, x: rows };
}

/** The stage's corrected probability of each row of `x` (raw features, as refineFeatures gives them). */
export function refineRows(stage: RefineStage, x: Float32Array): Float32Array {
  // x holds the stage's own features (refineFeatures(input, stage.features)).
  const D = stage.mean.length;
  const n = x.length / D;
  const out = new Float32Array(n);
  const mean = Float64Array.from(stage.mean),
    std = Float64Array.from(stage.std);
  const input = new Float64Array(D);
  const [first, second] = stage.layers;
  if (stage.layers.length === 2 && first && second && second.outFeatures === 1) {
    // One hidden layer, as fitRefineStage makes it: flat loops over typed copies of the weights,
    // about twice as fast in V8 as the general loop below.
    const w1 = Float64Array.from(first.weight),
      b1 = Float64Array.from(first.bias),
      w2 = Float64Array.from(second.weight);
    const H = first.outFeatures,
      b2 = second.bias[0]!;
    for (let r = 0; r < n; r++) {
      const o = r * D;
      for (let j = 0; j < D; j++) input[j] = (x[o + j]! - mean[j]!) / std[j]!;
      let correction = b2;
      for (let u = 0; u < H; u++) {
        let s = b1[u]!;
        const w = u * D;
        for (let j = 0; j < D; j++) s += w1[w + j]! * input[j]!;
        if (s > 0) correction += w2[u]! * s;
      }
      out[r] = 1 / (1 + Math.exp(-(x[o]! + correction)));
    }
    return out;
  }
  const buffers = stage.layers.map((l) => new Float64Array(l.outFeatures));
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < D; j++) input[j] = (x[r * D + j]! - mean[j]!) / std[j]!;
    let a: Float64Array = input;
    stage.layers.forEach((layer, k) => {
      const o = buffers[k]!;
      for (let u = 0; u < layer.outFeatures; u++) {
        let s = layer.bias[u]!;
        const w = u * layer.inFeatures;
        for (let j = 0; j < layer.inFeatures; j++) s += layer.weight[w + j]! * a[j]!;
        o[u] = k < stage.layers.length - 1 && s < 0 ? 0 : s;
      }
      a = o;
    });
    out[r] = 1 / (1 + Math.exp(-(x[r * D]! + a[0]!)));
  }
  return out;
}

/** The network's probability with the stage's correction on its region (a new array). */
export function applyRefineStage(stage: RefineStage, input: RefineInput): Float32Array {
  const { voxels, x } = refineFeatures(input, stage.features);
  const p = refineRows(stage, x);
  const out = Float32Array.from(input.probability);
  for (let k = 0; k < voxels.length; k++) out[voxels[k]!] = p[k]!;
  return out;
}

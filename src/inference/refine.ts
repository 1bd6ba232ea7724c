/**
 * The refinement stage: a second look, across slices, at the 2D network's probability (the
 * cascade of nnU-Net in its smallest form). The network sees one axial slice at a time; this
 * stage reads each voxel's probability with its neighbours in the slices above and below and in
 * plane, the HU around it, and where it lies against the nodule the network found, and returns a
 * corrected probability. It is fitted on the cross-validation folds' held-out probabilities
 * (src/train/refine.ts), so it learns the network's errors on nodules it never saw.
 *
 * It is a small dense network stored in the model's metadata (ModelInfo.refine): its features are
 * computed here in plain arithmetic, its layers applied with libtorch's matrix products. Its output
 * is the network's own logit plus its correction, so a stage whose output layer is zero is the network.
 */
import type { Vec3 } from '../io/volume.ts';
import { tensor, tidy, F } from '../tensor/index.ts';
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
const clampIndex = (v: number, n: number) => (v < 0 ? 0 : v >= n ? n - 1 : v);

/**
 * Per-slice summed-area tables of `a` (a row and a column of zeros first), so that a square's sum
 * in plane is four reads.
 */
function planeTables(a: Float32Array, nx: number, ny: number, nz: number): Float64Array {
  const W = nx + 1,
    tablePlane = W * (ny + 1),
    plane = nx * ny;
  const t = new Float64Array(tablePlane * nz);
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
}

/**
 * Mean of `a` over a (2r+1)^2 square in plane at slice z, edges clamped (replicated): from its
 * table inside the grid, summed voxel by voxel where the square crosses an edge.
 */
function planeMean(a: Float32Array, t: Float64Array, nx: number, ny: number, x: number, y: number, z: number, r: number): number {
  const n = (2 * r + 1) * (2 * r + 1);
  if (x - r >= 0 && x + r < nx && y - r >= 0 && y + r < ny) {
    const W = nx + 1,
      zo = z * W * (ny + 1),
      x0 = x - r,
      x1 = x + r + 1,
      y0 = (y - r) * W,
      y1 = (y + r + 1) * W;
    return (t[zo + y1 + x1]! - t[zo + y0 + x1]! - t[zo + y1 + x0]! + t[zo + y0 + x0]!) / n;
  }
  let sum = 0;
  const zz = z * nx * ny;
  for (let dy = -r; dy <= r; dy++) {
    const yy = zz + clampIndex(y + dy, ny) * nx;
    for (let dx = -r; dx <= r; dx++) sum += a[yy + clampIndex(x + dx, nx)]!;
  }
  return sum / n;
}

/**
 * The region: voxels with some probability >= REFINE_REGION_PROBABILITY in their 3 x 3 x 3
 * neighbourhood (edges clamped), found by dilating the few voxels above it rather than by
 * scanning every voxel's neighbourhood.
 */
function refineRegion(prob: Float32Array, nx: number, ny: number, nz: number): Uint8Array {
  const plane = nx * ny;
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
  return inRegion;
}

/**
 * The stage's region (voxel indices) and its feature rows [voxels x names], `names` a subset of
 * REFINE_FEATURE_NAMES in its order (a stage's own list). Shared by fitting and inference, so
 * that the stage sees at run time what it was fitted on. (Written as small functions over
 * Float32Arrays: one large function with closures was deoptimised again and again by V8.)
 */
export function refineFeatures(
  input: RefineInput,
  names: readonly string[] = REFINE_FEATURE_NAMES,
): { voxels: Int32Array; x: Float32Array } {
  const columns = Int32Array.from(featureColumns(names));
  const { probability: prob, dims, spacingMm, promptVoxel } = input;
  const hu = input.hu instanceof Float32Array ? input.hu : Float32Array.from(input.hu);
  const [nx, ny, nz] = dims;
  const [sx, sy, sz] = spacingMm;
  const plane = nx * ny;
  // The predicted size: the component at the prompt at REFINE_SIZE_LEVEL (other blobs in a
  // scan's crop, such as the chest wall, are not the nodule).
  const above = new Uint8Array(prob.length);
  for (let i = 0; i < prob.length; i++) above[i] = prob[i]! > REFINE_SIZE_LEVEL ? 1 : 0;
  const sized = keepComponentAt(above, dims, spacingMm, promptVoxel);
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
  let maxArea = 1;
  for (let z = 0; z < nz; z++) maxArea = Math.max(maxArea, sliceArea[z]!);
  const inRegion = refineRegion(prob, nx, ny, nz);
  let count = 0;
  for (let i = 0; i < inRegion.length; i++) count += inRegion[i]!;
  const voxels = new Int32Array(count);
  for (let i = 0, k = 0; i < inRegion.length; i++) if (inRegion[i]) voxels[k++] = i;
  const wide = columns[columns.length - 1]! >= REFINE_FEATURES_V1.length;
  const rows = new Float32Array(count * columns.length);
  voxelFeatures(rows, columns, voxels, prob, hu, dims, spacingMm, promptVoxel, {
    sized,
    sliceAreaOverMax: sliceArea.map((a) => a / maxArea),
    diameterMm: Math.max(2, Math.cbrt((6 * predicted * sx * sy * sz) / Math.PI)),
    meanHu: predicted ? clampHu(huSum / predicted) : -0.6,
    shareAbove300: predicted ? above300 / predicted : 0,
    probTable: wide ? planeTables(prob, nx, ny, nz) : null,
    huTable: wide ? planeTables(hu, nx, ny, nz) : null,
  });
  return { voxels, x: rows };
}

/** What refineFeatures found of the nodule, read by every voxel's row. */
interface PredictedNodule {
  /** The component at the prompt at REFINE_SIZE_LEVEL (0/1 per voxel). */
  sized: Uint8Array;
  /** Its area per slice over its widest slice's. */
  sliceAreaOverMax: Float64Array;
  diameterMm: number;
  /** Its mean HU (clamped, / 1000) and share of voxels above -300 HU. */
  meanHu: number;
  shareAbove300: number;
  /** Summed-area tables of the probability and the HU; null for a stage without the wide features. */
  probTable: Float64Array | null;
  huTable: Float64Array | null;
}

/** Fills rows[k * D + c] with feature columns[c] of voxels[k] (REFINE_FEATURE_NAMES' order). */
function voxelFeatures(
  rows: Float32Array,
  columns: Int32Array,
  voxels: Int32Array,
  prob: Float32Array,
  hu: Float32Array,
  dims: Vec3,
  spacingMm: Vec3,
  promptVoxel: Vec3,
  nodule: PredictedNodule,
): void {
  const [nx, ny, nz] = dims;
  const [sx, sy, sz] = spacingMm;
  const [cx, cy, cz] = promptVoxel;
  const plane = nx * ny;
  const D = columns.length;
  const { sized, sliceAreaOverMax, probTable, huTable } = nodule;
  const radiusMm = nodule.diameterMm / 2,
    logDiameter = Math.log(nodule.diameterMm);
  const all = new Float64Array(REFINE_FEATURE_NAMES.length);
  for (let k = 0; k < voxels.length; k++) {
    const i = voxels[k]!;
    const x = i % nx,
      y = Math.floor(i / nx) % ny,
      z = Math.floor(i / plane);
    let sum3 = 0,
      sumPlane = 0,
      huPlane = 0,
      huPlane2 = 0;
    for (let dz = -1; dz <= 1; dz++) {
      const zz = clampIndex(z + dz, nz) * plane;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = zz + clampIndex(y + dy, ny) * nx;
        for (let dx = -1; dx <= 1; dx++) {
          const j = yy + clampIndex(x + dx, nx);
          const v = prob[j]!;
          sum3 += v;
          if (dz === 0) {
            const h = hu[j]!;
            sumPlane += v;
            huPlane += h;
            huPlane2 += h * h;
          }
        }
      }
    }
    const up = prob[clampIndex(z + 1, nz) * plane + y * nx + x]!,
      down = prob[clampIndex(z - 1, nz) * plane + y * nx + x]!;
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
    all[18] = Math.sqrt(dxMm * dxMm + dyMm * dyMm + dzMm * dzMm) / radiusMm;
    all[19] = Math.abs(dzMm) / radiusMm;
    all[20] = logDiameter;
    // The wider features (session 16), only for a stage that reads them.
    if (probTable && huTable) {
      const up2 = prob[clampIndex(z + 2, nz) * plane + y * nx + x]!,
        down2 = prob[clampIndex(z - 2, nz) * plane + y * nx + x]!;
      all[21] = logitOf((up2 + down2) / 2);
      all[22] = logitOf(Math.max(up2, down2));
      all[23] = logitOf(planeMean(prob, probTable, nx, ny, x, y, z, 2));
      all[24] = logitOf(planeMean(prob, probTable, nx, ny, x, y, z, 4));
      all[25] = clampHu(planeMean(hu, huTable, nx, ny, x, y, z, 2));
      all[26] = Math.min(0.6, Math.sqrt(Math.max(0, huPlane2 / 9 - (huPlane / 9) ** 2)) / 1000);
      all[27] = sliceAreaOverMax[z]!;
      all[28] = sized[i]!;
      all[29] = nodule.meanHu;
      all[30] = nodule.shareAbove300;
    }
    const o = k * D;
    for (let c = 0; c < D; c++) rows[o + c] = all[columns[c]!]!;
  }
}

/**
 * The stage's corrected probability of each row of `x` (raw features, as refineFeatures gives
 * them for the stage's own names): sigmoid(logit + layers((x - mean) / std)). In libtorch (float32
 * matrix products): the same arithmetic in plain loops took about 2 us a row, as long as the
 * features themselves.
 */
export function refineRows(stage: RefineStage, x: Float32Array): Float32Array {
  const D = stage.mean.length;
  const n = x.length / D;
  if (!Number.isInteger(n)) throw new RangeError(`refineRows: ${x.length} values are not rows of ${D}`);
  if (n === 0) return new Float32Array(0);
  const last = stage.layers.length - 1;
  return tidy(() => {
    const rows = tensor(x, [n, D]);
    let h = rows.sub(tensor(Float32Array.from(stage.mean), [D])).div(tensor(Float32Array.from(stage.std), [D]));
    stage.layers.forEach((l, k) => {
      h = F.linear(
        h,
        tensor(Float32Array.from(l.weight), [l.outFeatures, l.inFeatures]),
        tensor(Float32Array.from(l.bias), [l.outFeatures]),
      );
      if (k < last) h = h.relu();
    });
    return h.reshape([n]).add(rows.select(1, 0)).sigmoid().toTypedArray() as Float32Array;
  });
}

/** The network's probability with the stage's correction on its region (a new array). */
export function applyRefineStage(stage: RefineStage, input: RefineInput): Float32Array {
  const { voxels, x } = refineFeatures(input, stage.features);
  const p = refineRows(stage, x);
  const out = Float32Array.from(input.probability);
  for (let k = 0; k < voxels.length; k++) out[voxels[k]!] = p[k]!;
  return out;
}

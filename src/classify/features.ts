/**
 * Nodule-level features for the classification heads (type, calcification, malignancy
 * suspicion): the frozen joint network's encoders run over the nodule's axial slices, and a few
 * statistics of the Hounsfield units inside the mask.
 *
 * The network is read, never changed: the encoder loop below is JointNet.forward's first half
 * (segmentation and classification encoders with their feature combination blocks), so the
 * features are those the size classifier and the decoder see.
 */
import { tensor, tidy, noGrad, F } from '../tensor/index.ts';
import { planeMap, sampleMask } from '../data/slices.ts';
import { sliceGrid, volumeToSlices, type SliceConfig } from '../data/index.ts';
import type { Volume, Vec3 } from '../io/volume.ts';
import { JointNet } from '../models/joint.ts';
import type { SegmentationNetwork } from '../models/types.ts';
import { axisMeasures } from '../guidelines/measurements.ts';
import { noduleSlices, poolSlices, huFeatures, compositionFeatures } from './pooling.ts';

export { noduleSlices, poolSlices, huFeatures, compositionFeatures, HU_FEATURE_NAMES } from './pooling.ts';

/**
 * Per-slice network features, in this order:
 * - clsPooled: the classification branch's last map averaged over the patch (what the size
 *   classifier reads);
 * - segPooled: the segmentation encoder's bottleneck averaged over the patch;
 * - segMasked: the segmentation encoder's third scale (1/4 resolution) averaged inside the mask;
 * - clsMasked: the classification branch's third scale averaged inside the mask.
 */
export interface NetworkFeatureLayout {
  clsPooled: number;
  segPooled: number;
  segMasked: number;
  clsMasked: number;
}

/** The encoder scale whose maps are pooled inside the mask (0 = full resolution). */
const MASKED_SCALE = 2;

export function networkFeatureLayout(model: JointNet): NetworkFeatureLayout {
  const f = model.config.features,
    cf = model.config.clsFeatures;
  return { clsPooled: cf[cf.length - 1]!, segPooled: f[f.length - 1]!, segMasked: f[MASKED_SCALE]!, clsMasked: cf[MASKED_SCALE]! };
}

export function networkFeatureCount(model: JointNet): number {
  const l = networkFeatureLayout(model);
  return l.clsPooled + l.segPooled + l.segMasked + l.clsMasked;
}

/** The joint network, or a UserError-free null for architectures without a classification branch. */
export function asJointNet(model: SegmentationNetwork): JointNet | null {
  return model instanceof JointNet ? model : null;
}

/**
 * Network features of each of `slices` [slices.length x networkFeatureCount], the patches
 * sampled exactly as for segmentation (centred on `centreVoxel`).
 */
export function sliceNetworkFeatures(
  model: JointNet,
  volume: Volume,
  mask: Uint8Array,
  slice: SliceConfig,
  centreVoxel: Vec3,
  slices: readonly number[],
): Float32Array {
  const grid = sliceGrid(volume, slice, centreVoxel);
  const all = volumeToSlices(grid);
  const [, C, P] = all.shape;
  const n = slices.length;
  const input = new Float32Array(n * C * P * P);
  const masks = new Float32Array(n * P * P);
  const map = planeMap(grid.centreVoxel, volume.spacingMm, slice);
  const bits = new Uint8Array(P * P);
  slices.forEach((z, k) => {
    input.set(all.input.subarray(z * C * P * P, (z + 1) * C * P * P), k * C * P * P);
    sampleMask(mask, volume.dims[0], volume.dims[1], z, map, P, bits, 0);
    for (let i = 0; i < P * P; i++) masks[k * P * P + i] = bits[i]!;
  });
  const width = networkFeatureCount(model);
  const out = new Float32Array(n * width);
  const wasTraining = model.training;
  model.eval();
  try {
    noGrad(() =>
      tidy(() => {
        const x = tensor(input, [n, C, P, P]);
        let s = x,
          c = x;
        const scales: Array<{ s: typeof x; c: typeof x }> = [];
        for (let i = 0; i < model.segEncoder.length; i++) {
          s = model.segEncoder.at(i).forward(s);
          c = model.clsEncoder.at(i).forward(c);
          if (model.fcbs) [s, c] = model.fcbs.at(i).forward(s, c);
          scales.push({ s, c });
        }
        const m = tensor(masks, [n, 1, P, P]);
        const at = scales[MASKED_SCALE]!;
        const k = P / at.s.shape[2]!;
        // The mask's share of each low-resolution cell weights the average (a slice whose mask
        // is empty at that scale falls back to the plain average).
        const w = F.avgPool2d(m, k, k);
        const wSum = w.sum([2, 3]);
        const masked = (t: typeof x) => {
          const num = t.mul(w).sum([2, 3]);
          const plain = t.mean([2, 3]);
          const has = wSum.gt(1e-6).float();
          return num
            .div(wSum.add(1e-6))
            .mul(has)
            .add(plain.mul(has.rsub(1)));
        };
        const parts = [c.mean([2, 3]), s.mean([2, 3]), masked(at.s), masked(at.c)];
        const flat = parts.map((t) => t.toTypedArray() as Float32Array);
        const widths = parts.map((t) => t.shape[1]!);
        for (let r = 0; r < n; r++) {
          let o = r * width;
          flat.forEach((a, p) => {
            out.set(a.subarray(r * widths[p]!, (r + 1) * widths[p]!), o);
            o += widths[p]!;
          });
        }
      }),
    );
  } finally {
    model.train(wasTraining);
  }
  return out;
}

export interface NoduleFeatures {
  /** The network's features pooled over the nodule's slices, weighted by mask area. */
  network: Float32Array;
  /** HU_FEATURE_NAMES' values. */
  hu: Float32Array;
}

/**
 * Every feature of one segmented nodule: the one function behind the training cache and
 * `segment`, so the heads see at run time exactly what they were trained on.
 */
export function noduleFeatures(model: JointNet, slice: SliceConfig, volume: Volume, mask: Uint8Array, centreVoxel: Vec3): NoduleFeatures {
  const [nx, ny] = volume.dims;
  const slices = noduleSlices(mask, volume.dims, centreVoxel[2]);
  const perSlice = sliceNetworkFeatures(model, volume, mask, slice, centreVoxel, slices);
  const areas = slices.map((z) => {
    let a = 0;
    for (let i = z * nx * ny; i < (z + 1) * nx * ny; i++) a += mask[i]!;
    return a;
  });
  const network = poolSlices(perSlice, networkFeatureCount(model), areas);
  const m = axisMeasures({ data: mask, dims: volume.dims, spacingMm: volume.spacingMm });
  const [sx, sy, sz] = volume.spacingMm;
  const stats = huFeatures(volume.data, mask, sx * sy * sz, m.longAxisMm, (m.longAxisMm + m.shortAxisMm) / 2);
  const composition = compositionFeatures(volume.data, mask, volume.dims, volume.spacingMm);
  const hu = new Float32Array(stats.length + composition.length);
  hu.set(stats);
  hu.set(composition, stats.length);
  return { network, hu };
}

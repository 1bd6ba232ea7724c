/**
 * Inference-side twin of SliceDataset: turns a crop Volume into the same normalised slices or
 * stacks the model was trained on, and turns the model's per-slice probability maps back into a
 * probability volume or a 3D mask on the crop's own grid.
 *
 *   const grid = sliceGrid(crop, config);              // config: the training SliceConfig
 *   const x = volumeToSlices(crop, grid);              // x.input: [Z, C, P, P] Float32Array
 *   const probs = model(x.input, x.shape);             // [Z, 1, P, P] (or [Z, P, P]) in [0, 1]
 *   const mask = slicesToMask(probs, grid);            // Volume<Uint8Array> on crop's grid
 */
import type { Volume, Vec3 } from '../io/volume.ts';
import {
  inputChannels,
  intensityMaps,
  planeMap,
  samplePromptChannel,
  sampleWindows,
  stackSlices,
  validateSliceConfig,
  type SliceConfig,
} from './slices.ts';

/** Everything needed to go from a volume to patches and back. */
export interface SliceGrid {
  config: SliceConfig;
  /** The volume the patches come from (its geometry is the output grid). */
  volume: Volume;
  /** Patch centre in voxels (x, y; z is unused): the volume centre unless given. */
  centreVoxel: Vec3;
  /** Where the prompt is (voxels, 3D), for a model with a prompt channel: the centre unless given. */
  promptVoxel: Vec3;
}

export function sliceGrid(volume: Volume, config: SliceConfig, centreVoxel?: Vec3, promptVoxel?: Vec3): SliceGrid {
  validateSliceConfig(config);
  const [nx, ny, nz] = volume.dims;
  const centre: Vec3 = centreVoxel ?? [(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2];
  return { config: { ...config }, volume, centreVoxel: centre, promptVoxel: promptVoxel ?? centre };
}

/** One sample per axial slice of the volume, z ascending: input [Z, C, P, P]. */
export function volumeToSlices(grid: SliceGrid): { input: Float32Array; shape: [number, number, number, number] } {
  const { config, volume } = grid;
  const [nx, ny, nz] = volume.dims;
  const P = config.patchSize;
  const C = inputChannels(config);
  const src = volume.data instanceof Int16Array || volume.data instanceof Float32Array ? volume.data : Float32Array.from(volume.data);
  const map = planeMap(grid.centreVoxel, volume.spacingMm, config);
  const maps = intensityMaps(config);
  const input = new Float32Array(nz * C * P * P);
  const prompt = config.promptChannel;
  for (let z = 0; z < nz; z++) {
    sampleWindows(src, nx, ny, stackSlices(z, nz, config.contextSlices), map, P, maps, input, z * C * P * P);
    if (prompt) samplePromptChannel(map, P, z, grid.promptVoxel, volume.spacingMm, prompt.sigmaMm, input, ((z + 1) * C - 1) * P * P);
  }
  return { input, shape: [nz, C, P, P] };
}

/**
 * Maps per-slice maps [Z, P, P] (any leading 1-channel dim allowed) back onto the volume's grid
 * by bilinear interpolation at each voxel's position in its slice's patch; voxels outside the
 * patch get 0.
 */
export function slicesToProbability(probs: Float32Array, grid: SliceGrid): Volume<Float32Array> {
  const { config, volume } = grid;
  const [nx, ny, nz] = volume.dims;
  const P = config.patchSize;
  if (probs.length !== nz * P * P)
    throw new RangeError(`slicesToProbability: expected ${nz}x${P}x${P} = ${nz * P * P} values, got ${probs.length}`);
  const h = (P - 1) / 2;
  // Inverse of planeMap without augmentation: u = h + (x - cx) * voxelSpacing / patchSpacing.
  const ku = volume.spacingMm[0] / config.spacingMm;
  const kv = volume.spacingMm[1] / config.spacingMm;
  const out = new Float32Array(nx * ny * nz);
  for (let z = 0; z < nz; z++) {
    const pb = z * P * P;
    for (let j = 0; j < ny; j++) {
      const v = h + (j - grid.centreVoxel[1]) * kv;
      const vf = Math.floor(v);
      const fv = v - vf;
      if (vf < -1 || vf >= P) continue;
      for (let i = 0; i < nx; i++) {
        const u = h + (i - grid.centreVoxel[0]) * ku;
        const uf = Math.floor(u);
        if (uf < -1 || uf >= P) continue;
        const fu = u - uf;
        const a = pix(probs, pb, P, uf, vf);
        const b = pix(probs, pb, P, uf + 1, vf);
        const c = pix(probs, pb, P, uf, vf + 1);
        const d = pix(probs, pb, P, uf + 1, vf + 1);
        out[i + nx * (j + ny * z)] = a + (b - a) * fu + (c - a + (a - b - c + d) * fu) * fv;
      }
    }
  }
  return volume.withData(out, 'probability');
}

function pix(p: Float32Array, base: number, P: number, u: number, v: number): number {
  return u >= 0 && v >= 0 && u < P && v < P ? p[base + u + P * v]! : 0;
}

/** slicesToProbability thresholded (> threshold, default 0.5) into a 0/1 mask. */
export function slicesToMask(probs: Float32Array, grid: SliceGrid, threshold = 0.5): Volume<Uint8Array> {
  const p = slicesToProbability(probs, grid);
  const m = new Uint8Array(p.data.length);
  for (let n = 0; n < m.length; n++) m[n] = p.data[n]! > threshold ? 1 : 0;
  return grid.volume.withData(m, 'SEG');
}

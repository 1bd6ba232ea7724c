/**
 * Nodule crops: cut a box around a centre (padding with air where it leaves the scan) and paste
 * a crop-sized mask back into a full-size one.
 */
import { Volume, type Vec3, type VoxelArray } from './volume.ts';

export const AIR_HU = -1000;

export type CropCentre = { worldMm: Vec3 } | { voxel: Vec3 };

export interface CropResult<T extends VoxelArray> {
  crop: Volume<T>;
  /** Voxel index in the source of the crop's voxel (0, 0, 0); may be negative. */
  startVoxel: Vec3;
}

/** The voxel nearest a centre given in world mm or voxels. */
export function centreVoxel(vol: Volume, centre: CropCentre): Vec3 {
  const v = 'voxel' in centre ? centre.voxel : vol.worldToVoxel(centre.worldMm);
  return [Math.round(v[0]), Math.round(v[1]), Math.round(v[2])];
}

/**
 * Cuts a box of `sizeVoxels` around the centre: the centre voxel lands at floor(size / 2).
 * Outside the source the crop holds `padValue` (air, -1000 HU, by default; use 0 for masks).
 * The crop keeps the source's spacing and direction; its origin is its first voxel's world point.
 */
export function cropAround<T extends VoxelArray>(vol: Volume<T>, centre: CropCentre, sizeVoxels: Vec3, padValue = AIR_HU): CropResult<T> {
  if (sizeVoxels.some((s) => !Number.isInteger(s) || s < 1))
    throw new RangeError(`cropAround: size must be positive integers, got [${sizeVoxels.join(', ')}]`);
  const c = centreVoxel(vol, centre);
  const start: Vec3 = [c[0] - Math.floor(sizeVoxels[0] / 2), c[1] - Math.floor(sizeVoxels[1] / 2), c[2] - Math.floor(sizeVoxels[2] / 2)];
  const Ctor = vol.data.constructor as new (n: number) => T;
  const out = new Ctor(sizeVoxels[0] * sizeVoxels[1] * sizeVoxels[2]);
  out.fill(padValue as never);
  const [nx, ny, nz] = vol.dims;
  const [sx, sy, sz] = sizeVoxels;
  const i0 = Math.max(0, -start[0]);
  const i1 = Math.min(sx, nx - start[0]);
  for (let k = 0; k < sz; k++) {
    const zk = start[2] + k;
    if (zk < 0 || zk >= nz) continue;
    for (let j = 0; j < sy; j++) {
      const yj = start[1] + j;
      if (yj < 0 || yj >= ny || i1 <= i0) continue;
      const src = start[0] + i0 + nx * (yj + ny * zk);
      (out as VoxelArray).set(vol.data.subarray(src, src + (i1 - i0)) as never, i0 + sx * (j + sy * k));
    }
  }
  const crop = new Volume<T>({
    data: out,
    dims: sizeVoxels,
    spacingMm: vol.spacingMm,
    originMm: vol.voxelToWorld(start),
    direction: vol.direction,
    modality: vol.modality,
  });
  return { crop, startVoxel: start };
}

/**
 * Where a crop's grid sits in a larger grid: the integer voxel offset of the crop's first voxel.
 * Throws when the grids do not line up (other spacing or direction, or a fractional offset
 * beyond `tolVoxel`), since pasting would then need resampling.
 */
export function gridOffset(crop: Volume, target: Volume, tolVoxel = 0.05): Vec3 {
  for (let a = 0; a < 3; a++) {
    if (Math.abs(crop.spacingMm[a]! - target.spacingMm[a]!) > 1e-3 * target.spacingMm[a]!) {
      throw new RangeError(`gridOffset: spacing differs on axis ${a} (${crop.spacingMm[a]} vs ${target.spacingMm[a]} mm)`);
    }
  }
  if (crop.direction.some((d, n) => Math.abs(d - target.direction[n]!) > 1e-4)) throw new RangeError('gridOffset: directions differ');
  const v = target.worldToVoxel(crop.originMm);
  const r: Vec3 = [Math.round(v[0]), Math.round(v[1]), Math.round(v[2])];
  if (v.some((x, a) => Math.abs(x - r[a]!) > tolVoxel))
    throw new RangeError(`gridOffset: the crop is not on the target grid (offset [${v.map((x) => x.toFixed(3)).join(', ')}] voxels)`);
  return r;
}

/**
 * Writes a crop's voxels into `target` at the crop's place (found from its geometry), clipped to
 * the target. mode 'replace' copies, 'max' keeps the larger value (a union for masks), 'fill'
 * writes the crop's non-zero voxels only where the target is still 0 (labels pasted one by one,
 * an earlier label kept where two overlap).
 */
export function pasteCrop<T extends VoxelArray>(target: Volume<T>, crop: Volume, mode: 'replace' | 'max' | 'fill' = 'replace'): Vec3 {
  const start = gridOffset(crop, target);
  const [nx, ny, nz] = target.dims;
  const [sx, sy, sz] = crop.dims;
  const t = target.data;
  const s = crop.data;
  for (let k = 0; k < sz; k++) {
    const zk = start[2] + k;
    if (zk < 0 || zk >= nz) continue;
    for (let j = 0; j < sy; j++) {
      const yj = start[1] + j;
      if (yj < 0 || yj >= ny) continue;
      for (let i = 0; i < sx; i++) {
        const xi = start[0] + i;
        if (xi < 0 || xi >= nx) continue;
        const ti = xi + nx * (yj + ny * zk);
        const v = s[i + sx * (j + sy * k)]!;
        if (mode === 'replace' || (mode === 'max' ? v > t[ti]! : v !== 0 && t[ti] === 0)) t[ti] = v;
      }
    }
  }
  return start;
}

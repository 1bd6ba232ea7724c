/** A binary mask on a 3D voxel grid: x fastest, then y, then z (the NIfTI / ITK order). */
export interface MaskGrid {
  /** Non-zero = inside. Length dims[0] * dims[1] * dims[2]. */
  readonly data: ArrayLike<number>;
  /** [nx, ny, nz] in voxels. */
  readonly dims: readonly [number, number, number];
  /** Voxel size [sx, sy, sz] in mm. */
  readonly spacingMm: readonly [number, number, number];
}

export function voxelCount(dims: readonly [number, number, number]): number {
  return dims[0] * dims[1] * dims[2];
}

export function assertSameGrid(a: MaskGrid, b: MaskGrid, what: string): void {
  for (let d = 0; d < 3; d++) {
    if (a.dims[d] !== b.dims[d]) {
      throw new Error(`${what}: grids differ in size: [${a.dims.join(', ')}] vs [${b.dims.join(', ')}]`);
    }
    if (Math.abs(a.spacingMm[d]! - b.spacingMm[d]!) > 1e-4 * Math.max(1, Math.abs(a.spacingMm[d]!))) {
      throw new Error(`${what}: grids differ in spacing: [${a.spacingMm.join(', ')}] vs [${b.spacingMm.join(', ')}] mm`);
    }
  }
  const n = voxelCount(a.dims);
  if (a.data.length !== n || b.data.length !== n) {
    throw new Error(`${what}: mask data length does not match dims [${a.dims.join(', ')}]`);
  }
}

/** 3D connected components of a binary mask, for keeping the nodule at the prompt. */

/**
 * Keeps the 26-connected component of `mask` that contains `seedVoxel`, or, when the seed is
 * background, the component whose voxel is nearest to it in mm. Returns a new mask (all zeros
 * when the input is empty).
 */
export function keepComponentAt(
  mask: Uint8Array,
  dims: readonly [number, number, number],
  spacingMm: readonly [number, number, number],
  seedVoxel: readonly [number, number, number],
): Uint8Array {
  const [nx, ny, nz] = dims;
  const out = new Uint8Array(mask.length);
  const sx = clampInt(seedVoxel[0], nx),
    sy = clampInt(seedVoxel[1], ny),
    sz = clampInt(seedVoxel[2], nz);
  let start = sx + nx * (sy + ny * sz);
  if (!mask[start]) {
    let best = -1,
      bestD = Infinity;
    for (let z = 0; z < nz; z++)
      for (let y = 0; y < ny; y++)
        for (let x = 0; x < nx; x++) {
          const i = x + nx * (y + ny * z);
          if (!mask[i]) continue;
          const d =
            ((x - seedVoxel[0]) * spacingMm[0]) ** 2 + ((y - seedVoxel[1]) * spacingMm[1]) ** 2 + ((z - seedVoxel[2]) * spacingMm[2]) ** 2;
          if (d < bestD) {
            bestD = d;
            best = i;
          }
        }
    if (best < 0) return out;
    start = best;
  }
  fillComponent26(mask, dims, start, out, 1, new Int32Array(mask.length));
  return out;
}

/**
 * Flood-fills the 26-connected component of `mask` that holds voxel `start` with `id` in `label`
 * (voxels already labelled are left alone) and returns its voxel count. `stack` is scratch space
 * of mask.length entries, reusable between calls.
 */
export function fillComponent26(
  mask: ArrayLike<number>,
  dims: readonly [number, number, number],
  start: number,
  label: Uint8Array | Int32Array,
  id: number,
  stack: Int32Array,
): number {
  const [nx, ny, nz] = dims;
  let top = 0,
    size = 0;
  stack[top++] = start;
  label[start] = id;
  while (top > 0) {
    const i = stack[--top]!;
    size++;
    const x = i % nx,
      y = Math.floor(i / nx) % ny,
      z = Math.floor(i / (nx * ny));
    for (let dz = -1; dz <= 1; dz++) {
      const zz = z + dz;
      if (zz < 0 || zz >= nz) continue;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= ny) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= nx) continue;
          const j = xx + nx * (yy + ny * zz);
          if (mask[j] && !label[j]) {
            label[j] = id;
            stack[top++] = j;
          }
        }
      }
    }
  }
  return size;
}

/**
 * Fills the holes of each axial slice of `mask` in place: background pixels that no 4-connected
 * path of background joins to the slice's border. The LIDC readers outline a nodule's outer edge
 * slice by slice, so their masks hold the air of a cavity or bubble the edge encloses, which the
 * network's probability leaves out. Returns the number of voxels filled.
 */
export function fillHolesInPlane(mask: Uint8Array, dims: readonly [number, number, number]): number {
  const [nx, ny, nz] = dims;
  const plane = nx * ny;
  const outside = new Uint8Array(plane);
  const stack = new Int32Array(plane);
  let filled = 0;
  for (let z = 0; z < nz; z++) {
    const o = z * plane;
    let any = false;
    for (let i = 0; i < plane && !any; i++) any = mask[o + i] !== 0;
    if (!any) continue;
    outside.fill(0);
    let top = 0;
    const seed = (i: number) => {
      if (!mask[o + i] && !outside[i]) {
        outside[i] = 1;
        stack[top++] = i;
      }
    };
    for (let x = 0; x < nx; x++) {
      seed(x);
      seed(x + nx * (ny - 1));
    }
    for (let y = 0; y < ny; y++) {
      seed(nx * y);
      seed(nx - 1 + nx * y);
    }
    while (top > 0) {
      const i = stack[--top]!;
      const x = i % nx;
      if (x > 0) seed(i - 1);
      if (x < nx - 1) seed(i + 1);
      if (i >= nx) seed(i - nx);
      if (i < plane - nx) seed(i + nx);
    }
    for (let i = 0; i < plane; i++)
      if (!mask[o + i] && !outside[i]) {
        mask[o + i] = 1;
        filled++;
      }
  }
  return filled;
}

function clampInt(v: number, n: number): number {
  return Math.min(n - 1, Math.max(0, Math.round(v)));
}

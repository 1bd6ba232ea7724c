import type { MaskGrid } from './grid.ts';

/** Clinical measurements of one segmented nodule. */
export interface NoduleMeasures {
  voxelCount: number;
  volumeMm3: number;
  /** Diameter of the sphere of the same volume, mm. */
  equivalentDiameterMm: number;
  /** Longest diameter in any axial slice, mm (RECIST / LIDC style). */
  longestAxialDiameterMm: number;
  /** Largest extent perpendicular to the longest diameter, in the same slice, mm. */
  perpendicularDiameterMm: number;
  /** Index (z) of the slice holding the longest axial diameter; -1 when the mask is empty. */
  longestDiameterSlice: number;
  /** Mean intensity inside the mask (HU for CT), NaN without an image or with an empty mask. */
  meanHU: number;
  /** Inclusive voxel bounding box [[x0, y0, z0], [x1, y1, z1]]; null when empty. */
  boundingBoxVoxels: [[number, number, number], [number, number, number]] | null;
  /** Centre of mass in voxel coordinates; null when empty. */
  centroidVoxel: [number, number, number] | null;
}

/**
 * Measures a nodule mask. The grid's first two axes are taken as the axial plane (CT acquired
 * axially, as LIDC-IDRI). Diameters are caliper (Feret) widths of the union of pixel squares, so a
 * digitised disc of radius r measures 2r, not 2r minus one pixel.
 */
export function measureNodule(mask: MaskGrid, image?: ArrayLike<number>): NoduleMeasures {
  const [nx, ny, nz] = mask.dims;
  const [sx, sy, sz] = mask.spacingMm;
  const m = mask.data;
  let count = 0,
    sumHU = 0;
  let cx = 0,
    cy = 0,
    cz = 0;
  const lo: [number, number, number] = [Infinity, Infinity, Infinity];
  const hi: [number, number, number] = [-Infinity, -Infinity, -Infinity];
  let best = { d: 0, perp: 0, z: -1 };
  for (let z = 0; z < nz; z++) {
    const boundary: Array<[number, number]> = [];
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const i = x + nx * (y + ny * z);
        if (!m[i]) continue;
        count++;
        if (image) sumHU += image[i]!;
        cx += x;
        cy += y;
        cz += z;
        if (x < lo[0]) lo[0] = x;
        if (x > hi[0]) hi[0] = x;
        if (y < lo[1]) lo[1] = y;
        if (y > hi[1]) hi[1] = y;
        if (z < lo[2]) lo[2] = z;
        if (z > hi[2]) hi[2] = z;
        const inPlaneEdge = x === 0 || x === nx - 1 || y === 0 || y === ny - 1 || !m[i - 1] || !m[i + 1] || !m[i - nx] || !m[i + nx];
        if (inPlaneEdge) boundary.push([x * sx, y * sy]);
      }
    }
    if (boundary.length === 0) continue;
    const slice = sliceDiameters(boundary, sx, sy);
    if (slice.d > best.d) best = { d: slice.d, perp: slice.perp, z };
  }
  const volumeMm3 = count * sx * sy * sz;
  return {
    voxelCount: count,
    volumeMm3,
    equivalentDiameterMm: Math.cbrt((6 * volumeMm3) / Math.PI),
    longestAxialDiameterMm: best.d,
    perpendicularDiameterMm: best.perp,
    longestDiameterSlice: best.z,
    meanHU: image && count > 0 ? sumHU / count : NaN,
    boundingBoxVoxels: count > 0 ? [lo, hi] : null,
    centroidVoxel: count > 0 ? [cx / count, cy / count, cz / count] : null,
  };
}

/** Longest caliper width of a slice's boundary pixels and the width perpendicular to it, mm. */
function sliceDiameters(points: Array<[number, number]>, sx: number, sy: number): { d: number; perp: number } {
  let bestD = -1,
    ux = 1,
    uy = 0;
  const width = (dx: number, dy: number, dist: number): number => dist + Math.abs(dx / (dist || 1)) * sx + Math.abs(dy / (dist || 1)) * sy;
  if (points.length === 1) return { d: Math.max(sx, sy), perp: Math.min(sx, sy) };
  for (let a = 0; a < points.length; a++) {
    const [ax, ay] = points[a]!;
    for (let b = a + 1; b < points.length; b++) {
      const dx = points[b]![0] - ax,
        dy = points[b]![1] - ay;
      const dist = Math.hypot(dx, dy);
      const w = width(dx, dy, dist);
      if (w > bestD) {
        bestD = w;
        ux = dist ? dx / dist : 1;
        uy = dist ? dy / dist : 0;
      }
    }
  }
  // Perpendicular direction (-uy, ux): extent of the projections plus one pixel's footprint.
  let pmin = Infinity,
    pmax = -Infinity;
  for (const [x, y] of points) {
    const p = -uy * x + ux * y;
    if (p < pmin) pmin = p;
    if (p > pmax) pmax = p;
  }
  const perp = pmax - pmin + Math.abs(uy) * sx + Math.abs(ux) * sy;
  return { d: bestD, perp };
}

/**
 * How the benchmark groups nodules: by type (LIDC Texture), by size (metadata diameter) and by
 * whether the nodule touches the pleura, derived from the crop itself.
 */
import type { Vec3 } from '../io/volume.ts';

/** Size groups (mm, metadata diameter); the edges follow Lung-RADS' 6 and the 10/20 mm habits. */
export const SIZE_GROUPS = ['3-6 mm', '6-10 mm', '10-20 mm', '>= 20 mm'] as const;
export type SizeGroup = (typeof SIZE_GROUPS)[number];

export function sizeGroupOf(diameterMm: number): SizeGroup | null {
  if (!Number.isFinite(diameterMm)) return null;
  if (diameterMm < 6) return '3-6 mm';
  if (diameterMm < 10) return '6-10 mm';
  if (diameterMm < 20) return '10-20 mm';
  return '>= 20 mm';
}

export interface AttachmentOptions {
  /** Width of the ring around the nodule that is searched for chest wall (mm, in-plane). */
  ringMm: number;
  /** Tissue denser than this (HU) is wall, vessel or nodule. */
  denseHU: number;
  /** A dense region is chest wall or mediastinum (not a vessel) when it covers this share of the slice and reaches the crop's edge. */
  wallFraction: number;
}

export const DEFAULT_ATTACHMENT: AttachmentOptions = { ringMm: 2, denseHU: -300, wallFraction: 0.1 };

/**
 * Whether the nodule touches the pleura, from the crop alone. On each slice with nodule:
 * the dense voxels (> denseHU) that are not nodule form 2D regions (8-connected); a region is
 * wall (chest wall, mediastinum, diaphragm) when it reaches the crop's edge and covers at least
 * wallFraction of the slice, which vessels, however long, do not. The nodule is attached when a
 * wall region comes within ringMm of its outline on any slice.
 */
export function touchesPleura(
  hu: ArrayLike<number>,
  mask: Uint8Array,
  dims: Vec3,
  spacingMm: Vec3,
  options: Partial<AttachmentOptions> = {},
): boolean {
  const o = { ...DEFAULT_ATTACHMENT, ...options };
  const [nx, ny, nz] = dims;
  const plane = nx * ny;
  const rx = Math.max(1, Math.round(o.ringMm / spacingMm[0])),
    ry = Math.max(1, Math.round(o.ringMm / spacingMm[1]));
  const label = new Int32Array(plane);
  const stack = new Int32Array(plane);
  for (let z = 0; z < nz; z++) {
    const off = z * plane;
    let any = false;
    for (let p = 0; p < plane; p++)
      if (mask[off + p]) {
        any = true;
        break;
      }
    if (!any) continue;
    // Dense non-nodule regions of this slice, with their size and whether they reach the edge.
    label.fill(0);
    const isWall: boolean[] = [false];
    let next = 1;
    for (let p = 0; p < plane; p++) {
      if (label[p] || mask[off + p] || !(hu[off + p]! > o.denseHU)) continue;
      let top = 0,
        size = 0,
        edge = false;
      stack[top++] = p;
      label[p] = next;
      while (top > 0) {
        const q = stack[--top]!;
        size++;
        const x = q % nx,
          y = (q - x) / nx;
        if (x === 0 || y === 0 || x === nx - 1 || y === ny - 1) edge = true;
        for (let dy = -1; dy <= 1; dy++) {
          const yy = y + dy;
          if (yy < 0 || yy >= ny) continue;
          for (let dx = -1; dx <= 1; dx++) {
            const xx = x + dx;
            if (xx < 0 || xx >= nx) continue;
            const r = xx + nx * yy;
            if (label[r] || mask[off + r] || !(hu[off + r]! > o.denseHU)) continue;
            label[r] = next;
            stack[top++] = r;
          }
        }
      }
      isWall.push(edge && size >= o.wallFraction * plane);
      next++;
    }
    // Any wall voxel within the ring (an ellipse of ringMm) around a nodule voxel?
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        if (!mask[off + x + nx * y]) continue;
        for (let dy = -ry; dy <= ry; dy++) {
          const yy = y + dy;
          if (yy < 0 || yy >= ny) continue;
          for (let dx = -rx; dx <= rx; dx++) {
            const xx = x + dx;
            if (xx < 0 || xx >= nx) continue;
            if ((dx * spacingMm[0]) ** 2 + (dy * spacingMm[1]) ** 2 > o.ringMm ** 2 + 1e-9) continue;
            if (isWall[label[xx + nx * yy]!]) return true;
          }
        }
      }
    }
  }
  return false;
}

import type { MaskGrid } from './grid.ts';

/**
 * Squared Euclidean distance transform in mm^2 on an anisotropic grid: for every voxel, the squared
 * distance to the nearest voxel where `isSite` is true (Infinity when there is none).
 * Exact, separable (Felzenszwalb & Huttenlocher 2012), O(voxels).
 */
export function squaredDistanceToSites(
  isSite: Uint8Array,
  dims: readonly [number, number, number],
  spacingMm: readonly [number, number, number],
): Float64Array {
  const [nx, ny, nz] = dims;
  const n = nx * ny * nz;
  if (isSite.length !== n) throw new Error('squaredDistanceToSites: site array length does not match dims');
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = isSite[i] ? 0 : Infinity;
  const maxLen = Math.max(nx, ny, nz);
  const f = new Float64Array(maxLen);
  const d = new Float64Array(maxLen);
  const v = new Int32Array(maxLen);
  const zb = new Float64Array(maxLen + 1);
  const strides = [1, nx, nx * ny];
  const lens = [nx, ny, nz];
  for (let axis = 0; axis < 3; axis++) {
    const len = lens[axis]!;
    const stride = strides[axis]!;
    const w2 = spacingMm[axis]! * spacingMm[axis]!;
    const others = [0, 1, 2].filter((a) => a !== axis);
    const aLen = lens[others[0]!]!,
      bLen = lens[others[1]!]!;
    const aStride = strides[others[0]!]!,
      bStride = strides[others[1]!]!;
    for (let b = 0; b < bLen; b++) {
      for (let a = 0; a < aLen; a++) {
        const base = a * aStride + b * bStride;
        for (let i = 0; i < len; i++) f[i] = out[base + i * stride]!;
        lowerEnvelope(f, len, w2, d, v, zb);
        for (let i = 0; i < len; i++) out[base + i * stride] = d[i]!;
      }
    }
  }
  return out;
}

/** 1D squared distance transform of sampled function f with sample spacing^2 = w2. */
function lowerEnvelope(f: Float64Array, n: number, w2: number, d: Float64Array, v: Int32Array, z: Float64Array): void {
  let k = -1;
  for (let q = 0; q < n; q++) {
    const fq = f[q]!;
    if (fq === Infinity) continue;
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -Infinity;
      z[1] = Infinity;
      continue;
    }
    let s = 0;
    for (;;) {
      const p = v[k]!;
      // Intersection of parabolas rooted at p and q (positions in mm along the axis).
      s = (fq + w2 * q * q - (f[p]! + w2 * p * p)) / (2 * w2 * (q - p));
      if (s <= z[k]!) {
        k--;
        if (k < 0) break;
      } else break;
    }
    k++;
    v[k] = q;
    z[k] = k === 0 ? -Infinity : s;
    z[k + 1] = Infinity;
  }
  if (k < 0) {
    for (let q = 0; q < n; q++) d[q] = Infinity;
    return;
  }
  let j = 0;
  for (let q = 0; q < n; q++) {
    while (z[j + 1]! < q) j++;
    const p = v[j]!;
    d[q] = w2 * (q - p) * (q - p) + f[p]!;
  }
}

/**
 * Boundary voxels of a mask: inside voxels with at least one of their 6 face neighbours outside
 * (or on the grid's edge). The same definition as MONAI's surface (mask minus its erosion).
 */
export function surfaceVoxels(mask: MaskGrid): Uint8Array {
  const [nx, ny, nz] = mask.dims;
  const m = mask.data;
  const out = new Uint8Array(nx * ny * nz);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const i = x + nx * (y + ny * z);
        if (!m[i]) continue;
        const edge =
          x === 0 ||
          x === nx - 1 ||
          y === 0 ||
          y === ny - 1 ||
          z === 0 ||
          z === nz - 1 ||
          !m[i - 1] ||
          !m[i + 1] ||
          !m[i - nx] ||
          !m[i + nx] ||
          !m[i - nx * ny] ||
          !m[i + nx * ny];
        if (edge) out[i] = 1;
      }
    }
  }
  return out;
}

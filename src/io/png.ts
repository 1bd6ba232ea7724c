/**
 * PNG overlays for checking a mask by eye: CT in a lung window, the mask's outline in colour,
 * axial slices through the nodule, one slice or a montage. Encoded with pngjs.
 *
 * Display follows the radiological convention for LPS volumes with the usual axial direction:
 * voxel i runs left to right on screen (patient's right on the left), j top to bottom.
 * Pixels are drawn square; in-plane spacing is nearly always isotropic in CT.
 */
import { PNG } from 'pngjs';
import { writeFileAtomic } from './atomic.ts';
import type { Volume } from './volume.ts';

export interface OverlayOptions {
  /** HU window; default lung window (level -600, width 1500). */
  windowHU?: [number, number];
  /** Which axial slices: 'largest' (most mask voxels; default), 'all-mask' (every slice with mask) or indices. */
  slices?: 'largest' | 'all-mask' | number[];
  /** Tile the chosen slices in this many columns (a montage). Default: 1 slice -> 1, else ceil(sqrt(n)). */
  columns?: number;
  /** Show the whole slice instead of the mask's bounding box plus margin. */
  fullSlice?: boolean;
  /** Margin around the mask's bounding box (voxels). Default 24. */
  marginVoxels?: number;
  /** Integer magnification. Default 2 when cropped, 1 for full slices. */
  scale?: number;
  /** Outline colour, RGB. Default red. */
  colour?: [number, number, number];
  /**
   * A second mask on the same grid (a wider extent, such as the any-reader mask), drawn as its own
   * outline in `outerColour` where the first outline is not; the view's bounds take in both.
   */
  outerMask?: Uint8Array;
  /** The second outline's colour, RGB. Default yellow. */
  outerColour?: [number, number, number];
}

export const LUNG_WINDOW_HU: [number, number] = [-1350, 150];

/** Renders the overlay as a PNG file's bytes. */
export function renderOverlayPng(ct: Volume, mask: Uint8Array, options: OverlayOptions = {}): Uint8Array {
  if (mask.length !== ct.voxelCount) throw new RangeError(`renderOverlayPng: mask has ${mask.length} voxels, the image ${ct.voxelCount}`);
  const outer = options.outerMask;
  if (outer && outer.length !== ct.voxelCount)
    throw new RangeError(`renderOverlayPng: outer mask has ${outer.length} voxels, the image ${ct.voxelCount}`);
  const [nx, ny, nz] = ct.dims;
  const plane = nx * ny;
  const counts = new Int32Array(nz);
  let i0 = nx;
  let i1 = -1;
  let j0 = ny;
  let j1 = -1;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const n = i + nx * j + plane * k;
        if (mask[n]) counts[k]!++;
        else if (!outer?.[n]) continue;
        if (i < i0) i0 = i;
        if (i > i1) i1 = i;
        if (j < j0) j0 = j;
        if (j > j1) j1 = j;
      }
    }
  }
  let slices: number[];
  const sel = options.slices ?? 'largest';
  if (Array.isArray(sel)) {
    slices = sel.filter((k) => Number.isInteger(k) && k >= 0 && k < nz);
    if (slices.length === 0) throw new RangeError(`renderOverlayPng: no valid slice among [${sel.join(', ')}] (0..${nz - 1})`);
  } else if (sel === 'all-mask') {
    slices = [...counts.keys()].filter((k) => counts[k]! > 0);
  } else {
    let best = Math.floor(nz / 2);
    for (let k = 0; k < nz; k++) if (counts[k]! > counts[best]!) best = k;
    slices = [best];
  }
  if (slices.length === 0) slices = [Math.floor(nz / 2)];
  const empty = i1 < 0;
  const full = options.fullSlice || empty;
  const margin = options.marginVoxels ?? 24;
  const x0 = full ? 0 : Math.max(0, i0 - margin);
  const x1 = full ? nx - 1 : Math.min(nx - 1, i1 + margin);
  const y0 = full ? 0 : Math.max(0, j0 - margin);
  const y1 = full ? ny - 1 : Math.min(ny - 1, j1 + margin);
  const tw = x1 - x0 + 1;
  const th = y1 - y0 + 1;
  const scale = Math.max(1, Math.round(options.scale ?? (full ? 1 : 2)));
  const columns = Math.max(1, options.columns ?? (slices.length === 1 ? 1 : Math.ceil(Math.sqrt(slices.length))));
  const rowsOfTiles = Math.ceil(slices.length / columns);
  const gap = slices.length > 1 ? 2 : 0;
  const W = columns * tw * scale + (columns - 1) * gap;
  const H = rowsOfTiles * th * scale + (rowsOfTiles - 1) * gap;
  const png = new PNG({ width: W, height: H });
  png.data.fill(0);
  for (let p = 3; p < png.data.length; p += 4) png.data[p] = 255;
  const [lo, hi] = options.windowHU ?? LUNG_WINDOW_HU;
  const colour = options.colour ?? [255, 40, 40];
  const outerColour = options.outerColour ?? [255, 220, 0];
  // Outline: mask voxels with a 4-neighbour outside the mask (or at the slice border).
  const isEdge = (m: Uint8Array, n: number, x: number, y: number): boolean =>
    m[n] === 1 && (x === 0 || y === 0 || x === nx - 1 || y === ny - 1 || !m[n - 1] || !m[n + 1] || !m[n - nx] || !m[n + nx]);
  slices.forEach((k, t) => {
    const ox = (t % columns) * (tw * scale + gap);
    const oy = Math.floor(t / columns) * (th * scale + gap);
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const n = x + nx * y + plane * k;
        const hu = ct.data[n]!;
        let g = Math.round(((hu - lo) / (hi - lo)) * 255);
        g = g < 0 ? 0 : Math.min(g, 255);
        const rgb = isEdge(mask, n, x, y) ? colour : outer && isEdge(outer, n, x, y) ? outerColour : [g, g, g];
        for (let sy = 0; sy < scale; sy++) {
          for (let sx = 0; sx < scale; sx++) {
            const px = ox + (x - x0) * scale + sx;
            const py = oy + (y - y0) * scale + sy;
            const o = 4 * (px + W * py);
            png.data[o] = rgb[0]!;
            png.data[o + 1] = rgb[1]!;
            png.data[o + 2] = rgb[2]!;
          }
        }
      }
    }
  });
  return new Uint8Array(PNG.sync.write(png));
}

export function writeOverlayPng(path: string, ct: Volume, mask: Uint8Array, options: OverlayOptions = {}): void {
  writeFileAtomic(path, renderOverlayPng(ct, mask, options));
}

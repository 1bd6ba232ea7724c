/**
 * Axial slice sampling shared by training and inference: a fixed-size patch, centred on a point
 * of the slice, at a fixed in-plane spacing, with an optional in-plane affine (augmentation).
 *
 * Patch pixel (u, v) (u along x, fastest) lies at
 *   mm = A * ((u, v) - (P - 1) / 2) * spacingMm      (A: 2x2, identity without augmentation)
 *   voxel = centre + mm / voxelSpacing
 * Image values are bilinear (outside the volume: air); masks are bilinear > 0.5.
 */
import type { Vec3 } from '../io/volume.ts';

export type Normalisation =
  /** Clip HU to [minHU, maxHU] and scale to [0, 1]. */
  | { kind: 'window'; minHU: number; maxHU: number }
  /** Clip HU to [minHU, maxHU], then (HU - meanHU) / stdHU. */
  | { kind: 'zscore'; meanHU: number; stdHU: number; minHU: number; maxHU: number };

export interface SliceConfig {
  /** Patch side in pixels (square patches). */
  patchSize: number;
  /** In-plane spacing of the patch (mm per pixel). */
  spacingMm: number;
  /** Slices per sample: 1 = 2D, k (odd) = 2.5D stack of the slice and its neighbours. */
  contextSlices: number;
  normalisation: Normalisation;
  /**
   * More intensity windows, each one more set of `contextSlices` input channels after the
   * normalisation's: the same slices clipped to [minHU, maxHU] and scaled to [0, 1]. A narrow lung
   * window keeps the contrast of ground glass (-800..-300 HU), which [-1000, 400] squeezes into a
   * third of the range. Absent (older models): none.
   */
  extraWindows?: IntensityWindow[];
  /**
   * The prompt as one more input channel, after the intensity windows (DeepGrow's click map):
   * exp(-d^2 / (2 sigmaMm^2)), d the distance in mm (3D) from each patch pixel to the prompt. The
   * patches are centred on the prompt in-plane, so what it adds is how far the slice lies from the
   * prompt along z, and where the prompt was once the patches are recentred on the nodule found.
   * Absent (older models): none.
   */
  promptChannel?: PromptChannel;
}

export interface PromptChannel {
  /** Width of the Gaussian around the prompt (mm). */
  sigmaMm: number;
}

/** An intensity window (HU): clip to [minHU, maxHU], scale to [0, 1]. */
export interface IntensityWindow {
  minHU: number;
  maxHU: number;
}

export const DEFAULT_SLICE_CONFIG: SliceConfig = {
  patchSize: 64,
  spacingMm: 0.7,
  contextSlices: 1,
  normalisation: { kind: 'window', minHU: -1000, maxHU: 400 },
};

export const AIR_HU = -1000;

export function validateSliceConfig(cfg: SliceConfig): void {
  if (!Number.isInteger(cfg.patchSize) || cfg.patchSize < 1)
    throw new RangeError(`SliceConfig.patchSize must be a positive integer, got ${cfg.patchSize}`);
  if (!(cfg.spacingMm > 0)) throw new RangeError(`SliceConfig.spacingMm must be positive, got ${cfg.spacingMm}`);
  if (!Number.isInteger(cfg.contextSlices) || cfg.contextSlices < 1 || cfg.contextSlices % 2 !== 1) {
    throw new RangeError(`SliceConfig.contextSlices must be an odd positive integer, got ${cfg.contextSlices}`);
  }
  const n = cfg.normalisation;
  if (!(n.maxHU > n.minHU)) throw new RangeError(`SliceConfig.normalisation: maxHU must exceed minHU`);
  if (n.kind === 'zscore' && !(n.stdHU > 0)) throw new RangeError(`SliceConfig.normalisation: stdHU must be positive`);
  const extra = cfg.extraWindows;
  if (extra !== undefined) {
    if (!Array.isArray(extra)) throw new RangeError('SliceConfig.extraWindows must be a list of {minHU, maxHU}');
    extra.forEach((w, i) => {
      const keys = typeof w === 'object' && w !== null ? Object.keys(w) : [];
      if (
        keys.some((k) => k !== 'minHU' && k !== 'maxHU') ||
        !Number.isFinite(w.minHU) ||
        !Number.isFinite(w.maxHU) ||
        !(w.maxHU > w.minHU)
      )
        throw new RangeError(`SliceConfig.extraWindows[${i}] must be {minHU, maxHU} with maxHU > minHU, got ${JSON.stringify(w)}`);
    });
  }
  const prompt = cfg.promptChannel;
  if (prompt !== undefined) {
    const keys = typeof prompt === 'object' && prompt !== null ? Object.keys(prompt) : [];
    if (keys.some((k) => k !== 'sigmaMm') || !Number.isFinite(prompt.sigmaMm) || !(prompt.sigmaMm > 0))
      throw new RangeError(`SliceConfig.promptChannel must be {sigmaMm} with sigmaMm > 0, got ${JSON.stringify(prompt)}`);
  }
}

/**
 * Input channels of the network: `contextSlices` per intensity window (the normalisation's, then
 * the extra ones), then the prompt channel when there is one.
 */
export function inputChannels(cfg: SliceConfig): number {
  return cfg.contextSlices * (1 + (cfg.extraWindows?.length ?? 0)) + (cfg.promptChannel ? 1 : 0);
}

/**
 * The prompt channel of slice z (SliceConfig.promptChannel) into out[off .. off + P*P): for each
 * patch pixel, exp(-d^2 / (2 sigma^2)) with d its distance in mm from `promptVoxel` (voxels of
 * the same volume, any real position, also outside it).
 */
export function samplePromptChannel(
  m: PlaneMap,
  P: number,
  z: number,
  promptVoxel: readonly number[],
  voxelSpacingMm: Vec3,
  sigmaMm: number,
  out: Float32Array,
  off: number,
): void {
  const [sx, sy, sz] = voxelSpacingMm;
  const k = -1 / (2 * sigmaMm * sigmaMm);
  const dz2 = ((z - promptVoxel[2]!) * sz) ** 2;
  let o = off;
  for (let v = 0; v < P; v++) {
    let x = m.x0 + m.bx * v;
    let y = m.y0 + m.by * v;
    for (let u = 0; u < P; u++, x += m.ax, y += m.ay, o++) {
      const dx = (x - promptVoxel[0]!) * sx;
      const dy = (y - promptVoxel[1]!) * sy;
      out[o] = Math.exp((dx * dx + dy * dy + dz2) * k);
    }
  }
}

/** The intensity map of each window, in channel order: the normalisation's, then the extra windows. */
export function intensityMaps(cfg: SliceConfig, jitterScale = 0, jitterShift = 0): IntensityMap[] {
  return [
    intensityMap(cfg.normalisation, jitterScale, jitterShift),
    ...(cfg.extraWindows ?? []).map((w) => intensityMap({ kind: 'window', minHU: w.minHU, maxHU: w.maxHU }, jitterScale, jitterShift)),
  ];
}

/** clamp(HU, lo, hi) * scale + shift reproduces either normalisation. */
export interface IntensityMap {
  lo: number;
  hi: number;
  scale: number;
  shift: number;
}

export function intensityMap(n: Normalisation, jitterScale = 0, jitterShift = 0): IntensityMap {
  let scale: number;
  let shift: number;
  if (n.kind === 'window') {
    scale = 1 / (n.maxHU - n.minHU);
    shift = -n.minHU * scale;
  } else {
    scale = 1 / n.stdHU;
    shift = -n.meanHU * scale;
  }
  return { lo: n.minHU, hi: n.maxHU, scale: scale * (1 + jitterScale), shift: shift * (1 + jitterScale) + jitterShift };
}

/** Voxel position of patch pixel (u, v): x = x0 + ax*u + bx*v, y = y0 + ay*u + by*v. */
export interface PlaneMap {
  x0: number;
  ax: number;
  bx: number;
  y0: number;
  ay: number;
  by: number;
}

/** 2x2 in-plane transform in mm, row-major [a00, a01, a10, a11]. */
export type Affine2 = [number, number, number, number];
export const IDENTITY2: Affine2 = [1, 0, 0, 1];

export function planeMap(centreVoxel: readonly number[], voxelSpacingMm: Vec3, cfg: SliceConfig, A: Affine2 = IDENTITY2): PlaneMap {
  const h = (cfg.patchSize - 1) / 2;
  const sx = cfg.spacingMm / voxelSpacingMm[0];
  const sy = cfg.spacingMm / voxelSpacingMm[1];
  const ax = A[0] * sx;
  const bx = A[1] * sx;
  const ay = A[2] * sy;
  const by = A[3] * sy;
  return { x0: centreVoxel[0]! - h * (ax + bx), ax, bx, y0: centreVoxel[1]! - h * (ay + by), ay, by };
}

/**
 * Samples slices zs of `src` (nx * ny per slice, i fastest) into channel c of out:
 * out[off + c * P*P .. + P*P), normalised. The position and weights of each patch pixel are
 * computed once for all channels. Outside the volume the value is air (AIR_HU).
 */
export function sampleImage(
  src: Int16Array | Float32Array,
  nx: number,
  ny: number,
  zs: readonly number[],
  m: PlaneMap,
  P: number,
  im: IntensityMap,
  out: Float32Array,
  off: number,
): void {
  const plane = P * P;
  const slice = nx * ny;
  const C = zs.length;
  const bases = zs.map((z) => z * slice);
  const { lo, hi, scale, shift } = im;
  const air = (AIR_HU < lo ? lo : Math.min(AIR_HU, hi)) * scale + shift;
  let o = off;
  for (let v = 0; v < P; v++) {
    let x = m.x0 + m.bx * v;
    let y = m.y0 + m.by * v;
    for (let u = 0; u < P; u++, x += m.ax, y += m.ay, o++) {
      const xf = Math.floor(x);
      const yf = Math.floor(y);
      if (xf < -1 || yf < -1 || xf >= nx || yf >= ny) {
        for (let c = 0; c < C; c++) out[o + c * plane] = air;
        continue;
      }
      const fx = x - xf;
      const fy = y - yf;
      const inside = xf >= 0 && yf >= 0 && xf + 1 < nx && yf + 1 < ny;
      for (let c = 0; c < C; c++) {
        const base = bases[c]!;
        let a: number;
        let b: number;
        let cc: number;
        let d: number;
        if (inside) {
          const p = base + xf + nx * yf;
          a = src[p]!;
          b = src[p + 1]!;
          cc = src[p + nx]!;
          d = src[p + nx + 1]!;
        } else {
          a = at(src, base, nx, ny, xf, yf);
          b = at(src, base, nx, ny, xf + 1, yf);
          cc = at(src, base, nx, ny, xf, yf + 1);
          d = at(src, base, nx, ny, xf + 1, yf + 1);
        }
        const hu = a + (b - a) * fx + (cc - a + (a - b - cc + d) * fx) * fy;
        out[o + c * plane] = (hu < lo ? lo : Math.min(hu, hi)) * scale + shift;
      }
    }
  }
}

/**
 * Samples slices zs once per intensity map: window w fills channels w * zs.length .. (w + 1) *
 * zs.length - 1 from `off` (the layout `inputChannels` counts).
 */
export function sampleWindows(
  src: Int16Array | Float32Array,
  nx: number,
  ny: number,
  zs: readonly number[],
  m: PlaneMap,
  P: number,
  maps: readonly IntensityMap[],
  out: Float32Array,
  off: number,
): void {
  maps.forEach((im, w) => {
    sampleImage(src, nx, ny, zs, m, P, im, out, off + w * zs.length * P * P);
  });
}

function at(src: Int16Array | Float32Array, base: number, nx: number, ny: number, x: number, y: number): number {
  return x >= 0 && y >= 0 && x < nx && y < ny ? src[base + x + nx * y]! : AIR_HU;
}

/**
 * Samples slice z of a 0/1 mask: bilinear weight > 0.5 (smoother than nearest under rotation).
 * `empty` (the caller knows the slice has no nodule) skips the work.
 */
export function sampleMask(
  src: Uint8Array,
  nx: number,
  ny: number,
  z: number,
  m: PlaneMap,
  P: number,
  out: Uint8Array,
  off: number,
  empty = false,
): number {
  if (empty) {
    out.fill(0, off, off + P * P);
    return 0;
  }
  const base = z * nx * ny;
  let o = off;
  let count = 0;
  for (let v = 0; v < P; v++) {
    let x = m.x0 + m.bx * v;
    let y = m.y0 + m.by * v;
    for (let u = 0; u < P; u++, x += m.ax, y += m.ay, o++) {
      const xf = Math.floor(x);
      const yf = Math.floor(y);
      if (xf < -1 || yf < -1 || xf >= nx || yf >= ny) {
        out[o] = 0;
        continue;
      }
      const fx = x - xf;
      const fy = y - yf;
      let a: number;
      let b: number;
      let c: number;
      let d: number;
      if (xf >= 0 && yf >= 0 && xf + 1 < nx && yf + 1 < ny) {
        const p = base + xf + nx * yf;
        a = src[p]!;
        b = src[p + 1]!;
        c = src[p + nx]!;
        d = src[p + nx + 1]!;
        if ((a | b | c | d) === 0) {
          out[o] = 0;
          continue;
        }
      } else {
        a = mk(src, base, nx, ny, xf, yf);
        b = mk(src, base, nx, ny, xf + 1, yf);
        c = mk(src, base, nx, ny, xf, yf + 1);
        d = mk(src, base, nx, ny, xf + 1, yf + 1);
      }
      const w = a + (b - a) * fx + (c - a + (a - b - c + d) * fx) * fy;
      const bit = w > 0.5 ? 1 : 0;
      out[o] = bit;
      count += bit;
    }
  }
  return count;
}

function mk(src: Uint8Array | Float32Array, base: number, nx: number, ny: number, x: number, y: number): number {
  return x >= 0 && y >= 0 && x < nx && y < ny ? src[base + x + nx * y]! : 0;
}

/** Samples slice z of a float map in [0, 1] (the readers' share), bilinear, outside 0. */
export function sampleSoft(
  src: Float32Array,
  nx: number,
  ny: number,
  z: number,
  m: PlaneMap,
  P: number,
  out: Float32Array,
  off: number,
): void {
  const base = z * nx * ny;
  let o = off;
  for (let v = 0; v < P; v++) {
    let x = m.x0 + m.bx * v;
    let y = m.y0 + m.by * v;
    for (let u = 0; u < P; u++, x += m.ax, y += m.ay, o++) {
      const xf = Math.floor(x);
      const yf = Math.floor(y);
      if (xf < -1 || yf < -1 || xf >= nx || yf >= ny) {
        out[o] = 0;
        continue;
      }
      const fx = x - xf;
      const fy = y - yf;
      const a = mk(src, base, nx, ny, xf, yf),
        b = mk(src, base, nx, ny, xf + 1, yf),
        c = mk(src, base, nx, ny, xf, yf + 1),
        d = mk(src, base, nx, ny, xf + 1, yf + 1);
      out[o] = a + (b - a) * fx + (c - a + (a - b - c + d) * fx) * fy;
    }
  }
}

/** The k slices of a stack centred on z, with edge slices repeated past the ends. */
export function stackSlices(z: number, nz: number, k: number): number[] {
  const h = (k - 1) / 2;
  const out: number[] = [];
  for (let d = -h; d <= h; d++) out.push(Math.min(nz - 1, Math.max(0, z + d)));
  return out;
}

/**
 * Synthetic CT crops of lung nodules with exact masks, for pretraining and for tests without
 * data. A crop is an analytic scene in mm around the nodule (at the crop's centre, as in
 * lidc-crops):
 * - lung parenchyma at about -850 HU with smooth texture and a few small vessels;
 * - a nodule: a sphere, lobulated (smooth lobes added to its radius along random directions)
 *   or spiculated (lobulated plus thin tapering spikes); solid (soft tissue), ground-glass, or
 *   part-solid (ground glass around a solid core);
 * - optionally attached to the pleura (chest wall beyond a plane that cuts the nodule: the cut
 *   part is wall, not nodule) or to a vessel (a tube through the nodule's edge);
 * - partial volume: each voxel averages s x s x s sub-samples of the scene (near edges; elsewhere
 *   the centre's value is exact), then acquisition noise.
 * The mask is the voxels whose sub-samples are at least half nodule: it follows the same scene
 * as the image, so it is exact up to the sub-sampling. Everything is drawn from one seed.
 */
import { mulberry32, type Rng } from '../data/prng.ts';
import type { Vec3 } from '../io/volume.ts';

export const NODULE_TYPES = ['solid', 'part-solid', 'ground-glass'] as const;
export const NODULE_SHAPES = ['round', 'lobulated', 'spiculated'] as const;
export const ATTACHMENTS = ['none', 'pleura', 'vessel'] as const;
export type NoduleType = (typeof NODULE_TYPES)[number];
export type NoduleShape = (typeof NODULE_SHAPES)[number];
export type Attachment = (typeof ATTACHMENTS)[number];

export interface SynthParams {
  type: NoduleType;
  shape: NoduleShape;
  attachment: Attachment;
  /** Nominal diameter (of the sphere before lobes and spikes). */
  diameterMm: number;
  /** Voxel spacing [x, y, z]. */
  spacingMm: Vec3;
  /** Crop size in voxels. */
  dims: Vec3;
  /** Standard deviation of the acquisition noise. */
  noiseHU: number;
  /** Sub-samples per axis for partial volume (1 = none). */
  supersample: number;
  /** Small background vessels. */
  backgroundVessels: number;
  /**
   * Ground glass only: the width (mm) over which its density fades into the lung at its edge
   * (0: a sharp edge). The mask stays the half-density surface; `SynthCase.share` is the density.
   */
  groundGlassEdgeMm?: number;
  /** Ground glass only: the standard deviation (HU) of a smooth texture inside it (0: uniform). */
  groundGlassTextureHU?: number;
}

export interface SynthCase {
  params: SynthParams;
  /** int16 HU, x fastest. */
  image: Int16Array;
  /** 0/1, same grid. */
  mask: Uint8Array;
  /**
   * With a soft ground-glass edge: each voxel's nodule density (0..1, averaged over its
   * sub-samples), whose 0.5 level is the mask; a stand-in for the share of readers who would
   * include the voxel. Null otherwise.
   */
  share: Float32Array | null;
  /** Volume of the mask (voxels x voxel volume). */
  maskVolumeMm3: number;
}

type V = [number, number, number];

const LUNG_HU = -850;
const SOLID_HU = 30;
const WALL_HU = 40;
const VESSEL_HU = 40;

function gauss(rng: Rng): number {
  const u = Math.max(1e-12, rng());
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

function unitVector(rng: Rng): V {
  const z = 2 * rng() - 1;
  const t = 2 * Math.PI * rng();
  const r = Math.sqrt(1 - z * z);
  return [r * Math.cos(t), r * Math.sin(t), z];
}

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[Math.floor(rng() * xs.length)]!;
}

/** Draws a varied case: type, shape, attachment, size, spacing and noise. */
export function drawSynthParams(rng: Rng, overrides: Partial<SynthParams> = {}): SynthParams {
  const type = overrides.type ?? pick(rng, NODULE_TYPES);
  const shape = overrides.shape ?? pick(rng, NODULE_SHAPES);
  const attachment = overrides.attachment ?? pick(rng, ATTACHMENTS);
  // Log-uniform 4..28 mm: many small nodules, some large, as in LIDC.
  const diameterMm = overrides.diameterMm ?? Math.exp(Math.log(4) + rng() * Math.log(28 / 4));
  const inPlane = 0.55 + 0.3 * rng();
  const spacingMm: Vec3 = overrides.spacingMm ?? [inPlane, inPlane, pick(rng, [0.625, 1, 1.25, 1.5, 2, 2.5])];
  // The crop shows the nodule and some surroundings, like lidc-crops (about 3 diameters, >= 32 mm).
  const extentMm = Math.max(32, 2.6 * diameterMm);
  const dims: Vec3 = overrides.dims ?? [
    Math.round(extentMm / spacingMm[0]),
    Math.round(extentMm / spacingMm[1]),
    Math.max(3, Math.round((0.8 * extentMm) / spacingMm[2])),
  ];
  return {
    type,
    shape,
    attachment,
    diameterMm,
    spacingMm,
    dims,
    noiseHU: overrides.noiseHU ?? 10 + 25 * rng(),
    supersample: overrides.supersample ?? 3,
    backgroundVessels: overrides.backgroundVessels ?? Math.floor(rng() * 4),
    // Not drawn (no draw from the stream): a case without them is the same as before they existed.
    ...(overrides.groundGlassEdgeMm !== undefined ? { groundGlassEdgeMm: overrides.groundGlassEdgeMm } : {}),
    ...(overrides.groundGlassTextureHU !== undefined ? { groundGlassTextureHU: overrides.groundGlassTextureHU } : {}),
  };
}

interface Lobe {
  dir: V;
  amp: number;
}
interface Spike {
  a: V;
  b: V;
  r0: number;
  r1: number;
}
interface Tube {
  p: V;
  d: V;
  r: number;
}

/** The scene: signed distances (mm, negative inside; approximate away from the surface) and HU. */
class Scene {
  readonly r0: number;
  readonly lobes: Lobe[] = [];
  readonly spikes: Spike[] = [];
  readonly coreR: number;
  readonly core: V;
  readonly noduleHU: number;
  readonly coreHU: number;
  readonly wall: { n: V; d: number } | null = null;
  readonly tubes: Tube[] = [];

  constructor(
    readonly p: SynthParams,
    rng: Rng,
  ) {
    this.r0 = p.diameterMm / 2;
    if (p.shape !== 'round') {
      const n = 3 + Math.floor(rng() * 4);
      for (let i = 0; i < n; i++) this.lobes.push({ dir: unitVector(rng), amp: 0.1 + 0.25 * rng() });
    }
    if (p.shape === 'spiculated') {
      const n = 5 + Math.floor(rng() * 8);
      for (let i = 0; i < n; i++) {
        const d = unitVector(rng);
        const start = this.radius(d) * 0.85;
        const len = this.r0 * (0.4 + 0.9 * rng()) + 1.5;
        const tilt = unitVector(rng);
        const dir = norm(add(d, scale(tilt, 0.25)));
        this.spikes.push({ a: scale(d, start), b: add(scale(d, start), scale(dir, len)), r0: 0.45 + 0.5 * rng(), r1: 0.15 + 0.1 * rng() });
      }
    }
    // Solid tissue, ground glass (about -700..-450 HU), or ground glass around a solid core.
    const ggo = -700 + 250 * rng();
    this.noduleHU = p.type === 'solid' ? SOLID_HU - 30 + 60 * rng() : ggo;
    this.coreHU = SOLID_HU - 30 + 60 * rng();
    this.coreR = p.type === 'part-solid' ? this.r0 * (0.3 + 0.3 * rng()) : 0;
    const off = unitVector(rng);
    this.core = scale(off, this.r0 * 0.15 * rng());
    if (p.attachment === 'pleura') {
      // A wall plane cutting the nodule at 0.55..0.9 of its radius, mostly lateral (the chest wall).
      const t = 2 * Math.PI * rng();
      const n = norm([Math.cos(t), Math.sin(t), 0.3 * (2 * rng() - 1)]);
      this.wall = { n, d: this.r0 * (0.55 + 0.35 * rng()) };
    } else if (p.attachment === 'vessel') {
      const r = 0.8 + 1.2 * rng();
      const dir = unitVector(rng);
      // Through a point at 0.6..1.0 radius from the centre, perpendicular to the vessel.
      const side = norm(cross(dir, unitVector(rng)));
      this.tubes.push({ p: scale(side, this.r0 * (0.6 + 0.4 * rng())), d: dir, r });
    }
    const half: V = [(p.dims[0] * p.spacingMm[0]) / 2, (p.dims[1] * p.spacingMm[1]) / 2, (p.dims[2] * p.spacingMm[2]) / 2];
    for (let i = 0; i < p.backgroundVessels; i++) {
      // Small vessels away from the nodule (they are not nodule, so they must not touch it).
      for (let tries = 0; tries < 20; tries++) {
        const q: V = [(2 * rng() - 1) * half[0], (2 * rng() - 1) * half[1], (2 * rng() - 1) * half[2]];
        const d = unitVector(rng);
        const r = 0.4 + 0.8 * rng();
        const along = dot(scale(q, -1), d);
        const closest = add(q, scale(d, along));
        if (len(closest) > this.r0 * 1.8 + r + 2) {
          this.tubes.push({ p: q, d, r });
          break;
        }
      }
    }
  }

  /** Nodule radius along unit direction u. */
  radius(u: V): number {
    let f = 1;
    for (const l of this.lobes) {
      const c = dot(u, l.dir);
      if (c > 0) f += l.amp * c ** 6;
    }
    return this.r0 * f;
  }

  /** Signed distance to the nodule body and spikes (before the wall cut). */
  noduleDistance(x: V): number {
    const r = len(x);
    let d = r - (r > 1e-9 ? this.radius(scale(x, 1 / r)) : this.r0);
    for (const s of this.spikes) d = Math.min(d, spikeDistance(x, s));
    return d;
  }

  wallDistance(x: V): number {
    return this.wall ? this.wall.d - dot(x, this.wall.n) : Infinity;
  }

  tubeDistance(x: V): number {
    let d = Infinity;
    for (const t of this.tubes) {
      const v = sub(x, t.p);
      const along = dot(v, t.d);
      d = Math.min(d, Math.sqrt(Math.max(0, dot(v, v) - along * along)) - t.r);
    }
    return d;
  }

  /** Smallest |distance| to any boundary: far from all, a voxel is one material throughout. */
  boundaryDistance(x: V): number {
    let d = Math.max(0, Math.abs(this.noduleDistance(x)) - this.softEdgeMm / 2);
    d = Math.min(d, Math.abs(this.wallDistance(x)), Math.abs(this.tubeDistance(x)));
    if (this.coreR > 0) d = Math.min(d, Math.abs(len(sub(x, this.core)) - this.coreR));
    return d;
  }

  /**
   * [HU, nodule?, density] at a point: wall beats nodule (the pleura cuts it), nodule beats vessel.
   * A soft ground-glass edge fades the density from 1 to 0 across the surface (0.5 on it).
   */
  sample(x: V): [number, boolean, number] {
    if (this.wallDistance(x) < 0) return [WALL_HU, false, 0];
    const d = this.noduleDistance(x);
    const edge = this.softEdgeMm;
    const density = edge > 0 ? Math.max(0, Math.min(1, 0.5 - d / edge)) : d < 0 ? 1 : 0;
    if (d < 0 && this.coreR > 0 && len(sub(x, this.core)) < this.coreR) return [this.coreHU, true, 1];
    const background = this.tubeDistance(x) < 0 ? VESSEL_HU : LUNG_HU;
    if (density > 0) return [background + density * (this.noduleHU - background), d < 0, density];
    return [background, false, 0];
  }

  /** The ground glass's soft edge width (mm); 0 for solid nodules or a sharp edge. */
  get softEdgeMm(): number {
    return this.p.type === 'solid' ? 0 : (this.p.groundGlassEdgeMm ?? 0);
  }
}

function spikeDistance(x: V, s: Spike): number {
  const ab = sub(s.b, s.a);
  const t = Math.max(0, Math.min(1, dot(sub(x, s.a), ab) / dot(ab, ab)));
  return len(sub(x, add(s.a, scale(ab, t)))) - (s.r0 + (s.r1 - s.r0) * t);
}

/** Renders one crop from its parameters and a seed. */
export function renderSynthCase(p: SynthParams, seed: number): SynthCase {
  const rng = mulberry32(seed);
  const scene = new Scene(p, rng);
  const [nx, ny, nz] = p.dims;
  const [sx, sy, sz] = p.spacingMm;
  const s = Math.max(1, Math.round(p.supersample));
  const n = nx * ny * nz;
  const hu = new Float32Array(n);
  const mask = new Uint8Array(n);
  const share = scene.softEdgeMm > 0 ? new Float32Array(n) : null;
  const cx = (nx - 1) / 2,
    cy = (ny - 1) / 2,
    cz = (nz - 1) / 2;
  // Beyond this distance from every boundary a voxel's sub-samples all agree with its centre.
  const halfDiag = 0.5 * Math.hypot(sx, sy, sz);
  const margin = 1.6 * halfDiag + 0.05;
  const x: V = [0, 0, 0];
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const idx = i + nx * (j + ny * k);
        x[0] = (i - cx) * sx;
        x[1] = (j - cy) * sy;
        x[2] = (k - cz) * sz;
        if (s === 1 || scene.boundaryDistance(x) > margin) {
          const [v, inside, density] = scene.sample(x);
          hu[idx] = v;
          mask[idx] = inside ? 1 : 0;
          if (share) share[idx] = density;
          continue;
        }
        let sum = 0,
          count = 0,
          densitySum = 0;
        for (let c = 0; c < s; c++) {
          for (let b = 0; b < s; b++) {
            for (let a = 0; a < s; a++) {
              const q: V = [(i - cx + (a + 0.5) / s - 0.5) * sx, (j - cy + (b + 0.5) / s - 0.5) * sy, (k - cz + (c + 0.5) / s - 0.5) * sz];
              const [v, inside, density] = scene.sample(q);
              sum += v;
              densitySum += density;
              if (inside) count++;
            }
          }
        }
        hu[idx] = sum / (s * s * s);
        mask[idx] = 2 * count >= s * s * s ? 1 : 0;
        if (share) share[idx] = densitySum / (s * s * s);
      }
    }
  }
  // Parenchymal texture (smooth, about 25 HU) on lung voxels only, then acquisition noise everywhere.
  const texture = smoothNoise(p.dims, rng, 2);
  // Ground glass's own texture (drawn only when asked, so that other cases keep their random stream).
  const ggTextureHU = p.type === 'solid' ? 0 : (p.groundGlassTextureHU ?? 0);
  const ggTexture = ggTextureHU > 0 ? smoothNoise(p.dims, rng, 1) : null;
  const image = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const lungShare = Math.max(0, Math.min(1, (hu[i]! - SOLID_HU) / (LUNG_HU - SOLID_HU)));
    // Texture where the voxel is ground glass: its density (or mask) and not the solid core.
    const gg = ggTexture && hu[i]! < scene.noduleHU + 150 ? (share ? share[i]! : mask[i]!) * ggTextureHU * ggTexture[i]! : 0;
    const v = hu[i]! + lungShare * 25 * texture[i]! + gg + p.noiseHU * gauss(rng);
    image[i] = Math.max(-1024, Math.min(3071, Math.round(v)));
  }
  let voxels = 0;
  for (let i = 0; i < n; i++) voxels += mask[i]!;
  return { params: p, image, mask, share, maskVolumeMm3: voxels * sx * sy * sz };
}

/** White noise box-blurred three times per axis (about Gaussian), rescaled to unit variance. */
function smoothNoise(dims: Vec3, rng: Rng, radius: number): Float32Array {
  const [nx, ny, nz] = dims;
  let a = new Float32Array(nx * ny * nz);
  for (let i = 0; i < a.length; i++) a[i] = gauss(rng);
  let b = new Float32Array(a.length);
  const strides: Array<[number, number]> = [
    [1, nx],
    [nx, ny],
    [nx * ny, nz],
  ];
  for (let pass = 0; pass < 3; pass++) {
    for (const [stride, size] of strides) {
      for (let i = 0; i < a.length; i++) {
        const pos = Math.floor(i / stride) % size;
        let sum = 0,
          cnt = 0;
        for (let d = -radius; d <= radius; d++) {
          const q = pos + d;
          if (q < 0 || q >= size) continue;
          sum += a[i + d * stride]!;
          cnt++;
        }
        b[i] = sum / cnt;
      }
      [a, b] = [b, a];
    }
  }
  let m = 0,
    v = 0;
  for (let i = 0; i < a.length; i++) m += a[i]!;
  m /= a.length;
  for (let i = 0; i < a.length; i++) v += (a[i]! - m) ** 2;
  const sd = Math.sqrt(v / a.length) || 1;
  for (let i = 0; i < a.length; i++) a[i] = (a[i]! - m) / sd;
  return a;
}

function add(a: V, b: V): V {
  return [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
}
function sub(a: V, b: V): V {
  return [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
}
function scale(a: V, s: number): V {
  return [a[0] * s, a[1] * s, a[2] * s];
}
function dot(a: V, b: V): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}
function len(a: V): number {
  return Math.sqrt(dot(a, a));
}
function norm(a: V): V {
  return scale(a, 1 / (len(a) || 1));
}
function cross(a: V, b: V): V {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

/**
 * Training samples from the in-memory crops: one sample per axial slice of every crop, as a 2D
 * patch (contextSlices = 1) or a 2.5D stack, with its labels, in plain typed arrays (NCHW).
 */
import type { CropCase } from './crops.ts';
import { cropCentreVoxel } from './crops.ts';
import { mixSeed, mulberry32, shuffle, uniform, type Rng } from './prng.ts';
import { sizeClassOf, type SizeBins } from './size-bins.ts';
import { NODULE_TYPES } from './nodule-type.ts';
import type { Vec3 } from '../io/volume.ts';
import {
  inputChannels,
  intensityMaps,
  planeMap,
  sampleImage,
  samplePromptChannel,
  sampleMask,
  sampleSoft,
  sampleWindows,
  stackSlices,
  validateSliceConfig,
  type Affine2,
  type SliceConfig,
} from './slices.ts';

export interface AugmentConfig {
  /** Mirror x and/or y, each with probability 1/2. */
  flip: boolean;
  /** Turn by a random multiple of 90 degrees. */
  rot90: boolean;
  /** With this probability, also rotate by up to +-maxRotateDeg and zoom within zoomRange. */
  rotateScaleProb: number;
  maxRotateDeg: number;
  /** Zoom factor range; 1.1 shows the nodule 10% larger. */
  zoomRange: [number, number];
  /** Normalised intensities become x * (1 + a) + b, a in +-intensityScale, b in +-intensityShift. */
  intensityScale: number;
  intensityShift: number;
  /**
   * With this probability, the patch is centred on a random voxel of the nodule (any slice's)
   * instead of the crop's centre: a click or a detector's candidate is rarely at the nodule's
   * centre, and a network that only ever saw centred nodules loses the rest of the nodule.
   */
  shiftOnNoduleProb: number;
}

export const DEFAULT_AUGMENT: AugmentConfig = {
  flip: true,
  rot90: true,
  rotateScaleProb: 0.5,
  maxRotateDeg: 15,
  zoomRange: [0.9, 1.1],
  intensityScale: 0.1,
  intensityShift: 0.05,
  shiftOnNoduleProb: 0,
};

export interface SliceBatch {
  /** [N, C, H, W], C = inputChannels (contextSlices per intensity window), normalised intensities. */
  image: Float32Array;
  imageShape: [number, number, number, number];
  /** [N, 1, H, W], 0/1: the nodule in the centre slice. */
  mask: Uint8Array;
  maskShape: [number, number, number, number];
  /**
   * [N, 1, H, W], the training target: the share of readers who marked the pixel for cases
   * loaded with agreement labels, else the mask as 0/1.
   */
  target: Float32Array;
  /** [N]: 0 none, 1 small, 2 medium, 3 large (area in the original slice, see SizeBins). */
  sizeClass: Int32Array;
  /** [N]: 1 when the centre slice holds nodule. */
  presence: Uint8Array;
  /**
   * [N]: the nodule's type (index into NODULE_TYPES) where the centre slice holds nodule and the
   * case's type is known, else -1 (NO_TYPE of the losses: ignored).
   */
  noduleType: Int32Array;
  /** [N]: nodule area of the centre slice in the original crop (mm2). */
  areaMm2: Float32Array;
  /** [N]: which case (index into dataset.cases) and which slice each sample is. */
  caseIndex: Int32Array;
  slice: Int32Array;
}

export interface SliceDatasetOptions {
  cases: readonly CropCase[];
  slice: SliceConfig;
  sizeBins: SizeBins;
  /** null or absent: no augmentation. */
  augment?: AugmentConfig | null;
  /** 'all' slices (default) or only those with nodule. */
  slices?: 'all' | 'nodule';
  /**
   * Keep each case's unaugmented patches once made (default true): samples whose augmentation
   * is only flips and 90-degree turns (and every validation sample) are then a permutation of
   * them instead of a new resampling. About 20 KB per slice at 64x64.
   */
  cache?: boolean;
}

export class SliceDataset {
  readonly cases: readonly CropCase[];
  readonly config: SliceConfig;
  readonly sizeBins: SizeBins;
  readonly augment: AugmentConfig | null;
  /** Sample n is slice sampleSlice[n] of case sampleCase[n]. */
  readonly sampleCase: Int32Array;
  readonly sampleSlice: Int32Array;
  private readonly cache: boolean;
  private readonly baseImage: Array<Float32Array | undefined> = [];
  private readonly baseMask: Array<Uint8Array | undefined> = [];
  private readonly footprints: Array<Int32Array | undefined> = [];
  private readonly baseTarget: Array<Float32Array | undefined> = [];
  private readonly permutations = new Map<string, Int32Array>();

  constructor(options: SliceDatasetOptions) {
    validateSliceConfig(options.slice);
    this.cases = options.cases;
    this.config = { ...options.slice };
    this.sizeBins = options.sizeBins;
    this.augment = options.augment ?? null;
    this.cache = options.cache ?? true;
    const cs: number[] = [];
    const zs: number[] = [];
    options.cases.forEach((c, ci) => {
      for (let z = 0; z < c.image.dims[2]; z++) {
        if (options.slices === 'nodule' && !(c.sliceAreaMm2[z]! > 0)) continue;
        cs.push(ci);
        zs.push(z);
      }
    });
    this.sampleCase = Int32Array.from(cs);
    this.sampleSlice = Int32Array.from(zs);
  }

  get length(): number {
    return this.sampleCase.length;
  }

  /**
   * The samples at `indices`. With a seed and an augmentation config, each sample is augmented
   * from its own stream mixSeed(seed, sampleIndex), so a sample's augmentation depends only on
   * (seed, index), not on batch size or order.
   */
  batch(indices: ArrayLike<number>, seed: number | null = null): SliceBatch {
    const n = indices.length;
    const P = this.config.patchSize;
    const C = inputChannels(this.config);
    const stack = this.config.contextSlices;
    // Intensity windows; the prompt channel, when there is one, comes after them.
    const windows = (C - (this.config.promptChannel ? 1 : 0)) / stack;
    const plane = P * P;
    const out: SliceBatch = {
      image: new Float32Array(n * C * plane),
      imageShape: [n, C, P, P],
      mask: new Uint8Array(n * plane),
      maskShape: [n, 1, P, P],
      target: new Float32Array(n * plane),
      sizeClass: new Int32Array(n),
      presence: new Uint8Array(n),
      noduleType: new Int32Array(n),
      areaMm2: new Float32Array(n),
      caseIndex: new Int32Array(n),
      slice: new Int32Array(n),
    };
    for (let b = 0; b < n; b++) {
      const s = indices[b]!;
      if (!(s >= 0 && s < this.length)) throw new RangeError(`SliceDataset.batch: index ${s} out of range [0, ${this.length})`);
      const ci = this.sampleCase[s]!;
      const z = this.sampleSlice[s]!;
      const c = this.cases[ci]!;
      const [nx, ny, nz] = c.image.dims;
      let A: Affine2 = [1, 0, 0, 1];
      let jitterScale = 0;
      let jitterShift = 0;
      let centre = cropCentreVoxel(c.image.dims);
      let shifted = false;
      const promptChannel = this.config.promptChannel;
      let prompt: Vec3 = c.promptVoxel ?? centre;
      if (this.augment && seed !== null) {
        const rng = mulberry32(mixSeed(seed, s));
        const drawn = drawAugment(this.augment, rng);
        A = drawn.A;
        jitterScale = drawn.jitterScale;
        jitterShift = drawn.jitterShift;
        const at = drawn.shiftPick !== null || (promptChannel && !c.promptVoxel) ? this.footprintOf(ci) : null;
        if (drawn.shiftPick !== null && at?.length) {
          const v = voxelOfIndex(at[Math.min(at.length - 1, Math.floor(drawn.shiftPick * at.length))]!, nx, ny);
          centre = [v[0], v[1], centre[2]];
          shifted = true;
          if (!c.promptVoxel) prompt = v;
        } else if (promptChannel && !c.promptVoxel && at?.length && rng() < PROMPT_ON_NODULE_PROB) {
          // Drawn only with a prompt channel, so that other configs' streams are unchanged.
          prompt = voxelOfIndex(at[Math.min(at.length - 1, Math.floor(rng() * at.length))]!, nx, ny);
        }
      }
      const area = c.sliceAreaMm2[z]!;
      const perm = this.cache && !shifted ? this.permutation(A) : null;
      if (perm) {
        // A is a flip/turn: the patch is the cached unaugmented one, permuted; jitter is linear.
        const bi = this.baseImageOf(ci);
        const bm = this.baseMask[ci]!;
        const gain = 1 + jitterScale;
        const zs = stackSlices(z, nz, stack);
        for (let w = 0; w < windows; w++) {
          zs.forEach((zz, ch) => {
            const src = (w * nz + zz) * plane;
            const dst = (b * C + w * stack + ch) * plane;
            for (let p = 0; p < plane; p++) out.image[dst + p] = bi[src + perm[p]!]! * gain + jitterShift;
          });
        }
        for (let p = 0; p < plane; p++) out.mask[b * plane + p] = bm[z * plane + perm[p]!]!;
        const bt = this.baseTarget[ci];
        if (bt) for (let p = 0; p < plane; p++) out.target[b * plane + p] = bt[z * plane + perm[p]!]!;
        else for (let p = 0; p < plane; p++) out.target[b * plane + p] = out.mask[b * plane + p]!;
      } else {
        const map = planeMap(centre, c.image.spacingMm, this.config, A);
        const maps = intensityMaps(this.config, jitterScale, jitterShift);
        sampleWindows(c.image.data, nx, ny, stackSlices(z, nz, stack), map, P, maps, out.image, b * C * plane);
        sampleMask(c.mask, nx, ny, z, map, P, out.mask, b * plane, !(area > 0));
        if (c.target) sampleSoft(c.target, nx, ny, z, map, P, out.target, b * plane);
        else for (let p = 0; p < plane; p++) out.target[b * plane + p] = out.mask[b * plane + p]!;
      }
      if (promptChannel) {
        const map = planeMap(centre, c.image.spacingMm, this.config, A);
        samplePromptChannel(map, P, z, prompt, c.image.spacingMm, promptChannel.sigmaMm, out.image, (b * C + C - 1) * plane);
      }
      out.areaMm2[b] = area;
      out.sizeClass[b] = sizeClassOf(area, this.sizeBins);
      out.presence[b] = area > 0 ? 1 : 0;
      out.noduleType[b] = area > 0 && c.noduleType ? NODULE_TYPES.indexOf(c.noduleType) : -1;
      out.caseIndex[b] = ci;
      out.slice[b] = z;
    }
    return out;
  }

  /** The indices of case ci's nodule voxels, over all slices; made once. */
  private footprintOf(ci: number): Int32Array {
    const cached = this.footprints[ci];
    if (cached) return cached;
    const c = this.cases[ci]!;
    const at: number[] = [];
    for (let i = 0; i < c.mask.length; i++) if (c.mask[i]) at.push(i);
    const out = Int32Array.from(at);
    this.footprints[ci] = out;
    return out;
  }

  /** Every slice of case ci, unaugmented and normalised once per window ([window][z][plane]), and its masks, made once. */
  private baseImageOf(ci: number): Float32Array {
    const cached = this.baseImage[ci];
    if (cached) return cached;
    const c = this.cases[ci]!;
    const [nx, ny, nz] = c.image.dims;
    const P = this.config.patchSize;
    const plane = P * P;
    const maps = intensityMaps(this.config);
    const image = new Float32Array(maps.length * nz * plane);
    const mask = new Uint8Array(nz * plane);
    const map = planeMap(cropCentreVoxel(c.image.dims), c.image.spacingMm, this.config);
    const target = c.target ? new Float32Array(nz * plane) : undefined;
    for (let z = 0; z < nz; z++) {
      maps.forEach((im, w) => {
        sampleImage(c.image.data, nx, ny, [z], map, P, im, image, (w * nz + z) * plane);
      });
      sampleMask(c.mask, nx, ny, z, map, P, mask, z * plane, !(c.sliceAreaMm2[z]! > 0));
      if (c.target && target) sampleSoft(c.target, nx, ny, z, map, P, target, z * plane);
    }
    this.baseImage[ci] = image;
    this.baseMask[ci] = mask;
    this.baseTarget[ci] = target;
    return image;
  }

  /**
   * For a flip/turn A (a signed permutation matrix), the source pixel of each patch pixel:
   * out(u, v) = base(u', v') with (u', v') - h = A ((u, v) - h), h = (P - 1) / 2, which is where
   * planeMap would sample. Null for any other A (rotation by other angles, zoom).
   */
  private permutation(A: Affine2): Int32Array | null {
    if (!A.every((x) => x === 0 || x === 1 || x === -1)) return null;
    const key = A.join(',');
    let perm = this.permutations.get(key);
    if (!perm) {
      const P = this.config.patchSize;
      const h = (P - 1) / 2;
      perm = new Int32Array(P * P);
      for (let v = 0; v < P; v++) {
        for (let u = 0; u < P; u++) {
          const su = Math.round(A[0] * (u - h) + A[1] * (v - h) + h);
          const sv = Math.round(A[2] * (u - h) + A[3] * (v - h) + h);
          perm[u + P * v] = su + P * sv;
        }
      }
      this.permutations.set(key, perm);
    }
    return perm;
  }

  /** Sample order of an epoch: a seeded shuffle (or 0..n-1 without a seed). */
  order(seed: number | null): Int32Array {
    const idx = Array.from({ length: this.length }, (_, i) => i);
    if (seed !== null) shuffle(idx, mulberry32(mixSeed(seed, 0x5eed)));
    return Int32Array.from(idx);
  }

  /**
   * One epoch in batches. `seed` fixes both the order and the augmentation; null gives the
   * samples in order without augmentation (validation).
   */
  *batches(batchSize: number, seed: number | null, options: { dropLast?: boolean } = {}): Generator<SliceBatch> {
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new RangeError(`batches: batchSize must be a positive integer, got ${batchSize}`);
    const order = this.order(seed);
    for (let start = 0; start < order.length; start += batchSize) {
      const end = Math.min(order.length, start + batchSize);
      if (options.dropLast && end - start < batchSize) break;
      yield this.batch(order.subarray(start, end), seed);
    }
  }

  /** Counts of the labels over all samples (no sampling, so it is instant). */
  labelStats(): {
    samples: number;
    withNodule: number;
    sizeClassCounts: [number, number, number, number];
    /** Nodule slices per type (NODULE_TYPES' order); slices of untyped cases are not counted. */
    typeCounts: number[];
  } {
    const counts: [number, number, number, number] = [0, 0, 0, 0];
    const typeCounts = NODULE_TYPES.map(() => 0);
    let withNodule = 0;
    for (let s = 0; s < this.length; s++) {
      const c = this.cases[this.sampleCase[s]!]!;
      const area = c.sliceAreaMm2[this.sampleSlice[s]!]!;
      if (area > 0) {
        withNodule++;
        if (c.noduleType) typeCounts[NODULE_TYPES.indexOf(c.noduleType)]!++;
      }
      counts[sizeClassOf(area, this.sizeBins)]++;
    }
    return { samples: this.length, withNodule, sizeClassCounts: counts, typeCounts };
  }
}

/**
 * With a prompt channel, the share of training patches centred on the crop whose prompt is a random
 * voxel of the nodule instead of its centre: after a click off the centre, `segment` recentres the
 * patches on the nodule found and the prompt stays where it was. (A patch centred on a voxel of the
 * nodule, `shiftOnNoduleProb`, is prompted there.)
 */
export const PROMPT_ON_NODULE_PROB = 0.5;

function voxelOfIndex(i: number, nx: number, ny: number): Vec3 {
  return [i % nx, Math.floor(i / nx) % ny, Math.floor(i / (nx * ny))];
}

/** Draws one sample's augmentation, in a fixed order so streams stay reproducible. */
export function drawAugment(
  cfg: AugmentConfig,
  rng: Rng,
): { A: Affine2; jitterScale: number; jitterShift: number; shiftPick: number | null } {
  const flipX = cfg.flip && rng() < 0.5;
  const flipY = cfg.flip && rng() < 0.5;
  const turns = cfg.rot90 ? Math.floor(rng() * 4) : 0;
  const doRS = rng() < cfg.rotateScaleProb;
  const theta = doRS ? (uniform(rng, -cfg.maxRotateDeg, cfg.maxRotateDeg) * Math.PI) / 180 : 0;
  const zoom = doRS ? uniform(rng, cfg.zoomRange[0], cfg.zoomRange[1]) : 1;
  const jitterScale = uniform(rng, -cfg.intensityScale, cfg.intensityScale);
  const jitterShift = uniform(rng, -cfg.intensityShift, cfg.intensityShift);
  // The map takes patch mm to source mm, so a zoom z samples 1/z as far out.
  const angle = theta + (turns * Math.PI) / 2;
  const cos = Math.round(Math.cos(angle) * 1e12) / 1e12;
  const sin = Math.round(Math.sin(angle) * 1e12) / 1e12;
  const fx = flipX ? -1 : 1;
  const fy = flipY ? -1 : 1;
  const k = 1 / zoom;
  // R(angle) * diag(fx, fy) / zoom
  const A: Affine2 = [cos * fx * k, -sin * fy * k, sin * fx * k, cos * fy * k];
  // Drawn last and only when enabled, so that the streams of configs without it are unchanged.
  const shiftPick = cfg.shiftOnNoduleProb > 0 && rng() < cfg.shiftOnNoduleProb ? rng() : null;
  return { A, jitterScale, jitterShift, shiftPick };
}

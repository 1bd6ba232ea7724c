/**
 * Negative training samples from a whole scan: patches whose centre is not nodule. Crops only
 * show slices through a nodule, so a model trained on them segments whatever blob sits at the
 * patch centre once a whole scan runs past the nodule's end (the chest wall, a vessel). These
 * samples show it the two things it meets there:
 * - "past the end": the nodule's own centre column, from `endGapMm` beyond its first and last
 *   outlined slice to `endSpanMm`, with a little in-plane jitter;
 * - "tissue at the centre": random centres on dense tissue next to lung (pleura, chest wall,
 *   vessels, fissures), at least `minDistanceMm` from every reader's mark.
 * Each negative is a CropCase of `contextSlices` slices with an empty mask, so SliceDataset
 * treats it as any other case (size class "none", no nodule).
 */
import type { LidcNodule, LidcPointMark, LidcXml } from '../io/lidc.ts';
import { sliceOf } from '../io/lidc.ts';
import { cropAround } from '../io/crop.ts';
import type { Vec3, Volume } from '../io/volume.ts';
import type { CropCase } from './crops.ts';
import { mixSeed, mulberry32 } from './prng.ts';
import type { SliceConfig } from './slices.ts';

export interface ScanNegativeOptions {
  /** How many "tissue at the centre" negatives. */
  count: number;
  /** How close (mm, 3D) a tissue negative's centre may come to any voxel a reader marked. */
  minDistanceMm: number;
  /** First "past the end" slice: this far (mm) beyond the last outlined slice. */
  endGapMm: number;
  /** Last "past the end" slice: this far (mm) beyond it. */
  endSpanMm: number;
  /** In-plane jitter of the past-the-end centres (mm), and how many per slice. */
  endJitterMm: number;
  endPerSlice: number;
  seed: number;
}

export const DEFAULT_SCAN_NEGATIVES: ScanNegativeOptions = {
  count: 1200,
  minDistanceMm: 10,
  endGapMm: 4,
  endSpanMm: 25,
  endJitterMm: 3,
  endPerSlice: 3,
  seed: 1,
};

/** A reader's mark as a box in voxels (nodule outlines) or a point (small nodules, non-nodules). */
interface MarkBox {
  lo: Vec3;
  hi: Vec3;
}

function noduleBox(n: LidcNodule, dims: Vec3): MarkBox {
  const [nx, ny] = dims;
  const lo: Vec3 = [Infinity, Infinity, Infinity];
  const hi: Vec3 = [-Infinity, -Infinity, -Infinity];
  for (const v of n.voxels) {
    const p = [v % nx, Math.floor(v / nx) % ny, Math.floor(v / (nx * ny))];
    for (let d = 0; d < 3; d++) {
      lo[d] = Math.min(lo[d]!, p[d]!);
      hi[d] = Math.max(hi[d]!, p[d]!);
    }
  }
  return { lo, hi };
}

function pointBox(m: LidcPointMark, vol: Volume): MarkBox | null {
  let z: number;
  try {
    z = sliceOf(vol, m.sopInstanceUid, m.zPositionMm);
  } catch {
    return null;
  }
  const p: Vec3 = [m.point[0], m.point[1], z];
  return { lo: p, hi: p };
}

/** Distance (mm) from voxel p to the nearest point of a box of voxels. */
function distanceToBoxMm(p: Vec3, b: MarkBox, spacing: Vec3): number {
  let s = 0;
  for (let d = 0; d < 3; d++) {
    const g = p[d]! < b.lo[d]! ? b.lo[d]! - p[d]! : p[d]! > b.hi[d]! ? p[d]! - b.hi[d]! : 0;
    s += (g * spacing[d]!) ** 2;
  }
  return Math.sqrt(s);
}

/**
 * Negative cases from one scan with its LIDC reads. `id` prefixes the case ids; `patientId`
 * should be the scan's patient, so that patient-level splits keep it with its own crops.
 */
export function scanNegatives(
  scan: Volume,
  xml: LidcXml,
  nodules: readonly LidcNodule[],
  slice: SliceConfig,
  id: string,
  patientId: string,
  options: Partial<ScanNegativeOptions> = {},
): CropCase[] {
  const o = { ...DEFAULT_SCAN_NEGATIVES, ...options };
  const rng = mulberry32(mixSeed(o.seed, 0x4e6));
  const [nx, ny, nz] = scan.dims;
  const sp = scan.spacingMm;
  const data = scan.data;
  const marks: MarkBox[] = nodules.map((n) => noduleBox(n, scan.dims));
  for (const m of [...xml.smallNodules, ...xml.nonNodules]) {
    const b = pointBox(m, scan);
    if (b) marks.push(b);
  }
  const fovMm = slice.patchSize * slice.spacingMm;
  // Odd sizes, so that the crop's centre voxel is the sampled voxel exactly.
  const odd = (v: number) => 2 * Math.ceil(v / 2) + 1;
  const size: Vec3 = [odd(fovMm / sp[0]) + 2, odd(fovMm / sp[1]) + 2, slice.contextSlices];
  const out: CropCase[] = [];
  // prompt: where the case is prompted (scan voxels), for a model with a prompt channel.
  const add = (c: Vec3, kind: string, prompt?: Vec3) => {
    const { crop, startVoxel } = cropAround(scan, { voxel: c }, size);
    const image =
      crop.data instanceof Int16Array
        ? (crop as Volume<Int16Array>)
        : crop.withData(Int16Array.from(crop.data as ArrayLike<number>, (v) => Math.max(-32768, Math.min(32767, Math.round(v)))));
    out.push({
      id: `${id}_neg_${kind}_${out.length}`,
      patientId,
      split: 'train',
      image: image as Volume<Int16Array>,
      mask: new Uint8Array(image.data.length),
      sliceAreaMm2: new Float64Array(size[2]),
      diameterMm: Number.NaN,
      noduleType: null,
      ...(prompt ? { promptVoxel: [prompt[0] - startVoxel[0], prompt[1] - startVoxel[1], prompt[2] - startVoxel[2]] as Vec3 } : {}),
    });
  };
  const hu = (x: number, y: number, z: number) =>
    x < 0 || y < 0 || z < 0 || x >= nx || y >= ny || z >= nz ? -1000 : data[x + nx * (y + ny * z)]!;
  const farFromMarks = (p: Vec3, mm: number, except?: MarkBox) => marks.every((b) => b === except || distanceToBoxMm(p, b, sp) >= mm);

  // Past each nodule's ends, on its centre column.
  for (let k = 0; k < nodules.length; k++) {
    const b = marks[k]!;
    const cx = (b.lo[0] + b.hi[0]) / 2,
      cy = (b.lo[1] + b.hi[1]) / 2;
    // Prompted at the nodule's centre, as a point at the readers' centre is.
    const noduleCentre: Vec3 = [cx, cy, (b.lo[2] + b.hi[2]) / 2];
    for (const dir of [-1, 1]) {
      const edge = dir < 0 ? b.lo[2] : b.hi[2];
      for (let dz = Math.ceil(o.endGapMm / sp[2]); dz * sp[2] <= o.endSpanMm; dz++) {
        const z = edge + dir * dz;
        if (z < 0 || z >= nz) break;
        for (let j = 0; j < o.endPerSlice; j++) {
          const x = Math.round(cx + ((rng() * 2 - 1) * o.endJitterMm) / sp[0]);
          const y = Math.round(cy + ((rng() * 2 - 1) * o.endJitterMm) / sp[1]);
          // Only this nodule's own marks may be near (it ends above or below); others are kept away.
          if (farFromMarks([x, y, z], o.minDistanceMm, b) && distanceToBoxMm([x, y, z], b, sp) >= o.endGapMm)
            add([x, y, z], 'end', noduleCentre);
        }
      }
    }
  }

  // Dense tissue next to lung, away from every mark.
  const near = Math.max(1, Math.round(4 / sp[0]));
  let tries = 0;
  let made = 0;
  while (made < o.count && tries < o.count * 400) {
    tries++;
    const x = Math.floor(rng() * nx),
      y = Math.floor(rng() * ny),
      z = Math.floor(rng() * nz);
    const v = hu(x, y, z);
    if (v < -500 || v > 200) continue;
    // Lung (or air) within 4 mm in-plane on at least one side: pleura, vessel walls, fissures.
    let lungSides = 0;
    for (const [dx, dy] of [
      [near, 0],
      [-near, 0],
      [0, near],
      [0, -near],
    ] as const)
      if (hu(x + dx, y + dy, z) < -800) lungSides++;
    if (lungSides < 1) continue;
    if (!farFromMarks([x, y, z], o.minDistanceMm)) continue;
    add([x, y, z], 'tissue');
    made++;
  }
  return out;
}

/**
 * A 3D image on a regular grid, placed in world space.
 *
 * World coordinates are LPS millimetres (x to the patient's Left, y to Posterior, z to
 * Superior), as DICOM, ITK and LUNA16 use. Voxel (i, j, k) sits at
 *   world = originMm + direction * diag(spacingMm) * [i, j, k]
 * where `direction` is a row-major 3x3 matrix whose column c is the unit direction of axis c.
 * Voxels are stored i-fastest: index = i + dims[0] * (j + dims[1] * k).
 */
import { UserError } from '../errors.ts';

export type VoxelArray = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;

export type Vec3 = [number, number, number];
/** Row-major 3x3 matrix: m[row * 3 + col]. */
export type Mat3 = [number, number, number, number, number, number, number, number, number];

/** 'CT' voxels are Hounsfield units; 'SEG' a label mask; other strings come from the file. */
export type Modality = string;

/**
 * Where a volume came from, kept so a writer can reproduce the source's exact geometry
 * (the NIfTI header bytes) or reference it (the DICOM series a SEG points at).
 */
export type VolumeSource =
  | { format: 'nifti'; path: string; header: Uint8Array }
  | { format: 'dicom'; path: string; series: DicomSeriesRef }
  | { format: 'itk'; path: string };

/** What a DICOM SEG needs to reference its source series; slices in volume k order. */
export interface DicomSeriesRef {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  frameOfReferenceUid: string;
  sopClassUid: string;
  sopInstanceUids: string[];
  patientId: string;
  patientName: string;
  studyDate: string;
  studyId: string;
  accessionNumber: string;
  /** Repeated by the SEG and SR (Type 2: empty when the CT has none, e.g. anonymised LIDC). */
  patientBirthDate?: string;
  patientSex?: string;
  studyTime?: string;
  referringPhysicianName?: string;
}

export interface VolumeInit<T extends VoxelArray> {
  data: T;
  dims: Vec3;
  spacingMm: Vec3;
  originMm: Vec3;
  direction?: Mat3;
  modality?: Modality;
  source?: VolumeSource;
}

export const IDENTITY3: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];

export class Volume<T extends VoxelArray = VoxelArray> {
  readonly data: T;
  readonly dims: Vec3;
  readonly spacingMm: Vec3;
  readonly originMm: Vec3;
  readonly direction: Mat3;
  readonly modality: Modality;
  readonly source: VolumeSource | undefined;

  constructor(init: VolumeInit<T>) {
    const { data, dims, spacingMm, originMm } = init;
    if (dims.length !== 3 || dims.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new RangeError(`Volume: dims must be three positive integers, got [${dims.join(', ')}]`);
    }
    if (data.length !== dims[0] * dims[1] * dims[2]) {
      throw new RangeError(`Volume: data has ${data.length} voxels, dims [${dims.join(', ')}] need ${dims[0] * dims[1] * dims[2]}`);
    }
    if (spacingMm.some((s) => !(s > 0) || !Number.isFinite(s))) {
      throw new RangeError(`Volume: spacing must be positive, got [${spacingMm.join(', ')}] mm`);
    }
    if (originMm.some((o) => !Number.isFinite(o))) throw new RangeError(`Volume: origin must be finite`);
    this.data = data;
    this.dims = [dims[0], dims[1], dims[2]];
    this.spacingMm = [spacingMm[0], spacingMm[1], spacingMm[2]];
    this.originMm = [originMm[0], originMm[1], originMm[2]];
    this.direction = init.direction ? ([...init.direction] as Mat3) : ([...IDENTITY3] as Mat3);
    this.modality = init.modality ?? 'unknown';
    this.source = init.source;
  }

  get voxelCount(): number {
    return this.data.length;
  }

  index(i: number, j: number, k: number): number {
    return i + this.dims[0] * (j + this.dims[1] * k);
  }

  /** World (LPS mm) of a voxel position; fractional indices are allowed. */
  voxelToWorld(ijk: readonly number[]): Vec3 {
    const d = this.direction;
    const s = this.spacingMm;
    const a = ijk[0]! * s[0];
    const b = ijk[1]! * s[1];
    const c = ijk[2]! * s[2];
    return [
      this.originMm[0] + d[0] * a + d[1] * b + d[2] * c,
      this.originMm[1] + d[3] * a + d[4] * b + d[5] * c,
      this.originMm[2] + d[6] * a + d[7] * b + d[8] * c,
    ];
  }

  /** Continuous voxel index of a world point (round it for the nearest voxel). */
  worldToVoxel(p: readonly number[]): Vec3 {
    const inv = invert3(this.direction);
    const x = p[0]! - this.originMm[0];
    const y = p[1]! - this.originMm[1];
    const z = p[2]! - this.originMm[2];
    return [
      (inv[0] * x + inv[1] * y + inv[2] * z) / this.spacingMm[0],
      (inv[3] * x + inv[4] * y + inv[5] * z) / this.spacingMm[1],
      (inv[6] * x + inv[7] * y + inv[8] * z) / this.spacingMm[2],
    ];
  }

  /** Same grid and geometry, other voxels. */
  withData<U extends VoxelArray>(data: U, modality?: Modality): Volume<U> {
    return new Volume<U>({
      data,
      dims: this.dims,
      spacingMm: this.spacingMm,
      originMm: this.originMm,
      direction: this.direction,
      modality: modality ?? this.modality,
      ...(this.source ? { source: this.source } : {}),
    });
  }

  /** True when both volumes have the same dims and, within tolMm, the same voxel centres. */
  sameGrid(other: Volume, tolMm = 1e-3): boolean {
    if (this.dims.some((d, a) => d !== other.dims[a])) return false;
    const corners: Vec3[] = [
      [0, 0, 0],
      [this.dims[0] - 1, this.dims[1] - 1, this.dims[2] - 1],
      [this.dims[0] - 1, 0, 0],
      [0, this.dims[1] - 1, 0],
      [0, 0, this.dims[2] - 1],
    ];
    return corners.every((c) => {
      const p = this.voxelToWorld(c);
      const q = other.voxelToWorld(c);
      return Math.hypot(p[0] - q[0], p[1] - q[1], p[2] - q[2]) <= tolMm;
    });
  }

  /** Smallest and largest voxel value. */
  range(): { min: number; max: number } {
    let min = Infinity;
    let max = -Infinity;
    const d = this.data;
    for (let n = 0; n < d.length; n++) {
      const v = d[n]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    return { min, max };
  }
}

export function invert3(m: Mat3): Mat3 {
  const [a, b, c, d, e, f, g, h, i] = m;
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  if (Math.abs(det) < 1e-12) throw new RangeError('direction matrix is singular');
  return [
    A / det,
    -(b * i - c * h) / det,
    (b * f - c * e) / det,
    B / det,
    (a * i - c * g) / det,
    -(a * f - c * d) / det,
    C / det,
    -(a * h - b * g) / det,
    (a * e - b * d) / det,
  ];
}

export function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

export function dot(a: readonly number[], b: readonly number[]): number {
  return a[0]! * b[0]! + a[1]! * b[1]! + a[2]! * b[2]!;
}

/** Column c of a row-major direction matrix: the world direction of voxel axis c. */
export function axisDirection(m: Mat3, c: 0 | 1 | 2): Vec3 {
  return [m[c], m[3 + c], m[6 + c]];
}

/**
 * Float voxels must be finite: a NaN or an infinity would flow silently into the model and the
 * measurements ("mean NaN HU"). Integer arrays cannot hold either and are not scanned.
 */
export function refuseNonFinite(data: VoxelArray, path: string): void {
  if (!(data instanceof Float32Array || data instanceof Float64Array)) return;
  let bad = 0;
  let first = -1;
  for (let n = 0; n < data.length; n++) {
    // v - v is 0 for a finite v and NaN for NaN or +-Infinity.
    const v = data[n]!;
    if (v - v !== 0) {
      if (first < 0) first = n;
      bad++;
    }
  }
  if (bad > 0) {
    throw new UserError(
      `${path}: ${bad} of ${data.length} voxels are not finite (NaN or infinity; the first is voxel ${first}); noduleseg needs finite values`,
    );
  }
}

/**
 * A reader's geometry must give every voxel a world position and every world point a voxel:
 * positive finite spacing, a finite origin, and a direction whose columns are unit vectors (to
 * within the rounding of a text header) spanning 3D. A bad header field otherwise surfaces later
 * as a RangeError deep in a command ("direction matrix is singular") or as NaN millimetres.
 */
/** Voxel sizes an image of a body can have: a micrometre to a metre. */
export const MIN_SPACING_MM = 1e-3;
export const MAX_SPACING_MM = 1e3;

export function refuseBadGeometry(
  path: string,
  spacingMm: readonly number[],
  originMm: readonly number[],
  direction: readonly number[],
): void {
  if (spacingMm.some((s) => !(s > 0) || !Number.isFinite(s)))
    throw new UserError(`${path}: voxel spacing must be positive and finite, got [${spacingMm.join(', ')}]`);
  // Finite but absurd spacings (1e-30 mm, 1e30 mm) overflow areas and volumes into NaN downstream.
  if (spacingMm.some((s) => s < MIN_SPACING_MM || s > MAX_SPACING_MM))
    throw new UserError(
      `${path}: voxel spacing [${spacingMm.join(', ')}] mm is outside ${MIN_SPACING_MM}-${MAX_SPACING_MM} mm (not an image of a body)`,
    );
  if (originMm.some((o) => !Number.isFinite(o))) throw new UserError(`${path}: the origin is not finite, got [${originMm.join(', ')}]`);
  const d = direction as Mat3;
  const what = `the orientation (direction [${d.map((x) => +x.toPrecision(6)).join(', ')}])`;
  if (d.length !== 9 || d.some((x) => !Number.isFinite(x))) throw new UserError(`${path}: ${what} is not finite`);
  for (const c of [0, 1, 2] as const) {
    const len = Math.hypot(...axisDirection(d, c));
    if (Math.abs(len - 1) > 1e-3) throw new UserError(`${path}: ${what} has an axis of length ${+len.toPrecision(6)}, not a unit vector`);
  }
  const det = d[0] * (d[4] * d[8] - d[5] * d[7]) - d[1] * (d[3] * d[8] - d[5] * d[6]) + d[2] * (d[3] * d[7] - d[4] * d[6]);
  if (Math.abs(det) < 1e-3) throw new UserError(`${path}: ${what} is degenerate (its axes do not span 3D)`);
}

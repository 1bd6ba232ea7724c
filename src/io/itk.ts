/**
 * MetaImage (.mhd/.mha + .raw/.zraw), NRRD (.nrrd/.nhdr) and NIfTI-2 through @itk-wasm/image-io.
 * ITK images are already LPS with a row-major direction, like Volume.
 */
import { readImageNode, writeImageNode, type Image } from '@itk-wasm/image-io';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { UserError } from '../errors.ts';
import { describeFsError, writeFilesAtomic } from './atomic.ts';
import { Volume, type Mat3, type Vec3, type VoxelArray } from './volume.ts';

export function isItkPath(path: string): boolean {
  return /\.(mhd|mha|nrrd|nhdr)$/i.test(path);
}

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? 'unreadable';
}

export async function readItkImage(path: string): Promise<Volume> {
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new UserError(`${path}: is a folder, expected an image file`);
    if (st.size === 0) throw new UserError(`${path}: empty file`);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${path}: cannot read (${describeFsError(e)})`, { cause: e });
  }
  let img: Image;
  try {
    img = await readImageNode(path);
  } catch (e) {
    throw new UserError(`${path}: not a readable image (${firstLine(e)})`, { cause: e });
  }
  return fromItkImage(img, path);
}

export function fromItkImage(img: Image, path: string): Volume {
  const dim = img.imageType.dimension;
  const size = [...img.size];
  if (img.imageType.components !== 1) throw new UserError(`${path}: ${img.imageType.components}-component pixels are not supported; expected a scalar image`);
  if (dim > 3 && size.slice(3).some((s) => s > 1)) throw new UserError(`${path}: ${dim}D image [${size.join(', ')}] is not supported; noduleseg reads 3D volumes`);
  if (dim < 2) throw new UserError(`${path}: ${dim}D image is not a volume`);
  const dims: Vec3 = [size[0]!, size[1]!, size[2] ?? 1];
  const spacingMm: Vec3 = [img.spacing[0]!, img.spacing[1]!, img.spacing[2] ?? 1];
  if (spacingMm.some((s) => !(s > 0))) throw new UserError(`${path}: voxel spacing must be positive, got [${spacingMm.join(', ')}]`);
  const originMm: Vec3 = [img.origin[0]!, img.origin[1]!, img.origin[2] ?? 0];
  const direction = [1, 0, 0, 0, 1, 0, 0, 0, 1] as Mat3;
  for (let r = 0; r < Math.min(dim, 3); r++) for (let c = 0; c < Math.min(dim, 3); c++) direction[3 * r + c] = Number(img.direction[r * dim + c]);
  const data = img.data as VoxelArray | null;
  if (!data) throw new UserError(`${path}: no voxel data`);
  if (data.length !== dims[0] * dims[1] * dims[2]) throw new UserError(`${path}: voxel data (${data.length}) does not match dims [${dims.join(', ')}]`);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) throw new UserError(`${path}: 64-bit integer voxels are not supported`);
  return new Volume({ data, dims, spacingMm, originMm, direction, source: { format: 'itk', path } });
}

const COMPONENT: Record<string, string> = {
  Int8Array: 'int8',
  Uint8Array: 'uint8',
  Int16Array: 'int16',
  Uint16Array: 'uint16',
  Int32Array: 'int32',
  Uint32Array: 'uint32',
  Float32Array: 'float32',
  Float64Array: 'float64',
};

/** itk-wasm's Image is a plain data class, so a structurally equal object literal is one. */
export function toItkImage(vol: Volume): Image {
  const componentType = COMPONENT[vol.data.constructor.name] as Image['imageType']['componentType'];
  return {
    imageType: { dimension: 3, componentType, pixelType: 'Scalar', components: 1 },
    name: 'Image',
    origin: [...vol.originMm],
    spacing: [...vol.spacingMm],
    direction: new Float64Array(vol.direction),
    size: [...vol.dims],
    metadata: new Map(),
    data: vol.data,
  };
}

/** Writes MetaImage or NRRD (by the extension) atomically, header and data file together. */
export async function writeItkImage(path: string, vol: Volume, options: { compress?: boolean } = {}): Promise<void> {
  if (!isItkPath(path)) throw new UserError(`${path}: expected .mhd, .mha, .nrrd or .nhdr`);
  await writeFilesAtomic(path, async (tmpPath) => {
    await writeImageNode(toItkImage(vol), tmpPath, { useCompression: options.compress ?? false });
    const dir = tmpPath.slice(0, tmpPath.length - basename(tmpPath).length);
    const names = readdirSync(dir);
    if (!existsSync(tmpPath)) throw new Error('the writer produced no file');
    return names;
  });
}

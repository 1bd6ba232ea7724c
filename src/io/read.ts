import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { describeFsError } from './atomic.ts';
import type { DicomReadOptions } from './dicom.ts';
import { IMAGE_EXTENSIONS_TEXT, isItkPath, isNiftiPath } from './formats.ts';
import { decodeNifti1, niftiVersion, readNiftiBytes } from './nifti.ts';
import type { Volume } from './volume.ts';

export interface ReadVolumeOptions extends DicomReadOptions {}

/**
 * Reads a volume from a NIfTI file, a MetaImage/NRRD file, or a folder holding a DICOM series.
 * Bad input throws a UserError whose message names the file and the reason.
 */
export async function readVolume(path: string, options: ReadVolumeOptions = {}): Promise<Volume> {
  if (!existsSync(path)) throw new UserError(`${path}: no such file or folder`);
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (e) {
    throw new UserError(`${path}: cannot read (${describeFsError(e)})`, { cause: e });
  }
  // The DICOM and ITK readers (dcmjs, itk-wasm) load only for their formats: a NIfTI is read
  // without them, which keeps `inspect crop.nii.gz` and the like quick to start.
  if (isDir) return (await (await import('./dicom.ts')).readDicomSeries(path, options)).volume;
  if (isItkPath(path)) return (await import('./itk.ts')).readItkImage(path);
  if (isNiftiPath(path) || looksLikeNifti(path)) {
    const bytes = readNiftiBytes(path);
    const v = niftiVersion(bytes);
    if (v === 2) return (await import('./itk.ts')).readItkImage(path);
    if (v === 0) {
      throw new UserError(
        bytes.length < 348 ? `${path}: truncated NIfTI header (${bytes.length} of 348 bytes)` : `${path}: not a NIfTI file (bad header)`,
      );
    }
    return decodeNifti1(bytes, path);
  }
  throw new UserError(`${path}: unknown image format (expected ${IMAGE_EXTENSIONS_TEXT} or a DICOM folder)`);
}

function looksLikeNifti(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(4);
    readSync(fd, b, 0, 4, 0);
    return (b[0] === 0x1f && b[1] === 0x8b) || b.readInt32LE(0) === 348 || b.readInt32BE(0) === 348;
  } finally {
    closeSync(fd);
  }
}

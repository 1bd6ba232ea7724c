/**
 * Medical images in and out: the public surface of src/io.
 * Volumes are LPS world space (see volume.ts); every writer is atomic; bad input throws a
 * UserError naming the file and the reason.
 */
export {
  Volume,
  type Vec3,
  type Mat3,
  type VoxelArray,
  type Modality,
  type VolumeSource,
  type DicomSeriesRef,
  type VolumeInit,
} from './volume.ts';
export { readVolume, type ReadVolumeOptions } from './read.ts';
export { readDicomSeries, listDicomSeries, type DicomReadOptions, type DicomSeriesResult, type DicomSeriesSummary } from './dicom.ts';
export { readNifti, writeNifti, writeNiftiMask, encodeNifti, encodeNiftiFile } from './nifti.ts';
export { writeFileAtomic, writeFilesAtomicSet } from './atomic.ts';
export { readItkImage, writeItkImage } from './itk.ts';
export { writeDicomSeg, readDicomSeg, encodeDicomSeg, SEG_SOP_CLASS, type SegOptions, type DicomSegContents } from './dicom-seg.ts';
export { renderOverlayPng, writeOverlayPng, LUNG_WINDOW_HU, type OverlayOptions } from './png.ts';
export { cropAround, pasteCrop, gridOffset, centreVoxel, AIR_HU, type CropCentre, type CropResult } from './crop.ts';
export {
  readLidcScan,
  parseLidcXml,
  findLidcXml,
  groupNodules,
  rasteriseNodule,
  fillInside,
  consensusVoxels,
  consensusMask,
  voxelsToMask,
  sortedIntersectionSize,
  noduleReport,
  parseAgreement,
  readersNeeded,
  describeAgreement,
  CHARACTERISTICS,
  type Agreement,
  type Characteristic,
  type LidcXml,
  type LidcScan,
  type LidcNodule,
  type LidcNoduleRead,
  type LidcPointMark,
  type LidcRoi,
  type NoduleReport,
} from './lidc.ts';

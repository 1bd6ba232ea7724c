/**
 * DICOM Segmentation (binary SEG) of one mask, or of a few overlapping ones as segments 1, 2, ...
 * (a nodule mask and its wider any-reader extent), referencing the CT series it was made on.
 *
 * Built as a naturalized dataset and written by dcmjs. dcmjs's own derivations.Segmentation
 * wants the source as an enhanced multi-frame dataset and adds little for a single segment, so
 * the IOD's attributes are filled here (PS3.3 A.51, C.8.20) and checked by reading the file back
 * and, in test/io/seg.test.ts, by dicom3tools' dciodvfy.
 */
import dcmjs from 'dcmjs';
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { describeFsError, writeFileAtomic } from './atomic.ts';
import type { Volume } from './volume.ts';
import { VERSION } from '../version.ts';

export const SEG_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.66.4';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

export interface SegOptions {
  segmentLabel?: string;
  /** MANUAL for reader outlines, AUTOMATIC for a model's output. */
  algorithmType?: 'MANUAL' | 'SEMIAUTOMATIC' | 'AUTOMATIC';
  algorithmName?: string;
  seriesDescription?: string;
  /** Segments after the first (numbered 2, 3, ...), each on the same grid; they may overlap it. */
  moreSegments?: readonly MoreSegment[];
}

export interface MoreSegment {
  mask: Uint8Array;
  label: string;
  /** What the segment is, for a reader of the SEG (SegmentDescription). */
  description?: string;
}

function code(value: string, scheme: string, meaning: string): Record<string, unknown> {
  return { CodeValue: value, CodingSchemeDesignator: scheme, CodeMeaning: meaning };
}

/** An AT value as dcmjs writes it: group in the high 16 bits, element in the low. */
function tag(group: number, element: number): number {
  return group * 0x10000 + element;
}

/** The z indices of the slices where `mask` has a voxel. */
function slicesWithMask(mask: Uint8Array, plane: number, nz: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < nz; k++) {
    for (let p = k * plane; p < (k + 1) * plane; p++) {
      if (mask[p]) {
        out.push(k);
        break;
      }
    }
  }
  return out;
}

/**
 * Encodes a 0/1 mask on `source`'s grid as a DICOM SEG Part 10 file: segment 1, then
 * `options.moreSegments` as segments 2, 3, ... (a frame per segment and slice it covers).
 */
export function encodeDicomSeg(mask: Uint8Array, source: Volume, options: SegOptions = {}): Uint8Array {
  if (source.source?.format !== 'dicom')
    throw new UserError(`DICOM SEG: the image was not read from a DICOM series, so there is nothing to reference; write NIfTI instead`);
  const segments = [
    { mask, label: options.segmentLabel ?? 'Nodule', description: undefined as string | undefined },
    ...(options.moreSegments ?? []),
  ];
  for (const [n, s] of segments.entries()) {
    if (s.mask.length !== source.voxelCount)
      throw new RangeError(`encodeDicomSeg: segment ${n + 1} has ${s.mask.length} voxels, the series ${source.voxelCount}`);
  }
  const ref = source.source.series;
  const [cols, rows, nz] = source.dims;
  const plane = cols * rows;
  const d = source.direction;
  const iop = [d[0], d[3], d[6], d[1], d[4], d[7]];
  // Frames by segment, then by slice; a SEG needs at least one frame: an empty SEG has one empty frame of segment 1.
  const frames = segments.flatMap((s, n) => slicesWithMask(s.mask, plane, nz).map((k) => ({ segment: n + 1, k })));
  if (frames.length === 0) frames.push({ segment: 1, k: 0 });
  // The position dimension's index: a slice's rank among all the slices any frame is on (1-based, no gaps).
  const positions = [...new Set(frames.map((f) => f.k))].sort((a, b) => a - b);
  const positionIndex = new Map(positions.map((k, r) => [k, r + 1]));
  // 1-bit pixels, packed LSB first, frames back to back (PS3.5 8.1.1).
  const bits = new Uint8Array(Math.ceil((frames.length * plane) / 8));
  frames.forEach(({ segment, k }, f) => {
    const m = segments[segment - 1]!.mask;
    const base = f * plane;
    for (let p = 0; p < plane; p++) if (m[k * plane + p]) bits[(base + p) >> 3]! |= 1 << ((base + p) & 7);
  });
  const meta = dcmjs.data.DicomMetaDictionary;
  const uid = meta.uid;
  const sopInstanceUid = uid();
  const dimensionOrganizationUid = uid();
  const contentDate = meta.date();
  const contentTime = meta.time();
  const dataset: Record<string, unknown> = {
    // dcmjs writes every string as UTF-8, whatever the source series used.
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: SEG_SOP_CLASS,
    SOPInstanceUID: sopInstanceUid,
    // Patient and General Study: Type 2 values the reference does not carry stay empty (present, unknown).
    PatientName: ref.patientName,
    PatientID: ref.patientId,
    PatientBirthDate: ref.patientBirthDate ?? '',
    PatientSex: ref.patientSex ?? '',
    StudyInstanceUID: ref.studyInstanceUid,
    StudyDate: ref.studyDate,
    StudyTime: ref.studyTime ?? '',
    ReferringPhysicianName: ref.referringPhysicianName ?? '',
    StudyID: ref.studyId,
    AccessionNumber: ref.accessionNumber,
    // General Series and Segmentation Series.
    Modality: 'SEG',
    SeriesInstanceUID: uid(),
    SeriesNumber: 300,
    SeriesDescription: options.seriesDescription ?? 'noduleseg nodule mask',
    // Frame of Reference: the source's, so the frames' positions mean the same place.
    FrameOfReferenceUID: ref.frameOfReferenceUid,
    PositionReferenceIndicator: '',
    // General and Enhanced General Equipment (the latter makes model, serial and version Type 1;
    // software has no serial number, so a fixed one).
    Manufacturer: 'noduleseg',
    ManufacturerModelName: 'noduleseg',
    DeviceSerialNumber: '1',
    SoftwareVersions: VERSION,
    // General Image, Segmentation Image, Multi-frame Functional Groups.
    InstanceNumber: 1,
    ContentDate: contentDate,
    ContentTime: contentTime,
    InstanceCreationDate: contentDate,
    InstanceCreationTime: contentTime,
    ContentLabel: 'NODULE',
    ContentDescription: 'Lung nodule segmentation',
    // Type 2 and a person's name (PN); the software is named in Manufacturer and the segment.
    ContentCreatorName: '',
    ImageType: ['DERIVED', 'PRIMARY'],
    SegmentationType: 'BINARY',
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: rows,
    Columns: cols,
    BitsAllocated: 1,
    BitsStored: 1,
    HighBit: 0,
    PixelRepresentation: 0,
    LossyImageCompression: '00',
    NumberOfFrames: frames.length,
    SegmentSequence: segments.map((s, n) => ({
      SegmentNumber: n + 1,
      SegmentLabel: s.label,
      ...(s.description ? { SegmentDescription: s.description } : {}),
      SegmentAlgorithmType: options.algorithmType ?? 'AUTOMATIC',
      ...(options.algorithmType === 'MANUAL' ? {} : { SegmentAlgorithmName: options.algorithmName ?? 'noduleseg' }),
      SegmentedPropertyCategoryCodeSequence: [code('49755003', 'SCT', 'Morphologically Altered Structure')],
      SegmentedPropertyTypeCodeSequence: [code('27925004', 'SCT', 'Nodule')],
    })),
    ReferencedSeriesSequence: [
      {
        SeriesInstanceUID: ref.seriesInstanceUid,
        ReferencedInstanceSequence: ref.sopInstanceUids.map((u) => ({
          ReferencedSOPClassUID: ref.sopClassUid,
          ReferencedSOPInstanceUID: u,
        })),
      },
    ],
    // Frames are indexed by segment, then by position along the slice normal (PS3.3 C.7.6.17):
    // the index values of each frame point into these two dimensions, in this order.
    DimensionOrganizationSequence: [{ DimensionOrganizationUID: dimensionOrganizationUid }],
    DimensionIndexSequence: [
      {
        DimensionOrganizationUID: dimensionOrganizationUid,
        DimensionIndexPointer: tag(0x0062, 0x000b), // ReferencedSegmentNumber
        FunctionalGroupPointer: tag(0x0062, 0x000a), // SegmentIdentificationSequence
        DimensionDescriptionLabel: 'ReferencedSegmentNumber',
      },
      {
        DimensionOrganizationUID: dimensionOrganizationUid,
        DimensionIndexPointer: tag(0x0020, 0x0032), // ImagePositionPatient
        FunctionalGroupPointer: tag(0x0020, 0x9113), // PlanePositionSequence
        DimensionDescriptionLabel: 'ImagePositionPatient',
      },
    ],
    SharedFunctionalGroupsSequence: [
      {
        PlaneOrientationSequence: [{ ImageOrientationPatient: iop }],
        PixelMeasuresSequence: [
          {
            PixelSpacing: [source.spacingMm[1], source.spacingMm[0]],
            SliceThickness: source.spacingMm[2],
            SpacingBetweenSlices: source.spacingMm[2],
          },
        ],
      },
    ],
    PerFrameFunctionalGroupsSequence: frames.map(({ segment, k }) => ({
      FrameContentSequence: [{ DimensionIndexValues: [segment, positionIndex.get(k)!] }],
      PlanePositionSequence: [{ ImagePositionPatient: source.voxelToWorld([0, 0, k]) }],
      SegmentIdentificationSequence: [{ ReferencedSegmentNumber: segment }],
      DerivationImageSequence: [
        {
          SourceImageSequence: [
            {
              ReferencedSOPClassUID: ref.sopClassUid,
              ReferencedSOPInstanceUID: ref.sopInstanceUids[k],
              PurposeOfReferenceCodeSequence: [code('121322', 'DCM', 'Source image for image processing operation')],
            },
          ],
          DerivationCodeSequence: [code('113076', 'DCM', 'Segmentation')],
        },
      ],
    })),
    PixelData: [bits.buffer],
    _vrMap: { PixelData: 'OB' },
  };
  return part10Bytes(dataset, SEG_SOP_CLASS, sopInstanceUid);
}

/** A naturalized dcmjs dataset as a DICOM Part 10 file (explicit VR little endian), with noduleseg's file meta. */
export function part10Bytes(dataset: Record<string, unknown>, sopClassUid: string, sopInstanceUid: string): Uint8Array {
  const meta = dcmjs.data.DicomMetaDictionary;
  const fileMeta = meta.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClassUid,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: EXPLICIT_LE,
    ImplementationClassUID: '1.2.826.0.1.3680043.10.1453.1',
    ImplementationVersionName: 'noduleseg',
  });
  const dict = new dcmjs.data.DicomDict(fileMeta);
  dict.dict = meta.denaturalizeDataset(dataset);
  return new Uint8Array(dict.write());
}

export function writeDicomSeg(path: string, mask: Uint8Array, source: Volume, options: SegOptions = {}): void {
  writeFileAtomic(path, encodeDicomSeg(mask, source, options));
}

export interface DicomSegContents {
  sopClassUid: string;
  referencedSeriesUid: string;
  studyInstanceUid: string;
  frameOfReferenceUid: string;
  segmentLabels: string[];
  frames: number;
  /** The first segment's mask on `reference`'s grid (the whole SEG's when it has one segment). */
  mask: Uint8Array;
  /** Every segment's mask, in the order of the SegmentSequence, placed frame by frame through each frame's source image. */
  segments: Array<{ number: number; label: string; mask: Uint8Array }>;
}

/**
 * Reads a binary SEG back onto the grid of the series it references (given as `reference`).
 * Frames are placed by their source SOP Instance UID, or by ImagePositionPatient when absent.
 */
export function readDicomSeg(path: string, reference: Volume): DicomSegContents {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new UserError(`${path}: cannot read (${describeFsError(e)})`, { cause: e });
  }
  let ds: Record<string, unknown>;
  try {
    const dict = dcmjs.data.DicomMessage.readFile(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer);
    ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict);
  } catch (e) {
    throw new UserError(`${path}: not a readable DICOM file (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`, { cause: e });
  }
  if (ds['SOPClassUID'] !== SEG_SOP_CLASS) throw new UserError(`${path}: not a DICOM SEG (SOP class ${String(ds['SOPClassUID'])})`);
  if (ds['SegmentationType'] !== 'BINARY') throw new UserError(`${path}: only BINARY segmentations are supported`);
  const rows = Number(ds['Rows']);
  const cols = Number(ds['Columns']);
  const [nx, ny] = reference.dims;
  if (rows !== ny || cols !== nx) throw new UserError(`${path}: frame size ${cols}x${rows} does not match the series (${nx}x${ny})`);
  const frames = Number(ds['NumberOfFrames'] ?? 1);
  const seq = (x: unknown): Array<Record<string, unknown>> =>
    Array.isArray(x) ? (x as Array<Record<string, unknown>>) : x && typeof x === 'object' ? [x as Record<string, unknown>] : [];
  const pixel = ds['PixelData'];
  const bytes = new Uint8Array(Array.isArray(pixel) ? (pixel[0] as ArrayBuffer) : (pixel as ArrayBuffer));
  const plane = rows * cols;
  if (bytes.length * 8 < frames * plane) throw new UserError(`${path}: truncated pixel data`);
  const sopUids = reference.source?.format === 'dicom' ? reference.source.series.sopInstanceUids : [];
  const perFrame = seq(ds['PerFrameFunctionalGroupsSequence']);
  const shared = seq(ds['SharedFunctionalGroupsSequence'])[0] ?? {};
  const segments = seq(ds['SegmentSequence']).map((s, n) => ({
    number: Number(s['SegmentNumber'] ?? n + 1),
    label: String(s['SegmentLabel'] ?? ''),
    mask: new Uint8Array(reference.voxelCount),
  }));
  if (segments.length === 0) throw new UserError(`${path}: the SEG lists no segment`);
  for (let f = 0; f < frames; f++) {
    const fg = perFrame[f] ?? {};
    // A frame's segment is per frame, or shared by all frames of a one-segment SEG.
    const segmentNumber = Number(
      seq(fg['SegmentIdentificationSequence'] ?? shared['SegmentIdentificationSequence'])[0]?.['ReferencedSegmentNumber'] ??
        segments[0]!.number,
    );
    const segment = segments.find((s) => s.number === segmentNumber);
    if (!segment) throw new UserError(`${path}: frame ${f + 1} refers to segment ${segmentNumber}, which the SEG does not list`);
    const mask = segment.mask;
    const src = seq(seq(fg['DerivationImageSequence'])[0]?.['SourceImageSequence'])[0];
    let k = src ? sopUids.indexOf(String(src['ReferencedSOPInstanceUID'])) : -1;
    if (k < 0) {
      const ipp = seq(fg['PlanePositionSequence'])[0]?.['ImagePositionPatient'] as number[] | undefined;
      if (!ipp) throw new UserError(`${path}: frame ${f + 1} has neither a source image nor a position`);
      k = Math.round(reference.worldToVoxel(ipp.map(Number))[2]);
    }
    if (k < 0 || k >= reference.dims[2]) throw new UserError(`${path}: frame ${f + 1} lies outside the series`);
    for (let p = 0; p < plane; p++) {
      const bit = f * plane + p;
      if (bytes[bit >> 3]! & (1 << (bit & 7))) mask[k * plane + p] = 1;
    }
  }
  const refSeries = seq(ds['ReferencedSeriesSequence'])[0];
  return {
    sopClassUid: String(ds['SOPClassUID']),
    referencedSeriesUid: String(refSeries?.['SeriesInstanceUID'] ?? ''),
    studyInstanceUid: String(ds['StudyInstanceUID'] ?? ''),
    frameOfReferenceUid: String(ds['FrameOfReferenceUID'] ?? ''),
    segmentLabels: segments.map((s) => s.label),
    frames,
    mask: segments[0]!.mask,
    segments,
  };
}

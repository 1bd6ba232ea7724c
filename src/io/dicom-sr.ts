/**
 * DICOM Structured Report of the nodules: a TID 1500 "Imaging Measurement Report" (Enhanced SR
 * IOD, PS3.3 A.35.2) with one TID 1411 volumetric measurement group per nodule, each
 * referencing its segment of the DICOM SEG and the CT series it was segmented on: volume, long
 * and short axis, mean diameter, the volume as any one reader would draw it (where the model has
 * that level), the solid component of a part-solid nodule, and as
 * qualitative evaluations the type, the Lung-RADS category and the Fleischner recommendation
 * (decision support, with the guidelines' versions).
 *
 * Built as a naturalized dataset and written by dcmjs, like the SEG (dicom-seg.ts). Concepts
 * without a standard code use the private coding scheme NODULESEG_SCHEME ("99" prefix, as
 * PS3.16 8.2 allows for local codes).
 */
import dcmjs from 'dcmjs';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from './atomic.ts';
import type { Volume } from './volume.ts';
import { part10Bytes, SEG_SOP_CLASS } from './dicom-seg.ts';

export const ENHANCED_SR_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.88.22';
export const NODULESEG_SCHEME = '99NODULESEG';

/** What the SR says about one nodule (plain values: this module knows nothing of the model). */
export interface SrNodule {
  /** The segment number of this nodule in the SEG. */
  segmentNumber: number;
  trackingId: string;
  volumeMm3: number;
  longAxisMm: number;
  shortAxisMm: number;
  /** Mean of long and short axis, rounded as Lung-RADS does (0.1 mm). */
  meanDiameterMm: number;
  /** The volume of the nodule's any-reader extent (segment 2 of noduleseg's SEG), where the model has that level. */
  anyReaderVolumeMm3: number | null;
  /** Part-solid nodules: the solid component's mean diameter and volume. */
  solidComponent: { meanDiameterMm: number; volumeMm3: number; thresholdHU: number } | null;
  type: string | null;
  typeProbability: number | null;
  malignancySuspicion: number | null;
  lungRads: { version: string; category: string; reason: string } | null;
  fleischner: { version: string; recommendation: string } | null;
  /** z indices (voxels of the source series) of the slices holding the nodule. */
  slices: number[];
}

export interface SrReference {
  /** The SEG the measurements refer to. */
  segSopInstanceUid: string;
  segSeriesInstanceUid: string;
  algorithmName: string;
  algorithmVersion: string;
}

type Item = Record<string, unknown>;

const code = (value: string, scheme: string, meaning: string): Item => ({
  CodeValue: value,
  CodingSchemeDesignator: scheme,
  CodeMeaning: meaning,
});
const own = (value: string, meaning: string): Item => code(value, NODULESEG_SCHEME, meaning);
const MM = code('mm', 'UCUM', 'millimeter');
const MM3 = code('mm3', 'UCUM', 'cubic millimeter');
const RATIO = code('1', 'UCUM', 'no units');

function container(rel: string | null, concept: Item, content: Item[], template?: string): Item {
  return {
    ...(rel ? { RelationshipType: rel } : {}),
    ValueType: 'CONTAINER',
    ConceptNameCodeSequence: [concept],
    ContinuityOfContent: 'SEPARATE',
    ...(template ? { ContentTemplateSequence: [{ MappingResource: 'DCMR', TemplateIdentifier: template }] } : {}),
    ContentSequence: content,
  };
}
const text = (rel: string, concept: Item, value: string): Item => ({
  RelationshipType: rel,
  ValueType: 'TEXT',
  ConceptNameCodeSequence: [concept],
  TextValue: value.slice(0, 1024),
});
const codeItem = (rel: string, concept: Item, value: Item): Item => ({
  RelationshipType: rel,
  ValueType: 'CODE',
  ConceptNameCodeSequence: [concept],
  ConceptCodeSequence: [value],
});
const uidref = (rel: string, concept: Item, value: string): Item => ({
  RelationshipType: rel,
  ValueType: 'UIDREF',
  ConceptNameCodeSequence: [concept],
  UID: value,
});
function num(concept: Item, value: number, unit: Item, modifiers: Item[] = []): Item {
  // DS holds at most 16 characters.
  const v = Number(value.toPrecision(8));
  return {
    RelationshipType: 'CONTAINS',
    ValueType: 'NUM',
    ConceptNameCodeSequence: [concept],
    MeasuredValueSequence: [{ MeasurementUnitsCodeSequence: [unit], NumericValue: v }],
    ...(modifiers.length ? { ContentSequence: modifiers } : {}),
  };
}

/** Encodes the SR as a Part 10 file; `source` is the CT series (read from DICOM) the SEG references. */
export function encodeDicomSr(nodules: readonly SrNodule[], source: Volume, ref: SrReference): Uint8Array {
  if (source.source?.format !== 'dicom')
    throw new UserError('DICOM SR: the image was not read from a DICOM series, so there is nothing to reference');
  const series = source.source.series;
  const meta = dcmjs.data.DicomMetaDictionary;
  const sopInstanceUid = meta.uid();
  const now = { date: meta.date(), time: meta.time() };
  const imageRef = (k: number): Item => ({
    ReferencedSOPClassUID: series.sopClassUid,
    ReferencedSOPInstanceUID: series.sopInstanceUids[k],
  });
  const usedSlices = [...new Set(nodules.flatMap((n) => n.slices))]
    .filter((k) => k >= 0 && k < series.sopInstanceUids.length)
    .sort((a, b) => a - b);

  const groups = nodules.map((n) => {
    const items: Item[] = [
      text('HAS OBS CONTEXT', code('112039', 'DCM', 'Tracking Identifier'), n.trackingId),
      uidref('HAS OBS CONTEXT', code('112040', 'DCM', 'Tracking Unique Identifier'), meta.uid()),
      codeItem('CONTAINS', code('121071', 'DCM', 'Finding'), code('27925004', 'SCT', 'Nodule')),
      {
        RelationshipType: 'CONTAINS',
        ValueType: 'IMAGE',
        ConceptNameCodeSequence: [code('121191', 'DCM', 'Referenced Segment')],
        ReferencedSOPSequence: [
          {
            ReferencedSOPClassUID: SEG_SOP_CLASS,
            ReferencedSOPInstanceUID: ref.segSopInstanceUid,
            ReferencedSegmentNumber: n.segmentNumber,
          },
        ],
      },
      uidref('CONTAINS', code('121232', 'DCM', 'Source series for segmentation'), series.seriesInstanceUid),
      codeItem('HAS CONCEPT MOD', code('363698007', 'SCT', 'Finding Site'), code('39607008', 'SCT', 'Lung')),
      num(code('118565006', 'SCT', 'Volume'), n.volumeMm3, MM3),
      num(code('103339001', 'SCT', 'Long Axis'), n.longAxisMm, MM),
      num(code('103340004', 'SCT', 'Short Axis'), n.shortAxisMm, MM),
      num(code('81827009', 'SCT', 'Diameter'), n.meanDiameterMm, MM, [
        codeItem('HAS CONCEPT MOD', code('121401', 'DCM', 'Derivation'), code('373098007', 'SCT', 'Mean')),
      ]),
    ];
    if (n.anyReaderVolumeMm3 !== null)
      items.push(num(own('ANYREADERVOL', 'Volume as any one reader would draw it'), n.anyReaderVolumeMm3, MM3));
    if (n.solidComponent) {
      const s = n.solidComponent;
      items.push(num(own('SOLIDDIAM', 'Solid component mean diameter'), s.meanDiameterMm, MM));
      items.push(num(own('SOLIDVOL', 'Solid component volume'), s.volumeMm3, MM3));
      items.push(num(own('SOLIDHU', 'Solid component threshold'), s.thresholdHU, code("[hnsf'U]", 'UCUM', 'Hounsfield unit')));
    }
    const qualitative: Item[] = [];
    if (n.type) qualitative.push(text('CONTAINS', own('NODTYPE', 'Nodule type'), n.type));
    if (n.typeProbability !== null) qualitative.push(num(own('PTYPE', 'Nodule type probability'), n.typeProbability, RATIO));
    if (n.malignancySuspicion !== null)
      qualitative.push(num(own('PMALIG', "LIDC readers' malignancy suspicion, P(rating >= 4)"), n.malignancySuspicion, RATIO));
    if (n.lungRads) {
      qualitative.push(text('CONTAINS', own('LUNGRADS', `${n.lungRads.version} category`), n.lungRads.category));
      qualitative.push(text('CONTAINS', own('LUNGRADSWHY', 'Lung-RADS category reason'), n.lungRads.reason));
    }
    if (n.fleischner)
      qualitative.push(text('CONTAINS', own('FLEISCHNER', `${n.fleischner.version} recommendation`), n.fleischner.recommendation));
    // Measurements first, then qualitative evaluations (TID 1411 row order).
    for (const q of qualitative) items.push(q);
    return container('CONTAINS', code('125007', 'DCM', 'Measurement Group'), items, '1411');
  });

  const root = container(
    null,
    code('126000', 'DCM', 'Imaging Measurement Report'),
    [
      codeItem('HAS CONCEPT MOD', code('121049', 'DCM', 'Language of Content Item and Descendants'), code('eng', 'RFC5646', 'English')),
      codeItem('HAS OBS CONTEXT', code('121005', 'DCM', 'Observer Type'), code('121007', 'DCM', 'Device')),
      uidref('HAS OBS CONTEXT', code('121012', 'DCM', 'Device Observer UID'), meta.uid()),
      text('HAS OBS CONTEXT', code('121013', 'DCM', 'Device Observer Name'), ref.algorithmName),
      codeItem('HAS CONCEPT MOD', code('121058', 'DCM', 'Procedure reported'), code('169069000', 'SCT', 'Computed tomography of chest')),
      container('CONTAINS', code('111028', 'DCM', 'Image Library'), [
        container(
          'CONTAINS',
          code('126200', 'DCM', 'Image Library Group'),
          usedSlices.map((k) => ({ RelationshipType: 'CONTAINS', ValueType: 'IMAGE', ReferencedSOPSequence: [imageRef(k)] })),
        ),
      ]),
      container('CONTAINS', code('126010', 'DCM', 'Imaging Measurements'), groups),
    ],
    '1500',
  );

  const evidence = [
    {
      StudyInstanceUID: series.studyInstanceUid,
      ReferencedSeriesSequence: [
        { SeriesInstanceUID: series.seriesInstanceUid, ReferencedSOPSequence: usedSlices.map(imageRef) },
        {
          SeriesInstanceUID: ref.segSeriesInstanceUid,
          ReferencedSOPSequence: [{ ReferencedSOPClassUID: SEG_SOP_CLASS, ReferencedSOPInstanceUID: ref.segSopInstanceUid }],
        },
      ],
    },
  ];
  const dataset: Item = {
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: ENHANCED_SR_SOP_CLASS,
    SOPInstanceUID: sopInstanceUid,
    Modality: 'SR',
    SeriesInstanceUID: meta.uid(),
    SeriesNumber: 301,
    SeriesDescription: 'noduleseg nodule measurements',
    ReferencedPerformedProcedureStepSequence: [],
    InstanceNumber: 1,
    StudyInstanceUID: series.studyInstanceUid,
    StudyDate: series.studyDate,
    StudyTime: series.studyTime ?? '',
    StudyID: series.studyId,
    AccessionNumber: series.accessionNumber,
    ReferringPhysicianName: series.referringPhysicianName ?? '',
    PatientID: series.patientId,
    PatientName: series.patientName,
    PatientBirthDate: series.patientBirthDate ?? '',
    PatientSex: series.patientSex ?? '',
    Manufacturer: 'noduleseg',
    ManufacturerModelName: ref.algorithmName,
    SoftwareVersions: ref.algorithmVersion,
    ContentDate: now.date,
    ContentTime: now.time,
    CompletionFlag: 'COMPLETE',
    VerificationFlag: 'UNVERIFIED',
    PerformedProcedureCodeSequence: [],
    CurrentRequestedProcedureEvidenceSequence: evidence,
    ...root,
  };
  return part10Bytes(dataset, ENHANCED_SR_SOP_CLASS, sopInstanceUid);
}

export function writeDicomSr(path: string, nodules: readonly SrNodule[], source: Volume, ref: SrReference): void {
  writeFileAtomic(path, encodeDicomSr(nodules, source, ref));
}

/** The SOP Instance and Series UIDs of a SEG file's bytes (what the SR points at). */
export function segUidsOf(bytes: Uint8Array): { sopInstanceUid: string; seriesInstanceUid: string } {
  const dict = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict);
  if (ds['SOPClassUID'] !== SEG_SOP_CLASS) throw new UserError(`not a DICOM SEG (SOP class ${String(ds['SOPClassUID'])})`);
  return { sopInstanceUid: String(ds['SOPInstanceUID']), seriesInstanceUid: String(ds['SeriesInstanceUID']) };
}

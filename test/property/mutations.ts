// Mutations of valid NIfTI, MetaImage, DICOM and LIDC XML files, as plain data (so that
// fast-check can print and shrink a failing case), and the functions that apply them to bytes.
import fc from 'fast-check';
import dcmjs from 'dcmjs';
import { gzipSync } from 'node:zlib';

// ---------------------------------------------------------------------------------------------
// Values

/** Numbers that readers get wrong: zero, signs, type limits, non-finite, tiny and huge. */
export const weirdNumber: fc.Arbitrary<number> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      0,
      -0,
      1,
      -1,
      2,
      3,
      4,
      7,
      8,
      16,
      255,
      256,
      348,
      352,
      540,
      32767,
      -32768,
      65535,
      2147483647,
      NaN,
      Infinity,
      -Infinity,
      1e-30,
      1e-7,
      0.5,
      1e30,
    ),
  },
  { weight: 1, arbitrary: fc.integer({ min: -70000, max: 70000 }) },
  { weight: 1, arbitrary: fc.double() },
);

/** A header value as text: numbers as a reader writes them, and junk. */
const weirdWord: fc.Arbitrary<string> = fc.oneof(
  weirdNumber.map(String),
  fc.constantFrom('', 'abc', 'nan', '-', '1e400', '0x10', ' ', '1,5', '\t'),
  fc.string({ maxLength: 8 }),
);

/** A list of 1 to 12 numbers or words, space- or backslash-separated. */
function wordList(sep: string): fc.Arbitrary<string> {
  return fc
    .array(fc.oneof({ weight: 4, arbitrary: weirdNumber.map(String) }, { weight: 1, arbitrary: weirdWord }), {
      minLength: 0,
      maxLength: 12,
    })
    .map((xs) => xs.join(sep));
}

/** The base file: synthetic twice as often as real (a real scan costs more per case). */
function baseOf<B extends string>(bases: ReadonlyArray<B>): fc.Arbitrary<B> {
  return fc.oneof(...bases.map((b, n) => ({ weight: n === 0 ? 2 : 1, arbitrary: fc.constant(b) })));
}

/** Where in a file: a fraction of its length, so a case means the same on a small or large file. */
const fraction = fc.double({ min: 0, max: 1, noNaN: true });

// ---------------------------------------------------------------------------------------------
// NIfTI-1

type NiftiType = 'i16' | 'i32' | 'f32';
/** Header fields of NIfTI-1 (byte offset, type), from nifti1.h. */
export const NIFTI_FIELDS: Record<string, [number, NiftiType]> = {
  sizeof_hdr: [0, 'i32'],
  dim0: [40, 'i16'],
  dim1: [42, 'i16'],
  dim2: [44, 'i16'],
  dim3: [46, 'i16'],
  dim4: [48, 'i16'],
  dim5: [50, 'i16'],
  datatype: [70, 'i16'],
  bitpix: [72, 'i16'],
  pixdim0: [76, 'f32'],
  pixdim1: [80, 'f32'],
  pixdim2: [84, 'f32'],
  pixdim3: [88, 'f32'],
  pixdim4: [92, 'f32'],
  vox_offset: [108, 'f32'],
  scl_slope: [112, 'f32'],
  scl_inter: [116, 'f32'],
  qform_code: [252, 'i16'],
  sform_code: [254, 'i16'],
  quatern_b: [256, 'f32'],
  quatern_c: [260, 'f32'],
  quatern_d: [264, 'f32'],
  qoffset_x: [268, 'f32'],
  qoffset_y: [272, 'f32'],
  qoffset_z: [276, 'f32'],
  srow_x0: [280, 'f32'],
  srow_x1: [284, 'f32'],
  srow_x3: [292, 'f32'],
  srow_y1: [300, 'f32'],
  srow_y2: [304, 'f32'],
  srow_z0: [312, 'f32'],
  srow_z2: [320, 'f32'],
  srow_z3: [324, 'f32'],
  magic: [344, 'i32'],
};

export type ByteOp = { op: 'truncate'; at: number } | { op: 'flip'; at: number; byte: number } | { op: 'append'; bytes: number };

export type NiftiOp = { op: 'field'; field: string; value: number } | ByteOp;

export interface NiftiMutation {
  base: 'synthetic' | 'real';
  gzip: boolean;
  ops: NiftiOp[];
  /** Damage the gzip stream itself (after compression). */
  gzipOps: ByteOp[];
}

const byteOp: fc.Arbitrary<ByteOp> = fc.oneof(
  fc.record({ op: fc.constant('truncate' as const), at: fraction }),
  fc.record({ op: fc.constant('flip' as const), at: fraction, byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('append' as const), bytes: fc.integer({ min: 1, max: 64 }) }),
);

/** Header flips land in the first 352 bytes half of the time: that is where a reader decides. */
const niftiByteOp: fc.Arbitrary<ByteOp> = fc.oneof(
  byteOp,
  fc.record({
    op: fc.constant('flip' as const),
    at: fc.double({ min: 0, max: 0.999, noNaN: true }).map((f) => -f),
    byte: fc.integer({ min: 0, max: 255 }),
  }),
);

export const niftiMutation = (bases: ReadonlyArray<NiftiMutation['base']>): fc.Arbitrary<NiftiMutation> =>
  fc.record({
    base: baseOf(bases),
    gzip: fc.boolean(),
    ops: fc.array(
      fc.oneof(
        {
          weight: 4,
          arbitrary: fc.record({
            op: fc.constant('field' as const),
            field: fc.constantFrom(...Object.keys(NIFTI_FIELDS)),
            value: weirdNumber,
          }),
        },
        { weight: 1, arbitrary: niftiByteOp },
      ),
      { minLength: 1, maxLength: 3 },
    ),
    gzipOps: fc.oneof(
      { weight: 5, arbitrary: fc.constant<ByteOp[]>([]) },
      { weight: 1, arbitrary: fc.array(byteOp, { minLength: 1, maxLength: 1 }) },
    ),
  });

/** Applies byte-level damage; a negative `at` of a flip means that fraction of the 352-byte header. */
export function applyByteOp(b: Uint8Array, o: ByteOp): Uint8Array {
  if (o.op === 'truncate') return b.subarray(0, Math.floor(o.at * b.length));
  if (o.op === 'append') return Uint8Array.from([...b, ...new Uint8Array(o.bytes).fill(0xa5)]);
  const out = Uint8Array.from(b);
  const at = o.at < 0 ? Math.floor(-o.at * Math.min(352, b.length)) : Math.floor(o.at * b.length);
  if (at < out.length) out[at] = o.byte;
  return out;
}

export function applyNifti(base: Uint8Array, m: NiftiMutation): Uint8Array {
  let b: Uint8Array = Uint8Array.from(base);
  for (const o of m.ops) {
    if (o.op !== 'field') {
      b = applyByteOp(b, o);
      continue;
    }
    const [at, type] = NIFTI_FIELDS[o.field]!;
    if (at + 4 > b.length) continue;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (type === 'f32') dv.setFloat32(at, o.value, true);
    else if (type === 'i32') dv.setInt32(at, Number.isFinite(o.value) ? o.value | 0 : 0, true);
    else dv.setInt16(at, Number.isFinite(o.value) ? o.value | 0 : 0, true);
  }
  if (!m.gzip) return b;
  let z: Uint8Array = new Uint8Array(gzipSync(b));
  for (const o of m.gzipOps) z = applyByteOp(z, o);
  return z;
}

// ---------------------------------------------------------------------------------------------
// MetaImage (.mhd + .raw, or .mha with the data inside)

const META_KEYS = [
  'ObjectType',
  'NDims',
  'DimSize',
  'ElementSpacing',
  'ElementSize',
  'Offset',
  'TransformMatrix',
  'CenterOfRotation',
  'AnatomicalOrientation',
  'ElementType',
  'ElementDataFile',
  'CompressedData',
  'CompressedDataSize',
  'BinaryData',
  'BinaryDataByteOrderMSB',
  'ElementNumberOfChannels',
  'HeaderSize',
] as const;

export type MetaOp =
  | { op: 'set'; key: string; value: string }
  | { op: 'delete'; key: string }
  | { op: 'duplicate'; key: string; value: string }
  | { op: 'headerLine'; text: string }
  | { op: 'data'; damage: ByteOp };

export interface MetaMutation {
  base: 'synthetic' | 'real';
  container: 'mhd' | 'mha';
  ops: MetaOp[];
}

const metaValue = (key: string): fc.Arbitrary<string> => {
  switch (key) {
    case 'NDims':
      return fc.oneof(fc.constantFrom('0', '1', '2', '3', '4', '-3', 'x', ''), weirdWord);
    case 'ElementType':
      return fc.constantFrom(
        'MET_SHORT',
        'MET_UCHAR',
        'MET_FLOAT',
        'MET_DOUBLE',
        'MET_LONG_LONG',
        'MET_ULONG_LONG',
        'MET_CHAR_ARRAY',
        'MET_STRING',
        'MET_NONE',
        'short',
        '',
      );
    case 'ElementDataFile':
      return fc.constantFrom('LOCAL', 'missing.raw', 'LIST', 'slice%03d.raw 1 3 1', '', '../..', '.');
    case 'CompressedData':
    case 'BinaryData':
    case 'BinaryDataByteOrderMSB':
      return fc.constantFrom('True', 'False', 'maybe', '');
    case 'AnatomicalOrientation':
      return fc.constantFrom('RAI', 'LPS', 'XYZ', '???', '');
    case 'ObjectType':
      return fc.constantFrom('Image', 'Mesh', 'Scene', '');
    default:
      return wordList(' ');
  }
};

export const metaMutation = (bases: ReadonlyArray<MetaMutation['base']>): fc.Arbitrary<MetaMutation> =>
  fc.record({
    base: baseOf(bases),
    container: fc.constantFrom('mhd' as const, 'mha' as const),
    ops: fc.array(
      fc.oneof(
        {
          weight: 5,
          arbitrary: fc.constantFrom(...META_KEYS).chain((key) => metaValue(key).map((value) => ({ op: 'set' as const, key, value }))),
        },
        { weight: 1, arbitrary: fc.constantFrom(...META_KEYS).map((key) => ({ op: 'delete' as const, key })) },
        {
          weight: 1,
          arbitrary: fc
            .constantFrom(...META_KEYS)
            .chain((key) => metaValue(key).map((value) => ({ op: 'duplicate' as const, key, value }))),
        },
        {
          weight: 1,
          arbitrary: fc
            .constantFrom('garbage', '= 3', 'DimSize', '\u0000\u0001', 'Comment = x')
            .map((text) => ({ op: 'headerLine' as const, text })),
        },
        { weight: 2, arbitrary: byteOp.map((damage) => ({ op: 'data' as const, damage })) },
      ),
      { minLength: 1, maxLength: 3 },
    ),
  });

/**
 * The header lines and voxel bytes of a MetaImage after the mutation. ElementDataFile stays the
 * last line (MetaIO stops reading there); the caller writes `dataName` beside an .mhd.
 */
export function applyMeta(headerText: string, data: Uint8Array, m: MetaMutation, dataName: string): { header: string; data: Uint8Array } {
  const lines = headerText.split('\n').filter((l) => l.trim().length > 0 && !/^ElementDataFile\s*=/.test(l));
  let dataFile = m.container === 'mha' ? 'LOCAL' : dataName;
  let bytes = data;
  const extra: string[] = [];
  for (const o of m.ops) {
    if (o.op === 'data') {
      bytes = applyByteOp(bytes, o.damage);
      continue;
    }
    if (o.op === 'headerLine') {
      extra.push(o.text);
      continue;
    }
    if (o.key === 'ElementDataFile') {
      if (o.op === 'set') dataFile = o.value;
      else if (o.op === 'duplicate') extra.push(`ElementDataFile = ${o.value}`);
      else dataFile = '';
      continue;
    }
    const at = lines.findIndex((l) => l.startsWith(`${o.key} =`));
    if (o.op === 'delete') {
      if (at >= 0) lines.splice(at, 1);
    } else if (o.op === 'set' && at >= 0) lines[at] = `${o.key} = ${o.value}`;
    else lines.push(`${o.key} = ${o.value}`);
  }
  const header = [...lines, ...extra, ...(dataFile === '' ? [] : [`ElementDataFile = ${dataFile}`])].join('\n') + '\n';
  return { header, data: bytes };
}

// ---------------------------------------------------------------------------------------------
// DICOM series

/** Tags the series reader depends on, with their VR. */
const DICOM_TAGS: Record<string, [string, string]> = {
  Modality: ['00080060', 'CS'],
  SeriesInstanceUID: ['0020000E', 'UI'],
  SOPInstanceUID: ['00080018', 'UI'],
  ImagePositionPatient: ['00200032', 'DS'],
  ImageOrientationPatient: ['00200037', 'DS'],
  PixelSpacing: ['00280030', 'DS'],
  SliceThickness: ['00180050', 'DS'],
  Rows: ['00280010', 'US'],
  Columns: ['00280011', 'US'],
  BitsAllocated: ['00280100', 'US'],
  PixelRepresentation: ['00280103', 'US'],
  SamplesPerPixel: ['00280002', 'US'],
  RescaleSlope: ['00281053', 'DS'],
  RescaleIntercept: ['00281052', 'DS'],
  NumberOfFrames: ['00280008', 'IS'],
  InstanceNumber: ['00200013', 'IS'],
};

const TRANSFER_SYNTAXES = [
  '1.2.840.10008.1.2',
  '1.2.840.10008.1.2.1',
  '1.2.840.10008.1.2.2',
  '1.2.840.10008.1.2.4.50',
  '1.2.840.10008.1.2.4.90',
  '1.2.840.10008.1.2.5',
  '1.2.840.10008.1.2.1.99',
  '1.2.3.4',
  '',
];

export type DicomOp =
  /** Set a tag on one slice (index modulo the slice count) or on every slice (-1). */
  | { op: 'tag'; slice: number; tag: string; value: string[] }
  | { op: 'deleteTag'; slice: number; tag: string }
  /** Rows and Columns together (one alone is mostly a size mismatch between slices). */
  | { op: 'size'; slice: number; rows: number; cols: number }
  | { op: 'transferSyntax'; slice: number; uid: string }
  | { op: 'remove'; slice: number }
  | { op: 'duplicate'; slice: number }
  | { op: 'bytes'; slice: number; damage: ByteOp }
  | { op: 'junkFile'; name: string; text: string };

export interface DicomMutation {
  base: 'synthetic' | 'real';
  ops: DicomOp[];
}

const dimension = fc.oneof(fc.constantFrom(0, 1, 2, 16, 20, 512, 4096, 65535), fc.integer({ min: 0, max: 65535 }));
const sliceIndex = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 7 }) }, { weight: 1, arbitrary: fc.constant(-1) });

const tagValue = (tag: string): fc.Arbitrary<string[]> => {
  const vr = DICOM_TAGS[tag]![1];
  const words = (n: number) =>
    fc.oneof(fc.array(weirdNumber.map(String), { minLength: n, maxLength: n }), fc.array(weirdWord, { minLength: 0, maxLength: n + 1 }));
  switch (tag) {
    case 'Modality':
      return fc.constantFrom(['CT'], ['MR'], ['ct'], ['SEG'], ['']);
    case 'SeriesInstanceUID':
    case 'SOPInstanceUID':
      return fc.constantFrom(['1.2.3.4.5'], [''], ['1.2.826.0.1.3680043.10.1453.9.1']);
    case 'ImageOrientationPatient':
      return fc.oneof(
        fc.constantFrom<string[]>(
          ['0', '1', '0', '0', '0', '-1'],
          ['1', '0', '0', '1', '0', '0'],
          ['0', '0', '0', '0', '0', '0'],
          ['2', '0', '0', '0', '2', '0'],
          ['0.7071', '0.7071', '0', '-0.7071', '0.7071', '0'],
        ),
        words(6),
      );
    case 'ImagePositionPatient':
      return words(3);
    case 'PixelSpacing':
      return words(2);
    default:
      return vr === 'US'
        ? fc.array(fc.oneof(fc.constantFrom(0, 1, 2, 3, 8, 12, 16, 32, 65535), fc.integer({ min: 0, max: 65535 })).map(String), {
            minLength: 1,
            maxLength: 1,
          })
        : words(1);
  }
};

export const dicomMutation = (bases: ReadonlyArray<DicomMutation['base']>): fc.Arbitrary<DicomMutation> =>
  fc.record({
    base: baseOf(bases),
    ops: fc.array(
      fc.oneof(
        {
          weight: 6,
          arbitrary: fc
            .tuple(sliceIndex, fc.constantFrom(...Object.keys(DICOM_TAGS)))
            .chain(([slice, tag]) => tagValue(tag).map((value) => ({ op: 'tag' as const, slice, tag, value }))),
        },
        {
          weight: 1,
          arbitrary: fc
            .tuple(sliceIndex, fc.constantFrom(...Object.keys(DICOM_TAGS)))
            .map(([slice, tag]) => ({ op: 'deleteTag' as const, slice, tag })),
        },
        {
          weight: 1,
          arbitrary: fc.tuple(sliceIndex, dimension, dimension).map(([slice, rows, cols]) => ({ op: 'size' as const, slice, rows, cols })),
        },
        {
          weight: 1,
          arbitrary: fc
            .tuple(sliceIndex, fc.constantFrom(...TRANSFER_SYNTAXES))
            .map(([slice, uid]) => ({ op: 'transferSyntax' as const, slice, uid })),
        },
        { weight: 2, arbitrary: fc.integer({ min: 0, max: 7 }).map((slice) => ({ op: 'remove' as const, slice })) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 7 }).map((slice) => ({ op: 'duplicate' as const, slice })) },
        {
          weight: 2,
          arbitrary: fc.tuple(fc.integer({ min: 0, max: 7 }), byteOp).map(([slice, damage]) => ({ op: 'bytes' as const, slice, damage })),
        },
        {
          weight: 1,
          arbitrary: fc.record({
            op: fc.constant('junkFile' as const),
            name: fc.constantFrom('notes.txt', 'DICOMDIR', 'x.dcm', '.hidden'),
            text: fc.constantFrom('', 'hello', 'DICM'.padStart(132, '\0')),
          }),
        },
      ),
      { minLength: 1, maxLength: 3 },
    ),
  });

/** A slice as dcmjs holds it (meta + dataset, not naturalized: no dictionary look-ups, any VR). */
interface DicomParts {
  meta: Record<string, { vr: string; Value: unknown[] }>;
  dict: Record<string, { vr: string; Value: unknown[] }>;
}

function parseDicom(bytes: Uint8Array): DicomParts {
  const d = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  return { meta: d.meta as DicomParts['meta'], dict: d.dict as DicomParts['dict'] };
}

function encodeDicom(p: DicomParts): Uint8Array {
  const d = new dcmjs.data.DicomDict(p.meta);
  d.dict = p.dict;
  // allowInvalidVRLength: a wrong value is the point here, dcmjs must write it as it is.
  return new Uint8Array(d.write({ fragmentMultiframe: false, allowInvalidVRLength: true }));
}

/**
 * The files of the mutated series: name -> bytes. Tag edits go through dcmjs (so the file stays
 * well formed and only the value is wrong); byte damage is applied last, to the encoded file.
 */
export function applyDicom(base: ReadonlyArray<readonly [string, Uint8Array]>, m: DicomMutation): Array<[string, Uint8Array]> {
  const n = base.length;
  const parsed = new Map<number, DicomParts>();
  const parts = (k: number) => {
    let p = parsed.get(k);
    if (!p) {
      p = parseDicom(base[k]![1]);
      parsed.set(k, p);
    }
    return p;
  };
  const targets = (slice: number) => (slice < 0 ? [...Array(n).keys()] : [slice % n]);
  for (const o of m.ops) {
    if (o.op === 'tag') {
      const [tag, vr] = DICOM_TAGS[o.tag]!;
      for (const k of targets(o.slice)) parts(k).dict[tag] = { vr, Value: vr === 'US' ? o.value.map(Number) : o.value };
    } else if (o.op === 'size') {
      for (const k of targets(o.slice)) {
        parts(k).dict['00280010'] = { vr: 'US', Value: [o.rows] };
        parts(k).dict['00280011'] = { vr: 'US', Value: [o.cols] };
      }
    } else if (o.op === 'deleteTag') {
      for (const k of targets(o.slice)) delete parts(k).dict[DICOM_TAGS[o.tag]![0]];
    } else if (o.op === 'transferSyntax') {
      for (const k of targets(o.slice)) parts(k).meta['00020010'] = { vr: 'UI', Value: [o.uid] };
    }
  }
  const files: Array<[string, Uint8Array]> = base.map(([name, bytes], k) => [name, parsed.has(k) ? encodeDicom(parsed.get(k)!) : bytes]);
  const removed = new Set<string>();
  for (const o of m.ops) {
    if (o.op === 'bytes') {
      const f = files[o.slice % n]!;
      f[1] = applyByteOp(f[1], o.damage);
    } else if (o.op === 'duplicate') {
      const [name, bytes] = files[o.slice % n]!;
      files.push([`copy-${name}`, bytes]);
    } else if (o.op === 'remove') removed.add(files[o.slice % n]![0]);
    else if (o.op === 'junkFile') files.push([o.name, new TextEncoder().encode(o.text)]);
  }
  return files.filter(([name]) => !removed.has(name));
}

// ---------------------------------------------------------------------------------------------
// LIDC XML

const XML_ELEMENTS = [
  'imageZposition',
  'imageSOP_UID',
  'xCoord',
  'yCoord',
  'inclusion',
  'noduleID',
  'SeriesInstanceUid',
  'malignancy',
  'texture',
  'servicingRadiologistID',
  'readingSession',
  'unblindedReadNodule',
  'roi',
  'edgeMap',
  'nonNodule',
  'locus',
  'characteristics',
  'ResponseHeader',
  'LidcReadMessage',
] as const;

export type XmlOp =
  /** Replace the text of the nth occurrence of an element (modulo the count; -1: every one). */
  | { op: 'text'; element: string; nth: number; value: string }
  | { op: 'drop'; element: string; nth: number }
  | { op: 'duplicate'; element: string; nth: number }
  | { op: 'insert'; at: number; text: string }
  | { op: 'truncate'; at: number };

export interface XmlMutation {
  base: 'synthetic' | 'real';
  ops: XmlOp[];
}

const xmlText = fc.oneof(
  weirdNumber.map(String),
  fc.constantFrom(
    '',
    'abc',
    'FALSE',
    'TRUE',
    '1e9',
    '-1e9',
    '2147483648',
    '99999999999',
    '1.2.3.4',
    '-0',
    '&amp;',
    '<![CDATA[5]]>',
    '<x/>',
  ),
  fc.integer({ min: -600, max: 1200 }).map(String),
);

export const xmlMutation = (bases: ReadonlyArray<XmlMutation['base']>): fc.Arbitrary<XmlMutation> =>
  fc.record({
    base: baseOf(bases),
    ops: fc.array(
      fc.oneof(
        {
          weight: 6,
          arbitrary: fc.record({
            op: fc.constant('text' as const),
            element: fc.constantFrom(...XML_ELEMENTS.slice(0, 10)),
            nth: fc.integer({ min: -1, max: 50 }),
            value: xmlText,
          }),
        },
        {
          weight: 2,
          arbitrary: fc.record({
            op: fc.constant('drop' as const),
            element: fc.constantFrom(...XML_ELEMENTS),
            nth: fc.integer({ min: -1, max: 50 }),
          }),
        },
        {
          weight: 1,
          arbitrary: fc.record({
            op: fc.constant('duplicate' as const),
            element: fc.constantFrom(...XML_ELEMENTS),
            nth: fc.integer({ min: 0, max: 50 }),
          }),
        },
        {
          weight: 1,
          arbitrary: fc.record({
            op: fc.constant('insert' as const),
            at: fraction,
            text: fc.constantFrom('<', '&', '</roi>', '<?xml version="1.0"?>', '\u0000', ']]>', '<roi>', '<LidcReadMessage>'),
          }),
        },
        { weight: 1, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: fraction }) },
      ),
      { minLength: 1, maxLength: 3 },
    ),
  });

/** Occurrences [start, end) of `<el>...</el>` (any namespace prefix) in document order. */
function occurrences(xml: string, el: string): Array<[number, number, number, number]> {
  const re = new RegExp(`<((?:\\w+:)?${el})>([\\s\\S]*?)</\\1>`, 'g');
  const out: Array<[number, number, number, number]> = [];
  for (const m of xml.matchAll(re)) {
    const open = m[1]!.length + 2;
    out.push([m.index!, m.index! + m[0].length, m.index! + open, m.index! + m[0].length - open - 1]);
  }
  return out;
}

export function applyXml(base: string, m: XmlMutation): string {
  let xml = base;
  for (const o of m.ops) {
    if (o.op === 'truncate') {
      xml = xml.slice(0, Math.floor(o.at * xml.length));
      continue;
    }
    if (o.op === 'insert') {
      const at = Math.floor(o.at * xml.length);
      xml = xml.slice(0, at) + o.text + xml.slice(at);
      continue;
    }
    const occ = occurrences(xml, o.element);
    if (occ.length === 0) continue;
    // Edits from the last occurrence back, so earlier offsets stay valid.
    const chosen = o.nth < 0 ? [...occ].reverse() : [occ[o.nth % occ.length]!];
    for (const [start, end, inner, innerEnd] of chosen) {
      if (o.op === 'text') xml = xml.slice(0, inner) + o.value + xml.slice(innerEnd);
      else if (o.op === 'drop') xml = xml.slice(0, start) + xml.slice(end);
      else xml = xml.slice(0, end) + xml.slice(start, end) + xml.slice(end);
    }
  }
  return xml;
}

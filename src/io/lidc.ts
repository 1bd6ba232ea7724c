/**
 * LIDC-IDRI XML reads: parse, rasterise each reader's outlines on the scan's grid, group the
 * readers' marks into physical nodules, and build consensus masks and a per-nodule report.
 *
 * Outline convention: LIDC readers drew each outline on the pixels just OUTSIDE the nodule, so
 * that the outline does not cover nodule tissue (LIDC reader instructions, McNitt-Gray et al.,
 * Acad Radiol 2007). The nodule on a slice is therefore the region strictly inside the outline,
 * without the outline pixels. We checked it on the data: filling this way reproduces the
 * lidc-crops masks of LIDC-IDRI-0001 and -0003 voxel for voxel, while keeping the outline pixels
 * adds a one-pixel rim to every slice (see fillInside for how "inside" is decided, and
test/io/lidc.test.ts).
 * An outline with inclusion=FALSE marks a hole (e.g. a cavity): the region strictly inside it
 * is removed from that reader's nodule.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { UserError } from '../errors.ts';
import { describeFsError } from './atomic.ts';
import { readDicomSeries, type DicomReadOptions, type DicomSeriesResult } from './dicom.ts';
import type { Vec3, Volume } from './volume.ts';

export const CHARACTERISTICS = [
  'subtlety',
  'internalStructure',
  'calcification',
  'sphericity',
  'margin',
  'lobulation',
  'spiculation',
  'texture',
  'malignancy',
] as const;
export type Characteristic = (typeof CHARACTERISTICS)[number];

export interface LidcRoi {
  zPositionMm: number;
  sopInstanceUid: string;
  inclusion: boolean;
  /** Outline pixels (column x, row y) in the slice. */
  edgeMap: Array<[number, number]>;
}

/** A reader's nodule >= 3 mm: outlines and characteristics. */
export interface LidcNoduleRead {
  reader: number;
  noduleId: string;
  characteristics: Partial<Record<Characteristic, number>>;
  rois: LidcRoi[];
}

/** A reader's nodule < 3 mm, or a non-nodule: one point on one slice. */
export interface LidcPointMark {
  reader: number;
  id: string;
  zPositionMm: number;
  sopInstanceUid: string;
  point: [number, number];
}

export interface LidcXml {
  path: string;
  seriesInstanceUid: string;
  studyInstanceUid: string;
  /** One entry per reading session (reader), in file order. */
  readers: Array<{ reader: number; radiologistId: string }>;
  nodules: LidcNoduleRead[];
  smallNodules: LidcPointMark[];
  nonNodules: LidcPointMark[];
}

const ARRAYS = new Set(['readingSession', 'unblindedReadNodule', 'roi', 'edgeMap', 'nonNodule']);

type XmlNode = Record<string, unknown>;

function asNode(x: unknown): XmlNode {
  return x && typeof x === 'object' ? (x as XmlNode) : {};
}
function text(x: unknown): string {
  if (typeof x === 'string') return x.trim();
  if (typeof x === 'number') return String(x);
  return '';
}
function list(x: unknown): XmlNode[] {
  return Array.isArray(x) ? x.map(asNode) : x === undefined ? [] : [asNode(x)];
}

export function parseLidcXml(path: string): LidcXml {
  let xml: string;
  try {
    xml = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`${path}: cannot read (${describeFsError(e)})`, { cause: e });
  }
  return parseLidcXmlString(xml, path);
}

export function parseLidcXmlString(xml: string, path: string): LidcXml {
  if (xml.trim().length === 0) throw new UserError(`${path}: empty file`);
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new UserError(`${path}: malformed XML (line ${valid.err.line}: ${valid.err.msg})`);
  // parseTagValue false keeps UIDs and coordinates as strings (a UID is not a number).
  const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, removeNSPrefix: true, isArray: (name) => ARRAYS.has(name) });
  const doc = asNode(parser.parse(xml));
  const root = asNode(doc['LidcReadMessage']);
  if (!doc['LidcReadMessage']) throw new UserError(`${path}: not an LIDC read (no LidcReadMessage element)`);
  const header = asNode(root['ResponseHeader']);
  const out: LidcXml = {
    path,
    seriesInstanceUid: text(header['SeriesInstanceUid']),
    studyInstanceUid: text(header['StudyInstanceUID']),
    readers: [],
    nodules: [],
    smallNodules: [],
    nonNodules: [],
  };
  const num = (x: unknown, what: string): number => {
    const v = Number.parseFloat(text(x));
    if (!Number.isFinite(v)) throw new UserError(`${path}: ${what} is not a number ("${text(x)}")`);
    return v;
  };
  list(root['readingSession']).forEach((session, reader) => {
    out.readers.push({ reader, radiologistId: text(session['servicingRadiologistID']) });
    for (const n of list(session['unblindedReadNodule'])) {
      const noduleId = text(n['noduleID']);
      const rois: LidcRoi[] = list(n['roi']).map((r) => ({
        zPositionMm: num(r['imageZposition'], `imageZposition of ${noduleId}`),
        sopInstanceUid: text(r['imageSOP_UID']),
        inclusion: text(r['inclusion']).toUpperCase() !== 'FALSE',
        edgeMap: list(r['edgeMap']).map(
          (e) => [num(e['xCoord'], `xCoord of ${noduleId}`), num(e['yCoord'], `yCoord of ${noduleId}`)] as [number, number],
        ),
      }));
      const ch = asNode(n['characteristics']);
      const hasCharacteristics = n['characteristics'] !== undefined && CHARACTERISTICS.some((k) => text(ch[k]) !== '');
      // Nodules >= 3 mm carry characteristics and outlines; < 3 mm only a centre point.
      if (hasCharacteristics || rois.some((r) => r.edgeMap.length > 1)) {
        const characteristics: Partial<Record<Characteristic, number>> = {};
        for (const k of CHARACTERISTICS) {
          const v = Number.parseInt(text(ch[k]), 10);
          if (Number.isFinite(v)) characteristics[k] = v;
        }
        out.nodules.push({ reader, noduleId, characteristics, rois });
      } else if (rois[0]?.edgeMap[0]) {
        out.smallNodules.push({
          reader,
          id: noduleId,
          zPositionMm: rois[0].zPositionMm,
          sopInstanceUid: rois[0].sopInstanceUid,
          point: rois[0].edgeMap[0],
        });
      }
    }
    for (const n of list(session['nonNodule'])) {
      const locus = asNode(n['locus']);
      out.nonNodules.push({
        reader,
        id: text(n['nonNoduleID']),
        zPositionMm: num(n['imageZposition'], 'nonNodule imageZposition'),
        sopInstanceUid: text(n['imageSOP_UID']),
        point: [num(locus['xCoord'], 'nonNodule xCoord'), num(locus['yCoord'], 'nonNodule yCoord')],
      });
    }
  });
  if (out.readers.length === 0) throw new UserError(`${path}: no readingSession in this LIDC read`);
  return out;
}

/** Slice index of an XML mark: by SOP Instance UID when the volume came from DICOM, else by z. */
export function sliceOf(vol: Volume, sopInstanceUid: string, zPositionMm: number): number {
  if (vol.source?.format === 'dicom') {
    const k = vol.source.series.sopInstanceUids.indexOf(sopInstanceUid);
    if (k >= 0) return k;
  }
  // imageZposition is the slice's world z; find the slice whose centre is nearest.
  let best = -1;
  let bestD = Infinity;
  for (let k = 0; k < vol.dims[2]; k++) {
    const d = Math.abs(vol.voxelToWorld([0, 0, k])[2] - zPositionMm);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  const dz = Math.abs(vol.voxelToWorld([0, 0, 1])[2] - vol.voxelToWorld([0, 0, 0])[2]) || vol.spacingMm[2];
  return bestD <= dz / 2 ? best : -1;
}

/**
 * Pixels strictly inside a closed outline, outline pixels excluded (the LIDC convention above).
 * "Inside" is the even-odd rule for pixel centres against the polygon through the outline points
 * in file order. We tried a flood fill ("not reachable from outside without crossing the
 * outline") first: it differs from the crops by one pixel in LIDC-IDRI-0001 and one in -0003,
 * where an outline crosses itself and pinches off a pixel that the polygon rule leaves out.
 */
export function fillInside(
  edge: ReadonlyArray<readonly [number, number]>,
  bounds?: { width: number; height: number },
): Array<[number, number]> {
  const n = edge.length;
  if (n < 3) return [];
  let y0 = Infinity;
  let y1 = -Infinity;
  for (const [, y] of edge) {
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
  }
  // Only pixels of the slice can be kept: a coordinate like 1e9 in a damaged XML must not make
  // us walk a billion scanlines (or columns).
  const xMax = bounds ? bounds.width - 1 : Infinity;
  if (bounds) {
    y0 = Math.max(y0, 0);
    y1 = Math.min(y1, bounds.height - 1);
  }
  const outline = new Set(edge.map(([x, y]) => `${x},${y}`));
  const inside: Array<[number, number]> = [];
  const xs: number[] = [];
  for (let y = y0; y <= y1; y++) {
    xs.length = 0;
    for (let i = 0; i < n; i++) {
      const [ax, ay] = edge[i]!;
      const [bx, by] = edge[(i + 1) % n]!;
      // Half-open rule so a vertex on the scanline is counted once.
      if (ay <= y !== by <= y) xs.push(ax + ((y - ay) * (bx - ax)) / (by - ay));
    }
    xs.sort((p, q) => p - q);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      // Centres strictly between a pair of crossings are inside.
      const xEnd = Math.min(xs[k + 1]!, xMax + 1);
      for (let x = Math.max(Math.floor(xs[k]!) + 1, bounds ? 0 : -Infinity); x < xEnd; x++) {
        if (!outline.has(`${x},${y}`)) inside.push([x, y]);
      }
    }
  }
  return inside;
}

export interface RasteriseOptions {
  /** Keep the outline pixels in the mask (not the LIDC convention; for comparison). */
  includeOutline?: boolean;
}

/**
 * One reader's nodule on the scan grid, as the sorted voxel indices it covers (a scan mask
 * would be 35 MB per read). Outlines whose slice is not in the volume count as missingSlices.
 */
export function rasteriseNodule(
  read: LidcNoduleRead,
  vol: Volume,
  options: RasteriseOptions = {},
): { voxels: Int32Array; missingSlices: number } {
  const [nx, ny] = vol.dims;
  const on = new Set<number>();
  let missingSlices = 0;
  const apply = (k: number, pts: Iterable<readonly [number, number]>, add: boolean) => {
    for (const [x, y] of pts) {
      if (x < 0 || y < 0 || x >= nx || y >= ny) continue;
      const n = x + nx * (y + ny * k);
      if (add) on.add(n);
      else on.delete(n);
    }
  };
  // Inclusions first, then holes, so a hole wins whatever the order in the file.
  for (const pass of [true, false]) {
    for (const roi of read.rois) {
      if (roi.inclusion !== pass) continue;
      const k = sliceOf(vol, roi.sopInstanceUid, roi.zPositionMm);
      if (k < 0) {
        missingSlices++;
        continue;
      }
      apply(k, fillInside(roi.edgeMap, { width: nx, height: ny }), pass);
      if (pass && options.includeOutline) apply(k, roi.edgeMap, true);
    }
  }
  return { voxels: Int32Array.from(on).sort(), missingSlices };
}

/** The sorted, distinct voxels of several voxel lists (each sorted and distinct, as rasteriseNodule gives them). */
export function sortedUnion(lists: readonly ArrayLike<number>[]): Int32Array {
  if (lists.length === 1) return Int32Array.from(lists[0]!);
  const all = new Set<number>();
  for (const l of lists) for (let i = 0; i < l.length; i++) all.add(l[i]!);
  return Int32Array.from(all).sort();
}

/** How many indices two sorted voxel lists share. */
export function sortedIntersectionSize(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      n++;
      i++;
      j++;
    } else if (a[i]! < b[j]!) i++;
    else j++;
  }
  return n;
}

/** A 0/1 mask of `voxelCount` voxels from sorted voxel indices. */
export function voxelsToMask(voxels: ArrayLike<number>, voxelCount: number): Uint8Array {
  const m = new Uint8Array(voxelCount);
  for (let i = 0; i < voxels.length; i++) m[voxels[i]!] = 1;
  return m;
}

/** Agreement: a fraction of the nodule's readers (0.5 = half), 'any', 'all', or a reader count. */
export type Agreement = number | 'any' | 'all' | { readers: number };

export function parseAgreement(s: string): Agreement {
  if (s === 'any' || s === 'all') return s;
  const v = Number(s);
  if (!Number.isFinite(v) || v <= 0)
    throw new UserError(`--agreement: expected a fraction in (0, 1], any, all or a reader count, got "${s}"`);
  if (v <= 1) return v;
  if (Number.isInteger(v)) return { readers: v };
  throw new UserError(`--agreement: a reader count must be a whole number, got "${s}"`);
}

/** Minimum number of readers (of n who marked the nodule) a voxel needs at this agreement. */
export function readersNeeded(agreement: Agreement, n: number): number {
  if (agreement === 'any') return 1;
  if (agreement === 'all') return n;
  if (typeof agreement === 'number') return Math.max(1, Math.ceil(agreement * n - 1e-9));
  return agreement.readers;
}

export interface LidcNodule {
  /** 1-based, ordered by z then y then x of the centre. */
  index: number;
  /** The reads grouped into this nodule (one per reader, usually). */
  reads: LidcNoduleRead[];
  readers: number[];
  /** Every voxel some reader marked (sorted), and how many readers marked it. */
  voxels: Int32Array;
  votes: Uint8Array;
  /** Each reader's own voxels (sorted; the reader's reads joined), in the order of `readers`. */
  readerVoxels: Int32Array[];
}

function intersects(a: Int32Array, b: Int32Array): boolean {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) return true;
    if (a[i]! < b[j]!) i++;
    else j++;
  }
  return false;
}

/**
 * Groups the readers' nodules into physical nodules: two reads are one nodule when their masks
 * share a voxel (the XML has no nodule identity across readers). Connected groups are merged.
 */
export function groupNodules(xml: LidcXml, vol: Volume): LidcNodule[] {
  const voxels = xml.nodules.map((r) => rasteriseNodule(r, vol).voxels);
  const parent = xml.nodules.map((_, i) => i);
  const find = (i: number): number => {
    if (parent[i] !== i) parent[i] = find(parent[i]!);
    return parent[i]!;
  };
  for (let a = 0; a < voxels.length; a++) {
    for (let b = a + 1; b < voxels.length; b++) {
      if (find(a) !== find(b) && intersects(voxels[a]!, voxels[b]!)) parent[find(a)] = find(b);
    }
  }
  const groups = new Map<number, number[]>();
  xml.nodules.forEach((_, i) => {
    const r = find(i);
    groups.set(r, [...(groups.get(r) ?? []), i]);
  });
  const [nx, ny] = vol.dims;
  const nodules: Array<Omit<LidcNodule, 'index'> & { key: Vec3 }> = [];
  for (const members of groups.values()) {
    const count = new Map<number, number>();
    for (const i of members) for (const n of voxels[i]!) count.set(n, (count.get(n) ?? 0) + 1);
    const all = Int32Array.from(count.keys()).sort();
    const votes = Uint8Array.from(all, (n) => count.get(n)!);
    let sx = 0;
    let sy = 0;
    let sz = 0;
    for (const n of all) {
      sx += n % nx;
      sy += Math.floor(n / nx) % ny;
      sz += Math.floor(n / (nx * ny));
    }
    const c = Math.max(1, all.length);
    const reads = members.map((i) => xml.nodules[i]!);
    const readers = [...new Set(reads.map((r) => r.reader))].sort((p, q) => p - q);
    nodules.push({
      reads,
      readers,
      voxels: all,
      votes,
      readerVoxels: readers.map((reader) => sortedUnion(members.filter((i) => xml.nodules[i]!.reader === reader).map((i) => voxels[i]!))),
      key: [sx / c, sy / c, sz / c],
    });
  }
  nodules.sort((p, q) => p.key[2] - q.key[2] || p.key[1] - q.key[1] || p.key[0] - q.key[0]);
  return nodules.map(({ key: _key, ...n }, i) => ({ index: i + 1, ...n }));
}

/** The voxels (sorted indices) marked by at least readersNeeded(agreement) of the nodule's readers. */
export function consensusVoxels(nodule: LidcNodule, agreement: Agreement = 0.5): Int32Array {
  const need = readersNeeded(agreement, nodule.readers.length);
  return nodule.voxels.filter((_, i) => nodule.votes[i]! >= need);
}

export interface NoduleReport {
  index: number;
  readers: number;
  readerIds: string[];
  agreement: string;
  voxels: number;
  volumeMm3: number;
  /** Longest distance between two mask pixel centres on one axial slice (mm). */
  longestAxialDiameterMm: number;
  /** Centroid of the consensus mask, LPS world mm. */
  centreMm: Vec3;
  /** Median of the readers' ratings. */
  characteristics: Partial<Record<Characteristic, number>>;
}

export function describeAgreement(a: Agreement): string {
  return typeof a === 'number' ? `${a}` : typeof a === 'string' ? a : `${a.readers} readers`;
}

export function noduleReport(nodule: LidcNodule, vol: Volume, xml: LidcXml, agreement: Agreement = 0.5): NoduleReport {
  const vox = consensusVoxels(nodule, agreement);
  const on = new Set(vox);
  const [nx, ny] = vol.dims;
  let sx = 0;
  let sy = 0;
  let sz = 0;
  const edgeBySlice = new Map<number, Array<[number, number]>>();
  for (const n of vox) {
    const i = n % nx;
    const j = Math.floor(n / nx) % ny;
    const k = Math.floor(n / (nx * ny));
    sx += i;
    sy += j;
    sz += k;
    // Only boundary pixels can be ends of the longest chord.
    if (!on.has(n - 1) || !on.has(n + 1) || !on.has(n - nx) || !on.has(n + nx)) {
      const list = edgeBySlice.get(k) ?? [];
      list.push([i, j]);
      edgeBySlice.set(k, list);
    }
  }
  let longest = 0;
  for (const pts of edgeBySlice.values()) {
    for (let a = 0; a < pts.length; a++) {
      for (let b = a + 1; b < pts.length; b++) {
        const d = Math.hypot((pts[a]![0] - pts[b]![0]) * vol.spacingMm[0], (pts[a]![1] - pts[b]![1]) * vol.spacingMm[1]);
        if (d > longest) longest = d;
      }
    }
  }
  const characteristics: Partial<Record<Characteristic, number>> = {};
  for (const k of CHARACTERISTICS) {
    const vs = nodule.reads
      .map((r) => r.characteristics[k])
      .filter((v): v is number => v !== undefined)
      .sort((a, b) => a - b);
    if (vs.length) characteristics[k] = vs.length % 2 ? vs[(vs.length - 1) / 2]! : (vs[vs.length / 2 - 1]! + vs[vs.length / 2]!) / 2;
  }
  const count = vox.length;
  return {
    index: nodule.index,
    readers: nodule.readers.length,
    readerIds: nodule.readers.map((r) => xml.readers[r]?.radiologistId ?? String(r)),
    agreement: describeAgreement(agreement),
    voxels: count,
    volumeMm3: count * vol.spacingMm[0] * vol.spacingMm[1] * vol.spacingMm[2],
    longestAxialDiameterMm: longest,
    centreMm: count ? vol.voxelToWorld([sx / count, sy / count, sz / count]) : [Number.NaN, Number.NaN, Number.NaN],
    characteristics,
  };
}

/** All nodules' consensus masks in one scan-sized 0/1 mask. */
export function consensusMask(nodules: readonly LidcNodule[], agreement: Agreement, voxelCount: number): Uint8Array {
  const out = new Uint8Array(voxelCount);
  for (const n of nodules) for (const v of consensusVoxels(n, agreement)) out[v] = 1;
  return out;
}

/** The LIDC XML files under `dir` (three levels deep) whose SeriesInstanceUid is `seriesUid`. */
export function findLidcXml(dir: string, seriesUid: string): string {
  const found: string[] = [];
  const walk = (d: string, depth: number) => {
    for (const ent of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, ent.name);
      if (ent.isDirectory() && depth < 3) walk(p, depth + 1);
      else if (ent.isFile() && /\.xml$/i.test(ent.name)) found.push(p);
    }
  };
  walk(dir, 0);
  if (found.length === 0) throw new UserError(`${dir}: no LIDC XML (.xml) beside the series`);
  const matching = found.filter((p) => {
    const head = readFileSync(p, 'utf8').slice(0, 4000);
    return head.includes('LidcReadMessage') && head.includes(seriesUid);
  });
  if (matching.length === 0) {
    // A broken file may be the one meant: say what is wrong with it rather than "not found".
    for (const p of found) {
      const xml = readFileSync(p, 'utf8');
      const v = xml.includes('LidcReadMessage') ? XMLValidator.validate(xml) : true;
      if (v !== true) throw new UserError(`${p}: malformed XML (line ${v.err.line}: ${v.err.msg})`);
    }
    throw new UserError(`${dir}: no LIDC XML for series ${seriesUid} (found ${found.map((p) => basename(p)).join(', ')})`);
  }
  if (matching.length > 1) throw new UserError(`${dir}: several LIDC XML files for series ${seriesUid}: ${matching.join(', ')}`);
  return matching[0]!;
}

export interface LidcScan {
  series: DicomSeriesResult;
  xml: LidcXml;
  nodules: LidcNodule[];
}

/** Reads a DICOM series folder and the LIDC XML beside it, and groups the reads into nodules. */
export async function readLidcScan(dir: string, options: DicomReadOptions = {}): Promise<LidcScan> {
  const series = await readDicomSeries(dir, options);
  const src = series.volume.source;
  const uid = src?.format === 'dicom' ? src.series.seriesInstanceUid : '';
  const xml = parseLidcXml(findLidcXml(dir, uid));
  return { series, xml, nodules: groupNodules(xml, series.volume) };
}

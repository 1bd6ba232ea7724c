/**
 * The crop benchmark: the model on each crop, scored per nodule in 3D against the union of the
 * readers (the crops' mask), their 50% consensus and each reader's own mask, with the readers'
 * agreement with each other beside it; grouped by type, size and pleural attachment.
 */
import type { CropCase } from '../data/crops.ts';
import type { NoduleType } from '../data/nodule-type.ts';
import { segmentCrop, type SegmentOptions } from '../inference/nodules.ts';
import type { ModelInfo } from '../models/io.ts';
import type { SegmentationNetwork } from '../models/types.ts';
import { sizeGroupOf, touchesPleura, type SizeGroup } from './groups.ts';
import { maskOverlap } from '../metrics/segmentation.ts';
import { mulberry32 } from '../data/prng.ts';
import type { Vec3 } from '../io/volume.ts';
import { agreementMask, diceOf, panelAgreement, readerLevel, readReaderMasks, MIN_READER_UNION_DICE, type ReaderInfo } from './readers.ts';

export { MIN_READER_UNION_DICE };

export interface CropBenchmarkRow {
  id: string;
  patientId: string;
  type: NoduleType | null;
  sizeGroup: SizeGroup | null;
  pleural: boolean;
  diameterMm: number;
  /** Reader masks used for this crop (0 when readers/ has none, or their union does not match the crop's mask). */
  readers: number;
  diceUnion: number;
  /** Against the 50% consensus of the reader masks (NaN without reader masks). */
  diceConsensus: number;
  /** Mean Dice against each reader's own mask (NaN without reader masks). */
  diceReaders: number;
  /** The readers' own level: each reader against the union of the others (NaN under 2 readers). */
  panelLevel: number;
  /** The readers' 50% consensus against their union: how far a consensus-like mask can score on the union. */
  consensusVsUnion: number;
  predictedVoxels: number;
  unionVoxels: number;
  /** The model's any-reader mask (segment --any-reader) against the union and the consensus; NaN for a model without that level. */
  anyReaderDiceUnion: number;
  anyReaderDiceConsensus: number;
}

export interface CropBenchmarkOptions extends SegmentOptions {
  /** The lidc-crops folder (for readers/); null: score against the union only. */
  cropsDir: string | null;
  readerIndex: Map<string, ReaderInfo>;
  onCase?: (done: number, total: number) => void;
  /** Where the prompt is (default: the crop's centre, which is the nodule's). */
  click?: ClickMode;
}

/**
 * Where the benchmark clicks: the crop's centre; a voxel drawn at random inside the readers' 50%
 * consensus (the union without reader masks), as a radiologist clicks anywhere on the nodule;
 * or the centre moved `offsetMm` in-plane in a random direction, as a detector's candidate is
 * off. The draws depend on the crop's id alone, so two models are clicked at the same places.
 */
export type ClickMode = { kind: 'centre' } | { kind: 'on-nodule' } | { kind: 'offset'; offsetMm: number };

/** Parses --click: centre, on-nodule, or an offset such as 2mm. */
export function parseClickMode(text: string): ClickMode | null {
  if (text === 'centre' || text === 'center') return { kind: 'centre' };
  if (text === 'on-nodule') return { kind: 'on-nodule' };
  const m = /^(\d+(?:\.\d+)?)\s*mm$/.exec(text);
  return m ? { kind: 'offset', offsetMm: Number(m[1]) } : null;
}

export function describeClickMode(c: ClickMode): string {
  return c.kind === 'centre'
    ? "at the crop's centre"
    : c.kind === 'on-nodule'
      ? "at a random voxel of the readers' 50% consensus"
      : `${c.offsetMm} mm from the crop's centre in-plane, in a random direction`;
}

/** FNV-1a of a string: a seed per crop that does not depend on the order of the cases. */
function idSeed(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The voxel the benchmark clicks on a crop. */
export function clickVoxel(c: CropCase, mode: ClickMode, readerMasks: readonly Uint8Array[]): Vec3 {
  const [nx, ny, nz] = c.image.dims;
  const centre: Vec3 = [(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2];
  const rng = mulberry32(idSeed(c.id));
  if (mode.kind === 'centre') return centre;
  if (mode.kind === 'offset') {
    const angle = rng() * 2 * Math.PI;
    const [sx, sy] = c.image.spacingMm;
    return [centre[0] + (mode.offsetMm * Math.cos(angle)) / sx, centre[1] + (mode.offsetMm * Math.sin(angle)) / sy, centre[2]];
  }
  const target = readerMasks.length ? agreementMask(readerMasks, 0.5) : c.mask;
  let n = 0;
  for (let i = 0; i < target.length; i++) n += target[i] ? 1 : 0;
  if (n === 0) return centre;
  let k = Math.floor(rng() * n);
  for (let i = 0; i < target.length; i++) {
    if (!target[i]) continue;
    if (k-- === 0) return [i % nx, Math.floor(i / nx) % ny, Math.floor(i / (nx * ny))];
  }
  return centre;
}

/**
 * The reader masks a crop is scored against: those of readers/ where their union matches the
 * crop's mask (the data README's rule), else none.
 */
export function usableReaderMasks(cropsDir: string | null, readerIndex: Map<string, ReaderInfo>, c: CropCase): Uint8Array[] {
  const r = readerIndex.get(c.id);
  const usable = r !== undefined && r.readers > 0 && r.unionDice >= MIN_READER_UNION_DICE;
  return cropsDir && usable ? readReaderMasks(cropsDir, c.id, c.image, r.readers) : [];
}

/**
 * Scores one prediction of one crop, and the model's any-reader mask when there is one. Exposed
 * for tests and for training's validation.
 */
export function scoreCrop(
  c: CropCase,
  pred: Uint8Array,
  readerMasks: readonly Uint8Array[],
  anyReaderMask: Uint8Array | null = null,
): CropBenchmarkRow {
  const consensus = readerMasks.length ? agreementMask(readerMasks, 0.5) : null;
  const vsUnion = maskOverlap(pred, c.mask);
  const wide = anyReaderMask ? maskOverlap(anyReaderMask, c.mask) : null;
  return {
    id: c.id,
    patientId: c.patientId,
    type: c.noduleType,
    sizeGroup: sizeGroupOf(c.diameterMm),
    pleural: touchesPleura(c.image.data, c.mask, c.image.dims, c.image.spacingMm),
    diameterMm: c.diameterMm,
    readers: readerMasks.length,
    diceUnion: (2 * vsUnion.tp) / Math.max(1, vsUnion.predicted + vsUnion.reference),
    diceConsensus: consensus ? zeroIfEmpty(diceOf(pred, consensus)) : Number.NaN,
    diceReaders: readerMasks.length ? readerLevel(pred, readerMasks) : Number.NaN,
    panelLevel: panelAgreement(readerMasks),
    consensusVsUnion: consensus ? zeroIfEmpty(diceOf(consensus, c.mask)) : Number.NaN,
    predictedVoxels: vsUnion.predicted,
    unionVoxels: vsUnion.reference,
    anyReaderDiceUnion: wide ? (2 * wide.tp) / Math.max(1, wide.predicted + wide.reference) : Number.NaN,
    anyReaderDiceConsensus: anyReaderMask && consensus ? zeroIfEmpty(diceOf(anyReaderMask, consensus)) : Number.NaN,
  };
}

/** Both masks empty is NaN for diceOf; for a scored nodule (reference non-empty) it cannot be, so keep NaN out. */
function zeroIfEmpty(d: number): number {
  return Number.isNaN(d) ? 0 : d;
}

export function benchmarkCrops(
  model: SegmentationNetwork,
  info: ModelInfo,
  cases: readonly CropCase[],
  options: CropBenchmarkOptions,
): CropBenchmarkRow[] {
  const rows: CropBenchmarkRow[] = [];
  cases.forEach((c, i) => {
    const readers = usableReaderMasks(options.cropsDir, options.readerIndex, c);
    const prompt = options.click && options.click.kind !== 'centre' ? clickVoxel(c, options.click, readers) : undefined;
    const { seg, anyReaderMask } = segmentCrop(model, info, c.image, options, prompt);
    rows.push(scoreCrop(c, seg.mask.data, readers, anyReaderMask));
    options.onCase?.(i + 1, cases.length);
  });
  return rows;
}

export interface GroupSummary {
  group: string;
  nodules: number;
  diceUnion: number;
  diceConsensus: number;
  diceReaders: number;
  /** Over the nodules with 2 or more readers, the model's diceReaders and the readers' panel level. */
  panelNodules: number;
  modelVsReaders: number;
  panelLevel: number;
  consensusVsUnion: number;
  anyReaderDiceUnion: number;
  anyReaderDiceConsensus: number;
}

const meanOf = (v: number[]) => {
  const ok = v.filter((x) => Number.isFinite(x));
  return ok.length ? ok.reduce((s, x) => s + x, 0) / ok.length : Number.NaN;
};

export function summariseGroup(group: string, rows: readonly CropBenchmarkRow[]): GroupSummary {
  const panel = rows.filter((r) => r.readers >= 2);
  return {
    group,
    nodules: rows.length,
    diceUnion: meanOf(rows.map((r) => r.diceUnion)),
    diceConsensus: meanOf(rows.map((r) => r.diceConsensus)),
    diceReaders: meanOf(rows.map((r) => r.diceReaders)),
    panelNodules: panel.length,
    modelVsReaders: meanOf(panel.map((r) => r.diceReaders)),
    panelLevel: meanOf(panel.map((r) => r.panelLevel)),
    consensusVsUnion: meanOf(rows.map((r) => r.consensusVsUnion)),
    anyReaderDiceUnion: meanOf(rows.map((r) => r.anyReaderDiceUnion)),
    anyReaderDiceConsensus: meanOf(rows.map((r) => r.anyReaderDiceConsensus)),
  };
}

/** Every group the benchmark reports: all, each type, each size group, pleural or not. */
export function groupSummaries(rows: readonly CropBenchmarkRow[]): GroupSummary[] {
  const out = [summariseGroup('all', rows)];
  for (const t of ['solid', 'part-solid', 'ground-glass'] as const)
    out.push(
      summariseGroup(
        `type: ${t}`,
        rows.filter((r) => r.type === t),
      ),
    );
  const unknown = rows.filter((r) => r.type === null);
  if (unknown.length) out.push(summariseGroup('type: unknown', unknown));
  for (const g of ['3-6 mm', '6-10 mm', '10-20 mm', '>= 20 mm'] as const)
    out.push(
      summariseGroup(
        `size: ${g}`,
        rows.filter((r) => r.sizeGroup === g),
      ),
    );
  out.push(
    summariseGroup(
      'pleural: attached',
      rows.filter((r) => r.pleural),
    ),
  );
  out.push(
    summariseGroup(
      'pleural: free',
      rows.filter((r) => !r.pleural),
    ),
  );
  return out;
}

const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '-');

export function groupTableMarkdown(groups: readonly GroupSummary[]): string {
  const lines = [
    "| group | nodules | Dice vs union | Dice vs 50% consensus | Dice vs each reader | nodules with 2+ readers | model vs each reader | readers vs the rest of their panel | readers' consensus vs union | any-reader mask vs union | any-reader mask vs consensus |",
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const g of groups) {
    lines.push(
      `| ${g.group} | ${g.nodules} | ${f3(g.diceUnion)} | ${f3(g.diceConsensus)} | ${f3(g.diceReaders)} | ${g.panelNodules} | ${f3(g.modelVsReaders)} | ${f3(g.panelLevel)} | ${f3(g.consensusVsUnion)} | ${f3(g.anyReaderDiceUnion)} | ${f3(g.anyReaderDiceConsensus)} |`,
    );
  }
  return lines.join('\n') + '\n';
}

export const CROP_ROW_COLUMNS = [
  'id',
  'patientId',
  'type',
  'sizeGroup',
  'pleural',
  'diameterMm',
  'readers',
  'diceUnion',
  'diceConsensus',
  'diceReaders',
  'panelLevel',
  'consensusVsUnion',
  'predictedVoxels',
  'unionVoxels',
  'anyReaderDiceUnion',
  'anyReaderDiceConsensus',
] as const;

export function cropRowsCsv(rows: readonly CropBenchmarkRow[], extra: Record<string, string> = {}): string {
  const extraKeys = Object.keys(extra);
  const lines = [[...extraKeys, ...CROP_ROW_COLUMNS].join(',')];
  for (const r of rows) {
    const cells = CROP_ROW_COLUMNS.map((k) => {
      const v = r[k];
      return typeof v === 'number'
        ? Number.isFinite(v)
          ? Number.isInteger(v)
            ? String(v)
            : v.toFixed(4)
          : ''
        : v === null
          ? ''
          : String(v);
    });
    lines.push([...extraKeys.map((k) => extra[k]!), ...cells].join(','));
  }
  return lines.join('\n') + '\n';
}

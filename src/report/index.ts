/**
 * The reports of `segment` and the viewer: guidelines added to the nodules (assess.ts), the
 * DICOM SR of a DICOM scan and the printable HTML page.
 */
import type { Volume } from '../io/volume.ts';
import { encodeDicomSr, segUidsOf, type SrNodule } from '../io/dicom-sr.ts';
import { encodeDicomSeg } from '../io/dicom-seg.ts';
import type { FleischnerContext } from '../guidelines/index.ts';
import type { ReportedNodule } from './assess.ts';
import { renderHtmlReport, keyImages, type KeyImages } from './html.ts';
import { VERSION } from '../version.ts';

export { withGuidelines, withGuidelinesOne, clinicalSummary, NO_TYPE_WARNING, type ReportedNodule } from './assess.ts';
export { renderHtmlReport, keyImages, escapeHtml, MEDIASTINAL_WINDOW_HU, type HtmlReportInput, type KeyImages } from './html.ts';

/** Labels -> 0/1. A plain loop: Uint8Array.from(labels, fn) takes ~15 s on a 512 x 512 x 133 scan here, this ~0.1 s. */
function binaryMask(labels: Uint8Array): Uint8Array {
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) out[i] = labels[i] ? 1 : 0;
  return out;
}

export const ANY_READER_SEGMENT_LABEL = 'Nodule, any-reader extent';

/**
 * The DICOM SEG of a scan's nodules as `segment`, the viewer, the PACS command and the queue
 * write it: segment 1 the nodules' masks (the default outline, which the SR measures); with a
 * model that has an any-reader level, segment 2 their any-reader masks (`anyReaderLabels`), so
 * that a PACS viewer shows the range radiologists would draw and can hide it.
 */
export function encodeNoduleSeg(volume: Volume, labels: Uint8Array, anyReaderLabels: Uint8Array | null, modelArch: string): Uint8Array {
  return encodeDicomSeg(binaryMask(labels), volume, {
    algorithmType: 'AUTOMATIC',
    algorithmName: `noduleseg ${modelArch}`,
    segmentLabel: 'Nodule',
    moreSegments: anyReaderLabels
      ? [
          {
            mask: binaryMask(anyReaderLabels),
            label: ANY_READER_SEGMENT_LABEL,
            description: "as far as any one radiologist would draw it (the model's any-reader level); segment 1 is the default outline",
          },
        ]
      : [],
  });
}

/** What the SR says about a reported nodule (all of them are segment 1 of the binary SEG). */
export function srNodule(n: ReportedNodule): SrNodule {
  const g = n.guidelineMeasures;
  const sc = g.solidComponent;
  return {
    segmentNumber: 1,
    trackingId: `Nodule ${n.label}`,
    volumeMm3: g.volumeMm3,
    longAxisMm: g.longAxisMm,
    shortAxisMm: g.shortAxisMm,
    meanDiameterMm: g.meanDiameterLungRadsMm,
    anyReaderVolumeMm3: n.anyReaderVolumeMm3,
    solidComponent:
      n.type === 'part-solid' && sc
        ? {
            meanDiameterMm: Math.round(((sc.longAxisMm + sc.shortAxisMm) / 2) * 10) / 10,
            volumeMm3: sc.volumeMm3,
            thresholdHU: g.solidThresholdHU,
          }
        : null,
    type: n.type,
    typeProbability: n.typeProbabilities ? Math.max(...n.typeProbabilities) : null,
    malignancySuspicion: n.malignancySuspicion,
    lungRads: n.lungRads ? { version: n.lungRads.version, category: n.lungRads.category, reason: n.lungRads.reason } : null,
    fleischner: n.fleischner ? { version: n.fleischner.version, recommendation: n.fleischner.recommendation } : null,
    slices: [],
  };
}

/** The SR of a scan's nodules, referencing `segBytes` (the SEG written beside it) and the series. */
/** `modelArch`: the network's architecture (the model's config.arch), named as the SR's algorithm. */
export function encodeNoduleSr(nodules: readonly ReportedNodule[], volume: Volume, segBytes: Uint8Array, modelArch: string): Uint8Array {
  const found = nodules.filter((n) => n.measures.voxelCount > 0);
  const seg = segUidsOf(segBytes);
  const items = found.map((n) => ({ ...srNodule(n), slices: slicesInScan(volume, n) }));
  return encodeDicomSr(items, volume, {
    segSopInstanceUid: seg.sopInstanceUid,
    segSeriesInstanceUid: seg.seriesInstanceUid,
    algorithmName: `noduleseg ${modelArch}`,
    algorithmVersion: VERSION,
  });
}

/** z indices of the scan holding the nodule (its bounding box in world mm mapped back). */
function slicesInScan(volume: Volume, n: ReportedNodule): number[] {
  if (!n.boundingBoxWorldMm) return [];
  const [a, b] = n.boundingBoxWorldMm.map((w) => Math.round(volume.worldToVoxel(w)[2]));
  const out: number[] = [];
  for (let k = Math.min(a!, b!); k <= Math.max(a!, b!); k++) out.push(k);
  return out;
}

/**
 * The HTML page of a scan's nodules (labels: the label mask on `volume`'s grid; anyReaderLabels,
 * where the model has that level, their any-reader masks, outlined in the key images too).
 */
export function noduleHtmlReport(
  nodules: readonly ReportedNodule[],
  volume: Volume,
  labels: Uint8Array,
  meta: { input: string; modelName: string; patient: FleischnerContext; anyReaderLabels?: Uint8Array | null },
): string {
  const images = new Map<number, KeyImages>();
  for (const n of nodules) {
    const k = keyImages(volume, labels, n, meta.anyReaderLabels ?? null);
    if (k) images.set(n.label, k);
  }
  return renderHtmlReport({
    title: 'Lung nodule report',
    input: meta.input,
    modelName: meta.modelName,
    createdAt: new Date().toISOString(),
    patient: meta.patient,
    nodules,
    images,
  });
}

/**
 * The printable report of one scan: per nodule, key images (the axial slice of the longest
 * diameter with the mask's outline, in lung and mediastinal windows), the guideline
 * measurements, type and probabilities, Lung-RADS category and Fleischner recommendation.
 * One self-contained HTML file (images inline as PNG data), nothing fetched from anywhere.
 */
import { renderOverlayPng, type OverlayOptions } from '../io/png.ts';
import type { Volume } from '../io/volume.ts';
import type { FleischnerContext } from '../guidelines/index.ts';
import type { ReportedNodule } from './assess.ts';

export interface HtmlReportInput {
  title: string;
  /** The input file or folder, as given. */
  input: string;
  modelName: string;
  /** ISO date-time of the report. */
  createdAt: string;
  patient: FleischnerContext;
  nodules: readonly ReportedNodule[];
  /** PNG bytes of each nodule's key images, by label (absent for an empty nodule). */
  images: ReadonlyMap<number, KeyImages>;
}

export interface KeyImages {
  lung: Uint8Array;
  mediastinal: Uint8Array;
  /** z index in the scan of the slice shown. */
  sliceIndex: number;
  /** Whether the images also outline the any-reader extent (in yellow). */
  anyReaderOutline: boolean;
}

export const MEDIASTINAL_WINDOW_HU: [number, number] = [-160, 240];

/** Label `label` of a label mask as 0/1 (a plain loop: Uint8Array.from with a function is far slower on a scan). */
function labelOf(labels: Uint8Array, label: number): Uint8Array {
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) out[i] = labels[i] === label ? 1 : 0;
  return out;
}

/**
 * Key images of one nodule: the axial slice of its longest diameter, in the scan, with the
 * outline of its mask (label `label` of `labels`, on `volume`'s grid) in red and, given the
 * any-reader label mask, the outline of its any-reader extent in yellow where it lies beyond.
 */
export function keyImages(
  volume: Volume,
  labels: Uint8Array,
  nodule: ReportedNodule,
  anyReaderLabels: Uint8Array | null = null,
): KeyImages | null {
  if (nodule.measures.voxelCount === 0 || !nodule.centroidWorldMm || !nodule.measures.centroidVoxel) return null;
  // Measures are on the nodule's crop; the centroid in both frames gives the crop's z offset (an integer).
  const offsetZ = Math.round(volume.worldToVoxel(nodule.centroidWorldMm)[2] - nodule.measures.centroidVoxel[2]);
  const k = Math.min(volume.dims[2] - 1, Math.max(0, nodule.guidelineMeasures.axialSlice + offsetZ));
  const mask = labelOf(labels, nodule.label);
  const outerMask = anyReaderLabels ? labelOf(anyReaderLabels, nodule.label) : undefined;
  const opts: OverlayOptions = { slices: [k], marginVoxels: 28, scale: 3, ...(outerMask ? { outerMask } : {}) };
  return {
    lung: renderOverlayPng(volume, mask, opts),
    mediastinal: renderOverlayPng(volume, mask, { ...opts, windowHU: MEDIASTINAL_WINDOW_HU }),
    sliceIndex: k,
    anyReaderOutline: outerMask !== undefined,
  };
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const mm = (v: number, d = 1) => `${v.toFixed(d)} mm`;
const pct = (p: number) => `${Math.round(p * 100)}%`;
const png = (bytes: Uint8Array) => `data:image/png;base64,${Buffer.from(bytes).toString('base64')}`;

function patientLine(p: FleischnerContext): string {
  const parts = [
    p.setting === 'screening' ? 'lung cancer screening' : 'incidental finding',
    p.ageYears !== null ? `age ${p.ageYears}` : 'age not given',
    p.risk ? `${p.risk} risk` : 'risk not given',
  ];
  if (p.knownCancer) parts.push('known cancer');
  if (p.immunosuppressed) parts.push('immunosuppressed');
  return parts.join(', ');
}

function noduleSection(n: ReportedNodule, img: KeyImages | undefined): string {
  const g = n.guidelineMeasures;
  const rows: Array<[string, string]> = [];
  if (n.measures.voxelCount === 0) rows.push(['Result', 'no nodule found at this prompt']);
  else {
    rows.push([
      'Long axis x short axis',
      `${mm(g.longAxisMm)} x ${mm(g.shortAxisMm)} (axial slice ${img ? img.sliceIndex + 1 : g.axialSlice + 1})`,
    ]);
    rows.push([
      'Mean diameter',
      `${mm(g.meanDiameterLungRadsMm)} (Lung-RADS, to 0.1 mm); ${g.meanDiameterFleischnerMm} mm (Fleischner, to the mm)`,
    ]);
    rows.push([
      'Volume',
      `${g.volumeMm3.toFixed(0)} mm³${n.anyReaderVolumeMm3 !== null ? ` (up to ${n.anyReaderVolumeMm3.toFixed(0)} mm³ as any reader would draw it)` : ''}`,
    ]);
    if (n.type && n.typeProbabilities) {
      const [s, ps, gg] = n.typeProbabilities;
      rows.push(['Type', `<b>${escapeHtml(n.type)}</b> (solid ${pct(s)}, part-solid ${pct(ps)}, ground-glass ${pct(gg)})`]);
    }
    if (n.type === 'part-solid' && g.solidComponent) {
      const sc = g.solidComponent;
      rows.push([
        'Solid component',
        `${mm((sc.longAxisMm + sc.shortAxisMm) / 2)} mean diameter, ${sc.volumeMm3.toFixed(0)} mm³ (voxels at or above ${g.solidThresholdHU} HU)`,
      ]);
    }
    if (n.calcified !== null) rows.push(['Calcified', pct(n.calcified)]);
    if (n.spiculation !== null) rows.push(['Spiculation (marked)', pct(n.spiculation)]);
    if (n.malignancySuspicion !== null)
      rows.push([
        "Radiologists' suspicion on LIDC",
        `${pct(n.malignancySuspicion)} chance that LIDC radiologists would rate it 4 or 5 of 5 (not a diagnosis)`,
      ]);
    rows.push(['Mean density', `${n.measures.meanHU.toFixed(0)} HU`]);
    if (n.lungRads) {
      rows.push([
        escapeHtml(n.lungRads.version),
        `<b>Category ${escapeHtml(n.lungRads.category)}</b>: ${escapeHtml(n.lungRads.reason)}. ${escapeHtml(n.lungRads.management)}.${n.lungRads.consider4X ? ` <i>${escapeHtml(n.lungRads.consider4X)}.</i>` : ''}`,
      ]);
    }
    if (n.fleischner)
      rows.push([
        escapeHtml(n.fleischner.version),
        `${n.fleischner.row ? `${escapeHtml(n.fleischner.row)}: ` : ''}${escapeHtml(n.fleischner.recommendation)}`,
      ]);
  }
  for (const w of n.warnings) rows.push(['Warning', escapeHtml(w)]);
  const where = n.centroidWorldMm
    ? `centre ${n.centroidWorldMm.map((v) => v.toFixed(1)).join(', ')} mm (LPS)`
    : `prompt ${n.promptWorldMm.map((v) => v.toFixed(1)).join(', ')} mm (LPS)`;
  const images = img
    ? `<div class="images"><figure><img alt="nodule ${n.label}, lung window" src="${png(img.lung)}"><figcaption>lung window</figcaption></figure><figure><img alt="nodule ${n.label}, mediastinal window" src="${png(img.mediastinal)}"><figcaption>mediastinal window</figcaption></figure></div>${
        img.anyReaderOutline
          ? '<p class="legend">Red: the outline measured here. Yellow: as far as any one radiologist would draw it, where it lies beyond.</p>'
          : ''
      }`
    : '';
  return `<section class="nodule"><h2>Nodule ${n.label} <small>${escapeHtml(where)}</small></h2>${images}<table>${rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join('')}</table></section>`;
}

/** The report page (UTF-8 HTML, print-ready). */
export function renderHtmlReport(r: HtmlReportInput): string {
  const summary = r.nodules
    .map((n) => {
      const g = n.guidelineMeasures;
      const found = n.measures.voxelCount > 0;
      return `<tr><td>${n.label}</td><td>${found ? escapeHtml(n.type ?? '-') : 'none found'}</td><td>${found ? mm(g.meanDiameterLungRadsMm) : '-'}</td><td>${found ? `${g.volumeMm3.toFixed(0)} mm³` : '-'}</td><td>${n.lungRads ? escapeHtml(n.lungRads.category) : '-'}</td><td>${n.fleischner ? escapeHtml(n.fleischner.recommendation) : '-'}</td></tr>`;
    })
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(r.title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#111}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.15em;margin:0 0 .5em;border-bottom:1px solid #999}h2 small{font-weight:normal;color:#555;font-size:.8em}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#f2f2f2;width:14em}
.summary th{width:auto}.meta{color:#444;overflow-wrap:anywhere}.images{display:flex;gap:1em}.images figure{margin:0}.images img{image-rendering:pixelated;max-width:100%;border:1px solid #999}
figcaption,.legend{font-size:.85em;color:#555}.legend{margin:.2em 0}.nodule{page-break-inside:avoid;margin-top:1.5em}.note{font-size:.85em;color:#444;border-top:1px solid #999;margin-top:2em;padding-top:.5em}
@media print{body{margin:0;max-width:none}.nodule{page-break-inside:avoid}}
</style></head><body>
<h1>${escapeHtml(r.title)}</h1>
<p class="meta">Input: ${escapeHtml(r.input)}<br>Model: ${escapeHtml(r.modelName)}<br>Report: ${escapeHtml(r.createdAt)}<br>Patient context: ${escapeHtml(patientLine(r.patient))}</p>
<table class="summary"><tr><th>Nodule</th><th>Type</th><th>Mean diameter</th><th>Volume</th><th>Lung-RADS</th><th>Fleischner</th></tr>${summary}</table>
${r.nodules.map((n) => noduleSection(n, r.images.get(n.label))).join('\n')}
<p class="note">Decision support for a radiologist, computed automatically by noduleseg; research use only, not a medical device. The radiologist assigns the category and recommendation. Lung-RADS v2022 at a baseline exam; category 4X is the reader's call. Sizes: long and short axis on the axial slice of the longest diameter. Type and probabilities come from classifiers trained on the LIDC-IDRI readers' ratings (docs/report.md).</p>
</body></html>
`;
}

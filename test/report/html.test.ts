/** The printable HTML report: content, escaping, inline key images, no external resource. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderHtmlReport, keyImages, escapeHtml, type KeyImages } from '../../src/report/html.ts';
import { withGuidelines, type ReportedNodule } from '../../src/report/assess.ts';
import { DEFAULT_FLEISCHNER_CONTEXT } from '../../src/guidelines/index.ts';
import type { NoduleResult } from '../../src/inference/nodules.ts';
import { PNG } from 'pngjs';
import { scene } from './helpers.ts';

/** The page of one nodule with placeholder metadata. */
function pageOf(nodule: ReportedNodule, images: ReadonlyMap<number, KeyImages>): string {
  return renderHtmlReport({
    title: 't',
    input: 'i',
    modelName: 'm',
    createdAt: 'c',
    patient: DEFAULT_FLEISCHNER_CONTEXT,
    nodules: [nodule],
    images,
  });
}

test('HTML report: summary, measurements, guidelines, escaped text, inline PNG key images', () => {
  const { volume, labels, nodule } = scene();
  const [reported] = withGuidelines([nodule], { ...DEFAULT_FLEISCHNER_CONTEXT, risk: 'high', ageYears: 64 });
  const img = keyImages(volume, labels, reported!)!;
  assert.equal(img.sliceIndex, 3, 'the slice of the longest diameter');
  const html = renderHtmlReport({
    title: 'Nodule report <scan>',
    input: 'scan.nii.gz',
    modelName: 'noduleseg joint',
    createdAt: '2026-01-01T00:00:00Z',
    patient: { ...DEFAULT_FLEISCHNER_CONTEXT, risk: 'high', ageYears: 64 },
    nodules: [reported!],
    images: new Map([[1, img]]),
  });
  assert.match(html, /^<!doctype html>/);
  assert.match(html, /<title>Nodule report &lt;scan&gt;<\/title>/);
  assert.match(html, /a &lt;b&gt;warning&lt;\/b&gt; &amp; more/);
  assert.match(html, /<b>part-solid<\/b> \(solid 20%, part-solid 70%, ground-glass 10%\)/);
  assert.match(html, /Solid component/);
  assert.match(html, /Lung-RADS v2022 \(baseline\)/);
  assert.match(html, /<b>Category 4A<\/b>|<b>Category 3<\/b>/);
  assert.match(html, /Fleischner Society 2017/);
  assert.match(html, /age 64, high risk/);
  assert.match(html, /not a diagnosis/);
  // Both images inline, valid PNG; nothing fetched from elsewhere.
  const pngs = [...html.matchAll(/src="data:image\/png;base64,([A-Za-z0-9+/=]+)"/g)].map((m) => Buffer.from(m[1]!, 'base64'));
  assert.equal(pngs.length, 2);
  for (const p of pngs) assert.deepEqual([...p.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//);
});

test('HTML report: an empty nodule is listed as not found, without images', () => {
  const { volume, nodule } = scene();
  const empty: NoduleResult = {
    ...nodule,
    measures: { ...nodule.measures, voxelCount: 0, centroidVoxel: null },
    centroidWorldMm: null,
    type: null,
    typeProbabilities: null,
    warnings: ['no nodule found at this point'],
  };
  const [reported] = withGuidelines([empty]);
  assert.equal(reported!.lungRads, null);
  assert.equal(keyImages(volume, new Uint8Array(volume.voxelCount), reported!), null);
  const html = pageOf(reported!, new Map());
  assert.match(html, /none found/);
  assert.match(html, /no nodule found at this prompt/);
  assert.doesNotMatch(html, /data:image\/png/);
  assert.equal(escapeHtml(`<'&">`), '&lt;&#39;&amp;&quot;&gt;');
});

test('HTML report: the any-reader extent outlined in yellow beyond the red outline, with a legend', () => {
  const { volume, labels, nodule } = scene();
  const [reported] = withGuidelines([nodule]);
  // The any-reader mask: the nodule's mask grown by two voxels in-plane on its slices.
  const [nx, ny] = volume.dims;
  const wider = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    if (!labels[i]) continue;
    const x = i % nx,
      y = Math.floor(i / nx) % ny,
      z = Math.floor(i / (nx * ny));
    for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) wider[x + dx + nx * (y + dy + ny * z)] = 1;
  }
  const pixels = (png: Uint8Array) => {
    const { data } = PNG.sync.read(Buffer.from(png));
    let red = 0,
      yellow = 0;
    for (let p = 0; p < data.length; p += 4) {
      if (data[p] === 255 && data[p + 1] === 40 && data[p + 2] === 40) red++;
      if (data[p] === 255 && data[p + 1] === 220 && data[p + 2] === 0) yellow++;
    }
    return { red, yellow };
  };
  const plain = keyImages(volume, labels, reported!)!;
  const withExtent = keyImages(volume, labels, reported!, wider)!;
  assert.equal(plain.anyReaderOutline, false);
  assert.equal(withExtent.anyReaderOutline, true);
  const a = pixels(plain.lung);
  const b = pixels(withExtent.lung);
  assert.equal(a.yellow, 0);
  assert.ok(b.yellow > 0, 'a yellow outline');
  assert.equal(b.red, a.red, 'the red outline is the same');
  assert.match(pageOf(reported!, new Map([[1, withExtent]])), /Yellow: as far as any one radiologist would draw it/);
  assert.doesNotMatch(pageOf(reported!, new Map([[1, plain]])), /Yellow:/);
});

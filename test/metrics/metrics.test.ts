import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  segmentationMetrics,
  hausdorff95Mm,
  squaredDistanceToSites,
  surfaceVoxels,
  measureNodule,
  MetricAccumulator,
  percentile,
  metricsCsv,
  summaryMarkdown,
  type MaskGrid,
} from '../../src/metrics/index.ts';

function grid(
  dims: [number, number, number],
  spacingMm: [number, number, number],
  inside: (x: number, y: number, z: number) => boolean,
): MaskGrid {
  const data = new Uint8Array(dims[0] * dims[1] * dims[2]);
  for (let z = 0; z < dims[2]; z++)
    for (let y = 0; y < dims[1]; y++)
      for (let x = 0; x < dims[0]; x++) {
        if (inside(x, y, z)) data[x + dims[0] * (y + dims[1] * z)] = 1;
      }
  return { data, dims, spacingMm };
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('overlap metrics on a hand-made case', () => {
  // pred: 4 voxels in a row, ref: 6 voxels, 3 shared.
  const pred = grid([10, 1, 1], [1, 1, 1], (x) => x >= 0 && x < 4);
  const ref = grid([10, 1, 1], [1, 1, 1], (x) => x >= 1 && x < 7);
  const m = segmentationMetrics(pred, ref, { hd95: false });
  assert.equal(m.dice, (2 * 3) / (4 + 6));
  assert.equal(m.sensitivity, 3 / 6);
  assert.equal(m.precision, 3 / 4);
  assert.equal(m.iou, 3 / 7);
  assert.equal(m.volumeErrorMm3, -2);
  assert.equal(m.relativeVolumeError, 2 / 6);
});

test('empty reference gives NaN, counted apart by the accumulator', () => {
  const empty = grid([4, 4, 4], [1, 1, 1], () => false);
  const some = grid([4, 4, 4], [1, 1, 1], (x, y, z) => x === 1 && y === 1 && z === 1);
  const m = segmentationMetrics(some, empty);
  assert.ok(Number.isNaN(m.dice));
  assert.ok(Number.isNaN(m.sensitivity));
  assert.ok(Number.isNaN(m.hd95Mm));
  const acc = new MetricAccumulator();
  acc.update('a', m);
  acc.update('b', segmentationMetrics(some, some));
  const s = acc.aggregate();
  assert.equal(s.dice.count, 1);
  assert.equal(s.dice.undefinedCount, 1);
  assert.equal(s.dice.mean, 1);
  assert.match(metricsCsv(acc.cases), /^case,dice,/);
  assert.match(summaryMarkdown(s), /\| dice \| 1\.0000 ± 0\.0000/);
});

test('distance transform equals brute force on an anisotropic grid', () => {
  const rnd = lcg(7);
  const dims: [number, number, number] = [9, 7, 5];
  const sp: [number, number, number] = [0.7, 1.3, 2.5];
  const sites = new Uint8Array(9 * 7 * 5);
  for (let i = 0; i < sites.length; i++) sites[i] = rnd() < 0.05 ? 1 : 0;
  sites[17] = 1;
  const d2 = squaredDistanceToSites(sites, dims, sp);
  for (let i = 0; i < sites.length; i++) {
    const x = i % 9,
      y = Math.floor(i / 9) % 7,
      z = Math.floor(i / 63);
    let best = Infinity;
    for (let j = 0; j < sites.length; j++) {
      if (!sites[j]) continue;
      const a = j % 9,
        b = Math.floor(j / 9) % 7,
        c = Math.floor(j / 63);
      best = Math.min(best, ((x - a) * sp[0]) ** 2 + ((y - b) * sp[1]) ** 2 + ((z - c) * sp[2]) ** 2);
    }
    assert.ok(Math.abs(d2[i]! - best) < 1e-9, `voxel ${i}: ${d2[i]} vs ${best}`);
  }
});

test('HD95 matches a brute-force surface distance percentile', () => {
  const sp: [number, number, number] = [0.8, 0.8, 1.5];
  const a = grid([24, 24, 12], sp, (x, y, z) => ((x - 11) * 0.8) ** 2 + ((y - 12) * 0.8) ** 2 + ((z - 6) * 1.5) ** 2 < 36);
  const b = grid([24, 24, 12], sp, (x, y, z) => ((x - 13) * 0.8) ** 2 + ((y - 11) * 0.8) ** 2 + ((z - 6) * 1.5) ** 2 < 49);
  const sa = surfaceVoxels(a),
    sb = surfaceVoxels(b);
  const pts = (s: Uint8Array) => {
    const out: number[][] = [];
    s.forEach((v, i) => {
      if (v) out.push([(i % 24) * sp[0], (Math.floor(i / 24) % 24) * sp[1], Math.floor(i / 576) * sp[2]]);
    });
    return out;
  };
  const pa = pts(sa),
    pb = pts(sb);
  const directed = (p: number[][], q: number[][]) =>
    p.map((u) => Math.min(...q.map((v) => Math.hypot(u[0]! - v[0]!, u[1]! - v[1]!, u[2]! - v[2]!))));
  const expected = Math.max(percentile(directed(pa, pb), 95), percentile(directed(pb, pa), 95));
  assert.ok(Math.abs(hausdorff95Mm(a, b) - expected) < 1e-9);
  assert.equal(hausdorff95Mm(a, a), 0);
});

test('a sphere of known radius measures within 5%', () => {
  const r = 9; // mm
  const sp: [number, number, number] = [0.7, 0.7, 1.25];
  const dims: [number, number, number] = [40, 40, 24];
  const c = [19.5 * sp[0], 19.5 * sp[1], 11.5 * sp[2]];
  const image = new Float32Array(40 * 40 * 24).fill(-800);
  const mask = grid(dims, sp, (x, y, z) => {
    const inside = (x * sp[0] - c[0]!) ** 2 + (y * sp[1] - c[1]!) ** 2 + (z * sp[2] - c[2]!) ** 2 <= r * r;
    if (inside) image[x + 40 * (y + 40 * z)] = 30;
    return inside;
  });
  const m = measureNodule(mask, image);
  const vol = (4 / 3) * Math.PI * r ** 3;
  assert.ok(Math.abs(m.volumeMm3 - vol) / vol < 0.05, `volume ${m.volumeMm3} vs ${vol}`);
  assert.ok(Math.abs(m.equivalentDiameterMm - 2 * r) / (2 * r) < 0.05, `eq diameter ${m.equivalentDiameterMm}`);
  assert.ok(Math.abs(m.longestAxialDiameterMm - 2 * r) / (2 * r) < 0.05, `longest ${m.longestAxialDiameterMm}`);
  assert.ok(Math.abs(m.perpendicularDiameterMm - 2 * r) / (2 * r) < 0.05, `perp ${m.perpendicularDiameterMm}`);
  assert.equal(m.meanHU, 30);
  assert.ok(Math.abs(m.centroidVoxel![0] - 19.5) < 0.1);
});

test('an ellipse: longest and perpendicular diameters along its axes', () => {
  const sp: [number, number, number] = [0.5, 0.5, 1];
  const mask = grid([80, 60, 1], sp, (x, y) => (((x - 39.5) * 0.5) / 15) ** 2 + (((y - 29.5) * 0.5) / 6) ** 2 <= 1);
  const m = measureNodule(mask);
  assert.ok(Math.abs(m.longestAxialDiameterMm - 30) < 1, `${m.longestAxialDiameterMm}`);
  assert.ok(Math.abs(m.perpendicularDiameterMm - 12) < 1, `${m.perpendicularDiameterMm}`);
  assert.equal(m.longestDiameterSlice, 0);
});

/** The nodule-level heads: scores, the forward pass, the metadata format, training on separable data. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { confusionMatrix, accuracyOf, cohenKappa, recallPerClass, rocAuc, reviewWarningCounts } from '../../src/classify/metrics.ts';
import {
  headForward,
  classifyNodule,
  serialiseHeads,
  parseHeads,
  HEADS_FORMAT,
  type NoduleHeads,
  type Head,
} from '../../src/classify/heads.ts';
import {
  huFeatures,
  compositionFeatures,
  poolSlices,
  noduleSlices,
  HU_FEATURE_NAMES,
  HU_STATISTIC_NAMES,
  COMPOSITION_FEATURE_NAMES,
} from '../../src/classify/pooling.ts';

test('confusion matrix, accuracy, kappa and recall against hand-computed values', () => {
  const m = confusionMatrix([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 1, 0], 3);
  assert.deepEqual(m, [
    [2, 1, 0],
    [0, 2, 0],
    [1, 0, 0],
  ]);
  assert.equal(accuracyOf(m), 4 / 6);
  // po = 4/6; pe = (3/6)(3/6) + (2/6)(3/6) + (1/6)(0) = 15/36
  assert.ok(Math.abs(cohenKappa(m) - (4 / 6 - 15 / 36) / (1 - 15 / 36)) < 1e-12);
  assert.deepEqual(recallPerClass(m), [2 / 3, 1, 0]);
  assert.equal(
    cohenKappa([
      [5, 0],
      [0, 5],
    ]),
    1,
  );
  assert.throws(() => confusionMatrix([0, 3], [0, 0], 3), RangeError);
});

test('ROC AUC: perfect, inverted, ties count half, undefined without both classes', () => {
  assert.equal(rocAuc([0.1, 0.2, 0.8, 0.9], [false, false, true, true]), 1);
  assert.equal(rocAuc([0.9, 0.8, 0.2, 0.1], [false, false, true, true]), 0);
  assert.equal(rocAuc([0.5, 0.5], [false, true]), 0.5);
  // pairs (pos, neg): (0.7 vs 0.2) win, (0.7 vs 0.9) loss, (0.4 vs 0.2) win, (0.4 vs 0.9) loss -> 0.5
  assert.equal(rocAuc([0.7, 0.4, 0.2, 0.9], [true, true, false, false]), 0.5);
  assert.ok(Number.isNaN(rocAuc([0.1, 0.2], [true, true])));
});

test('part-solid review warning: typed part-solid is not counted as flagged, the level is inclusive', () => {
  const truth = [1, 1, 1, 0, 0, 2];
  const probs = [
    [0.3, 0.6, 0.1], // part-solid, typed part-solid
    [0.7, 0.2, 0.1], // part-solid typed solid, p 0.2
    [0.85, 0.05, 0.1], // part-solid typed solid, p 0.05
    [0.8, 0.12, 0.08], // solid, p exactly 0.12
    [0.9, 0.05, 0.05], // solid, p 0.05
    [0.2, 0.15, 0.65], // ground-glass, p 0.15
  ];
  const [low, mid, high] = reviewWarningCounts(truth, probs, [0.1, 0.12, 0.3]);
  assert.deepEqual(low, {
    level: 0.1,
    partSolidTyped: 1,
    partSolidFlagged: 1,
    partSolid: 3,
    solidFlagged: 1,
    solid: 2,
    groundGlassFlagged: 1,
    groundGlass: 1,
  });
  assert.equal(mid!.solidFlagged, 1);
  assert.deepEqual([high!.partSolidTyped, high!.partSolidFlagged, high!.solidFlagged, high!.groundGlassFlagged], [1, 0, 0, 0]);
  assert.throws(() => reviewWarningCounts([3], [[1, 0, 0]], [0.1]), RangeError);
  assert.throws(() => reviewWarningCounts([0, 1], [[1, 0, 0]], [0.1]), RangeError);
});

function toyHeads(): NoduleHeads {
  const d = 2;
  const lin = (w: number[], b: number[], out: number): Head['layers'][number] => ({
    inFeatures: d,
    outFeatures: out,
    weight: Float32Array.from(w),
    bias: Float32Array.from(b),
  });
  return {
    format: HEADS_FORMAT,
    version: 1,
    features: { network: 0, hu: ['meanHU', 'stdHU'] },
    mean: Float32Array.of(10, 0),
    std: Float32Array.of(2, 1),
    heads: {
      type: { classes: ['solid', 'part-solid', 'ground-glass'], layers: [lin([1, 0, 0, 1, -1, 0], [0, 0, 0], 3)] },
      calcified: { classes: ['no', 'yes'], layers: [lin([0, 2], [-1], 1)] },
      malignancy: { classes: ['<=3', '>=4'], layers: [lin([1, 1], [0], 1)] },
      spiculation: {
        classes: ['<=2', '>=3'],
        layers: [
          { inFeatures: 2, outFeatures: 2, weight: Float32Array.of(1, 0, 0, 1), bias: Float32Array.of(0, 0) },
          { inFeatures: 2, outFeatures: 1, weight: Float32Array.of(1, -1), bias: Float32Array.of(0) },
        ],
      },
    },
    provenance: { note: 'test' },
  };
}

test('heads: standardise, softmax and sigmoid, ReLU between layers, argmax type', () => {
  const h = toyHeads();
  // standardised x = ((14 - 10) / 2, 1) = (2, 1): type logits (2, 1, -2)
  const c = classifyNodule(h, Float32Array.of(14, 1));
  const e = [Math.exp(2), Math.exp(1), Math.exp(-2)];
  const z = e[0]! + e[1]! + e[2]!;
  assert.equal(c.type, 'solid');
  assert.ok(Math.abs(c.typeProbabilities[1] - e[1]! / z) < 1e-4);
  assert.ok(Math.abs(c.calcified - 1 / (1 + Math.exp(-1))) < 1e-4);
  assert.ok(Math.abs(c.malignancySuspicion - 1 / (1 + Math.exp(-3))) < 1e-4);
  // hidden layer ReLU(2, 1) -> 2 - 1 = 1
  assert.ok(Math.abs(c.spiculation - 1 / (1 + Math.exp(-1))) < 1e-4);
  // with x = (-2, 1) the hidden ReLU zeroes the first unit: 0 - 1
  assert.ok(Math.abs(headForward(h.heads.spiculation, Float32Array.of(-2, 1))[0]! - 1 / (1 + Math.exp(1))) < 1e-6);
  assert.equal(classifyNodule(h, Float32Array.of(6, -1)).type, 'ground-glass');
  assert.throws(() => classifyNodule(h, Float32Array.of(1, 2, 3)), RangeError);
});

test('heads: the metadata string round-trips bit for bit and bad ones are refused', () => {
  const h = toyHeads();
  const back = parseHeads(serialiseHeads(h));
  assert.deepEqual(back.mean, h.mean);
  assert.deepEqual(back.heads.spiculation.layers[1]!.weight, h.heads.spiculation.layers[1]!.weight);
  assert.deepEqual(classifyNodule(back, Float32Array.of(3, 4)), classifyNodule(h, Float32Array.of(3, 4)));
  const j = JSON.parse(serialiseHeads(h)) as Record<string, unknown>;
  assert.throws(() => parseHeads(JSON.stringify({ ...j, version: 2 })), /unsupported heads format/);
  assert.throws(
    () => parseHeads(JSON.stringify({ ...j, std: Buffer.from(Float32Array.of(1, 0).buffer).toString('base64') })),
    /std must be > 0/,
  );
  assert.throws(() => parseHeads(JSON.stringify({ ...j, mean: 'AAAA' })), /expected 2 float32/);
  const noType = JSON.parse(serialiseHeads(h)) as { heads: Record<string, unknown> };
  delete noType.heads['type'];
  assert.throws(() => parseHeads(JSON.stringify({ ...j, heads: noType.heads })), /"type" missing/);
});

test('HU features: statistics inside the mask and the size, in HU_STATISTIC_NAMES order', () => {
  const image = Int16Array.of(-800, -500, 0, 400, 1000);
  const mask = Uint8Array.of(1, 1, 1, 1, 0);
  const f = huFeatures(image, mask, 2, 4, 3);
  assert.equal(f.length, HU_STATISTIC_NAMES.length);
  const get = (n: (typeof HU_STATISTIC_NAMES)[number]) => f[HU_STATISTIC_NAMES.indexOf(n)]!;
  assert.equal(get('meanHU'), -225);
  assert.equal(get('maxHU'), 400);
  assert.equal(get('fracBelowMinus600HU'), 0.25);
  assert.equal(get('fracMinus600ToMinus300HU'), 0.25);
  assert.equal(get('fracMinus300To100HU'), 0.25);
  assert.equal(get('fracAbove300HU'), 0.25);
  assert.ok(Math.abs(get('logVolumeMm3') - Math.log(8)) < 1e-6);
  assert.ok(Math.abs(get('logLongestAxialDiameterMm') - Math.log(4)) < 1e-6);
});

test('composition features: a part-solid disc (solid core, ground-glass ring) against a solid one', () => {
  // One axial slice of 9 x 9 voxels of 1 mm; the mask is the 7 x 7 square in the middle.
  const dims: [number, number, number] = [9, 9, 1];
  const mask = new Uint8Array(81);
  const image = new Int16Array(81).fill(-900);
  for (let y = 1; y < 8; y++) for (let x = 1; x < 8; x++) mask[y * 9 + x] = 1;
  const get = (f: Float32Array, n: (typeof COMPOSITION_FEATURE_NAMES)[number]) => f[COMPOSITION_FEATURE_NAMES.indexOf(n)]!;
  // Part-solid: the central 3 x 3 solid (0 HU), the rest of the square ground-glass (-600 HU).
  for (let y = 1; y < 8; y++) for (let x = 1; x < 8; x++) image[y * 9 + x] = Math.abs(x - 4) <= 1 && Math.abs(y - 4) <= 1 ? 0 : -600;
  const partSolid = compositionFeatures(image, mask, dims, [1, 1, 1]);
  assert.equal(partSolid.length, COMPOSITION_FEATURE_NAMES.length);
  assert.ok(Math.abs(get(partSolid, 'solidComponentVolumeFraction') - 9 / 49) < 1e-6);
  assert.ok(get(partSolid, 'solidComponentDiameterRatio') > 0.3 && get(partSolid, 'solidComponentDiameterRatio') < 0.5);
  // The core is the inner 5 x 5 (the rim of the square has a neighbour outside the mask).
  assert.ok(Math.abs(get(partSolid, 'coreFracAboveMinus300HU') - 9 / 25) < 1e-6);
  assert.ok(Math.abs(get(partSolid, 'coreFracMinus800ToMinus300HU') - 16 / 25) < 1e-6);
  // Solid with a partial-volume rim: the rim is ground-glass, the core all solid.
  for (let y = 1; y < 8; y++) for (let x = 1; x < 8; x++) image[y * 9 + x] = x === 1 || x === 7 || y === 1 || y === 7 ? -600 : 20;
  const solid = compositionFeatures(image, mask, dims, [1, 1, 1]);
  assert.equal(get(solid, 'coreFracAboveMinus300HU'), 1);
  assert.ok(get(solid, 'solidComponentDiameterRatio') > 0.7);
  assert.deepEqual([...compositionFeatures(image, new Uint8Array(81), dims, [1, 1, 1])], [0, 0, 0, 0, 0]);
  // The heads read a prefix of HU_FEATURE_NAMES: the statistics first, the composition after.
  assert.deepEqual(HU_FEATURE_NAMES.slice(0, HU_STATISTIC_NAMES.length), [...HU_STATISTIC_NAMES]);
});

test('slice pooling weights by mask area; the nodule slices, or the prompt slice when empty', () => {
  assert.deepEqual([...poolSlices(Float32Array.of(1, 2, 3, 6), 2, [1, 3])], [2.5, 5]);
  assert.deepEqual([...poolSlices(Float32Array.of(1, 2, 3, 6), 2, [0, 0])], [2, 4]);
  const mask = new Uint8Array(2 * 2 * 4);
  mask[4 * 1 + 3] = 1;
  mask[4 * 3] = 1;
  assert.deepEqual(noduleSlices(mask, [2, 2, 4], 0), [1, 3]);
  assert.deepEqual(noduleSlices(new Uint8Array(16), [2, 2, 4], 2.4), [2]);
});

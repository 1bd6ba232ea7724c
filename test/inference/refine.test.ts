import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  applyRefineStage,
  refineFeatures,
  refineRows,
  logitOf,
  validateRefineStage,
  REFINE_FEATURE_NAMES,
  REFINE_FEATURES_V1,
  REFINE_FORMAT,
  type RefineInput,
  type RefineStage,
} from '../../src/inference/refine.ts';
import { fitRefineStage, DEFAULT_REFINE_FIT, typeBalanceWeights } from '../../src/train/refine.ts';
import { buildModel, loadModel, readModelInfo, saveModel, defaultJointConfig, MODEL_FORMAT } from '../../src/models/index.ts';
import { readSafetensors, writeSafetensors } from '../../src/nn/safetensors.ts';
import { DEFAULT_SLICE_CONFIG, lidcCropsDir, loadCrops, missingDataReason, type SizeBins } from '../../src/data/index.ts';
import { segmentCrop } from '../../src/inference/index.ts';
import { DEFAULT_MODEL } from '../../src/cli/segment.ts';
import { UserError } from '../../src/errors.ts';
import type { Vec3 } from '../../src/io/volume.ts';

const D = REFINE_FEATURE_NAMES.length;

/** A 20 x 20 x 9 grid: a sphere of radius 4 voxels at the centre, probability 0.9 inside, HU -50 inside and -900 outside. */
function sphereInput(): RefineInput & { inside: Uint8Array } {
  const dims: Vec3 = [20, 20, 9];
  const n = dims[0] * dims[1] * dims[2];
  const probability = new Float32Array(n),
    hu = new Int16Array(n).fill(-900),
    inside = new Uint8Array(n);
  for (let z = 0; z < dims[2]; z++)
    for (let y = 0; y < dims[1]; y++)
      for (let x = 0; x < dims[0]; x++) {
        const i = z * dims[0] * dims[1] + y * dims[0] + x;
        if (Math.hypot(x - 9.5, y - 9.5, (z - 4) * 2) <= 4) {
          probability[i] = 0.9;
          hu[i] = -50;
          inside[i] = 1;
        }
      }
  return { hu, probability, dims, spacingMm: [1, 1, 2], promptVoxel: [9.5, 9.5, 4], inside };
}

/** A stage whose output layer is zero: the network's probability unchanged. */
function identityStage(hidden: number): RefineStage {
  const layers =
    hidden > 0
      ? [
          {
            inFeatures: D,
            outFeatures: hidden,
            weight: Array.from({ length: D * hidden }, (_, k) => Math.sin(k)),
            bias: new Array(hidden).fill(0.1),
          },
          { inFeatures: hidden, outFeatures: 1, weight: new Array(hidden).fill(0), bias: [0] },
        ]
      : [{ inFeatures: D, outFeatures: 1, weight: new Array(D).fill(0), bias: [0] }];
  return {
    format: REFINE_FORMAT,
    version: 1,
    features: [...REFINE_FEATURE_NAMES],
    mean: new Array(D).fill(0),
    std: new Array(D).fill(1),
    layers,
    provenance: {},
  };
}

test('refineFeatures reads the region around the probability only, with the logit first and the size from the component at the prompt', () => {
  const input = sphereInput();
  const { voxels, x } = refineFeatures(input);
  assert.equal(x.length, voxels.length * D);
  let inside = 0;
  for (let i = 0; i < input.inside.length; i++) inside += input.inside[i]!;
  // Every sphere voxel and a one-voxel shell around it, nothing further.
  assert.ok(voxels.length > inside && voxels.length < input.inside.length / 2);
  const [nx, ny] = input.dims;
  voxels.forEach((v, k) => {
    const y = Math.floor((v % (nx * ny)) / nx),
      xx = v % nx;
    assert.ok(Math.abs(xx - 9.5) <= 6 && Math.abs(y - 9.5) <= 6, `voxel ${v} is far from the sphere`);
    const row = x.subarray(k * D, (k + 1) * D);
    assert.ok(Math.abs(row[0]! - logitOf(input.probability[v]!)) < 1e-5);
    if (input.inside[v]) {
      assert.equal(row[11], 1, 'HU -50 is in the [-300, 0) bin');
      assert.equal(row[12], 0);
      assert.ok(row[18]! < 1.3, `radius over predicted ${row[18]} inside the sphere`);
    }
    assert.ok(Math.abs(row[17]! - 2 / 2.5) < 1e-6, 'z spacing');
  });
  // A blob away from the prompt does not change the predicted size.
  const moved = { ...input, probability: Float32Array.from(input.probability) };
  for (let z = 0; z < 9; z++) moved.probability[z * nx * ny + 0] = 0.95;
  const a = refineFeatures(input),
    b = refineFeatures(moved);
  assert.equal(a.x[20], b.x[20]);
});

test('a stage given a subset of the features reads the same values as the full set, in its order', () => {
  const input = sphereInput();
  const full = refineFeatures(input);
  const names = [...REFINE_FEATURES_V1, 'sliceAreaOverMax', 'predictedMeanHu'];
  const part = refineFeatures(input, names);
  assert.deepEqual(part.voxels, full.voxels);
  const cols = names.map((n) => (REFINE_FEATURE_NAMES as readonly string[]).indexOf(n));
  for (let k = 0; k < full.voxels.length; k++)
    cols.forEach((c, j) => {
      assert.equal(part.x[k * names.length + j], full.x[k * D + c]);
    });
  // The wider features: the sphere's middle slice is its widest, and its HU is the nodule's.
  const area = (REFINE_FEATURE_NAMES as readonly string[]).indexOf('sliceAreaOverMax');
  const meanHu = (REFINE_FEATURE_NAMES as readonly string[]).indexOf('predictedMeanHu');
  const centre = 4 * 400 + 9 * 20 + 9;
  const k = Array.from(full.voxels).indexOf(centre);
  assert.equal(full.x[k * D + area], 1);
  assert.ok(Math.abs(full.x[k * D + meanHu]! - -0.05) < 1e-6);
  // A session-15 stage (21 features) still applies.
  const v1 = { ...identityStage(0), features: [...REFINE_FEATURES_V1], mean: new Array(21).fill(0), std: new Array(21).fill(1) };
  v1.layers = [{ inFeatures: 21, outFeatures: 1, weight: new Array(21).fill(0), bias: [0.5] }];
  const out = applyRefineStage(validateRefineStage(v1), input);
  assert.ok(Math.abs(out[centre]! - 1 / (1 + Math.exp(-(logitOf(0.9) + 0.5)))) < 1e-5);
});

test('a stage with a zero output layer gives back the network probability', () => {
  const input = sphereInput();
  input.probability[0] = 0.3;
  for (const hidden of [0, 4]) {
    const out = applyRefineStage(identityStage(hidden), input);
    assert.equal(out.length, input.probability.length);
    for (let i = 0; i < out.length; i++) {
      const p = input.probability[i]!;
      // Logits are clipped at 1e-4 from 0 and 1, so p = 0 comes back at most 1e-4.
      assert.ok(Math.abs(out[i]! - p) < 1.1e-4, `voxel ${i}: ${out[i]} vs ${p}`);
    }
  }
});

test('fitting learns a correction the network gets wrong and keeps what it gets right', () => {
  // The network says 0.8 on voxels readers mark only when dense (HU >= -300), and in ground glass
  // (-800..-500 HU) where they do not: the stage must lower the second and keep the first.
  const rows = [];
  for (let c = 0; c < 40; c++) {
    const n = 200;
    const x = new Float32Array(n * D),
      y = new Float32Array(n);
    for (let k = 0; k < n; k++) {
      const dense = k % 2 === 0;
      const row = x.subarray(k * D, (k + 1) * D);
      row[0] = Math.log(0.8 / 0.2);
      row[6] = dense ? -0.1 : -0.65;
      row[dense ? 11 : 9] = 1;
      row[dense ? 16 : 14] = row[0];
      row[17] = 0.4 + (c % 3) * 0.1;
      y[k] = dense ? 1 : 0;
    }
    rows.push({ x, y });
  }
  const stage = fitRefineStage(rows, { ...DEFAULT_REFINE_FIT, features: REFINE_FEATURE_NAMES, hidden: 0, steps: 200, lr: 0.05 });
  assert.doesNotThrow(() => validateRefineStage(stage));
  const fit = stage.provenance['fit'] as { networkLoss: number; stageLoss: number };
  assert.ok(fit.stageLoss < fit.networkLoss / 3, `loss ${fit.networkLoss} -> ${fit.stageLoss}`);
  const p = refineRows(stage, rows[0]!.x.subarray(0, 2 * D));
  assert.ok(p[0]! > 0.9, `dense voxel ${p[0]}`);
  assert.ok(p[1]! < 0.1, `ground-glass voxel ${p[1]}`);
});

test('type balance weighs each type by its share to the -exponent, and a crop of weight 2 counts as two copies of it', () => {
  const types = ['solid', 'solid', 'solid', null, 'ground-glass', 'part-solid'];
  assert.deepEqual(typeBalanceWeights(types, 0), [1, 1, 1, 1, 1, 1]);
  const full = typeBalanceWeights(types, 1);
  // 4 solid (null counts as solid) of 6, 1 ground-glass, 1 part-solid: every type weighs 6 in all.
  assert.deepEqual(
    full.map((w) => Number(w.toFixed(9))),
    [1.5, 1.5, 1.5, 1.5, 6, 6],
  );
  const crop = (k: number) => {
    const n = 6 + k;
    const x = new Float32Array(n * 2),
      y = new Float32Array(n);
    for (let r = 0; r < n; r++) {
      x[r * 2] = Math.sin(r + k);
      x[r * 2 + 1] = Math.cos(3 * r - k);
      y[r] = (r + k) % 3 === 0 ? 1 : 0;
    }
    return { x, y };
  };
  const o = { ...DEFAULT_REFINE_FIT, features: ['logit', 'logitMeanZ'], hidden: 3, steps: 30 };
  const a = crop(0),
    b = crop(1);
  // The network's own loss under the fit's weights (before any step) counts a as twice b either way.
  const networkLoss = (rows: Parameters<typeof fitRefineStage>[0]) =>
    (fitRefineStage(rows, o).provenance['fit'] as { networkLoss: number }).networkLoss;
  const twice = networkLoss([{ ...a, weight: 2 }, b]),
    copies = networkLoss([a, a, b]),
    alike = networkLoss([a, b]);
  assert.ok(Math.abs(twice - copies) < 1e-6, `${twice} vs ${copies}`);
  assert.ok(Math.abs(twice - alike) > 1e-3, `weight 2 changes the loss: ${twice} vs ${alike}`);
  assert.throws(() => fitRefineStage([{ ...a, weight: 0 }], o), /weigh nothing/);
});

test('refineRows gives the network logit plus the dense layers (float32), with one hidden layer and with two', () => {
  const d = 3,
    hidden = 4;
  const w1 = Array.from({ length: d * hidden }, (_, k) => Math.sin(k + 1)),
    b1 = [0.1, -0.2, 0.3, 0],
    w2 = [0.5, -1, 2, 0.25];
  const x = Float32Array.from({ length: 5 * d }, (_, k) => Math.cos(k) * 2);
  const base = {
    format: REFINE_FORMAT as typeof REFINE_FORMAT,
    version: 1 as const,
    features: ['logit', 'logitMeanZ', 'logitMaxZ'],
    provenance: {},
  };
  const stage: RefineStage = {
    ...base,
    mean: [0.1, 0, -0.1],
    std: [1, 2, 0.5],
    layers: [
      { inFeatures: d, outFeatures: hidden, weight: w1, bias: b1 },
      { inFeatures: hidden, outFeatures: 1, weight: w2, bias: [0.05] },
    ],
  };
  // A third layer (1 -> 1, weight 1) puts a ReLU after the second layer.
  const general: RefineStage = { ...stage, layers: [...stage.layers, { inFeatures: 1, outFeatures: 1, weight: [1], bias: [0] }] };
  const fast = refineRows(stage, x),
    slow = refineRows(general, x);
  for (let r = 0; r < 5; r++) {
    const z = [0, 1, 2].map((j) => (x[r * d + j]! - stage.mean[j]!) / stage.std[j]!);
    let c = 0.05;
    for (let u = 0; u < hidden; u++) c += w2[u]! * Math.max(0, b1[u]! + z.reduce((s, v, j) => s + w1[u * d + j]! * v, 0));
    const expected = 1 / (1 + Math.exp(-(x[r * d]! + c))),
      expectedGeneral = 1 / (1 + Math.exp(-(x[r * d]! + Math.max(0, c))));
    assert.ok(Math.abs(fast[r]! - expected) < 1e-5, `row ${r}: ${fast[r]} vs ${expected}`);
    assert.ok(Math.abs(slow[r]! - expectedGeneral) < 1e-5, `row ${r} (three layers): ${slow[r]} vs ${expectedGeneral}`);
  }
  assert.equal(refineRows(stage, new Float32Array(0)).length, 0);
  assert.throws(() => refineRows(stage, new Float32Array(d + 1)), /not rows of 3/);
});

test('validateRefineStage names what is wrong', () => {
  assert.doesNotThrow(() => validateRefineStage(identityStage(4)));
  assert.throws(() => validateRefineStage({ ...identityStage(0), features: ['logit', 'nope'] }), /feature 'nope'/);
  assert.throws(() => validateRefineStage({ ...identityStage(0), features: ['hu', 'logit'] }), /feature 'logit'/);
  assert.throws(() => validateRefineStage({ ...identityStage(0), features: ['logit'] }), /standardisation/);
  assert.throws(() => validateRefineStage({ ...identityStage(0), std: new Array(D).fill(0) }), /standardisation/);
  const bad = identityStage(4);
  bad.layers[1] = { ...bad.layers[1]!, inFeatures: 3 };
  assert.throws(() => validateRefineStage(bad), /layer 1/);
  assert.throws(() => validateRefineStage({ format: 'x' }), /not noduleseg.refine/);
});

test('a model file carries its stage, and a broken one is refused with the file named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'noduleseg-refine-'));
  try {
    const bins: SizeBins = {
      format: 'noduleseg.size-bins',
      version: 1,
      edgesMm2: [10, 40],
      classes: ['none', 'small', 'medium', 'large'],
      nonzeroSlices: 3,
      source: 'test',
    };
    const slice = { ...DEFAULT_SLICE_CONFIG, patchSize: 32 };
    const model = buildModel(defaultJointConfig({ features: [4, 8, 16], clsFeatures: [4, 4, 8] }), slice, bins);
    const file = join(dir, 'm.safetensors');
    saveModel(file, model, { slice, sizeBins: bins, threshold: 0.4, refine: identityStage(2), provenance: {} });
    model.dispose();
    assert.equal(readModelInfo(file).refine?.layers.length, 2);
    const src = readSafetensors(file);
    const info = JSON.parse(src.metadata[MODEL_FORMAT]!) as Record<string, unknown>;
    const broken = join(dir, 'broken.safetensors');
    writeSafetensors(broken, src.tensors, {
      ...src.metadata,
      [MODEL_FORMAT]: JSON.stringify({ ...info, refine: { ...identityStage(0), mean: [1] } }),
    });
    assert.throws(
      () => readModelInfo(broken),
      (e: unknown) => e instanceof UserError && e.message.startsWith(broken) && /standardisation/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the shipped model carries its stage, and segment without it gives the network alone', {
  skip: missingDataReason(lidcCropsDir()) ?? false,
}, () => {
  const { model, info } = loadModel(DEFAULT_MODEL);
  try {
    assert.ok(info.refine, `${DEFAULT_MODEL}: no refinement stage`);
    const crop = loadCrops({ splits: ['val'], limit: 1 })[0]!;
    const withStage = segmentCrop(model, info, crop.image).seg;
    const alone = segmentCrop(model, info, crop.image, { refine: false }).seg;
    let changed = 0;
    for (let i = 0; i < crop.mask.length; i++) if (Math.abs(withStage.probability.data[i]! - alone.probability.data[i]!) > 1e-3) changed++;
    assert.ok(changed > 0, 'the stage changed no voxel');
    for (const seg of [withStage, alone]) {
      let tp = 0,
        p = 0,
        r = 0;
      for (let i = 0; i < crop.mask.length; i++) {
        p += seg.mask.data[i]!;
        r += crop.mask[i]!;
        tp += seg.mask.data[i]! & crop.mask[i]!;
      }
      assert.ok((2 * tp) / (p + r) > 0.7, `${crop.id}: Dice ${((2 * tp) / (p + r)).toFixed(3)}`);
    }
  } finally {
    model.dispose();
  }
});

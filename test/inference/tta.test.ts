import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed } from '../../src/tensor/index.ts';
import { buildModel } from '../../src/models/index.ts';
import { predictSlices } from '../../src/inference/predict.ts';
import { TINY_BINS, TINY_SLICE, tinyConfig } from '../transfer/helpers.ts';

const P = TINY_SLICE.patchSize;

/** [Z, C, P, P] with each slice's P x P plane transposed. */
function transposed(a: Float32Array, planes: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let s = 0; s < planes; s++)
    for (let y = 0; y < P; y++) for (let x = 0; x < P; x++) out[s * P * P + x * P + y] = a[s * P * P + y * P + x]!;
  return out;
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

test('test-time augmentation: the 8 dihedral passes commute with a transpose of the input; the 4 flips alone do not', () => {
  manualSeed(5);
  // Untrained weights: nothing in them is symmetric under a transpose, so a result that is proves the averaging.
  const model = buildModel(tinyConfig('joint'), TINY_SLICE, TINY_BINS);
  const z = 2,
    c = 1;
  const input = Float32Array.from({ length: z * c * P * P }, (_, i) => Math.sin(i * 0.37) + Math.cos(i * 0.011));
  const inputT = transposed(input, z * c);
  const shape = [z, c, P, P] as const;

  const dihedral = predictSlices(model, input, shape, { flipTta: 'dihedral' });
  const dihedralT = predictSlices(model, inputT, shape, { flipTta: 'dihedral' });
  assert.ok(maxDiff(transposed(dihedral.probs, z), dihedralT.probs) < 1e-5, 'dihedral average is transpose-equivariant');
  // The class probabilities (per slice) are invariant under the same group.
  assert.ok(maxDiff(dihedral.classProbs!, dihedralT.classProbs!) < 1e-5);

  const flips = predictSlices(model, input, shape, { flipTta: true });
  const flipsT = predictSlices(model, inputT, shape, { flipTta: true });
  assert.ok(maxDiff(transposed(flips.probs, z), flipsT.probs) > 1e-4, 'the flips alone are not');
  // And the 8 passes are the mean of the 4 flips and the 4 flips of the transposed input.
  const mean = flips.probs.map((v, i) => (v + transposed(flipsT.probs, z)[i]!) / 2);
  assert.ok(maxDiff(mean, dihedral.probs) < 1e-5);
});

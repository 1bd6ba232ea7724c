import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keptSliceRange, trimAtConstriction } from '../../src/inference/profile.ts';

test('the mask is cut where it narrows to a waist and widens again away from the prompt', () => {
  // A nodule (rise to 120 at the prompt, fall to 70), then the chest wall past its end (290, ...).
  const wall = [0, 18, 102, 123, 69, 289, 161, 253, 272];
  assert.deepEqual(keptSliceRange(wall, 3), [1, 4]);
  // A prompt on an end slice: the rise towards the widest slice is kept.
  const nodule = [0, 10, 40, 90, 100, 80, 30, 5, 0];
  assert.deepEqual(keptSliceRange(nodule, 1), [1, 7]);
  assert.deepEqual(keptSliceRange(nodule, 7), [1, 7]);
  // Small wobbles (under 2x the smallest area since the widest slice, or under 5 mm2) never cut.
  assert.deepEqual(keptSliceRange([50, 60, 100, 70, 90, 60, 75, 2, 4, 0], 2), [0, 8]);
  // An empty slice ends the walk.
  assert.deepEqual(keptSliceRange([80, 0, 90, 100, 0, 70], 3), [2, 3]);
  // A prompt on an empty slice walks from the nearest slice with mask, and keeps that mask.
  assert.deepEqual(keptSliceRange([0, 0, 0, 40, 90, 30, 0], 1), [3, 5]);
  // The factor is a setting.
  assert.deepEqual(keptSliceRange(wall, 3, { growthFactor: 5 }), [1, 8]);
});

test('trimAtConstriction clears the slices beyond the waist', () => {
  const dims: [number, number, number] = [4, 4, 5];
  const areas = [16, 4, 2, 8, 16]; // voxels per slice; prompt on slice 0
  const mask = new Uint8Array(80);
  areas.forEach((a, z) => {
    mask.fill(1, z * 16, z * 16 + a);
  });
  const kept = trimAtConstriction(mask, dims, [1, 1, 1], 0);
  assert.deepEqual(kept, [0, 2]);
  assert.equal(
    mask.subarray(48).reduce((s, v) => s + v, 0),
    0,
  );
  assert.equal(
    mask.subarray(0, 48).reduce((s, v) => s + v, 0),
    22,
  );
});

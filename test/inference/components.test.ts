import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fillHolesInPlane } from '../../src/inference/components.ts';
import { fillEnclosedHoles } from '../../src/inference/predict.ts';

/** A slice from rows of '#' (mask) and '.' (background), and back. */
const slice = (rows: string[]) => Uint8Array.from(rows.join(''), (c) => (c === '#' ? 1 : 0));
const text = (mask: Uint8Array, nx: number) =>
  Array.from({ length: mask.length / nx }, (_, y) => Array.from(mask.subarray(y * nx, (y + 1) * nx), (v) => (v ? '#' : '.')).join(''));

test('fillHolesInPlane fills what a nodule encloses in its slice, and nothing open to the border', () => {
  // A wall around a cavity with a solid speck in it: the cavity (8 pixels) is filled.
  const ring = ['.......', '.#####.', '.#...#.', '.#.#.#.', '.#...#.', '.#####.', '.......'];
  // A C shape: its inside is joined to the border by a gap, so it stays.
  const open = ['.......', '.#####.', '.#.....', '.#.....', '.#...#.', '.#####.', '.......'];
  // A hole whose only way out is diagonal: background is joined 4-connected, so it is enclosed.
  const diagonal = ['.......', '.####..', '.#..#..', '.#..#..', '.####..', '.......', '#......'];
  const mask = new Uint8Array(7 * 7 * 4);
  mask.set(slice(ring), 0);
  mask.set(slice(open), 49);
  mask.set(slice(diagonal), 98); // the last slice stays empty
  assert.equal(fillHolesInPlane(mask, [7, 7, 4]), 8 + 4);
  assert.deepEqual(text(mask.subarray(0, 49), 7), ['.......', '.#####.', '.#####.', '.#####.', '.#####.', '.#####.', '.......']);
  assert.deepEqual(text(mask.subarray(49, 98), 7), open);
  assert.deepEqual(text(mask.subarray(98, 147), 7), ['.......', '.####..', '.####..', '.####..', '.####..', '.......', '#......']);
  assert.equal(
    mask.subarray(147).reduce((s, v) => s + v, 0),
    0,
  );
  // Slice by slice, as the readers outline: a channel through every slice's centre, open at both
  // ends in z, is a hole in each slice.
  const tube = new Uint8Array(27).fill(1);
  for (const z of [0, 1, 2]) tube[4 + 9 * z] = 0;
  assert.equal(fillHolesInPlane(tube, [3, 3, 3]), 3);
  assert.ok(tube.every((v) => v === 1));
});

test('fillEnclosedHoles adds the holes of a wider mask of the nodule, then its own', () => {
  // The default level draws the wall with a gap; the wider (lower-level) mask closes it.
  const mask = slice(['.......', '.##.##.', '.#...#.', '.#...#.', '.#...#.', '.#####.', '.......']);
  const wider = slice(['.......', '.#####.', '.#...#.', '.#...#.', '.#...#.', '.#####.', '.......']);
  fillEnclosedHoles(mask, [7, 7, 1], wider);
  // The cavity is added; the gap in the wall itself (in the wider mask, not a hole) is not.
  assert.deepEqual(text(mask, 7), ['.......', '.##.##.', '.#####.', '.#####.', '.#####.', '.#####.', '.......']);
  const alone = slice(['.......', '.##.##.', '.#...#.', '.#...#.', '.#...#.', '.#####.', '.......']);
  fillEnclosedHoles(alone, [7, 7, 1]);
  assert.deepEqual(text(alone, 7), ['.......', '.##.##.', '.#...#.', '.#...#.', '.#...#.', '.#####.', '.......']);
});

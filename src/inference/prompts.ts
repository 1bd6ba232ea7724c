/**
 * Prompts: where a nodule is in a scan. Plain data and arithmetic, without the model, so that the
 * command line's help and the viewer's server take them without loading libtorch.
 */
import type { Vec3 } from '../io/volume.ts';

/**
 * Where a nodule is, in voxels of the scan: a point on it, or a box around it (two opposite
 * corners, voxel centres included). A box's mask stays inside the box widened by
 * BOX_MARGIN_MM on each side, except along an axis where the box is flat (a rectangle drawn on
 * one slice limits the nodule in-plane only).
 */
export type NodulePrompt = { kind: 'point'; voxel: Vec3 } | { kind: 'box'; minVoxel: Vec3; maxVoxel: Vec3 };

/** A box prompt from two opposite corners in voxels, in any order. */
export function boxPrompt(a: Vec3, b: Vec3): NodulePrompt {
  return {
    kind: 'box',
    minVoxel: [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.min(a[2], b[2])],
    maxVoxel: [Math.max(a[0], b[0]), Math.max(a[1], b[1]), Math.max(a[2], b[2])],
  };
}

/** A detector's or a reader's box is rarely exact to the voxel: this much slack, in mm, each side. */
export const BOX_MARGIN_MM = 2;

/** The voxel a prompt centres the crop on. */
export function promptCentre(prompt: NodulePrompt): Vec3 {
  if (prompt.kind === 'point') return prompt.voxel;
  const { minVoxel: a, maxVoxel: b } = prompt;
  return [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2, (a[2] + b[2]) / 2];
}

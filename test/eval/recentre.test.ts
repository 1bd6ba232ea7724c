import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Volume, type Vec3 } from '../../src/io/volume.ts';
import { Module } from '../../src/nn/index.ts';
import { tensor, type Tensor } from '../../src/tensor/index.ts';
import { DEFAULT_SLICE_CONFIG } from '../../src/data/index.ts';
import { maskCentroid, segmentVolume } from '../../src/inference/predict.ts';
import { maskOverlap } from '../../src/metrics/segmentation.ts';

const diceOf = (p: ArrayLike<number>, g: ArrayLike<number>) => {
  const o = maskOverlap(p, g);
  return (2 * o.tp) / (o.predicted + o.reference);
};
import type { ModelConfig } from '../../src/models/config.ts';
import type { SegmentationOutput } from '../../src/models/types.ts';
import { clickVoxel, parseClickMode } from '../../src/eval/benchmark.ts';
import type { CropCase } from '../../src/data/crops.ts';

/**
 * A stand-in for a network trained on centred nodules only: it marks dense pixels (over -300 HU)
 * within RADIUS_PX of the patch centre and nothing further out, so a click at a nodule's edge
 * loses the far side of the nodule.
 */
const RADIUS_PX = 8;
class CentreBlobNet extends Module<[Tensor], SegmentationOutput> {
  readonly config = { arch: 'unet', inChannels: 1, features: [8], norm: 'batch' } as unknown as ModelConfig;
  forward(x: Tensor): SegmentationOutput {
    const p = x.shape[3]!;
    const h = (p - 1) / 2;
    const disc = new Float32Array(p * p);
    for (let v = 0; v < p; v++) for (let u = 0; u < p; u++) disc[u + p * v] = Math.hypot(u - h, v - h) <= RADIUS_PX ? 1 : 0;
    // window [-1000, 400] -> [0, 1]: -300 HU is 0.5
    const logits = x
      .gt(0.5)
      .float()
      .mul(tensor(disc, [1, 1, p, p]))
      .mul(20)
      .sub(10);
    return { maskLogits: logits, rawMaskLogits: logits, classLogits: null };
  }
}

/** A 14 mm sphere of soft tissue (40 HU) in air-filled lung (-900 HU), 1 mm voxels. */
function sphereScan(): { volume: Volume; truth: Uint8Array; centre: Vec3 } {
  const dims: Vec3 = [80, 80, 30];
  const centre: Vec3 = [40, 40, 15];
  const data = new Int16Array(dims[0] * dims[1] * dims[2]);
  const truth = new Uint8Array(data.length);
  for (let z = 0; z < dims[2]; z++)
    for (let y = 0; y < dims[1]; y++)
      for (let x = 0; x < dims[0]; x++) {
        const i = x + dims[0] * (y + dims[1] * z);
        const inside = Math.hypot(x - centre[0], y - centre[1], z - centre[2]) <= 7;
        data[i] = inside ? 40 : -900;
        truth[i] = inside ? 1 : 0;
      }
  return { volume: new Volume({ data, dims, spacingMm: [1, 1, 1], originMm: [0, 0, 0] }), truth, centre };
}

test('maskCentroid is the mean voxel of the mask, null when empty', () => {
  const m = new Uint8Array(2 * 3 * 2);
  m[0] = 1; // (0,0,0)
  m[1 + 2 * (2 + 3 * 1)] = 1; // (1,2,1)
  assert.deepEqual(maskCentroid(m, [2, 3, 2]), [0.5, 1, 0.5]);
  assert.equal(maskCentroid(new Uint8Array(4), [2, 2, 1]), null);
});

test('a click at the edge of a nodule is segmented again centred on what was found', () => {
  const { volume, truth, centre } = sphereScan();
  const model = new CentreBlobNet();
  const slice = { ...DEFAULT_SLICE_CONFIG, spacingMm: 1 };
  const edge: Vec3 = [centre[0] + 5, centre[1] - 2, centre[2]];
  const once = segmentVolume(model, volume, slice, { threshold: 0.5, centreVoxel: edge });
  const again = segmentVolume(model, volume, slice, { threshold: 0.5, centreVoxel: edge, recentreMm: 1 });
  const diceOnce = diceOf(once.mask.data, truth);
  const diceAgain = diceOf(again.mask.data, truth);
  assert.deepEqual(once.centreVoxel, edge);
  // The second pass is centred near the sphere's centre and sees all of it.
  assert.ok(Math.hypot(again.centreVoxel[0] - centre[0], again.centreVoxel[1] - centre[1]) < 2.5, String(again.centreVoxel));
  assert.ok(diceOnce < 0.8, `one pass ${diceOnce}`);
  assert.ok(diceAgain > 0.95, `re-centred ${diceAgain}`);
  // A click at the centre already finds the nodule there: no second pass. (Centred on a voxel,
  // the patch pixels fall between voxels and the sphere's edge blurs: hence the lower floor.)
  const atCentre = segmentVolume(model, volume, slice, { threshold: 0.5, centreVoxel: centre, recentreMm: 1 });
  assert.deepEqual(atCentre.centreVoxel, centre);
  const diceCentre = diceOf(atCentre.mask.data, truth);
  assert.ok(diceCentre > 0.85, `at the centre ${diceCentre}`);
  // Without the prompt's component there is no "nodule found" to centre on.
  const raw = segmentVolume(model, volume, slice, { threshold: 0.5, centreVoxel: edge, recentreMm: 1, keepPromptComponent: false });
  assert.deepEqual(raw.centreVoxel, edge);
});

test('benchmark clicks: parsed from --click, drawn per crop id, inside the consensus or at the offset', () => {
  assert.deepEqual(parseClickMode('centre'), { kind: 'centre' });
  assert.deepEqual(parseClickMode('on-nodule'), { kind: 'on-nodule' });
  assert.deepEqual(parseClickMode('2.5mm'), { kind: 'offset', offsetMm: 2.5 });
  assert.equal(parseClickMode('2cm'), null);
  const { volume, truth } = sphereScan();
  const crop = { id: 'LIDC-IDRI-9999_R_1', image: volume, mask: truth } as unknown as CropCase;
  const centre: Vec3 = [39.5, 39.5, 14.5];
  assert.deepEqual(clickVoxel(crop, { kind: 'centre' }, []), centre);
  const off = clickVoxel(crop, { kind: 'offset', offsetMm: 4 }, []);
  assert.ok(Math.abs(Math.hypot(off[0] - centre[0], off[1] - centre[1]) - 4) < 1e-9 && off[2] === centre[2], String(off));
  // Three readers whose 50% consensus (2 of 3) is half the union: the click lands in it.
  const half = Uint8Array.from(truth, (v, i) => (v && i % 80 < 40 ? 1 : 0));
  for (const id of ['a', 'b', 'c', 'd', 'e']) {
    const c = { ...crop, id } as CropCase;
    const [x, y, z] = clickVoxel(c, { kind: 'on-nodule' }, [truth, half, half]);
    assert.equal(half[x + 80 * (y + 80 * z)], 1, `${id}: ${[x, y, z]}`);
    // The same crop is clicked at the same place every time, whatever else ran before.
    assert.deepEqual(clickVoxel(c, { kind: 'on-nodule' }, [truth, half, half]), [x, y, z]);
  }
});

/**
 * CentreBlobNet for a model with a prompt channel (channel 1): the same marks from channel 0, and
 * it keeps where each pass's prompt channel peaks on the prompt's slice.
 */
class PromptRecordingNet extends Module<[Tensor], SegmentationOutput> {
  readonly config = { arch: 'unet', inChannels: 2, features: [8], norm: 'batch' } as unknown as ModelConfig;
  readonly peaks: number[] = [];
  constructor(private readonly promptSlice: number) {
    super();
  }
  forward(x: Tensor): SegmentationOutput {
    const [n, , p] = x.shape as [number, number, number, number];
    const h = (p - 1) / 2;
    const input = x.toTypedArray() as Float32Array;
    const plane = p * p;
    const logits = new Float32Array(n * plane);
    for (let s = 0; s < n; s++) {
      const prompt = input.subarray((2 * s + 1) * plane, (2 * s + 2) * plane);
      if (s === this.promptSlice) this.peaks.push(prompt.indexOf(Math.max(...prompt)));
      for (let i = 0; i < plane; i++) {
        const near = Math.hypot((i % p) - h, Math.floor(i / p) - h) <= RADIUS_PX;
        logits[s * plane + i] = near && input[2 * s * plane + i]! > 0.5 ? 10 : -10;
      }
    }
    const t = tensor(logits, [n, 1, p, p]);
    return { maskLogits: t, rawMaskLogits: t, classLogits: null };
  }
}

test('recentred patches keep the prompt channel at the click', () => {
  const { volume, centre } = sphereScan();
  const model = new PromptRecordingNet(centre[2]);
  const slice = { ...DEFAULT_SLICE_CONFIG, spacingMm: 1, promptChannel: { sigmaMm: 4 } };
  const edge: Vec3 = [centre[0] + 5, centre[1] - 2, centre[2]];
  const seg = segmentVolume(model, volume, slice, { threshold: 0.5, centreVoxel: edge, recentreMm: 1, batchSize: 64 });
  assert.equal(model.peaks.length, 2, 'one pass at the click, one recentred');
  const P = slice.patchSize;
  const h = (P - 1) / 2;
  // Patch pixel (u, v) lies at the patch centre + (u - h, v - h) voxels (1 mm pixels, 1 mm voxels).
  const at = (peak: number, c: Vec3) => [c[0] + (peak % P) - h, c[1] + Math.floor(peak / P) - h];
  for (const [pass, c] of [
    [0, edge],
    [1, seg.centreVoxel],
  ] as const) {
    const [x, y] = at(model.peaks[pass]!, c);
    assert.ok(
      Math.hypot(x - edge[0], y - edge[1]) <= 1,
      `pass ${pass}: prompt channel peaks at (${x}, ${y}), the click is (${edge[0]}, ${edge[1]})`,
    );
  }
  assert.ok(Math.hypot(seg.centreVoxel[0] - edge[0], seg.centreVoxel[1] - edge[1]) > 2, 'the second pass is centred elsewhere');
});

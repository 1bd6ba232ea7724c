// A small network built from F ops, trained a few hundred steps on real LIDC crops
// (../shared/data/lidc-crops), reaches a loss well below its start. Skipped without ../shared.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readImageNode } from '@itk-wasm/image-io';
import { F, keep, manualSeed, noGrad, randn, tensor, tidy, zeros, ones, type Tensor } from '../../src/tensor/index.ts';
import { Adam } from '../../src/optim/index.ts';

const DATA = join(import.meta.dirname, '..', '..', '..', 'shared', 'data', 'lidc-crops');
const SIDE = 32;
const CASES = 16;

/** The middle axial slice of a crop, centre-cropped / zero-padded to SIDE x SIDE (x fastest). */
async function middleSlice(path: string, fill: number): Promise<Float32Array> {
  const img = await readImageNode(path);
  const [nx, ny, nz] = img.size as [number, number, number];
  const data = img.data as Int16Array;
  const z = Math.floor(nz / 2);
  const out = new Float32Array(SIDE * SIDE).fill(fill);
  const ox = Math.floor((nx - SIDE) / 2);
  const oy = Math.floor((ny - SIDE) / 2);
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const sx = x + ox;
      const sy = y + oy;
      if (sx >= 0 && sx < nx && sy >= 0 && sy < ny) out[y * SIDE + x] = data[z * nx * ny + sy * nx + sx]!;
    }
  }
  return out;
}

describe('training on real crops', () => {
  const available = existsSync(join(DATA, 'splits.csv'));
  it('a small conv net reduces its loss well below the start', {
    skip: available ? false : `skipped: ${DATA} is absent (../shared not mounted)`,
  }, async () => {
    const names = readFileSync(join(DATA, 'splits.csv'), 'utf8')
      .trim()
      .split(/\r?\n/)
      .slice(1)
      .map((l) => l.trim().split(','))
      .filter((f) => f[2] === 'train')
      .map((f) => f[0]!)
      .slice(0, CASES);
    assert.equal(names.length, CASES);
    const images = new Float32Array(CASES * SIDE * SIDE);
    const masks = new Float32Array(CASES * SIDE * SIDE);
    for (const [i, n] of names.entries()) {
      const img = await middleSlice(join(DATA, 'image', `${n}.nii.gz`), -1000);
      const msk = await middleSlice(join(DATA, 'mask', `${n}.nii.gz`), 0);
      for (let k = 0; k < img.length; k++) {
        images[i * SIDE * SIDE + k] = (Math.min(400, Math.max(-1000, img[k]!)) + 300) / 700; // lung window, ~[-1, 1]
        masks[i * SIDE * SIDE + k] = msk[k]! > 0 ? 1 : 0;
      }
    }
    const fg = masks.reduce((a, b) => a + b, 0) / masks.length;
    assert.ok(fg > 0.01 && fg < 0.9, `nodule fraction ${fg}`);

    manualSeed(11);
    const x = keep(tensor(images, [CASES, 1, SIDE, SIDE]));
    const y = keep(tensor(masks, [CASES, 1, SIDE, SIDE]));
    const conv = (o: number, i: number, k: number): Tensor =>
      keep(tidy(() => randn([o, i, k, k]).mul(Math.sqrt(2 / (i * k * k)))).requiresGrad_());
    const w1 = conv(8, 1, 3);
    const w2 = conv(8, 8, 3);
    const w3 = conv(1, 8, 1);
    const [g1, b1, g2, b2, b3] = [ones([8]), zeros([8]), ones([8]), zeros([8]), zeros([1])].map((t) => keep(t).requiresGrad_());
    const [m1, v1, m2, v2] = [zeros([8]), ones([8]), zeros([8]), ones([8])].map((t) => keep(t));
    const net = (input: Tensor, training: boolean): Tensor => {
      let h = F.relu(F.batchNorm(F.conv2d(input, w1!, null, { padding: 1 }), m1, v1, g1, b1, training, 0.1, 1e-5));
      h = F.relu(F.batchNorm(F.conv2d(h, w2!, null, { padding: 2, dilation: 2 }), m2, v2, g2, b2, training, 0.1, 1e-5));
      return F.conv2d(h, w3!, b3);
    };
    const params = [w1, w2, w3, g1!, b1!, g2!, b2!, b3!];
    const opt = new Adam(params, { lr: 1e-2 });
    const evalLoss = (): number => noGrad(() => tidy(() => F.binaryCrossEntropyWithLogits(net(x, false), y).item()));
    const start = evalLoss();
    for (let step = 0; step < 200; step++) {
      opt.zeroGrad();
      tidy(() => F.binaryCrossEntropyWithLogits(net(x, true), y).backward());
      opt.step();
    }
    const end = evalLoss();
    const dice = noGrad(() =>
      tidy(() => {
        const p = F.sigmoid(net(x, false)).gt(0.5).float();
        return p.mul(y).sum().mul(2).div(p.sum().add(y.sum())).item();
      }),
    );
    console.log(`# lidc crops: loss ${start.toFixed(3)} -> ${end.toFixed(3)}, Dice ${dice.toFixed(3)}`);
    assert.ok(end < 0.3 * start, `loss ${start.toFixed(3)} -> ${end.toFixed(3)}`);
    assert.ok(dice > 0.6, `Dice on the training slices ${dice.toFixed(3)}`);
    for (const t of [x, y, ...params, m1!, v1!, m2!, v2!]) t.dispose();
  });
});

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadCrops } from '../../src/data/index.ts';
import { mulberry32 } from '../../src/data/prng.ts';
import { drawSynthParams, renderSynthCase, synthCase, syntheticCropCases, writeSynthSet, type SynthParams } from '../../src/synth/index.ts';
import { tempDir } from '../transfer/helpers.ts';

const dir = tempDir('synth');
after(() => rmSync(dir, { recursive: true, force: true }));

function make(o: Partial<SynthParams>, seed = 7) {
  return renderSynthCase(drawSynthParams(mulberry32(seed), { backgroundVessels: 0, ...o }), seed);
}

/** Mean HU over the mask voxels. */
function maskStats(c: ReturnType<typeof make>): { mean: number; over: (hu: number) => number } {
  const v: number[] = [];
  for (let i = 0; i < c.mask.length; i++) if (c.mask[i]) v.push(c.image[i]!);
  return { mean: v.reduce((a, b) => a + b, 0) / v.length, over: (hu) => v.filter((x) => x > hu).length / v.length };
}

test('a round nodule: mask volume within 3% of the analytic sphere, thin and thick slices', () => {
  for (const [d, dz] of [
    [10, 0.625],
    [12, 1.25],
    [16, 2.5],
  ] as const) {
    const c = make({ type: 'solid', shape: 'round', attachment: 'none', diameterMm: d, spacingMm: [0.7, 0.7, dz] });
    const sphere = (4 / 3) * Math.PI * (d / 2) ** 3;
    assert.ok(
      Math.abs(c.maskVolumeMm3 / sphere - 1) < 0.03,
      `d ${d} mm, dz ${dz}: ${c.maskVolumeMm3.toFixed(1)} vs ${sphere.toFixed(1)} mm3`,
    );
  }
});

test('HU by nodule type: solid near soft tissue, ground glass between lung and tissue, part-solid both', () => {
  const solid = maskStats(make({ type: 'solid', shape: 'lobulated', attachment: 'none', diameterMm: 12 }));
  const ggo = maskStats(make({ type: 'ground-glass', shape: 'lobulated', attachment: 'none', diameterMm: 12 }));
  const part = maskStats(make({ type: 'part-solid', shape: 'round', attachment: 'none', diameterMm: 14 }));
  assert.ok(solid.mean > -120 && solid.mean < 100, `solid mean ${solid.mean}`);
  assert.ok(ggo.mean > -780 && ggo.mean < -350, `ground-glass mean ${ggo.mean}`);
  assert.ok(ggo.over(-200) < 0.02, 'ground glass has no solid part');
  assert.ok(part.over(-150) > 0.02 && part.over(-150) < 0.5, `part-solid: a solid core (${part.over(-150)})`);
  assert.ok(part.mean < -250, `part-solid mostly ground glass (${part.mean})`);
  // The lung around the nodule: about -850 HU.
  const c = make({ type: 'solid', shape: 'round', attachment: 'none', diameterMm: 6 });
  let s = 0,
    n = 0;
  for (let i = 0; i < c.mask.length; i++)
    if (!c.mask[i] && c.image[i]! < -500) {
      s += c.image[i]!;
      n++;
    }
  assert.ok(Math.abs(s / n + 850) < 40, `parenchyma ${s / n}`);
});

test('attachments: the pleura cuts the nodule (wall is not nodule); spicules add volume outside the sphere', () => {
  const free = make({ type: 'solid', shape: 'round', attachment: 'none', diameterMm: 12 }, 11);
  const pleural = make({ type: 'solid', shape: 'round', attachment: 'pleura', diameterMm: 12 }, 11);
  assert.ok(pleural.maskVolumeMm3 < 0.97 * free.maskVolumeMm3, `${pleural.maskVolumeMm3} vs ${free.maskVolumeMm3}`);
  let wall = 0;
  for (let i = 0; i < pleural.mask.length; i++) if (!pleural.mask[i] && pleural.image[i]! > -100) wall++;
  assert.ok(wall > 1000, `soft tissue outside the mask: ${wall} voxels`);
  const spic = make({ type: 'solid', shape: 'spiculated', attachment: 'none', diameterMm: 12 }, 11);
  assert.ok(spic.maskVolumeMm3 > free.maskVolumeMm3, 'lobes and spikes add to the sphere');
});

test('seeded: same seed same bytes, another seed another case', () => {
  const a = synthCase(5, 3);
  const b = synthCase(5, 3);
  const c = synthCase(6, 3);
  assert.deepEqual(Buffer.from(a.image.buffer), Buffer.from(b.image.buffer));
  assert.deepEqual(Buffer.from(a.mask.buffer), Buffer.from(b.mask.buffer));
  assert.ok(a.params.dims.join() !== c.params.dims.join() || !Buffer.from(a.image.buffer).equals(Buffer.from(c.image.buffer)));
});

test('a written set reads back through loadCrops, masks and metadata intact', () => {
  const out = join(dir, 'set');
  const overrides = { dims: [30, 30, 8] as [number, number, number], spacingMm: [0.7, 0.7, 1.25] as [number, number, number] };
  writeSynthSet(out, { count: 4, seed: 2, valFraction: 0.25, overrides });
  const cases = loadCrops({ dir: out });
  assert.equal(cases.length, 4);
  assert.equal(cases.filter((c) => c.split === 'val').length, 1);
  const meta = readFileSync(join(out, 'metadata.csv'), 'utf8').trim().split('\n');
  assert.equal(meta.length, 5);
  cases.forEach((c, i) => {
    const ref = synthCase(2, i, overrides);
    assert.deepEqual([...c.image.dims], ref.params.dims);
    assert.ok(Buffer.from(c.mask.buffer, c.mask.byteOffset, c.mask.byteLength).equals(Buffer.from(ref.mask.buffer)), c.id);
    assert.ok(Math.abs(c.diameterMm - ref.params.diameterMm) < 1e-3);
    assert.ok(meta[i + 1]!.startsWith(`${c.id},${c.id},1,`));
  });
  assert.throws(() => writeSynthSet(out, { count: 1, seed: 1, valFraction: 0 }), /exists and is not empty/);
});

test('soft-edged, textured ground glass: the density fades across the edge, its 0.5 level is the mask; defaults unchanged', () => {
  const sharp = make({ type: 'ground-glass', shape: 'round', attachment: 'none', diameterMm: 12, spacingMm: [0.7, 0.7, 1.25] });
  assert.equal(sharp.share, null);
  const soft = make({
    type: 'ground-glass',
    shape: 'round',
    attachment: 'none',
    diameterMm: 12,
    spacingMm: [0.7, 0.7, 1.25],
    groundGlassEdgeMm: 2,
    groundGlassTextureHU: 60,
  });
  const share = soft.share!;
  assert.ok(share);
  let fractional = 0,
    agree = 0;
  for (let i = 0; i < share.length; i++) {
    if (share[i]! > 0.02 && share[i]! < 0.98) fractional++;
    if ((share[i]! >= 0.5 ? 1 : 0) === soft.mask[i]) agree++;
  }
  assert.ok(fractional > 500, `${fractional} voxels in the soft edge`);
  assert.ok(agree / share.length > 0.995, 'the mask is the 0.5 level of the density');
  // Same mask volume as the sharp nodule (the edge is centred on the surface), within 3%.
  const vol = (m: Uint8Array) => m.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(vol(soft.mask) / vol(sharp.mask) - 1) < 0.03);
  // The texture widens the spread of HU inside the ground glass's core (density 1).
  const sd = (c: typeof soft, inCore: (i: number) => boolean) => {
    const v: number[] = [];
    for (let i = 0; i < c.image.length; i++) if (inCore(i)) v.push(c.image[i]!);
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
  };
  assert.ok(sd(soft, (i) => share[i]! === 1) > sd(sharp, (i) => sharp.mask[i] === 1 && share[i]! === 1) + 10);
});

test("synthetic training cases: cut to the nodule's slices and one beyond each end, density as the target", () => {
  const cases = syntheticCropCases({ counts: { 'ground-glass': 3, solid: 1 }, seed: 2, overrides: { groundGlassEdgeMm: 2 } });
  assert.equal(cases.length, 4);
  for (const c of cases) {
    const [nx, ny, nz] = c.image.dims;
    assert.equal(c.mask.length, nx * ny * nz);
    const withNodule = [...c.sliceAreaMm2.keys()].filter((k) => c.sliceAreaMm2[k]! > 0);
    assert.ok(withNodule.length > 0);
    assert.ok(withNodule[0]! <= 1 && withNodule.at(-1)! >= nz - 2, `${c.id}: slices ${withNodule.join(',')} of ${nz}`);
    assert.equal(c.split, 'train');
    if (c.noduleType === 'ground-glass') {
      assert.ok(c.target);
      assert.ok(c.mask.every((m, i) => m === (c.target![i]! >= 0.5 ? 1 : 0)));
    } else assert.equal(c.target, undefined, 'a solid nodule keeps its sharp mask');
  }
  assert.deepEqual(
    cases.map((c) => c.id),
    ['SYN-ground-glass-0001', 'SYN-ground-glass-0002', 'SYN-ground-glass-0003', 'SYN-solid-0001'],
  );
  // Seeded: the same cases again.
  const again = syntheticCropCases({ counts: { 'ground-glass': 1 }, seed: 2, overrides: { groundGlassEdgeMm: 2 } });
  assert.deepEqual(again[0]!.image.data, cases[0]!.image.data);
});

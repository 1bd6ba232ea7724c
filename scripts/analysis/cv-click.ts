/**
 * How far the point prompt has to be on the nodule's centre: the cross-validation fold models
 * segment each held-out crop from a click elsewhere than its centre, as a radiologist's click or a
 * detector's candidate would be. Click modes: the crop's centre (what `benchmark cv` scores); a
 * voxel drawn at random inside the readers' 50% consensus (the union without reader masks): a
 * click anywhere on the nodule; the centre moved 2 or 4 mm in-plane in a random direction. Each
 * mask is made as `segment --point` makes it (patches centred on the click, the 3D component at
 * the click, the waist cut) and scored like `benchmark cv`.
 *
 *   node --import tsx scripts/analysis/cv-click.ts --folds 1,2 --models 'runs/cv-ggo-{fold}/best.safetensors' --threshold 0.4 [--json runs/cv-click.json]
 */
import { parseArgs } from 'node:util';
import { foldSplit, lidcCropsDir, loadCrops, readReaderIndex } from '../../src/data/index.ts';
import { loadModel } from '../../src/models/index.ts';
import { setNumThreads } from '../../src/tensor/index.ts';
import { clickVoxel, scoreCrop, summariseGroup, usableReaderMasks, type CropBenchmarkRow } from '../../src/eval/benchmark.ts';
import { segmentVolume } from '../../src/inference/predict.ts';
import { writeFileAtomic } from '../../src/io/atomic.ts';
import type { Vec3 } from '../../src/io/volume.ts';

const { values } = parseArgs({
  options: {
    folds: { type: 'string', default: '1,2' },
    models: { type: 'string', default: 'runs/cv-ggo-{fold}/best.safetensors' },
    threshold: { type: 'string', default: '0.4' },
    json: { type: 'string' },
    // segment again centred on the nodule found when it lies further than this (mm) from the click
    recentre: { type: 'string' },
    threads: { type: 'string', default: '1' },
  },
});
setNumThreads(Number(values.threads));
const THRESHOLD = Number(values.threshold);
const RECENTRE_MM = values.recentre === undefined ? undefined : Number(values.recentre);

type Mode = 'centre' | 'on the nodule' | '2 mm off' | '4 mm off';
const MODES: Mode[] = ['centre', 'on the nodule', '2 mm off', '4 mm off'];

const all = loadCrops();
const dir = lidcCropsDir();
const rows = new Map<Mode, CropBenchmarkRow[]>(MODES.map((m) => [m, []]));
const recentred = new Map<Mode, number>();
const perNodule: Array<{ id: string; fold: number; mode: Mode; click: Vec3; centreVoxel: Vec3; row: CropBenchmarkRow }> = [];
const readerIndex = readReaderIndex(dir);
const folds = values.folds!.split(',').map(Number);
for (const f of folds) {
  const { model, info } = loadModel(values.models!.replaceAll('{fold}', String(f)));
  model.eval();
  const held = foldSplit(all, 5, f - 1, 1).heldOut;
  const t0 = Date.now();
  held.forEach((c, k) => {
    const readers = usableReaderMasks(dir, readerIndex, c);
    // The clicks of `benchmark --click`, drawn per crop id.
    const clicks: Record<Mode, Vec3> = {
      centre: clickVoxel(c, { kind: 'centre' }, readers),
      'on the nodule': clickVoxel(c, { kind: 'on-nodule' }, readers),
      '2 mm off': clickVoxel(c, { kind: 'offset', offsetMm: 2 }, readers),
      '4 mm off': clickVoxel(c, { kind: 'offset', offsetMm: 4 }, readers),
    };
    for (const mode of MODES) {
      const seg = segmentVolume(model, c.image, info.slice, {
        threshold: THRESHOLD,
        centreVoxel: clicks[mode],
        ...(RECENTRE_MM !== undefined ? { recentreMm: RECENTRE_MM } : {}),
      });
      const row = scoreCrop(c, seg.mask.data as Uint8Array, readers);
      rows.get(mode)!.push(row);
      perNodule.push({ id: c.id, fold: f, mode, click: clicks[mode], centreVoxel: seg.centreVoxel, row });
      if (seg.centreVoxel.some((v, d) => v !== clicks[mode][d])) recentred.set(mode, (recentred.get(mode) ?? 0) + 1);
    }
    if ((k + 1) % 40 === 0) process.stderr.write(`fold ${f} ${k + 1}/${held.length} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
  });
  model.dispose();
}
if (values.json) writeFileAtomic(values.json, JSON.stringify(perNodule));

const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '-');
console.log(
  `Folds ${folds.join(', ')}; level ${THRESHOLD}; ${RECENTRE_MM === undefined ? 'one pass' : `segmented again centred on the nodule found when it lies over ${RECENTRE_MM} mm from the click`}; per-nodule means.\n`,
);
console.log(
  '| click | nodules | vs union | vs 50% consensus | vs each reader | 3-6 mm vs consensus | ground-glass vs consensus | empty masks | segmented again |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const mode of MODES) {
  const rs = rows.get(mode)!;
  const a = summariseGroup('all', rs);
  const small = summariseGroup(
    'small',
    rs.filter((r) => r.sizeGroup === '3-6 mm'),
  ).diceConsensus;
  const ggo = summariseGroup(
    'ggo',
    rs.filter((r) => r.type === 'ground-glass'),
  ).diceConsensus;
  console.log(
    `| ${mode} | ${rs.length} | ${f3(a.diceUnion)} | ${f3(a.diceConsensus)} | ${f3(a.diceReaders)} | ${f3(small)} | ${f3(ggo)} | ${rs.filter((r) => r.predictedVoxels === 0).length} | ${recentred.get(mode) ?? 0} |`,
  );
}

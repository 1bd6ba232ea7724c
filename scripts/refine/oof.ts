/**
 * Held-out probabilities of the cross-validation folds, kept on disk for the refinement stage:
 * each fold's network on that fold's held-out crops (one plain pass at the crop's centre, as
 * `segment` computes a crop), written as one float32 file per fold and its index. Fitting the
 * stage (fit-stage.ts) and its cross-validation (analysis/cv-refine.ts) read only these.
 */
import { mkdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { cropCentreVoxel, foldSplit, type CropCase } from '../../src/data/index.ts';
import { loadModel } from '../../src/models/index.ts';
import { segmentVolume } from '../../src/inference/predict.ts';
import { refineFeatures } from '../../src/inference/refine.ts';
import type { RefineRows } from '../../src/train/refine.ts';
import { writeFileAtomic } from '../../src/io/atomic.ts';

interface OofIndex {
  model: string;
  crops: Array<{ id: string; offset: number; length: number }>;
}

/** Writes dir/fold{f}.bin and .json for each fold, the model of fold f from `models` ({fold} replaced). */
export function dumpOof(crops: readonly CropCase[], folds: readonly number[], models: string, dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const f of folds) {
    const path = models.replaceAll('{fold}', String(f));
    const { model, info } = loadModel(path);
    const held = foldSplit(crops, 5, f - 1, 1).heldOut;
    const index: OofIndex = { model: path, crops: [] };
    const parts: Float32Array[] = [];
    let offset = 0;
    const t0 = Date.now();
    for (const c of held) {
      const p = segmentVolume(model, c.image, info.slice, { centreVoxel: cropCentreVoxel(c.image.dims), keepPromptComponent: false })
        .probability.data;
      parts.push(p);
      index.crops.push({ id: c.id, offset, length: p.length });
      offset += p.length;
    }
    const packed = new Float32Array(offset);
    parts.forEach((p, i) => {
      packed.set(p, index.crops[i]!.offset);
    });
    writeFileAtomic(join(dir, `fold${f}.bin`), Buffer.from(packed.buffer));
    writeFileAtomic(join(dir, `fold${f}.json`), JSON.stringify(index));
    model.dispose();
    process.stderr.write(`fold ${f}: ${held.length} crops in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  }
}

/** One dumped fold's held-out crops: each one's id and probability (views into the fold's file). */
export function readOofProbabilities(dir: string, fold: number): Array<{ id: string; probability: Float32Array }> {
  const json = join(dir, `fold${fold}.json`);
  if (!existsSync(json)) throw new Error(`${json}: not found; dump the folds first (scripts/analysis/cv-refine.ts --dump)`);
  const index = JSON.parse(readFileSync(json, 'utf8')) as OofIndex;
  const buf = readFileSync(join(dir, `fold${fold}.bin`));
  const packed = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  return index.crops.map((e) => ({ id: e.id, probability: packed.subarray(e.offset, e.offset + e.length) }));
}

/** One held-out crop: its fold, the network's probability and the stage's rows. */
export interface OofCrop {
  crop: CropCase;
  fold: number;
  probability: Float32Array;
  voxels: Int32Array;
  rows: RefineRows;
}

/**
 * Reads the dumped folds for `crops` with the stage's `features` (crops loaded with agreement labels: the target is the readers'
 * share per voxel, or the union mask for a crop without usable reader masks).
 */
export function readOof(crops: readonly CropCase[], folds: readonly number[], dir: string, features: readonly string[]): OofCrop[] {
  const byId = new Map(crops.map((c) => [c.id, c]));
  const out: OofCrop[] = [];
  for (const f of folds) {
    for (const { id, probability } of readOofProbabilities(dir, f)) {
      const crop = byId.get(id);
      if (!crop) continue;
      const { voxels, x } = refineFeatures(
        {
          hu: crop.image.data,
          probability,
          dims: crop.image.dims,
          spacingMm: crop.image.spacingMm,
          promptVoxel: cropCentreVoxel(crop.image.dims),
        },
        features,
      );
      const target = crop.target ?? crop.mask;
      out.push({ crop, fold: f, probability, voxels, rows: { x, y: Float32Array.from(voxels, (i) => target[i]!) } });
    }
  }
  return out;
}

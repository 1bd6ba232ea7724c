/**
 * The size prior at inference, on the cross-validation fold models: each held-out crop's
 * network outputs are computed once (plain, at the crop's centre), then the STD layer is run
 * with the size prior as trained (argmax of the size classifier at confidence 0.8: a slice the
 * classifier calls "no nodule" gets an area of 0), with other confidences, without the "no
 * nodule" veto, without the prior, and without the STD layer at all. Each variant's mask is
 * thresholded at LEVELS, cut as `segment` cuts a crop's mask and scored like `benchmark cv`.
 *
 *   node --import tsx scripts/analysis/cv-prior-variants.ts --folds 1,2,3,4,5 --models 'runs/cv-ggo-{fold}/best.safetensors' --out runs/cv-prior-variants.json
 */
import { parseArgs } from 'node:util';
import { foldSplit, lidcCropsDir, loadCrops, sliceGrid, slicesToProbability, volumeToSlices } from '../../src/data/index.ts';
import { loadModel } from '../../src/models/index.ts';
import { JointNet, areaBoundsFromClasses } from '../../src/models/joint.ts';
import { F, noGrad, setNumThreads, tensor, tidy, type Tensor } from '../../src/tensor/index.ts';
import { scoreCrop, usableReaderMasks } from '../../src/eval/benchmark.ts';
import { readReaderIndex } from '../../src/eval/readers.ts';
import { cutAtPrompt } from '../../src/inference/predict.ts';
import { writeFileAtomic } from '../../src/io/atomic.ts';
import type { Vec3 } from '../../src/io/volume.ts';

const { values } = parseArgs({
  options: {
    folds: { type: 'string', default: '1,2,3,4,5' },
    models: { type: 'string', default: 'runs/cv-ggo-{fold}/best.safetensors' },
    out: { type: 'string', default: 'runs/cv-prior-variants.json' },
    threads: { type: 'string', default: '1' },
  },
});
setNumThreads(Number(values.threads));
const LEVELS = [0.3, 0.4, 0.5];

type Variant = 'prior' | 'conf0.9' | 'conf0.95' | 'noVeto' | 'noPrior' | 'noStd';
const VARIANTS: Variant[] = ['prior', 'conf0.9', 'conf0.95', 'noVeto', 'noPrior', 'noStd'];

/** The STD output of variant v, as probabilities [N, 1, P, P]. */
function variantProbs(model: JointNet, raw: Tensor, classLogits: Tensor, v: Variant): Tensor {
  if (v === 'noStd' || !model.std) return raw.sigmoid();
  if (v === 'noPrior' || !model.intervalsPx || !model.config.sizePrior) return model.std.forward(raw, undefined).sigmoid();
  const area = raw.shape[2]! * raw.shape[3]!;
  const prior = model.config.sizePrior;
  if (v === 'prior') return model.std.forward(raw, areaBoundsFromClasses(classLogits, model.intervalsPx, prior, area)).sigmoid();
  if (v === 'conf0.9' || v === 'conf0.95') {
    const confidence = v === 'conf0.9' ? 0.9 : 0.95;
    return model.std.forward(raw, areaBoundsFromClasses(classLogits, model.intervalsPx, { ...prior, confidence }, area)).sigmoid();
  }
  // noVeto: the prior as trained, but a slice called "no nodule" is left unconstrained.
  const b = areaBoundsFromClasses(classLogits, model.intervalsPx, prior, area);
  const probs = F.softmax(classLogits, 1).toTypedArray() as Float32Array;
  const k = classLogits.shape[1]!;
  const min = b.min.toTypedArray() as Float32Array;
  const max = b.max.toTypedArray() as Float32Array;
  for (let i = 0; i < min.length; i++) {
    const p = probs.subarray(i * k, (i + 1) * k);
    let best = 0;
    for (let c = 1; c < k; c++) if (p[c]! > p[best]!) best = c;
    if (best === 0) {
      min[i] = 0;
      max[i] = area;
    }
  }
  return model.std.forward(raw, { min: tensor(min, [min.length]), max: tensor(max, [max.length]) }).sigmoid();
}

interface Score {
  variant: Variant;
  level: number;
  diceUnion: number;
  diceConsensus: number;
  diceReaders: number;
  predictedVoxels: number;
}
const all = loadCrops();
const dir = lidcCropsDir();
const readerIndex = readReaderIndex(dir);
const out: Array<{ id: string; fold: number; type: string | null; sizeGroup: string | null; readers: number; scores: Score[] }> = [];
for (const f of values.folds!.split(',').map(Number)) {
  const { model, info } = loadModel(values.models!.replaceAll('{fold}', String(f)));
  if (!(model instanceof JointNet)) throw new Error('a joint model is needed');
  model.eval();
  const held = foldSplit(all, 5, f - 1, 1).heldOut;
  const t0 = Date.now();
  held.forEach((c, k) => {
    const [nx, ny, nz] = c.image.dims;
    const centre: Vec3 = [(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2];
    const grid = sliceGrid(c.image, info.slice, centre);
    const x = volumeToSlices(grid);
    const probs = new Map<Variant, Float32Array>();
    noGrad(() =>
      tidy(() => {
        const o = model.forward(tensor(x.input, x.shape));
        for (const v of VARIANTS) {
          const p = variantProbs(model, o.rawMaskLogits, o.classLogits!, v);
          probs.set(v, slicesToProbability(p.toTypedArray() as Float32Array, grid).data);
        }
      }),
    );
    const readers = usableReaderMasks(dir, readerIndex, c);
    const scores: Score[] = [];
    let first: ReturnType<typeof scoreCrop> | null = null;
    for (const v of VARIANTS) {
      const prob = probs.get(v)!;
      for (const level of LEVELS) {
        const r = scoreCrop(
          c,
          cutAtPrompt(
            Uint8Array.from(prob, (p) => (p > level ? 1 : 0)),
            c.image,
            centre,
          ),
          readers,
        );
        first ??= r;
        scores.push({
          variant: v,
          level,
          diceUnion: r.diceUnion,
          diceConsensus: r.diceConsensus,
          diceReaders: r.diceReaders,
          predictedVoxels: r.predictedVoxels,
        });
      }
    }
    out.push({ id: c.id, fold: f, type: first!.type, sizeGroup: first!.sizeGroup, readers: first!.readers, scores });
    if ((k + 1) % 40 === 0) process.stderr.write(`fold ${f} ${k + 1}/${held.length} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
  });
  model.dispose();
}
writeFileAtomic(values.out!, JSON.stringify(out));

// Summary: mean per variant and level, overall and per type (NaN-free means).
const mean = (xs: number[]) => {
  const v = xs.filter((x) => Number.isFinite(x));
  return v.length ? v.reduce((s, x) => s + x, 0) / v.length : Number.NaN;
};
const groups: Array<[string, (r: (typeof out)[number]) => boolean]> = [
  ['all', () => true],
  ['solid', (r) => r.type === 'solid'],
  ['part-solid', (r) => r.type === 'part-solid'],
  ['ground-glass', (r) => r.type === 'ground-glass'],
  ['>= 20 mm', (r) => r.sizeGroup === '>= 20 mm'],
];
console.log('| variant | level | group | n | vs union | vs consensus | vs each reader |');
console.log('|---|---:|---|---:|---:|---:|---:|');
for (const v of VARIANTS)
  for (const level of LEVELS)
    for (const [g, keep] of groups) {
      const rows = out.filter(keep).map((r) => r.scores.find((s) => s.variant === v && s.level === level)!);
      console.log(
        `| ${v} | ${level} | ${g} | ${rows.length} | ${mean(rows.map((s) => s.diceUnion)).toFixed(3)} | ${mean(rows.map((s) => s.diceConsensus)).toFixed(3)} | ${mean(rows.map((s) => s.diceReaders)).toFixed(3)} |`,
      );
    }
process.stderr.write(`${out.length} nodules -> ${values.out}\n`);

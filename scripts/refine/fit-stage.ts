/**
 * Fits the refinement stage on the folds' held-out probabilities (oof.ts) and writes a copy of a
 * model file with it, its levels and a note of how it was made; weights and the other metadata
 * (the nodule-level heads) are copied unchanged.
 *
 *   node --import tsx scripts/refine/fit-stage.ts <in.safetensors> <out.safetensors> --oof runs/oof-probs \
 *     [--splits train] [--exclude-fold f] [--hidden 16] [--steps 400] [--features v1|all] [--weighting voxel|crop]
 *     [--type-balance e] [--threshold t] [--any-reader a]
 *
 * --exclude-fold f leaves fold f's crops out of the fit: the stage of fold f's network for
 * cross-validation. --splits train keeps `val` out, so that val still measures the shipped model.
 * --features v1 gives the 21 features of session 15, all every feature this version computes;
 * --weighting crop counts each crop alike in the loss, as the per-nodule mean Dice does;
 * --type-balance e weighs each crop by its type's share of the crops to the -e (0: alike).
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { loadCrops, type Split } from '../../src/data/index.ts';
import { readModelInfo, MODEL_FORMAT, type ModelInfo } from '../../src/models/index.ts';
import { readSafetensors, writeSafetensors } from '../../src/nn/safetensors.ts';
import { setNumThreads } from '../../src/tensor/index.ts';
import { fitRefineStage, DEFAULT_REFINE_FIT, isRefineWeighting, refineFeatureSet, typeBalanceWeights } from '../../src/train/refine.ts';
import { readOof } from './oof.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    oof: { type: 'string', default: 'runs/oof-probs' },
    splits: { type: 'string', default: 'train' },
    'exclude-fold': { type: 'string' },
    hidden: { type: 'string', default: String(DEFAULT_REFINE_FIT.hidden) },
    steps: { type: 'string', default: String(DEFAULT_REFINE_FIT.steps) },
    features: { type: 'string', default: 'all' },
    weighting: { type: 'string', default: DEFAULT_REFINE_FIT.weighting },
    'type-balance': { type: 'string', default: '0' },
    threshold: { type: 'string' },
    'any-reader': { type: 'string' },
    threads: { type: 'string', default: '2' },
  },
});
const [input, output] = positionals;
if (!input || !output) {
  console.error(
    'usage: fit-stage.ts <in.safetensors> <out.safetensors> --oof DIR [--splits train] [--exclude-fold f] [--hidden n] [--features v1|all] [--weighting voxel|crop] [--type-balance e] [--threshold t] [--any-reader a]',
  );
  process.exit(2);
}
if (resolve(input) === resolve(output)) {
  console.error(`${output}: the output may not be the input`);
  process.exit(2);
}
const features = refineFeatureSet(values.features!);
const weighting = values.weighting!;
const typeBalance = Number(values['type-balance']);
if (!features || !isRefineWeighting(weighting) || !(typeBalance >= 0)) {
  console.error(`${output}: --features is v1 or all, --weighting voxel or crop, --type-balance a number >= 0`);
  process.exit(2);
}
setNumThreads(Number(values.threads));
const info = readModelInfo(input);
const threshold = values.threshold !== undefined ? Number(values.threshold) : info.threshold;
const anyReader = values['any-reader'] !== undefined ? Number(values['any-reader']) : info.anyReaderThreshold;
if (!(threshold > 0 && threshold < 1) || (anyReader !== undefined && !(anyReader > 0 && anyReader < threshold))) {
  console.error(`${output}: levels must satisfy 0 < any-reader < threshold < 1`);
  process.exit(2);
}
const splits = values.splits!.split(',') as Split[];
const excluded = values['exclude-fold'] !== undefined ? Number(values['exclude-fold']) : null;
const folds = [1, 2, 3, 4, 5].filter((f) => f !== excluded);
const crops = loadCrops({ labels: 'agreement', splits });
const oof = readOof(crops, folds, values.oof!, features);
const options = {
  ...DEFAULT_REFINE_FIT,
  features,
  hidden: Number(values.hidden),
  steps: Number(values.steps),
  weighting,
};
const t0 = Date.now();
const weights = typeBalanceWeights(
  oof.map((o) => o.crop.noduleType),
  typeBalance,
);
const stage = fitRefineStage(
  oof.map((o, k) => ({ ...o.rows, weight: weights[k]! })),
  options,
  {
    command: `node --import tsx scripts/refine/fit-stage.ts ${process.argv.slice(2).join(' ')}`,
    data: `held-out probabilities of folds ${folds.join(', ')} (${values.oof}), crops of ${splits.join(' + ')}: ${oof.length} nodules${typeBalance ? `, types balanced with exponent ${typeBalance}` : ''}; target the readers' share per voxel`,
  },
);
const fit = stage.provenance['fit'] as { rows: number; networkLoss: number; stageLoss: number };
const src = readSafetensors(input);
const updated: ModelInfo = {
  ...info,
  threshold,
  ...(anyReader !== undefined ? { anyReaderThreshold: anyReader } : {}),
  refine: stage,
  provenance: { ...info.provenance, refine: { from: input, threshold, anyReaderThreshold: anyReader ?? null } },
};
writeSafetensors(output, src.tensors, { ...src.metadata, [MODEL_FORMAT]: JSON.stringify(updated) });
console.log(
  `${output}: refinement stage (hidden ${options.hidden}) on ${oof.length} crops, ${fit.rows} voxels, loss ${fit.networkLoss.toFixed(4)} -> ${fit.stageLoss.toFixed(4)} in ${((Date.now() - t0) / 1000).toFixed(0)} s; threshold ${threshold}${anyReader !== undefined ? `, any-reader ${anyReader}` : ''}`,
);

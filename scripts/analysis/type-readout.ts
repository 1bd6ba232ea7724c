/**
 * The nodule type read straight from a network trained with the type target
 * (`model.typeClasses`, `loss.type`): its type head applied to the classification branch's
 * features pooled over the nodule's slices (area-weighted, as the heads' feature cache pools
 * them; the head is linear, so this is the area-weighted mean of the per-slice type logits).
 * Scored on the held-out fold of a `train --fold i/k` network, beside the heads of cv-heads.ts.
 *
 *   node --import tsx scripts/classify/cache-features.ts --model runs/cv-type-3/best.safetensors --out runs/classify/features-type-fold3.json
 *   node --import tsx scripts/analysis/type-readout.ts --features runs/classify/features-type-fold3.json --model runs/cv-type-3/best.safetensors --fold 3
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { stratifiedPatientFolds } from '../../src/data/folds.ts';
import { noduleTypeOfTexture, NODULE_TYPES } from '../../src/data/nodule-type.ts';
import { readSafetensors } from '../../src/nn/safetensors.ts';
import { accuracyOf, cohenKappa, confusionMatrix, recallPerClass } from '../../src/classify/metrics.ts';
import type { RatedNodule } from '../../src/classify/fit.ts';

const { values } = parseArgs({
  options: {
    features: { type: 'string' },
    model: { type: 'string' },
    fold: { type: 'string' },
    folds: { type: 'string', default: '5' },
    'fold-seed': { type: 'string', default: '1' },
  },
});
if (!values.features || !values.model || !values.fold) throw new Error('usage: type-readout.ts --features F --model M --fold i');
const st = readSafetensors(values.model);
const W = st.tensors.get('typeClassifier.weight');
const B = st.tensors.get('typeClassifier.bias');
if (!W || !B) throw new Error(`${values.model}: no type head (train with model.typeClasses and loss.type)`);
const [k, width] = W.shape as [number, number];
const rows = (JSON.parse(readFileSync(values.features, 'utf8')) as { rows: RatedNodule[] }).rows;
const folds = stratifiedPatientFolds(
  rows.map((r) => ({ patientId: r.patientId, noduleType: noduleTypeOfTexture(r.texture) })),
  Number(values.folds),
  Number(values['fold-seed']),
);
const held = Number(values.fold) - 1;
for (const [label, keep] of [
  ['held-out fold', (r: RatedNodule) => folds.get(r.patientId) === held],
  ['training folds (seen in training)', (r: RatedNodule) => folds.get(r.patientId) !== held],
] as const) {
  const sel = rows.filter((r) => keep(r) && noduleTypeOfTexture(r.texture) !== null);
  const truth = sel.map((r) => NODULE_TYPES.indexOf(noduleTypeOfTexture(r.texture)!));
  // The classification branch's pooled map comes first in the cached network features.
  const predicted = sel.map((r) => {
    let best = 0,
      bestLogit = -Infinity;
    for (let c = 0; c < k; c++) {
      let z = Number(B.data[c]);
      for (let j = 0; j < width; j++) z += Number(W.data[c * width + j]) * r.net[j]!;
      if (z > bestLogit) [best, bestLogit] = [c, z];
    }
    return best;
  });
  const m = confusionMatrix(truth, predicted, k);
  console.log(
    `${label}: ${sel.length} nodules, accuracy ${accuracyOf(m).toFixed(3)}, kappa ${cohenKappa(m).toFixed(3)}, recall ${recallPerClass(m)
      .map((v) => v.toFixed(3))
      .join(' / ')}`,
  );
  m.forEach((row, i) => {
    console.log(`  ${NODULE_TYPES[i]!.padEnd(12)} ${row.join(' / ')}`);
  });
}

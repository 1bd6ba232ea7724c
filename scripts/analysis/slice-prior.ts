/**
 * Per slice of the given crops (patches at the crop's centre): the readers' area in patch pixels,
 * the mask's area from the STD layer's output and from the logits before it (both at the model's
 * threshold), and the size classifier's probabilities (none, small, medium, large). Shows where
 * the size prior erases a slice the classifier calls "no nodule".
 *
 *   node --import tsx scripts/analysis/slice-prior.ts runs/cv-ggo-3/best.safetensors LIDC-IDRI-1011_R_1 LIDC-IDRI-0120_R_3
 */
import { loadCrops, sliceGrid, volumeToSlices, cropCentreVoxel } from '../../src/data/index.ts';
import { loadModel } from '../../src/models/index.ts';
import { setNumThreads, tensor, noGrad, tidy, F } from '../../src/tensor/index.ts';
import type { JointNet } from '../../src/models/joint.ts';
setNumThreads(1);
const [modelPath, ...ids] = process.argv.slice(2);
const { model, info } = loadModel(modelPath!);
const crops = loadCrops({ labels: 'agreement' }).filter((c) => ids.includes(c.id));
for (const c of crops) {
  const grid = sliceGrid(c.image, info.slice, cropCentreVoxel(c.image.dims));
  const x = volumeToSlices(grid);
  const [Z, , P] = x.shape;
  const r = noGrad(() =>
    tidy(() => {
      const out = (model as JointNet).forward(tensor(x.input, x.shape));
      return {
        std: out.maskLogits.sigmoid().toTypedArray() as Float32Array,
        raw: out.rawMaskLogits.sigmoid().toTypedArray() as Float32Array,
        cls: F.softmax(out.classLogits!, 1).toTypedArray() as Float32Array,
      };
    }),
  );
  console.log(c.id, c.noduleType, 'diam', c.diameterMm, 'thr', info.threshold, 'edges(mm2)', info.sizeBins.edgesMm2);
  for (let z = 0; z < Z; z++) {
    let a = 0,
      b = 0;
    for (let i = 0; i < P * P; i++) {
      if (r.std[z * P * P + i]! > info.threshold) a++;
      if (r.raw[z * P * P + i]! > info.threshold) b++;
    }
    const cp = Array.from(r.cls.subarray(z * 4, z * 4 + 4))
      .map((v) => v.toFixed(2))
      .join(' ');
    console.log(`  z${z} ref ${(c.sliceAreaMm2[z]! / info.slice.spacingMm ** 2).toFixed(0)} std ${a} raw ${b} cls ${cp}`);
  }
}

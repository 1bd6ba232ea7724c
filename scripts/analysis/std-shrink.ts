/**
 * What the STD layer does to small objects: a disc of soft-edged logits (1.5 per pixel from the
 * edge, about what a trained network gives at a nodule's outline) through 10 STD iterations
 * (sigma 10, kernel half-size 3, eps 1) at several lambda; foreground area (pixels, u > 0.5)
 * before and after. Patch pixels are 0.7 mm, as in the shipped model.
 *
 *   node --import tsx scripts/analysis/std-shrink.ts
 */
import { tensor, setNumThreads, tidy } from '../../src/tensor/index.ts';
import { softThresholdDynamics } from '../../src/models/std.ts';

setNumThreads(1);
const P = 64;
const lambdas = [5, 1, 0.5, 0.2];
console.log(`| disc diameter | area, no STD | ${lambdas.map((l) => `lambda ${l}`).join(' | ')} |`);
console.log(`|---|---:|${lambdas.map(() => '---:').join('|')}|`);
for (const r of [2, 3, 4, 6, 10, 16]) {
  const z = new Float32Array(P * P);
  let area = 0;
  for (let y = 0; y < P; y++) {
    for (let x = 0; x < P; x++) {
      z[x + P * y] = 1.5 * (r - Math.hypot(x - 31.5, y - 31.5));
      if (z[x + P * y]! > 0) area++;
    }
  }
  const after = lambdas.map((lambda) =>
    tidy(() => {
      const out = softThresholdDynamics(
        tensor(z, [1, 1, P, P]),
        { sigma: tensor([10]), lambda: tensor([lambda]), eps: tensor([1]) },
        { iterations: 10, kernelHalfSize: 3 },
      );
      let a = 0;
      for (const v of out.sigmoid().toTypedArray() as Float32Array) if (v > 0.5) a++;
      return a;
    }),
  );
  console.log(`| ${(2 * r * 0.7).toFixed(1)} mm (${2 * r} px) | ${area} | ${after.join(' | ')} |`);
}

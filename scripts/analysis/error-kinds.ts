/**
 * Splits the wrong voxels of predicted masks into whole-slice misses, extra slices and outline
 * errors (slices where prediction and reference both have nodule).
 *
 *   scripts/eval-val.sh models/noduleseg.safetensors runs/eval-shipped
 *   node --import tsx scripts/analysis/error-kinds.ts runs/eval-shipped
 */
import { readVolume } from '../../src/io/index.ts';
import { readdirSync } from 'node:fs';
const dir = process.argv[2]!;
let fnMiss = 0,
  fnB = 0,
  fpExtra = 0,
  fpB = 0,
  tp = 0;
for (const f of readdirSync(`${dir}/pred`).filter((x) => x.endsWith('.nii.gz'))) {
  const p = await readVolume(`${dir}/pred/${f}`);
  const r = await readVolume(`${dir}/ref/${f}`);
  const [nx, ny, nz] = r.dims;
  const s = nx * ny;
  for (let z = 0; z < nz; z++) {
    let pc = 0,
      rc = 0;
    for (let k = z * s; k < (z + 1) * s; k++) {
      pc += p.data[k]! ? 1 : 0;
      rc += r.data[k]! ? 1 : 0;
    }
    for (let k = z * s; k < (z + 1) * s; k++) {
      const a = p.data[k]! ? 1 : 0,
        b = r.data[k]! ? 1 : 0;
      if (a && b) tp++;
      else if (b) {
        if (pc === 0) fnMiss++;
        else fnB++;
      } else if (a) {
        if (rc === 0) fpExtra++;
        else fpB++;
      }
    }
  }
}
console.log({ tp, fnMiss, fnB, fpExtra, fpB });

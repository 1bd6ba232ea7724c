/**
 * Synthetic nodules as training cases, made in memory: each drawn case cut in z to its nodule's
 * slices and one beyond each end (as lidc-crops are: 84% of a val crop's slices hold nodule) and
 * centred at world (0, 0, 0). A soft-edged case's target is its density (SynthCase.share), as an
 * agreement-labelled LIDC crop's is the readers' share; its mask the density's 0.5 level.
 */
import { sliceAreasMm2, type CropCase } from '../data/crops.ts';
import type { NoduleType } from '../data/nodule-type.ts';
import { mixSeed } from '../data/prng.ts';
import { Volume } from '../io/volume.ts';
import { NODULE_TYPES, type SynthParams } from './generator.ts';
import { synthCase } from './write.ts';

export interface SyntheticCasesOptions {
  /** How many of each type. */
  counts: Partial<Record<NoduleType, number>>;
  seed: number;
  /** Fixed parameters for every case (the rest are drawn), e.g. a soft ground-glass edge. */
  overrides?: Partial<SynthParams>;
}

export function syntheticCropCases(o: SyntheticCasesOptions): CropCase[] {
  const out: CropCase[] = [];
  for (const [t, count] of Object.entries(o.counts) as Array<[NoduleType, number]>) {
    const typeSeed = mixSeed(o.seed, NODULE_TYPES.indexOf(t) + 1);
    for (let i = 0; i < count; i++) {
      const c = synthCase(typeSeed, i, { ...o.overrides, type: t });
      const [nx, ny, nz] = c.params.dims;
      const plane = nx * ny;
      const areas = sliceAreasMm2(c.mask, c.params.dims, c.params.spacingMm);
      const withNodule = [...areas.keys()].filter((k) => areas[k]! > 0);
      if (withNodule.length === 0) continue; // a nodule under half a voxel everywhere: nothing to learn from
      const z0 = Math.max(0, withNodule[0]! - 1);
      const z1 = Math.min(nz - 1, withNodule.at(-1)! + 1);
      const dims: [number, number, number] = [nx, ny, z1 - z0 + 1];
      const spacingMm = c.params.spacingMm;
      const originMm = [0, 1, 2].map((a) => (-(dims[a]! - 1) / 2) * spacingMm[a]!) as [number, number, number];
      const image = new Volume({ data: c.image.slice(z0 * plane, (z1 + 1) * plane), dims, spacingMm, originMm, modality: 'CT' });
      const target = c.share ? c.share.slice(z0 * plane, (z1 + 1) * plane) : null;
      // With a target, the mask is its 0.5 level (as an agreement-labelled crop's is the consensus).
      const mask = target ? Uint8Array.from(target, (v) => (v >= 0.5 ? 1 : 0)) : c.mask.slice(z0 * plane, (z1 + 1) * plane);
      const id = `SYN-${t}-${String(i + 1).padStart(4, '0')}`;
      out.push({
        id,
        patientId: id,
        split: 'train',
        image,
        mask,
        sliceAreaMm2: sliceAreasMm2(mask, dims, spacingMm),
        diameterMm: c.params.diameterMm,
        noduleType: t,
        ...(target ? { target } : {}),
      });
    }
  }
  return out;
}

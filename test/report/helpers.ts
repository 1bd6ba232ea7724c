// A small scene for the report tests: a scan with one part-solid nodule and its NoduleResult.
import { Volume } from '../../src/io/volume.ts';
import { guidelineMeasures } from '../../src/guidelines/index.ts';
import { measureNodule } from '../../src/metrics/measures.ts';
import type { NoduleResult } from '../../src/inference/nodules.ts';

/** A 40 x 40 x 6 scan with a part-solid disc nodule on slices 2-4 (largest on slice 3), label 1. */
export function scene() {
  const dims: [number, number, number] = [40, 40, 6];
  const spacingMm: [number, number, number] = [0.7, 0.7, 1.5];
  const image = new Int16Array(40 * 40 * 6).fill(-850);
  const labels = new Uint8Array(image.length);
  for (let z = 2; z <= 4; z++)
    for (let y = 0; y < 40; y++)
      for (let x = 0; x < 40; x++) {
        const r = Math.hypot(x - 20, y - 18);
        if (r <= (z === 3 ? 9 : 6)) {
          const i = x + 40 * (y + 40 * z);
          labels[i] = 1;
          image[i] = r <= 4 ? 30 : -550;
        }
      }
  const volume = new Volume({ data: image, dims, spacingMm, originMm: [-10, -20, -100] });
  const grid = { data: labels, dims, spacingMm };
  const measures = measureNodule(grid, image);
  const nodule: NoduleResult = {
    label: 1,
    promptVoxel: [20, 18, 3],
    promptWorldMm: volume.voxelToWorld([20, 18, 3]),
    promptBoxVoxels: null,
    promptBoxWorldMm: null,
    measures,
    centroidWorldMm: volume.voxelToWorld(measures.centroidVoxel!),
    boundingBoxWorldMm: null,
    sizeClassProbabilities: null,
    sizeClass: null,
    anyReaderVolumeMm3: null,
    anyReaderLevel: null,
    meanProbability: 0.9,
    uncertainFraction: 0,
    guidelineMeasures: guidelineMeasures(grid, image),
    type: 'part-solid',
    typeProbabilities: [0.2, 0.7, 0.1],
    calcified: 0.05,
    malignancySuspicion: 0.35,
    spiculation: 0.1,
    warnings: ['a <b>warning</b> & more'],
  };
  return { volume, labels, nodule };
}

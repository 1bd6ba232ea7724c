/**
 * One crop of a folder run: read, segmented, its mask (and overlay) written into the staging
 * folders, and its report entry. Shared by `segment`'s own loop and its crop threads.
 */
import { join } from 'node:path';
import { readVolume, writeNiftiMask, writeOverlayPng } from '../io/index.ts';
import { segmentCrop, type SegmentOptions } from '../inference/index.ts';
import { withGuidelines, type ReportedNodule } from '../report/index.ts';
import type { ModelInfo, SegmentationNetwork } from '../models/index.ts';
import type { FleischnerContext } from '../guidelines/index.ts';

export interface CropFolderRun {
  options: SegmentOptions;
  fleischner: FleischnerContext;
  maskStage: string;
  pngStage: string | null;
}

export async function segmentCropFile(
  model: SegmentationNetwork,
  info: ModelInfo,
  file: string,
  stem: string,
  run: CropFolderRun,
): Promise<ReportedNodule> {
  const crop = await readVolume(file);
  const { seg, nodule } = segmentCrop(model, info, crop, run.options);
  writeNiftiMask(join(run.maskStage, `${stem}.nii.gz`), seg.mask.data, crop);
  if (run.pngStage && nodule.measures.voxelCount > 0) writeOverlayPng(join(run.pngStage, `${stem}.png`), crop, seg.mask.data);
  // Each crop is its own scan: one nodule, so Fleischner's "single" rows.
  return withGuidelines([nodule], run.fleischner)[0]!;
}

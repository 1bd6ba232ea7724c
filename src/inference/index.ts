export {
  predictSlices,
  segmentVolume,
  type PredictOptions,
  type SlicePrediction,
  type CropSegmentation,
  type SegmentCropOptions,
} from './predict.ts';
export { keepComponentAt } from './components.ts';
export {
  segmentCrop,
  segmentAtPrompts,
  labelsFromVoxelLists,
  promptCropSize,
  promptCentre,
  boxPrompt,
  BOX_MARGIN_MM,
  type NodulePrompt,
  type NoduleResult,
  type SegmentOptions,
} from './nodules.ts';

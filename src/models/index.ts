export { UNet, ResUNet, EncoderDecoder } from './unet.ts';
export { JointNet, FeatureCombinationBlock, classAreaIntervalsPx, areaBoundsFromClasses, type JointNetOptions } from './joint.ts';
export {
  SoftThresholdDynamics,
  softThresholdDynamics,
  volumeShift,
  gaussianBlur,
  gaussianMatrix,
  type AreaBounds,
  type StdOptions,
} from './std.ts';
export { ResidualBlock, DoubleConv, ConvNormAct, UpBlock, type NormKind, type BlockKind } from './blocks.ts';
export {
  defaultJointConfig,
  validateModelConfig,
  DEFAULT_STD,
  DEFAULT_SIZE_PRIOR,
  type ModelConfig,
  type UNetConfig,
  type ResUNetConfig,
  type JointConfig,
  type StdConfig,
  type SizePriorConfig,
} from './config.ts';
export { buildModel, saveModel, loadModel, readModelInfo, writeModelLevels, MODEL_FORMAT, type ModelInfo, type ModelLevels } from './io.ts';
export type { SegmentationNetwork, SegmentationOutput } from './types.ts';

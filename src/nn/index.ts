/** Neural-network building blocks in the style of PyTorch's `torch.nn`. */
export {
  Module,
  nameMatches,
  describeLoadProblems,
  type AnyModule,
  type NamePattern,
  type LoadStateDictOptions,
  type LoadStateDictResult,
  type StateDictMismatch,
} from './module.ts';
export { Sequential, ModuleList, type TensorModule } from './container.ts';
export {
  _ConvNd,
  Conv2d,
  Conv3d,
  ConvTranspose2d,
  ConvTranspose3d,
  ntuple,
  type ConvOptions,
  type ConvTransposeOptions,
  type Size,
} from './conv.ts';
export {
  _NormBase,
  _BatchNorm,
  BatchNorm2d,
  BatchNorm3d,
  _InstanceNorm,
  InstanceNorm2d,
  InstanceNorm3d,
  GroupNorm,
  freezeBatchNorm,
  type NormOptions,
  type GroupNormOptions,
} from './normalization.ts';
export {
  Linear,
  Dropout,
  Dropout2d,
  Dropout3d,
  MaxPool2d,
  MaxPool3d,
  AvgPool2d,
  AvgPool3d,
  AdaptiveAvgPool2d,
  AdaptiveAvgPool3d,
  Upsample,
  ReLU,
  LeakyReLU,
  GELU,
  Sigmoid,
  Identity,
  type PoolOptions,
  type UpsampleOptions,
  type UpsampleMode,
} from './layers.ts';
export * as init from './init.ts';
export { saveTensors, loadTensors } from './serialization.ts';
export {
  readSafetensors,
  writeSafetensors,
  encodeSafetensors,
  decodeSafetensors,
  type StEntry,
  type StFile,
  type StTypedArray,
} from './safetensors.ts';

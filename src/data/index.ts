/**
 * The training data pipeline (lidc-crops -> normalised 2D / 2.5D patches with labels) and its
 * inference-side twin. Plain typed arrays in, plain typed arrays out (NCHW), no tensor library.
 */
import { loadCrops, type CropCase, type LoadCropsOptions } from './crops.ts';
import { SliceDataset, DEFAULT_AUGMENT, type AugmentConfig } from './dataset.ts';
import { computeSizeBins, type SizeBins } from './size-bins.ts';
import { DEFAULT_SLICE_CONFIG, type SliceConfig } from './slices.ts';

export {
  loadCrops,
  decodeCropFiles,
  parseCsv,
  cropCentreVoxel,
  huStats,
  withAgreementLabels,
  sliceAreasMm2,
  type CropCase,
  type CropLabels,
  type LoadCropsOptions,
  type Split,
} from './crops.ts';
export { readReaderIndex, readReaderMasks, agreementMask, unionMask, MIN_READER_UNION_DICE, type ReaderInfo } from './readers.ts';
export { SliceDataset, DEFAULT_AUGMENT, drawAugment, type AugmentConfig, type SliceBatch, type SliceDatasetOptions } from './dataset.ts';
export {
  computeSizeBins,
  sizeClassOf,
  saveSizeBins,
  loadSizeBins,
  parseSizeBins,
  quantile,
  SIZE_CLASSES,
  type SizeBins,
} from './size-bins.ts';
export {
  DEFAULT_SLICE_CONFIG,
  validateSliceConfig,
  stackSlices,
  inputChannels,
  type SliceConfig,
  type Normalisation,
  type IntensityWindow,
  type PromptChannel,
} from './slices.ts';
export { sliceGrid, volumeToSlices, slicesToProbability, slicesToMask, type SliceGrid } from './inference.ts';
export { NODULE_TYPES, noduleTypeOfTexture, isSubsolid, type NoduleType } from './nodule-type.ts';
export { scanNegatives, DEFAULT_SCAN_NEGATIVES, type ScanNegativeOptions } from './scan-negatives.ts';
export { stratifiedPatientFolds, foldSplit, parseFoldList, parseFoldSpec } from './folds.ts';
export { mulberry32, mixSeed, shuffle, type Rng } from './prng.ts';
export { dataRoot, lidcCropsDir, lidcScansDir, missingDataReason, requireData } from './paths.ts';

export interface TrainValData {
  train: SliceDataset;
  val: SliceDataset;
  sizeBins: SizeBins;
  cases: { train: CropCase[]; val: CropCase[] };
}

/**
 * Loads lidc-crops (decoding each file once per process) and builds the train and val datasets.
 * Size bins come from the training split unless given (a trained model passes its own).
 * Only the training set is augmented.
 */
export function loadTrainVal(
  options: {
    slice?: Partial<SliceConfig>;
    augment?: AugmentConfig | null;
    sizeBins?: SizeBins;
    crops?: Omit<LoadCropsOptions, 'splits'>;
  } = {},
): TrainValData {
  const slice: SliceConfig = { ...DEFAULT_SLICE_CONFIG, ...options.slice };
  const all = loadCrops({ ...options.crops });
  const train = all.filter((c) => c.split === 'train');
  const val = all.filter((c) => c.split === 'val');
  const sizeBins = options.sizeBins ?? computeSizeBins(train);
  const augment = options.augment === undefined ? DEFAULT_AUGMENT : options.augment;
  return {
    train: new SliceDataset({ cases: train, slice, sizeBins, augment }),
    val: new SliceDataset({ cases: val, slice, sizeBins, augment: null }),
    sizeBins,
    cases: { train, val },
  };
}

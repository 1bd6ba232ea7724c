/** Transfer learning: freezing strategies, fine-tuning through the trainer, the auto search. */
export {
  parseStrategy,
  strategyName,
  frozenPrefixes,
  applyStrategy,
  stageParamGroups,
  stagePrefixes,
  encoderLevels,
  STRATEGY_NAMES,
  type Strategy,
  type AppliedStrategy,
} from './strategies.ts';
export { loadCropFolder, splitByPatient, patientFolds, patientOfCaseId, type CropFolder } from './data.ts';
export {
  finetune,
  finetuneConfig,
  checkStrategy,
  loadSourceModel,
  disposeSourceModel,
  DEFAULT_FINETUNE,
  type FinetuneRun,
  type FinetuneResult,
  type FinetuneSettings,
  type SourceModel,
} from './finetune.ts';
export {
  autoFinetune,
  autoCandidates,
  pickWinner,
  formatAutoTable,
  DEFAULT_AUTO_CANDIDATES,
  type AutoRow,
  type AutoResult,
  type AutoOptions,
} from './auto.ts';

/** Synthetic CT nodule crops with exact masks (pretraining source, tests without data). */
export {
  drawSynthParams,
  renderSynthCase,
  NODULE_TYPES,
  NODULE_SHAPES,
  ATTACHMENTS,
  type NoduleType,
  type NoduleShape,
  type Attachment,
  type SynthParams,
  type SynthCase,
} from './generator.ts';
export { writeSynthSet, synthCase, synthCaseId, type SynthSetOptions } from './write.ts';
export { syntheticCropCases, type SyntheticCasesOptions } from './cases.ts';

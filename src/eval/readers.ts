/** How far the readers agree with each other, and a mask against each reader: the levels the benchmark puts the model beside. */
import { unionMask } from '../data/readers.ts';
import { maskOverlap } from '../metrics/segmentation.ts';

export { readReaderIndex, readReaderMasks, agreementMask, unionMask, MIN_READER_UNION_DICE, type ReaderInfo } from '../data/readers.ts';

/** Dice of two 0/1 masks of one grid; NaN when both are empty. */
export function diceOf(a: Uint8Array, b: Uint8Array): number {
  const { tp, predicted, reference } = maskOverlap(a, b);
  return predicted + reference === 0 ? Number.NaN : (2 * tp) / (predicted + reference);
}

const mean = (v: number[]) => (v.length ? v.reduce((s, x) => s + x, 0) / v.length : Number.NaN);

/**
 * The readers' panel level: each reader against the union of the others, averaged over readers
 * (NaN with fewer than 2 readers). The model's counterpart is readerLevel(pred, masks).
 */
export function panelAgreement(masks: readonly Uint8Array[]): number {
  if (masks.length < 2) return Number.NaN;
  return mean(masks.map((m, k) => diceOf(m, unionMask(masks.filter((_, j) => j !== k)))));
}

/** A mask's mean Dice against each reader's own mask. */
export function readerLevel(pred: Uint8Array, masks: readonly Uint8Array[]): number {
  return mean(masks.map((m) => diceOf(pred, m)));
}

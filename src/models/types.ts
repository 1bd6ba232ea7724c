import type { Module } from '../nn/index.ts';
import type { Tensor } from '../tensor/index.ts';
import type { ModelConfig } from './config.ts';

/** What every segmentation network returns: logits, never probabilities. */
export interface SegmentationOutput {
  /** Final foreground logits [N, 1, H, W] (after STD when the model has it). */
  maskLogits: Tensor;
  /** The decoder's logits before any regularisation [N, 1, H, W] (same as maskLogits without STD). */
  rawMaskLogits: Tensor;
  /** Size-class logits [N, numClasses], or null for segmentation-only networks. */
  classLogits: Tensor | null;
  /** Nodule-type logits [N, typeClasses] (joint networks with a type head only). */
  typeLogits?: Tensor;
}

/** Input [N, inChannels, H, W] with H and W divisible by 2^(levels-1). */
export type SegmentationNetwork = Module<[Tensor], SegmentationOutput> & { readonly config: ModelConfig };

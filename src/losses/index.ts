/**
 * Losses of the segmentation and joint models (MONAI's DiceLoss / DiceCELoss conventions).
 * All take logits.
 */
import { F, type Tensor } from '../tensor/index.ts';

export interface DiceLossOptions {
  /** Added to numerator and denominator (MONAI smooth_nr / smooth_dr). */
  smooth?: number;
  /**
   * true: one Dice over the whole batch (MONAI batch=True), which stays defined when a slice has
   * no nodule; false: mean of per-sample Dice.
   */
  batch?: boolean;
}

/** 1 - soft Dice between sigmoid(logits) and a {0,1} target of the same shape [N, 1, H, W]. */
export function softDiceLoss(logits: Tensor, target: Tensor, options: DiceLossOptions = {}): Tensor {
  const smooth = options.smooth ?? 1;
  if (logits.shape.join() !== target.shape.join()) {
    throw new RangeError(`softDiceLoss: logits [${logits.shape}] and target [${target.shape}] differ in shape`);
  }
  const p = logits.sigmoid();
  const dims = options.batch === false ? [1, 2, 3] : [0, 1, 2, 3];
  const inter = p.mul(target).sum(dims);
  const denom = p.sum(dims).add(target.sum(dims));
  return inter.mul(2).add(smooth).div(denom.add(smooth)).rsub(1).mean();
}

/**
 * 1 - soft Dice per sample, averaged over the samples whose target is not empty (0 when none
 * is). Every nodule slice weighs the same whatever its area, as every nodule does in the
 * per-nodule metric; empty slices are left to the cross-entropy term, since a per-sample Dice
 * of an empty target punishes any probability at all.
 */
export function nonEmptySampleDiceLoss(logits: Tensor, target: Tensor, smooth = 1): Tensor {
  if (logits.shape.join() !== target.shape.join()) {
    throw new RangeError(`nonEmptySampleDiceLoss: logits [${logits.shape}] and target [${target.shape}] differ in shape`);
  }
  const p = logits.sigmoid();
  const dims = [1, 2, 3];
  const area = target.sum(dims);
  const dice = p.mul(target).sum(dims).mul(2).add(smooth).div(p.sum(dims).add(area).add(smooth));
  const present = area.gt(0).float();
  return dice.rsub(1).mul(present).sum().div(present.sum().maximum(1));
}

export interface SegLossWeights {
  dice: number;
  /**
   * What the Dice term averages over: 'batch' = one Dice over all pixels of the batch (large
   * nodules dominate); 'sample' = per-slice Dice over the slices with nodule.
   */
  diceOver: 'batch' | 'sample';
  bce: number;
  /** Cross-entropy of the size class (joint model only). */
  cls: number;
  /** Dice + BCE on the decoder's raw logits when an STD layer follows (deep supervision). */
  raw: number;
  /**
   * Cross-entropy of the nodule's type on the slices that hold nodule (joint model with a type
   * head only; 0 = off).
   */
  type: number;
}

export const DEFAULT_LOSS_WEIGHTS: SegLossWeights = { dice: 1, diceOver: 'batch', bce: 1, cls: 0.5, raw: 0.5, type: 0 };

export interface LossParts {
  total: Tensor;
  dice: number;
  bce: number;
  cls: number;
  /** The type cross-entropy, NaN when it is off or the batch has no typed nodule slice. */
  type: number;
}

/** The type target: int64 [N] class per slice, NO_TYPE where the slice has no typed nodule. */
export interface TypeTarget {
  labels: Tensor;
  /** How many entries of labels are not NO_TYPE (the loss is skipped at 0, where CE is 0/0). */
  count: number;
  /** Per-class weight [typeClasses]. */
  weight?: Tensor;
}

/** The label of a slice without a typed nodule: ignored by the type cross-entropy. */
export const NO_TYPE = -1;

/**
 * Dice + BCE on the final mask logits, optional auxiliary Dice + BCE on the raw logits,
 * cross-entropy on the size class and, optionally, on the nodule type. `target` is float {0,1}
 * [N,1,H,W]; `sizeClass` int64 [N].
 */
export function segmentationLoss(
  out: { maskLogits: Tensor; rawMaskLogits: Tensor; classLogits: Tensor | null; typeLogits?: Tensor },
  target: Tensor,
  sizeClass: Tensor | null,
  w: SegLossWeights,
  classWeight?: Tensor,
  typeTarget?: TypeTarget,
): LossParts {
  const diceOf = (logits: Tensor) => (w.diceOver === 'sample' ? nonEmptySampleDiceLoss(logits, target) : softDiceLoss(logits, target));
  const dice = diceOf(out.maskLogits);
  const bce = F.binaryCrossEntropyWithLogits(out.maskLogits, target);
  let total = dice.mul(w.dice).add(bce.mul(w.bce));
  if (w.raw > 0 && out.rawMaskLogits !== out.maskLogits) {
    const rawDice = diceOf(out.rawMaskLogits);
    const rawBce = F.binaryCrossEntropyWithLogits(out.rawMaskLogits, target);
    total = total.add(rawDice.mul(w.dice).add(rawBce.mul(w.bce)).mul(w.raw));
  }
  let cls = NaN;
  if (out.classLogits && sizeClass && w.cls > 0) {
    const ce = F.crossEntropy(out.classLogits, sizeClass, classWeight ? { weight: classWeight } : {});
    total = total.add(ce.mul(w.cls));
    cls = ce.item();
  }
  let type = NaN;
  if (out.typeLogits && typeTarget && w.type > 0) {
    if (typeTarget.count > 0) {
      const ce = F.crossEntropy(out.typeLogits, typeTarget.labels, {
        ignoreIndex: NO_TYPE,
        ...(typeTarget.weight ? { weight: typeTarget.weight } : {}),
      });
      total = total.add(ce.mul(w.type));
      type = ce.item();
    } else {
      // A zero term keeps the head in the graph, so every data-parallel replica has its gradient.
      total = total.add(out.typeLogits.sum().mul(0));
    }
  }
  return { total, dice: dice.item(), bce: bce.item(), cls, type };
}

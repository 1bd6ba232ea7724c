/** Scores of the nodule-level classifiers: confusion matrix, accuracy, Cohen's kappa, recall, ROC AUC. */

/** counts[truth][predicted] over classes 0..k-1. */
export function confusionMatrix(truth: readonly number[], predicted: readonly number[], k: number): number[][] {
  if (truth.length !== predicted.length) throw new RangeError(`confusionMatrix: ${truth.length} labels, ${predicted.length} predictions`);
  const m = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  truth.forEach((t, i) => {
    const p = predicted[i]!;
    if (!(t >= 0 && t < k && p >= 0 && p < k)) throw new RangeError(`confusionMatrix: class out of 0..${k - 1} (${t}, ${p})`);
    m[t]![p]!++;
  });
  return m;
}

export function accuracyOf(m: readonly (readonly number[])[]): number {
  let diag = 0,
    total = 0;
  m.forEach((row, i) => {
    row.forEach((v, j) => {
      total += v;
      diag += i === j ? v : 0;
    });
  });
  return total ? diag / total : Number.NaN;
}

/** Cohen's kappa: agreement beyond chance, (po - pe) / (1 - pe); NaN when pe is 1. */
export function cohenKappa(m: readonly (readonly number[])[]): number {
  const k = m.length;
  let total = 0;
  const rows = new Array<number>(k).fill(0),
    cols = new Array<number>(k).fill(0);
  let diag = 0;
  for (let i = 0; i < k; i++)
    for (let j = 0; j < k; j++) {
      const v = m[i]![j]!;
      total += v;
      rows[i]! += v;
      cols[j]! += v;
      if (i === j) diag += v;
    }
  if (!total) return Number.NaN;
  const po = diag / total;
  let pe = 0;
  for (let i = 0; i < k; i++) pe += (rows[i]! / total) * (cols[i]! / total);
  return pe >= 1 ? Number.NaN : (po - pe) / (1 - pe);
}

/** Recall of each class (its row's diagonal share); NaN for a class without cases. */
export function recallPerClass(m: readonly (readonly number[])[]): number[] {
  return m.map((row, i) => {
    const n = row.reduce((a, b) => a + b, 0);
    return n ? row[i]! / n : Number.NaN;
  });
}

/** ROC AUC: the probability that a positive scores above a negative (ties count half). */
export function rocAuc(scores: readonly number[], positive: readonly boolean[]): number {
  if (scores.length !== positive.length) throw new RangeError(`rocAuc: ${scores.length} scores, ${positive.length} labels`);
  const order = scores.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0]);
  // Mann-Whitney U with mid-ranks for ties.
  let rankSumPos = 0,
    nPos = 0;
  for (let a = 0; a < order.length; ) {
    let b = a;
    while (b + 1 < order.length && order[b + 1]![0] === order[a]![0]) b++;
    const mid = (a + b) / 2 + 1;
    for (let r = a; r <= b; r++) {
      if (positive[order[r]![1]]) {
        rankSumPos += mid;
        nPos++;
      }
    }
    a = b + 1;
  }
  const nNeg = order.length - nPos;
  if (!nPos || !nNeg) return Number.NaN;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/** How many nodules of each true type a part-solid review level reaches. */
export interface ReviewWarningCounts {
  level: number;
  /** Part-solid nodules the type calls part-solid. */
  partSolidTyped: number;
  /** Part-solid nodules typed otherwise whose part-solid probability reaches the level. */
  partSolidFlagged: number;
  partSolid: number;
  /** Solid and ground-glass nodules typed otherwise and flagged. */
  solidFlagged: number;
  solid: number;
  groundGlassFlagged: number;
  groundGlass: number;
}

/**
 * The part-solid review warning's reach at each level (src/report/assess.ts): a nodule whose
 * argmax type is not part-solid is flagged when its part-solid probability is >= the level.
 * `truth` holds type indices (0 solid, 1 part-solid, 2 ground-glass), `probs` the type
 * probabilities in that order.
 */
export function reviewWarningCounts(
  truth: readonly number[],
  probs: readonly (readonly number[])[],
  levels: readonly number[],
): ReviewWarningCounts[] {
  if (truth.length !== probs.length) throw new RangeError(`reviewWarningCounts: ${truth.length} labels, ${probs.length} probabilities`);
  return levels.map((level) => {
    const c: ReviewWarningCounts = {
      level,
      partSolidTyped: 0,
      partSolidFlagged: 0,
      partSolid: 0,
      solidFlagged: 0,
      solid: 0,
      groundGlassFlagged: 0,
      groundGlass: 0,
    };
    truth.forEach((t, i) => {
      const p = probs[i]!;
      const typedPartSolid = p.indexOf(Math.max(...p)) === 1;
      const flagged = !typedPartSolid && p[1]! >= level;
      if (t === 0) {
        c.solid++;
        if (flagged) c.solidFlagged++;
      } else if (t === 1) {
        c.partSolid++;
        if (typedPartSolid) c.partSolidTyped++;
        else if (flagged) c.partSolidFlagged++;
      } else if (t === 2) {
        c.groundGlass++;
        if (flagged) c.groundGlassFlagged++;
      } else throw new RangeError(`reviewWarningCounts: type index ${t} out of 0..2`);
    });
    return c;
  });
}

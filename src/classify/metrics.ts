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

/**
 * Each rank's share of an epoch, as PyTorch's DistributedSampler (shuffle=True, drop_last=False):
 * every rank draws the same seeded order of the epoch, the order is padded to a multiple of the
 * world size by repeating its head, and rank r takes positions r, r + W, r + 2W, ...
 * So batch k of every rank together are batch k of one worker with W times the batch size.
 */

/** Samples per rank in an epoch of `length` samples. */
export function shardLength(length: number, worldSize: number): number {
  return Math.ceil(length / worldSize);
}

/** Rank `rank`'s indices of the epoch order `order` (all ranks must pass the same order). */
export function shardOf(order: Int32Array, rank: number, worldSize: number): Int32Array {
  if (!(Number.isInteger(worldSize) && worldSize >= 1 && Number.isInteger(rank) && rank >= 0 && rank < worldSize)) {
    throw new RangeError(`shardOf: need 0 <= rank < worldSize, got rank ${rank} of ${worldSize}`);
  }
  const per = shardLength(order.length, worldSize);
  const out = new Int32Array(per);
  if (order.length === 0) return out;
  // Padding repeats the head of the order (and wraps again when the epoch is shorter than the world).
  for (let k = 0; k < per; k++) out[k] = order[(rank + k * worldSize) % order.length]!;
  return out;
}

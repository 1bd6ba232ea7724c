/**
 * The files `train` writes into its output folder. One list for the trainer and for the CLI's
 * check that none of them lands on an input; no imports, so that the check loads nothing heavy.
 */
export const TRAIN_OUTPUT_FILES = {
  config: 'config.json',
  best: 'best.safetensors',
  /** Under --fold the best epoch is chosen on the held-out fold itself; the last epoch's network is free of that choice. */
  last: 'last.safetensors',
  latestCheckpoint: 'latest.ckpt.safetensors',
  log: 'log.jsonl',
  curves: 'curves.png',
} as const;

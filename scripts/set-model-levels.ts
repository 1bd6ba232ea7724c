/**
 * Writes a copy of a model file with its mask threshold and, for a model trained on the readers'
 * agreement, its any-reader level set (both chosen on val, never on test data), and a note of
 * how they were chosen in its provenance. The weights are copied unchanged.
 *
 *   node --import tsx scripts/set-model-levels.ts <in.safetensors> <out.safetensors> --threshold 0.4 [--any-reader 0.1] [--note "..."]
 */
import { resolve } from 'node:path';
import { loadModel, saveModel } from '../src/models/index.ts';

const [input, output, ...rest] = process.argv.slice(2);
const flag = (name: string) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};
const threshold = Number(flag('--threshold'));
const anyReader = flag('--any-reader') === undefined ? undefined : Number(flag('--any-reader'));
if (!input || !output || !(threshold > 0 && threshold < 1) || (anyReader !== undefined && !(anyReader > 0 && anyReader < threshold))) {
  console.error('usage: set-model-levels.ts <in> <out> --threshold t [--any-reader a (0 < a < t)] [--note text]');
  process.exit(2);
}
if (resolve(input) === resolve(output)) {
  console.error(`${output}: the output may not be the input`);
  process.exit(2);
}
const { model, info } = loadModel(input);
const note = flag('--note');
saveModel(output, model, {
  slice: info.slice,
  sizeBins: info.sizeBins,
  threshold,
  ...(anyReader !== undefined ? { anyReaderThreshold: anyReader } : {}),
  // The refinement stage works on the network's probability at any level: it is kept.
  ...(info.refine ? { refine: info.refine } : {}),
  provenance: { ...info.provenance, levels: { threshold, anyReaderThreshold: anyReader ?? null, from: input, note: note ?? null } },
});
model.dispose();
console.log(`${output}: threshold ${threshold}${anyReader !== undefined ? `, any-reader level ${anyReader}` : ''}`);

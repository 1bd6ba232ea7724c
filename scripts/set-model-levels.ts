/**
 * Writes a copy of a model file with its mask threshold and, for a model trained on the readers'
 * agreement, its any-reader level set (chosen by cross-validation or on val, never on test
 * data), with a note of how they were chosen in its provenance. Weights, refinement stage and
 * nodule-level heads are copied unchanged (src/models/io.ts writeModelLevels).
 *
 *   node --import tsx scripts/set-model-levels.ts <in.safetensors> <out.safetensors> [--threshold 0.4] [--any-reader 0.1] [--note "..."]
 */
import { parseArgs } from 'node:util';
import { writeModelLevels } from '../src/models/index.ts';
import { UserError } from '../src/errors.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { threshold: { type: 'string' }, 'any-reader': { type: 'string' }, note: { type: 'string' } },
});
const [input, output] = positionals;
if (!input || !output || positionals.length !== 2) {
  console.error('usage: set-model-levels.ts <in> <out> [--threshold t] [--any-reader a (0 < a < t)] [--note text]');
  process.exit(2);
}
try {
  const info = writeModelLevels(input, output, {
    ...(values.threshold !== undefined ? { threshold: Number(values.threshold) } : {}),
    ...(values['any-reader'] !== undefined ? { anyReaderThreshold: Number(values['any-reader']) } : {}),
    ...(values.note !== undefined ? { note: values.note } : {}),
  });
  console.log(
    `${output}: threshold ${info.threshold}${info.anyReaderThreshold !== undefined ? `, any-reader level ${info.anyReaderThreshold}` : ''}`,
  );
} catch (e) {
  if (!(e instanceof UserError)) throw e;
  console.error(e.message);
  process.exit(1);
}

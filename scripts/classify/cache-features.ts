/**
 * One-time feature cache for the nodule-level heads: every lidc-crops crop segmented by the
 * shipped (frozen) model exactly as `segment` does, then the network and HU features of the
 * nodule it found (src/classify/features.ts), with the crop's LIDC labels.
 *
 *   node --import tsx scripts/classify/cache-features.ts --model models/noduleseg.safetensors --out runs/classify/features.json --threads 1
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadCrops, parseCsv, readText } from '../../src/data/crops.ts';
import { lidcCropsDir } from '../../src/data/paths.ts';
import { loadModel } from '../../src/models/index.ts';
import { segmentCrop } from '../../src/inference/index.ts';
import { setNumThreads } from '../../src/tensor/index.ts';
import { asJointNet, noduleFeatures } from '../../src/classify/features.ts';
import { writeFileAtomic } from '../../src/io/atomic.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/noduleseg.safetensors' },
    out: { type: 'string', default: 'runs/classify/features.json' },
    threads: { type: 'string', default: '1' },
    limit: { type: 'string' },
  },
});
setNumThreads(Number(values.threads));
const { model, info } = loadModel(values.model!);
const joint = asJointNet(model);
if (!joint) throw new Error(`${values.model}: not a joint network`);
const dir = lidcCropsDir();
const meta = new Map(parseCsv(readText(join(dir, 'metadata.csv')), join(dir, 'metadata.csv')).map((r) => [r['case']!, r]));
const crops = loadCrops({ limit: values.limit ? Number(values.limit) : undefined });
const rows: unknown[] = [];
const t0 = Date.now();
for (const [n, c] of crops.entries()) {
  const { seg, nodule } = segmentCrop(model, info, c.image);
  // Where segment reads the features: the patches' centre, moved onto the nodule when it was found off the centre.
  const f = noduleFeatures(joint, info.slice, c.image, seg.mask.data, seg.centreVoxel);
  const m = nodule.measures;
  const r = meta.get(c.id)!;
  rows.push({
    id: c.id,
    patientId: c.patientId,
    split: c.split,
    texture: Number(r['Texture_value']),
    calcification: Number(r['Calcification_value']),
    malignancy: Number(r['Malignancy_value']),
    spiculation: Number(r['Spiculation_value']),
    readers: Number(r['len_mal_details']),
    voxels: m.voxelCount,
    net: Array.from(f.network, (v) => Math.round(v * 1e5) / 1e5),
    hu: Array.from(f.hu, (v) => Math.round(v * 1e4) / 1e4),
  });
  if ((n + 1) % 50 === 0) process.stderr.write(`${n + 1}/${crops.length} ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
}
writeFileAtomic(values.out!, JSON.stringify({ model: values.model, rows }) + '\n');
process.stderr.write(`${rows.length} crops in ${((Date.now() - t0) / 1000).toFixed(0)} s -> ${values.out}\n`);

/**
 * One of `segment`'s crop threads for a folder of crops: loads the model once on one intra-op
 * thread, then segments the crops it is sent and writes each mask (and overlay) into the staging
 * folders. Small crops keep libtorch's thread team mostly waiting (on 2 cores two threads per crop
 * spent a third of their time in futex calls), so crops side by side on one thread each go about
 * twice as fast as one crop at a time on two.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { join } from 'node:path';
import { readVolume, writeNiftiMask, writeOverlayPng } from '../io/index.ts';
import { loadModel } from '../models/index.ts';
import { segmentCrop } from '../inference/index.ts';
import { readHeads } from '../classify/index.ts';
import { setNumThreads } from '../tensor/index.ts';
import { withGuidelines } from '../report/index.ts';
import { toWire } from '../worker-thread.ts';
import type { CropThreadInit, FromCropThread, ToCropThread } from './segment-crops-protocol.ts';

const port = parentPort;
if (!port) throw new Error('segment-crops-thread.ts runs as a worker thread (started by noduleseg segment)');
const init = workerData as CropThreadInit;
const post = (m: FromCropThread): void => port.postMessage(m);

let loaded: ReturnType<typeof loadModel>;
let heads: ReturnType<typeof readHeads>;
try {
  // libtorch's thread count is per thread: the main thread's setting does not reach here.
  setNumThreads(init.threads);
  loaded = loadModel(init.modelFile);
  heads = readHeads(init.modelFile, loaded.model);
} catch (e) {
  post({ type: 'startFailed', error: toWire(e) });
  throw e;
}
const { model, info } = loaded;

async function run(m: ToCropThread): Promise<void> {
  const crop = await readVolume(m.file);
  const { seg, nodule } = segmentCrop(model, info, crop, { ...init.options, heads });
  writeNiftiMask(join(init.maskStage, `${m.stem}.nii.gz`), seg.mask.data, crop);
  if (init.pngStage && nodule.measures.voxelCount > 0) writeOverlayPng(join(init.pngStage, `${m.stem}.png`), crop, seg.mask.data);
  // Each crop is its own scan: one nodule, so Fleischner's "single" rows.
  post({ type: 'done', index: m.index, reported: withGuidelines([nodule], init.fleischner)[0]! });
}

port.on('message', (m: ToCropThread) => {
  run(m).catch((e: unknown) => post({ type: 'failed', index: m.index, error: toWire(e) }));
});
post({ type: 'ready' });

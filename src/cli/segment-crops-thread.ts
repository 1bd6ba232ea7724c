/**
 * One of `segment`'s crop threads for a folder of crops: loads the model once (one intra-op thread
 * unless --threads), then segments the crops it is sent and writes each mask (and overlay) into the
 * staging folders. On small crops libtorch's thread team mostly waits (on 2 cores two threads per
 * crop spent a third of their time in futex calls), so crops side by side on one thread each go
 * about 1.6 times as fast as one crop at a time on two (200 crops 33 s against 52-57 s).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadModel } from '../models/index.ts';
import { readHeads } from '../classify/index.ts';
import { setNumThreads } from '../tensor/index.ts';
import { toWire } from '../worker-thread.ts';
import { segmentCropFile } from './segment-crop-file.ts';
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
  const reported = await segmentCropFile(model, info, m.file, m.stem, { ...init, options: { ...init.options, heads } });
  post({ type: 'done', index: m.index, reported });
}

port.on('message', (m: ToCropThread) => {
  run(m).catch((e: unknown) => post({ type: 'failed', index: m.index, error: toWire(e) }));
});
post({ type: 'ready' });

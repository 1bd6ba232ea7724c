/**
 * The viewer's model worker (a worker thread): loads the model once, keeps the opened scans (their
 * voxels in shared memory) and runs `segmentAtPrompts` for one prompt at a time, the same call as
 * `noduleseg segment --point` / `--box`. The server's event loop stays free meanwhile.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Volume } from '../io/index.ts';
import { segmentAtPrompts } from '../inference/index.ts';
import { loadModel } from '../models/index.ts';
import { readHeads, type NoduleHeads } from '../classify/index.ts';
import { setNumThreads } from '../tensor/index.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.ts';
import { toWire as wire } from '../worker-thread.ts';

const port = parentPort;
if (!port) throw new Error('model-worker.ts runs as a worker thread (started by the viewer server)');
const init = workerData as WorkerInit;

const post = (m: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);

let loaded: ReturnType<typeof loadModel>;
let heads: NoduleHeads | null;
try {
  // Thread counts are per thread in libtorch's OpenMP: the main thread's setting does not reach here.
  if (init.threads) setNumThreads(init.threads);
  loaded = loadModel(init.modelFile);
  heads = readHeads(init.modelFile, loaded.model);
} catch (e) {
  post({ type: 'startFailed', error: wire(e) });
  throw e;
}
const { model, info } = loaded;
const scans = new Map<string, Volume>();

port.on('message', (m: ToWorker) => {
  if (m.type === 'open') {
    const s = m.scan;
    scans.set(
      m.scanId,
      new Volume({
        data: s.data,
        dims: s.dims,
        spacingMm: s.spacingMm,
        originMm: s.originMm,
        direction: s.direction,
        modality: s.modality,
      }),
    );
    return;
  }
  if (m.type === 'close') {
    scans.delete(m.scanId);
    return;
  }
  const t0 = performance.now();
  try {
    if (m.fault === 'exit') process.exit(70);
    if (m.fault === 'throw') throw new RangeError('injected internal error (NODULESEG_SERVE_FAULT)');
    const scan = scans.get(m.scanId);
    // The main thread checks this before sending; a miss here is a bug, not the user's doing.
    if (!scan) throw new Error(`model worker: scan ${m.scanId} is not open here`);
    const { labels, anyReaderVoxels: wide, nodules } = segmentAtPrompts(model, info, scan, [m.prompt], { heads });
    const voxels = voxelsOf(labels);
    const anyReaderVoxels = wide[0] ?? null;
    post({ type: 'done', jobId: m.jobId, voxels, anyReaderVoxels, nodule: nodules[0]!, ms: performance.now() - t0 }, [
      voxels.buffer as ArrayBuffer,
      ...(anyReaderVoxels ? [anyReaderVoxels.buffer as ArrayBuffer] : []),
    ]);
  } catch (e) {
    post({ type: 'failed', jobId: m.jobId, error: wire(e) });
  }
});

/** The sorted indices of a label mask's non-zero voxels. */
function voxelsOf(labels: Uint8Array): Int32Array {
  let count = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i]) count++;
  const voxels = new Int32Array(count);
  for (let i = 0, n = 0; i < labels.length; i++) if (labels[i]) voxels[n++] = i;
  return voxels;
}

post({ type: 'ready', model: { arch: info.config.arch, threshold: info.threshold, slice: info.slice } });

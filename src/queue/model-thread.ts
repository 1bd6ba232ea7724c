/**
 * The queue worker's model thread: loads the model once, then per job reads the fetched series,
 * segments it at the job's prompts (segmentAtPrompts, as `segment --point/--box` does) and encodes
 * the SEG. Everything that holds the CPU for seconds runs here, so that the worker's event loop
 * keeps renewing its job locks in Redis (a blocked loop would lose them and let another worker take
 * the job while it still runs).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { UserError } from '../errors.ts';
import { readVolume } from '../io/index.ts';
import { boxPrompt, labelsFromVoxelLists, promptCentre, segmentAtPrompts, type NodulePrompt } from '../inference/index.ts';
import { loadModel } from '../models/index.ts';
import { setNumThreads } from '../tensor/index.ts';
import { withSegUids } from '../pacs/uids.ts';
import { encodeNoduleSeg, encodeNoduleSr, withGuidelines } from '../report/index.ts';
import type { FromModelThread, ModelThreadInit, ToModelThread } from './model-protocol.ts';
import { toWire as wire } from '../worker-thread.ts';

const port = parentPort;
if (!port) throw new Error('model-thread.ts runs as a worker thread (started by noduleseg worker)');
const init = workerData as ModelThreadInit;

let loaded: ReturnType<typeof loadModel>;
try {
  if (init.threads) setNumThreads(init.threads);
  loaded = loadModel(init.modelFile);
} catch (e) {
  port.postMessage({ type: 'startFailed', error: wire(e) } satisfies FromModelThread);
  throw e;
}
const { model, info } = loaded;

async function run(m: Extract<ToModelThread, { type: 'segment' }>): Promise<void> {
  const t0 = performance.now();
  const volume = await readVolume(m.dir);
  if (volume.source?.format !== 'dicom') throw new Error('model thread: the fetched series did not read as DICOM');
  const prompts: NodulePrompt[] = [
    ...m.prompts.points.map((w): NodulePrompt => ({ kind: 'point', voxel: volume.worldToVoxel(w) })),
    ...m.prompts.boxes.map(([a, b]) => boxPrompt(volume.worldToVoxel(a), volume.worldToVoxel(b))),
  ];
  for (const [n, p] of prompts.entries()) {
    const v = promptCentre(p);
    if (v.some((x, d) => x < -0.5 || x > volume.dims[d]! - 0.5)) {
      const what = p.kind === 'point' ? `point ${n + 1}` : `the centre of box ${n + 1 - m.prompts.points.length}`;
      throw new UserError(
        `series ${volume.source.series.seriesInstanceUid}: ${what} (voxel ${v.map((x) => x.toFixed(1)).join(', ')}) lies outside the image [${volume.dims.join(' x ')}]`,
      );
    }
  }
  const { labels, anyReaderVoxels, nodules } = segmentAtPrompts(model, info, volume, prompts, {
    threshold: m.threshold ?? undefined,
    flipTta: m.tta,
  });
  const anyReaderLabels = labelsFromVoxelLists(anyReaderVoxels, volume.voxelCount);
  const seg = withSegUids(encodeNoduleSeg(volume, labels, anyReaderLabels, info.config.arch), m.uids);
  // The report as `segment` gives it (guidelines with the default context), and its DICOM SR.
  const reported = withGuidelines(nodules);
  const sr = withSegUids(encodeNoduleSr(reported, volume, seg, info.config.arch), m.srUids);
  const ref = volume.source.series;
  port!.postMessage(
    {
      type: 'done',
      id: m.id,
      seg,
      sr,
      nodules: reported,
      studyInstanceUid: ref.studyInstanceUid,
      seriesInstanceUid: ref.seriesInstanceUid,
      ms: performance.now() - t0,
    } satisfies FromModelThread,
    [seg.buffer as ArrayBuffer, sr.buffer as ArrayBuffer],
  );
}

port.on('message', (m: ToModelThread) => {
  run(m).catch((e: unknown) => port.postMessage({ type: 'failed', id: m.id, error: wire(e) } satisfies FromModelThread));
});

port.postMessage({ type: 'ready', arch: info.config.arch } satisfies FromModelThread);

/** Messages between `segment` (main thread) and its crop threads (segment-crops-thread.ts). Types only. */
import type { SegmentOptions } from '../inference/index.ts';
import type { ReportedNodule } from '../report/assess.ts';
import type { FleischnerContext } from '../guidelines/index.ts';
import type { WireError } from '../worker-thread.ts';

export interface CropThreadInit {
  modelFile: string;
  /** libtorch intra-op threads in the thread. */
  threads: number;
  /** segmentCrop's options without the heads (the thread reads them from the model file). */
  options: Omit<SegmentOptions, 'heads'>;
  fleischner: FleischnerContext;
  maskStage: string;
  pngStage: string | null;
}

export type ToCropThread = { index: number; file: string; stem: string };

export type FromCropThread =
  | { type: 'ready' }
  | { type: 'startFailed'; error: WireError }
  | { type: 'done'; index: number; reported: ReportedNodule }
  | { type: 'failed'; index: number; error: WireError };

/** Messages between the queue worker (main thread) and its model thread. Types only. */
import type { ReportedNodule } from '../report/assess.ts';
import type { SegUids } from '../pacs/uids.ts';
import type { JobPrompts } from './jobs.ts';

export interface ModelThreadInit {
  modelFile: string;
  threads: number | null;
}

export type { WireError } from '../worker-thread.ts';
import type { WireError } from '../worker-thread.ts';

export type ToModelThread = {
  type: 'segment';
  id: number;
  dir: string;
  prompts: JobPrompts;
  threshold: number | null;
  tta: boolean;
  uids: SegUids;
  srUids: SegUids;
};

export type FromModelThread =
  | { type: 'ready'; arch: string }
  | { type: 'startFailed'; error: WireError }
  | {
      type: 'done';
      id: number;
      seg: Uint8Array;
      sr: Uint8Array;
      nodules: ReportedNodule[];
      studyInstanceUid: string;
      seriesInstanceUid: string;
      ms: number;
    }
  | { type: 'failed'; id: number; error: WireError };

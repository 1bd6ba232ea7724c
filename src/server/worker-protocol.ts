/**
 * Messages between the viewer's server (main thread) and its model worker (model-worker.ts).
 * Types only: both sides import it, and neither loads code through it.
 */
import type { Mat3, Modality, Vec3, VoxelArray } from '../io/index.ts';
import type { NodulePrompt, NoduleResult } from '../inference/index.ts';
import type { ModelInfo } from '../models/index.ts';

/** What the worker is started with (workerData). */
export interface WorkerInit {
  modelFile: string;
  /** Intra-op threads for libtorch in the worker; null keeps its default (all cores, or OMP_NUM_THREADS). */
  threads: number | null;
}

/** A scan's voxels in shared memory and its geometry: posted once per opened scan, never copied. */
export interface SharedScan {
  data: VoxelArray;
  dims: Vec3;
  spacingMm: Vec3;
  originMm: Vec3;
  direction: Mat3;
  modality: Modality;
}

/** Test hook (NODULESEG_SERVE_FAULT): an internal error thrown by the worker, or the worker dying. */
export type Fault = 'throw' | 'exit';

export type ToWorker =
  | { type: 'open'; scanId: string; scan: SharedScan }
  | { type: 'close'; scanId: string }
  | { type: 'segment'; jobId: number; scanId: string; prompt: NodulePrompt; fault: Fault | null };

/** An error as it crosses the thread boundary; `user` is true for a UserError (a 4xx). */
export type { WireError } from '../worker-thread.ts';
import type { WireError } from '../worker-thread.ts';

export interface ModelSummary {
  arch: string;
  threshold: number;
  slice: ModelInfo['slice'];
}

export type FromWorker =
  | { type: 'ready'; model: ModelSummary }
  | { type: 'startFailed'; error: WireError }
  /** `voxels`: sorted indices of the mask's voxels in the scan (its buffer is transferred). */
  | { type: 'done'; jobId: number; voxels: Int32Array; anyReaderVoxels: Int32Array | null; nodule: NoduleResult; ms: number }
  | { type: 'failed'; jobId: number; error: WireError };

/** Data-parallel training over c10d (Gloo): process groups, DDP, sharding, sync BN, the local launcher. */
export { ProcessGroup, DistributedError, distEnvFrom, DEFAULT_TIMEOUT_SECONDS, type DistEnv } from './group.ts';
export { DataParallel, type DataParallelOptions, type Replica } from './ddp.ts';
export { shardOf, shardLength } from './sampler.ts';
export { SyncBatchNorm } from './sync-bn.ts';
export { launchLocal, freePort, withoutNproc, type LaunchOptions } from './launch.ts';
export type { CollectiveArray } from './native.ts';

import type { ProcessGroup } from './group.ts';

/** How the trainer runs data-parallel. */
export interface DistributedTraining {
  group: ProcessGroup;
  /** Synchronised batch norm (statistics over the global batch); else each replica's own. */
  syncBn: boolean;
  bucketCapMb?: number;
}

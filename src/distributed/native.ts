/**
 * The c10d addon (native/c10d): its typed surface and a lazy loader. It is a separate addon from
 * the engine's, so only distributed runs load it (and the Gloo headers are needed only to build it).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNative } from '../native/binding.ts';

/** Arrays the collectives take; they are reduced or overwritten in place. */
export type CollectiveArray = Float32Array | Float64Array | Int32Array | Uint8Array;

export interface NativeGroupOptions {
  masterAddr: string;
  masterPort: number;
  worldSize: number;
  rank: number;
  /** Every collective fails after this long (Gloo's timeout). */
  timeoutMs: number;
  /** How long rank 0 waits for the others to join, and the others for rank 0's store. */
  connectTimeoutMs: number;
}

export interface NativeProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  /** Sums (average: means) every array over the ranks, in place; all sent at once, then waited for. */
  allReduce(arrays: CollectiveArray[], average: boolean): void;
  broadcast(arrays: CollectiveArray[], root: number): void;
  barrier(timeoutMs?: number): void;
  storeSet(key: string, value: string): void;
  /** Waits (up to the timeout) until the key is set. */
  storeGet(key: string): string;
  /** Which peers stopped sending heartbeats (takes ~2 s). */
  diagnose(): string;
  shutdown(): void;
}

interface DistAddon {
  ProcessGroup: new (options: NativeGroupOptions) => NativeProcessGroup;
}

const here = dirname(fileURLToPath(import.meta.url));
/** NODULESEG_C10D_ADDON selects another build of the c10d addon. */
export const DIST_ADDON_PATH =
  process.env.NODULESEG_C10D_ADDON ?? join(here, '..', '..', 'native', 'c10d', 'build', 'Release', 'noduleseg_c10d.node');

let cached: DistAddon | undefined;

export function loadDistAddon(): DistAddon {
  if (cached) return cached;
  if (!existsSync(DIST_ADDON_PATH)) {
    throw new Error(
      `noduleseg: the distributed addon is not built (${DIST_ADDON_PATH} is missing).\n` +
        '  fix: run `npm run setup` (it installs libgloo-dev and builds native/c10d), or\n' +
        '  `npx node-gyp rebuild --directory native/c10d`',
    );
  }
  // The engine's addon first: it sets the OpenMP wait policy before libtorch loads.
  loadNative();
  const require = createRequire(import.meta.url);
  try {
    cached = require(DIST_ADDON_PATH) as DistAddon;
  } catch (e) {
    throw new Error(
      `noduleseg: cannot load the distributed addon ${DIST_ADDON_PATH}: ${(e as Error).message}\n  fix: rebuild it with \`npx node-gyp rebuild --directory native/c10d\``,
      { cause: e },
    );
  }
  return cached;
}

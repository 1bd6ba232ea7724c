/**
 * A process group from the launcher's environment (torchrun's contract: MASTER_ADDR, MASTER_PORT,
 * WORLD_SIZE, RANK, LOCAL_RANK; Slurm's SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID stand in for
 * the last three), over the c10d addon: a TCPStore hosted by rank 0 and a Gloo process group.
 */
import { UserError } from '../errors.ts';
import { loadDistAddon, type CollectiveArray, type NativeProcessGroup } from './native.ts';

/** PyTorch's default process-group timeout (30 min): a barrier must outlast rank 0's validation. */
export const DEFAULT_TIMEOUT_SECONDS = 1800;

export interface DistEnv {
  masterAddr: string;
  masterPort: number;
  worldSize: number;
  rank: number;
  localRank: number;
}

/**
 * A failed rendezvous or collective (a peer died, a timeout). Printed like a UserError: one line
 * naming this rank, the operation and the peer, exit code 1.
 */
export class DistributedError extends UserError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DistributedError';
  }
}

type Env = Record<string, string | undefined>;

function intVar(env: Env, names: readonly string[], min: number): number | undefined {
  for (const name of names) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min) throw new UserError(`${name}=${raw}: expected an integer >= ${min}`);
    return v;
  }
  return undefined;
}

/**
 * The distributed settings of this process, or null when it runs alone (no WORLD_SIZE, or a world
 * of one). Errors name the variable.
 */
export function distEnvFrom(env: Env = process.env): DistEnv | null {
  const worldSize = intVar(env, ['WORLD_SIZE', 'SLURM_NTASKS'], 1);
  if (worldSize === undefined || worldSize === 1) return null;
  // Slurm's variables count only when the run is set up for us (MASTER_ADDR given).
  if (env['WORLD_SIZE'] === undefined && env['MASTER_ADDR'] === undefined) return null;
  const masterAddr = env['MASTER_ADDR'];
  if (!masterAddr) throw new UserError(`WORLD_SIZE=${worldSize} but MASTER_ADDR is not set (the address of rank 0's machine)`);
  const masterPort = intVar(env, ['MASTER_PORT'], 1);
  if (masterPort === undefined || masterPort > 65535)
    throw new UserError(`MASTER_PORT=${env['MASTER_PORT'] ?? ''}: expected a port number (1-65535)`);
  const rank = intVar(env, ['RANK', 'SLURM_PROCID'], 0);
  if (rank === undefined) throw new UserError(`WORLD_SIZE=${worldSize} but RANK is not set`);
  if (rank >= worldSize) throw new UserError(`RANK=${rank} must be below WORLD_SIZE=${worldSize}`);
  const localRank = intVar(env, ['LOCAL_RANK', 'SLURM_LOCALID'], 0) ?? 0;
  return { masterAddr, masterPort, worldSize, rank, localRank };
}

/** The members of a run: this process's rank and the collectives over all of them. */
export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly localRank: number;
  readonly timeoutSeconds: number;
  private native: NativeProcessGroup | null;

  private constructor(native: NativeProcessGroup, env: DistEnv, timeoutSeconds: number) {
    this.native = native;
    this.rank = env.rank;
    this.worldSize = env.worldSize;
    this.localRank = env.localRank;
    this.timeoutSeconds = timeoutSeconds;
  }

  /** Rendezvous at MASTER_ADDR:MASTER_PORT (rank 0 hosts the store); blocks until all ranks joined. */
  static init(env: DistEnv, options: { timeoutSeconds?: number } = {}): ProcessGroup {
    const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
    const { ProcessGroup: Native } = loadDistAddon();
    try {
      const native = new Native({
        masterAddr: env.masterAddr,
        masterPort: env.masterPort,
        worldSize: env.worldSize,
        rank: env.rank,
        timeoutMs: Math.round(timeoutSeconds * 1000),
        connectTimeoutMs: Math.round(timeoutSeconds * 1000),
      });
      return new ProcessGroup(native, env, timeoutSeconds);
    } catch (e) {
      throw new DistributedError((e as Error).message, { cause: e });
    }
  }

  get isMain(): boolean {
    return this.rank === 0;
  }

  private group(): NativeProcessGroup {
    if (!this.native) throw new DistributedError(`rank ${this.rank} of ${this.worldSize}: the process group is shut down`);
    return this.native;
  }

  private call<T>(fn: (g: NativeProcessGroup) => T): T {
    try {
      return fn(this.group());
    } catch (e) {
      if (e instanceof DistributedError) throw e;
      throw new DistributedError((e as Error).message, { cause: e });
    }
  }

  /** Sums (or averages) each array over the ranks, in place. */
  allReduce(arrays: CollectiveArray[], options: { average?: boolean } = {}): void {
    this.call((g) => g.allReduce(arrays, options.average ?? false));
  }

  /** Every rank's arrays take rank `root`'s values. */
  broadcast(arrays: CollectiveArray[], root = 0): void {
    this.call((g) => g.broadcast(arrays, root));
  }

  barrier(timeoutSeconds?: number): void {
    this.call((g) => (timeoutSeconds === undefined ? g.barrier() : g.barrier(Math.round(timeoutSeconds * 1000))));
  }

  /** True on every rank when it is true on any (a collective decision, e.g. to stop). */
  anyTrue(flag: boolean): boolean {
    const a = Float64Array.of(flag ? 1 : 0);
    this.allReduce([a]);
    return a[0]! > 0;
  }

  /** Rank root's bytes on every rank (null on root: nothing); length first, then the content. */
  broadcastBytes(bytes: Uint8Array | null, root = 0): Uint8Array {
    const n = Float64Array.of(this.rank === root ? (bytes?.length ?? 0) : 0);
    this.broadcast([n], root);
    const out = this.rank === root && bytes ? bytes : new Uint8Array(n[0]!);
    if (out.length > 0) this.broadcast([out], root);
    return out;
  }

  /** Which peers stopped (for messages); takes about 2 s. */
  diagnose(): string {
    return this.call((g) => g.diagnose());
  }

  /** Leaves the group; the collectives throw afterwards. Idempotent. */
  shutdown(): void {
    const g = this.native;
    this.native = null;
    g?.shutdown();
  }
}

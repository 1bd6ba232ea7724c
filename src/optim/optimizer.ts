/**
 * Optimizers (SGD, Adam, AdamW) over native code that follows torch.optim's update rules exactly.
 * Parameters may be split into groups with their own learning rate and weight decay.
 */
import type { NativeOptimizer, NativeParamGroup } from '../native/binding.ts';
import { OPTIMIZER_KIND, type OptimizerKind } from '../native/op-codes.ts';
import { Tensor, native } from '../tensor/tensor.ts';

export interface ParamGroup {
  params: Tensor[];
  lr?: number;
  weightDecay?: number;
}

type Hyper = Omit<NativeParamGroup, 'params'>;

/** One group as seen by schedules and users: `lr` and `weightDecay` are settable. */
export class ParamGroupView {
  /** `opt` returns the native optimizer, or throws once the optimizer is disposed. */
  constructor(
    private readonly opt: () => NativeOptimizer,
    private readonly index: number,
    readonly params: readonly Tensor[],
    private readonly hyper: Hyper,
  ) {}
  get lr(): number {
    return this.hyper.lr;
  }
  set lr(v: number) {
    checkNonNeg('lr', v);
    this.opt().setLr(this.index, v);
    this.hyper.lr = v;
  }
  get weightDecay(): number {
    return this.hyper.weightDecay;
  }
  set weightDecay(v: number) {
    checkNonNeg('weightDecay', v);
    this.opt().setWeightDecay(this.index, v);
    this.hyper.weightDecay = v;
  }
  /** All hyper-parameters (a copy). */
  options(): Hyper {
    return { ...this.hyper };
  }
}

/** What stateDict() returns: tensors by name ("state.<paramIndex>.<buffer>") and JSON metadata. */
export interface OptimizerStateDict {
  tensors: Record<string, Tensor>;
  meta: {
    kind: string;
    groups: (Hyper & { params: number[] })[];
    /** Per parameter index (flattened over groups, in order): its step count. */
    state: Record<string, { step: number }>;
  };
}

function checkNonNeg(what: string, v: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    throw new RangeError(`optimizer: ${what} must be a non-negative number, got ${v}`);
}

export abstract class Optimizer {
  readonly paramGroups: ParamGroupView[];
  private readonly opt: NativeOptimizer;
  private readonly allParams: Tensor[];
  private disposed = false;

  protected constructor(
    readonly kind: OptimizerKind,
    paramsOrGroups: Tensor[] | ParamGroup[],
    defaults: Hyper,
  ) {
    if (!Array.isArray(paramsOrGroups) || paramsOrGroups.length === 0)
      throw new TypeError(`${kind}: params must be a non-empty array of Tensors or parameter groups`);
    const groups: ParamGroup[] =
      paramsOrGroups[0] instanceof Tensor ? [{ params: paramsOrGroups as Tensor[] }] : (paramsOrGroups as ParamGroup[]);
    const seen = new Set<Tensor>();
    const resolved: NativeParamGroup[] = [];
    const hypers: Hyper[] = [];
    groups.forEach((g, gi) => {
      if (!g || !Array.isArray(g.params)) throw new TypeError(`${kind}: group ${gi} must have a params array`);
      for (const [pi, p] of g.params.entries()) {
        if (!(p instanceof Tensor)) throw new TypeError(`${kind}: group ${gi} params[${pi}] is not a Tensor`);
        if (seen.has(p)) throw new Error(`${kind}: a parameter appears in more than one group (group ${gi}, params[${pi}])`);
        seen.add(p);
      }
      const h: Hyper = { ...defaults, lr: g.lr ?? defaults.lr, weightDecay: g.weightDecay ?? defaults.weightDecay };
      checkNonNeg('lr', h.lr);
      checkNonNeg('weightDecay', h.weightDecay);
      hypers.push(h);
      resolved.push({ ...h, params: g.params.map((p) => p.handle) });
    });
    this.opt = new native.NativeOptimizer(OPTIMIZER_KIND[kind], resolved);
    this.paramGroups = groups.map((g, i) => new ParamGroupView(() => this.nativeOpt, i, [...g.params], hypers[i]!));
    this.allParams = groups.flatMap((g) => g.params);
  }

  /** @internal the native optimizer; throws once disposed. */
  protected get nativeOpt(): NativeOptimizer {
    if (this.disposed) throw new Error(`${this.kind}: optimizer already disposed`);
    return this.opt;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /**
   * Frees the state (Adam's moments, SGD's momentum buffers) and drops the references to the
   * parameters now, instead of at garbage collection; the parameters themselves stay usable.
   * Idempotent; any other use afterwards throws.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.opt.dispose();
  }

  /** One update of every parameter that has a gradient. */
  step(): void {
    this.nativeOpt.step();
  }

  /** Clears gradients; by default drops them (PyTorch 2's set_to_none=True). */
  zeroGrad(setToNone = true): void {
    this.nativeOpt.zeroGrad(setToNone);
  }

  /** Copies of the optimizer state keyed by parameter index, plus the hyper-parameters as JSON. */
  stateDict(): OptimizerStateDict {
    const tensors: Record<string, Tensor> = {};
    const state: Record<string, { step: number }> = {};
    for (let i = 0; i < this.allParams.length; i++) {
      const s = this.nativeOpt.getState(i);
      if (!s) continue;
      state[String(i)] = { step: s.step };
      for (const [name, h] of Object.entries(s.tensors)) tensors[`state.${i}.${name}`] = new Tensor(h);
    }
    let offset = 0;
    const groups = this.paramGroups.map((g) => {
      const params = g.params.map((_, k) => offset + k);
      offset += g.params.length;
      return { ...g.options(), params };
    });
    return { tensors, meta: { kind: this.kind, groups, state } };
  }

  /** Restores a stateDict() of an optimizer of the same kind over parameters of the same shapes. */
  loadStateDict(sd: OptimizerStateDict): void {
    const { meta, tensors } = sd;
    if (meta.kind !== this.kind) throw new Error(`${this.kind}.loadStateDict: state is for ${meta.kind}`);
    if (meta.groups.length !== this.paramGroups.length) {
      throw new Error(
        `${this.kind}.loadStateDict: state has ${meta.groups.length} parameter groups, optimizer has ${this.paramGroups.length}`,
      );
    }
    meta.groups.forEach((g, i) => {
      if (g.params.length !== this.paramGroups[i]!.params.length) {
        throw new Error(
          `${this.kind}.loadStateDict: group ${i} has ${g.params.length} parameters in the state, ${this.paramGroups[i]!.params.length} here`,
        );
      }
    });
    const byIndex = new Map<number, Record<string, Tensor>>();
    for (const [key, t] of Object.entries(tensors)) {
      const m = /^state\.(\d+)\.(\w+)$/.exec(key);
      if (!m) throw new Error(`${this.kind}.loadStateDict: unexpected tensor '${key}'`);
      const i = Number(m[1]);
      if (!(String(i) in meta.state)) throw new Error(`${this.kind}.loadStateDict: tensor '${key}' has no step entry`);
      const rec = byIndex.get(i) ?? {};
      rec[m[2]!] = t;
      byIndex.set(i, rec);
    }
    for (const [key, s] of Object.entries(meta.state)) {
      const i = Number(key);
      if (!Number.isInteger(i) || i < 0 || i >= this.allParams.length)
        throw new Error(`${this.kind}.loadStateDict: parameter index ${key} out of range`);
      const rec = byIndex.get(i) ?? {};
      this.nativeOpt.setState(i, s.step, Object.fromEntries(Object.entries(rec).map(([n, t]) => [n, t.handle])));
    }
    meta.groups.forEach((g, i) => {
      const view = this.paramGroups[i]!;
      view.lr = g.lr;
      view.weightDecay = g.weightDecay;
    });
  }
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

export class SGD extends Optimizer {
  constructor(params: Tensor[] | ParamGroup[], o: SGDOptions) {
    if (o.nesterov && (!o.momentum || (o.dampening ?? 0) !== 0))
      throw new Error('SGD: Nesterov momentum needs momentum > 0 and dampening 0');
    super('SGD', params, {
      lr: o.lr,
      weightDecay: o.weightDecay ?? 0,
      momentum: o.momentum ?? 0,
      dampening: o.dampening ?? 0,
      nesterov: o.nesterov ?? false,
      beta1: 0,
      beta2: 0,
      eps: 0,
      amsgrad: false,
    });
  }
}

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
}

function adamDefaults(o: AdamOptions, wd: number): Hyper {
  const [b1, b2] = o.betas ?? [0.9, 0.999];
  if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) throw new RangeError(`Adam: betas must be in [0, 1), got [${b1}, ${b2}]`);
  return {
    lr: o.lr ?? 1e-3,
    weightDecay: o.weightDecay ?? wd,
    momentum: 0,
    dampening: 0,
    nesterov: false,
    beta1: b1,
    beta2: b2,
    eps: o.eps ?? 1e-8,
    amsgrad: o.amsgrad ?? false,
  };
}

/** Adam; weightDecay adds an L2 term to the gradient (torch.optim.Adam). */
export class Adam extends Optimizer {
  constructor(params: Tensor[] | ParamGroup[], o: AdamOptions = {}) {
    super('Adam', params, adamDefaults(o, 0));
  }
}

/** AdamW: decoupled weight decay (default 0.01, like PyTorch). */
export class AdamW extends Optimizer {
  constructor(params: Tensor[] | ParamGroup[], o: AdamOptions = {}) {
    super('AdamW', params, adamDefaults(o, 0.01));
  }
}

/** Scales gradients so their joint p-norm is at most maxNorm; returns the norm before scaling. */
export function clipGradNorm(params: Tensor[], maxNorm: number, normType = 2): number {
  return native.clipGradNorm(
    params.map((p) => p.handle),
    maxNorm,
    normType,
  );
}

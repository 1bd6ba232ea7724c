/**
 * `Module`: the base of every layer and network, after PyTorch's `torch.nn.Module`.
 *
 * Parameters, buffers and child modules are registered explicitly, by name, in ordered maps; the
 * dotted names of `namedParameters()` / `stateDict()` come from walking that tree. Registered
 * names follow PyTorch's (`weight`, `running_mean`, ...) so state dicts are interchangeable with
 * PyTorch's through safetensors, while the TypeScript fields are camelCase.
 *
 * Parameter tensors are never replaced: loading a state dict copies into them in place, so an
 * optimizer built on `parameters()` keeps working.
 */
import { keep, noGrad, type DType, type Tensor } from '../tensor/index.ts';
import { loadTensors, saveTensors } from './serialization.ts';

/** Glob on dotted names (`*` = one name segment or part of one, `**` = anything, `?` = one char) or a RegExp. */
export type NamePattern = string | RegExp;

export interface LoadStateDictOptions {
  /** Throw on any missing, unexpected or mismatched entry (default true). */
  strict?: boolean;
}

export interface StateDictMismatch {
  key: string;
  expected: { shape: number[]; dtype: DType };
  got: { shape: number[]; dtype: DType };
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
  mismatched: StateDictMismatch[];
}

/** Any module, whatever its forward signature (for containers and tree walks). */
// forward's parameters are checked bivariantly as a method, so every Module<I, O> fits here.
export type AnyModule = Module<never[], unknown>;

const NAME_RE = /^[^.]+$/;

function shapeStr(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^.]*';
    } else if (c === '?') re += '[^.]';
    else re += c.replace(/[\\^$+.()|{}[\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * Does a dotted parameter name match? A glob matches the whole name or a leading run of its
 * segments, so `encoder` or `encoder.*` selects everything under `encoder`. A RegExp is tested
 * against the whole name (search semantics, like `RegExp.test`).
 */
export function nameMatches(name: string, pattern: NamePattern): boolean {
  if (pattern instanceof RegExp) {
    // A fresh copy: a /g or /y pattern would otherwise carry lastIndex between calls.
    return new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, '')).test(name);
  }
  const re = globToRegExp(pattern);
  const parts = name.split('.');
  for (let k = parts.length; k >= 1; k--) if (re.test(parts.slice(0, k).join('.'))) return true;
  return false;
}

export abstract class Module<I extends unknown[] = [Tensor], O = Tensor> {
  /** True in training mode; see train()/eval(). */
  training = true;
  private readonly _parameters = new Map<string, Tensor | null>();
  private readonly _buffers = new Map<string, Tensor | null>();
  private readonly _nonPersistent = new Set<string>();
  private readonly _modules = new Map<string, AnyModule>();
  private _disposed = false;

  abstract forward(...inputs: I): O;

  /** Name shown in errors and `toString()`. */
  get typeName(): string {
    return this.constructor.name;
  }

  private checkName(kind: string, name: string): void {
    if (typeof name !== 'string' || !NAME_RE.test(name)) {
      throw new Error(`${this.typeName}: ${kind} name ${JSON.stringify(name)} must be non-empty and contain no "."`);
    }
    if (this._parameters.has(name) || this._buffers.has(name) || this._modules.has(name)) {
      throw new Error(`${this.typeName}: ${kind} name "${name}" is already registered`);
    }
  }

  private checkLive(): void {
    if (this._disposed) throw new Error(`${this.typeName}: module already disposed`);
  }

  /**
   * Register a trainable tensor. It is switched to requiresGrad (as `nn.Parameter` does); null
   * reserves the name (e.g. `bias` when bias=false) without a tensor. Registered tensors belong to
   * the module: they are exempt from `tidy` scopes (a model built inside one survives it) and are
   * freed by `dispose()`.
   */
  protected registerParameter<T extends Tensor | null>(name: string, t: T): T {
    this.checkName('parameter', name);
    if (t !== null) keep(t).requiresGrad_(true);
    this._parameters.set(name, t);
    return t;
  }

  /** Register a state tensor that is saved but not trained (running statistics, counters). */
  protected registerBuffer<T extends Tensor | null>(name: string, t: T, persistent = true): T {
    this.checkName('buffer', name);
    if (t !== null) keep(t);
    this._buffers.set(name, t);
    if (!persistent) this._nonPersistent.add(name);
    return t;
  }

  protected registerModule<M extends AnyModule>(name: string, m: M): M {
    this.checkName('module', name);
    if (!(m instanceof Module)) throw new Error(`${this.typeName}: "${name}" is not a Module`);
    this._modules.set(name, m);
    return m;
  }

  /** A directly registered parameter, buffer or child (undefined when absent). */
  getParameter(name: string): Tensor | null | undefined {
    return this._parameters.get(name);
  }

  getBuffer(name: string): Tensor | null | undefined {
    return this._buffers.get(name);
  }

  /** The module at a dotted path ('' is this module). */
  getSubmodule(path: string): AnyModule {
    let m: AnyModule = this as unknown as AnyModule;
    if (path === '') return m;
    for (const part of path.split('.')) {
      const next = m._modules.get(part);
      if (next === undefined) throw new Error(`${this.typeName}: no submodule "${path}" (stopped at "${part}")`);
      m = next;
    }
    return m;
  }

  /** This module and every descendant, pre-order, each once, with dotted names ('' for this). */
  namedModules(prefix = ''): [string, AnyModule][] {
    const out: [string, AnyModule][] = [];
    const seen = new Set<AnyModule>();
    const walk = (m: AnyModule, p: string): void => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([p, m]);
      for (const [n, c] of m._modules) walk(c, p === '' ? n : `${p}.${n}`);
    };
    walk(this as unknown as AnyModule, prefix);
    return out;
  }

  modules(): AnyModule[] {
    return this.namedModules().map(([, m]) => m);
  }

  namedChildren(): [string, AnyModule][] {
    return [...this._modules];
  }

  children(): AnyModule[] {
    return [...this._modules.values()];
  }

  private namedMembers(kind: '_parameters' | '_buffers', recurse: boolean): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    const mods = recurse ? this.namedModules() : [['', this as unknown as AnyModule] as [string, AnyModule]];
    for (const [prefix, m] of mods) {
      for (const [n, t] of m[kind]) {
        if (t === null || seen.has(t)) continue;
        seen.add(t);
        out.push([prefix === '' ? n : `${prefix}.${n}`, t]);
      }
    }
    return out;
  }

  /** Parameters with dotted names, in registration order; a tensor shared by two modules appears once. */
  namedParameters(recurse = true): [string, Tensor][] {
    return this.namedMembers('_parameters', recurse);
  }

  parameters(recurse = true): Tensor[] {
    return this.namedParameters(recurse).map(([, t]) => t);
  }

  namedBuffers(recurse = true): [string, Tensor][] {
    return this.namedMembers('_buffers', recurse);
  }

  buffers(recurse = true): Tensor[] {
    return this.namedBuffers(recurse).map(([, t]) => t);
  }

  /** Drop every parameter's gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Set training mode on this module and every descendant. */
  train(mode = true): this {
    for (const m of this.modules()) m.setTrainingFlag(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Hook for layers that override how the training flag is applied (frozen BatchNorm). */
  protected setTrainingFlag(mode: boolean): void {
    this.training = mode;
  }

  /**
   * Stop training the parameters whose dotted names match (all when no pattern): requiresGrad
   * false, so optimizers skip them (they have no gradient). Throws when a pattern matches nothing,
   * which is almost always a typo.
   */
  freeze(pattern?: NamePattern): this {
    return this.setRequiresGrad(pattern, false);
  }

  unfreeze(pattern?: NamePattern): this {
    return this.setRequiresGrad(pattern, true);
  }

  private setRequiresGrad(pattern: NamePattern | undefined, value: boolean): this {
    let n = 0;
    for (const [name, t] of this.namedParameters()) {
      if (pattern === undefined || nameMatches(name, pattern)) {
        t.requiresGrad_(value);
        n++;
      }
    }
    if (n === 0 && pattern !== undefined) {
      throw new Error(`${this.typeName}: ${value ? 'unfreeze' : 'freeze'}(${String(pattern)}) matches no parameter`);
    }
    return this;
  }

  /**
   * Parameters and persistent buffers by dotted name. The tensors are the module's own (not copies):
   * do not dispose them; `clone()` one to keep a snapshot.
   */
  stateDict(): Record<string, Tensor> {
    this.checkLive();
    const sd: Record<string, Tensor> = {};
    for (const [prefix, m] of this.namedModules()) {
      const add = (n: string, t: Tensor | null): void => {
        if (t !== null) sd[prefix === '' ? n : `${prefix}.${n}`] = t;
      };
      for (const [n, t] of m._parameters) add(n, t);
      for (const [n, t] of m._buffers) if (!m._nonPersistent.has(n)) add(n, t);
    }
    return sd;
  }

  /**
   * Copy values from a state dict into this module's tensors (in place; the tensors stay the same
   * objects). Every missing key, unexpected key and shape/dtype mismatch is collected first; with
   * strict (the default) any of them throws one error listing all and nothing is copied. Non-strict
   * copies what matches and returns the rest.
   */
  loadStateDict(sd: Record<string, Tensor> | Map<string, Tensor>, options: LoadStateDictOptions = {}): LoadStateDictResult {
    this.checkLive();
    const strict = options.strict ?? true;
    const given = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const result: LoadStateDictResult = { missingKeys: [], unexpectedKeys: [], mismatched: [] };
    const toCopy: [Tensor, Tensor][] = [];
    for (const [key, dst] of Object.entries(own)) {
      const src = given.get(key);
      if (src === undefined) {
        result.missingKeys.push(key);
        continue;
      }
      const same = src.dtype === dst.dtype && src.shape.length === dst.shape.length && src.shape.every((s, i) => s === dst.shape[i]);
      if (!same) {
        result.mismatched.push({
          key,
          expected: { shape: dst.shape, dtype: dst.dtype },
          got: { shape: src.shape, dtype: src.dtype },
        });
        continue;
      }
      toCopy.push([dst, src]);
    }
    for (const key of given.keys()) if (!(key in own)) result.unexpectedKeys.push(key);
    const problems = describeLoadProblems(result);
    if (strict && problems.length > 0) {
      throw new Error(`${this.typeName}.loadStateDict: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
    }
    noGrad(() => {
      for (const [dst, src] of toCopy) if (dst !== src) dst.copy_(src);
    });
    return result;
  }

  /** Write the state dict to a safetensors file (atomically). */
  save(file: string, metadata?: Record<string, string>): void {
    saveTensors(file, this.stateDict(), metadata);
  }

  /** Load a state dict from a safetensors file; errors name the file. Returns the file's metadata. */
  load(file: string, options: LoadStateDictOptions = {}): { metadata: Record<string, string>; result: LoadStateDictResult } {
    const { tensors, metadata } = loadTensors(file);
    try {
      const result = this.loadStateDict(tensors, options);
      return { metadata, result };
    } catch (e) {
      throw new Error(`${file}: does not match this ${this.typeName}: ${(e as Error).message}`, { cause: e });
    } finally {
      for (const t of Object.values(tensors)) t.dispose();
    }
  }

  /** Free every parameter and buffer of this module and its descendants. */
  dispose(): void {
    if (this._disposed) return;
    const all = new Set<Tensor>();
    for (const m of this.modules()) {
      for (const t of m._parameters.values()) if (t !== null) all.add(t);
      for (const t of m._buffers.values()) if (t !== null) all.add(t);
    }
    for (const t of all) if (!t.isDisposed) t.dispose();
    for (const m of this.modules()) m._disposed = true;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Hyper-parameters shown by toString(), e.g. "2, 4, kernelSize=[3, 3]". */
  protected extraRepr(): string {
    return '';
  }

  toString(): string {
    const head = `${this.typeName}(${this.extraRepr()}`;
    if (this._modules.size === 0) return `${head})`;
    const lines = [...this._modules].map(([n, m]) => `  (${n}): ${m.toString().replace(/\n/g, '\n  ')}`);
    return `${head}\n${lines.join('\n')}\n)`;
  }
}

export function describeLoadProblems(r: LoadStateDictResult): string[] {
  return [
    ...r.missingKeys.map((k) => `missing key "${k}"`),
    ...r.unexpectedKeys.map((k) => `unexpected key "${k}"`),
    ...r.mismatched.map(
      (m) => `"${m.key}": expected ${m.expected.dtype} ${shapeStr(m.expected.shape)}, got ${m.got.dtype} ${shapeStr(m.got.shape)}`,
    ),
  ];
}

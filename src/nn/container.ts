/** Containers: Sequential (chained forward) and ModuleList (an indexed list of children). */
import type { Tensor } from '../tensor/index.ts';
import { Module, type AnyModule } from './module.ts';

/** A module that maps one tensor to one tensor (what Sequential can chain). */
export type TensorModule = Module<[Tensor], Tensor>;

/**
 * Children named "0", "1", ...; forward feeds each output to the next. Intermediate results are
 * disposed as soon as the next layer has consumed them (autograd keeps what it needs natively).
 */
export class Sequential extends Module {
  private readonly layers: TensorModule[] = [];

  constructor(...modules: TensorModule[]) {
    super();
    for (const m of modules) this.append(m);
  }

  append(m: TensorModule): this {
    this.registerModule(String(this.layers.length), m);
    this.layers.push(m);
    return this;
  }

  get length(): number {
    return this.layers.length;
  }

  at(i: number): TensorModule {
    const m = this.layers.at(i);
    if (m === undefined) throw new RangeError(`Sequential: index ${i} out of range (length ${this.layers.length})`);
    return m;
  }

  [Symbol.iterator](): Iterator<TensorModule> {
    return this.layers[Symbol.iterator]();
  }

  forward(x: Tensor): Tensor {
    let cur = x;
    for (const layer of this.layers) {
      const next = layer.forward(cur);
      // Free intermediates we made, never the caller's input, nor a tensor passed straight through.
      if (cur !== x && next !== cur) cur.dispose();
      cur = next;
    }
    return cur;
  }
}

/** Holds child modules in order (names "0", "1", ...); it has no forward of its own, as in PyTorch. */
export class ModuleList<M extends AnyModule = AnyModule> extends Module<never[], never> {
  private readonly items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.append(m);
  }

  append(m: M): this {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return this;
  }

  get length(): number {
    return this.items.length;
  }

  at(i: number): M {
    const m = this.items.at(i);
    if (m === undefined) throw new RangeError(`ModuleList: index ${i} out of range (length ${this.items.length})`);
    return m;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }

  forward(): never {
    throw new Error('ModuleList has no forward(); iterate over its modules instead');
  }
}

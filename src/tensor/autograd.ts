/** Autograd beyond Tensor.backward(): gradients of outputs with respect to chosen inputs. */
import { Tensor, native } from './tensor.ts';

export interface GradOptions {
  retainGraph?: boolean;
  /** Builds a graph of the gradient itself (for higher-order derivatives). */
  createGraph?: boolean;
  /** Returns null for an input the outputs do not depend on instead of throwing. */
  allowUnused?: boolean;
}

/** Like torch.autograd.grad: d(outputs)/d(inputs), weighted by gradOutputs (needed for non-scalars). */
export function grad(
  outputs: Tensor | Tensor[],
  inputs: Tensor | Tensor[],
  gradOutputs?: Tensor | Tensor[] | null,
  options: GradOptions = {},
): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const ins = Array.isArray(inputs) ? inputs : [inputs];
  const gos = gradOutputs ? (Array.isArray(gradOutputs) ? gradOutputs : [gradOutputs]) : null;
  const create = options.createGraph ?? false;
  const r = native.grad(
    outs.map((t) => t.handle),
    ins.map((t) => t.handle),
    gos ? gos.map((t) => t.handle) : null,
    options.retainGraph ?? create,
    create,
    options.allowUnused ?? false,
  );
  return r.map((g) => (g ? new Tensor(g) : null));
}

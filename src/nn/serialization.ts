/** Engine tensors to and from safetensors files (the format itself is in safetensors.ts). */
import { tensor, type Tensor } from '../tensor/index.ts';
import { readSafetensors, writeSafetensors, type StEntry } from './safetensors.ts';

/** Write tensors (any dtype the format supports) atomically; values are copied out of the engine. */
export function saveTensors(file: string, tensors: Record<string, Tensor> | Map<string, Tensor>, metadata?: Record<string, string>): void {
  const entries = new Map<string, StEntry>();
  for (const [name, t] of tensors instanceof Map ? tensors : Object.entries(tensors)) {
    entries.set(name, { dtype: t.dtype, shape: [...t.shape], data: t.toTypedArray() });
  }
  writeSafetensors(file, entries, metadata);
}

/**
 * Read every tensor of a safetensors file into new engine tensors (the caller owns and disposes
 * them). A bad file throws an error naming it before any tensor is made.
 */
export function loadTensors(file: string): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  const { tensors: entries, metadata } = readSafetensors(file);
  const tensors: Record<string, Tensor> = {};
  try {
    for (const [name, e] of entries) tensors[name] = tensor(e.data, e.shape, e.dtype);
  } catch (err) {
    for (const t of Object.values(tensors)) t.dispose();
    throw new Error(`${file}: cannot create tensor: ${(err as Error).message}`, { cause: err });
  }
  return { tensors, metadata };
}

/**
 * Reading a float32 tensor on the host without a copy where the backend allows it.
 *
 * `await t.data()` on wasm copies the values out of the wasm heap into a fresh array: 20-50 ms for
 * the generator's [304, 8192] logits of a `tiny` b16 step (allocation, page faults, GC), against
 * 0.4 ms to read a view of the heap in place.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

let enabled = true;

/** Lets {@link heapView} return heap views on wasm (default), or always copies (A/B timing). */
export function useHeapViews(on: boolean): void {
  enabled = on;
}

/**
 * A view of float32 tensor `t`'s values in the wasm heap (no copy), or null when the active backend
 * is not wasm (or views are off): then read it with `t.data()`. The view is valid only while `t`
 * lives and until the next tfjs call that allocates (growing the wasm memory detaches it): use it
 * at once, synchronously, and never write to it.
 */
export function heapView(t: tf.Tensor): Float32Array | null {
  if (t.dtype !== "float32") throw new Error(`heapView: expected a float32 tensor, got ${t.dtype}`);
  const backend = tf.backend() as unknown as { typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array };
  if (!enabled || tf.getBackend() !== "wasm" || !backend.typedArrayFromHeap) return null;
  return backend.typedArrayFromHeap(t);
}

/**
 * Dropout's keep/scale mask, drawn the same way on every backend: a counter-based hash of (seed,
 * element index), so the host loop here, the wasm kernel that writes it into the wasm heap, and the
 * cuda kernel (kernels.cu dropout_mask_f32) give identical masks, and a GPU draws every element in
 * parallel.
 *
 * Element i is kept (value 1/keep, keep = 1 − rate in float32) iff (h(i) >>> 8) ≥ round(rate·2²⁴),
 * else 0, where h(i) = mix(mix(i ^ k0) + k1), mix is the "lowbias32" integer finaliser (Wellons'
 * hash-prospector), and the keys (k0, k1) come from the seed. Each seed picks another pair of
 * permutations of the 32-bit counters, so masks of different seeds are unrelated (not shifted copies).
 *
 * Why not tf.dropout's own numbers: those come from seedrandom's Alea, a sequential generator (each
 * value waits on the previous one's carry), which a GPU cannot draw in parallel; drawing them on the
 * host cost 65 % of an electra-small b128 step on the cuda backend. This hash also runs ~2–3× faster
 * on the host than Alea did. (Runs written before this change resume with other masks.)
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { heapAddress, wasmSimdKernels } from "./wasm_simd.ts";

/** Name of the kernel (no inputs; attrs shape, rate, seed) that returns the mask as a float32 tensor. */
export const DROPOUT_MASK = "RtdlabDropoutMask";

/** The "lowbias32" integer finaliser (Wellons' hash-prospector) the mask hash is built from. */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The 32-bit hash of element `i` under keys (k0, k1): mix(mix(i ^ k0) + k1) — kernels.cu draws the same. */
export function dropoutHash(i: number, k0: number, k1: number): number {
  return mix32((mix32((i ^ k0) >>> 0) + k1) >>> 0);
}

/** What a mask kernel needs: the hash keys of `seed`, the integer threshold and the scale (see the module doc). */
export function dropoutParams(
  rate: number,
  seed: number,
): { k0: number; k1: number; threshold: number; scale: number } {
  if (!(rate >= 0 && rate < 1)) throw new Error(`dropout rate must be in [0, 1), got ${rate}`);
  if (!Number.isFinite(seed)) throw new Error(`dropout seed must be a finite number, got ${seed}`);
  const lo = seed >>> 0, hi = Math.floor(seed / 2 ** 32) >>> 0;
  const k0 = mix32(lo ^ mix32(hi ^ 0x9e3779b9));
  const k1 = mix32(k0 ^ 0x632be5ab);
  const keep = Math.fround(1 - rate);
  return { k0, k1, threshold: Math.round(rate * 2 ** 24), scale: Math.fround(1 / keep) };
}

/** Fills `out` with the dropout multiplier of `rate` and `seed` (1/keep where kept, else 0); see the module doc. */
export function fillDropoutMask(out: Float32Array, rate: number, seed: number): void {
  const { k0, k1, threshold, scale } = dropoutParams(rate, seed);
  const n = out.length;
  for (let i = 0; i < n; i++) {
    // mix(mix(i ^ k0) + k1), inlined: the loop is the whole cost.
    let x = i ^ k0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d);
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b);
    x ^= x >>> 16;
    x = (x + k1) | 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d);
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b);
    x ^= x >>> 16;
    out[i] = (x >>> 8) >= threshold ? scale : 0;
  }
}

function dropoutMaskKernel(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { shape, rate, seed } = args.attrs as unknown as { shape: number[]; rate: number; seed: number };
  const out = backend.makeOutput(shape, "float32");
  const simd = wasmSimdKernels(backend);
  if (simd) {
    const { k0, k1, threshold, scale } = dropoutParams(rate, seed);
    simd.dropout_mask(heapAddress(backend, out), tf.util.sizeFromShape(shape), k0, k1, threshold, scale);
  } else {
    fillDropoutMask(backend.typedArrayFromHeap(out) as Float32Array, rate, seed);
  }
  return out;
}

/** Kernel config of {@link DROPOUT_MASK} for the wasm backend (wasm SIMD where the engine has it). */
export const dropoutMaskConfig: tf.KernelConfig = {
  kernelName: DROPOUT_MASK,
  backendName: "wasm",
  kernelFunc: dropoutMaskKernel as tf.KernelFunc,
};

/**
 * `RtdlabDropout` on wasm: {x}, attrs rate, seed → x·mask in one pass, the mask never stored (the
 * gradient runs the same kernel on dy). The same bits as multiplying by {@link DROPOUT_MASK}'s tensor.
 * Registered by lib/backend/wasm_fused.ts.
 */
export function dropoutWasm(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { rate, seed } = args.attrs as unknown as { rate: number; seed: number };
  if (x == null || x.dtype !== "float32") {
    throw new Error("RtdlabDropout (wasm): input x must be a float32 tensor");
  }
  const n = tf.util.sizeFromShape(x.shape);
  // Allocate first: _malloc may grow the wasm memory, which detaches earlier views of the heap.
  const out = backend.makeOutput(x.shape, "float32");
  const { k0, k1, threshold, scale } = dropoutParams(rate, seed);
  const simd = wasmSimdKernels(backend);
  if (simd) {
    simd.dropout(heapAddress(backend, x), heapAddress(backend, out), n, k0, k1, threshold, scale);
  } else {
    const y = backend.typedArrayFromHeap(out) as Float32Array;
    fillDropoutMask(y, rate, seed);
    const xs = backend.typedArrayFromHeap(x) as Float32Array;
    for (let i = 0; i < n; i++) y[i] = xs[i] * y[i];
  }
  return out;
}

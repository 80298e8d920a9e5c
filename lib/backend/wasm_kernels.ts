/**
 * Kernels rtdlab adds to tfjs-backend-wasm 4.22.0.
 *
 * - `UnsortedSegmentSum` (missing): the gradient of `tf.gather` (embedding lookups, picking the
 *   label's log-probability) needs it. Written in JS over the wasm heap, the way
 *   tfjs-backend-wasm's own JS-side kernels (Identity, Unique) are; float32 sums run in wasm SIMD
 *   (wasm_simd.wat `segment_sum`, the same additions in the same order).
 * - `BatchMatMul`, `_FusedMatMul` (replaced, see wasm_matmul.ts): keep transposed and batched
 *   products on XNNPACK instead of the package's scalar fallback (10-60x faster there).
 * - `GatherV2` (replaced, see wasm_gather.ts): row copies in JS, ~30x faster embedding lookups.
 * - `Sum` (replaced, see wasm_reduce.ts): the package's float32 adds in the same order, in wasm SIMD.
 * - `Identity` and same-dtype `Cast` (replaced, see wasm_fused.ts): share memory instead of copying,
 *   as the cpu backend's do (autodiff clones every tensor it saves; `mul`'s gradient casts float32
 *   to float32). Always on: it is how tfjs's other backends behave rather than a faster variant.
 * - rtdlab's fused GELU, LayerNorm and dropout kernels (forward and backward) and the dropout-mask
 *   kernel (wasm_fused.ts, wasm_layer_norm.ts, dropout_mask.ts), which lib/model/layers.ts calls on
 *   wasm; their loops run as wasm SIMD (wasm_simd.wat) on tfjs's own heap.
 *
 * Other kernels wasm lacks (Einsum, FFT/complex, Conv2DBackpropFilter, depthwise-conv gradients,
 * Ragged*, StaticRegexReplace, Draw) are not on a transformer's training path; use tf.matMul
 * instead of tf.einsum (which has no gradient on any backend anyway).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
// Type-only: importing the backend here must not load it (lib/backend loads it lazily).
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { gatherConfigs } from "./wasm_gather.ts";
import { matMulConfigs } from "./wasm_matmul.ts";
import { sumConfigs } from "./wasm_reduce.ts";
import { FUSED_KERNELS, sharingKernelConfigs } from "./wasm_fused.ts";
import { LAYER_NORM_KERNELS } from "./wasm_layer_norm.ts";
import { heapAddress, wasmSimdKernels } from "./wasm_simd.ts";

/** Sums the rows of `x` that share a segment id: out[s, ...] = Σ_{i: ids[i] = s} x[i, ...]. */
export function unsortedSegmentSum(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, segmentIds } = args.inputs as tf.UnsortedSegmentSumInputs;
  const numSegments = (args.attrs as unknown as tf.UnsortedSegmentSumAttrs | undefined)?.numSegments;
  if (x == null || segmentIds == null) {
    throw new Error("UnsortedSegmentSum (wasm): inputs x and segmentIds are required");
  }
  if (numSegments == null || !Number.isInteger(numSegments) || numSegments < 0) {
    throw new Error(
      `UnsortedSegmentSum (wasm): numSegments must be a non-negative integer, got ${numSegments}`,
    );
  }
  if (segmentIds.dtype !== "int32") {
    throw new Error(`UnsortedSegmentSum (wasm): segmentIds must be int32, got ${segmentIds.dtype}`);
  }
  if (x.dtype !== "float32" && x.dtype !== "int32") {
    throw new Error(`UnsortedSegmentSum (wasm): x must be float32 or int32, got ${x.dtype}`);
  }
  const idsRank = segmentIds.shape.length;
  if (!segmentIds.shape.every((d, i) => d === x.shape[i])) {
    throw new Error(
      `UnsortedSegmentSum (wasm): segmentIds shape [${segmentIds.shape}] must be a prefix of ` +
        `x shape [${x.shape}]`,
    );
  }
  const innerShape = x.shape.slice(idsRank);
  const inner = tf.util.sizeFromShape(innerShape);
  const numIds = tf.util.sizeFromShape(segmentIds.shape);

  // Allocate first: _malloc may grow the wasm memory, which detaches earlier views of the heap.
  const out = backend.makeOutput([numSegments, ...innerShape], x.dtype);
  const simd = x.dtype === "float32" ? wasmSimdKernels(backend) : null;
  if (simd) {
    // The loop below in wasm SIMD: the same additions in the same order (an embedding's gradient).
    const at = (t: tf.TensorInfo) => heapAddress(backend, t);
    simd.segment_sum(at(x), at(segmentIds), at(out), numIds, inner, numSegments);
    return out;
  }
  const outVals = backend.typedArrayFromHeap(out) as Float32Array | Int32Array;
  // malloc reuses freed blocks, so the output is not zeroed.
  outVals.fill(0);
  const xVals = backend.typedArrayFromHeap(x) as Float32Array | Int32Array;
  const ids = backend.typedArrayFromHeap(segmentIds) as Int32Array;
  for (let i = 0; i < numIds; i++) {
    const s = ids[i];
    // TensorFlow drops out-of-range ids (negative or >= numSegments) instead of failing.
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) outVals[dst + j] += xVals[src + j];
  }
  return out;
}

/** Kernel config for `UnsortedSegmentSum` on the wasm backend. */
export const unsortedSegmentSumConfig: tf.KernelConfig = {
  kernelName: tf.UnsortedSegmentSum,
  backendName: "wasm",
  kernelFunc: unsortedSegmentSum as tf.KernelFunc,
};

/**
 * Kernels rtdlab adds to wasm: one the package lacks, and its fused ones (LayerNorm's run where its
 * wasm SIMD module can; elsewhere layers.ts runs the plain ops).
 */
export const WASM_EXTRA_KERNELS: readonly tf.KernelConfig[] = [
  unsortedSegmentSumConfig,
  ...FUSED_KERNELS,
  ...LAYER_NORM_KERNELS,
];

/** Options for registerWasmKernels. */
export interface WasmKernelOptions {
  /** Replace the package's BatchMatMul, _FusedMatMul, GatherV2 and Sum with rtdlab's (default true). */
  faster?: boolean;
}

/**
 * Registers rtdlab's wasm kernels; call after importing @tensorflow/tfjs-backend-wasm. Returns the
 * names it (re-)registered. Idempotent; `{ faster: false }` restores the package's own BatchMatMul,
 * _FusedMatMul, GatherV2 and Sum (the sharing Identity and Cast and the added kernels stay).
 */
export function registerWasmKernels(options: WasmKernelOptions = {}): string[] {
  const changed: string[] = [];
  for (const config of WASM_EXTRA_KERNELS) {
    // tfjs warns on re-registration, so skip what is there already.
    if (tf.getKernel(config.kernelName, config.backendName) != null) continue;
    tf.registerKernel(config);
    changed.push(config.kernelName);
  }
  for (const config of sharingKernelConfigs().fast) {
    if (tf.getKernel(config.kernelName, "wasm") === config) continue;
    tf.unregisterKernel(config.kernelName, "wasm");
    tf.registerKernel(config);
    changed.push(config.kernelName);
  }
  const swaps = [matMulConfigs(), gatherConfigs(), sumConfigs()];
  const want = swaps.flatMap(({ original, fast }) => (options.faster ?? true) ? fast : original);
  for (const config of want) {
    if (tf.getKernel(config.kernelName, "wasm") === config) continue;
    tf.unregisterKernel(config.kernelName, "wasm");
    tf.registerKernel(config);
    changed.push(config.kernelName);
  }
  // Kernel setup runs when a backend is created; if wasm already exists, run ours now.
  const live = (tf.engine().registry as Record<string, unknown>)["wasm"];
  if (live != null) {
    for (const config of [...WASM_EXTRA_KERNELS, ...want]) config.setupFunc?.(live);
  }
  return changed;
}

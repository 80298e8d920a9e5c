/**
 * A faster `GatherV2` (tf.gather) for the wasm backend.
 *
 * tfjs-backend-wasm 4.22.0's C++ gather computes strides per element: 8-15 ms to look up 2048
 * embedding rows of width 128 (30-60 ns per value). Copying whole rows out of the wasm heap with
 * TypedArray.set is ~30x faster, which matters because every step gathers token and position
 * embeddings for two models. DeBERTa's relative scores gather single values ([16, 16256] → [16, 16384]
 * eight times a `deberta-mini` b8 step): one loop over 32-bit words for float32 and int32 alike keeps
 * V8's loads monomorphic, 0.34 ms a call where one loop over either array type took 1.2 ms in a step
 * (2026-12-06; ~7 % of that step). Embedding lookups (rows of 8 values or more, axis 0) copy each row
 * with one wasm `memory.copy` (wasm_simd.wat `copy_rows`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { heapAddress, wasmSimdKernels } from "./wasm_simd.ts";
import { kernelSwap } from "./wasm_replace.ts";

let original: tf.KernelConfig | null = null;
let configs: { original: tf.KernelConfig[]; fast: tf.KernelConfig[] } | null = null;

type Values = Float32Array | Int32Array;

/** GatherV2 for wasm in JS over the heap; same results and errors as the package's kernel. */
export function gatherV2(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
  const { axis, batchDims } = args.attrs as unknown as tf.GatherV2Attrs;
  // Other element types (bool, string, complex) are rare on a training path: the package's kernel.
  if ((x.dtype !== "float32" && x.dtype !== "int32") || indices.dtype !== "int32") {
    return original!.kernelFunc(args) as tf.TensorInfo;
  }
  const parsedAxis = tf.util.parseAxisParam(axis, x.shape)[0];
  const axisDim = x.shape[parsedAxis];
  const ids = backend.typedArrayFromHeap(indices) as Int32Array;
  for (let i = 0; i < ids.length; i++) {
    const index = ids[i];
    if (!(index >= 0 && index <= axisDim - 1)) {
      throw new Error(`GatherV2: the index value ${index} is not in [0, ${axisDim - 1}]`);
    }
  }
  const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(
    x as tf.Tensor,
    indices as tf.Tensor,
    parsedAxis,
    batchDims,
  );
  const { batchSize, outerSize, dimSize, sliceSize } = info;
  const perBatch = ids.length / batchSize;
  // Allocate before taking heap views: _malloc may grow (and so detach) the wasm memory.
  const out = backend.makeOutput(info.outputShape, x.dtype);
  if (tf.util.sizeFromShape(info.outputShape) === 0) return out;
  const simd = batchSize === 1 && outerSize === 1 && sliceSize >= 8 ? wasmSimdKernels(backend) : null;
  if (simd) {
    // An embedding lookup: one memory.copy per row in wasm (1,024 rows of 128: 1.1 → 0.1 ms).
    const at = (t: tf.TensorInfo) => heapAddress(backend, t);
    simd.copy_rows(at(x), at(out), at(indices), ids.length, sliceSize * 4);
    return out;
  }
  const src = backend.typedArrayFromHeap(x) as Values;
  const dst = backend.typedArrayFromHeap(out) as Values;
  const idx = backend.typedArrayFromHeap(indices) as Int32Array;
  // One element type in the loop keeps V8's loads monomorphic: float32 and int32 move as 32-bit words.
  copyRows(words(src), words(dst), idx, batchSize, outerSize, dimSize, sliceSize, perBatch);
  return out;
}

function words(a: Values): Int32Array {
  return a instanceof Int32Array ? a : new Int32Array(a.buffer, a.byteOffset, a.length);
}

/** dst[b, r, k, :] = src[b, r, idx[b, k], :] over 32-bit words. */
function copyRows(
  src: Int32Array,
  dst: Int32Array,
  idx: Int32Array,
  batchSize: number,
  outerSize: number,
  dimSize: number,
  sliceSize: number,
  perBatch: number,
): void {
  let o = 0;
  for (let b = 0; b < batchSize; b++) {
    const ids = idx.subarray(b * perBatch, (b + 1) * perBatch);
    for (let r = 0; r < outerSize; r++) {
      const base = (b * outerSize + r) * dimSize;
      if (sliceSize === 1) {
        // DeBERTa's relative scores pick single values (262k a call at deberta-mini b8).
        for (let k = 0; k < perBatch; k++) dst[o++] = src[base + ids[k]];
        continue;
      }
      for (let k = 0; k < perBatch; k++) {
        const from = (base + ids[k]) * sliceSize;
        // set() has a fixed cost; below a few values a loop is faster.
        if (sliceSize > 8) dst.set(src.subarray(from, from + sliceSize), o);
        else for (let j = 0; j < sliceSize; j++) dst[o + j] = src[from + j];
        o += sliceSize;
      }
    }
  }
}

/**
 * The package's GatherV2 config and rtdlab's replacement (first call after importing the wasm
 * package; the replacement falls back to the package's kernel for tensors other than float32 and int32).
 */
export function gatherConfigs(): { original: tf.KernelConfig[]; fast: tf.KernelConfig[] } {
  if (configs != null) return configs;
  const swap = kernelSwap(tf.GatherV2, gatherV2 as tf.KernelFunc);
  original = swap.original;
  configs = { original: [swap.original], fast: [swap.fast] };
  return configs;
}

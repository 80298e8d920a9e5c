/**
 * A faster `Sum` for the wasm backend, with the package's bits.
 *
 * tfjs-backend-wasm 4.22.0 sums each output value in one chain of float32 adds (`sum = 0; sum += x`
 * in index order), after transposing the reduced axes innermost. That chain is latency-bound: the
 * logSumExp of the generator's cross-entropy sums [152, 8,192] logits per `tiny` b8 step in ~1.8 ms,
 * and the output bias's gradient (a sum over the first axis) pays a 1.2 M-value transpose first.
 * rtdlab's kernel does the same adds in the same order, so the same bits, in wasm SIMD
 * (wasm_simd.wat): four rows' chains side by side for the innermost axes (`row_sums`), and column
 * sums straight from the untransposed rows for the outermost ones (`column_sums`). Other reductions
 * (middle axes, axes given out of order or repeated, int32, no SIMD) go to the package's kernel.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { heapAddress, wasmSimdKernels } from "./wasm_simd.ts";
import { kernelSwap } from "./wasm_replace.ts";

let original: tf.KernelConfig | null = null;
let configs: { original: tf.KernelConfig[]; fast: tf.KernelConfig[] } | null = null;

/** Counts the Sum calls that ran rtdlab's SIMD path (tests check that it really ran). */
export let simdSums = 0;

/** `Sum` for wasm: float32 over the innermost or the outermost axes in wasm SIMD, else the package's. */
export function sum(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
  const simd = x.dtype === "float32" ? wasmSimdKernels(backend) : null;
  if (simd == null) return original!.kernelFunc(args) as tf.TensorInfo;
  const rank = x.shape.length;
  // In the order given: the package sums the reduced axes in that order (tests/wasm_simd_test.ts).
  const axes = tf.util.parseAxisParam(axis, x.shape);
  const innermost = axes.every((a, i) => a === rank - axes.length + i);
  const outermost = axes.every((a, i) => a === i);
  if (!innermost && !outermost) return original!.kernelFunc(args) as tf.TensorInfo;
  const reduceSize = tf.util.sizeFromShape(axes.map((a) => x.shape[a]));
  const outShape = x.shape.filter((_, i) => !axes.includes(i));
  const outSize = tf.util.sizeFromShape(outShape);
  const out = backend.makeOutput(outShape, "float32");
  // An empty reduction sums to 0 (the package's kernel leaves such an output unwritten).
  if (outSize > 0) {
    const at = (t: tf.TensorInfo) => heapAddress(backend, t);
    if (innermost) simd.row_sums(at(x), at(out), outSize, reduceSize);
    else simd.column_sums(at(x), at(out), reduceSize, outSize);
    simdSums++;
  }
  if (keepDims) out.shape = tf.backend_util.expandShapeToKeepDim(out.shape, axes);
  return out;
}

/** The package's Sum config and rtdlab's replacement (first call after importing the wasm package). */
export function sumConfigs(): { original: tf.KernelConfig[]; fast: tf.KernelConfig[] } {
  if (configs != null) return configs;
  const swap = kernelSwap(tf.Sum, sum as tf.KernelFunc);
  original = swap.original;
  configs = { original: [swap.original], fast: [swap.fast] };
  return configs;
}

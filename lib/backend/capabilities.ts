/**
 * What a tfjs backend can do, for the decisions lib/model and lib/train make per backend: they ask
 * for a capability instead of testing the backend's name, so a new backend states its traits here once.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { DROPOUT_MASK } from "./dropout_mask.ts";
import { fusedKernelsActive } from "./fused_kernels.ts";
import { activeBlas } from "./wasm_matmul.ts";

/** Traits of one backend (see {@link capabilities}). */
export interface BackendCapabilities {
  /**
   * Tensor memory lives in this process and can be read and written in place (the wasm heap, the cpu
   * backend's arrays): a loop over host memory beats a chain of small kernels (AdamW's update).
   */
  hostMemory: boolean;
  /**
   * Column sums ([rows, cols] → [cols]) are cheapest as a one-segment UnsortedSegmentSum, not a ones-row
   * matMul (wasm without OpenBLAS: XNNPACK repacks the operand on every call).
   */
  segmentSumColumnSums: boolean;
  /** Bytes a step's activations may take when the backend's heap is bounded (wasm: 3 of its 4 GB), else null. */
  activationBudgetBytes: number | null;
  /** Dropout masks come from rtdlab's mask kernel (wasm heap, cuda device) rather than a host fill and upload. */
  dropoutMaskKernel: boolean;
}

/** The capabilities of backend `name` (default: the active one). */
export function capabilities(name: string = tf.getBackend()): BackendCapabilities {
  const wasm = name === "wasm";
  return {
    hostMemory: wasm || name === "cpu",
    segmentSumColumnSums: wasm && activeBlas() == null,
    activationBudgetBytes: wasm ? 3 * 2 ** 30 : null,
    dropoutMaskKernel: wasm ? fusedKernelsActive("dropoutMask") : tf.getKernel(DROPOUT_MASK, name) != null,
  };
}

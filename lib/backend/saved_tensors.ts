/**
 * Side-effect module: the tensors tfjs's autodiff saves for the backward pass, made without a kernel call.
 *
 * Every kernel and `tf.customGrad` recorded on a gradient tape saves some of its inputs and outputs for
 * its gradient, and tfjs-core (engine.ts `clone`, its only caller those saves) makes each saved copy
 * through the whole engine: a run of the `Identity` kernel with its scope and bookkeeping, plus a tape
 * node of its own, so that a second-order gradient can flow back through the copy. A `tiny` GDES step
 * saves ~280 tensors this way and an ELECTRA-Small one ~600, a third of all tfjs calls in the step.
 *
 * Here, for a first-order gradient (the only order the trainers take), the copy is made by calling the
 * backend's `Identity` kernel directly (every rtdlab backend's shares the memory, reference-counted)
 * and wrapping its result in a tensor: the same saved tensor, the same numbers, with no engine run and
 * no tape node. For higher-order gradients (`tf.grad` inside `tf.grad`) tfjs-core's own `clone` runs,
 * tape node included. Measured on the null cuda device (count_launches.ts `hostTimePerStep`), `tiny`
 * GDES b32: the host's own time per step falls by ~10 % (6.1–8.2 → 5.3–6.5 ms, three interleaved runs).
 *
 * Imported by lib/backend/tfjs_full.ts, so every module that trains has it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** The tfjs-core engine internals this module touches (tfjs-core 4.22 engine.ts). */
interface EngineInternals {
  state: { gradientDepth: number };
  backendName: string;
  backend: tf.KernelBackend;
  clone(x: tf.Tensor): tf.Tensor;
  makeTensorFromTensorInfo(info: tf.TensorInfo, backend?: tf.KernelBackend): tf.Tensor;
}

const engine = tf.engine() as unknown as EngineInternals;
const tfjsClone = engine.clone;
let enabled = true;

/** Saved tensors without an engine run (default), or through tfjs-core's own `clone` (A/B measurements). */
export function useDirectSaves(on: boolean): void {
  enabled = on;
}

engine.clone = function (this: EngineInternals, x: tf.Tensor): tf.Tensor {
  // A second-order gradient flows back through the saved copy: it needs tfjs's tape node.
  if (!enabled || this.state.gradientDepth !== 1) return tfjsClone.call(this, x);
  const identity = tf.getKernel(tf.Identity, this.backendName);
  if (identity == null) return tfjsClone.call(this, x);
  const out = identity.kernelFunc({ inputs: { x }, backend: this.backend, attrs: {} });
  // tfjs-node's kernels may return a Tensor already (it has a rank; a TensorInfo has none).
  if ((out as tf.Tensor).rank != null) return out as tf.Tensor;
  return this.makeTensorFromTensorInfo(out as tf.TensorInfo);
};

/**
 * Side-effect module: the tensors tfjs's autodiff saves for the backward pass, made without a kernel call.
 *
 * Every kernel and `tf.customGrad` recorded on a gradient tape saves some of its inputs and outputs for
 * its gradient, and tfjs-core (engine.ts `clone`, whose only callers are those saves) makes each saved
 * copy through the whole engine: a run of the `Identity` kernel with its scope and bookkeeping, plus a
 * tape node of its own, so that a higher-order gradient can flow back through the copy. A `tiny` GDES
 * step saves ~280 tensors this way and an ELECTRA-Small one ~600, a third of all tfjs calls in the step.
 *
 * Here, on a first-order tape (the only order the trainers take), the copy is made by calling the
 * backend's `Identity` kernel directly (every rtdlab backend's shares the memory, reference-counted)
 * and wrapping its result in a tensor: the same saved tensor, the same numbers, with no engine run and
 * no tape node. The tape nodes are owed, not dropped: when a gradient starts inside the taped function
 * (`tf.grad` inside `tf.grad`, `tf.variableGrads` inside a function being differentiated), it may
 * differentiate through the ops taped so far, so each copy made until then gets the tape node tfjs's
 * `clone` would have given it, before the nested tape starts; inside it tfjs-core's own `clone` runs.
 * Measured on the null cuda device (count_launches.ts `hostTimePerStep`, GPU_RUNS.md): `tiny` GDES b32,
 * the host's own time per step 6.3–9.2 → 5.4–5.9 ms, and 5.4–8.3 → 4.5–5.2 ms in a later run (medians of three
 * interleaved runs each).
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
  startTape(): void;
  makeTensorFromTensorInfo(info: tf.TensorInfo, backend?: tf.KernelBackend): tf.Tensor;
  addTapeNode(
    kernelName: string,
    inputs: tf.NamedTensorMap,
    outputs: tf.Tensor[],
    gradientsFunc: null,
    saved: tf.Tensor[],
    attrs: tf.NamedAttrMap,
  ): void;
}

const engine = tf.engine() as unknown as EngineInternals;
const tfjsClone = engine.clone;
const tfjsStartTape = engine.startTape;
let enabled = true;
/** [source, copy] of each direct save on the current first-order tape: the tape nodes owed to them. */
let owed: [tf.Tensor, tf.Tensor][] = [];

/** Saved tensors without an engine run (default), or through tfjs-core's own `clone` (A/B measurements). */
export function useDirectSaves(on: boolean): void {
  enabled = on;
}

engine.clone = function (this: EngineInternals, x: tf.Tensor): tf.Tensor {
  if (!enabled || this.state.gradientDepth !== 1) return tfjsClone.call(this, x);
  const identity = tf.getKernel(tf.Identity, this.backendName);
  if (identity == null) return tfjsClone.call(this, x);
  const out = identity.kernelFunc({ inputs: { x }, backend: this.backend, attrs: {} });
  // tfjs-node's kernels may return a Tensor already (it has a rank; a TensorInfo has none).
  const y = (out as tf.Tensor).rank != null
    ? out as tf.Tensor
    : this.makeTensorFromTensorInfo(out as tf.TensorInfo);
  owed.push([x, y]);
  return y;
};

engine.startTape = function (this: EngineInternals): void {
  if (this.state.gradientDepth === 0) {
    owed = []; // a new outermost tape: the last one's copies are nothing's to differentiate through
  } else {
    // A nested gradient: the copies saved so far get the nodes that link them back to their sources, as
    // tfjs's clone gives them (Identity's gradient), after the ops that saved them and before any op that
    // the nested gradient's backward pass will tape.
    for (const [x, y] of owed) this.addTapeNode(tf.Identity, { x }, [y], null, [], {});
    owed = [];
  }
  tfjsStartTape.call(this);
};

/**
 * `stopGradient`: the sg() of GDES (E_D = sg(E_G) + E_Δ). tfjs has no such op.
 *
 * Backend-independent: built from tf.customGrad, so it works wherever the kernels it uses
 * (Identity, ZerosLike) exist, which is every backend.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

// The forward returns a clone, not `x` itself: the tape keys nodes by tensor id, and an output
// that is its own input would make the op invisible (or circular) to backprop.
const sg = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  return { value: x.clone(), gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.zerosLike(dy as tf.Tensor) };
});

/** Identity in the forward pass, zero gradient in the backward pass (TensorFlow's tf.stop_gradient). */
export const stopGradient = (x: tf.Tensor): tf.Tensor => sg(x) as tf.Tensor;

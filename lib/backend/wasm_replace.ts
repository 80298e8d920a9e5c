/**
 * How rtdlab swaps one of tfjs-backend-wasm's kernels for its own (GatherV2, Sum): the package's config,
 * kept for fallbacks and for `registerWasmKernels({ faster: false })`, and the replacement, which
 * shares the package's setup and dispose.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** The package's config for `kernelName` on wasm and a replacement running `kernelFunc`. */
export interface KernelSwap {
  original: tf.KernelConfig;
  fast: tf.KernelConfig;
}

/** {@link KernelSwap} for `kernelName`; throws when the wasm package has not registered it yet. */
export function kernelSwap(kernelName: string, kernelFunc: tf.KernelFunc): KernelSwap {
  const original = tf.getKernel(kernelName, "wasm");
  if (original == null) {
    throw new Error(`${kernelName} is not registered for wasm: import @tensorflow/tfjs-backend-wasm first`);
  }
  return {
    original,
    fast: {
      kernelName,
      backendName: "wasm",
      kernelFunc,
      setupFunc: original.setupFunc,
      disposeFunc: original.disposeFunc,
    },
  };
}

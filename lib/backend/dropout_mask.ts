/**
 * tf.dropout's keep/scale mask, drawn without tfjs: the same numbers (tfjs draws them from
 * seedrandom's Alea seeded with String(seed), then computes floor(u + keep) / keep in float32), in
 * one pass, plus a wasm kernel that writes the mask straight into the wasm heap.
 *
 * Why: a `tiny` b16 step draws ~6M mask values. The plain loop took ~10.5 ns per value (its carry
 * chain: an int→double conversion, a multiply, an add and a truncation per value, each waiting on
 * the last), and building the mask in a fresh Float32Array and uploading it added page faults, GC
 * and a copy. Taking the carry from the high part alone (exact, see below) gives ~7.5 ns; writing
 * into the heap drops the copy.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

/** Name of the wasm kernel (no inputs; attrs shape, rate, seed) that returns the mask as a float32 tensor. */
export const DROPOUT_MASK = "RtdlabDropoutMask";

/**
 * Fills `out` with tf.dropout(·, rate, undefined, seed)'s multiplier: 1/keep where kept, else 0
 * (keep = 1 − rate, both rounded to float32 as tfjs does).
 */
export function fillDropoutMask(out: Float32Array, rate: number, seed: number): void {
  const keep = Math.fround(1 - rate);
  const scale = Math.fround(1 / keep);
  // Alea (Johannes Baagøe), exactly as seedrandom 3.0.5's lib/alea.js.
  let mashN = 0xefc8249d;
  const mash = (data: string) => {
    for (let i = 0; i < data.length; i++) {
      mashN += data.charCodeAt(i);
      let h = 0.02519603282416938 * mashN;
      mashN = h >>> 0;
      h -= mashN;
      h *= mashN;
      mashN = h >>> 0;
      h -= mashN;
      mashN += h * 0x100000000;
    }
    return (mashN >>> 0) * 2.3283064365386963e-10;
  };
  let s0 = mash(" "), s1 = mash(" "), s2 = mash(" "), c = 1;
  const key = String(seed);
  s0 -= mash(key);
  if (s0 < 0) s0 += 1;
  s1 -= mash(key);
  if (s1 < 0) s1 += 1;
  s2 -= mash(key);
  if (s2 < 0) s2 += 1;
  const n = out.length;
  for (let i = 0; i < n; i++) {
    // Alea's t = 2091639·s0 + c·2⁻³², c = floor(t). c·2⁻³² < 4.9e-4 (c < 2091640), so floor(t) equals
    // floor(2091639·s0) unless that product's fraction exceeds 0.999: the carry then does not wait
    // on the previous value's carry, which shortens the loop's dependency chain. Same numbers.
    const u = 2091639 * s0;
    const t = u + c * 2.3283064365386963e-10;
    let carry = u | 0;
    if (u - carry > 0.999) carry = t | 0;
    s0 = s1;
    s1 = s2;
    s2 = t - carry;
    c = carry;
    // float32 u + keep, floored: 1 (kept, scaled by 1/keep) or 0 (dropped).
    out[i] = Math.fround(Math.fround(s2) + keep) >= 1 ? scale : 0;
  }
}

function dropoutMaskKernel(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { shape, rate, seed } = args.attrs as unknown as { shape: number[]; rate: number; seed: number };
  const out = backend.makeOutput(shape, "float32");
  fillDropoutMask(backend.typedArrayFromHeap(out) as Float32Array, rate, seed);
  return out;
}

/** Kernel config of {@link DROPOUT_MASK} for the wasm backend. */
export const dropoutMaskConfig: tf.KernelConfig = {
  kernelName: DROPOUT_MASK,
  backendName: "wasm",
  kernelFunc: dropoutMaskKernel as tf.KernelFunc,
};

/**
 * Fused kernels for the wasm backend over the wasm heap: exact GELU, forward and backward (wasm SIMD,
 * lib/backend/wasm_simd.wat, with this file's JS loops where an engine lacks SIMD: the same bits);
 * and `Identity` and same-dtype `Cast` that share memory instead of copying it. LayerNorm and dropout:
 * lib/backend/wasm_layer_norm.ts, dropout_mask.ts.
 *
 * Why: GELU was 5 tfjs kernels forward and 8 backward, and wasm's Erf (a scalar erff) alone costs
 * 7-14 ns per value; one JS pass each way with Φ from a table costs ~6, the same pass in wasm SIMD
 * ~1.9. And tfjs's autodiff clones every tensor it saves for the backward pass (`Identity`; 431 per
 * `tiny` b16 step) and `mul`'s gradient casts float32 to float32 (`Cast`; ~40 per step), which the
 * wasm package implements as copies; the cpu backend shares the data, and so do these.
 *
 * GELU's values differ from the unfused ops' by float32 rounding, not bit for bit (they round
 * 1 + erf to float32, ±6e-8; the table is within 2e-9 of Φ). LayerNorm in JS was tried and dropped:
 * bit-identical to the unfused ops it was slower than them (float32 rounding after every add is a
 * chain of conversions in JS), and in float64 it was ~13% faster alone but no faster in a step; in
 * wasm SIMD, where float32 is native, it is bit-identical and faster (wasm_layer_norm.ts). So was
 * the generator's softmax cross-entropy (cuda has it): one JS pass with Math.exp took 232 ms forward
 * at 608 × 30522 logits (ELECTRA-Small b32) against 108 ms for the unfused ops (wasm's SIMD Exp).
 * So was DeBERTa's relative-score gather with its gradient as sums of runs (cuda's
 * `RtdlabRelativeBucketSum`, in JS): 0.81-0.85 ms per [16, 128, 128] gradient against ~0.8 ms for
 * tfjs's two transposes and segment sum, and no faster `deberta-mini` b8 step (2026-12-06). The forward
 * gather's 2–3 ms a call in `bench --profile` was real, not warm-up: one JS loop over Float32Array and
 * Int32Array alike made V8's loads polymorphic; wasm_gather.ts now copies 32-bit words (0.34 ms).
 *
 * layers.ts calls these through tf.customGrad ops (contracts and the on/off switch:
 * lib/backend/fused_kernels.ts) and falls back to the plain tensor ops on backends without them.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { dropoutMaskConfig, dropoutWasm } from "./dropout_mask.ts";
import { FUSED } from "./fused_kernels.ts";
import { heapAddress, heapConstant, wasmSimdKernels } from "./wasm_simd.ts";

type Args = Parameters<tf.KernelFunc>[0];

function f32(backend: BackendWasm, t: tf.TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(t) as Float32Array;
}

/** Throws naming the kernel and the input unless every one of `inputs` is a float32 tensor. */
export function checkFloat(name: string, inputs: tf.NamedTensorInfoMap): void {
  for (const [k, t] of Object.entries(inputs)) {
    if (t == null || t.dtype !== "float32") {
      throw new Error(`${name} (wasm): input ${k} must be a float32 tensor`);
    }
  }
}

// Φ(x) and GELU'(x) = Φ(x) + x·φ(x) as piecewise cubics (Taylor at the centres of 1/32-wide
// intervals over [−8, 8], beyond which Φ is 0 or 1 to 6e-16): ~6 flops and no exp per value.
// wasm's own Erf kernel (a scalar erff) costs 7-14 ns per value here and Math.exp 9-13 ns. The
// error of a cubic over |d| ≤ 1/64 is < 1e-8 absolute (tests/fused_kernels_test.ts), under the 6e-8
// to which the unfused ops round 1 + erf in float32.
const LIM = 8;
const PER = 32; // intervals per unit
const CUBES = 2 * LIM * PER;

/** erfc(z) in float64 for any z (series below 3, continued fraction above): builds the tables. */
function erfcExact(z: number): number {
  if (z < 0) return 2 - erfcExact(-z);
  if (z < 3) {
    let sum = 0, term = z;
    for (let n = 0; n < 200 && Math.abs(term) > 1e-18; n++) {
      sum += term / (2 * n + 1);
      term *= -z * z / (n + 1);
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = 0;
  for (let k = 80; k >= 1; k--) f = (k / 2) / (z + f);
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / (z + f);
}

// [value, 1st, 2nd/2, 3rd/6 derivative] at each centre c, for Φ and for GELU'. With φ = φ(c):
// Φ' = φ, Φ'' = −cφ, Φ''' = (c² − 1)φ; GELU' = Φ + cφ, GELU'' = (2 − c²)φ, GELU''' = (c³ − 4c)φ,
// GELU'''' = (−c⁴ + 7c² − 4)φ.
const PHI = new Float64Array(CUBES * 4);
const DGELU = new Float64Array(CUBES * 4);
for (let k = 0; k < CUBES; k++) {
  const c = -LIM + (k + 0.5) / PER;
  const pdf = Math.exp(-0.5 * c * c) / Math.sqrt(2 * Math.PI);
  const cdf = 0.5 * erfcExact(-c * Math.SQRT1_2);
  // Scaled to the offset u = (x − c)·PER ∈ [−½, ½) that cubic() evaluates at: no division per value.
  const h = 1 / PER;
  PHI.set([cdf, pdf * h, -c * pdf / 2 * h * h, (c * c - 1) * pdf / 6 * h ** 3], 4 * k);
  DGELU.set([
    cdf + c * pdf,
    (2 - c * c) * pdf * h,
    (c ** 3 - 4 * c) * pdf / 2 * h * h,
    (-(c ** 4) + 7 * c * c - 4) * pdf / 6 * h ** 3,
  ], 4 * k);
}

// The tables as the wasm SIMD kernel reads them: one more interval, 512, the constant 1 (x ≥ 8).
const PHI_WASM = Float64Array.from([...PHI, 1, 0, 0, 0]);
const DGELU_WASM = Float64Array.from([...DGELU, 1, 0, 0, 0]);

/** Evaluates one of the tables at x: 0 below −8, 1 above 8, NaN for NaN. */
function cubic(table: Float64Array, x: number): number {
  if (x >= LIM) return 1;
  if (!(x > -LIM)) return x <= -LIM ? 0 : NaN;
  const t = (x + LIM) * PER; // exact: PER is a power of two
  const k = t | 0;
  const u = t - k - 0.5;
  const o = 4 * k;
  return table[o] + u * (table[o + 1] + u * (table[o + 2] + u * table[o + 3]));
}

/**
 * out[i] = m[i]·table(x[i]) with m = x (forward: x·Φ(x)). cubic() written out inline: V8 did not
 * inline it reliably in the kernels (8-9 ns per value); and one loop per direction, since a loop that
 * picked x or dy per element ran ~17 % slower.
 */
function cubicTimesX(table: Float64Array, xs: Float32Array, out: Float32Array): void {
  const n = xs.length;
  for (let i = 0; i < n; i++) {
    const x = xs[i];
    let c: number;
    if (x > -LIM && x < LIM) {
      const t = (x + LIM) * PER;
      const k = t | 0;
      const u = t - k - 0.5;
      const o = k << 2;
      c = table[o] + u * (table[o + 1] + u * (table[o + 2] + u * table[o + 3]));
    } else c = x >= LIM ? 1 : x <= -LIM ? 0 : NaN;
    out[i] = x * c;
  }
}

/** out[i] = dy[i]·table(x[i]) (backward); as {@link cubicTimesX}. */
function cubicTimesDy(table: Float64Array, xs: Float32Array, dy: Float32Array, out: Float32Array): void {
  const n = xs.length;
  for (let i = 0; i < n; i++) {
    const x = xs[i];
    let c: number;
    if (x > -LIM && x < LIM) {
      const t = (x + LIM) * PER;
      const k = t | 0;
      const u = t - k - 0.5;
      const o = k << 2;
      c = table[o] + u * (table[o + 1] + u * (table[o + 2] + u * table[o + 3]));
    } else c = x >= LIM ? 1 : x <= -LIM ? 0 : NaN;
    out[i] = dy[i] * c;
  }
}

/** Φ(x), the standard normal CDF, to ~1e-8 (exported for tests). */
export function normalCdf(x: number): number {
  return cubic(PHI, x);
}

/** d/dx x·Φ(x) = Φ(x) + x·φ(x), to ~1e-8 (exported for tests). */
export function geluDerivative(x: number): number {
  return cubic(DGELU, x);
}

/** GELU forward: inputs {x}; output y = x·Φ(x) = 0.5·x·(1 + erf(x/√2)). */
function gelu(args: Args): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: tf.TensorInfo };
  checkFloat(FUSED.gelu, { x });
  // Allocate first: _malloc may grow the wasm memory, which detaches earlier views of the heap.
  const y = backend.makeOutput(x.shape, "float32");
  const simd = wasmSimdKernels(backend);
  if (simd) {
    const at = heapAddress(backend, x);
    simd.cubic_times(
      heapConstant(backend, PHI_WASM),
      at,
      at,
      heapAddress(backend, y),
      tf.util.sizeFromShape(x.shape),
    );
  } else cubicTimesX(PHI, f32(backend, x), f32(backend, y));
  return y;
}

/** GELU backward: inputs {dy, x}; dx = dy·(Φ(x) + x·φ(x)). */
function geluGrad(args: Args): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { dy, x } = args.inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
  checkFloat(FUSED.geluGrad, { dy, x });
  if (!tf.util.arraysEqual(dy.shape, x.shape)) {
    throw new Error(`${FUSED.geluGrad} (wasm): dy has shape [${dy.shape}], x [${x.shape}]: they must match`);
  }
  const dx = backend.makeOutput(x.shape, "float32");
  const simd = wasmSimdKernels(backend);
  if (simd) {
    const n = tf.util.sizeFromShape(x.shape);
    const table = heapConstant(backend, DGELU_WASM);
    simd.cubic_times(table, heapAddress(backend, x), heapAddress(backend, dy), heapAddress(backend, dx), n);
  } else cubicTimesDy(DGELU, f32(backend, x), f32(backend, dy), f32(backend, dx));
  return dx;
}

/**
 * The mean cross-entropy's gradient: inputs {probs [M, V], targets [M] int32, dy (float32 scalar)} →
 * (probs − oneHot(targets))·(dy / M), the contract of `RtdlabSoftmaxCrossEntropyGrad`
 * (lib/backend/fused_kernels.ts), with the float32 operations of the plain ops it replaces (one-hot,
 * cast, subtract, divide, multiply: four kernels and three [M, V] temporaries), so the same bits.
 */
function softmaxCrossEntropyGrad(args: Args): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { probs, targets, dy } = args.inputs as {
    probs: tf.TensorInfo;
    targets: tf.TensorInfo;
    dy: tf.TensorInfo;
  };
  const name = FUSED.softmaxCrossEntropyGrad;
  checkFloat(name, { probs, dy });
  if (targets == null || targets.dtype !== "int32") {
    throw new Error(`${name} (wasm): targets must be an int32 tensor`);
  }
  const [rows, cols] = probs.shape;
  if (probs.shape.length !== 2 || targets.shape.length !== 1 || targets.shape[0] !== rows) {
    throw new Error(
      `${name} (wasm): probs [M, V] and targets [M] expected, got [${probs.shape}] and [${targets.shape}]`,
    );
  }
  const out = backend.makeOutput(probs.shape, "float32");
  // dy / M in float32: the quotient of two float32 values, rounded from float64, is float32's own quotient.
  const scale = Math.fround(f32(backend, dy)[0] / rows);
  const simd = wasmSimdKernels(backend);
  if (simd) {
    const at = (t: tf.TensorInfo) => heapAddress(backend, t);
    simd.softmax_ce_grad(at(probs), at(targets), at(out), rows, cols, scale);
    return out;
  }
  const p = f32(backend, probs), o = f32(backend, out), t = backend.typedArrayFromHeap(targets) as Int32Array;
  for (let i = 0; i < p.length; i++) o[i] = Math.fround(p[i] * scale);
  for (let r = 0; r < rows; r++) {
    const j = t[r];
    if (j >= 0 && j < cols) o[r * cols + j] = Math.fround(Math.fround(p[r * cols + j] - 1) * scale);
  }
  return out;
}

/**
 * Identity that shares the input's memory (reference-counted, as Reshape does and as the cpu and
 * webgpu backends' Identity do) instead of copying it. tfjs's autodiff clones every tensor it saves
 * for the backward pass, so on wasm the copies cost 15-30 ms per `tiny` b16 step. Sharing is safe
 * because no wasm kernel writes into its inputs (and tensors are immutable).
 */
export function identity(args: Args): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === "string") return originalIdentity!.kernelFunc(args) as tf.TensorInfo;
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** The fused kernels rtdlab adds to wasm (and the dropout-mask kernel). */
export const FUSED_KERNELS: readonly tf.KernelConfig[] = [
  dropoutMaskConfig,
  { kernelName: FUSED.dropout, backendName: "wasm", kernelFunc: dropoutWasm as tf.KernelFunc },
  { kernelName: FUSED.gelu, backendName: "wasm", kernelFunc: gelu as tf.KernelFunc },
  { kernelName: FUSED.geluGrad, backendName: "wasm", kernelFunc: geluGrad as tf.KernelFunc },
  {
    kernelName: FUSED.softmaxCrossEntropyGrad,
    backendName: "wasm",
    kernelFunc: softmaxCrossEntropyGrad as tf.KernelFunc,
  },
];

let originalIdentity: tf.KernelConfig | null = null;
let originalCast: tf.KernelConfig | null = null;
let sharingConfigs: { original: tf.KernelConfig[]; fast: tf.KernelConfig[] } | null = null;

/**
 * `Cast` to the dtype the tensor already has, sharing memory as `Identity` does (the cpu backend's
 * Cast does the same); other casts go to the package's kernel. tfjs's gradient of `mul` casts both
 * operands to float32, so the package's copying Cast ran ~40 times per `tiny` step.
 */
export function cast(args: Args): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { dtype } = args.attrs as unknown as tf.CastAttrs;
  if (x.dtype === dtype && dtype !== "string") return identity(args);
  return originalCast!.kernelFunc(args) as tf.TensorInfo;
}

/**
 * The package's Identity and Cast configs and rtdlab's memory-sharing ones (first call after
 * importing the wasm package).
 */
export function sharingKernelConfigs(): { original: tf.KernelConfig[]; fast: tf.KernelConfig[] } {
  if (sharingConfigs != null) return sharingConfigs;
  originalIdentity = tf.getKernel(tf.Identity, "wasm");
  originalCast = tf.getKernel(tf.Cast, "wasm");
  if (originalIdentity == null || originalCast == null) {
    throw new Error(
      "Identity and Cast are not registered for wasm: import @tensorflow/tfjs-backend-wasm first",
    );
  }
  const fast: tf.KernelConfig[] = [
    { kernelName: tf.Identity, backendName: "wasm", kernelFunc: identity as tf.KernelFunc },
    { kernelName: tf.Cast, backendName: "wasm", kernelFunc: cast as tf.KernelFunc },
  ];
  sharingConfigs = { original: [originalIdentity, originalCast], fast };
  return sharingConfigs;
}

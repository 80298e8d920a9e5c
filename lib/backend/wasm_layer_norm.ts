/**
 * `RtdlabLayerNorm` and `RtdlabLayerNormGrad` (contracts: lib/backend/fused_kernels.ts) for the wasm
 * backend, on rtdlab's SIMD kernels (lib/backend/wasm_simd.wat).
 *
 * They compute what layers.ts's plain ops compute on wasm, bit for bit: the same float32 operations
 * in the same order (row sums in column order as tfjs-backend-wasm's Mean does; column sums through
 * the same OpenBLAS gemm with a row of ones that layers.ts's columnSums runs, or in row order as its
 * one-segment UnsortedSegmentSum adds them where no OpenBLAS loads). So switching them on changes no
 * number of a run, only how many kernels a step runs: LayerNorm with its residual add, the sublayer's
 * bias and its dropout was ~12 kernels forward and ~20 backward, now one each way.
 *
 * Where rtdlab's SIMD module cannot run (no wasm SIMD, `useWasmSimd(false)`, a heap it cannot import)
 * `fusedKernelsActive("layerNorm")` is false and layers.ts runs the plain ops.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { dropoutParams } from "./dropout_mask.ts";
import { FUSED, setFusedKernelRunnable } from "./fused_kernels.ts";
import { heapAddress, type WasmSimdKernels, wasmSimdKernels } from "./wasm_simd.ts";
import { activeBlas } from "./wasm_matmul.ts";
import { checkFloat } from "./wasm_fused.ts";

type Args = Parameters<tf.KernelFunc>[0];

// layers.ts asks before each LayerNorm; without the SIMD module it runs the plain ops instead.
for (const name of [FUSED.layerNorm, FUSED.layerNormGrad]) {
  setFusedKernelRunnable(name, "wasm", () => wasmSimdKernels(tf.backend() as unknown as BackendWasm) != null);
}

function simdOf(backend: BackendWasm, name: string): WasmSimdKernels {
  const simd = wasmSimdKernels(backend);
  if (simd == null) {
    throw new Error(`${name} (wasm): rtdlab's wasm SIMD module is off or cannot run here; use the plain ops`);
  }
  return simd;
}

/** Throws naming `what` unless `t` holds `size` values (`shape`: the shape it must have, for the message). */
function checkSize(name: string, what: string, t: tf.TensorInfo, size: number, shape: number[]): void {
  if (tf.util.sizeFromShape(t.shape) !== size) {
    throw new Error(`${name} (wasm): ${what} has shape [${t.shape}], expected [${shape}]`);
  }
}

/** Rows and columns of a LayerNorm over the last axis of `shape`. */
function rowsCols(shape: number[]): [number, number] {
  const cols = shape[shape.length - 1] ?? 1;
  return [cols === 0 ? 0 : tf.util.sizeFromShape(shape) / cols, cols];
}

/** Dropout attrs as the kernels take them (mode bit 4 when rate > 0). */
function dropoutArgs(rate: number | undefined, seed: number | undefined) {
  if (!rate) return { on: false, k0: 0, k1: 0, threshold: 0, scale: 1 };
  return { on: true, ...dropoutParams(rate, seed ?? 0) };
}

let ones = new Float32Array(0);

/**
 * Column sums of `x` [rows, cols] into `out` [cols], the way layers.ts's columnSums sums them on wasm
 * (keep the two in step): OpenBLAS's gemm with a row of ones when it is loaded, else rows in order as
 * the one-segment UnsortedSegmentSum adds them.
 */
function columnSumsInto(
  backend: BackendWasm,
  simd: WasmSimdKernels,
  x: tf.TensorInfo,
  out: tf.TensorInfo,
  rows: number,
  cols: number,
): void {
  const blas = activeBlas();
  if (blas == null || rows === 0) {
    simd.column_sums(heapAddress(backend, x), heapAddress(backend, out), rows, cols);
    return;
  }
  if (ones.length < rows) ones = new Float32Array(rows).fill(1);
  const f32 = (t: tf.TensorInfo) => backend.typedArrayFromHeap(t) as Float32Array;
  blas.sgemm(false, false, 1, cols, rows, ones.subarray(0, rows), f32(x), f32(out));
}

/** Forward: {x, gamma, beta[, h[, hBias]]}, attrs eps[, rate, seed] → [y, xhat, rstd]. */
function layerNorm(args: Args): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { x, gamma, beta, h, hBias } = args.inputs as Record<string, tf.TensorInfo | undefined>;
  const { eps, rate, seed } = (args.attrs ?? {}) as unknown as { eps: number; rate?: number; seed?: number };
  if (x == null || gamma == null || beta == null) {
    throw new Error(`${FUSED.layerNorm} (wasm): inputs x, gamma and beta are required`);
  }
  checkFloat(FUSED.layerNorm, { x, gamma, beta, ...(h ? { h } : {}), ...(hBias ? { hBias } : {}) });
  if (hBias != null && h == null) throw new Error(`${FUSED.layerNorm} (wasm): hBias needs h`);
  const [rows, cols] = rowsCols(x.shape);
  for (const [what, t] of [["gamma", gamma], ["beta", beta], ["hBias", hBias]] as const) {
    if (t) checkSize(FUSED.layerNorm, what, t, cols, [cols]);
  }
  if (h && !tf.util.arraysEqual(h.shape, x.shape)) {
    throw new Error(`${FUSED.layerNorm} (wasm): h has shape [${h.shape}], x [${x.shape}]: they must match`);
  }
  const simd = simdOf(backend, FUSED.layerNorm);
  // Allocate first: _malloc may grow the wasm memory (addresses stay valid, views do not).
  const y = backend.makeOutput(x.shape, "float32");
  const xhat = backend.makeOutput(x.shape, "float32");
  const rstd = backend.makeOutput([...x.shape.slice(0, -1), 1], "float32");
  const drop = dropoutArgs(h ? rate : 0, seed);
  const mode = (h ? 1 : 0) | (hBias ? 2 : 0) | (drop.on ? 4 : 0);
  const at = (t: tf.TensorInfo | undefined) => t ? heapAddress(backend, t) : 0;
  simd.layer_norm(
    at(x),
    at(h),
    at(hBias),
    at(gamma),
    at(beta),
    at(y),
    at(xhat),
    at(rstd),
    rows,
    cols,
    Math.fround(eps),
    mode,
    drop.k0,
    drop.k1,
    drop.threshold,
    drop.scale,
  );
  return [y, xhat, rstd];
}

/**
 * Backward: {dy, xhat, rstd, gamma} → [dx, dγ, dβ]; with attr withH (rate, seed) → [dx, dh, dγ, dβ],
 * dh = dropout(dx); with withHBias → [dx, dh, dγ, dβ, dhBias].
 */
function layerNormGrad(args: Args): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { dy, xhat, rstd, gamma } = args.inputs as Record<string, tf.TensorInfo>;
  const { withH, withHBias, rate, seed } = (args.attrs ?? {}) as unknown as {
    withH?: boolean;
    withHBias?: boolean;
    rate?: number;
    seed?: number;
  };
  if (dy == null || xhat == null || rstd == null || gamma == null) {
    throw new Error(`${FUSED.layerNormGrad} (wasm): inputs dy, xhat, rstd and gamma are required`);
  }
  checkFloat(FUSED.layerNormGrad, { dy, xhat, rstd, gamma });
  const [rows, cols] = rowsCols(xhat.shape);
  checkSize(FUSED.layerNormGrad, "dy", dy, rows * cols, xhat.shape);
  checkSize(FUSED.layerNormGrad, "rstd", rstd, rows, [...xhat.shape.slice(0, -1), 1]);
  checkSize(FUSED.layerNormGrad, "gamma", gamma, cols, [cols]);
  const n = rows * cols;
  const simd = simdOf(backend, FUSED.layerNormGrad);
  const dx = backend.makeOutput(xhat.shape, "float32");
  const gx = backend.makeOutput(xhat.shape, "float32");
  const dGamma = backend.makeOutput([cols], "float32");
  const dBeta = backend.makeOutput([cols], "float32");
  const dh = withH || withHBias ? backend.makeOutput(xhat.shape, "float32") : null;
  const dhBias = withHBias ? backend.makeOutput([cols], "float32") : null;
  const at = (t: tf.TensorInfo) => heapAddress(backend, t);
  simd.layer_norm_grad(at(dy), at(xhat), at(rstd), at(gamma), at(dx), at(gx), rows, cols);
  columnSumsInto(backend, simd, gx, dGamma, rows, cols);
  columnSumsInto(backend, simd, dy, dBeta, rows, cols);
  backend.disposeData(gx.dataId);
  if (dh == null) return [dx, dGamma, dBeta];
  const drop = dropoutArgs(rate, seed);
  if (drop.on) simd.dropout(at(dx), at(dh), n, drop.k0, drop.k1, drop.threshold, drop.scale);
  else (backend.typedArrayFromHeap(dh) as Float32Array).set(backend.typedArrayFromHeap(dx) as Float32Array);
  if (dhBias == null) return [dx, dh, dGamma, dBeta];
  columnSumsInto(backend, simd, dh, dhBias, rows, cols);
  return [dx, dh, dGamma, dBeta, dhBias];
}

/** The LayerNorm kernels for wasm (registered only where the engine has wasm SIMD). */
export const LAYER_NORM_KERNELS: readonly tf.KernelConfig[] = [
  { kernelName: FUSED.layerNorm, backendName: "wasm", kernelFunc: layerNorm as unknown as tf.KernelFunc },
  {
    kernelName: FUSED.layerNormGrad,
    backendName: "wasm",
    kernelFunc: layerNormGrad as unknown as tf.KernelFunc,
  },
];

/**
 * Faster `BatchMatMul` and `_FusedMatMul` for the wasm backend, wrapping tfjs-backend-wasm's own.
 *
 * tfjs-backend-wasm 4.22.0 sends a matMul to XNNPACK only when neither operand is transposed and
 * both have batch size 1; everything else (every backward matMul: dX = dY·Wᵀ, dW = Xᵀ·dY, and all
 * batched attention products) runs a scalar loop at 0.5-2.5 GFLOP/s against XNNPACK's 15-30.
 * This wrapper keeps every call on XNNPACK: it materialises transposes with the wasm Transpose
 * kernel, folds a batch that only `a` has into the rows ([B, M, K]·[K, N] is one [B·M, K]·[K, N]),
 * and runs other batches as one XNNPACK call per batch entry on views into the operands' memory.
 * `_FusedMatMul` (tf.fused.matMul: bias + activation) gets the transposes materialised only.
 * Autodiff is unaffected: the tape records the kernels with their original attributes.
 *
 * When a native OpenBLAS loads (blas.ts), both kernels send float32 products to its `cblas_sgemm`
 * instead (transposes as BLAS flags, no copies), 5-10x faster again and on every core; XNNPACK stays
 * the fallback for machines without it and for the odd broadcast BLAS's layout cannot express.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { type Blas, loadBlas } from "./blas.ts";

type CBatchMatMul = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: boolean,
  transposeB: boolean,
  outId: number,
) => void;

type KernelArgs = Parameters<tf.KernelFunc>[0];
// EmscriptenModule's typings in the package omit cwrap, which the package's own kernels use.
type Cwrap = (name: string, ret: null, args: string[]) => unknown;

let original: tf.KernelConfig | null = null;
let originalFused: tf.KernelConfig | null = null;
let cBatchMatMul: CBatchMatMul | null = null;
let blasEnabled = true;

/** Routes wasm matrix products to the native BLAS when one loads (default), or keeps them on XNNPACK. */
export function useBlas(enabled: boolean): void {
  blasEnabled = enabled;
}

/** The BLAS the wasm matMul kernels use now, or null (disabled or none installed). */
export function activeBlas(): Blas | null {
  return blasEnabled ? loadBlas() : null;
}

/** Products sent to the native BLAS so far (tests check that the BLAS path really ran). */
export let blasCalls = 0;

/**
 * op(a)·op(b) with cblas_sgemm on views of the wasm heap, for batches that are equal or where one
 * side has batch 1; null when the case is not one of those (the caller falls back).
 */
function blasMatMul(
  blas: Blas,
  backend: BackendWasm,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transA: boolean,
  transB: boolean,
): tf.TensorInfo | null {
  const ra = a.shape.length, rb = b.shape.length;
  if (ra < 2 || rb < 2) return null;
  const [M, K] = transA ? [a.shape[ra - 1], a.shape[ra - 2]] : [a.shape[ra - 2], a.shape[ra - 1]];
  const [K2, N] = transB ? [b.shape[rb - 1], b.shape[rb - 2]] : [b.shape[rb - 2], b.shape[rb - 1]];
  if (K !== K2 || M * N * K === 0) return null;
  const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
  const batch = Math.max(batchA, batchB);
  const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2))
    .concat([M, N]);
  if (
    !(batchA === batchB || batchA === 1 || batchB === 1) || tf.util.sizeFromShape(outShape) !== batch * M * N
  ) {
    return null;
  }
  // Allocate first: _malloc may grow the wasm memory, which detaches earlier views of the heap.
  const out = backend.makeOutput(outShape, "float32");
  const outVals = backend.typedArrayFromHeap(out) as Float32Array;
  const aVals = backend.typedArrayFromHeap(a) as Float32Array;
  const bVals = backend.typedArrayFromHeap(b) as Float32Array;
  blasCalls++;
  if (batchB === 1 && !transA) {
    // [B, M, K]·[K, N]: the batch is just more rows.
    blas.sgemm(false, transB, batchA * M, N, K, aVals, bVals, outVals);
    return out;
  }
  for (let i = 0; i < batch; i++) {
    const ai = batchA === 1 ? 0 : i, bi = batchB === 1 ? 0 : i;
    blas.sgemm(
      transA,
      transB,
      M,
      N,
      K,
      aVals.subarray(ai * M * K, (ai + 1) * M * K),
      bVals.subarray(bi * K * N, (bi + 1) * K * N),
      outVals.subarray(i * M * N, (i + 1) * M * N),
    );
  }
  return out;
}

function shapeBytes(shape: number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}

function idOf(backend: BackendWasm, t: tf.TensorInfo): number {
  return backend.dataIdMap.get(t.dataId)!.id;
}

// Swaps the last two axes through the wasm Transpose kernel; the caller disposes the result.
function transposeLast2(backend: BackendWasm, x: tf.TensorInfo): tf.TensorInfo {
  const rank = x.shape.length;
  const perm = [...Array(rank).keys()];
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  const transpose = tf.getKernel(tf.Transpose, "wasm");
  return transpose.kernelFunc({ inputs: { x }, backend, attrs: { perm } }) as tf.TensorInfo;
}

// A tensor registered over memory another tensor owns. Must be released with releaseView, never
// disposeData, which would free() the owner's memory.
function makeView(backend: BackendWasm, shape: number[], byteOffset: number): tf.TensorInfo {
  return backend.makeOutput(shape, "float32", byteOffset);
}

function releaseView(backend: BackendWasm, view: tf.TensorInfo): void {
  // dispose_data also deletes the XNNPACK operator cached on this id (it keys weights by tensor id).
  backend.wasm.tfjs.disposeData(idOf(backend, view));
  backend.dataIdMap.delete(view.dataId);
}

/** BatchMatMul for wasm that stays on XNNPACK for transposed and batched operands (same results). */
export function batchMatMul(args: KernelArgs): tf.TensorInfo {
  if (original == null || cBatchMatMul == null) {
    throw new Error("rtdlab BatchMatMul (wasm): kernel used before the wasm backend was set up");
  }
  const backend = args.backend as BackendWasm;
  const { a, b } = args.inputs as tf.BatchMatMulInputs;
  const attrs = (args.attrs ?? {}) as unknown as tf.BatchMatMulAttrs;
  if (a == null || b == null || a.dtype !== "float32" || b.dtype !== "float32") {
    return original.kernelFunc(args) as tf.TensorInfo; // it raises tfjs's own error
  }
  const [ra, rb] = [a.shape.length, b.shape.length];
  const [M, K] = attrs.transposeA ? [a.shape[ra - 1], a.shape[ra - 2]] : [a.shape[ra - 2], a.shape[ra - 1]];
  const [K2, N] = attrs.transposeB ? [b.shape[rb - 1], b.shape[rb - 2]] : [b.shape[rb - 2], b.shape[rb - 1]];
  if (K === 0 && K2 === 0 && ra >= 2 && rb >= 2) {
    // A sum over nothing: zeros (the package's kernel fails in XNNPACK and leaves its output as malloc
    // found it).
    const batch = tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const out = backend.makeOutput([...batch, M, N], "float32");
    (backend.typedArrayFromHeap(out) as Float32Array).fill(0);
    return out;
  }
  const blas = activeBlas();
  if (blas != null) {
    const out = blasMatMul(blas, backend, a, b, !!attrs.transposeA, !!attrs.transposeB);
    if (out != null) return out;
  }
  const temps: tf.TensorInfo[] = [];
  try {
    const a2 = attrs.transposeA ? transposeLast2(backend, a) : a;
    const b2 = attrs.transposeB ? transposeLast2(backend, b) : b;
    if (a2 !== a) temps.push(a2);
    if (b2 !== b) temps.push(b2);
    const plain = { ...attrs, transposeA: false, transposeB: false } as unknown as tf.NamedAttrMap;
    const [M, K] = a2.shape.slice(-2);
    const [K2, N] = b2.shape.slice(-2);
    const batchA = tf.util.sizeFromShape(a2.shape.slice(0, -2));
    const batchB = tf.util.sizeFromShape(b2.shape.slice(0, -2));
    const batch = Math.max(batchA, batchB);
    const outShape = K !== K2 ? [] : tf.backend_util.assertAndGetBroadcastShape(
      a2.shape.slice(0, -2),
      b2.shape.slice(0, -2),
    ).concat([M, N]);
    // Batches like [2, 1] vs [1, 2] broadcast to more entries than either operand flattens to.
    const simpleBatch = (batchA === batchB || batchA === 1 || batchB === 1) &&
      tf.util.sizeFromShape(outShape) === batch * M * N;
    if ((batchA === 1 && batchB === 1) || K !== K2 || M * K * N === 0 || !simpleBatch) {
      // Already XNNPACK's case, or one the package's kernel reports or handles its own way.
      return original.kernelFunc({ inputs: { a: a2, b: b2 }, backend, attrs: plain }) as tf.TensorInfo;
    }
    if (batchB === 1) {
      // [B, M, K]·[K, N]: the batch is just more rows for one XNNPACK call.
      const a3 = { ...a2, shape: [1, batchA * M, K] };
      const b3 = { ...b2, shape: [1, K, N] };
      const out = original.kernelFunc({ inputs: { a: a3, b: b3 }, backend, attrs: plain }) as tf.TensorInfo;
      return { ...out, shape: outShape };
    }
    const out = backend.makeOutput([batch, M, N], "float32");
    const aBase = backend.dataIdMap.get(a2.dataId)!.memoryOffset;
    const bBase = backend.dataIdMap.get(b2.dataId)!.memoryOffset;
    const outBase = backend.dataIdMap.get(out.dataId)!.memoryOffset;
    const aShape = shapeBytes([1, M, K]);
    const bShape = shapeBytes([1, K, N]);
    for (let i = 0; i < batch; i++) {
      const aView = makeView(backend, [1, M, K], aBase + (batchA === 1 ? 0 : i) * M * K * 4);
      const bView = makeView(backend, [1, K, N], bBase + (batchB === 1 ? 0 : i) * K * N * 4);
      const outView = makeView(backend, [1, M, N], outBase + i * M * N * 4);
      try {
        cBatchMatMul(
          idOf(backend, aView),
          aShape,
          3,
          idOf(backend, bView),
          bShape,
          3,
          false,
          false,
          idOf(backend, outView),
        );
      } finally {
        releaseView(backend, aView);
        releaseView(backend, bView);
        releaseView(backend, outView);
      }
    }
    return { ...out, shape: outShape };
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}

/** tf.fused.matMul for wasm: materialises transposes so XNNPACK runs it (batch-1 operands). */
export function fusedMatMul(args: KernelArgs): tf.TensorInfo {
  if (originalFused == null) {
    throw new Error("rtdlab _FusedMatMul (wasm): kernel used before the wasm backend was set up");
  }
  const backend = args.backend as BackendWasm;
  const { a, b } = args.inputs as tf._FusedMatMulInputs;
  const attrs = (args.attrs ?? {}) as unknown as tf._FusedMatMulAttrs;
  const blas = activeBlas();
  const plain = args.inputs.bias == null && (attrs.activation == null || attrs.activation === "linear");
  if (blas != null && plain && a.dtype === "float32" && b.dtype === "float32") {
    const out = blasMatMul(blas, backend, a, b, !!attrs.transposeA, !!attrs.transposeB);
    if (out != null) return out;
  }
  if (!attrs.transposeA && !attrs.transposeB) return originalFused.kernelFunc(args) as tf.TensorInfo;
  const a2 = attrs.transposeA ? transposeLast2(backend, a) : a;
  const b2 = attrs.transposeB ? transposeLast2(backend, b) : b;
  try {
    return originalFused.kernelFunc({
      inputs: { ...args.inputs, a: a2, b: b2 },
      backend,
      attrs: { ...attrs, transposeA: false, transposeB: false } as unknown as tf.NamedAttrMap,
    }) as tf.TensorInfo;
  } finally {
    if (a2 !== a) backend.disposeData(a2.dataId);
    if (b2 !== b) backend.disposeData(b2.dataId);
  }
}

let configs: { original: tf.KernelConfig[]; fast: tf.KernelConfig[] } | null = null;

function registered(name: string): tf.KernelConfig {
  const config = tf.getKernel(name, "wasm");
  if (config == null) {
    throw new Error(`${name} is not registered for wasm: import @tensorflow/tfjs-backend-wasm first`);
  }
  return config;
}

/**
 * The package's BatchMatMul and _FusedMatMul configs and rtdlab's replacements. The first call must
 * come after importing @tensorflow/tfjs-backend-wasm: it captures the package's kernels, which the
 * replacements wrap (so their setup runs the package's setup too).
 */
export function matMulConfigs(): { original: tf.KernelConfig[]; fast: tf.KernelConfig[] } {
  if (configs != null) return configs;
  const pkg = registered(tf.BatchMatMul);
  const pkgFused = registered(tf._FusedMatMul);
  original = pkg;
  originalFused = pkgFused;
  const fast: tf.KernelConfig = {
    kernelName: tf.BatchMatMul,
    backendName: "wasm",
    kernelFunc: batchMatMul as tf.KernelFunc,
    setupFunc: (b: object) => {
      pkg.setupFunc?.(b);
      const module = (b as BackendWasm).wasm as unknown as { cwrap: Cwrap };
      cBatchMatMul = module.cwrap(tf.BatchMatMul, null, [
        "number",
        "array",
        "number",
        "number",
        "array",
        "number",
        "number",
        "number",
        "number",
      ]) as CBatchMatMul;
    },
    disposeFunc: pkg.disposeFunc,
  };
  const fastFused: tf.KernelConfig = {
    kernelName: tf._FusedMatMul,
    backendName: "wasm",
    kernelFunc: fusedMatMul as tf.KernelFunc,
    setupFunc: pkgFused.setupFunc,
    disposeFunc: pkgFused.disposeFunc,
  };
  configs = { original: [pkg, pkgFused], fast: [fast, fastFused] };
  return configs;
}

/**
 * rtdlab's SIMD kernels for the wasm backend (lib/backend/wasm_simd.wat), instantiated on
 * tfjs-backend-wasm's own memory so that they read and write tensors in place.
 *
 * Why: a JS loop does one 32-bit lane at a time; wasm SIMD does four. Dropout's hash was the
 * costliest JS loop of a `tiny` b8 step (26 masks, 18.6 ms of a 137 ms step, 2026-12-07).
 *
 * @module
 */
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import type * as tf from "@tensorflow/tfjs-core";
import { WASM_SIMD_BASE64 } from "./wasm_simd_bytes.ts";

/**
 * The exported functions, named as the module exports them (hence snake_case); addresses are byte
 * offsets into the wasm heap, counts are elements.
 */
export interface WasmSimdKernels {
  /** out[i] = dropout's multiplier of element i (lib/backend/dropout_mask.ts), i < n. */
  dropout_mask(out: number, n: number, k0: number, k1: number, threshold: number, scale: number): void;
  /** out[i] = x[i] · dropout's multiplier of element i, i < n. */
  dropout(
    x: number,
    out: number,
    n: number,
    k0: number,
    k1: number,
    threshold: number,
    scale: number,
  ): void;
  /** LayerNorm forward over `rows` rows of `cols` (lib/backend/wasm_simd.wat documents the arguments). */
  layer_norm(
    x: number,
    h: number,
    hBias: number,
    gamma: number,
    beta: number,
    y: number,
    xhat: number,
    rstd: number,
    rows: number,
    cols: number,
    eps: number,
    mode: number,
    k0: number,
    k1: number,
    threshold: number,
    scale: number,
  ): void;
  /** LayerNorm backward: dx, and gx = dy·xhat (gamma's gradient before its column sums). */
  layer_norm_grad(
    dy: number,
    xhat: number,
    rstd: number,
    gamma: number,
    dx: number,
    gx: number,
    rows: number,
    cols: number,
  ): void;
  /** out[col] = Σ_rows x[row, col], rows in order. */
  column_sums(x: number, out: number, rows: number, cols: number): void;
  /** out[r] = Σ_j x[r, j] in float32, j in order from 0 (tfjs-backend-wasm's Sum's bits). */
  row_sums(x: number, out: number, rows: number, cols: number): void;
  /** max of n float32s skipping index `banned` and NaNs (lib/train/sampling.ts's host sampler). */
  masked_max(x: number, n: number, banned: number): number;
  /** The host sampler's running weight sums for two rows, interleaved; returns rows to redo (bits 1, 2). */
  sample_weights(
    x0: number,
    x1: number,
    n: number,
    banned0: number,
    banned1: number,
    max0: number,
    max1: number,
    temperature: number,
    divide: number,
    constants: number,
    weights: number,
  ): number;
  /** out[i] = m[i]·table(x[i]), a table of cubics in the heap (GELU: lib/backend/wasm_fused.ts). */
  cubic_times(table: number, x: number, m: number, out: number, n: number): void;
  /** One AdamW step in place (lib/train/optimizer.ts's host loop; c1 = 1 − β1, c2 = 1 − β2). */
  adamw(
    p: number,
    grad: number,
    m: number,
    v: number,
    n: number,
    scale: number,
    b1: number,
    c1: number,
    b2: number,
    c2: number,
    lr: number,
    corr1: number,
    corr2: number,
    eps: number,
    wd: number,
  ): void;
  /** dst row k = src row idx[k] (k < n), rows of `rowBytes` bytes. */
  copy_rows(src: number, dst: number, idx: number, n: number, rowBytes: number): void;
  /** out[s] = Σ_{i: ids[i] = s} x[i] over rows of `inner` float32s, in index order; out zeroed first. */
  segment_sum(x: number, ids: number, out: number, n: number, inner: number, segments: number): void;
  /** acc + Σ x[i]² over n float32s, in float64, in index order. */
  sum_squares(x: number, n: number, acc: number): number;
  /** (probs − oneHot(targets))·scale over rows × cols float32 probabilities (targets int32). */
  softmax_ce_grad(
    probs: number,
    targets: number,
    out: number,
    rows: number,
    cols: number,
    scale: number,
  ): void;
}

let moduleBytes: Uint8Array<ArrayBuffer> | null = null;
let compiled: WebAssembly.Module | null | undefined;
const instances = new WeakMap<WebAssembly.Memory, WasmSimdKernels | null>();
let enabled = true;

/**
 * Turns the SIMD kernels on (default) or off; off, dropout, GELU, the cross-entropy's gradient and
 * AdamW run their JS loops (the same bits; tests pin both) and layers.ts runs LayerNorm as plain ops
 * (its kernels have no JS loop: lib/backend/wasm_layer_norm.ts).
 */
export function useWasmSimd(on: boolean): void {
  enabled = on;
}

/** The assembled module's bytes (lib/backend/wasm_simd_bytes.ts, decoded). */
export function wasmSimdBytes(): Uint8Array<ArrayBuffer> {
  if (moduleBytes == null) moduleBytes = Uint8Array.from(atob(WASM_SIMD_BASE64), (c) => c.charCodeAt(0));
  return moduleBytes;
}

/** True when this engine runs wasm SIMD (V8 and every current browser do). */
export function wasmSimdAvailable(): boolean {
  return simdModule() != null;
}

/** The compiled module, or null where this engine has no wasm SIMD (callers then run their JS loops). */
function simdModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    const bytes = wasmSimdBytes();
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  return compiled;
}

/** The wasm backend's heap (emscripten's exported memory, `Module.asm.memory` in 4.22.0), or null. */
export function heapMemory(backend: BackendWasm): WebAssembly.Memory | null {
  const memory = (backend.wasm as unknown as { asm?: { memory?: WebAssembly.Memory } }).asm?.memory;
  return memory instanceof WebAssembly.Memory ? memory : null;
}

/**
 * rtdlab's SIMD kernels on `backend`'s heap, or null where they cannot run there: no wasm SIMD, switched
 * off, or a heap they cannot import (another emscripten layout, or the threaded build's shared memory);
 * callers then run their JS loops. Instantiated once per heap; they see the heap grow, as the backend's
 * own kernels do.
 */
export function wasmSimdKernels(backend: BackendWasm): WasmSimdKernels | null {
  const module = enabled ? simdModule() : null;
  const memory = module && heapMemory(backend);
  if (module == null || memory == null) return null;
  let kernels = instances.get(memory);
  if (kernels === undefined) {
    try {
      kernels = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as WasmSimdKernels;
    } catch {
      kernels = null; // a shared memory does not link to the module's unshared import
    }
    instances.set(memory, kernels);
  }
  return kernels;
}

/** Byte address of a tensor's data in the wasm heap. */
export function heapAddress(backend: BackendWasm, t: tf.TensorInfo): number {
  return backend.dataIdMap.get(t.dataId)!.memoryOffset;
}

const heapCopies = new WeakMap<WebAssembly.Memory, Map<Float64Array, number>>();

/**
 * Address of a copy of `data` in `backend`'s heap, made on first use and kept for the heap's life (the
 * SIMD kernels can read only that memory).
 */
export function heapConstant(backend: BackendWasm, data: Float64Array): number {
  const memory = heapMemory(backend);
  if (memory == null) throw new Error("heapConstant: the wasm backend's heap is not reachable");
  let copies = heapCopies.get(memory);
  if (copies == null) heapCopies.set(memory, copies = new Map());
  const known = copies.get(data);
  if (known != null) return known;
  // emscripten's malloc (not in the package's typings); 8-byte aligned, as a Float64Array view needs.
  const address = (backend.wasm as unknown as { _malloc(bytes: number): number })._malloc(data.byteLength);
  new Float64Array(memory.buffer, address, data.length).set(data);
  copies.set(data, address);
  return address;
}

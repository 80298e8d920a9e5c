/**
 * The host sampler's weights (lib/train/sampling.ts) in wasm SIMD, two rows at a time.
 *
 * On wasm the sampler reads the generator's logits as a view of the backend's heap; wasm_simd.wat
 * `sample_weights` computes the same float64 running sums, bit for bit, with two rows in the two lanes
 * (one dependent add per value pair instead of per value, and the exp two at a time). A row with a value
 * outside the fast exp's range (−700, 0] is flagged and redone on the host by the caller.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { heapConstant, heapMemory, type WasmSimdKernels, wasmSimdKernels } from "./wasm_simd.ts";

/** Weights for pairs of rows of one logits matrix in the wasm heap. */
export interface HeapWeights {
  /** A view of the logits made after any allocation here (an allocation may grow, and detach, the heap). */
  logits: Float32Array;
  /**
   * Running sums for rows r and r + 1 (`pair` false: row r only) into {@link weights}; returns the rows
   * to redo on the host as bits (1: row r, 2: row r + 1).
   */
  weigh(r: number, banned0: number, banned1: number, pair: boolean): number;
  /** weights[2v + lane]: the running sum of row r + lane up to v. */
  weights: Float64Array;
}

/** Row pairs weighed in wasm SIMD so far (tests check that the SIMD path really ran). */
export let simdRowPairs = 0;

const scratch = new WeakMap<WebAssembly.Memory, { address: number; bytes: number }>();

/**
 * The SIMD weights for `logits` ([rows, vocab], flat) when they are a view of the active wasm backend's
 * heap and its SIMD kernels run, else null. `constants` is the sampler's exp table and constants
 * (lib/train/sampling.ts, in the order wasm_simd.wat documents). Valid until the next call: that may
 * free its scratch buffer for a larger one.
 */
export function heapWeights(
  logits: Float32Array,
  vocab: number,
  temperature: number,
  constants: Float64Array,
): HeapWeights | null {
  if (tf.getBackend() !== "wasm" || logits.length === 0) return null;
  const backend = tf.backend() as unknown as BackendWasm;
  const memory = heapMemory(backend);
  const simd = memory && logits.buffer === memory.buffer ? wasmSimdKernels(backend) : null;
  if (simd == null || memory == null) return null;
  const address = logits.byteOffset;
  const length = logits.length;
  const c = heapConstant(backend, constants);
  const bytes = 16 * vocab;
  let buffer = scratch.get(memory);
  if (buffer == null || buffer.bytes < bytes) {
    const wasm = backend.wasm as unknown as { _malloc(n: number): number; _free(p: number): void };
    if (buffer != null) wasm._free(buffer.address);
    // Kept for the heap's life, like heapConstant: one buffer per heap, the largest asked for so far
    // (so a HeapWeights is valid until the next heapWeights call).
    const address = wasm._malloc(bytes);
    if (address === 0) {
      throw new Error(`sampleFromLogits: the wasm heap has no room for ${bytes} bytes of weights`);
    }
    buffer = { address, bytes };
    scratch.set(memory, buffer);
  }
  const at = buffer.address;
  return {
    logits: new Float32Array(memory.buffer, address, length),
    weights: new Float64Array(memory.buffer, at, 2 * vocab),
    weigh: (r, banned0, banned1, pair) => {
      if (!(Number.isInteger(r) && r >= 0 && (r + (pair ? 2 : 1)) * vocab <= length)) {
        throw new RangeError(
          `heapWeights: row ${r}${pair ? ` and ${r + 1}` : ""} not in ${length / vocab} rows`,
        );
      }
      return weighPair(simd, address, r, vocab, banned0, banned1, pair, temperature, c, at);
    },
  };
}

function weighPair(
  simd: WasmSimdKernels,
  address: number,
  r: number,
  vocab: number,
  banned0: number,
  banned1: number,
  pair: boolean,
  temperature: number,
  constants: number,
  weights: number,
): number {
  simdRowPairs++;
  const x0 = address + 4 * r * vocab;
  const x1 = pair ? x0 + 4 * vocab : x0;
  const max0 = simd.masked_max(x0, vocab, banned0);
  const max1 = pair ? simd.masked_max(x1, vocab, banned1) : max0;
  const redo = simd.sample_weights(
    x0,
    x1,
    vocab,
    banned0,
    pair ? banned1 : banned0,
    max0,
    max1,
    temperature,
    temperature === 1 ? 0 : 1,
    constants,
    weights,
  );
  return pair ? redo : redo & 1;
}

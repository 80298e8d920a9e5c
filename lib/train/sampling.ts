/**
 * Drawing the generator's replacements and the discriminator's labels (README, *The science, as implemented*).
 *
 * Replacements x̂ ~ softmax(logits / T) at the selected positions, drawn by inverse CDF from the
 * run's seeded Rng (no gradient flows through a sample): on the device where the backend registers
 * rtdlab's row sampler (cuda), else on the host. Labels are 1 where x̂ ≠ original:
 * a sample equal to the original token counts as real.
 *
 * @module
 */

import * as tf from "../tf.ts";
import type { Rng } from "../rng.ts";
import { SAMPLE_ROWS } from "../backend/sample_rows.ts";
import { heapWeights } from "../backend/wasm_sample.ts";

/**
 * One sample per row of `logits` ([rows, vocab], flat). With `disallow`, row i never returns
 * `disallow[i]` (ELECTRA's optional "disallow the correct token"). `logits` may be a view of the wasm
 * backend's heap (then the weights run in wasm SIMD, the same bits); such a view may be detached on
 * return (the weights' scratch buffer can grow the heap), so read the tensor again, not the view.
 */
export function sampleFromLogits(
  logits: Float32Array,
  rows: number,
  vocab: number,
  temperature: number,
  rng: Rng,
  disallow?: Int32Array,
): Int32Array {
  if (logits.length !== rows * vocab) {
    throw new Error(`sampleFromLogits: ${logits.length} logits for ${rows}×${vocab}`);
  }
  const out = new Int32Array(rows);
  const weights = new Float64Array(vocab);
  // Logits in the wasm heap (Pretrainer's view of the generator's output): the same weights, two rows
  // at a time in wasm SIMD (lib/backend/wasm_sample.ts); rows it flags are weighed here.
  const heap = heapWeights(logits, vocab, temperature, SAMPLER_CONSTANTS);
  if (heap != null) logits = heap.logits;
  let redo = 0;
  for (let r = 0; r < rows; r++) {
    const banned = disallow ? disallow[r] : -1;
    const lane = r % 2;
    if (heap != null) {
      if (lane === 0) {
        const pair = r + 1 < rows;
        redo = heap.weigh(r, banned, pair && disallow ? disallow[r + 1] : -1, pair);
      }
      if ((redo & (1 << lane)) === 0) {
        const w = heap.weights;
        out[r] = pick(w, lane, 2, vocab, rng.next() * w[2 * (vocab - 1) + lane], banned);
        continue;
      }
    }
    const total = rowWeights(logits.subarray(r * vocab, (r + 1) * vocab), temperature, banned, weights);
    out[r] = pick(weights, 0, 1, vocab, rng.next() * total, banned);
  }
  return out;
}

/**
 * weights[v] = Σ_{u ≤ v} e^{(row[u] − max) / T} (0 at `banned`, max over the others): the running sums
 * the sampler picks from by inverse CDF; returns the total.
 */
export function rowWeights(
  row: Float32Array,
  temperature: number,
  banned: number,
  weights: Float64Array,
): number {
  const vocab = row.length;
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) if (v !== banned && row[v] > max) max = row[v];
  let total = 0;
  if (temperature === 1) { // x / 1 === x: the same weights without a division per logit
    for (let v = 0; v < vocab; v++) {
      const x = row[v] - max;
      total += v === banned ? 0 : x > -700 && x <= 0 ? expNonPositive(x) : Math.exp(x);
      weights[v] = total;
    }
  } else {
    for (let v = 0; v < vocab; v++) {
      const x = (row[v] - max) / temperature;
      total += v === banned ? 0 : x > -700 && x <= 0 ? expNonPositive(x) : Math.exp(x);
      weights[v] = total;
    }
  }
  return total;
}

/**
 * The first v with weights[offset + v·stride] > u (running sums never decrease): a binary search, the
 * same pick as a scan; never `banned` (only reachable when every other weight underflowed).
 */
function pick(
  weights: Float64Array,
  offset: number,
  stride: number,
  vocab: number,
  u: number,
  banned: number,
): number {
  let picked = vocab - 1;
  if (weights[offset + (vocab - 1) * stride] > u) {
    let lo = 0;
    while (lo < picked) {
      const mid = (lo + picked) >> 1;
      if (weights[offset + mid * stride] > u) picked = mid;
      else lo = mid + 1;
    }
  }
  if (picked === banned) picked = banned === 0 ? 1 : 0;
  return picked;
}

// e^x for −700 < x ≤ 0 within 4e-16 relative of Math.exp (2 ulp; tests/rtd_test.ts), at ~3.5 ns a
// value against Math.exp's ~10: the host sampler takes rows × vocab of them a step (1.2M at deberta-mini
// b8, where Math.exp was 12 ms of a 120 ms step). Picks move only if u lands within 1e-15 of a boundary.
// e^x = 2^(k/32) · e^r with k = round(32x / ln 2), |r| ≤ ln2/64, e^r by its Taylor series to r⁶ (error
// < 4e-18); ln 2 / 32 is split in two so that k · LN2_HI_32 is exact.
const EXP_SHIFT = 5;
const EXP_STEPS = 1 << EXP_SHIFT; // 32 steps of 2^(1/32)
const EXP_TABLE = Float64Array.from({ length: EXP_STEPS }, (_, j) => 2 ** (j / EXP_STEPS));
const POW2_NEG = Float64Array.from({ length: 1100 }, (_, i) => 2 ** (i - 1099)); // 2^-1099 … 2^0
const LN2_HI_32 = 6.93147180369123816490e-01 / EXP_STEPS; // ln 2's upper 32 bits
const LN2_LO_32 = 1.90821492927058770002e-10 / EXP_STEPS;
const ROUND = 6755399441055744; // 1.5 · 2^52: (y + ROUND) − ROUND rounds y to an integer

/**
 * The sampler's exp table and constants, built by the same expressions as above (so the same float64
 * values), in the order wasm_simd.wat `sample_weights` reads them. Read-only: the wasm heap keeps a
 * copy made on first use.
 */
export const SAMPLER_CONSTANTS: Float64Array = Float64Array.from([
  ...EXP_TABLE,
  EXP_STEPS / Math.LN2,
  LN2_HI_32,
  LN2_LO_32,
  1 / 2,
  1 / 6,
  1 / 24,
  1 / 120,
  1 / 720,
  ROUND,
]);

function expNonPositive(x: number): number {
  const kf = (x * (EXP_STEPS / Math.LN2) + ROUND) - ROUND;
  const r = (x - kf * LN2_HI_32) - kf * LN2_LO_32;
  const k = kf | 0;
  const er = 1 + r * (1 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720))))));
  return EXP_TABLE[k & (EXP_STEPS - 1)] * er * POW2_NEG[(k >> EXP_SHIFT) + 1099];
}

/** {@link expNonPositive}, exported for its accuracy test. */
export const expNonPositiveForTest: (x: number) => number = expNonPositive;

/**
 * {@link sampleFromLogits} on the device, for backends that register the row sampler
 * (lib/backend/sample_rows.ts): the same uniforms in the same order, so the same picks (up to the
 * summation order of the weights), and only `rows` ids come back to the host instead of rows × vocab
 * logits. Returns null when the active backend has no such kernel.
 */
export async function sampleOnDevice(
  logits: tf.Tensor2D,
  temperature: number,
  rng: Rng,
  disallow?: Int32Array,
): Promise<Int32Array | null> {
  const picks = sampleOnDeviceTensor(logits, temperature, rng, disallow);
  if (picks == null) return null;
  try {
    return (await picks.data()) as Int32Array;
  } finally {
    picks.dispose();
  }
}

/**
 * {@link sampleOnDevice} without the read: the picks as an int32 tensor [rows] on the device (the
 * caller disposes it), or null when the active backend has no row sampler.
 */
export function sampleOnDeviceTensor(
  logits: tf.Tensor2D,
  temperature: number,
  rng: Rng,
  disallow?: Int32Array,
): tf.Tensor1D | null {
  if (tf.getKernel(SAMPLE_ROWS, tf.getBackend()) == null) return null;
  const rows = logits.shape[0];
  const u = new Float64Array(rows);
  for (let r = 0; r < rows; r++) u[r] = rng.next();
  const uniforms = tf.tensor1d(new Int32Array(u.buffer), "int32");
  const banned = disallow ? tf.tensor1d(disallow, "int32") : null;
  const inputs: tf.NamedTensorMap = banned ? { logits, uniforms, banned } : { logits, uniforms };
  try {
    return tf.engine().runKernel(SAMPLE_ROWS, inputs, { temperature }) as tf.Tensor1D;
  } finally {
    tf.dispose([uniforms, ...(banned ? [banned] : [])]);
  }
}

/** The discriminator's input and labels for one batch. */
export interface Corruption {
  /** Original ids with every selected position replaced by its sample [B·L]. */
  corruptedIds: Int32Array;
  /** 1 where the corrupted token differs from the original, else 0 [B·L]. */
  labels: Float32Array;
  /** How many selected positions the generator got right (sample == original). */
  sampledCorrect: number;
}

/** Builds D's input from the originals, the selected positions and their samples; labels x̂ ≠ x as replaced. */
export function corrupt(original: Int32Array, selected: Int32Array, samples: Int32Array): Corruption {
  const corruptedIds = original.slice();
  const labels = new Float32Array(original.length);
  let sampledCorrect = 0;
  for (let i = 0; i < selected.length; i++) {
    const pos = selected[i];
    corruptedIds[pos] = samples[i];
    if (samples[i] !== original[pos]) labels[pos] = 1;
    else sampledCorrect++;
  }
  return { corruptedIds, labels, sampledCorrect };
}

/**
 * Micro-benchmark of the ops a training step spends its time in, at the shapes a config's models use:
 * the dense layers' matMuls with the transposed variants their gradients need (dX = dY·W,
 * dW = dYᵀ·X), the batched attention products, the generator's vocabulary projection, softmax over
 * [B, h, L, L], LayerNorm (forward and backward), gather and its gradient, GELU, dropout and the
 * transposes/axis-0 sums that backward passes lean on. "fwd+bwd" rows include tf.grads' own overhead.
 *
 * @module
 */

import process from "node:process";
import * as tf from "../tf.ts";
import { generatorSize, type RunConfig } from "../config.ts";
import { dropoutMask, layerNormWith } from "../model/layers.ts";
import { crossEntropy } from "../train/pretrain.ts";
import { median } from "./case.ts";

/** One op to time: builds its inputs once, then runs `run` on them. */
export interface MicroOp {
  name: string;
  /** Shapes as text, for the table. */
  shape: string;
  /** Floating-point operations of one run (0 when not meaningful). */
  flops: number;
  /** Bytes read + written by one run (for memory-bound ops; 0 when not given). */
  bytes: number;
  setup: () => tf.Tensor[];
  run: (inputs: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
}

/** A timed op. */
export interface MicroResult {
  name: string;
  shape: string;
  reps: number;
  ms: number;
  gflops: number | null;
  gbps: number | null;
}

const f32 = 4;

function mm(
  name: string,
  a: number[],
  b: number[],
  transposeA = false,
  transposeB = false,
): MicroOp {
  const [m, k] = transposeA ? [a[a.length - 1], a[a.length - 2]] : a.slice(-2);
  const n = transposeB ? b[b.length - 2] : b[b.length - 1];
  const batch = a.slice(0, -2).reduce((x, y) => x * y, 1);
  const t = (s: number[], tr: boolean) => `[${s.join(",")}]${tr ? "ᵀ" : ""}`;
  return {
    name,
    shape: `${t(a, transposeA)}·${t(b, transposeB)}`,
    flops: 2 * batch * m * k * n,
    bytes: 0,
    setup: () => [tf.randomNormal(a), tf.randomNormal(b)],
    run: ([x, y]) => tf.matMul(x, y, transposeA, transposeB),
  };
}

/** The three products of a dense layer y = x·Wᵀ (W [out, in]) over n rows: forward, dX, dW. */
function denseOps(label: string, n: number, inp: number, out: number): MicroOp[] {
  return [
    mm(`${label} fwd x·Wᵀ`, [n, inp], [out, inp], false, true),
    mm(`${label} dX = dY·W`, [n, out], [out, inp]),
    mm(`${label} dW = dYᵀ·X`, [n, out], [n, inp], true, false),
  ];
}

function elementwise(
  name: string,
  shape: number[],
  passes: number,
  run: (x: tf.Tensor) => tf.Tensor,
): MicroOp {
  const size = shape.reduce((a, b) => a * b, 1);
  return {
    name,
    shape: `[${shape.join(",")}]`,
    flops: 0,
    bytes: passes * size * f32,
    setup: () => [tf.randomNormal(shape)],
    run: ([x]) => run(x),
  };
}

/** The ops worth timing for `config` at `batch` (sequence length from the config). */
export function microOps(config: RunConfig, batch: number): MicroOp[] {
  const L = config.seqLength, n = batch * L, E = config.embeddingSize, V = config.vocabSize;
  const d = config.discriminator, g = generatorSize(config);
  const m = batch * Math.max(1, Math.round(L * config.maskSelectProb));
  const ops: MicroOp[] = [];
  for (const [who, s] of [["D", d], ["G", g]] as const) {
    const H = s.hiddenSize, I = s.intermediateSize, h = s.numHeads, dh = H / h;
    ops.push(...denseOps(`${who} dense H→H`, n, H, H));
    ops.push(...denseOps(`${who} FFN in H→I`, n, H, I));
    ops.push(...denseOps(`${who} FFN out I→H`, n, I, H));
    const q = [batch, h, L, dh], p = [batch, h, L, L];
    ops.push(
      // Backward: dP = dC·Vᵀ and dS·K have the forward shapes; dV = Pᵀ·dC and dK = dSᵀ·Q transpose A.
      mm(`${who} attn Q·Kᵀ, dC·Vᵀ`, q, q, false, true),
      mm(`${who} attn P·V, dS·K`, p, q),
      mm(`${who} attn Pᵀ·dC, dSᵀ·Q`, p, q, true, false),
    );
    ops.push(elementwise(`${who} softmax`, p, 2, (x) => tf.softmax(x)));
    // As the model runs it: the mask drawn on the host (lib/model/layers.ts), one multiply.
    ops.push(elementwise(`${who} dropout 0.1`, p, 3, (x) => tf.mul(x, dropoutMask(x.shape, 0.1, 7))));
    ops.push(
      layerNormOp(`${who} LayerNorm fwd`, [n, H], false),
      layerNormOp(`${who} LayerNorm fwd+bwd`, [n, H], true),
    );
    ops.push(
      elementwise(
        `${who} GELU (erf)`,
        [n, I],
        2,
        (x) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)),
      ),
    );
    ops.push(elementwise(`${who} transpose`, [n, H], 2, (x) => tf.transpose(x)));
    ops.push(elementwise(`${who} sum axis 0 (bias grad)`, [n, H], 1, (x) => tf.sum(x, 0)));
  }
  ops.push(...denseOps("G vocab proj E→V", m, E, V));
  ops.push({
    name: "G cross-entropy fwd+bwd",
    shape: `[${m},${V}]`,
    flops: 0,
    bytes: 4 * m * V * f32,
    setup: () => [tf.randomNormal([m, V]), tf.randomUniform([m], 0, V, "int32")],
    run: ([logits, targets]) => {
      const f = (x: tf.Tensor) => crossEntropy(x as tf.Tensor2D, targets as tf.Tensor1D);
      const { value, grad } = tf.valueAndGrad(f)(logits);
      return [value, grad];
    },
  });
  ops.push({
    name: "embedding gather",
    shape: `[${V},${E}] × ${n} ids`,
    flops: 0,
    bytes: 2 * n * E * f32,
    setup: () => [tf.randomNormal([V, E]), tf.randomUniform([n], 0, V, "int32")],
    run: ([w, ids]) => tf.gather(w, ids),
  }, {
    name: "embedding gather grad (segment sum)",
    shape: `${n}×[${E}] → [${V},${E}]`,
    flops: 0,
    bytes: (2 * n * E + V * E) * f32,
    setup: () => [tf.randomNormal([n, E]), tf.randomUniform([n], 0, V, "int32")],
    run: ([dy, ids]) => tf.unsortedSegmentSum(dy, ids as tf.Tensor1D, V),
  });
  return ops;
}

function layerNormOp(name: string, shape: number[], backward: boolean): MicroOp {
  const size = shape.reduce((a, b) => a * b, 1);
  const H = shape[shape.length - 1];
  return {
    name,
    shape: `[${shape.join(",")}]`,
    flops: 0,
    bytes: (backward ? 6 : 2) * size * f32,
    setup: () => [tf.randomNormal(shape), tf.ones([H]), tf.zeros([H])],
    run: ([x, gamma, beta]) => {
      if (!backward) return layerNormWith(x, gamma, beta, 1e-12);
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(layerNormWith(a, b, c, 1e-12));
      return tf.grads(f)([x, gamma, beta]);
    },
  };
}

/**
 * Times one op: on wasm/cpu the median process CPU time over reps (robust to other processes on a
 * shared machine; these backends run synchronously on this thread), elsewhere wall time per rep of a
 * queued batch with one sync at the end.
 */
export async function timeOp(op: MicroOp, targetMs = 300, maxReps = 30): Promise<MicroResult> {
  const inputs = op.setup();
  const gpu = !["wasm", "cpu"].includes(tf.getBackend());
  const once = async () => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const out = tf.tidy(() => op.run(inputs));
    const outs = Array.isArray(out) ? out : [out];
    if (gpu) await outs[0].data();
    tf.dispose(outs);
    if (gpu) return performance.now() - t0;
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1000;
  };
  const first = await once(); // warm-up (kernel compilation, allocation)
  if (first > 20 * targetMs) {
    // Pathologically slow here (the cpu backend's UnsortedSegmentSum loops over every segment):
    // report the one run rather than spend minutes on repetitions.
    tf.dispose(inputs);
    return result(op, 1, first);
  }
  const est = Math.max(await once(), 1e-3);
  const reps = Math.max(3, Math.min(maxReps, Math.ceil(targetMs / est)));
  let ms: number;
  if (gpu) {
    const t0 = performance.now();
    let last: tf.Tensor[] = [];
    for (let i = 0; i < reps; i++) {
      tf.dispose(last);
      const out = tf.tidy(() => op.run(inputs));
      last = Array.isArray(out) ? out : [out];
    }
    await last[0].data();
    tf.dispose(last);
    ms = (performance.now() - t0) / reps;
  } else {
    const ts: number[] = [];
    for (let i = 0; i < reps; i++) ts.push(await once());
    ms = median(ts);
  }
  tf.dispose(inputs);
  return result(op, reps, ms);
}

function result(op: MicroOp, reps: number, ms: number): MicroResult {
  return {
    name: op.name,
    shape: op.shape,
    reps,
    ms,
    gflops: op.flops ? op.flops / (ms * 1e6) : null,
    gbps: op.bytes ? op.bytes / (ms * 1e6) : null,
  };
}

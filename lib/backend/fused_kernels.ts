/**
 * rtdlab's fused kernels: their names, their contracts, and the switch that turns them off.
 *
 * A fused kernel does in one pass what a chain of tfjs ops does in many. lib/model/layers.ts and
 * lib/train/optimizer.ts call one when the active backend registers it (wasm: GELU, dropout, LayerNorm
 * and the cross-entropy's gradient, lib/backend/wasm_fused.ts and wasm_layer_norm.ts; cuda: all of them,
 * lib/backend/cuda/kernels.cu),
 * and the plain tensor ops otherwise, so every backend computes the same function:
 *
 * - `RtdlabGelu` {x} → y = x·Φ(x); `RtdlabGeluGrad` {dy, x} → dy·(Φ(x) + x·φ(x)).
 * - `RtdlabBiasGelu` {x, bias} → GELU(x + bias), bias [cols] added to every row (a dense layer's
 *   bias, folded in); `RtdlabBiasGeluGrad` {dy, x, bias} → the gradient for x + bias.
 * - `RtdlabLayerNorm` {x, gamma, beta}, attr eps → [y, x̂, rstd]: over the last axis, x̂ = (x −
 *   mean)·rstd, rstd = 1/√(var + eps) (shape [..., 1]), y = x̂·γ + β. With inputs h (and hBias) and
 *   attrs rate, seed it normalises x + dropout(h + hBias) instead: a post-LN block's residual plus its
 *   sublayer's output.
 * - `RtdlabLayerNormGrad` {dy, xhat, rstd, gamma} → [dx, dγ, dβ]: with dx̂ = dy·γ, dx = (dx̂ −
 *   mean(dx̂) − x̂·mean(dx̂·x̂))·rstd; dγ = Σ_rows dy·x̂, dβ = Σ_rows dy. With attr withH (and rate,
 *   seed) → [dx, dh, dγ, dβ], dh = dropout(dx) the gradient for h + hBias; with withHBias instead →
 *   [dx, dh, dγ, dβ, dhBias], dhBias = Σ_rows dh.
 * - `RtdlabSumSquares` {x0, x1, …} (float32, any shapes) → the scalar Σ x² over all of them (the
 *   optimiser's global gradient norm is its square root).
 * - `RtdlabDropout` {x}, attrs rate, seed → x·mask, the mask of lib/backend/dropout_mask.ts (bit for
 *   bit the product with that mask tensor); the gradient is the same kernel on dy.
 * - `RtdlabAttentionSoftmax` {x, bias}, attr scale → softmax(x·scale + bias) over the last axis, x
 *   [B, heads, Lq, Lk], bias [B, 1, 1, Lk]; with attrs rate > 0 and seed → [y, y·mask] (the attention
 *   dropout, mask as `RtdlabDropout`'s). `RtdlabAttentionSoftmaxGrad` {dy, y}, attr scale (rate, seed) →
 *   the scores' gradient ((g·y) − Σ(g·y)·y)·scale with g = dy (dy·mask: dy is then the dropout's).
 * - `RtdlabBiasSplitHeads` {x, bias}, attrs batch, length, heads → x + bias as attention heads [B,
 *   heads, L, d] (x: a query/key/value dense output before its bias, [B·L, heads·d]).
 * - `RtdlabQkvHeads` {x, wq, wk, wv, bq, bk, bv}, attrs batch, length, heads → [q, k, v], each x·Wᵀ + b
 *   as attention heads [B, heads, L, d] (x [B·L, H], W [H, H]): the three projections as one gemm with
 *   [W_q; W_k; W_v]; `RtdlabQkvHeadsGrad` {x, wq, wk, wv, dq, dk, dv} → [dx, dW_q, dW_k, dW_v, db_q,
 *   db_k, db_v] (its gradient, registered here).
 * - `RtdlabDisentangledSoftmax` {c2c, c2p, p2c [heads, B, L, L], bias, pair [B, L, L]}, attrs scale
 *   (rate, seed) → [y, out]: DeBERTa's XSoftmax, y = softmax((c2c + c2p + p2c)·scale + bias), out =
 *   y·pair, and with rate > 0 out's attention dropout; `RtdlabDisentangledSoftmaxGrad` {dy, y, pair},
 *   the same attrs → the gradient of each score term (the three are equal). With inputs c2pIndex and
 *   p2cIndex [L·L] int32, c2p and p2c are instead the scores against every relative row [heads·B, L·R]
 *   (Q·K_rᵀ, K·Q_rᵀ), and the term for pair (i, j) is row hb's element index[i·L + j] (the gather fused).
 * - `RtdlabRelativeBucketSum` {d [heads, B, L, L], range [L·R·2] int32}, attr transposed → [heads·B,
 *   L·R]: the gradient of that fused gather, out[hb, o·R + r] = Σ d[hb, o, t] (transposed: d[hb, t, o])
 *   over t in [range[2(o·R + r)], range[2(o·R + r) + 1]): each relative row's pairs are a contiguous run
 *   of keys (c2p) or of queries (p2c), so the sums need no atomics and run in a fixed order.
 * - `RtdlabDisentangledProjections` {x [B·L, H], rel [R, H], wq, wk, wv, bq, bk, bv}, attrs batch, length,
 *   heads → [q, k, v, K_r, Q_r]: DeBERTa's content heads [heads, B, L, d] and its relative rows through the
 *   key and query projections [heads, R, d] (biases included); `RtdlabDisentangledProjectionsGrad` {x, rel,
 *   wq, wk, wv, dq, dk, dv, dPosKey, dPosQuery} → [dx, drel, dW_q, dW_k, dW_v, db_q, db_k, db_v] (registered
 *   here).
 * - `RtdlabColumnSums` {x} [rows, cols] → [cols], Σ over the rows (bias gradients): a gemm with a row
 *   of ones the backend keeps, instead of a ones tensor built and uploaded by the host every call.
 * - `RtdlabSoftmaxCrossEntropy` {logits [M, V], targets [M] int32} → [loss [M], probs [M, V]]: per row
 *   loss = logSumExp(row) − row[target] and probs = softmax(row) (the generator's MLM loss, which
 *   pretrain.ts crossEntropy averages); `RtdlabSoftmaxCrossEntropyGrad` {probs, targets, dy} (dy a
 *   float32 scalar) → (probs − oneHot(targets))·(dy / M), the gradient of the mean.
 *
 * Why: on a GPU at ELECTRA-Small sizes a step is bound by the host's kernel launches, not by the
 * device (lib/backend/cuda/GPU_RUNS.md); LayerNorm's forward and backward pass were ~20 launches,
 * GELU's 13, attention's scale, mask and softmax 8, dropout 3, and the global norm ~3 per parameter
 * tensor. On cuda values equal the unfused ops' up to float32 rounding (sums run in double), not bit for
 * bit; on wasm dropout, LayerNorm and the cross-entropy's gradient give the unfused ops' bits exactly
 * (lib/backend/wasm_layer_norm.ts) and GELU those of its former JS loop, which differ from the unfused
 * ops' erf by float32 rounding.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { DROPOUT_MASK } from "./dropout_mask.ts";

/** Kernel names (rtdlab's own; see the module doc for each contract). */
export const FUSED = {
  gelu: "RtdlabGelu",
  geluGrad: "RtdlabGeluGrad",
  biasGelu: "RtdlabBiasGelu",
  biasGeluGrad: "RtdlabBiasGeluGrad",
  layerNorm: "RtdlabLayerNorm",
  layerNormGrad: "RtdlabLayerNormGrad",
  sumSquares: "RtdlabSumSquares",
  dropout: "RtdlabDropout",
  attentionSoftmax: "RtdlabAttentionSoftmax",
  attentionSoftmaxGrad: "RtdlabAttentionSoftmaxGrad",
  columnSums: "RtdlabColumnSums",
  biasSplitHeads: "RtdlabBiasSplitHeads",
  qkvHeads: "RtdlabQkvHeads",
  qkvHeadsGrad: "RtdlabQkvHeadsGrad",
  disentangledSoftmax: "RtdlabDisentangledSoftmax",
  disentangledSoftmaxGrad: "RtdlabDisentangledSoftmaxGrad",
  disentangledProjections: "RtdlabDisentangledProjections",
  disentangledProjectionsGrad: "RtdlabDisentangledProjectionsGrad",
  relativeBucketSum: "RtdlabRelativeBucketSum",
  softmaxCrossEntropy: "RtdlabSoftmaxCrossEntropy",
  softmaxCrossEntropyGrad: "RtdlabSoftmaxCrossEntropyGrad",
} as const;

/** The fused operations callers can switch (dropoutMask: lib/backend/dropout_mask.ts). */
export type FusedOp =
  | "gelu"
  | "biasGelu"
  | "layerNorm"
  | "sumSquares"
  | "dropout"
  | "attentionSoftmax"
  | "columnSums"
  | "biasSplitHeads"
  | "qkvHeads"
  | "disentangledSoftmax"
  | "disentangledProjections"
  | "relativeBucketSum"
  | "softmaxCrossEntropy"
  | "softmaxCrossEntropyGrad"
  | "dropoutMask";

const KERNEL: Record<FusedOp, string> = {
  gelu: FUSED.gelu,
  biasGelu: FUSED.biasGelu,
  layerNorm: FUSED.layerNorm,
  sumSquares: FUSED.sumSquares,
  dropout: FUSED.dropout,
  attentionSoftmax: FUSED.attentionSoftmax,
  columnSums: FUSED.columnSums,
  biasSplitHeads: FUSED.biasSplitHeads,
  qkvHeads: FUSED.qkvHeads,
  disentangledSoftmax: FUSED.disentangledSoftmax,
  disentangledProjections: FUSED.disentangledProjections,
  relativeBucketSum: FUSED.relativeBucketSum,
  softmaxCrossEntropy: FUSED.softmaxCrossEntropy,
  // The gradient alone (wasm registers it without the forward kernel: lib/train/pretrain.ts crossEntropy).
  softmaxCrossEntropyGrad: FUSED.softmaxCrossEntropyGrad,
  dropoutMask: DROPOUT_MASK,
};
const ALL = Object.keys(KERNEL) as FusedOp[];
const enabled = Object.fromEntries(ALL.map((op) => [op, true])) as Record<FusedOp, boolean>;

/**
 * Turns rtdlab's fused kernels on (default) or off, all or some: callers then run the plain tensor
 * ops (or build dropout masks on the host).
 */
export function useFusedKernels(on: boolean, which: FusedOp[] = ALL): void {
  for (const op of which) enabled[op] = on;
}

const runnable = new Map<string, () => boolean>();

/**
 * Lets a backend's fused kernel say, each time callers ask, whether it can run now: wasm's LayerNorm
 * runs only where rtdlab's wasm SIMD module can (lib/backend/wasm_layer_norm.ts).
 */
export function setFusedKernelRunnable(kernelName: string, backendName: string, can: () => boolean): void {
  runnable.set(`${backendName}/${kernelName}`, can);
}

/**
 * True when callers should use the fused kernel for `op`: it is on, the active backend registers it,
 * and it can run there now.
 */
export function fusedKernelsActive(op: FusedOp): boolean {
  const backend = tf.getBackend();
  return enabled[op] && tf.getKernel(KERNEL[op], backend) != null &&
    (runnable.get(`${backend}/${KERNEL[op]}`)?.() ?? true);
}

/**
 * Registers the gradient of a fused kernel with several outputs (tf.customGrad takes one): `gradKernel`
 * gets the `saved` inputs and the outputs' gradients under `dyNames`, and returns the gradients of
 * `inputNames` in that order.
 */
function registerFusedGradient(
  kernelName: string,
  gradKernel: string,
  saved: string[],
  dyNames: string[],
  inputNames: string[],
): void {
  tf.registerGradient({
    kernelName,
    inputsToSave: saved,
    gradFunc: (dy, savedTensors, attrs) => {
      const gradInputs: tf.NamedTensorMap = {};
      saved.forEach((n, i) => gradInputs[n] = savedTensors[i]);
      (dy as tf.Tensor[]).forEach((t, i) => gradInputs[dyNames[i]] = t);
      const grads = tf.engine().runKernel(
        gradKernel,
        gradInputs,
        attrs as unknown as tf.NamedAttrMap,
      ) as tf.Tensor[];
      return Object.fromEntries(inputNames.map((n, i) => [n, () => grads[i]]));
    },
  });
}

registerFusedGradient(
  FUSED.qkvHeads,
  FUSED.qkvHeadsGrad,
  ["x", "wq", "wk", "wv"],
  ["dq", "dk", "dv"],
  ["x", "wq", "wk", "wv", "bq", "bk", "bv"],
);
registerFusedGradient(
  FUSED.disentangledProjections,
  FUSED.disentangledProjectionsGrad,
  ["x", "rel", "wq", "wk", "wv"],
  ["dq", "dk", "dv", "dPosKey", "dPosQuery"],
  ["x", "rel", "wq", "wk", "wv", "bq", "bk", "bv"],
);

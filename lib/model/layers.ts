/**
 * The few layers an ELECTRA encoder is made of, as plain functions over named parameters:
 * dense, LayerNorm, exact GELU, dropout, multi-head self-attention.
 *
 * Dense weights use PyTorch's [out, in] layout (HuggingFace names and shapes), applied as x·Wᵀ + b.
 *
 * @module
 */

import * as tf from "../tf.ts";
import { capabilities } from "../backend/capabilities.ts";
import { FUSED, fusedKernelsActive } from "../backend/fused_kernels.ts";
import { DROPOUT_MASK, fillDropoutMask } from "../backend/dropout_mask.ts";
import type { ParameterStore } from "./params.ts";
import type { Rng } from "../rng.ts";

/** Per-forward settings shared by every layer. */
export interface LayerContext {
  params: ParameterStore;
  /** Dropout is active only when training. */
  training: boolean;
  dropout: number;
  layerNormEps: number;
  /** Source of dropout seeds (deterministic per step). */
  rng?: Rng;
  /** Hook points: when set, named activations are kept here (the caller disposes them). */
  capture?: Map<string, tf.Tensor>;
  /** Which hook names to keep; undefined = all. */
  captureFilter?: (name: string) => boolean;
}

/** Keeps `t` under hook point `name` when the context asks for it; returns `t`. */
export function hook<T extends tf.Tensor>(ctx: LayerContext, name: string, t: T): T {
  if (ctx.capture && (!ctx.captureFilter || ctx.captureFilter(name))) {
    ctx.capture.set(name, tf.keep(t.clone()));
  }
  return t;
}

// Performance note: dense, LayerNorm and GELU carry hand-written gradients (tf.customGrad). Their
// forward passes are the same ops in the same order as the plain compositions, so activations are
// bit-identical; the backward passes are the closed forms, which need about half the kernels the
// autodiff chains do, and sum over rows without an axis-0 Sum (see columnSums). Gradients agree with
// autodiff's to float rounding. Where the backend has rtdlab's fused kernels (wasm: GELU, LayerNorm,
// dropout; cuda: those and attention's scaled masked softmax) they run instead: one pass each way
// instead of 3 to 30 kernels. On wasm LayerNorm and dropout give the plain ops' bits exactly
// (lib/backend/wasm_layer_norm.ts); elsewhere values are equal to float32 rounding, not bit for bit.

/**
 * Column sums of a [rows, cols] tensor: [cols]. An axis-0 Sum transposes first, and wasm's Transpose
 * is slow (2.5 ms for [1024, 256]); there a one-segment UnsortedSegmentSum (rtdlab's JS kernel, 0.4 ms)
 * is cheapest, elsewhere a ones-row matMul (on wasm 1.5 ms: XNNPACK packs the operand every call; with
 * OpenBLAS, lib/backend/blas.ts, 0.05 ms); on cuda one gemm with the backend's own row of ones.
 */
function columnSums(x: tf.Tensor): tf.Tensor1D {
  const cols = x.shape[x.rank - 1];
  const x2 = tf.reshape(x, [-1, cols]) as tf.Tensor2D;
  if (fusedKernelsActive("columnSums")) {
    return tf.engine().runKernel(FUSED.columnSums, { x: x2 }) as tf.Tensor1D;
  }
  const rows = x2.shape[0];
  if (capabilities().segmentSumColumnSums) {
    return tf.reshape(tf.unsortedSegmentSum(x2, tf.zeros([rows], "int32") as tf.Tensor1D, 1), [cols]);
  }
  return tf.reshape(tf.matMul(tf.ones([1, rows]), x2), [cols]);
}

const addRowVectorOp = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, v] = args as tf.Tensor[];
  const shape = x.shape;
  return {
    value: tf.add(x, v),
    gradFunc: (
      dy: tf.Tensor | tf.Tensor[],
    ) => [tf.reshape(dy as tf.Tensor, shape), columnSums(dy as tf.Tensor)],
  };
});

/** x + v for x [rows, n] and v [n] (v added to every row), with v's gradient summed by a matMul. */
export function addRowVector(x: tf.Tensor2D, v: tf.Tensor1D): tf.Tensor2D {
  return addRowVectorOp(x, v) as tf.Tensor2D;
}

const denseWithBias = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, w, b] = args as tf.Tensor2D[];
  const save = args[3] as tf.GradSaveFunc;
  save([x, w]);
  return {
    value: tf.add(tf.matMul(x, w, false, true), b),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [sx, sw] = saved as tf.Tensor2D[];
      const g = dy as tf.Tensor2D;
      // The products tfjs's BatchMatMul gradient takes for transposeB = true.
      return [tf.matMul(g, sw), tf.matMul(g, sx, true, false), columnSums(g)];
    },
  };
});

/** y = x·Wᵀ + b for x [N, in], W [out, in]. */
export function dense(ctx: LayerContext, name: string, x: tf.Tensor2D): tf.Tensor2D {
  const w = ctx.params.get(`${name}.weight`) as tf.Tensor2D;
  if (!ctx.params.has(`${name}.bias`)) return tf.matMul(x, w, false, true);
  return denseWithBias(x, w, ctx.params.get(`${name}.bias`)) as tf.Tensor2D;
}

/** LayerNorm over the last axis with learned scale (`.weight`) and shift (`.bias`). */
export function layerNorm<T extends tf.Tensor>(ctx: LayerContext, name: string, x: T): T {
  return layerNormWith(x, ctx.params.get(`${name}.weight`), ctx.params.get(`${name}.bias`), ctx.layerNormEps);
}

function layerNormOp(eps: number) {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, gamma, beta] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const axis = x.rank - 1;
    // tf.moments' ops: mean, x − mean, its square, mean.
    const mean = tf.mean(x, axis, true);
    const centered = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centered), axis, true);
    const rstd = tf.rsqrt(tf.add(variance, eps));
    const xhat = tf.mul(centered, rstd);
    save([xhat, rstd, gamma]);
    return {
      value: tf.add(tf.mul(xhat, gamma), beta),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const g = dy as tf.Tensor;
        const [sxhat, srstd, sgamma] = saved;
        // dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)), dx̂ = dy · γ.
        const dxhat = tf.mul(g, sgamma);
        const dx = tf.mul(
          tf.sub(
            tf.sub(dxhat, tf.mean(dxhat, axis, true)),
            tf.mul(sxhat, tf.mean(tf.mul(dxhat, sxhat), axis, true)),
          ),
          srstd,
        );
        return [dx, columnSums(tf.mul(g, sxhat)), columnSums(g)];
      },
    };
  });
}

// The same LayerNorm as two fused kernels (lib/backend/fused_kernels.ts; wasm, cuda).
function fusedLayerNormOp(eps: number) {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, gamma, beta] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const [y, xhat, rstd] = tf.engine().runKernel(FUSED.layerNorm, { x, gamma, beta }, {
      eps,
    }) as tf.Tensor[];
    save([xhat, rstd, gamma]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sxhat, srstd, sgamma] = saved;
        return tf.engine().runKernel(
          FUSED.layerNormGrad,
          { dy: dy as tf.Tensor, xhat: sxhat, rstd: srstd, gamma: sgamma },
        ) as tf.Tensor[];
      },
    };
  });
}

// LayerNorm(residual + dropout(h + hBias)) as one kernel each way (wasm, cuda): the sublayer output of a
// post-LN block, without the bias, dropout and add kernels. The backward kernel also returns h's gradient.
function fusedAddLayerNorm(
  ctx: LayerContext,
  lnName: string,
  residual: tf.Tensor,
  h: tf.Tensor,
  hBias: tf.Tensor | null,
): tf.Tensor {
  const { rate, seed } = nextDropout(ctx) ?? { rate: 0, seed: 0 };
  const eps = ctx.layerNormEps;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, hh, g, b, hb] = args.slice(0, -1) as tf.Tensor[];
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const inputs: tf.NamedTensorMap = { x, h: hh, gamma: g, beta: b };
    if (hb) inputs.hBias = hb;
    const [y, xhat, rstd] = tf.engine().runKernel(FUSED.layerNorm, inputs, {
      eps,
      rate,
      seed,
    }) as tf.Tensor[];
    save([xhat, rstd, g]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sxhat, srstd, sgamma] = saved;
        // dh is also the gradient of h + hBias, whose bias gradient (its column sums) the kernel adds.
        return tf.engine().runKernel(
          FUSED.layerNormGrad,
          { dy: dy as tf.Tensor, xhat: sxhat, rstd: srstd, gamma: sgamma },
          hb ? { withHBias: true, rate, seed } : { withH: true, rate, seed },
        ) as tf.Tensor[];
      },
    };
  });
  const [gamma, beta] = [ctx.params.get(`${lnName}.weight`), ctx.params.get(`${lnName}.bias`)];
  return hBias ? op(residual, h, gamma, beta, hBias) : op(residual, h, gamma, beta);
}

/**
 * LayerNorm(residual + dropout(h)): a post-LN block's sublayer output (h: the attention or FFN
 * output, before dropout). The same numbers on every backend; one kernel each way on wasm and cuda.
 */
export function addLayerNorm<T extends tf.Tensor>(ctx: LayerContext, name: string, residual: T, h: T): T {
  if (!fusedKernelsActive("layerNorm")) return layerNorm(ctx, name, tf.add(residual, dropout(ctx, h)) as T);
  return fusedAddLayerNorm(ctx, name, residual, h, null) as T;
}

/**
 * LayerNorm(residual + dropout(x·Wᵀ + b)): a post-LN block's output dense layer (`denseName`), its
 * dropout, the residual and LayerNorm (`lnName`). On wasm and cuda the bias add runs inside the LayerNorm kernel.
 */
export function denseAddLayerNorm(
  ctx: LayerContext,
  denseName: string,
  lnName: string,
  residual: tf.Tensor2D,
  x: tf.Tensor2D,
): tf.Tensor2D {
  if (!fusedKernelsActive("layerNorm") || !ctx.params.has(`${denseName}.bias`)) {
    return addLayerNorm(ctx, lnName, residual, dense(ctx, denseName, x));
  }
  const h = tf.matMul(x, ctx.params.get(`${denseName}.weight`) as tf.Tensor2D, false, true);
  return fusedAddLayerNorm(ctx, lnName, residual, h, ctx.params.get(`${denseName}.bias`)) as tf.Tensor2D;
}

const layerNormOps = new Map<string, ReturnType<typeof layerNormOp>>();

/** LayerNorm with explicit scale and shift tensors. */
export function layerNormWith<T extends tf.Tensor>(x: T, gamma: tf.Tensor, beta: tf.Tensor, eps: number): T {
  const fused = fusedKernelsActive("layerNorm");
  const key = `${fused ? "fused" : "ops"}:${eps}`;
  let op = layerNormOps.get(key);
  if (!op) layerNormOps.set(key, op = fused ? fusedLayerNormOp(eps) : layerNormOp(eps));
  return op(x, gamma, beta) as T;
}

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

const geluOp = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  const save = args[1] as tf.GradSaveFunc;
  const cdf2 = tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1); // 2·Φ(x)
  save([x, cdf2]);
  return {
    value: tf.mul(tf.mul(x, 0.5), cdf2),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [sx, scdf2] = saved;
      // d/dx x·Φ(x) = Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π).
      const pdf = tf.mul(tf.exp(tf.mul(tf.square(sx), -0.5)), INV_SQRT_2PI);
      return tf.mul(dy as tf.Tensor, tf.add(tf.mul(scdf2, 0.5), tf.mul(sx, pdf)));
    },
  };
});

// The same GELU as two fused kernels (wasm, cuda).
const fusedGeluOp = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  const save = args[1] as tf.GradSaveFunc;
  save([x]);
  return {
    value: tf.engine().runKernel(FUSED.gelu, { x }) as tf.Tensor,
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
      tf.engine().runKernel(FUSED.geluGrad, { dy: dy as tf.Tensor, x: saved[0] }) as tf.Tensor,
  };
});

// GELU(x + b) as one kernel each way (cuda), for a dense layer's output before its bias.
const fusedBiasGeluOp = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, bias] = args as tf.Tensor[];
  const save = args[2] as tf.GradSaveFunc;
  save([x, bias]);
  return {
    value: tf.engine().runKernel(FUSED.biasGelu, { x, bias }) as tf.Tensor,
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const dpre = tf.engine().runKernel(
        FUSED.biasGeluGrad,
        { dy: dy as tf.Tensor, x: saved[0], bias: saved[1] },
      ) as tf.Tensor;
      return [dpre, columnSums(dpre)];
    },
  };
});

/** GELU(x·Wᵀ + b): a dense layer (`name`) and its activation; on cuda the bias add runs inside GELU. */
export function denseGelu(ctx: LayerContext, name: string, x: tf.Tensor2D): tf.Tensor2D {
  if (!fusedKernelsActive("biasGelu") || !ctx.params.has(`${name}.bias`)) return gelu(dense(ctx, name, x));
  const pre = tf.matMul(x, ctx.params.get(`${name}.weight`) as tf.Tensor2D, false, true);
  return fusedBiasGeluOp(pre, ctx.params.get(`${name}.bias`)) as tf.Tensor2D;
}

/** Exact GELU: x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (BERT/ELECTRA use the erf form, not the tanh approximation). */
export function gelu<T extends tf.Tensor>(x: T): T {
  return (fusedKernelsActive("gelu") ? fusedGeluOp(x) : geluOp(x)) as T;
}

/**
 * Dropout's keep/scale mask (1/keep where kept, else 0) for `seed`, in one pass: the same numbers on
 * every backend (lib/backend/dropout_mask.ts). Written straight into the wasm heap on wasm, drawn on
 * the GPU on cuda, filled on the host elsewhere.
 */
export function dropoutMask(shape: number[], rate: number, seed: number): tf.Tensor {
  const kernel = capabilities().dropoutMaskKernel;
  if (kernel) return tf.engine().runKernel(DROPOUT_MASK, {}, { shape, rate, seed }) as tf.Tensor;
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  fillDropoutMask(out, rate, seed);
  return tf.tensor(out, shape, "float32");
}

// Dropout as one kernel each way (wasm, cuda): x·mask without a mask tensor; the gradient recomputes it.
const fusedDropoutOp = (rate: number, seed: number) =>
  tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.engine().runKernel(FUSED.dropout, { x: args[0] as tf.Tensor }, { rate, seed }) as tf.Tensor,
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) =>
      tf.engine().runKernel(FUSED.dropout, { x: dy as tf.Tensor }, { rate, seed }) as tf.Tensor,
  }));

/** The next dropout's rate and seed from the context (drawing the seed), or null when dropout is off. */
export function nextDropout(ctx: LayerContext): { rate: number; seed: number } | null {
  if (!ctx.training || ctx.dropout <= 0) return null;
  if (!ctx.rng) throw new Error("dropout needs an rng when training");
  return { rate: ctx.dropout, seed: ctx.rng.seed() };
}

/** Inverted dropout, seeded from the context's Rng; identity when not training. Same masks on every backend. */
export function dropout<T extends tf.Tensor>(ctx: LayerContext, x: T): T {
  const d = nextDropout(ctx);
  if (!d) return x;
  if (fusedKernelsActive("dropout")) return fusedDropoutOp(d.rate, d.seed)(x) as T;
  return tf.mul(x, dropoutMask(x.shape, d.rate, d.seed)) as T;
}

// softmax(scores·scale + maskBias), with `dropout` also the attention dropout, as one kernel each way
// (cuda). The probabilities before dropout go to `onProbs` (the hooks) from inside the op, where they
// still exist. The padding mask is data: a constant of the op, so no gradient is made for it.
function fusedAttentionSoftmax(
  scores: tf.Tensor4D,
  maskBias: tf.Tensor4D,
  scale: number,
  dropout: { rate: number; seed: number } | null,
  onProbs: (probs: tf.Tensor4D) => void,
): tf.Tensor4D {
  const attrs = { scale, rate: dropout?.rate ?? 0, seed: dropout?.seed ?? 0 };
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const out = tf.engine().runKernel(FUSED.attentionSoftmax, { x, bias: maskBias }, attrs);
    const [probs, dropped] = dropout ? out as tf.Tensor[] : [out as tf.Tensor, out as tf.Tensor];
    save([probs]);
    onProbs(probs as tf.Tensor4D);
    return {
      value: dropped,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.engine().runKernel(
          FUSED.attentionSoftmaxGrad,
          { dy: dy as tf.Tensor, y: saved[0] },
          attrs,
        ) as tf.Tensor,
    };
  }) as (x: tf.Tensor) => tf.Tensor;
  return op(scores) as tf.Tensor4D;
}

/**
 * dropout(softmax(scores·scale + maskBias)), the probabilities (before dropout) passed to the hook
 * `hookName`: one kernel each way on cuda, the same numbers as attentionProbs then dropout.
 */
export function attentionProbsDropout(
  ctx: LayerContext,
  hookName: string,
  scores: tf.Tensor4D,
  maskBias: tf.Tensor4D,
  scale: number,
): tf.Tensor4D {
  if (fusedKernelsActive("attentionSoftmax") && fusedKernelsActive("dropout")) {
    return fusedAttentionSoftmax(scores, maskBias, scale, nextDropout(ctx), (p) => hook(ctx, hookName, p));
  }
  return dropout(ctx, hook(ctx, hookName, attentionProbs(scores, maskBias, scale)));
}

/** softmax(scores·scale + maskBias) over the last axis: scores [B, heads, L, L], maskBias [B, 1, 1, L]. */
export function attentionProbs(scores: tf.Tensor4D, maskBias: tf.Tensor4D, scale: number): tf.Tensor4D {
  if (fusedKernelsActive("attentionSoftmax")) {
    return fusedAttentionSoftmax(scores, maskBias, scale, null, () => {});
  }
  return tf.softmax(tf.add(tf.mul(scores, scale), maskBias)) as tf.Tensor4D;
}

// x + bias split into attention heads, one kernel (cuda); the gradient merges the heads back.
function biasSplitHeadsOp(
  x: tf.Tensor,
  bias: tf.Tensor,
  batch: number,
  length: number,
  heads: number,
): tf.Tensor {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xv, bv] = args as tf.Tensor[];
    return {
      value: tf.engine().runKernel(FUSED.biasSplitHeads, { x: xv, bias: bv }, {
        batch,
        length,
        heads,
      }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
        const dx = tf.reshape(tf.transpose(dy as tf.Tensor, [0, 2, 1, 3]), xv.shape);
        return [dx, columnSums(dx)];
      },
    };
  });
  return op(x, bias);
}

/** The query, key and value projections `names` (in that order) as a fused kernel's inputs wq … bv. */
export function qkvParams(ctx: LayerContext, names: string[]): tf.NamedTensorMap {
  const [q, k, v] = names;
  const get = (n: string) => ctx.params.get(n);
  return {
    wq: get(`${q}.weight`),
    wk: get(`${k}.weight`),
    wv: get(`${v}.weight`),
    bq: get(`${q}.bias`),
    bk: get(`${k}.bias`),
    bv: get(`${v}.bias`),
  };
}

/**
 * Multi-head self-attention over x [B·L, H] with an additive mask bias [B, 1, 1, L]: the heads'
 * merged context [B·L, H], before the output dense layer `${prefix}.output.dense` (which the caller
 * applies, e.g. with {@link denseAddLayerNorm}). HF names: `${prefix}.self.{query,key,value}`.
 */
export function selfAttentionContext(
  ctx: LayerContext,
  prefix: string,
  hookPrefix: string,
  x: tf.Tensor2D,
  maskBias: tf.Tensor4D,
  batch: number,
  length: number,
  numHeads: number,
): tf.Tensor2D {
  const hidden = x.shape[1];
  const headDim = hidden / numHeads;
  const fused = fusedKernelsActive("biasSplitHeads");
  // x·Wᵀ + b as heads [B, heads, L, d]; on cuda the bias add runs in the transposing kernel.
  const split = (name: string) => {
    if (!fused || !ctx.params.has(`${name}.bias`)) {
      return tf.transpose(tf.reshape(dense(ctx, name, x), [batch, length, numHeads, headDim]), [0, 2, 1, 3]);
    }
    const h = tf.matMul(x, ctx.params.get(`${name}.weight`) as tf.Tensor2D, false, true);
    return biasSplitHeadsOp(h, ctx.params.get(`${name}.bias`), batch, length, numHeads);
  };
  const names = ["query", "key", "value"].map((n) => `${prefix}.self.${n}`);
  let q: tf.Tensor, k: tf.Tensor, v: tf.Tensor;
  if (fusedKernelsActive("qkvHeads") && names.every((n) => ctx.params.has(`${n}.bias`))) {
    // On cuda the three projections run as one gemm, their biases and head splits as one launch.
    [q, k, v] = tf.engine().runKernel(
      FUSED.qkvHeads,
      { x, ...qkvParams(ctx, names) },
      { batch, length, heads: numHeads },
    ) as tf.Tensor[];
  } else {
    [q, k, v] = names.map(split);
  }
  const scores = tf.matMul(q, k, false, true) as tf.Tensor4D;
  const droppedProbs = attentionProbsDropout(
    ctx,
    `${hookPrefix}.attention.probs`,
    scores,
    maskBias,
    1 / Math.sqrt(headDim),
  );
  const context = tf.matMul(droppedProbs, v); // [B, heads, L, d]
  return tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch * length, hidden]) as tf.Tensor2D;
}

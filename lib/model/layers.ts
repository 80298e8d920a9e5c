/**
 * The few layers an ELECTRA encoder is made of, as plain functions over named parameters:
 * dense, LayerNorm, exact GELU, dropout, multi-head self-attention.
 *
 * Dense weights use PyTorch's [out, in] layout (HuggingFace names and shapes), applied as x·Wᵀ + b.
 *
 * @module
 */

import * as tf from "../tf.ts";
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

/** y = x·Wᵀ + b for x [N, in], W [out, in]. */
export function dense(ctx: LayerContext, name: string, x: tf.Tensor2D): tf.Tensor2D {
  const w = ctx.params.get(`${name}.weight`);
  const y: tf.Tensor2D = tf.matMul(x, w as tf.Tensor2D, false, true);
  return ctx.params.has(`${name}.bias`) ? tf.add(y, ctx.params.get(`${name}.bias`)) : y;
}

/** LayerNorm over the last axis with learned scale (`.weight`) and shift (`.bias`). */
export function layerNorm<T extends tf.Tensor>(ctx: LayerContext, name: string, x: T): T {
  return layerNormWith(x, ctx.params.get(`${name}.weight`), ctx.params.get(`${name}.bias`), ctx.layerNormEps);
}

/** LayerNorm with explicit scale and shift tensors. */
export function layerNormWith<T extends tf.Tensor>(x: T, gamma: tf.Tensor, beta: tf.Tensor, eps: number): T {
  const axis = x.rank - 1;
  const { mean, variance } = tf.moments(x, axis, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta) as T;
}

/** Exact GELU: x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (BERT/ELECTRA use the erf form, not the tanh approximation). */
export function gelu<T extends tf.Tensor>(x: T): T {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)) as T;
}

/** Inverted dropout, seeded from the context's Rng; identity when not training. */
export function dropout<T extends tf.Tensor>(ctx: LayerContext, x: T): T {
  if (!ctx.training || ctx.dropout <= 0) return x;
  if (!ctx.rng) throw new Error("dropout needs an rng when training");
  return tf.dropout(x, ctx.dropout, undefined, ctx.rng.seed()) as T;
}

/**
 * Multi-head self-attention over x [B·L, H] with an additive mask bias [B, 1, 1, L].
 * HF names: `${prefix}.self.{query,key,value}`, `${prefix}.output.dense`.
 */
export function selfAttention(
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
  const split = (t: tf.Tensor2D) =>
    tf.transpose(tf.reshape(t, [batch, length, numHeads, headDim]), [0, 2, 1, 3]);
  const q = split(dense(ctx, `${prefix}.self.query`, x));
  const k = split(dense(ctx, `${prefix}.self.key`, x));
  const v = split(dense(ctx, `${prefix}.self.value`, x));
  const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(headDim)), maskBias);
  const probs = hook(ctx, `${hookPrefix}.attention.probs`, tf.softmax(scores));
  const context = tf.matMul(dropout(ctx, probs), v); // [B, heads, L, d]
  const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch * length, hidden]) as tf.Tensor2D;
  return dense(ctx, `${prefix}.output.dense`, merged);
}

/**
 * DeBERTaV3 generator + discriminator (He et al. 2021, arXiv 2111.09543) on the DeBERTa-v2 encoder,
 * with the same sharing modes as {@link ElectraModel}, in one file.
 *
 * - **Embeddings** (`position_biased_input: false`): token (+ token type when `typeVocabSize` > 0)
 *   → `embed_proj` E→H when E≠H → LayerNorm(H) → zero the padding rows → dropout. No absolute
 *   position enters either encoder; the position table is read only by the generator's EMD.
 * - **Disentangled self-attention** (DeBERTa eq. 4, as the reference code computes it):
 *   A_ij = (Q^c_i·K^c_j + Q^c_i·K^r_δ(i,j) + K^c_j·Q^r_δ(i,j)) / √(3d), with
 *   δ(i,j) = clamp(bucket(i−j) + k, 0, 2k−1), k = `positionBuckets`, `bucket` = DeBERTa-v2's
 *   `make_log_bucket_position`; the relative table `rel_embeddings` [2k, H] is LayerNorm'd once per
 *   forward (`norm_rel_ebd: layer_norm`) and projected by the content query/key projections
 *   (`share_att_key`). Pairwise mask m_i·m_j; a fully padded row gets all-zero probabilities.
 * - **Layers**: post-LN, LayerNorm eps from the config (1e-7), exact GELU.
 * - **Generator** = encoder + **Enhanced Mask Decoder** (EMD, microsoft/DeBERTa `EnhancedMaskDecoder`):
 *   with H_{L−1} the input of the last layer and P the absolute position embeddings of positions
 *   0..L−1, the last layer runs twice more with keys/values H_{L−1} and queries
 *   q₁ = H_{L−1} + P, then q₂ = its own output; q₂ feeds the MLM head
 *   `lm_predictions.lm_head`: dense(H→E) → GELU → LayerNorm → E_tokᵀ + bias. The reference also runs the
 *   last layer once plainly and discards that output; we skip it (same loss, less work).
 * - **Discriminator** = encoder + RTD head `mask_predictions` (microsoft/DeBERTa `LMMaskPredictionHead`):
 *   LayerNorm(h_i + h_[CLS]) → dense(H→H) → GELU → `classifier` dense(H→1).
 * - **Sharing** (as microsoft/DeBERTa `RTDModel`): word and position tables (and token-type tables
 *   when present) are shared under `es`, separate under `nes`, and under `gdes` the discriminator reads
 *   sg(E_G) + E_Δ with E_Δ zero-initialised (`discriminator.deberta.embeddings.<table>_delta.weight`).
 *   The discriminator's position table (and its delta) exists, as in the reference and the released
 *   checkpoints, but D never reads it. Embedding LayerNorms and `embed_proj` are never shared.
 * - **Encoder only** (`{ encoderOnly: true }`, what fine-tuning loads an export into): the
 *   discriminator's encoder alone — its own tables, `embed_proj`, LayerNorms, `rel_embeddings` and
 *   layers under `discriminator.deberta.*` — with no generator, no RTD head and no GDES delta, whatever
 *   `config.sharing` says. Its parameters are exactly the `deberta.*` tensors of an export.
 *
 * Parameter names: `generator.` / `discriminator.` / `mlm.` + HuggingFace DebertaV2 names
 * (`deberta.embeddings.word_embeddings.weight`, `deberta.encoder.rel_embeddings.weight`,
 * `deberta.encoder.layer.0.attention.self.query_proj.weight`, ...), heads as in the released
 * DeBERTaV3 checkpoints (`lm_predictions.lm_head.*`, `mask_predictions.*`).
 *
 * Hook points (`capture`), per `role` ("generator" or "discriminator"): `ROLE.embeddings`,
 * `ROLE.rel_embeddings` (the LayerNorm'd rows in use), `ROLE.layer.I.attention.{c2c,c2p,p2c,probs}`
 * ([B, heads, L, L]; the three scores already divided by √(3d), so they sum to the pre-mask logits),
 * `ROLE.layer.I.output`, for the EMD passes `generator.emd.{0,1}.attention.*` / `.output`, and
 * `generator.logits`, `discriminator.logits`.
 *
 * @module
 */

import * as tf from "../tf.ts";
import { type EncoderSize, generatorSize, type RunConfig } from "../config.ts";
import { initRng, ParameterStore } from "./params.ts";
import {
  addRowVector,
  dense,
  denseAddLayerNorm,
  denseGelu,
  dropout,
  gelu,
  hook,
  type LayerContext,
  layerNorm,
  nextDropout,
  qkvParams,
} from "./layers.ts";
import { FUSED, fusedKernelsActive } from "../backend/fused_kernels.ts";
import { SharedEmbeddings, type TableName } from "./embeddings.ts";
import type { EmbeddingTables, EncoderInputs, ForwardOptions, Role } from "./electra.ts";
import type { RtdModel } from "./mod.ts";

/** Forward options of the DeBERTa heads: the RTD head needs the sequence length to find each [CLS]. */
export interface DebertaForwardOptions extends ForwardOptions {
  /** Tokens per sequence of `hidden`; only needed when `hidden` did not come from {@link DebertaModel.encode}. */
  sequenceLength?: number;
  /**
   * `false`: run the generator's (or the MLM baseline's) encoder without the Enhanced Mask Decoder, its
   * last layer once plainly — the forward pass of the exported encoder (HF `DebertaV2Model`), which is
   * what fine-tuning runs. Default: the EMD is on for the generator role (pre-training).
   */
  emd?: boolean;
}

/** rtdlab's MLM head names (export-relative) → transformers' DebertaV2ForMaskedLM names. */
const HF_MLM_HEAD: [string, string][] = [
  ["lm_predictions.lm_head.dense.weight", "cls.predictions.transform.dense.weight"],
  ["lm_predictions.lm_head.dense.bias", "cls.predictions.transform.dense.bias"],
  ["lm_predictions.lm_head.LayerNorm.weight", "cls.predictions.transform.LayerNorm.weight"],
  ["lm_predictions.lm_head.LayerNorm.bias", "cls.predictions.transform.LayerNorm.bias"],
  ["lm_predictions.lm_head.bias", "cls.predictions.bias"],
];

/** Options of the {@link DebertaModel} constructor. */
export interface DebertaModelOptions {
  /**
   * Build only the discriminator's encoder (its own word/position/type tables, `embed_proj`, LayerNorms,
   * `rel_embeddings` and layers under `discriminator.deberta.*`; no generator, no RTD head, no GDES
   * delta), whatever `config.sharing` says. Fine-tuning loads an exported discriminator (or the MLM
   * baseline's encoder) into such a model.
   */
  encoderOnly?: boolean;
}

/** The relative-position settings of a config. */
export type RelativePositionConfig = Pick<RunConfig, "positionBuckets" | "maxRelativePositions">;

/**
 * DeBERTa-v2's log bucket of a relative position r (`make_log_bucket_position`): r itself for
 * |r| ≤ mid = ⌊bucketSize/2⌋, else sign(r)·(mid + ⌈log(|r|/mid) / log((maxPosition−1)/mid) · (mid−1)⌉),
 * which reaches ±(bucketSize−1) at |r| = maxPosition−1 (and keeps growing beyond; the index clamps).
 */
export function logBucketPosition(r: number, bucketSize: number, maxPosition: number): number {
  const mid = Math.floor(bucketSize / 2);
  const abs = Math.abs(r);
  if (abs <= mid) return r;
  const logPos = Math.ceil((Math.log(abs / mid) / Math.log((maxPosition - 1) / mid)) * (mid - 1)) + mid;
  return Math.sign(r) * logPos;
}

/** The attention span k: `rel_embeddings` has 2k rows (k = buckets, or max_relative_positions without buckets). */
export function attentionSpan(c: RelativePositionConfig): number {
  return c.positionBuckets > 0 ? c.positionBuckets : c.maxRelativePositions;
}

/** δ(i, j) = clamp(bucket(i − j) + k, 0, 2k − 1): the `rel_embeddings` row for query i and key j. */
export function relativeIndex(i: number, j: number, c: RelativePositionConfig): number {
  const k = attentionSpan(c);
  const r = c.positionBuckets > 0
    ? logBucketPosition(i - j, c.positionBuckets, c.maxRelativePositions)
    : i - j;
  return Math.min(Math.max(r + k, 0), 2 * k - 1);
}

/**
 * Gather indices of one sequence length. Only rows lo..lo+rows−1 of `rel_embeddings` occur, so only
 * those are normalised and projected. `c2p[i·L+j] = i·rows + δ(i,j) − lo` picks from Q·K_rᵀ [L, rows];
 * `p2c[i·L+j] = j·rows + δ(i,j) − lo` picks from K·Q_rᵀ [L, rows].
 */
interface RelativeLayout {
  lo: number;
  rows: number;
  c2p: Int32Array;
  p2c: Int32Array;
  /**
   * For the fused gather's gradient (`RtdlabRelativeBucketSum`): the keys j of query i that pick row
   * r, c2pRange[2(i·rows + r)] ≤ j < c2pRange[2(i·rows + r) + 1], and the queries i of key j that pick
   * it (p2cRange, likewise); null unless every such set is one contiguous run (δ is monotonic in i − j).
   */
  c2pRange: Int32Array | null;
  p2cRange: Int32Array | null;
}

/** The run of t in 0..length−1 with rowOf(t) = r for each (outer o, row r), as [begin, end) pairs; null if one is split. */
function contiguousRuns(
  length: number,
  rows: number,
  rowOf: (o: number, t: number) => number,
): Int32Array | null {
  const runs = new Int32Array(length * rows * 2);
  for (let o = 0; o < length; o++) {
    for (let t = 0; t < length; t++) {
      const k = 2 * (o * rows + rowOf(o, t));
      if (runs[k] === runs[k + 1]) [runs[k], runs[k + 1]] = [t, t + 1]; // the first of its run
      else if (runs[k + 1] === t) runs[k + 1] = t + 1;
      else return null;
    }
  }
  return runs;
}

function relativeLayout(length: number, c: RelativePositionConfig): RelativeLayout {
  const delta = new Int32Array(length * length);
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < length; i++) {
    for (let j = 0; j < length; j++) {
      const d = relativeIndex(i, j, c);
      delta[i * length + j] = d;
      lo = Math.min(lo, d);
      hi = Math.max(hi, d);
    }
  }
  const rows = hi - lo + 1;
  const c2p = new Int32Array(length * length), p2c = new Int32Array(length * length);
  for (let i = 0; i < length; i++) {
    for (let j = 0; j < length; j++) {
      const d = delta[i * length + j] - lo;
      c2p[i * length + j] = i * rows + d;
      // The reference's p2c: K_j · Q_r[δ(i,j)] — the same δ(i,j) as c2p. The paper (eq. 4) writes
      // δ(j,i); microsoft/DeBERTa and HF gather with −bucket(j−i) and transpose, which is δ(i,j), and
      // that is what checkpoints are trained with.
      p2c[i * length + j] = j * rows + d;
    }
  }
  const c2pRange = contiguousRuns(length, rows, (i, j) => delta[i * length + j] - lo);
  const p2cRange = contiguousRuns(length, rows, (j, i) => delta[i * length + j] - lo);
  return { lo, rows, c2p, p2c, c2pRange, p2cRange };
}

/** What every layer of one forward pass shares: the relative embeddings in use, gather indices, masks. */
interface AttentionInputs {
  /** LayerNorm'd `rel_embeddings` rows lo..lo+rows−1 [rows, H]. */
  rel: tf.Tensor2D;
  c2pIndex: tf.Tensor1D;
  p2cIndex: tf.Tensor1D;
  /** RelativeLayout's runs, when the gather is fused into the softmax (cuda). */
  c2pRange?: tf.Tensor1D;
  p2cRange?: tf.Tensor1D;
  /** Pairwise mask m_i·m_j [B, L, L] and its additive bias (0 or −1e9). */
  pair: tf.Tensor3D;
  bias: tf.Tensor3D;
  batch: number;
  length: number;
  numHeads: number;
}

/** Keeps a [heads, B, L, L] tensor under `name` as [B, heads, L, L] (ELECTRA's hook layout). */
function hookHeads(ctx: LayerContext, name: string, t: tf.Tensor4D): void {
  if (ctx.capture && (!ctx.captureFilter || ctx.captureFilter(name))) {
    ctx.capture.set(name, tf.keep(tf.transpose(t, [1, 0, 2, 3])));
  }
}

/**
 * Disentangled self-attention (`DisentangledSelfAttention`): keys/values from `kv`, queries from
 * `query` [B·L, H] (the same tensor except in the EMD). Returns the merged context [B·L, H].
 */
function disentangledAttention(
  ctx: LayerContext,
  name: string,
  hookName: string,
  kv: tf.Tensor2D,
  query: tf.Tensor2D,
  a: AttentionInputs,
): tf.Tensor2D {
  const { batch, length, numHeads } = a;
  const hidden = kv.shape[1];
  const d = hidden / numHeads;
  // [B·L, H] → [heads, B, L, d]: head-major, so per-head products against the relative rows are plain matMuls.
  const heads = (t: tf.Tensor2D) =>
    tf.transpose(tf.reshape(t, [batch, length, numHeads, d]), [2, 0, 1, 3]) as tf.Tensor4D;
  const relHeads = (t: tf.Tensor2D) =>
    tf.transpose(tf.reshape(t, [a.rel.shape[0], numHeads, d]), [1, 0, 2]) as tf.Tensor3D;
  // share_att_key: positions go through the content projections (biases included).
  const rel = dropout(ctx, a.rel);
  const proj = ["query_proj", "key_proj", "value_proj"].map((p) => `${name}.${p}`);
  let q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, posKey: tf.Tensor3D, posQuery: tf.Tensor3D;
  if (
    query === kv && fusedKernelsActive("disentangledProjections") &&
    proj.every((p) => ctx.params.has(`${p}.bias`))
  ) {
    // On cuda the five projections are two gemms, their biases and head layouts two launches.
    [q, k, v, posKey, posQuery] = tf.engine().runKernel(
      FUSED.disentangledProjections,
      { x: kv, rel, ...qkvParams(ctx, proj) },
      { batch, length, heads: numHeads },
    ) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor3D, tf.Tensor3D];
  } else {
    q = heads(dense(ctx, `${name}.query_proj`, query));
    k = heads(dense(ctx, `${name}.key_proj`, kv));
    v = heads(dense(ctx, `${name}.value_proj`, kv));
    posKey = relHeads(dense(ctx, `${name}.key_proj`, rel)); // K_r [heads, rows, d]
    posQuery = relHeads(dense(ctx, `${name}.query_proj`, rel)); // Q_r [heads, rows, d]
  }
  const scale = 1 / Math.sqrt(3 * d); // 1 + len(pos_att_type) = 3 score terms
  const flat = (t: tf.Tensor4D) => tf.reshape(t, [numHeads, batch * length, d]) as tf.Tensor3D;
  // Q·K_rᵀ and K·Q_rᵀ for every relative row, then pick row δ(i,j) for each pair (one flat gather).
  const pick = (scores: tf.Tensor3D, index: tf.Tensor1D) =>
    tf.reshape(
      tf.gather(tf.reshape(scores, [numHeads * batch, length * a.rel.shape[0]]), index, 1),
      [numHeads, batch, length, length],
    ) as tf.Tensor4D;
  const c2cRaw = tf.matMul(q, k, false, true) as tf.Tensor4D;
  const c2pAll = tf.matMul(flat(q), posKey, false, true) as tf.Tensor3D;
  const p2cAll = tf.matMul(flat(k), posQuery, false, true) as tf.Tensor3D;
  const dropped = a.c2pRange && a.p2cRange && fusedSoftmaxOn(ctx)
    // On cuda the softmax kernel picks each pair's relative scores itself, and their gradient sums runs.
    ? fusedDisentangledSoftmax(c2cRaw, c2pAll, p2cAll, a, scale, nextDropout(ctx), a)
    : xSoftmaxDropout(ctx, hookName, c2cRaw, pick(c2pAll, a.c2pIndex), pick(p2cAll, a.p2cIndex), a, scale);
  const context = tf.matMul(dropped, v); // [heads, B, L, d]
  return tf.reshape(tf.transpose(context, [1, 2, 0, 3]), [batch * length, hidden]) as tf.Tensor2D;
}

/**
 * dropout(XSoftmax(c2c·scale + c2p·scale + p2c·scale)): DeBERTa's attention probabilities from its three
 * unscaled score terms [heads, B, L, L] (`bias` 0 / −1e9 and `pair` m_i·m_j [B, L, L] shared by the heads),
 * masked entries zeroed after the softmax, then the attention dropout. Hooks get each scaled term and the
 * probabilities. On cuda, when no hook is filled, one kernel each way.
 */
export function xSoftmaxDropout(
  ctx: LayerContext,
  hookName: string,
  c2cRaw: tf.Tensor4D,
  c2pRaw: tf.Tensor4D,
  p2cRaw: tf.Tensor4D,
  masks: { bias: tf.Tensor3D; pair: tf.Tensor3D },
  scale: number,
): tf.Tensor4D {
  if (fusedSoftmaxOn(ctx)) {
    return fusedDisentangledSoftmax(c2cRaw, c2pRaw, p2cRaw, masks, scale, nextDropout(ctx));
  }
  const c2c = tf.mul(c2cRaw, scale) as tf.Tensor4D;
  const c2p = tf.mul(c2pRaw, scale) as tf.Tensor4D;
  const p2c = tf.mul(p2cRaw, scale) as tf.Tensor4D;
  hookHeads(ctx, `${hookName}.attention.c2c`, c2c);
  hookHeads(ctx, `${hookName}.attention.c2p`, c2p);
  hookHeads(ctx, `${hookName}.attention.p2c`, p2c);
  // XSoftmax: mask, softmax, then zero the masked entries, so a fully padded row is all zeros (no NaN).
  const logits = tf.add(tf.add(tf.add(c2c, c2p), p2c), masks.bias);
  const probs = tf.mul(tf.softmax(logits), masks.pair) as tf.Tensor4D;
  hookHeads(ctx, `${hookName}.attention.probs`, probs);
  return dropout(ctx, probs);
}

/** The fused softmax runs when the backend has it and no hook wants the separate score terms. */
function fusedSoftmaxOn(ctx: LayerContext): boolean {
  return !ctx.capture && fusedKernelsActive("disentangledSoftmax") && fusedKernelsActive("dropout");
}

/**
 * dropout(XSoftmax((c2c + c2p + p2c)·scale)) as one kernel each way (cuda): the bias and pair masks
 * are constants of the op; the one gradient serves all three score terms.
 */
function fusedDisentangledSoftmax(
  c2c: tf.Tensor4D,
  c2p: tf.Tensor,
  p2c: tf.Tensor,
  a: { bias: tf.Tensor3D; pair: tf.Tensor3D },
  scale: number,
  dropout: { rate: number; seed: number } | null,
  relative?: Pick<AttentionInputs, "c2pIndex" | "p2cIndex" | "c2pRange" | "p2cRange">,
): tf.Tensor4D {
  const attrs = { scale, rate: dropout?.rate ?? 0, seed: dropout?.seed ?? 0 };
  // With `relative`, c2p and p2c are the scores against every relative row [heads, B·L, R]: the kernel
  // picks each pair's, and the gradient of each sums the pairs that picked it (RtdlabRelativeBucketSum).
  const shape = c2p.shape, rowsHB = c2c.shape[0] * c2c.shape[1];
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x1, x2, x3, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const inputs: tf.NamedTensorMap = { c2c: x1, c2p: x2, p2c: x3, bias: a.bias, pair: a.pair };
    if (relative) {
      Object.assign(inputs, {
        c2p: tf.reshape(x2, [rowsHB, -1]),
        p2c: tf.reshape(x3, [rowsHB, -1]),
        c2pIndex: relative.c2pIndex,
        p2cIndex: relative.p2cIndex,
      });
    }
    const [y, out] = tf.engine().runKernel(FUSED.disentangledSoftmax, inputs, attrs) as tf.Tensor[];
    // The runs are kept for the backward pass (the forward's other tensors are gone by then).
    save(relative ? [y, relative.c2pRange!, relative.p2cRange!] : [y]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const d = tf.engine().runKernel(
          FUSED.disentangledSoftmaxGrad,
          { dy: dy as tf.Tensor, y: saved[0], pair: a.pair },
          attrs,
        ) as tf.Tensor;
        if (!relative) return [d, tf.clone(d), tf.clone(d)]; // one object per input: tfjs disposes each
        const runs = (range: tf.Tensor, transposed: boolean) =>
          tf.reshape(
            tf.engine().runKernel(FUSED.relativeBucketSum, { d, range }, { transposed }) as tf.Tensor,
            shape,
          );
        return [d, runs(saved[1], false), runs(saved[2], true)];
      },
    };
  }) as (x1: tf.Tensor, x2: tf.Tensor, x3: tf.Tensor) => tf.Tensor;
  return op(c2c, c2p, p2c) as tf.Tensor4D;
}

/**
 * One DeBERTa-v2 layer (`DebertaV2Layer`): attention, residual onto the *query* states, LayerNorm;
 * FFN with exact GELU, residual, LayerNorm.
 */
function debertaLayer(
  ctx: LayerContext,
  name: string,
  hookName: string,
  kv: tf.Tensor2D,
  query: tf.Tensor2D,
  a: AttentionInputs,
): tf.Tensor2D {
  const context = disentangledAttention(ctx, `${name}.attention.self`, hookName, kv, query, a);
  const x = denseAddLayerNorm(
    ctx,
    `${name}.attention.output.dense`,
    `${name}.attention.output.LayerNorm`,
    query,
    context,
  );
  const inner = denseGelu(ctx, `${name}.intermediate.dense`, x);
  return hook(
    ctx,
    `${hookName}.output`,
    denseAddLayerNorm(ctx, `${name}.output.dense`, `${name}.output.LayerNorm`, x, inner),
  );
}

/** A DeBERTaV3 pre-training model (the `deberta` backbone): parameters plus both networks' forward passes. */
export class DebertaModel implements RtdModel {
  /** Named parameters (HF DebertaV2 names under `generator.` / `discriminator.` / `mlm.`). */
  readonly params = new ParameterStore();
  /** The run configuration the model was built for. */
  readonly config: RunConfig;
  /** Generator sizes derived from the config (DeBERTaV3: D's width, half its depth). */
  readonly generatorSize: EncoderSize;
  /** True when the model holds the discriminator's encoder only (see {@link DebertaModelOptions}). */
  readonly encoderOnly: boolean;
  readonly #tables: TableName[];
  readonly #layouts = new Map<number, RelativeLayout>();
  // Sequence length of each hidden-state tensor encode() returned: the RTD head adds h_[CLS] per sequence.
  readonly #lengths = new WeakMap<tf.Tensor, number>();

  /** Where the embedding tables live under the sharing mode, and what each network reads. */
  readonly embeddings: SharedEmbeddings;

  /**
   * Builds every parameter for `config.sharing`. Each parameter's initial values come from (`seed`, its
   * paired key) alone — a normal(0, initStd), as microsoft/DeBERTa initialises — so G starts the same in
   * every mode and D wherever shapes agree (lib/model/embeddings.ts).
   */
  constructor(config: RunConfig, seed = config.seed, opts: DebertaModelOptions = {}) {
    this.config = config;
    this.generatorSize = generatorSize(config);
    this.encoderOnly = opts.encoderOnly ?? false;
    this.#tables = config.typeVocabSize > 0
      ? ["word_embeddings", "position_embeddings", "token_type_embeddings"]
      : ["word_embeddings", "position_embeddings"];
    const c = config;
    const p = this.params;
    const emb = this.embeddings = new SharedEmbeddings(p, {
      sharing: c.sharing,
      family: "deberta",
      tables: this.#tables,
      encoderOnly: this.encoderOnly,
    });
    const mk = (name: string, shape: number[], init: "normal" | "zeros" | "ones" = "normal") =>
      p.create(name, shape, init, initRng(seed, emb.initKey(name)), c.initStd);
    const linear = (name: string, out: number, inp: number, bias = true) => {
      mk(`${name}.weight`, [out, inp]);
      if (bias) mk(`${name}.bias`, [out], "zeros");
    };
    const norm = (name: string, size: number) => {
      mk(`${name}.weight`, [size], "ones");
      mk(`${name}.bias`, [size], "zeros");
    };
    const encoder = (prefix: string, s: EncoderSize) => {
      const e = `${prefix}.deberta.embeddings`;
      if (c.embeddingSize !== s.hiddenSize) linear(`${e}.embed_proj`, s.hiddenSize, c.embeddingSize, false);
      norm(`${e}.LayerNorm`, s.hiddenSize);
      mk(`${prefix}.deberta.encoder.rel_embeddings.weight`, [2 * attentionSpan(c), s.hiddenSize]);
      norm(`${prefix}.deberta.encoder.LayerNorm`, s.hiddenSize);
      for (let i = 0; i < s.numLayers; i++) {
        const l = `${prefix}.deberta.encoder.layer.${i}`;
        for (const proj of ["query_proj", "key_proj", "value_proj"]) {
          linear(`${l}.attention.self.${proj}`, s.hiddenSize, s.hiddenSize);
        }
        linear(`${l}.attention.output.dense`, s.hiddenSize, s.hiddenSize);
        norm(`${l}.attention.output.LayerNorm`, s.hiddenSize);
        linear(`${l}.intermediate.dense`, s.intermediateSize, s.hiddenSize);
        linear(`${l}.output.dense`, s.hiddenSize, s.intermediateSize);
        norm(`${l}.output.LayerNorm`, s.hiddenSize);
      }
    };
    const mlmHead = (prefix: string, hidden: number) => {
      linear(`${prefix}.lm_predictions.lm_head.dense`, c.embeddingSize, hidden);
      norm(`${prefix}.lm_predictions.lm_head.LayerNorm`, c.embeddingSize);
      mk(`${prefix}.lm_predictions.lm_head.bias`, [c.vocabSize], "zeros");
    };

    emb.create(mk, {
      word_embeddings: c.vocabSize,
      position_embeddings: c.maxPositions,
      token_type_embeddings: c.typeVocabSize,
    }, c.embeddingSize);
    if (this.encoderOnly) {
      encoder("discriminator", c.discriminator);
      return;
    }
    if (c.sharing === "mlm") {
      encoder("mlm", c.discriminator);
      mlmHead("mlm", c.discriminator.hiddenSize);
      return;
    }
    encoder("generator", this.generatorSize);
    mlmHead("generator", this.generatorSize.hiddenSize);
    const h = c.discriminator.hiddenSize;
    encoder("discriminator", c.discriminator);
    linear("discriminator.mask_predictions.dense", h, h);
    norm("discriminator.mask_predictions.LayerNorm", h);
    linear("discriminator.mask_predictions.classifier", 1, h);
  }

  /** Name prefix of the network that plays `role` (`mlm` for the MLM baseline's only network). */
  prefix(role: Role): string {
    return this.embeddings.prefix(role);
  }

  /** Where the word/position/type tables that `role` reads are stored (before GDES's delta). */
  embeddingOwner(role: Role): string {
    return this.embeddings.owner(role);
  }

  /** Full name of the generator-side (ES: the shared) copy of an embedding table. */
  sharedTableName(table: TableName = "word_embeddings"): string {
    return this.embeddings.sharedTableName(table);
  }

  /** Parameters updated by L_MLM: the generator's own plus the tables it reads (never E_Δ). */
  generatorVariables(): string[] {
    if (this.encoderOnly) return [];
    const g = this.prefix("generator") + ".";
    const tables = new Set(this.#tables.map((t) => this.sharedTableName(t)));
    return this.params.names().filter((n) => n.startsWith(g) || tables.has(n));
  }

  /** Parameters updated by L_RTD (everything under `discriminator.`; under GDES E_G is not among them). */
  discriminatorVariables(): string[] {
    if (this.encoderOnly) return this.params.names();
    if (this.config.sharing === "mlm") return [];
    return this.params.names().filter((n) => n.startsWith("discriminator."));
  }

  /** The table `role` reads: GDES's discriminator reads sg(E_G) + E_Δ, so L_RTD never reaches E_G. */
  #table(role: Role, table: TableName): tf.Tensor2D {
    return this.embeddings.read(role, table);
  }

  /**
   * The embedding tables `role` reads (GDES: E_D = sg(E_G) + E_Δ). `tokenType` is a [0, E] tensor when
   * the config has no token types (DeBERTaV3); the LayerNorm is the network's own (over H, after `embed_proj`).
   */
  embeddingTables(role: Role): EmbeddingTables {
    const p = this.prefix(role);
    return {
      word: this.#table(role, "word_embeddings"),
      position: this.#table(role, "position_embeddings"),
      tokenType: this.config.typeVocabSize > 0
        ? this.#table(role, "token_type_embeddings")
        : tf.zeros([0, this.config.embeddingSize]),
      layerNormWeight: this.params.get(`${p}.deberta.embeddings.LayerNorm.weight`) as tf.Tensor1D,
      layerNormBias: this.params.get(`${p}.deberta.embeddings.LayerNorm.bias`) as tf.Tensor1D,
    };
  }

  /**
   * Runs `role`'s encoder (the generator's through the EMD unless `opts.emd` is false): returns the
   * last hidden states [B·L, H].
   */
  encode(role: Role, inputs: EncoderInputs, opts: DebertaForwardOptions): tf.Tensor2D {
    const c = this.config;
    const prefix = this.prefix(role);
    const size = role === "generator" ? this.generatorSize : c.discriminator;
    const [batch, length] = inputs.inputIds.shape;
    if (length > c.maxPositions) {
      throw new Error(
        `sequence length ${length} is longer than the position table (maxPositions ${c.maxPositions})`,
      );
    }
    const ctx = this.#ctx(opts);
    const emb = `${prefix}.deberta.embeddings`;
    const project = (t: tf.Tensor2D) =>
      c.embeddingSize !== size.hiddenSize ? dense(ctx, `${emb}.embed_proj`, t) : t;

    // Embeddings: no absolute positions (position_biased_input: false).
    const word = opts.wordTableOverride ?? this.#table(role, "word_embeddings");
    let e: tf.Tensor2D = tf.gather(word, tf.reshape(inputs.inputIds, [-1]));
    if (c.typeVocabSize > 0) {
      e = tf.add(
        e,
        tf.gather(this.#table(role, "token_type_embeddings"), tf.reshape(inputs.tokenTypeIds, [-1])),
      );
    }
    const tokenMask = tf.cast(inputs.attentionMask, "float32") as tf.Tensor2D;
    let x = tf.mul(
      layerNorm(ctx, `${emb}.LayerNorm`, project(e)),
      tf.reshape(tokenMask, [-1, 1]),
    ) as tf.Tensor2D;
    x = hook(ctx, `${role}.embeddings`, dropout(ctx, x));

    const a = this.#attentionInputs(ctx, prefix, role, tokenMask, size.numHeads);
    const last = `${prefix}.deberta.encoder.layer.${size.numLayers - 1}`;
    const emd = role === "generator" && opts.emd !== false;
    // With the EMD, the last layer's plain pass is not needed (the reference computes and discards it).
    for (let i = 0; i < size.numLayers - (emd ? 1 : 0); i++) {
      const l = `${prefix}.deberta.encoder.layer.${i}`;
      x = debertaLayer(ctx, l, `${role}.layer.${i}`, x, x, a);
    }
    if (emd) {
      // Enhanced Mask Decoder: keys/values H_{L−1} (the embeddings when the generator has one layer, as
      // HF's z_steps indexing gives); queries H_{L−1} + P (raw position rows, no LayerNorm), then the
      // pass's own output. P goes through embed_proj when E ≠ H (the reference requires E = H there), once,
      // and is added to every sequence rather than tiled over the batch: the same sums, and P's gradient is
      // one column sum instead of `batch` slices and adds.
      const table = this.#table(role, "position_embeddings");
      const hidden = x.shape[1];
      const positions = tf.reshape(project(tf.slice(table, [0, 0], [length, -1])), [length * hidden]);
      let q = tf.reshape(
        addRowVector(tf.reshape(x, [batch, length * hidden]), positions as tf.Tensor1D),
        [batch * length, hidden],
      ) as tf.Tensor2D;
      for (let pass = 0; pass < 2; pass++) q = debertaLayer(ctx, last, `${role}.emd.${pass}`, x, q, a);
      x = q;
    }
    this.#lengths.set(x, length);
    return x;
  }

  /** Relative rows in use (LayerNorm'd once per forward), gather indices and masks for one forward pass. */
  #attentionInputs(
    ctx: LayerContext,
    prefix: string,
    role: Role,
    tokenMask: tf.Tensor2D,
    numHeads: number,
  ): AttentionInputs {
    const [batch, length] = tokenMask.shape;
    let layout = this.#layouts.get(length);
    if (!layout) {
      layout = relativeLayout(length, this.config);
      this.#layouts.set(length, layout);
    }
    const table = this.params.get(`${prefix}.deberta.encoder.rel_embeddings.weight`) as tf.Tensor2D;
    // LayerNorm is row-wise, so normalising only the rows in use equals slicing the normalised table.
    const rows = tf.slice(table, [layout.lo, 0], [layout.rows, -1]);
    const rel = hook(
      ctx,
      `${role}.rel_embeddings`,
      layerNorm(ctx, `${prefix}.deberta.encoder.LayerNorm`, rows),
    );
    const pair = tf.mul(tf.reshape(tokenMask, [batch, length, 1]), tf.reshape(tokenMask, [batch, 1, length]));
    return {
      rel,
      c2pIndex: tf.tensor1d(layout.c2p, "int32"),
      p2cIndex: tf.tensor1d(layout.p2c, "int32"),
      ...(layout.c2pRange && layout.p2cRange && fusedKernelsActive("relativeBucketSum")
        ? { c2pRange: tf.tensor1d(layout.c2pRange, "int32"), p2cRange: tf.tensor1d(layout.p2cRange, "int32") }
        : {}),
      pair: pair as tf.Tensor3D,
      bias: tf.mul(tf.sub(pair, 1), 1e9) as tf.Tensor3D,
      batch,
      length,
      numHeads,
    };
  }

  /**
   * Generator MLM logits at the selected positions (`lm_predictions.lm_head`): hidden [B·L, H], flat
   * positions [M] → [M, V]; the output layer is tied to the generator's token table.
   */
  generatorLogits(hidden: tf.Tensor2D, selected: tf.Tensor1D, opts: ForwardOptions): tf.Tensor2D {
    const head = `${this.prefix("generator")}.lm_predictions.lm_head`;
    const ctx = this.#ctx(opts);
    const x = layerNorm(
      ctx,
      `${head}.LayerNorm`,
      gelu(dense(ctx, `${head}.dense`, tf.gather(hidden, selected))),
    );
    const word = opts.wordTableOverride ?? this.#table("generator", "word_embeddings");
    const logits = tf.add(tf.matMul(x, word, false, true), this.params.get(`${head}.bias`));
    return hook(ctx, "generator.logits", logits as tf.Tensor2D);
  }

  /** Discriminator RTD logits (`mask_predictions`), one per token: hidden [B·L, H] → [B·L]. */
  discriminatorLogits(hidden: tf.Tensor2D, opts: DebertaForwardOptions): tf.Tensor1D {
    if (this.encoderOnly) throw new Error("an encoder-only model has no RTD head (mask_predictions)");
    const length = this.#lengths.get(hidden) ?? opts.sequenceLength;
    if (!length || hidden.shape[0] % length !== 0) {
      throw new Error(
        "discriminatorLogits: pass the hidden states encode() returned, or opts.sequenceLength " +
          "(the head adds each sequence's [CLS] state)",
      );
    }
    const ctx = this.#ctx(opts);
    const h = hidden.shape[1];
    const seq = tf.reshape(hidden, [-1, length, h]);
    const cls = tf.slice(seq, [0, 0, 0], [-1, 1, -1]);
    const x = tf.reshape(tf.add(seq, cls), [-1, h]) as tf.Tensor2D;
    const y = gelu(
      dense(
        ctx,
        "discriminator.mask_predictions.dense",
        layerNorm(ctx, "discriminator.mask_predictions.LayerNorm", x),
      ),
    );
    const logits = tf.reshape(dense(ctx, "discriminator.mask_predictions.classifier", y), [-1]);
    return hook(ctx, "discriminator.logits", logits as tf.Tensor1D);
  }

  /**
   * `role`'s weights as a plain HuggingFace DebertaV2 state dict (prefix removed; GDES tables merged to
   * E_G + E_Δ, ES's shared tables copied in). New tensors; the caller disposes them.
   */
  exportTensors(role: Role): Map<string, tf.Tensor> {
    const prefix = this.prefix(role);
    const out = new Map<string, tf.Tensor>();
    for (const name of this.params.names()) {
      if (name.startsWith(prefix + ".") && !this.embeddings.isDelta(name)) {
        out.set(name.slice(prefix.length + 1), this.params.get(name).clone());
      }
    }
    for (const t of this.#tables) {
      // Replaces (and frees) the loop's clone where the role has a table of its own.
      const key = `deberta.embeddings.${t}.weight`;
      out.get(key)?.dispose();
      out.set(key, tf.tidy(() => tf.clone(this.#table(role, t))));
    }
    // The MLM head as transformers' DebertaV2ForMaskedLM names it (BERT-style `cls.predictions`), the
    // decoder tied to the word table. HF has no Enhanced Mask Decoder: the head reads the encoder's
    // last layer (see hfConfig's note).
    for (const [from, to] of HF_MLM_HEAD) {
      const t = out.get(from);
      if (t) {
        out.delete(from);
        out.set(to, t);
      }
    }
    if (out.has("cls.predictions.bias")) {
      out.set(
        "cls.predictions.decoder.weight",
        out.get("deberta.embeddings.word_embeddings.weight")!.clone(),
      );
      out.set("cls.predictions.decoder.bias", out.get("cls.predictions.bias")!.clone());
    }
    return out;
  }

  /** HuggingFace DebertaV2Config for `role` (the generator's EMD has no HF counterpart). */
  hfConfig(role: Role): Record<string, unknown> {
    const c = this.config;
    const s = role === "generator" ? this.generatorSize : c.discriminator;
    return {
      architectures: [role === "generator" ? "DebertaV2ForMaskedLM" : "DebertaV2Model"],
      model_type: "deberta-v2",
      vocab_size: c.vocabSize,
      embedding_size: c.embeddingSize,
      hidden_size: s.hiddenSize,
      num_hidden_layers: s.numLayers,
      num_attention_heads: s.numHeads,
      intermediate_size: s.intermediateSize,
      hidden_act: "gelu",
      hidden_dropout_prob: c.dropout,
      attention_probs_dropout_prob: c.dropout,
      max_position_embeddings: c.maxPositions,
      type_vocab_size: c.typeVocabSize,
      initializer_range: c.initStd,
      layer_norm_eps: c.layerNormEps,
      relative_attention: true,
      position_buckets: c.positionBuckets > 0 ? c.positionBuckets : -1,
      max_relative_positions: c.maxRelativePositions,
      norm_rel_ebd: "layer_norm",
      share_att_key: true,
      pos_att_type: ["p2c", "c2p"],
      position_biased_input: false,
      // DebertaV2ForMaskedLM names its head after this flag (true: cls.predictions.*, what is written here);
      // written out so that a change of HF's default cannot leave the head randomly initialised.
      legacy: true,
      pad_token_id: 0,
      rtdlab: {
        sharing: c.sharing,
        preset: c.preset,
        backbone: "deberta",
        ...(role === "generator"
          ? {
            note:
              "rtdlab's generator was trained with DeBERTaV3's Enhanced Mask Decoder (absolute positions " +
              "added before the last layer, run twice); HuggingFace's DebertaV2ForMaskedLM has no EMD, so " +
              "its MLM predictions from these weights differ from the generator's during pre-training.",
          }
          : {}),
      },
    };
  }

  #ctx(opts: ForwardOptions): LayerContext {
    return {
      params: this.params,
      training: opts.training,
      dropout: this.config.dropout,
      layerNormEps: this.config.layerNormEps,
      rng: opts.rng,
      capture: opts.capture,
      captureFilter: opts.captureFilter,
    };
  }

  /** Frees the model's variables. */
  dispose(): void {
    this.params.dispose();
  }
}

/**
 * ELECTRA generator + discriminator with the three embedding-sharing modes, in one file.
 *
 * - Encoder: token + position + type embeddings → LayerNorm → dropout → (projection E→H when E≠H)
 *   → post-LN transformer layers (exact GELU). HuggingFace ELECTRA parameter names and shapes.
 * - Generator: the encoder at 1/4 width + MLM head dense(H→E) → GELU → LayerNorm → E_tokᵀ + bias
 *   (output tied to the generator's token table). Evaluated only at the selected positions.
 * - Discriminator: the encoder + RTD head dense(H→H) → GELU → dense(H→1).
 * - Sharing (DeBERTaV3 §3): `es` one set of embedding tables used by both; `nes` separate tables;
 *   `gdes` E_D = sg(E_G) + E_Δ with E_Δ zero-initialised; `mlm` a single discriminator-size MLM model.
 *
 * Parameter names: `generator.<HF ElectraForMaskedLM name>`, `discriminator.<HF ElectraForPreTraining
 * name>`, `mlm.<HF ElectraForMaskedLM name>`. Under ES the shared tables live under `discriminator.`
 * (as in ELECTRA, where the generator reuses the discriminator's embeddings); under GDES the deltas are
 * `discriminator.electra.embeddings.<table>_delta.weight`.
 *
 * @module
 */

import * as tf from "../tf.ts";
import { type EncoderSize, generatorSize, type RunConfig } from "../config.ts";
import type { Rng } from "../rng.ts";
import { initRng, ParameterStore } from "./params.ts";
import { type Role, SharedEmbeddings, type TableName } from "./embeddings.ts";
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
  layerNormWith,
  selfAttentionContext,
} from "./layers.ts";

export type { Role };

/** The embedding tables a network reads, as tensors (for GDES, E_D is computed from E_G and E_Δ). */
export interface EmbeddingTables {
  /** Token table [V, E]. */
  word: tf.Tensor2D;
  /** Absolute position table [P, E]. */
  position: tf.Tensor2D;
  /** Token type (segment) table [T, E]. */
  tokenType: tf.Tensor2D;
  /** Embedding LayerNorm gain [E]. */
  layerNormWeight: tf.Tensor1D;
  /** Embedding LayerNorm bias [E]. */
  layerNormBias: tf.Tensor1D;
}

/** Inputs of one forward pass (int32 ids [B, L]; attention mask 1 = token, 0 = padding). */
export interface EncoderInputs {
  /** Token ids [B, L] (int32). */
  inputIds: tf.Tensor2D;
  /** Token type ids [B, L] (int32). */
  tokenTypeIds: tf.Tensor2D;
  /** Attention mask [B, L]: 1 = token, 0 = padding. */
  attentionMask: tf.Tensor2D;
}

/** Options of one forward pass. */
export interface ForwardOptions {
  /** Training mode: dropout on. */
  training: boolean;
  /** Dropout seeds come from here. */
  rng?: Rng;
  /** Collect hook-point activations here (caller disposes them). */
  capture?: Map<string, tf.Tensor>;
  /** Which hook points to capture (default: all). */
  captureFilter?: (name: string) => boolean;
  /** Replace the word table this network reads (the probes use this to measure would-be gradients). */
  wordTableOverride?: tf.Tensor2D;
}

const TABLES: readonly TableName[] = ["word_embeddings", "position_embeddings", "token_type_embeddings"];

/** Options of the {@link ElectraModel} constructor. */
export interface ElectraModelOptions {
  /**
   * Build only the discriminator's encoder (its own embedding tables, projection and transformer
   * layers under `discriminator.electra.*`; no generator, no RTD head), whatever `config.sharing` says.
   * Fine-tuning loads an exported discriminator (or the MLM baseline's encoder) into such a model.
   */
  encoderOnly?: boolean;
}

/** An ELECTRA pre-training model: parameters plus the forward passes of both networks. */
export class ElectraModel {
  /** Every trainable tensor by its HuggingFace-style name (the shared tables too, once). */
  readonly params = new ParameterStore();
  /** The run's configuration the model was built from. */
  readonly config: RunConfig;
  /** The generator's encoder size (width, layers, heads), derived from the config. */
  readonly generatorSize: EncoderSize;
  /** True when the model holds the discriminator's encoder only (see {@link ElectraModelOptions}). */
  readonly encoderOnly: boolean;

  /** Where the embedding tables live under the sharing mode, and what each network reads. */
  readonly embeddings: SharedEmbeddings;

  /**
   * Builds every parameter for `config.sharing`. Each parameter's initial values come from (`seed`, its
   * paired key) alone — ELECTRA's truncated normal (std `initStd`, cut at 2σ) for weights and tables —
   * so G starts the same in every mode and D wherever shapes agree (lib/model/embeddings.ts).
   */
  constructor(config: RunConfig, seed = config.seed, opts: ElectraModelOptions = {}) {
    this.config = config;
    this.generatorSize = generatorSize(config);
    this.encoderOnly = opts.encoderOnly ?? false;
    const c = config;
    const p = this.params;
    const emb = this.embeddings = new SharedEmbeddings(p, {
      sharing: c.sharing,
      family: "electra",
      tables: TABLES,
      encoderOnly: this.encoderOnly,
    });
    const mk = (name: string, shape: number[], init: "normal" | "zeros" | "ones" = "normal") =>
      p.create(
        name,
        shape,
        init === "normal" ? "truncated" : init,
        initRng(seed, emb.initKey(name)),
        c.initStd,
      );
    const norm = (name: string, size: number) => {
      mk(`${name}.weight`, [size], "ones");
      mk(`${name}.bias`, [size], "zeros");
    };
    const linear = (name: string, out: number, inp: number) => {
      mk(`${name}.weight`, [out, inp]);
      mk(`${name}.bias`, [out], "zeros");
    };
    const encoder = (prefix: string, s: EncoderSize) => {
      if (c.embeddingSize !== s.hiddenSize) {
        linear(`${prefix}.electra.embeddings_project`, s.hiddenSize, c.embeddingSize);
      }
      for (let i = 0; i < s.numLayers; i++) {
        const l = `${prefix}.electra.encoder.layer.${i}`;
        for (const q of ["query", "key", "value"]) {
          linear(`${l}.attention.self.${q}`, s.hiddenSize, s.hiddenSize);
        }
        linear(`${l}.attention.output.dense`, s.hiddenSize, s.hiddenSize);
        norm(`${l}.attention.output.LayerNorm`, s.hiddenSize);
        linear(`${l}.intermediate.dense`, s.intermediateSize, s.hiddenSize);
        linear(`${l}.output.dense`, s.hiddenSize, s.intermediateSize);
        norm(`${l}.output.LayerNorm`, s.hiddenSize);
      }
    };
    const mlmHead = (prefix: string, hidden: number) => {
      linear(`${prefix}.generator_predictions.dense`, c.embeddingSize, hidden);
      norm(`${prefix}.generator_predictions.LayerNorm`, c.embeddingSize);
      mk(`${prefix}.generator_lm_head.bias`, [c.vocabSize], "zeros");
    };

    emb.create(mk, {
      word_embeddings: c.vocabSize,
      position_embeddings: c.maxPositions,
      token_type_embeddings: c.typeVocabSize,
    }, c.embeddingSize);
    // ELECTRA's embedding LayerNorm sits with the tables: shared under ES, D's own under NES and GDES.
    const normOwners = this.encoderOnly
      ? ["discriminator"]
      : c.sharing === "mlm"
      ? ["mlm"]
      : c.sharing === "es"
      ? ["discriminator"]
      : ["generator", "discriminator"];
    for (const owner of normOwners) norm(`${owner}.electra.embeddings.LayerNorm`, c.embeddingSize);
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
    encoder("discriminator", c.discriminator);
    linear(
      "discriminator.discriminator_predictions.dense",
      c.discriminator.hiddenSize,
      c.discriminator.hiddenSize,
    );
    linear("discriminator.discriminator_predictions.dense_prediction", 1, c.discriminator.hiddenSize);
  }

  /** Name prefix of the network that plays `role` (`mlm` for the MLM baseline's only network). */
  prefix(role: Role): string {
    return this.embeddings.prefix(role);
  }

  /** Where the token/position/type tables that `role` reads are stored (before GDES's delta). */
  embeddingOwner(role: Role): string {
    return this.embeddings.owner(role);
  }

  /** Names of the token-embedding table(s) the two networks share (ES) — the tug-of-war's battlefield. */
  sharedTableName(table: TableName = "word_embeddings"): string {
    return this.embeddings.sharedTableName(table);
  }

  /** Parameters updated by L_MLM (the generator's step). Under GDES E_Δ is not among them. */
  generatorVariables(): string[] {
    if (this.encoderOnly) return [];
    const g = this.prefix("generator") + ".";
    const owner = this.embeddingOwner("generator") + ".electra.embeddings.";
    return this.params.names().filter((n) => n.startsWith(g) || n.startsWith(owner));
  }

  /** Parameters updated by L_RTD (the discriminator's step). Under GDES E_G is not among them. */
  discriminatorVariables(): string[] {
    if (this.encoderOnly) return this.params.names();
    if (this.config.sharing === "mlm") return [];
    return this.params.names().filter((n) => n.startsWith("discriminator."));
  }

  /**
   * The embedding tables `role` reads. Under GDES the discriminator reads E_D = sg(E_G) + E_Δ: the
   * stop-gradient keeps L_RTD from reaching E_G, so only E_Δ (and D's own weights) learn from it.
   */
  embeddingTables(role: Role): EmbeddingTables {
    const p = this.params;
    const [word, position, tokenType] = TABLES.map((t) => this.embeddings.read(role, t));
    // The embedding LayerNorm is shared under ES only (ELECTRA shares it); GDES/NES give D its own.
    const normOwner = this.encoderOnly || this.config.sharing === "es" || this.config.sharing === "mlm"
      ? this.embeddingOwner(role)
      : this.prefix(role);
    return {
      word,
      position,
      tokenType,
      layerNormWeight: p.get(`${normOwner}.electra.embeddings.LayerNorm.weight`) as tf.Tensor1D,
      layerNormBias: p.get(`${normOwner}.electra.embeddings.LayerNorm.bias`) as tf.Tensor1D,
    };
  }

  /** Runs `role`'s encoder: returns the last hidden states [B·L, H]. */
  encode(role: Role, inputs: EncoderInputs, opts: ForwardOptions): tf.Tensor2D {
    const c = this.config;
    const prefix = this.prefix(role);
    const size = role === "generator" ? this.generatorSize : c.discriminator;
    const [batch, length] = inputs.inputIds.shape;
    if (length > c.maxPositions) {
      throw new Error(
        `sequence length ${length} is longer than the position table (maxPositions ${c.maxPositions})`,
      );
    }
    const ctx: LayerContext = {
      params: this.params,
      training: opts.training,
      dropout: c.dropout,
      layerNormEps: c.layerNormEps,
      rng: opts.rng,
      capture: opts.capture,
      captureFilter: opts.captureFilter,
    };
    const t = this.embeddingTables(role);
    const word = opts.wordTableOverride ?? t.word;
    const flatIds = tf.reshape(inputs.inputIds, [-1]);
    const tokens = tf.gather(word, flatIds); // [B·L, E]
    const types = tf.gather(t.tokenType, tf.reshape(inputs.tokenTypeIds, [-1]));
    // tokens + positions without tiling the position rows: the same sums, and the table's gradient
    // is one matMul instead of `batch` slices and adds (wasm's Tile alone took 10 ms at b16).
    const E = c.embeddingSize;
    const positions = tf.reshape(tf.slice(t.position, [0, 0], [length, E]), [length * E]) as tf.Tensor1D;
    const withPositions = tf.reshape(addRowVector(tf.reshape(tokens, [batch, length * E]), positions), [
      batch * length,
      E,
    ]);
    let x = layerNormWith(
      tf.add(withPositions, types),
      t.layerNormWeight,
      t.layerNormBias,
      c.layerNormEps,
    ) as tf.Tensor2D;
    x = dropout(ctx, x) as tf.Tensor2D;
    hook(ctx, `${role}.embeddings`, x);
    if (c.embeddingSize !== size.hiddenSize) x = dense(ctx, `${prefix}.electra.embeddings_project`, x);

    // Additive attention bias: 0 for tokens, -10000 for padding (as BERT/ELECTRA).
    const maskBias = tf.reshape(tf.mul(tf.sub(1, tf.cast(inputs.attentionMask, "float32")), -10000), [
      batch,
      1,
      1,
      length,
    ]) as tf.Tensor4D;
    for (let i = 0; i < size.numLayers; i++) {
      const l = `${prefix}.electra.encoder.layer.${i}`;
      const h = `${role}.layer.${i}`;
      const context = selfAttentionContext(
        ctx,
        `${l}.attention`,
        h,
        x,
        maskBias,
        batch,
        length,
        size.numHeads,
      );
      x = denseAddLayerNorm(
        ctx,
        `${l}.attention.output.dense`,
        `${l}.attention.output.LayerNorm`,
        x,
        context,
      );
      const inner = denseGelu(ctx, `${l}.intermediate.dense`, x);
      x = denseAddLayerNorm(ctx, `${l}.output.dense`, `${l}.output.LayerNorm`, x, inner);
      hook(ctx, `${h}.output`, x);
    }
    return x;
  }

  /**
   * Generator MLM logits at the selected positions: hidden [B·L, Hg], flat positions [M] → [M, V].
   * Only the selected rows go through the vocabulary-sized output layer (the cost that dominates small models).
   */
  generatorLogits(hidden: tf.Tensor2D, selected: tf.Tensor1D, opts: ForwardOptions): tf.Tensor2D {
    const prefix = this.prefix("generator");
    const ctx = this.#ctx(opts);
    const h = tf.gather(hidden, selected);
    const x = layerNorm(
      ctx,
      `${prefix}.generator_predictions.LayerNorm`,
      gelu(dense(ctx, `${prefix}.generator_predictions.dense`, h)),
    );
    const word = opts.wordTableOverride ?? this.embeddingTables("generator").word;
    const logits = tf.add(
      tf.matMul(x, word, false, true),
      this.params.get(`${prefix}.generator_lm_head.bias`),
    );
    return hook(ctx, "generator.logits", logits as tf.Tensor2D);
  }

  /** Discriminator RTD logits, one per token: hidden [B·L, H] → [B·L]. */
  discriminatorLogits(hidden: tf.Tensor2D, opts: ForwardOptions): tf.Tensor1D {
    const ctx = this.#ctx(opts);
    const h = gelu(dense(ctx, "discriminator.discriminator_predictions.dense", hidden));
    const logits = tf.reshape(dense(ctx, "discriminator.discriminator_predictions.dense_prediction", h), [
      -1,
    ]);
    return hook(ctx, "discriminator.logits", logits as tf.Tensor1D);
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

  /**
   * `role`'s weights as a plain HuggingFace ELECTRA state dict (prefix removed; the tables it reads —
   * shared, or GDES's E_G + E_Δ — written as ordinary tables; the tied LM head written out). New
   * tensors; the caller disposes them.
   */
  exportTensors(role: Role): Map<string, tf.Tensor> {
    const prefix = this.prefix(role);
    const out = new Map<string, tf.Tensor>();
    for (const name of this.params.names()) {
      if (name.startsWith(prefix + ".") && !this.embeddings.isDelta(name)) {
        out.set(name.slice(prefix.length + 1), this.params.get(name).clone());
      }
    }
    // Clones made inside tidy: GDES's E_G + E_Δ intermediates are freed, live variables are not.
    const [word, position, tokenType, lnWeight, lnBias] = tf.tidy(() => {
      const t = this.embeddingTables(role);
      return [t.word, t.position, t.tokenType, t.layerNormWeight, t.layerNormBias].map((x) => tf.clone(x));
    });
    const e = "electra.embeddings";
    // The loop above cloned the role's own tables too where it has them: these replace (and free) them.
    const put = (key: string, t: tf.Tensor) => {
      out.get(key)?.dispose();
      out.set(key, t);
    };
    put(`${e}.word_embeddings.weight`, word);
    put(`${e}.position_embeddings.weight`, position);
    put(`${e}.token_type_embeddings.weight`, tokenType);
    put(`${e}.LayerNorm.weight`, lnWeight);
    put(`${e}.LayerNorm.bias`, lnBias);
    if (role === "generator") out.set("generator_lm_head.weight", tf.clone(word)); // tied, for loaders that expect it
    return out;
  }

  /** HuggingFace ElectraConfig for `role`. */
  hfConfig(role: Role): Record<string, unknown> {
    const c = this.config;
    const s = role === "generator" ? this.generatorSize : c.discriminator;
    return {
      architectures: [role === "discriminator" ? "ElectraForPreTraining" : "ElectraForMaskedLM"],
      model_type: "electra",
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
      pad_token_id: 0,
      rtdlab: { sharing: c.sharing, preset: c.preset, backbone: c.backbone },
    };
  }

  /** Frees the model's variables. */
  dispose(): void {
    this.params.dispose();
  }
}

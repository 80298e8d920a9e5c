/**
 * The model interface the training loop, probes and notebooks program against, and the factory that
 * picks the backbone named in the config.
 *
 * @module
 */

import type * as tf from "../tf.ts";
import type { EncoderSize, RunConfig } from "../config.ts";
import {
  ElectraModel,
  type ElectraModelOptions,
  type EmbeddingTables,
  type EncoderInputs,
  type ForwardOptions,
  type Role,
} from "./electra.ts";
import type { ParameterStore } from "./params.ts";
import { DebertaModel, type DebertaModelOptions } from "./deberta.ts";

export type { EmbeddingTables, EncoderInputs, ForwardOptions, Role };

/**
 * Construction options every backbone takes. `encoderOnly`: build the discriminator's encoder alone
 * (under `discriminator.`; no generator, no RTD head, no GDES delta), the model fine-tuning loads an
 * exported encoder into.
 */
export type ModelOptions = ElectraModelOptions & DebertaModelOptions;

/**
 * A generator + discriminator pair with named parameters and an embedding-sharing mode.
 * Implemented by {@link ElectraModel} and, when `config.backbone` is "deberta", {@link DebertaModel}.
 */
export interface RtdModel {
  /** Every variable, by HuggingFace-style name. */
  readonly params: ParameterStore;
  /** The run configuration the model was built from. */
  readonly config: RunConfig;
  /** The generator's encoder sizes (a fraction of the discriminator's). */
  readonly generatorSize: EncoderSize;
  /** True when built with `{ encoderOnly: true }` (see {@link ModelOptions}). */
  readonly encoderOnly: boolean;
  /** Name prefix of the network playing `role` ("generator", "discriminator", or "mlm" for the baseline). */
  prefix(role: Role): string;
  /** Prefix owning the embedding tables `role` reads (before GDES's delta). */
  embeddingOwner(role: Role): string;
  /** Full name of a shared/generator-side embedding table, e.g. the token table. */
  sharedTableName(table?: "word_embeddings" | "position_embeddings" | "token_type_embeddings"): string;
  /** Variables L_MLM updates. */
  generatorVariables(): string[];
  /** Variables L_RTD updates. */
  discriminatorVariables(): string[];
  /** The embedding tables `role` reads (GDES: E_D = sg(E_G) + E_Δ). */
  embeddingTables(role: Role): EmbeddingTables;
  /** Last hidden states [B·L, H] of `role`'s encoder. */
  encode(role: Role, inputs: EncoderInputs, opts: ForwardOptions): tf.Tensor2D;
  /** Generator MLM logits [M, V] at the flat selected positions. */
  generatorLogits(hidden: tf.Tensor2D, selected: tf.Tensor1D, opts: ForwardOptions): tf.Tensor2D;
  /** Discriminator RTD logits [B·L]. */
  discriminatorLogits(hidden: tf.Tensor2D, opts: ForwardOptions): tf.Tensor1D;
  /** `role`'s weights as a plain HuggingFace state dict (GDES tables merged); new tensors the caller disposes. */
  exportTensors(role: Role): Map<string, tf.Tensor>;
  /** HuggingFace config.json contents for `role`. */
  hfConfig(role: Role): Record<string, unknown>;
  /** Frees the variables. */
  dispose(): void;
}

/** Model constructors by backbone. */
export const BACKBONES: Record<string, (config: RunConfig, seed?: number, opts?: ModelOptions) => RtdModel> =
  {
    electra: (config, seed, opts) => new ElectraModel(config, seed, opts),
    deberta: (config, seed, opts) => new DebertaModel(config, seed, opts),
  };

/** Builds the model `config.backbone` names (`opts.encoderOnly`: the discriminator's encoder alone). */
export function createModel(config: RunConfig, seed?: number, opts: ModelOptions = {}): RtdModel {
  const make = BACKBONES[config.backbone ?? "electra"];
  if (!make) {
    throw new Error(
      `no model for backbone "${config.backbone}"; known: ${Object.keys(BACKBONES).join(", ")}`,
    );
  }
  return make(config, seed, opts);
}

/**
 * Which embedding table each network reads, by sharing mode — the bookkeeping the probes share.
 *
 * | mode | E_G (generator reads)   | E_D (discriminator reads)      | E_Δ          |
 * | ---- | ----------------------- | ------------------------------ | ------------ |
 * | es   | the one shared table E  | the same E                     | —            |
 * | nes  | G's own table           | D's own table                  | —            |
 * | gdes | E_G                     | sg(E_G) + E_Δ (computed)       | D's delta    |
 * | mlm  | the baseline's table    | —                              | —            |
 *
 * @module
 */

import * as tf from "../tf.ts";
import type { Role, RtdModel } from "../model/mod.ts";

/** The three embedding tables of an RTD model (token, position, type). */
export type EmbeddingTableName = "word_embeddings" | "position_embeddings" | "token_type_embeddings";

/** E_G, E_D or E_Δ: the generator's table, the discriminator's effective table, GDES's delta. */
export type EmbeddingView = "generator" | "discriminator" | "delta";

/**
 * Name of the parameter whose gradient *is* the gradient of `role`'s loss with respect to the table
 * `role` reads, or null when there is none (no discriminator in the MLM baseline, no such table in
 * the backbone). Under GDES the discriminator reads E_D = sg(E_G) + E_Δ, and ∂E_D/∂E_Δ = I, so the
 * gradient on E_Δ equals the gradient with respect to E_D.
 */
export function readTableParam(
  model: RtdModel,
  role: Role,
  table: EmbeddingTableName = "word_embeddings",
): string | null {
  const sharing = model.config.sharing;
  if (role === "discriminator" && sharing === "mlm") return null;
  const g = model.sharedTableName(table);
  let name = g;
  if (role === "discriminator") {
    // Swap the owner prefix: ES keeps one owner; NES/GDES give D its own (GDES: the delta).
    const owner = model.embeddingOwner("discriminator") + ".";
    name = owner + g.slice(g.indexOf(".") + 1);
    if (sharing === "gdes") {
      name = "discriminator." + g.slice(g.indexOf(".") + 1).replace(/\.weight$/, "_delta.weight");
    }
  }
  return model.params.has(name) ? name : null;
}

/**
 * Throws a clear error when `probe` was handed the trainer instead of its model (`trainer.model`): untyped
 * scripts would otherwise fail deep inside with "… is not a function".
 */
export function requireModel(model: RtdModel, probe: string): void {
  const m = model as unknown as Record<string, unknown>;
  if (typeof m.embeddingTables !== "function" && typeof m.model === "object") {
    throw new Error(`${probe} takes the model, not the trainer: pass trainer.model`);
  }
}

/**
 * A fresh copy of E_G, E_D or E_Δ (the caller disposes it), or null where the mode has no such table
 * (E_Δ outside GDES; E_D in the MLM baseline). Under ES, E_G and E_D are the same table.
 */
export function embeddingTable(
  model: RtdModel,
  view: EmbeddingView,
  table: EmbeddingTableName = "word_embeddings",
): tf.Tensor2D | null {
  requireModel(model, "embeddingTable");
  const sharing = model.config.sharing;
  if (view === "delta") {
    if (sharing !== "gdes") return null;
    const name = readTableParam(model, "discriminator", table);
    return name ? model.params.get(name).clone() as tf.Tensor2D : null;
  }
  if (view === "discriminator" && sharing === "mlm") return null;
  const key = table === "word_embeddings"
    ? "word"
    : table === "position_embeddings"
    ? "position"
    : "tokenType";
  return tf.tidy(() => {
    const t = model.embeddingTables(view);
    // Clone so the caller may dispose what it gets, whether or not the table was computed (GDES's E_D).
    return tf.clone(t[key]) as tf.Tensor2D;
  });
}

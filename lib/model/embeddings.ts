/**
 * The embedding tables of the generator and the discriminator under one sharing mode (DeBERTaV3 §3),
 * in one place for both backbones (lib/model/electra.ts, lib/model/deberta.ts):
 *
 * - **ES** (ELECTRA): one set of tables, stored under `discriminator.` (ELECTRA's generator reuses the
 *   discriminator's embeddings); G and D read them, and both losses update them.
 * - **NES**: `generator.` and `discriminator.` each own a set; nothing is shared.
 * - **GDES**: G owns E_G (`generator.`); D reads E_D = sg(E_G) + E_Δ, with E_Δ zero-initialised under
 *   `discriminator.<family>.embeddings.<table>_delta.weight`. The stop-gradient keeps L_RTD away from
 *   E_G; D's step updates E_Δ. At export E_D := E_G + E_Δ.
 * - **MLM** baseline: one network, `mlm.`, with its own tables.
 *
 * **Paired initialisation**: every parameter draws its initial values from (run seed, key) alone
 * ({@link pairedInitKey}), and the key of a table is that of the network that reads it in NES. So for one
 * seed G starts identical in every mode (ES's shared table starts as NES's E_G), D's encoder and head
 * start identical in every mode, and the MLM baseline's encoder starts as D's.
 *
 * @module
 */

import * as tf from "../tf.ts";
import type { SharingMode } from "../config.ts";
import { stopGradient } from "../backend/stop_gradient.ts";
import type { ParameterStore } from "./params.ts";

/** Which of the two networks. */
export type Role = "generator" | "discriminator";

/** The embedding tables a backbone may have. */
export type TableName = "word_embeddings" | "position_embeddings" | "token_type_embeddings";

/** Options of {@link SharedEmbeddings}. */
export interface SharedEmbeddingsOptions {
  sharing: SharingMode;
  /** HF model family: names read `<prefix>.<family>.embeddings.<table>.weight`. */
  family: "electra" | "deberta";
  /** The tables this model has (DeBERTaV3 has no token types). */
  tables: readonly TableName[];
  /** A discriminator encoder alone (fine-tuning): `discriminator.` owns its tables whatever `sharing` says. */
  encoderOnly: boolean;
}

/** Where each network's tables live and what it reads (see the module doc). */
export class SharedEmbeddings {
  /** ES, NES, GDES or MLM: which tables the two networks share. */
  readonly sharing: SharingMode;
  /** The backbone, which decides the tables (DeBERTa has no absolute position table). */
  readonly family: "electra" | "deberta";
  /** The embedding tables each network reads (word, position, token type). */
  readonly tables: readonly TableName[];
  /** True when only the discriminator's tables exist (a fine-tuning encoder). */
  readonly encoderOnly: boolean;

  /** Registers the tables of `opts.sharing` in `params` (GDES: E_Δ at zero beside E_G). */
  constructor(readonly params: ParameterStore, opts: SharedEmbeddingsOptions) {
    this.sharing = opts.sharing;
    this.family = opts.family;
    this.tables = opts.tables;
    this.encoderOnly = opts.encoderOnly;
  }

  /** Name prefix of the network that plays `role` (`mlm` for the baseline's only network). */
  prefix(role: Role): string {
    if (this.encoderOnly) {
      if (role === "generator") throw new Error("an encoder-only model has no generator");
      return "discriminator";
    }
    if (this.sharing === "mlm") {
      if (role === "discriminator") throw new Error("the mlm baseline has no discriminator");
      return "mlm";
    }
    return role;
  }

  /** Prefix owning the tables `role` reads, before GDES's delta. */
  owner(role: Role): string {
    if (this.encoderOnly || this.sharing === "mlm" || this.sharing === "nes") return this.prefix(role);
    return this.sharing === "es" ? "discriminator" : "generator"; // gdes: E_G
  }

  /** Full name of `owner`'s copy of `table`. */
  tableName(owner: string, table: TableName): string {
    return `${owner}.${this.family}.embeddings.${table}.weight`;
  }

  /** Full name of GDES's E_Δ for `table`. */
  deltaName(table: TableName): string {
    return `discriminator.${this.family}.embeddings.${table}_delta.weight`;
  }

  /** The table the generator reads (ES: the shared one; GDES: E_G). */
  sharedTableName(table: TableName = "word_embeddings"): string {
    return this.tableName(this.owner("generator"), table);
  }

  /** Creates the mode's tables ([rows[t], embeddingSize] each) and, under GDES, the zero E_Δ. */
  create(
    mk: (name: string, shape: number[], init: "normal" | "zeros") => void,
    rows: Record<TableName, number>,
    embeddingSize: number,
  ): void {
    const owners = this.encoderOnly
      ? ["discriminator"]
      : this.sharing === "nes"
      ? ["generator", "discriminator"]
      : [this.owner("generator")]; // es: the shared set; gdes: E_G; mlm: the baseline's own
    for (const owner of owners) {
      for (const t of this.tables) mk(this.tableName(owner, t), [rows[t], embeddingSize], "normal");
    }
    if (this.sharing === "gdes" && !this.encoderOnly) {
      for (const t of this.tables) mk(this.deltaName(t), [rows[t], embeddingSize], "zeros");
    }
  }

  /** True for a table `role`'s loss updates: the generator's tables (never E_Δ), or D's own. */
  isGeneratorTable(name: string): boolean {
    return this.tables.some((t) => this.sharedTableName(t) === name);
  }

  /**
   * The table `role` reads. Under GDES the discriminator reads E_D = sg(E_G) + E_Δ: the stop-gradient
   * keeps L_RTD from reaching E_G, so only E_Δ (and D's own weights) learn from it.
   */
  read(role: Role, table: TableName): tf.Tensor2D {
    const e = this.params.get(this.tableName(this.owner(role), table)) as tf.Tensor2D;
    if (this.encoderOnly || this.sharing !== "gdes" || role !== "discriminator") return e;
    return tf.add(stopGradient(e), this.params.get(this.deltaName(table))) as tf.Tensor2D;
  }

  /** True for GDES's E_Δ parameters (never exported: folded into E_D). */
  isDelta(name: string): boolean {
    return name.endsWith("_delta.weight");
  }

  /** The key a parameter's initial values are drawn from ({@link pairedInitKey}). */
  initKey(name: string): string {
    return pairedInitKey(name, this.sharing, this.family);
  }
}

/**
 * Paired initialisation (see the module doc): the key of parameter `name` under `sharing`. ES's shared
 * tables (stored under `discriminator.`) are keyed as the generator's, so G starts the same in ES, NES and
 * GDES; the MLM baseline's encoder and tables are keyed as the discriminator's; everything else is keyed
 * by its own name.
 */
export function pairedInitKey(name: string, sharing: SharingMode, family: "electra" | "deberta"): string {
  const tables = `.${family}.embeddings.`;
  if (sharing === "es" && name.startsWith(`discriminator${tables}`) && /_embeddings\.weight$/.test(name)) {
    return "generator" + name.slice("discriminator".length);
  }
  if (sharing === "mlm" && name.startsWith(`mlm.${family}.`)) {
    return "discriminator" + name.slice("mlm".length);
  }
  return name;
}

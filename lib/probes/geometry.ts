/**
 * Embedding geometry (DeBERTaV3 §5's analysis): how similar a table's token vectors are to each other,
 * nearest neighbours, and drift from initialisation.
 *
 * **Average cosine similarity** of a table E over a token set T (default: the N = 1000 most frequent
 * non-special tokens of the corpus) is the mean over ordered pairs i ≠ j of cos(e_i, e_j), i, j ∈ T.
 * Rows that are exactly zero (e.g. E_Δ rows of tokens D has never seen) have no direction and are left
 * out of T. It is computed without the |T|² Gram matrix: with unit rows u_i, Σ_{i,j} u_i·u_j = ‖Σ_i u_i‖²,
 * so the mean over i ≠ j is (‖Σ_i u_i‖² − n) / (n(n − 1)) for n rows.
 *
 * @module
 */

import * as tf from "../tf.ts";
import type { RtdModel } from "../model/mod.ts";
import { embeddingTable, type EmbeddingTableName, requireModel } from "./tables.ts";
import type { TokenNamer } from "./tug_of_war.ts";

/** Token frequencies indexed by id, from packed rows (or any id array). Ids outside [0, vocabSize) are ignored. */
export function tokenFrequencies(
  ids: ArrayLike<number> | { inputIds: Int32Array },
  vocabSize: number,
): Float64Array {
  const list = "inputIds" in ids ? ids.inputIds : ids;
  const counts = new Float64Array(vocabSize);
  for (let i = 0; i < list.length; i++) {
    const id = list[i];
    if (id >= 0 && id < vocabSize) counts[id]++;
  }
  return counts;
}

/**
 * The `n` most frequent token ids (most frequent first; ties by ascending id), leaving out special tokens
 * and tokens that never occur.
 */
export function topTokens(
  counts: ArrayLike<number>,
  n = 1000,
  isSpecial: (id: number) => boolean = () => false,
): Int32Array {
  const ids: number[] = [];
  for (let i = 0; i < counts.length; i++) if (counts[i] > 0 && !isSpecial(i)) ids.push(i);
  ids.sort((a, b) => counts[b] - counts[a] || a - b);
  return Int32Array.from(ids.slice(0, n));
}

/**
 * Device-side parts of the average cosine of `table`'s rows `ids` (all rows when omitted): the tensor
 * [‖Σ u_i‖², n] over the n nonzero rows. The caller owns it; {@link averageCosine} finishes the mean.
 */
export function averageCosineParts(table: tf.Tensor2D, ids?: ArrayLike<number>): tf.Tensor1D {
  return tf.tidy(() => {
    const rows = ids ? tf.gather(table, tf.tensor1d(Array.from(ids), "int32")) : table;
    const norms = tf.norm(rows, "euclidean", 1, true);
    const nonzero = tf.cast(tf.greater(norms, 0), "float32");
    // Zero rows become zero vectors (not NaN) and drop out of both the sum and the count.
    const units = tf.div(rows, tf.add(norms, tf.sub(1, nonzero)));
    const total = tf.sum(units, 0);
    return tf.stack([tf.sum(tf.square(total)), tf.sum(nonzero)]) as tf.Tensor1D;
  });
}

/** Finishes {@link averageCosineParts}: (S − n)/(n(n − 1)), or null for fewer than two nonzero rows. */
export function averageCosineFromParts(parts: ArrayLike<number>): number | null {
  const s = parts[0], n = parts[1];
  return n >= 2 ? (s - n) / (n * (n - 1)) : null;
}

/** Mean over i ≠ j of cos(e_i, e_j) for the rows `ids` of `table` (all rows when omitted); zero rows left out. */
export async function averageCosine(table: tf.Tensor2D, ids?: ArrayLike<number>): Promise<number | null> {
  const parts = averageCosineParts(table, ids);
  try {
    return averageCosineFromParts(await parts.data());
  } finally {
    parts.dispose();
  }
}

/** Average cosine of E_G, E_D and E_Δ over the same tokens (null where the mode lacks the table). */
export interface EmbeddingSimilarity {
  /** E_G: the table the generator reads (ES: the shared table; MLM baseline: its table). */
  generator: number | null;
  /** E_D: the table the discriminator reads (ES: the shared table; GDES: E_G + E_Δ). */
  discriminator: number | null;
  /** E_Δ (GDES only). */
  delta: number | null;
}

/** {@link averageCosine} of E_G, E_D and E_Δ over the token ids `ids` (e.g. {@link topTokens}). */
export async function embeddingSimilarity(
  model: RtdModel,
  ids: ArrayLike<number>,
  table: EmbeddingTableName = "word_embeddings",
): Promise<EmbeddingSimilarity> {
  requireModel(model, "embeddingSimilarity");
  const one = async (view: "generator" | "discriminator" | "delta") => {
    const t = embeddingTable(model, view, table);
    if (!t) return null;
    try {
      return await averageCosine(t, ids);
    } finally {
      t.dispose();
    }
  };
  const generator = await one("generator");
  // ES: one table serves both networks.
  const discriminator = model.config.sharing === "es" ? generator : await one("discriminator");
  return { generator, discriminator, delta: await one("delta") };
}

/** One neighbour of a query token. */
export interface Neighbour {
  /** Token id. */
  id: number;
  /** Token text, when a tokenizer was given. */
  token?: string;
  /** Cosine similarity to the query. */
  cos: number;
}

/** A query token and its nearest neighbours, most similar first. */
export interface NeighbourList {
  /** Query token id. */
  id: number;
  /** Query token text, when a tokenizer was given. */
  token?: string;
  /** Nearest tokens by cosine, most similar first (the query itself left out). */
  neighbours: Neighbour[];
}

/** Options of {@link nearestNeighbours}. */
export interface NeighbourOptions {
  /** Names ids, and turns string queries into ids. */
  tokenizer?: TokenNamer & { tokenToId?(token: string): number | undefined };
  /** Ids never returned as neighbours (e.g. specials); the query itself is always left out. */
  exclude?: (id: number) => boolean;
}

/** The `k` rows of `table` with the highest cosine to each query row (queries: ids, or token texts with a tokenizer). */
export async function nearestNeighbours(
  table: tf.Tensor2D,
  queries: (number | string)[],
  k = 10,
  opts: NeighbourOptions = {},
): Promise<NeighbourList[]> {
  const ids = queries.map((q) => {
    if (typeof q === "number") return q;
    const id = opts.tokenizer?.tokenToId?.(q);
    if (id === undefined) {
      throw new Error(`nearestNeighbours: "${q}" is not in the vocabulary (or no tokenizer)`);
    }
    return id;
  });
  const vocab = table.shape[0];
  for (const id of ids) {
    if (!(Number.isInteger(id) && id >= 0 && id < vocab)) {
      throw new RangeError(`token id ${id} is outside the table`);
    }
  }
  const want = Math.min(vocab, k + 1);
  // Excluded ids get −∞ similarity on the device, so top-k never spends a slot on them.
  const bias = new Float32Array(vocab);
  if (opts.exclude) { for (let i = 0; i < vocab; i++) if (opts.exclude(i)) bias[i] = -Infinity; }
  const [values, indices] = tf.tidy(() => {
    const unit = tf.div(table, tf.maximum(tf.norm(table, "euclidean", 1, true), 1e-12));
    const sims = tf.matMul(tf.gather(unit, tf.tensor1d(ids, "int32")), unit, false, true);
    const top = tf.topk(tf.add(sims, tf.tensor1d(bias)), want);
    return [top.values, top.indices];
  });
  const [v, ix] = [await values.data(), await indices.data()];
  tf.dispose([values, indices]);
  const name = (id: number) => opts.tokenizer ? { token: opts.tokenizer.idToToken(id) } : {};
  return ids.map((q, r) => {
    const neighbours: Neighbour[] = [];
    for (let j = 0; j < want && neighbours.length < k; j++) {
      const id = ix[r * want + j];
      if (id === q || !Number.isFinite(v[r * want + j])) continue;
      neighbours.push({ id, ...name(id), cos: v[r * want + j] });
    }
    return { id: q, ...name(q), neighbours };
  });
}

/** Change of a table from a snapshot: ‖E − E0‖_F and ‖E − E0‖_F / ‖E0‖_F (null when E0 = 0, e.g. E_Δ's start). */
export interface Drift {
  /** ‖E − E0‖_F. */
  absolute: number;
  /** ‖E − E0‖_F / ‖E0‖_F; null when E0 = 0. */
  relative: number | null;
}

/** Drift of `current` from the snapshot `initial` (a tensor or host copy of the same shape). */
export async function embeddingDrift(current: tf.Tensor, initial: tf.Tensor | Float32Array): Promise<Drift> {
  const width = current.shape[current.shape.length - 1] ?? 1;
  const rows = tf.tidy(() => {
    const e0 = initial instanceof Float32Array ? tf.tensor(initial, current.shape) : initial;
    if (e0.size !== current.size) throw new Error(`embeddingDrift: ${current.size} vs ${e0.size} entries`);
    const base = tf.reshape(e0, [-1, width]);
    const diff = tf.sub(tf.reshape(current, [-1, width]), base);
    // Squared norms per row on the device, summed over rows on the host in float64: one float32
    // accumulator over a whole table (tf.norm on wasm) loses ~1e-4 relative at a million entries.
    return tf.stack([tf.sum(tf.square(diff), 1), tf.sum(tf.square(base), 1)]);
  });
  const sums = (await rows.data()) as Float32Array;
  rows.dispose();
  const n = sums.length / 2;
  let diff2 = 0, base2 = 0;
  for (let i = 0; i < n; i++) {
    diff2 += sums[i];
    base2 += sums[n + i];
  }
  const diff = Math.sqrt(diff2), base = Math.sqrt(base2);
  return { absolute: diff, relative: base > 0 ? diff / base : null };
}

/** Host copies of E_G, E_D and E_Δ (null where the mode lacks one), e.g. at step 0 for {@link embeddingDrift}. */
export async function snapshotEmbeddings(
  model: RtdModel,
  table: EmbeddingTableName = "word_embeddings",
): Promise<Record<"generator" | "discriminator" | "delta", Float32Array | null>> {
  requireModel(model, "snapshotEmbeddings");
  const out: Record<string, Float32Array | null> = {};
  for (const view of ["generator", "discriminator", "delta"] as const) {
    const t = embeddingTable(model, view, table);
    out[view] = t ? (await t.data()) as Float32Array : null;
    t?.dispose();
  }
  return out as Record<"generator" | "discriminator" | "delta", Float32Array | null>;
}

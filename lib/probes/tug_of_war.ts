/**
 * Tug-of-war probes (README, *The science, as implemented*): the gradient that L_MLM and λ·L_RTD each send to the embedding
 * table, and how much they agree.
 *
 * **What is measured, by sharing mode.** g_MLM = ∂L_MLM/∂(table G reads), g_RTD = ∂(λ·L_RTD)/∂(table D
 * reads), both raw (before clipping, weight decay or Adam):
 *
 * - **ES**: both are gradients on the one shared table E — the actual tug-of-war; the joint step applies
 *   g_MLM + g_RTD to it.
 * - **NES**: g_MLM on G's table E_G, g_RTD on D's table E_D. Nothing is shared; these are the pulls each
 *   loss *would* exert on a shared table placed at that loss's own table.
 * - **GDES**: g_MLM on E_G; g_RTD with respect to E_D = sg(E_G) + E_Δ, which equals the gradient on
 *   E_Δ (∂E_D/∂E_Δ = I) — the pull the stop-gradient keeps away from E_G.
 * - **MLM** baseline: no RTD loss; nothing to measure.
 *
 * The same holds for the position table (row r = position r); the DeBERTa backbone's discriminator reads
 * no absolute positions, so there the position numbers are null. Both gradients are taken at the same
 * parameters, before any update, on the same corrupted batch, in every mode: decoupled GDES (whose D
 * step reads the updated E_G) computes D's gradient once more before G's update for the probe.
 *
 * **Numbers** (per table): global cosine cos(g_MLM, g_RTD) over all entries; ‖g_MLM‖, ‖g_RTD‖ (Frobenius)
 * and ratio ‖g_RTD‖/‖g_MLM‖; touched rows = rows where both row gradients are nonzero (L_MLM reaches
 * every token row through the tied output layer, so in practice: the tokens in D's input); opposed rows
 * = touched rows whose row cosine is < 0, and their share of the touched rows. Reductions run on the
 * device; only a handful of scalars (plus three vocabulary-length vectors for the per-row table) are read.
 *
 * **Dropout.** The gradients are the step's own, in training mode with the run's dropout masks. At dropout
 * 0.1 the masks move one batch's global cosine about as much as it varies between probed steps (notebook
 * 02), so read means over many probed steps. {@link probeTugOfWar} with `dropout: false` measures without
 * them: G (its samples included) and D run as a model with dropout 0 and the same weights would. Checked against an independent PyTorch autograd version
 * (ELECTRA backbone, dropout 0, 2026-12-06): every number within 2e-6 relative.
 *
 * @module
 */

import * as tf from "../tf.ts";
import type { SharingMode } from "../config.ts";
import type { RtdModel } from "../model/mod.ts";
import {
  batchTensors,
  type Pretrainer,
  type StepGradients,
  stepRngs,
  type TokenBatch,
} from "../train/pretrain.ts";
import { corrupt, sampleFromLogits } from "../train/sampling.ts";
import { type EmbeddingTableName, readTableParam } from "./tables.ts";

/** Anything that names token ids (a WordPieceTokenizer will do). */
export interface TokenNamer {
  /** The token an id stands for. */
  idToToken(id: number): string;
}

/** One row of the per-row table: a token (or position) both losses pulled on. */
export interface TugOfWarRow {
  /** Token id (position index for the position table). */
  id: number;
  /** Token text, when a tokenizer was given (token table only). */
  token?: string;
  /**
   * Frequency: from `counts` if given, else occurrences in the original (uncorrupted) batch (for positions:
   * non-padding tokens there); null if unknown. A token the generator sampled, but that the batch does not
   * hold, has count 0 and still gets gradient (its row in D's input): such rows can top the opposed list.
   */
  count: number | null;
  /** cos(g_MLM[row], g_RTD[row]); < 0 means the two losses pull the row in opposite directions. */
  cos: number;
  /** ‖g_MLM[row]‖. */
  normMlm: number;
  /** ‖g_RTD[row]‖. */
  normRtd: number;
}

/** Agreement of the two gradients on one table. */
export interface GradientAgreement {
  /** Parameter whose gradient is g_MLM (the table G reads). */
  mlmParam: string;
  /** Parameter whose gradient is g_RTD (the table D reads; GDES: E_Δ). */
  rtdParam: string;
  /** Global cosine over all entries; null if either gradient is zero. */
  cos: number | null;
  /** ‖g_MLM‖ (Frobenius). */
  normMlm: number;
  /** ‖g_RTD‖ (Frobenius; λ included). */
  normRtd: number;
  /** ‖g_RTD‖ / ‖g_MLM‖; null if ‖g_MLM‖ = 0. */
  ratio: number | null;
  /** Rows with a nonzero gradient from both losses. */
  touchedRows: number;
  /** Touched rows whose row cosine is < 0. */
  opposedRows: number;
  /** opposedRows / touchedRows; null when no row is touched. */
  opposedShare: number | null;
  /** Per-row table of the touched rows, ascending id (when asked for). */
  rows?: TugOfWarRow[];
}

/** The tug-of-war numbers of one step. */
export interface TugOfWarReport {
  /** Sharing mode of the model measured (see the module notes for what that means for the numbers). */
  sharing: SharingMode;
  /** The token-embedding table. */
  token: GradientAgreement;
  /** The position-embedding table; null when the backbone has none both losses reach. */
  position: GradientAgreement | null;
  /** L_MLM and L_RTD (unscaled) of the batch, when the probe computed the gradients itself. */
  lossMlm?: number;
  /** See lossMlm. */
  lossRtd?: number;
}

/** Options of the tug-of-war probes. */
export interface TugOfWarOptions {
  /** Build the per-row tables (default true; reads three vocabulary-length vectors). */
  rows?: boolean;
  /** Names token ids in the per-row table. */
  tokenizer?: TokenNamer;
  /** Token frequencies (e.g. corpus counts, indexed by id) for the per-row table. */
  counts?: ArrayLike<number>;
  /** The batch, for in-batch frequencies when `counts` is not given. */
  batch?: TokenBatch;
  /** Padding id (for position counts from `batch`); default 0. */
  padId?: number;
}

/** Options of {@link probeTugOfWar} and {@link stepGradients}. */
export interface ProbeOptions extends TugOfWarOptions {
  /**
   * Run G and D with the run's dropout, as the step does (default true). False: without dropout, everywhere
   * (G's forward pass that samples the replacements included), so the reading is what a model with the
   * same weights and dropout 0 gives: one batch's number no longer carries dropout's noise.
   */
  dropout?: boolean;
  /**
   * Seed of the masking, sampling and dropout draws (default the run's seed: the draws of the step at
   * `trainer.step`, what training used). Another seed measures the same weights on other draws.
   */
  seed?: number;
}

interface TableTensors {
  table: EmbeddingTableName;
  mlmParam: string;
  rtdParam: string;
  /** [Σdot, Σ‖g_MLM‖², Σ‖g_RTD‖², touched, opposed]. */
  scalars: tf.Tensor1D;
  /** [3, rows]: row dot, row ‖g_MLM‖², row ‖g_RTD‖². */
  perRow: tf.Tensor2D | null;
}

/**
 * A tug-of-war measurement taken on the device, not yet read back. Made synchronously (so it fits in
 * the trainer's synchronous `onGradients` callback, before the gradients are freed); {@link read} it
 * later. Owns a few small tensors: read() or dispose() frees them.
 */
export class TugOfWarMeasurement {
  #tables: TableTensors[];
  #sharing: SharingMode;
  #opts: TugOfWarOptions;

  /** Use {@link measureTugOfWar}. */
  constructor(sharing: SharingMode, tables: TableTensors[], opts: TugOfWarOptions) {
    this.#sharing = sharing;
    this.#tables = tables;
    this.#opts = opts;
  }

  /** Reads the numbers back (one small transfer per table) and frees the tensors. */
  async read(): Promise<TugOfWarReport> {
    try {
      const out: Record<string, GradientAgreement> = {};
      for (const t of this.#tables) out[t.table] = await readAgreement(t, this.#opts);
      return {
        sharing: this.#sharing,
        token: out.word_embeddings,
        position: out.position_embeddings ?? null,
      };
    } finally {
      this.dispose();
    }
  }

  /** Frees the tensors without reading them. */
  dispose(): void {
    for (const t of this.#tables) tf.dispose([t.scalars, ...(t.perRow ? [t.perRow] : [])]);
    this.#tables = [];
  }
}

/**
 * Measures the tug-of-war from a step's two gradient maps (e.g. inside `Pretrainer.onGradients`).
 * Synchronous and leaves `grads` untouched; returns null for the MLM baseline (no RTD gradient).
 */
export function measureTugOfWar(
  model: RtdModel,
  grads: StepGradients,
  opts: TugOfWarOptions = {},
): TugOfWarMeasurement | null {
  if (!grads.discriminator) return null;
  const tables: TableTensors[] = [];
  for (const table of ["word_embeddings", "position_embeddings"] as const) {
    const mlmParam = readTableParam(model, "generator", table);
    const rtdParam = readTableParam(model, "discriminator", table);
    const gMlm = mlmParam ? grads.generator.get(mlmParam) : undefined;
    const gRtd = rtdParam ? grads.discriminator.get(rtdParam) : undefined;
    if (!gMlm || !gRtd) {
      if (table === "word_embeddings") {
        throw new Error(`tug-of-war: no gradient on the token table (${mlmParam} / ${rtdParam})`);
      }
      continue;
    }
    const { scalars, perRow } = agreementTensors(gMlm as tf.Tensor2D, gRtd as tf.Tensor2D, opts.rows ?? true);
    tables.push({ table, mlmParam: mlmParam!, rtdParam: rtdParam!, scalars, perRow });
  }
  return new TugOfWarMeasurement(model.config.sharing, tables, opts);
}

/**
 * Device-side reductions of two same-shape gradients (rows = first axis): the five scalars
 * [Σ g_a·g_b, ‖g_a‖², ‖g_b‖², touched rows, opposed rows] and, with `perRow`, the [3, rows] matrix of row
 * dots and squared row norms. The caller owns the results.
 */
export function agreementTensors(
  a: tf.Tensor2D,
  b: tf.Tensor2D,
  perRow = true,
): { scalars: tf.Tensor1D; perRow: tf.Tensor2D | null } {
  const [scalars, rows] = tf.tidy(() => {
    const dots = tf.sum(tf.mul(a, b), 1);
    const na = tf.sum(tf.square(a), 1);
    const nb = tf.sum(tf.square(b), 1);
    const touched = tf.logicalAnd(tf.greater(na, 0), tf.greater(nb, 0));
    const opposed = tf.logicalAnd(touched, tf.less(dots, 0));
    const scalars = tf.stack([
      tf.sum(dots),
      tf.sum(na),
      tf.sum(nb),
      tf.sum(tf.cast(touched, "float32")),
      tf.sum(tf.cast(opposed, "float32")),
    ]) as tf.Tensor1D;
    return perRow ? [scalars, tf.stack([dots, na, nb])] : [scalars];
  });
  return { scalars: scalars as tf.Tensor1D, perRow: (rows as tf.Tensor2D | undefined) ?? null };
}

async function readAgreement(t: TableTensors, opts: TugOfWarOptions): Promise<GradientAgreement> {
  const [dot, na2, nb2, touched, opposed] = await t.scalars.data();
  const normMlm = Math.sqrt(na2), normRtd = Math.sqrt(nb2);
  const out: GradientAgreement = {
    mlmParam: t.mlmParam,
    rtdParam: t.rtdParam,
    cos: normMlm > 0 && normRtd > 0 ? dot / (normMlm * normRtd) : null,
    normMlm,
    normRtd,
    ratio: normMlm > 0 ? normRtd / normMlm : null,
    touchedRows: touched,
    opposedRows: opposed,
    opposedShare: touched > 0 ? opposed / touched : null,
  };
  if (t.perRow) {
    const v = await t.perRow.data();
    const n = t.perRow.shape[1];
    const isToken = t.table === "word_embeddings";
    // Given counts are per token id; positions count from the batch only.
    const fromBatch = opts.batch ? batchCounts(opts.batch, isToken, n, opts.padId ?? 0) : null;
    const counts = isToken ? opts.counts ?? fromBatch : fromBatch;
    const rows: TugOfWarRow[] = [];
    for (let i = 0; i < n; i++) {
      const ra = v[n + i], rb = v[2 * n + i];
      if (!(ra > 0 && rb > 0)) continue;
      const row: TugOfWarRow = {
        id: i,
        count: counts ? counts[i] ?? 0 : null,
        cos: v[i] / Math.sqrt(ra * rb),
        normMlm: Math.sqrt(ra),
        normRtd: Math.sqrt(rb),
      };
      if (isToken && opts.tokenizer) row.token = opts.tokenizer.idToToken(i);
      rows.push(row);
    }
    out.rows = rows;
  }
  return out;
}

/** Occurrences of each token id in the batch, or of non-padding tokens at each position. */
function batchCounts(batch: TokenBatch, byToken: boolean, n: number, padId: number): Float64Array {
  const c = new Float64Array(n);
  for (let i = 0; i < batch.inputIds.length; i++) {
    const id = batch.inputIds[i];
    if (byToken) {
      if (id < n) c[id]++;
    } else if (id !== padId) c[i % batch.length]++;
  }
  return c;
}

/**
 * Both gradient maps the trainer would compute for `batch` at its current step, without updating
 * anything (the caller disposes the gradients). Uses the step's own random streams, so they are the
 * gradients `trainStep(batch)` hands `onGradients` (for ES, NES and joint steps also the ones it applies;
 * decoupled GDES applies D's gradient at the updated E_G). Runs with `resampleAfterGeneratorUpdate`
 * differ: their D trains on the updated G's samples. `dropout: false` takes them without dropout, `seed` on other
 * draws.
 */
export async function stepGradients(
  trainer: Pretrainer,
  batch: TokenBatch,
  opts: Pick<ProbeOptions, "dropout" | "seed"> = {},
): Promise<{ grads: StepGradients; lossMlm: number; lossRtd: number | null }> {
  const c = trainer.config;
  const training = opts.dropout ?? true;
  const rngs = stepRngs(opts.seed ?? c.seed, trainer.step);
  const masked = trainer.mask(batch, rngs.data);
  if (masked.selected.length === 0) throw new Error("tug-of-war: the batch has no maskable tokens");
  const genInputs = batchTensors(masked.maskedIds, batch, trainer.vocab.padId);
  const gen = trainer.generatorGradients(genInputs, masked, rngs.dropout, 1, training);
  tf.dispose([genInputs.inputIds, genInputs.tokenTypeIds, genInputs.attentionMask]);
  let ok = false;
  try {
    const lossMlm = (await gen.loss.data())[0];
    if (c.sharing === "mlm") {
      ok = true;
      return { grads: { generator: gen.grads, discriminator: null }, lossMlm, lossRtd: null };
    }
    const samples = sampleFromLogits(
      (await gen.logits.data()) as Float32Array,
      masked.selected.length,
      c.vocabSize,
      c.samplingTemperature,
      rngs.data,
      c.disallowCorrect ? masked.targets : undefined,
    );
    const corruption = corrupt(batch.inputIds, masked.selected, samples);
    const discInputs = batchTensors(corruption.corruptedIds, batch, trainer.vocab.padId);
    const disc = trainer.discriminatorGradients(discInputs, corruption.labels, rngs.dropout, 1, training);
    tf.dispose([discInputs.inputIds, discInputs.tokenTypeIds, discInputs.attentionMask, disc.logits]);
    const lossRtd = (await disc.loss.data())[0];
    disc.loss.dispose();
    ok = true;
    return { grads: { generator: gen.grads, discriminator: disc.grads }, lossMlm, lossRtd };
  } finally {
    tf.dispose([gen.loss, gen.logits]);
    if (!ok) tf.dispose([...gen.grads.values()]);
  }
}

/**
 * The tug-of-war at the trainer's current step on `batch` (nothing is updated): both gradients as
 * {@link stepGradients} computes them, measured and read back. In-batch frequencies fill the per-row
 * table unless `opts.counts` is given; `opts.dropout` false measures without dropout. Throws for the MLM
 * baseline.
 */
export async function probeTugOfWar(
  trainer: Pretrainer,
  batch: TokenBatch,
  opts: ProbeOptions = {},
): Promise<TugOfWarReport> {
  // It takes the step's gradients, so it needs the trainer (its masking and losses), not only the model.
  if (typeof (trainer as unknown as Record<string, unknown>).mask !== "function") {
    throw new Error("probeTugOfWar takes the trainer (a Pretrainer, e.g. openRun's .trainer), not its model");
  }
  if (trainer.config.sharing === "mlm") throw new Error("tug-of-war: the MLM baseline has no RTD loss");
  const { grads, lossMlm, lossRtd } = await stepGradients(trainer, batch, opts);
  let m: TugOfWarMeasurement | null;
  try {
    m = measureTugOfWar(trainer.model, grads, { batch, padId: trainer.vocab.padId, ...opts });
  } finally {
    tf.dispose([...grads.generator.values(), ...(grads.discriminator?.values() ?? [])]);
  }
  const report = await m!.read();
  return { ...report, lossMlm, lossRtd: lossRtd ?? undefined };
}

/** Flat metrics.jsonl keys of a report: `tow_*` (token table) and `tow_pos_*` (position table); see lib/probes/mod.ts. */
export function tugOfWarMetrics(r: TugOfWarReport | null): Record<string, number | null> {
  const keys = (prefix: string, a: GradientAgreement | null | undefined) => ({
    [`${prefix}cos`]: a?.cos ?? null,
    [`${prefix}norm_mlm`]: a?.normMlm ?? null,
    [`${prefix}norm_rtd`]: a?.normRtd ?? null,
    [`${prefix}ratio`]: a?.ratio ?? null,
    [`${prefix}opposed_rows`]: a?.opposedShare ?? null,
    [`${prefix}touched_rows`]: a?.touchedRows ?? null,
  });
  return { ...keys("tow_", r?.token), ...keys("tow_pos_", r?.position) };
}

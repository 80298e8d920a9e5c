/**
 * The tug-of-war of a trained run at its latest checkpoint (`deno task probe`): both losses' gradients on
 * the embedding tables (lib/probes/tug_of_war.ts) over every batch of the sequences the run is judged on,
 * as means ± one standard error over batches, beside D's AUC and RTD gain on the same sequences (a
 * tug-of-war reading describes a discriminator that has learned only when those say so) and the
 * embeddings' average cosine. Nothing is updated: the run folder is read, never written.
 *
 * @module
 */

import type { SharingMode } from "../config.ts";
import { deriveSeed } from "../rng.ts";
import { EVALUATE_BATCH_SIZE, evaluateRtd, type RtdEvaluation, sequenceBatches } from "../train/evaluate.ts";
import { evaluationSequences, openRun } from "../report/trained.ts";
import { type EmbeddingSimilarity, embeddingSimilarity, tokenFrequencies, topTokens } from "./geometry.ts";
import { type GradientAgreement, probeTugOfWar } from "./tug_of_war.ts";

/**
 * Seed stream of the probe's draws, apart from training's (1-3) and evaluation's (4-6): batch k of a probe
 * draws from (seed, k, PROBE_STREAM).
 */
export const PROBE_STREAM = 7;

/** A mean over batches with its standard error (null with fewer than two batches). */
export interface MeanSe {
  /** Mean over batches. */
  mean: number;
  /** Standard error of the mean (null with fewer than two batches). */
  se: number | null;
  /** Batches with a value. */
  n: number;
}

/** One embedding table's agreement numbers over the probed batches. */
export interface TableProbe {
  /** cos(g_MLM, g_RTD) over the whole table; < 0: the two gradients oppose each other. */
  cos: MeanSe;
  /** Share of the rows both losses touch whose row cosine is < 0. */
  opposedShare: MeanSe;
  /** ‖g_RTD‖ / ‖g_MLM‖ (λ included). */
  ratio: MeanSe;
}

/** Options of {@link probeRunDir}. */
export interface RunProbeOptions {
  /**
   * Sequences per probed batch (default: the run's batchSize, the batch its gradients were taken on in
   * training; a per-batch cosine depends on it through the gradients' noise).
   */
  batchSize?: number;
  /** Seed of the masking, sampling and dropout draws (default 0); batch k draws from (seed, k). */
  seed?: number;
  /** Measure with the run's dropout (default true, as training-time probes do) or without. */
  dropout?: boolean;
  /** For a run without a held-out set: how many training sequences to use (default 64). */
  sequences?: number;
  /**
   * Tokens the embedding similarity averages over: the most frequent in the training split (default 1,000;
   * at least 2, an average over pairs).
   */
  similarityTokens?: number;
  /** Data preparation messages. */
  onMessage?: (msg: string) => void;
  /** Called after each probed batch (for a progress bar). */
  onBatch?: (done: number, total: number) => void;
}

/** What {@link probeRunDir} measured. */
export interface RunProbe {
  /** The checkpoint's step. */
  step: number;
  /** The run's sharing mode: what g_MLM and g_RTD are (lib/probes/tug_of_war.ts). */
  sharing: SharingMode;
  /** True when the sequences were kept out of training. */
  heldOut: boolean;
  /** Sequences probed, in `batches` batches of up to `batchSize` (the last may be smaller). */
  sequences: number;
  /** Number of batches probed. */
  batches: number;
  /** Sequences per batch (the last may be smaller). */
  batchSize: number;
  /** Seed of the masking, sampling and dropout draws. */
  seed: number;
  /** Whether the run's dropout was on while probing. */
  dropout: boolean;
  /** The run's sampling temperature: the gradients' replacements are drawn at it (D's score is at T = 1). */
  samplingTemperature: number;
  /** Tokens the average cosines were taken over (fewer than asked when fewer occur). */
  similarityTokens: number;
  /**
   * D's skill on the same sequences at T = 1, without dropout, in batches of {@link EVALUATE_BATCH_SIZE},
   * with its standard errors (lib/train/evaluate.ts): `deno task evaluate --seed S`'s numbers.
   */
  evaluation: RtdEvaluation;
  /** The token table. */
  token: TableProbe;
  /** The position table; null when D reads no absolute positions (DeBERTa). */
  position: TableProbe | null;
  /** Average cosine of E_G, E_D, E_Δ over the `similarityTokens` most frequent tokens. */
  similarity: EmbeddingSimilarity;
}

/** Mean and standard error of the non-null values. */
export function meanSe(values: readonly (number | null)[]): MeanSe {
  const xs = values.filter((v): v is number => v !== null && Number.isFinite(v));
  const n = xs.length;
  const mean = n ? xs.reduce((a, b) => a + b, 0) / n : NaN;
  const se = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1) / n) : null;
  return { mean, se, n };
}

function tableProbe(agreements: (GradientAgreement | null)[]): TableProbe | null {
  if (agreements.every((a) => a === null)) return null;
  return {
    cos: meanSe(agreements.map((a) => a?.cos ?? null)),
    opposedShare: meanSe(agreements.map((a) => a?.opposedShare ?? null)),
    ratio: meanSe(agreements.map((a) => a?.ratio ?? null)),
  };
}

/**
 * Opens the run in `dir` at its latest checkpoint and measures the tug-of-war on every batch of its
 * held-out sequences (or, without them, a seeded sample of its training sequences), D's skill on the same
 * sequences, and the embeddings' geometry. Throws for the MLM baseline (it has no RTD loss). Start a
 * backend first.
 */
export async function probeRunDir(dir: string, opts: RunProbeOptions = {}): Promise<RunProbe> {
  const run = await openRun(dir);
  try {
    const c = run.config;
    if (c.sharing === "mlm") {
      throw new Error(`${dir} is the MLM baseline: it has no RTD loss to pull against`);
    }
    const { sequences, heldOut, train } = await evaluationSequences(run, dir, opts);
    const batchSize = Math.min(opts.batchSize ?? c.batchSize, sequences.count);
    const seed = opts.seed ?? 0;
    const dropout = opts.dropout ?? true;
    const batches = sequenceBatches(sequences, batchSize);
    // D's skill in `deno task evaluate`'s batches (its draws depend on the batch size): the same numbers.
    const evaluation = await evaluateRtd(run.trainer, sequenceBatches(sequences, EVALUATE_BATCH_SIZE), {
      seed,
    });
    const token: (GradientAgreement | null)[] = [];
    const position: (GradientAgreement | null)[] = [];
    for (const [k, batch] of batches.entries()) {
      const r = await probeTugOfWar(run.trainer, batch, {
        rows: false,
        dropout,
        seed: deriveSeed(seed, k, PROBE_STREAM),
      });
      token.push(r.token);
      position.push(r.position);
      opts.onBatch?.(k + 1, batches.length);
    }
    const ids = topTokens(
      tokenFrequencies(train, run.tokenizer.vocabSize),
      opts.similarityTokens ?? 1000,
      (id) => run.tokenizer.isSpecial(id),
    );
    return {
      step: run.step,
      sharing: c.sharing,
      heldOut,
      sequences: sequences.count,
      batches: batches.length,
      batchSize,
      seed,
      dropout,
      samplingTemperature: c.samplingTemperature,
      similarityTokens: ids.length,
      evaluation,
      token: tableProbe(token)!,
      position: tableProbe(position),
      similarity: await embeddingSimilarity(run.trainer.model, ids),
    };
  } finally {
    run.trainer.dispose();
  }
}

/**
 * Judging a trained generator + discriminator on held-out text at a fixed sampling temperature.
 *
 * A run's own metrics.jsonl reports D on the replacements it trained on, sampled at the run's
 * `samplingTemperature`. A run trained at T = 2 learns to spot implausible tokens, which says little
 * about the papers' task (README, *Sweeps*): {@link evaluateRtd} corrupts batches with the generator
 * sampling at T = 1 (unless asked otherwise) from its own seed, so runs trained differently are judged
 * on the same kind of replacements, and with the same draws where their data coincide.
 *
 * It loads nothing: give it a live {@link Pretrainer} and batches. {@link holdOut} chooses the
 * sequences a run keeps out of training (`heldOutSequences`); {@link sequenceBatches} cuts them into
 * batches.
 *
 * @module
 */

import * as tf from "../tf.ts";
import { deriveSeed, Rng } from "../rng.ts";
import type { PackedSequences } from "./batches.ts";
import { batchTensors, type Pretrainer, type TokenBatch } from "./pretrain.ts";
import { corrupt, sampleFromLogits } from "./sampling.ts";
import { binaryEntropy, rocAuc } from "./rtd_metrics.ts";
import { yieldToEventLoop } from "../util/signals.ts";

/** Sequences per forward pass when `deno task evaluate` (and `deno task probe`'s D score) is not told otherwise. */
export const EVALUATE_BATCH_SIZE = 16;

/** Training sequences `deno task evaluate` scores (a seeded choice, at most half) for a run without a held-out set. */
export const EVALUATE_TRAIN_SEQUENCES = 64;

/** Stream ids mixed into seeds here, apart from the training streams (1-3 in lib/train). */
const HOLDOUT_STREAM = 4;
const EVAL_STREAM = 5;
const BOOTSTRAP_STREAM = 6;
const SAMPLE_STREAM = 7;

/** Bootstrap resamples behind {@link RtdEvaluation.discAucSe} and `rtdGainSe`. */
export const BOOTSTRAP_RESAMPLES = 200;
/** Fewest scored sequences for which the standard errors are given (null below). */
export const MIN_BOOTSTRAP_SEQUENCES = 10;

/** A packed corpus split into the sequences a run trains on and the ones kept for evaluation. */
export interface HeldOutSplit {
  /** The training sequences, in their original order (`data` itself when nothing is held out). */
  train: PackedSequences;
  /** The held-out sequences, in their original order. */
  heldOut: PackedSequences;
}

function pick(data: PackedSequences, rows: number[]): PackedSequences {
  const L = data.length;
  const inputIds = new Int32Array(rows.length * L);
  const tokenTypeIds = new Int32Array(rows.length * L);
  rows.forEach((r, i) => {
    inputIds.set(data.inputIds.subarray(r * L, (r + 1) * L), i * L);
    tokenTypeIds.set(data.tokenTypeIds.subarray(r * L, (r + 1) * L), i * L);
  });
  return { length: L, count: rows.length, inputIds, tokenTypeIds };
}

/**
 * Keeps `n` sequences of `data`, a seeded choice, out of training. `n` = 0 returns `data` unchanged as
 * the training set (so runs without a held-out set train exactly as before). Throws when `n` is not a
 * non-negative integer or would leave less than half of the corpus for training.
 */
export function holdOut(data: PackedSequences, n: number, seed: number): HeldOutSplit {
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`heldOutSequences must be a non-negative integer, got ${n}`);
  }
  if (n === 0) return { train: data, heldOut: pick(data, []) };
  if (n > data.count / 2) {
    throw new Error(
      `heldOutSequences ${n} is more than half of the corpus's ${data.count} sequences: hold out fewer ` +
        `or use a larger corpus`,
    );
  }
  const order = new Rng(deriveSeed(seed, data.count, HOLDOUT_STREAM)).shuffle(
    Array.from({ length: data.count }, (_, i) => i),
  );
  const held = new Set(order.slice(0, n));
  const rows = Array.from({ length: data.count }, (_, i) => i);
  return {
    train: pick(data, rows.filter((r) => !held.has(r))),
    heldOut: pick(data, rows.filter((r) => held.has(r))),
  };
}

/** A seeded choice of `n` of `data`'s sequences (all of them when `n` ≥ their count), in their original order. */
export function sampleSequences(data: PackedSequences, n: number, seed: number): PackedSequences {
  if (!Number.isInteger(n) || n < 1) throw new Error(`sequences must be a positive integer, got ${n}`);
  const rows = Array.from({ length: data.count }, (_, i) => i);
  if (n >= data.count) return pick(data, rows);
  const chosen = new Rng(deriveSeed(seed, data.count, SAMPLE_STREAM)).shuffle(rows.slice()).slice(0, n);
  return pick(data, chosen.sort((a, b) => a - b));
}

/** Consecutive batches of at most `batchSize` sequences over all of `data`, in order. */
export function sequenceBatches(data: PackedSequences, batchSize: number): TokenBatch[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`batch size must be a positive integer, got ${batchSize}`);
  }
  const L = data.length;
  const out: TokenBatch[] = [];
  for (let start = 0; start < data.count; start += batchSize) {
    const end = Math.min(data.count, start + batchSize);
    out.push({
      inputIds: data.inputIds.slice(start * L, end * L),
      tokenTypeIds: data.tokenTypeIds.slice(start * L, end * L),
      batch: end - start,
      length: L,
    });
  }
  return out;
}

/** Options of {@link evaluateRtd}. */
export interface EvaluateOptions {
  /** Sampling temperature of the replacements (default 1, whatever the run trained with). */
  temperature?: number;
  /**
   * Seed of the masking and sampling (default 0); batch k draws from (seed, k), so another batch size draws
   * other masks and samples (AUC moves by ~0.005 at a few hundred sequences): compare runs at one batch size.
   */
  seed?: number;
  /** Never sample the original token (default false, the papers' setting). */
  disallowCorrect?: boolean;
  /**
   * Another run's trainer whose generator makes the replacements (default: the evaluated run's own), with the
   * same vocabulary; its masking settings choose the masked positions too. Each discriminator is otherwise
   * scored on its own generator's samples, an easier task when that generator is weak; one reference generator
   * puts every D on the same task: the same corrupted sequences.
   */
  generator?: Pretrainer;
  /**
   * Keep the bootstrap's resampled AUCs and gains (`replicates`). Two evaluations with the same seed on the
   * same sequences draw the same resamples, so the spread of their replicates' differences is the standard
   * error of the difference itself (paired: the sequences' own difficulty cancels).
   */
  keepReplicates?: boolean;
}

/** What {@link evaluateRtd} measured, pooled over every batch. RTD fields are null for the MLM baseline. */
export interface RtdEvaluation {
  /** Sampling temperature of the generator's replacements. */
  temperature: number;
  /** Seed of the masking and sampling draws. */
  seed: number;
  /** Sequences (rows with at least one non-padding token), non-padding tokens and selected (masked) positions evaluated. */
  sequences: number;
  /** Non-padding tokens evaluated. */
  tokens: number;
  /** Positions selected for masking. */
  selected: number;
  /** Generator: mean cross-entropy at the selected positions, and the share of samples equal to the original. */
  lossMlm: number;
  /** Share of the generator's samples equal to the original. */
  genAcc: number | null;
  /** Fraction of non-padding tokens whose sample differs from the original. */
  replacedFrac: number | null;
  /** Mean sigmoid BCE of D over non-padding tokens (nats). */
  lossRtd: number | null;
  /** Binary entropy of the replaced fraction: the loss of the best constant predictor. */
  baseRate: number | null;
  /** baseRate − lossRtd. */
  rtdGain: number | null;
  /** ROC-AUC of D's logits, replaced vs original tokens. */
  discAuc: number | null;
  /**
   * Standard errors of `discAuc` and `rtdGain` over sequences: the spread of each number across
   * {@link BOOTSTRAP_RESAMPLES} resamples of the evaluated sequences, drawn with replacement (seeded). Whole
   * sequences are drawn because a sequence's tokens are not independent. Null below
   * {@link MIN_BOOTSTRAP_SEQUENCES} scored sequences.
   */
  discAucSe?: number | null;
  /** Bootstrap standard error of `rtdGain` (see `discAucSe`). */
  rtdGainSe?: number | null;
  /** With `keepReplicates`: the AUC and gain of every bootstrap resample, in draw order. */
  replicates?: { auc: (number | null)[]; gain: number[]; key: string };
  /** D's accuracy at threshold 0.5, and its recall on replaced tokens. */
  discAcc: number | null;
  /** D's recall on replaced tokens at threshold 0.5. */
  discRecall: number | null;
}

/**
 * Runs the generator and discriminator of `trainer` (no dropout, no update) on `batches`: masks each
 * batch with the run's masking settings, samples replacements from the generator at `temperature`
 * (default 1) with the evaluation's own seed, and scores D on the corrupted batch. Losses, AUC and the
 * base rate are pooled over all batches (not averaged per batch).
 */
export async function evaluateRtd(
  trainer: Pretrainer,
  batches: TokenBatch[],
  opts: EvaluateOptions = {},
): Promise<RtdEvaluation> {
  const temperature = opts.temperature ?? 1;
  const seed = opts.seed ?? 0;
  if (!(temperature > 0 && Number.isFinite(temperature))) {
    throw new Error(`evaluateRtd: temperature must be a positive number, got ${temperature}`);
  }
  if (batches.length === 0) throw new Error("evaluateRtd: no batches to evaluate");
  const model = trainer.model;
  const pad = trainer.vocab.padId;
  const V = trainer.config.vocabSize;
  const generator = (opts.generator ?? trainer).model;
  if (opts.generator && opts.generator.config.vocabSize !== V) {
    throw new Error(
      `evaluateRtd: the generator's vocabulary has ${opts.generator.config.vocabSize} ids, the run's ${V}`,
    );
  }
  const rtd = trainer.config.sharing !== "mlm";
  const off = { training: false };
  let sequences = 0, tokens = 0, selected = 0, correct = 0, replaced = 0;
  let ceSum = 0, bceSum = 0, right = 0, recallHits = 0;
  const scores: number[] = [];
  const labels: number[] = [];
  // Per sequence, for the bootstrap: where its tokens sit in scores/labels, its BCE sum and counts.
  const seqs: { from: number; to: number; bce: number; tokens: number; replaced: number }[] = [];

  for (let k = 0; k < batches.length; k++) {
    // Ctrl-C and `kill` heard between batches, not only when a long evaluation ends (lib/util/signals.ts).
    await yieldToEventLoop();
    const batch = batches[k];
    const rng = new Rng(deriveSeed(seed, k, EVAL_STREAM));
    // The generator's run masks (its mask rate and recipe): every discriminator scored against one generator
    // then sees the same corrupted sequences, whatever masking its own run trained with.
    const masked = (opts.generator ?? trainer).mask(batch, rng);
    const M = masked.selected.length;
    if (M === 0) continue;
    const genIn = batchTensors(masked.maskedIds, batch, pad);
    const logitsT = tf.tidy(() => {
      const hidden = generator.encode("generator", genIn, off);
      return generator.generatorLogits(hidden, tf.tensor1d(masked.selected, "int32"), off);
    });
    const logits = (await logitsT.data()) as Float32Array;
    tf.dispose([logitsT, genIn.inputIds, genIn.tokenTypeIds, genIn.attentionMask]);
    // Cross-entropy on the host in float64: log Σ exp(l − max) + max − l[target].
    for (let i = 0; i < M; i++) {
      const row = logits.subarray(i * V, (i + 1) * V);
      let max = -Infinity;
      for (let v = 0; v < V; v++) if (row[v] > max) max = row[v];
      let s = 0;
      for (let v = 0; v < V; v++) s += Math.exp(row[v] - max);
      ceSum += Math.log(s) + max - row[masked.targets[i]];
    }
    selected += M;
    const samples = sampleFromLogits(
      logits,
      M,
      V,
      temperature,
      rng,
      opts.disallowCorrect ? masked.targets : undefined,
    );
    const c = corrupt(batch.inputIds, masked.selected, samples);
    correct += c.sampledCorrect;
    const n = batch.inputIds.length;
    const L = n / batch.batch;
    for (let row = 0; row < batch.batch; row++) {
      let rowTokens = 0;
      for (let i = row * L; i < (row + 1) * L; i++) if (batch.inputIds[i] !== pad) rowTokens++;
      tokens += rowTokens;
      if (rowTokens > 0) sequences++; // rows of padding alone are not evaluated
    }
    if (!rtd) continue;
    const discIn = batchTensors(c.corruptedIds, batch, pad);
    const dT = tf.tidy(() => model.discriminatorLogits(model.encode("discriminator", discIn, off), off));
    const d = (await dT.data()) as Float32Array;
    tf.dispose([dT, discIn.inputIds, discIn.tokenTypeIds, discIn.attentionMask]);
    for (let row = 0; row < batch.batch; row++) {
      const seq = { from: scores.length, to: 0, bce: 0, tokens: 0, replaced: 0 };
      for (let i = row * L; i < (row + 1) * L; i++) {
        if (batch.inputIds[i] === pad) continue;
        const x = d[i], y = c.labels[i];
        // max(x, 0) − x·y + log(1 + e^{−|x|}): the stable form the training loss uses.
        const bce = Math.max(x, 0) - x * y + Math.log1p(Math.exp(-Math.abs(x)));
        bceSum += bce;
        seq.bce += bce;
        seq.tokens++;
        const pred = x > 0 ? 1 : 0;
        if (pred === y) right++;
        if (y === 1) {
          replaced++;
          seq.replaced++;
          if (pred === 1) recallHits++;
        }
        scores.push(x);
        labels.push(y);
      }
      seq.to = scores.length;
      if (seq.tokens > 0) seqs.push(seq);
    }
  }
  if (selected === 0) throw new Error("evaluateRtd: the batches have no maskable tokens");
  const frac = rtd ? replaced / tokens : null;
  const lossRtd = rtd ? bceSum / tokens : null;
  const baseRate = frac === null ? null : binaryEntropy(frac);
  const se = rtd ? bootstrapSe(seqs, scores, labels, seed) : { auc: null, gain: null, replicates: null };
  return {
    temperature,
    seed,
    sequences,
    tokens,
    selected,
    lossMlm: ceSum / selected,
    genAcc: correct / selected,
    replacedFrac: frac,
    lossRtd,
    baseRate,
    rtdGain: lossRtd === null || baseRate === null ? null : baseRate - lossRtd,
    discAuc: rtd ? rocAuc(scores, labels) : null,
    discAucSe: se.auc,
    rtdGainSe: se.gain,
    discAcc: rtd ? right / tokens : null,
    discRecall: rtd && replaced > 0 ? recallHits / replaced : null,
    ...(opts.keepReplicates && se.replicates
      ? { replicates: { ...se.replicates, key: replicatesKey(seed, batches) } }
      : {}),
  };
}

/** Sample standard deviation; null below two values. */
function sd(xs: number[]): number | null {
  if (xs.length < 2) return null;
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/**
 * Bootstrap standard errors of the pooled AUC and RTD gain, resampling whole sequences (seeded): `seqs[k]` spans
 * `scores`/`labels` [from, to) and carries its summed BCE, token and replaced counts.
 */
export function bootstrapSe(
  seqs: { from: number; to: number; bce: number; tokens: number; replaced: number }[],
  scores: number[],
  labels: number[],
  seed: number,
): {
  auc: number | null;
  gain: number | null;
  replicates: { auc: (number | null)[]; gain: number[] } | null;
} {
  // Below MIN_BOOTSTRAP_SEQUENCES the resamples are too few and too alike to give a spread worth reading.
  if (seqs.length < MIN_BOOTSTRAP_SEQUENCES) return { auc: null, gain: null, replicates: null };
  const rng = new Rng(deriveSeed(seed, seqs.length, BOOTSTRAP_STREAM));
  const aucs: (number | null)[] = [], gains: number[] = [];
  for (let b = 0; b < BOOTSTRAP_RESAMPLES; b++) {
    let bce = 0, tokens = 0, replaced = 0;
    const s: number[] = [], l: number[] = [];
    for (let k = 0; k < seqs.length; k++) {
      const q = seqs[rng.int(seqs.length)];
      bce += q.bce;
      tokens += q.tokens;
      replaced += q.replaced;
      for (let i = q.from; i < q.to; i++) {
        s.push(scores[i]);
        l.push(labels[i]);
      }
    }
    aucs.push(rocAuc(s, l));
    gains.push(binaryEntropy(replaced / tokens) - bce / tokens);
  }
  // A resample without both classes has no AUC; leaving it out would shrink the spread, so say nothing.
  return {
    auc: aucs.some((a) => a === null) ? null : sd(aucs as number[]),
    gain: sd(gains),
    replicates: { auc: aucs, gain: gains },
  };
}

/**
 * What decides an evaluation's bootstrap resamples: its seed and the sequences scored (an FNV-1a hash of every
 * batch's token ids). Two evaluations with one key drew the same resamples, so their replicates pair up.
 */
export function replicatesKey(seed: number, batches: TokenBatch[]): string {
  let h = 0x811c9dc5;
  for (const b of batches) {
    for (const id of b.inputIds) h = Math.imul(h ^ id, 0x01000193) >>> 0;
    h = Math.imul(h ^ 0xffff, 0x01000193) >>> 0; // batch boundary
  }
  return `${seed}:${batches.reduce((n, b) => n + b.batch, 0)}:${h.toString(16)}`;
}

/**
 * The standard error of a difference between two evaluations from their bootstrap replicates
 * (`keepReplicates`): the spread of the replicate-by-replicate differences. Only meaningful when both drew the
 * same resamples, i.e. their `replicates.key` is the same (the same seed and sequences): the caller checks
 * that. Null when either lacks replicates or a resample has no AUC.
 */
export function pairedSe(a: (number | null)[] | undefined, b: (number | null)[] | undefined): number | null {
  if (!a || !b || a.length !== b.length || a.some((x) => x === null) || b.some((x) => x === null)) {
    return null;
  }
  return sd(a.map((x, i) => x! - b[i]!));
}

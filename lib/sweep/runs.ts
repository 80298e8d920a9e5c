/**
 * A sweep point's run folder on disk: what is left to do (so a re-run skips finished points and
 * resumes interrupted ones), and the numbers the results table takes from it (metrics.jsonl and the
 * T = 1 evaluation in `eval.json`).
 *
 * @module
 */

import { join } from "node:path";
import type { RunConfig } from "../config.ts";
import { latestCheckpoint } from "../train/checkpoint.ts";
import { type MetricsRecord, readMetrics } from "../train/run.ts";
import type { RunEvaluation } from "../report/trained.ts";
import { notLearned, tailMean } from "../train/rtd_metrics.ts";
import type { SweepPoint } from "./grid.ts";

/** The evaluation's file in a point's folder (written by `deno task evaluate --out`). */
export const EVAL_FILE = "eval.json";

/** How a point is evaluated; a stored evaluation with other settings is redone. */
export interface EvalSettings {
  /** Sampling temperature of the replacements D is judged on. */
  temperature: number;
  /** Seed of the evaluation's masking and sampling. */
  seed: number;
  /** Sequences per forward pass. */
  batchSize: number;
  /** Set for `--unseen` (text the corpus cap left out): which part, and how many sequences were asked for. */
  unseen?: { part: string | null; sequences: number };
  /** Set for `--generator-from`: the run whose generator made the replacements (never a sweep's own evaluation). */
  generatorFrom?: string;
  /** Set for `--disallow-correct` (replacements never equal the original; not the papers' setting). */
  disallowCorrect?: true;
  /** For a run without a held-out set: how many of its training sequences were asked for (a seeded choice; at most half are scored). */
  sequences?: number;
}

/** The contents of `eval.json`. */
export interface EvalFile extends RunEvaluation {
  format: "rtdlab-eval-1";
  settings: EvalSettings;
}

/** What a point still needs: nothing, its evaluation, the rest of its training, or a fresh start. */
export type PointState = "done" | "evaluate" | "resume" | "fresh";

function canonical(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(canonical);
  if (x && typeof x === "object") {
    return Object.fromEntries(
      Object.keys(x).sort().map((k) => [k, canonical((x as Record<string, unknown>)[k])]),
    );
  }
  return x;
}

/**
 * Whether a run folder's config.json is the config the sweep wants: every key equal except
 * `vocabSize` (set from the tokenizer) and `backend`, `backend_info` (recorded by the run).
 */
export function sameRunConfig(expected: RunConfig, saved: Record<string, unknown>): boolean {
  const strip = (c: Record<string, unknown>) => {
    const { vocabSize: _v, backend: _b, backend_info: _i, ...rest } = c;
    return JSON.stringify(canonical(rest));
  };
  return strip(expected as unknown as Record<string, unknown>) === strip(saved);
}

async function readJson(path: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return null;
  }
}

/**
 * What is left to do for the run in `dir` that should have `expected` as its config: `done` (trained to
 * its last step, exported, and evaluated with `settings`), `evaluate` (trained, evaluation missing or with other
 * settings), `resume` (same config, a checkpoint before the end), `fresh` (nothing usable: no run, or
 * a run with another config).
 */
export async function pointState(
  dir: string,
  expected: RunConfig,
  settings: EvalSettings,
): Promise<PointState> {
  const saved = await readJson(join(dir, "config.json"));
  if (!saved || !sameRunConfig(expected, saved)) return "fresh";
  const ckpt = await latestCheckpoint(dir);
  if (!ckpt) return "fresh";
  const m = await readMetrics(join(dir, "metrics.jsonl"), { allowMissing: true });
  const state = await readJson(join(ckpt, "state.json"));
  // The export is written after the last checkpoint: a run killed in between resumes to write it.
  const exported = await Deno.stat(
    join(dir, "export", expected.sharing === "mlm" ? "mlm" : "discriminator", "model.safetensors"),
  ).then(() => true, () => false);
  const trained = m.at(-1)?.step === expected.steps && state?.step === expected.steps && exported;
  if (!trained) return "resume";
  const ev = await readJson(join(dir, EVAL_FILE));
  const same = ev?.format === "rtdlab-eval-1" && ev.step === expected.steps &&
    JSON.stringify(canonical(ev.settings)) === JSON.stringify(canonical(settings));
  return same ? "done" : "evaluate";
}

/**
 * Training time of a run from its metrics.jsonl: `elapsed_s` restarts at 0 when a run resumes, so the
 * time is the sum of each segment's last value (time lost to an interruption is not counted).
 */
export function trainingSeconds(m: MetricsRecord[]): number | null {
  if (m.length === 0) return null;
  let total = 0;
  for (let i = 0; i < m.length; i++) {
    const next = m[i + 1];
    if (!next || next.elapsed_s < m[i].elapsed_s) total += m[i].elapsed_s;
  }
  return total;
}

/** Median of the logged tokens/s windows (robust to a slow first window and to resumes). */
export function medianTokensPerSecond(m: MetricsRecord[]): number | null {
  const xs = m.map((r) => r.tokens_per_s).filter((x) => typeof x === "number" && x > 0).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const k = Math.floor(xs.length / 2);
  return xs.length % 2 ? xs[k] : (xs[k - 1] + xs[k]) / 2;
}

/** One point's row of the results. */
export interface PointResult {
  name: string;
  group: string;
  label: string;
  values: Record<string, string>;
  seed: number;
  status: "done" | "failed" | "unfinished";
  sharing: string;
  steps: number;
  /** Training tokens (steps × batch × sequence length, padding included). */
  tokens: number;
  /** The run's own sampling temperature (its training metrics are at this T). */
  samplingTemperature: number;
  /** The T = 1 evaluation of the final checkpoint on held-out sequences, or null before it exists. */
  eval: {
    disc_auc: number | null;
    rtd_gain: number | null;
    /** Standard errors over the evaluated sequences (bootstrap; null in evaluations made before them). */
    disc_auc_se: number | null;
    rtd_gain_se: number | null;
    base_rate: number | null;
    loss_rtd: number | null;
    loss_mlm: number;
    gen_acc: number | null;
    replaced_frac: number | null;
    disc_recall: number | null;
    temperature: number;
    tokens: number;
    held_out: boolean;
  } | null;
  /** Whether D has learned by the evaluation's AUC and gain (lib/train/rtd_metrics.ts NOT_LEARNED). */
  learned: boolean | null;
  /** Mean of the last tenth of logged training steps (at the run's own temperature). */
  train: {
    disc_auc: number | null;
    rtd_gain: number | null;
    loss_mlm: number | null;
    gen_acc: number | null;
  };
  tokens_per_s: number | null;
  wall_s: number | null;
  /** Last logged step. */
  last_step: number;
}

/** Reads a point's folder into its results row (`status` as the scheduler saw it). */
export async function collectPoint(
  dir: string,
  point: SweepPoint,
  status: PointResult["status"],
): Promise<PointResult> {
  const m = await readMetrics(join(dir, "metrics.jsonl"), { allowMissing: true });
  const ev = status === "done" ? (await readJson(join(dir, EVAL_FILE))) as EvalFile | null : null;
  const c = point.config;
  return {
    name: point.name,
    group: point.group,
    label: point.label,
    values: point.values,
    seed: point.seed,
    status,
    sharing: c.sharing,
    steps: c.steps,
    tokens: c.steps * c.batchSize * c.seqLength,
    samplingTemperature: c.samplingTemperature,
    eval: ev
      ? {
        disc_auc: ev.discAuc,
        rtd_gain: ev.rtdGain,
        disc_auc_se: ev.discAucSe ?? null,
        rtd_gain_se: ev.rtdGainSe ?? null,
        base_rate: ev.baseRate,
        loss_rtd: ev.lossRtd,
        loss_mlm: ev.lossMlm,
        gen_acc: ev.genAcc,
        replaced_frac: ev.replacedFrac,
        disc_recall: ev.discRecall,
        temperature: ev.temperature,
        tokens: ev.tokens,
        held_out: ev.heldOut,
      }
      : null,
    learned: ev && c.sharing !== "mlm" ? notLearned(ev.discAuc, ev.rtdGain).learned : null,
    train: {
      disc_auc: tailMean(m, "disc_auc"),
      rtd_gain: tailMean(m, "rtd_gain"),
      loss_mlm: tailMean(m, "loss_mlm"),
      gen_acc: tailMean(m, "gen_acc"),
    },
    tokens_per_s: medianTokensPerSecond(m),
    wall_s: trainingSeconds(m),
    last_step: m.at(-1)?.step ?? 0,
  };
}

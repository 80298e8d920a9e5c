/**
 * One fine-tuning job on disk: load a run's exported encoder and tokenizer, load the task, fine-tune,
 * and write `RUN/finetune/<task>-s<seed>/{metrics.json,predictions.jsonl}` atomically
 * (`tasks/finetune.ts` is a thin command line over {@link runFinetune}; `tasks/compare.ts` runs many).
 *
 * @module
 */

import { basename, extname, join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { loadTask, type LoadTaskOptions } from "../tasks/mod.ts";
import type { TaskData } from "../tasks/types.ts";
import { type EncoderSource, loadPretrainedEncoder, SequenceClassifier } from "./classifier.ts";
import {
  DEFAULT_HYPERPARAMS,
  type EvalRecord,
  finetune,
  type FinetuneHyperparams,
  type FinetuneProgress,
  type FinetuneResult,
  type Prediction,
} from "./train.ts";
import { type ClassificationMetrics, constantBaseline, predictionCollapse } from "./metrics.ts";
import { formatLoadReport } from "../model/hf_load.ts";

/** Options of {@link runFinetune}. */
export interface RunFinetuneOptions {
  /** Pre-training run folder (holds tokenizer.json and export/), or a HuggingFace model folder. */
  runDir: string;
  /** Packaged task name or a data file / folder. */
  task: string;
  /** Fine-tuning seed. */
  seed: number;
  /** Hyper-parameter overrides. */
  hyper?: Partial<FinetuneHyperparams>;
  /** Task loading options (columns, separate files, caps, split seed). */
  taskOptions?: LoadTaskOptions;
  /** Start from the discriminator, the MLM export, or random weights ("scratch"). Default: whichever the run exported. */
  source?: EncoderSource;
  /** Output folder; default `RUN/finetune/<task>-s<seed>` (with `-scratch` for source "scratch"). */
  outDir?: string;
  /** Replace an earlier result in the output folder (without it, a folder holding metrics.json is refused). */
  force?: boolean;
  /** Progress callbacks. */
  onProgress?: (p: FinetuneProgress) => void;
  /** Called after each dev evaluation. */
  onEval?: (r: EvalRecord) => void;
  /** Status lines. */
  onMessage?: (msg: string) => void;
  /** Stops training early (best weights are still tested and written). */
  signal?: AbortSignal;
}

/** Contents of metrics.json. */
export interface FinetuneMetricsFile {
  /** File format tag. */
  format: "rtdlab-finetune-1";
  /** Task name (a packaged task or a CSV path). */
  task: string;
  /** One line on the task and where its data came from. */
  task_description: string;
  /** Class names, by class index. */
  labels: string[];
  /** The metric that chose the kept evaluation. */
  metric: string;
  /** Fine-tuning seed. */
  seed: number;
  /** The pre-training run fine-tuned (its exported discriminator). */
  run_dir: string;
  /** Where the encoder's sizes (and, unless `source` is "scratch", its weights) came from. */
  model_dir: string;
  /** Which weights the encoder started from. */
  source: EncoderSource;
  /** The embedding sharing the encoder was pre-trained with; null for "scratch" (never pre-trained). */
  sharing: string | null;
  /** Examples per split (after caps). */
  sizes: { train: number; dev: number; test: number };
  /** How the splits were made (seed, fractions, caps). */
  split: TaskData["split"];
  /** The hyper-parameters used. */
  hyper: FinetuneHyperparams;
  /** Step and epoch of the kept (best-dev) evaluation. */
  best: { step: number; epoch: number };
  /** Dev metrics of the kept weights. */
  dev: ClassificationMetrics;
  /** Test metrics of the kept weights. */
  test: ClassificationMetrics;
  /** Every dev evaluation, in order. */
  history: EvalRecord[];
  /** Optimiser steps taken. */
  steps: number;
  /** True when patience ran out before the last epoch. */
  stopped_early: boolean;
  /**
   * True when Ctrl-C or SIGTERM stopped training: the scores are the best weights of an unfinished fine-tune,
   * which `compare` does not count and re-runs. Absent in older files.
   */
  interrupted?: boolean;
  /** Training examples cut to the maximum length. */
  truncated_train_examples: number;
  /** Wall-clock seconds spent training and evaluating. */
  seconds: FinetuneResult["seconds"];
  /**
   * Degenerate fine-tunes: the share of the most predicted class on dev and test, and whether either
   * reaches 95 % (the classifier predicts one class for nearly every example). Absent in older files.
   */
  one_class?: { dev: number; test: number; label: string; flagged: boolean };
  /**
   * What a constant classifier (one class for every example, the best such class per metric) scores on
   * dev and test: the floor a fine-tune must clear to have learned anything. Absent in older files.
   */
  constant?: { dev: ClassificationMetrics; test: ClassificationMetrics };
  /** ISO time the job finished. */
  finished_at: string;
}

/**
 * The floors a fine-tune's scores are read against, from its dev and test predictions: whether it predicts
 * one class for (nearly) every example of either split (`one_class`), and what a constant classifier scores
 * on each split's own labels (`constant`).
 */
export function finetuneFloors(
  dev: Prediction[],
  test: Prediction[],
  labels: string[],
): Required<Pick<FinetuneMetricsFile, "one_class" | "constant">> {
  const d = predictionCollapse(dev.map((p) => p.pred)), t = predictionCollapse(test.map((p) => p.pred));
  const cls = t.share >= d.share ? t.cls : d.cls;
  return {
    one_class: {
      dev: d.share,
      test: t.share,
      label: labels[cls] ?? String(cls),
      flagged: d.collapsed || t.collapsed,
    },
    constant: {
      dev: constantBaseline(dev.map((p) => p.label), labels.length),
      test: constantBaseline(test.map((p) => p.label), labels.length),
    },
  };
}

/** Folder-safe name of a task argument (a file path becomes its base name). */
export function taskSlug(task: string): string {
  const base = task.includes("/") || task.includes("\\") || extname(task)
    ? basename(task, extname(task))
    : task;
  return base.replace(/[^A-Za-z0-9._-]+/g, "_") || "task";
}

/** Default output folder of a fine-tuning job. */
export function finetuneDir(runDir: string, task: string, seed: number, source?: EncoderSource): string {
  return join(runDir, "finetune", `${taskSlug(task)}-s${seed}${source === "scratch" ? "-scratch" : ""}`);
}

/** What a fine-tune folder's metrics.json holds: nothing, a finished or an interrupted result, or damage. */
export async function earlierResult(
  path: string,
): Promise<"none" | "finished" | "interrupted" | { unreadable: string }> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "none";
    return { unreadable: (e as Error).message };
  }
  try {
    const m = JSON.parse(text) as FinetuneMetricsFile | null;
    if (typeof m !== "object" || m === null || Array.isArray(m)) return { unreadable: "not a JSON object" };
    return m.interrupted ? "interrupted" : "finished";
  } catch (e) {
    return { unreadable: (e as Error).message };
  }
}

/** Runs one fine-tuning job and writes its files; returns the metrics written. */
export async function runFinetune(opts: RunFinetuneOptions): Promise<FinetuneMetricsFile> {
  const say = opts.onMessage ?? (() => {});
  const enc = await loadPretrainedEncoder(opts.runDir, { source: opts.source });
  const out = opts.outDir ?? finetuneDir(opts.runDir, opts.task, opts.seed, enc.source);
  // Refuse before training, not after: an earlier result is never replaced silently (an interrupted one
  // is, with a word: it is the fine-tune this call finishes).
  const earlier = opts.force ? "none" : await earlierResult(join(out, "metrics.json"));
  if (earlier === "interrupted") say(`${out}: replacing the interrupted fine-tune's result`);
  else if (earlier !== "none") {
    throw new Error(
      earlier === "finished"
        ? `${out} already holds a fine-tuning result (metrics.json); pass --force to replace it or choose another --out`
        : `${out}/metrics.json cannot be read (${earlier.unreadable}); move it away, or pass --force to replace it`,
    );
  }
  const hyper = { ...DEFAULT_HYPERPARAMS, ...opts.hyper };
  const maxPositions = enc.config.maxPositions;
  if (opts.hyper?.maxLength !== undefined && opts.hyper.maxLength > maxPositions) {
    throw new Error(
      `--max-length ${opts.hyper.maxLength} is longer than the encoder's position table (maxPositions ${maxPositions})`,
    );
  }
  // The default length is only an upper bound: an encoder with a shorter table gets its own length.
  hyper.maxLength = Math.min(hyper.maxLength, maxPositions);
  const task = await loadTask(opts.task, opts.taskOptions);
  say(
    `${task.name}: ${task.labels.length} classes, train ${task.train.length} / dev ${task.dev.length} / test ${task.test.length}; ` +
      `encoder ${enc.source === "scratch" ? "random init (no pre-training)" : enc.modelDir} ` +
      `(${enc.config.discriminator.numLayers}×${enc.config.discriminator.hiddenSize})`,
  );
  const clf = SequenceClassifier.fromPretrained(enc, task.labels.length, opts.seed);
  if (clf.loadReport) {
    for (const line of formatLoadReport(clf.loadReport, [enc.weightsPath])) say(line);
    say("  newly initialised: the classification head classifier.*");
  }
  let result: FinetuneResult;
  try {
    result = await finetune(clf, enc.tokenizer, task, {
      seed: opts.seed,
      hyper,
      onProgress: opts.onProgress,
      onEval: opts.onEval,
      signal: opts.signal,
    });
  } finally {
    clf.dispose();
  }
  const metrics: FinetuneMetricsFile = {
    format: "rtdlab-finetune-1",
    task: task.name,
    task_description: task.description,
    labels: task.labels,
    metric: task.metric,
    seed: opts.seed,
    run_dir: opts.runDir,
    model_dir: enc.modelDir,
    source: enc.source,
    sharing: enc.source === "scratch" ? null : enc.sharing,
    sizes: { train: task.train.length, dev: task.dev.length, test: task.test.length },
    split: task.split,
    hyper: result.hyper,
    best: { step: result.best.step, epoch: result.best.epoch },
    dev: result.dev,
    test: result.test,
    history: result.history,
    steps: result.steps,
    stopped_early: result.stoppedEarly,
    interrupted: result.interrupted,
    truncated_train_examples: result.truncated,
    seconds: result.seconds,
    ...finetuneFloors(result.devPredictions, result.testPredictions, task.labels),
    finished_at: new Date().toISOString(),
  };
  if (metrics.one_class?.flagged) {
    say(
      `warning: the classifier predicts "${metrics.one_class.label}" for ${
        Math.round(100 * Math.max(metrics.one_class.dev, metrics.one_class.test))
      }% of the examples (dev ${Math.round(100 * metrics.one_class.dev)}%, test ${
        Math.round(100 * metrics.one_class.test)
      }%): a degenerate fine-tune, its accuracy is that class's share of the examples and its MCC ~0. It took ` +
        `${result.steps} optimiser step${
          result.steps === 1 ? "" : "s"
        } on ${task.train.length} examples; more ` +
        `examples or epochs (compare --quick uses every training example for 3 epochs) or another --lr may get ` +
        `it off the one class`,
    );
  }
  const line = (split: string, list: TaskData["dev"], p: Prediction) =>
    JSON.stringify({
      split,
      id: list[p.index].id,
      label: task.labels[p.label],
      pred: task.labels[p.pred],
      correct: p.label === p.pred,
      probs: p.probs.map((x) => Math.round(x * 1e4) / 1e4),
    });
  const lines = [
    ...result.devPredictions.map((p) => line("dev", task.dev, p)),
    ...result.testPredictions.map((p) => line("test", task.test, p)),
  ];
  // Predictions first, metrics.json last: its presence marks a finished job (compare skips those).
  await writeFileAtomic(join(out, "predictions.jsonl"), lines.join("\n") + "\n");
  await writeJsonAtomic(join(out, "metrics.json"), metrics);
  say(`wrote ${join(out, "metrics.json")} and predictions.jsonl`);
  return metrics;
}

/**
 * How long training will take here: seconds per step measured on this machine before a long job
 * starts, and the wall time of several runs on a few parallel workers, refined while they run from the
 * step times the runs themselves report (`tasks/demo.ts` prints both).
 *
 * @module
 */

import type { RunConfig } from "../config.ts";
import type { PackedCorpus } from "../text/packing.ts";
import { BatchSampler } from "./batches.ts";
import { Pretrainer, type PretrainVocab } from "./pretrain.ts";

/**
 * Seconds per training step of `config` on the active backend: `warmup` untimed steps (kernel set-up),
 * then the mean of `steps` timed ones, on the first batches of `data`. Builds and disposes its own model.
 */
export async function measureStepSeconds(
  config: RunConfig,
  vocab: PretrainVocab,
  data: PackedCorpus,
  opts: { warmup?: number; steps?: number } = {},
): Promise<number> {
  const { warmup = 1, steps = 2 } = opts;
  if (!(Number.isInteger(steps) && steps >= 1)) {
    throw new Error(`measureStepSeconds: steps must be >= 1, got ${steps}`);
  }
  const trainer = new Pretrainer(config, vocab);
  try {
    const sampler = new BatchSampler(data, config.batchSize, config.seed);
    for (let s = 0; s < warmup; s++) await trainer.trainStep(sampler.batchAt(trainer.step));
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) await trainer.trainStep(sampler.batchAt(trainer.step));
    return (performance.now() - t0) / 1000 / steps;
  } finally {
    trainer.dispose();
  }
}

/**
 * Wall time of `queued` jobs (seconds each) on `workers` parallel workers that take them in order as
 * soon as one is free, after the workers finish what they are `busy` with (seconds left each).
 */
export function scheduleSeconds(queued: number[], workers: number, busy: number[] = []): number {
  if (!(Number.isInteger(workers) && workers >= 1)) {
    throw new Error(`scheduleSeconds: workers must be >= 1, got ${workers}`);
  }
  const free = busy.slice(0, workers);
  while (free.length < workers) free.push(0);
  for (const d of queued) {
    const i = free.indexOf(Math.min(...free));
    free[i] += d;
  }
  return Math.max(...free);
}

/** One run as {@link etaSeconds} sees it. */
export interface JobTiming {
  state: "queued" | "running" | "done";
  /** Steps the run trains in all, and steps done. */
  total: number;
  done: number;
  /** Seconds per step measured before the start ({@link measureStepSeconds}). */
  measured: number;
  /** Seconds per step the run itself reports, once it does. */
  observed?: number;
}

/**
 * Seconds until every job is done: a running job's remaining steps at its own step time (the measured
 * one until it reports), a queued job's steps at the measured time scaled by how the running jobs compare
 * with their measurement (the machine's load, the probes), plus `startup` seconds per job not yet started.
 */
export function etaSeconds(jobs: JobTiming[], workers: number, startup: number): number {
  const ratios = jobs.filter((j) => j.observed !== undefined && j.measured > 0).map((j) =>
    j.observed! / j.measured
  );
  const scale = ratios.length ? ratios.reduce((a, b) => a + b, 0) / ratios.length : 1;
  const busy = jobs.filter((j) => j.state === "running")
    .map((j) =>
      (j.total - j.done) * (j.observed ?? j.measured * scale) + (j.observed === undefined ? startup : 0)
    );
  const queued = jobs.filter((j) => j.state === "queued").map((j) => startup + j.total * j.measured * scale);
  return scheduleSeconds(queued, workers, busy);
}

/** One job of `deno task compare` as {@link compareEtaSeconds} sees it. */
export interface CompareJobTiming {
  kind: "pretrain" | "finetune";
  state: "queued" | "running" | "done";
  /** Pre-training steps in all and done so far (a fine-tune: 1 and 0). */
  total: number;
  done: number;
  /** Seconds since it started (running) or that it took (done). */
  seconds?: number;
}

/**
 * Seconds until compare's jobs are done on `workers` parallel workers, from the jobs' own times: a
 * pre-training run at the seconds per step (start-up included) of the finished runs, else of the running
 * ones; a fine-tune at the mean wall time of the finished fine-tunes. `pretrain` counts the pre-training
 * runs only; `all` is null until a fine-tune has finished (before that nothing says how long one takes),
 * and both are null until some pre-training run has reported a step.
 */
export function compareEtaSeconds(
  jobs: CompareJobTiming[],
  workers: number,
): { pretrain: number | null; all: number | null } {
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  const pre = jobs.filter((j) => j.kind === "pretrain");
  const ft = jobs.filter((j) => j.kind === "finetune");
  const perStep =
    mean(pre.filter((j) => j.state === "done" && j.seconds && j.total).map((j) => j.seconds! / j.total)) ??
      mean(
        pre.filter((j) => j.state === "running" && j.done > 0 && j.seconds).map((j) => j.seconds! / j.done),
      );
  const perFinetune = mean(
    ft.filter((j) => j.state === "done" && j.seconds !== undefined).map((j) => j.seconds!),
  );
  const left = (list: CompareJobTiming[], each: (j: CompareJobTiming) => number) => {
    const busy = list.filter((j) => j.state === "running").map(each);
    const queued = list.filter((j) => j.state === "queued").map(each);
    return scheduleSeconds(queued, workers, busy);
  };
  const pending = (list: CompareJobTiming[]) => list.some((j) => j.state !== "done");
  if (pending(pre) && perStep === null) return { pretrain: null, all: null };
  const preLeft = (j: CompareJobTiming) =>
    j.state === "running" && j.done > 0 && j.seconds
      ? (j.seconds / j.done) * (j.total - j.done)
      : j.total * perStep!;
  const ftLeft = (j: CompareJobTiming) =>
    j.state === "running" ? Math.max(0, perFinetune! - (j.seconds ?? 0)) : perFinetune!;
  const pretrain = left(pre, preLeft);
  const all = pending(ft) && perFinetune === null
    ? null
    : left(jobs, (j) => (j.kind === "pretrain" ? preLeft(j) : ftLeft(j)));
  return { pretrain, all };
}

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

/**
 * The probes inside a training run (`--probe-every K`): every K steps, the tug-of-war numbers of that
 * step's own gradients and the average cosine of E_G / E_D / E_Δ over the top-N tokens, as extra
 * metrics.jsonl keys (listed in lib/probes/mod.ts).
 *
 * It only reads gradients and weights: a probed run trains exactly as an unprobed one.
 *
 * @module
 */

import type { RtdModel } from "../model/mod.ts";
import type { StepGradients } from "../train/pretrain.ts";
import { embeddingSimilarity } from "./geometry.ts";
import { measureTugOfWar, type TugOfWarMeasurement, tugOfWarMetrics } from "./tug_of_war.ts";

/** Options of {@link TrainingProbe}. */
export interface TrainingProbeOptions {
  /** Probe the steps whose (1-based) number is a multiple of this. */
  every: number;
  /** Token ids for the average cosines (e.g. topTokens(tokenFrequencies(data), 1000, isSpecial)). */
  similarityIds: ArrayLike<number>;
}

/** Collects probe metrics every `every` steps: hook {@link onGradients} into the trainer, then {@link collect}. */
export class TrainingProbe {
  /** The model whose gradients and tables are probed. */
  readonly model: RtdModel;
  /** Probe every this many steps. */
  readonly every: number;
  /** The token ids the embedding-similarity probe averages over (the most frequent tokens). */
  readonly similarityIds: ArrayLike<number>;
  #pending: { step: number; m: TugOfWarMeasurement | null } | null = null;

  /** A probe for `model` (the trainer's). */
  constructor(model: RtdModel, opts: TrainingProbeOptions) {
    if (!(Number.isInteger(opts.every) && opts.every > 0)) {
      throw new Error(`probe every: needs a positive integer, got ${opts.every}`);
    }
    this.model = model;
    this.every = opts.every;
    this.similarityIds = opts.similarityIds;
  }

  /** True when the step numbered `step` (1-based, as in metrics.jsonl) is probed. */
  probes(step: number): boolean {
    return step % this.every === 0;
  }

  /** The trainer's `onGradients` hook: measures (on the device) when step index `step` (0-based) is probed. */
  onGradients(grads: StepGradients, step: number): void {
    if (!this.probes(step + 1)) return;
    this.#pending?.m?.dispose();
    this.#pending = { step: step + 1, m: measureTugOfWar(this.model, grads, { rows: false }) };
  }

  /**
   * After the step numbered `step` (1-based): its probe metrics, or null when it was not probed.
   * Geometry is measured on the weights after the step's update.
   */
  async collect(step: number): Promise<Record<string, number | null> | null> {
    const pending = this.#pending;
    if (!pending || pending.step !== step) return null;
    this.#pending = null;
    const tow = pending.m ? await pending.m.read() : null;
    const sim = await embeddingSimilarity(this.model, this.similarityIds);
    return {
      ...tugOfWarMetrics(tow),
      sim_gen: sim.generator,
      sim_disc: sim.discriminator,
      sim_delta: sim.delta,
    };
  }

  /** Frees a measurement that was never collected. */
  dispose(): void {
    this.#pending?.m?.dispose();
    this.#pending = null;
  }
}

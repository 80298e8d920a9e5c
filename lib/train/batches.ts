/**
 * Batches from a packed corpus in a seeded, shuffled order that is a pure function of (seed, step):
 * step s always sees the same sequences, so resuming needs no data-loader state.
 *
 * @module
 */

import { Rng } from "../rng.ts";
import { deriveSeed, type TokenBatch } from "./pretrain.ts";

/** The packed-corpus fields batching needs (see lib/text/packing.ts). */
export interface PackedSequences {
  /** Tokens per sequence. */
  length: number;
  /** Number of sequences. */
  count: number;
  /** count × length ids. */
  inputIds: Int32Array;
  /** count × length segment ids. */
  tokenTypeIds: Int32Array;
}

/** Draws batches epoch by epoch, each epoch a fresh permutation of the sequences. */
export class BatchSampler {
  #perms = new Map<number, Uint32Array>();

  /** A sampler over `data` with `batchSize` sequences per step. */
  constructor(readonly data: PackedSequences, readonly batchSize: number, readonly seed: number) {
    if (data.count === 0) throw new Error("empty corpus: no sequences to train on");
  }

  /** Epochs per step: how much of the corpus one step reads. */
  get stepsPerEpoch(): number {
    return this.data.count / this.batchSize;
  }

  #permutation(epoch: number): Uint32Array {
    let p = this.#perms.get(epoch);
    if (!p) {
      const rng = new Rng(deriveSeed(this.seed, epoch, 3));
      const idx = Array.from({ length: this.data.count }, (_, i) => i);
      p = Uint32Array.from(rng.shuffle(idx));
      if (this.#perms.size > 2) this.#perms.clear();
      this.#perms.set(epoch, p);
    }
    return p;
  }

  /** The batch of step `step` (0-based). */
  batchAt(step: number): TokenBatch {
    const { length, count } = this.data;
    const inputIds = new Int32Array(this.batchSize * length);
    const tokenTypeIds = new Int32Array(this.batchSize * length);
    for (let i = 0; i < this.batchSize; i++) {
      const k = step * this.batchSize + i;
      const seq = this.#permutation(Math.floor(k / count))[k % count];
      inputIds.set(this.data.inputIds.subarray(seq * length, (seq + 1) * length), i * length);
      tokenTypeIds.set(this.data.tokenTypeIds.subarray(seq * length, (seq + 1) * length), i * length);
    }
    return { inputIds, tokenTypeIds, batch: this.batchSize, length };
  }
}

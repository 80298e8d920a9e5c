/**
 * The time estimate the demo prints up front and the ETA on its progress line (lib/train/estimate.ts).
 */

import assert from "node:assert/strict";
import * as tf from "../lib/tf.ts";
import { initBackend } from "../lib/backend/mod.ts";
import { compareEtaSeconds, etaSeconds, measureStepSeconds, scheduleSeconds } from "../lib/train/estimate.ts";
import { microConfig, randomBatch, VOCAB } from "./_helpers.ts";

Deno.test("scheduleSeconds: jobs go, in order, to the worker free first", () => {
  assert.equal(scheduleSeconds([10, 10, 10, 10], 2), 20);
  assert.equal(scheduleSeconds([10, 10, 10, 10], 1), 40);
  assert.equal(scheduleSeconds([30, 10, 10, 10], 2), 30);
  // Busy workers first finish what they run: 5 s and 0 s left, then two 10 s jobs.
  assert.equal(scheduleSeconds([10, 10], 2, [5]), 15);
  assert.equal(scheduleSeconds([], 3, [4, 7]), 7);
  assert.throws(() => scheduleSeconds([1], 0), /workers must be >= 1/);
});

Deno.test("etaSeconds: running jobs at their own step time, queued ones scaled by how the running compare", () => {
  const queued = { state: "queued" as const, total: 100, done: 0, measured: 0.1 };
  // Up front: 4 runs × (2 s start-up + 100 × 0.1 s) on 2 workers.
  assert.equal(etaSeconds([queued, queued, queued, queued], 2, 2), 24);
  // A running job reporting 0.2 s/step (twice its measurement) has 50 × 0.2 = 10 s left, and the queued
  // one is scaled alike: 2 + 100 × 0.2 = 22 s, at once on a second worker, after the 10 s on one worker.
  const running = { state: "running" as const, total: 100, done: 50, measured: 0.1, observed: 0.2 };
  assert.equal(etaSeconds([running, queued], 2, 2), 22);
  assert.equal(etaSeconds([running, queued], 1, 2), 32);
  // Finished jobs add nothing.
  assert.equal(etaSeconds([{ ...running, state: "done", done: 100 }], 2, 2), 0);
});

Deno.test("measureStepSeconds: a real step's time, with the model disposed afterwards", async () => {
  await initBackend("wasm");
  const c = microConfig("gdes");
  const rows = Array.from({ length: 4 }, (_, i) => randomBatch(i, 2, 16));
  const data = {
    length: 16,
    count: 8,
    inputIds: new Int32Array(rows.flatMap((b) => [...b.inputIds])),
    tokenTypeIds: new Int32Array(8 * 16),
  };
  const before = tf.memory().numTensors;
  const t = await measureStepSeconds(c, VOCAB, data, { warmup: 1, steps: 2 });
  assert.ok(Number.isFinite(t) && t > 0, String(t));
  assert.equal(tf.memory().numTensors, before, "the measuring model is disposed");
  await assert.rejects(() => measureStepSeconds(c, VOCAB, data, { steps: 0 }), /steps must be >= 1/);
});

Deno.test("compareEtaSeconds: pre-training from the runs' own step times, fine-tuning once one has finished", () => {
  const pre = (state: "queued" | "running" | "done", done = 0, seconds?: number) => ({
    kind: "pretrain" as const,
    state,
    total: 100,
    done,
    seconds,
  });
  const ft = (state: "queued" | "running" | "done", seconds?: number) => ({
    kind: "finetune" as const,
    state,
    total: 1,
    done: 0,
    seconds,
  });
  // Nothing has reported a step yet: no basis.
  assert.deepEqual(compareEtaSeconds([pre("running"), pre("queued"), ft("queued")], 1), {
    pretrain: null,
    all: null,
  });
  // A run 25 steps in after 50 s: 75 × 2 s left, the queued run 100 × 2 s; fine-tuning not timed yet.
  assert.deepEqual(compareEtaSeconds([pre("running", 25, 50), pre("queued"), ft("queued")], 1), {
    pretrain: 350,
    all: null,
  });
  // One worker: a finished run's 150 s / 100 steps sets the queued run's rate (the running one keeps its
  // own: 50 steps in 100 s), a finished 20 s fine-tune the queued fine-tune's.
  const serial = [
    pre("done", 100, 150),
    pre("running", 50, 100),
    pre("queued"),
    ft("done", 20),
    ft("queued"),
  ];
  assert.deepEqual(compareEtaSeconds(serial, 1), { pretrain: 100 + 150, all: 100 + 150 + 20 });
  // Two workers (scheduleSeconds): busy 100 s and 15 s (a fine-tune 5 s into its 20), then 150 s and 20 s.
  const parallel = [
    pre("done", 100, 150),
    pre("running", 50, 100),
    pre("queued"),
    ft("done", 20),
    ft("running", 5),
    ft("queued"),
  ];
  assert.deepEqual(compareEtaSeconds(parallel, 2), { pretrain: 150, all: 165 });
  // Everything finished (also jobs done in an earlier invocation, with no time): nothing left.
  assert.deepEqual(compareEtaSeconds([pre("done"), ft("done")], 1), { pretrain: 0, all: 0 });
});

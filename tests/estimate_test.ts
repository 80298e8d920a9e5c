/**
 * The time estimate the demo prints up front and the ETA on its progress line (lib/train/estimate.ts).
 */

import assert from "node:assert/strict";
import * as tf from "../lib/tf.ts";
import { initBackend } from "../lib/backend/mod.ts";
import { etaSeconds, measureStepSeconds, scheduleSeconds } from "../lib/train/estimate.ts";
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

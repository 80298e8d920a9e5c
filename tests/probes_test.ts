/**
 * Probes: the tug-of-war gradients match gradients computed another way (explicit tf.grad on the table
 * each network reads, finite differences), the geometry matches hand-computed cosines, the discriminator
 * view is consistent, probes leave training unchanged and leak no tensors.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "../lib/tf.ts";
import { initBackend } from "../lib/backend/mod.ts";
import type { SharingMode } from "../lib/config.ts";
import { applyOverrides, preset, validateConfig } from "../lib/config.ts";
import { Rng } from "../lib/rng.ts";
import { WordPieceTokenizer } from "../lib/text/tokenizer.ts";
import {
  batchTensors,
  crossEntropy,
  Pretrainer,
  sigmoidBce,
  stepRngs,
  type TokenBatch,
} from "../lib/train/pretrain.ts";
import { pretrain, readMetrics } from "../lib/train/run.ts";
import { parseCli } from "../tasks/pretrain.ts";
import { evaluateRunDir, evaluationSequences, openRun } from "../lib/report/trained.ts";
import { sequenceBatches } from "../lib/train/evaluate.ts";
import { deriveSeed } from "../lib/rng.ts";
import { corrupt, sampleFromLogits } from "../lib/train/sampling.ts";
import {
  averageCosine,
  discriminatorView,
  embeddingDrift,
  embeddingSimilarity,
  embeddingTable,
  meanSe,
  measureTugOfWar,
  nearestNeighbours,
  PROBE_STREAM,
  probeRunDir,
  probeTugOfWar,
  readTableParam,
  snapshotEmbeddings,
  stepGradients,
  tokenFrequencies,
  topTokens,
  TrainingProbe,
  type TugOfWarReport,
} from "../lib/probes/mod.ts";
import { maxAbsDiff, MICRO_SIZES, microConfig, randomBatch, tempDir, VOCAB } from "./_helpers.ts";

await initBackend("wasm");

const WORD = (owner: string) => `${owner}.electra.embeddings.word_embeddings.weight`;
const DELTA = "discriminator.electra.embeddings.word_embeddings_delta.weight";

/** Micro config without dropout, so a forward pass outside the trainer reproduces its numbers exactly. */
const quiet = (sharing: SharingMode) => microConfig(sharing, { dropout: 0 });

/**
 * The probe's inputs rebuilt independently: the step's masking and samples, then L_MLM(E) and λ·L_RTD(E)
 * as functions of an explicit token table E that replaces the one each network reads.
 */
function lossesOfTable(t: Pretrainer, batch: TokenBatch) {
  const rngs = stepRngs(t.config.seed, t.step);
  const masked = t.mask(batch, rngs.data);
  const genInputs = batchTensors(masked.maskedIds, batch, VOCAB.padId);
  const selected = tf.tensor1d(masked.selected, "int32");
  const targets = tf.tensor1d(masked.targets, "int32");
  const logits = tf.tidy(() =>
    t.model.generatorLogits(t.model.encode("generator", genInputs, { training: false }), selected, {
      training: false,
    })
  );
  const samples = sampleFromLogits(
    logits.dataSync() as Float32Array,
    masked.selected.length,
    t.config.vocabSize,
    1,
    rngs.data,
  );
  logits.dispose();
  const c = corrupt(batch.inputIds, masked.selected, samples);
  const discInputs = batchTensors(c.corruptedIds, batch, VOCAB.padId);
  const labels = tf.tensor1d(c.labels);
  const weights = tf.reshape(discInputs.attentionMask, [-1]) as tf.Tensor1D;
  const opts = (e: tf.Tensor2D) => ({ training: false, wordTableOverride: e });
  const mlm = (e: tf.Tensor2D) => {
    const h = t.model.encode("generator", genInputs, opts(e));
    return crossEntropy(t.model.generatorLogits(h, selected, opts(e)), targets);
  };
  const rtd = (e: tf.Tensor2D) => {
    const h = t.model.encode("discriminator", discInputs, opts(e));
    return tf.mul(sigmoidBce(t.model.discriminatorLogits(h, opts(e)), labels, weights), t.config.rtdWeight);
  };
  const dispose = () =>
    tf.dispose([
      selected,
      targets,
      labels,
      weights,
      ...Object.values(genInputs),
      ...Object.values(discInputs),
    ]);
  return { mlm, rtd, dispose };
}

/** ∂f/∂E at E = `table` (caller disposes). */
function gradAt(f: (e: tf.Tensor2D) => tf.Tensor, table: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.grad((e: tf.Tensor) => f(e as tf.Tensor2D) as tf.Scalar)(table) as tf.Tensor2D);
}

/** The probe's statistics recomputed on the host in float64 from two gradient tables. */
function hostStats(a: Float32Array, b: Float32Array, cols: number) {
  let dot = 0, na = 0, nb = 0, touched = 0, opposed = 0;
  for (let r = 0; r < a.length / cols; r++) {
    let d = 0, x = 0, y = 0;
    for (let k = r * cols; k < (r + 1) * cols; k++) {
      d += a[k] * b[k];
      x += a[k] * a[k];
      y += b[k] * b[k];
    }
    dot += d, na += x, nb += y;
    if (x > 0 && y > 0) {
      touched++;
      if (d < 0) opposed++;
    }
  }
  return {
    cos: dot / Math.sqrt(na * nb),
    normMlm: Math.sqrt(na),
    normRtd: Math.sqrt(nb),
    touched,
    opposedShare: opposed / touched,
  };
}

const close = (a: number, b: number, rel = 1e-4, what = "") =>
  assert.ok(Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b), 1e-12), `${what}: ${a} vs ${b}`);

Deno.test("agreement statistics on hand-made gradients (global cosine, norms, touched and opposed rows)", async () => {
  const before = tf.memory().numTensors;
  const t = new Pretrainer(quiet("es"), VOCAB);
  const shape: [number, number] = [64, 16];
  const a = new Float32Array(64 * 16), b = new Float32Array(64 * 16);
  // Row 7: opposed (cos −1); row 9: aligned (cos 1); row 11: orthogonal (cos 0, not opposed); row 13: G only.
  a.set([1, 0], 7 * 16), b.set([-2, 0], 7 * 16);
  a.set([0, 1], 9 * 16), b.set([0, 3], 9 * 16);
  a.set([1, 1], 11 * 16), b.set([1, -1], 11 * 16);
  a.set([0, 0, 2], 13 * 16);
  const ga = tf.tensor2d(a, shape), gb = tf.tensor2d(b, shape);
  const grads = {
    generator: new Map([[WORD("discriminator"), ga]]),
    discriminator: new Map([[WORD("discriminator"), gb]]),
  };
  const counts = new Float64Array(64).fill(5);
  const r = await measureTugOfWar(t.model, grads, { counts, tokenizer: { idToToken: (id) => `tok${id}` } })!
    .read();
  // Σ a·b = −2 + 3 + 0 = 1; ‖a‖² = 1 + 1 + 2 + 4 = 8; ‖b‖² = 4 + 9 + 2 = 15.
  close(r.token.cos!, 1 / Math.sqrt(8 * 15), 1e-6, "cos");
  close(r.token.normMlm, Math.sqrt(8), 1e-6, "‖g_MLM‖");
  close(r.token.normRtd, Math.sqrt(15), 1e-6, "‖g_RTD‖");
  close(r.token.ratio!, Math.sqrt(15 / 8), 1e-6, "ratio");
  assert.equal(r.token.touchedRows, 3);
  assert.equal(r.token.opposedRows, 1);
  close(r.token.opposedShare!, 1 / 3, 1e-9, "opposed share");
  assert.deepEqual(r.token.rows!.map((x) => [x.id, x.token, x.count, Math.round(x.cos * 1e6) / 1e6]), [
    [7, "tok7", 5, -1],
    [9, "tok9", 5, 1],
    [11, "tok11", 5, 0],
  ]);
  assert.equal(r.position, null, "no position gradients given");
  assert.ok(ga.isDisposed === false && gb.isDisposed === false, "the caller's gradients are left alone");
  tf.dispose([ga, gb]);
  t.dispose();
  assert.equal(tf.memory().numTensors, before, "no tensor leak");
});

for (const sharing of ["es", "nes", "gdes"] as const) {
  Deno.test(`${sharing}: the probe's gradients are ∂L_MLM/∂E_G and ∂(λ·L_RTD)/∂E_D of the tables each network reads`, async () => {
    const t = new Pretrainer(quiet(sharing), VOCAB);
    // A few steps first, so E_Δ (GDES) is no longer zero and the tables differ.
    for (let s = 0; s < 3; s++) await t.trainStep(randomBatch(100 + s));
    const batch = randomBatch(7);
    const before = tf.memory().numTensors;
    const report = await probeTugOfWar(t, batch);
    assert.equal(tf.memory().numTensors, before, "probeTugOfWar leaks no tensor");

    const f = lossesOfTable(t, batch);
    const eg = embeddingTable(t.model, "generator")!, ed = embeddingTable(t.model, "discriminator")!;
    const gM = gradAt(f.mlm, eg), gR = gradAt(f.rtd, ed);
    const expected = hostStats(gM.dataSync() as Float32Array, gR.dataSync() as Float32Array, 16);
    close(report.token.cos!, expected.cos, 1e-4, "cos");
    close(report.token.normMlm, expected.normMlm, 1e-4, "‖g_MLM‖");
    close(report.token.normRtd, expected.normRtd, 1e-4, "‖g_RTD‖");
    assert.equal(report.token.touchedRows, expected.touched);
    close(report.token.opposedShare!, expected.opposedShare, 1e-9, "opposed share");
    const owner = { es: "discriminator", nes: "generator", gdes: "generator" }[sharing];
    assert.equal(report.token.mlmParam, WORD(owner));
    assert.equal(report.token.rtdParam, sharing === "gdes" ? DELTA : WORD("discriminator"));
    assert.ok(report.position && report.position.touchedRows === 16 - 3, "positions 0..12 carry tokens");

    // The raw gradient maps hold exactly these tables' gradients (GDES: the one on E_Δ equals ∂/∂E_D).
    const { grads } = await stepGradients(t, batch);
    assert.ok(maxAbsDiff(grads.generator.get(report.token.mlmParam)!.dataSync(), gM.dataSync()) < 1e-6);
    assert.ok(maxAbsDiff(grads.discriminator!.get(report.token.rtdParam)!.dataSync(), gR.dataSync()) < 1e-6);
    tf.dispose([gM, gR, eg, ed, ...grads.generator.values(), ...grads.discriminator!.values()]);
    f.dispose();
    t.dispose();
  });
}

Deno.test("GDES: the discriminator's pull on E_D = sg(E_G) + E_Δ is the gradient on E_Δ, not on E_G", async () => {
  const t = new Pretrainer(quiet("gdes"), VOCAB);
  assert.equal(readTableParam(t.model, "discriminator"), DELTA);
  assert.equal(readTableParam(t.model, "generator"), WORD("generator"));
  const { grads } = await stepGradients(t, randomBatch(3));
  assert.ok(!grads.discriminator!.has(WORD("generator")), "L_RTD has no path to E_G");
  const f = lossesOfTable(t, randomBatch(3));
  const ed = embeddingTable(t.model, "discriminator")!;
  const gEd = gradAt(f.rtd, ed);
  assert.ok(tf.tidy(() => tf.norm(gEd).dataSync()[0]) > 0);
  assert.ok(maxAbsDiff(grads.discriminator!.get(DELTA)!.dataSync(), gEd.dataSync()) < 1e-6);
  tf.dispose([gEd, ed, ...grads.generator.values(), ...grads.discriminator!.values()]);
  f.dispose();
  t.dispose();
});

Deno.test("ES: the probe's gradients agree with central finite differences on the shared table", async () => {
  const t = new Pretrainer(quiet("es"), VOCAB);
  const batch = randomBatch(11);
  const { grads } = await stepGradients(t, batch);
  const f = lossesOfTable(t, batch);
  const e = t.model.params.get(WORD("discriminator"));
  const base = e.dataSync() as Float32Array;
  for (
    const [which, g, loss] of [["MLM", grads.generator, f.mlm], ["RTD", grads.discriminator!, f.rtd]] as const
  ) {
    const gv = g.get(WORD("discriminator"))!.dataSync() as Float32Array;
    // The entry with the largest pull: its finite difference stands well above float32 noise.
    let k = 0;
    for (let i = 0; i < gv.length; i++) if (Math.abs(gv[i]) > Math.abs(gv[k])) k = i;
    const h = 3e-3;
    const at = (delta: number) =>
      tf.tidy(() => {
        const x = base.slice();
        x[k] += delta;
        return loss(tf.tensor2d(x, e.shape as [number, number])).dataSync()[0];
      });
    const fd = (at(h) - at(-h)) / (2 * h);
    close(fd, gv[k], 0.01, `${which} entry ${k}`); // measured: within 0.2% at h = 3e-3
    // The whole table at once: derivatives along random unit directions U, ⟨∇L, U⟩ against
    // (L(E + hU) − L(E − hU)) / 2h. A path that loses its gradient (the generator's tied output layer, say)
    // leaves the largest entry alone but not these.
    const rng = new Rng(17);
    const scale = Math.hypot(...gv) / Math.sqrt(gv.length); // the size of ⟨∇L, U⟩ for a random U
    for (let d = 0; d < 3; d++) {
      const u = Float32Array.from(gv, () => (rng.next() < 0.5 ? -1 : 1) / Math.sqrt(gv.length));
      const along = (step: number) =>
        tf.tidy(() =>
          loss(tf.tensor2d(base.map((x, i) => x + step * u[i]), e.shape as [number, number])).dataSync()[0]
        );
      // Steps measured to keep float32 rounding (small h; λ·L_RTD ≈ 35 has coarse ulps) and curvature
      // (large h) each under 0.5% of the scale: 0.01 for L_MLM, 0.03 for λ·L_RTD.
      const hU = which === "MLM" ? 0.01 : 0.03;
      const fdU = (along(hU) - along(-hU)) / (2 * hU);
      let dot = 0;
      for (let i = 0; i < gv.length; i++) dot += gv[i] * u[i];
      assert.ok(
        Math.abs(fdU - dot) <= 0.01 * scale,
        `${which}, direction ${d}: finite difference ${fdU} vs ⟨∇L, U⟩ ${dot} (scale ${scale})`,
      );
    }
  }
  tf.dispose([...grads.generator.values(), ...grads.discriminator!.values()]);
  f.dispose();
  t.dispose();
});

Deno.test("ES: probing a batch gives the same numbers as measuring inside the step that trains on it", async () => {
  const t = new Pretrainer(quiet("es"), VOCAB);
  const batch = randomBatch(5);
  const probed = await probeTugOfWar(t, batch, { rows: false });
  let pending: ReturnType<typeof measureTugOfWar> = null;
  t.onGradients = (g) => (pending = measureTugOfWar(t.model, g, { rows: false }));
  const m = await t.trainStep(batch);
  const inStep: TugOfWarReport = await pending!.read();
  assert.deepEqual(inStep.token, probed.token);
  assert.deepEqual(inStep.position, probed.position);
  assert.equal(probed.lossMlm, m.lossMlm);
  assert.equal(probed.lossRtd, m.lossRtd);
  t.dispose();
});

Deno.test("dropout: false probes as the same weights with dropout 0 would; the default keeps the step's masks", async () => {
  for (const sharing of ["es", "gdes"] as const) {
    const noisy = new Pretrainer(microConfig(sharing, { dropout: 0.1 }), VOCAB);
    const still = new Pretrainer(microConfig(sharing, { dropout: 0 }), VOCAB);
    // Trained two steps (G's samples and the tables no longer those of initialisation); then the same weights.
    for (let s = 0; s < 2; s++) await still.trainStep(randomBatch(s));
    noisy.model.params.assignFrom(await still.model.params.toHost(), "the dropout-0 trainer");
    noisy.step = still.step; // the step's random streams (masking, sampling) follow the step number
    const batch = randomBatch(7);
    const off = await probeTugOfWar(noisy, batch, { rows: false, dropout: false });
    const reference = await probeTugOfWar(still, batch, { rows: false });
    assert.deepEqual(off, reference, `${sharing}: dropout off = the dropout-0 model`);
    const on = await probeTugOfWar(noisy, batch, { rows: false });
    assert.notEqual(on.token.cos, off.token.cos, `${sharing}: the default runs with the run's dropout`);
    assert.notEqual(on.lossRtd, off.lossRtd);
    noisy.dispose();
    still.dispose();
  }
});

Deno.test("probes do not change training: same losses with a probe every step (ES, GDES)", async () => {
  for (const sharing of ["es", "gdes"] as const) {
    const plain = new Pretrainer(microConfig(sharing), VOCAB);
    const probed = new Pretrainer(microConfig(sharing), VOCAB);
    const probe = new TrainingProbe(probed.model, { every: 1, similarityIds: [5, 6, 7, 8, 9, 10] });
    probed.onGradients = (g, s) => probe.onGradients(g, s);
    const before = tf.memory().numTensors;
    const counts = [];
    for (let s = 0; s < 3; s++) {
      const a = await plain.trainStep(randomBatch(s));
      const b = await probed.trainStep(randomBatch(s));
      const rec = (await probe.collect(probed.step))!;
      await probeTugOfWar(probed, randomBatch(50 + s)); // an ad-hoc probe between steps, too
      assert.deepEqual([b.lossMlm, b.lossRtd, b.gradNormGenerator], [
        a.lossMlm,
        a.lossRtd,
        a.gradNormGenerator,
      ]);
      assert.ok(typeof rec.tow_cos === "number" && typeof rec.sim_gen === "number", JSON.stringify(rec));
      assert.equal(rec.sim_delta === null, sharing === "es");
      counts.push(tf.memory().numTensors);
    }
    assert.deepEqual(counts, [before, before, before], `${sharing}: tensor count flat`);
    plain.dispose();
    probed.dispose();
  }
});

Deno.test("average cosine over i ≠ j: hand-checked tables", async () => {
  const before = tf.memory().numTensors;
  const avg = async (rows: number[][], ids?: number[]) => {
    const t = tf.tensor2d(rows);
    const v = await averageCosine(t, ids);
    t.dispose();
    return v;
  };
  close((await avg([[1, 2], [2, 4], [3, 6]]))!, 1, 1e-6, "parallel rows");
  assert.ok(Math.abs((await avg([[1, 0, 0], [0, 2, 0], [0, 0, 3]]))!) < 1e-7, "orthogonal rows");
  // cos(r0,r1) = 0, cos(r0,r2) = cos(r1,r2) = 1/√2: mean over the 6 ordered pairs = √2/3.
  close((await avg([[1, 0], [0, 1], [1, 1]]))!, Math.SQRT2 / 3, 1e-6, "mixed");
  close((await avg([[1, 0], [0, 1], [1, 1], [0, 0]]))!, Math.SQRT2 / 3, 1e-6, "a zero row is left out");
  close((await avg([[1, 0], [5, 5], [0, 1], [1, 1]], [0, 2, 3]))!, Math.SQRT2 / 3, 1e-6, "subset of rows");
  close((await avg([[1, 0], [-1, 0]]))!, -1, 1e-6, "antiparallel");
  assert.equal(await avg([[1, 0], [0, 0]]), null, "fewer than two nonzero rows");

  // Against the brute-force Gram matrix on a random table.
  const rng = new Rng(1);
  const rows = Array.from({ length: 40 }, () => Array.from({ length: 6 }, () => rng.normal() + 0.3));
  let sum = 0;
  const norm = (r: number[]) => Math.hypot(...r);
  for (let i = 0; i < 40; i++) {
    for (let j = 0; j < 40; j++) {
      if (i !== j) {
        sum += rows[i].reduce((s, x, k) => s + x * rows[j][k], 0) / (norm(rows[i]) * norm(rows[j]));
      }
    }
  }
  close((await avg(rows))!, sum / (40 * 39), 1e-4, "random table");
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("token frequencies, top-N tokens (specials excluded), neighbours, drift", async () => {
  const before = tf.memory().numTensors;
  const counts = tokenFrequencies({ inputIds: Int32Array.from([2, 7, 7, 9, 3, 7, 9, 5, 0, 0, 99]) }, 10);
  assert.deepEqual([...counts], [2, 0, 1, 1, 0, 1, 0, 3, 0, 2]);
  assert.deepEqual([...topTokens(counts, 2, (id) => id < 5)], [7, 9]);
  assert.deepEqual([...topTokens(counts, 10, (id) => id < 5)], [7, 9, 5], "never-seen tokens left out");

  // Cosines to a = [1, 0]: b 0.994, e 0.6, d 0, c −1.
  const table = tf.tensor2d([[1, 0], [0.9, 0.1], [-1, 0], [0, 1], [0.6, 0.8]]);
  const nn = await nearestNeighbours(table, [0, "d"], 3, {
    tokenizer: { idToToken: (id) => "abcde"[id], tokenToId: (t) => "abcde".indexOf(t) },
  });
  assert.deepEqual(nn[0].neighbours.map((n) => n.token), ["b", "e", "d"], "the query itself is left out");
  close(nn[0].neighbours[0].cos, 0.9 / Math.hypot(0.9, 0.1), 1e-6, "cos(a, b)");
  assert.equal(nn[1].id, 3);
  assert.deepEqual(nn[1].neighbours.map((n) => n.token), ["e", "b", "a"]);
  const excl = await nearestNeighbours(table, [0], 2, { exclude: (id) => id === 1 });
  assert.deepEqual(excl[0].neighbours.map((n) => n.id), [4, 3], "excluded ids never returned");

  const e0 = tf.tensor2d([[3, 4], [0, 0]]);
  const e1 = tf.tensor2d([[3, 4], [0, 5]]);
  assert.deepEqual(await embeddingDrift(e1, e0), { absolute: 5, relative: 1 });
  assert.deepEqual(await embeddingDrift(e1, Float32Array.from([3, 4, 0, 5])), { absolute: 0, relative: 0 });
  const z = tf.zeros([2, 2]);
  const d0 = await embeddingDrift(e1, z);
  close(d0.absolute, Math.hypot(3, 4, 5), 1e-6, "drift from zero");
  assert.equal(d0.relative, null, "no relative drift from a zero table (E_Δ's start)");
  tf.dispose([table, e0, e1, z]);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("embeddingDrift of a million-entry table agrees with a float64 sum (no single float32 accumulator)", async () => {
  const rows = 8192, width = 128;
  const rng = new Rng(11);
  const a = new Float32Array(rows * width), b = new Float32Array(rows * width);
  for (let i = 0; i < a.length; i++) {
    a[i] = rng.normal() * 0.02;
    b[i] = a[i] + rng.normal() * 0.001;
  }
  let d2 = 0, a2 = 0;
  for (let i = 0; i < a.length; i++) {
    d2 += (b[i] - a[i]) ** 2;
    a2 += a[i] ** 2;
  }
  const current = tf.tensor2d(b, [rows, width]);
  const d = await embeddingDrift(current, a);
  current.dispose();
  close(d.absolute, Math.sqrt(d2), 1e-6 * Math.sqrt(d2), "‖E − E0‖");
  close(d.relative!, Math.sqrt(d2 / a2), 1e-6 * Math.sqrt(d2 / a2), "‖E − E0‖ / ‖E0‖");
});

Deno.test("E_G / E_D / E_Δ similarity by mode: ES one table, GDES's E_Δ starts at zero", async () => {
  const ids = [5, 6, 7, 8, 9, 10, 11, 12];
  const es = new Pretrainer(quiet("es"), VOCAB);
  const s1 = await embeddingSimilarity(es.model, ids);
  assert.equal(s1.generator, s1.discriminator);
  assert.equal(s1.delta, null);
  es.dispose();
  const gdes = new Pretrainer(quiet("gdes"), VOCAB);
  const s2 = await embeddingSimilarity(gdes.model, ids);
  assert.equal(s2.delta, null, "E_Δ = 0 has no direction");
  close(s2.discriminator!, s2.generator!, 1e-6, "E_D = E_G at the start");
  for (let s = 0; s < 2; s++) await gdes.trainStep(randomBatch(s));
  const s3 = await embeddingSimilarity(gdes.model, ids);
  assert.ok(typeof s3.delta === "number" && s3.discriminator !== s3.generator, JSON.stringify(s3));
  gdes.dispose();
});

Deno.test("discriminator view: one row per token, labels follow the samples, eval mode is deterministic", async () => {
  const t = new Pretrainer(microConfig("gdes"), VOCAB); // dropout 0.1: eval mode must switch it off
  const ids = Array.from(randomBatch(4).inputIds.slice(0, 16));
  const before = tf.memory().numTensors;
  const rows = await discriminatorView(t.model, ids, {
    vocab: VOCAB,
    seed: 3,
    recipe: { selectProb: 0.3, maskTokenProb: 1, randomProb: 0 },
  });
  assert.equal(tf.memory().numTensors, before, "no tensor leak");
  assert.equal(rows.length, 16);
  const sel = rows.filter((r) => r.selected);
  assert.equal(sel.length, 3, "round(30% of 11 maskable tokens)");
  for (const r of rows) {
    assert.equal(r.inputId, r.selected ? VOCAB.maskId : r.originalId);
    if (!r.selected) assert.equal(r.sampleId, r.originalId);
    assert.equal(r.label, r.sampleId !== r.originalId ? 1 : 0);
    assert.ok(r.pReplaced > 0 && r.pReplaced < 1);
  }
  const again = await discriminatorView(t.model, ids, {
    vocab: VOCAB,
    seed: 3,
    recipe: { selectProb: 0.3, maskTokenProb: 1, randomProb: 0 },
  });
  assert.deepEqual(again, rows, "same seed, no dropout: the same view");

  // Text through a tokenizer, with chosen positions.
  const words = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran"];
  const vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ...words];
  while (vocab.length < 64) vocab.push(`w${vocab.length}`);
  const tok = WordPieceTokenizer.fromVocab(vocab);
  const view = await discriminatorView(t.model, "the cat sat on the mat", {
    tokenizer: tok,
    positions: [2, 5],
  });
  assert.deepEqual(view.map((r) => r.original), ["[CLS]", "the", "cat", "sat", "on", "the", "mat", "[SEP]"]);
  assert.deepEqual(view.filter((r) => r.selected).map((r) => [r.position, r.input]), [[2, "[MASK]"], [
    5,
    "[MASK]",
  ]]);
  t.dispose();
});

/**
 * A corpus folder of four documents, each `sentences` random six-word runs of a 13-word vocabulary; with
 * `capitalised` each starts with "The", so the sentence splitter sees every one.
 */
function writeWordCorpus(seed: number, sentences: number, capitalised: boolean): string {
  const corpus = tempDir("rtdlab-corpus-");
  const rng = new Rng(seed);
  const words = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "tree", "by", "river", "old", "red"];
  for (let d = 0; d < 4; d++) {
    const text = Array.from({ length: sentences }, () => {
      const six = Array.from({ length: 6 }, () => words[rng.int(words.length)]);
      if (capitalised) six[0] = "The";
      return six.join(" ") + ".";
    });
    Deno.writeTextFileSync(join(corpus, `d${d}.txt`), text.join(" "));
  }
  return corpus;
}

/** A micro `tiny` run on a {@link writeWordCorpus} folder (vocabulary 60, 16 tokens, batch 4), with `overrides`. */
function wordRunConfig(corpus: string, overrides: Record<string, unknown>) {
  return validateConfig(applyOverrides(preset("tiny"), {
    corpus,
    tokenizerVocabSize: 60,
    maxPositions: 16,
    seqLength: 16,
    ...MICRO_SIZES,
    batchSize: 4,
    warmupSteps: 1,
    checkpointEvery: 0,
    ...overrides,
  }));
}

Deno.test("pretrain --probe-every: probed steps are logged with tow_*/sim_* keys; losses match an unprobed run", async () => {
  Deno.env.set("RTDLAB_CACHE", tempDir("rtdlab-cache-"));
  const corpus = writeWordCorpus(3, 40, false);
  const config = (probeEvery: number) => wordRunConfig(corpus, { steps: 4, logEvery: 3, probeEvery });
  const runs = [];
  for (const probeEvery of [0, 2]) {
    const out = join(tempDir(), "run");
    const r = await pretrain({ config: config(probeEvery), outDir: out, noExport: true });
    r.trainer.dispose();
    runs.push(await readMetrics(join(out, "metrics.jsonl")));
  }
  const [plain, probed] = runs;
  assert.deepEqual(plain.map((m) => m.step), [3, 4]);
  assert.deepEqual(probed.map((m) => m.step), [2, 3, 4], "step 2 logged because it was probed");
  const keys = ["tow_cos", "tow_norm_mlm", "tow_norm_rtd", "tow_ratio", "tow_opposed_rows", "tow_pos_cos"];
  for (const k of [...keys, "sim_gen", "sim_disc"]) assert.equal(typeof probed[0][k], "number", k);
  assert.equal(probed[0].sim_delta, null, "ES has no E_Δ");
  assert.equal(probed[0].sim_gen, probed[0].sim_disc);
  assert.ok(!("tow_cos" in probed[1]), "step 3 is not probed");
  const losses = (ms: typeof plain) =>
    ms.filter((m) => m.step !== 2).map((m) => [m.step, m.loss_mlm, m.loss_rtd]);
  assert.deepEqual(losses(probed), losses(plain));
  const cli = parseCli(["--probe-every", "10", "--steps", "60"]);
  assert.equal(cli.config.probeEvery, 10);
  assert.equal(cli.probeEvery, 10);
  assert.equal(parseCli([]).config.probeEvery, 0, "off by default");
});

Deno.test("probeRunDir: a checkpoint's tug-of-war over its held-out batches, D's skill as evaluate scores it, the folder untouched", async () => {
  Deno.env.set("RTDLAB_CACHE", tempDir("rtdlab-cache-"));
  // Capitalised, so the sentence splitter sees 60 sentences a document (rows pack whole sentences).
  const corpus = writeWordCorpus(5, 60, true);
  const config = (sharing: SharingMode) => wordRunConfig(corpus, { sharing, steps: 3, heldOutSequences: 12 });
  const folderBytes = async (dir: string) => {
    const out: Record<string, string> = {};
    const walk = async (d: string) => {
      for await (const e of Deno.readDir(d)) {
        const p = join(d, e.name);
        if (e.isDirectory) await walk(p);
        else out[p] = (await Deno.readFile(p)).join(",");
      }
    };
    await walk(dir);
    return out;
  };
  const runs: Record<string, string> = {};
  for (const sharing of ["es", "gdes", "mlm"] as const) {
    runs[sharing] = join(tempDir(), sharing);
    (await pretrain({ config: config(sharing), outDir: runs[sharing], noExport: true })).trainer.dispose();
  }
  const before = await folderBytes(runs.es);
  const tensors = tf.memory().numTensors;
  const es = await probeRunDir(runs.es);
  assert.equal(tf.memory().numTensors, tensors, "no tensors leak");
  assert.deepEqual(await folderBytes(runs.es), before, "the run folder is read, never written");
  assert.equal(es.step, 3);
  assert.equal(es.heldOut, true);
  assert.equal(es.sequences, 12);
  assert.equal(es.batchSize, 4, "the run's own batch size");
  assert.equal(es.batches, 3);
  assert.equal(es.token.cos.n, 3);
  // Each batch read by hand, with its own draws (seed, k): the token and position tables each in place.
  {
    const run = await openRun(runs.es);
    const { sequences } = await evaluationSequences(run, runs.es);
    const readings = [];
    for (const [k, batch] of sequenceBatches(sequences, 4).entries()) {
      readings.push(
        await probeTugOfWar(run.trainer, batch, {
          rows: false,
          dropout: true,
          seed: deriveSeed(0, k, PROBE_STREAM),
        }),
      );
    }
    run.trainer.dispose();
    assert.deepEqual(es.token.cos, meanSe(readings.map((r) => r.token.cos)));
    assert.deepEqual(es.position!.cos, meanSe(readings.map((r) => r.position!.cos)));
  }
  assert.ok(es.token.cos.se !== null && es.token.cos.se > 0);
  assert.ok(es.token.opposedShare.mean >= 0 && es.token.opposedShare.mean <= 1);
  assert.ok(es.position !== null, "ELECTRA's discriminator reads absolute positions");
  assert.equal(es.similarity.delta, null);
  assert.equal(es.similarity.generator, es.similarity.discriminator, "ES: one table");
  // D's skill is `deno task evaluate`'s: the same numbers from the same sequences and seed.
  const evaluated = await evaluateRunDir(runs.es);
  assert.equal(es.evaluation.discAuc, evaluated.discAuc);
  assert.equal(es.evaluation.rtdGain, evaluated.rtdGain);
  // The same seed gives the same readings; another seed other draws.
  assert.deepEqual(await probeRunDir(runs.es), es);
  const reseeded = await probeRunDir(runs.es, { seed: 1 });
  assert.notEqual(reseeded.token.cos.mean, es.token.cos.mean);
  // Without dropout: another reading of the same weights.
  const quietRead = await probeRunDir(runs.es, { dropout: false, batchSize: 6 });
  assert.equal(quietRead.batches, 2);
  assert.notEqual(quietRead.token.cos.mean, es.token.cos.mean);
  // A batch larger than the sequences is one batch of them all: no standard error, and it says so.
  const whole = await probeRunDir(runs.es, { batchSize: 100, similarityTokens: 100_000 });
  assert.deepEqual([whole.batches, whole.batchSize, whole.token.cos.se], [1, 12, null]);
  assert.ok(whole.similarityTokens < 60, "only the tokens that occur (vocabulary 60)");
  assert.equal(es.similarityTokens > 0 && es.samplingTemperature, 1);
  const gdes = await probeRunDir(runs.gdes);
  assert.equal(typeof gdes.similarity.delta, "number", "GDES has E_Δ");
  await assert.rejects(() => probeRunDir(runs.mlm), /MLM baseline: it has no RTD loss/);
});

Deno.test("meanSe: mean and standard error over batches, nulls left out", () => {
  const m = meanSe([1, 2, 3, null]);
  assert.equal(m.mean, 2);
  assert.equal(m.n, 3);
  assert.ok(Math.abs(m.se! - 1 / Math.sqrt(3)) < 1e-12, `${m.se}`);
  assert.deepEqual(meanSe([0.5]), { mean: 0.5, se: null, n: 1 });
});

Deno.test("a probe handed the trainer where it takes the model (or the other way round) says which to pass", async () => {
  const t = new Pretrainer(quiet("gdes"), VOCAB);
  try {
    const trainerAsModel = t as unknown as Pretrainer["model"];
    await assert.rejects(
      embeddingSimilarity(trainerAsModel, [5, 6]),
      /takes the model, not the trainer: pass trainer\.model/,
    );
    await assert.rejects(
      discriminatorView(trainerAsModel, [2, 5, 6, 3]),
      /discriminatorView takes the model/,
    );
    assert.throws(() => embeddingTable(trainerAsModel, "generator"), /embeddingTable takes the model/);
    await assert.rejects(snapshotEmbeddings(trainerAsModel), /snapshotEmbeddings takes the model/);
    const modelAsTrainer = t.model as unknown as Pretrainer;
    await assert.rejects(probeTugOfWar(modelAsTrainer, randomBatch(0)), /probeTugOfWar takes the trainer/);
  } finally {
    t.dispose();
  }
});

Deno.test("snapshotEmbeddings: GDES's three views are E_G, E_D = E_G + E_Δ and E_Δ, read from their own tables", async () => {
  const t = new Pretrainer(quiet("gdes"), VOCAB);
  try {
    await t.trainStep(randomBatch(1)); // E_Δ ≠ 0 afterwards
    const snap = await snapshotEmbeddings(t.model);
    const eg = t.model.params.get(WORD("generator")).dataSync() as Float32Array;
    const delta = t.model.params.get(DELTA).dataSync() as Float32Array;
    assert.ok(Math.max(...delta.map(Math.abs)) > 0, "E_Δ moved");
    assert.deepEqual(snap.generator, eg);
    assert.deepEqual(snap.delta, delta);
    assert.ok(maxAbsDiff(snap.discriminator!, eg.map((x, i) => x + delta[i])) < 1e-7, "E_D = E_G + E_Δ");
  } finally {
    t.dispose();
  }
});

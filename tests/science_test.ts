/**
 * Tests that pin the science against the papers and the reference code (issue 10), not only
 * consistency: ELECTRA's AdamW and schedule by hand, paired initialisation, the decoupled order of
 * DeBERTaV3, ELECTRA's masking count, and the metrics that show a discriminator learning.
 *
 * @module
 */

import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import * as tf from "../lib/tf.ts";
import { initBackend } from "../lib/backend/mod.ts";
import { ParameterStore } from "../lib/model/params.ts";
import { AdamW, decays, learningRate } from "../lib/train/optimizer.ts";
import { batchTensors, Pretrainer, stepRngs, type TokenBatch } from "../lib/train/pretrain.ts";
import { sampleFromLogits } from "../lib/train/sampling.ts";
import type { RunConfig } from "../lib/config.ts";
import {
  binaryEntropy,
  formatAgainst,
  formatSe,
  nearThreshold,
  notLearned,
  rocAuc,
} from "../lib/train/rtd_metrics.ts";
import { maskBatch } from "../lib/text/masking.ts";
import { createModel } from "../lib/model/mod.ts";
import { pairedInitKey } from "../lib/model/embeddings.ts";
import { Rng } from "../lib/rng.ts";
import { debertaMicroConfig, maxAbsDiff, microConfig, randomBatch, VOCAB } from "./_helpers.ts";

await initBackend("cpu");

Deno.test("learning rate: ELECTRA's peak · (1 − s/T) · min(1, s/W) at chosen steps", () => {
  // W = 10, T = 100, peak 1e-3: step 0 is 0 (ELECTRA's first update only fills Adam's moments).
  const lr = (s: number) => learningRate(s, 1e-3, 10, 100);
  assertEquals(lr(0), 0);
  assert(Math.abs(lr(5) - 1e-3 * 0.95 * 0.5) < 1e-15);
  assert(Math.abs(lr(10) - 1e-3 * 0.9) < 1e-15);
  assert(Math.abs(lr(60) - 1e-3 * 0.4) < 1e-15);
  assertEquals(lr(100), 0);
  assertEquals(lr(150), 0);
  assertEquals(learningRate(0, 1e-3, 0, 100), 1e-3); // no warmup
});

Deno.test("weight decay excludes LayerNorm parameters and biases, as ELECTRA's optimizer", () => {
  assert(decays("discriminator.electra.encoder.layer.0.attention.self.query.weight"));
  assert(decays("generator.electra.embeddings.word_embeddings.weight"));
  assert(!decays("discriminator.electra.encoder.layer.0.output.LayerNorm.weight"));
  assert(!decays("discriminator.electra.embeddings.LayerNorm.bias"));
  assert(!decays("generator.generator_lm_head.bias"));
  assert(!decays("discriminator.discriminator_predictions.dense.bias"));
});

/** ELECTRA's AdamWeightDecayOptimizer (model/optimization.py), by hand in float64, plus optional bias correction. */
function electraUpdate(
  p: number,
  g: number,
  m: number,
  v: number,
  o: { lr: number; wd: number; t: number; bias: boolean; scale: number },
): [number, number, number] {
  const gi = g * o.scale;
  const m1 = 0.9 * m + 0.1 * gi;
  const v1 = 0.999 * v + 0.001 * gi * gi;
  const mh = o.bias ? m1 / (1 - 0.9 ** o.t) : m1;
  const vh = o.bias ? v1 / (1 - 0.999 ** o.t) : v1;
  const update = mh / (Math.sqrt(vh) + 1e-6) + o.wd * p;
  return [p - o.lr * update, m1, v1];
}

for (const bias of [false, true]) {
  Deno.test(`AdamW equals ELECTRA's update by hand (${bias ? "with" : "without"} bias correction; clip, decay, a parameter without gradient)`, () => {
    for (const hostUpdate of [true, false]) {
      const params = new ParameterStore();
      const rng = new Rng(5);
      const w = params.create("layer.dense.weight", [3, 4], "normal", rng, 0.5);
      const b = params.create("layer.dense.bias", [4], "normal", rng, 0.5);
      const untouched = params.create("layer.other.weight", [2], "normal", rng, 0.5);
      const opt = new AdamW(params, ["layer.dense.weight", "layer.dense.bias", "layer.other.weight"], {
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-6,
        weightDecay: 0.01,
        clipNorm: 1,
        biasCorrection: bias,
      });
      const before = AdamW.hostUpdate;
      AdamW.hostUpdate = hostUpdate;
      try {
        let pw = Array.from(w.dataSync()), pb = Array.from(b.dataSync());
        const frozen = Array.from(untouched.dataSync());
        let mw = pw.map(() => 0), vw = pw.map(() => 0), mb = pb.map(() => 0), vb = pb.map(() => 0);
        for (let t = 1; t <= 3; t++) {
          const gw = pw.map((_, i) => Math.sin(i + t) * 2), gb = pb.map((_, i) => Math.cos(i * t));
          // Global norm over the gradients present; clip to 1.
          const norm = Math.sqrt([...gw, ...gb].reduce((s, x) => s + x * x, 0));
          const scale = 1 / Math.max(norm, 1);
          const grads = new Map<string, tf.Tensor>([
            ["layer.dense.weight", tf.tensor(gw, [3, 4])],
            ["layer.dense.bias", tf.tensor(gb, [4])],
          ]);
          const n = opt.apply(grads, 0.1);
          assert(
            Math.abs(n.dataSync()[0] - norm) < 1e-5 * norm,
            "apply returns the global norm before clipping",
          );
          tf.dispose([n, ...grads.values()]);
          const o = { lr: 0.1, t, bias, scale };
          const nw = pw.map((p, i) => electraUpdate(p, gw[i], mw[i], vw[i], { ...o, wd: 0.01 }));
          const nb = pb.map((p, i) => electraUpdate(p, gb[i], mb[i], vb[i], { ...o, wd: 0 })); // biases: no decay
          [pw, mw, vw] = [nw.map((x) => x[0]), nw.map((x) => x[1]), nw.map((x) => x[2])];
          [pb, mb, vb] = [nb.map((x) => x[0]), nb.map((x) => x[1]), nb.map((x) => x[2])];
          const close = (got: ArrayLike<number>, want: number[], what: string) => {
            for (let i = 0; i < want.length; i++) {
              assert(
                Math.abs(got[i] - want[i]) <= 1e-5 * Math.max(1, Math.abs(want[i])),
                `${what}[${i}] step ${t} (${hostUpdate ? "host" : "tensor"} path): ${got[i]} vs ${want[i]}`,
              );
            }
          };
          close(w.dataSync(), pw, "weight");
          close(b.dataSync(), pb, "bias");
          // A parameter without a gradient is left exactly as it was (no decay, no moment update).
          assertEquals(Array.from(untouched.dataSync()), frozen);
        }
      } finally {
        AdamW.hostUpdate = before;
        opt.dispose();
        params.dispose();
      }
    }
  });
}

Deno.test("paired initialisation: G starts identical in ES, NES and GDES; D's encoder in every mode; MLM's encoder as D's", () => {
  const models = Object.fromEntries(
    (["es", "nes", "gdes", "mlm"] as const).map((s) => [s, createModel(microConfig(s), 3)]),
  );
  const value = (mode: string, name: string) => Array.from(models[mode].params.get(name).dataSync());
  try {
    const g = models.nes.params.names().filter((n) => n.startsWith("generator."));
    assert(g.length > 5);
    for (const n of g) {
      // ES stores G's tables and embedding LayerNorm under discriminator. (ELECTRA's generator reuses D's).
      const esName = n.startsWith("generator.electra.embeddings.")
        ? "discriminator" + n.slice("generator".length)
        : n;
      assertEquals(value("es", esName), value("nes", n), `ES ${esName} vs NES ${n}`);
      assertEquals(value("gdes", n), value("nes", n), `GDES vs NES ${n}`);
    }
    const d = models.nes.params.names().filter((n) =>
      n.startsWith("discriminator.") && !n.includes(".embeddings.")
    );
    for (const n of d) {
      assertEquals(value("es", n), value("nes", n), n);
      assertEquals(value("gdes", n), value("nes", n), n);
      if (n.includes(".encoder.")) {
        assertEquals(value("mlm", "mlm" + n.slice("discriminator".length)), value("nes", n));
      }
    }
    // Different seeds, different weights; ELECTRA's truncated normal stays within 2σ.
    const other = createModel(microConfig("nes"), 4);
    const name = "discriminator.electra.encoder.layer.0.attention.self.query.weight";
    assert(value("nes", name).some((x, i) => x !== other.params.get(name).dataSync()[i]));
    other.dispose();
    const std = microConfig("nes").initStd;
    for (const n of g.filter((n) => n.endsWith(".weight") && !n.includes("LayerNorm"))) {
      for (const x of value("nes", n)) assert(Math.abs(x) <= 2 * std + 1e-9, `${n}: ${x} beyond 2σ`);
    }
    assertEquals(
      pairedInitKey("discriminator.electra.embeddings.word_embeddings.weight", "es", "electra"),
      "generator.electra.embeddings.word_embeddings.weight",
    );
  } finally {
    for (const m of Object.values(models)) m.dispose();
  }
});

Deno.test("decoupled NES and GDES log bit-identical generator losses for one seed (G never depends on D)", async () => {
  const losses: Record<string, number[]> = {};
  for (const sharing of ["nes", "gdes"] as const) {
    const t = new Pretrainer(microConfig(sharing, { warmupSteps: 2 }), VOCAB);
    losses[sharing] = [];
    for (let s = 0; s < 4; s++) losses[sharing].push((await t.trainStep(randomBatch(s))).lossMlm);
    t.dispose();
  }
  assertEquals(losses.gdes, losses.nes);
  assert(new Set(losses.nes).size > 1, "the losses change from step to step");
});

Deno.test("decoupled order: D trains on the corruption G sampled before its update (one G forward per step)", async () => {
  // With resampleAfterGeneratorUpdate the updated G runs again: one more generator forward. Count the
  // generator's encoder passes through the model, and check D's labels come from the first pass.
  for (const resample of [false, true]) {
    const t = new Pretrainer(microConfig("gdes", { resampleAfterGeneratorUpdate: resample }), VOCAB);
    let generatorPasses = 0;
    const encode = t.model.encode.bind(t.model);
    t.model.encode = (role, inputs, opts) => {
      if (role === "generator") generatorPasses++;
      return encode(role, inputs, opts);
    };
    await t.trainStep(randomBatch(1));
    assertEquals(generatorPasses, resample ? 2 : 1, `resample ${resample}`);
    t.dispose();
  }
});

Deno.test("ELECTRA-exact masking: k = max(1, min(maxPredictions, round(15% of non-padding tokens)))", () => {
  const ids = randomBatch(2, 2, 16, 3).inputIds; // 13 non-padding tokens per row ([CLS] … [SEP]), 11 maskable
  const recipe = { selectProb: 0.15, maskTokenProb: 1, randomProb: 0 };
  const count = (r: typeof recipe & { maxPredictions?: number; padId?: number }) => {
    const m = maskBatch(ids, 2, 16, VOCAB, r, new Rng(1));
    return [m.selected.filter((p) => p < 16).length, m.selected.filter((p) => p >= 16).length];
  };
  assertEquals(count(recipe), [2, 2]); // rtdlab: round(0.15 · 11) = 2
  assertEquals(count({ ...recipe, selectProb: 0.2, maxPredictions: 19, padId: 0 }), [3, 3]); // round(0.2 · 13) = 3 (rtdlab: 2)
  assertEquals(count({ ...recipe, selectProb: 0.5, maxPredictions: 4, padId: 0 }), [4, 4]); // capped
  assertEquals(count({ ...recipe, selectProb: 0.01, maxPredictions: 19, padId: 0 }), [1, 1]); // at least 1
  // Never a special token.
  const m = maskBatch(
    ids,
    2,
    16,
    VOCAB,
    { ...recipe, selectProb: 0.9, maxPredictions: 19, padId: 0 },
    new Rng(1),
  );
  for (const p of m.selected) assert(!VOCAB.isSpecial(ids[p]));
});

Deno.test("ROC-AUC and RTD gain: hand-computed values, ties, a constant predictor", () => {
  assertEquals(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
  assertEquals(rocAuc([1, 1, 1, 1], [0, 1, 0, 1]), 0.5); // ties share their rank
  assertEquals(rocAuc([3, 2, 1], [1, 0, 0]), 1);
  assertEquals(rocAuc([1, 2], [1, 1]), null); // one class only
  assertEquals(rocAuc([5, 0.1, 0.4, 0.35, 0.8], [0, 0, 0, 1, 1], (i) => i > 0), 0.75); // padding excluded
  assert(Math.abs(binaryEntropy(0.5) - Math.log(2)) < 1e-15);
  assertEquals(binaryEntropy(0), 0);
  assert(!notLearned(0.57, 0.012).learned);
  assert(notLearned(0.57, 0.012).text.includes("has not learned yet"));
  assert(notLearned(0.86, 0.2).learned);
  // A number just under a threshold is never printed as the threshold itself, nor a tiny loss as "-0.000".
  assertMatch(notLearned(0.5996, 0.1).text, /has not learned yet \(AUC 0\.5996,/);
  assertMatch(notLearned(0.7, 0.04996).text, /RTD gain 0\.04996 nats/);
  assertMatch(notLearned(0.7, -0.0001).text, /RTD gain -0\.0001 nats/);
  assertMatch(notLearned(0.6001, 0.0512).text, /has learned: AUC 0\.600, RTD gain 0\.051 nats/);
  assertEquals(formatAgainst(0.12345, 0.05), "0.123");
  // Whether the verdict could flip within two standard errors: only by the numbers that decide it.
  const near = (discAuc: number, rtdGain: number, discAucSe: number | null, rtdGainSe: number | null) =>
    nearThreshold({ discAuc, rtdGain, discAucSe, rtdGainSe });
  assertEquals(near(0.8, 0.1, 0.01, 0.005), null);
  assertMatch(
    near(0.69, 0.052, 0.012, 0.004)!,
    /could go either way: RTD gain 0\.0520 ± 0\.0040 \(threshold 0\.05\)/,
  );
  assertMatch(near(0.7, 0.047, 0.01, 0.003)!, /RTD gain 0\.0470 ± 0\.0030/);
  assertEquals(near(0.594, -0.18, 0.008, 0.001), null, "a gain far below 0.05 settles it, whatever the AUC");
  assertMatch(near(0.594, 0.047, 0.008, 0.003)!, /AUC 0\.5940 ± 0\.0080 \(threshold 0\.6\) and RTD gain/);
  assertEquals(near(0.6, 0.05, null, null), null, "no standard error, no claim");
  assertMatch(
    near(0.69, 0.0499996, 0.01, 0.001)!,
    /RTD gain 0\.0499996 ± 0\.0010/,
    "never rounded onto the threshold",
  );
  assertMatch(
    nearThreshold({ discAuc: 0.69, rtdGain: 0.052, discAucSe: 0.01, rtdGainSe: 0.004, heldOut: true })!,
    /held-out set four times larger .* --set heldOutSequences=256\)/,
  );
  // A run that already holds out 256 is told a size above it, not the one it has.
  assertMatch(
    nearThreshold({
      discAuc: 0.75,
      rtdGain: 0.0524,
      discAucSe: 0.01,
      rtdGainSe: 0.0021,
      heldOut: true,
      sequences: 256,
    })!,
    /on 256 sequences; .*heldOutSequences=1024\)/,
  );
  assertMatch(near(0.69, 0.052, 0.01, 0.004)!, /more --sequences/);
  assertEquals(formatAgainst(0.5999996, 0.6), "0.5999996");
  assertEquals(formatSe(0.00007), "7.0e-5");
  assertEquals(formatSe(0.0123), "0.012");
  assertEquals(formatSe(0), "0");
});

Deno.test("ROC-AUC equals the pairwise definition P(positive > negative) + ½ P(tie) on tied random scores", () => {
  const rng = new Rng(4);
  for (let trial = 0; trial < 20; trial++) {
    const n = 5 + rng.int(200);
    const scores = Array.from({ length: n }, () => Math.round(rng.next() * 8) / 4); // many ties
    const labels = Array.from({ length: n }, () => (rng.next() < 0.3 ? 1 : 0));
    let u = 0, pairs = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if (labels[i] !== 1 || labels[j] !== 0) continue;
        pairs++;
        u += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
      }
    }
    assertEquals(rocAuc(scores, labels), pairs ? u / pairs : null, `trial ${trial}`);
  }
});

Deno.test("a training step logs D's AUC, the base rate and the RTD gain (gain = base rate − RTD loss)", async () => {
  const t = new Pretrainer(microConfig("es"), VOCAB);
  const m = await t.trainStep(randomBatch(3));
  t.dispose();
  assert(m.discAuc !== null && m.discAuc >= 0 && m.discAuc <= 1);
  assert(Math.abs(m.baseRate! - binaryEntropy(m.replacedFrac!)) < 1e-12);
  assert(Math.abs(m.rtdGain! - (m.baseRate! - m.lossRtd!)) < 1e-12);
});

Deno.test("DeBERTa: the generator keeps D's heads and FFN; its export names the MLM head as DebertaV2ForMaskedLM", () => {
  const c = debertaMicroConfig("gdes", { generatorHiddenFraction: 0.5 });
  const m = createModel(c, 1);
  try {
    assertEquals(m.generatorSize.numHeads, c.discriminator.numHeads);
    assertEquals(m.generatorSize.intermediateSize, c.discriminator.intermediateSize);
    const out = m.exportTensors("generator");
    const names = [...out.keys()];
    for (
      const n of [
        "cls.predictions.transform.dense.weight",
        "cls.predictions.transform.LayerNorm.weight",
        "cls.predictions.bias",
        "cls.predictions.decoder.weight",
      ]
    ) assert(names.includes(n), n);
    assert(!names.some((n) => n.startsWith("lm_predictions.")));
    assertEquals(
      Array.from(out.get("cls.predictions.decoder.weight")!.dataSync()),
      Array.from(out.get("deberta.embeddings.word_embeddings.weight")!.dataSync()),
    );
    tf.dispose([...out.values()]);
    assert(
      String((m.hfConfig("generator").rtdlab as { note?: string }).note).includes("Enhanced Mask Decoder"),
    );
    // The cls.predictions.* names above are the head DebertaV2ForMaskedLM loads only when legacy is true.
    assertEquals(m.hfConfig("generator").legacy, true);
  } finally {
    m.dispose();
  }
});

Deno.test("a fine-tune that predicts one class for (nearly) every example is flagged", async () => {
  const { predictionCollapse } = await import("../lib/finetune/metrics.ts");
  assertEquals(predictionCollapse([1, 1, 1, 1]), { share: 1, cls: 1, collapsed: true });
  assertEquals(predictionCollapse([0, 1, 1, 1]).collapsed, false);
  const nearly = Array.from({ length: 100 }, (_, i) => (i < 96 ? 2 : 0));
  assertEquals(predictionCollapse(nearly), { share: 0.96, cls: 2, collapsed: true });
  assertEquals(predictionCollapse([]).collapsed, false);
});

/**
 * One training step replayed by hand from the trainer's parts (its masking, its two gradient functions, its
 * optimisers): the labels, the order of the updates, the ES sum, the learning rate, the sampling settings,
 * and every logged metric recomputed on the host in float64 over the non-padding tokens.
 */
async function replayStep(t: Pretrainer, batch: TokenBatch) {
  const c = t.config;
  const lr = learningRate(t.step, c.learningRate, c.warmupSteps, c.steps);
  const rngs = stepRngs(c.seed, t.step);
  const masked = t.mask(batch, rngs.data);
  const genInputs = batchTensors(masked.maskedIds, batch, VOCAB.padId);
  const gen = t.generatorGradients(genInputs, masked, rngs.dropout);
  const lossMlm = (await gen.loss.data())[0];
  const joint = c.sharing === "es" || c.joint;
  const toDispose: tf.Tensor[] = [];
  // The older order (resampleAfterGeneratorUpdate): update G, run it again, sample from the updated G.
  const resample = !joint && c.resampleAfterGeneratorUpdate;
  if (resample) toDispose.push(t.optimizers.generator!.apply(gen.grads, lr));
  const sampleLogits = resample
    ? tf.tidy(() => {
      const selected = tf.tensor1d(masked.selected, "int32");
      const h = t.model.encode("generator", genInputs, { training: true, rng: rngs.dropout });
      return t.model.generatorLogits(h, selected, { training: true, rng: rngs.dropout });
    })
    : gen.logits;
  if (resample) toDispose.push(sampleLogits);
  const samples = sampleFromLogits(
    (await sampleLogits.data()) as Float32Array,
    masked.selected.length,
    c.vocabSize,
    c.samplingTemperature,
    rngs.data,
    c.disallowCorrect ? masked.targets : undefined,
  );
  // D's input and labels: the sample where a position was selected; replaced only where it differs.
  const corrupted = batch.inputIds.slice();
  const labels = new Float32Array(corrupted.length);
  masked.selected.forEach((pos, i) => {
    corrupted[pos] = samples[i];
    labels[pos] = samples[i] !== batch.inputIds[pos] ? 1 : 0;
  });
  const discInputs = batchTensors(corrupted, batch, VOCAB.padId);
  // D's loss before G's update: under GDES the order must matter, or the check below could not fail.
  const before = t.discriminatorGradients(discInputs, labels, Rng.fromState(rngs.dropout.state()));
  const lossRtdBeforeG = (await before.loss.data())[0];
  tf.dispose([before.loss, before.logits, ...before.grads.values()]);
  if (!joint && !resample) toDispose.push(t.optimizers.generator!.apply(gen.grads, lr)); // decoupled: G first
  const disc = t.discriminatorGradients(discInputs, labels, rngs.dropout);
  if (joint) {
    // ES (and --joint): one update with ∇(L_MLM + λ·L_RTD), summed where both reach a variable.
    const total = new Map(gen.grads);
    for (const [n, g] of disc.grads) {
      const sum = total.has(n) ? tf.add(total.get(n)!, g) : g;
      if (sum !== g) toDispose.push(sum);
      total.set(n, sum);
    }
    toDispose.push(t.optimizers.joint!.apply(total, lr));
  } else toDispose.push(t.optimizers.discriminator!.apply(disc.grads, lr));
  t.step++;
  const logits = (await disc.logits.data()) as Float32Array;
  const lossRtdLibrary = (await disc.loss.data())[0];
  tf.dispose([gen.loss, gen.logits, disc.loss, disc.logits, ...gen.grads.values(), ...disc.grads.values()]);
  tf.dispose([...toDispose, ...Object.values(genInputs), ...Object.values(discInputs)]);

  // The metrics by hand, over non-padding tokens only.
  const real = [...batch.inputIds.keys()].filter((i) => batch.inputIds[i] !== VOCAB.padId);
  const bce = (x: number, y: number) => y === 1 ? Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
  const pos = real.filter((i) => labels[i] === 1), neg = real.filter((i) => labels[i] === 0);
  let wins = 0;
  for (const p of pos) {
    for (const n of neg) {
      wins += logits[p] > logits[n] ? 1 : logits[p] === logits[n] ? 0.5 : 0;
    }
  }
  return {
    lr,
    lossMlm,
    lossRtd: real.reduce((s, i) => s + bce(logits[i], labels[i]), 0) / real.length,
    lossRtdLibrary,
    lossRtdBeforeG,
    discAcc: real.filter((i) => (logits[i] > 0 ? 1 : 0) === labels[i]).length / real.length,
    discAccReplaced: pos.filter((i) => logits[i] > 0).length / pos.length,
    discAuc: wins / (pos.length * neg.length),
    replacedFrac: pos.length / real.length,
    genAcc: masked.selected.filter((p, i) => samples[i] === batch.inputIds[p]).length /
      masked.selected.length,
  };
}

Deno.test("a training step equals its replay by hand: labels, update order, ES's summed gradient, lr, sampling settings, and every logged metric over non-padding tokens", async () => {
  const cases: [string, RunConfig][] = [
    ["es", microConfig("es", { dropout: 0, batchSize: 8 })],
    ["nes", microConfig("nes", { dropout: 0, batchSize: 8 })],
    ["gdes", microConfig("gdes", { dropout: 0, batchSize: 8 })],
    ["gdes, joint", microConfig("gdes", { dropout: 0, batchSize: 8, joint: true })],
    ["nes, joint", microConfig("nes", { dropout: 0, batchSize: 8, joint: true })],
    ["gdes, resample", microConfig("gdes", { dropout: 0, batchSize: 8, resampleAfterGeneratorUpdate: true })],
    ["gdes, T = 0.1", microConfig("gdes", { dropout: 0, batchSize: 8, samplingTemperature: 0.1 })],
    ["es, disallowCorrect", microConfig("es", { dropout: 0, batchSize: 8, disallowCorrect: true })],
    ["gdes, warm-up", microConfig("gdes", { dropout: 0, batchSize: 8, warmupSteps: 2 })],
  ];
  for (const [name, config] of cases) {
    const trained = new Pretrainer(config, VOCAB), replayed = new Pretrainer(config, VOCAB);
    for (let s = 0; s < 2; s++) {
      const batch = randomBatch(10 + s, 8, 16, 5); // five pads per row: padding must not count
      const m = await trained.trainStep(batch);
      const r = await replayStep(replayed, batch);
      const near = (a: number | null, b: number, tol: number, what: string) =>
        assert(a !== null && Math.abs(a - b) <= tol, `${name}, step ${s}: ${what} ${a} vs ${b} by hand`);
      assertEquals(m.lr, r.lr, `${name}, step ${s}: lr`);
      near(m.lossMlm, r.lossMlm, 1e-6, "L_MLM");
      near(m.lossRtd, r.lossRtd, 1e-5, "L_RTD (host BCE over non-padding tokens)");
      near(m.lossRtd, r.lossRtdLibrary, 1e-6, "L_RTD (replayed)");
      near(m.discAcc, r.discAcc, 1e-12, "D accuracy");
      near(m.discAccReplaced, r.discAccReplaced, 1e-12, "D recall on replaced");
      near(m.discAuc, r.discAuc, 1e-12, "D AUC");
      near(m.replacedFrac, r.replacedFrac, 1e-12, "replaced fraction");
      near(m.genAcc, r.genAcc, 1e-12, "G accuracy");
      if (config.disallowCorrect) assertEquals(m.genAcc, 0);
      // GDES, decoupled: D reads E_G after G's update, which changes its loss (so the order is tested).
      if (
        config.sharing === "gdes" && !config.joint && config.warmupSteps === 0 &&
        !config.resampleAfterGeneratorUpdate
      ) {
        assert(Math.abs(r.lossRtd - r.lossRtdBeforeG) > 1e-4, `${name}: G's update does not reach D's loss`);
      }
      // The same update of every parameter.
      for (const n of trained.model.params.names()) {
        const a = await trained.model.params.get(n).data(), b = await replayed.model.params.get(n).data();
        assert(maxAbsDiff(a, b) <= 1e-6, `${name}, step ${s}: ${n} differs from the replay's`);
      }
    }
    // The first warm-up step's rate is 0: it moves no weight (ELECTRA's first update only fills the moments).
    if (config.warmupSteps > 0) {
      const fresh = new Pretrainer(config, VOCAB);
      const w0 = await fresh.model.params.get(fresh.model.sharedTableName()).data();
      assertEquals((await fresh.trainStep(randomBatch(10, 8, 16, 5))).lr, 0);
      assertEquals(await fresh.model.params.get(fresh.model.sharedTableName()).data(), w0);
      fresh.dispose();
    }
    trained.dispose();
    replayed.dispose();
  }
});

Deno.test("each step draws its own masking and dropout streams, from the run's seed and the step alone", () => {
  const draws = (r: Rng) => [r.nextUint32(), r.nextUint32(), r.nextUint32()];
  for (const stream of ["data", "dropout"] as const) {
    const at = (seed: number, step: number) => draws(stepRngs(seed, step)[stream]);
    assertEquals(at(3, 5), at(3, 5)); // a resume at step 5 draws what the first session would have
    assert(JSON.stringify(at(3, 5)) !== JSON.stringify(at(3, 6)), `${stream}: steps 5 and 6 draw alike`);
    assert(JSON.stringify(at(3, 5)) !== JSON.stringify(at(4, 5)), `${stream}: seeds 3 and 4 draw alike`);
  }
  const s = stepRngs(3, 5);
  assert(
    JSON.stringify(draws(s.data)) !== JSON.stringify(draws(s.dropout)),
    "masking and dropout share a stream",
  );
});

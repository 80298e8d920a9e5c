/**
 * The embedding-sharing modes behave as DeBERTaV3 §3 defines them: what each loss may touch.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "../lib/tf.ts";
import { initBackend } from "../lib/backend/mod.ts";
import { batchTensors, Pretrainer, stepRngs } from "../lib/train/pretrain.ts";
import { exportModels } from "../lib/train/checkpoint.ts";
import { loadSafetensors } from "../lib/io/safetensors.ts";
import { corrupt } from "../lib/train/sampling.ts";
import {
  debertaMicroConfig,
  maxAbsDiff,
  MICRO_TOKENIZER,
  microConfig,
  randomBatch,
  tempDir,
  VOCAB,
} from "./_helpers.ts";
import type { SharingMode } from "../lib/config.ts";

await initBackend("wasm");

const EG = "generator.electra.embeddings.word_embeddings.weight";
const EDELTA = "discriminator.electra.embeddings.word_embeddings_delta.weight";
const ES_TABLE = "discriminator.electra.embeddings.word_embeddings.weight";

function snapshot(t: Pretrainer, name: string): Float32Array {
  return t.model.params.get(name).dataSync() as Float32Array;
}

/** D's input and labels for a batch: every selected position replaced by token 7 (a fixed "sample"). */
function discriminatorBatch(t: Pretrainer, seed: number) {
  const batch = randomBatch(seed);
  const rngs = stepRngs(seed, 0);
  const masked = t.mask(batch, rngs.data);
  const c = corrupt(batch.inputIds, masked.selected, new Int32Array(masked.selected.length).fill(7));
  return { batch, rngs, masked, inputs: batchTensors(c.corruptedIds, batch, VOCAB.padId), labels: c.labels };
}

Deno.test("GDES: a discriminator step leaves E_G untouched and moves E_Δ", () => {
  const t = new Pretrainer(microConfig("gdes"), VOCAB);
  const { inputs, labels, rngs } = discriminatorBatch(t, 1);
  const eg = snapshot(t, EG), delta = snapshot(t, EDELTA);
  assert.equal(Math.max(...delta.map(Math.abs)), 0, "E_Δ starts at zero");
  const d = t.discriminatorGradients(inputs, labels, rngs.dropout);
  assert.ok(!d.grads.has(EG), "E_G is not among the discriminator's variables");
  assert.ok(d.grads.has(EDELTA));
  tf.dispose(t.optimizers.discriminator!.apply(d.grads, 1e-2));
  assert.equal(maxAbsDiff(snapshot(t, EG), eg), 0, "E_G unchanged");
  assert.ok(maxAbsDiff(snapshot(t, EDELTA), delta) > 0, "E_Δ moved");
  tf.dispose([
    d.loss,
    d.logits,
    ...d.grads.values(),
    inputs.inputIds,
    inputs.tokenTypeIds,
    inputs.attentionMask,
  ]);
  t.dispose();
});

Deno.test("GDES: L_RTD's gradient through E_D = sg(E_G) + E_Δ is zero at E_G (stop-gradient), for every shared table", () => {
  const t = new Pretrainer(microConfig("gdes"), VOCAB);
  const { inputs, labels } = discriminatorBatch(t, 2);
  // Every table with a delta (token, position, token type): E_Δ's name without "_delta", on G's side.
  const deltas = t.model.params.names().filter((n) => n.includes("_delta"));
  assert.ok(deltas.includes(EDELTA) && deltas.length === 3, deltas.join(", "));
  for (const deltaName of deltas) {
    const egName = deltaName.replace("discriminator.", "generator.").replace("_delta", "");
    const eg = t.model.params.get(egName), delta = t.model.params.get(deltaName);
    // Ask for E_G explicitly: only the stop-gradient can make this zero.
    const { grads, value } = tf.variableGrads(() => {
      const h = t.model.encode("discriminator", inputs, { training: false });
      const logits = t.model.discriminatorLogits(h, { training: false });
      return tf.sum(tf.mul(logits, tf.tensor1d(labels))) as tf.Scalar;
    }, [eg, delta]);
    const gEG = grads[eg.name].dataSync(), gDelta = grads[delta.name].dataSync();
    assert.equal(Math.max(...gEG.map(Math.abs)), 0, `no gradient reaches ${egName}`);
    assert.ok(Math.max(...gDelta.map(Math.abs)) > 0, `${deltaName} receives the gradient`);
    tf.dispose([value, ...Object.values(grads)]);
  }
  tf.dispose([inputs.inputIds, inputs.tokenTypeIds, inputs.attentionMask]);
  t.dispose();
});

Deno.test("GDES: a generator step leaves E_Δ untouched and moves E_G", () => {
  const t = new Pretrainer(microConfig("gdes"), VOCAB);
  const batch = randomBatch(3);
  const rngs = stepRngs(3, 0);
  const masked = t.mask(batch, rngs.data);
  const inputs = batchTensors(masked.maskedIds, batch, VOCAB.padId);
  const eg = snapshot(t, EG), delta = snapshot(t, EDELTA);
  const g = t.generatorGradients(inputs, masked, rngs.dropout);
  assert.ok(!g.grads.has(EDELTA), "E_Δ is not among the generator's variables");
  tf.dispose(t.optimizers.generator!.apply(g.grads, 1e-2));
  assert.equal(maxAbsDiff(snapshot(t, EDELTA), delta), 0, "E_Δ unchanged");
  assert.ok(maxAbsDiff(snapshot(t, EG), eg) > 0, "E_G moved");
  tf.dispose([
    g.loss,
    g.logits,
    ...g.grads.values(),
    inputs.inputIds,
    inputs.tokenTypeIds,
    inputs.attentionMask,
  ]);
  t.dispose();
});

Deno.test("ES: both losses send gradient to the one shared token table", () => {
  const t = new Pretrainer(microConfig("es"), VOCAB);
  assert.equal(t.model.sharedTableName(), ES_TABLE);
  assert.ok(!t.model.params.has(EG), "ES has no separate generator table");
  const { inputs, labels, rngs, masked, batch } = discriminatorBatch(t, 4);
  const genInputs = batchTensors(masked.maskedIds, batch, VOCAB.padId);
  const g = t.generatorGradients(genInputs, masked, rngs.dropout);
  const d = t.discriminatorGradients(inputs, labels, rngs.dropout);
  const norm = (x: tf.Tensor) => tf.tidy(() => tf.norm(x).dataSync()[0]);
  assert.ok(norm(g.grads.get(ES_TABLE)!) > 0, "L_MLM reaches the shared table");
  assert.ok(norm(d.grads.get(ES_TABLE)!) > 0, "λ·L_RTD reaches the shared table");
  // One joint optimiser owns the table (science_test's replay pins that a step applies the sum of both).
  assert.ok(t.optimizers.joint && !t.optimizers.generator);
  tf.dispose([g.loss, g.logits, d.loss, d.logits, ...g.grads.values(), ...d.grads.values()]);
  tf.dispose([inputs.inputIds, inputs.tokenTypeIds, inputs.attentionMask]);
  tf.dispose([genInputs.inputIds, genInputs.tokenTypeIds, genInputs.attentionMask]);
  t.dispose();
});

Deno.test("NES: generator and discriminator share no variable; a D step leaves G's table alone", () => {
  const t = new Pretrainer(microConfig("nes"), VOCAB);
  const g = new Set(t.model.generatorVariables());
  const shared = t.model.discriminatorVariables().filter((n) => g.has(n));
  assert.deepEqual(shared, []);
  assert.notEqual(t.model.params.get(EG), t.model.params.get(ES_TABLE));
  const { inputs, labels, rngs } = discriminatorBatch(t, 5);
  const eg = snapshot(t, EG), ed = snapshot(t, ES_TABLE);
  const d = t.discriminatorGradients(inputs, labels, rngs.dropout);
  tf.dispose(t.optimizers.discriminator!.apply(d.grads, 1e-2));
  assert.equal(maxAbsDiff(snapshot(t, EG), eg), 0);
  assert.ok(maxAbsDiff(snapshot(t, ES_TABLE), ed) > 0);
  tf.dispose([
    d.loss,
    d.logits,
    ...d.grads.values(),
    inputs.inputIds,
    inputs.tokenTypeIds,
    inputs.attentionMask,
  ]);
  t.dispose();
});

Deno.test("parameters carry HuggingFace ELECTRA names; the GDES delta is its own tensor", () => {
  const t = new Pretrainer(microConfig("gdes"), VOCAB);
  const names = t.model.params.names();
  for (
    const n of [
      EG,
      EDELTA,
      "generator.generator_predictions.dense.weight",
      "generator.generator_lm_head.bias",
      "discriminator.discriminator_predictions.dense_prediction.weight",
      "discriminator.electra.encoder.layer.0.attention.self.query.weight",
      "discriminator.electra.embeddings_project.weight",
    ]
  ) assert.ok(names.includes(n), n);
  t.dispose();
  const m = new Pretrainer(microConfig("mlm"), VOCAB);
  assert.ok(m.model.params.names().every((n) => n.startsWith("mlm.")));
  assert.equal(m.model.params.get("mlm.electra.encoder.layer.0.attention.self.query.weight").shape[0], 32);
  m.dispose();
});

Deno.test("GDES export writes a plain discriminator with E_D = E_G + E_Δ merged", async () => {
  const t = new Pretrainer(microConfig("gdes"), VOCAB);
  for (let s = 0; s < 3; s++) await t.trainStep(randomBatch(10 + s));
  const eg = snapshot(t, EG), delta = snapshot(t, EDELTA);
  assert.ok(Math.max(...delta.map(Math.abs)) > 0);
  const dir = tempDir();
  await exportModels(t, dir, MICRO_TOKENIZER);
  const { tensors } = await loadSafetensors(join(dir, "discriminator", "model.safetensors"));
  const merged = tensors.get("electra.embeddings.word_embeddings.weight")!.data;
  assert.ok(maxAbsDiff(merged, eg.map((x, i) => x + delta[i])) < 1e-6);
  assert.ok(![...tensors.keys()].some((k) => k.includes("delta")), "no delta in the exported model");
  const gen = await loadSafetensors(join(dir, "generator", "model.safetensors"));
  assert.equal(maxAbsDiff(gen.tensors.get("electra.embeddings.word_embeddings.weight")!.data, eg), 0);
  t.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("export leaves no tensor behind: every mode, both backbones, both roles", async () => {
  for (
    const config of ["mlm", "es", "nes", "gdes"].flatMap((
      m,
    ) => [microConfig(m as SharingMode), debertaMicroConfig(m as SharingMode)])
  ) {
    const t = new Pretrainer(config, VOCAB);
    const before = tf.memory().numTensors;
    const dir = await tempDir();
    await exportModels(t, dir, MICRO_TOKENIZER);
    assert.equal(
      tf.memory().numTensors,
      before,
      `${config.backbone} ${config.sharing}: tensors left by the export`,
    );
    t.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

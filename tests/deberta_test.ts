/**
 * The DeBERTa backbone: log buckets, disentangled attention against a hand computation, the p2c
 * index convention, padding, the EMD, the RTD head, sharing invariants, and a short GDES run.
 */

import { exportModels } from "../lib/train/checkpoint.ts";
import { loadSafetensors } from "../lib/io/safetensors.ts";
import assert from "node:assert/strict";
import * as tf from "../lib/tf.ts";
import { type BackendName, initBackend, requestWebgpuAdapter } from "../lib/backend/mod.ts";
import { generatorSize, preset, validateConfig } from "../lib/config.ts";
import { createModel, type EncoderInputs } from "../lib/model/mod.ts";
import { DebertaModel, logBucketPosition, relativeIndex } from "../lib/model/deberta.ts";
import { batchTensors, Pretrainer, stepRngs, type TokenBatch } from "../lib/train/pretrain.ts";
import { corrupt } from "../lib/train/sampling.ts";
import { Rng } from "../lib/rng.ts";
import { debertaMicroConfig, maxAbsDiff, MICRO_TOKENIZER, randomBatch, VOCAB } from "./_helpers.ts";

await initBackend("wasm");

const debertaMicro = debertaMicroConfig;

function inputsOf(ids: number[][], pad = 0): EncoderInputs {
  const b = ids.length, l = ids[0].length;
  return {
    inputIds: tf.tensor2d(ids.flat(), [b, l], "int32"),
    tokenTypeIds: tf.zeros([b, l], "int32"),
    attentionMask: tf.tensor2d(ids.flat().map((t) => (t === pad ? 0 : 1)), [b, l], "float32"),
  };
}

function disposeInputs(x: EncoderInputs): void {
  tf.dispose([x.inputIds, x.tokenTypeIds, x.attentionMask]);
}

const EG = "generator.deberta.embeddings.word_embeddings.weight";
const PG = "generator.deberta.embeddings.position_embeddings.weight";
const EDELTA = "discriminator.deberta.embeddings.word_embeddings_delta.weight";
const PDELTA = "discriminator.deberta.embeddings.position_embeddings_delta.weight";

Deno.test("log buckets match hand-computed values at the boundaries (256 buckets, max 512)", () => {
  // mid = 128: |r| ≤ 128 is exact; beyond, 128 + ⌈log(|r|/128) / log(511/128) · 127⌉.
  // 129: ⌈0.0077821 / 1.3843 · 127⌉ = ⌈0.714⌉ = 1 → 129.  511: ⌈1 · 127⌉ = 127 → 255.
  // 1000: ⌈2.05573 / 1.38434 · 127⌉ = ⌈188.59⌉ = 189 → 317 (the index clamps it to the last row).
  const expected: [number, number][] = [[0, 0], [127, 127], [128, 128], [129, 129], [511, 255], [1000, 317]];
  for (const [r, bucket] of expected) {
    assert.equal(logBucketPosition(r, 256, 512), bucket, `bucket(${r})`);
    if (r > 0) assert.equal(logBucketPosition(-r, 256, 512), -bucket, `bucket(${-r})`);
  }
  // δ(i, j) = clamp(bucket(i − j) + 256, 0, 511): row 256 is distance 0; ±1000 land on the end rows.
  const c = { positionBuckets: 256, maxRelativePositions: 512 };
  assert.equal(relativeIndex(0, 0, c), 256);
  assert.equal(relativeIndex(129, 0, c), 385);
  assert.equal(relativeIndex(0, 511, c), 1);
  assert.equal(relativeIndex(1000, 0, c), 511);
  assert.equal(relativeIndex(0, 1000, c), 0);
  // deberta-tiny's scaled buckets (64, reaching ±127) use every row at seq 128.
  const tiny = preset("deberta-tiny");
  assert.equal(relativeIndex(127, 0, tiny), 127);
  assert.equal(relativeIndex(0, 127, tiny), 1);
  assert.equal(logBucketPosition(32, 64, 128), 32);
  assert.equal(logBucketPosition(33, 64, 128), 33);
});

/** Plain-JS linear algebra for the hand computation. */
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);
const linear = (x: number[][], w: number[][], b: number[]) =>
  x.map((r) => w.map((wr, o) => dot(r, wr) + b[o]));
const norm = (x: number[][], eps: number) =>
  x.map((r) => {
    const mean = r.reduce((s, v) => s + v, 0) / r.length;
    const variance = r.reduce((s, v) => s + (v - mean) ** 2, 0) / r.length;
    return r.map((v) => (v - mean) / Math.sqrt(variance + eps));
  });

/** A 3-token, hidden-4, 2-head discriminator layer with every weight it reads set explicitly. */
function handExample() {
  const config = debertaMicro("nes", {
    vocabSize: 8,
    maxPositions: 8,
    seqLength: 8,
    embeddingSize: 4,
    "discriminator.hiddenSize": 4,
    "discriminator.numLayers": 1,
    "discriminator.numHeads": 2,
    "discriminator.intermediateSize": 8,
    positionBuckets: 4, // k = 4: 8 relative rows; |i − j| ≤ 2 are exact
    maxRelativePositions: 8,
  });
  const model = new DebertaModel(config);
  const fixed = (rows: number, cols: number, seed: number) =>
    Array.from(
      { length: rows },
      (_, r) => Array.from({ length: cols }, (_, c) => ((seed + 7 * r + 3 * c) % 11) / 5 - 1),
    );
  const set = (name: string, value: number[][] | number[]) => model.params.get(name).assign(tf.tensor(value));
  const p = "discriminator.deberta";
  const s = `${p}.encoder.layer.0.attention.self`;
  const w = {
    word: fixed(8, 4, 1),
    rel: fixed(8, 4, 2),
    wq: fixed(4, 4, 3),
    bq: [0.1, -0.2, 0.3, 0],
    wk: fixed(4, 4, 4),
    bk: [-0.1, 0.2, 0, 0.05],
  };
  set(`${p}.embeddings.word_embeddings.weight`, w.word);
  set(`${p}.encoder.rel_embeddings.weight`, w.rel);
  set(`${s}.query_proj.weight`, w.wq);
  set(`${s}.query_proj.bias`, w.bq);
  set(`${s}.key_proj.weight`, w.wk);
  set(`${s}.key_proj.bias`, w.bk);
  const tokens = [1, 5, 2];
  const inputs = inputsOf([tokens]);
  const capture = new Map<string, tf.Tensor>();
  tf.dispose(model.encode("discriminator", inputs, { training: false, capture }));
  disposeInputs(inputs);

  // By hand: X = LN(E[tokens]) (E = H, no projection), R = LN(rel_embeddings), Q/K and Q_r/K_r through
  // the same projections (share_att_key), each score term divided by √(3d), d = 2.
  const eps = config.layerNormEps;
  const x = norm(tokens.map((t) => w.word[t]), eps);
  const r = norm(w.rel, eps);
  const [q, k, qr, kr] = [
    linear(x, w.wq, w.bq),
    linear(x, w.wk, w.bk),
    linear(r, w.wq, w.bq),
    linear(r, w.wk, w.bk),
  ];
  const scale = 1 / Math.sqrt(3 * 2);
  const head = (v: number[], h: number) => v.slice(2 * h, 2 * h + 2);
  // δ(i, j) = i − j + k with k = 4: every |i − j| ≤ 2 is below the bucketing threshold (mid = 2).
  const delta = (i: number, j: number) => i - j + 4;
  const grid = (f: (h: number, i: number, j: number) => number) =>
    [0, 1].map((h) => [0, 1, 2].map((i) => [0, 1, 2].map((j) => f(h, i, j))));
  const hand = {
    c2c: grid((h, i, j) => dot(head(q[i], h), head(k[j], h)) * scale),
    c2p: grid((h, i, j) => dot(head(q[i], h), head(kr[delta(i, j)], h)) * scale),
    p2c: grid((h, i, j) => dot(head(k[j], h), head(qr[delta(i, j)], h)) * scale), // reference convention
    p2cPaper: grid((h, i, j) => dot(head(k[j], h), head(qr[delta(j, i)], h)) * scale), // paper eq. 4
  };
  const probs = grid((h, i, j) => {
    const logit = (jj: number) => hand.c2c[h][i][jj] + hand.c2p[h][i][jj] + hand.p2c[h][i][jj];
    const z = [0, 1, 2].reduce((sum, jj) => sum + Math.exp(logit(jj)), 0);
    return Math.exp(logit(j)) / z;
  });
  const got = (name: string) =>
    (capture.get(`discriminator.layer.0.attention.${name}`)!.arraySync() as number[][][][])[0];
  const result = {
    hand: { ...hand, probs },
    got: { c2c: got("c2c"), c2p: got("c2p"), p2c: got("p2c"), probs: got("probs") },
  };
  tf.dispose([...capture.values()]);
  model.dispose();
  return result;
}

Deno.test("disentangled attention on a 3-token example matches a hand computation", () => {
  const { hand, got } = handExample();
  for (const term of ["c2c", "c2p", "p2c", "probs"] as const) {
    assert.ok(
      maxAbsDiff(got[term].flat(2), hand[term].flat(2)) < 1e-5,
      `${term}: ${got[term]} vs ${hand[term]}`,
    );
  }
});

Deno.test("p2c follows the reference's index K_j·Q_r[δ(i,j)], not the paper's K_j·Q_r[δ(j,i)]", () => {
  const { hand, got } = handExample();
  assert.ok(maxAbsDiff(got.p2c.flat(2), hand.p2c.flat(2)) < 1e-5);
  // The two conventions differ on this example, so an implementation of the paper's formula fails here.
  assert.ok(
    maxAbsDiff(got.p2c.flat(2), hand.p2cPaper.flat(2)) > 1e-2,
    "the example separates the conventions",
  );
  // On the diagonal δ(i,i) = δ(i,i): both agree, as they must.
  for (let h = 0; h < 2; h++) {
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(got.p2c[h][i][i] - hand.p2cPaper[h][i][i]) < 1e-5);
  }
});

Deno.test("padding: fully padded rows give zero attention and nothing is NaN (forward and gradients)", () => {
  const model = new DebertaModel(debertaMicro("gdes", { embeddingSize: 16 })); // E ≠ H: embed_proj path too
  const inputs = inputsOf([
    [0, 0, 0, 0, 0, 0, 0, 0], // a sequence that is all padding
    [2, 9, 4, 11, 3, 0, 0, 0],
  ]);
  const capture = new Map<string, tf.Tensor>();
  const selected = tf.tensor1d([1, 2, 9, 10], "int32");
  const { value, grads } = tf.variableGrads(() => {
    const g = model.encode("generator", inputs, { training: false, capture });
    const d = model.encode("discriminator", inputs, { training: false, capture });
    const gl = model.generatorLogits(g, selected, { training: false, capture });
    const dl = model.discriminatorLogits(d, { training: false, capture });
    return tf.add(tf.sum(gl), tf.sum(dl)) as tf.Scalar;
  });
  const finite = (t: tf.Tensor) => (t.dataSync() as Float32Array).every(Number.isFinite);
  assert.ok(finite(value));
  for (const [name, t] of capture) assert.ok(finite(t), `${name} is finite`);
  for (const [name, g] of Object.entries(grads)) assert.ok(finite(g), `gradient ${name} is finite`);
  const mask = [[0, 0, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0]];
  for (const name of ["discriminator.layer.0.attention.probs", "generator.emd.1.attention.probs"]) {
    const probs = capture.get(name)!.arraySync() as number[][][][];
    for (let b = 0; b < 2; b++) {
      for (const headRows of probs[b]) {
        headRows.forEach((row, i) => {
          const sum = row.reduce((s, v) => s + v, 0);
          if (!mask[b][i]) assert.equal(sum, 0, `${name}: padded query row ${b}/${i} is all zeros`);
          else {
            assert.ok(Math.abs(sum - 1) < 1e-5, `${name}: a real row sums to 1`);
            assert.ok(row.every((v, j) => mask[b][j] || v === 0), `${name}: padded keys get no weight`);
          }
        });
      }
    }
  }
  tf.dispose([value, selected, ...Object.values(grads), ...capture.values()]);
  disposeInputs(inputs);
  model.dispose();
});

Deno.test("EMD: the generator reads absolute positions through the last layer run twice; D reads none", () => {
  const model = new DebertaModel(debertaMicro("nes"));
  const inputs = inputsOf([[2, 9, 4, 11, 7, 8, 3, 0]]);
  const run = (role: "generator" | "discriminator") => {
    const capture = new Map<string, tf.Tensor>();
    const h = model.encode(role, inputs, { training: false, capture });
    const out = { h: h.dataSync() as Float32Array, hooks: [...capture.keys()], capture };
    h.dispose();
    return out;
  };
  const g0 = run("generator"), d0 = run("discriminator");
  // One plain layer (generatorLayers 1 → none before the last), then two EMD passes of that layer.
  assert.deepEqual(g0.hooks.filter((n) => n.endsWith(".output")), [
    "generator.emd.0.output",
    "generator.emd.1.output",
  ]);
  assert.equal(maxAbsDiff(g0.capture.get("generator.emd.1.output")!.dataSync(), g0.h), 0);
  assert.deepEqual(d0.hooks.filter((n) => n.endsWith(".output")), [
    "discriminator.layer.0.output",
    "discriminator.layer.1.output",
  ]);
  for (const c of [g0.capture, d0.capture]) tf.dispose([...c.values()]);
  // New absolute position embeddings move the generator's output, not the discriminator's.
  for (const table of [PG, "discriminator.deberta.embeddings.position_embeddings.weight"]) {
    const v = model.params.get(table);
    v.assign(tf.tidy(() => tf.randomNormal(v.shape, 0, 1, "float32", 5)));
  }
  const g1 = run("generator"), d1 = run("discriminator");
  for (const c of [g1.capture, d1.capture]) tf.dispose([...c.values()]);
  assert.ok(maxAbsDiff(g1.h, g0.h) > 1e-3, "the generator sees absolute positions");
  assert.equal(maxAbsDiff(d1.h, d0.h), 0, "the discriminator does not");
  disposeInputs(inputs);
  model.dispose();
});

Deno.test("RTD head: each token's logit sees its own sequence's [CLS] state, and only that", () => {
  const model = new DebertaModel(debertaMicro("gdes"));
  const hidden = tf.randomNormal([8, 32], 0, 1, "float32", 3) as tf.Tensor2D;
  assert.throws(() => model.discriminatorLogits(hidden, { training: false }), /sequenceLength/);
  const a = model.discriminatorLogits(hidden, { training: false, sequenceLength: 4 });
  // Change the [CLS] state of sequence 0 (row 0; not by a constant, which LayerNorm would remove):
  // logits 0..3 move, 4..7 stay.
  const moved = tf.tidy(() =>
    tf.concat([
      tf.add(tf.slice(hidden, [0, 0], [1, 32]), tf.randomNormal([1, 32], 0, 1, "float32", 4)),
      tf.slice(hidden, [1, 0], [7, 32]),
    ])
  );
  const b = model.discriminatorLogits(moved as tf.Tensor2D, { training: false, sequenceLength: 4 });
  const [av, bv] = [a.dataSync(), b.dataSync()];
  for (let i = 1; i < 4; i++) assert.ok(Math.abs(av[i] - bv[i]) > 1e-6, `token ${i} of sequence 0 moved`);
  for (let i = 4; i < 8; i++) assert.equal(av[i], bv[i], `token ${i} of sequence 1 unchanged`);
  tf.dispose([hidden, moved, a, b]);
  model.dispose();
});

/** D's input and labels for a batch: every selected position replaced by token 7 (a fixed "sample"). */
function discriminatorBatch(t: Pretrainer, seed: number) {
  const batch = randomBatch(seed);
  const rngs = stepRngs(seed, 0);
  const masked = t.mask(batch, rngs.data);
  const c = corrupt(batch.inputIds, masked.selected, new Int32Array(masked.selected.length).fill(7));
  return { batch, rngs, masked, inputs: batchTensors(c.corruptedIds, batch, VOCAB.padId), labels: c.labels };
}

Deno.test("GDES: a D step leaves E_G (tokens, positions) untouched and moves E_Δ; a G step leaves E_Δ", () => {
  const t = new Pretrainer(debertaMicro("gdes"), VOCAB);
  const snap = (n: string) => t.model.params.get(n).dataSync() as Float32Array;
  const { inputs, labels, rngs, masked, batch } = discriminatorBatch(t, 1);
  const before = { eg: snap(EG), pg: snap(PG), delta: snap(EDELTA) };
  assert.equal(Math.max(...before.delta.map(Math.abs)), 0, "E_Δ starts at zero");
  const d = t.discriminatorGradients(inputs, labels, rngs.dropout);
  assert.ok(!d.grads.has(EG) && !d.grads.has(PG), "E_G is not among D's variables");
  assert.ok(d.grads.has(EDELTA), "E_Δ learns from L_RTD");
  assert.ok(!d.grads.has(PDELTA), "D reads no absolute positions, so the position delta gets no gradient");
  tf.dispose(t.optimizers.discriminator!.apply(d.grads, 1e-2));
  assert.equal(maxAbsDiff(snap(EG), before.eg), 0, "E_G unchanged");
  assert.equal(maxAbsDiff(snap(PG), before.pg), 0, "G's positions unchanged");
  assert.ok(maxAbsDiff(snap(EDELTA), before.delta) > 0, "E_Δ moved");

  const genInputs = batchTensors(masked.maskedIds, batch, VOCAB.padId);
  const deltaAfterD = snap(EDELTA);
  const g = t.generatorGradients(genInputs, masked, rngs.dropout);
  assert.ok(g.grads.has(EG) && g.grads.has(PG), "L_MLM reaches E_G and the EMD's positions");
  assert.ok(!g.grads.has(EDELTA));
  tf.dispose(t.optimizers.generator!.apply(g.grads, 1e-2));
  assert.equal(maxAbsDiff(snap(EDELTA), deltaAfterD), 0, "E_Δ unchanged by a G step");
  assert.ok(maxAbsDiff(snap(EG), before.eg) > 0, "E_G moved");
  tf.dispose([d.loss, d.logits, ...d.grads.values(), g.loss, g.logits, ...g.grads.values()]);
  disposeInputs(inputs);
  disposeInputs(genInputs);
  t.dispose();
});

Deno.test("GDES: L_RTD's gradient through E_D = sg(E_G) + E_Δ is zero at E_G (stop-gradient), for every shared table", () => {
  const t = new Pretrainer(debertaMicro("gdes"), VOCAB);
  const { inputs, labels } = discriminatorBatch(t, 2);
  // Every table with a delta: E_Δ's name without "_delta", on G's side.
  const deltas = t.model.params.names().filter((n) => n.includes("_delta"));
  assert.ok(deltas.includes(EDELTA) && deltas.length >= 2, deltas.join(", "));
  for (const deltaName of deltas) {
    const egName = deltaName.replace("discriminator.", "generator.").replace("_delta", "");
    const eg = t.model.params.get(egName), delta = t.model.params.get(deltaName);
    const loss = () => {
      const h = t.model.encode("discriminator", inputs, { training: false });
      return tf.sum(
        tf.mul(t.model.discriminatorLogits(h, { training: false }), tf.tensor1d(labels)),
      ) as tf.Scalar;
    };
    if (deltaName === PDELTA) {
      // D reads relative positions only: neither the absolute table nor its delta reaches L_RTD.
      assert.throws(() => tf.variableGrads(loss, [eg, delta]), /Cannot find a connection/);
      continue;
    }
    const { grads, value } = tf.variableGrads(loss, [eg, delta]);
    assert.equal(Math.max(...grads[eg.name].dataSync().map(Math.abs)), 0, `no gradient reaches ${egName}`);
    assert.ok(Math.max(...grads[delta.name].dataSync().map(Math.abs)) > 0, `${deltaName} receives it`);
    tf.dispose([value, ...Object.values(grads)]);
  }
  disposeInputs(inputs);
  t.dispose();
});

Deno.test("parameters carry HuggingFace DebertaV2 names; ES shares tables under discriminator., NES none", () => {
  const gdes = new DebertaModel(debertaMicro("gdes", { embeddingSize: 16 }));
  const names = gdes.params.names();
  for (
    const n of [
      EG,
      PG,
      EDELTA,
      PDELTA,
      "generator.deberta.embeddings.embed_proj.weight",
      "generator.deberta.encoder.rel_embeddings.weight",
      "generator.deberta.encoder.LayerNorm.weight",
      "generator.lm_predictions.lm_head.dense.weight",
      "generator.lm_predictions.lm_head.LayerNorm.weight",
      "generator.lm_predictions.lm_head.bias",
      "discriminator.deberta.embeddings.LayerNorm.weight",
      "discriminator.deberta.encoder.layer.0.attention.self.query_proj.weight",
      "discriminator.deberta.encoder.layer.1.attention.self.key_proj.bias",
      "discriminator.deberta.encoder.layer.0.attention.output.dense.weight",
      "discriminator.deberta.encoder.layer.0.attention.output.LayerNorm.weight",
      "discriminator.deberta.encoder.layer.0.intermediate.dense.weight",
      "discriminator.deberta.encoder.layer.0.output.dense.weight",
      "discriminator.deberta.encoder.layer.0.output.LayerNorm.bias",
      "discriminator.mask_predictions.dense.weight",
      "discriminator.mask_predictions.LayerNorm.weight",
      "discriminator.mask_predictions.classifier.weight",
    ]
  ) assert.ok(names.includes(n), n);
  assert.ok(!names.some((n) => n.includes("token_type")), "DeBERTaV3 has no token types");
  assert.ok(!gdes.params.has("generator.deberta.embeddings.embed_proj.bias"), "embed_proj has no bias");
  assert.deepEqual(gdes.params.get("discriminator.deberta.encoder.rel_embeddings.weight").shape, [16, 32]);
  gdes.dispose();

  const es = new DebertaModel(debertaMicro("es"));
  assert.equal(es.sharedTableName(), "discriminator.deberta.embeddings.word_embeddings.weight");
  assert.ok(
    !es.params.names().some((n) =>
      n.startsWith("generator.deberta.embeddings.") && n.includes("_embeddings.")
    ),
  );
  assert.ok(es.generatorVariables().includes("discriminator.deberta.embeddings.position_embeddings.weight"));
  assert.ok(!es.generatorVariables().includes("discriminator.deberta.embeddings.LayerNorm.weight"));
  es.dispose();
  const nes = new DebertaModel(debertaMicro("nes"));
  const g = new Set(nes.generatorVariables());
  assert.deepEqual(nes.discriminatorVariables().filter((n) => g.has(n)), []);
  nes.dispose();
  const mlm = new DebertaModel(debertaMicro("mlm"));
  assert.ok(mlm.params.names().every((n) => n.startsWith("mlm.")));
  mlm.dispose();
});

Deno.test("presets: deberta-tiny and deberta-v3-xsmall select the DeBERTa backbone", () => {
  const x = preset("deberta-v3-xsmall");
  assert.equal(x.backbone, "deberta");
  assert.deepEqual(x.discriminator, { hiddenSize: 384, numLayers: 12, numHeads: 6, intermediateSize: 1536 });
  assert.deepEqual(generatorSize(x), { hiddenSize: 384, numLayers: 6, numHeads: 6, intermediateSize: 1536 });
  assert.equal(x.embeddingSize, 384);
  assert.deepEqual([x.positionBuckets, x.maxRelativePositions, x.layerNormEps, x.maskTokenProb], [
    256,
    512,
    1e-7,
    1,
  ]);
  const tiny = validateConfig(preset("deberta-tiny"));
  assert.deepEqual(generatorSize(tiny), {
    hiddenSize: 128,
    numLayers: 2,
    numHeads: 2,
    intermediateSize: 512,
  });
  const m = createModel(debertaMicro("es"));
  assert.ok(m instanceof DebertaModel);
  m.dispose();
  assert.throws(
    () => debertaMicro("es", { positionBuckets: 40 }),
    /positionBuckets 40 needs .* maxRelativePositions > positionBuckets\/2 \+ 1/,
  );
  assert.throws(
    () => debertaMicro("es", { maxRelativePositions: 0 }),
    /maxRelativePositions must be a positive/,
  );
});

Deno.test("the tensor count stays flat across training steps (every mode)", async () => {
  for (const sharing of ["es", "nes", "gdes", "mlm"] as const) {
    const before = tf.memory().numTensors;
    const t = new Pretrainer(debertaMicro(sharing, sharing === "gdes" ? { embeddingSize: 16 } : {}), VOCAB);
    const counts = [];
    for (let s = 0; s < 3; s++) {
      await t.trainStep(randomBatch(s));
      counts.push(tf.memory().numTensors);
    }
    assert.equal(new Set(counts).size, 1, `${sharing}: ${counts}`);
    t.dispose();
    assert.equal(tf.memory().numTensors, before, `${sharing}: dispose frees everything`);
  }
});

/** Sequences alternating two tokens chosen per sequence: a masked token is its neighbours' neighbour. */
function patternBatch(seed: number, batch = 8, length = 16): TokenBatch {
  const rng = new Rng(seed);
  const ids = new Int32Array(batch * length);
  for (let b = 0; b < batch; b++) {
    const a = rng.int(8), pad = rng.int(4);
    for (let t = 0; t < length; t++) {
      const end = length - pad - 1;
      ids[b * length + t] = t === 0 ? 2 : t === end ? 3 : t > end ? 0 : 5 + a + 8 * (t % 2);
    }
  }
  return { inputIds: ids, tokenTypeIds: new Int32Array(batch * length), batch, length };
}

Deno.test("a short GDES pre-training run on a micro DeBERTa lowers both losses", async () => {
  const steps = 30;
  const t = new Pretrainer(debertaMicro("gdes", { batchSize: 8, steps, warmupSteps: 3 }), VOCAB);
  const m = [];
  for (let s = 0; s < steps; s++) m.push(await t.trainStep(patternBatch(s % 4)));
  t.dispose();
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const [mlm0, mlm1] = [mean(m.slice(0, 5).map((x) => x.lossMlm)), mean(m.slice(-5).map((x) => x.lossMlm))];
  const [rtd0, rtd1] = [mean(m.slice(0, 5).map((x) => x.lossRtd!)), mean(m.slice(-5).map((x) => x.lossRtd!))];
  assert.ok(mlm1 < mlm0 - 0.8, `MLM loss ${mlm0.toFixed(3)} → ${mlm1.toFixed(3)}`);
  assert.ok(rtd1 < rtd0 - 0.05, `RTD loss ${rtd0.toFixed(3)} → ${rtd1.toFixed(3)}`);
});

/** Losses and every gradient of one generator + discriminator phase of a GDES micro DeBERTa on `backend`. */
async function stepNumbers(backend: BackendName) {
  await initBackend(backend);
  const t = new Pretrainer(
    debertaMicro("gdes", {
      dropout: 0,
      embeddingSize: 16,
      "discriminator.hiddenSize": 16,
      "discriminator.numLayers": 1,
      "discriminator.intermediateSize": 32,
    }),
    VOCAB,
  );
  const { inputs, labels, rngs, masked, batch } = discriminatorBatch(t, 11);
  const genInputs = batchTensors(masked.maskedIds, batch, VOCAB.padId);
  const g = t.generatorGradients(genInputs, masked, rngs.dropout);
  const d = t.discriminatorGradients(inputs, labels, rngs.dropout);
  const grads = new Map<string, Float32Array>();
  for (const [n, x] of [...g.grads, ...d.grads]) grads.set(n, (await x.data()) as Float32Array);
  const out = { lossMlm: (await g.loss.data())[0], lossRtd: (await d.loss.data())[0], grads };
  tf.dispose([g.loss, g.logits, d.loss, d.logits, ...g.grads.values(), ...d.grads.values()]);
  disposeInputs(inputs);
  disposeInputs(genInputs);
  t.dispose();
  return out;
}

Deno.test("cpu, wasm (and webgpu when present) agree on a DeBERTa GDES step: losses and every gradient", async () => {
  const backends: BackendName[] = [
    "cpu",
    "wasm",
    ...((await requestWebgpuAdapter()) !== null ? ["webgpu" as const] : []),
  ];
  try {
    const results = [];
    for (const b of backends) results.push(await stepNumbers(b));
    const cpu = results[0];
    results.slice(1).forEach((r, k) => {
      const name = `${backends[k + 1]} vs cpu`;
      assert.ok(
        Math.abs(r.lossMlm - cpu.lossMlm) < 1e-4 * cpu.lossMlm,
        `${name}: L_MLM ${r.lossMlm} vs ${cpu.lossMlm}`,
      );
      assert.ok(
        Math.abs(r.lossRtd - cpu.lossRtd) < 1e-4 * cpu.lossRtd,
        `${name}: L_RTD ${r.lossRtd} vs ${cpu.lossRtd}`,
      );
      assert.deepEqual([...r.grads.keys()].sort(), [...cpu.grads.keys()].sort());
      for (const [n, g] of cpu.grads) {
        const scale = Math.max(1e-3, ...g.map(Math.abs));
        assert.ok(maxAbsDiff(g, r.grads.get(n)!) <= 1e-3 * scale, `${name}: gradient ${n}`);
      }
    });
  } finally {
    await initBackend("wasm");
  }
});

Deno.test("export writes a HuggingFace DebertaV2 discriminator with E_D = E_G + E_Δ merged", async () => {
  const t = new Pretrainer(debertaMicro("gdes"), VOCAB);
  for (let s = 0; s < 2; s++) await t.trainStep(patternBatch(30 + s));
  const eg = t.model.params.get("generator.deberta.embeddings.word_embeddings.weight").dataSync();
  const delta = t.model.params.get("discriminator.deberta.embeddings.word_embeddings_delta.weight")
    .dataSync();
  const dir = Deno.makeTempDirSync();
  await exportModels(t, dir, MICRO_TOKENIZER);
  const { tensors } = await loadSafetensors(`${dir}/discriminator/model.safetensors`);
  const merged = tensors.get("deberta.embeddings.word_embeddings.weight")!.data;
  let diff = 0;
  for (let i = 0; i < merged.length; i++) diff = Math.max(diff, Math.abs(merged[i] - (eg[i] + delta[i])));
  assert.ok(diff < 1e-6, `merged table differs by ${diff}`);
  assert.ok(tensors.has("deberta.encoder.rel_embeddings.weight"));
  assert.ok(![...tensors.keys()].some((k) => k.includes("delta") || k.startsWith("electra.")));
  const config = JSON.parse(await Deno.readTextFile(`${dir}/discriminator/config.json`));
  assert.equal(config.model_type, "deberta-v2");
  t.dispose();
  await Deno.remove(dir, { recursive: true });
});

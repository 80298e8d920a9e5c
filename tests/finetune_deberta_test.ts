/**
 * Fine-tuning on the DeBERTa backbone: a micro DeBERTa run's exported discriminator (GDES: E_G + E_Δ
 * merged) and MLM encoder load into the classifier and reproduce the pre-trained encoder's hidden
 * states; the head learns a separable task on a DeBERTa encoder; exports are read by model_type, and
 * what cannot be read is refused by name.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "../lib/tf.ts";
import { initBackend } from "../lib/backend/mod.ts";
import { applyOverrides, preset, type RunConfig, type SharingMode, validateConfig } from "../lib/config.ts";
import {
  configFromHf,
  finetune,
  loadPretrainedEncoder,
  runFinetune,
  SequenceClassifier,
} from "../lib/finetune/mod.ts";
import { createModel, type EncoderInputs } from "../lib/model/mod.ts";
import { DebertaModel } from "../lib/model/deberta.ts";
import { pretrain } from "../lib/train/run.ts";
import { WordPieceTokenizer } from "../lib/text/tokenizer.ts";
import { Rng } from "../lib/rng.ts";
import {
  debertaMicroConfig,
  GRAMMAR,
  maxAbsDiff,
  syntheticSeparableTask,
  tempDir,
  writeGrammarCorpus,
} from "./_helpers.ts";

await initBackend("wasm");
Deno.env.set("RTDLAB_CACHE", tempDir("rtdlab-cache-"));

const { subj: SUBJ, verb: VERB, obj: OBJ } = GRAMMAR;

/** A small corpus from the tiny grammar of tests/_helpers.ts: 8 documents of 40 sentences. */
const corpusDir = tempDir("rtdlab-corpus-");
writeGrammarCorpus(corpusDir, 8, 40);

/**
 * A micro DeBERTa run (D 2×32, G 1×32, E 16 ≠ H so `embed_proj` exists, seq 24, 8 log buckets reaching
 * ±15 so the log path is used).
 */
function debertaRun(sharing: SharingMode, overrides: Record<string, unknown> = {}): RunConfig {
  return validateConfig(applyOverrides(preset("deberta-tiny"), {
    sharing,
    corpus: corpusDir,
    tokenizerVocabSize: 100,
    maxPositions: 24,
    seqLength: 24,
    embeddingSize: 16,
    "discriminator.hiddenSize": 32,
    "discriminator.numLayers": 2,
    "discriminator.numHeads": 2,
    "discriminator.intermediateSize": 64,
    generatorLayers: 1,
    positionBuckets: 8,
    maxRelativePositions: 16,
    batchSize: 4,
    steps: 3,
    warmupSteps: 0,
    learningRate: 1e-2,
    logEvery: 1,
    checkpointEvery: 0,
    ...overrides,
  }));
}

/** Two sequences `[CLS] w… [SEP]` of the tokenizer's words, the second padded. */
function inputsFor(tok: WordPieceTokenizer, length = 12): EncoderInputs {
  const ids = (text: string, n: number) => {
    const t = [tok.specialIds.cls, ...tok.encode(text).slice(0, n - 2), tok.specialIds.sep];
    while (t.length < length) t.push(tok.specialIds.pad);
    return t;
  };
  const rows = [ids("the cat sat on the mat. a dog ran to the river.", length), ids("my sister slept", 6)];
  const flat = rows.flat();
  return {
    inputIds: tf.tensor2d(flat, [2, length], "int32"),
    tokenTypeIds: tf.tensor2d(flat.map((_, i) => (i % length >= 4 ? 1 : 0)), [2, length], "int32"),
    attentionMask: tf.tensor2d(flat.map((x) => (x === tok.specialIds.pad ? 0 : 1)), [2, length], "float32"),
  };
}

Deno.test("a DeBERTa run's export (GDES discriminator, E_G + E_Δ merged; MLM encoder) loads into the classifier", async () => {
  // GDES with token types (so E_Δ covers three tables), MLM without (DeBERTaV3's layout).
  for (const [sharing, types] of [["gdes", 2], ["mlm", 0]] as const) {
    const out = join(tempDir("rtdlab-ft-deberta-"), "run");
    const r = await pretrain({ config: debertaRun(sharing, { typeVocabSize: types }), outDir: out });
    const model = r.trainer.model as DebertaModel;
    assert.ok(model instanceof DebertaModel);
    if (sharing === "gdes") {
      const delta = model.params.get("discriminator.deberta.embeddings.word_embeddings_delta.weight");
      assert.ok(tf.tidy(() => tf.max(tf.abs(delta)).dataSync()[0]) > 0, "E_Δ moved during pre-training");
    }

    const enc = await loadPretrainedEncoder(out);
    assert.equal(enc.source, sharing === "mlm" ? "mlm" : "discriminator");
    assert.equal(enc.sharing, sharing);
    assert.equal(enc.config.backbone, "deberta");
    assert.equal(enc.config.layerNormEps, 1e-7);
    assert.equal(enc.config.typeVocabSize, types);
    assert.equal(enc.config.embeddingSize, 16);
    assert.deepEqual([enc.config.positionBuckets, enc.config.maxRelativePositions], [8, 16]);
    assert.deepEqual(enc.config.discriminator, model.config.discriminator);
    assert.ok(enc.weights.has("deberta.encoder.rel_embeddings.weight"));
    assert.ok(enc.weights.has("deberta.embeddings.embed_proj.weight"));

    const before = tf.memory().numTensors;
    const clf = SequenceClassifier.fromPretrained(enc, 3, 0);
    assert.ok(clf.encoder instanceof DebertaModel && clf.encoder.encoderOnly);
    assert.ok(
      clf.params.names().every((n) => n.startsWith("discriminator.deberta.") || n.startsWith("classifier.")),
    );
    assert.ok(!clf.params.names().some((n) => n.includes("_delta") || n.includes("mask_predictions")));
    // The pre-training head is in the export but not in the encoder: reported by name, not loaded.
    // (The MLM head is exported as DebertaV2ForMaskedLM's cls.predictions.*, read as lm_predictions.lm_head.*.)
    const heads = sharing === "mlm" ? ["cls.predictions.", "lm_predictions.lm_head."] : ["mask_predictions."];
    const unused = clf.loadReport!.unused.map((u) => u.slice(u.lastIndexOf(" ") + 1));
    assert.ok(
      unused.length > 0 && unused.every((n) => heads.some((h) => n.startsWith(h))),
      unused.join(", "),
    );

    const inputs = inputsFor(r.tokenizer);
    // The MLM baseline's exported encoder is its plain encoder (no Enhanced Mask Decoder).
    const role = sharing === "mlm" ? "generator" : "discriminator";
    const want = tf.tidy(() => model.encode(role, inputs, { training: false, emd: false }));
    const got = tf.tidy(() => clf.encoder.encode("discriminator", inputs, { training: false }));
    const [w, g] = [await want.data(), await got.data()];
    assert.ok(maxAbsDiff(w, g) < 1e-5, `${sharing}: hidden states differ by ${maxAbsDiff(w, g)}`);
    // ... and the pre-trained weights are what makes them equal: a random-init encoder differs.
    const scratch = new SequenceClassifier(enc.config, 3, new Map(), 0);
    const rand = tf.tidy(() => scratch.encoder.encode("discriminator", inputs, { training: false }));
    assert.ok(
      maxAbsDiff(w, await rand.data()) > 1e-2,
      `${sharing}: scratch encoder matches the pre-trained one`,
    );
    if (sharing === "mlm") {
      const withEmd = tf.tidy(() => model.encode("generator", inputs, { training: false }));
      assert.ok(maxAbsDiff(await withEmd.data(), g) > 1e-3, "the EMD pass is not the exported encoder");
      withEmd.dispose();
    }

    // Layer-wise LR decay depths: embeddings, rel_embeddings and their LayerNorm at 0.
    const top = enc.config.discriminator.numLayers + 1;
    for (const n of clf.params.names()) {
      const d = clf.depth(n);
      if (n.startsWith("classifier.")) assert.equal(d, top, n);
      else if (n.includes(".encoder.layer.")) assert.equal(d, Number(/layer\.(\d+)\./.exec(n)![1]) + 1, n);
      else assert.equal(d, 0, n);
    }
    assert.equal(clf.depth("discriminator.deberta.encoder.rel_embeddings.weight"), 0);
    assert.equal(clf.depth("discriminator.deberta.encoder.LayerNorm.bias"), 0);
    assert.equal(clf.depth("discriminator.deberta.encoder.layer.1.attention.output.LayerNorm.weight"), 2);

    const logits = tf.tidy(() => clf.logits(inputs, { training: false }));
    assert.deepEqual(logits.shape, [2, 3]);
    tf.dispose([want, got, rand, logits, ...Object.values(inputs)]);
    clf.dispose();
    scratch.dispose();
    assert.equal(tf.memory().numTensors, before, "no tensors leak");

    if (sharing === "gdes") {
      // Fine-tuning end to end on the run folder, with a task in the corpus's words.
      const rng = new Rng(5);
      const lines = Array.from({ length: 40 }, (_, i) => {
        const text = `${SUBJ[(i % 2) * 3 + rng.int(3)]} ${VERB[rng.int(6)]} ${OBJ[rng.int(6)]}`;
        return JSON.stringify({ text, label: i % 2 ? "b" : "a" });
      });
      const taskFile = join(tempDir(), "animals.jsonl");
      await Deno.writeTextFile(taskFile, lines.join("\n") + "\n");
      const m = await runFinetune({
        runDir: out,
        task: taskFile,
        seed: 1,
        hyper: { epochs: 1, batchSize: 8, maxLength: 16, learningRate: 1e-3 },
      });
      assert.equal(m.source, "discriminator");
      assert.equal(m.sharing, "gdes");
      assert.ok(m.test.n > 0 && Number.isFinite(m.test.accuracy));

      // A run whose config.json disagrees with its export's model_type is refused, naming both.
      const cfgPath = join(out, "config.json");
      const runCfg = JSON.parse(await Deno.readTextFile(cfgPath));
      await Deno.writeTextFile(cfgPath, JSON.stringify({ ...runCfg, backbone: "electra" }));
      await assert.rejects(loadPretrainedEncoder(out), /backbone "electra".*model_type "deberta-v2"/);
    }
    r.trainer.dispose();
  }
});

const WORDS = Array.from({ length: 59 }, (_, i) => `w${i}`);
const TOKENIZER = WordPieceTokenizer.fromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ...WORDS]);

/** A micro DeBERTa encoder config for vocabulary 64 (D 1×32, seq 16). */
const debertaMicro = (overrides: Record<string, unknown> = {}) =>
  debertaMicroConfig("nes", { "discriminator.numLayers": 1, ...overrides });

Deno.test("the classification head learns a separable synthetic task on a DeBERTa encoder", async () => {
  const task = syntheticSeparableTask();
  const before = tf.memory().numTensors;
  const clf = new SequenceClassifier(debertaMicro({ dropout: 0 }), 2, new Map(), 0);
  assert.ok(clf.encoder instanceof DebertaModel);
  const r = await finetune(clf, TOKENIZER, task, {
    seed: 0,
    hyper: { epochs: 4, batchSize: 16, learningRate: 3e-3, maxLength: 16, patience: 0, layerDecay: 0.9 },
  });
  clf.dispose();
  assert.ok(r.test.accuracy >= 0.9, `test accuracy ${r.test.accuracy}`);
  assert.ok(r.history.length === 4 && r.best.dev.accuracy >= 0.9);
  assert.equal(tf.memory().numTensors, before, "no tensors leak");
});

Deno.test("configFromHf reads electra and deberta-v2 exports and names what it cannot read", () => {
  // Round trip through each backbone's hfConfig: the encoder rebuilt from the export has the same shape.
  for (
    const cfg of [
      debertaMicro(),
      debertaMicro({ positionBuckets: 0, typeVocabSize: 2 }),
      validateConfig(applyOverrides(preset("tiny"), { embeddingSize: 64 })),
    ]
  ) {
    const model = createModel(cfg, 0, { encoderOnly: true });
    const back = configFromHf(model.hfConfig("discriminator"), "mem/config.json");
    for (
      const k of [
        "backbone",
        "vocabSize",
        "embeddingSize",
        "maxPositions",
        "typeVocabSize",
        "layerNormEps",
        "dropout",
        "initStd",
      ] as const
    ) assert.deepEqual(back[k], cfg[k], `${cfg.preset} ${k}`);
    assert.deepEqual(back.discriminator, cfg.discriminator);
    if (cfg.backbone === "deberta") {
      assert.equal(back.positionBuckets, cfg.positionBuckets);
      assert.equal(back.maxRelativePositions, cfg.maxRelativePositions);
    }
    const rebuilt = createModel(back, 0, { encoderOnly: true });
    assert.deepEqual(
      rebuilt.params.names().map((n) => [n, rebuilt.params.get(n).shape]),
      model.params.names().map((n) => [n, model.params.get(n).shape]),
    );
    rebuilt.dispose();
    model.dispose();
  }

  // Encoder-only DeBERTa: the discriminator's encoder alone, as ELECTRA's.
  const e = new DebertaModel(debertaMicro({ sharing: "gdes" }), 0, { encoderOnly: true });
  assert.ok(e.params.names().every((n) => n.startsWith("discriminator.deberta.") && !n.includes("_delta")));
  assert.deepEqual(e.generatorVariables(), []);
  assert.deepEqual(e.discriminatorVariables(), e.params.names());
  assert.equal(e.embeddingOwner("discriminator"), "discriminator");
  assert.throws(() => e.prefix("generator"), /no generator/);
  const hidden = tf.zeros([16, 32]) as tf.Tensor2D;
  assert.throws(() => e.discriminatorLogits(hidden, { training: false }), /no RTD head/);
  hidden.dispose();
  e.dispose();

  const full = createModel(debertaMicro(), 0);
  const hf = full.hfConfig("discriminator");
  full.dispose();
  assert.throws(() => configFromHf({ ...hf, model_type: "bert" }, "x/config.json"), (err: Error) => {
    assert.match(err.message, /x\/config\.json/);
    assert.match(err.message, /unknown model_type "bert"/);
    assert.match(err.message, /"electra" and "deberta-v2"/);
    return true;
  });
  assert.throws(() => configFromHf({ hidden_size: 32 }, "y.json"), /unknown model_type undefined/);
  assert.throws(
    () => configFromHf({ ...hf, position_biased_input: true }, "z.json"),
    /z\.json: "position_biased_input" is true; .* false only/,
  );
  assert.throws(
    () => configFromHf({ ...hf, pos_att_type: ["c2p"] }, "z.json"),
    /"pos_att_type" is \["c2p"\]/,
  );
  const { relative_attention: _, ...noRel } = hf;
  assert.throws(() => configFromHf(noRel, "z.json"), /"relative_attention" is missing/);
  assert.throws(
    () => configFromHf({ ...hf, layer_norm_eps: "1e-7" }, "z.json"),
    /"layer_norm_eps" is not a number/,
  );
  assert.throws(() => configFromHf({ ...hf, num_hidden_layers: undefined }, "z.json"), /"num_hidden_layers"/);
});

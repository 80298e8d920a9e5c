/**
 * Checkpoints travel both ways: every export folder is a complete HuggingFace model folder; an export
 * loads back (into pre-training, in any sharing mode, or into the classifier) with identical logits;
 * a folder with a renamed or reshaped tensor is refused by name; a pickle is refused with the reason;
 * and continued pre-training from an exported pair reproduces the next loss of resuming its run.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "../lib/tf.ts";
import { initBackend } from "../lib/backend/mod.ts";
import { applyOverrides, preset, type RunConfig, type SharingMode, validateConfig } from "../lib/config.ts";
import { loadSafetensors, saveSafetensors } from "../lib/io/safetensors.ts";
import { loadPretrainedEncoder, runFinetune, SequenceClassifier } from "../lib/finetune/mod.ts";
import type { RtdModel } from "../lib/model/mod.ts";
import { readHfModelFolder } from "../lib/model/hf_folder.ts";
import { exportModels, loadCheckpoint } from "../lib/train/checkpoint.ts";
import { initConfig, loadInitWeights, readInitFolders } from "../lib/train/init_from.ts";
import { batchTensors, Pretrainer, type TokenBatch } from "../lib/train/pretrain.ts";
import { pretrain, readMetrics, savedRunConfig } from "../lib/train/run.ts";
import { BatchSampler } from "../lib/train/batches.ts";
import { prepareCorpus } from "../lib/text/dataset.ts";
import { WordPieceTokenizer } from "../lib/text/tokenizer.ts";
import {
  debertaMicroConfig,
  MICRO_SIZES,
  MICRO_TOKENIZER,
  microConfig,
  randomBatch,
  syntheticSeparableTask,
  tempDir,
  VOCAB,
  writeGrammarCorpus,
} from "./_helpers.ts";

await initBackend("wasm");
Deno.env.set("RTDLAB_CACHE", tempDir("rtdlab-cache-"));

const FILES = [
  "config.json",
  "model.safetensors",
  "tokenizer.json",
  "vocab.txt",
  "tokenizer_config.json",
  "special_tokens_map.json",
];

/** Generator MLM logits (at the batch's non-padding positions) and discriminator RTD logits, dropout off. */
async function logits(
  model: RtdModel,
  batch: TokenBatch,
): Promise<{ g: Float32Array; d: Float32Array | null }> {
  const inputs = batchTensors(batch.inputIds, batch, VOCAB.padId);
  const positions = [...batch.inputIds.keys()].filter((i) => batch.inputIds[i] !== VOCAB.padId);
  const selected = tf.tensor1d(positions, "int32");
  const off = { training: false };
  const g = tf.tidy(() => model.generatorLogits(model.encode("generator", inputs, off), selected, off));
  const d = model.config.sharing === "mlm"
    ? null
    : tf.tidy(() => model.discriminatorLogits(model.encode("discriminator", inputs, off), off));
  const out = { g: await g.data() as Float32Array, d: d ? await d.data() as Float32Array : null };
  tf.dispose([g, d ?? [], selected, inputs.inputIds, inputs.tokenTypeIds, inputs.attentionMask]);
  return out;
}

/** Bit-for-bit equality of two float arrays (Object.is: -0 ≠ 0, NaN = NaN). */
function assertSameBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${what}: element ${i} is ${a[i]} vs ${b[i]}`);
  }
}

const CASES: [string, RunConfig][] = [
  ["electra es", microConfig("es")],
  ["electra nes", microConfig("nes")],
  ["electra gdes", microConfig("gdes")],
  ["electra mlm", microConfig("mlm")],
  ["deberta es", debertaMicroConfig("es")],
  ["deberta gdes", debertaMicroConfig("gdes", { typeVocabSize: 2 })],
];

Deno.test("export → import → identical logits: pre-training in every sharing mode, and the classifier's encoder", async () => {
  for (const [name, cfg] of CASES) {
    const a = new Pretrainer(cfg, VOCAB);
    for (let s = 0; s < 2; s++) await a.trainStep(randomBatch(s)); // E_Δ ≠ 0; NES tables drift apart
    const dir = tempDir("rtdlab-export-");
    const folders = await exportModels(a, dir, MICRO_TOKENIZER);
    for (const f of folders) {
      for (const file of FILES) assert.ok(Deno.statSync(join(f, file)).isFile, `${name}: ${f}/${file}`);
      const vocab = Deno.readTextFileSync(join(f, "vocab.txt")).trimEnd().split("\n");
      assert.deepEqual(vocab.slice(0, 6), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "w0"]);
      assert.equal(vocab.length, 64);
      const tc = JSON.parse(Deno.readTextFileSync(join(f, "tokenizer_config.json")));
      assert.equal(tc.tokenizer_class, cfg.backbone === "deberta" ? "BertTokenizer" : "ElectraTokenizer");
      assert.equal(tc.do_lower_case, true);
      assert.equal(tc.mask_token, "[MASK]");
      assert.equal(tc.model_max_length, cfg.maxPositions);
    }

    // Another seed, so nothing matches until the checkpoint is loaded.
    const b = new Pretrainer(validateConfig(applyOverrides(cfg, { seed: 7 })), VOCAB);
    const { report } = loadInitWeights(b.model, await readInitFolders({ dir }, cfg.sharing));
    assert.deepEqual(report.unused, [], `${name}: every exported tensor is used`);
    const batch = randomBatch(9);
    const [la, lb] = [await logits(a.model, batch), await logits(b.model, batch)];
    assertSameBits(lb.g, la.g, `${name}: generator logits`);
    if (la.d) assertSameBits(lb.d!, la.d, `${name}: discriminator logits`);
    if (cfg.sharing === "gdes") {
      // E_Δ folded in exactly once: the discriminator reads its exported table bit for bit.
      const bb = cfg.backbone === "deberta" ? "deberta" : "electra";
      const eff = (m: RtdModel) => tf.tidy(() => m.embeddingTables("discriminator").word.dataSync());
      assertSameBits(eff(b.model), eff(a.model), `${name}: E_G + E_Δ`);
      const delta = b.model.params.get(`discriminator.${bb}.embeddings.word_embeddings_delta.weight`);
      assert.ok(tf.tidy(() => tf.max(tf.abs(delta)).dataSync()[0]) > 0, `${name}: E_Δ came back non-zero`);
    }

    // The discriminator (or MLM) folder alone is a fine-tuning checkpoint: its tokenizer, its encoder.
    const enc = await loadPretrainedEncoder(folders[0]);
    assert.equal(enc.tokenizer.vocabSize, 64);
    const clf = SequenceClassifier.fromPretrained(enc, 2, 0);
    const role = cfg.sharing === "mlm" ? "generator" : "discriminator";
    const inputs = batchTensors(batch.inputIds, batch, VOCAB.padId);
    const off = { training: false, emd: false };
    const want = tf.tidy(() => a.model.encode(role, inputs, off));
    const got = tf.tidy(() => clf.encoder.encode("discriminator", inputs, off));
    assertSameBits(await got.data(), await want.data(), `${name}: classifier encoder`);
    const heads = clf.loadReport!.unused.map((u) => u.slice(u.lastIndexOf(" ") + 1));
    assert.ok(heads.length > 0 && heads.every((n) => !/^(electra|deberta)\./.test(n)), heads.join(", "));
    tf.dispose([want, got, inputs.inputIds, inputs.tokenTypeIds, inputs.attentionMask]);
    clf.dispose();
    a.dispose();
    b.dispose();
  }
});

Deno.test("finetune runs on an export folder alone (no run folder around it)", async () => {
  const a = new Pretrainer(microConfig("gdes"), VOCAB);
  const [disc] = await exportModels(a, tempDir("rtdlab-export-"), MICRO_TOKENIZER);
  a.dispose();
  const task = syntheticSeparableTask();
  const taskDir = tempDir("rtdlab-task-");
  for (const split of ["train", "dev", "test"] as const) {
    const lines = task[split].map((e) => JSON.stringify({ text: e.text, label: task.labels[e.label] }));
    Deno.writeTextFileSync(join(taskDir, `${split}.jsonl`), lines.join("\n") + "\n");
  }
  const messages: string[] = [];
  const m = await runFinetune({
    runDir: disc,
    task: taskDir,
    seed: 0,
    hyper: { epochs: 1, batchSize: 16, maxLength: 16 },
    onMessage: (s) => messages.push(s),
  });
  assert.equal(m.model_dir, disc);
  assert.equal(m.sharing, "gdes");
  assert.ok(Deno.statSync(join(disc, "finetune", `${m.task}-s0`, "metrics.json")).isFile);
  assert.ok(
    messages.some((s) => /not used.*discriminator_predictions\.dense\.weight/.test(s)),
    messages.join("\n"),
  );
});

/** Copies an export folder, letting `edit` change its tensors. */
async function editedCopy(
  src: string,
  edit: (t: Map<string, { dtype: "F32" | "I32"; shape: number[]; data: Float32Array | Int32Array }>) => void,
): Promise<string> {
  const dir = tempDir("rtdlab-edited-");
  for (const f of FILES) if (f !== "model.safetensors") Deno.copyFileSync(join(src, f), join(dir, f));
  const { tensors } = await loadSafetensors(join(src, "model.safetensors"));
  edit(tensors);
  await saveSafetensors(join(dir, "model.safetensors"), tensors);
  return dir;
}

Deno.test("a folder with one tensor renamed or reshaped is refused by name; unused tensors are reported", async () => {
  const a = new Pretrainer(microConfig("gdes"), VOCAB);
  const exportDir = tempDir("rtdlab-export-");
  const [disc, gen] = await exportModels(a, exportDir, MICRO_TOKENIZER);
  const query = "electra.encoder.layer.0.attention.self.query.weight";
  const renamed = await editedCopy(disc, (t) => {
    t.set("electra.encoder.layer.0.attention.self.qry.weight", t.get(query)!);
    t.delete(query);
  });
  const inner = "electra.encoder.layer.0.intermediate.dense.weight"; // [64, 32]
  const reshaped = await editedCopy(disc, (t) => {
    t.get(inner)!.shape = [32, 64];
  });
  const renamedMsg = new RegExp(
    `${renamed}/model\\.safetensors: missing 1 tensor\\(s\\) the model needs: ${
      query.replaceAll(".", "\\.")
    } ` +
      `\\(tensors the model does not use: .*electra\\.encoder\\.layer\\.0\\.attention\\.self\\.qry\\.weight`,
  );
  const reshapedMsg = new RegExp(
    `${reshaped}/model\\.safetensors: size mismatch for ${inner.replaceAll(".", "\\.")}: ` +
      `the checkpoint has shape \\[32,64\\], the model needs \\[64,32\\]`,
  );
  // Fine-tuning from the folder ...
  for (const [dir, msg] of [[renamed, renamedMsg], [reshaped, reshapedMsg]] as const) {
    const enc = await loadPretrainedEncoder(dir);
    assert.throws(() => SequenceClassifier.fromPretrained(enc, 2, 0), msg);
  }
  // ... and pre-training from the pair, which leaves the model as it was.
  const b = new Pretrainer(microConfig("gdes", { seed: 3 }), VOCAB);
  const before = b.model.params.get(`generator.${query}`).dataSync().slice();
  for (const [dir, msg] of [[renamed, renamedMsg], [reshaped, reshapedMsg]] as const) {
    const folders = await readInitFolders({ discriminator: dir, generator: gen }, "gdes");
    assert.throws(() => loadInitWeights(b.model, folders), msg);
  }
  assertSameBits(b.model.params.get(`generator.${query}`).dataSync(), before, "nothing assigned");

  // A generator whose output layer is not its token table cannot be tied.
  const untied = await editedCopy(gen, (t) => {
    const w = t.get("generator_lm_head.weight")!;
    w.data = (w.data as Float32Array).map((x) => x * 2);
  });
  await assert.rejects(
    readInitFolders({ discriminator: disc, generator: untied }, "gdes").then((f) =>
      loadInitWeights(b.model, f)
    ),
    /generator_lm_head\.weight differs from electra\.embeddings\.word_embeddings\.weight; rtdlab ties/,
  );

  // A buffer transformers may save (position_ids, I64) is reported as not used, by name; nothing else.
  const withIds = await editedCopy(disc, (t) => {
    t.set("electra.embeddings.position_ids", { dtype: "I32", shape: [1, 16], data: new Int32Array(16) });
  });
  const { report } = loadInitWeights(
    b.model,
    await readInitFolders({ discriminator: withIds, generator: gen }, "gdes"),
  );
  assert.deepEqual(report.unused, [`${withIds}/model.safetensors: electra.embeddings.position_ids`]);

  // A bare ElectraModel checkpoint (names without "electra.", no heads) is an encoder all the same.
  const bare = await editedCopy(disc, (t) => {
    for (const n of [...t.keys()]) {
      const v = t.get(n)!;
      t.delete(n);
      if (n.startsWith("electra.")) t.set(n.slice("electra.".length), v);
    }
  });
  const clf = SequenceClassifier.fromPretrained(await loadPretrainedEncoder(bare), 2, 0);
  assert.deepEqual(clf.loadReport!.unused, []);
  assert.match(clf.loadReport!.notes.join("\n"), /bare encoder checkpoint/);
  clf.dispose();

  // A checkpoint of another family (here: BERT names) matches nothing: said in one line, not a wall of names.
  const bert = await editedCopy(disc, (t) => {
    for (const n of [...t.keys()]) {
      if (!n.startsWith("electra.")) continue;
      t.set(n.replace("electra.", "bert."), t.get(n)!);
      t.delete(n);
    }
  });
  const bertEnc = await loadPretrainedEncoder(bert);
  assert.throws(
    () => SequenceClassifier.fromPretrained(bertEnc, 2, 0),
    /holds none of the \d+ tensors the model needs \(is it an ELECTRA discriminator checkpoint\?\)/,
  );

  // Tokenizers: vocab.txt alone is enough (same ids); no tokenizer at all is refused.
  const vocabOnly = await editedCopy(disc, () => {});
  Deno.removeSync(join(vocabOnly, "tokenizer.json"));
  const tok = (await loadPretrainedEncoder(vocabOnly)).tokenizer;
  assert.deepEqual(tok.encode("w3 W17 w58 zz"), MICRO_TOKENIZER.encode("w3 W17 w58 zz"));
  Deno.removeSync(join(vocabOnly, "vocab.txt"));
  await assert.rejects(loadPretrainedEncoder(vocabOnly), /has no tokenizer\.json or vocab\.txt/);

  // A PyTorch pickle is refused: why, and the conversion to run.
  const pickled = tempDir("rtdlab-pickle-");
  Deno.copyFileSync(join(disc, "config.json"), join(pickled, "config.json"));
  Deno.writeFileSync(join(pickled, "pytorch_model.bin"), new Uint8Array([0x80, 0x02]));
  await assert.rejects(readHfModelFolder(pickled), (e: Error) => {
    assert.match(e.message, /pytorch_model\.bin but no model\.safetensors/);
    assert.match(e.message, /unpickling a file can run any code/);
    assert.match(e.message, /from transformers import ElectraForPreTraining as M; M\.from_pretrained\(/);
    assert.match(e.message, /save_pretrained\(.*safe_serialization=True\)/);
    return true;
  });
  await assert.rejects(loadPretrainedEncoder(pickled), /unpickling/);
  a.dispose();
  b.dispose();
});

const corpusDir = tempDir("rtdlab-corpus-");
writeGrammarCorpus(corpusDir, 8, 40);

function runConfig(sharing: SharingMode, steps: number): RunConfig {
  return validateConfig(applyOverrides(preset("tiny"), {
    sharing,
    corpus: corpusDir,
    tokenizerVocabSize: 100,
    maxPositions: 32,
    seqLength: 32,
    ...MICRO_SIZES,
    batchSize: 4,
    steps,
    warmupSteps: 2,
    learningRate: 3e-3,
    logEvery: 1,
    checkpointEvery: 5,
  }));
}

Deno.test("continued pre-training from an exported pair reproduces the next loss of resuming its run (ES, GDES)", async () => {
  for (const sharing of ["es", "gdes"] as const) {
    const runA = join(tempDir(), "a"), runB = join(tempDir(), "b");
    const cfg = runConfig(sharing, 6);
    (await pretrain({ config: cfg, outDir: runA })).trainer.dispose(); // ends at step 6: checkpoint + export/
    // The reference: resume the run for one more step (the schedule extended to 8, as B's below).
    const resumed = await pretrain({
      config: cfg,
      outDir: runA,
      resume: true,
      steps: 8,
      until: 7,
      noExport: true,
    });
    resumed.trainer.dispose();
    const next = (await readMetrics(join(runA, "metrics.jsonl"))).find((r) => r.step === 7)!;
    // The longer run has not ended: its step-6 export is kept under that step.
    const exportA = join(runA, "export-step-6");

    // A new run from runA's export (until 0: build, load, train nothing), then one step on the batch and
    // random streams of step 6 — what the resumed run drew there.
    const messages: string[] = [];
    const b = await pretrain({
      config: runConfig(sharing, 8),
      outDir: runB,
      initFrom: { dir: exportA },
      until: 0,
      noExport: true,
      onMessage: (m) => messages.push(m),
    });
    const saved = JSON.parse(Deno.readTextFileSync(join(runB, "config.json")));
    assert.deepEqual(saved.init_from, {
      discriminator: join(exportA, "discriminator"),
      generator: join(exportA, "generator"),
    });
    assert.ok(messages.some((m) => /^loaded \d+ tensors from /.test(m)), messages.join("\n"));
    const { data } = await prepareCorpus({
      corpus: corpusDir,
      tokenizer: join(runB, "tokenizer.json"),
      maxLength: 32,
      seed: cfg.seed,
      maxChars: cfg.corpusMaxChars,
    });
    const batch = new BatchSampler(data, cfg.batchSize, cfg.seed).batchAt(6);

    // Both networks at the loaded weights equal the run's own step-6 checkpoint, bit for bit (GDES: the
    // discriminator reads E_G + E_Δ exactly as before the export merged them: E_Δ folded in once).
    const { config: runCfg } = savedRunConfig(JSON.parse(Deno.readTextFileSync(join(runA, "config.json"))));
    const c = new Pretrainer(runCfg, b.trainer.vocab);
    await loadCheckpoint(join(runA, "checkpoints", "step-0000006"), c);
    const [lb, lc] = [await logits(b.trainer.model, batch), await logits(c.model, batch)];
    assertSameBits(lb.g, lc.g, `${sharing}: generator logits`);
    assertSameBits(lb.d!, lc.d!, `${sharing}: discriminator logits`);
    c.dispose();

    // The next step's losses. An export holds weights, not Adam moments, so only what a step computes
    // before its first optimiser update can match the resumed run exactly: L_MLM in every mode, and
    // under ES (one joint update) L_RTD too. Under GDES (decoupled) L_RTD comes after the generator's
    // update, which the resumed run takes with its saved moments and this run with fresh ones, so it
    // cannot match; what the discriminator reads before that update was compared bit for bit above.
    b.trainer.step = 6;
    const m = await b.trainer.trainStep(batch);
    assert.equal(m.lossMlm, next.loss_mlm, `${sharing}: next L_MLM`);
    if (sharing === "es") assert.equal(m.lossRtd, next.loss_rtd, "es: next L_RTD");
    b.trainer.dispose();
  }
});

Deno.test("--init-from refuses what it cannot start from, naming the folders", async () => {
  const empty = tempDir("rtdlab-empty-");
  await assert.rejects(
    pretrain({ config: runConfig("gdes", 4), outDir: join(tempDir(), "x"), initFrom: { dir: empty } }),
    /--init-from .*: expected model folders .*discriminator and .*generator \(an rtdlab export\/\)/,
  );
  await assert.rejects(
    pretrain({
      config: runConfig("gdes", 4),
      outDir: join(tempDir(), "x"),
      initFrom: { dir: join(empty, "no") },
    }),
    /--init-from .*\/no: no such folder$/,
  );
  const a = new Pretrainer(microConfig("es"), VOCAB);
  const [disc, gen] = await exportModels(a, tempDir("rtdlab-export-"), MICRO_TOKENIZER);
  a.dispose();
  // A start refused after the model's tokenizer is written (here: a corpus that is not there) takes it back.
  const refused = join(tempDir(), "refused");
  await assert.rejects(
    pretrain({
      config: { ...runConfig("es", 4), corpus: join(empty, "nope") },
      outDir: refused,
      initFrom: { discriminator: disc, generator: gen },
    }),
    /nope/,
  );
  assert.throws(() => Deno.statSync(refused), "a refused start leaves no run folder behind");
  await assert.rejects(readInitFolders({ discriminator: disc }, "es"), /missing --init-generator DIR/);
  await assert.rejects(
    readInitFolders({ discriminator: disc }, "mlm"),
    /the MLM baseline has no discriminator/,
  );
  // The two folders swapped: named as such, not as a fraction out of range.
  const swapped = await readInitFolders({ discriminator: gen, generator: disc }, "es");
  assert.throws(
    () => initConfig(runConfig("es", 4), swapped),
    /the generator \(.*discriminator\/config\.json, hidden 32\) is wider than the discriminator \(.*generator\/config\.json, hidden 16\).*swapped\?/,
  );
  // A size the folders decide cannot be set (never silently dropped); dropout and the length can.
  const folders = await readInitFolders({ discriminator: disc, generator: gen }, "es");
  for (const key of ["discriminator.hiddenSize", "vocabSize", "tokenizer"]) {
    assert.throws(
      () => initConfig(runConfig("es", 4), folders, { [key]: "8" }),
      new RegExp(
        `^Error: ${key}: a run started from model folders .* takes its sizes and tokenizer from them`,
      ),
    );
  }
  const set = initConfig({ ...runConfig("es", 4), dropout: 0.3 }, folders, { dropout: "0", seqLength: "8" });
  assert.deepEqual([set.dropout, set.seqLength, set.discriminator.hiddenSize], [0, 8, 32]);
  assert.equal(
    initConfig({ ...runConfig("es", 4), dropout: 0.3 }, folders).dropout,
    0.1,
    "the folders' dropout",
  );
  assert.throws(
    () => initConfig(runConfig("es", 4), folders, { seqLength: "32" }),
    /sequence length 32 is longer than the position table \(maxPositions 16\)/,
  );
  // A pair from different models is refused by the field they disagree on.
  const other = new Pretrainer(microConfig("es", { embeddingSize: 32 }), VOCAB);
  const [, otherGen] = await exportModels(other, tempDir("rtdlab-export-"), MICRO_TOKENIZER);
  other.dispose();
  const out = join(tempDir(), "run");
  await assert.rejects(
    pretrain({
      config: runConfig("es", 4),
      outDir: out,
      initFrom: { discriminator: disc, generator: otherGen },
    }),
    /generator\/config\.json and .*discriminator\/config\.json disagree on embeddingSize \(32 vs 16\)/,
  );
  assert.throws(() => Deno.statSync(join(out, "config.json")), "a refused start leaves no run behind");
  // A tokenizer that does not match the model's vocabulary is refused.
  const small = WordPieceTokenizer.fromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "x"]);
  await small.save(join(disc, "tokenizer.json"));
  await assert.rejects(
    loadPretrainedEncoder(disc),
    /tokenizer\.json has 6 tokens but .*config\.json says vocab_size 64/,
  );
});

Deno.test("a DeBERTa-v2 folder without the position table transformers leaves out loads into the classifier", async () => {
  // transformers' DebertaV2 with position_biased_input false has no deberta.embeddings.position_embeddings;
  // rtdlab's discriminator never reads that table, so its absence is reported, not refused.
  const a = new Pretrainer(debertaMicroConfig("nes"), VOCAB);
  await a.trainStep(randomBatch(3));
  const [disc] = await exportModels(a, tempDir("rtdlab-export-"), MICRO_TOKENIZER);
  const noPositions = await editedCopy(
    disc,
    (t) => t.delete("deberta.embeddings.position_embeddings.weight"),
  );
  const clf = SequenceClassifier.fromPretrained(await loadPretrainedEncoder(noPositions), 2, 0);
  const table = "discriminator.deberta.embeddings.position_embeddings.weight";
  assert.deepEqual(clf.loadReport!.initialised, [table]);
  assert.match(clf.loadReport!.notes.join("\n"), /never read/);
  const batch = randomBatch(4);
  const inputs = batchTensors(batch.inputIds, batch, VOCAB.padId);
  const want = tf.tidy(() => a.model.encode("discriminator", inputs, { training: false }));
  const got = tf.tidy(() => clf.encoder.encode("discriminator", inputs, { training: false }));
  assertSameBits(await got.data(), await want.data(), "encoder without the position table");
  // The generator's Enhanced Mask Decoder does read positions: there the table is required.
  const gen = await editedCopy(
    join(disc, "..", "generator"),
    (t) => t.delete("deberta.embeddings.position_embeddings.weight"),
  );
  const b = new Pretrainer(debertaMicroConfig("nes", { seed: 5 }), VOCAB);
  await assert.rejects(
    readInitFolders({ discriminator: noPositions, generator: gen }, "nes").then((f) =>
      loadInitWeights(b.model, f)
    ),
    new RegExp(
      `${gen}/model\\.safetensors: missing 1 tensor\\(s\\) the model needs: deberta\\.embeddings\\.position_embeddings`,
    ),
  );
  tf.dispose([want, got, inputs.inputIds, inputs.tokenTypeIds, inputs.attentionMask]);
  clf.dispose();
  a.dispose();
  b.dispose();
});

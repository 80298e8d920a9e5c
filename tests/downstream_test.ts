/**
 * Downstream evaluation: task loaders (packaged and user files, malformed files named by line),
 * seeded splits, metrics on hand-computed confusion matrices, the classification head learning a
 * separable task, and loading an exported encoder into a classifier.
 */

import assert from "node:assert/strict";
import { syntheticLexicon } from "../lib/text/synthetic.ts";
import { join } from "node:path";
import * as tf from "../lib/tf.ts";
import { initBackend } from "../lib/backend/mod.ts";
import {
  emailToText,
  type Example,
  loadTask,
  parseDelimited,
  stratifiedSplit,
  type TaskData,
} from "../lib/tasks/mod.ts";
import {
  classificationMetrics,
  constantBaseline,
  earlierResult,
  encodeExamples,
  type EvalRecord,
  finetune,
  finetuneFloors,
  improvesOn,
  loadPretrainedEncoder,
  metricsFromConfusion,
  predict,
  predictionCollapse,
  runFinetune,
  SequenceClassifier,
} from "../lib/finetune/mod.ts";
import { ElectraModel } from "../lib/model/electra.ts";
import { batchTensors, Pretrainer } from "../lib/train/pretrain.ts";
import { exportModels } from "../lib/train/checkpoint.ts";
import { WordPieceTokenizer } from "../lib/text/tokenizer.ts";
import { maxAbsDiff, microConfig, randomBatch, syntheticSeparableTask, tempDir, VOCAB } from "./_helpers.ts";

await initBackend("wasm");
const FIX = new URL("./fixtures/downstream/", import.meta.url).pathname;
const fx = (name: string) => join(FIX, name);

async function rejectsWith(p: Promise<unknown>, ...parts: (string | RegExp)[]): Promise<string> {
  let msg = "";
  await assert.rejects(p, (e: Error) => {
    msg = e.message;
    return true;
  });
  for (const part of parts) {
    if (typeof part === "string") assert.ok(msg.includes(part), `"${msg}" should mention "${part}"`);
    else assert.match(msg, part);
  }
  return msg;
}

// ---------------------------------------------------------------- user files

Deno.test("user JSONL, CSV (quotes, commas, multi-line fields), TSV pairs and chosen columns load", async () => {
  const j = await loadTask(fx("good.jsonl"));
  assert.deepEqual(j.labels, ["neg", "pos"]);
  assert.equal(j.train.length + j.dev.length + j.test.length, 40);
  assert.equal(j.pair, false);
  assert.match(j.train[0].id, /^good\.jsonl:\d+$/);

  const c = await loadTask(fx("good.csv"));
  assert.deepEqual(c.labels, ["0", "1"]);
  const all = [...c.train, ...c.dev, ...c.test];
  assert.equal(all.length, 12);
  assert.ok(all.some((e) => e.text.endsWith("was, really")), "comma inside a quoted field");
  const multi = all.find((e) => e.text.startsWith('she said "nice"'));
  assert.equal(multi?.text, 'she said "nice"\nand left');
  assert.equal(multi?.id, "good.csv:4", "a record's id is the line it starts on");

  const p = await loadTask(fx("pairs.tsv"));
  assert.equal(p.pair, true);
  assert.ok([...p.train, ...p.dev, ...p.test].every((e) => e.textB && e.textB.length > 0));

  const cols = await loadTask(fx("columns.csv"), { labelColumn: "y" });
  assert.deepEqual(cols.labels, ["neg", "pos"]);
  assert.equal(cols.train.length + cols.dev.length + cols.test.length, 10);
  await rejectsWith(
    loadTask(fx("columns.csv"), { textColumn: "body", labelColumn: "y" }),
    "columns.csv:2",
    "body",
  );
});

Deno.test("a folder of train/dev/test files is used as given", async () => {
  const t = await loadTask(fx("folder"));
  assert.equal(t.name, "folder");
  assert.deepEqual([t.train.length, t.dev.length, t.test.length], [20, 6, 6]);
  assert.equal(t.split.kind, "files");
  await rejectsWith(
    loadTask(fx("folder/train.jsonl"), {
      devFile: fx("unknown_label_dev.jsonl"),
      testFile: fx("folder/test.jsonl"),
    }),
    "unknown_label_dev.jsonl:2",
    '"meh"',
  );
});

Deno.test("malformed files: the error names the file and the line", async () => {
  await rejectsWith(loadTask(fx("bad_json.jsonl")), "bad_json.jsonl:3", "bad JSON on line 3");
  await rejectsWith(loadTask(fx("missing_label.jsonl")), "missing_label.jsonl:4", 'missing column "label"');
  // A header without the label column: said of the header, with the flag that names another.
  const noLabel = await Deno.makeTempFile({ suffix: ".csv" });
  await Deno.writeTextFile(noLabel, "text,y\nhello,1\nbye,0\n");
  await rejectsWith(
    loadTask(noLabel),
    '.csv: no "label" column (the label); found text, y: choose one with --label-column',
  );
  await Deno.remove(noLabel);
  // One number written two ways is refused, not split into two classes.
  const twoWays = await Deno.makeTempFile({ suffix: ".csv" });
  await Deno.writeTextFile(twoWays, "text,label\na,1\nb,1.0\nc,0\nd,0\n");
  await rejectsWith(loadTask(twoWays), 'labels "1" and "1.0" are one number written two ways');
  await Deno.remove(twoWays);
  await rejectsWith(loadTask(fx("empty_label.csv")), "empty_label.csv:4", "empty label on line 4");
  await rejectsWith(loadTask(fx("ragged.csv")), "ragged.csv:5", "line 5 has 3 fields but the header has 2");
  await rejectsWith(loadTask(fx("unterminated.csv")), "unterminated.csv:3", "unterminated");
  await rejectsWith(loadTask("no-such-task"), "unknown task", "sentiment-imdb");
  // Line numbers keep counting through quoted newlines.
  assert.throws(
    () => parseDelimited('a,b\n"x\ny",1\n"p\nq",2,3\n', "mem.csv", ","),
    /mem\.csv:4: line 4 has 3 fields/,
  );
});

// ---------------------------------------------------------------- splits

Deno.test("splits are seeded: same seed same split, another seed another; stratified", async () => {
  const ids = (t: TaskData) => [t.train, t.dev, t.test].map((s) => s.map((e) => e.id).join(","));
  const a = await loadTask(fx("good.jsonl"), { splitSeed: 1 });
  const b = await loadTask(fx("good.jsonl"), { splitSeed: 1 });
  const c = await loadTask(fx("good.jsonl"), { splitSeed: 2 });
  assert.deepEqual(ids(a), ids(b));
  assert.notDeepEqual(ids(a), ids(c));
  // 20 per class: 16/2/2 each.
  for (const [split, n] of [[a.train, 16], [a.dev, 2], [a.test, 2]] as const) {
    assert.equal(split.filter((e) => e.label === 0).length, n);
    assert.equal(split.filter((e) => e.label === 1).length, n);
  }
  const items = Array.from({ length: 100 }, (_, i) => i);
  const s1 = stratifiedSplit(items, (i) => i % 3, 5);
  assert.deepEqual(s1, stratifiedSplit(items, (i) => i % 3, 5));
  assert.equal(new Set(s1.flat()).size, 100, "every item lands in exactly one split");
  const capped = await loadTask(fx("good.jsonl"), { splitSeed: 1, maxTrain: 5, maxEval: 1 });
  assert.deepEqual([capped.train.length, capped.dev.length, capped.test.length], [5, 1, 1]);
});

// ---------------------------------------------------------------- packaged tasks

Deno.test("packaged tasks load with the right classes and no label leaks", async () => {
  const expect: [string, number, number][] = [
    ["sentiment-imdb", 2, 1000],
    ["sentiment-amazon", 2, 1000],
    ["sentiment-yelp", 2, 1000],
    ["brown-genre", 15, 0],
    ["wordnet-supersense", 45, 100_000],
  ];
  const loaded = new Map<string, TaskData>();
  for (const [name, classes, atLeast] of expect) {
    const t = await loadTask(name);
    loaded.set(name, t);
    const n = t.train.length + t.dev.length + t.test.length + (t.split.duplicatesDropped ?? 0);
    assert.equal(t.labels.length, classes, name);
    assert.ok(n >= atLeast && (!name.startsWith("sentiment") || n === 1000), `${name}: ${n} examples`);
    const seen = new Set([...t.train, ...t.dev, ...t.test].map((e) => e.label));
    assert.equal(seen.size, classes, `${name}: every class occurs`);
  }
  // Brown is split by file: no file contributes passages to two splits.
  const brown = loaded.get("brown-genre")!;
  const files = (xs: Example[]) => new Set(xs.map((e) => e.id.split(":")[0]));
  const [tr, dv, ts] = [files(brown.train), files(brown.dev), files(brown.test)];
  assert.ok([...dv, ...ts].every((f) => !tr.has(f)) && [...dv].every((f) => !ts.has(f)));

  const spam = await loadTask("spam");
  assert.deepEqual(spam.labels, ["ham", "spam"]);
  const texts = [...spam.train, ...spam.dev, ...spam.test];
  assert.ok(texts.length + (spam.split.duplicatesDropped ?? 0) === 6046, `${texts.length} emails`);
  for (const e of texts) {
    // Headers are gone (forwarded messages quoted in a body keep theirs, as content — except X-Spam-*).
    assert.ok(!/^(X-Spam-[\w-]+|Return-Path|Received):/.test(e.text), `header left in ${e.id}`);
    assert.ok(!/^X-Spam-[\w-]+:/m.test(e.text), `SpamAssassin verdict left in ${e.id}`);
    assert.ok(!e.text.includes("spamassassin.taint.org"), `recipient address left in ${e.id}`);
    assert.ok(!/<\/?(html|body|table|font)\b/i.test(e.text), `HTML left in ${e.id}`);
  }
});

Deno.test("echo tasks: labels are the property they name, balanced, in the echo language's words", async () => {
  const lex = syntheticLexicon("synthetic:echo");
  const nouns = new Set(lex.nouns.map((n) => n.singular));
  const words = (e: Example) => e.text.toLowerCase().replace(/\.$/, "").split(" ");
  for (const name of ["echo-intact", "echo-reflexive"]) {
    const t = await loadTask(name);
    const all = [...t.train, ...t.dev, ...t.test];
    assert.ok(all.length >= 1900, `${name}: ${all.length}`);
    const ones = all.filter((e) => e.label === 1).length / all.length;
    assert.ok(Math.abs(ones - 0.5) < 0.05, `${name}: ${ones} of class 1`);
    for (const e of all) {
      const w = words(e);
      assert.equal(w.length, 9, e.text);
      assert.ok([1, 3, 6, 8].every((i) => nouns.has(w[i])), `${name}: ${e.text}`);
      if (name === "echo-intact") {
        // Broken: exactly one of the two echoed phrases disagrees with its twin.
        const mismatches = Number(w[1] !== w[3]) + Number(w[6] !== w[8]);
        assert.equal(mismatches, e.label, `${name}: ${e.text} labelled ${t.labels[e.label]}`);
      } else {
        assert.ok(w[1] === w[3] && w[6] === w[8], e.text);
        assert.equal(Number(w[1] === w[6]), e.label, `${name}: ${e.text} labelled ${t.labels[e.label]}`);
      }
    }
    assert.deepEqual((await loadTask(name)).test, t.test, "a fixed split");
  }
});

Deno.test("emails: only the Subject header is kept; quoted-printable, multipart and HTML are decoded", () => {
  const raw = [
    "From spammer@example.com  Thu Aug 22 13:17:22 2002",
    "X-Spam-Status: Yes, hits=12.3",
    "Subject: =?utf-8?B?Q2hlYXAgd2F0Y2hlcw==?=",
    'Content-Type: multipart/alternative; boundary="BB"',
    "",
    "--BB",
    "Content-Type: text/html; charset=iso-8859-1",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "<html><body><p>Caf=E9 &amp; <b>deals</b></p><script>x()</script></body></html>",
    "--BB--",
    "",
  ].join("\r\n");
  const text = emailToText(new TextEncoder().encode(raw));
  assert.equal(text, "Cheap watches\nCafé & deals");
});

// ---------------------------------------------------------------- metrics

Deno.test("metrics match hand-computed values on known confusion matrices", () => {
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} vs ${b}`);
  // Binary [[5,1],[2,2]] (rows = truth): acc 7/10; F1 10/13 and 4/7; MCC 8/√504.
  let m = metricsFromConfusion([[5, 1], [2, 2]]);
  close(m.accuracy, 0.7);
  close(m.macro_f1, (10 / 13 + 4 / 7) / 2);
  close(m.mcc, 8 / Math.sqrt(504));
  // Three classes [[3,1,0],[0,2,2],[1,0,3]]: acc 8/12; F1 3/4, 4/7, 2/3; Gorodkin MCC 48/√(94·96).
  m = metricsFromConfusion([[3, 1, 0], [0, 2, 2], [1, 0, 3]]);
  close(m.accuracy, 8 / 12);
  close(m.macro_f1, (3 / 4 + 4 / 7 + 2 / 3) / 3);
  close(m.mcc, 48 / Math.sqrt(94 * 96));
  close(metricsFromConfusion([[0, 5], [5, 0]]).mcc, -1);
  close(metricsFromConfusion([[4, 0, 0], [0, 3, 0], [0, 0, 2]]).mcc, 1);
  // Everything predicted as one class: MCC is undefined, reported as 0.
  close(metricsFromConfusion([[6, 0], [4, 0]]).mcc, 0);
  // From label lists (a class absent from both truth and predictions is not averaged into macro-F1).
  m = classificationMetrics([0, 0, 1, 1], [0, 1, 1, 1], 3);
  close(m.accuracy, 0.75);
  close(m.macro_f1, (2 / 3 + 0.8) / 2);
  // The constant-classifier floor: 7 of class 2, 2 of class 0, 1 of class 1. Accuracy: the majority share;
  // MCC 0; macro-F1: class 2 everywhere, F1 2·0.7/(0.7 + 1) = 14/17 for class 2 and 0 for the other two
  // (all three occur in the truth).
  const base = constantBaseline([2, 2, 0, 2, 1, 2, 2, 0, 2, 2], 3);
  close(base.accuracy, 0.7);
  close(base.mcc, 0);
  close(base.macro_f1, 14 / 17 / 3);
  assert.equal(base.n, 10);
  // A class predicted but absent from the truth still counts in macro-F1, at F1 0.
  close(metricsFromConfusion([[2, 0, 1], [0, 2, 0], [0, 0, 0]]).macro_f1, (0.8 + 1 + 0) / 3);
  // One class for 95 % of the predictions (19 of 20) is flagged; 90 % is not.
  assert.equal(predictionCollapse([...new Array(19).fill(1), 0]).collapsed, true);
  assert.equal(predictionCollapse([...new Array(18).fill(1), 0, 0]).collapsed, false);
  // A fine-tune's floors: one split collapsed is enough to flag it; each split's constant classifier is
  // scored on that split's own labels (dev balanced, test 3 : 1).
  const preds = (labels: number[], pred: (i: number) => number) =>
    labels.map((label, index) => ({ index, label, pred: pred(index), probs: [0.5, 0.5] }));
  const dev = preds([0, 1, 0, 1, 0, 1, 0, 1, 0, 1], (i) => i % 2);
  const test = preds([...new Array(15).fill(0), 1, 1, 1, 1, 1], (i) => (i === 19 ? 1 : 0)); // 95 % class 0
  const floors = finetuneFloors(dev, test, ["neg", "pos"]);
  assert.deepEqual(floors.one_class, { dev: 0.5, test: 0.95, label: "neg", flagged: true });
  close(floors.constant.dev.accuracy, 0.5);
  close(floors.constant.test.accuracy, 0.75);
  assert.equal(floors.constant.test.n, 20);
});

// ---------------------------------------------------------------- model

const WORDS = Array.from({ length: 59 }, (_, i) => `w${i}`);
const TOKENIZER = WordPieceTokenizer.fromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ...WORDS]);

Deno.test("pairs encode as [CLS] a [SEP] b [SEP] with type ids, truncating the longer side first", () => {
  const ex: Example = { id: "x", text: "w1 w2 w3 w4 w5 w6", textB: "w7 w8", label: 0 };
  const [f] = encodeExamples(TOKENIZER, [ex], 9);
  const id = (w: string) => TOKENIZER.tokenToId(w)!;
  assert.deepEqual([...f.ids], [2, id("w1"), id("w2"), id("w3"), id("w4"), 3, id("w7"), id("w8"), 3]);
  assert.deepEqual([...f.typeIds], [0, 0, 0, 0, 0, 0, 1, 1, 1]);
  const [single] = encodeExamples(TOKENIZER, [{ id: "y", text: "w1 w2 w3 w4 w5 w6", label: 1 }], 5);
  assert.deepEqual([...single.ids], [2, id("w1"), id("w2"), id("w3"), 3]);
});

Deno.test("the classification head learns a separable synthetic task in four epochs", async () => {
  const task = syntheticSeparableTask();
  const before = tf.memory().numTensors;
  const clf = new SequenceClassifier(microConfig("nes", { dropout: 0 }), 2, new Map(), 0);
  const r = await finetune(clf, TOKENIZER, task, {
    seed: 0,
    // Layer-wise LR decay on: one AdamW per depth, one global clip.
    hyper: { epochs: 4, batchSize: 16, learningRate: 3e-3, maxLength: 16, patience: 0, layerDecay: 0.9 },
  });
  clf.dispose();
  assert.ok(r.test.accuracy >= 0.9, `test accuracy ${r.test.accuracy}`);
  assert.ok(r.history.length === 4 && r.best.dev.accuracy >= 0.9);
  assert.equal(tf.memory().numTensors, before, "no tensors leak");
});

/** Zeroes the classification head's output layer: every logit 0, one class for every example. */
function wreckHead(clf: SequenceClassifier): void {
  for (const n of ["classifier.out_proj.weight", "classifier.out_proj.bias"]) {
    const v = clf.params.get(n);
    tf.tidy(() => v.assign(tf.zerosLike(v)));
  }
}

Deno.test("fine-tuning keeps and tests the best dev evaluation's weights, not the last; patience stops after a worse one", async () => {
  const task = syntheticSeparableTask();
  const clf = new SequenceClassifier(microConfig("nes", { dropout: 0 }), 2, new Map(), 0);
  const steps = Math.ceil(task.train.length / 16);
  const r = await finetune(clf, TOKENIZER, task, {
    seed: 0,
    hyper: { epochs: 4, batchSize: 16, learningRate: 1e-2, maxLength: 16, patience: 1 },
    // The last step of epoch 2 wrecks the head: evaluation 2 is worse than evaluation 1.
    onProgress: (p) => p.step === 2 * steps && wreckHead(clf),
  });
  assert.ok(r.history[0].dev.accuracy > 0.6, `epoch 1 dev ${r.history[0].dev.accuracy}`);
  assert.equal(r.history[1].dev.accuracy, 0.5);
  assert.equal(r.history.length, 2, "patience 1: stops after one worse evaluation");
  assert.equal(r.stoppedEarly, true);
  assert.equal(r.best.step, steps);
  assert.deepEqual(r.dev, r.best.dev, "restored: the dev score is the best evaluation's");
  // The test predictions are the kept weights' on the test split.
  const again = await predict(clf, encodeExamples(TOKENIZER, task.test, 16), TOKENIZER.specialIds.pad, 16);
  assert.deepEqual(r.testPredictions.map((p) => [p.label, p.pred]), again.map((p) => [p.label, p.pred]));
  assert.deepEqual(r.testPredictions.map((p) => p.label), task.test.map((e) => e.label));
  clf.dispose();
});

Deno.test("the kept evaluation is chosen by the task's own metric, and a tie keeps the earlier weights", () => {
  const rec = (step: number, accuracy: number, mcc: number): EvalRecord => ({
    step,
    epoch: 1,
    train_loss: 0.5,
    dev: { accuracy, macro_f1: 0.5, mcc, n: 100 },
    lr: 1e-3,
    elapsed_s: 1,
  });
  const first = rec(10, 0.8, 0.1), later = rec(20, 0.7, 0.4);
  assert.equal(improvesOn(first, null, "mcc"), true);
  assert.equal(improvesOn(later, first, "mcc"), true, "better MCC, worse accuracy: an MCC task keeps it");
  assert.equal(improvesOn(later, first, "accuracy"), false);
  assert.equal(improvesOn(rec(30, 0.8, 0.1), first, "accuracy"), false, "a tie keeps the earlier weights");
});

Deno.test("evaluation runs without dropout: a classifier with dropout predicts as the same weights without it", async () => {
  const task = syntheticSeparableTask();
  const noisy = new SequenceClassifier(microConfig("nes", { dropout: 0.5 }), 2, new Map(), 0);
  const still = new SequenceClassifier(microConfig("nes", { dropout: 0 }), 2, new Map(), 0);
  still.params.assignFrom(await noisy.params.toHost(), "the dropout-0.5 classifier");
  const features = encodeExamples(TOKENIZER, task.dev, 16);
  const pad = TOKENIZER.specialIds.pad;
  const [a, b] = [await predict(noisy, features, pad, 16), await predict(still, features, pad, 16)];
  assert.deepEqual(a.map((p) => p.probs), b.map((p) => p.probs));
  noisy.dispose();
  still.dispose();
});

Deno.test("fine-tuning's schedule: the first warm-up step moves nothing; layer-wise decay scales each depth's first step", async () => {
  const task = syntheticSeparableTask();
  // Warm-up 0.5 of 4 steps: step 1 runs at lr 0.
  let clf = new SequenceClassifier(microConfig("nes", { dropout: 0 }), 2, new Map(), 0);
  const w = clf.params.get("classifier.out_proj.weight");
  const w0 = Array.from(w.dataSync());
  let afterFirst: number[] = [];
  await finetune(clf, TOKENIZER, { ...task, train: task.train.slice(0, 64) }, {
    seed: 0,
    hyper: { epochs: 1, batchSize: 16, learningRate: 1e-2, maxLength: 16, patience: 0, warmupFraction: 0.5 },
    onProgress: (p) => {
      if (p.step === 1) afterFirst = Array.from(w.dataSync());
    },
  });
  assert.deepEqual(afterFirst, w0);
  clf.dispose();
  // One step, no warm-up, no clip, no decay: Adam's first step moves each weight by about its rate, so the
  // largest move at each depth is lr · d^(top − depth) (the head at depth top, the embeddings at 0).
  clf = new SequenceClassifier(microConfig("nes", { dropout: 0 }), 2, new Map(), 0);
  const before = await clf.params.toHost();
  const d = 0.5, top = clf.encoder.config.discriminator.numLayers + 1;
  await finetune(clf, TOKENIZER, { ...task, train: task.train.slice(0, 16) }, {
    seed: 0,
    hyper: {
      epochs: 1,
      batchSize: 16,
      learningRate: 1e-2,
      maxLength: 16,
      patience: 0,
      warmupFraction: 0,
      weightDecay: 0,
      layerDecay: d,
      clipNorm: 0,
    },
  });
  const after = await clf.params.toHost();
  const largestMove = (name: string) => maxAbsDiff(before.get(name)!.data, after.get(name)!.data);
  const named = (f: (n: string) => boolean) => clf.params.names().find(f)!;
  const head = largestMove("classifier.out_proj.weight");
  const emb = largestMove(named((n) => n.endsWith("embeddings.word_embeddings.weight")));
  const l0 = largestMove(named((n) => n.includes(".encoder.layer.0.output.dense.weight")));
  const near = (x: number, want: number, what: string) =>
    assert.ok(Math.abs(x - want) <= 0.1 * want, `${what}: ${x} vs ${want}`);
  near(emb / head, d ** top, "embeddings / head");
  near(l0 / head, d ** (top - 1), "layer 0 / head");
  clf.dispose();
});

Deno.test("an exported discriminator (GDES: E_G + E_Δ merged) and the MLM encoder load into the classifier", async () => {
  for (const sharing of ["gdes", "mlm"] as const) {
    const run = tempDir("rtdlab-ft-run-");
    const cfg = microConfig(sharing);
    const trainer = new Pretrainer(cfg, VOCAB);
    await trainer.trainStep(randomBatch(1, 2, 16, 3)); // E_Δ ≠ 0 afterwards
    await exportModels(trainer, join(run, "export"), TOKENIZER);
    await TOKENIZER.save(join(run, "tokenizer.json"));
    const enc = await loadPretrainedEncoder(run);
    assert.equal(enc.source, sharing === "mlm" ? "mlm" : "discriminator");
    // The other kind's model is named as absent from a finished run, with the --source that works.
    await assert.rejects(
      loadPretrainedEncoder(run, { source: sharing === "mlm" ? "discriminator" : "mlm" }),
      sharing === "mlm"
        ? /export\/ holds mlm, not discriminator: it is an MLM run \(no discriminator\); leave --source out, or give --source mlm/
        : /export\/ holds discriminator and generator, not mlm: it is an RTD run \(no MLM model\); leave --source out/,
    );
    assert.equal(enc.sharing, sharing);
    const clf = SequenceClassifier.fromPretrained(enc, 3, 0);
    const batch = randomBatch(2, 2, 16, 3);
    const inputs = batchTensors(batch.inputIds, batch, VOCAB.padId);
    const role = sharing === "mlm" ? "generator" : "discriminator";
    const want = tf.tidy(() => trainer.model.encode(role, inputs, { training: false }));
    const got = tf.tidy(() => clf.encoder.encode("discriminator", inputs, { training: false }));
    assert.ok(maxAbsDiff(await want.data(), await got.data()) < 1e-5, sharing);
    assert.equal(clf.depth("discriminator.electra.embeddings.word_embeddings.weight"), 0);
    assert.equal(clf.depth("discriminator.electra.encoder.layer.0.output.dense.weight"), 1);
    assert.equal(clf.depth("classifier.out_proj.weight"), cfg.discriminator.numLayers + 1);
    const logits = tf.tidy(() => clf.logits(inputs, { training: false }));
    assert.deepEqual(logits.shape, [2, 3]);
    tf.dispose([want, got, logits, ...Object.values(inputs)]);
    clf.dispose();
    trainer.dispose();
  }
  const e = new ElectraModel(microConfig("es"), 0, { encoderOnly: true });
  assert.ok(e.params.names().every((n) => n.startsWith("discriminator.electra.")));
  assert.throws(() => e.prefix("generator"), /no generator/);
  e.dispose();
  await rejectsWith(loadPretrainedEncoder(tempDir()), "tokenizer.json");
  // A model folder with a torn config.json (and its tokenizer): the file is named, not "finish the run".
  const torn = tempDir();
  Deno.writeTextFileSync(join(torn, "config.json"), '{"model_type": "elec');
  Deno.writeTextFileSync(join(torn, "tokenizer.json"), "{}");
  await rejectsWith(loadPretrainedEncoder(torn), "config.json cannot be read (");
});

Deno.test("runFinetune writes metrics.json and predictions.jsonl for a user file", async () => {
  const run = tempDir("rtdlab-ft-run-");
  // The fixture's words, so the tokenizer covers them.
  const words = new Set<string>();
  for (const line of Deno.readTextFileSync(fx("good.jsonl")).trim().split("\n")) {
    for (const w of JSON.parse(line).text.split(" ")) words.add(w);
  }
  const vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ...words];
  while (vocab.length < 64) vocab.push(`x${vocab.length}`);
  const tokenizer = WordPieceTokenizer.fromVocab(vocab);
  const trainer = new Pretrainer(microConfig("es"), VOCAB);
  await exportModels(trainer, join(run, "export"), tokenizer);
  trainer.dispose();
  await tokenizer.save(join(run, "tokenizer.json"));
  const m = await runFinetune({
    runDir: run,
    task: fx("good.jsonl"),
    seed: 3,
    hyper: { epochs: 2, batchSize: 8, maxLength: 16, learningRate: 1e-3 },
  });
  const out = join(run, "finetune", "good-s3");
  const saved = JSON.parse(await Deno.readTextFile(join(out, "metrics.json")));
  assert.equal(saved.task, "good");
  assert.equal(saved.seed, 3);
  assert.equal(saved.test.n, 4);
  assert.deepEqual(saved.test, m.test);
  const preds = (await Deno.readTextFile(join(out, "predictions.jsonl"))).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert.equal(preds.filter((p) => p.split === "test").length, 4);
  assert.ok(preds.every((p) => ["neg", "pos"].includes(p.pred) && p.probs.length === 2));
  // Beside every score, the floor it must clear: one class for every test example scores the majority share.
  const test = preds.filter((p) => p.split === "test");
  const majority = Math.max(...["neg", "pos"].map((c) => test.filter((p) => p.label === c).length)) /
    test.length;
  assert.equal(saved.constant.test.accuracy, majority);
  assert.equal(saved.constant.test.mcc, 0);
  assert.equal(saved.constant.dev.n, saved.dev.n);

  // The same checkpoint/task/seed again: refused before training, the earlier result left as it was.
  const before = await Deno.readTextFile(join(out, "metrics.json"));
  const again = {
    runDir: run,
    task: fx("good.jsonl"),
    seed: 3,
    hyper: { epochs: 1, batchSize: 8, maxLength: 16 },
  };
  await assert.rejects(
    () => runFinetune(again),
    /good-s3 already holds a fine-tuning result \(metrics\.json\); pass --force to replace it or choose another --out/,
  );
  assert.equal(await Deno.readTextFile(join(out, "metrics.json")), before);
  // Another --out keeps both; --force replaces.
  const other = join(run, "finetune", "good-s3-1epoch");
  assert.equal((await runFinetune({ ...again, outDir: other })).hyper.epochs, 1);
  assert.equal(JSON.parse(await Deno.readTextFile(join(out, "metrics.json"))).hyper.epochs, 2);
  await runFinetune({ ...again, force: true });
  assert.equal(JSON.parse(await Deno.readTextFile(join(out, "metrics.json"))).hyper.epochs, 1);
  // A --max-length past the encoder's position table is refused (not cut short), and writes nothing.
  const tooLong = join(run, "finetune", "too-long");
  const maxPositions = microConfig("es").maxPositions;
  await assert.rejects(
    () => runFinetune({ ...again, outDir: tooLong, hyper: { ...again.hyper, maxLength: maxPositions + 1 } }),
    new RegExp(`--max-length ${maxPositions + 1} is longer than the encoder's position table`),
  );
  assert.equal(await Deno.stat(tooLong).then(() => true, () => false), false);

  // Stopped by a signal: written, marked interrupted (compare re-runs it), and replaced by the next call.
  const stopped = new AbortController();
  stopped.abort();
  const cut = await runFinetune({ ...again, outDir: join(run, "finetune", "cut"), signal: stopped.signal });
  assert.equal(cut.interrupted, true);
  assert.equal(cut.steps, 0);
  assert.equal(cut.best.epoch, 1, "stopped in its first epoch, not an epoch 0");
  const cutFile = join(run, "finetune", "cut", "metrics.json");
  assert.equal(await earlierResult(cutFile), "interrupted");
  assert.equal(await earlierResult(join(out, "metrics.json")), "finished");
  const redone = await runFinetune({ ...again, outDir: join(run, "finetune", "cut") });
  assert.equal(redone.interrupted, false);
  assert.equal(await earlierResult(cutFile), "finished");
  // A damaged result is named and kept, never taken for a finished or a missing one.
  await Deno.writeTextFile(cutFile, '{"format": "rtdlab-fine');
  assert.match(JSON.stringify(await earlierResult(cutFile)), /unreadable/);
  await assert.rejects(
    () => runFinetune({ ...again, outDir: join(run, "finetune", "cut") }),
    /cut\/metrics\.json cannot be read \(.*\); move it away, or pass --force to replace it/,
  );
  assert.equal(await Deno.readTextFile(cutFile), '{"format": "rtdlab-fine');
});

/**
 * `deno task sweep` and the T = 1 evaluation: grid expansion and validation, what a point still needs
 * (a finished point is skipped), evaluateRtd's numbers on micro models, and a whole sweep of two tiny
 * points end to end.
 */

import { checkBackend } from "../lib/backend/preflight.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "../lib/tf.ts";
import { initBackend } from "../lib/backend/mod.ts";
import { Pretrainer } from "../lib/train/pretrain.ts";
import { bootstrapSe, evaluateRtd, holdOut, pairedSe, sequenceBatches } from "../lib/train/evaluate.ts";
import { binaryEntropy } from "../lib/train/rtd_metrics.ts";
import { checkData, expandSweep, parseGrid, parsePoint, type SweepSpec } from "../lib/sweep/grid.ts";
import {
  EVAL_FILE,
  type EvalFile,
  medianTokensPerSecond,
  type PointResult,
  pointState,
  sameRunConfig,
  trainingSeconds,
} from "../lib/sweep/runs.ts";
import { tailMean } from "../lib/train/rtd_metrics.ts";
import { formatMeanStd, groupResults, runCurves } from "../lib/sweep/report.ts";
import { pretrain } from "../lib/train/run.ts";
import { evaluateRunDir } from "../lib/report/trained.ts";
import { readMetrics } from "../lib/train/run.ts";
import { setTimeout as delay } from "node:timers/promises";
import type { MetricsRecord } from "../lib/train/run.ts";
import { debertaMicroConfig, MICRO_SIZES, microConfig, randomBatch, tempDir, VOCAB } from "./_helpers.ts";
import {
  crossBase,
  crossFigure,
  crossGroups,
  crossKeys,
  crossMarkdown,
  type CrossMove,
  type CrossReading,
  crossReport,
  crossSweep,
  crossTables,
  type SweepCross,
  writeCross,
} from "../lib/sweep/cross.ts";

await initBackend("wasm");
const CACHE = tempDir("rtdlab-cache-");
Deno.env.set("RTDLAB_CACHE", CACHE);

const spec = (over: Partial<SweepSpec> = {}): SweepSpec => ({
  config: "tiny",
  sets: [],
  grid: [],
  points: [],
  seeds: [0],
  holdout: 64,
  ...over,
});

// ---- grid expansion ----

Deno.test("sweep grid: cartesian product in order, seeds outermost, names, labels and pretrain flags", () => {
  const points = expandSweep(spec({
    sets: [["steps", "200"]],
    grid: [parseGrid("learningRate=3e-4,1e-3"), parseGrid("corpus=gutenberg,synthetic:agreement:distance=5")],
    seeds: [0, 1],
  }));
  assert.deepEqual(points.map((p) => p.name), [
    "learningRate=3e-4_corpus=gutenberg_s0",
    "learningRate=3e-4_corpus=synthetic-agreement-distance=5_s0",
    "learningRate=1e-3_corpus=gutenberg_s0",
    "learningRate=1e-3_corpus=synthetic-agreement-distance=5_s0",
    "learningRate=3e-4_corpus=gutenberg_s1",
    "learningRate=3e-4_corpus=synthetic-agreement-distance=5_s1",
    "learningRate=1e-3_corpus=gutenberg_s1",
    "learningRate=1e-3_corpus=synthetic-agreement-distance=5_s1",
  ]);
  const p = points[1];
  assert.equal(p.label, "learningRate=3e-4 · corpus=synthetic:agreement:distance=5");
  assert.equal(p.group, "learningRate=3e-4_corpus=synthetic-agreement-distance=5");
  assert.deepEqual(p.values, { learningRate: "3e-4", corpus: "synthetic:agreement:distance=5" });
  assert.equal(p.config.learningRate, 3e-4);
  assert.equal(p.config.corpus, "synthetic:agreement:distance=5");
  assert.equal(p.config.steps, 200);
  assert.equal(p.config.heldOutSequences, 64);
  // Bookkeeping follows steps; science keys keep the preset's values.
  assert.equal(p.config.logEvery, 2);
  assert.equal(p.config.checkpointEvery, 20);
  assert.equal(p.config.warmupSteps, 30);
  assert.equal(points[4].config.seed, 1);
  assert.deepEqual(p.args, [
    "--config",
    "tiny",
    "--set",
    "steps=200",
    "--set",
    "learningRate=3e-4",
    "--set",
    "corpus=synthetic:agreement:distance=5",
    "--set",
    "logEvery=2",
    "--set",
    "checkpointEvery=20",
    "--set",
    "seed=0",
    "--set",
    "heldOutSequences=64",
  ]);
  // Nothing swept: one point.
  assert.deepEqual(expandSweep(spec()).map((x) => [x.name, x.label]), [["base_s0", "base"]]);
});

Deno.test("sweep grid: --point rows cross the grid; preset picks the backbone; vocabSize means the trained vocabulary", () => {
  const points = expandSweep(spec({
    points: [
      parsePoint("discriminator.hiddenSize=64,discriminator.intermediateSize=256"),
      parsePoint("discriminator.hiddenSize=128,discriminator.intermediateSize=512"),
    ],
    grid: [parseGrid("preset=tiny,deberta-tiny")],
    sets: [["logEvery", "7"]],
  }));
  assert.deepEqual(points.map((p) => p.label), [
    "discriminator.hiddenSize=64 · discriminator.intermediateSize=256 · preset=tiny",
    "discriminator.hiddenSize=64 · discriminator.intermediateSize=256 · preset=deberta-tiny",
    "discriminator.hiddenSize=128 · discriminator.intermediateSize=512 · preset=tiny",
    "discriminator.hiddenSize=128 · discriminator.intermediateSize=512 · preset=deberta-tiny",
  ]);
  assert.deepEqual(points.map((p) => p.config.backbone), ["electra", "deberta", "electra", "deberta"]);
  assert.deepEqual(points.map((p) => p.config.discriminator.hiddenSize), [64, 64, 128, 128]);
  assert.equal(points[1].args[1], "deberta-tiny");
  assert.equal(points[1].config.logEvery, 7, "a given logEvery is kept");

  const v = expandSweep(spec({ grid: [parseGrid("vocabSize=2048,8192")] }));
  assert.deepEqual(v.map((p) => p.config.tokenizerVocabSize), [2048, 8192]);
  assert.ok(v[0].args.includes("tokenizerVocabSize=2048"));
  assert.throws(
    () => expandSweep(spec({ config: "electra-small", grid: [parseGrid("vocabSize=2048")] })),
    /vocabSize comes from the tokenizer "bert-base-uncased"/,
  );
  // Either backbone as the base config.
  const d = expandSweep(spec({ config: "deberta-tiny", grid: [parseGrid("sharing=es,gdes")] }));
  assert.deepEqual(d.map((p) => [p.config.backbone, p.config.sharing]), [["deberta", "es"], [
    "deberta",
    "gdes",
  ]]);
});

Deno.test("sweep grid: bad input is refused before anything runs, naming the problem", () => {
  const cases: [() => unknown, RegExp][] = [
    [() => parseGrid("learningRate"), /--grid needs KEY=VALUE, got "learningRate"/],
    [() => parseGrid("learningRate=1e-3,,3e-3"), /--grid learningRate: empty value/],
    [() => parseGrid("learningRate=1e-3,1e-3"), /value "1e-3" is repeated/],
    [() => parseGrid("learningRate=1e-3,0.001"), /value "0.001" is repeated \("1e-3" is the same number\)/],
    [() => parsePoint("a=1,a=2"), /a is given twice/],
    [
      () => expandSweep(spec({ grid: [parseGrid("learningRat=1e-3")] })),
      /point "learningRat=1e-3": unknown config key "learningRat"/,
    ],
    [
      () => expandSweep(spec({ grid: [parseGrid("learningRate=fast")] })),
      /point "learningRate=fast": config key "learningRate" needs a number, got "fast"/,
    ],
    [
      () => expandSweep(spec({ grid: [parseGrid("learningRate=-1")] })),
      /config learningRate must be a positive number, got -1/,
    ],
    [() => expandSweep(spec({ grid: [parseGrid("beta2=1")] })), /config beta2 must be in \[0, 1\), got 1/],
    [
      () => expandSweep(spec({ grid: [parseGrid("warmupSteps=2.5")] })),
      /warmupSteps must be a non-negative integer/,
    ],
    [
      () => expandSweep(spec({ grid: [parseGrid("generatorLayers=0")] })),
      /generatorLayers must be a positive integer or null/,
    ],
    [
      () => expandSweep(spec({ grid: [parseGrid("sharing=es,xes")] })),
      /point "sharing=xes": unknown sharing mode "xes"/,
    ],
    [
      () => expandSweep(spec({ grid: [parseGrid("discriminator.numHeads=3")] })),
      /not divisible by 3 attention heads/,
    ],
    [
      () => expandSweep(spec({ grid: [parseGrid("maskSelectProb=0.15,1.5")] })),
      /maskSelectProb=1.5.*must be in \[0, 1\]/,
    ],
    [() => expandSweep(spec({ grid: [parseGrid("preset=tiny,small")] })), /unknown preset "small"/],
    [
      () => expandSweep(spec({ grid: [parseGrid("corpus=synthetic:nope")] })),
      /unknown synthetic language "nope"/,
    ],
    [() => expandSweep(spec({ grid: [parseGrid("seed=0,1")] })), /seed cannot be swept.*use --seeds/],
    [
      () => expandSweep(spec({ sets: [["heldOutSequences", "3"]] })),
      /--set heldOutSequences: .*use --holdout/,
    ],
    [() => expandSweep(spec({ sets: [["steps", "20"]] })), /point "base": warmupSteps 30 >= steps 20/],
    [
      () =>
        expandSweep(spec({ sets: [["learningRate", "1e-3"]], grid: [parseGrid("learningRate=1e-3,3e-3")] })),
      /learningRate is both swept and fixed with --set/,
    ],
    [
      () => expandSweep(spec({ grid: [parseGrid("learningRate=1e-3"), parseGrid("learningRate=3e-3")] })),
      /--grid learningRate is given twice/,
    ],
    [() => expandSweep(spec({ points: [parsePoint("steps=100"), parsePoint("steps=100")] })), /is repeated/],
    [
      () => expandSweep(spec({ grid: [parseGrid("corpus=synthetic:plain,synthetic-plain")] })),
      /would share the folder name "corpus=synthetic-plain_s0"/,
    ],
    [() => expandSweep(spec({ seeds: [0, 0] })), /--seeds: a seed is repeated/],
    [() => expandSweep(spec({ config: "huge" })), /unknown config "huge"/],
  ];
  for (const [f, re] of cases) assert.throws(f, re);
});

Deno.test("sweep grid: a missing corpus folder or tokenizer file is named before any run starts", async () => {
  const points = expandSweep(spec({ grid: [parseGrid("corpus=gutenberg,no/such/folder")] }));
  await assert.rejects(
    () => checkData(points),
    /point "corpus=no\/such\/folder": unknown corpus "no\/such\/folder"/,
  );
  const tok = expandSweep(spec({ sets: [["tokenizer", "missing/tokenizer.json"]] }));
  await assert.rejects(() => checkData(tok), /tokenizer "missing\/tokenizer.json" is not a file/);
  await checkData(expandSweep(spec({ grid: [parseGrid("corpus=gutenberg,synthetic:plain")] })));
});

// ---- held-out sequences and evaluateRtd ----

Deno.test("holdOut: a seeded, disjoint split; 0 keeps the data as it is; too many is an error", () => {
  const L = 4, count = 20;
  const data = {
    length: L,
    count,
    inputIds: Int32Array.from({ length: count * L }, (_, i) => Math.floor(i / L)),
    tokenTypeIds: new Int32Array(count * L),
  };
  const rows = (d: { inputIds: Int32Array; count: number }) =>
    Array.from({ length: d.count }, (_, i) => d.inputIds[i * L]);
  const a = holdOut(data, 5, 0);
  assert.equal(a.heldOut.count, 5);
  assert.equal(a.train.count, 15);
  assert.deepEqual([...rows(a.train), ...rows(a.heldOut)].sort((x, y) => x - y), rows(data));
  assert.deepEqual(rows(holdOut(data, 5, 0).heldOut), rows(a.heldOut), "same seed, same split");
  assert.notDeepEqual(rows(holdOut(data, 5, 1).heldOut), rows(a.heldOut), "another seed, another split");
  assert.equal(holdOut(data, 0, 0).train, data);
  assert.throws(() => holdOut(data, 11, 0), /more than half of the corpus's 20 sequences/);
  assert.deepEqual(sequenceBatches(a.heldOut, 2).map((b) => b.batch), [2, 2, 1]);
});

/** A micro trainer; dropout 0 is irrelevant (evaluation runs without dropout) but keeps it plain. */
function micro(overrides: Record<string, unknown> = {}) {
  return new Pretrainer(microConfig("es", { seed: 3, ...overrides }), VOCAB);
}

const batches = [randomBatch(1, 4), randomBatch(2, 4), randomBatch(3, 3)];

Deno.test("evaluateRtd: AUC in [0, 1], gain = base rate − loss, base rate = H(replaced fraction), counts add up", async () => {
  const t = micro();
  try {
    const r = await evaluateRtd(t, batches);
    assert.equal(r.temperature, 1);
    assert.equal(r.sequences, 11);
    assert.equal(r.tokens, 11 * 13, "16 positions minus 3 pads per sequence");
    assert.ok(r.selected > 0 && r.selected < r.tokens);
    assert.ok(r.discAuc !== null && r.discAuc >= 0 && r.discAuc <= 1, `AUC ${r.discAuc}`);
    assert.equal(r.baseRate, binaryEntropy(r.replacedFrac!));
    assert.equal(r.rtdGain, r.baseRate! - r.lossRtd!);
    assert.ok(r.lossMlm > 0 && r.genAcc! >= 0 && r.genAcc! <= 1);
    // The replaced tokens are the selected ones whose sample differs from the original.
    assert.ok(Math.abs(r.replacedFrac! * r.tokens - r.selected * (1 - r.genAcc!)) < 1e-9);
    // Standard errors over sequences (bootstrap): present, positive, and smaller with more sequences.
    assert.ok(r.discAucSe! > 0 && r.discAucSe! < 0.5 && r.rtdGainSe! > 0, `${r.discAucSe} ${r.rtdGainSe}`);
    const many = await evaluateRtd(t, Array.from({ length: 10 }, (_, k) => randomBatch(10 + k, 4)));
    assert.ok(many.discAucSe! < r.discAucSe!, `40 sequences: ${many.discAucSe} vs 11: ${r.discAucSe}`);
    const few = await evaluateRtd(t, batches.slice(0, 2));
    assert.equal(few.sequences, 8);
    assert.equal(few.discAucSe, null, "below 10 sequences the resamples are too few to give a spread");
    assert.equal(few.rtdGainSe, null);
  } finally {
    t.dispose();
  }
});

Deno.test("evaluateRtd: a row of padding alone is not counted as an evaluated sequence", async () => {
  const t = micro();
  try {
    const b = randomBatch(4, 3);
    b.inputIds.fill(0, 2 * b.length); // the third row: all padding
    const r = await evaluateRtd(t, [b]);
    assert.equal(r.sequences, 2);
    assert.equal(r.tokens, 2 * 13);
    // Nor is it scored: the same two rows without it give the same numbers (padding counted as a real
    // token would move the AUC and the loss).
    const two = {
      ...b,
      batch: 2,
      inputIds: b.inputIds.slice(0, 2 * b.length),
      tokenTypeIds: b.tokenTypeIds.slice(0, 2 * b.length),
    };
    const s = await evaluateRtd(t, [two]);
    for (const k of ["discAuc", "lossRtd", "rtdGain", "replacedFrac", "lossMlm"] as const) {
      assert.ok(Math.abs(r[k]! - s[k]!) < 1e-6, `${k}: ${r[k]} with the padding row, ${s[k]} without`);
    }
  } finally {
    t.dispose();
  }
});

Deno.test("evaluateRtd: each batch draws its own masks and samples (the same batch twice is two readings)", async () => {
  const t = micro();
  try {
    const b = randomBatch(4, 4);
    const once = await evaluateRtd(t, [b]), twice = await evaluateRtd(t, [b, b]);
    assert.equal(twice.sequences, 2 * once.sequences);
    assert.notEqual(twice.lossRtd, once.lossRtd, "the second copy drew the first one's masks and samples");
  } finally {
    t.dispose();
  }
});

Deno.test("bootstrapSe resamples whole sequences: copies of one sequence have no spread", () => {
  // Ten copies of one sequence: every resample is the same pooled set, so both errors are 0.
  // (Resampling tokens would mix its replaced and original tokens in other proportions.)
  const one = { scores: [2, -1, 0.5, -3, 1], labels: [1, 0, 1, 0, 0] };
  const scores: number[] = [], labels: number[] = [], seqs = [];
  for (let k = 0; k < 10; k++) {
    seqs.push({ from: scores.length, to: scores.length + 5, bce: 2.5, tokens: 5, replaced: 2 });
    scores.push(...one.scores);
    labels.push(...one.labels);
  }
  const same = bootstrapSe(seqs, scores, labels, 0);
  assert.ok(same.auc! < 1e-12 && same.gain! < 1e-12, JSON.stringify(same)); // 0 up to the mean's rounding
  // Sequences that differ do spread.
  seqs[0] = { ...seqs[0], bce: 1, replaced: 1 };
  labels[1] = 1;
  const se = bootstrapSe(seqs, scores, labels, 0);
  assert.ok(se.auc! > 0 && se.gain! > 0, JSON.stringify(se));
});

Deno.test("evaluateRtd: a constant discriminator at the replaced fraction scores AUC 0.5 and gain 0", async () => {
  const t = micro();
  try {
    const first = await evaluateRtd(t, batches);
    const p = first.replacedFrac!;
    const w = t.model.params.get("discriminator.discriminator_predictions.dense_prediction.weight");
    const b = t.model.params.get("discriminator.discriminator_predictions.dense_prediction.bias");
    w.assign(tf.zerosLike(w));
    b.assign(tf.fill(b.shape, Math.log(p / (1 - p))));
    const r = await evaluateRtd(t, batches);
    assert.equal(r.replacedFrac, p, "D's weights do not change the corruption");
    assert.equal(r.discAuc, 0.5);
    assert.equal(r.discAucSe, 0, "a constant scores AUC 0.5 in every resample");
    assert.ok(Math.abs(r.rtdGain!) < 1e-6, `gain ${r.rtdGain}`);
    assert.ok(Math.abs(r.lossRtd! - binaryEntropy(p)) < 1e-6);
  } finally {
    t.dispose();
  }
});

Deno.test("evaluateRtd: T = 1 whatever the run's samplingTemperature; deterministic for a seed", async () => {
  const t1 = micro();
  const t2 = micro({ samplingTemperature: 2 });
  try {
    const a = await evaluateRtd(t1, batches, { seed: 7 });
    const b = await evaluateRtd(t2, batches, { seed: 7 });
    assert.deepEqual(b, a, "a run trained at T = 2 is judged on the same T = 1 replacements");
    assert.deepEqual(await evaluateRtd(t1, batches, { seed: 7 }), a, "same seed, same numbers");
    const other = await evaluateRtd(t1, batches, { seed: 8 });
    assert.notDeepEqual({ ...other, seed: 7 }, a, "another seed, other draws");
    const hot = await evaluateRtd(t2, batches, { seed: 7, temperature: 2 });
    assert.equal(hot.temperature, 2);
    assert.notEqual(hot.lossRtd, a.lossRtd, "T = 2 replacements differ");
    const never = await evaluateRtd(t1, batches, { disallowCorrect: true });
    assert.equal(never.genAcc, 0);
    assert.ok(Math.abs(never.replacedFrac! * never.tokens - never.selected) < 1e-9);
  } finally {
    t1.dispose();
    t2.dispose();
  }
});

Deno.test("evaluateRtd: the MLM baseline has no RTD numbers; the DeBERTa backbone evaluates too", async () => {
  const m = new Pretrainer(microConfig("mlm"), VOCAB);
  const d = new Pretrainer(debertaMicroConfig("gdes"), VOCAB);
  try {
    const r = await evaluateRtd(m, batches);
    assert.ok(r.lossMlm > 0);
    assert.equal(r.lossRtd, null);
    assert.equal(r.discAuc, null);
    assert.equal(r.rtdGain, null);
    const e = await evaluateRtd(d, batches);
    assert.ok(e.discAuc! >= 0 && e.discAuc! <= 1);
    assert.equal(e.rtdGain, e.baseRate! - e.lossRtd!);
    const before = tf.memory().numTensors;
    await evaluateRtd(d, batches);
    assert.equal(tf.memory().numTensors, before, "no tensor leaks");
  } finally {
    m.dispose();
    d.dispose();
  }
});

// ---- a point's state on disk ----

/** A small run config on a synthetic corpus (a few thousand words, trained vocabulary of 120). */
function smallRun(steps: number, overrides: Record<string, unknown> = {}) {
  const [p] = expandSweep(spec({
    holdout: 6,
    sets: Object.entries({
      corpus: "synthetic:agreement:tokens=6000",
      tokenizerVocabSize: 120,
      corpusMaxChars: 0,
      maxPositions: 32,
      seqLength: 32,
      ...MICRO_SIZES,
      batchSize: 4,
      steps,
      warmupSteps: 1,
      ...overrides,
    }).map(([k, v]) => [k, String(v)] as [string, string]),
  }));
  return p.config;
}

Deno.test("sweep point state: fresh, resume, evaluate, done; another config or evaluation redoes its part", async () => {
  const dir = join(tempDir(), "point");
  const config = smallRun(6);
  const settings = { temperature: 1, seed: 0, batchSize: 4 };
  assert.equal(await pointState(dir, config, settings), "fresh");
  (await pretrain({ config, outDir: dir, until: 3 })).trainer.dispose();
  assert.equal(await pointState(dir, config, settings), "resume");
  assert.equal(await pointState(dir, { ...config, learningRate: 2e-3 }, settings), "fresh");
  (await pretrain({ config, outDir: dir, resume: true })).trainer.dispose();
  assert.equal(await pointState(dir, config, settings), "evaluate");

  const r = await evaluateRunDir(dir, settings);
  assert.equal(r.heldOut, true);
  assert.equal(r.sequences, 6, "all held-out sequences");
  assert.equal(r.step, 6);
  const file: EvalFile = { format: "rtdlab-eval-1", settings, ...r };
  await Deno.writeTextFile(join(dir, EVAL_FILE), JSON.stringify(file));
  assert.equal(await pointState(dir, config, settings), "done", "a finished point is skipped");
  assert.equal(await pointState(dir, config, { ...settings, seed: 1 }), "evaluate");
  assert.deepEqual(await evaluateRunDir(dir, settings), r, "the evaluation is reproducible");

  const saved = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
  assert.notEqual(saved.vocabSize, config.vocabSize, "the tokenizer set vocabSize");
  assert.ok(sameRunConfig(config, saved), "vocabSize and backend do not count");
  assert.ok(!sameRunConfig({ ...config, samplingTemperature: 2 }, saved));
  // A run killed between its last checkpoint and its export resumes to write the export.
  await Deno.remove(join(dir, "export"), { recursive: true });
  assert.equal(await pointState(dir, config, settings), "resume");
});

Deno.test("sweep numbers from metrics.jsonl: training time over resumes, median tokens/s, last-tenth means", () => {
  const rec = (step: number, elapsed_s: number, tokens_per_s: number, disc_auc: number) =>
    ({ step, elapsed_s, tokens_per_s, disc_auc }) as unknown as MetricsRecord;
  // Resumed after step 3 (elapsed restarts at 0).
  const m = [
    rec(1, 1, 100, 0.5),
    rec(2, 2, 300, 0.5),
    rec(3, 3, 200, 0.5),
    rec(4, 1.5, 400, 0.6),
    rec(5, 2.5, 500, 0.7),
  ];
  assert.equal(trainingSeconds(m), 5.5);
  assert.equal(medianTokensPerSecond(m), 300);
  assert.equal(tailMean(m, "disc_auc"), 0.7);
  assert.equal(trainingSeconds([]), null);
  const many = Array.from({ length: 20 }, (_, i) => rec(i + 1, i + 1, 1, i < 18 ? 0 : 1));
  assert.equal(tailMean(many, "disc_auc"), 1, "the last tenth of 20 logged steps is 2 steps");
});

Deno.test("sweep cells: D's numbers never round across a threshold; a tiny standard error is not 0", () => {
  assert.equal(formatMeanStd({ mean: 0.0496, std: null, n: 1, se: 0.003 }, 3, 0.05), "0.0496 (SE 0.003)");
  assert.equal(formatMeanStd({ mean: 0.5996, std: 0.01, n: 2 }, 3, 0.6), "0.5996 ± 0.010");
  assert.equal(formatMeanStd({ mean: -0.002, std: null, n: 1, se: 0.00007 }, 3, 0.05), "-0.002 (SE 7.0e-5)");
  assert.equal(
    formatMeanStd({ mean: 0.5996, std: null, n: 1 }),
    "0.600",
    "other columns keep plain rounding",
  );
});

Deno.test("sweep curves: each point a colour, and a dotted line where D counts as learned on the AUC and gain panels", () => {
  const rec = (step: number) =>
    ({ step, disc_auc: 0.7, rtd_gain: 0.06, loss_mlm: 5 }) as unknown as MetricsRecord;
  const runs = ["a", "b"].map((name) => ({ name, group: name, metrics: [rec(10), rec(20)] }));
  const fig = runCurves(runs, ["loss_mlm", "disc_auc", "rtd_gain"], "t");
  assert.equal(fig.data.length, 6);
  assert.notEqual(
    (fig.data[0].line as { color: string }).color,
    (fig.data[3].line as { color: string }).color,
  );
  const shapes = fig.layout.shapes as { yref: string; y0: number }[];
  assert.deepEqual(shapes.map((x) => [x.yref, x.y0]), [["y2", 0.6], ["y3", 0.05]]);
});

// ---- end to end ----

const ROOT = new URL("..", import.meta.url).pathname;

/** The command line of a two-point sweep of tiny runs into `out`, with `extra` flags last. */
function sweepArgs(out: string, extra: string[] = [], steps = 3): string[] {
  return [
    "run",
    "-A",
    join(ROOT, "tasks/sweep.ts"),
    "--name",
    "e2e",
    "--out",
    out,
    "--grid",
    "samplingTemperature=1,2",
    "--holdout",
    "12",
    "--eval-batch",
    "4",
    "--parallel",
    "2",
    ...[
      "corpus=synthetic:agreement:tokens=6000",
      "tokenizerVocabSize=120",
      "corpusMaxChars=0",
      "maxPositions=32",
      "seqLength=32",
      "embeddingSize=16",
      "discriminator.hiddenSize=32",
      "discriminator.numLayers=1",
      "discriminator.numHeads=2",
      "discriminator.intermediateSize=64",
      "generatorHiddenFraction=0.5",
      "batchSize=4",
      `steps=${steps}`,
      "warmupSteps=1",
    ].flatMap((kv) => ["--set", kv]),
    ...extra,
  ];
}

async function sweep(out: string, extra: string[] = [], steps = 3) {
  const args = sweepArgs(out, extra, steps);
  const r = await new Deno.Command(Deno.execPath(), { args, env: { RTDLAB_CACHE: CACHE } }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/**
 * `deno task sweep` (sweepArgs) sent `signal` once `when` holds — its stderr so far matches, or a check of its
 * folder passes (polled): what a user pressing Ctrl-C (or a `kill`) at that moment sees. `signalled` says
 * whether the moment came before the sweep ended. A sweep that outlives two minutes is killed (the test fails).
 */
async function sweepSignalled(
  out: string,
  extra: string[],
  when: RegExp | (() => Promise<boolean>),
  signal: "SIGINT" | "SIGTERM",
  steps = 3,
) {
  const child = new Deno.Command(Deno.execPath(), {
    args: sweepArgs(out, extra, steps),
    env: { RTDLAB_CACHE: CACHE },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "", signalled = false, ended = false;
  const send = () => {
    if (signalled || ended) return;
    signalled = true;
    child.kill(signal);
  };
  const hang = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const poll = (async () => {
    while (typeof when === "function" && !signalled && !ended) {
      if (await when()) send();
      else await delay(50);
    }
  })();
  for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
    stderr += chunk;
    if (when instanceof RegExp && when.test(stderr)) send();
  }
  const { code } = await child.status;
  ended = true;
  clearTimeout(hang);
  await poll;
  return { code, stderr, signalled };
}

/** `deno task sweep --list` with only `flags` (no tiny-run settings): what a plan is refused for, before any run. */
async function listOnly(flags: string[]) {
  const args = [
    "run",
    "-A",
    join(ROOT, "tasks/sweep.ts"),
    "--name",
    "d",
    "--out",
    join(tempDir(), "d"),
    "--list",
  ];
  const r = await new Deno.Command(Deno.execPath(), { args: [...args, ...flags] }).output();
  return { code: r.code, stderr: new TextDecoder().decode(r.stderr) };
}

Deno.test("deno task sweep: two tiny points end to end, report written, a re-run skips them", async () => {
  const out = join(tempDir(), "sweep");
  const first = await sweep(out);
  assert.equal(first.code, 0, first.stderr + first.stdout);
  assert.match(first.stderr, /2 runs \(2 points × 1 seed\), 2 to run/);
  const results = JSON.parse(await Deno.readTextFile(join(out, "results.json")));
  assert.equal(results.format, "rtdlab-sweep-1");
  assert.deepEqual(results.swept, ["samplingTemperature"]);
  assert.deepEqual(results.runs.map((r: { name: string }) => r.name), [
    "samplingTemperature=1_s0",
    "samplingTemperature=2_s0",
  ]);
  for (const r of results.runs) {
    assert.equal(r.status, "done");
    assert.equal(r.eval.temperature, 1, "judged on T = 1 replacements, also the run trained at T = 2");
    assert.equal(r.eval.held_out, true);
    assert.ok(r.eval.disc_auc >= 0 && r.eval.disc_auc <= 1);
    assert.ok(Math.abs(r.eval.rtd_gain - (r.eval.base_rate - r.eval.loss_rtd)) < 1e-12);
    assert.ok(r.eval.loss_mlm > 0 && r.tokens_per_s > 0 && r.wall_s >= 0);
    assert.equal(r.tokens, 3 * 4 * 32);
    assert.match(r.command, /^deno task pretrain --config tiny .*--set samplingTemperature=\d .*--out /);
  }
  assert.deepEqual(results.runs.map((r: { samplingTemperature: number }) => r.samplingTemperature), [1, 2]);
  const md = await Deno.readTextFile(join(out, "results.md"));
  // One seed a point: no spread over seeds, so each T = 1 number carries its standard error over sequences.
  assert.match(
    md,
    /\| samplingTemperature=2 \| 2 \| 0\.\d{3} \(SE 0\.\d{3}\) \| -?0\.\d{3} \(SE 0\.\d{3}\) \|/,
  );
  assert.ok(results.runs.every((r: { eval: { disc_auc_se: number } }) => r.eval.disc_auc_se > 0));
  // The standard errors are each number's own: results.json carries eval.json's, unswapped.
  for (const r of results.runs) {
    const ev = JSON.parse(await Deno.readTextFile(join(out, "points", r.name, EVAL_FILE)));
    assert.deepEqual([r.eval.disc_auc_se, r.eval.rtd_gain_se], [ev.discAucSe, ev.rtdGainSe], r.name);
  }
  const html = await Deno.readTextFile(join(out, "report.html"));
  assert.match(html, /vs samplingTemperature/);
  assert.match(html, /D's AUC and RTD gain during training/);
  assert.equal(html.split('class="rtdlab-figure"').length - 1, 3);

  // --cross: each discriminator on each generator's replacements. A run's own cell is its own evaluation
  // (the same sequences, masks and samples), and a generator is as often right whichever D is scored.
  const notSwept = await sweep(out, ["--report-only", "--cross", "sharing"]);
  assert.equal(notSwept.code, 2);
  assert.match(
    notSwept.stderr,
    /--cross sharing: not a key this sweep varies \(it varies: samplingTemperature\)/,
  );
  // A data key cannot be crossed (one run's generator cannot corrupt another's sequences), nor no key at all:
  // both refused before any run (here with --list, which runs nothing).
  const dataKey = await listOnly(["--grid", "corpus=synthetic:plain,synthetic:mix", "--cross", "corpus"]);
  assert.equal(dataKey.code, 2);
  assert.match(dataKey.stderr, /--cross corpus: runs that differ in corpus have other data or vocabularies/);
  const noKey = await sweep(join(tempDir(), "d"), ["--cross", ",", "--list"]);
  assert.equal(noKey.code, 2);
  assert.match(noKey.stderr, /--cross needs the keys to cross/);
  const crossed = await sweep(out, ["--report-only", "--cross", "samplingTemperature"]);
  assert.equal(crossed.code, 0, crossed.stderr);
  const cross = JSON.parse(await Deno.readTextFile(join(out, "cross-samplingTemperature.json")));
  assert.deepEqual(cross.by, ["samplingTemperature"]);
  assert.equal(cross.groups.length, 1);
  const cell = (d: string, g: string) =>
    cross.groups[0].cross.find((c: { d: string; g: string }) =>
      c.d === `samplingTemperature=${d}` && c.g === `samplingTemperature=${g}`
    );
  const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
  for (const [i, t] of ["1", "2"].entries()) {
    const own = results.runs[i].eval;
    assert.deepEqual(
      [cell(t, t).auc, cell(t, t).gain],
      [round6(own.disc_auc), round6(own.rtd_gain)],
      `run T=${t}`,
    );
    const other = t === "1" ? "2" : "1";
    assert.equal(cell(other, t).genAcc, round6(own.gen_acc), `T=${t}'s generator under the other D`);
    assert.notEqual(cell(other, t).gain, cell(t, t).gain, "scored by the other run's D");
  }
  // After 3 steps the two generators make the same replacements (their small differences change no sample): the
  // crossing says so, and keeps one of the two repeated gaps and no moves between them.
  assert.deepEqual(cross.groups[0].identical, [["samplingTemperature=1", "samplingTemperature=2"]]);
  assert.deepEqual(cross.groups[0].moves, []);
  assert.equal(cell("1", "2").vsOwn, undefined);
  // The kept gap: the difference to the generator's own discriminator, with its paired bootstrap error: above 0,
  // and below what an unpaired difference of the two readings would carry.
  const v = cell("2", "1").vsOwn;
  assert.equal(v.auc, round6(cell("2", "1").auc - cell("1", "1").auc));
  assert.ok(
    v.aucSe > 0 && v.aucSe < Math.hypot(cell("2", "1").aucSe, cell("1", "1").aucSe) && v.gainSe > 0,
    JSON.stringify(v),
  );
  assert.match(
    await Deno.readTextFile(join(out, "cross-samplingTemperature.md")),
    /\| samplingTemperature=1 \| 0\.\d{3} \/ -?0\.\d{3} \(own\) \|/,
  );
  assert.ok(await Deno.stat(join(out, "cross-samplingTemperature.html")));
  // A backend that cannot start is refused before the results are rewritten, under --report-only too.
  const resultsAt = (await Deno.stat(join(out, "results.json"))).mtime!.getTime();
  const noBackend = await sweep(out, [
    "--report-only",
    "--cross",
    "samplingTemperature",
    "--backend",
    "nope",
  ]);
  assert.equal(noBackend.code, 2, noBackend.stderr);
  assert.equal((await Deno.stat(join(out, "results.json"))).mtime!.getTime(), resultsAt);
  // A reading that fails (one run's last checkpoint torn, in a copy of the sweep) is named in its cell,
  // the others are made, and the crossing goes to .partial files beside the whole one: a failed exit.
  const copy = join(tempDir(), "copy");
  await new Deno.Command("cp", { args: ["-r", out, copy] }).output();
  const ckpts = join(copy, "points", "samplingTemperature=2_s0", "checkpoints");
  const latest = JSON.parse(await Deno.readTextFile(join(ckpts, "latest.json"))).checkpoint;
  const torn = join(ckpts, latest, "model.safetensors");
  await Deno.writeFile(torn, (await Deno.readFile(torn)).slice(0, 100));
  const tornRun = await sweep(copy, ["--report-only", "--cross", "samplingTemperature"]);
  assert.equal(tornRun.code, 1, tornRun.stderr);
  assert.match(tornRun.stderr, /error: --cross: 3 reading\(s\) failed/); // every reading with its D or G
  const partial = JSON.parse(await Deno.readTextFile(join(copy, "cross-samplingTemperature.partial.json")));
  assert.deepEqual(
    partial.groups[0].cross.map((c: { d: string; g: string; error?: string }) => c.error === undefined),
    [true, false, false, false],
  );
  assert.equal(
    await Deno.readTextFile(join(copy, "cross-samplingTemperature.json")),
    await Deno.readTextFile(join(out, "cross-samplingTemperature.json")),
    "the whole crossing copied along is kept",
  );
  // Ctrl-C once the crossing has started (its first line is printed before the backend starts, the readings
  // after): the reading under way is finished, the rest are not made, and those made go to .partial files; the
  // whole crossing beside them is untouched.
  const stopped = join(tempDir(), "stopped");
  assert.ok((await new Deno.Command("cp", { args: ["-r", out, stopped] }).output()).success);
  const wholeBefore = await Deno.readTextFile(join(stopped, "cross-samplingTemperature.json"));
  const cut = await sweepSignalled(
    stopped,
    ["--report-only", "--cross", "samplingTemperature"],
    /^crossing samplingTemperature: /m,
    "SIGINT",
  );
  assert.ok(cut.signalled, cut.stderr);
  assert.equal(cut.code, 130, cut.stderr);
  assert.match(cut.stderr, /interrupted: the crossing stops after this reading and writes those made/);
  const cutCross = JSON.parse(
    await Deno.readTextFile(join(stopped, "cross-samplingTemperature.partial.json")),
  );
  assert.equal(cutCross.complete, false);
  const madeReadings = cutCross.groups.flatMap((g: { cross: { error?: string }[] }) => g.cross);
  assert.ok(madeReadings.length < 4, `${madeReadings.length} readings made after Ctrl-C`);
  assert.ok(
    madeReadings.every((r: { error?: string }) => r.error === undefined),
    JSON.stringify(madeReadings),
  );
  assert.equal(await Deno.readTextFile(join(stopped, "cross-samplingTemperature.json")), wholeBefore);
  // Points that differ in more than the crossed key form no group: refused before any run.
  const apart = await listOnly([
    "--point",
    "samplingTemperature=1,maskSelectProb=0.15",
    "--point",
    "samplingTemperature=2,maskSelectProb=0.3",
    "--cross",
    "samplingTemperature",
  ]);
  assert.equal(apart.code, 2);
  assert.match(apart.stderr, /no two points differ only in samplingTemperature/);

  // A re-run finds both points finished and runs nothing.
  const metrics = join(out, "points", "samplingTemperature=1_s0", "metrics.jsonl");
  const evalFile = join(out, "points", "samplingTemperature=2_s0", EVAL_FILE);
  const mtime = async (p: string) => (await Deno.stat(p)).mtime!.getTime();
  const [m0, e0] = [await mtime(metrics), await mtime(evalFile)];
  const again = await sweep(out);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /2 runs \(2 points × 1 seed\), 0 to run/);
  assert.equal(await mtime(metrics), m0);
  assert.equal(await mtime(evalFile), e0);

  // A missing evaluation is redone without training again; another plan is refused without --force.
  await Deno.remove(evalFile);
  const third = await sweep(out);
  assert.equal(third.code, 0, third.stderr);
  assert.match(third.stderr, /1 to run \(0 resuming, 1 to evaluate only\)/);
  assert.equal(await mtime(metrics), m0);
  assert.ok(await Deno.stat(evalFile));
  const other = await sweep(out, ["--seeds", "0,1"]);
  assert.equal(other.code, 2);
  assert.match(other.stderr, /holds a sweep with other settings .*--force/);
  // Three steps teach D nothing, and the results say so in words beside the table.
  assert.match(
    md,
    /\*\*D has not learned in any finished run\*\* \(AUC ≥ 0\.6 and RTD gain ≥ 0\.05 nats at T = 1\)/,
  );

  // --report-only reads the folder's plan.json: another grid on the command line cannot overwrite the
  // results, and the sweep's time over all its invocations is kept.
  const before = JSON.parse(await Deno.readTextFile(join(out, "results.json")));
  const report = await sweep(out, ["--seeds", "0,1", "--report-only"]);
  assert.equal(report.code, 0, report.stderr);
  assert.match(report.stderr, /report only .*: 2 of 2 runs finished and evaluated; nothing runs/);
  const after = JSON.parse(await Deno.readTextFile(join(out, "results.json")));
  const names = (r: { runs: { name: string }[] }) => r.runs.map((x) => x.name);
  assert.deepEqual(names(after), names(before));
  assert.ok(before.wall_s_total > 0 && after.wall_s_total >= before.wall_s_total, JSON.stringify(after));
  assert.match(
    await Deno.readTextFile(join(out, "results.md")),
    /This invocation: nothing to run \(the results rebuilt from the folders\)/,
  );
  // A point whose checkpoint index is damaged fails alone, named, and is never restarted over its metrics;
  // the other point is still reported.
  const index = join(out, "points", "samplingTemperature=1_s0", "checkpoints", "latest.json");
  const good = await Deno.readTextFile(index);
  await Deno.writeTextFile(index, "{");
  const damaged = await sweep(out);
  assert.match(
    damaged.stderr,
    /samplingTemperature=1_s0 failed:\nerror: corrupt checkpoint index .*latest\.json/,
  );
  assert.equal(await mtime(metrics), m0);
  const rows = JSON.parse(await Deno.readTextFile(join(out, "results.json"))).runs;
  assert.deepEqual(rows.map((r: { status: string }) => r.status).sort(), ["done", "failed"]);
  // With one of the two finished, there is nothing to cross: said, and a failed exit.
  const lone = await sweep(out, ["--report-only", "--cross", "samplingTemperature"]);
  assert.equal(lone.code, 1, lone.stderr);
  assert.match(lone.stderr, /--cross: left out, not finished: .*samplingTemperature=1_s0 \(failed\)/);
  assert.match(
    lone.stderr,
    /error: --cross: no two finished runs differ only in samplingTemperature: nothing to cross/,
  );
  await Deno.writeTextFile(index, good);
  // --report-only where no sweep ran is an error, and makes no folder.
  const empty = join(tempDir(), "none");
  const nothing = await sweep(empty, ["--report-only"]);
  assert.equal(nothing.code, 2);
  assert.match(nothing.stderr, /--report-only: no sweep in .*none \(no plan\.json\); run the sweep first/);
  assert.equal(await Deno.stat(empty).then(() => true, () => false), false);
});

Deno.test("deno task sweep: `kill` during an evaluation leaves the point to evaluate, not failed; --force retrains changed points from scratch", async () => {
  const out = join(tempDir(), "sweep");
  const child = new Deno.Command(Deno.execPath(), {
    args: sweepArgs(out),
    env: { RTDLAB_CACHE: CACHE },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new Response(child.stdout).text();
  const stderr = new Response(child.stderr).text();
  // The cue: an evaluate child of the sweep is running (found in /proc; it lives for a second or more).
  let sent = false;
  const evaluating = async () => {
    for await (const e of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      const [stat, cmd] = await Promise.all([
        Deno.readTextFile(`/proc/${e.name}/stat`),
        Deno.readTextFile(`/proc/${e.name}/cmdline`),
      ]).catch(() => ["", ""]);
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (parent === child.pid && cmd.includes("tasks/evaluate.ts")) return true;
    }
    return false;
  };
  const watch = (async () => {
    for (let ended = false; !sent && !ended;) {
      if (await evaluating()) {
        child.kill("SIGTERM");
        sent = true;
      } else {
        ended = await Promise.race([child.status.then(() => true), delay(10).then(() => false)]);
      }
    }
  })();
  const { code } = await child.status;
  await watch;
  const log = await stderr;
  await stdout;
  assert.ok(sent, log);
  assert.equal(code, 143, log);
  assert.doesNotMatch(log, /failed/, "an evaluation cut short is not a failure");
  const statuses = JSON.parse(await Deno.readTextFile(join(out, "results.json"))).runs
    .map((r: { status: string }) => r.status);
  assert.ok(statuses.includes("unfinished") && !statuses.includes("failed"), statuses.join());

  // The next run evaluates what was cut short without training it again (the other point may have been
  // stopped mid-training, and resumes).
  const again = await sweep(out);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /to run \([01] resuming, [12] to evaluate only\)/);

  // Other settings with --force: each point's folder is cleared and trained again from step 0.
  const lr = ["--set", "learningRate=2e-3"];
  assert.equal((await sweep(out, lr)).code, 2, "other settings are refused without --force");
  const forced = await sweep(out, [...lr, "--force"]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stderr, /2 runs \(2 points × 1 seed\), 2 to run \(0 resuming, 0 to evaluate only\)/);
  for (const r of JSON.parse(await Deno.readTextFile(join(out, "results.json"))).runs) {
    assert.equal(r.status, "done", r.name);
    const dir = join(out, "points", r.name);
    assert.equal(JSON.parse(await Deno.readTextFile(join(dir, "config.json"))).learningRate, 2e-3);
    const steps = (await readMetrics(join(dir, "metrics.jsonl"))).map((m) => m.step);
    assert.deepEqual(steps, [...new Set(steps)].sort((a, b) => a - b), `${r.name}: one training, not two`);
  }
});

Deno.test("deno task sweep: --corpus is --set corpus (as in pretrain and compare)", async () => {
  const script = join(ROOT, "tasks/sweep.ts");
  const list = async (...extra: string[]) => {
    const args = ["run", "-A", script, "--name", "c", "--grid", "learningRate=1e-3,2e-3", "--list", ...extra];
    const r = await new Deno.Command(Deno.execPath(), { args }).output();
    return { code: r.code, out: new TextDecoder().decode(r.stdout), err: new TextDecoder().decode(r.stderr) };
  };
  const r = await list("--corpus", "synthetic:echo");
  assert.equal(r.code, 0, r.err);
  assert.equal(
    r.out.match(/deno task pretrain --config tiny --set corpus=synthetic:echo --set learningRate/g)?.length,
    2,
  );
  const typo = await list("--corpus", "synthetic:ecko");
  assert.equal(typo.code, 2);
  assert.match(typo.err, /unknown synthetic language "ecko"/);
});

Deno.test("deno task sweep: a backend that cannot start here is refused before any folder is made", async () => {
  const out = join(tempDir(), "sweep");
  if (!(await checkBackend("cuda").then(() => true, () => false))) {
    const r = await sweep(out, ["--backend", "cuda"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /error: backend cuda cannot start here: no NVIDIA driver/);
    assert.equal(await Deno.stat(out).then(() => true, () => false), false);
  }
  const typo = await sweep(out, ["--backend", "wsam"]);
  assert.match(typo.stderr, /unknown backend "wsam"; valid backends: wasm, cpu/);
  assert.equal(await Deno.stat(out).then(() => true, () => false), false);
});

Deno.test("groupResults: a point's seeds pool into mean ± std (unfinished runs left out), in sweep order", () => {
  const run = (group: string, seed: number, auc: number | null, gain: number): PointResult => ({
    name: `${group}-s${seed}`,
    group,
    label: group,
    values: { rtdWeight: group },
    seed,
    status: auc === null ? "unfinished" : "done",
    sharing: "gdes",
    steps: 10,
    tokens: 100,
    samplingTemperature: 1,
    eval: auc === null ? null : {
      disc_auc: auc,
      rtd_gain: gain,
      disc_auc_se: 0.01,
      rtd_gain_se: 0.002,
      base_rate: 0.5,
      loss_rtd: 0.5 - gain,
      loss_mlm: 3,
      gen_acc: 0.1,
      replaced_frac: 0.13,
      disc_recall: 0.2,
      temperature: 1,
      tokens: 100,
      held_out: true,
    },
    learned: auc === null ? null : auc >= 0.6 && gain >= 0.05,
    train: { disc_auc: null, rtd_gain: null, loss_mlm: null, gen_acc: null },
    tokens_per_s: 1000,
    wall_s: 10,
    last_step: 10,
  });
  const rows = groupResults([
    run("b", 0, 0.6, 0.04),
    run("a", 0, 0.9, 0.2),
    run("b", 1, 0.7, 0.06),
    run("b", 2, 0.8, 0.08),
    run("b", 3, null, 0),
  ]);
  assert.deepEqual(rows.map((r) => r.group), ["b", "a"]);
  const b = rows[0];
  assert.equal(b.runs, 4);
  assert.equal(b.done, 3);
  assert.ok(Math.abs(b.auc!.mean - 0.7) < 1e-12 && Math.abs(b.auc!.std! - 0.1) < 1e-12 && b.auc!.n === 3);
  assert.ok(Math.abs(b.gain!.mean - 0.06) < 1e-12 && Math.abs(b.gain!.std! - 0.02) < 1e-12);
  assert.equal(b.auc!.se, undefined, "several seeds: their spread, not one run's error");
  assert.equal(b.learned, 2);
  // One seed: its own bootstrap errors, the AUC's and the gain's, each in its place.
  const a = rows[1];
  assert.deepEqual([a.auc!.mean, a.auc!.std, a.auc!.se], [0.9, null, 0.01]);
  assert.deepEqual([a.gain!.mean, a.gain!.std, a.gain!.se], [0.2, null, 0.002]);
});

Deno.test("crossGroups: runs are crossed only with runs that differ in the keys named (--cross)", () => {
  const run = (values: Record<string, string>, seed = 0, status = "done", dir?: string) => ({
    dir: dir ?? JSON.stringify([values, seed]),
    seed,
    sharing: values.sharing ?? "es",
    status,
    values,
  });
  const runs = [
    run({ sharing: "es", mask: "0.15", size: "64" }),
    run({ sharing: "gdes", mask: "0.15", size: "64" }),
    run({ sharing: "es", mask: "0.45", size: "64" }),
    run({ sharing: "gdes", mask: "0.45", size: "64" }),
    run({ sharing: "gdes", mask: "0.45", size: "64" }, 1), // another seed: a group of its own, with no partner
    run({ sharing: "es", mask: "0.45", size: "128" }),
    run({ sharing: "nes", mask: "0.45", size: "64" }, 0, "failed"),
  ];
  const names = (gs: ReturnType<typeof crossGroups>) =>
    gs.map((g) => [g.values, g.seed, g.members.map((m) => m.label)]);
  // By sharing: the two mask rates at size 64; the failed NES run, the lone seed and the size-128 run stay out.
  assert.deepEqual(names(crossGroups(runs, ["sharing"])), [
    [{ mask: "0.15", size: "64" }, 0, ["es", "gdes"]],
    [{ mask: "0.45", size: "64" }, 0, ["es", "gdes"]],
  ]);
  // By size: only ES at 0.45 has both sizes; labelled by the keys crossed.
  assert.deepEqual(names(crossGroups(runs, ["size"])), [[{ mask: "0.45", sharing: "es" }, 0, [
    "size=64",
    "size=128",
  ]]]);
  // By two keys at once (a point that sets several keys): labels join them.
  assert.deepEqual(names(crossGroups(runs, ["sharing", "size"]))[1], [
    { mask: "0.45" },
    0,
    ["sharing=es · size=64", "sharing=gdes · size=64", "sharing=es · size=128"],
  ]);
  assert.throws(() => crossGroups(runs, ["seedless"]), /no two finished runs differ only in seedless/);
  assert.throws(() => crossGroups(runs, []), /at least one config key/);
  // The same keys in another order are one group; a key a point does not set is labelled as the default;
  // two runs of one label are told apart by their folders.
  const points = [
    run({ mask: "0.15", lr: "1e-3", size: "64" }, 0, "done", "runs/a"),
    run({ lr: "1e-3", mask: "0.15" }, 0, "done", "runs/b"),
  ];
  assert.deepEqual(names(crossGroups(points, ["size"])), [[{ lr: "1e-3", mask: "0.15" }, 0, [
    "size=64",
    "size=(default)",
  ]]]);
  assert.throws(() => crossGroups(points, ["sharing"]), /nothing to cross/, "they differ in size too");
  const twins = [
    run({ mask: "0.15" }, 0, "done", "runs/p1"),
    run({ mask: "0.15", sharing: "es" }, 0, "done", "runs/p2"),
  ];
  assert.deepEqual(names(crossGroups(twins, ["sharing"]))[0][2], ["es [p1]", "es [p2]"]);
  // A group of MLM runs alone has no discriminator to score: nothing to cross.
  const mlmOnly = [run({ sharing: "mlm", size: "64" }), run({ sharing: "mlm", size: "128" })];
  assert.throws(() => crossGroups(mlmOnly, ["size"]), /nothing to cross/);
});

Deno.test("crossSweep: every discriminator on every generator of its group (an MLM model only as a generator)", async () => {
  const run = (sharing: string, mask: string) => ({
    dir: `${sharing}-${mask}`,
    seed: 0,
    sharing,
    status: "done",
    values: { sharing, mask },
  });
  const runs = [
    run("es", "0.15"),
    run("mlm", "0.15"),
    run("gdes", "0.15"),
    run("es", "0.45"),
    run("gdes", "0.45"),
  ];
  const calls: string[] = [];
  const heard: string[] = [];
  const ev = { temperature: 1.5, seed: 7, batchSize: 4 };
  const code = (d: string) => ["es", "mlm", "gdes"].findIndex((m) => d.includes(`/${m}-`));
  const cross = await crossSweep("t", runs, ["sharing"], ev, {
    dirOf: (d) => `/root/${d}`,
    // A reading that names its D and G: AUC from both folders (G moves GDES's D more), genAcc from G's.
    evaluate: (dir, opts) => {
      calls.push(`${dir} on ${opts.generatorFrom} T${opts.temperature} s${opts.seed} b${opts.batchSize}`);
      return Promise.resolve({
        discAuc: 0.5 + code(dir) / 10 + code(opts.generatorFrom!) * (code(dir) + 1) / 100 + 0.0000004,
        discAucSe: 0.01,
        rtdGain: 0.01,
        rtdGainSe: null,
        genAcc: code(opts.generatorFrom!) / 100,
      });
    },
    onReading: (_g, r, done, total) => heard.push(`${r.d}/${r.g} ${done}/${total}`),
  });
  assert.deepEqual(calls.slice(0, 3), [
    "/root/es-0.15 on /root/es-0.15 T1.5 s7 b4",
    "/root/es-0.15 on /root/mlm-0.15 T1.5 s7 b4",
    "/root/es-0.15 on /root/gdes-0.15 T1.5 s7 b4",
  ]);
  assert.equal(calls.length, 2 * 3 + 2 * 2, "no MLM discriminator");
  assert.equal(cross.complete, true);
  assert.deepEqual(cross.groups.map((g) => g.values), [{ mask: "0.15" }, { mask: "0.45" }]);
  const first = cross.groups[0].cross;
  assert.deepEqual(first.map((c) => `${c.d}/${c.g}`), [
    "es/es",
    "es/mlm",
    "es/gdes",
    "gdes/es",
    "gdes/mlm",
    "gdes/gdes",
  ]);
  assert.deepEqual(first.map((c) => [c.auc, c.genAcc]), [
    [0.5, 0],
    [0.51, 0.01],
    [0.52, 0.02],
    [0.7, 0],
    [0.73, 0.01],
    [0.76, 0.02],
  ], "rounded to 6 decimals; D's numbers from D's run, G's accuracy from G's");
  assert.equal(first[0].gainSe, null);
  assert.deepEqual(heard.slice(0, 2), ["es/es 1/10", "es/mlm 2/10"]);
  assert.equal(heard.at(-1), "gdes/gdes 10/10");
  assert.deepEqual(cross.by, ["sharing"]);
  assert.deepEqual(cross.eval, ev);
  // The markdown: each G's accuracy in its column's head, each D's own cell marked, and per group how far
  // another D lies from the G's own (gaps 0.2 and 0.24: median 0.22, max 0.24) against how far one D moves
  // between Gs (es 0.01, 0.02, 0.01; gdes 0.03, 0.06, 0.03: median 0.025, max 0.06).
  const md = crossMarkdown(cross);
  assert.match(
    md,
    /\| discriminator \| on es's G \(0\.0 % right\) \| on mlm's G \(1\.0 % right\) \| on gdes's G \(2\.0 % right\) \|/,
  );
  assert.match(md, /\| es \| 0\.500 \/ 0\.010 \(own\) \| 0\.510 \/ 0\.010 \| 0\.520 \/ 0\.010 \|/);
  assert.match(
    md,
    /within 0\.240 AUC of the generator's own \(median 0\.220\); one discriminator's AUC moves by up to 0\.060 between generators \(median 0\.025\); a reading's standard error is ~0\.010/,
  );

  // A reading that fails is kept with its error and the others go on; a null AUC (nothing replaced) is shown
  // as n/a; a stop between readings returns those made, marked incomplete.
  let n = 0;
  const rough = await crossSweep("t", runs.slice(3), ["sharing"], ev, {
    evaluate: (dir, opts) => {
      if (++n === 2) return Promise.reject(new Error("torn | checkpoint"));
      return Promise.resolve({ discAuc: dir === opts.generatorFrom ? null : 0.6, rtdGain: 0, genAcc: 0.5 });
    },
    shouldStop: () => n >= 3,
  });
  assert.equal(rough.complete, false);
  assert.deepEqual(rough.groups[0].cross.map((c) => [c.d, c.g, c.auc, c.error ?? ""]), [
    ["es", "es", null, ""],
    ["es", "gdes", null, "torn | checkpoint"],
    ["gdes", "es", 0.6, ""],
  ]);
  const roughMd = crossMarkdown(rough);
  assert.match(roughMd, /Stopped before every reading was made/);
  assert.match(roughMd, /\| es \| n\/a \/ 0\.000 \(own\) \| failed: torn \\\| checkpoint \|/);
  assert.match(roughMd, /\| gdes \| 0\.600 \/ 0\.000 \| — \|/, "a reading never made");
  // The page: one figure (a trace per group with its off-diagonal readings that have an own reading to stand
  // against: not those on the MLM generator; then the diagonal), then the tables.
  const fig = crossFigure(cross);
  assert.deepEqual(fig.data.map((t) => (t.x as number[]).length), [2, 2, 2]);
  assert.deepEqual((fig.data[1].y as number[]).slice().sort(), [0.52, 0.7]);
  const page = crossReport(cross);
  assert.equal(page.figureCount, 1);
  assert.match(await page.render(), /<td[^>]*>0\.700 \/ 0\.010<\/td>/);
  // Spreads within two standard errors are said to decide nothing.
  const flat = crossMarkdown({
    ...cross,
    groups: [{
      values: {},
      seed: 0,
      cross: [["a", "a", 0.6], ["a", "b", 0.61], ["b", "a", 0.59], ["b", "b", 0.6]].map(([d, g, auc]) => ({
        d: d as string,
        g: g as string,
        auc: auc as number,
        aucSe: 0.01,
        gain: 0,
        gainSe: 0.001,
        genAcc: 0.1,
      })),
    }],
  });
  assert.match(flat, /Both within two standard errors: at this precision neither decides\./);
  assert.doesNotMatch(md, /neither decides/);
});

Deno.test("crossing: keys sorted once, files named by them; a crossed key a point leaves alone is read from config.json", async () => {
  assert.deepEqual(crossKeys(["sharing", " rtdWeight", "sharing", ""]), ["rtdWeight", "sharing"]);
  assert.equal(crossBase("/r", crossKeys(["b", "a"])), join("/r", "cross-a+b"));
  // Two runs, one setting discriminator.hiddenSize and one inheriting it: the label says the value it ran with.
  const root = tempDir();
  const runs = [];
  for (
    const [name, values, hidden] of [["p1", { "discriminator.hiddenSize": "32" }, 32], [
      "p2",
      {},
      64,
    ]] as const
  ) {
    await Deno.mkdir(join(root, name));
    await Deno.writeTextFile(
      join(root, name, "config.json"),
      JSON.stringify({ discriminator: { hiddenSize: hidden } }),
    );
    runs.push({
      dir: join(root, name),
      seed: 0,
      sharing: "gdes",
      status: "done",
      values: { ...values, mask: "0.15" },
    });
  }
  const stub = () =>
    Promise.resolve({ discAuc: 0.6, discAucSe: 0.01, rtdGain: 0.05, rtdGainSe: 0.002, genAcc: 0.1 });
  const cross = await crossSweep("t", runs, ["discriminator.hiddenSize"], {
    temperature: 1,
    seed: 0,
    batchSize: 4,
  }, {
    evaluate: stub,
  });
  assert.deepEqual(cross.groups[0].cross.map((c) => c.d), [
    "discriminator.hiddenSize=32",
    "discriminator.hiddenSize=32",
    "discriminator.hiddenSize=64",
    "discriminator.hiddenSize=64",
  ]);
  // A stop after the first group's readings returns that group alone (no empty second group).
  const twoGroups = [...runs, ...runs.map((r) => ({ ...r, values: { ...r.values, mask: "0.45" } }))];
  let n = 0;
  const stopped = await crossSweep("t", twoGroups, ["discriminator.hiddenSize"], cross.eval, {
    evaluate: () => (n++, stub()),
    shouldStop: () => n >= 4,
  });
  assert.equal(stopped.complete, false);
  assert.deepEqual(stopped.groups.map((g) => g.cross.length), [4]);
  // Written: a whole crossing under its name; a stopped one beside it as .partial, the whole one untouched;
  // a whole one again removes the partial files.
  const base = await writeCross(root, cross);
  assert.equal(base, join(root, "cross-discriminator.hiddenSize"));
  const wholeJson = await Deno.readTextFile(`${base}.json`);
  assert.equal(await writeCross(root, { ...stopped, by: cross.by }), `${base}.partial`);
  assert.equal(await Deno.readTextFile(`${base}.json`), wholeJson, "the whole crossing is kept");
  assert.match(await Deno.readTextFile(`${base}.partial.md`), /Stopped before every reading was made/);
  await writeCross(root, cross);
  for (const ext of ["json", "md", "html"]) {
    assert.equal(await Deno.stat(`${base}.partial.${ext}`).then(() => true, () => false), false, ext);
  }
  // The figure's whiskers are the readings' standard errors.
  assert.deepEqual(crossFigure(cross).data[0].error_y, {
    type: "data",
    array: [0.01, 0.01],
    visible: true,
    thickness: 1,
  });
});

Deno.test("crossTables: which spread is larger is said only beyond two standard errors (the median SE)", () => {
  const table = (aucs: [string, string, number][], se: number) =>
    crossTables(oneGroup({
      cross: aucs.map(([d, g, auc], i) => ({
        d,
        g,
        auc,
        aucSe: i === 0 ? se / 2 : se, // the median, not the first or the largest
        gain: 0,
        gainSe: 0,
        genAcc: 0.1,
      })),
    }))[0].summary!;
  // Generators apart by 0.1, discriminators by 0.025, with SE 0.01: the generators move it more.
  const g = table([["a", "a", 0.6], ["a", "b", 0.7], ["b", "a", 0.625], ["b", "b", 0.725]], 0.01);
  assert.match(g, /a reading's standard error is ~0\.010\. The generators move the AUC more/);
  // Discriminators apart by 0.1, generators by 0.025: said the other way round.
  assert.match(
    table([["a", "a", 0.6], ["a", "b", 0.625], ["b", "a", 0.7], ["b", "b", 0.725]], 0.01),
    /The discriminators move the AUC as much as the generators do, or more/,
  );
  // Both at 0.025 with SE 0.013: within two standard errors, neither.
  assert.match(
    table([["a", "a", 0.6], ["a", "b", 0.625], ["b", "a", 0.625], ["b", "b", 0.6]], 0.013),
    /Both within two standard errors/,
  );
  // At SE 0.01 the same 0.025 is beyond two: a side is named.
  assert.doesNotMatch(
    table([["a", "a", 0.6], ["a", "b", 0.625], ["b", "a", 0.625], ["b", "b", 0.6]], 0.01),
    /Both within/,
  );
});

Deno.test("pairedSe: the spread of replicate-by-replicate differences (what the shared sequences leave)", () => {
  const a = [0.6, 0.62, 0.58, 0.61, 0.59];
  assert.equal(pairedSe(a, a), 0, "a reading against itself");
  assert.ok(Math.abs(pairedSe(a, a.map((x) => x - 0.05))!) < 1e-12, "a constant lead has no spread");
  const b = [0.55, 0.56, 0.54, 0.58, 0.52];
  const d = a.map((x, i) => x - b[i]);
  const m = d.reduce((s, x) => s + x, 0) / d.length;
  assert.ok(
    Math.abs(pairedSe(a, b)! - Math.sqrt(d.reduce((s, x) => s + (x - m) ** 2, 0) / (d.length - 1))) < 1e-15,
  );
  assert.equal(pairedSe(a, b.slice(1)), null, "other resamples");
  assert.equal(pairedSe(a, undefined), null);
  assert.equal(pairedSe([0.6, null], [0.5, 0.5]), null, "a resample without an AUC");
});

Deno.test("crossSweep: each reading against the generator's own on the same resamples, and one D between two Gs", async () => {
  const run = (sharing: string) => ({ dir: sharing, seed: 0, sharing, status: "done", values: { sharing } });
  // Replicates: D "es" reads 0.1 above D "gdes" on every resample of either G (a steady lead, SE 0); G "gdes"
  // lowers every D by an amount that varies across resamples.
  const noise = [0, 0.02, -0.02, 0.01, -0.01];
  const cross = await crossSweep("t", [run("es"), run("gdes")], ["sharing"], {
    temperature: 1,
    seed: 0,
    batchSize: 4,
  }, {
    evaluate: (dir, opts) => {
      const base = (dir === "es" ? 0.7 : 0.6) - (opts.generatorFrom === "gdes" ? 0.1 : 0);
      const auc = noise.map((e) => base + (opts.generatorFrom === "gdes" ? e : 0));
      assert.equal(opts.keepReplicates, true);
      return Promise.resolve({
        discAuc: base,
        discAucSe: 0.01,
        rtdGain: 0.05,
        rtdGainSe: 0.002,
        genAcc: 0.1,
        replicates: { auc, gain: auc.map((x) => x / 10), key: "k" },
      });
    },
  });
  const [group] = cross.groups;
  const at = (d: string, g: string) => group.cross.find((c) => c.d === d && c.g === g)!;
  assert.deepEqual(at("gdes", "es").vsOwn, { auc: -0.1, aucSe: 0, gain: 0, gainSe: 0 });
  assert.deepEqual(at("es", "gdes").vsOwn, { auc: 0.1, aucSe: 0, gain: 0, gainSe: 0 });
  assert.equal(at("es", "es").vsOwn, undefined, "nothing beside a D's own reading");
  assert.deepEqual(group.moves!.map((m) => [m.d, m.g1, m.g2, m.auc]), [["es", "es", "gdes", -0.1], [
    "gdes",
    "es",
    "gdes",
    -0.1,
  ]]);
  assert.ok(group.moves!.every((m) => m.aucSe! > 0.01), "the generator's lowering varies across resamples");
  // The line reads the paired errors: both gaps beyond two (a steady lead), both moves beyond two.
  assert.match(
    crossTables(cross)[0].summary!,
    /Beyond two paired standard errors: 2 of 2 discriminator gaps, 2 of 2 generator moves: both move it\./,
  );
});

Deno.test("bootstrap replicates depend on the seed and the sequences, not on the scores (so two Ds pair up)", () => {
  const seqs = Array.from(
    { length: 20 },
    (_, k) => ({ from: 4 * k, to: 4 * k + 4, bce: 1, tokens: 4, replaced: 1 }),
  );
  const labels = Array.from({ length: 80 }, (_, i) => (i % 4 === 0 ? 1 : 0));
  const scores = labels.map((y, i) => y + Math.sin(i));
  const a = bootstrapSe(seqs, scores, labels, 0).replicates!;
  const b = bootstrapSe(seqs, scores.map((x) => 3 * x + 1.1234), labels, 0).replicates!; // the same ranking
  assert.equal(pairedSe(a.auc, b.auc), 0);
  assert.ok(
    pairedSe(a.auc, bootstrapSe(seqs, scores, labels, 1).replicates!.auc)! > 0,
    "another seed's resamples",
  );
});

Deno.test("crossSweep: a gap's paired error is the two Ds' own; other resamples, or identical generators, are not paired", async () => {
  const run = (sharing: string) => ({ dir: sharing, seed: 0, sharing, status: "done", values: { sharing } });
  const noise: Record<string, number[]> = {
    es: [0, 0.02, -0.02, 0.01, -0.01],
    gdes: [0.01, -0.01, 0, 0.02, -0.02],
    nes: [0.01, -0.01, 0, 0.02, -0.02],
  };
  const ev = { temperature: 1, seed: 0, batchSize: 4 };
  // NES's and GDES's generators make the same replacements (every D reads the same on both).
  const evaluate = (key: (d: string) => string) => (dir: string, opts: { generatorFrom: string }) => {
    const base = { es: 0.7, nes: 0.65, gdes: 0.6 }[dir]! - (opts.generatorFrom === "es" ? 0 : 0.05);
    const gain = { es: 0.05, nes: 0.03, gdes: 0.02 }[dir]!;
    return Promise.resolve({
      discAuc: base,
      discAucSe: 0.01,
      rtdGain: gain,
      rtdGainSe: 0.002,
      genAcc: opts.generatorFrom === "es" ? 0.01 : 0.03,
      replicates: {
        auc: noise[dir].map((e) => base + e),
        gain: noise[dir].map((e) => gain + e / 5),
        key: key(dir),
      },
    });
  };
  const cross = await crossSweep("t", [run("es"), run("nes"), run("gdes")], ["sharing"], ev, {
    evaluate: evaluate(() => "k"),
  });
  const [g] = cross.groups;
  const at = (d: string, gen: string) => g.cross.find((c) => c.d === d && c.g === gen)!;
  const diff = noise.es.map((x, i) => noise.gdes[i] - x);
  const m = diff.reduce((a, x) => a + x, 0) / diff.length;
  const sd = Math.sqrt(diff.reduce((a, x) => a + (x - m) ** 2, 0) / (diff.length - 1));
  const v = at("gdes", "es").vsOwn!;
  assert.ok(
    Math.abs(v.aucSe! - Math.round(sd * 1e6) / 1e6) < 1e-12,
    "the sd of the two Ds' replicate differences",
  );
  assert.ok(Math.abs(v.gainSe! - Math.round((sd / 5) * 1e6) / 1e6) < 1e-12);
  assert.equal(v.gain, -0.03, "signed: this reading's gain minus the G's own");
  // The identical pair is named; its moves (0, and repeats of the moves to NES) and its repeated gap left out.
  assert.deepEqual(g.identical, [["nes", "gdes"]]);
  assert.ok(g.moves!.every((mv) => mv.g1 !== "gdes" && mv.g2 !== "gdes"));
  assert.deepEqual(g.moves!.map((mv) => [mv.d, mv.g1, mv.g2]), [["es", "es", "nes"], ["nes", "es", "nes"], [
    "gdes",
    "es",
    "nes",
  ]]);
  assert.equal(at("nes", "gdes").vsOwn, undefined, "repeats GDES's D on NES's G");
  assert.ok(at("gdes", "nes").vsOwn);
  assert.match(crossTables(cross)[0].summary!, /nes's and gdes's generators made identical replacements/);
  // Replicates of other resamples (another key) give differences without an error.
  const unpaired = await crossSweep("t", [run("es"), run("gdes")], ["sharing"], ev, {
    evaluate: evaluate((d) => d),
  });
  assert.equal(unpaired.groups[0].cross.find((c) => c.d === "gdes" && c.g === "es")!.vsOwn!.aucSe, null);
});

Deno.test("crossTables: a side is named only when its differences alone are beyond two paired errors", () => {
  const table = (gaps: [number, number][], moves: [number, number][]) =>
    crossTables(oneGroup({
      cross: [
        { d: "a", g: "a", auc: 0.6, aucSe: 0.01, gain: 0, gainSe: 0, genAcc: 0.1 },
        // Another D's reading on each G, with its gap to the G's own: [difference, paired SE].
        ...([["a", "b", 0.6 + moves[0][0], gaps[0]], ["b", "a", 0.6 + gaps[1][0], gaps[1]]] as const).map((
          [d, g, auc, [gap, gapSe]],
        ) => ({
          d,
          g,
          auc,
          aucSe: 0.01,
          gain: 0,
          gainSe: 0,
          genAcc: 0.1,
          vsOwn: { auc: gap, aucSe: gapSe, gain: 0, gainSe: 0 },
        })),
        { d: "b", g: "b", auc: 0.6, aucSe: 0.01, gain: 0, gainSe: 0, genAcc: 0.1 },
      ],
      moves: moves.map(([auc, aucSe], i) => ({ d: i ? "b" : "a", g1: "a", g2: "b", auc, aucSe })),
    }))[0].summary!;
  assert.match(
    table([[0.01, 0.01], [0.01, 0.01]], [[0, 0.01], [0, 0.01]]),
    /0 of 2 discriminator gaps, 0 of 2 generator moves; at this precision neither/,
  );
  assert.match(
    table([[0.025, 0.01], [0.015, 0.01]], [[0.01, 0.01], [0.01, 0.01]]),
    /1 of 2 discriminator gaps, 0 of 2 generator moves: the discriminators move the AUC, the generators not/,
  );
  assert.match(
    table([[0.001, 0.01], [0.001, 0.01]], [[0.025, 0.01], [0.001, 0.01]]),
    /0 of 2 discriminator gaps, 1 of 2 generator moves: the generators move the AUC, the discriminators not/,
  );
  assert.match(
    table([[0.03, 0.01], [0.001, 0.01]], [[0.07, 0.01], [0.001, 0.01]]),
    /1 of 2 generator moves: both move it, the generators at least twice as much\./,
  );
  assert.match(table([[0.03, 0.01], [0.001, 0.01]], [[0.04, 0.01], [0.001, 0.01]]), /both move it\./);
  // Exactly twice the error is not beyond it.
  assert.match(
    table([[0.02, 0.01], [0.02, 0.01]], [[0.02, 0.01], [0.02, 0.01]]),
    /0 of 2 discriminator gaps, 0 of 2 generator moves/,
  );
});

/** A crossing of one group (seed 0, no shared values) with the given readings and moves. */
function oneGroup(group: { cross: CrossReading[]; moves?: CrossMove[] }): SweepCross {
  return {
    format: "rtdlab-regimes-cross-1",
    name: "t",
    built_at: "",
    by: ["sharing"],
    eval: { temperature: 1, seed: 0, batchSize: 4 },
    complete: true,
    groups: [{ values: {}, seed: 0, ...group }],
  };
}

Deno.test("deno task sweep --cross: a sweep stopped while training is not crossed; the same command again finishes and crosses it", async () => {
  const out = join(tempDir(), "sweep");
  const extra = ["--cross", "samplingTemperature"];
  // `kill` while both runs train (each has logged a step): they checkpoint and stop, nothing is evaluated, and
  // the crossing is skipped.
  const training = async () => {
    for (const t of [1, 2]) {
      const metrics = join(out, "points", `samplingTemperature=${t}_s0`, "metrics.jsonl");
      if (!await Deno.stat(metrics).then((st) => st.size > 0, () => false)) return false;
    }
    return true;
  };
  const stopped = await sweepSignalled(out, extra, training, "SIGTERM", 300);
  assert.ok(stopped.signalled, stopped.stderr);
  assert.equal(stopped.code, 143, stopped.stderr);
  assert.match(stopped.stderr, /--cross skipped: the sweep was stopped; run the same command again/);
  const files = [];
  for await (const e of Deno.readDir(out)) files.push(e.name);
  assert.deepEqual(files.filter((f) => f.startsWith("cross-")), [], "no crossing of unfinished runs");
  for (const t of [1, 2]) {
    const log = await Deno.readTextFile(join(out, "logs", `samplingTemperature=${t}_s0.pretrain.log`));
    assert.match(log, /stopped at step \d+; checkpoint written/, `T=${t}: ${log}`);
  }
  // Each run resumes from its checkpoint.
  const again = await sweep(out, extra, 300);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /2 to run \(2 resuming, 0 to evaluate only\)/);
  const cross = JSON.parse(await Deno.readTextFile(join(out, "cross-samplingTemperature.json")));
  assert.equal(cross.complete, true);
  assert.equal(cross.groups[0].cross.length, 4);
});

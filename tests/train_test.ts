/**
 * Whole runs: the loss falls, resume is exact, memory is flat, bad input is refused cleanly.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "../lib/tf.ts";
import { describeBackend, initBackend } from "../lib/backend/mod.ts";
import { applyOverrides, preset, type RunConfig, validateConfig } from "../lib/config.ts";
import { prepareRunData, pretrain, readMetrics, savedRunConfig } from "../lib/train/run.ts";
import { holdOut } from "../lib/train/evaluate.ts";
import { BatchSampler } from "../lib/train/batches.ts";
import { evaluationSequences, openRun } from "../lib/report/trained.ts";
import { Rng } from "../lib/rng.ts";
import {
  CheckpointMismatch,
  latestCheckpoint,
  loadCheckpoint,
  olderCheckpointHint,
  saveCheckpoint,
} from "../lib/train/checkpoint.ts";
import { LOCK_FILE, refuseIfTraining } from "../lib/io/run_lock.ts";
import { microBatchRows, Pretrainer } from "../lib/train/pretrain.ts";
import { microConfig, randomBatch, tempDir, VOCAB, writeGrammarCorpus } from "./_helpers.ts";

await initBackend("wasm");
const CACHE = tempDir("rtdlab-cache-");
Deno.env.set("RTDLAB_CACHE", CACHE);

const corpusDir = tempDir("rtdlab-corpus-");
writeGrammarCorpus(corpusDir, 12, 60);

function runConfig(sharing: "es" | "nes" | "gdes" | "mlm", steps: number) {
  return validateConfig(applyOverrides(preset("tiny"), {
    sharing,
    corpus: corpusDir,
    tokenizerVocabSize: 120,
    maxPositions: 32,
    seqLength: 32,
    embeddingSize: 32,
    "discriminator.hiddenSize": 32,
    "discriminator.numLayers": 1,
    "discriminator.numHeads": 2,
    "discriminator.intermediateSize": 64,
    generatorHiddenFraction: 0.5,
    batchSize: 8,
    steps,
    warmupSteps: 3,
    learningRate: 3e-3,
    logEvery: 1,
    checkpointEvery: 5,
  }));
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

Deno.test("the losses fall on a small corpus within a few dozen steps (ES and GDES)", async () => {
  for (const sharing of ["es", "gdes"] as const) {
    const out = join(tempDir(), "run");
    const r = await pretrain({ config: runConfig(sharing, 40), outDir: out, noExport: true });
    r.trainer.dispose();
    const m = await readMetrics(join(out, "metrics.jsonl"));
    assert.equal(m.length, 40);
    const mlmStart = mean(m.slice(0, 5).map((x) => x.loss_mlm)),
      mlmEnd = mean(m.slice(-5).map((x) => x.loss_mlm));
    const rtdStart = mean(m.slice(0, 5).map((x) => x.loss_rtd!)),
      rtdEnd = mean(m.slice(-5).map((x) => x.loss_rtd!));
    assert.ok(mlmEnd < mlmStart - 1, `${sharing}: MLM loss ${mlmStart.toFixed(3)} → ${mlmEnd.toFixed(3)}`);
    assert.ok(rtdEnd < rtdStart - 0.05, `${sharing}: RTD loss ${rtdStart.toFixed(3)} → ${rtdEnd.toFixed(3)}`);
    for (const k of ["step", "loss_mlm", "loss_rtd", "disc_acc", "replaced_frac", "lr", "tokens_per_s"]) {
      assert.ok(k in m[0], `metrics.jsonl has ${k}`);
    }
  }
});

Deno.test("resume reproduces exactly the losses of an uninterrupted run (GDES and NES decoupled, ES and MLM joint)", async () => {
  // Each restores its own optimisers: generator + discriminator (decoupled) or the one joint AdamW.
  for (const sharing of ["gdes", "nes", "es", "mlm"] as const) {
    const whole = join(tempDir(), "whole"), split = join(tempDir(), "split");
    const a = await pretrain({ config: runConfig(sharing, 12), outDir: whole, noExport: true });
    a.trainer.dispose();
    const b = await pretrain({ config: runConfig(sharing, 12), outDir: split, until: 7, noExport: true });
    b.trainer.dispose();
    // A crash after the checkpoint at step 7 could have logged more; resume drops and rewrites those lines.
    const c = await pretrain({ config: runConfig(sharing, 12), outDir: split, resume: true, noExport: true });
    c.trainer.dispose();
    const ma = await readMetrics(join(whole, "metrics.jsonl")),
      mb = await readMetrics(join(split, "metrics.jsonl"));
    assert.deepEqual(mb.map((x) => x.step), ma.map((x) => x.step), sharing);
    const losses = (m: typeof ma) => m.map((x) => [x.step, x.loss_mlm, x.loss_rtd, x.disc_acc, x.lr]);
    assert.deepEqual(losses(mb), losses(ma), sharing);
  }
});

Deno.test("elapsed_s continues across a resume (from the checkpoint's time, else the last kept log line)", async () => {
  const out = join(tempDir(), "run");
  const a = await pretrain({ config: runConfig("es", 9), outDir: out, until: 5, noExport: true });
  a.trainer.dispose();
  // Pretend the first session took long, so a restart at 0 could not pass for a continuation.
  const statePath = join(out, "checkpoints", "step-0000005", "state.json");
  const state = JSON.parse(await Deno.readTextFile(statePath));
  assert.equal(typeof state.elapsedSeconds, "number");
  await Deno.writeTextFile(statePath, JSON.stringify({ ...state, elapsedSeconds: 1000 }));
  const b = await pretrain({
    config: runConfig("es", 9),
    outDir: out,
    resume: true,
    until: 7,
    noExport: true,
  });
  b.trainer.dispose();
  let m = await readMetrics(join(out, "metrics.jsonl"));
  assert.deepEqual(m.map((r) => r.step), [1, 2, 3, 4, 5, 6, 7]);
  assert.ok(m.slice(5).every((r) => r.elapsed_s >= 1000), JSON.stringify(m.map((r) => r.elapsed_s)));
  // A checkpoint written before elapsedSeconds existed: continue from the last log line it keeps.
  const statePath7 = join(out, "checkpoints", "step-0000007", "state.json");
  const { elapsedSeconds: _, ...old } = JSON.parse(await Deno.readTextFile(statePath7));
  await Deno.writeTextFile(statePath7, JSON.stringify(old));
  const c = await pretrain({ config: runConfig("es", 9), outDir: out, resume: true, noExport: true });
  c.trainer.dispose();
  m = await readMetrics(join(out, "metrics.jsonl"));
  assert.ok(
    m[7].elapsed_s >= m[6].elapsed_s && m[6].elapsed_s >= 1000,
    JSON.stringify(m.map((r) => r.elapsed_s)),
  );
});

Deno.test("a resume that would shorten a run below its step is refused before it says it shortens it", async () => {
  const out = join(tempDir(), "run");
  const a = await pretrain({ config: runConfig("es", 9), outDir: out, until: 5, noExport: true });
  a.trainer.dispose();
  const configBefore = await Deno.readTextFile(join(out, "config.json"));
  const said: string[] = [];
  const err = await pretrain({
    config: runConfig("es", 9),
    outDir: out,
    resume: true,
    steps: 4,
    noExport: true,
    onMessage: (m) => said.push(m),
  }).then(() => null, (e: Error) => e);
  assert.match(String(err), /already at step 5, past --steps 4/);
  assert.ok(!said.some((m) => /shortening|warmupSteps/.test(m)), said.join("\n"));
  assert.equal(await Deno.readTextFile(join(out, "config.json")), configBefore, "config.json untouched");
  // Shortening to a step not yet reached is allowed, and said.
  const b = await pretrain({
    config: runConfig("es", 9),
    outDir: out,
    resume: true,
    steps: 7,
    noExport: true,
    onMessage: (m) => said.push(m),
  });
  b.trainer.dispose();
  assert.ok(said.some((m) => /shortening the run from 9 to 7 steps/.test(m)), said.join("\n"));
  assert.equal((await readMetrics(join(out, "metrics.jsonl"))).at(-1)!.step, 7);
});

Deno.test("resume of a run killed before its first checkpoint starts again at step 0 (same losses) and removes partial files", async () => {
  const whole = join(tempDir(), "whole"), killed = join(tempDir(), "killed");
  const a = await pretrain({ config: runConfig("gdes", 6), outDir: whole, noExport: true });
  a.trainer.dispose();
  const b = await pretrain({ config: runConfig("gdes", 6), outDir: killed, until: 3, noExport: true });
  b.trainer.dispose();
  // What a kill before the first checkpoint leaves: config, tokenizer, log lines, temporary files.
  await Deno.remove(join(killed, "checkpoints"), { recursive: true });
  await Deno.mkdir(join(killed, "checkpoints", ".step-0000005.4242.tmp"), { recursive: true });
  await Deno.writeTextFile(
    join(killed, "checkpoints", ".step-0000005.4242.tmp", "model.safetensors"),
    "torn",
  );
  await Deno.writeTextFile(join(killed, "metrics.jsonl.4242.1.1700000000000.tmp"), '{"step": 1');
  await Deno.mkdir(join(killed, "export.4242.tmp", "discriminator"), { recursive: true });
  const c = await pretrain({ config: runConfig("gdes", 6), outDir: killed, resume: true });
  c.trainer.dispose();
  const losses = async (dir: string) =>
    (await readMetrics(join(dir, "metrics.jsonl"))).map((x) => [x.step, x.loss_mlm, x.loss_rtd, x.lr]);
  assert.deepEqual(await losses(killed), await losses(whole));
  const left = [
    ...await Array.fromAsync(Deno.readDir(killed)),
    ...await Array.fromAsync(Deno.readDir(join(killed, "checkpoints"))),
  ].map((e) => e.name);
  assert.deepEqual(left.filter((n) => n.endsWith(".tmp")), []);
  assert.ok(left.includes("export"));
});

Deno.test("a diverged run stops at its first non-finite loss and leaves its checkpoints and metrics as they were", async () => {
  const out = join(tempDir(), "run");
  const a = await pretrain({ config: runConfig("gdes", 12), outDir: out, until: 4, noExport: true });
  a.trainer.dispose();
  const latest = () => JSON.parse(Deno.readTextFileSync(join(out, "checkpoints", "latest.json")));
  assert.equal(latest().step, 4);
  // The same run continued at a learning rate no model survives: its weights overflow within a step or two.
  const configPath = join(out, "config.json");
  Deno.writeTextFileSync(
    configPath,
    JSON.stringify({ ...JSON.parse(Deno.readTextFileSync(configPath)), learningRate: 1e30 }),
  );
  const tensorsBefore = tf.memory().numTensors;
  const err = await pretrain({ config: runConfig("gdes", 12), outDir: out, resume: true }).then(
    () => null,
    (e: Error) => e,
  );
  assert.ok(err, "a run whose loss became NaN finished without an error");
  assert.equal(tf.memory().numTensors, tensorsBefore, "the stopped run's model was not freed");
  const m = await readMetrics(join(out, "metrics.jsonl"));
  const stop = m.at(-1)!.step + 1; // the step that diverged logged nothing
  assert.ok(stop > 4 && stop < 12, `stopped at ${stop}`);
  assert.match(
    err.message,
    new RegExp(
      `^step ${stop}: the .* is (NaN|-?Infinity).*training diverged.*checkpoint of step ${latest().step} .*kept`,
    ),
  );
  assert.ok(
    m.every((r) => Number.isFinite(r.loss_mlm) && Number.isFinite(r.loss_rtd)),
    "a non-finite loss logged",
  );
  // The checkpoints written before the diverged step are all there is (checkpointEvery 5), and no export.
  assert.equal(latest().step, Math.max(4, 5 * Math.floor((stop - 1) / 5))); // the last one due before the stop
  assert.ok(!(await Array.fromAsync(Deno.readDir(out))).some((e) => e.name === "export"));
});

Deno.test("a checkpoint of NaN weights is refused, naming the parameter, and nothing is written", async () => {
  const out = join(tempDir(), "run");
  const r = await pretrain({ config: runConfig("gdes", 12), outDir: out, until: 5, noExport: true });
  const before = [...Deno.readDirSync(join(out, "checkpoints"))].map((e) => e.name).sort();
  const name = r.trainer.model.params.names()[0];
  const w = r.trainer.model.params.get(name) as tf.Variable;
  w.assign(tf.fill(w.shape, NaN));
  await assert.rejects(
    saveCheckpoint(out, r.trainer),
    new RegExp(
      `^Error: step 5: ${name.replaceAll(".", "\\.")} holds NaN or infinite values: training diverged`,
    ),
  );
  r.trainer.dispose();
  assert.deepEqual([...Deno.readDirSync(join(out, "checkpoints"))].map((e) => e.name).sort(), before);
  assert.equal(JSON.parse(Deno.readTextFileSync(join(out, "checkpoints", "latest.json"))).step, 5);
});

Deno.test("the tensor count stays flat across training steps (every mode)", async () => {
  for (const sharing of ["es", "nes", "gdes", "mlm"] as const) {
    const before = tf.memory().numTensors;
    const t = new Pretrainer(microConfig(sharing), VOCAB);
    const counts = [];
    for (let s = 0; s < 4; s++) {
      await t.trainStep(randomBatch(s));
      counts.push(tf.memory().numTensors);
    }
    assert.equal(new Set(counts).size, 1, `${sharing}: ${counts}`);
    t.dispose();
    assert.equal(tf.memory().numTensors, before, `${sharing}: dispose frees everything`);
  }
});

Deno.test("micro-batches sum to the whole batch's step: same losses, gradients and updates (every mode)", async () => {
  for (const sharing of ["es", "nes", "gdes", "mlm"] as const) {
    const before = tf.memory().numTensors;
    // Dropout off: with it on, each micro-batch draws its own masks (a different but seeded run).
    const run = async (microBatchSize: number) => {
      const t = new Pretrainer(microConfig(sharing, { dropout: 0, batchSize: 5, microBatchSize }), VOCAB);
      const seen: Map<string, Float32Array>[] = [];
      t.onGradients = (g) => {
        const m = new Map<string, Float32Array>();
        for (const [n, x] of [...g.generator, ...(g.discriminator ?? [])]) {
          m.set(n, x.dataSync() as Float32Array);
        }
        seen.push(m);
      };
      const metrics = [];
      for (let s = 0; s < 2; s++) metrics.push(await t.trainStep(randomBatch(s, 5, 16, s + 1)));
      const params = await t.model.params.toHost();
      t.dispose();
      return { metrics, seen, params };
    };
    const whole = await run(0);
    const split = await run(2); // rows 2 + 2 + 1
    for (const [i, m] of whole.metrics.entries()) {
      const o = split.metrics[i];
      assert.ok(
        Math.abs(m.lossMlm - o.lossMlm) < 1e-5,
        `${sharing} step ${i}: MLM ${m.lossMlm} vs ${o.lossMlm}`,
      );
      if (m.lossRtd !== null) assert.ok(Math.abs(m.lossRtd - o.lossRtd!) < 1e-5, `${sharing}: RTD loss`);
      assert.equal(m.discAcc, o.discAcc, `${sharing}: the same samples, so the same labels`);
    }
    for (const [i, grads] of whole.seen.entries()) {
      for (const [n, g] of grads) {
        const h = split.seen[i].get(n)!;
        const scale = Math.max(1e-6, ...Array.from(g, Math.abs));
        const diff = Math.max(...Array.from(g, (v, k) => Math.abs(v - h[k])));
        assert.ok(
          diff <= 1e-4 * scale,
          `${sharing} step ${i} ${n}: gradient differs by ${diff} (scale ${scale})`,
        );
      }
    }
    for (const [n, p] of whole.params) {
      const q = split.params.get(n)!.data;
      const diff = Math.max(...Array.from(p.data, (v, k) => Math.abs(v - q[k])));
      assert.ok(diff < 1e-5, `${sharing} ${n}: parameters after 2 steps differ by ${diff}`);
    }
    assert.equal(tf.memory().numTensors, before, `${sharing}: no tensor leaks`);
  }
});

Deno.test("automatic micro-batches: only on wasm, only when the batch would not fit its 4 GB heap", () => {
  const small = preset("electra-small"), tiny = preset("tiny");
  // ELECTRA-Small batch 32 takes 2.55 GB of heap in one pass; 64 at once would not fit.
  assert.equal(microBatchRows(small, 32, 128, "wasm"), 32);
  assert.equal(microBatchRows(small, 64, 128, "wasm"), 32);
  assert.equal(microBatchRows(small, 8, 128, "wasm"), 8);
  assert.equal(microBatchRows(tiny, 32, 128, "wasm"), 32);
  assert.equal(microBatchRows(small, 32, 128, "webgpu"), 32);
  assert.equal(microBatchRows(small, 128, 128, "wasm"), 32); // 4 micro-batches of 32
  assert.equal(microBatchRows({ ...tiny, microBatchSize: 5 }, 32, 128, "webgpu"), 5);
});

Deno.test("bad configuration is refused with a message that names the problem", async () => {
  assert.throws(() => applyOverrides(preset("tiny"), { learningRat: 1 }), /unknown config key "learningRat"/);
  // A near miss is named; a key like nothing valid gets the list alone.
  assert.throws(
    () => applyOverrides(preset("tiny"), { hiddenSize: 1 }),
    /"hiddenSize" \(did you mean "discriminator\.hiddenSize"\?\)/,
  );
  assert.throws(
    () => applyOverrides(preset("tiny"), { zzzzzz: 1 }),
    /unknown config key "zzzzzz"; valid keys/,
  );
  // A config spread from a preset in a script is not type-checked at run time: the typo must not train.
  const spread = { ...preset("tiny"), stepz: 20 } as unknown as RunConfig;
  assert.throws(
    () => validateConfig(spread),
    /unknown config key "stepz" \(did you mean "steps"\?\); valid keys: preset, backbone/,
  );
  const nested = { ...preset("tiny"), discriminator: { ...preset("tiny").discriminator, layers: 2 } };
  assert.throws(() => validateConfig(nested), /unknown config key "discriminator\.layers"/);
  assert.doesNotThrow(() => validateConfig(preset("tiny")));
  // A batch from another tokenizer: the error names the id and where it is, not an index in a gather.
  const stray = randomBatch(1, 2, 16);
  stray.inputIds[16 + 3] = 64;
  const t = new Pretrainer(microConfig("es"), VOCAB);
  await assert.rejects(
    () => t.trainStep(stray),
    /token id 64 \(sequence 1, position 3\) is outside the vocabulary of 64 ids/,
  );
  t.dispose();
  // A run folder's config.json holds the run's config and what the run added (backend, init_from): only
  // those two are not config keys (openRun and --resume read such files; an init-from run must open).
  const saved = {
    ...microConfig("es"),
    backend: "wasm",
    backend_info: "wasm: tfjs-backend-wasm 4.22.0",
    init_from: { discriminator: "x" },
  };
  const { config: read, extras } = savedRunConfig(structuredClone(saved));
  assert.deepEqual(read, microConfig("es"));
  assert.deepEqual(extras, {
    backend: "wasm",
    backend_info: "wasm: tfjs-backend-wasm 4.22.0",
    init_from: { discriminator: "x" },
  });
  assert.throws(() => savedRunConfig({ ...saved, rtdWieght: 1 }), /unknown config key "rtdWieght"/);
  // A Pretrainer built by hand checks its config before any kernel sees it.
  const badHeads = applyOverrides(microConfig("es"), { "discriminator.numHeads": 3 });
  assert.throws(() => new Pretrainer(badHeads, VOCAB), /not divisible by 3 attention heads/);
  assert.throws(
    () => new Pretrainer(microConfig("es"), { ...VOCAB, vocabSize: 100 }),
    /tokenizer has 100 tokens but the config says vocabSize 64 \(set the config's vocabSize/,
  );
  assert.throws(() => preset("huge"), /unknown config "huge"; known configs: tiny, electra-small/);
  assert.throws(() => microConfig("xes" as "es"), /unknown sharing mode "xes"/);
  assert.throws(
    () => microConfig("es", { seqLength: 64 }),
    /sequence length 64 is longer than the position table \(maxPositions 16\)/,
  );
  assert.throws(
    () => microConfig("es", { "discriminator.numHeads": 3 }),
    /not divisible by 3 attention heads/,
  );
});

Deno.test("readMetrics reads a run folder or its file, skips a torn last line, and names a wrong path", async () => {
  const dir = tempDir();
  await Deno.writeTextFile(
    join(dir, "metrics.jsonl"),
    '{"step":1,"loss_mlm":2}\n{"step":2,"loss_mlm":1}\n{"step":3,"lo',
  );
  const steps = (m: { step: number }[]) => m.map((r) => r.step);
  assert.deepEqual(steps(await readMetrics(dir)), [1, 2], "a run folder reads its metrics.jsonl");
  assert.deepEqual(steps(await readMetrics(join(dir, "metrics.jsonl"))), [1, 2]);
  // A mistyped path is an error, not an empty run that fails later far from the cause.
  await assert.rejects(() => readMetrics(join(dir, "nope")), /no metrics at .*nope: expected a run folder/);
  assert.deepEqual(await readMetrics(join(dir, "nope"), { allowMissing: true }), []);
  // Damage before the last line is named (a resume would otherwise rewrite the file without it).
  await Deno.writeTextFile(
    join(dir, "metrics.jsonl"),
    '{"step":1,"loss_mlm":2}\n{"step":2,"lo\n{"step":3,"loss_mlm":1}\n',
  );
  await assert.rejects(
    () => readMetrics(dir),
    /metrics\.jsonl line 2 cannot be read \(.*\): the file is damaged/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("an output folder holding other files gets the run beside them, and says so", async () => {
  /** A 2-step run into a new folder holding `files`: what it said. */
  const runInto = async (files: Record<string, string>) => {
    const out = join(tempDir(), "run");
    await Deno.mkdir(out);
    for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(join(out, name), text);
    const said: string[] = [];
    const r = await pretrain({
      config: runConfig("es", 2),
      outDir: out,
      noExport: true,
      onMessage: (m) => said.push(m),
    });
    r.trainer.dispose();
    return { out, said };
  };
  const { out, said } = await runInto({ "notes.txt": "mine" });
  assert.ok(
    said.some((m) => /already holds other files \(notes\.txt\); the run's files go beside them/.test(m)),
    said.join("\n"),
  );
  assert.equal(await Deno.readTextFile(join(out, "notes.txt")), "mine");
  // A folder that holds nothing, or only a lock a dead process left, gets no note.
  const quiet = (await runInto({ ".rtdlab-lock": "" })).said;
  assert.ok(!quiet.some((m) => /other files/.test(m)), quiet.join("\n"));
});

Deno.test("an output folder holding another run is refused (and left as it was) unless resuming", async () => {
  const out = join(tempDir(), "run");
  const r = await pretrain({ config: runConfig("es", 2), outDir: out, noExport: true });
  r.trainer.dispose();
  const before = await Deno.readTextFile(join(out, "metrics.jsonl"));
  await assert.rejects(
    () => pretrain({ config: runConfig("es", 2), outDir: out }),
    /outDir .*run already holds a run \(config\.json\): pass resume: true to continue it, or choose another outDir/,
  );
  assert.equal(await Deno.readTextFile(join(out, "metrics.jsonl")), before);
  // A folder another live process trains (it holds the lock) is refused even with --resume: its temporary
  // files and metrics stay.
  const lockPath = join(out, LOCK_FILE);
  const partial = join(out, "metrics.jsonl.999.1.1.tmp");
  await Deno.writeTextFile(partial, "in flight");
  const holder = await Deno.open(lockPath, { write: true, create: true });
  assert.ok(await holder.tryLock(true));
  await Deno.writeTextFile(lockPath, JSON.stringify({ pid: 4242, since: "now" }));
  await assert.rejects(
    () => pretrain({ config: runConfig("es", 3), outDir: out, resume: true, steps: 3 }),
    /is being trained by process 4242 \(since now\): wait for it, or stop it/,
  );
  await assert.rejects(() => refuseIfTraining(out), /is being trained by process 4242/);
  assert.equal(await Deno.readTextFile(partial), "in flight");
  assert.equal(await Deno.readTextFile(join(out, "metrics.jsonl")), before);
  // The holder gone (its lock with it; the file stays), the run resumes, and gives the lock back at its end.
  holder.close();
  await refuseIfTraining(out);
  const resumed = await pretrain({ config: runConfig("es", 3), outDir: out, resume: true, steps: 3 });
  resumed.trainer.dispose();
  assert.equal(resumed.trainer.step, 3);
  await refuseIfTraining(out);
});

Deno.test("a run on a capped combined corpus says the mix the cap kept, and which part it starved", async () => {
  // Two grammar folders: one of long documents, one of short; a cap that fits the long one's first few.
  const [long, short] = [tempDir("rtdlab-long-"), tempDir("rtdlab-short-")];
  writeGrammarCorpus(long, 6, 400);
  writeGrammarCorpus(short, 6, 4);
  const said: string[] = [];
  const config = { ...runConfig("es", 1), corpus: `${long}+${short}`, corpusMaxChars: 30_000 };
  const r = await pretrain({
    config,
    outDir: join(tempDir(), "run"),
    noExport: true,
    onMessage: (m) => said.push(m),
  });
  r.trainer.dispose();
  const mix = said.find((m) => m.startsWith("corpus mix: ")) ?? said.join("\n");
  assert.ok(mix.startsWith(`corpus mix: ${long} 9`) && mix.includes(`, ${short} `), mix);
  assert.ok(said.some((m) => m.startsWith(`note: ${short} has under 5% of the text`)), said.join("\n"));
});

Deno.test("a new --steps on resume is the run's length from then on; the old export is kept under its step", async () => {
  const out = join(tempDir(), "run");
  const exists = (p: string) => Deno.stat(p).then(() => true, () => false);
  const steps = async () => JSON.parse(await Deno.readTextFile(join(out, "config.json"))).steps;
  const a = await pretrain({ config: runConfig("es", 4), outDir: out });
  a.trainer.dispose();
  const exported = await Deno.readFile(join(out, "export", "discriminator", "model.safetensors"));
  const said: string[] = [];
  const b = await pretrain({
    config: runConfig("es", 4),
    outDir: out,
    resume: true,
    steps: 6,
    until: 5,
    onMessage: (m) => said.push(m),
  });
  b.trainer.dispose();
  assert.ok(said.some((m) => m.includes("extending the run from 4 to 6 steps")), said.join("\n"));
  assert.equal(await steps(), 6);
  // Stopped at 5 of 6: no export/ that could pass for the longer run's, the step-4 one kept beside it.
  assert.equal(await exists(join(out, "export")), false);
  assert.deepEqual(
    await Deno.readFile(join(out, "export-step-4", "discriminator", "model.safetensors")),
    exported,
  );
  // A plain resume (what finetune's hint says) finishes the longer run.
  const c = await pretrain({ config: runConfig("es", 4), outDir: out, resume: true });
  assert.equal(c.trainer.step, 6);
  c.trainer.dispose();
  assert.ok(await exists(join(out, "export", "discriminator", "model.safetensors")));
  // Shorter than where the run is, or --until past its end: refused, nothing rewritten.
  const metrics = await Deno.readTextFile(join(out, "metrics.jsonl"));
  await assert.rejects(
    () => pretrain({ config: runConfig("es", 4), outDir: out, resume: true, steps: 5 }),
    /is already at step 6, past --steps 5/,
  );
  // A longer config.steps on a plain resume is not dropped silently: it names the option that extends.
  await assert.rejects(
    () => pretrain({ config: runConfig("es", 8), outDir: out, resume: true }),
    /config\.steps is 8 but the run's is 6; .*pass steps: 8 to train it to step 8/,
  );
  await assert.rejects(
    () => pretrain({ config: runConfig("es", 4), outDir: out, resume: true, until: 9 }),
    /until 9 is past the run's last step \(6\); give steps 9 to train longer/,
  );
  assert.equal(await steps(), 6);
  assert.equal(await Deno.readTextFile(join(out, "metrics.jsonl")), metrics);
  const fresh = join(tempDir(), "fresh");
  await assert.rejects(
    () => pretrain({ config: runConfig("es", 4), outDir: fresh, until: 5 }),
    /until 5 is past the run's last step \(4\)/,
  );
  assert.equal(await exists(fresh), false);
});

Deno.test("a damaged newest checkpoint names the older one to resume from, and that way works", async () => {
  const out = join(tempDir(), "run");
  // Checkpoints at steps 5 and 10 (two are kept).
  const r = await pretrain({ config: runConfig("es", 10), outDir: out, noExport: true });
  r.trainer.dispose();
  const weights = join(out, "checkpoints", "step-0000010", "model.safetensors");
  await Deno.writeFile(weights, (await Deno.readFile(weights)).slice(0, 100));
  const index = join(out, "checkpoints", "latest.json");
  const err = await pretrain({ config: runConfig("es", 12), outDir: out, resume: true, steps: 12 })
    .then(() => null, (e: Error) => e.message);
  assert.match(String(err), /model\.safetensors: not a valid safetensors file/);
  assert.match(
    String(err),
    /older checkpoints: step-0000005: .*write \{"checkpoint": "step-0000005"\} into .*latest\.json/,
  );
  // A checkpoint of another run is no damage: an older one would not match either, so no hint.
  const newest = join(out, "checkpoints", "step-0000010");
  await assert.rejects(
    () => olderCheckpointHint(new CheckpointMismatch("other vocabulary"), newest),
    (e: Error) => e.message === "other vocabulary",
  );
  await assert.rejects(
    () => olderCheckpointHint(new Error("torn"), newest),
    /^Error: torn\. The run's older/,
  );
  await Deno.writeTextFile(index, JSON.stringify({ checkpoint: "step-0000005" }));
  const b = await pretrain({
    config: runConfig("es", 12),
    outDir: out,
    resume: true,
    steps: 12,
    noExport: true,
  });
  b.trainer.dispose();
  const steps = (await readMetrics(join(out, "metrics.jsonl"))).map((m) => m.step);
  assert.deepEqual(
    steps,
    Array.from({ length: 12 }, (_, i) => i + 1),
    "steps 6-10 retrained once, not twice",
  );
});

Deno.test("resume refuses a corrupt checkpoint and a vocabulary mismatch, naming the file", async () => {
  const out = join(tempDir(), "run");
  const r = await pretrain({ config: runConfig("es", 5), outDir: out, noExport: true });
  r.trainer.dispose();
  const ckpt = join(out, "checkpoints", "step-0000005");
  const weights = join(ckpt, "model.safetensors");
  const good = await Deno.readFile(weights);
  await Deno.writeFile(weights, good.slice(0, 100));
  await assert.rejects(
    () => pretrain({ config: runConfig("es", 8), outDir: out, resume: true, steps: 8 }),
    /model\.safetensors: not a valid safetensors file/,
  );
  assert.equal(JSON.parse(await Deno.readTextFile(join(out, "config.json"))).steps, 5); // not extended
  await Deno.writeFile(weights, good);
  // A damaged checkpoint index is an error naming it and the checkpoints there, not a fresh start that would
  // empty metrics.jsonl.
  const index = join(out, "checkpoints", "latest.json");
  const metrics = await Deno.readTextFile(join(out, "metrics.jsonl"));
  await Deno.writeTextFile(index, '{"checkpoint": "step-00');
  await assert.rejects(
    () => pretrain({ config: runConfig("es", 8), outDir: out, resume: true, steps: 8 }),
    /corrupt checkpoint index .*latest\.json: cannot parse it .*checkpoints are step-0000005/,
  );
  await Deno.writeTextFile(index, JSON.stringify({ checkpoint: "step-0000009" }));
  await assert.rejects(() => latestCheckpoint(out), /names step-0000009, which is not there/);
  assert.equal(await Deno.readTextFile(join(out, "metrics.jsonl")), metrics);
  // Killed between a first checkpoint and its index: the folder, renamed into place whole, is the latest.
  await Deno.remove(index);
  assert.equal(await latestCheckpoint(out), ckpt);
  assert.equal(await latestCheckpoint(join(out, "nope")), null);
  // Loading by hand: a run folder instead of its checkpoint, a wrong path, a torn state.json.
  await assert.rejects(
    () => loadCheckpoint(out, r.trainer),
    /is a run folder, not a checkpoint: .*, e\.g\. the latest, .*step-0000005/,
  );
  await assert.rejects(() => loadCheckpoint(join(out, "nope"), r.trainer), /no checkpoint at .*nope/);
  const statePath = join(ckpt, "state.json");
  const state = await Deno.readTextFile(statePath);
  await Deno.writeTextFile(statePath, state.slice(0, 20));
  await assert.rejects(
    () => loadCheckpoint(ckpt, r.trainer),
    /corrupt checkpoint: cannot parse .*state\.json/,
  );
  await Deno.writeTextFile(statePath, state);
  const cfgPath = join(out, "config.json");
  const cfg = JSON.parse(await Deno.readTextFile(cfgPath));
  await Deno.writeTextFile(cfgPath, JSON.stringify({ ...cfg, vocabSize: cfg.vocabSize + 1 }));
  await assert.rejects(
    () => pretrain({ config: runConfig("es", 8), outDir: out, resume: true, steps: 8 }),
    /tokenizer\.json has \d+ tokens but config\.json says/,
  );
  // A torn config.json is named; an exported model is pointed at --init-from.
  await Deno.writeTextFile(cfgPath, JSON.stringify(cfg).slice(0, 30));
  await assert.rejects(
    () => pretrain({ config: runConfig("es", 8), outDir: out, resume: true }),
    /resume of .*: cannot read .*config\.json \(/,
  );
  // An exported model is refused without a file written into it, pointed at the folder --init-from takes.
  const exportDir = join(tempDir(), "export");
  const exported = join(exportDir, "discriminator");
  for (const m of ["discriminator", "generator"]) {
    await Deno.mkdir(join(exportDir, m), { recursive: true });
    await Deno.writeTextFile(
      join(exportDir, m, "config.json"),
      '{"architectures": ["ElectraForPreTraining"]}',
    );
  }
  // The export folder itself: not a run either (its parent here is none, so no run is named).
  await assert.rejects(
    () => pretrain({ config: runConfig("es", 8), outDir: exportDir, resume: true, cli: true }),
    new RegExp(
      `holds exported models \\(discriminator/, generator/\\), not a run; start a new run from it with ` +
        `--init-from ${exportDir}$`,
    ),
  );
  assert.deepEqual([...Deno.readDirSync(exportDir)].map((e) => e.name).sort(), [
    "discriminator",
    "generator",
  ]);
  // The hint names the command line's flags under `deno task pretrain` (cli), pretrain()'s options otherwise.
  await assert.rejects(
    () => pretrain({ config: runConfig("es", 8), outDir: exported, resume: true, cli: true }),
    new RegExp(`an exported model, not a run folder; start a new run from it with --init-from ${exportDir}$`),
  );
  await assert.rejects(
    () => pretrain({ config: runConfig("es", 8), outDir: exported, resume: true }),
    new RegExp(`start a new run from it with initFrom: \\{ dir: "${exportDir}" \\}$`),
  );
  assert.deepEqual([...Deno.readDirSync(exported)].map((e) => e.name), ["config.json"], "no lock file left");
  const alone = join(tempDir(), "model");
  await Deno.mkdir(alone);
  await Deno.writeTextFile(join(alone, "config.json"), '{"model_type": "electra"}');
  await assert.rejects(
    () => pretrain({ config: runConfig("es", 8), outDir: alone, resume: true, cli: true }),
    /--init-discriminator .*model --init-generator DIR, or --init-from .*model --sharing mlm/,
  );
  await assert.rejects(
    () => pretrain({ config: runConfig("es", 8), outDir: alone, resume: true }),
    /initFrom: \{ discriminator: ".*model", generator: DIR \}, or initFrom: \{ dir: ".*model" \} and config\.sharing "mlm"/,
  );
  // An exported MLM baseline (a folder named mlm) is pointed at the MLM mode, in either wording.
  const mlm = join(tempDir(), "mlm");
  await Deno.mkdir(mlm);
  await Deno.writeTextFile(join(mlm, "config.json"), '{"model_type": "electra"}');
  await assert.rejects(
    () => pretrain({ config: runConfig("es", 8), outDir: mlm, resume: true }),
    /start a new run from it with initFrom: \{ dir: ".*mlm" \} and config\.sharing "mlm"$/,
  );
  await assert.rejects(
    () => pretrain({ config: runConfig("es", 8), outDir: mlm, resume: true, cli: true }),
    /start a new run from it with --init-from .*mlm --sharing mlm$/,
  );
});

Deno.test("an empty corpus folder is refused before anything is written", async () => {
  const empty = tempDir("rtdlab-empty-");
  const out = join(tempDir(), "run");
  const c = validateConfig(applyOverrides(runConfig("es", 2), { corpus: empty }));
  await assert.rejects(() => pretrain({ config: c, outDir: out }), /empty corpus/);
  await assert.rejects(() => Deno.stat(out), Deno.errors.NotFound);
});

Deno.test("a run records the backend line it started with; a resume on other BLAS kernels says its steps differ", async () => {
  const out = join(tempDir(), "run");
  const a = await pretrain({ config: runConfig("gdes", 4), outDir: out, until: 2 });
  a.trainer.dispose();
  const configPath = join(out, "config.json");
  const saved = JSON.parse(await Deno.readTextFile(configPath));
  assert.equal(
    saved.backend_info,
    describeBackend().replace(/\s*\(\d+ threads?\)/g, "").replace(/, \d+ threads?/g, ""),
  );
  const resume = async () => {
    const said: string[] = [];
    const r = await pretrain({
      config: runConfig("gdes", 4),
      outDir: out,
      resume: true,
      until: 3,
      onMessage: (m) => said.push(m),
    });
    r.trainer.dispose();
    return said.filter((m) => m.startsWith("note: this run started with"));
  };
  // Only the thread counts differ: the same sums, no note.
  const threads = describeBackend().replace(/\(\d+ threads?\)/, "(7 threads)");
  await Deno.writeTextFile(configPath, JSON.stringify({ ...saved, backend_info: threads }));
  assert.deepEqual(await resume(), []);
  await Deno.writeTextFile(
    configPath,
    JSON.stringify({ ...saved, backend_info: "wasm: matmuls on OpenBLAS, Zen kernels" }),
  );
  const [note] = await resume();
  assert.match(
    note ?? "",
    /started with "wasm: matmuls on OpenBLAS, Zen kernels"; continuing with .*not bit for bit/,
  );
});

Deno.test("a run trains on exactly the rows it did not hold out, never masks its tokenizer's specials, and evaluation scores exactly the held-out rows", async () => {
  // Seed 3, not 0: a split that dropped the seed would still pass at 0.
  const config = validateConfig({ ...runConfig("gdes", 12), seed: 3, heldOutSequences: 6, logEvery: 100 });
  const served: Int32Array[] = [];
  const trainStep = Pretrainer.prototype.trainStep;
  Pretrainer.prototype.trainStep = function (batch) {
    served.push(batch.inputIds.slice());
    return trainStep.call(this, batch);
  };
  const out = join(tempDir(), "run");
  let r;
  try {
    r = await pretrain({ config, outDir: out, noExport: true });
  } finally {
    Pretrainer.prototype.trainStep = trainStep;
  }
  const { tokenizer, data } = await prepareRunData(config);
  const { train, heldOut } = holdOut(data, 6, 3);
  assert.equal(heldOut.count, 6);
  const rowsOf = (ids: Int32Array, length: number) =>
    Array.from(
      { length: ids.length / length },
      (_, i) => ids.subarray(i * length, (i + 1) * length).join(","),
    );
  const heldRows = new Set(rowsOf(heldOut.inputIds, heldOut.length));
  assert.equal(heldRows.size, 6, "the held-out rows are distinct");
  // Every step's batch is the sampler's over the training rows, and no held-out row is ever served.
  const sampler = new BatchSampler(train, config.batchSize, config.seed);
  served.forEach((ids, k) => assert.deepEqual(ids, sampler.batchAt(k).inputIds, `step ${k}'s batch`));
  const servedRows = served.flatMap((ids) => rowsOf(ids, config.seqLength));
  assert.equal(servedRows.filter((row) => heldRows.has(row)).length, 0, "a held-out row was trained on");
  // The run's masking treats all five of its tokenizer's specials as special, and never selects them.
  const specials = Object.values(tokenizer.specialIds);
  assert.equal(specials.length, 5);
  for (const id of specials) assert.ok(r.trainer.vocab.isSpecial(id), `special id ${id} is maskable`);
  for (const [k, ids] of served.entries()) {
    const masked = r.trainer.mask(sampler.batchAt(k), new Rng(k));
    for (const pos of masked.selected) {
      assert.ok(!specials.includes(ids[pos]), `step ${k} masks special ${ids[pos]}`);
    }
  }
  // What `deno task evaluate` scores is the very set training withheld.
  const opened = await openRun(out);
  const ev = await evaluationSequences(opened, out);
  assert.equal(ev.heldOut, true);
  assert.deepEqual(ev.sequences.inputIds, heldOut.inputIds);
  opened.trainer.dispose();
  r.trainer.dispose();
});

Deno.test("BatchSampler: each epoch is a fresh seeded permutation that serves every row once, in disjoint batches", () => {
  // Row r of a corpus of `count` rows holds the id r + 10 at every position: a batch names its rows.
  const corpus = (count: number) => ({
    inputIds: Int32Array.from({ length: count * 4 }, (_, i) => Math.floor(i / 4) + 10),
    tokenTypeIds: new Int32Array(count * 4),
    length: 4,
    count,
  });
  const rowsAt = (s: BatchSampler, step: number) => {
    const ids = s.batchAt(step).inputIds;
    return Array.from({ length: s.batchSize }, (_, i) => ids[i * 4] - 10);
  };
  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
  const all = (n: number) => Array.from({ length: n }, (_, i) => i);
  const s = new BatchSampler(corpus(10), 5, 1);
  const epoch0 = [...rowsAt(s, 0), ...rowsAt(s, 1)], epoch1 = [...rowsAt(s, 2), ...rowsAt(s, 3)];
  assert.deepEqual(sorted(epoch0), all(10), "epoch 0 serves every row once");
  assert.deepEqual(sorted(epoch1), all(10), "epoch 1 serves every row once");
  assert.notDeepEqual(epoch1, epoch0, "epoch 1 is another order");
  assert.notDeepEqual(
    rowsAt(new BatchSampler(corpus(10), 5, 2), 0),
    rowsAt(s, 0),
    "another seed, another batch",
  );
  assert.deepEqual(
    rowsAt(new BatchSampler(corpus(10), 5, 1), 3),
    rowsAt(s, 3),
    "a pure function of (seed, step)",
  );
  // Batches that straddle epochs (7 rows, 3 a batch): any 7 consecutive draws from an epoch's start are all rows.
  const odd = new BatchSampler(corpus(7), 3, 0);
  const draws = [0, 1, 2, 3, 4, 5, 6].flatMap((step) => rowsAt(odd, step)); // 21 draws = 3 epochs
  for (let e = 0; e < 3; e++) assert.deepEqual(sorted(draws.slice(7 * e, 7 * e + 7)), all(7), `epoch ${e}`);
});

/**
 * The logic that decides to reuse, skip, resume or replace earlier work: a sweep point, a demo run, a
 * comparison's pieces, checkpoints, locks, atomic writes, --init-from. A wrong call here mixes results of
 * different settings without a sign, so each rule is pinned (and was checked against a bug that breaks it).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../lib/backend/mod.ts";
import { applyOverrides, preset, type RunConfig, validateConfig } from "../lib/config.ts";
import { EVAL_FILE, type EvalSettings, pointState, sameRunConfig } from "../lib/sweep/runs.ts";
import { exportModels, latestCheckpoint, loadCheckpoint, saveCheckpoint } from "../lib/train/checkpoint.ts";
import { LOCK_FILE, removeRunFolder } from "../lib/io/run_lock.ts";
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { Pretrainer } from "../lib/train/pretrain.ts";
import { initTokenizer, readInitFolders } from "../lib/train/init_from.ts";
import { WordPieceTokenizer } from "../lib/text/tokenizer.ts";
import { demoOverrides } from "../tasks/demo.ts";
import { parseCompareArgs, pretrainArgs } from "../lib/finetune/compare_plan.ts";
import { parseCli as parsePretrainCli } from "../tasks/pretrain.ts";
import { finetuneDir } from "../lib/finetune/run.ts";
import { MICRO_TOKENIZER, microConfig, tempDir, VOCAB } from "./_helpers.ts";

await initBackend("wasm");

const ROOT = new URL("..", import.meta.url).pathname;
const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

// ---- sweep: which saved config counts as the point's (m1, m2, m19, m20) ----

Deno.test("sameRunConfig: a change of seed, steps, corpus or a nested size is another run", () => {
  const config = microConfig("es");
  const saved = JSON.parse(JSON.stringify({ ...config, vocabSize: 999, backend: "wasm", backend_info: "x" }));
  assert.ok(sameRunConfig(config, saved), "vocabSize, backend and backend_info do not count");
  const differs = (k: string, v: unknown) =>
    assert.ok(!sameRunConfig(validateConfig(applyOverrides(config, { [k]: v })), saved), `${k} = ${v}`);
  differs("seed", config.seed + 1); // m1
  differs("steps", config.steps + 10); // m19
  differs("corpus", "synthetic:echo"); // m20
  differs("discriminator.numLayers", 2); // m2: a nested key
  differs("discriminator.hiddenSize", 64); // m2
});

// ---- sweep: what a point folder still needs, from its files alone (m3, m4, m5, m27) ----

async function fakePoint(
  dir: string,
  config: RunConfig,
  o: { metricsTo: number; checkpointAt: number; eval?: { step: number; settings: EvalSettings } },
) {
  await Deno.mkdir(join(dir, "checkpoints", `step-${String(o.checkpointAt).padStart(7, "0")}`), {
    recursive: true,
  });
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify({ ...config, backend: "wasm" }));
  const name = `step-${String(o.checkpointAt).padStart(7, "0")}`;
  await Deno.writeTextFile(
    join(dir, "checkpoints", name, "state.json"),
    JSON.stringify({ step: o.checkpointAt }),
  );
  await Deno.writeTextFile(join(dir, "checkpoints", "latest.json"), JSON.stringify({ checkpoint: name }));
  await Deno.writeTextFile(
    join(dir, "metrics.jsonl"),
    Array.from({ length: o.metricsTo }, (_, i) => JSON.stringify({ step: i + 1 }) + "\n").join(""),
  );
  await Deno.mkdir(join(dir, "export", "discriminator"), { recursive: true });
  await Deno.writeTextFile(join(dir, "export", "discriminator", "model.safetensors"), "x");
  if (o.eval) {
    await Deno.writeTextFile(
      join(dir, EVAL_FILE),
      JSON.stringify({ format: "rtdlab-eval-1", step: o.eval.step, settings: o.eval.settings }),
    );
  }
}

Deno.test("pointState: done only when metrics, checkpoint and evaluation are all of the last step and these settings", async () => {
  const config = microConfig("es", { steps: 6 });
  const settings: EvalSettings = { temperature: 1, seed: 0, batchSize: 4 };
  const state = async (o: Parameters<typeof fakePoint>[2]) => {
    const dir = join(tempDir(), "p");
    await fakePoint(dir, config, o);
    return await pointState(dir, config, settings);
  };
  const ev = { step: 6, settings };
  assert.equal(await state({ metricsTo: 6, checkpointAt: 6, eval: ev }), "done", "the control");
  // Logged its last step, but the last checkpoint is earlier (killed before the final one): resume. (m3)
  assert.equal(await state({ metricsTo: 6, checkpointAt: 3, eval: ev }), "resume");
  // The checkpoint is at the end but metrics.jsonl stops earlier: not a finished run. (m4)
  assert.equal(await state({ metricsTo: 3, checkpointAt: 6, eval: ev }), "resume");
  // An evaluation of another step, or with another batch size, is redone. (m5, m27)
  assert.equal(await state({ metricsTo: 6, checkpointAt: 6, eval: { step: 3, settings } }), "evaluate");
  assert.equal(
    await state({
      metricsTo: 6,
      checkpointAt: 6,
      eval: { step: 6, settings: { ...settings, batchSize: 8 } },
    }),
    "evaluate",
  );
});

// ---- checkpoints: the newest is found, the last two are kept, a mismatched run is refused (m6, m7, m8, m9) ----

Deno.test("checkpoints: without an index the newest folder is the latest; only the last two are kept", async () => {
  const run = tempDir();
  const t = new Pretrainer(microConfig("es"), VOCAB);
  try {
    for (const step of [1, 2, 3]) {
      t.step = step;
      await saveCheckpoint(run, t);
    }
    const names = (await Array.fromAsync(Deno.readDir(join(run, "checkpoints"))))
      .filter((e) => e.isDirectory).map((e) => e.name).sort();
    assert.deepEqual(names, ["step-0000002", "step-0000003"]); // m7
    await Deno.remove(join(run, "checkpoints", "latest.json"));
    assert.equal(await latestCheckpoint(run), join(run, "checkpoints", "step-0000003")); // m6
  } finally {
    t.dispose();
  }
});

Deno.test("loadCheckpoint refuses a checkpoint of another sharing mode or vocabulary, by name", async () => {
  const run = tempDir();
  const t = new Pretrainer(microConfig("es"), VOCAB);
  t.step = 1;
  const ckpt = await saveCheckpoint(run, t);
  t.dispose();
  const nes = new Pretrainer(microConfig("nes"), VOCAB);
  await assert.rejects(() => loadCheckpoint(ckpt, nes), /was trained with sharing es, not nes/); // m8
  nes.dispose();
  const wide = new Pretrainer(microConfig("es", { vocabSize: 72 }), { ...VOCAB, vocabSize: 72 });
  await assert.rejects(
    () => loadCheckpoint(ckpt, wide),
    /has a 64-token vocabulary but the run's tokenizer has 72/,
  ); // m9
  wide.dispose();
});

// ---- the lock and atomic writes (m11, m12) ----

Deno.test("removeRunFolder leaves a folder another process trains; removes it once the lock is free", async () => {
  const dir = join(tempDir(), "run");
  await Deno.mkdir(dir);
  await Deno.writeTextFile(join(dir, "metrics.jsonl"), "{}\n");
  const holder = await Deno.open(join(dir, LOCK_FILE), { write: true, create: true });
  assert.ok(await holder.tryLock(true));
  await assert.rejects(() => removeRunFolder(dir), /is being trained by/);
  assert.equal(await Deno.readTextFile(join(dir, "metrics.jsonl")), "{}\n");
  holder.close();
  await removeRunFolder(dir);
  assert.equal(await exists(dir), false);
});

Deno.test("writeFileAtomic replaces the file (a new inode renamed over it), never rewrites it in place", async () => {
  const dir = tempDir();
  const path = join(dir, "state.json"), alias = join(dir, "alias.json");
  await Deno.writeTextFile(path, "old");
  await Deno.link(path, alias); // a reader holding the old file
  await writeFileAtomic(path, "new");
  assert.equal(await Deno.readTextFile(path), "new");
  assert.equal(
    await Deno.readTextFile(alias),
    "old",
    "written in place: a reader saw the file change under it",
  );
  assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [
    "alias.json",
    "state.json",
  ]);
});

// ---- --init-from: both folders must hold one vocabulary, of the model's size (m18, m28) ----

Deno.test("--init-from: folders with different vocabularies of one size, or a tokenizer of another size, are refused", async () => {
  const a = new Pretrainer(microConfig("es"), VOCAB);
  const [disc, gen] = await exportModels(a, tempDir("rtdlab-export-"), MICRO_TOKENIZER);
  a.dispose();
  const words = Array.from({ length: 64 }, (_, i) => MICRO_TOKENIZER.idToToken(i));
  [words[5], words[6]] = [words[6], words[5]]; // same size, two ids swapped
  await WordPieceTokenizer.fromVocab(words).save(join(gen, "tokenizer.json"));
  await Deno.remove(join(gen, "vocab.txt")).catch(() => {});
  const f = await readInitFolders({ discriminator: disc, generator: gen }, "es");
  assert.throws(
    () => initTokenizer(f, { vocabSize: 64 } as RunConfig),
    /are different vocabularies \(id 5: /,
  );
  const same = await readInitFolders({ discriminator: disc, generator: disc }, "es");
  assert.equal(initTokenizer(same, { vocabSize: 64 } as RunConfig).vocabSize, 64, "the control");
  assert.throws(
    () => initTokenizer(same, { vocabSize: 80 } as RunConfig),
    /has 64 tokens but the model's vocab_size is 80/,
  );
});

// ---- deno task demo: which earlier runs it reuses (m13, m14, m15) ----

async function demo(out: string, ...extra: string[]) {
  const args = [
    "run",
    "-A",
    join(ROOT, "tasks/demo.ts"),
    "--out",
    out,
    "--modes",
    "es",
    "--no-report",
    "--steps",
    "4",
    "--batch",
    "2",
    "--seq",
    "16",
    "--probe-every",
    "0",
    "--seed",
    "0",
    ...extra,
  ];
  const r = await new Deno.Command(Deno.execPath(), { args, env: { RTDLAB_CACHE: CACHE } }).output();
  return {
    code: r.code,
    stdout: new TextDecoder().decode(r.stdout),
    stderr: new TextDecoder().decode(r.stderr),
  };
}
const CACHE = tempDir("rtdlab-cache-");

/** A finished demo run of mode es as `deno task demo --steps 4 --batch 2 --seq 16 --probe-every 0` leaves it. */
async function fakeDemoRun(
  dir: string,
  o: { seed?: number; steps?: number; exported?: boolean; sharing?: string } = {},
) {
  const overrides = demoOverrides({ steps: 4, batch: 2, seq: 16, lr: 1e-3, probeEvery: 0, seed: 0, set: [] });
  const config = validateConfig(
    applyOverrides(preset("deberta-mini"), {
      ...overrides,
      sharing: o.sharing ?? "es",
      seed: o.seed ?? 0,
      steps: o.steps ?? 4,
    }),
  );
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    join(dir, "config.json"),
    JSON.stringify({ ...config, vocabSize: 100, backend: "wasm" }),
  );
  const rec = (step: number) => ({
    step,
    loss_mlm: 3,
    loss_rtd: 0.5,
    disc_acc: 0.8,
    disc_acc_replaced: 0.1,
    disc_auc: 0.55,
    base_rate: 0.5,
    rtd_gain: 0,
    replaced_frac: 0.15,
    gen_acc: 0.2,
    lr: 1e-3,
    grad_norm_g: 1,
    grad_norm_d: 1,
    tokens_per_s: 100,
    elapsed_s: step,
  });
  await Deno.writeTextFile(
    join(dir, "metrics.jsonl"),
    [1, 2, 3, 4].map((s) => JSON.stringify(rec(s)) + "\n").join(""),
  );
  if (o.exported ?? true) {
    await Deno.mkdir(join(dir, "export", "discriminator"), { recursive: true });
  } else {
    // Killed mid-export; its checkpoint index is damaged, so a resume (the right call) fails by name at once.
    await Deno.mkdir(join(dir, "checkpoints", "step-0000004"), { recursive: true });
    await Deno.writeTextFile(join(dir, "checkpoints", "latest.json"), "{");
  }
}

Deno.test("deno task demo: a finished run of the same settings is reused; another seed or length is refused; no export resumes", async () => {
  const out = tempDir();
  await fakeDemoRun(join(out, "es"));
  const metrics = await Deno.readTextFile(join(out, "es", "metrics.jsonl"));
  const same = await demo(out);
  assert.equal(same.code, 0, same.stderr);
  assert.match(same.stdout, /rtdlab demo/);
  assert.equal(await Deno.readTextFile(join(out, "es", "metrics.jsonl")), metrics, "reused, not retrained");

  for (
    const [what, o] of [["seed", { seed: 1 }], ["steps", { steps: 5 }], ["mode", {
      sharing: "gdes",
    }]] as const
  ) { // m13, m14
    const other = tempDir();
    await fakeDemoRun(join(other, "es"), o);
    const r = await demo(other);
    assert.equal(r.code, 2, `${what}: ${r.stderr}`);
    assert.match(r.stderr, /es holds a demo run with other settings/, what);
  }

  const killed = tempDir(); // m15
  await fakeDemoRun(join(killed, "es"), { exported: false });
  const r = await demo(killed);
  assert.equal(r.code, 1, r.stderr + r.stdout);
  assert.match(r.stderr, /es failed:\nerror: corrupt checkpoint index/);
});

// ---- deno task compare: which pieces count as done (m16, m17) ----

Deno.test("deno task compare: a pre-training run is done only once exported and of the plan's settings; a fine-tune only once finished and of its settings", async () => {
  const cwd = tempDir();
  const argv = [
    "--quick",
    "--modes",
    "es",
    "--pretrain-seeds",
    "0",
    "--finetune-seeds",
    "0",
    "--tasks",
    "echo-intact",
    "--no-scratch",
    "--name",
    "t",
  ];
  const { plan } = parseCompareArgs(argv);
  const root = join(cwd, "runs", "compare", "t");
  await Deno.mkdir(root, { recursive: true });
  await Deno.writeTextFile(join(root, "plan.json"), JSON.stringify(plan, null, 2));
  const run = join(root, "pretrain", "es-s0");
  let lastErr = "";
  const toRun = async () => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(ROOT, "tasks/compare.ts"), ...argv, "--report-only"],
      cwd,
    }).output();
    const err = new TextDecoder().decode(r.stderr);
    lastErr = err;
    // "F of N jobs finished (--report-only …)": the jobs a run would do, as "N − F/N".
    const m = err.match(/(\d+) of (\d+) jobs finished \(--report-only/);
    return m ? `${Number(m[2]) - Number(m[1])}/${m[2]}` : err;
  };
  // The config the plan's run would have (as the child saves it, less what it adds).
  const planned = parsePretrainCli([
    ...pretrainArgs(plan, "es", 0, join("runs", "compare", "t", "pretrain", "es-s0")),
    "--steps",
    String(plan.steps),
  ]).config;
  await Deno.mkdir(run, { recursive: true });
  await Deno.writeTextFile(join(run, "config.json"), JSON.stringify({ ...planned, backend: "wasm" }));
  await Deno.writeTextFile(join(run, "metrics.jsonl"), "");
  assert.equal(await toRun(), "2/2", "a run without its export is not done"); // m16
  await Deno.mkdir(join(run, "export", "discriminator"), { recursive: true });
  await Deno.writeTextFile(join(run, "export", "discriminator", "model.safetensors"), "x");
  assert.equal(await toRun(), "1/2");
  const ft = finetuneDir(run, "echo-intact", 0);
  await Deno.mkdir(ft, { recursive: true });
  const t = plan.tasks[0];
  const finished = {
    task: "echo-intact",
    hyper: { learningRate: plan.lr, batchSize: plan.batchFt, epochs: t.epochs, maxLength: t.maxLength },
    split: { caps: { train: t.maxTrain, eval: t.maxEval } },
  };
  // Of these settings but interrupted: re-run.
  await Deno.writeTextFile(join(ft, "metrics.json"), JSON.stringify({ ...finished, interrupted: true }));
  assert.equal(await toRun(), "1/2", "an interrupted fine-tune is re-run"); // m17
  await Deno.writeTextFile(join(ft, "metrics.json"), JSON.stringify(finished));
  assert.equal(await toRun(), "0/2");
  // A fine-tune of another learning rate (a --force over other settings) is redone, not reported as this plan's.
  await Deno.writeTextFile(
    join(ft, "metrics.json"),
    JSON.stringify({ ...finished, hyper: { ...finished.hyper, learningRate: plan.lr * 2 } }),
  );
  assert.equal(await toRun(), "1/2");
  assert.match(
    lastErr,
    /left out of the results: .*metrics\.json is of other settings than this comparison's/,
  );
  await Deno.writeTextFile(join(ft, "metrics.json"), JSON.stringify(finished));
  // A finished run of other settings (here: half the steps) is trained again, and its fine-tunes with it.
  await Deno.writeTextFile(
    join(run, "config.json"),
    JSON.stringify({ ...planned, steps: planned.steps / 2 }),
  );
  assert.equal(await toRun(), "2/2");
});

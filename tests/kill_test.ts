/**
 * Kill at any moment: a real `deno task pretrain` child is killed with SIGKILL at seeded random moments
 * (start-up and data preparation, a training step, the middle of a checkpoint write, the middle of the
 * export) and resumed each time. The finished run must have the losses and the exported weights of an
 * uninterrupted run, and no partial file left behind.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Rng } from "../lib/rng.ts";
import { readMetrics } from "../lib/train/run.ts";
import { tempDir } from "./_helpers.ts";

const PRETRAIN = fileURLToPath(new URL("../tasks/pretrain.ts", import.meta.url));
const CORPUS = fileURLToPath(new URL("../data/corpus-sample", import.meta.url));
const STEPS = 60;

/** A micro GDES run on the shipped sample corpus: ~10 ms steps, a checkpoint every 5 steps. */
const CONFIG = {
  corpus: CORPUS,
  tokenizerVocabSize: 300,
  maxPositions: 32,
  seqLength: 32,
  embeddingSize: 32,
  "discriminator.hiddenSize": 32,
  "discriminator.numLayers": 1,
  "discriminator.numHeads": 2,
  "discriminator.intermediateSize": 64,
  generatorHiddenFraction: 0.5,
  batchSize: 4,
  warmupSteps: 3,
  learningRate: 3e-3,
  logEvery: 1,
  checkpointEvery: 5,
};

/** When to kill a child: a delay after its start or after its n-th step, or when a file matching `pattern` appears. */
type Trigger =
  | { kind: "time"; ms: number }
  | { kind: "step"; nth: number; ms: number }
  | { kind: "file"; pattern: RegExp; nth: number; what: string }
  | { kind: "none" };

interface Life {
  killed: string | null;
  code: number;
  stderr: string;
}

/** Runs one pretrain child until it exits or `trigger` fires (then SIGKILL). */
async function life(
  args: string[],
  trigger: Trigger,
  watchDir: string,
  env: Record<string, string>,
): Promise<Life> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", PRETRAIN, ...args, "--progress-jsonl"],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let killed: string | null = null;
  const kill = (why: string) => {
    if (killed !== null) return;
    killed = why;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  };
  const stderr = new Response(child.stderr).text();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let watcher: Deno.FsWatcher | undefined;
  if (trigger.kind === "time") timer = setTimeout(() => kill(`${trigger.ms} ms after start`), trigger.ms);
  if (trigger.kind === "file") {
    watcher = Deno.watchFs(watchDir, { recursive: true });
    let seen = 0;
    (async () => {
      for await (const ev of watcher!) {
        const hit = ev.paths.find((p) => trigger.pattern.test(p));
        if (ev.kind === "create" && hit && ++seen === trigger.nth) kill(`${trigger.what} (${hit})`);
      }
    })().catch(() => {});
  }
  let buf = "", steps = 0;
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    const lines = buf.split("\n");
    buf = lines.pop()!;
    for (const line of lines) {
      if (trigger.kind !== "step" || !line.startsWith("{")) continue;
      const step = JSON.parse(line).step;
      if (++steps === trigger.nth) {
        timer = setTimeout(() => kill(`${trigger.ms} ms after step ${step}`), trigger.ms);
      }
    }
  }
  const status = await child.status;
  clearTimeout(timer);
  watcher?.close();
  return { killed, code: status.code, stderr: await stderr };
}

/** Every path under `dir` whose name ends in `.tmp` (what a killed atomic write leaves). */
async function partialFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.name.endsWith(".tmp")) out.push(join(d, e.name));
      else if (e.isDirectory) await walk(join(d, e.name));
    }
  };
  await walk(dir).catch(() => {});
  return out;
}

Deno.test({
  name: "kill -9 at seeded random moments (start-up, mid-step, mid-checkpoint, mid-export): each resume " +
    "continues to the losses and weights of an uninterrupted run",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const root = tempDir("rtdlab-kill-");
    const configPath = join(root, "micro.json");
    await Deno.writeTextFile(configPath, JSON.stringify(CONFIG));
    const fresh = (out: string) => [
      "--config",
      configPath,
      "--sharing",
      "gdes",
      "--steps",
      String(STEPS),
      "--seed",
      "5",
      "--out",
      out,
    ];
    // One BLAS thread: the same sums in every process. Separate caches: the killed run prepares its
    // own data (a kill can land in the WordPiece training or the cache write).
    const env = (cache: string) => ({ RTDLAB_BLAS_THREADS: "1", RTDLAB_CACHE: join(root, cache) });

    const ref = join(root, "uninterrupted");
    const t0 = performance.now();
    const r = await life(fresh(ref), { kind: "none" }, ref, env("cache-ref"));
    assert.equal(r.code, 0, r.stderr);
    // Kill delays are drawn over the length of a whole uninterrupted life (start-up included).
    const lifeMs = performance.now() - t0;

    const rng = new Rng(20261204);
    const checkpointTmp = /[\\/]\.step-\d+\.\d+\.tmp$/;
    const schedule: Trigger[] = [
      { kind: "time", ms: Math.round(rng.next() * lifeMs) },
      { kind: "file", pattern: checkpointTmp, nth: 1 + rng.int(3), what: "mid-checkpoint" },
      { kind: "time", ms: Math.round(rng.next() * lifeMs) },
      { kind: "step", nth: 1 + rng.int(10), ms: rng.int(10) },
      { kind: "file", pattern: checkpointTmp, nth: 1 + rng.int(3), what: "mid-checkpoint" },
      { kind: "file", pattern: /[\\/]export\.\d+\.tmp$/, nth: 1, what: "mid-export" },
      { kind: "none" },
    ];
    const out = join(root, "killed");
    const log: string[] = [];
    for (const trigger of schedule) {
      const started = await Deno.stat(join(out, "config.json")).then(() => true, () => false);
      const res = await life(
        started ? ["--resume", out] : fresh(out),
        trigger,
        started ? out : root,
        env("cache"),
      );
      const m = await readMetrics(join(out, "metrics.jsonl"));
      const left = await partialFiles(out);
      log.push(
        `${started ? "resume" : "start "} → ${res.killed ?? `exit ${res.code}`}; logged to step ${
          m.at(-1)?.step ?? 0
        }; partial files left: ${left.length}`,
      );
      // Every life ends by our kill or by finishing: a resume never refuses or crashes.
      if (res.killed === null) assert.equal(res.code, 0, `${log.join("\n")}\n${res.stderr}`);
    }
    console.log(log.map((l) => `  ${l}`).join("\n"));

    const losses = async (dir: string) =>
      (await readMetrics(join(dir, "metrics.jsonl"))).map((
        x,
      ) => [x.step, x.loss_mlm, x.loss_rtd, x.disc_acc, x.lr]);
    assert.deepEqual(await losses(out), await losses(ref));
    for (const role of ["discriminator", "generator"]) {
      const file = (dir: string) => Deno.readFile(join(dir, "export", role, "model.safetensors"));
      assert.deepEqual(
        await file(out),
        await file(ref),
        `export/${role} differs from the uninterrupted run's`,
      );
    }
    assert.deepEqual(await partialFiles(out), []);
    const elapsed = (await readMetrics(join(out, "metrics.jsonl"))).map((x) => x.elapsed_s);
    assert.ok(elapsed.every((e, i) => i === 0 || e >= elapsed[i - 1]), `elapsed_s goes back: ${elapsed}`);
  },
});

Deno.test({
  name: "SIGTERM and Ctrl-C stop a run at the next step, not at its next file write: a checkpoint, no " +
    "export, the signal's exit status; the resume finishes the run",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const root = tempDir("rtdlab-term-");
    const configPath = join(root, "micro.json");
    // Nothing logged or checkpointed before the end: only the loop's own turn of the event loop lets the
    // signal in (without it the run trains on to step 400 and exits 0).
    await Deno.writeTextFile(
      configPath,
      JSON.stringify({ ...CONFIG, logEvery: 1000, checkpointEvery: 1000 }),
    );
    const env = { RTDLAB_BLAS_THREADS: "1", RTDLAB_CACHE: join(root, "cache") };
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      const out = join(root, signal);
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          PRETRAIN,
          "--config",
          configPath,
          "--steps",
          "400",
          "--out",
          out,
          "--progress-jsonl",
        ],
        env,
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stderr = new Response(child.stderr).text();
      let signalledAt = 0;
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        const steps = chunk.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l).step);
        if (!signalledAt && steps.some((s) => s >= 5)) {
          signalledAt = Math.max(...steps);
          child.kill(signal);
        }
      }
      const status = await child.status;
      const log = await stderr;
      assert.equal(status.code, signal === "SIGTERM" ? 143 : 130, log);
      const latest = JSON.parse(await Deno.readTextFile(join(out, "checkpoints", "latest.json")));
      const stoppedAt: number = latest.step;
      assert.ok(stoppedAt >= signalledAt && stoppedAt < 400, `stopped at ${stoppedAt}: ${log}`);
      assert.match(log, new RegExp(`stopped at step ${stoppedAt}; checkpoint written`));
      assert.equal(await Deno.stat(join(out, "export")).then(() => true, () => false), false);
      const resume = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", PRETRAIN, "--resume", out],
        env,
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.equal(resume.code, 0, new TextDecoder().decode(resume.stderr));
      assert.equal((await readMetrics(join(out, "metrics.jsonl"))).at(-1)?.step, 400);
    }
  },
});

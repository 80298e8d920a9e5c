/**
 * `deno task demo`: pre-train the `tiny` config under MLM, ES, NES and GDES on the same data, seed and
 * step budget, then print a side-by-side summary.
 *
 * The wasm backend runs one thread per process, so the four runs go out as parallel subprocesses,
 * as many at a time as the machine has cores.
 *
 *   deno task demo [--steps 250] [--batch 8] [--seed 0] [--out runs/demo] [--parallel N] [--backend wasm]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { readMetrics } from "../lib/train/run.ts";
import { formatDuration } from "../lib/util/progress.ts";

const MODES = ["mlm", "es", "nes", "gdes"] as const;

interface Job {
  mode: string;
  dir: string;
  step: number;
  total: number;
  eta: number;
  status: "queued" | "running" | "done" | "failed";
  log: string;
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    steps: { type: "string", default: "250" },
    batch: { type: "string", default: "8" },
    seed: { type: "string", default: "0" },
    out: { type: "string", default: "runs/demo" },
    parallel: { type: "string", default: String(Math.max(1, navigator.hardwareConcurrency ?? 2)) },
    backend: { type: "string", default: "wasm" },
    fresh: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
  strict: true,
});
if (values.help) {
  console.log(`deno task demo — tiny pre-training under ${MODES.join(", ")}, then a comparison
  --steps N      steps per run [250]      --batch B   sequences per step [8]
  --seed S       seed [0]                 --out DIR   where the runs go [runs/demo]
  --parallel N   runs at a time [cores]   --backend   wasm | cpu | webgpu [wasm]
  --fresh        delete earlier demo runs in --out first`);
  Deno.exit(0);
}

const out = values.out!;
if (values.fresh) await Deno.remove(out, { recursive: true }).catch(() => {});
const jobs: Job[] = MODES.map((mode) => ({
  mode,
  dir: join(out, mode),
  step: 0,
  total: Number(values.steps),
  eta: NaN,
  status: "queued",
  log: "",
}));
const script = new URL("./pretrain.ts", import.meta.url).pathname;

async function finishedAlready(job: Job): Promise<boolean> {
  const m = await readMetrics(join(job.dir, "metrics.jsonl"));
  return m.length > 0 && m[m.length - 1].step === job.total;
}

async function run(job: Job): Promise<void> {
  if (await finishedAlready(job)) {
    job.status = "done";
    job.step = job.total;
    return;
  }
  // An interrupted earlier demo resumes; anything else starts fresh in its own folder.
  const resume = await Deno.stat(join(job.dir, "checkpoints", "latest.json")).then(() => true, () => false);
  if (!resume) await Deno.remove(job.dir, { recursive: true }).catch(() => {});
  job.status = "running";
  const args = [
    "run",
    "-A",
    "--unstable-webgpu",
    script,
    ...(resume ? ["--resume", job.dir] : [
      "--config",
      "tiny",
      "--sharing",
      job.mode,
      "--out",
      job.dir,
      "--seed",
      values.seed!,
      "--set",
      `batchSize=${values.batch}`,
      "--set",
      "checkpointEvery=50",
      "--set",
      "logEvery=5",
      "--set",
      `warmupSteps=${Math.max(1, Math.round(Number(values.steps) / 10))}`,
    ]),
    "--steps",
    values.steps!,
    "--backend",
    values.backend!,
    "--progress-jsonl",
  ];
  const child = new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    const lines = buf.split("\n");
    buf = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith("{")) continue;
      const p = JSON.parse(line);
      job.step = p.step;
      job.total = p.totalSteps;
      job.eta = p.etaSeconds;
    }
  }
  const status = await child.status;
  job.log = await stderr;
  job.status = status.success ? "done" : "failed";
}

const t0 = performance.now();
const tty = Deno.stderr.isTerminal();
const enc = new TextEncoder();
let lastLine = "";
const ticker = setInterval(() => {
  const parts = jobs.map((j) =>
    j.status === "queued" ? `${j.mode} queued` : `${j.mode} ${Math.floor((100 * j.step) / j.total)}%`
  );
  const line = `demo ${parts.join(" · ")} | ${formatDuration((performance.now() - t0) / 1000)} elapsed`;
  if (tty) Deno.stderr.writeSync(enc.encode(`\r\x1b[2K${line}`));
  else if (line.replace(/\d+s elapsed/, "") !== lastLine.replace(/\d+s elapsed/, "")) {
    // Non-TTY (CI logs): print when a run crosses a 10% mark.
    const coarse = line.replace(/(\d+)%/g, (_, p) => `${Math.floor(Number(p) / 10) * 10}%`);
    if (coarse !== lastLine) console.error(coarse);
    lastLine = coarse;
  }
}, 500);

console.error(
  `demo: ${MODES.length} runs of tiny × ${values.steps} steps × batch ${values.batch}, ${values.parallel} at a time, backend ${values.backend}`,
);
const queue = [...jobs];
await Promise.all(
  Array.from({ length: Number(values.parallel) }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) await run(job);
  }),
);
clearInterval(ticker);
if (tty) Deno.stderr.writeSync(enc.encode("\n"));

const failed = jobs.filter((j) => j.status === "failed");
for (const j of failed) console.error(`\n${j.mode} failed:\n${j.log.split("\n").slice(-15).join("\n")}`);

console.log(`\nrtdlab demo — tiny config, ${values.steps} steps, batch ${values.batch}, seed ${values.seed}`);
console.log("mode  | MLM loss (first→last) | RTD loss (first→last) | disc acc | replaced | tokens/s");
console.log("------|-----------------------|-----------------------|----------|----------|---------");
for (const j of jobs) {
  const m = await readMetrics(join(j.dir, "metrics.jsonl"));
  if (!m.length) continue;
  const avg = (xs: (number | null)[]) => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  };
  const head = m.slice(0, 3), tail = m.slice(-3);
  const f = (x: number | null, d = 3) => (x === null ? "—" : x.toFixed(d));
  const mlm = `${f(avg(head.map((r) => r.loss_mlm)))} → ${f(avg(tail.map((r) => r.loss_mlm)))}`;
  const rtd = `${f(avg(head.map((r) => r.loss_rtd)))} → ${f(avg(tail.map((r) => r.loss_rtd)))}`;
  console.log(
    `${j.mode.padEnd(5)} | ${mlm.padEnd(21)} | ${rtd.padEnd(21)} | ${
      f(avg(tail.map((r) => r.disc_acc))).padEnd(8)
    } | ${f(avg(tail.map((r) => r.replaced_frac))).padEnd(8)} | ${
      Math.round(avg(tail.map((r) => r.tokens_per_s)) ?? 0)
    }`,
  );
}
console.log(
  `\nruns in ${out}/{${MODES.join(",")}} (metrics.jsonl, checkpoints, export); wall time ${
    formatDuration((performance.now() - t0) / 1000)
  }`,
);
Deno.exit(failed.length ? 1 : 0);

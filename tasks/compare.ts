/**
 * `deno task compare`: the equal-compute comparison of the sharing modes on downstream tasks.
 *
 * Pre-trains mlm, es, nes and gdes with the same data, steps, batch and seeds (parallel subprocesses
 * of tasks/pretrain.ts, one per core: the wasm backend is single-threaded), fine-tunes each exported
 * encoder on every task with several fine-tuning seeds (subprocesses of tasks/finetune.ts), plus a
 * no-pre-training control ("scratch": random init, same tokenizer), and writes
 * `runs/compare/<name>/results.{md,json}` and, with lib/report, `report.html` with the pre-training
 * curves. Re-running skips finished pieces (an interrupted pre-training run resumes from its checkpoint).
 *
 *   deno task compare --quick                 # ~5 min on 2 cores (deberta-mini on synthetic:echo)
 *   deno task compare --medium                # ~30-50 min: 3 pre-training seeds
 *   deno task compare --name full             # hours: 3 pre-training seeds × 3 fine-tuning seeds, 6 tasks
 *   deno task compare --gpu                   # ~1 h on one GPU: electra-small, batch 128 (= --backend cuda --name gpu)
 *   deno task compare --tasks sentiment-yelp,data/mine.csv --steps 2000 --pretrain-seeds 0,1
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import type { RunConfig } from "../lib/config.ts";
import { checkBackend } from "../lib/backend/preflight.ts";
import { checkTaskName, isPackagedTask, loadTask } from "../lib/tasks/mod.ts";
import { parseCli as parsePretrainCli } from "./pretrain.ts";
import { writeFileAtomic, writeJsonAtomic } from "../lib/io/atomic.ts";
import { prepareRunData, readMetrics } from "../lib/train/run.ts";
import { latestCheckpoint } from "../lib/train/checkpoint.ts";
import { removeRunFolder } from "../lib/io/run_lock.ts";
import { sameRunConfig } from "../lib/sweep/runs.ts";
import { earlierResult, finetuneDir, type FinetuneMetricsFile, taskSlug } from "../lib/finetune/run.ts";
import { constantBaseline } from "../lib/finetune/metrics.ts";
import {
  COMPARE_HELP,
  type CompareArgs,
  parseCompareArgs,
  pretrainArgs,
  type TaskPlan,
} from "../lib/finetune/compare_plan.ts";
import { type ComparisonEntry, comparisonTable, summarizeComparison } from "../lib/finetune/compare.ts";
import { formatDuration, terminalColumns } from "../lib/util/progress.ts";
import { compareEtaSeconds } from "../lib/train/estimate.ts";
import { blasEnvFor } from "../lib/backend/blas.ts";
import { forwardTermination, runWithProgress } from "../lib/util/subprocess.ts";
import { SIGNAL_EXIT } from "../lib/util/signals.ts";
import { jsonProblem, wrapHelp } from "../lib/util/cli.ts";
import { baseRate } from "../lib/report/demo.ts";
import { formatAgainst, NOT_LEARNED, notLearned, tailMean } from "../lib/train/rtd_metrics.ts";
import { exists } from "../lib/util/fs.ts";

function fail(msg: string): never {
  console.error(`error: ${msg}`);
  Deno.exit(2);
}

let args: CompareArgs;
try {
  args = parseCompareArgs(Deno.args);
} catch (e) {
  fail((e as Error).message);
}
if (args.help) {
  console.log(wrapHelp(COMPARE_HELP));
  Deno.exit(0);
}
const { name, parallel } = args;
const root = join("runs", "compare", name);

// ---- plan.json: a re-run continues the same comparison, never silently a different one ----
// (written once every setting has been checked, below: a refused start leaves nothing to --force past)
const planPath = join(root, "plan.json");
const oldPlan = await Deno.readTextFile(planPath).catch(() => null);
// --report-only reports the comparison that is there, whatever the other flags say.
if (args.reportOnly && oldPlan === null) {
  fail(`no comparison in ${root} (no ${planPath}): check --name, or run it without --report-only first`);
}
let plan: CompareArgs["plan"] = args.plan;
if (args.reportOnly) {
  const damage = planDamage(oldPlan!);
  if (damage) fail(`${planPath} cannot be read (${damage})`);
  plan = JSON.parse(oldPlan!);
  if (args.settingsGiven.length) {
    console.error(
      `note: --report-only reports the comparison in ${planPath}; ${args.settingsGiven.join(", ")} ` +
        `${args.settingsGiven.length === 1 ? "is" : "are"} not used (run without --report-only to change it)`,
    );
  }
}

// ---- jobs ----
interface Job {
  id: string;
  kind: "pretrain" | "finetune";
  args: string[];
  /** Finished already (checked before running). */
  isDone: () => Promise<boolean>;
  /** Run before spawning (e.g. clear a stale folder). */
  prepare?: () => Promise<void>;
  deps: Job[];
  status: "queued" | "running" | "done" | "failed" | "skipped";
  step: number;
  total: number;
  log: string;
  /** performance.now() when it started and ended (in this invocation). */
  startedAt?: number;
  endedAt?: number;
}

const pretrainScript = new URL("./pretrain.ts", import.meta.url).pathname;
const finetuneScript = new URL("./finetune.ts", import.meta.url).pathname;
const runDir = (mode: string, seed: number) => join(root, "pretrain", `${mode}-s${seed}`);
const exportDir = (mode: string, seed: number) =>
  join(runDir(mode, seed), "export", mode === "mlm" ? "mlm" : "discriminator");

/** tasks/pretrain.ts's settings for a new pre-training run of `mode` with seed `seed` (before --steps). */
const freshPretrainArgs = (mode: string, seed: number) => pretrainArgs(plan, mode, seed, runDir(mode, seed));

/** Why plan.json's `text` is no plan (unparsable, or not an object), or null. */
function planDamage(text: string): string | null {
  const problem = jsonProblem(text);
  if (problem) return problem;
  const v = JSON.parse(text);
  return v !== null && typeof v === "object" && !Array.isArray(v) ? null : "not a JSON object";
}

if (!args.reportOnly && oldPlan !== null && !args.force) {
  // The same settings (however the file is laid out) continue the comparison; other ones are named.
  const damage = planDamage(oldPlan);
  const saved = damage ? {} : JSON.parse(oldPlan) as Record<string, unknown>;
  const now = plan as unknown as Record<string, unknown>;
  const shown = (v: unknown) => (v === undefined ? "absent" : JSON.stringify(v));
  const differ = [...new Set([...Object.keys(saved), ...Object.keys(now)])].filter((k) =>
    JSON.stringify(saved[k]) !== JSON.stringify(now[k])
  );
  if (damage || differ.length) {
    // A misspelt --set key is named as such, not as a change of settings.
    try {
      for (const mode of plan.modes) {
        parsePretrainCli([...freshPretrainArgs(mode, plan.pretrainSeeds[0]), "--steps", String(plan.steps)]);
      }
    } catch (e) {
      fail((e as Error).message);
    }
    // A damaged plan is not "other settings": say so before offering --force, which would replace it.
    if (damage) {
      fail(`${planPath} cannot be read (${damage}); look at it and move it away, or --force to replace it`);
    }
    fail(
      `${root} holds a comparison with other settings (${planPath}: ${
        differ.map((k) => `${k} ${shown(saved[k])} there, ${shown(now[k])} now`).join("; ")
      }); use another --name, or --force to continue it with the new settings (finished pieces of the same ` +
        `settings are kept, the others run again)`,
    );
  }
}

/** The config a new pre-training run of (mode, seed) gets under this plan. */
const plannedConfig = (mode: string, seed: number) =>
  parsePretrainCli([...freshPretrainArgs(mode, seed), "--steps", String(plan.steps)]).config;

/**
 * Whether run (mode, seed)'s folder holds a run of this plan's settings. After --force with other settings a
 * finished run is trained again (its fine-tunes with it), not reported under the new plan; no folder, or an
 * unreadable config.json (the resume names it), is nothing to disagree with.
 */
async function runMatchesPlan(mode: string, seed: number): Promise<boolean> {
  let saved: Record<string, unknown>;
  try {
    saved = JSON.parse(await Deno.readTextFile(join(runDir(mode, seed), "config.json")));
  } catch {
    return true;
  }
  return sameRunConfig(plannedConfig(mode, seed), saved);
}

/** Whether a finished fine-tune's settings are this plan's (learning rate, batch, epochs, length, caps). */
async function finetuneMatchesPlan(out: string, t: TaskPlan): Promise<boolean> {
  const m = JSON.parse(await Deno.readTextFile(join(out, "metrics.json"))) as FinetuneMetricsFile;
  const caps = (m.split as { caps?: { train?: number; eval?: number } } | undefined)?.caps;
  return m.hyper?.learningRate === plan.lr && m.hyper?.batchSize === plan.batchFt &&
    (t.epochs === undefined || m.hyper.epochs === t.epochs) &&
    (t.maxLength === undefined || m.hyper.maxLength === t.maxLength) &&
    caps?.train === t.maxTrain && caps?.eval === t.maxEval;
}

const jobs: Job[] = [];
const pretrainJobs = new Map<string, Job>();
/** Each run folder's check against the plan, for its fine-tunes (a retrained run's are redone). */
const runCurrent = new Map<string, () => Promise<boolean>>();
for (const seed of plan.pretrainSeeds) {
  for (const mode of plan.modes) {
    const dir = runDir(mode, seed);
    runCurrent.set(dir, () => runMatchesPlan(mode, seed));
    const job: Job = {
      id: `pretrain ${mode}-s${seed}`,
      kind: "pretrain",
      args: [],
      isDone: async () =>
        (await exists(join(exportDir(mode, seed), "model.safetensors"))) && runMatchesPlan(mode, seed),
      prepare: async () => {
        // A run of other settings (--force) starts again; a damaged checkpoint index throws here, naming it,
        // rather than restarting the run.
        const resume = await runMatchesPlan(mode, seed) && (await latestCheckpoint(dir)) !== null;
        if (!resume) await removeRunFolder(dir);
        job.args = [
          "run",
          "-A",
          "--unstable-webgpu",
          pretrainScript,
          ...(resume ? ["--resume", dir] : freshPretrainArgs(mode, seed)),
          "--steps",
          String(plan.steps),
          "--backend",
          plan.backend,
          "--progress-jsonl",
        ];
      },
      deps: [],
      status: "queued",
      step: 0,
      total: plan.steps,
      log: "",
    };
    pretrainJobs.set(`${mode}-s${seed}`, job);
    jobs.push(job);
  }
}

/** A fine-tuning job of run (mode, seed) on task t with fine-tuning seed fs. */
function finetuneJob(row: string, dir: string, dep: Job, t: TaskPlan, fs: number, scratch: boolean): Job {
  const out = finetuneDir(dir, t.task, fs, scratch ? "scratch" : undefined);
  const opt = (flag: string, v: number | undefined) => (v === undefined ? [] : [flag, String(v)]);
  const job: Job = {
    id: `finetune ${row} ${taskSlug(t.task)} s${fs}`,
    kind: "finetune",
    args: [
      "run",
      "-A",
      "--unstable-webgpu",
      finetuneScript,
      "--checkpoint",
      dir,
      "--task",
      t.task,
      "--seed",
      String(fs),
      "--lr",
      String(plan.lr),
      "--batch",
      String(plan.batchFt),
      ...opt("--max-train", t.maxTrain),
      ...opt("--max-eval", t.maxEval),
      ...opt("--max-length", t.maxLength),
      ...opt("--epochs", t.epochs),
      ...(scratch ? ["--source", "scratch"] : []),
      "--backend",
      plan.backend,
      "--progress-jsonl",
    ],
    // An interrupted fine-tune's result is re-run; a damaged one fails its job by name (runFinetune); one of
    // other settings (--force), or of a run trained again, is replaced.
    isDone: async () =>
      (await earlierResult(join(out, "metrics.json"))) === "finished" && (await runCurrent.get(dir)!()) &&
      (await finetuneMatchesPlan(out, t)),
    prepare: async () => {
      if ((await earlierResult(join(out, "metrics.json"))) === "finished") job.args.push("--force");
    },
    deps: [dep],
    status: "queued",
    step: 0,
    total: 1,
    log: "",
  };
  return job;
}

// Fine-tuning jobs, interleaved so that partial results already cover every mode.
const rows: { row: string; mode: string; seed: number; dir: string; scratch: boolean }[] = [];
for (const seed of plan.pretrainSeeds) {
  for (const mode of plan.modes) {
    rows.push({ row: `${mode}-s${seed}`, mode, seed, dir: runDir(mode, seed), scratch: false });
  }
}
if (plan.scratch) {
  // The control needs only a tokenizer and sizes: it borrows the first run's folder.
  const first = rows[0];
  rows.push({ row: "scratch", mode: "scratch", seed: first.seed, dir: first.dir, scratch: true });
}
for (const fs of plan.finetuneSeeds) {
  for (const t of plan.tasks) {
    for (const r of rows) {
      const dep = pretrainJobs.get(r.scratch ? rows[0].row : r.row)!;
      jobs.push(finetuneJob(r.row, r.dir, dep, t, fs, r.scratch));
    }
  }
}

// ---- what is left to do; every setting checked, and the data prepared once, before any of it ----
const t0 = performance.now();
const pending = [];
for (const j of jobs) if (!(await j.isDone())) pending.push(j);
for (const j of jobs) if (!pending.includes(j)) j.status = "done";
const reportOnly = args.reportOnly;
if (reportOnly) { for (const j of pending) j.status = "skipped"; }
// Every setting checked before anything is written or trained: a misspelt task, key or corpus, or a
// backend that cannot start here, fails now rather than after hours of pre-training (a misspelt key or task
// before the plan line, so that its error is all a user sees; a corpus when its data is prepared, after it).
let config: RunConfig | undefined;
if (!reportOnly && pending.length) {
  try {
    for (const mode of plan.modes) {
      config =
        parsePretrainCli([...freshPretrainArgs(mode, plan.pretrainSeeds[0]), "--steps", String(plan.steps)])
          .config;
    }
    for (const t of plan.tasks) {
      await checkTaskName(t.task);
      // A file of one's own is read now, as fine-tuning will read it: a missing label column, one class or
      // too few rows is found before the pre-training, not after it (the packaged tasks are known good).
      if (!isPackagedTask(t.task)) {
        // Its errors name the file; compare has no column flags, so the fix is in the file.
        await loadTask(t.task, { maxTrain: t.maxTrain, maxEval: t.maxEval }).catch((e: Error) => {
          throw new Error(
            e.message.replace(
              /choose one with --[a-z-]+-column$/,
              "rename it in the file (compare reads the columns text, text_a/text_b and label)",
            ),
          );
        });
      }
      if (config && t.maxLength !== undefined && t.maxLength > config.maxPositions) {
        throw new Error(
          `--max-length ${t.maxLength} (task ${t.task}) is longer than the position table (maxPositions ${config.maxPositions})`,
        );
      }
    }
  } catch (e) {
    fail((e as Error).message);
  }
}
console.error(
  `compare ${name}: ${plan.modes.join("/")} × pre-training seeds ${
    plan.pretrainSeeds.join(",")
  } (${plan.config}, ` +
    `${plan.steps} steps × batch ${plan.batch} × seq ${plan.seqLength}), tasks ${
      plan.tasks.map((t) => t.task).join(", ")
    }, fine-tuning seeds ${plan.finetuneSeeds.join(",")}; ${
      reportOnly
        ? `${jobs.length - pending.length} of ${jobs.length} jobs finished (--report-only: nothing runs)`
        : `${pending.length} of ${jobs.length} jobs to run, ${parallel} at a time`
    }`,
);
if (!reportOnly && pending.length) {
  try {
    console.error(`backend: ${await checkBackend(plan.backend)}`);
    if (config && pending.some((j) => j.kind === "pretrain")) {
      // The data, prepared once and cached for the runs (a missing corpus fails here too).
      console.error("preparing the corpus and tokenizer (cached for the runs)...");
      await prepareRunData(config);
    }
  } catch (e) {
    fail((e as Error).message);
  }
}
if (!reportOnly) {
  await Deno.mkdir(root, { recursive: true });
  await writeJsonAtomic(planPath, plan);
}

// ---- scheduler ----
const logDir = join(root, "logs");
await Deno.mkdir(logDir, { recursive: true });
let wake: () => void = () => {};
let changed = new Promise<void>((r) => (wake = r));
const signal = () => {
  wake();
  changed = new Promise<void>((r) => (wake = r));
};
// Ctrl-C (the terminal signals the runs too) and `kill` (passed on to them): the running jobs checkpoint and
// stop, no new one starts, and the results so far are written; the same command continues where it stopped.
let stopping = false;
let stopStatus = SIGNAL_EXIT.SIGINT;
let scheduled = false; // past the jobs: a signal then only ends the writing of the results
if (!reportOnly) {
  Deno.addSignalListener("SIGINT", () => {
    if (stopping || scheduled) Deno.exit(SIGNAL_EXIT.SIGINT);
    stopping = true;
    console.error(
      "\ninterrupted: no new job starts; the running ones stop at their checkpoint on the same Ctrl-C, then the " +
        "results so far are written and the same command continues (Ctrl-C again to quit now)",
    );
    signal();
  });
  forwardTermination(() => {
    if (scheduled) Deno.exit(SIGNAL_EXIT.SIGTERM);
    stopping = true;
    stopStatus = SIGNAL_EXIT.SIGTERM;
    signal();
  });
}

async function runJob(job: Job): Promise<void> {
  job.status = "running";
  job.startedAt = performance.now();
  try {
    await job.prepare?.();
  } catch (e) {
    job.log = `error: ${(e as Error).message}`;
    job.status = "failed";
    job.endedAt = performance.now();
    return;
  }
  // A stop that came while it was being prepared: it never starts (no signal would reach it).
  if (stopping) {
    job.status = "queued";
    return;
  }
  const r = await runWithProgress(job.args, {
    env: blasEnvFor(parallel),
    onProgress: (p) => {
      job.step = p.step as number;
      job.total = p.totalSteps as number;
    },
  });
  job.log = r.stderr;
  await writeFileAtomic(join(logDir, `${job.id.replace(/\s+/g, "_")}.log`), job.log);
  // A job a stop cut short (it exits 130 or 143) is not a failure: it checkpointed, and the next
  // invocation goes on with it. One that failed otherwise during a stop still failed.
  const stopped = stopping && (r.code === SIGNAL_EXIT.SIGINT || r.code === SIGNAL_EXIT.SIGTERM);
  job.status = r.success && (await job.isDone()) ? "done" : stopped ? "queued" : "failed";
  job.endedAt = performance.now();
}

/** "~25m left" from the jobs' own times (pre-training only until a fine-tune has finished). */
function etaText(): string {
  const now = performance.now();
  const { pretrain, all } = compareEtaSeconds(
    jobs.map((j) => ({
      kind: j.kind,
      state: j.status === "running" || j.status === "queued" ? j.status : "done",
      total: j.kind === "pretrain" ? j.total : 1,
      done: j.kind === "pretrain" ? j.step : 0,
      seconds: j.startedAt === undefined ? undefined : ((j.endedAt ?? now) - j.startedAt) / 1000,
    })),
    parallel,
  );
  if (all !== null) return `, ~${formatDuration(all)} left`;
  return pretrain === null || pretrain === 0 ? "" : `, pre-training ~${formatDuration(pretrain)} left`;
}

const ready = (j: Job) => j.status === "queued" && j.deps.every((d) => d.status === "done");
const enc = new TextEncoder();
const tty = Deno.stderr.isTerminal();
let lastLine = "", lastPrint = 0;
const ticker = setInterval(() => {
  const pre = jobs.filter((j) => j.kind === "pretrain");
  const ft = jobs.filter((j) => j.kind === "finetune");
  const running = jobs.filter((j) => j.status === "running").map((j) =>
    `${j.id.replace(/^(pretrain|finetune) /, "")} ${Math.floor((100 * j.step) / Math.max(1, j.total))}%`
  );
  const count = (js: Job[]) => `${js.filter((j) => j.status === "done").length}/${js.length}`;
  // Time and ETA before the running jobs: a long list is what the terminal width cuts.
  const line = `compare: pretrain ${count(pre)} · finetune ${count(ft)} | ${
    formatDuration((performance.now() - t0) / 1000)
  }${etaText()} | ${running.join(" · ")}`;
  if (tty) Deno.stderr.writeSync(enc.encode(`\r\x1b[2K${line.slice(0, terminalColumns() - 1)}`));
  else {
    // Logs (no TTY): a line when a job finishes, or every minute.
    const counts = `${count(pre)} ${count(ft)}`;
    if (counts !== lastLine || performance.now() - lastPrint > 60_000) {
      console.error(line);
      lastLine = counts;
      lastPrint = performance.now();
    }
  }
}, 1000);

await Promise.all(Array.from({ length: parallel }, async () => {
  for (;;) {
    if (stopping) return; // no new job after a stop
    // Dependents of a failed job cannot run.
    for (const j of jobs) {
      if (j.status === "queued" && j.deps.some((d) => d.status === "failed" || d.status === "skipped")) {
        j.status = "skipped";
      }
    }
    const job = jobs.find(ready);
    if (job) {
      await runJob(job);
      signal();
      continue;
    }
    if (!jobs.some((j) => j.status === "queued")) return;
    await changed;
  }
}));
scheduled = true;
clearInterval(ticker);
if (tty) Deno.stderr.writeSync(enc.encode("\n"));
const wall = (performance.now() - t0) / 1000;

const failed = jobs.filter((j) => j.status === "failed");
for (const j of failed) console.error(`\n${j.id} failed:\n${j.log.split("\n").slice(-12).join("\n")}`);
const skipped = jobs.filter((j) => j.status === "skipped").length;

// ---- results ----
const entries: ComparisonEntry[] = [];
/** A finished fine-tune's predictions.jsonl per task: the test labels a constant classifier is scored on. */
const predictionsOf = new Map<string, string>();
for (const r of rows) {
  for (const t of plan.tasks) {
    for (const fs of plan.finetuneSeeds) {
      const p = join(finetuneDir(r.dir, t.task, fs, r.scratch ? "scratch" : undefined), "metrics.json");
      const earlier = await earlierResult(p);
      if (earlier === "none") continue; // not run (yet)
      if (earlier !== "finished") {
        // Left out of the table by name, never silently: the job re-runs (interrupted) or failed (damaged).
        console.error(
          `left out of the results: ${p} ${
            earlier === "interrupted"
              ? "is an interrupted fine-tune's"
              : `cannot be read (${earlier.unreadable})`
          }`,
        );
        continue;
      }
      // A result of other settings left behind by a job that failed is not this plan's.
      if (!(await runCurrent.get(r.dir)!()) || !(await finetuneMatchesPlan(dirname(p), t))) {
        console.error(`left out of the results: ${p} is of other settings than this comparison's`);
        continue;
      }
      const metrics = JSON.parse(await Deno.readTextFile(p)) as FinetuneMetricsFile;
      entries.push({
        mode: r.mode,
        pretrainSeed: r.seed,
        task: taskSlug(t.task),
        finetuneSeed: fs,
        metrics,
      });
      if (!predictionsOf.has(taskSlug(t.task))) {
        predictionsOf.set(taskSlug(t.task), join(dirname(p), "predictions.jsonl"));
      }
    }
  }
}
const modes = [...plan.modes, ...(plan.scratch ? ["scratch"] : [])];
const tasks = plan.tasks.map((t) => taskSlug(t.task));
const summary = summarizeComparison(entries, modes, tasks);

interface PretrainSummary {
  mode: string;
  seed: number;
  loss_mlm: number | null;
  loss_rtd: number | null;
  /** RTD loss of a discriminator that predicts the replaced fraction everywhere (learned nothing). */
  rtd_base: number | null;
  /** D's ROC-AUC (replaced vs original) and RTD gain over the constant predictor: the headline numbers. */
  disc_auc: number | null;
  rtd_gain: number | null;
  /** Whether D clears lib/train/rtd_metrics.ts NOT_LEARNED. */
  learned: boolean | null;
  disc_acc: number | null;
  /** Recall on replaced tokens. */
  disc_acc_replaced: number | null;
  elapsed_s: number | null;
}
const pretrainRows: PretrainSummary[] = [];
for (const r of rows.filter((r) => !r.scratch)) {
  const m = await readMetrics(join(r.dir, "metrics.jsonl"), { allowMissing: true });
  const last = m.at(-1);
  // The last tenth of the run, averaged: single logged steps are one batch each.
  const mean = (k: string) => tailMean(m, k);
  pretrainRows.push({
    mode: r.mode,
    seed: r.seed,
    loss_mlm: mean("loss_mlm"),
    loss_rtd: mean("loss_rtd"),
    rtd_base: baseRate(mean("replaced_frac")),
    disc_auc: mean("disc_auc"),
    rtd_gain: mean("rtd_gain") ??
      (baseRate(mean("replaced_frac")) !== null && mean("loss_rtd") !== null
        ? baseRate(mean("replaced_frac"))! - mean("loss_rtd")!
        : null),
    learned: mean("loss_rtd") === null ? null : notLearned(mean("disc_auc"), mean("rtd_gain")).learned,
    disc_acc: mean("disc_acc"),
    disc_acc_replaced: mean("disc_acc_replaced"),
    elapsed_s: last?.elapsed_s ?? null,
  });
}
const f = (x: number | null, d = 3) => (x === null ? "—" : x.toFixed(d));
// D's AUC and gain beside a learned verdict: never rounded across the thresholds.
const fa = (x: number | null) => (x === null ? "—" : formatAgainst(x, NOT_LEARNED.auc));
const fg = (x: number | null) => (x === null ? "—" : formatAgainst(x, NOT_LEARNED.gain));
// What predicting one class everywhere scores on each task's test split (every fine-tune sees the same split).
const baselineOf: Record<string, number> = {};
for (const task of tasks) {
  const path = predictionsOf.get(task);
  const e = entries.find((x) => x.task === task);
  if (!e) continue;
  const saved = e.metrics.constant?.test;
  if (saved) {
    baselineOf[task] = saved[e.metrics.metric as keyof typeof saved];
    continue;
  }
  if (!path) continue;
  // Older fine-tunes (no `constant` in metrics.json): from the test split's labels in predictions.jsonl.
  try {
    const test = (await Deno.readTextFile(path)).split("\n").filter((l) => l.trim())
      .map((l) => JSON.parse(l) as { split: string; label: string }).filter((p) => p.split === "test");
    const labels = test.map((p) => e.metrics.labels.indexOf(p.label));
    const base = constantBaseline(labels, e.metrics.labels.length);
    const metric = e.metrics.metric as keyof typeof base;
    baselineOf[task] = base[metric];
  } catch { /* an older fine-tune without predictions */ }
}
// D's skill beside the scores that depend on it (the pre-training table below has the rest).
const rtdRows = pretrainRows.filter((p) => p.learned !== null);
const dNote = rtdRows.length
  ? `\nEach pre-trained discriminator (D's ROC-AUC / RTD gain in nats, last tenth of pre-training; learned from ` +
    `${NOT_LEARNED.auc} / ${NOT_LEARNED.gain}): ${
      rtdRows.map((p) =>
        `${p.mode}-s${p.seed} ${fa(p.disc_auc)} / ${fg(p.rtd_gain)} (${
          p.learned ? "learned" : "**not learned**"
        })`
      ).join(", ")
    }.\n`
  : "";
const baselineNote = Object.keys(baselineOf).length
  ? `\nA constant classifier (one class for every example, the best class for the metric) scores ${
    Object.entries(baselineOf).map(([task, v]) => `${task} ${(100 * v).toFixed(1)}`).join(", ")
  } on the test splits: a row near these has learned little of the task.\n`
  : "";
const taskNotes = plan.tasks.map((t) => {
  const e = entries.find((x) => x.task === taskSlug(t.task));
  const sizes = e
    ? `train ${e.metrics.sizes.train} / dev ${e.metrics.sizes.dev} / test ${e.metrics.sizes.test}`
    : "";
  const caps = [
    t.maxTrain && `max-train ${t.maxTrain}`,
    t.maxEval && `max-eval ${t.maxEval}`,
    t.maxLength && `max-length ${t.maxLength}`,
    t.epochs && `epochs ${t.epochs}`,
  ].filter(Boolean).join(", ");
  return `- \`${taskSlug(t.task)}\`: ${summary.metricOf[taskSlug(t.task)] ?? "?"}; ${sizes}${
    caps ? ` (${caps})` : ""
  }`;
});
// Say it next to every D-dependent number: which discriminators have not learned, and which fine-tunes collapsed.
const weakD = pretrainRows.filter((p) => p.learned === false);
const skillNote = weakD.length
  ? `\n**The discriminator has not learned yet** in ${weakD.map((p) => `${p.mode}-s${p.seed}`).join(", ")} ` +
    `(AUC ${weakD.map((p) => fa(p.disc_auc)).join(", ")}; RTD gain ${
      weakD.map((p) => fg(p.rtd_gain)).join(", ")
    } ` +
    `nats; thresholds AUC 0.6, gain 0.05): the fine-tuning scores of those rows describe encoders whose ` +
    `pre-training task was not learned.\n`
  : "";
const collapsed = entries.filter((e) => e.metrics.one_class?.flagged);
const collapseNote = collapsed.length
  ? `\n⚠k/n in a cell: k of its n fine-tunes predicted one class for ≥ 95 % of the examples (a degenerate ` +
    `classifier: accuracy = the majority share, MCC ~0): ${
      collapsed.map((e) =>
        `${e.mode}-s${e.pretrainSeed} ${e.task} ft-s${e.finetuneSeed} → "${e.metrics.one_class!.label}"`
      )
        .join("; ")
    }.\n`
  : "";
const md = `# rtdlab comparison \`${name}\`

Equal steps and tokens: every mode pre-trained with config \`${plan.config}\`, ${plan.steps} steps × batch ${plan.batch} × ` +
  `sequence ${plan.seqLength} on \`${plan.corpus}\`${plan.set.length ? ` (${plan.set.join(", ")})` : ""}, ` +
  `pre-training seeds ${
    plan.pretrainSeeds.join(", ")
  }; each exported encoder fine-tuned on every task with ` +
  `seeds ${plan.finetuneSeeds.join(", ")} (lr ${plan.lr}, batch ${plan.batchFt}, early stopping on dev). ` +
  `\`scratch\` = the same encoder with random weights (no pre-training).

## Test scores (×100, mean ± std over pre-training × fine-tuning seeds)

${comparisonTable(summary, "test")}

Average: per (pre-training seed, fine-tuning seed), the mean over tasks; then mean ± std.
${dNote}${baselineNote}${collapseNote}${skillNote}
## Dev scores (the split that chose the epoch)

${comparisonTable(summary, "dev")}

## Tasks

${taskNotes.join("\n")}

## Pre-training (mean of the last tenth of logged steps)

D AUC: ROC-AUC of the discriminator's logits, replaced vs original tokens (0.5 = chance). RTD gain = base
rate − RTD loss (nats), where the base rate is the loss of predicting the replaced fraction everywhere (a
discriminator that learned nothing: gain 0, recall on replaced tokens 0). These two are the headline numbers.

| run | D AUC | RTD gain | MLM loss | RTD loss | base rate | disc acc | replaced recall | wall time |
|-----|-------|----------|----------|----------|-----------|----------|-----------------|-----------|
${
    pretrainRows.map((p) =>
      `| ${p.mode}-s${p.seed} | ${fa(p.disc_auc)} | ${fg(p.rtd_gain)} | ${f(p.loss_mlm)} | ${
        f(p.loss_rtd)
      } | ${f(p.rtd_base)} | ${f(p.disc_acc)} | ${f(p.disc_acc_replaced)} | ${
        p.elapsed_s === null ? "—" : formatDuration(p.elapsed_s)
      } |`
    ).join("\n")
  }
${skillNote}

${entries.length} fine-tuning results; ${failed.length} jobs failed, ${skipped} ${
    reportOnly ? "not finished yet (--report-only)" : "skipped"
  }; this invocation's wall time ` +
  `${formatDuration(wall)} (${parallel} at a time, backend ${plan.backend}).
`;
await writeFileAtomic(join(root, "results.md"), md);
await writeJsonAtomic(join(root, "results.json"), {
  format: "rtdlab-compare-1",
  name,
  plan,
  summary,
  pretrain: pretrainRows,
  // Per task: the best test score of a classifier that predicts one class for every example.
  constant_baseline: baselineOf,
  one_class: collapsed.map((e) => ({
    mode: e.mode,
    pretrain_seed: e.pretrainSeed,
    task: e.task,
    finetune_seed: e.finetuneSeed,
    ...e.metrics.one_class,
  })),
  failed: failed.map((j) => j.id),
  skipped,
  wall_s: Math.round(wall),
  written_at: new Date().toISOString(),
});

// ---- HTML report: results.md as HTML (every table and note), then the pre-training curves ----
let htmlNote = "";
try {
  const report = await import("../lib/report/mod.ts");
  const { marked } = await import("marked");
  const t = await report.loadRuns(rows.filter((r) => !r.scratch).map((r) => r.dir));
  const seeds = plan.pretrainSeeds.length;
  const per = seeds > 1 ? `mean over ${seeds} pre-training seeds per mode` : "one run per mode";
  const r = new report.Report(`rtdlab comparison: ${name}`)
    .html(await marked.parse(md.replace(/^# .*\n/, "")))
    .heading("Downstream scores")
    .figure(
      report.scoreDots(summary, {
        constant: baselineOf,
        oneClass: collapsed.map((e) => ({
          mode: e.mode,
          task: e.task,
          pretrain_seed: e.pretrainSeed,
          finetune_seed: e.finetuneSeed,
        })),
      }),
      "Test scores ×100 per task: each mode's mean ± one std (the tick and whisker), every fine-tuning run (dots; " +
        "✕: it predicted one class), and the dashed segment a constant classifier scores. A mode is read against " +
        "that floor and the scratch control.",
    )
    .heading("Pre-training curves")
    .figure(
      report.lossCurves(t, { by: "sharing", smooth: 0.8 }),
      `MLM and RTD losses (${per}; EMA-smoothed, weight 0.8).`,
    )
    .figure(
      report.skillCurves(t, { by: "sharing", smooth: 0.8 }),
      `D's ROC-AUC and RTD gain on each step's own batch (${per}; EMA 0.8): D counts as learned from AUC ` +
        `${NOT_LEARNED.auc} and gain ${NOT_LEARNED.gain} nats (the dotted black lines). Raw accuracy is not shown: the modes replace ` +
        `different shares of tokens, so it does not compare across them.`,
    );
  await r.write(join(root, "report.html"));
  htmlNote = ",report.html";
} catch (e) {
  htmlNote = ` (no HTML report: ${(e as Error).message.split("\n")[0]})`;
}

console.log(`\n${md}`);
const html = htmlNote.startsWith(",");
console.log(
  `files: ${resolve(root)}/{results.md,results.json${html ? htmlNote : ""}}${html ? "" : htmlNote}`,
);
if (stopping) console.error(`stopped: the same command continues the comparison (${root})`);
Deno.exit(stopping ? stopStatus : failed.length ? 1 : 0);

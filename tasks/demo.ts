/**
 * `deno task demo`: pre-train a small config (`deberta-mini` on the synthetic `echo` language unless
 * `--config` says otherwise) under MLM, ES, NES and GDES on the same data, seed and step budget, with the
 * tug-of-war and embedding-geometry probes on, then print a side-by-side summary with the readings of
 * DeBERTaV3's findings and write a standalone report (`<out>/report.html`: loss curves, accuracies, probes,
 * embedding similarity, the discriminator's view of a sentence).
 *
 * The wasm backend runs one thread per process, so the four runs go out as parallel subprocesses, as many
 * at a time as the machine has cores.
 *
 *   deno task demo [--config NAME] [--steps N] [--batch B] [--seed S] [--out runs/demo] [--parallel N]
 *
 * @module
 */

import { corpusFingerprint } from "../lib/text/corpus.ts";
import { join } from "node:path";
import { type BackendName, initBackend } from "../lib/backend/mod.ts";
import { discriminatorView } from "../lib/probes/discriminator_view.ts";
import {
  demoReport,
  discriminatorSkill,
  findings,
  loadRuns,
  type ModeView,
  runSummary,
  summaryText,
} from "../lib/report/mod.ts";
import { openRun } from "../lib/report/trained.ts";
import { prepareRunData, readMetrics } from "../lib/train/run.ts";
import { latestCheckpoint } from "../lib/train/checkpoint.ts";
import { removeRunFolder } from "../lib/io/run_lock.ts";
import { formatDuration, terminalColumns } from "../lib/util/progress.ts";
import { blasEnvFor, loadBlas } from "../lib/backend/blas.ts";
import { applyOverrides, preset, validateConfig } from "../lib/config.ts";
import { defaultCacheDir } from "../lib/text/dataset.ts";
import { etaSeconds, measureStepSeconds } from "../lib/train/estimate.ts";
import { forwardTermination, runWithProgress } from "../lib/util/subprocess.ts";
import { intOption, outDirProblem, parseCliArgs, wrapHelp } from "../lib/util/cli.ts";
import { freshSentences, isSyntheticName } from "../lib/text/synthetic.ts";

const MODES = ["mlm", "es", "nes", "gdes"] as const;

/** Seconds a run needs before its first step (Deno, tfjs, data from the cache, the model), until measured. */
const STARTUP_SECONDS = 3;

/**
 * Settings of the demo's runs (on top of the preset `config`). `deberta-mini` on `synthetic:echo` is where
 * the regime map (notebook 06) found discriminators that learn in minutes at T = 1 under every sharing
 * mode; measured to fit ~6 minutes on 2 idle cores.
 */
export const DEMO_DEFAULTS = {
  config: "deberta-mini",
  steps: 1200,
  batch: 8,
  seqLength: 128,
  learningRate: 1e-3,
  biasCorrection: true,
  probeEvery: 10,
  logEvery: 5,
} as const;

/** The text pair whose discriminator view the report shows (the one notebook 01 follows). */
export const DEMO_SENTENCES = [
  "The old man walked slowly down the road to the village, where the children were playing in the snow.",
  "He stopped at the door of the church and listened to the bells.",
] as const;

interface Job {
  mode: string;
  dir: string;
  step: number;
  total: number;
  eta: number;
  status: "queued" | "running" | "done" | "failed";
  log: string;
  reused?: boolean;
  /** Seconds per step the run reports, and when it started / first reported (for the ETA). */
  observed?: number;
  spawnedAt?: number;
  firstReportAt?: number;
  firstStep?: number;
}

/**
 * The sentence pair whose discriminator view the report shows: {@link DEMO_SENTENCES} for English
 * corpora; for a synthetic language, two fresh sentences of it (a seed no run trains on).
 */
export function demoSentences(corpus: string): [string, string] {
  if (!isSyntheticName(corpus)) return [...DEMO_SENTENCES];
  const [a, b] = freshSentences(corpus, 2);
  return [a, b];
}

/** The one line that makes the demo faster where OpenBLAS is missing (Debian/Ubuntu). */
export const OPENBLAS_APT = "sudo apt-get install libopenblas0-pthread";

const USAGE = `deno task demo — small pre-training under ${MODES.join(", ")}, then a comparison and a report
  --config NAME    preset the runs start from (its corpus too) [${DEMO_DEFAULTS.config}]; e.g. tiny (Gutenberg)
  --steps N        steps per run [${DEMO_DEFAULTS.steps}]        --batch B      sequences per step [${DEMO_DEFAULTS.batch}]
  --seq L          tokens per sequence [${DEMO_DEFAULTS.seqLength}]    --lr X         peak learning rate [${DEMO_DEFAULTS.learningRate}]
  --probe-every K  tug-of-war / geometry probes every K steps, 0 = off [${DEMO_DEFAULTS.probeEvery}]
  --set KEY=VALUE  any other config key for all runs (repeatable), e.g. --set biasCorrection=false
  --seed S         seed [0]                      --out DIR      where the runs go [runs/demo]
  --parallel N     runs at a time [cores; cuda 1]
  --backend B      wasm | cpu | webgpu | tensorflow | cuda [wasm]
  --modes LIST     comma-separated subset of ${MODES.join(",")} [all]
  --no-report      skip report.html              --fresh        train again, replacing runs
Runs already finished with the same settings are reused; interrupted ones resume; runs with other
settings stop the demo (exit 2, nothing touched) unless --fresh.`;

/** The config overrides every demo run gets (one list, so a finished run can be checked against it). */
export function demoOverrides(v: {
  steps: number;
  batch: number;
  seq: number;
  lr: number;
  probeEvery: number;
  seed: number;
  set: string[];
}): Record<string, string> {
  const o: Record<string, string> = {
    batchSize: String(v.batch),
    seqLength: String(v.seq),
    learningRate: String(v.lr),
    biasCorrection: String(DEMO_DEFAULTS.biasCorrection),
    warmupSteps: String(Math.max(1, Math.round(v.steps / 10))),
    logEvery: String(DEMO_DEFAULTS.logEvery),
    checkpointEvery: String(Math.max(10, Math.round(v.steps / 5))),
    probeEvery: String(v.probeEvery),
  };
  for (const kv of v.set) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new Error(`--set needs KEY=VALUE, got "${kv}"`);
    o[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return o;
}

/** Whether a run folder's config.json has these overrides, steps and seed (so its results can be reused). */
async function sameSettings(
  dir: string,
  mode: string,
  config: string,
  overrides: Record<string, string>,
  steps: number,
  seed: number,
): Promise<boolean> {
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
  } catch {
    return false;
  }
  // The mode too: a GDES run moved into es/ is not the ES run.
  if (c.preset !== config || c.sharing !== mode || c.steps !== steps || c.seed !== seed) return false;
  return Object.entries(overrides).every(([k, v]) => {
    let x: unknown = c;
    for (const p of k.split(".")) {
      x = x && typeof x === "object" ? (x as Record<string, unknown>)[p] : undefined;
    }
    return String(x) === v || Number(x) === Number(v);
  });
}

const DEMO_OPTIONS = {
  config: { type: "string", default: DEMO_DEFAULTS.config },
  steps: { type: "string", default: String(DEMO_DEFAULTS.steps) },
  batch: { type: "string", default: String(DEMO_DEFAULTS.batch) },
  seq: { type: "string", default: String(DEMO_DEFAULTS.seqLength) },
  lr: { type: "string", default: String(DEMO_DEFAULTS.learningRate) },
  "probe-every": { type: "string", default: String(DEMO_DEFAULTS.probeEvery) },
  set: { type: "string", multiple: true, default: [] as string[] },
  seed: { type: "string", default: "0" },
  out: { type: "string", default: "runs/demo" },
  parallel: { type: "string", default: String(Math.max(1, navigator.hardwareConcurrency ?? 2)) },
  backend: { type: "string", default: "wasm" },
  modes: { type: "string", default: MODES.join(",") },
  "no-report": { type: "boolean", default: false },
  fresh: { type: "boolean", default: false },
  help: { type: "boolean", default: false },
} as const;

/** Parses the demo's argv; throws an error naming the option when a value is not what it needs. */
export function parseDemoArgs(argv: string[]) {
  const { values } = parseCliArgs(argv, DEMO_OPTIONS);
  for (
    const [k, min] of [["steps", 1], ["batch", 1], ["seq", 4], ["probe-every", 0], ["seed", 0], [
      "parallel",
      1,
    ]] as const
  ) {
    intOption(k, values[k], min);
  }
  if (!(Number(values.lr) > 0)) throw new Error(`--lr needs a positive number, got "${values.lr}"`);
  preset(values.config); // an unknown name fails here, listing the known ones
  demoModes(values.modes!);
  return values;
}

/** The `--modes` list: known modes, at least one, none twice (two runs of one mode would share a folder). */
export function demoModes(list: string): string[] {
  const modes = list.split(",").map((m) => m.trim()).filter(Boolean);
  if (modes.length === 0) throw new Error(`--modes needs at least one of ${MODES.join(", ")}`);
  const unknown = modes.find((m) => !(MODES as readonly string[]).includes(m));
  if (unknown) throw new Error(`unknown mode "${unknown}" in --modes (valid: ${MODES.join(", ")})`);
  const repeated = modes.find((m, i) => modes.indexOf(m) !== i);
  if (repeated) throw new Error(`--modes: "${repeated}" is repeated`);
  return modes;
}

if (import.meta.main) {
  let values: ReturnType<typeof parseDemoArgs>;
  try {
    values = parseDemoArgs(Deno.args);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
  if (values.help) {
    console.log(wrapHelp(USAGE));
    Deno.exit(0);
  }
  const steps = Number(values.steps), seed = Number(values.seed);
  const modes = demoModes(values.modes!);
  let overrides: Record<string, string>;
  try {
    overrides = demoOverrides({
      steps,
      batch: Number(values.batch),
      seq: Number(values.seq),
      lr: Number(values.lr),
      probeEvery: Number(values["probe-every"]),
      seed,
      set: values.set as string[],
    });
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }

  const outProblem = outDirProblem("--out", values.out);
  if (outProblem) {
    console.error(`error: ${outProblem}`);
    Deno.exit(2);
  }
  // One validated config for every mode (sharing aside): a bad --set fails here, before any run starts.
  let base: ReturnType<typeof validateConfig>;
  try {
    base = validateConfig(applyOverrides(preset(values.config!), { ...overrides, seed, steps }));
    await corpusFingerprint(base.corpus); // a misspelt corpus is a bad command line too
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
  // The backend starts before any run folder is replaced: one that cannot run here stops the demo with
  // its own message and leaves the last demo as it was.
  // One GPU: its runs take turns unless --parallel says otherwise (as compare does on cuda).
  if (
    values.backend === "cuda" && !Deno.args.some((a) => a === "--parallel" || a.startsWith("--parallel="))
  ) {
    values.parallel = "1";
  }
  const parallel = Number(values.parallel);
  if (Deno.env.get("RTDLAB_BLAS_THREADS") === undefined) {
    Deno.env.set("RTDLAB_BLAS_THREADS", blasEnvFor(parallel).RTDLAB_BLAS_THREADS); // each child's share
  }
  let backend: Awaited<ReturnType<typeof initBackend>>;
  try {
    backend = await initBackend(values.backend as BackendName);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
  const runCorpus = base.corpus;
  const sentences = demoSentences(runCorpus);
  const out = values.out!;
  const jobs: Job[] = modes.map((mode) => ({
    mode,
    dir: join(out, mode),
    step: 0,
    total: steps,
    eta: NaN,
    status: "queued",
    log: "",
  }));
  // A demo run with other settings is work already done: replaced only with --fresh, as compare and sweep
  // ask for --force. --fresh replaces the mode folders it runs, one by one after the data is ready, and
  // nothing else in --out.
  if (!values.fresh) {
    const other = [];
    for (const j of jobs) {
      const isRun = await Deno.stat(join(j.dir, "config.json")).then(() => true, () => false);
      if (isRun && !(await sameSettings(j.dir, j.mode, values.config!, overrides, steps, seed))) {
        other.push(j.dir);
      }
    }
    if (other.length > 0) {
      console.error(
        `error: ${other.join(", ")} ${
          other.length === 1 ? "holds a demo run" : "hold demo runs"
        } with other ` +
          "settings (config, steps, seed, --set): give --fresh to replace them, or another --out",
      );
      Deno.exit(2);
    }
  }
  const script = new URL("./pretrain.ts", import.meta.url).pathname;

  const finishedAlready = async (job: Job) => {
    const m = await readMetrics(join(job.dir, "metrics.jsonl"), { allowMissing: true });
    // A run killed mid-export has logged its last step but has no export/ yet: resume it.
    const exported = await Deno.stat(join(job.dir, "export")).then(() => true, () => false);
    return m.length > 0 && m[m.length - 1].step === job.total && exported;
  };

  forwardTermination(); // `kill` stops the runs too (they checkpoint), not only this process
  const run = async (job: Job): Promise<void> => {
    const same = !values.fresh &&
      await sameSettings(job.dir, job.mode, values.config!, overrides, steps, seed);
    if (same && await finishedAlready(job)) {
      job.status = "done";
      job.reused = true;
      job.step = job.total;
      return;
    }
    // An interrupted demo with the same settings resumes; anything else starts fresh in its own folder. A
    // damaged checkpoint index, or a folder another process trains, fails this run and touches nothing.
    let resume: boolean;
    try {
      resume = same && (await latestCheckpoint(job.dir)) !== null;
      if (!resume) await removeRunFolder(job.dir);
    } catch (e) {
      job.log = `error: ${(e as Error).message}`;
      job.status = "failed";
      return;
    }
    job.status = "running";
    job.spawnedAt = performance.now();
    const args = [
      "run",
      "-A",
      "--unstable-webgpu",
      script,
      ...(resume ? ["--resume", job.dir] : [
        "--config",
        values.config!,
        "--sharing",
        job.mode,
        "--out",
        job.dir,
        "--seed",
        String(seed),
        ...Object.entries(overrides).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
      ]),
      "--steps",
      String(steps),
      "--backend",
      values.backend!,
      "--progress-jsonl",
    ];
    const r = await runWithProgress(args, {
      env: blasEnvFor(Number(values.parallel)),
      onProgress: (p) => {
        job.step = p.step as number;
        job.total = p.totalSteps as number;
        job.eta = p.etaSeconds as number;
        job.firstReportAt ??= performance.now();
        job.firstStep ??= job.step;
        // The child's own step time, once its first (slow, set-up) steps weigh little.
        if (job.step - job.firstStep >= 3 && job.step < job.total) {
          job.observed = job.eta / (job.total - job.step);
        }
      },
    });
    job.log = r.stderr;
    job.status = r.success ? "done" : "failed";
  };

  // Before the runs: the backend (OpenBLAS or not), the data (the WordPiece vocabulary is trained once
  // and cached, here rather than in each child) and one measured step per mode, for the time estimate.
  console.error(`backend: ${backend.info}`);
  if (backend.name === "wasm" && !loadBlas() && Deno.env.get("RTDLAB_BLAS") === undefined) {
    console.error(
      `OpenBLAS is not installed: each step runs ~2.7× slower on XNNPACK. To speed it up: ${OPENBLAS_APT}`,
    );
  }
  const measured = new Map<string, number>();
  const pending = [];
  for (const j of jobs) {
    const reusable = !values.fresh &&
      await sameSettings(j.dir, j.mode, values.config!, overrides, steps, seed) &&
      await finishedAlready(j);
    if (!reusable) pending.push(j);
  }
  if (pending.length > 0) {
    let prepared: Awaited<ReturnType<typeof prepareRunData>>;
    try {
      prepared = await prepareRunData(base, (m) =>
        console.error(
          m.startsWith("training a")
            ? `data: ${m} on ${base.corpus} (first run only; cached in ${defaultCacheDir()})`
            : `data: ${m}`,
        ));
    } catch (e) {
      // Before any run folder is touched: a corpus that cannot be read leaves the last demo as it was.
      console.error(`error: ${(e as Error).message}`);
      Deno.exit(1);
    }
    const { tokenizer, data } = prepared;
    const vocab = {
      padId: tokenizer.specialIds.pad,
      maskId: tokenizer.specialIds.mask,
      vocabSize: tokenizer.vocabSize,
      isSpecial: (id: number) => tokenizer.isSpecial(id),
    };
    for (const mode of new Set(pending.map((j) => j.mode))) {
      const c = validateConfig({
        ...applyOverrides(base, { sharing: mode }),
        vocabSize: tokenizer.vocabSize,
      });
      measured.set(mode, await measureStepSeconds(c, vocab, data));
    }
    const total = etaSeconds(
      pending.map((j) => ({ state: "queued", total: steps, done: 0, measured: measured.get(j.mode)! })),
      parallel,
      STARTUP_SECONDS,
    );
    console.error(
      `estimate: ~${formatDuration(total)} of training for ${pending.length} run(s), ${parallel} at a time ` +
        `(a step measured here: ${[...measured].map(([m, t]) => `${m} ${t.toFixed(2)} s`).join(", ")}; ` +
        `probes and checkpoints add some); the ETA below follows the runs' own step times`,
    );
  }
  const eta = () => {
    const started = jobs.filter((j) => j.firstReportAt !== undefined);
    const startup = started.length
      ? started.reduce((a, j) => a + (j.firstReportAt! - j.spawnedAt!) / 1000, 0) / started.length
      : STARTUP_SECONDS;
    return etaSeconds(
      jobs.filter((j) => measured.has(j.mode)).map((j) => ({
        state: j.status === "queued" ? "queued" : j.status === "running" ? "running" : "done",
        total: j.total,
        done: j.step,
        measured: measured.get(j.mode)!,
        observed: j.observed,
      })),
      parallel,
      startup,
    );
  };

  const t0 = performance.now();
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  let lastLine = "";
  const ticker = setInterval(() => {
    const parts = jobs.map((j) =>
      j.status === "queued" ? `${j.mode} queued` : `${j.mode} ${Math.floor((100 * j.step) / j.total)}%`
    );
    const line = `demo ${parts.join(" · ")} | ${formatDuration((performance.now() - t0) / 1000)} elapsed` +
      (measured.size ? `, ETA ${formatDuration(eta())}` : "");
    if (tty) Deno.stderr.writeSync(enc.encode(`\r\x1b[2K${line.slice(0, terminalColumns() - 1)}`));
    else {
      // Non-TTY (CI logs): print when a run crosses a 10% mark.
      const coarse = line.replace(/(\d+)%/g, (_, p) => `${Math.floor(Number(p) / 10) * 10}%`);
      const key = coarse.replace(/ \| .*$/, "");
      if (key !== lastLine) console.error(coarse);
      lastLine = key;
    }
  }, 500);

  console.error(
    `demo: ${jobs.length} runs of ${values.config} × ${steps} steps × batch ${values.batch} × ${values.seq} tokens, lr ${values.lr}, ` +
      `probes every ${values["probe-every"]}, ${values.parallel} at a time, backend ${values.backend}`,
  );
  const queue = [...jobs];
  await Promise.all(
    Array.from({ length: Number(values.parallel) }, async () => {
      for (let job = queue.shift(); job; job = queue.shift()) await run(job);
    }),
  );
  clearInterval(ticker);
  if (tty) Deno.stderr.writeSync(enc.encode("\n"));
  const trainSeconds = (performance.now() - t0) / 1000;

  const failed = jobs.filter((j) => j.status === "failed");
  for (const j of failed) console.error(`\n${j.mode} failed:\n${j.log.split("\n").slice(-15).join("\n")}`);
  const done = jobs.filter((j) => j.status === "done");
  if (done.length === 0) Deno.exit(1);

  const t = await loadRuns(done.map((j) => j.dir));
  console.log(
    `\nrtdlab demo — ${values.config} config on ${runCorpus}, ${steps} steps × batch ${values.batch} × ${values.seq} tokens, lr ${values.lr}, seed ${seed}`,
  );
  console.log(summaryText(runSummary(t)));
  console.log(
    "\nHas the discriminator learned? (ROC-AUC and RTD gain, means over the last tenth of logged steps)",
  );
  for (const k of discriminatorSkill(t)) console.log(`- ${k.text}`);
  console.log("\nDeBERTaV3's findings, read off these runs:");
  for (const f of findings(t)) console.log(`- [${f.verdict}] ${f.text}`);

  if (!values["no-report"]) {
    // The discriminator's view of one sentence under each RTD mode: same masked positions, same seed.
    await initBackend(values.backend as BackendName);
    const views: ModeView[] = [];
    for (const j of done) {
      if (j.mode === "mlm") continue;
      try {
        const { trainer, tokenizer } = await openRun(j.dir);
        try {
          views.push({
            mode: j.mode,
            rows: await (async () => {
              const enc = tokenizer.encodePair(...sentences);
              return await discriminatorView(trainer.model, enc.ids, {
                tokenizer,
                tokenTypeIds: enc.tokenTypeIds,
                seed: 1,
              });
            })(),
          });
        } finally {
          trainer.dispose();
        }
      } catch (e) {
        console.error(`report: no discriminator view for ${j.mode}: ${(e as Error).message}`);
      }
    }
    const perRun = await Promise.all(done.map(async (j) => {
      const m = await readMetrics(join(j.dir, "metrics.jsonl"), { allowMissing: true });
      return `${j.mode} ${formatDuration(m.at(-1)?.elapsed_s ?? NaN)}`;
    }));
    const reused = jobs.filter((j) => j.reused).map((j) => j.mode);
    const report = await demoReport(out, {
      views,
      sentence: sentences.join(" / "),
      note:
        `Training time per run (from metrics.jsonl): ${perRun.join(", ")}; ${values.parallel} run${
          values.parallel === "1" ? "" : "s"
        } at a time, ` +
        `backend ${values.backend}. ` +
        (isSyntheticName(runCorpus)
          ? `Corpus: ${runCorpus}, a synthetic language (README, "Synthetic languages"): the discriminators ` +
            `learn its context rule, not English. `
          : `Corpus: ${runCorpus}. `) +
        (reused.length ? `Reused from an earlier demo with the same settings: ${reused.join(", ")}. ` : "") +
        `Wall time of this invocation's training phase: ${formatDuration(trainSeconds)}.`,
    });
    const path = await report.write(join(out, "report.html"));
    console.log(`\nreport: ${path}`);
  }
  console.log(
    `runs in ${out}/{${modes.join(",")}} (metrics.jsonl, checkpoints, export); wall time ${
      formatDuration((performance.now() - t0) / 1000)
    }`,
  );
  Deno.exit(failed.length ? 1 : 0);
}

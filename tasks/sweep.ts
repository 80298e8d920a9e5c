/**
 * `deno task sweep`: pre-train a grid (or list) of configs, each point a child process of
 * tasks/pretrain.ts, then judge every final checkpoint on held-out sequences with T = 1 replacements
 * (tasks/evaluate.ts) and write `runs/sweep/NAME/results.{md,json}` and `report.html`.
 *
 *   deno task sweep --name lr --grid learningRate=3e-4,1e-3 --grid corpus=gutenberg,synthetic:agreement \
 *     --set steps=300
 *
 * Re-running the same command continues: finished points are skipped, interrupted ones resume from
 * their checkpoint. lib/sweep holds the logic (grid expansion, point state, results).
 *
 * @module
 */

import { intOption, jsonProblem, outDirProblem, parseArgsOrExit, wrapHelp } from "../lib/util/cli.ts";
import { PRESETS } from "../lib/config.ts";
import { join, resolve } from "node:path";
import { blasEnvFor } from "../lib/backend/blas.ts";
import { checkBackend } from "../lib/backend/preflight.ts";
import { writeFileAtomic, writeJsonAtomic } from "../lib/io/atomic.ts";
import { prepareCorpus } from "../lib/text/dataset.ts";
import { readMetrics } from "../lib/train/run.ts";
import { holdOut } from "../lib/train/evaluate.ts";
import {
  checkData,
  expandSweep,
  parseGrid,
  parsePoint,
  splitAssignment,
  type SweepPoint,
  type SweepSpec,
} from "../lib/sweep/grid.ts";
import { EVAL_FILE, type PointState, pointState } from "../lib/sweep/runs.ts";
import { removeRunFolder } from "../lib/io/run_lock.ts";
import { type SweepPlan, writeResults } from "../lib/sweep/results.ts";
import {
  aucText,
  crossBase,
  type CrossGroup,
  crossGroups,
  crossKeys,
  crossMarkdown,
  crossSweep,
  type SweepCross,
  type SweepRun,
  writeCross,
} from "../lib/sweep/cross.ts";
import { SHARED_DATA_KEYS } from "../lib/report/trained.ts";
import type { BackendName } from "../lib/backend/mod.ts";
import { formatDuration, terminalColumns } from "../lib/util/progress.ts";
import { forwardTermination, runWithProgress } from "../lib/util/subprocess.ts";
import { SIGNAL_EXIT } from "../lib/util/signals.ts";

const CORES = Math.max(1, navigator.hardwareConcurrency ?? 2);

const HELP = `deno task sweep — pre-train a grid of configs and judge each discriminator on T = 1 replacements

  --name NAME           results go to runs/sweep/NAME (required)
  --grid KEY=V1,V2,...  sweep a config key over values (repeatable: the cartesian product, the last
                        --grid varying fastest). Any config key (dotted for nested ones, e.g.
                        discriminator.hiddenSize), plus: preset=tiny,deberta-tiny (the base preset);
                        vocabSize (with a trained tokenizer: the vocabulary trained on the corpus)
  --point K=V,K=V       one point of an explicit list (repeatable); crossed with any --grid
  --set KEY=VALUE       fix a config key for every point (repeatable), e.g. --set steps=300
  --corpus NAME         the same as --set corpus=NAME (e.g. synthetic:echo; README, "Synthetic languages")
  --config NAME|FILE    base preset (${
  Object.keys(PRESETS).join(", ")
}) or a JSON file of overrides on tiny  [tiny]
  --seeds LIST          pre-training seeds, every point once per seed  [0]
  --holdout N           sequences each run keeps out of training for the T = 1 evaluation  [64]
  --eval-seed S         seed of the evaluation's masking and sampling  [0]
  --eval-batch B        sequences per evaluation forward pass  [16]
  --eval-temperature T  temperature of the replacements D is judged on  [1]
  --parallel N          runs at a time (the OpenBLAS threads are shared among them)  [${CORES}]
  --backend B           wasm | cpu | webgpu | tensorflow | cuda  [wasm]
  --out DIR             the sweep's folder  [runs/sweep/NAME]
  --list                print the points and the pretrain command of each, then stop
  --report-only         write results and report from what is finished; run nothing
  --cross KEYS          then score every discriminator on every generator among the runs that differ only
                        in KEYS (swept keys of the model or training, comma-separated, e.g. sharing): is
                        it D, or its task? → cross-KEY1+KEY2.{json,md,html}. One evaluation per
                        reading, one at a time, in this process on --backend (also with --report-only)
  --force               continue a folder whose plan.json differs (points with another config restart)
  --help                this text

Logging and checkpoints follow steps (logEvery = steps/100, checkpointEvery = steps/10) unless set.
Every value is validated before anything runs. Re-running continues: finished points are skipped,
interrupted ones resume.`;

function fail(msg: string): never {
  console.error(`error: ${msg}`);
  Deno.exit(2);
}

/** One point's work in this invocation. */
interface Job {
  point: SweepPoint;
  dir: string;
  state: PointState;
  status: "queued" | "training" | "evaluating" | "done" | "failed";
  step: number;
  total: number;
  eta: number;
  /** Time and step of its first progress line in this invocation (for the speed behind the ETA). */
  startedAt: number;
  startStep: number;
  log: string;
}

/**
 * `--cross KEYS`: every discriminator of the finished runs scored on every generator of the runs that differ
 * from it only in KEYS (lib/sweep/cross.ts), in this process on the backend already started;
 * cross-KEYS.{json,md} beside the results (what was made, when stopped). False (after saying why) when there
 * is nothing to cross or a reading failed.
 */
async function crossRuns(
  root: string,
  name: string,
  by: string[],
  shouldStop: () => boolean,
): Promise<boolean> {
  const results = JSON.parse(await Deno.readTextFile(join(root, "results.json")));
  const runs = results.runs as SweepRun[];
  const left = runs.filter((r) => r.status !== "done");
  if (left.length) {
    console.error(`--cross: left out, not finished: ${left.map((r) => `${r.dir} (${r.status})`).join(", ")}`);
  }
  let cross: SweepCross;
  try {
    cross = await crossSweep(name, runs, by, results.plan.eval, {
      shouldStop,
      onReading: (grp, r, done, total) =>
        console.error(
          `cross ${done}/${total}: ${r.d}'s D on ${r.g}'s G: ` +
            (r.error ? `failed: ${r.error}` : `AUC ${aucText(r.auc)}`) +
            (Object.keys(grp.values).length
              ? ` (${Object.entries(grp.values).map(([k, v]) => `${k}=${v}`).join(", ")})`
              : ""),
        ),
    });
  } catch (e) {
    console.error(`error: --cross: ${(e as Error).message}`);
    const earlier = await Deno.stat(`${crossBase(root, by)}.json`).then((st) => st.mtime, () => null);
    if (earlier) {
      console.error(
        `(${resolve(crossBase(root, by))}.* are an earlier crossing's, of ${earlier.toISOString()})`,
      );
    }
    return false;
  }
  const base = await writeCross(root, cross);
  const md = crossMarkdown(cross);
  const failedReadings = cross.groups.flatMap((g) => g.cross).filter((r) => r.error).length;
  console.log(`\n${md}`);
  console.log(`files: ${resolve(base)}.{json,md,html}`);
  if (failedReadings) {
    console.error(`error: --cross: ${failedReadings} reading(s) failed (named in the table)`);
  }
  return failedReadings === 0;
}

if (import.meta.main) {
  // A parse error prints one short line naming the option and exits with 2 (lib/util/cli.ts).
  const { values } = parseArgsOrExit({
    options: {
      name: { type: "string" },
      grid: { type: "string", multiple: true, default: [] },
      point: { type: "string", multiple: true, default: [] },
      set: { type: "string", multiple: true, default: [] },
      corpus: { type: "string" },
      config: { type: "string", default: "tiny" },
      seeds: { type: "string", default: "0" },
      holdout: { type: "string", default: "64" },
      "eval-seed": { type: "string", default: "0" },
      "eval-batch": { type: "string", default: "16" },
      "eval-temperature": { type: "string", default: "1" },
      parallel: { type: "string", default: String(CORES) },
      backend: { type: "string", default: "wasm" },
      out: { type: "string" },
      list: { type: "boolean", default: false },
      "report-only": { type: "boolean", default: false },
      cross: { type: "string" },
      force: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(wrapHelp(HELP));
    Deno.exit(0);
  }
  const name = values.name;
  if (!name) fail("--name NAME is required: results go to runs/sweep/NAME (see --help)");
  if (!/^[A-Za-z0-9._-]+$/.test(name)) fail(`--name "${name}": use letters, digits, '.', '_' and '-'`);
  // One rule and one message for every integer option (lib/util/cli.ts).
  const int = (flag: string, v: string, min: number): number => {
    try {
      return intOption(flag, v, min)!;
    } catch (e) {
      fail((e as Error).message);
    }
  };
  const temperature = Number(values["eval-temperature"]);
  if (!(temperature > 0 && Number.isFinite(temperature))) {
    fail(`--eval-temperature needs a positive number, got "${values["eval-temperature"]}"`);
  }
  const parallel = int("parallel", values.parallel!, 1);
  const backend = values.backend!;

  const outProblem = outDirProblem("--out", values.out);
  if (outProblem) fail(outProblem);
  const root = values.out ?? join("runs", "sweep", name);
  const planPath = join(root, "plan.json");
  const reportOnly = values["report-only"]!;
  // --report-only rewrites the results of the sweep in the folder, as its plan.json says: the grid need not
  // be typed again, and no other grid can overwrite its results.
  const savedPlan = reportOnly
    ? await Deno.readTextFile(planPath).then((t) => JSON.parse(t) as SweepPlan).catch((e) => {
      fail(
        e instanceof Deno.errors.NotFound
          ? `--report-only: no sweep in ${root} (no plan.json); run the sweep first, without --report-only`
          : `--report-only: cannot read ${planPath}: ${(e as Error).message}`,
      );
    })
    : null;

  let spec: SweepSpec;
  let points: SweepPoint[];
  try {
    spec = savedPlan ?? {
      config: values.config!,
      sets: [
        ...(values.corpus === undefined ? [] : [`corpus=${values.corpus}`]),
        ...(values.set as string[]),
      ].map((kv) => splitAssignment("--set", kv)),
      grid: (values.grid as string[]).map(parseGrid),
      points: (values.point as string[]).map(parsePoint),
      seeds: values.seeds!.split(",").map((s) => s.trim()).filter(Boolean).map((s) => int("seeds", s, 0)),
      holdout: int("holdout", values.holdout!, 0),
    };
    points = expandSweep(spec);
    if (!reportOnly) await checkData(points);
  } catch (e) {
    fail((e as Error).message);
  }
  if (spec.holdout === 0) {
    fail("--holdout 0: the T = 1 evaluation needs held-out sequences (e.g. --holdout 64)");
  }
  const plan: SweepPlan = savedPlan ?? {
    ...spec,
    eval: {
      temperature,
      seed: int("eval-seed", values["eval-seed"]!, 0),
      batchSize: int("eval-batch", values["eval-batch"]!, 1),
    },
    backend,
  };
  const dirOf = (p: SweepPoint) => join(root, "points", p.name);
  // --cross names swept keys that leave the data alone (one run's generator must corrupt another's held-out
  // sequences): checked now, not after hours of training.
  const crossBy = values.cross === undefined ? undefined : crossKeys(values.cross.split(","));
  if (crossBy) {
    const swept = [...new Set(points.flatMap((p) => Object.keys(p.values)))];
    if (crossBy.length === 0) fail("--cross needs the keys to cross, e.g. --cross sharing");
    for (const k of crossBy) {
      if (!swept.includes(k)) {
        fail(`--cross ${k}: not a key this sweep varies (it varies: ${swept.join(", ") || "nothing"})`);
      }
      if ((SHARED_DATA_KEYS as readonly string[]).includes(k) || k === "vocabSize") {
        fail(
          `--cross ${k}: runs that differ in ${k} have other data or vocabularies, so one's generator cannot ` +
            "corrupt another's sequences; cross keys of the model or the training (e.g. sharing)",
        );
      }
    }
    const combos = new Set(points.map((p) => JSON.stringify(crossBy.map((k) => p.values[k] ?? null))));
    if (combos.size < 2) {
      fail(`--cross ${crossBy.join(",")}: every point has the same value, nothing to cross`);
    }
    // The groups the finished sweep will cross, formed now from the points: none, or one whose runs would
    // differ in their data (a preset brings its own corpus and tokenizer), is refused before any training.
    const asRun = (p: SweepPoint): SweepRun => ({
      dir: dirOf(p),
      seed: p.config.seed,
      sharing: p.config.sharing,
      status: "done",
      values: p.values,
    });
    let groups: CrossGroup[] = [];
    try {
      groups = crossGroups(points.map(asRun), crossBy);
    } catch {
      fail(
        `--cross ${crossBy.join(",")}: no two points differ only in ${
          crossBy.join(", ")
        }, so nothing would be ` +
          "crossed (other keys differ between them too)",
      );
    }
    for (const g of groups) {
      const configs = g.members.map((m) => points.find((p) => dirOf(p) === m.run.dir)!.config);
      for (const k of [...SHARED_DATA_KEYS, "vocabSize"] as const) {
        if (configs.some((c) => c[k] !== configs[0][k])) {
          fail(
            `--cross ${crossBy.join(",")}: the runs of a group differ in ${k} (${
              [...new Set(configs.map((c) => c[k]))].join(" vs ")
            }), so one's generator cannot corrupt another's sequences`,
          );
        }
      }
    }
  }

  if (values.list) {
    for (const p of points) {
      console.log(`${p.name}\n  deno task pretrain ${p.args.join(" ")} --out ${dirOf(p)}`);
    }
    console.log(`${points.length} runs`);
    Deno.exit(0);
  }

  if (!values["report-only"] || crossBy) {
    // A backend that cannot start here (no GPU driver, a misspelt name) fails before any folder is made.
    try {
      console.error(`backend: ${await checkBackend(backend)}`);
    } catch (e) {
      fail((e as Error).message);
    }
  }

  // ---- plan.json: a re-run continues the same sweep, never silently a different one ----
  await Deno.mkdir(root, { recursive: true });
  const oldPlan = await Deno.readTextFile(planPath).catch(() => null);
  // A damaged plan is not "other settings": say so before offering --force, which would replace it.
  const damage = oldPlan === null ? null : jsonProblem(oldPlan);
  if (damage && !values.force) {
    fail(`${planPath} cannot be read (${damage}); look at it and move it away, or --force to replace it`);
  }
  if (oldPlan !== null && oldPlan.trim() !== JSON.stringify(plan, null, 2) && !values.force) {
    fail(
      `${root} holds a sweep with other settings (${planPath}); use another --name, or --force to continue ` +
        `it with these (finished points whose config is unchanged are kept, the others restart)`,
    );
  }

  const jobs: Job[] = [];
  for (const p of points) {
    const dir = dirOf(p);
    // A point whose folder cannot be read (a damaged checkpoint index) fails alone, with its reason.
    let state: PointState, problem = "";
    try {
      state = await pointState(dir, p.config, plan.eval);
    } catch (e) {
      state = "fresh";
      problem = `error: ${(e as Error).message}`;
    }
    // A run resuming shows its own progress from where it stopped, not 0 %.
    const reached = state === "resume"
      ? (await readMetrics(join(dir, "metrics.jsonl"), { allowMissing: true })).at(-1)?.step ?? 0
      : 0;
    jobs.push({
      point: p,
      dir,
      state,
      status: problem ? "failed" : state === "done" ? "done" : "queued",
      step: state === "done" ? p.config.steps : reached,
      total: p.config.steps,
      eta: NaN,
      startedAt: NaN,
      startStep: reached,
      log: problem,
    });
  }
  const pending = jobs.filter((j) => j.status === "queued");
  if (reportOnly) {
    console.error(
      `sweep ${name}: report only (the grid of ${planPath}): ${points.length - pending.length} of ` +
        `${points.length} runs finished and evaluated; nothing runs`,
    );
  } else {
    const n = (k: number, word: string) => `${k} ${word}${k === 1 ? "" : "s"}`;
    console.error(
      `sweep ${name}: ${n(points.length, "run")} (${n(points.length / spec.seeds.length, "point")} × ` +
        `${n(spec.seeds.length, "seed")}), ${pending.length} to run` +
        (pending.length
          ? ` (${pending.filter((j) => j.state === "resume").length} resuming, ${
            pending.filter((j) => j.state === "evaluate").length
          } to evaluate only), ${parallel} at a time, backend ${backend}`
          : ""),
    );
  }

  const t0 = performance.now();
  let stopping = false;
  let stopStatus = SIGNAL_EXIT.SIGINT; // the exit status of the signal that stopped the sweep
  let crossing = false; // past the runs, crossing them (--cross)
  let listening = false;
  /** Ctrl-C and `kill` stop the sweep between steps of its work: once, for the training and the crossing. */
  const listenForStop = () => {
    if (listening) return;
    listening = true;
    Deno.addSignalListener("SIGINT", () => {
      if (stopping) Deno.exit(130);
      stopping = true;
      console.error(
        crossing
          ? "\ninterrupted: the crossing stops after this reading and writes those made (Ctrl-C again to quit now)"
          : "\ninterrupted: the running points checkpoint and stop; results follow (Ctrl-C again to quit now)",
      );
    });
    // `kill` as Ctrl-C: the running points get the signal too, and the results follow.
    forwardTermination(() => {
      stopping = true;
      stopStatus = SIGNAL_EXIT.SIGTERM;
      if (crossing) console.error("the crossing stops after this reading and writes those made");
    });
  };
  if (!reportOnly && pending.length === 0) await writeJsonAtomic(planPath, plan);
  if (!reportOnly && pending.length) {
    // Warm the corpus cache once per distinct data setting, so parallel runs do not all train the
    // same tokenizer; it also surfaces a data problem before any training starts.
    const seen = new Set<string>();
    for (const j of pending.filter((j) => j.state === "fresh")) {
      const c = j.point.config;
      const key = JSON.stringify([
        c.corpus,
        c.tokenizer,
        c.tokenizerVocabSize,
        c.seqLength,
        c.seed,
        c.corpusMaxChars,
      ]);
      if (seen.has(key)) continue;
      seen.add(key);
      console.error(
        `preparing ${c.corpus} (tokenizer ${c.tokenizer}, seq ${c.seqLength}, seed ${c.seed})...`,
      );
      try {
        const { data } = await prepareCorpus({
          corpus: c.corpus,
          tokenizer: c.tokenizer,
          vocabSize: c.tokenizerVocabSize,
          maxLength: c.seqLength,
          seed: c.seed,
          maxChars: c.corpusMaxChars || undefined,
        });
        holdOut(data, c.heldOutSequences, c.seed); // too large a --holdout for this corpus fails here
      } catch (e) {
        fail(`point "${j.point.label}": ${(e as Error).message}`);
      }
    }

    // Written once the data checks passed: a sweep refused before any run keeps no plan to --force past.
    await writeJsonAtomic(planPath, plan);
    listenForStop();
    const logDir = join(root, "logs");
    const pretrainScript = new URL("./pretrain.ts", import.meta.url).pathname;
    const evaluateScript = new URL("./evaluate.ts", import.meta.url).pathname;
    const env = blasEnvFor(parallel);
    const finishedRates: number[] = []; // seconds per step of the runs trained so far
    const child = async (job: Job, kind: string, args: string[], progress: boolean) => {
      const r = await runWithProgress(["run", "-A", "--unstable-webgpu", ...args], {
        env,
        onProgress: progress
          ? (p) => {
            if (!Number.isFinite(job.startedAt)) {
              job.startedAt = performance.now();
              job.startStep = p.step as number;
            }
            job.step = p.step as number;
            job.total = p.totalSteps as number;
            job.eta = p.etaSeconds as number;
          }
          : undefined,
      });
      job.log = r.stderr;
      await writeFileAtomic(join(logDir, `${job.point.name}.${kind}.log`), r.stderr);
      return r.success;
    };
    const run = async (job: Job) => {
      try {
        await runPoint(job);
      } catch (e) {
        // A folder another process trains, or one that cannot be read: this point fails, the others go on.
        job.log = `error: ${(e as Error).message}`;
        job.status = "failed";
      }
    };
    const runPoint = async (job: Job) => {
      if (job.state === "fresh" || job.state === "resume") {
        if (job.state === "fresh") await removeRunFolder(job.dir);
        job.status = "training";
        const args = job.state === "fresh"
          ? [pretrainScript, ...job.point.args, "--out", job.dir]
          : [pretrainScript, "--resume", job.dir, "--steps", String(job.point.config.steps)];
        const ok = await child(job, "pretrain", [...args, "--backend", backend, "--progress-jsonl"], true);
        if (ok && job.step > job.startStep) {
          finishedRates.push((performance.now() - job.startedAt) / 1000 / (job.step - job.startStep));
        }
        // Ctrl-C reaches the children too: they checkpoint and stop early; the next run resumes them.
        const after = await pointState(job.dir, job.point.config, plan.eval);
        if (stopping && (after === "resume" || after === "fresh")) {
          job.status = "queued";
          return;
        }
        if (!ok || after === "resume" || after === "fresh") {
          job.status = "failed";
          return;
        }
      }
      if (stopping) { // trained, but stopped before its evaluation started: the next run evaluates it
        job.status = "queued";
        return;
      }
      job.status = "evaluating";
      job.step = job.total;
      const ev = plan.eval;
      const ok = await child(job, "evaluate", [
        evaluateScript,
        "--run",
        job.dir,
        "--out",
        join(job.dir, EVAL_FILE),
        "--temperature",
        String(ev.temperature),
        "--seed",
        String(ev.seed),
        "--batch",
        String(ev.batchSize),
        "--backend",
        backend,
      ], false);
      const done = ok && await pointState(job.dir, job.point.config, ev) === "done";
      // An evaluation cut short by Ctrl-C or `kill` wrote nothing (its file is written atomically): the point
      // waits for the next run, which evaluates it without training again.
      job.status = done ? "done" : stopping ? "queued" : "failed";
    };

    // One status line: runs done, each running run's progress, elapsed and an ETA from the speed so far.
    const tty = Deno.stderr.isTerminal();
    const enc = new TextEncoder();
    let lastKey = "", lastPrint = 0;
    const eta = () => {
      const rates = jobs.filter((j) => j.status === "training" && j.step > j.startStep)
        .map((j) => (performance.now() - j.startedAt) / 1000 / (j.step - j.startStep))
        .concat(finishedRates);
      if (rates.length === 0) return NaN;
      const perStep = rates.reduce((a, b) => a + b, 0) / rates.length;
      const running = jobs.filter((j) => j.status === "training")
        .reduce((s, j) => s + (Number.isFinite(j.eta) ? j.eta : perStep * (j.total - j.step)), 0);
      const queued = jobs.filter((j) => j.status === "queued" && j.state !== "evaluate")
        .reduce((s, j) => s + perStep * (j.point.config.steps - j.step), 0);
      return (running + queued) / parallel;
    };
    const ticker = setInterval(() => {
      const done = jobs.filter((j) => j.status === "done").length;
      const failedN = jobs.filter((j) => j.status === "failed").length;
      const running = jobs.filter((j) => j.status === "training" || j.status === "evaluating").map((j) =>
        j.status === "evaluating"
          ? `${j.point.name} evaluating`
          : `${j.point.name} ${Math.floor((100 * j.step) / Math.max(1, j.total))}%`
      );
      const head = `sweep ${name}: ${done}/${jobs.length} done${failedN ? `, ${failedN} failed` : ""}`;
      const tail = `${formatDuration((performance.now() - t0) / 1000)} elapsed, ETA ${formatDuration(eta())}`;
      const line = `${head} | ${running.join(" · ")} | ${tail}`;
      if (tty) {
        Deno.stderr.writeSync(enc.encode(`\r\x1b[2K${line.slice(0, terminalColumns() - 1)}`));
      } else {
        // Logs (no TTY): a line when a run starts or ends, or every minute.
        const key = `${head} ${running.map((r) => r.replace(/ \d+%$/, "")).join(",")}`;
        if (key !== lastKey || performance.now() - lastPrint > 60_000) {
          console.error(line);
          lastKey = key;
          lastPrint = performance.now();
        }
      }
    }, 500);
    const queue = [...pending];
    await Promise.all(Array.from({ length: Math.min(parallel, queue.length) }, async () => {
      for (let job = queue.shift(); job && !stopping; job = queue.shift()) await run(job);
    }));
    clearInterval(ticker);
    if (tty) Deno.stderr.writeSync(enc.encode("\n"));
  }
  const wall = (performance.now() - t0) / 1000;

  const failed = jobs.filter((j) => j.status === "failed");
  for (const j of failed) {
    console.error(`\n${j.point.name} failed:\n${j.log.split("\n").slice(-15).join("\n")}`);
  }
  const md = await writeResults(root, {
    name,
    plan,
    points,
    dirOf,
    statusOf: (p) => {
      const s = jobs.find((j) => j.point === p)!.status;
      return s === "done" ? "done" : s === "failed" ? "failed" : "unfinished";
    },
    wallSeconds: wall,
    parallel,
    ran: reportOnly ? 0 : pending.length,
  });
  console.log(`\n${md}`);
  console.log(`files: ${resolve(root)}/{results.md,results.json,report.html}`);
  let crossFailed = false;
  if (crossBy && stopping) {
    console.error(
      "--cross skipped: the sweep was stopped; run the same command again to finish and cross it",
    );
  } else if (crossBy) {
    crossing = true;
    listenForStop();
    console.error(
      `crossing ${crossBy.join(", ")}: every discriminator on every generator of its group ` +
        "(Ctrl-C stops after the reading under way and writes those made)",
    );
    // The readings run in this process (tfjs is loaded only for a crossing).
    const { initBackend } = await import("../lib/backend/mod.ts");
    await initBackend(backend as BackendName);
    crossFailed = !await crossRuns(root, name, crossBy, () => stopping);
  }
  Deno.exit(stopping ? stopStatus : failed.length || crossFailed ? 1 : 0);
}

/**
 * A report over any run folders side by side: what differs in their settings, whether each
 * discriminator has learned (in training, and held out where the run has an `eval.json`), the summary
 * table, and the curves. What `deno task report` writes after a few `deno task pretrain` runs.
 *
 * ```ts
 * const { report } = await runsReport(["runs/gdes-lam50", "runs/gdes-lam10"]);
 * await report.write("runs/report.html");
 * ```
 *
 * @module
 */

import { join, normalize, resolve } from "node:path";
import { escapeHtml, type Figure } from "./plotly.ts";
import { Report } from "./html.ts";
import {
  findRuns,
  loadRun,
  readMetricsFile,
  readRunConfig,
  RUN_COLUMNS,
  runNames,
  type Table,
  tableFromRows,
} from "./metrics.ts";
import { formatSummary, runSummary, SUMMARY_KEY } from "./demo.ts";
import { type CurveOptions, lossCurves, metricCurves, skillCurves } from "./figures.ts";
import {
  formatAgainst,
  formatSe,
  lastTenth,
  nearThreshold,
  NOT_LEARNED,
  notLearned,
  tailSe,
} from "../train/rtd_metrics.ts";
import { earlierResult, type FinetuneMetricsFile } from "../finetune/run.ts";
import { ONE_CLASS_SHARE } from "../finetune/metrics.ts";
import type { MeanSe, RunProbe } from "../probes/run_probe.ts";

/** Options of {@link runsReport}. */
export interface RunsReportOptions {
  /** Page title (default: "rtdlab runs: " and the run names). */
  title?: string;
  /** EMA weight of the curves (default 0.6; 0 draws the raw logged values). */
  smooth?: number;
}

/** One run's folder, name in the report, saved settings, and how many steps it has logged. */
export interface ReportedRun {
  dir: string;
  name: string;
  config: Record<string, unknown>;
  logged: number;
}

/**
 * The run folders at or below each path (a run folder, or a folder of runs such as `runs/demo`): in the
 * order given, a folder's runs in natural order (lambda-10, lambda-50, lambda-200), each run once however
 * it is spelt (`runs/a/` and `runs`). Throws naming a path that does not exist, is a file, or holds no run.
 */
export async function reportedRuns(paths: string[]): Promise<ReportedRun[]> {
  if (paths.length === 0) throw new Error("no run folders given");
  const dirs: string[] = [];
  const seen = new Set<string>();
  for (const p of paths) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(p);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw new Error(`${p} does not exist`);
      throw e;
    }
    if (!info.isDirectory) throw new Error(`${p} is a file; give the run folder that holds metrics.jsonl`);
    const found = await findRuns(normalize(p).replace(/(.)\/+$/, "$1"));
    if (found.length === 0) throw new Error(`${p}: no run folder (one holding metrics.jsonl) at or below it`);
    found.sort((x, y) => x.localeCompare(y, undefined, { numeric: true }));
    for (const d of found) {
      if (seen.has(resolve(d))) continue;
      seen.add(resolve(d));
      dirs.push(d);
    }
  }
  const names = runNames(dirs);
  return await Promise.all(dirs.map(async (dir, i) => ({
    dir,
    name: names[i],
    config: await readRunConfig(dir),
    logged: (await readMetricsFile(join(dir, "metrics.jsonl"))).length,
  })));
}

/** A config flattened to dotted keys (`discriminator.hiddenSize`), values as they would be typed in `--set`. */
function flatten(c: Record<string, unknown>, prefix = ""): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(c)) {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      for (const [kk, vv] of flatten(v as Record<string, unknown>, `${prefix}${k}.`)) out.set(kk, vv);
    } else out.set(`${prefix}${k}`, typeof v === "string" ? v : JSON.stringify(v));
  }
  return out;
}

/**
 * The settings of `runs` split into those every run shares and those that differ (a key missing from a
 * run's config.json reads "—"), each in the order the first run lists them.
 */
export function settingsDiff(runs: ReportedRun[]): { shared: [string, string][]; differing: string[] } {
  const flat = runs.map((r) => flatten(r.config));
  const keys: string[] = [];
  for (const f of flat) for (const k of f.keys()) if (!keys.includes(k)) keys.push(k);
  const shared: [string, string][] = [];
  const differing: string[] = [];
  for (const k of keys) {
    const values = flat.map((f) => f.get(k) ?? "—");
    if (values.every((v) => v === values[0])) shared.push([k, values[0]]);
    else differing.push(k);
  }
  return { shared, differing };
}

/** What a run's eval.json says: a sentence, its verdict, and what the verdict rests on (null when it has none). */
interface HeldOutReading {
  text: string;
  learned: boolean | null;
  /** Within two standard errors of a threshold ({@link nearThreshold}). */
  near: boolean;
  step: number | null;
  temperature: number | null;
  heldOut: boolean;
}

async function heldOutLine(run: ReportedRun): Promise<HeldOutReading | null> {
  let ev: Record<string, unknown>;
  try {
    ev = JSON.parse(await Deno.readTextFile(join(run.dir, "eval.json")));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    return {
      text: `its eval.json could not be read (${(e as Error).message.split("\n")[0]})`,
      learned: null,
      near: false,
      step: null,
      temperature: null,
      heldOut: false,
    };
  }
  const auc = typeof ev.discAuc === "number" ? ev.discAuc : null;
  const gain = typeof ev.rtdGain === "number" ? ev.rtdGain : null;
  if (auc === null && gain === null) return null;
  const num = (x: unknown) => (typeof x === "number" ? x : null);
  const sequences = num(ev.sequences) ?? undefined;
  const heldOut = ev.heldOut === true;
  const on = ev.unseen
    ? `${sequences ?? ""} sequences of text its corpus cap kept out of training (evaluate --unseen)`.trim()
    : heldOut
    ? `${sequences ?? ""} held-out sequences`.trim()
    : `${
      sequences ? `${sequences} of its` : "its"
    } training sequences (an optimistic reading; no held-out set)`;
  const temperature = num((ev.settings as { temperature?: unknown } | undefined)?.temperature) ??
    num(ev.temperature);
  const near = nearThreshold({
    discAuc: auc,
    rtdGain: gain,
    discAucSe: num(ev.discAucSe),
    rtdGainSe: num(ev.rtdGainSe),
    sequences,
    heldOut,
    ...(ev.unseen
      ? { advice: "more --sequences of the unseen text (deno task evaluate --unseen) settle it" }
      : {}),
  });
  return {
    text:
      `evaluated at step ${ev.step} on ${on} at T = ${temperature ?? "?"}${
        (ev.settings as { disallowCorrect?: unknown } | undefined)?.disallowCorrect
          ? ", replacements never the original (--disallow-correct)"
          : ""
      } (eval.json): ` +
      skillWords(auc, gain, num(ev.discAucSe), num(ev.rtdGainSe)) + (near ? ` — ${near}` : ""),
    learned: notLearned(auc, gain).learned,
    near: near !== null,
    step: num(ev.step),
    temperature,
    heldOut,
  };
}

/**
 * What a run's probe.json (`deno task probe --run DIR --out DIR/probe.json`) says: the tug-of-war at its
 * checkpoint, or null when it has none. One older than the run's last logged step says so.
 */
async function probeLine(run: ReportedRun, lastStep: number): Promise<string | null> {
  let p: Partial<RunProbe>;
  try {
    p = JSON.parse(await Deno.readTextFile(join(run.dir, "probe.json")));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    return `its probe.json could not be read (${(e as Error).message.split("\n")[0]})`;
  }
  const t = p.token;
  if (!t || typeof t.cos?.mean !== "number") return "its probe.json holds no tug-of-war reading";
  const pm = (m: MeanSe, digits: number, signed = false) =>
    `${signed && m.mean >= 0 ? "+" : ""}${m.mean.toFixed(digits)}${
      m.se === null ? "" : ` ± ${m.se.toFixed(digits)}`
    }`;
  const stale = p.step !== undefined && p.step < lastStep
    ? ` (probe.json is of step ${p.step}, the run has trained to ${lastStep}: re-run deno task probe)`
    : "";
  return `the tug-of-war at step ${p.step} over ${t.cos.n} ${
    p.heldOut === false ? "training" : "held-out"
  } batches (probe.json): cos(g_MLM, g_RTD) ` +
    `${pm(t.cos, 3, true)}, opposed rows ${pm(t.opposedShare, 3)}, ‖g_RTD‖ / ‖g_MLM‖ ${
      pm(t.ratio, 2)
    }${stale}`;
}

/**
 * What a run's eval-unseen.json (`deno task evaluate --run DIR --unseen --out DIR/eval-unseen.json`) says:
 * D's skill on text its corpus cap kept out of training, or null when it has none.
 */
async function unseenLine(run: ReportedRun, lastStep: number): Promise<string | null> {
  let u: Record<string, unknown>;
  try {
    u = JSON.parse(await Deno.readTextFile(join(run.dir, "eval-unseen.json")));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    return `its eval-unseen.json could not be read (${(e as Error).message.split("\n")[0]})`;
  }
  const num = (x: unknown) => (typeof x === "number" ? x : null);
  const auc = num(u.discAuc), gain = num(u.rtdGain);
  if (auc === null && gain === null) return "its eval-unseen.json holds no D reading";
  const part = (u.unseen as { part?: string | null } | undefined)?.part;
  const stale = num(u.step) !== null && num(u.step)! < lastStep
    ? ` (of step ${u.step}, the run has trained to ${lastStep}: re-run deno task evaluate --unseen)`
    : "";
  return `on ${u.sequences} sequences of text its corpus cap kept out of training${
    part ? ` (${part})` : ""
  } (eval-unseen.json) D ${skillWords(auc, gain, num(u.discAucSe), num(u.rtdGainSe))}${stale}`;
}

/** "has learned: AUC …, RTD gain … nats" or "has not learned yet: …", numbers never rounded across a threshold. */
function skillWords(
  auc: number | null,
  gain: number | null,
  aucSe?: number | null,
  gainSe?: number | null,
): string {
  const learned = notLearned(auc, gain).learned;
  const pm = (se: number | null | undefined) => (typeof se === "number" ? ` ± ${formatSe(se)}` : "");
  const a = auc === null ? "—" : formatAgainst(auc, NOT_LEARNED.auc) + pm(aucSe);
  const g = gain === null ? "—" : formatAgainst(gain, NOT_LEARNED.gain) + pm(gainSe);
  return `${learned ? "has learned" : "has not learned yet"}: AUC ${a}, RTD gain ${g} nats`;
}

/** One line per run: whether its discriminator has learned, in training and (eval.json) held out. */
export interface RunVerdict {
  run: string;
  /** False for an MLM baseline or a run with no logged steps yet. */
  hasDiscriminator: boolean;
  learned: boolean | null;
  text: string;
}

/**
 * Each run's verdict, in the runs' order, from `summary` ({@link runSummary} of the runs that logged
 * steps): the training means over the last tenth of the logged steps, then its eval.json's reading.
 */
export async function runVerdicts(runs: ReportedRun[], summary: Table): Promise<RunVerdict[]> {
  const rows = summary.objects() as Record<string, unknown>[];
  const out: RunVerdict[] = [];
  for (const run of runs) {
    const row = rows.find((x) => x.run === run.name);
    if (run.logged === 0 || !row) {
      out.push({
        run: run.name,
        hasDiscriminator: false,
        learned: null,
        text: `${run.name}: no logged steps yet`,
      });
      continue;
    }
    if (row.rtd_last === null) {
      out.push({
        run: run.name,
        hasDiscriminator: false,
        learned: null,
        text: `${run.name}: no discriminator (MLM baseline)`,
      });
      continue;
    }
    const auc = row.disc_auc as number | null, gain = row.rtd_gain as number | null;
    // The training reading's own noise: the spread of its last-tenth batches.
    const logged = await readMetricsFile(join(run.dir, "metrics.jsonl"));
    const aucSe = tailSe(logged, "disc_auc"), gainSe = tailSe(logged, "rtd_gain");
    const k = lastTenth(run.logged);
    const trainNear = nearThreshold({
      discAuc: auc,
      rtdGain: gain,
      discAucSe: aucSe,
      rtdGainSe: gainSe,
      advice:
        `the last tenth is ${k} batches: a longer run, or deno task evaluate on more sequences, settles it`,
    });
    const held = await heldOutLine(run);
    const probe = await probeLine(run, Number(row.steps));
    const unseen = await unseenLine(run, Number(row.steps));
    const learned = notLearned(auc, gain).learned;
    out.push({
      run: run.name,
      hasDiscriminator: true,
      learned,
      text: `${run.name}: in training D ${skillWords(auc, gain, aucSe, gainSe)} (last ${k} of ` +
        `${run.logged} logged steps)${trainNear ? ` — ${trainNear}` : ""}${held ? `; ${held.text}` : ""}` +
        (held ? readingsNote(run, held, learned, Number(row.steps), trainNear !== null) : "") +
        (unseen ? `; ${unseen}` : "") + (probe ? `; ${probe}` : ""),
    });
  }
  return out;
}

/**
 * One row per fine-tune found in the runs' `finetune/<task>-s<seed>/metrics.json`, in the runs' order, each
 * beside the skill of the discriminator it started from (`summary`'s last-tenth AUC and gain).
 */
async function fineTunes(runs: ReportedRun[], summary: Table): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  const skill = new Map((summary.objects() as Record<string, unknown>[]).map((r) => [r.run, r]));
  // A score from a discriminator's encoder reads only beside that D's skill; scratch and MLM have no D.
  const dSkill = (run: string, source: string): string => {
    if (source === "scratch") return "— (no pre-training)";
    if (source === "mlm") return "— (MLM encoder)";
    const r = skill.get(run);
    const auc = r?.disc_auc as number | null | undefined, gain = r?.rtd_gain as number | null | undefined;
    if (typeof auc !== "number" || typeof gain !== "number") return "—";
    return `${formatAgainst(auc, NOT_LEARNED.auc)} / ${formatAgainst(gain, NOT_LEARNED.gain)}${
      notLearned(auc, gain).learned ? "" : " (not learned)"
    }`;
  };
  for (const run of runs) {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(join(run.dir, "finetune")));
    } catch {
      continue;
    }
    entries.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
    for (const e of entries.filter((e) => e.isDirectory)) {
      const path = join(run.dir, "finetune", e.name, "metrics.json");
      const state = await earlierResult(path);
      if (state === "none") continue; // unfinished (metrics.json is written last) or not a fine-tune
      if (typeof state === "object") {
        rows.push({
          run: run.name,
          "fine-tune": e.name,
          task: `— (${path} cannot be read: ${state.unreadable})`,
        });
        continue;
      }
      const m: FinetuneMetricsFile = JSON.parse(await Deno.readTextFile(path));
      const metric = m.metric as keyof FinetuneMetricsFile["test"];
      const f = (x: number | undefined) => (typeof x === "number" ? x.toFixed(3) : "—");
      // ⚠ per split: the classifier predicted one class for nearly every example there.
      const warn = (
        share: number | undefined,
      ) => (typeof share === "number" && share >= ONE_CLASS_SHARE ? " ⚠" : "");
      rows.push({
        run: run.name,
        "fine-tune": state === "interrupted" ? `${e.name} (interrupted)` : e.name,
        task: m.task,
        seed: m.seed,
        encoder: m.source,
        "D AUC / gain": dSkill(run.name, m.source),
        train: m.sizes?.train ?? "—",
        epochs: m.hyper?.epochs ?? "—",
        lr: m.hyper?.learningRate ?? "—",
        metric: m.metric,
        dev: `${f(m.dev?.[metric])}${warn(m.one_class?.dev)}`,
        "constant (dev)": f(m.constant?.dev?.[metric]),
        test: `${f(m.test?.[metric])}${warn(m.one_class?.test)}`,
        "constant (test)": f(m.constant?.test?.[metric]),
        "n (test)": m.test?.n ?? "—",
      });
    }
  }
  return rows;
}

/** Pairs of runs whose logged MLM losses are the same numbers at the same steps (at least 3 of them). */
function identicalGenerators(runs: ReportedRun[], t: Table): [string, string][] {
  const run = t.array("run") as ArrayLike<string>, step = t.array("step") as ArrayLike<number>;
  const mlm = t.columnNames().includes("loss_mlm") ? t.array("loss_mlm") as ArrayLike<number | null> : null;
  if (!mlm) return [];
  const series = new Map<string, string>();
  for (const r of runs) {
    const parts: string[] = [];
    for (let i = 0; i < run.length; i++) if (run[i] === r.name) parts.push(`${step[i]}:${mlm[i]}`);
    if (parts.length >= 3) series.set(r.name, parts.join(","));
  }
  const pairs: [string, string][] = [];
  const names = [...series.keys()];
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      if (series.get(names[i]) === series.get(names[j])) pairs.push([names[i], names[j]]);
    }
  }
  return pairs;
}

/**
 * What to make of training's and eval.json's readings side by side: an evaluation older than the run's
 * last step, and when the two verdicts disagree, what differs between them (claiming "near the threshold"
 * only where the evaluation's own standard errors say so).
 */
function readingsNote(
  run: ReportedRun,
  held: HeldOutReading,
  learned: boolean,
  lastStep: number,
  trainNear: boolean,
): string {
  const notes: string[] = [];
  if (held.step !== null && held.step < lastStep) {
    notes.push(
      `eval.json is of step ${held.step}, the run has trained to ${lastStep}: re-run deno task evaluate`,
    );
  }
  if (held.learned !== null && held.learned !== learned) {
    const trainT = typeof run.config.samplingTemperature === "number" ? run.config.samplingTemperature : 1;
    const batch = typeof run.config.batchSize === "number" ? ` of ${run.config.batchSize} sequences` : "";
    const differs = [
      `training reads its last ${lastTenth(run.logged)} logged batches${batch}, the evaluation ` +
      `${held.heldOut ? "held-out" : "training"} sequences`,
      ...(held.temperature !== null && held.temperature !== trainT
        ? [`training samples at T = ${trainT}, the evaluation at T = ${held.temperature}`]
        : []),
    ];
    notes.push(
      `the two readings disagree: ${differs.join("; ")}` +
        (held.near || trainNear
          ? `; ${
            held.near && trainNear
              ? "both readings are"
              : held.near
              ? "the evaluation is"
              : "the training reading is"
          } within two standard errors of a threshold, so D sits near it`
          : ""),
    );
  }
  return notes.length ? `; ${notes.join("; ")}` : "";
}

/** What {@link runsReport} returns: the page, and what the terminal shows of it. */
export interface RunsReport {
  report: Report;
  runs: ReportedRun[];
  /** {@link runSummary} of the runs that logged steps, in the runs' order. */
  summary: Table;
  verdicts: RunVerdict[];
  /** One row per finished fine-tune in the runs' `finetune/` folders (the page's fine-tuning table). */
  fineTunes: Record<string, unknown>[];
}

/** y ticks as 8e-4, not plotly's SI "800µ" (a learning rate, a norm ratio). */
function scientificTicks(fig: Figure): Figure {
  for (const [key, axis] of Object.entries(fig.layout)) {
    if (key.startsWith("yaxis")) (axis as Record<string, unknown>).exponentformat = "e";
  }
  return fig;
}

/** The loaded runs' table: names as in the report, rows of runs that logged nothing left out. */
async function runsTable(runs: ReportedRun[]): Promise<Table> {
  const rows: Record<string, unknown>[] = [];
  for (const run of runs.filter((r) => r.logged > 0)) {
    rows.push(...((await loadRun(run.dir, { name: run.name })).objects() as Record<string, unknown>[]));
  }
  return tableFromRows(rows, [...RUN_COLUMNS, "step"]);
}

/**
 * The report over the runs at or below `paths` (see {@link reportedRuns}), everything in the runs' order:
 * the settings that differ (and the shared ones), whether each discriminator has learned, {@link runSummary}'s
 * table, losses, D's AUC and RTD gain against the learned thresholds, accuracies, optimisation, and the
 * tug-of-war and similarity probes of runs that logged them. `.report.write(path)` writes the page.
 */
export async function runsReport(paths: string[], opts: RunsReportOptions = {}): Promise<RunsReport> {
  const runs = await reportedRuns(paths);
  const withSteps = runs.filter((r) => r.logged > 0);
  if (withSteps.length === 0) {
    throw new Error(`no logged steps yet in ${runs.map((r) => r.dir).join(", ")} (metrics.jsonl is empty)`);
  }
  const t = await runsTable(runs);
  const cols = t.columnNames();
  const sm = opts.smooth ?? 0.6;
  const smooth = sm > 0 ? sm : undefined;
  const smoothNote = smooth ? `, EMA-smoothed (weight ${sm}) over each run's logged steps` : "";
  const names = runs.map((r) => r.name);
  const r = new Report(opts.title ?? `rtdlab runs: ${names.join(", ")}`);
  r.text(`${runs.length} run${runs.length === 1 ? "" : "s"}: ${runs.map((x) => `\`${x.dir}\``).join(", ")}.`);

  r.heading("Settings");
  const { shared, differing } = settingsDiff(runs);
  if (differing.length && runs.length > 1) {
    const flat = runs.map((x) => flatten(x.config));
    r.table(
      tableFromRows(
        runs.map((x, i) => ({
          run: x.name,
          ...Object.fromEntries(differing.map((k) => [k, flat[i].get(k) ?? "—"])),
        })),
      ),
      { caption: "The settings in which the runs differ (config.json)." },
    );
  } else if (runs.length > 1) {
    r.text("The runs share every setting in their config.json.");
  }
  // Windows and smoothing count logged steps: runs logged at other intervals average over other spans.
  const every = new Set(runs.map((x) => String(x.config.logEvery ?? "?")));
  if (every.size > 1) {
    r.html(
      `<p><strong>⚠ The runs log at different intervals</strong> (logEvery ${[...every].join(", ")}). The ` +
        `summary's windows (first 3, last tenth) and the curves' smoothing count logged steps, so they cover ` +
        `different spans of training here; compare the raw curves (<code>--smooth 0</code>) step by step.</p>`,
    );
  }
  r.html(
    // One run's settings are the whole story, so they show unfolded; several runs' shared ones fold away.
    `<details${runs.length > 1 ? "" : " open"}><summary>${
      runs.length > 1 ? "Shared settings" : "Settings"
    } (${shared.length})</summary><p class="caption">${
      shared.map(([k, v]) => `${escapeHtml(k)} <code>${escapeHtml(v)}</code>`).join(" · ")
    }</p></details>`,
  );

  // The summary in the runs' order (runSummary sorts by mode).
  const byMode = runSummary(t).objects() as Record<string, unknown>[];
  const summary = tableFromRows(
    names.flatMap((n) => byMode.filter((row) => row.run === n)),
  );
  const verdicts = await runVerdicts(runs, summary);
  r.heading("Has the discriminator learned?");
  r.html(
    `<ul>${verdicts.map((v) => `<li>${escapeHtml(v.text)}.</li>`).join("")}</ul><p class="caption">In ` +
      `training: means of D's ROC-AUC and RTD gain (base-rate entropy − RTD loss) over the last tenth of each ` +
      `run's logged steps, at the run's own sampling temperature. D counts as learned from AUC ` +
      `${NOT_LEARNED.auc} and gain ${NOT_LEARNED.gain} nats (a constant predictor scores 0.5 and 0); below ` +
      `either, readings that depend on D describe a model without the skill. "±": one standard error — in ` +
      `training, of the mean over those batches (their spread over √k, from 3 batches); in an evaluation, ` +
      `over its sequences (a bootstrap of whole sequences). ` +
      `<code>deno task evaluate --run DIR --out DIR/eval.json</code> scores a run at T = 1 on its held-out ` +
      `sequences (without any, on a sample of its training sequences); this page then shows it.</p>`,
  );

  r.heading("Summary");
  r.table(formatSummary(summary), { caption: SUMMARY_KEY.join(" ") });

  const twins = identicalGenerators(runs, t);
  if (twins.length) {
    r.html(
      `<p class="caption">${
        twins.map(([a, b]) => `${escapeHtml(a)} and ${escapeHtml(b)}`).join("; ")
      } log bit-identical generator losses: their generators start from the same weights (paired ` +
        `initialisation, one seed) and see the same data, and a decoupled NES or GDES generator never depends ` +
        `on D. That is a sanity check, not a finding.</p>`,
    );
  }

  const tunes = await fineTunes(runs, summary);
  if (tunes.length) {
    r.heading("Fine-tuning");
    r.table(tableFromRows(tunes), {
      caption:
        "Each finished fine-tune in the runs' finetune/ folders (deno task finetune), beside the AUC and RTD " +
        "gain (training, last tenth) of the discriminator it started from: its training " +
        "examples, epochs and learning rate, its selection metric on dev and test, and what a constant " +
        "classifier (one class for every example) scores on each — the floor it must clear. ⚠: the " +
        `classifier predicted one class for ≥ ${
          Math.round(100 * ONE_CLASS_SHARE)
        } % of that split's examples.`,
    });
  }

  // Runs of one mode (a sweep's) each get their own colour; otherwise each mode keeps its own.
  const modes = new Set(withSteps.map((x) => String(x.config.sharing ?? "?")));
  const style: CurveOptions = {
    runOrder: names,
    colorBy: modes.size === withSteps.length ? "mode" : "run",
    height: 380,
  };
  r.heading("Curves");
  r.figure(
    lossCurves(t, { ...style, smooth }),
    `Generator MLM loss and discriminator RTD loss${smoothNote}.`,
  );
  if (cols.includes("disc_auc")) {
    r.figure(
      skillCurves(t, { ...style, smooth }),
      `D's ROC-AUC and RTD gain (base-rate entropy − RTD loss, nats), each logged step on its own batch` +
        `${smoothNote}; the dotted black lines are the thresholds from which D counts as learned (the ` +
        `verdicts above read the raw values).`,
    );
  }
  const acc = ["disc_acc_replaced", "gen_acc"].filter((c) => cols.includes(c));
  if (acc.length) {
    r.figure(
      metricCurves(t, acc, { ...style, smooth, title: "Recall on replaced tokens and generator accuracy" }),
      `D's recall on replaced tokens at threshold 0.5, and the share of G's samples equal to the original` +
        `${smoothNote}.`,
    );
  }
  const optim = ["lr", "grad_norm_g", "grad_norm_d"].filter((c) =>
    cols.includes(c) && (t.array(c) as ArrayLike<unknown>).length > 0 &&
    Array.from(t.array(c) as ArrayLike<unknown>).some((v) => typeof v === "number")
  );
  if (optim.length) {
    r.figure(
      scientificTicks(metricCurves(t, optim, { ...style, title: "Optimisation" })),
      "Learning rate and each optimiser's global gradient norm before clipping (raw): a spike here often " +
        "comes before a loss does anything odd. ES (and --joint runs) train G and D with one optimiser, whose " +
        "one norm is logged as the generator's.",
    );
  }
  const tow = ["tow_cos", "tow_ratio"].filter((c) => cols.includes(c));
  if (tow.length) {
    r.figure(
      scientificTicks(metricCurves(t, tow, { ...style, title: "Tug-of-war probes" })),
      "cos(g_MLM, g_RTD): the cosine between the generator's MLM gradient and the discriminator's λ-weighted " +
        "RTD gradient on the shared table (ES: E; NES: E_G vs E_D; GDES: E_G vs E_Δ), and the ratio of their " +
        "norms, at each probed step (raw).",
    );
  }
  const sims = ["sim_gen", "sim_disc", "sim_delta"].filter((c) => cols.includes(c));
  if (sims.length) {
    r.figure(
      metricCurves(t, sims, { ...style, title: "Embedding similarity" }),
      "Mean cosine among the frequent tokens' rows of E_G, E_D and E_Δ, at each probed step (raw).",
    );
  }
  return { report: r, runs, summary, verdicts, fineTunes: tunes };
}

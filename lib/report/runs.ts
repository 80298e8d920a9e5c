/**
 * A report over any run folders side by side: what differs in their settings, whether each
 * discriminator has learned (in training, and held out where the run has an `eval.json`), the summary
 * table, and the curves. What `deno task report` writes after a few `deno task pretrain` runs.
 *
 * ```ts
 * const report = await runsReport(["runs/gdes-lam50", "runs/gdes-lam10"]);
 * await report.write("runs/report.html");
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { escapeHtml } from "./plotly.ts";
import { Report } from "./html.ts";
import {
  findRuns,
  loadRuns,
  readRunConfig,
  runIndices,
  runNames,
  type Table,
  tableFromRows,
} from "./metrics.ts";
import { formatSummary, runSummary, SUMMARY_KEY } from "./demo.ts";
import { lossCurves, metricCurves, skillCurves } from "./figures.ts";
import { lastTenth, NOT_LEARNED, notLearned } from "../train/rtd_metrics.ts";

/** Options of {@link runsReport}. */
export interface RunsReportOptions {
  /** Page title (default: "rtdlab runs: " and the run names). */
  title?: string;
  /** EMA weight of the curves (default 0.6; 0 draws the raw logged values). */
  smooth?: number;
}

/** One run's folder, name in the report, and saved settings. */
export interface ReportedRun {
  dir: string;
  name: string;
  config: Record<string, unknown>;
}

/** The run folders at or below each path (a run folder, or a folder of runs such as `runs/demo`), in order. */
export async function reportedRuns(paths: string[]): Promise<ReportedRun[]> {
  if (paths.length === 0) throw new Error("no run folders given");
  const dirs: string[] = [];
  for (const p of paths) {
    const found = await findRuns(p);
    if (found.length === 0) {
      throw new Error(`${p}: no run folder (one holding metrics.jsonl) at or below it`);
    }
    // Within a folder, runs in natural order (lambda-10 before lambda-50 before lambda-200).
    found.sort((x, y) => x.localeCompare(y, undefined, { numeric: true }));
    for (const d of found) if (!dirs.includes(d)) dirs.push(d);
  }
  const names = runNames(dirs);
  return await Promise.all(
    dirs.map(async (dir, i) => ({ dir, name: names[i], config: await readRunConfig(dir) })),
  );
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

/** The table the curves draw: each run its own colour when sharing modes repeat (the mode's otherwise). */
function curveTable(t: Table, runs: ReportedRun[]): Table {
  const modes = new Set(runs.map((r) => String(r.config.sharing ?? "?")));
  if (modes.size === runs.length) return t;
  const table = t.reify();
  const run = table.array("run") as ArrayLike<string>;
  return table.assign({ sharing: Array.from(run) });
}

async function heldOutLine(run: ReportedRun): Promise<string | null> {
  let ev: Record<string, unknown>;
  try {
    ev = JSON.parse(await Deno.readTextFile(join(run.dir, "eval.json")));
  } catch {
    return null;
  }
  const auc = typeof ev.discAuc === "number" ? ev.discAuc : null;
  const gain = typeof ev.rtdGain === "number" ? ev.rtdGain : null;
  if (auc === null && gain === null) return null;
  const on = ev.heldOut ? "held-out sequences" : "a sample of its training sequences";
  const temperature = (ev.settings as { temperature?: number } | undefined)?.temperature ?? ev.temperature;
  return `evaluated at step ${ev.step} on ${on} at T = ${temperature} (eval.json): ${
    notLearned(auc, gain).text
  }`;
}

/**
 * The report over the runs at or below `paths` (see {@link reportedRuns}): settings that differ (and the
 * shared ones), whether each discriminator has learned, {@link runSummary}'s table, losses, D's AUC and RTD
 * gain against the learned thresholds, accuracies, and the tug-of-war and similarity probes of runs that
 * logged them. Returns the {@link Report}; `.write(path)` it.
 */
export async function runsReport(paths: string[], opts: RunsReportOptions = {}): Promise<Report> {
  const runs = await reportedRuns(paths);
  const t = await loadRuns(runs.map((r) => r.dir));
  const cols = t.columnNames();
  const sm = opts.smooth ?? 0.6;
  const smooth = sm > 0 ? sm : undefined;
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
  r.html(
    // One run's settings are the whole story, so they show unfolded; several runs' shared ones fold away.
    `<details${runs.length > 1 ? "" : " open"}><summary>${
      runs.length > 1 ? "Shared settings" : "Settings"
    } (${shared.length})</summary><p class="caption">${
      shared.map(([k, v]) => `${escapeHtml(k)} <code>${escapeHtml(v)}</code>`).join(" · ")
    }</p></details>`,
  );

  const summary = runSummary(t);
  const rows = summary.objects() as Record<string, unknown>[];
  const logged = [...runIndices(t.reify()).values()].map((idx) => idx.length);
  r.heading("Has the discriminator learned?");
  const items: string[] = [];
  for (const row of rows) {
    const run = runs.find((x) => x.name === row.run)!;
    if (row.rtd_last === null) {
      items.push(`${escapeHtml(String(row.run))}: no discriminator (MLM baseline).`);
      continue;
    }
    const auc = row.disc_auc as number | null, gain = row.rtd_gain as number | null;
    const held = await heldOutLine(run);
    items.push(
      `${escapeHtml(String(row.run))}: in training, ${escapeHtml(notLearned(auc, gain).text)}.` +
        (held ? ` ${escapeHtml(held[0].toUpperCase() + held.slice(1))}.` : ""),
    );
  }
  const n = Math.max(...logged);
  r.html(
    `<ul>${
      items.map((x) => `<li>${x}</li>`).join("")
    }</ul><p class="caption">In training: means over the last ` +
      `tenth of the logged steps (${
        lastTenth(n)
      } of ${n} here), at the run's own sampling temperature. D counts ` +
      `as learned from AUC ${NOT_LEARNED.auc} and RTD gain ${NOT_LEARNED.gain} nats (a constant predictor scores ` +
      `0.5 and 0); below either, readings that depend on D describe a model without the skill. ` +
      `<code>deno task evaluate --run DIR --out DIR/eval.json</code> scores a run on held-out sequences ` +
      `at T = 1; this page then shows it.</p>`,
  );

  r.heading("Summary");
  r.table(formatSummary(summary), { caption: SUMMARY_KEY.join(" ") });

  const ft = curveTable(t, runs);
  r.heading("Curves");
  r.figure(
    lossCurves(ft, { smooth, height: 380 }),
    `Generator MLM loss and discriminator RTD loss${smooth ? `, EMA-smoothed (weight ${sm})` : ""}.`,
  );
  if (cols.includes("disc_auc")) {
    r.figure(
      skillCurves(ft, { smooth, height: 380 }),
      `D's ROC-AUC and RTD gain (base-rate entropy − RTD loss, nats) per logged batch; the dotted black ` +
        `lines are the thresholds from which D counts as learned.`,
    );
  }
  const acc = ["disc_acc_replaced", "gen_acc"].filter((c) => cols.includes(c));
  if (acc.length) {
    r.figure(
      metricCurves(ft, acc, {
        smooth,
        title: "Recall on replaced tokens and generator accuracy",
        height: 380,
      }),
      "D's recall on replaced tokens at threshold 0.5, and the share of G's samples equal to the original.",
    );
  }
  const tow = ["tow_cos", "tow_ratio"].filter((c) => cols.includes(c));
  if (tow.length) {
    r.figure(
      metricCurves(ft, tow, { title: "Tug-of-war probes", height: 380 }),
      "cos(∇L_MLM, ∇λL_RTD) on the shared table and the ratio of their norms, at each probed step (runs " +
        "that probe).",
    );
  }
  const sims = ["sim_gen", "sim_disc", "sim_delta"].filter((c) => cols.includes(c));
  if (sims.length) {
    r.figure(
      metricCurves(ft, sims, { title: "Embedding similarity", height: 380 }),
      "Mean cosine among the frequent tokens' rows of E_G, E_D and E_Δ, at each probed step.",
    );
  }
  return r;
}

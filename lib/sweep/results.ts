/**
 * Writing a sweep's results: `results.json` (every run's numbers and the command that makes it),
 * `results.md` (the table) and `report.html` (the table, gain and AUC against each swept key, and the
 * training curves of every run), all atomically.
 *
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { Report } from "../report/html.ts";
import { readMetrics } from "../train/run.ts";
import { NOT_LEARNED } from "../train/rtd_metrics.ts";
import { formatDuration } from "../util/progress.ts";
import type { SweepPoint, SweepSpec } from "./grid.ts";
import { collectPoint, type EvalSettings, type PointResult } from "./runs.ts";
import { groupResults, htmlTable, markdownTable, resultsCells, runCurves, versusKey } from "./report.ts";

/** Everything that decides a sweep's numbers (stored as plan.json; a re-run must match it). */
export interface SweepPlan extends SweepSpec {
  eval: EvalSettings;
  backend: string;
}

/** What {@link writeResults} needs besides the folders. */
export interface ResultsInput {
  name: string;
  plan: SweepPlan;
  points: SweepPoint[];
  /** The folder of each point's run. */
  dirOf: (p: SweepPoint) => string;
  /** How each point ended in this invocation (or what its folder says, for --report-only). */
  statusOf: (p: SweepPoint) => PointResult["status"];
  /** This invocation's wall time and parallelism, for the footer. */
  wallSeconds: number;
  parallel: number;
  /** Runs this invocation had to train or evaluate (0: the results were rebuilt from the folders). */
  ran?: number;
}

/** The keys the sweep varies, in first-seen order. */
export function sweptKeys(points: SweepPoint[]): string[] {
  return [...new Set(points.flatMap((p) => Object.keys(p.values)))];
}

/** Writes results.json, results.md and report.html into `root`; returns the markdown. */
export async function writeResults(root: string, input: ResultsInput): Promise<string> {
  const { plan, points } = input;
  const results = await Promise.all(points.map((p) => collectPoint(input.dirOf(p), p, input.statusOf(p))));
  const swept = sweptKeys(points);
  const rows = groupResults(results);
  const cells = resultsCells(rows, swept);
  const done = results.filter((r) => r.eval !== null).length;
  const failed = results.filter((r) => r.status === "failed").map((r) => r.name);
  const fixed = plan.sets.map(([k, v]) => `${k}=${v}`).join(", ");
  const intro =
    `Base config \`${plan.config}\`${fixed ? ` with ${fixed}` : ""}; swept: ${
      swept.length ? swept.map((k) => `\`${k}\``).join(", ") : "nothing (one point)"
    }; pre-training seeds ${plan.seeds.join(", ")}; ${points.length} runs, ${done} finished and evaluated${
      failed.length ? `, ${failed.length} failed` : ""
    }.

**T = 1 numbers**: every run's final checkpoint is judged on its ${plan.holdout} held-out sequences (kept ` +
    `out of its training, \`heldOutSequences\`), with replacements the generator samples at temperature ` +
    `${plan.eval.temperature} (evaluation seed ${plan.eval.seed}), whatever temperature the run trained at. ` +
    `D AUC: ROC-AUC of D's logits, replaced vs original tokens (0.5 = chance); "± x": the std over seeds, ` +
    `"(SE x)": a one-seed point's standard error over its held-out sequences (bootstrap). RTD gain = base-rate entropy − ` +
    `RTD loss (nats), the base-rate entropy being the binary entropy of the replaced fraction, the loss of a ` +
    `constant predictor; it grows with the share of tokens replaced, so compare gains at one mask rate. MLM ` +
    `loss and G acc: the generator at the masked positions of the same batches. "D AUC (train)" and "RTD gain ` +
    `(train)": means of the last tenth of logged training steps, at the run's own temperature. "learned": runs ` +
    `with AUC ≥ ` +
    `${NOT_LEARNED.auc} and gain ≥ ${NOT_LEARNED.gain} at T = 1, of those finished. Tokens: steps × batch × ` +
    `sequence length. tokens/s: median of the logged windows; wall: training time from metrics.jsonl.`;
  // Said plainly, beside the table: whether any discriminator has learned (the project's rule).
  const judged = results.filter((r) => r.learned !== null);
  const learnedN = judged.filter((r) => r.learned).length;
  const threshold = `AUC ≥ ${NOT_LEARNED.auc} and RTD gain ≥ ${NOT_LEARNED.gain} nats at T = 1`;
  const verdict = judged.length === 0
    ? ""
    : learnedN === 0
    ? `**D has not learned in any finished run** (${threshold}): every number that depends on D describes ` +
      `a discriminator without the skill.\n\n`
    : learnedN < judged.length
    ? `D has learned in ${learnedN} of the ${judged.length} finished runs (${threshold}); in the others, the ` +
      `numbers that depend on D describe a discriminator without the skill.\n\n`
    : `D has learned in every finished run (${threshold}).\n\n`;
  // The sweep's own time over every invocation of this plan (a re-run or --report-only adds its own).
  const previous = await Deno.readTextFile(join(root, "results.json")).then(
    (t) => JSON.parse(t) as { plan?: unknown; wall_s?: number; wall_s_total?: number },
    () => null,
  );
  const samePlan = previous !== null && JSON.stringify(previous.plan) === JSON.stringify(plan);
  const wallTotal = (samePlan ? previous.wall_s_total ?? previous.wall_s ?? 0 : 0) + input.wallSeconds;
  const md = `# rtdlab sweep \`${input.name}\`

${intro}

${markdownTable(cells)}

${verdict}${failed.length ? `Failed: ${failed.join(", ")} (logs in \`logs/\`).\n\n` : ""}This invocation: ${
    input.ran === 0
      ? `nothing to run (the results rebuilt from the folders), ${formatDuration(input.wallSeconds)}`
      : `${formatDuration(input.wallSeconds)}, ${input.parallel} run${
        input.parallel === 1 ? "" : "s"
      } at a time`
  }, backend ${plan.backend}; all invocations of this sweep: ${formatDuration(wallTotal)}.
`;
  await writeFileAtomic(join(root, "results.md"), md);
  await writeJsonAtomic(join(root, "results.json"), {
    format: "rtdlab-sweep-1",
    name: input.name,
    plan,
    swept,
    runs: results.map((r, i) => ({
      ...r,
      dir: input.dirOf(points[i]),
      command: `deno task pretrain ${
        [...points[i].args, "--out", input.dirOf(points[i])].map(shellWord).join(" ")
      }`,
    })),
    points: rows,
    failed,
    // Tenths of a second: a sweep of tiny runs on a fast machine takes less than one, and each invocation
    // adds to the total read back from here.
    wall_s: Math.round(input.wallSeconds * 10) / 10,
    wall_s_total: Math.round(wallTotal * 10) / 10,
    written_at: new Date().toISOString(),
  });

  const report = new Report(`rtdlab sweep: ${input.name}`)
    .text(intro)
    .html(htmlTable(cells));
  if (verdict) report.text(verdict.trim());
  const varied = swept.filter((k) =>
    new Set(results.filter((r) => r.eval).map((r) => r.values[k])).size >= 2
  );
  if (varied.length) {
    report.heading("RTD gain and AUC on T = 1 replacements, against each swept key");
    for (const k of varied) report.figure(versusKey(results, k, swept));
  }
  const series = await Promise.all(points.map(async (p) => ({
    name: plan.seeds.length > 1 ? `${p.label} s${p.seed}` : p.label,
    group: p.group,
    metrics: await readMetrics(join(input.dirOf(p), "metrics.jsonl"), { allowMissing: true }),
  })));
  const logged = series.filter((s) => s.metrics.length > 0);
  if (logged.length) {
    const temps = [...new Set(points.map((p) => p.config.samplingTemperature))];
    report.heading("Training curves (each run at its own sampling temperature)");
    if (logged.some((s) => s.metrics.some((r) => typeof r.disc_auc === "number"))) {
      report.figure(
        runCurves(logged, ["disc_auc", "rtd_gain"], "D's AUC and RTD gain during training"),
        `On the replacements each run trained on (sampling temperature ${temps.join(", ")}); EMA-smoothed.`,
      );
    }
    report.figure(runCurves(logged, ["loss_mlm", "gen_acc"], "Generator: MLM loss and accuracy"));
  }
  await report.write(join(root, "report.html"));
  return md;
}

/** Quotes a word for a POSIX shell when it needs it. */
function shellWord(w: string): string {
  return /^[A-Za-z0-9_./=:+,-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

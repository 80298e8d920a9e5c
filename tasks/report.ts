/**
 * `deno task report`: one HTML page over any run folders side by side (lib/report/runs.ts): the settings
 * that differ, whether each discriminator has learned, the summary table and the curves. For runs made
 * with `deno task pretrain` (or any folder of them: a demo, a comparison's `pretrain/`, a sweep).
 *
 *   deno task report runs/gdes-lam50 runs/gdes-lam10 [--out runs/report.html]
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { parseArgsOrExit } from "../lib/util/cli.ts";
import { reportedRuns, runsReport } from "../lib/report/runs.ts";
import { loadRuns, runSummary, summaryText } from "../lib/report/mod.ts";
import { notLearned } from "../lib/train/rtd_metrics.ts";

const HELP = `deno task report — one HTML page comparing run folders side by side

  deno task report RUN [RUN ...]

  RUN                  a run folder (metrics.jsonl, config.json), or a folder holding runs (runs/demo)
  --out FILE           where the page goes  [RUN/report.html for one run folder, else runs/report.html]
  --title TEXT         the page's title  [rtdlab runs: and the run names]
  --smooth W           EMA weight of the curves, 0 for the raw values  [0.6]
  --help               this text

The page: the settings in which the runs differ, whether each discriminator has learned (means over the
last tenth of the logged steps, and eval.json's held-out numbers where a run has one), the summary table,
the losses, D's AUC and RTD gain against the learned thresholds, and the probes of runs that logged them.
`;

function fail(msg: string): never {
  console.error(`error: ${msg}`);
  Deno.exit(2);
}

if (import.meta.main) {
  // A parse error prints one short line naming the option and exits with 2 (lib/util/cli.ts).
  const { values, positionals } = parseArgsOrExit({
    options: {
      out: { type: "string" },
      title: { type: "string" },
      smooth: { type: "string", default: "0.6" },
      help: { type: "boolean", default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    Deno.exit(0);
  }
  if (positionals.length === 0) fail("give at least one run folder (see --help)");
  const smooth = Number(values.smooth);
  if (!(smooth >= 0 && smooth < 1)) fail(`--smooth needs a number in [0, 1), got "${values.smooth}"`);
  let runs;
  try {
    runs = await reportedRuns(positionals);
  } catch (e) {
    fail((e as Error).message);
  }
  // One run folder: its page sits beside its files. Several (or a folder of runs, which may hold a demo's or
  // a sweep's own report.html): the runs folder, so no report another command wrote is overwritten.
  const single = positionals.length === 1 && runs.length === 1 &&
    resolve(runs[0].dir) === resolve(positionals[0]);
  const out = values.out ?? (single ? `${runs[0].dir}/report.html` : "runs/report.html");
  try {
    if ((await Deno.stat(out)).isDirectory) {
      fail(`--out ${out} is a folder; give a file name, e.g. ${out}/report.html`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await Deno.mkdir(dirname(out), { recursive: true });
  try {
    const report = await runsReport(positionals, { title: values.title, smooth });
    await report.write(out);
    const t = await loadRuns(runs.map((r) => r.dir));
    const summary = runSummary(t);
    console.log(summaryText(summary, { key: false }));
    for (const row of summary.objects() as Record<string, number | string | null>[]) {
      if (row.rtd_last === null) continue;
      console.log(
        `${row.run}: ${notLearned(row.disc_auc as number | null, row.rtd_gain as number | null).text}`,
      );
    }
    console.log(`\nwrote ${out} (${runs.length} run${runs.length === 1 ? "" : "s"})`);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}

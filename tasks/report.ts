/**
 * `deno task report`: one HTML page over any run folders side by side (lib/report/runs.ts): the settings
 * that differ, whether each discriminator has learned, the summary table and the curves. For runs made
 * with `deno task pretrain` (or any folder of them: a demo, a comparison's `pretrain/`, a sweep).
 *
 *   deno task report runs/gdes-lam50 runs/gdes-lam10   # → runs/report-gdes-lam50+gdes-lam10.html
 *
 * @module
 */

import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { parseArgsOrExit, wrapHelp } from "../lib/util/cli.ts";
import { type ReportedRun, runsReport } from "../lib/report/runs.ts";
import { summaryText } from "../lib/report/mod.ts";

const HELP = `deno task report — one HTML page comparing run folders side by side

  deno task report RUN [RUN ...]

  RUN                  a run folder (metrics.jsonl, config.json), or a folder holding runs (runs/demo)
  --out FILE.html      where the page goes  [one run: RUN/report.html; one folder of runs:
                       FOLDER/runs-report.html; several: their common folder's report-NAME+NAME.html]
  --title TEXT         the page's title  [rtdlab runs: and the run names]
  --smooth W           EMA weight of the curves, 0 for the raw values  [0.6]
  --help               this text

The page: the settings in which the runs differ, whether each discriminator has learned (means over the
last tenth of the logged steps, and eval.json's held-out numbers where a run has one), the summary table,
the losses, D's AUC and RTD gain against the learned thresholds, accuracies, learning rate and gradient
norms, the probes of runs that logged them, and each finished fine-tune in the runs' finetune/ folders
beside what a constant classifier scores. The terminal shows the summary, verdicts and fine-tunes.
`;

function fail(msg: string): never {
  console.error(`error: ${msg}`);
  Deno.exit(2);
}

/**
 * Where the page goes unless `--out` says: beside a single run's files; inside a folder of runs under a
 * name no other command writes (a demo's or sweep's own report.html stays); for several paths, in their
 * nearest common folder, named after them (runs/a + runs/b → runs/report-a+b.html).
 */
export function defaultOut(typed: string[], runs: ReportedRun[]): string {
  // A folder typed twice (runs/a and ./runs/a/) is one path, as it is one run.
  const paths = [...new Map(typed.map((p) => [resolve(p), p])).values()];
  if (paths.length === 1 && runs.length === 1 && resolve(runs[0].dir) === resolve(paths[0])) {
    return join(runs[0].dir, "report.html");
  }
  if (paths.length === 1) return join(paths[0], "runs-report.html");
  const slug = (s: string) => s.replace(/[^A-Za-z0-9.=-]+/g, "-").replace(/^-+|-+$/g, "") || "run";
  const names = paths.map((p) => slug(basename(resolve(p))));
  const joined = names.join("+");
  const name = `report-${joined.length <= 80 ? joined : `${names[0]}+${names.length - 1}-more`}.html`;
  // The nearest folder holding every path, as typed when they share a typed prefix (relative stays relative).
  let common = dirname(resolve(paths[0]));
  while (!paths.every((p) => resolve(p).startsWith(common + sep) || resolve(p) === common)) {
    common = dirname(common);
  }
  const rel = relative(Deno.cwd(), common);
  return join(rel === "" ? "." : rel.startsWith("..") ? common : rel, name);
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
    console.log(wrapHelp(HELP));
    Deno.exit(0);
  }
  if (positionals.length === 0) fail("give at least one run folder (see --help)");
  const smooth = values.smooth!.trim() === "" ? NaN : Number(values.smooth);
  if (!(smooth >= 0 && smooth < 1)) fail(`--smooth needs a number in [0, 1), got "${values.smooth}"`);
  if (values.out !== undefined && !/\.html?$/i.test(values.out)) {
    // The page never replaces anything but a page: not a run's metrics.jsonl or config.json.
    // A name with another extension is a file's (config.json), not a folder's: suggest a page beside it.
    const suggestion = /\.[a-z0-9]+$/i.test(values.out)
      ? join(dirname(values.out), "report.html")
      : join(values.out, "report.html");
    fail(`--out ${values.out}: give an .html file name, e.g. ${suggestion}`);
  }
  let built;
  try {
    built = await runsReport(positionals, { title: values.title, smooth });
  } catch (e) {
    fail((e as Error).message);
  }
  const out = values.out ?? defaultOut(positionals, built.runs);
  if (await Deno.stat(out).then((i) => i.isDirectory, () => false)) {
    fail(`--out ${out} is a folder; give a file name, e.g. ${join(out, "report.html")}`);
  }
  try {
    await Deno.mkdir(dirname(out), { recursive: true });
    await built.report.write(out);
  } catch (e) {
    fail(`cannot write ${out}: ${(e as Error).message.split("\n")[0]}`);
  }
  console.log(summaryText(built.summary, { key: false }));
  for (const v of built.verdicts) console.log(`- ${v.text}`);
  if (built.fineTunes.length) {
    console.log("\nfine-tunes (selection metric; constant = one class for every example):");
    for (const t of built.fineTunes) {
      console.log(
        `- ${t.run}/${t["fine-tune"]}: ${t.encoder} (D AUC / gain ${t["D AUC / gain"]}), ${t.train} ` +
          `examples × ${t.epochs} epochs, lr ${t.lr}; ` +
          `${t.metric} dev ${t.dev} (constant ${t["constant (dev)"]}), test ${t.test} (constant ${
            t["constant (test)"]
          })`,
      );
    }
  }
  console.log(`\nwrote ${out} (${built.runs.length} run${built.runs.length === 1 ? "" : "s"})`);
}

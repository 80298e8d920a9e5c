/**
 * Compacts `deno task sweep` folders into the small JSON files notebook 06_regimes reads when the sweeps
 * themselves are not on this machine (each sweep takes minutes to hours on two cores):
 *
 *   deno run -A data/regimes/build.ts map1 map2 ...      # runs/sweep/NAME → data/regimes/NAME.json
 *
 * Per point: the swept values, the T = 1 evaluation (D's AUC, RTD gain, base rate, MLM loss, G accuracy)
 * and, per run, the logged training curve (step, D's AUC, RTD gain, MLM loss, G accuracy).
 *
 * @module
 */
import { join } from "node:path";
import { readMetrics } from "../../lib/train/run.ts";
import { writeJsonAtomic } from "../../lib/io/atomic.ts";

const root = new URL("../../runs/sweep/", import.meta.url).pathname;
const here = new URL(".", import.meta.url).pathname;
for (const name of Deno.args) {
  const results = JSON.parse(await Deno.readTextFile(join(root, name, "results.json")));
  const curves: Record<string, number[][]> = {};
  for (const run of results.runs as { dir: string; group: string; seed: number }[]) {
    // The sweep records run folders relative to the project root.
    const dir = run.dir.startsWith("/") ? run.dir : new URL(`../../${run.dir}`, import.meta.url).pathname;
    try {
      const m = await readMetrics(join(dir, "metrics.jsonl"));
      curves[`${run.group}_s${run.seed}`] = m.map((r) =>
        [
          r.step,
          r.disc_auc ?? NaN,
          r.rtd_gain ?? NaN,
          r.loss_mlm,
          r.gen_acc ?? NaN,
        ].map((x) => Math.round(x * 1e4) / 1e4)
      );
    } catch { /* unfinished run */ }
  }
  const out = {
    format: "rtdlab-regimes-1",
    name,
    built_at: new Date().toISOString(),
    plan: results.plan,
    swept: results.swept,
    points: results.points,
    curve_columns: ["step", "disc_auc", "rtd_gain", "loss_mlm", "gen_acc"],
    curves,
  };
  await writeJsonAtomic(join(here, `${name}.json`), out);
  console.error(
    `data/regimes/${name}.json: ${results.points.length} points, ${Object.keys(curves).length} curves`,
  );
}

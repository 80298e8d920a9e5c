/**
 * Compacts finished `deno task compare` folders into `data/downstream/budgets.json`, which notebook 04 reads
 * for downstream scores and D's skill against the pre-training token budget (the comparisons themselves take
 * minutes to an hour and stay in git-ignored `runs/`):
 *
 *   deno run -A data/downstream/build.ts budget600 quick medium    # runs/compare/NAME → one file
 *
 * Per comparison: its plan (steps, batch, sequence length, seeds), tokens per pre-training run, the summary of
 * test scores (what `pairedDifference` reads) and the pre-training table (D's AUC and RTD gain per run).
 *
 * @module
 */
import { join } from "node:path";
import { writeJsonAtomic } from "../../lib/io/atomic.ts";

const root = new URL("../../runs/compare/", import.meta.url).pathname;
const comparisons = [];
for (const name of Deno.args) {
  const r = JSON.parse(await Deno.readTextFile(join(root, name, "results.json")));
  if (r.failed.length || r.skipped) {
    throw new Error(`${name}: ${r.failed.length} failed, ${r.skipped} skipped`);
  }
  const { plan } = r;
  comparisons.push({
    name,
    steps: plan.steps,
    tokens: plan.steps * plan.batch * plan.seqLength,
    config: plan.config,
    corpus: plan.corpus,
    pretrainSeeds: plan.pretrainSeeds,
    finetuneSeeds: plan.finetuneSeeds,
    summary: r.summary,
    pretrain: r.pretrain,
  });
}
comparisons.sort((a, b) => a.tokens - b.tokens);
const out = new URL("./budgets.json", import.meta.url).pathname;
await writeJsonAtomic(out, { format: "rtdlab-budgets-1", built_at: new Date().toISOString(), comparisons });
console.log(`${out}: ${comparisons.map((c) => `${c.name} (${c.tokens} tokens)`).join(", ")}`);

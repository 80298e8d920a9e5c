/**
 * `deno task probe`: the tug-of-war of a trained run at its latest checkpoint (lib/probes/run_probe.ts):
 * cos(g_MLM, g_RTD) on the embeddings, the share of opposed rows and the gradients' ratio, as means ± one
 * standard error over the batches of its held-out sequences, beside D's AUC and RTD gain on the same
 * sequences and the embeddings' average cosine. Reads the run folder; writes nothing there unless `--out`
 * points there.
 *
 *   deno task probe --run runs/gdes [--batch 8] [--seed 0] [--no-dropout] [--out runs/gdes/probe.json]
 *
 * @module
 */

import { failUsage, intOption, parseRunTaskArgs, runFolderProblem } from "../lib/util/cli.ts";
import { type BackendName, BACKENDS, initBackend } from "../lib/backend/mod.ts";
import { type MeanSe, probeRunDir, type TableProbe } from "../lib/probes/run_probe.ts";
import { writeJsonAtomic } from "../lib/io/atomic.ts";
import { formatAgainst, formatSe, nearThreshold, NOT_LEARNED, notLearned } from "../lib/train/rtd_metrics.ts";
import { EVALUATE_BATCH_SIZE } from "../lib/train/evaluate.ts";
import { ProgressBar } from "../lib/util/progress.ts";

const HELP = `deno task probe — the tug-of-war between L_MLM and λ·L_RTD at a run's latest checkpoint

  --run DIR            run folder (config.json, tokenizer.json, checkpoints/)
  --batch B            sequences per probed batch  [the run's batchSize: per-batch numbers depend on it]
  --seed S             seed of the masking, sampling and dropout draws  [0]
  --no-dropout         measure without dropout (less noise per batch; training-time probes keep it)
  --sequences N        runs without held-out sequences: how many training sequences to probe  [64]
  --tokens N           tokens the embeddings' average cosine is taken over (the most frequent; ≥ 2)  [1000]
  --out FILE           also write the numbers as JSON (atomically)
  --backend B          ${BACKENDS.join(" | ")}  [wasm]
  --help               this text

D's AUC and RTD gain are \`deno task evaluate\`'s at the same seed (T = 1, no dropout, batches of ${EVALUATE_BATCH_SIZE}).
What g_MLM and g_RTD are depends on the sharing mode: ES, both on the one shared table (the tug-of-war
itself); NES, each on its network's own table; GDES, E_G and E_Δ (the pull the stop-gradient keeps off E_G).
cos < 0: the two gradients oppose each other; about 0: near-orthogonal (under ES the larger one still
dominates the summed update); > 0: they agree. Opposed rows: the share of the tokens in D's input (rows
both gradients reach), each counted once, whose own cosine is negative (about 0.5 for unrelated directions).
‖g_RTD‖ / ‖g_MLM‖ includes λ; it says which loss dominates the update only under ES, where both share a table.
`;

/** What the two gradients are under each sharing mode, in one line. */
const MEANING: Record<string, string> = {
  es:
    "ES: both gradients land on the one shared table E, summed in the update: this is the tug-of-war itself",
  nes:
    "NES: nothing is shared: g_MLM on E_G, g_RTD on E_D, the pulls each loss would exert on a shared table " +
    "placed at its own",
  gdes: "GDES: g_MLM on E_G, g_RTD on E_Δ: the pull the stop-gradient keeps away from E_G (what it would " +
    "oppose or agree with on a shared table)",
};

if (import.meta.main) {
  const options = {
    run: { type: "string" },
    batch: { type: "string" },
    seed: { type: "string", default: "0" },
    "no-dropout": { type: "boolean", default: false },
    sequences: { type: "string" },
    tokens: { type: "string", default: "1000" },
    out: { type: "string" },
    backend: { type: "string", default: "wasm" },
    help: { type: "boolean", default: false },
  } as const;
  // Stray folder, parse errors, --help, --run and --backend: one rule for the run-folder tasks.
  const values = parseRunTaskArgs(options, HELP, BACKENDS, "probe");
  const int = (flag: string, v: string | undefined, min: number): number | undefined => {
    try {
      return intOption(flag, v, min);
    } catch (e) {
      failUsage((e as Error).message);
    }
  };
  const numbers = {
    batchSize: int("batch", values.batch, 1),
    seed: int("seed", values.seed, 0),
    sequences: int("sequences", values.sequences, 1),
    similarityTokens: int("tokens", values.tokens, 2),
  };
  try {
    // A backend that cannot start here, or a folder that is not there, is a bad command line (exit 2).
    await initBackend(values.backend as BackendName).catch((e: Error) => failUsage(e.message));
    const folderProblem = runFolderProblem(values.run);
    if (folderProblem) failUsage(folderProblem);
    let bar: ProgressBar | undefined;
    const r = await probeRunDir(values.run, {
      onMessage: (m) => console.error(m),
      ...numbers,
      dropout: !values["no-dropout"],
      onBatch: (done, total) => {
        bar ??= new ProgressBar(total, "probe");
        bar.update(done);
        if (done === total) bar.done();
      },
    });
    if (values.out) await writeJsonAtomic(values.out, { format: "rtdlab-probe-1", run: values.run, ...r });
    const e = r.evaluation;
    if (r.heldOut && values.sequences !== undefined) {
      console.error(
        `note: --sequences applies to runs without a held-out set; this run's ${r.sequences} held-out ` +
          "sequences were all probed",
      );
    }
    const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "es"}`;
    console.log(
      `${values.run} at step ${r.step} (${r.sharing.toUpperCase()}): ${r.sequences} ${
        r.heldOut ? "held-out" : "training (no held-out set)"
      } sequences in ${plural(r.batches, "batch")} of ${
        r.sequences % r.batchSize === 0 ? "" : "up to "
      }${r.batchSize}; ${r.dropout ? "the run's dropout" : "no dropout"}; seed ${r.seed}${
        r.samplingTemperature === 1
          ? ""
          : `; the gradients' replacements at the run's T = ${r.samplingTemperature}`
      }`,
    );
    const pmSkill = (x: number | null, se: number | null | undefined, at: number) =>
      x === null ? "—" : `${formatAgainst(x, at)}${typeof se === "number" ? ` ± ${formatSe(se)}` : ""}`;
    console.log(
      `  D on these sequences (T = 1): AUC ${pmSkill(e.discAuc, e.discAucSe, NOT_LEARNED.auc)}, RTD gain ${
        pmSkill(e.rtdGain, e.rtdGainSe, NOT_LEARNED.gain)
      } nats — ${notLearned(e.discAuc, e.rtdGain).learned ? "learned" : "NOT learned"}`,
    );
    // Near a threshold the verdict can turn with the seed or the sequences: say so, as evaluate does.
    const near = nearThreshold({ ...e, heldOut: r.heldOut });
    if (near) console.log(`  ${near}`);
    else if (!notLearned(e.discAuc, e.rtdGain).learned) {
      console.log(
        "  (the readings below describe a discriminator that has not learned to spot replacements)",
      );
    }
    const pm = (m: MeanSe, digits = 3, signed = false) =>
      `${signed && m.mean >= 0 ? "+" : ""}${m.mean.toFixed(digits)}${
        m.se === null ? "" : ` ± ${m.se.toFixed(digits)}`
      }`;
    const table = (name: string, t: TableProbe | null) => {
      if (!t) {
        console.log(`  ${name}: — (D reads no such table)`);
        return;
      }
      console.log(
        `  ${name} (${
          t.cos.n === 1 ? "one batch: no standard error" : `mean ± SE over ${t.cos.n} batches`
        }):`,
      );
      console.log(`    cos(g_MLM, g_RTD)         ${pm(t.cos, 3, true)}`);
      console.log(`    opposed rows (cos < 0)    ${pm(t.opposedShare)}`);
      console.log(`    ‖g_RTD‖ / ‖g_MLM‖ (λ in)  ${pm(t.ratio, 2)}`);
    };
    table("token embeddings", r.token);
    table("position embeddings", r.position);
    console.log(`  ${MEANING[r.sharing]}`);
    const s = r.similarity;
    const f = (x: number | null) => (x === null ? "—" : x.toFixed(3));
    console.log(
      `  average cosine of the ${r.similarityTokens.toLocaleString("en")} most frequent tokens: E_G ${
        f(s.generator)
      }, E_D ${f(s.discriminator)}${s.delta === null ? "" : `, E_Δ ${f(s.delta)}`}`,
    );
    Deno.exit(0);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}

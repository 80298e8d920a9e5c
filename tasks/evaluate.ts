/**
 * `deno task evaluate`: judge a run's generator and discriminator at its latest checkpoint on
 * replacements sampled at temperature 1 (lib/train/evaluate.ts), on its held-out sequences
 * (`heldOutSequences`) or, for a run without them, on a seeded sample of its training sequences; with
 * `--unseen`, on text of its corpus that a `corpusMaxChars` cap kept out of training altogether.
 *
 *   deno task evaluate --run runs/gdes [--temperature 1] [--seed 0] [--out runs/gdes/eval.json]
 *   deno task evaluate --run runs/gdes --unseen [--part brown] [--sequences 1024] [--out runs/gdes/eval-unseen.json]
 *   deno task evaluate --run runs/es --generator-from runs/gdes   # ES's D on GDES's generator's replacements
 *
 * @module
 */

import { failUsage, intOption, parseRunTaskArgs, runFolderProblem } from "../lib/util/cli.ts";
import { type BackendName, BACKENDS, initBackend } from "../lib/backend/mod.ts";
import { evaluateRunDir } from "../lib/report/trained.ts";
import { describeParts } from "../lib/text/corpus.ts";
import { writeJsonAtomic } from "../lib/io/atomic.ts";
import type { EvalFile } from "../lib/sweep/runs.ts";
import { formatAgainst, formatSe, nearThreshold, NOT_LEARNED, notLearned } from "../lib/train/rtd_metrics.ts";
import {
  EVALUATE_BATCH_SIZE,
  EVALUATE_TRAIN_SEQUENCES,
  MIN_BOOTSTRAP_SEQUENCES,
} from "../lib/train/evaluate.ts";

const HELP =
  `deno task evaluate — D's AUC and RTD gain on temperature-1 replacements, at a run's latest checkpoint

  --run DIR            run folder (config.json, tokenizer.json, checkpoints/)
  --temperature T      sampling temperature of the replacements  [1]
  --seed S             seed of the masking and sampling  [0]
  --batch B            sequences per forward pass; masks and samples are drawn per batch, so another B
                       scores another draw (compare runs at one B)  [${EVALUATE_BATCH_SIZE}]
  --sequences N        how many sequences to score: of the training sequences, for runs without
                       held-out ones [${EVALUATE_TRAIN_SEQUENCES}; at most half]; of the unseen text, with --unseen [256]
  --unseen             score text of the corpus the run never saw: what its corpusMaxChars cap left out
                       (other documents than its held-out set; on a combined corpus, another mix)
  --part NAME          with --unseen: only this part of a combined corpus (e.g. brown)
  --disallow-correct   never sample the original token
  --generator-from DIR masks and replacements from another run (its generator and masking settings; the same
                       tokenizer and data settings), so that several runs' discriminators are scored on one
                       task: each D's own generator sets its task's difficulty, and a weak one makes it easy
  --out FILE           also write the numbers as JSON (atomically)
  --backend B          wasm | cpu | webgpu | tensorflow | cuda  [wasm]
  --help               this text
`;

if (import.meta.main) {
  const options = {
    run: { type: "string" },
    temperature: { type: "string", default: "1" },
    seed: { type: "string", default: "0" },
    batch: { type: "string", default: String(EVALUATE_BATCH_SIZE) },
    sequences: { type: "string" },
    unseen: { type: "boolean", default: false },
    part: { type: "string" },
    "disallow-correct": { type: "boolean", default: false },
    "generator-from": { type: "string" },
    out: { type: "string" },
    backend: { type: "string", default: "wasm" },
    help: { type: "boolean", default: false },
  } as const;
  // Stray folder, parse errors, --help, --run and --backend: one rule for the run-folder tasks.
  const values = parseRunTaskArgs(options, HELP, BACKENDS, "evaluate");
  const temperature = Number(values.temperature);
  if (!(temperature > 0 && Number.isFinite(temperature))) {
    failUsage(`--temperature needs a positive number, got "${values.temperature}"`);
  }
  // One rule and one message for every integer option (lib/util/cli.ts).
  const int = (flag: string, v: string, min: number): number => {
    try {
      return intOption(flag, v, min)!;
    } catch (e) {
      failUsage((e as Error).message);
    }
  };
  const seed = int("seed", values.seed!, 0);
  const batchSize = int("batch", values.batch!, 1);
  const sequences = int(
    "sequences",
    values.sequences ?? (values.unseen ? "256" : String(EVALUATE_TRAIN_SEQUENCES)),
    1,
  );
  if (values.part !== undefined && !values.unseen) {
    failUsage("--part picks a part of the unseen text: give --unseen too");
  }
  try {
    // A backend that cannot start here, or a folder that is not there, is a bad command line (exit 2).
    await initBackend(values.backend as BackendName).catch((e: Error) => failUsage(e.message));
    const folderProblem = runFolderProblem(values.run);
    if (folderProblem) failUsage(folderProblem);
    const r = await evaluateRunDir(values.run, {
      temperature,
      seed,
      batchSize,
      sequences,
      disallowCorrect: values["disallow-correct"],
      ...(values.unseen ? { unseen: { part: values.part } } : {}),
      generatorFrom: values["generator-from"],
      onMessage: (m) => console.error(m),
    });
    if (r.heldOut && !r.unseen && values.sequences !== undefined) {
      console.error(
        `note: --sequences applies to runs without a held-out set; this run's ${r.sequences} held-out ` +
          "sequences were all scored (train with a larger heldOutSequences for more)",
      );
    }
    if (values.out) {
      // An --unseen file says so in its settings: a sweep never takes it for the held-out evaluation.
      const unseen = values.unseen ? { unseen: { part: values.part ?? null, sequences } } : {};
      const file: EvalFile = {
        format: "rtdlab-eval-1",
        settings: {
          temperature,
          seed,
          batchSize,
          ...unseen,
          ...(r.generatorFrom ? { generatorFrom: r.generatorFrom.dir } : {}),
          // Only where they apply, so that a held-out reading of the usual settings is written as before.
          ...(values["disallow-correct"] ? { disallowCorrect: true as const } : {}),
          ...(!r.heldOut ? { sequences } : {}),
        },
        ...r,
      };
      await writeJsonAtomic(values.out, file);
    }
    const f = (x: number | null, d = 4) => (x === null ? "—" : x.toFixed(d));
    console.log(
      `${values.run} at step ${r.step}: ${r.sequences} ${
        r.unseen ? "unseen" : r.heldOut ? "held-out" : "training (no held-out set)"
      } ` +
        `sequences, ${r.tokens} tokens, ${r.selected} masked; replacements sampled at T = ${temperature}, seed ${seed}`,
    );
    if (r.generatorFrom) {
      console.log(
        `  replacements from the generator of ${r.generatorFrom.dir} (step ${r.generatorFrom.step}): ` +
          "the generator rows below are that generator's",
      );
    }
    if (r.unseen) {
      const u = r.unseen;
      const size = u.chars >= 1e6 ? `${(u.chars / 1e6).toFixed(1)} M` : u.chars.toLocaleString("en");
      const what = u.part !== null
        ? `its ${u.part} part, ${size} characters`
        : u.parts
        ? describeParts(u.parts)
        : `${size} characters`;
      console.log(
        `  from text the corpusMaxChars cap kept out of training (${what}), ${
          u.available.toLocaleString("en")
        } ` +
          "sequences packed: other documents than the held-out set, so not the same test",
      );
    }
    // Never rounded across a learned threshold; a standard error never rounded to 0.
    const pm = (x: number | null, se: number | null | undefined, at: number) =>
      x === null ? "—" : `${formatAgainst(x, at, 4)}${typeof se === "number" ? ` ± ${formatSe(se, 4)}` : ""}`;
    const rows: [string, string][] = [
      ["discriminator ROC-AUC", pm(r.discAuc, r.discAucSe, NOT_LEARNED.auc)],
      ["RTD gain (nats)", pm(r.rtdGain, r.rtdGainSe, NOT_LEARNED.gain)],
      ["RTD loss / base-rate entropy", `${f(r.lossRtd)} / ${f(r.baseRate)}`],
      ["replaced fraction", f(r.replacedFrac)],
      ["recall on replaced", f(r.discRecall)],
      ["generator MLM loss", f(r.lossMlm)],
      ["generator accuracy", f(r.genAcc)],
    ];
    for (const [k, v] of rows) console.log(`  ${k.padEnd(29)} ${v}`);
    if (r.lossRtd !== null) {
      console.log(
        r.discAucSe === null || r.discAucSe === undefined
          ? `  no standard errors: fewer than ${MIN_BOOTSTRAP_SEQUENCES} sequences to resample`
          : `  ± one standard error over the evaluated sequences (bootstrap, whole sequences resampled)`,
      );
      // Scored on sequences it trained on, D's skill is an upper bound on what it does on new text.
      const where = r.heldOut
        ? ""
        : " (on training sequences: an optimistic reading; train with --set heldOutSequences=64 for a " +
          "held-out one)";
      console.log(`  ${notLearned(r.discAuc, r.rtdGain).text}${where}`);
      const near = nearThreshold({
        ...r,
        ...(r.unseen
          ? {
            advice: r.sequences < r.unseen.available
              ? `four times the --sequences halve the standard error (${
                r.unseen.available.toLocaleString("en")
              } are there)`
              : "all of the unseen text was scored",
          }
          : {}),
      });
      if (near) console.log(`  ${near}`);
    }
    Deno.exit(0);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}

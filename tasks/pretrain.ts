/**
 * `deno task pretrain`: pre-train a generator + discriminator (or the MLM baseline) and write a run folder.
 *
 *   deno task pretrain --config tiny --sharing gdes --steps 300 --seed 0 --out runs/gdes [--backend wasm]
 *   deno task pretrain --resume runs/gdes [--steps 600]
 *   deno task pretrain --init-from runs/gdes/export --sharing gdes --steps 300 --out runs/gdes-more
 *   deno task pretrain --init-discriminator DIR --init-generator DIR --sharing es
 *
 * @module
 */

import { applyOverrides, configFrom, PRESETS, SHARING_MODES, validateConfig } from "../lib/config.ts";
import { type BackendName, BACKENDS, initBackend } from "../lib/backend/mod.ts";
import { corpusFingerprint } from "../lib/text/corpus.ts";
import { pretrain, readMetrics } from "../lib/train/run.ts";
import { folderKeyProblem } from "../lib/train/init_from.ts";
import { SYNTHETIC_LANGUAGES } from "../lib/text/synthetic.ts";
import { formatDuration, ProgressBar } from "../lib/util/progress.ts";
import {
  formatAgainst,
  formatSe,
  lastTenth,
  NOT_LEARNED,
  notLearned,
  tailMean,
  tailSe,
} from "../lib/train/rtd_metrics.ts";
import {
  failUsage,
  intOption,
  outDirProblem,
  parseCliArgs,
  strayArgument,
  taskCommand,
  wrapHelp,
} from "../lib/util/cli.ts";
import { onStopSignal, SIGNAL_EXIT } from "../lib/util/signals.ts";

const HELP = `deno task pretrain — replaced token detection pre-training (ELECTRA / DeBERTaV3 sharing modes)

  --config NAME|FILE   preset (${
  Object.keys(PRESETS).join(", ")
}) or a JSON file of overrides on "tiny" (or on its "preset" key's)  [tiny]
  --sharing MODE       ${SHARING_MODES.join(" | ")}: embedding sharing, or the MLM-only baseline  [es]
  --joint              train NES/GDES with one joint loss instead of decoupled G then D steps
  --steps N            length of the run (the LR schedule decays to 0 there)  [the preset's: ${
  Object.entries(PRESETS).map(([k, v]) => `${k} ${v.steps}`).join(", ")
}]
  --until N            stop after step N (checkpointed; --resume continues exactly)
  --seed S             seed of every random choice  [0]
  --out DIR            run folder  [runs/<config>-<sharing>-s<seed>]
  --resume DIR         continue the run in DIR from its latest checkpoint (to --steps, if given)
  --init-from DIR      start a new run from HuggingFace checkpoints: DIR/discriminator + DIR/generator
                       (an rtdlab export/, or a run folder), or DIR/mlm (or DIR) for --sharing mlm.
                       Sizes and tokenizer come from the folders (--set of one is refused); --config and
                       --set give the training settings (--set dropout, initStd, seqLength win over theirs)
  --init-discriminator DIR, --init-generator DIR
                       the two folders given separately (ElectraForPreTraining + ElectraForMaskedLM, or the
                       DeBERTa-v2 equivalents); model.safetensors only (pytorch_model.bin is refused)
  --backend B          wasm | cpu | webgpu | tensorflow | cuda (NVIDIA GPUs: driver + cuBLAS)  [wasm]
  --corpus NAME|PATH   packaged corpus (gutenberg, brown, sotu, wordnet), a synthetic language
                       synthetic:NAME[:key=value...], e.g. synthetic:agreement:distance=5 (languages:
                       ${Object.keys(SYNTHETIC_LANGUAGES).join(", ")}), a folder of .txt
                       files, or several joined by + (gutenberg+brown+sotu; raise corpusMaxChars for all)
                       [the preset's: ${
  [...new Set(Object.values(PRESETS).map((c) => c.corpus))].map((corpus) =>
    `${corpus} (${
      Object.keys(PRESETS).filter((k) => PRESETS[k as keyof typeof PRESETS].corpus === corpus).join(", ")
    })`
  ).join(", ")
}]
  --rtd-weight λ       weight of the RTD loss  [50]
  --set KEY=VALUE      override any config key (repeatable), e.g. --set batchSize=32
                       (--set heldOutSequences=64 keeps 64 sequences out of training for deno task evaluate)
  --probe-every K      every K steps log the tug-of-war and geometry probes (tow_*, sim_*)  [0 = off]
  --progress-jsonl     print progress as JSON lines on stdout (for a parent process)
  --help               this text
`;

/** Parses argv into a resolved config and run options; throws on bad input. */
export function parseCli(argv: string[]) {
  const options = {
    ...Object.fromEntries(
      [
        "config",
        "sharing",
        "steps",
        "until",
        "seed",
        "out",
        "resume",
        "backend",
        "corpus",
        "rtd-weight",
        "init-from",
        "init-discriminator",
        "init-generator",
      ].map((k) => [k, { type: "string" as const }]),
    ),
    "probe-every": { type: "string" },
    set: { type: "string", multiple: true },
    joint: { type: "boolean" },
    help: { type: "boolean" },
    "progress-jsonl": { type: "boolean" },
  } as const;
  // A folder without its flag (`deno task pretrain runs/x`) is named back with the flags that take one.
  const bare = strayArgument(argv, options);
  if (bare !== undefined) {
    throw new Error(
      `unexpected argument "${bare}": continue a run with --resume ${bare}, or start one with --out ${bare}`,
    );
  }
  const { values } = parseCliArgs(argv, options);
  const args = values as Record<string, string | undefined> & {
    set?: string[];
    joint?: boolean;
    help?: boolean;
    "progress-jsonl"?: boolean;
  };
  const initGiven = ["init-from", "init-discriminator", "init-generator"].some((k) => args[k] !== undefined);
  if (initGiven && args.resume !== undefined) {
    throw new Error("--init-from starts a new run and --resume continues one: give one of them");
  }
  if (args.resume !== undefined) {
    // A resumed run keeps the settings it started with: a flag that would change them is refused,
    // never silently dropped.
    const given = ["config", "sharing", "seed", "out", "corpus", "rtd-weight"].filter((k) =>
      args[k] !== undefined
    )
      .map((k) => `--${k}`);
    if (args.joint) given.push("--joint");
    if (args.set?.length) given.push("--set");
    if (given.length) {
      throw new Error(
        `--resume continues ${args.resume} with the settings in its config.json; ${
          given.join(", ")
        } cannot ` +
          `change them (a resume takes only --steps, --until, --backend and --probe-every). To train with other ` +
          `settings start a new run (--out DIR), or from this run's weights with --init-from ${args.resume}`,
      );
    }
  }
  // Run length and step counts start at 1; a seed or a probe interval (0 = off) at 0.
  const steps = intOption("steps", args.steps, 1);
  const until = intOption("until", args.until, 1);
  const seed = intOption("seed", args.seed, 0);
  const probeEvery = intOption("probe-every", args["probe-every"], 0);
  let config = configFrom(args.config ?? "tiny");
  const overrides: Record<string, unknown> = {};
  const setKeys: Record<string, unknown> = {};
  if (args.sharing) overrides.sharing = args.sharing;
  if (args.joint) overrides.joint = true;
  if (steps !== undefined) overrides.steps = steps;
  if (seed !== undefined) overrides.seed = seed;
  if (args.corpus) overrides.corpus = args.corpus;
  if (args["rtd-weight"] !== undefined) overrides.rtdWeight = args["rtd-weight"]; // checked as a number by applyOverrides
  if (probeEvery !== undefined) overrides.probeEvery = probeEvery;
  for (const kv of (args.set ?? []) as string[]) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new Error(`--set needs KEY=VALUE, got "${kv}"`);
    overrides[kv.slice(0, i)] = setKeys[kv.slice(0, i)] = kv.slice(i + 1);
  }
  config = applyOverrides(config, overrides);
  if (!args.resume) validateConfig(config);
  const init = {
    dir: args["init-from"],
    discriminator: args["init-discriminator"],
    generator: args["init-generator"],
  };
  const hasInit = Object.values(init).some((v) => v !== undefined);
  if (init.dir && (init.discriminator || init.generator)) {
    throw new Error("give --init-from DIR, or --init-discriminator and --init-generator, not both");
  }
  // A size the folders decide is refused, never silently replaced; --set dropout etc. win over theirs.
  const folderProblem = hasInit ? folderKeyProblem(Object.keys(setKeys)) : null;
  if (folderProblem) throw new Error(`--set ${folderProblem}`);
  const backend = (args.backend ?? "wasm") as BackendName;
  const outProblem = outDirProblem("--out", args.out) ?? outDirProblem("--resume", args.resume);
  if (outProblem) throw new Error(outProblem);
  const out = args.resume ?? args.out ?? `runs/${config.preset}-${config.sharing}-s${config.seed}`;
  return {
    help: args.help,
    progressJsonl: args["progress-jsonl"] ?? false,
    config,
    backend,
    out,
    resume: args.resume !== undefined,
    steps,
    until,
    probeEvery,
    initFrom: hasInit ? { ...init, settings: setKeys } : undefined,
  };
}

if (import.meta.main) {
  let cli;
  try {
    cli = parseCli(Deno.args);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
  if (cli.help) {
    console.log(wrapHelp(HELP));
    Deno.exit(0);
  }
  // A misspelt backend or corpus is a bad command line (exit 2), found before the backend starts.
  try {
    if (!BACKENDS.includes(cli.backend)) {
      throw new Error(`unknown backend "${cli.backend}"; valid backends: ${BACKENDS.join(", ")}`);
    }
    if (!cli.resume) await corpusFingerprint(cli.config.corpus);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
  try {
    // A backend that cannot start here is a bad command line, as a misspelt one is (exit 2).
    const backend = await initBackend(cli.backend).catch((e: Error) => failUsage(e.message));
    console.error(`backend: ${backend.info}`);
    const abort = new AbortController();
    const stop = onStopSignal((signal) => {
      console.error(
        `\n${
          signal === "SIGINT" ? "interrupted" : "terminated"
        }: finishing the step and writing a checkpoint ` +
          `(${signal === "SIGINT" ? "Ctrl-C" : "the signal"} again to quit now)`,
      );
      abort.abort();
    });
    let bar: ProgressBar | undefined;
    const result = await pretrain({
      config: cli.config,
      outDir: cli.out,
      resume: cli.resume,
      steps: cli.steps,
      until: cli.until,
      probeEvery: cli.probeEvery,
      initFrom: cli.initFrom,
      backend: backend.name,
      signal: abort.signal,
      cli: true,
      onMessage: (m) => {
        if (bar) bar.done();
        console.error(m);
      },
      onProgress: (p) => {
        if (cli.progressJsonl) {
          // Machine-readable progress for a parent process (tasks/demo.ts runs several runs at once).
          const { step, totalSteps, tokensPerSecond, etaSeconds } = p;
          console.log(
            JSON.stringify({ step, totalSteps, tokensPerSecond, etaSeconds, lossMlm: p.metrics.lossMlm }),
          );
          return;
        }
        bar ??= new ProgressBar(p.totalSteps, "pretrain");
        const m = p.metrics;
        const rtd = m.lossRtd === null
          ? ""
          : ` rtd ${m.lossRtd.toFixed(3)} | D auc ${m.discAuc?.toFixed(3) ?? "—"} gain ${
            m.rtdGain === null ? "—" : (m.rtdGain >= 0 ? "+" : "") + m.rtdGain.toFixed(3)
          }`;
        bar.update(
          p.step,
          `mlm ${m.lossMlm.toFixed(3)}${rtd} | ${Math.round(p.tokensPerSecond)} tok/s | ETA ${
            formatDuration(p.etaSeconds)
          }`,
        );
      },
    });
    bar?.done();
    const c = result.trainer.config;
    // One logged step is one batch: the numbers are means over the last tenth of the logged steps, the
    // window the demo, compare, sweep and report read, so this run reads the same everywhere.
    const logged = await readMetrics(result.outDir, { allowMissing: true });
    // A resume of a finished run trains nothing: its summary is still the run's own.
    const l = result.last ?? logged.at(-1) ?? null;
    console.log(
      `\nrun ${result.outDir}: ${c.preset}, sharing ${c.sharing}${
        c.joint ? " (joint)" : ""
      }, step ${result.trainer.step}/${c.steps}${
        result.last === null && result.trainer.step >= c.steps
          ? ` (already finished: nothing trained; --steps N > ${c.steps} trains it longer)`
          : ""
      }`,
    );
    if (l) {
      const mean = (k: string) => tailMean(logged, k);
      const f = (x: number | null) => (x === null ? "—" : x.toFixed(4));
      const auc = mean("disc_auc"), gain = mean("rtd_gain");
      // ± one standard error of the mean over those batches (from 3 of them).
      const pm = (k: string) => {
        const se = tailSe(logged, k);
        return se === null ? "" : ` ± ${formatSe(se)}`;
      };
      console.log(
        `  means over the last tenth of the logged steps (${lastTenth(logged.length)} of ${logged.length}):`,
      );
      const rows: [string, string][] = [
        ["generator MLM loss", f(mean("loss_mlm"))],
        ["discriminator RTD loss", f(mean("loss_rtd"))],
        ["discriminator ROC-AUC", auc === null ? "—" : formatAgainst(auc, NOT_LEARNED.auc) + pm("disc_auc")],
        ["RTD gain (nats)", gain === null ? "—" : formatAgainst(gain, NOT_LEARNED.gain) + pm("rtd_gain")],
        ["discriminator accuracy", f(mean("disc_acc"))],
        ["replaced fraction", f(mean("replaced_frac"))],
      ];
      for (const [k, v] of rows) console.log(`    ${k.padEnd(24)} ${v}`);
      if (l.loss_rtd !== null) console.log(`    ${notLearned(auc, gain).text}`);
      const run: [string, string][] = [
        ["tokens/s (last window)", String(l.tokens_per_s)],
        ["wall time", formatDuration(l.elapsed_s)],
        ["live tensors", `${l.tensors} (${l.mem_mib} MiB)`],
        ...(l.device_mib === undefined
          ? []
          : [["device memory held", `${l.device_mib} MiB`] as [string, string]]),
      ];
      for (const [k, v] of run) console.log(`  ${k.padEnd(26)} ${v}`);
    }
    console.log(
      `  files: ${result.outDir}/{config.json,tokenizer.json,metrics.jsonl,checkpoints/${
        result.stoppedEarly ? "" : ",export/"
      }}`,
    );
    console.log(`  curves and summary: ${taskCommand(`report ${result.outDir}`)}`);
    result.trainer.dispose();
    // An interrupted run is unfinished (no export/): `pretrain … && finetune …` must not go on.
    const by = stop.stoppedBy();
    Deno.exit(by && result.stoppedEarly ? SIGNAL_EXIT[by] : 0);
  } catch (e) {
    console.error(`\nerror: ${(e as Error).message}`);
    Deno.exit(1);
  }
}

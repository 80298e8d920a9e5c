/**
 * `deno task finetune`: fine-tune a pre-training run's exported discriminator (or the MLM baseline's
 * encoder), or any HuggingFace ELECTRA / DeBERTa-v2 model folder, on a labelled task and write
 * `DIR/finetune/<task>-s<seed>/{metrics.json,predictions.jsonl}`.
 *
 *   deno task finetune --checkpoint runs/gdes --task sentiment-yelp --seed 0
 *   deno task finetune --checkpoint runs/gdes/export/discriminator --task sentiment-yelp
 *   deno task finetune --checkpoint runs/gdes --task data/reviews.csv --label-column stars
 *
 * @module
 */

import { type BackendName, BACKENDS, initBackend } from "../lib/backend/mod.ts";
import {
  DEFAULT_HYPERPARAMS,
  type FinetuneHyperparams,
  runFinetune,
  validateHyperparams,
} from "../lib/finetune/mod.ts";
import type { EncoderSource } from "../lib/finetune/classifier.ts";
import type { ClassificationMetrics } from "../lib/finetune/metrics.ts";
import { checkTaskName, PACKAGED_TASKS } from "../lib/tasks/mod.ts";
import { METRIC_NAMES, type MetricName } from "../lib/tasks/types.ts";
import { formatDuration, ProgressBar } from "../lib/util/progress.ts";
import {
  failUsage,
  intOption,
  outDirProblem,
  outFolderProblem,
  parseCliArgs,
  wrapHelp,
} from "../lib/util/cli.ts";
import { onStopSignal, SIGNAL_EXIT } from "../lib/util/signals.ts";
import { type MetricsRecord, readMetrics } from "../lib/train/run.ts";
import { basename, dirname, resolve } from "node:path";
import { exists } from "../lib/util/fs.ts";
import { notLearned, tailMean } from "../lib/train/rtd_metrics.ts";

const D = DEFAULT_HYPERPARAMS;
const HELP = `deno task finetune — fine-tune a pre-trained encoder on a classification task

  --checkpoint DIR       a pre-training run folder (uses RUN/export/discriminator or export/mlm), or a
                         HuggingFace ELECTRA / DeBERTa-v2 model folder (config.json, model.safetensors and
                         tokenizer.json or vocab.txt), e.g. RUN/export/discriminator or one trained elsewhere
  --task NAME|FILE|DIR   ${Object.keys(PACKAGED_TASKS).join(", ")},
                         or a .jsonl/.csv/.tsv file with "text" (or "text_a"+"text_b") and "label" columns,
                         or a folder with train.* / dev.* / test.* files
  --seed S               fine-tuning seed (head init, example order, dropout)  [0]
  --epochs N             passes over the training set  [${D.epochs}]
  --lr X                 peak learning rate  [${D.learningRate}]
  --batch B              examples per step  [${D.batchSize}]
  --max-length N         tokens per example incl. [CLS]/[SEP]  [${D.maxLength}]
  --layer-decay X        layer-wise LR decay (1 = off; ELECTRA-Small used 0.8)  [${D.layerDecay}]
  --warmup X             fraction of steps warming up  [${D.warmupFraction}]
  --weight-decay X       AdamW weight decay  [${D.weightDecay}]
  --patience N           evaluations without a better dev score before stopping (0 = off)  [${D.patience}]
  --eval-every N         evaluate on dev every N steps (0 = each epoch)  [${D.evalEvery}]
  --max-train N          use a seeded subset of at most N training examples
  --max-eval N           use at most N dev and N test examples
  --source S             discriminator | mlm | scratch (random init, same tokenizer: the no-pre-training control)  [the run's export: discriminator, or mlm for an MLM run]
  --out DIR              output folder  [DIR/finetune/<task>-s<seed>, with -scratch for --source scratch]
  --force                replace an earlier result in that folder (else it is refused)
  user data:  --text-column C  --text-b-column C  --label-column C  --dev FILE  --test FILE
              --split-seed S  --metric ${METRIC_NAMES.join("|")}
  --backend B            wasm | cpu | webgpu | tensorflow | cuda  [wasm]
  --progress-jsonl       progress as JSON lines on stdout (for a parent process)
  --quiet                no progress bar
  --help                 this text
`;

/** Parses argv into run options; throws on bad input. */
export function parseCli(argv: string[]) {
  const { values } = parseCliArgs(argv, {
    ...Object.fromEntries(
      [
        "checkpoint",
        "task",
        "seed",
        "epochs",
        "lr",
        "batch",
        "max-length",
        "layer-decay",
        "warmup",
        "weight-decay",
        "patience",
        "eval-every",
        "max-train",
        "max-eval",
        "source",
        "out",
        "text-column",
        "text-b-column",
        "label-column",
        "dev",
        "test",
        "split-seed",
        "metric",
        "backend",
      ].map((k) => [k, { type: "string" as const }]),
    ),
    help: { type: "boolean" },
    force: { type: "boolean" },
    quiet: { type: "boolean" },
    "progress-jsonl": { type: "boolean" },
  });
  const a = values as Record<string, string | undefined> & {
    help?: boolean;
    force?: boolean;
    quiet?: boolean;
    "progress-jsonl"?: boolean;
  };
  if (a.help) return { help: true as const };
  const int = (k: string, min = 0) => intOption(k, a[k], min);
  const num = (k: string) => {
    const v = a[k];
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`--${k} needs a number, got "${v}"`);
    return n;
  };
  if (!a.checkpoint) throw new Error("--checkpoint DIR is required (see --help)");
  // Not a file, and not among a run's or a model's own files (a fine-tune's folder may sit in RUN/finetune/).
  const outProblem = outDirProblem("--out", a.out) ??
    (a.out === undefined ? null : outFolderProblem(a.out, ["finetune"]));
  if (outProblem) throw new Error(outProblem);
  if (!a.task) throw new Error("--task is required (see --help)");
  const source = a.source as EncoderSource | undefined;
  if (source && !["discriminator", "mlm", "scratch"].includes(source)) {
    throw new Error(`--source must be discriminator, mlm or scratch, got "${source}"`);
  }
  if (a.metric && !METRIC_NAMES.includes(a.metric as MetricName)) {
    throw new Error(`--metric must be one of ${METRIC_NAMES.join(", ")}, got "${a.metric}"`);
  }
  const hyper: Partial<FinetuneHyperparams> = {};
  const set = <K extends keyof FinetuneHyperparams>(k: K, v: number | undefined) => {
    if (v !== undefined) hyper[k] = v;
  };
  set("epochs", int("epochs", 1));
  set("learningRate", num("lr"));
  set("batchSize", int("batch", 1));
  set("maxLength", int("max-length", 4));
  set("layerDecay", num("layer-decay"));
  set("warmupFraction", num("warmup"));
  set("weightDecay", num("weight-decay"));
  set("patience", int("patience"));
  set("evalEvery", int("eval-every"));
  // Ranges are checked here, before the backend, the task and the encoder load.
  validateHyperparams({ ...DEFAULT_HYPERPARAMS, ...hyper });
  return {
    help: false as const,
    runDir: a.checkpoint,
    task: a.task,
    seed: int("seed") ?? 0,
    hyper,
    source,
    outDir: a.out,
    force: a.force ?? false,
    backend: (a.backend ?? "wasm") as BackendName,
    progressJsonl: a["progress-jsonl"] ?? false,
    quiet: a.quiet ?? false,
    taskOptions: {
      textColumn: a["text-column"],
      textBColumn: a["text-b-column"],
      labelColumn: a["label-column"],
      devFile: a.dev,
      testFile: a.test,
      splitSeed: int("split-seed"),
      metric: a.metric as MetricName | undefined,
      maxTrain: int("max-train", 1),
      maxEval: int("max-eval", 1),
    },
  };
}

/**
 * Whether a fine-tune's test score clears the constant classifier's, in words. For accuracy, against two
 * binomial standard errors √(p(1 − p)/n) of the fine-tune's own accuracy; the other metrics have no such
 * simple error, so only above or not.
 */
export function floorVerdict(
  metric: string,
  test: ClassificationMetrics,
  constant: ClassificationMetrics,
): string {
  const k = metric as keyof ClassificationMetrics;
  const score = test[k], floor = constant[k];
  if (metric !== "accuracy") {
    return `${metric} ${
      score > floor ? "above" : "NOT above"
    } the constant classifier's (no standard error for it)`;
  }
  const se = Math.sqrt(Math.max(score * (1 - score), 1e-12) / test.n);
  const diff = score - floor;
  return diff > 2 * se
    ? `accuracy beats the constant classifier's by ${diff.toFixed(3)}, more than two standard errors (±${
      se.toFixed(3)
    })`
    : diff > 0
    ? `accuracy is ${diff.toFixed(3)} above the constant classifier's, within two standard errors (±${
      se.toFixed(3)
    } on ${test.n} examples): not shown to beat it`
    : `accuracy does NOT beat the constant classifier's`;
}

/**
 * The logged pre-training steps behind an encoder: a run folder's own, or for an rtdlab export's
 * discriminator (RUN/export/discriminator, RUN/export-step-N/discriminator) its run's, up to the step
 * exported. [] for a model from elsewhere.
 */
export async function encoderRunMetrics(dir: string): Promise<MetricsRecord[]> {
  const own = await readMetrics(dir, { allowMissing: true });
  if (own.length || basename(resolve(dir)) !== "discriminator") return own;
  const exportDir = basename(dirname(resolve(dir)));
  const step = /^export-step-(\d+)$/.exec(exportDir);
  if (exportDir !== "export" && !step) return [];
  const logged = await readMetrics(dirname(dirname(resolve(dir))), { allowMissing: true });
  return step ? logged.filter((r) => r.step <= Number(step[1])) : logged;
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
  // A misspelt backend or task is a bad command line (exit 2), found before the backend starts.
  try {
    if (!BACKENDS.includes(cli.backend)) {
      throw new Error(`unknown backend "${cli.backend}"; valid backends: ${BACKENDS.join(", ")}`);
    }
    await checkTaskName(cli.task);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
  try {
    // A backend that cannot start here is a bad command line, as a misspelt one is (exit 2).
    const backend = await initBackend(cli.backend).catch((e: Error) => failUsage(e.message));
    // So is a checkpoint folder that is not there.
    if (!(await exists(cli.runDir))) {
      failUsage(`--checkpoint ${cli.runDir}: no such run or model folder`);
    }
    if (!cli.progressJsonl) console.error(`backend: ${backend.info}`);
    const abort = new AbortController();
    const stop = onStopSignal((signal) => {
      console.error(
        `\n${signal === "SIGINT" ? "interrupted" : "terminated"}: testing the best weights so far ` +
          `(${signal === "SIGINT" ? "Ctrl-C" : "the signal"} again to quit now)`,
      );
      abort.abort();
    });
    let bar: ProgressBar | undefined;
    const t0 = performance.now();
    const m = await runFinetune({
      runDir: cli.runDir,
      task: cli.task,
      seed: cli.seed,
      hyper: cli.hyper,
      source: cli.source,
      outDir: cli.outDir,
      force: cli.force,
      taskOptions: cli.taskOptions,
      signal: abort.signal,
      onMessage: (msg) => {
        if (cli.progressJsonl) return;
        bar?.done();
        bar = undefined;
        console.error(msg);
      },
      onEval: (r) => {
        if (cli.progressJsonl || cli.quiet) return;
        bar?.done();
        bar = undefined;
        const d = r.dev;
        console.error(
          `  epoch ${r.epoch} step ${r.step}: train loss ${r.train_loss.toFixed(4)} | dev acc ${
            d.accuracy.toFixed(4)
          } macro-F1 ${d.macro_f1.toFixed(4)} MCC ${d.mcc.toFixed(4)}`,
        );
      },
      onProgress: (p) => {
        if (cli.progressJsonl) {
          console.log(JSON.stringify({ step: p.step, totalSteps: p.totalSteps, etaSeconds: p.etaSeconds }));
          return;
        }
        if (cli.quiet) return;
        bar ??= new ProgressBar(p.totalSteps, "finetune");
        bar.update(
          p.step,
          `epoch ${p.epoch} loss ${p.loss.toFixed(3)}${
            p.bestDev === null ? "" : ` best dev ${p.bestDev.toFixed(3)}`
          } | ${p.examplesPerSecond.toFixed(0)} ex/s | ETA ${formatDuration(p.etaSeconds)}`,
        );
      },
    });
    bar?.done();
    if (!cli.progressJsonl) {
      const f = (x: number) => x.toFixed(4);
      console.log(
        `\n${m.task} (seed ${m.seed}, ${
          m.source === "scratch"
            ? "scratch: random init, the checkpoint's sizes and tokenizer"
            : `${m.source}${m.sharing ? `, pre-trained with ${m.sharing}` : ""}`
        }): ` +
          `best dev at epoch ${m.best.epoch} (step ${m.best.step} of ${m.steps} step${
            m.steps === 1 ? "" : "s"
          } run${
            m.stopped_early ? `; stopped early, no better dev score for ${m.hyper.patience} evaluations` : ""
          }${
            m.interrupted ? "; INTERRUPTED: not a finished fine-tune, the same command runs it again" : ""
          })`,
      );
      console.log(`  split  accuracy  macro-F1  MCC      n`);
      for (const [k, v] of [["dev", m.dev], ["test", m.test]] as const) {
        console.log(
          `  ${k.padEnd(5)}  ${f(v.accuracy)}    ${f(v.macro_f1)}    ${f(v.mcc).padStart(7)}  ${v.n}`,
        );
      }
      if (m.constant) {
        // The floor: one class for every example (the best class per metric), on the test split.
        const c = m.constant.test;
        console.log(
          `  const  ${f(c.accuracy)}    ${f(c.macro_f1)}    ${f(c.mcc).padStart(7)}  ${c.n}   ` +
            `(test: one class for every example, the best per metric)`,
        );
        console.log(`  ${floorVerdict(m.metric, m.test, c)}`);
      }
      if (m.source === "discriminator") {
        // A score from a discriminator's encoder reads beside that D's skill (its run's last tenth).
        const logged = await encoderRunMetrics(m.run_dir);
        if (logged.length) {
          console.log(
            `  the encoder's pre-training, last tenth of its logged steps: ${
              notLearned(tailMean(logged, "disc_auc"), tailMean(logged, "rtd_gain")).text
            }`,
          );
        }
      }
      console.log(
        `  selection metric: ${m.metric}; wall time ${formatDuration((performance.now() - t0) / 1000)}`,
      );
    }
    // An interrupted fine-tune wrote what it had (marked "interrupted"), but it is not a finished one.
    const by = stop.stoppedBy();
    Deno.exit(by && m.interrupted ? SIGNAL_EXIT[by] : 0);
  } catch (e) {
    console.error(`\nerror: ${(e as Error).message}`);
    Deno.exit(1);
  }
}

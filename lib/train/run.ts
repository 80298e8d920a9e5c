/**
 * A whole pre-training run on disk: prepare the data, train, log `metrics.jsonl`, checkpoint,
 * resume, export. `tasks/pretrain.ts` is a thin command line over {@link pretrain}; notebooks call
 * it directly.
 *
 * Run folder:
 * - `config.json`     the resolved {@link RunConfig} (plus the backend that ran it)
 * - `tokenizer.json`  the HuggingFace tokenizer the ids come from
 * - `metrics.jsonl`   one JSON object per logged step
 * - `checkpoints/`    see lib/train/checkpoint.ts
 * - `export/`         plain HF model folders (discriminator/generator, with the tokenizer) after the last step
 *
 * A run can start from HuggingFace checkpoints instead of random weights (`initFrom`, see
 * lib/train/init_from.ts); config.json then records the folders under `init_from`.
 *
 * @module
 */

import { yieldToEventLoop } from "../util/signals.ts";
import { basename, dirname, join } from "node:path";
import * as tf from "../tf.ts";
import { isJoint, type RunConfig, validateConfig } from "../config.ts";
import { describeBackend } from "../backend/mod.ts";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { parseJsonLines } from "../io/jsonl.ts";
import { RunLock } from "../io/run_lock.ts";
import { prepareCorpus } from "../text/dataset.ts";
import { corpusParts, describeParts } from "../text/corpus.ts";
import type { WordPieceTokenizer } from "../text/tokenizer.ts";
import { BatchSampler } from "./batches.ts";
import { holdOut } from "./evaluate.ts";
import {
  type CheckpointState,
  divergenceAdvice,
  exportModels,
  latestCheckpoint,
  loadCheckpoint,
  olderCheckpointHint,
  removePartialFiles,
  saveCheckpoint,
} from "./checkpoint.ts";
import { Pretrainer, type StepGradients, type StepMetrics } from "./pretrain.ts";
import { tokenFrequencies, topTokens } from "../probes/geometry.ts";
import { taskCommand } from "../util/cli.ts";
import { TrainingProbe } from "../probes/training_probe.ts";
import {
  initConfig,
  type InitFolders,
  type InitFrom,
  initTokenizer,
  loadInitWeights,
  readInitFolders,
} from "./init_from.ts";
import { exists } from "../util/fs.ts";

/** One line of metrics.jsonl. */
export interface MetricsRecord {
  /** Optimiser steps taken (the record is of the step that ends here). */
  step: number;
  /** G's MLM cross-entropy over the selected positions (nats), this step's batch, before the update. */
  loss_mlm: number;
  /** D's RTD binary cross-entropy per non-padding token (nats), unweighted by λ; null for MLM. */
  loss_rtd: number | null;
  /** D's accuracy over non-padding tokens at threshold 0.5 (near 1 − replaced_frac means no skill). */
  disc_acc: number | null;
  /** D's recall on replaced tokens at threshold 0.5. */
  disc_acc_replaced: number | null;
  /** ROC-AUC of D's logits (replaced vs original): the headline number, with rtd_gain. */
  disc_auc: number | null;
  /** Binary entropy of the replaced fraction (nats): the loss of a constant predictor. */
  base_rate: number | null;
  /** base_rate − loss_rtd (nats). */
  rtd_gain: number | null;
  /** Fraction of non-padding tokens labelled replaced (a sample equal to the original counts as real). */
  replaced_frac: number | null;
  /** Fraction of selected positions where G's sample equals the original token. */
  gen_acc: number | null;
  /** The learning rate this step used (after warm-up and decay). */
  lr: number;
  /** Global norm of G's gradient before clipping (under ES and joint runs: of the joint loss). */
  grad_norm_g: number;
  /** Global norm of D's gradient (of λ · L_RTD) before clipping; null for joint runs (ES, MLM, `joint`). */
  grad_norm_d: number | null;
  /** Tokens per second over the steps since the last record (probing time left out). */
  tokens_per_s: number;
  /** Training seconds since the run started, across resumes. */
  elapsed_s: number;
  /** Live tensors and their bytes (tf.memory()): flat after warm-up, or the run leaks. */
  tensors?: number;
  /** MiB of live tensors (tf.memory().numBytes). */
  mem_mib?: number;
  /** Device memory the backend holds (GPU backends): cuda's caching allocator reservation. */
  device_mib?: number;
  /** The probes' numbers at probed steps (`tow_*`, `sim_*`), null where a probe had nothing to measure. */
  [probe: string]: number | null | undefined;
}

/** Progress of a running job, for bars and notebooks. */
export interface Progress {
  /** Steps taken. */
  step: number;
  /** Steps the run will take. */
  totalSteps: number;
  /** The last step's numbers. */
  metrics: StepMetrics;
  /** Recent throughput. */
  tokensPerSecond: number;
  /** Training seconds so far, across resumes. */
  elapsedSeconds: number;
  /** Estimated seconds left. */
  etaSeconds: number;
}

/** Options of {@link pretrain}. */
export interface PretrainOptions {
  /**
   * The run's configuration. When resuming the folder's config.json is used instead (with `steps`, below,
   * for a new length); a `config.steps` past the run's is refused there rather than ignored.
   */
  config: RunConfig;
  /** Run folder. */
  outDir: string;
  /** Continue the run in `outDir` from its latest checkpoint. */
  resume?: boolean;
  /** When resuming: the new total number of steps (extends the LR schedule if larger). */
  steps?: number;
  /** Stop after this step even if the schedule goes on (a later --resume continues exactly). */
  until?: number;
  /** Backend name, recorded in config.json. */
  backend?: string;
  /** Called after every step. */
  onProgress?: (p: Progress) => void;
  /** Status messages (data preparation, checkpoints). */
  onMessage?: (msg: string) => void;
  /** Extra numbers to log at step `step` (the probes hook in here); merged into metrics.jsonl. */
  extraMetrics?: (trainer: Pretrainer, step: number) => Record<string, number | null> | undefined;
  /** Called with both gradient sets of every step, before the update. */
  onGradients?: (grads: StepGradients, step: number) => void;
  /** Probe every this many steps (overrides `config.probeEvery`, also when resuming; 0 = off). */
  probeEvery?: number;
  /** Aborting finishes the current step, writes a checkpoint and returns. */
  signal?: AbortSignal;
  /** Skip writing export/ at the end. */
  noExport?: boolean;
  /**
   * Start from HuggingFace model folders instead of random weights (not with `resume`): the sizes and
   * tokenizer come from the folders, the training settings and sharing from `config`.
   */
  initFrom?: InitFrom;
  /**
   * Name the command line's flags in errors (`--resume`, `--out`) rather than these options (`resume`,
   * `outDir`): `deno task pretrain` sets it.
   */
  cli?: boolean;
}

/** What {@link pretrain} returns: the live trainer (caller disposes it), the tokenizer and the last metrics. */
export interface PretrainResult {
  /** The trainer at the last step (model and optimiser state); dispose it when done. */
  trainer: Pretrainer;
  /** The run's tokenizer (also in the folder's tokenizer.json). */
  tokenizer: WordPieceTokenizer;
  /** The last record written to metrics.jsonl, or null when no step was logged. */
  last: MetricsRecord | null;
  /** The run folder. */
  outDir: string;
  /** True when the run ended before `config.steps` (`until`, or an abort); a diverged run throws instead. */
  stoppedEarly: boolean;
}

/** Converts step metrics to the metrics.jsonl record. */
export function toRecord(m: StepMetrics, tokensPerSecond: number, elapsed: number): MetricsRecord {
  return {
    step: m.step,
    loss_mlm: m.lossMlm,
    loss_rtd: m.lossRtd,
    disc_acc: m.discAcc,
    disc_acc_replaced: m.discAccReplaced === null || Number.isNaN(m.discAccReplaced)
      ? null
      : m.discAccReplaced,
    disc_auc: m.discAuc,
    base_rate: m.baseRate,
    rtd_gain: m.rtdGain,
    replaced_frac: m.replacedFrac,
    gen_acc: m.genAcc,
    lr: m.lr,
    grad_norm_g: m.gradNormGenerator,
    grad_norm_d: m.gradNormDiscriminator,
    tokens_per_s: Math.round(tokensPerSecond),
    elapsed_s: Math.round(elapsed * 10) / 10,
  };
}

/** tf.memory()'s live tensors and bytes, and a GPU backend's reserved device memory, in MiB. */
export function memoryRecord(): { tensors: number; mem_mib: number; device_mib?: number } {
  const mem = tf.memory() as tf.MemoryInfo & { numBytesInGPUAllocated?: number };
  const mib = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;
  return {
    tensors: mem.numTensors,
    mem_mib: mib(mem.numBytes),
    ...(typeof mem.numBytesInGPUAllocated === "number"
      ? { device_mib: mib(mem.numBytesInGPUAllocated) }
      : {}),
  };
}

/**
 * Reads a run's metrics.jsonl (`path` is the file or the run folder), skipping a torn last line (a crash
 * mid-append). A missing file is an error naming the path, or no records with `allowMissing` (a run that
 * has not logged yet).
 */
export async function readMetrics(
  path: string,
  opts: { allowMissing?: boolean } = {},
): Promise<MetricsRecord[]> {
  let text: string;
  try {
    if ((await Deno.stat(path)).isDirectory) path = join(path, "metrics.jsonl");
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      if (opts.allowMissing) return [];
      throw new Error(`no metrics at ${path}: expected a run folder or its metrics.jsonl`);
    }
    throw new Error(`cannot read metrics at ${path}: ${(e as Error).message}`);
  }
  return parseJsonLines(text, path) as MetricsRecord[];
}

/**
 * A run's tokenizer and packed rows (trained and packed on first use, then read from the cache), for
 * `tokenizer` ("trained", "bert-base-uncased" or a tokenizer.json path; default the config's): what
 * {@link pretrain} reads, so a parent process can prepare the data before its runs start. The rows include
 * the held-out ones: `holdOut(data, config.heldOutSequences, config.seed)` splits them as the run does.
 */
export function prepareRunData(
  config: RunConfig,
  onMessage?: (msg: string) => void,
  tokenizer: string = config.tokenizer,
): ReturnType<typeof prepareCorpus> {
  return prepareCorpus({
    corpus: config.corpus,
    tokenizer,
    vocabSize: config.tokenizerVocabSize,
    maxLength: config.seqLength,
    seed: config.seed,
    maxChars: config.corpusMaxChars || undefined,
    onProgress: onMessage,
  });
}

/** A backend line without its thread counts (threads split a product's rows, not its sums). */
function kernelsOf(backendLine: string): string {
  return backendLine.replace(/\s*\(\d+ threads?\)/g, "").replace(/, \d+ threads?/g, "");
}

/**
 * A run folder's config.json split into its validated {@link RunConfig} and what the run added beside it
 * (`backend`; `backend_info`, the backend line it started with, which names the BLAS kernels; and
 * `init_from` for a run started from other weights).
 */
export function savedRunConfig(saved: Record<string, unknown>): {
  config: RunConfig;
  extras: Record<string, unknown>;
} {
  const { backend, backend_info, init_from, ...rest } = saved;
  return {
    config: validateConfig(rest as unknown as RunConfig),
    extras: {
      backend: backend ?? null,
      ...(backend_info ? { backend_info } : {}),
      ...(init_from ? { init_from } : {}),
    },
  };
}

/**
 * Runs (or resumes) pre-training in `opts.outDir`, holding the folder's lock ({@link RunLock}) while it
 * writes there: a second process on the same folder is refused.
 */
export async function pretrain(opts: PretrainOptions): Promise<PretrainResult> {
  const lock = new RunLock(opts.outDir);
  // Set while a start has written files but no run exists yet: a refused start takes them back.
  const undo: { start?: () => Promise<void> } = {};
  try {
    return await pretrainLocked(opts, lock, undo);
  } catch (e) {
    await undo.start?.();
    throw e;
  } finally {
    lock.release();
  }
}

/**
 * How to start a new run from the exported model folder `dir` (the hint of a refused `--resume`), in the
 * command line's flags (`cli`) or in `pretrain()`'s options.
 */
async function startFrom(dir: string, cli: boolean): Promise<string> {
  const parent = dirname(dir);
  const both = await exists(join(parent, "discriminator", "config.json")) &&
    await exists(join(parent, "generator", "config.json"));
  if (cli) {
    if (both) return `start a new run from it with --init-from ${parent}`;
    return basename(dir) === "mlm"
      ? `start a new run from it with --init-from ${dir} --sharing mlm`
      : `start a new run from it with --init-discriminator ${dir} --init-generator DIR, or --init-from ${dir} ` +
        "--sharing mlm for a masked-LM model";
  }
  const q = JSON.stringify; // a path as a string literal
  if (both) return `start a new run from it with initFrom: { dir: ${q(parent)} }`;
  return basename(dir) === "mlm"
    ? `start a new run from it with initFrom: { dir: ${q(dir)} } and config.sharing "mlm"`
    : `start a new run from it with initFrom: { discriminator: ${q(dir)}, generator: DIR }, or ` +
      `initFrom: { dir: ${q(dir)} } and config.sharing "mlm" for a masked-LM model`;
}

async function pretrainLocked(
  opts: PretrainOptions,
  lock: RunLock,
  undo: { start?: () => Promise<void> },
): Promise<PretrainResult> {
  const say = opts.onMessage ?? (() => {});
  const out = opts.outDir;
  const configPath = join(out, "config.json");
  // Errors name the command line's flags, or this function's options for a library caller.
  const name = (flag: string, option: string) => (opts.cli ? flag : option);
  const resumeOf = opts.cli ? `--resume ${out}` : `resume of ${out}`;
  let config: RunConfig;
  // On a resume: config.json's other fields, and the run's length before a new --steps.
  let savedExtras: Record<string, unknown> = {};
  let stepsBefore: number | null = null;
  /** What a resume says only once its checkpoint allows it (a shortened run may be refused). */
  const afterResumeCheck: string[] = [];
  if (opts.resume) {
    if (!(await exists(configPath))) {
      // An export folder (discriminator/ + generator/) is the likeliest mix-up: name its run and --init-from.
      if (
        await exists(join(out, "discriminator", "config.json")) &&
        await exists(join(out, "generator", "config.json"))
      ) {
        const run = await exists(join(out, "..", "config.json"))
          ? `continue its run, ${dirname(out)}, or `
          : "";
        throw new Error(
          `${resumeOf}: this folder holds exported models (discriminator/, generator/), not a run; ${run}` +
            (await startFrom(join(out, "discriminator"), opts.cli ?? false)),
        );
      }
      throw new Error(`${resumeOf}: no config.json there (not an rtdlab run folder)`);
    }
    if (opts.initFrom) {
      throw new Error(
        `${name("--init-from", "initFrom")} starts a new run and ${
          name("--resume", "resume")
        } continues one: ` +
          "give one of them",
      );
    }
    let saved: Record<string, unknown>;
    try {
      saved = JSON.parse(await Deno.readTextFile(configPath));
    } catch (e) {
      throw new Error(`${resumeOf}: cannot read ${configPath} (${(e as Error).message})`);
    }
    // An exported model (HF config.json) is a starting point for a new run, not a run to continue; refused
    // before the lock, which would leave its file in a folder meant to be shared.
    if ("architectures" in saved || "model_type" in saved) {
      throw new Error(
        `${resumeOf}: this is an exported model, not a run folder; ${await startFrom(
          out,
          opts.cli ?? false,
        )}`,
      );
    }
    await lock.acquire(); // before anything here is tidied or rewritten
    ({ config, extras: savedExtras } = savedRunConfig(saved));
    if (opts.backend && savedExtras.backend && opts.backend !== savedExtras.backend) {
      say(
        `note: this run was trained on ${savedExtras.backend}; continuing it on ${opts.backend} (the steps ` +
          `from here are not bit for bit those ${savedExtras.backend} would take)`,
      );
    } else if (
      savedExtras.backend_info && kernelsOf(String(savedExtras.backend_info)) !== kernelsOf(describeBackend())
    ) {
      say(
        `note: this run started with "${savedExtras.backend_info}"; continuing with "${describeBackend()}" ` +
          `(other kernels sum in another order: the steps from here are not bit for bit the first machine's)`,
      );
    }
    // A library caller who raised config.steps wants a longer run: say how, rather than stop at the old end.
    const asked = opts.config?.steps;
    if (!opts.cli && opts.steps === undefined && asked !== undefined && asked > config.steps) {
      throw new Error(
        `${resumeOf}: config.steps is ${asked} but the run's is ${config.steps}; a resume keeps the settings ` +
          `in the run's config.json: pass steps: ${asked} to train it to step ${asked}`,
      );
    }
    if (opts.steps !== undefined && opts.steps !== config.steps) {
      afterResumeCheck.push(
        `${opts.steps > config.steps ? "extending" : "shortening"} the run from ${config.steps} to ` +
          `${opts.steps} steps (the LR schedule now decays to step ${opts.steps})`,
      );
      stepsBefore = config.steps;
      config.steps = opts.steps;
    }
  } else {
    config = validateConfig(structuredClone(opts.config));
    // Other files in a new run's folder are left alone, but said, so that a wrong --out shows.
    const others: string[] = [];
    try {
      for await (const e of Deno.readDir(out)) if (e.name !== ".rtdlab-lock") others.push(e.name);
    } catch { /* no folder yet */ }
    if (others.length && !others.some((f) => ["config.json", "metrics.jsonl", "checkpoints"].includes(f))) {
      say(
        `note: ${out} already holds other files (${others.slice(0, 3).join(", ")}${
          others.length > 3 ? ", …" : ""
        }); the run's files go beside them`,
      );
    }
    for (const f of ["config.json", "metrics.jsonl", "checkpoints"]) {
      if (await exists(join(out, f))) {
        throw new Error(
          opts.cli
            ? `${out} already holds a run (${f}): continue it with --resume ${out}, or choose another --out`
            : `outDir ${out} already holds a run (${f}): pass resume: true to continue it, or choose another outDir`,
        );
      }
    }
  }
  if (opts.until !== undefined && opts.until > config.steps) {
    throw new Error(
      `${name("--until", "until")} ${opts.until} is past the run's last step (${config.steps}); give ` +
        `${name("--steps", "steps")} ${opts.until} to train longer`,
    );
  }

  let init: InitFolders | null = null;
  if (opts.initFrom && !opts.resume) {
    init = await readInitFolders(opts.initFrom, config.sharing);
    const presetBackbone = config.backbone;
    config = initConfig(config, init, opts.initFrom.settings);
    if (config.backbone !== presetBackbone) {
      const kind = (b: string) => (b === "electra" ? "an ELECTRA" : "a DeBERTa");
      say(
        `note: the folders hold ${kind(config.backbone)} model; the ${config.preset} preset ` +
          `(${kind(presetBackbone)} one) gives only the training settings`,
      );
    }
    // The model's own vocabulary tokenizes the corpus: written into the run folder and read from there.
    const madeOut = !(await exists(out));
    await Deno.mkdir(out, { recursive: true });
    await initTokenizer(init, config).save(join(out, "tokenizer.json"));
    config.tokenizer = join(out, "tokenizer.json");
    // A refused start leaves no run behind: what --init-from wrote before the run exists is taken back.
    undo.start = async () => {
      await Deno.remove(join(out, "tokenizer.json")).catch(() => {});
      if (madeOut) await Deno.remove(out).catch(() => {}); // only if empty
    };
  }

  const { tokenizer, data, parts } = await prepareRunData(
    config,
    say,
    opts.resume ? join(out, "tokenizer.json") : config.tokenizer,
  );
  if (opts.resume) {
    if (tokenizer.vocabSize !== config.vocabSize) {
      throw new Error(
        `${out}: tokenizer.json has ${tokenizer.vocabSize} tokens but config.json says ${config.vocabSize}`,
      );
    }
  } else config.vocabSize = tokenizer.vocabSize;
  // A held-out set (heldOutSequences > 0) never reaches the sampler; lib/train/evaluate.ts scores it.
  const { train } = holdOut(data, config.heldOutSequences, config.seed);
  say(
    `data: ${data.count} sequences of ${data.length} tokens, vocabulary ${tokenizer.vocabSize}` +
      (train === data ? "" : ` (${data.count - train.count} held out for evaluation)`),
  );
  // A cap keeps whole documents in turn, so a combined corpus can be mostly its longest-document part.
  if (parts) {
    const names = corpusParts(config.corpus) ?? Object.keys(parts);
    say(`corpus mix: ${describeParts(parts, names)}`);
    const total = names.reduce((a, n) => a + (parts[n] ?? 0), 0);
    const scarce = names.filter((n) => (parts[n] ?? 0) < 0.05 * total);
    if (scarce.length > 0 && config.corpusMaxChars > 0) {
      say(
        `note: ${scarce.join(" and ")} ${scarce.length === 1 ? "has" : "have"} under 5% of the text: the ` +
          `corpusMaxChars cap (${
            config.corpusMaxChars.toLocaleString("en")
          }) keeps whole documents in turn, so ` +
          `long ones fill it first; raise it (0 = no cap) for more of ${scarce.length === 1 ? "it" : "them"}`,
      );
    }
  }
  if (train.count < config.batchSize) {
    say(
      `warning: the training data is ${train.count} sequence(s) of ${data.length} tokens, fewer than one batch ` +
        `(${config.batchSize}): every batch repeats them, so the model memorises them rather than learning the ` +
        `language; give it a larger corpus`,
    );
  }
  if (config.warmupSteps >= config.steps) {
    afterResumeCheck.push(
      `warning: warmupSteps ${config.warmupSteps} ≥ steps ${config.steps}: the learning rate never reaches its ` +
        `peak ${config.learningRate} (set --set warmupSteps=N below the run's length)`,
    );
  }
  // A new run says them now; a resumed one once its checkpoint shows the new length is possible.
  if (!opts.resume) afterResumeCheck.splice(0).forEach((m) => say(m));

  const ids = tokenizer.specialIds;
  const trainer = new Pretrainer(config, {
    padId: ids.pad,
    maskId: ids.mask,
    vocabSize: tokenizer.vocabSize,
    isSpecial: (id) => tokenizer.isSpecial(id),
  });
  if (init) {
    try {
      for (const line of loadInitWeights(trainer.model, init).lines) say(line);
    } catch (e) {
      trainer.dispose();
      throw e;
    }
  }
  if (!opts.resume) {
    // Written once the model exists (and any checkpoint loaded): a refused start leaves no run behind.
    await Deno.mkdir(out, { recursive: true });
    await lock.acquire();
    await tokenizer.save(join(out, "tokenizer.json"));
    const initFrom = init
      ? {
        init_from: { discriminator: init.discriminator?.dir ?? null, generator: init.generator?.dir ?? null },
      }
      : {};
    await writeJsonAtomic(configPath, {
      ...config,
      backend: opts.backend ?? null,
      backend_info: kernelsOf(describeBackend()), // without thread counts, which do not change the sums
      ...initFrom,
    });
    undo.start = undefined; // the run exists from here on
  }
  // Probes (lib/probes): tug-of-war on the step's own gradients + average cosines over the top-1000 tokens.
  const probeEvery = opts.probeEvery ?? config.probeEvery ?? 0;
  const probe = probeEvery > 0
    ? new TrainingProbe(trainer.model, {
      every: probeEvery,
      similarityIds: topTokens(tokenFrequencies(train, tokenizer.vocabSize), 1000, (id) =>
        tokenizer.isSpecial(id)),
    })
    : null;
  trainer.onGradients = (grads, step) => {
    probe?.onGradients(grads, step);
    opts.onGradients?.(grads, step);
  };
  // Only probed steps (or a caller's hook) need both gradients at the same parameters.
  trainer.gradientsWanted = (step) => opts.onGradients != null || (probe?.probes(step + 1) ?? false);
  const metricsPath = join(out, "metrics.jsonl");
  // Training seconds of earlier sessions: elapsed_s continues across a resume.
  let elapsedBefore = 0;
  let lastCheckpointStep: number | null = null; // named when a diverged step stops the run
  if (opts.resume) {
    const partial = await removePartialFiles(out);
    if (partial.length) say(`removed ${partial.length} partial file(s) left by an interrupted write`);
    const ckpt = await latestCheckpoint(out);
    // No checkpoint yet (killed before the first): start again from step 0, which the seeded
    // initialisation makes the same run.
    let state: CheckpointState | null;
    try {
      state = ckpt ? await loadCheckpoint(ckpt, trainer).catch((e) => olderCheckpointHint(e, ckpt)) : null;
      if (state && state.step > config.steps) {
        throw new Error(
          `${out} is already at step ${state.step}, past --steps ${config.steps}; a run cannot be shortened below ` +
            `where it is (its earlier weights are in export/ or checkpoints/ if kept)`,
        );
      }
    } catch (e) {
      probe?.dispose();
      trainer.dispose();
      throw e;
    }
    afterResumeCheck.splice(0).forEach((m) => say(m));
    const step = state?.step ?? 0;
    if (state) lastCheckpointStep = step;
    if (stepsBefore !== null) {
      // The new length is the run's from now on: a plain --resume later keeps it. An export of the old
      // end is kept under its step, not left where it would pass for the longer run's.
      await writeJsonAtomic(configPath, { ...config, ...savedExtras });
      const exportDir = join(out, "export");
      if (await exists(exportDir)) {
        let kept = join(out, `export-step-${stepsBefore}`);
        for (let i = 2; await exists(kept); i++) kept = join(out, `export-step-${stepsBefore}-${i}`);
        await Deno.rename(exportDir, kept);
        say(
          `the export of step ${stepsBefore} moved to ${kept} (export/ is written again at step ${config.steps})`,
        );
      }
    }
    // Drop log lines past the checkpoint: the resumed run writes them again, identically.
    const kept = (await readMetrics(metricsPath, { allowMissing: true })).filter((r) => r.step <= step);
    await writeFileAtomic(metricsPath, kept.map((r) => JSON.stringify(r) + "\n").join(""));
    elapsedBefore = state?.elapsedSeconds ?? kept.at(-1)?.elapsed_s ?? 0;
    say(
      ckpt ? `resumed from ${ckpt} (step ${step})` : `no checkpoint yet: starting the run again from step 0`,
    );
  }

  const sampler = new BatchSampler(train, config.batchSize, config.seed);
  const stopAt = Math.min(config.steps, opts.until ?? Infinity);
  const file = await Deno.open(metricsPath, { append: true, create: true });
  const enc = new TextEncoder();
  let last: MetricsRecord | null = null;
  let stoppedEarly = false;
  const t0 = performance.now();
  let windowStart = performance.now(), windowTokens = 0;
  const startStep = trainer.step;
  try {
    while (trainer.step < stopAt) {
      const batch = sampler.batchAt(trainer.step);
      const m = await trainer.trainStep(batch);
      // A diverged step writes nothing: its NaN weights must not replace the checkpoints kept so far.
      const diverged = divergence(m, config, lastCheckpointStep);
      if (diverged) throw new Error(diverged);
      windowTokens += batch.batch * batch.length;
      const now = performance.now();
      const elapsed = (now - t0) / 1000;
      const tps = windowTokens / Math.max(1e-9, (now - windowStart) / 1000);
      const done = trainer.step - startStep;
      opts.onProgress?.({
        step: trainer.step,
        totalSteps: stopAt,
        metrics: m,
        tokensPerSecond: tps,
        elapsedSeconds: elapsed,
        etaSeconds: (elapsed / done) * (stopAt - trainer.step),
      });
      const probed = await probe?.collect(trainer.step) ?? null;
      // A probed step is always logged, whatever logEvery says.
      if (trainer.step % config.logEvery === 0 || trainer.step === stopAt || probed) {
        last = {
          ...toRecord(m, tps, elapsedBefore + elapsed),
          ...memoryRecord(),
          ...probed,
          ...(opts.extraMetrics?.(trainer, trainer.step) ?? {}),
        };
        await file.write(enc.encode(JSON.stringify(last) + "\n"));
        windowStart = probed ? performance.now() : now; // keep probe time out of tokens_per_s
        windowTokens = 0;
      }
      await yieldToEventLoop(); // lets Ctrl-C reach opts.signal now, not at the next file write
      const aborted = opts.signal?.aborted ?? false;
      if (
        (config.checkpointEvery > 0 && trainer.step % config.checkpointEvery === 0) ||
        trainer.step === stopAt || aborted
      ) {
        await saveCheckpoint(out, trainer, 2, elapsedBefore + (performance.now() - t0) / 1000);
        lastCheckpointStep = trainer.step;
      }
      if (aborted) {
        stoppedEarly = true;
        say(
          `stopped at step ${trainer.step}; checkpoint written — continue with ${
            taskCommand(`pretrain --resume ${out}`)
          }`,
        );
        break;
      }
    }
  } catch (e) {
    trainer.dispose(); // the caller never receives it (a diverged step, a failed write)
    throw e;
  } finally {
    file.close();
    probe?.dispose();
  }
  if (!stoppedEarly && trainer.step === config.steps && !opts.noExport) {
    const dirs = await exportModels(trainer, join(out, "export"), tokenizer);
    say(`exported ${dirs.join(", ")}`);
  }
  return { trainer, tokenizer, last, outDir: out, stoppedEarly: stoppedEarly || trainer.step < config.steps };
}

/**
 * Why the step that produced `m` ends the run (a loss that is NaN or infinite: training diverged), or
 * null. Once a loss is not finite the weights are too, and every later step, checkpoint and export
 * would be of them.
 */
export function divergence(m: StepMetrics, c: RunConfig, lastCheckpointStep: number | null): string | null {
  const bad = [["the generator's MLM loss", m.lossMlm], ["the discriminator's RTD loss", m.lossRtd]]
    .filter(([, v]) => v !== null && !Number.isFinite(v))
    .map(([name, v]) => `${name} is ${v}`);
  if (bad.length === 0) return null;
  const kept = lastCheckpointStep === null
    ? "no checkpoint had been written yet"
    : `its checkpoint of step ${lastCheckpointStep} and the metrics before step ${m.step} are kept`;
  return `step ${m.step}: ${bad.join(" and ")}: training diverged, so the run stops here (${kept}; ` +
    `nothing of this step was written). ${divergenceAdvice(c)}`;
}

/** True when the run trains decoupled (helper for reports). */
export function describeTraining(c: RunConfig): string {
  if (c.sharing === "mlm") return "MLM only";
  return `${c.sharing.toUpperCase()}, ${
    isJoint(c) ? "joint loss" : "decoupled G then D steps"
  }, λ=${c.rtdWeight}`;
}

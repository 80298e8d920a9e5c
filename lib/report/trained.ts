/**
 * Opening a finished (or interrupted) run folder for inspection: its config, tokenizer and the model at
 * the latest checkpoint, in a live {@link Pretrainer} — what notebooks and the demo report need to look
 * inside a trained generator and discriminator. Kept apart from lib/report/mod.ts, which loads no model
 * code. Start a backend first (`initBackend`).
 *
 * ```ts
 * await initBackend("wasm");
 * const { trainer, tokenizer } = await openRun("runs/demo/es");
 * const rows = await discriminatorView(trainer.model, "The cat sat on the mat.", { tokenizer });
 * trainer.dispose();
 * ```
 *
 * @module
 */

import { dirname, join } from "node:path";
import type { RunConfig } from "../config.ts";
import { WordPieceTokenizer } from "../text/tokenizer.ts";
import { latestCheckpoint, loadCheckpoint } from "../train/checkpoint.ts";
import { Pretrainer } from "../train/pretrain.ts";
import type { PackedSequences } from "../train/batches.ts";
import { prepareRunData, readMetrics, savedRunConfig } from "../train/run.ts";
import { tokenizeAndPack } from "../text/dataset.ts";
import {
  EVALUATE_BATCH_SIZE,
  EVALUATE_TRAIN_SEQUENCES,
  type EvaluateOptions,
  evaluateRtd,
  holdOut,
  type RtdEvaluation,
  sampleSequences,
  sequenceBatches,
} from "../train/evaluate.ts";
import { corpusParts, loadCorpus, partShares } from "../text/corpus.ts";
import { removeRunFolder } from "../io/run_lock.ts";
import { exists } from "../util/fs.ts";

/** A run folder opened at its latest checkpoint. */
export interface OpenedRun {
  /** The trainer holding the model (and optimiser state) at the checkpoint; dispose it when done. */
  trainer: Pretrainer;
  /** The run's tokenizer (its tokenizer.json). */
  tokenizer: WordPieceTokenizer;
  /** The run's validated config (its config.json). */
  config: RunConfig;
  /** The checkpoint's step. */
  step: number;
  /** The checkpoint folder. */
  checkpoint: string;
}

/** Run folders (holding config.json and checkpoints/) one or two levels below `dir`, sorted. */
async function runFoldersIn(dir: string): Promise<string[]> {
  const isRun = (d: string) => Deno.stat(join(d, "checkpoints")).then((s) => s.isDirectory, () => false);
  const children = async (d: string) => {
    const out: string[] = [];
    try {
      for await (const e of Deno.readDir(d)) if (e.isDirectory) out.push(join(d, e.name));
    } catch { /* not a folder */ }
    return out;
  };
  const found: string[] = [];
  for (const a of await children(dir)) {
    if (await isRun(a)) found.push(a);
    else for (const b of await children(a)) if (await isRun(b)) found.push(b);
  }
  return found.sort();
}

/** Whether `dir` holds an export's two model folders (export/, export-step-N/). */
async function isExportFolder(dir: string): Promise<boolean> {
  return (await exists(join(dir, "discriminator", "config.json"))) &&
    (await exists(join(dir, "generator", "config.json")));
}

/** Opens `dir` (config.json, tokenizer.json, latest checkpoint); throws naming what is missing. */
export async function openRun(dir: string): Promise<OpenedRun> {
  let saved: Record<string, unknown>;
  try {
    saved = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
  } catch (e) {
    // A sweep's or comparison's folder holds runs a level or two down: name a few.
    const inside = await runFoldersIn(dir);
    throw new Error(
      inside.length
        ? `${dir} is not a run folder (no config.json) but holds runs, e.g. ${
          inside.slice(0, 4).join(", ")
        }` +
          `${inside.length > 4 ? ` (${inside.length} in all)` : ""}`
        : await isExportFolder(dir)
        ? `${dir} holds exported models (discriminator/, generator/), not a run: ${
          (await exists(join(dir, "..", "config.json")))
            ? `open the run it came from, ${dirname(dir)}`
            : `start a run from it with --init-from ${dir}`
        }`
        : `${dir}: cannot read config.json (${(e as Error).message}); is it an rtdlab run folder?`,
    );
  }
  // An exported model's config.json is HuggingFace's: its weights open with readHfModelFolder.
  if ("architectures" in saved || "model_type" in saved) {
    throw new Error(
      `${dir} is an exported model (HuggingFace config.json), not a run folder: open the run itself, or ` +
        `read the model with readHfModelFolder / start a run from it with --init-from`,
    );
  }
  const { config } = savedRunConfig(saved);
  const tokenizer = await WordPieceTokenizer.load(join(dir, "tokenizer.json"));
  const checkpoint = await latestCheckpoint(dir);
  if (!checkpoint) throw new Error(`${dir}: the run has no checkpoint yet`);
  const ids = tokenizer.specialIds;
  const trainer = new Pretrainer(config, {
    padId: ids.pad,
    maskId: ids.mask,
    vocabSize: tokenizer.vocabSize,
    isSpecial: (id) => tokenizer.isSpecial(id),
  });
  try {
    const state = await loadCheckpoint(checkpoint, trainer);
    return { trainer, tokenizer, config, step: state.step, checkpoint };
  } catch (e) {
    trainer.dispose();
    throw e;
  }
}

/** Options of {@link isCompleteRun}. */
export interface CompleteRunOptions {
  /** Also require the probe metrics (tow_* for RTD runs, sim_*). */
  probe?: boolean;
  /** Require a run at least this many steps long. */
  minSteps?: number;
  /** Require these config.json values (dotted keys reach nested ones; compared as strings). */
  config?: Record<string, unknown>;
}

/**
 * Whether `dir` holds a finished run: metrics logged up to the config's last step and a checkpoint, with
 * the extra requirements of `opts`.
 */
export async function isCompleteRun(dir: string, opts: CompleteRunOptions = {}): Promise<boolean> {
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
  } catch {
    return false;
  }
  const steps = typeof config.steps === "number" ? config.steps : NaN;
  if (opts.minSteps !== undefined && !(steps >= opts.minSteps)) return false;
  for (const [k, want] of Object.entries(opts.config ?? {})) {
    let v: unknown = config;
    for (const p of k.split(".")) {
      v = v && typeof v === "object" ? (v as Record<string, unknown>)[p] : undefined;
    }
    if (v === undefined || String(v) !== String(want)) return false;
  }
  const m = await readMetrics(join(dir, "metrics.jsonl"), { allowMissing: true });
  if (!m.length || m[m.length - 1].step !== steps) return false;
  if (opts.probe && config.sharing !== "mlm" && !m.some((r) => typeof r.tow_cos === "number")) return false;
  if (opts.probe && !m.some((r) => typeof r.sim_gen === "number")) return false;
  return (await latestCheckpoint(dir)) !== null;
}

/** One run for {@link trainRuns}: its folder and the `deno task pretrain` flags (without `--out`). */
export interface RunSpec {
  /** The run folder (`--out`). */
  out: string;
  /** `deno task pretrain` flags, without `--out`. */
  args: string[];
}

/** Options of {@link trainRuns}. */
export interface TrainRunsOptions {
  /** Runs at a time (default: the number of cores; wasm trains on one thread per process). */
  parallel?: number;
  /** Called when a run starts and ends. */
  onMessage?: (msg: string) => void;
}

/**
 * Trains runs as subprocesses of tasks/pretrain.ts, `parallel` at a time, starting each in a fresh folder
 * (an existing folder is deleted first: check {@link isCompleteRun} before, to reuse finished runs). Throws
 * with the end of the failing run's log.
 */
export async function trainRuns(specs: RunSpec[], opts: TrainRunsOptions = {}): Promise<void> {
  const script = new URL("../../tasks/pretrain.ts", import.meta.url).pathname;
  const say = opts.onMessage ?? (() => {});
  const queue = [...specs];
  const parallel = Math.max(1, opts.parallel ?? navigator.hardwareConcurrency ?? 2);
  await Promise.all(
    Array.from({ length: Math.min(parallel, specs.length) }, async () => {
      for (let s = queue.shift(); s; s = queue.shift()) {
        await removeRunFolder(s.out);
        const t0 = performance.now();
        say(`training ${s.out}`);
        await runDenoScript(script, ["--out", s.out, ...s.args], `${s.out} failed`);
        say(`trained ${s.out} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      }
    }),
  );
}

/**
 * Runs a task (`tasks/NAME.ts ARGS`, from the project root) unless `done()` already says its result is
 * there, printing `say` first: notebooks read the demo's and the quick comparison's runs, and make them
 * with the very command a user would run, so what they show is that command's result, not a stand-in.
 * Throws with the end of the task's log.
 */
export async function runTaskUnlessDone(
  done: () => Promise<boolean>,
  task: string,
  args: string[],
  say: (msg: string) => void = () => {},
): Promise<void> {
  if (await done()) return;
  const root = new URL("../../", import.meta.url).pathname;
  const t0 = performance.now();
  say(`running \`deno task ${[task, ...args].join(" ")}\` ...`);
  await runDenoScript(join(root, "tasks", `${task}.ts`), args, `deno task ${task} failed`, root);
  say(`deno task ${task}: done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

/** Runs `deno run -A script args` (output discarded); throws `failure` with the end of its stderr. */
async function runDenoScript(script: string, args: string[], failure: string, cwd?: string): Promise<void> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-webgpu", script, ...args],
    cwd,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`${failure}:\n${new TextDecoder().decode(r.stderr).slice(-3000)}`);
}

/** Options of {@link evaluateRunDir}. */
export interface EvaluateRunOptions extends EvaluateOptions {
  /** Sequences per forward pass (default {@link EVALUATE_BATCH_SIZE}, 16). */
  batchSize?: number;
  /**
   * For a run without a held-out set (`heldOutSequences` 0): how many of its training sequences to
   * score, a seeded choice (default 64). A run with one always scores all of it.
   */
  sequences?: number;
  /** Data preparation messages. */
  onMessage?: (msg: string) => void;
  /**
   * Score text of the corpus the run never saw instead of its held-out set ({@link unseenSequences}:
   * `sequences` of them, default 256; `part` picks one part of a combined corpus).
   */
  unseen?: { part?: string };
  /**
   * Another run folder whose generator (at its latest checkpoint) makes the replacements, so that several
   * runs' discriminators are scored on one task ({@link EvaluateOptions.generator}). It must have the same
   * tokenizer and data settings, so that the scored sequences are held out (or not) for it as for this run.
   */
  generatorFrom?: string;
}

/** What {@link evaluateRunDir} returns: the numbers, the step they are from, and on what data. */
export interface RunEvaluation extends RtdEvaluation {
  /** The checkpoint's step. */
  step: number;
  /** True when the sequences were kept out of training; false when they are a sample of its data. */
  heldOut: boolean;
  /** Set when the sequences came from the text the run's `corpusMaxChars` cap left out ({@link unseenSequences}). */
  unseen?: UnseenText;
  /** The run whose generator made the replacements and its step, when not this run's own. */
  generatorFrom?: { dir: string; step: number };
}

/** The data settings two runs must share for one's generator to corrupt the other's evaluation sequences. */
export const SHARED_DATA_KEYS = [
  "corpus",
  "corpusMaxChars",
  "tokenizer",
  "tokenizerVocabSize",
  "seqLength",
  "seed",
  "heldOutSequences",
] as const;

/** Where {@link unseenSequences} took its sequences from. */
export interface UnseenText {
  /** Characters of text the cap left out (of `part` only, when given). */
  chars: number;
  /** Characters per part of a combined corpus, or null for one corpus. */
  parts: Record<string, number> | null;
  /** The one part scored, or null for all of them. */
  part: string | null;
  /** Sequences that text packs into (the scored ones are a seeded choice of these). */
  available: number;
}

/** Options of {@link unseenSequences}. */
export interface UnseenOptions {
  /** How many sequences to score, a seeded choice (default 256; all when there are fewer). */
  sequences?: number;
  /** Seed of the choice (and of the packing's A/B split points). Default 0. */
  seed?: number;
  /** Only documents of this part of a combined corpus (`brown` of `gutenberg+brown+sotu`). */
  part?: string;
}

/**
 * Sequences from text of a run's corpus that it never saw: what its `corpusMaxChars` cap left out (the rest
 * of the document the cap cut, then every later document), tokenized with the run's tokenizer and packed as
 * training packs, `opts.sequences` of them chosen by `opts.seed`. Not its held-out set: other documents, so
 * on a combined corpus another mix (12 M characters of `gutenberg+brown+sotu` keep Gutenberg and leave Brown
 * and the State of the Union). Throws when the run had no cap or the cap left nothing out.
 */
export async function unseenSequences(
  config: RunConfig,
  tokenizer: WordPieceTokenizer,
  opts: UnseenOptions = {},
): Promise<{ sequences: PackedSequences; unseen: UnseenText }> {
  const corpus = config.corpus;
  if (!(config.corpusMaxChars > 0)) {
    throw new Error(
      `this run trained on all of "${corpus}" (corpusMaxChars 0): none of it is unseen; its held-out ` +
        "sequences are the text it never trained on",
    );
  }
  const parts = corpusParts(corpus);
  if (opts.part !== undefined && !parts?.includes(opts.part)) {
    throw new Error(
      parts
        ? `no part "${opts.part}" in "${corpus}" (its parts: ${parts.join(", ")})`
        : `--part needs a combined corpus (a+b); "${corpus}" is one`,
    );
  }
  let docs = await loadCorpus(corpus, { maxChars: config.corpusMaxChars, beyondCap: true });
  const shares = partShares(docs);
  if (opts.part !== undefined) docs = docs.filter((d) => d.part === opts.part);
  const chars = docs.reduce((a, d) => a + d.text.length, 0);
  if (chars === 0) {
    throw new Error(
      `the cap of ${config.corpusMaxChars.toLocaleString("en")} characters keeps all of ` +
        `${opts.part === undefined ? `"${corpus}"` : `"${corpus}"'s ${opts.part}`}: no text of it is unseen`,
    );
  }
  const seed = opts.seed ?? 0;
  const packed = tokenizeAndPack(docs, tokenizer, { maxLength: config.seqLength, seed });
  return {
    sequences: sampleSequences(packed, opts.sequences ?? 256, seed),
    unseen: { chars, parts: shares, part: opts.part ?? null, available: packed.count },
  };
}

/**
 * Opens the run in `dir` at its latest checkpoint and {@link evaluateRtd}s it (T = 1 unless
 * `opts.temperature` says otherwise) on its held-out sequences, or on a seeded sample of its
 * training sequences when it has none (then `heldOut` is false). Start a backend first.
 */
export async function evaluateRunDir(dir: string, opts: EvaluateRunOptions = {}): Promise<RunEvaluation> {
  const run = await openRun(dir);
  let other: OpenedRun | null = null;
  try {
    if (opts.generatorFrom !== undefined) {
      if (run.config.sharing === "mlm") {
        throw new Error(
          `${dir} is an MLM run: it has no discriminator to score on another generator's samples`,
        );
      }
      other = await openRun(opts.generatorFrom);
      if (JSON.stringify(other.tokenizer.toJSON()) !== JSON.stringify(run.tokenizer.toJSON())) {
        throw new Error(`the generator's run ${opts.generatorFrom}: its tokenizer differs from ${dir}'s`);
      }
      const differ = SHARED_DATA_KEYS.filter((k) => other!.config[k] !== run.config[k]);
      if (differ.length) {
        throw new Error(
          `the generator's run ${opts.generatorFrom}: its data settings differ from ${dir}'s (` +
            differ.map((k) => `${k} ${other!.config[k]} vs ${run.config[k]}`).join(", ") +
            `), so the scored sequences would not be held out (or not) for both alike`,
        );
      }
    }
    const { sequences, heldOut, unseen } = opts.unseen
      ? {
        heldOut: true,
        ...await unseenSequences(run.config, run.tokenizer, {
          sequences: opts.sequences,
          seed: opts.seed,
          part: opts.unseen.part,
        }),
      }
      : { ...await evaluationSequences(run, dir, opts), unseen: undefined };
    const evaluation = await evaluateRtd(
      run.trainer,
      sequenceBatches(sequences, opts.batchSize ?? EVALUATE_BATCH_SIZE),
      { ...opts, generator: other?.trainer },
    );
    return {
      ...evaluation,
      step: run.step,
      heldOut,
      ...(unseen ? { unseen } : {}),
      ...(other ? { generatorFrom: { dir: opts.generatorFrom!, step: other.step } } : {}),
    };
  } finally {
    run.trainer.dispose();
    other?.trainer.dispose();
  }
}

/**
 * The sequences an opened run is judged on: its held-out set, or for a run without one a seeded sample of
 * `opts.sequences` (default 64, at most half) of its training sequences (`heldOut` false); `train` is the
 * rest.
 */
export async function evaluationSequences(
  run: OpenedRun,
  dir: string,
  opts: Pick<EvaluateRunOptions, "sequences" | "onMessage"> = {},
): Promise<{ sequences: PackedSequences; heldOut: boolean; train: PackedSequences }> {
  const c = run.config;
  // The very preparation training ran (lib/train/run.ts), so the held-out rows are the ones it withheld.
  const prepare = (tokenizer: string) => prepareRunData(c, opts.onMessage, tokenizer);
  // The corpus cache is keyed by how the tokenizer was made: "trained" hits the entry training wrote.
  // Use it only when it is this run's tokenizer (a changed cache would retrain another one).
  const same = (t: { toJSON(): unknown }) =>
    JSON.stringify(t.toJSON()) === JSON.stringify(run.tokenizer.toJSON());
  let prepared = c.tokenizer === "trained" ? await prepare("trained") : null;
  if (!prepared || !same(prepared.tokenizer)) prepared = await prepare(join(dir, "tokenizer.json"));
  const data = prepared.data;
  const heldOut = c.heldOutSequences > 0;
  const half = Math.floor(data.count / 2);
  if (!heldOut && opts.sequences !== undefined && opts.sequences > half) {
    opts.onMessage?.(
      `note: ${opts.sequences} sequences asked, ${half} scored: at most half of the run's ${data.count} ` +
        `sequences (the rest stay its training sample)`,
    );
  }
  const split = heldOut
    ? holdOut(data, c.heldOutSequences, c.seed)
    : holdOut(data, Math.min(opts.sequences ?? EVALUATE_TRAIN_SEQUENCES, half), c.seed);
  return { sequences: split.heldOut, heldOut, train: split.train };
}

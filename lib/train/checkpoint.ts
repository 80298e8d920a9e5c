/**
 * Checkpoints and export.
 *
 * A checkpoint is a folder `RUN/checkpoints/step-0000100/` holding `model.safetensors` (every
 * parameter by name), `optimizer.safetensors` (Adam moments by parameter name) and `state.json`
 * (step, seed, RNG scheme, vocabulary size). It is written into a temporary folder and renamed into
 * place, then `RUN/checkpoints/latest.json` is replaced atomically: a crash leaves the previous
 * checkpoint intact. RNG state: every draw of step s comes from generators seeded by (seed, s)
 * (counter-based, like JAX's keys), so (seed, step) *is* the full random state.
 *
 * Export writes plain HuggingFace model folders: `discriminator/` (ElectraForPreTraining names, with
 * GDES's E_D = E_G + E_Δ merged into ordinary tables), `generator/` (ElectraForMaskedLM names) or
 * `mlm/` for the baseline, each complete on its own: `config.json`, `model.safetensors` and the
 * tokenizer (`tokenizer.json`, `vocab.txt`, `tokenizer_config.json`, `special_tokens_map.json`), so
 * `AutoTokenizer`/`AutoModel.from_pretrained(folder)`, `deno task finetune --checkpoint folder` and
 * `deno task pretrain --init-from` work on the folders alone.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import * as tf from "../tf.ts";
import { type HostTensor, loadSafetensors, saveSafetensors } from "../io/safetensors.ts";
import { writeJsonAtomic } from "../io/atomic.ts";
import type { Pretrainer } from "./pretrain.ts";
import type { WordPieceTokenizer } from "../text/tokenizer.ts";
import { writeHfTokenizerFiles } from "../text/hf_files.ts";

/** Contents of state.json. */
export interface CheckpointState {
  /** File format tag. */
  format: "rtdlab-checkpoint-1";
  /** Training steps taken. */
  step: number;
  /** The run's seed. */
  seed: number;
  /** How the next step's random draws are derived: from (seed, step), so resume needs no RNG state. */
  rng: { scheme: "per-step-derived"; seed: number; nextStep: number };
  /** Vocabulary size the weights were built for (checked on resume). */
  vocabSize: number;
  /** Embedding sharing mode (checked on resume). */
  sharing: string;
  /** AdamW step counts per optimiser ("generator", "discriminator" or "joint"). */
  optimizerSteps: Record<string, number>;
  /** ISO time the checkpoint was written. */
  savedAt: string;
  /** Training seconds up to this step, over every session of the run (absent in older checkpoints). */
  elapsedSeconds?: number;
}

const FORMAT = "rtdlab-checkpoint-1";

/** What usually prevents a divergence, with the run's own values (both divergence errors end with it). */
export function divergenceAdvice(c: { learningRate: number; warmupSteps: number }): string {
  const steps = c.warmupSteps === 1 ? "step" : "steps";
  return `A smaller learning rate (now ${c.learningRate}) or a longer warm-up (now ${c.warmupSteps} ${steps}) ` +
    "usually prevents it; a resume keeps the run's settings, so start a new run with them changed.";
}

function allFinite(data: Float32Array | Int32Array): boolean {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return false;
  return true;
}

/**
 * Writes a checkpoint of `trainer` under `runDir/checkpoints/`, keeping the newest `keep`, and records
 * `elapsedSeconds` (the run's training time so far) in its state. Returns its folder. Throws, writing
 * nothing, when a weight is NaN or infinite (training diverged).
 */
export async function saveCheckpoint(
  runDir: string,
  trainer: Pretrainer,
  keep = 2,
  elapsedSeconds?: number,
): Promise<string> {
  const root = join(runDir, "checkpoints");
  const name = `step-${String(trainer.step).padStart(7, "0")}`;
  const final = join(root, name);
  const tmp = join(root, `.${name}.${Deno.pid}.tmp`);
  const weights = await trainer.model.params.toHost();
  // A loss measures the weights before its step's update, so an update can blow them up unseen: such
  // weights never become a checkpoint (resuming from one would only repeat the divergence).
  const bad = [...weights].filter(([, t]) => !allFinite(t.data)).map(([k]) => k);
  if (bad.length) {
    const which = bad.length > 3
      ? `${bad.slice(0, 3).join(", ")} and ${bad.length - 3} more`
      : bad.join(", ");
    throw new Error(
      `step ${trainer.step}: ${which} ${bad.length === 1 ? "holds" : "hold"} NaN or infinite values: ` +
        "training diverged, and no checkpoint of these weights is written (checkpoints/latest.json still " +
        `names the last one). ${divergenceAdvice(trainer.config)}`,
    );
  }
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await Deno.mkdir(tmp, { recursive: true });
  const meta = { format: FORMAT, step: String(trainer.step) };
  await saveSafetensors(join(tmp, "model.safetensors"), weights, meta);
  const opt = new Map<string, HostTensor>();
  const optimizerSteps: Record<string, number> = {};
  for (const [role, o] of Object.entries(trainer.optimizers)) {
    if (!o) continue;
    for (const [k, v] of await o.toHost(`${role}/`)) opt.set(k, v);
    optimizerSteps[role] = o.step;
  }
  await saveSafetensors(join(tmp, "optimizer.safetensors"), opt, meta);
  const state: CheckpointState = {
    format: FORMAT,
    step: trainer.step,
    seed: trainer.config.seed,
    rng: { scheme: "per-step-derived", seed: trainer.config.seed, nextStep: trainer.step },
    vocabSize: trainer.config.vocabSize,
    sharing: trainer.config.sharing,
    optimizerSteps,
    savedAt: new Date().toISOString(),
    ...(elapsedSeconds === undefined ? {} : { elapsedSeconds: Math.round(elapsedSeconds * 10) / 10 }),
  };
  await writeJsonAtomic(join(tmp, "state.json"), state);
  await Deno.remove(final, { recursive: true }).catch(() => {});
  await Deno.rename(tmp, final);
  await writeJsonAtomic(join(root, "latest.json"), { checkpoint: name, step: trainer.step });
  // Prune older checkpoints only after the new one is in place.
  const all = [];
  for await (const e of Deno.readDir(root)) if (e.isDirectory && /^step-\d+$/.test(e.name)) all.push(e.name);
  all.sort();
  for (const old of all.slice(0, Math.max(0, all.length - keep))) {
    await Deno.remove(join(root, old), { recursive: true });
  }
  return final;
}

/**
 * Removes what a run killed mid-write leaves behind: temporary checkpoint folders, temporary export
 * folders and the temporary files of atomic writes (`*.tmp`). None of them is ever read; this only
 * tidies the folder. Returns the paths removed. Call it only when no other process writes the run.
 */
export async function removePartialFiles(runDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const dir of [runDir, join(runDir, "checkpoints")]) {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      continue; // no such folder yet
    }
    for (const e of entries) {
      if (!e.name.endsWith(".tmp")) continue;
      await Deno.remove(join(dir, e.name), { recursive: true });
      removed.push(join(dir, e.name));
    }
  }
  return removed;
}

/**
 * The newest checkpoint folder of a run, or null when it has none. `checkpoints/latest.json` names it; a
 * run killed between writing its first checkpoint and that index has none, and then the newest `step-*`
 * folder is it (each is renamed into place whole). An index that cannot be read, or that names a missing
 * folder, is an error naming the file: a resume from nothing would overwrite the run's metrics.
 */
export async function latestCheckpoint(runDir: string): Promise<string | null> {
  const root = join(runDir, "checkpoints");
  const index = join(root, "latest.json");
  const stepFolders = async () =>
    (await Array.fromAsync(Deno.readDir(root)))
      .filter((e) => e.isDirectory && /^step-\d+$/.test(e.name)).map((e) => e.name).sort();
  const isDir = (p: string) => Deno.stat(p).then((s) => s.isDirectory, () => false);
  if (!(await isDir(root))) return null;
  // Twice at most: a live run may write a new index and prune the folder the first read named.
  for (let attempt = 0;; attempt++) {
    let text: string;
    try {
      text = await Deno.readTextFile(index);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        throw new Error(`cannot read ${index}: ${(e as Error).message}`);
      }
      const steps = await stepFolders();
      return steps.length ? join(root, steps[steps.length - 1]) : null;
    }
    const corrupt = async (why: string) => {
      const steps = await stepFolders();
      return new Error(
        `corrupt checkpoint index ${index}: ${why}. ${
          steps.length
            ? `The run's checkpoints are ${steps.join(", ")}: write {"checkpoint": "${steps.at(-1)}"} there`
            : "The run has no checkpoint folder: remove the file"
        }, or move checkpoints/ away to train the run again from step 0`,
      );
    };
    let checkpoint: unknown;
    try {
      checkpoint = JSON.parse(text).checkpoint;
    } catch (e) {
      throw await corrupt(`cannot parse it (${(e as Error).message})`);
    }
    if (typeof checkpoint !== "string" || !/^step-\d+$/.test(checkpoint)) {
      throw await corrupt(
        `"checkpoint" should name a step-NNNNNNN folder, got ${JSON.stringify(checkpoint)}`,
      );
    }
    if (await isDir(join(root, checkpoint))) return join(root, checkpoint);
    if (attempt > 0) throw await corrupt(`it names ${checkpoint}, which is not there`);
  }
}

/** A sound checkpoint that belongs to another run (vocabulary, sharing mode): every one of the run's would fail alike. */
export class CheckpointMismatch extends Error {}

/**
 * Rethrows `e`, the error of loading checkpoint folder `failed`, with the way back to an older one of the
 * same run when there is one: a damaged newest checkpoint need not cost the whole run. A mismatch with
 * the run's config is rethrown as it is (an older checkpoint would not match either).
 */
export async function olderCheckpointHint(e: unknown, failed: string): Promise<never> {
  if (e instanceof CheckpointMismatch) throw e;
  const root = dirname(failed);
  const older = (await Array.fromAsync(Deno.readDir(root)).catch(() => []))
    .filter((f) => f.isDirectory && /^step-\d+$/.test(f.name) && f.name < basename(failed))
    .map((f) => f.name).sort();
  if (!older.length) throw e;
  throw new Error(
    `${(e as Error).message}. The run's older checkpoints: ${
      older.join(", ")
    }: to resume from the newest, write ` +
      `{"checkpoint": "${older.at(-1)}"} into ${join(root, "latest.json")}`,
  );
}

/** Restores parameters, optimiser moments and the step counter from `dir`; errors name the file and the problem. */
export async function loadCheckpoint(dir: string, trainer: Pretrainer): Promise<CheckpointState> {
  let state: CheckpointState;
  const statePath = join(dir, "state.json");
  let text: string;
  try {
    text = await Deno.readTextFile(statePath);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new Error(`cannot read checkpoint ${statePath}: ${(e as Error).message}`);
    }
    // Not a checkpoint at all: a run folder (say which of its checkpoints to load) or a wrong path.
    const latest = await latestCheckpoint(dir);
    throw new Error(
      latest
        ? `${dir} is a run folder, not a checkpoint: load one of its checkpoints, e.g. the latest, ${latest} ` +
          `(latestCheckpoint(dir))`
        : `no checkpoint at ${dir} (no state.json there)`,
    );
  }
  try {
    state = JSON.parse(text);
  } catch (e) {
    throw new Error(`corrupt checkpoint: cannot parse ${statePath}: ${(e as Error).message}`);
  }
  if (state.format !== FORMAT) throw new Error(`corrupt checkpoint: ${statePath} has format ${state.format}`);
  if (state.vocabSize !== trainer.config.vocabSize) {
    throw new CheckpointMismatch(
      `checkpoint ${dir} has a ${state.vocabSize}-token vocabulary but the run's tokenizer has ${trainer.config.vocabSize}`,
    );
  }
  if (state.sharing !== trainer.config.sharing) {
    throw new CheckpointMismatch(
      `checkpoint ${dir} was trained with sharing ${state.sharing}, not ${trainer.config.sharing}`,
    );
  }
  const model = await loadSafetensors(join(dir, "model.safetensors"));
  trainer.model.params.assignFrom(model.tensors, join(dir, "model.safetensors"));
  const opt = await loadSafetensors(join(dir, "optimizer.safetensors"));
  for (const [role, o] of Object.entries(trainer.optimizers)) {
    if (!o) continue;
    const steps = state.optimizerSteps[role];
    if (steps === undefined) throw new Error(`corrupt checkpoint: ${statePath} has no optimizer "${role}"`);
    o.assignFrom(opt.tensors, `${role}/`, steps, join(dir, "optimizer.safetensors"));
  }
  trainer.step = state.step;
  return state;
}

/**
 * Writes plain HuggingFace model folders into `outDir`: the discriminator with E_D = E_G + E_Δ merged
 * (GDES) or its own/shared tables, and the generator (or the MLM baseline), each with the run's
 * tokenizer files. Returns the folders written. All or nothing: the models go to a temporary folder that
 * then replaces `outDir`, so a process killed mid-export leaves the previous export (or none), never a
 * model without its config.
 */
export async function exportModels(
  trainer: Pretrainer,
  outDir: string,
  tokenizer: WordPieceTokenizer,
): Promise<string[]> {
  const tmp = `${outDir}.${Deno.pid}.tmp`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  const written = (await writeExport(trainer, tmp, tokenizer)).map((d) => join(outDir, basename(d)));
  const old = `${outDir}.old.${Deno.pid}.tmp`;
  const hadOld = await Deno.rename(outDir, old).then(() => true, () => false);
  await Deno.rename(tmp, outDir);
  if (hadOld) await Deno.remove(old, { recursive: true });
  return written;
}

/** Writes the exported models into `outDir` (see {@link exportModels}). */
async function writeExport(
  trainer: Pretrainer,
  outDir: string,
  tokenizer: WordPieceTokenizer,
): Promise<string[]> {
  const m = trainer.model;
  const c = trainer.config;
  if (tokenizer.vocabSize !== c.vocabSize) {
    throw new Error(`export: the tokenizer has ${tokenizer.vocabSize} tokens but the model ${c.vocabSize}`);
  }
  const written: string[] = [];
  const roles = c.sharing === "mlm" ? (["generator"] as const) : (["discriminator", "generator"] as const);
  for (const role of roles) {
    const state = m.exportTensors(role);
    const tensors = new Map<string, HostTensor>();
    for (const [name, t] of state) {
      tensors.set(name, { dtype: "F32", shape: t.shape, data: (await t.data()) as Float32Array });
    }
    tf.dispose([...state.values()]);
    const dir = join(outDir, c.sharing === "mlm" ? "mlm" : role);
    await saveSafetensors(join(dir, "model.safetensors"), tensors, {
      format: "pt",
      rtdlab_sharing: c.sharing,
    });
    await writeJsonAtomic(join(dir, "config.json"), {
      ...m.hfConfig(role),
      pad_token_id: tokenizer.specialIds.pad,
    });
    await writeHfTokenizerFiles(tokenizer, dir, {
      // transformers' DeBERTa-v2 tokenizer is SentencePiece; a WordPiece vocabulary is a BertTokenizer.
      tokenizerClass: c.backbone === "deberta" ? "BertTokenizer" : "ElectraTokenizer",
      modelMaxLength: c.maxPositions,
    });
    written.push(dir);
  }
  return written;
}

/**
 * Starting a pre-training run from HuggingFace checkpoints (`deno task pretrain --init-from`): an
 * ElectraForPreTraining discriminator folder plus an ElectraForMaskedLM generator folder (or the
 * DeBERTa-v2 equivalents rtdlab exports), in any sharing mode; the MLM baseline starts from one
 * masked-LM folder.
 *
 * The model's sizes and tokenizer come from the folders; training settings (steps, learning rate,
 * batch, masking, sharing) from the run's config. The run is new: step 0, the warmup and schedule from
 * the start, fresh Adam moments (an export holds weights only). How each sharing mode maps the two
 * folders' tables is lib/model/hf_load.ts's business (GDES: E_Δ = E_D − E_G).
 *
 * @module
 */

import { join } from "node:path";
import { applyOverrides, type RunConfig, type SharingMode, validateConfig } from "../config.ts";
import { configFromHfPair, SHARED_ARCHITECTURE_KEYS } from "../model/hf_config.ts";
import { type HfModelFolder, isHfModelFolder, readHfModelFolder } from "../model/hf_folder.ts";
import { formatLoadReport, type LoadReport, loadStateDicts } from "../model/hf_load.ts";
import type { RtdModel } from "../model/mod.ts";
import { vocabList } from "../text/hf_files.ts";
import type { WordPieceTokenizer } from "../text/tokenizer.ts";
import { exists } from "../util/fs.ts";

/** Where a run starts from: a folder holding `discriminator/` + `generator/` (or `mlm/`), and/or the two folders. */
export interface InitFrom {
  /** An rtdlab export (or run) folder holding `discriminator/` and `generator/` (MLM baseline: `mlm/`). */
  dir?: string;
  /** A discriminator model folder (ElectraForPreTraining or the DeBERTa-v2 equivalent). */
  discriminator?: string;
  /** A generator model folder (ElectraForMaskedLM / DebertaV2ForMaskedLM); the MLM baseline's only network. */
  generator?: string;
  /**
   * Config keys given explicitly (`--set`) that win over the folders' values: `dropout`, `initStd`,
   * `seqLength` (at most the folders' position table). A key the folders decide ({@link FOLDER_KEYS}) is
   * refused by {@link folderKeyProblem}.
   */
  settings?: Record<string, unknown>;
}

/** Config keys a run started from model folders takes from them: its sizes and its tokenizer. */
export const FOLDER_KEYS: readonly string[] = [
  ...SHARED_ARCHITECTURE_KEYS,
  "discriminator",
  "generatorHiddenFraction",
  "generatorLayers",
  "tokenizer",
  "tokenizerVocabSize",
];

/** Why `keys` (config keys, dotted ones too) cannot be set on a run started from model folders, or null. */
export function folderKeyProblem(keys: readonly string[]): string | null {
  const fixed = keys.filter((k) => FOLDER_KEYS.includes(k.split(".")[0]));
  if (fixed.length === 0) return null;
  return `${fixed.join(", ")}: a run started from model folders (--init-from, --init-discriminator, ` +
    `--init-generator) takes its sizes and tokenizer from them; drop ${
      fixed.length === 1 ? "it" : "them"
    }, or start a fresh run without the folders`;
}

/** The model folders a run starts from, read. */
export interface InitFolders {
  /** The folder the discriminator starts from. */
  discriminator?: HfModelFolder;
  /** The folder the generator starts from. */
  generator?: HfModelFolder;
}

async function isDir(path: string): Promise<boolean> {
  return await Deno.stat(path).then((s) => s.isDirectory, () => false);
}

/**
 * The discriminator and generator folders of `init` for `sharing`: `dir/discriminator` + `dir/generator`
 * (a run folder's `export/` is looked into), or for the MLM baseline `dir/mlm` or `dir` itself.
 * Errors say which folders were expected.
 */
export async function resolveInitFrom(init: InitFrom, sharing: SharingMode): Promise<InitFrom> {
  if (init.dir && (init.discriminator || init.generator)) {
    throw new Error("give --init-from DIR, or --init-discriminator and --init-generator, not both");
  }
  let out: InitFrom = { discriminator: init.discriminator, generator: init.generator };
  if (init.dir) {
    if (!(await exists(init.dir))) throw new Error(`--init-from ${init.dir}: no such folder`);
    const dir = await isDir(join(init.dir, "export")) ? join(init.dir, "export") : init.dir;
    if (sharing === "mlm") {
      const mlm = join(dir, "mlm");
      if (await isHfModelFolder(mlm)) out = { generator: mlm };
      else if (await isHfModelFolder(dir)) out = { generator: dir };
      else {
        throw new Error(
          `--init-from ${init.dir}: the MLM baseline starts from a masked-LM model folder: ${mlm} or ${dir} ` +
            `itself (config.json + model.safetensors + tokenizer)`,
        );
      }
    } else {
      const [d, g] = [join(dir, "discriminator"), join(dir, "generator")];
      const found = [await isHfModelFolder(d), await isHfModelFolder(g)];
      if (!found[0] || !found[1]) {
        const single = await isHfModelFolder(dir) ? ` (${dir} is a single model folder)` : "";
        throw new Error(
          `--init-from ${init.dir}: expected model folders ${d} and ${g} (an rtdlab export/)${single}; ` +
            `for two folders elsewhere give --init-discriminator DIR --init-generator DIR`,
        );
      }
      out = { discriminator: d, generator: g };
    }
  }
  if (sharing === "mlm") {
    if (out.discriminator) {
      throw new Error(
        "the MLM baseline has no discriminator: start it from a masked-LM folder (--init-generator DIR)",
      );
    }
    if (!out.generator) throw new Error("the MLM baseline needs a masked-LM folder (--init-generator DIR)");
  } else if (!out.discriminator || !out.generator) {
    throw new Error(
      `sharing ${sharing} starts from a discriminator and a generator folder; missing --init-${
        out.discriminator ? "generator" : "discriminator"
      } DIR`,
    );
  }
  return out;
}

/** Reads the folders of `init` (config.json, model.safetensors, tokenizer). */
export async function readInitFolders(init: InitFrom, sharing: SharingMode): Promise<InitFolders> {
  const r = await resolveInitFrom(init, sharing);
  return {
    discriminator: r.discriminator ? await readHfModelFolder(r.discriminator) : undefined,
    generator: r.generator ? await readHfModelFolder(r.generator) : undefined,
  };
}

/**
 * The run's config: `base`'s training settings and sharing, the folders' sizes, then `settings` (keys
 * given explicitly, which win over the folders' dropout, initStd and sequence length).
 */
export function initConfig(
  base: RunConfig,
  f: InitFolders,
  settings: Record<string, unknown> = {},
): RunConfig {
  const problem = folderKeyProblem(Object.keys(settings));
  if (problem) throw new Error(problem);
  const side = (x: HfModelFolder) => ({ hf: x.config, source: x.configPath });
  const config = base.sharing === "mlm"
    ? configFromHfPair(base, side(f.generator!))
    : configFromHfPair(base, side(f.discriminator!), side(f.generator!));
  return Object.keys(settings).length ? validateConfig(applyOverrides(config, settings)) : config;
}

/** The folders' tokenizer; both folders' tokenizers (where present) must hold the same vocabulary. */
export function initTokenizer(f: InitFolders, config: RunConfig): WordPieceTokenizer {
  const withTok = [f.discriminator, f.generator].filter((x): x is HfModelFolder => !!x?.tokenizer);
  if (!withTok.length) {
    const dirs = [f.discriminator, f.generator].filter((x) => x).map((x) => x!.dir);
    throw new Error(
      `${dirs.join(" and ")}: no tokenizer.json or vocab.txt (the run needs the model's tokenizer)`,
    );
  }
  const [first, ...rest] = withTok.map((x) => x.tokenizer!);
  for (const other of rest) {
    const a = vocabList(first.tokenizer), b = vocabList(other.tokenizer);
    const i = a.findIndex((t, k) => t !== b[k]);
    if (a.length !== b.length || i >= 0) {
      throw new Error(
        `${first.path} and ${other.path} are different vocabularies (${
          a.length !== b.length ? `${a.length} vs ${b.length} tokens` : `id ${i}: "${a[i]}" vs "${b[i]}"`
        }); the generator and the discriminator must share one`,
      );
    }
  }
  if (first.tokenizer.vocabSize !== config.vocabSize) {
    throw new Error(
      `${first.path} has ${first.tokenizer.vocabSize} tokens but the model's vocab_size is ${config.vocabSize}`,
    );
  }
  return first.tokenizer;
}

/** Loads the folders' weights into `model`; returns the report and the lines to print. */
export function loadInitWeights(model: RtdModel, f: InitFolders): { report: LoadReport; lines: string[] } {
  const dict = (x?: HfModelFolder) => (x ? { path: x.weightsPath, tensors: x.tensors } : undefined);
  const report = loadStateDicts(model, {
    discriminator: dict(f.discriminator),
    generator: dict(f.generator),
  });
  const sources = [f.discriminator, f.generator].filter((x) => x).map((x) => x!.dir);
  const lines = formatLoadReport(report, sources);
  const trained = (f.discriminator ?? f.generator)!.config.rtdlab as { sharing?: string } | undefined;
  if (trained?.sharing && trained.sharing !== model.config.sharing) {
    lines.push(
      `  the checkpoint was pre-trained with sharing ${trained.sharing}; this run uses ${model.config.sharing}`,
    );
  }
  lines.push("  a new run: step 0, learning-rate warmup from the start, fresh Adam moments");
  return { report, lines };
}

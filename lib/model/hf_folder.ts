/**
 * Reading a HuggingFace model folder: `config.json`, `model.safetensors` (read strictly, see
 * lib/io/safetensors.ts) and the tokenizer (`tokenizer.json` or `vocab.txt`). PyTorch pickles
 * (`pytorch_model.bin`) are refused with the reason and the one-line conversion.
 *
 * @module
 */

import { join } from "node:path";
import { type HostTensor, loadSafetensors } from "../io/safetensors.ts";
import { type HfTokenizer, readHfTokenizer } from "../text/hf_files.ts";
import { exists } from "../util/fs.ts";

/** A HuggingFace model folder read from disk. */
export interface HfModelFolder {
  /** The folder. */
  dir: string;
  /** `DIR/config.json`. */
  configPath: string;
  /** Its parsed contents. */
  config: Record<string, unknown>;
  /** `DIR/model.safetensors`. */
  weightsPath: string;
  /** The weights by HF name (empty when read with `weights: false`). */
  tensors: Map<string, HostTensor>;
  /** The folder's tokenizer, or null when it has none. */
  tokenizer: HfTokenizer | null;
}

/** True when `dir` holds a config.json naming a `model_type` (a HuggingFace model folder). */
export async function isHfModelFolder(dir: string): Promise<boolean> {
  try {
    const cfg = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
    return typeof cfg?.model_type === "string";
  } catch {
    return false;
  }
}

/**
 * Reads a model folder's config.json, tokenizer and (unless `weights` is false) model.safetensors.
 * Errors name the folder and what is missing; a folder with only `pytorch_model.bin` is refused with
 * why (unpickling can run code) and how to convert it.
 */
export async function readHfModelFolder(
  dir: string,
  opts: { weights?: boolean } = {},
): Promise<HfModelFolder> {
  if (!(await exists(dir))) throw new Error(`no such model folder: ${dir}`);
  const configPath = join(dir, "config.json");
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await Deno.readTextFile(configPath));
  } catch (e) {
    throw new Error(`cannot read ${configPath} (not a HuggingFace model folder?): ${(e as Error).message}`);
  }
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw new Error(`${configPath} must hold a JSON object`);
  }
  const weightsPath = join(dir, "model.safetensors");
  let tensors = new Map<string, HostTensor>();
  if (opts.weights !== false) {
    if (!(await exists(weightsPath))) throw await noSafetensors(dir, config);
    tensors = (await loadSafetensors(weightsPath)).tensors;
  }
  return { dir, configPath, config, weightsPath, tensors, tokenizer: await readHfTokenizer(dir) };
}

/** The error for a folder without model.safetensors: what it holds instead and what to do. */
async function noSafetensors(dir: string, config: Record<string, unknown>): Promise<Error> {
  const arch = Array.isArray(config.architectures) && typeof config.architectures[0] === "string" &&
      /^\w+$/.test(config.architectures[0])
    ? config.architectures[0]
    : "AutoModel";
  const convert = `python -c "from transformers import ${arch} as M; ` +
    `M.from_pretrained('${dir}').save_pretrained('${dir}', safe_serialization=True)"`;
  if (await exists(join(dir, "pytorch_model.bin"))) {
    return new Error(
      `${dir} holds pytorch_model.bin but no model.safetensors. rtdlab does not read PyTorch pickle files: ` +
        `unpickling a file can run any code hidden in it. Convert it once, where you trust the file, ` +
        `with transformers: ${convert} (this writes model.safetensors beside it).`,
    );
  }
  if (await exists(join(dir, "model.safetensors.index.json"))) {
    return new Error(
      `${dir} holds a sharded checkpoint (model.safetensors.index.json); rtdlab reads one model.safetensors: ` +
        `${convert.replace("safe_serialization=True", "safe_serialization=True, max_shard_size='100GB'")}`,
    );
  }
  for (const other of ["tf_model.h5", "flax_model.msgpack"]) {
    if (await exists(join(dir, other))) {
      return new Error(
        `${dir} holds ${other} but no model.safetensors; convert it with transformers: ${convert}`,
      );
    }
  }
  return new Error(`${dir} has no model.safetensors`);
}

/**
 * A tokenizer as the files of a HuggingFace model folder, both ways.
 *
 * Writing: `tokenizer.json` (the fast tokenizer), `vocab.txt` (the slow `BertTokenizer`'s vocabulary),
 * `tokenizer_config.json` (which class to build, lowercasing, the special tokens, the longest input)
 * and `special_tokens_map.json`, so `AutoTokenizer.from_pretrained(folder)` and rtdlab both work on the
 * folder alone. Reading: `tokenizer.json` when present, else `vocab.txt` with the lowercasing
 * `tokenizer_config.json` asks for (BERT's defaults when it is absent).
 *
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import {
  BERT_UNCASED_NORMALIZER,
  type BertNormalizerConfig,
  SPECIAL_TOKENS,
  tokenizerJsonFromVocab,
  WordPieceTokenizer,
} from "./tokenizer.ts";
import { exists } from "../util/fs.ts";

/** The files {@link writeHfTokenizerFiles} writes into a model folder. */
export const HF_TOKENIZER_FILES = [
  "tokenizer.json",
  "vocab.txt",
  "tokenizer_config.json",
  "special_tokens_map.json",
] as const;

const SPECIAL_KEYS = {
  pad_token: "[PAD]",
  unk_token: "[UNK]",
  cls_token: "[CLS]",
  sep_token: "[SEP]",
  mask_token: "[MASK]",
} as const;

/** Options of {@link writeHfTokenizerFiles}. */
export interface HfTokenizerFileOptions {
  /** transformers tokenizer class: "ElectraTokenizer" (ELECTRA) or "BertTokenizer" (a WordPiece DeBERTa-v2). */
  tokenizerClass: string;
  /** The longest input the model takes (its position table). */
  modelMaxLength: number;
}

/** The token of every id, in id order (the lines of vocab.txt). */
export function vocabList(tokenizer: WordPieceTokenizer): string[] {
  const out: string[] = [];
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    const t = tokenizer.idToToken(id);
    if (/[\r\n]/.test(t)) throw new Error(`token ${id} (${JSON.stringify(t)}) cannot be a line of vocab.txt`);
    out.push(t);
  }
  return out;
}

/** Writes the tokenizer files of a HuggingFace model folder into `dir` (each file atomically). */
export async function writeHfTokenizerFiles(
  tokenizer: WordPieceTokenizer,
  dir: string,
  opts: HfTokenizerFileOptions,
): Promise<void> {
  const json = tokenizer.toJSON();
  const norm = json.normalizer;
  const ids = tokenizer.specialIds;
  const idOf: Record<string, number> = {
    "[PAD]": ids.pad,
    "[UNK]": ids.unk,
    "[CLS]": ids.cls,
    "[SEP]": ids.sep,
    "[MASK]": ids.mask,
  };
  const addedTokensDecoder: Record<string, unknown> = {};
  for (const t of SPECIAL_TOKENS) {
    addedTokensDecoder[String(idOf[t])] = {
      content: t,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: true,
    };
  }
  await tokenizer.save(join(dir, "tokenizer.json"));
  await writeFileAtomic(join(dir, "vocab.txt"), vocabList(tokenizer).join("\n") + "\n");
  await writeJsonAtomic(join(dir, "tokenizer_config.json"), {
    tokenizer_class: opts.tokenizerClass,
    do_lower_case: norm?.lowercase ?? false,
    strip_accents: norm?.strip_accents ?? null,
    tokenize_chinese_chars: norm?.handle_chinese_chars ?? false,
    do_basic_tokenize: true,
    never_split: null,
    ...SPECIAL_KEYS,
    model_max_length: opts.modelMaxLength,
    clean_up_tokenization_spaces: true,
    added_tokens_decoder: addedTokensDecoder,
  });
  await writeJsonAtomic(join(dir, "special_tokens_map.json"), SPECIAL_KEYS);
}

/** A model folder's tokenizer and the file it came from. */
export interface HfTokenizer {
  /** The tokenizer read from the folder. */
  tokenizer: WordPieceTokenizer;
  /** `DIR/tokenizer.json` or `DIR/vocab.txt`. */
  path: string;
}

/**
 * Reads a model folder's WordPiece tokenizer: `tokenizer.json`, else `vocab.txt` (+ the lowercasing and
 * accent settings of `tokenizer_config.json`). Returns null when the folder has neither; a SentencePiece
 * model is refused by name.
 */
export async function readHfTokenizer(dir: string): Promise<HfTokenizer | null> {
  const tokPath = join(dir, "tokenizer.json");
  if (await exists(tokPath)) return { tokenizer: await WordPieceTokenizer.load(tokPath), path: tokPath };
  const vocabPath = join(dir, "vocab.txt");
  if (await exists(vocabPath)) {
    return {
      tokenizer: await tokenizerFromVocabFile(vocabPath, join(dir, "tokenizer_config.json")),
      path: vocabPath,
    };
  }
  for (const spm of ["spm.model", "tokenizer.model", "sentencepiece.bpe.model"]) {
    if (await exists(join(dir, spm))) {
      throw new Error(
        `${dir} has a SentencePiece tokenizer (${spm}) but no tokenizer.json or vocab.txt; rtdlab reads ` +
          `BERT-style WordPiece tokenizers only`,
      );
    }
  }
  return null;
}

/** A tokenizer from a BERT vocab.txt and (when it exists) the folder's tokenizer_config.json. */
async function tokenizerFromVocabFile(vocabPath: string, configPath: string): Promise<WordPieceTokenizer> {
  let cfg: Record<string, unknown> = {};
  if (await exists(configPath)) {
    try {
      cfg = JSON.parse(await Deno.readTextFile(configPath));
    } catch (e) {
      throw new Error(`cannot read ${configPath}: ${(e as Error).message}`);
    }
  }
  for (const [key, want] of Object.entries(SPECIAL_KEYS)) {
    const v = cfg[key];
    const content = typeof v === "object" && v !== null ? (v as { content?: unknown }).content : v;
    if (content !== undefined && content !== want) {
      throw new Error(
        `${configPath}: ${key} is ${JSON.stringify(content)}; rtdlab's WordPiece tokenizer uses ${want}`,
      );
    }
  }
  const flag = (k: string, fallback: boolean) => (typeof cfg[k] === "boolean" ? cfg[k] as boolean : fallback);
  const normalizer: BertNormalizerConfig = {
    ...BERT_UNCASED_NORMALIZER,
    lowercase: flag("do_lower_case", true), // BertTokenizer's default
    handle_chinese_chars: flag("tokenize_chinese_chars", true),
    strip_accents: typeof cfg.strip_accents === "boolean" ? cfg.strip_accents : null,
  };
  const text = await Deno.readTextFile(vocabPath);
  // One token per line, as transformers' load_vocab reads it (a final newline ends the last line).
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  try {
    return WordPieceTokenizer.fromJSON(tokenizerJsonFromVocab(lines, normalizer));
  } catch (e) {
    throw new Error(`${vocabPath}: ${(e as Error).message}`);
  }
}

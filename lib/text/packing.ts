/**
 * Document-aware packing of tokenized sentences into fixed-length `[CLS] A [SEP] B [SEP]` rows.
 *
 * @module
 */

import type { Rng } from "../rng.ts";

/** Packed sequences: `count` rows of `length` token ids, row-major, padded at the end of each row. */
export interface PackedCorpus {
  /** Tokens per row (maxLength). */
  length: number;
  /** Number of rows. */
  count: number;
  /** Token ids, count × length. */
  inputIds: Int32Array;
  /** 0 for `[CLS] A [SEP]` and padding, 1 for `B [SEP]`; count × length. */
  tokenTypeIds: Int32Array;
}

/** Options of {@link packDocuments}. */
export interface PackOptions {
  /** Tokens per row, specials and padding included (at least 4). */
  maxLength: number;
  /** [CLS] id. */
  cls: number;
  /** [SEP] id. */
  sep: number;
  /** [PAD] id. */
  pad: number;
  /** Chooses the A/B split point of each row. */
  rng: Rng;
  /**
   * What to do with a sentence longer than `maxLength - 3` tokens: "truncate" (default) keeps its start
   * in a row of its own; "split" cuts it into full rows and carries the remainder on as a sentence.
   */
  longSentences?: "truncate" | "split";
}

/**
 * Packs documents (document → sentence → token ids) into rows. Sentences of one document fill a row
 * greedily up to `maxLength - 3` tokens; a row never holds text of two documents. A row with two or
 * more sentences is split at a random sentence boundary into `[CLS] A [SEP] B [SEP]`; a row with one
 * sentence is `[CLS] A [SEP]`. A sentence longer than `maxLength - 3` tokens gets a row of its own,
 * truncated (or is split over rows: `longSentences`). Empty sentences are skipped.
 */
export function packDocuments(docs: number[][][], opts: PackOptions): PackedCorpus {
  const { maxLength, cls, sep, pad, rng, longSentences = "truncate" } = opts;
  if (!Number.isInteger(maxLength) || maxLength < 4) {
    throw new Error(
      `packDocuments: maxLength must be an integer >= 4 ([CLS] + 1 token + 2 [SEP]), got ${maxLength}`,
    );
  }
  const budget = maxLength - 3;
  let ids = new Int32Array(Math.max(1024, maxLength * 64));
  let types = new Int32Array(ids.length);
  let count = 0;

  const emit = (chunk: number[][]) => {
    if ((count + 1) * maxLength > ids.length) {
      const grow = (a: Int32Array) => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      ids = grow(ids);
      types = grow(types);
    }
    const base = count * maxLength;
    // Two or more sentences: B starts at a random sentence boundary (never empty A or B).
    const splitAt = chunk.length >= 2 ? 1 + rng.int(chunk.length - 1) : chunk.length;
    let p = base;
    ids[p++] = cls;
    for (let s = 0; s < chunk.length; s++) {
      if (s === splitAt) {
        ids[p++] = sep;
      }
      const type = s < splitAt ? 0 : 1;
      for (const t of chunk[s]) {
        types[p] = type;
        ids[p++] = t;
      }
    }
    if (splitAt < chunk.length) types[p] = 1;
    ids[p++] = sep;
    ids.fill(pad, p, base + maxLength); // token types of padding stay 0 (fresh buffer)
    count++;
  };

  for (const doc of docs) {
    let chunk: number[][] = [];
    let used = 0;
    for (let sent of doc) {
      if (sent.length === 0) continue;
      if (sent.length > budget) {
        if (chunk.length > 0) emit(chunk);
        chunk = [];
        used = 0;
        if (longSentences !== "split") {
          emit([sent.slice(0, budget)]);
          continue;
        }
        let off = 0;
        for (; sent.length - off > budget; off += budget) emit([sent.slice(off, off + budget)]);
        sent = sent.slice(off);
      }
      if (used + sent.length > budget) {
        emit(chunk);
        chunk = [];
        used = 0;
      }
      chunk.push(sent);
      used += sent.length;
    }
    if (chunk.length > 0) emit(chunk);
  }
  return {
    length: maxLength,
    count,
    inputIds: ids.slice(0, count * maxLength),
    tokenTypeIds: types.slice(0, count * maxLength),
  };
}

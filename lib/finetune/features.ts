/**
 * Examples → model inputs: `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]` with token types 0/1,
 * truncated to a maximum length (pairs: the longer segment loses tokens first, as BERT does), and
 * batches padded only to their own longest sequence.
 *
 * @module
 */

import * as tf from "../tf.ts";
import type { EncoderInputs } from "../model/mod.ts";
import type { WordPieceTokenizer } from "../text/tokenizer.ts";
import type { Example } from "../tasks/types.ts";

/** One tokenized example. */
export interface Feature {
  /** Token ids: [CLS] a [SEP] (b [SEP]), truncated to the maximum length. */
  ids: Int32Array;
  /** Token type ids (0 for the first segment, 1 for the second). */
  typeIds: Int32Array;
  /** Class index. */
  label: number;
}

/** Tokenizes `examples` with `tokenizer`, at most `maxLength` tokens each (specials included). */
export function encodeExamples(
  tokenizer: WordPieceTokenizer,
  examples: readonly Example[],
  maxLength: number,
): Feature[] {
  if (!(Number.isInteger(maxLength) && maxLength >= 4)) {
    throw new Error(`max length must be an integer >= 4, got ${maxLength}`);
  }
  const { cls, sep } = tokenizer.specialIds;
  // Texts can be long (emails): tokenize a generous prefix only; the rest would be cut anyway.
  const prefix = (s: string) => s.length > maxLength * 24 ? s.slice(0, maxLength * 24) : s;
  return examples.map((e) => {
    let a = tokenizer.encode(prefix(e.text));
    if (e.textB === undefined) {
      a = a.slice(0, maxLength - 2);
      const ids = Int32Array.from([cls, ...a, sep]);
      return { ids, typeIds: new Int32Array(ids.length), label: e.label };
    }
    let b = tokenizer.encode(prefix(e.textB));
    // Longest-first truncation to fit [CLS] a [SEP] b [SEP].
    const budget = maxLength - 3;
    while (a.length + b.length > budget) {
      if (a.length >= b.length) a = a.slice(0, a.length - 1);
      else b = b.slice(0, b.length - 1);
    }
    const ids = Int32Array.from([cls, ...a, sep, ...b, sep]);
    const typeIds = new Int32Array(ids.length);
    typeIds.fill(1, a.length + 2);
    return { ids, typeIds, label: e.label };
  });
}

/** Encoder inputs plus labels for a batch of features. */
export interface FeatureBatch {
  /** Ids, token types and attention mask, [batch, length], padded. */
  inputs: EncoderInputs;
  /** Class indices, [batch]. */
  labels: tf.Tensor1D;
  /** Examples in the batch. */
  batch: number;
  /** Padded sequence length. */
  length: number;
}

/**
 * Tensors for `features[indices]`, padded with `padId` to the batch's longest sequence rounded up to
 * a multiple of 8 (fewer distinct shapes for the kernels), never past `maxLength`. Caller disposes.
 */
export function makeBatch(
  features: readonly Feature[],
  indices: readonly number[],
  padId: number,
  maxLength: number,
): FeatureBatch {
  const longest = indices.reduce((m, i) => Math.max(m, features[i].ids.length), 1);
  const length = Math.min(maxLength, Math.ceil(longest / 8) * 8);
  const b = indices.length;
  const ids = new Int32Array(b * length).fill(padId);
  const types = new Int32Array(b * length);
  const mask = new Float32Array(b * length);
  const labels = new Int32Array(b);
  indices.forEach((fi, r) => {
    const f = features[fi];
    ids.set(f.ids, r * length);
    types.set(f.typeIds, r * length);
    mask.fill(1, r * length, r * length + f.ids.length);
    labels[r] = f.label;
  });
  return {
    inputs: {
      inputIds: tf.tensor2d(ids, [b, length], "int32"),
      tokenTypeIds: tf.tensor2d(types, [b, length], "int32"),
      attentionMask: tf.tensor2d(mask, [b, length], "float32"),
    },
    labels: tf.tensor1d(labels, "int32"),
    batch: b,
    length,
  };
}

/** Frees a batch's tensors. */
export function disposeBatch(b: FeatureBatch): void {
  tf.dispose([b.inputs.inputIds, b.inputs.tokenTypeIds, b.inputs.attentionMask, b.labels]);
}

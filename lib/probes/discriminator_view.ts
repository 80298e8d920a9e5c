/**
 * The discriminator's view of one sentence: mask it (seeded), let the generator sample replacements,
 * and read D's replaced-probability for every token — one row per token, ready for a table or heat map.
 * Both networks run in eval mode (no dropout).
 *
 * @module
 */

import * as tf from "../tf.ts";
import type { RtdModel } from "../model/mod.ts";
import { Rng } from "../rng.ts";
import { maskBatch, type MaskingRecipe } from "../text/masking.ts";
import type { PretrainVocab } from "../train/pretrain.ts";
import { corrupt, sampleFromLogits } from "../train/sampling.ts";
import { requireModel } from "./tables.ts";

/** What the view needs from a tokenizer (a WordPieceTokenizer will do). */
export interface ViewTokenizer {
  /** The token an id stands for. */
  idToToken(id: number): string;
  /** Whether an id is a special token ([CLS], [SEP], [PAD], [MASK], [UNK]). */
  isSpecial(id: number): boolean;
  /** Number of ids. */
  readonly vocabSize: number;
  /** Ids of [PAD] and [MASK]. */
  readonly specialIds: { pad: number; mask: number };
  /** [CLS] a [SEP] (b [SEP]) as ids with their token types. */
  encodePair(a: string, b?: string): { ids: number[]; tokenTypeIds: number[] };
}

/** One token of the sentence as the two networks saw it. */
export interface DiscriminatorViewRow {
  /** Position in the sequence. */
  position: number;
  /** Original token id / text. */
  originalId: number;
  /** The original token's text (null without a tokenizer). */
  original: string | null;
  /** What the generator read at this position ([MASK] where masked). */
  inputId: number;
  /** The generator input's text (null without a tokenizer). */
  input: string | null;
  /** What the discriminator read: the generator's sample at selected positions, else the original. */
  sampleId: number;
  /** The discriminator input's text (null without a tokenizer). */
  sample: string | null;
  /** Whether the position was selected for masking. */
  selected: boolean;
  /** RTD label: 1 when the discriminator's token differs from the original (a correct sample counts as real). */
  label: 0 | 1;
  /** σ(D's logit): the discriminator's probability that the token was replaced. */
  pReplaced: number;
}

/** Options of {@link discriminatorView}. */
export interface DiscriminatorViewOptions {
  /** Seed of the masking and sampling draws (default 0). */
  seed?: number;
  /** Turns text into ids and names tokens; supplies the vocabulary facts when `vocab` is absent. */
  tokenizer?: ViewTokenizer;
  /** Vocabulary facts (pad, mask, specials) when no tokenizer is given. */
  vocab?: PretrainVocab;
  /** Masking recipe; default the model config's (selectProb, maskTokenProb, randomProb). */
  recipe?: MaskingRecipe;
  /** Mask exactly these positions with [MASK] instead of drawing them. */
  positions?: number[];
  /** Token types when `input` is ids (default all 0). */
  tokenTypeIds?: ArrayLike<number>;
}

/**
 * Runs `input` (text, with `opts.tokenizer`; or ids, used as given — include [CLS]/[SEP] yourself)
 * through the generator and the discriminator and returns one row per token.
 */
export async function discriminatorView(
  model: RtdModel,
  input: string | ArrayLike<number>,
  opts: DiscriminatorViewOptions = {},
): Promise<DiscriminatorViewRow[]> {
  requireModel(model, "discriminatorView");
  const c = model.config;
  if (c.sharing === "mlm") throw new Error("discriminatorView: the MLM baseline has no discriminator");
  const tok = opts.tokenizer;
  const vocab: PretrainVocab = opts.vocab ?? (tok
    ? {
      padId: tok.specialIds.pad,
      maskId: tok.specialIds.mask,
      vocabSize: tok.vocabSize,
      isSpecial: (id) => tok.isSpecial(id),
    }
    : (() => {
      throw new Error("discriminatorView: pass a tokenizer or vocab");
    })());
  let ids: Int32Array, types: Int32Array;
  if (typeof input === "string") {
    if (!tok) throw new Error("discriminatorView: text input needs a tokenizer");
    const enc = tok.encodePair(input);
    ids = Int32Array.from(enc.ids);
    types = Int32Array.from(enc.tokenTypeIds);
  } else {
    ids = Int32Array.from(input);
    types = opts.tokenTypeIds ? Int32Array.from(opts.tokenTypeIds) : new Int32Array(ids.length);
  }
  const n = ids.length;
  const rng = new Rng(opts.seed ?? 0);
  let masked;
  if (opts.positions) {
    const selected = Int32Array.from([...new Set(opts.positions)].sort((a, b) => a - b));
    for (const p of selected) {
      if (!(p >= 0 && p < n)) throw new RangeError(`position ${p} is outside the sequence`);
    }
    const maskedIds = ids.slice();
    for (const p of selected) maskedIds[p] = vocab.maskId;
    masked = { maskedIds, selected, targets: Int32Array.from(selected, (p) => ids[p]) };
  } else {
    masked = maskBatch(
      ids,
      1,
      n,
      vocab,
      opts.recipe ?? {
        selectProb: c.maskSelectProb,
        maskTokenProb: c.maskTokenProb,
        randomProb: c.maskRandomProb,
      },
      rng,
    );
  }
  const attention = Float32Array.from(ids, (id) => id === vocab.padId ? 0 : 1);
  const inputsOf = (x: Int32Array) => ({
    inputIds: tf.tensor2d(x, [1, n], "int32"),
    tokenTypeIds: tf.tensor2d(types, [1, n], "int32"),
    attentionMask: tf.tensor2d(attention, [1, n], "float32"),
  });
  const eval_ = { training: false };

  let samples: Int32Array = new Int32Array(0);
  if (masked.selected.length > 0) {
    const logits = tf.tidy(() => {
      const inputs = inputsOf(masked.maskedIds);
      const hidden = model.encode("generator", inputs, eval_);
      return model.generatorLogits(hidden, tf.tensor1d(masked.selected, "int32"), eval_);
    });
    const l = (await logits.data()) as Float32Array;
    logits.dispose();
    samples = sampleFromLogits(
      l,
      masked.selected.length,
      c.vocabSize,
      c.samplingTemperature,
      rng,
      c.disallowCorrect ? masked.targets : undefined,
    );
  }
  const corruption = corrupt(ids, masked.selected, samples);
  const probs = tf.tidy(() => {
    const hidden = model.encode("discriminator", inputsOf(corruption.corruptedIds), eval_);
    return tf.sigmoid(model.discriminatorLogits(hidden, eval_));
  });
  const p = await probs.data();
  probs.dispose();

  const name = (id: number) => tok ? tok.idToToken(id) : null;
  const selected = new Set(masked.selected);
  return Array.from(ids, (id, i) => ({
    position: i,
    originalId: id,
    original: name(id),
    inputId: masked.maskedIds[i],
    input: name(masked.maskedIds[i]),
    sampleId: corruption.corruptedIds[i],
    sample: name(corruption.corruptedIds[i]),
    selected: selected.has(i),
    label: corruption.labels[i] as 0 | 1,
    pReplaced: p[i],
  }));
}

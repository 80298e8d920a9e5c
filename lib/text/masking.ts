/**
 * Selecting and masking positions for the generator's MLM task (README, *The science, as implemented*).
 *
 * rtdlab selects round(15%) of the maskable positions of each sequence (at least one), never
 * [CLS]/[SEP]/[PAD] or any other special token; of those, 85% become [MASK], 15% stay unchanged and
 * 0% become a random token. DeBERTaV3 masks 100% of the selected positions. With `maxPredictions`,
 * the count is ELECTRA's formula (pretrain_helpers.mask): max(1, min(maxPredictions, round(15% of
 * the non-padding tokens, [CLS]/[SEP] included))), still drawn among the maskable positions. ELECTRA's
 * code draws the positions with replacement (fewer distinct ones) and rounds halves to even; rtdlab draws
 * distinct positions and rounds halves up (README, *Masking count*).
 *
 * @module
 */

import type { Rng } from "../rng.ts";

/** How selected positions are corrupted. */
export interface MaskingRecipe {
  /** Fraction of maskable positions selected per sequence. */
  selectProb: number;
  /** Of the selected: fraction replaced by [MASK]. */
  maskTokenProb: number;
  /** Of the selected: fraction replaced by a uniformly random non-special token; the rest stay as they are. */
  randomProb: number;
  /** > 0: ELECTRA's count rule with this cap (max_predictions_per_seq); 0 or absent: rtdlab's rule. */
  maxPredictions?: number;
  /** Padding id, needed by ELECTRA's count rule (it counts non-padding tokens). */
  padId?: number;
}

/** ELECTRA's recipe: 15% selected; 85% [MASK], 15% unchanged, 0% random. */
export const ELECTRA_MASKING: MaskingRecipe = { selectProb: 0.15, maskTokenProb: 0.85, randomProb: 0 };

/** DeBERTaV3's recipe: 15% selected, all replaced by [MASK]. */
export const DEBERTA_V3_MASKING: MaskingRecipe = { selectProb: 0.15, maskTokenProb: 1, randomProb: 0 };

/** A masked batch: the generator's input, which flat positions were selected, and their original tokens. */
export interface MaskedBatch {
  /** Generator input ids [B·L] (selected positions corrupted). */
  maskedIds: Int32Array;
  /** Flat indices (b·L + t) of the selected positions, ascending. */
  selected: Int32Array;
  /** Original token at each selected position. */
  targets: Int32Array;
}

/** Special-token facts the masker needs. */
export interface MaskingVocab {
  /** Id of [MASK]. */
  maskId: number;
  /** Number of ids (random replacements are drawn below it). */
  vocabSize: number;
  /** True for [CLS], [SEP], [PAD], [UNK], [MASK] and any other special id: never selected, never drawn at random. */
  isSpecial: (id: number) => boolean;
}

/**
 * Selects and corrupts positions of `ids` ([batch, length], flat) with `recipe`, drawing from `rng`.
 * Sequences without maskable tokens select nothing.
 */
export function maskBatch(
  ids: Int32Array,
  batch: number,
  length: number,
  vocab: MaskingVocab,
  recipe: MaskingRecipe,
  rng: Rng,
): MaskedBatch {
  if (ids.length !== batch * length) {
    throw new Error(`maskBatch: ${ids.length} ids for a ${batch}×${length} batch`);
  }
  const maskedIds = ids.slice();
  const selected: number[] = [];
  const targets: number[] = [];
  for (let b = 0; b < batch; b++) {
    const candidates: number[] = [];
    for (let t = 0; t < length; t++) {
      if (!vocab.isSpecial(ids[b * length + t])) candidates.push(b * length + t);
    }
    if (candidates.length === 0) continue;
    let k: number;
    if (recipe.maxPredictions && recipe.maxPredictions > 0) {
      let tokens = 0;
      for (let t = 0; t < length; t++) if (ids[b * length + t] !== recipe.padId) tokens++;
      k = Math.max(1, Math.min(recipe.maxPredictions, Math.round(tokens * recipe.selectProb)));
    } else k = Math.max(1, Math.round(candidates.length * recipe.selectProb));
    k = Math.min(candidates.length, k);
    // Partial Fisher–Yates: the first k of a random permutation, without replacement.
    for (let i = 0; i < k; i++) {
      const j = i + rng.int(candidates.length - i);
      [candidates[i], candidates[j]] = [candidates[j], candidates[i]];
    }
    const chosen = candidates.slice(0, k).sort((x, y) => x - y);
    for (const pos of chosen) {
      selected.push(pos);
      targets.push(ids[pos]);
      const u = rng.next();
      if (u < recipe.maskTokenProb) maskedIds[pos] = vocab.maskId;
      else if (u < recipe.maskTokenProb + recipe.randomProb) maskedIds[pos] = randomToken(vocab, rng);
    }
  }
  return { maskedIds, selected: Int32Array.from(selected), targets: Int32Array.from(targets) };
}

function randomToken(vocab: MaskingVocab, rng: Rng): number {
  for (;;) {
    const id = rng.int(vocab.vocabSize);
    if (!vocab.isSpecial(id)) return id;
  }
}

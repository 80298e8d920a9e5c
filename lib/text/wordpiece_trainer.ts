/**
 * A WordPiece vocabulary trainer for small vocabularies (a few thousand tokens).
 *
 * It follows HuggingFace's `WordPieceTrainer`, which is its BPE trainer with a `##` continuation
 * prefix: words are counted after BERT normalization and pre-tokenization, each word starts as
 * characters (`h ##e ##l ##l ##o`), and the adjacent pair with the highest **frequency** (BPE's
 * criterion, not the freq(ab)/(freq(a)·freq(b)) likelihood score) is merged until the vocabulary is
 * full. Pair counts are updated incrementally, only in the words that hold the merged pair, and a
 * lazily-validated max-heap picks the next pair, so ~50k distinct words train in seconds.
 * Encoding then uses WordPiece's greedy longest-match over the resulting vocabulary.
 *
 * @module
 */

import { bertNormalize, bertPreTokenize, SPECIAL_TOKENS, WordPieceTokenizer } from "./tokenizer.ts";

/** Options of {@link trainWordPiece}. */
export interface TrainWordPieceOptions {
  /** Target vocabulary size, specials and alphabet included (e.g. 8192). */
  vocabSize: number;
  /** Pairs seen fewer times than this are never merged. Default 2. */
  minFrequency?: number;
  /** Keep only the most frequent characters; words with other characters are left out. Default 1000. */
  limitAlphabet?: number;
  /** Progress messages. */
  onProgress?: (msg: string) => void;
}

const MAX_WORD_CHARS = 100; // the WordPiece model maps longer words to [UNK]; they teach nothing
const PAIR_SHIFT = 2 ** 21; // pair key = a * PAIR_SHIFT + b; symbol ids stay below 2^21

/**
 * Trains a WordPiece vocabulary on `texts` and returns its tokenizer: specials first ([PAD] 0,
 * [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4), then the alphabet (each character alone and as `##c`), then
 * merged pieces in merge order. Deterministic: ties go to the pair of older symbols.
 */
export function trainWordPiece(texts: Iterable<string>, opts: TrainWordPieceOptions): WordPieceTokenizer {
  const { vocabSize, minFrequency = 2, limitAlphabet = 1000, onProgress } = opts;
  if (!Number.isInteger(vocabSize) || vocabSize < SPECIAL_TOKENS.length) {
    throw new Error(
      `trainWordPiece: vocabSize must be an integer >= ${SPECIAL_TOKENS.length}, got ${vocabSize}`,
    );
  }
  if (!(minFrequency >= 1)) throw new Error(`trainWordPiece: minFrequency must be >= 1, got ${minFrequency}`);
  if (!(Number.isInteger(limitAlphabet) && limitAlphabet >= 1)) {
    throw new Error(`trainWordPiece: limitAlphabet must be a positive integer, got ${limitAlphabet}`);
  }

  // 1. Word counts.
  const wordCounts = new Map<string, number>();
  let totalWords = 0;
  for (const text of texts) {
    for (const w of bertPreTokenize(bertNormalize(text))) {
      wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
      totalWords++;
    }
  }
  if (wordCounts.size === 0) throw new Error("trainWordPiece: empty corpus (no words after normalization)");

  // 2. Alphabet: the most frequent characters (ties by code point, for determinism).
  const charCounts = new Map<string, number>();
  for (const [w, c] of wordCounts) for (const ch of w) charCounts.set(ch, (charCounts.get(ch) ?? 0) + c);
  const alphabet = [...charCounts.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, limitAlphabet)
    .map(([ch]) => ch)
    .sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
  const baseSize = SPECIAL_TOKENS.length + 2 * alphabet.length;
  if (vocabSize < baseSize) {
    throw new Error(
      `trainWordPiece: vocabSize ${vocabSize} cannot hold the ${SPECIAL_TOKENS.length} special tokens plus ` +
        `${alphabet.length} characters in both forms (${baseSize}); raise vocabSize or lower limitAlphabet`,
    );
  }
  const tokens: string[] = [...SPECIAL_TOKENS, ...alphabet, ...alphabet.map((c) => `##${c}`)];
  const tokenId = new Map<string, number>(tokens.map((t, i) => [t, i]));

  // 3. Words as symbol-id arrays (first character bare, the rest `##`).
  const words: Int32Array[] = [];
  const wordLen: number[] = [];
  const wordFreq: number[] = [];
  let skipped = 0;
  for (const [w, c] of wordCounts) {
    const chars = [...w];
    const syms = new Int32Array(chars.length);
    let ok = chars.length <= MAX_WORD_CHARS;
    for (let i = 0; ok && i < chars.length; i++) {
      const id = tokenId.get(i === 0 ? chars[i] : `##${chars[i]}`);
      if (id === undefined) ok = false;
      else syms[i] = id;
    }
    if (!ok) {
      skipped += c;
      continue;
    }
    words.push(syms);
    wordLen.push(syms.length);
    wordFreq.push(c);
  }
  onProgress?.(
    `wordpiece: ${totalWords} words, ${words.length} distinct, alphabet ${alphabet.length}` +
      (skipped > 0 ? `, ${skipped} words left out (rare characters or too long)` : ""),
  );

  // 4. Pair counts and where each pair occurs (word indices; may repeat, checked when used).
  const pairCount = new Map<number, number>();
  const pairWhere = new Map<number, number[]>();
  for (let w = 0; w < words.length; w++) {
    const s = words[w], f = wordFreq[w];
    for (let i = 0; i + 1 < s.length; i++) {
      const key = s[i] * PAIR_SHIFT + s[i + 1];
      pairCount.set(key, (pairCount.get(key) ?? 0) + f);
      let list = pairWhere.get(key);
      if (!list) pairWhere.set(key, list = []);
      list.push(w);
    }
  }
  const heap = new PairHeap();
  for (const [key, c] of pairCount) heap.push(c, key);

  // 5. Merge the most frequent pair until the vocabulary is full.
  const seenStamp = new Int32Array(words.length).fill(-1);
  let merges = 0;
  while (tokens.length < vocabSize && heap.size > 0) {
    const [count, key] = heap.pop();
    const current = pairCount.get(key) ?? 0;
    if (current !== count) {
      // Stale entry. A pair whose count grew was pushed again when it grew; one that shrank goes back.
      if (current > 0 && current < count) heap.push(current, key);
      continue;
    }
    if (count < minFrequency) break;
    const a = Math.floor(key / PAIR_SHIFT), b = key - a * PAIR_SHIFT;
    const merged = tokens[a] + tokens[b].slice(2);
    let c = tokenId.get(merged);
    if (c === undefined) {
      c = tokens.length;
      tokens.push(merged);
      tokenId.set(merged, c);
    }
    merges++;
    const grown = new Set<number>();
    for (const w of pairWhere.get(key) ?? []) {
      if (seenStamp[w] === merges) continue;
      seenStamp[w] = merges;
      mergeWord(w, a, b, c, grown);
    }
    pairWhere.delete(key);
    for (const k of grown) heap.push(pairCount.get(k)!, k);
  }
  onProgress?.(`wordpiece: ${merges} merges, vocabulary ${tokens.length}`);
  return WordPieceTokenizer.fromVocab(tokens);

  /** Replaces a b by c in word w and updates the pair counts; collects new pairs (they hold c). */
  function mergeWord(w: number, a: number, b: number, c: number, grown: Set<number>): void {
    const s = words[w];
    const len = wordLen[w];
    let found = false;
    for (let i = 0; i + 1 < len; i++) {
      if (s[i] === a && s[i + 1] === b) {
        found = true;
        break;
      }
    }
    if (!found) return;
    const f = wordFreq[w];
    // Remove all old pairs, merge, add all new pairs back: words are short, and only pairs that touch
    // c can really be new, so only those are recorded as occurring here and pushed on the heap.
    for (let i = 0; i + 1 < len; i++) {
      const k = s[i] * PAIR_SHIFT + s[i + 1];
      pairCount.set(k, pairCount.get(k)! - f);
    }
    let j = 0;
    for (let i = 0; i < len;) {
      if (i + 1 < len && s[i] === a && s[i + 1] === b) {
        s[j++] = c;
        i += 2;
      } else s[j++] = s[i++];
    }
    wordLen[w] = j;
    for (let i = 0; i + 1 < j; i++) {
      const k = s[i] * PAIR_SHIFT + s[i + 1];
      pairCount.set(k, (pairCount.get(k) ?? 0) + f);
      if (s[i] === c || s[i + 1] === c) {
        let list = pairWhere.get(k);
        if (!list) pairWhere.set(k, list = []);
        list.push(w);
        grown.add(k);
      }
    }
  }
}

/** Max-heap of (count, pair key); equal counts pop the smaller key first (older symbols). */
class PairHeap {
  #count: number[] = [];
  #key: number[] = [];

  get size(): number {
    return this.#count.length;
  }

  #above(i: number, j: number): boolean {
    const c = this.#count, k = this.#key;
    return c[i] > c[j] || (c[i] === c[j] && k[i] < k[j]);
  }

  #swap(i: number, j: number): void {
    const c = this.#count, k = this.#key;
    [c[i], c[j]] = [c[j], c[i]];
    [k[i], k[j]] = [k[j], k[i]];
  }

  push(count: number, key: number): void {
    this.#count.push(count);
    this.#key.push(key);
    for (let i = this.#count.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!this.#above(i, p)) break;
      this.#swap(i, p);
      i = p;
    }
  }

  pop(): [number, number] {
    const c = this.#count, k = this.#key;
    const top: [number, number] = [c[0], k[0]];
    const lastC = c.pop()!, lastK = k.pop()!;
    if (c.length > 0) {
      c[0] = lastC;
      k[0] = lastK;
      for (let i = 0;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < c.length && this.#above(l, m)) m = l;
        if (r < c.length && this.#above(r, m)) m = r;
        if (m === i) break;
        this.#swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

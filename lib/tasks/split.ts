/**
 * Seeded, stratified train/dev/test splits, caps and de-duplication. The same seed gives the same
 * split on every machine (lib/rng.ts), whatever order the caller later trains in.
 *
 * @module
 */

import { Rng } from "../rng.ts";
import type { Example } from "./types.ts";

/** Default fractions: 80% train, 10% dev, 10% test. */
export const DEFAULT_FRACTIONS: [number, number, number] = [0.8, 0.1, 0.1];

/**
 * Splits `items` into train/dev/test, class by class (stratified), with a seeded shuffle. Each class
 * with at least 3 members puts at least one in dev and one in test. Within a split, items keep their
 * input order.
 */
export function stratifiedSplit<T>(
  items: readonly T[],
  labelOf: (item: T) => number,
  seed: number,
  fractions: [number, number, number] = DEFAULT_FRACTIONS,
): [T[], T[], T[]] {
  const [, fd, ft] = fractions;
  if (!(fractions.every((f) => f >= 0) && Math.abs(fractions[0] + fd + ft - 1) < 1e-9)) {
    throw new Error(`split fractions must be non-negative and sum to 1, got ${fractions.join("/")}`);
  }
  const byLabel = new Map<number, number[]>();
  items.forEach((it, i) => {
    const l = labelOf(it);
    let list = byLabel.get(l);
    if (!list) byLabel.set(l, list = []);
    list.push(i);
  });
  const rng = new Rng(seed);
  const which = new Uint8Array(items.length); // 0 train, 1 dev, 2 test
  for (const label of [...byLabel.keys()].sort((a, b) => a - b)) {
    const idx = rng.shuffle(byLabel.get(label)!);
    const n = idx.length;
    let nDev = Math.round(n * fd), nTest = Math.round(n * ft);
    if (n >= 3) {
      if (fd > 0) nDev = Math.max(1, nDev);
      if (ft > 0) nTest = Math.max(1, nTest);
    }
    nDev = Math.min(nDev, n);
    nTest = Math.min(nTest, n - nDev);
    for (let k = 0; k < nDev; k++) which[idx[k]] = 1;
    for (let k = nDev; k < nDev + nTest; k++) which[idx[k]] = 2;
  }
  const out: [T[], T[], T[]] = [[], [], []];
  items.forEach((it, i) => out[which[i]].push(it));
  return out;
}

/** A seeded random subset of at most `max` items, in input order (all of them when there are fewer). */
export function capItems<T>(items: readonly T[], max: number | undefined, seed: number): T[] {
  if (max === undefined || items.length <= max) return [...items];
  const idx = new Rng(seed).shuffle(items.map((_, i) => i)).slice(0, max).sort((a, b) => a - b);
  return idx.map((i) => items[i]);
}

/**
 * Drops repeated texts (same `text` and `textB`): the first copy stays when all copies agree on the
 * label; every copy goes when they disagree. Keeps the same text from landing in train and test.
 */
export function dedupeExamples(examples: readonly Example[]): { kept: Example[]; dropped: number } {
  const key = (e: Example) => e.textB === undefined ? e.text : `${e.text}\u0000${e.textB}`;
  const labels = new Map<string, Set<number>>();
  for (const e of examples) {
    const k = key(e);
    let s = labels.get(k);
    if (!s) labels.set(k, s = new Set());
    s.add(e.label);
  }
  const seen = new Set<string>();
  const kept: Example[] = [];
  for (const e of examples) {
    const k = key(e);
    if (seen.has(k) || labels.get(k)!.size > 1) continue;
    seen.add(k);
    kept.push(e);
  }
  return { kept, dropped: examples.length - kept.length };
}

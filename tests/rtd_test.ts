/**
 * Masking, sampling and labelling: the data side of replaced token detection (README, *The science, as implemented*).
 */

import assert from "node:assert/strict";
import { DEBERTA_V3_MASKING, ELECTRA_MASKING, maskBatch } from "../lib/text/masking.ts";
import { corrupt, expNonPositiveForTest, sampleFromLogits } from "../lib/train/sampling.ts";
import { Rng } from "../lib/rng.ts";
import { randomBatch, VOCAB } from "./_helpers.ts";

Deno.test("a sampled token equal to the original is labelled real; a different one replaced", () => {
  const original = Int32Array.from([2, 10, 11, 12, 13, 3, 0]);
  const selected = Int32Array.from([1, 2, 4]);
  const samples = Int32Array.from([10, 20, 13]); // position 1 and 4: the generator guessed right
  const c = corrupt(original, selected, samples);
  assert.deepEqual([...c.corruptedIds], [2, 10, 20, 12, 13, 3, 0]);
  assert.deepEqual([...c.labels], [0, 0, 1, 0, 0, 0, 0]);
  assert.equal(c.sampledCorrect, 2);
});

Deno.test("masking never selects special tokens or padding, over many seeds", () => {
  const rng = new Rng(7);
  for (let seed = 0; seed < 200; seed++) {
    const batch = randomBatch(seed, 4, 32, seed % 10);
    const m = maskBatch(batch.inputIds, 4, 32, VOCAB, ELECTRA_MASKING, rng);
    for (let i = 0; i < m.selected.length; i++) {
      assert.ok(!VOCAB.isSpecial(batch.inputIds[m.selected[i]]), `selected a special at ${m.selected[i]}`);
      assert.equal(m.targets[i], batch.inputIds[m.selected[i]]);
    }
    // Unselected positions are never changed.
    const sel = new Set(m.selected);
    for (let i = 0; i < batch.inputIds.length; i++) {
      if (!sel.has(i)) assert.equal(m.maskedIds[i], batch.inputIds[i]);
    }
  }
});

Deno.test("ELECTRA masking: 15% selected per sequence, of them ~85% [MASK] and ~15% unchanged, none random", () => {
  const rng = new Rng(1);
  let selected = 0, masked = 0, unchanged = 0, other = 0;
  for (let seed = 0; seed < 300; seed++) {
    const batch = randomBatch(seed, 4, 64, 4);
    const m = maskBatch(batch.inputIds, 4, 64, VOCAB, ELECTRA_MASKING, rng);
    // 64 − [CLS] − [SEP] − 4 pads = 58 maskable → round(8.7) = 9 per sequence.
    assert.equal(m.selected.length, 4 * 9);
    for (let i = 0; i < m.selected.length; i++) {
      selected++;
      const now = m.maskedIds[m.selected[i]];
      if (now === VOCAB.maskId) masked++;
      else if (now === m.targets[i]) unchanged++;
      else other++;
    }
  }
  assert.equal(other, 0);
  assert.ok(Math.abs(masked / selected - 0.85) < 0.02, `mask share ${masked / selected}`);
  assert.ok(Math.abs(unchanged / selected - 0.15) < 0.02);
});

Deno.test("DeBERTaV3 masking replaces every selected position with [MASK]; random share draws non-specials", () => {
  const rng = new Rng(2);
  const batch = randomBatch(1, 8, 64, 0);
  const m = maskBatch(batch.inputIds, 8, 64, VOCAB, DEBERTA_V3_MASKING, rng);
  for (const p of m.selected) assert.equal(m.maskedIds[p], VOCAB.maskId);
  const r = maskBatch(
    batch.inputIds,
    8,
    64,
    VOCAB,
    { selectProb: 0.5, maskTokenProb: 0, randomProb: 1 },
    rng,
  );
  for (const p of r.selected) assert.ok(!VOCAB.isSpecial(r.maskedIds[p]));
});

Deno.test("a sequence of only specials and padding selects nothing", () => {
  const ids = Int32Array.from([2, 3, 0, 0]);
  const m = maskBatch(ids, 1, 4, VOCAB, ELECTRA_MASKING, new Rng(0));
  assert.equal(m.selected.length, 0);
});

Deno.test("sampling follows softmax(logits/T) and honours 'disallow the correct token'", () => {
  const logits = Float32Array.from([Math.log(0.7), Math.log(0.2), Math.log(0.1)]);
  const rng = new Rng(3);
  const counts = [0, 0, 0];
  const n = 20000;
  const rows = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) rows.set(logits, 3 * i);
  for (const s of sampleFromLogits(rows, n, 3, 1, rng)) counts[s]++;
  assert.ok(Math.abs(counts[0] / n - 0.7) < 0.015 && Math.abs(counts[2] / n - 0.1) < 0.015, `${counts}`);
  // T → large flattens the distribution.
  const flat = [0, 0, 0];
  for (const s of sampleFromLogits(rows, n, 3, 100, rng)) flat[s]++;
  assert.ok(Math.abs(flat[2] / n - 1 / 3) < 0.02, `${flat}`);
  const banned = sampleFromLogits(rows, n, 3, 1, rng, new Int32Array(n).fill(0));
  assert.ok(banned.every((s) => s !== 0));
});

Deno.test("the sampler's exp is Math.exp to 2 ulp, so it picks what Math.exp's weights pick", () => {
  let worst = 0;
  for (let i = 0; i <= 700_000; i++) {
    const x = -i / 1000 - (i % 7) * 1e-7; // (−700, 0], off the grid too
    if (x <= -700) continue;
    const want = Math.exp(x);
    worst = Math.max(worst, Math.abs(expNonPositiveForTest(x) - want) / want);
  }
  assert.ok(worst <= 4.5e-16, `max relative error ${worst}`);
  // The old sampler (Math.exp weights, the same inverse CDF) on rows of a peaked and a flat generator,
  // a far-below-max tail (e^x underflows) and −Infinity / banned entries.
  const reference = (
    logits: Float32Array,
    rows: number,
    vocab: number,
    t: number,
    rng: Rng,
    banned?: Int32Array,
  ) =>
    Int32Array.from({ length: rows }, (_, r) => {
      const row = logits.subarray(r * vocab, (r + 1) * vocab);
      const ban = banned ? banned[r] : -1;
      const max = Math.max(...row.filter((_, v) => v !== ban));
      const w: number[] = [];
      let total = 0;
      for (let v = 0; v < vocab; v++) w.push(total += v === ban ? 0 : Math.exp((row[v] - max) / t));
      const u = rng.next() * total;
      const pick = w.findIndex((c) => c > u);
      return pick < 0 ? vocab - 1 : pick;
    });
  const rows = 400, vocab = 500;
  const logits = new Float32Array(rows * vocab);
  const g = new Rng(11);
  for (let i = 0; i < logits.length; i++) {
    const r = Math.floor(i / vocab);
    logits[i] = (g.next() - 0.5) * (r % 4 === 0 ? 2 : r % 4 === 1 ? 30 : r % 4 === 2 ? 2000 : 8);
    if (r % 4 === 3 && i % 9 === 0) logits[i] = -Infinity;
  }
  const banned = Int32Array.from({ length: rows }, (_, r) => (r * 37) % vocab);
  for (const [t, ban] of [[1, undefined], [0.7, undefined], [1, banned]] as const) {
    assert.deepEqual(
      sampleFromLogits(logits, rows, vocab, t, new Rng(5), ban),
      reference(logits, rows, vocab, t, new Rng(5), ban),
      `T=${t}${ban ? ", banned" : ""}`,
    );
  }
});

Deno.test("the same seed gives the same masks and samples", () => {
  const batch = randomBatch(5, 4, 32, 2);
  const a = maskBatch(batch.inputIds, 4, 32, VOCAB, ELECTRA_MASKING, new Rng(9));
  const b = maskBatch(batch.inputIds, 4, 32, VOCAB, ELECTRA_MASKING, new Rng(9));
  assert.deepEqual(a, b);
  const c = maskBatch(batch.inputIds, 4, 32, VOCAB, ELECTRA_MASKING, new Rng(10));
  assert.notDeepEqual(a.selected, c.selected);
  const rng = new Rng(4);
  const saved = rng.state();
  const x = [rng.next(), rng.next()];
  assert.deepEqual([Rng.fromState(saved).next(), Rng.fromState(saved).next()], [x[0], x[0]]);
});

import assert from "node:assert/strict";
import { Rng } from "../lib/rng.ts";
import { packDocuments, type PackedCorpus } from "../lib/text/packing.ts";

const PAD = 0, CLS = 2, SEP = 3;

/** Document d's tokens are 1000*(d+1) + k, so every token tells its document. */
function syntheticDocs(rng: Rng): number[][][] {
  const docs: number[][][] = [];
  for (let d = 0; d < 30; d++) {
    const sentences: number[][] = [];
    const n = rng.int(12); // some documents are empty
    for (let s = 0; s < n; s++) {
      const len = rng.next() < 0.05 ? 40 + rng.int(20) : rng.int(12); // some over-long, some empty
      sentences.push(Array.from({ length: len }, () => 1000 * (d + 1) + rng.int(999)));
    }
    docs.push(sentences);
  }
  return docs;
}

function rows(p: PackedCorpus): { ids: number[]; types: number[] }[] {
  return Array.from({ length: p.count }, (_, r) => ({
    ids: Array.from(p.inputIds.subarray(r * p.length, (r + 1) * p.length)),
    types: Array.from(p.tokenTypeIds.subarray(r * p.length, (r + 1) * p.length)),
  }));
}

Deno.test("packDocuments: row layout, token types, padding, one document per row", () => {
  const maxLength = 24;
  const docs = syntheticDocs(new Rng(1));
  const p = packDocuments(docs, { maxLength, cls: CLS, sep: SEP, pad: PAD, rng: new Rng(2) });
  assert.equal(p.length, maxLength);
  assert.equal(p.inputIds.length, p.count * maxLength);
  assert.equal(p.tokenTypeIds.length, p.count * maxLength);
  let pairs = 0;
  const docOrder: number[] = [];
  for (const { ids, types } of rows(p)) {
    assert.equal(ids[0], CLS);
    const end = ids.indexOf(PAD) < 0 ? maxLength : ids.indexOf(PAD);
    assert.ok(ids.slice(end).every((t) => t === PAD), "padding only at the end");
    assert.ok(types.slice(end).every((t) => t === 0), "padding has type 0");
    const seps = ids.map((t, i) => (t === SEP ? i : -1)).filter((i) => i >= 0);
    assert.ok(seps.length === 1 || seps.length === 2, `one or two [SEP], got ${seps.length}`);
    assert.equal(seps.at(-1), end - 1, "last real token is [SEP]");
    assert.ok(seps[0] > 1, "segment A is not empty");
    if (seps.length === 2) {
      pairs++;
      assert.ok(seps[1] > seps[0] + 1, "segment B is not empty");
      assert.ok(types.slice(0, seps[0] + 1).every((t) => t === 0));
      assert.ok(types.slice(seps[0] + 1, end).every((t) => t === 1));
    } else assert.ok(types.every((t) => t === 0));
    const content = ids.filter((t) => t >= 1000);
    assert.equal(content.length, end - 1 - seps.length);
    const docIds = new Set(content.map((t) => Math.floor(t / 1000)));
    assert.equal(docIds.size, 1, "a row never mixes documents");
    docOrder.push([...docIds][0]);
  }
  assert.ok(pairs > 0 && pairs < p.count, "both A-only and A/B rows occur");
  assert.deepEqual(docOrder, [...docOrder].sort((a, b) => a - b), "documents stay in order");
  // Nothing lost except the tails of over-long sentences.
  const budget = maxLength - 3;
  const expected = docs.flat().reduce((a, s) => a + Math.min(s.length, budget), 0);
  assert.equal(p.inputIds.filter((t) => t >= 1000).length, expected);
});

Deno.test("packDocuments: greedy filling, truncation, determinism", () => {
  const s = (d: number, n: number) => Array.from({ length: n }, (_, k) => 1000 * d + k);
  const docs = [[s(1, 3), s(1, 4), s(1, 5)], [s(2, 30)], [s(3, 2)]];
  const p = packDocuments(docs, { maxLength: 12, cls: CLS, sep: SEP, pad: PAD, rng: new Rng(3) });
  const r = rows(p);
  assert.equal(p.count, 4);
  // doc 1: 3+4 fit in 9, +5 does not: row 1 = two sentences, row 2 = one sentence.
  assert.equal(r[0].ids.filter((t) => t === SEP).length, 2);
  assert.deepEqual(r[0].ids.slice(0, 10), [CLS, ...s(1, 3), SEP, ...s(1, 4), SEP]);
  assert.deepEqual(r[1].ids, [CLS, ...s(1, 5), SEP, PAD, PAD, PAD, PAD, PAD]);
  assert.deepEqual(r[2].ids, [CLS, ...s(2, 9), SEP, PAD]); // truncated to maxLength - 3
  assert.deepEqual(r[3].ids, [CLS, ...s(3, 2), SEP, ...Array(8).fill(PAD)]);
  const again = packDocuments(docs, { maxLength: 12, cls: CLS, sep: SEP, pad: PAD, rng: new Rng(3) });
  assert.deepEqual(again.inputIds, p.inputIds);
  assert.deepEqual(
    packDocuments([[], [[]]], { maxLength: 8, cls: CLS, sep: SEP, pad: PAD, rng: new Rng(1) }).count,
    0,
  );
  assert.throws(
    () => packDocuments(docs, { maxLength: 3, cls: CLS, sep: SEP, pad: PAD, rng: new Rng(1) }),
    /maxLength/,
  );
});

Deno.test('packDocuments: longSentences "split" keeps every token of an over-long sentence', () => {
  const s = (d: number, n: number) => Array.from({ length: n }, (_, k) => 1000 * d + k);
  const docs = [[s(1, 2), s(1, 20), s(1, 3)], [s(2, 9)]];
  const p = packDocuments(docs, {
    maxLength: 12,
    cls: CLS,
    sep: SEP,
    pad: PAD,
    rng: new Rng(1),
    longSentences: "split",
  });
  assert.deepEqual(rows(p).map((x) => x.ids), [
    [CLS, ...s(1, 2), SEP, ...Array(8).fill(PAD)],
    [CLS, ...s(1, 9), SEP, PAD],
    [CLS, ...s(1, 18).slice(9), SEP, PAD],
    [CLS, 1018, 1019, SEP, ...s(1, 3), SEP, PAD, PAD, PAD, PAD], // the remainder packs with the next sentence
    [CLS, ...s(2, 9), SEP, PAD],
  ]);
});

Deno.test("packDocuments: the A/B split point follows the rng", () => {
  const doc = Array.from({ length: 6 }, (_, i) => [1000 + i]);
  const splits = new Set<number>();
  for (let seed = 0; seed < 40; seed++) {
    const p = packDocuments([doc], { maxLength: 16, cls: CLS, sep: SEP, pad: PAD, rng: new Rng(seed) });
    splits.add(Array.from(p.inputIds).indexOf(SEP));
  }
  assert.deepEqual([...splits].sort((a, b) => a - b), [2, 3, 4, 5, 6]); // every boundary, never an empty A or B
});

import assert from "node:assert/strict";
import { Rng } from "../lib/rng.ts";
import { trainWordPiece } from "../lib/text/wordpiece_trainer.ts";

/** Synthetic text: frequent whole words, their rarer inflections, and random filler words. */
function syntheticTexts(): string[] {
  const rng = new Rng(7);
  const frequent = ["the", "generator", "discriminator", "embedding", "token", "and"];
  const rare = ["generators", "discriminators", "embeddings", "tokens", "regenerator"];
  const letters = "bcdfghklmnprstvz";
  const texts: string[] = [];
  for (let d = 0; d < 40; d++) {
    const words: string[] = [];
    for (let i = 0; i < 400; i++) {
      const r = rng.next();
      if (r < 0.8) words.push(frequent[rng.int(frequent.length)]);
      else if (r < 0.85) words.push(rare[rng.int(rare.length)]);
      else {
        let w = "";
        for (let k = 0; k < 3 + rng.int(5); k++) w += letters[rng.int(letters.length)];
        words.push(w);
      }
      if (rng.next() < 0.1) words.push(".");
    }
    texts.push(words.join(" "));
  }
  return texts;
}

Deno.test("trainWordPiece: learns frequent whole words and ## continuation pieces", () => {
  const texts = syntheticTexts();
  const tk = trainWordPiece(texts, { vocabSize: 120 });
  assert.ok(tk.vocabSize <= 120);
  assert.deepEqual(
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map((t) => tk.tokenToId(t)),
    [0, 1, 2, 3, 4],
  );
  for (const w of ["the", "generator", "discriminator", "embedding", "token"]) {
    assert.deepEqual(tk.tokenize(w), [w], `${w} should be one token`);
  }
  assert.deepEqual(tk.tokenize("The GENERATOR."), ["the", "generator", "."]);
  // Unseen words come out as a word-start piece plus ## pieces.
  const pieces = tk.tokenize("discriminatorb");
  assert.equal(pieces[0], "discriminator");
  assert.ok(pieces.slice(1).some((p) => p.startsWith("##")), pieces.join(" "));
  const vocab = Array.from({ length: tk.vocabSize }, (_, i) => tk.idToToken(i));
  assert.ok(vocab.some((t) => t.startsWith("##") && t.length > 3), "merged ## pieces");
  assert.ok(vocab.includes("b") && vocab.includes("##b"), "alphabet in both forms");
  assert.equal(new Set(vocab).size, vocab.length);
  // No [UNK] for text over the training alphabet.
  assert.ok(!tk.encode(texts[0]).includes(1));
});

Deno.test("trainWordPiece: deterministic, honours minFrequency, checks its options", () => {
  const texts = syntheticTexts();
  const a = trainWordPiece(texts, { vocabSize: 100 }).toJSON();
  const b = trainWordPiece(texts, { vocabSize: 100 }).toJSON();
  assert.deepEqual(a, b);
  // With every pair seen once, a high minFrequency leaves only specials + alphabet.
  const tiny = trainWordPiece(["ab cd ef"], { vocabSize: 100, minFrequency: 2 });
  assert.equal(tiny.vocabSize, 5 + 2 * 6);
  assert.throws(() => trainWordPiece(texts, { vocabSize: 10 }), /vocabSize 10 cannot hold/);
  assert.throws(() => trainWordPiece(["  "], { vocabSize: 100 }), /empty corpus/);
  // limitAlphabet drops rare characters; words holding them are left out of training.
  const lim = trainWordPiece(["aaa aaa bbb q"], { vocabSize: 50, limitAlphabet: 2, minFrequency: 1 });
  assert.equal(lim.tokenToId("q"), undefined);
  assert.deepEqual(lim.tokenize("q"), ["[UNK]"]);
});

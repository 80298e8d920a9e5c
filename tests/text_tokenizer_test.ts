import assert from "node:assert/strict";
import { join } from "node:path";
import { BertNormalizer, Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import {
  BERT_UNCASED_NORMALIZER,
  bertBaseUncased,
  bertNormalize,
  tokenizerJsonFromVocab,
  WordPieceTokenizer,
} from "../lib/text/tokenizer.ts";

const SMALL_VOCAB = [
  "[PAD]",
  "[UNK]",
  "[CLS]",
  "[SEP]",
  "[MASK]",
  ...".,!'abcdefghijklmnopqrstuvwxyz".split(""),
  ..."abcdefghijklmnopqrstuvwxyz".split("").map((c) => `##${c}`),
  "the",
  "cat",
  "sat",
  "on",
  "mat",
  "##at",
  "cafe",
  "un",
  "##able",
];

Deno.test("tokenizer: save -> load gives the same encodings and JSON", async () => {
  const tk = WordPieceTokenizer.fromVocab(SMALL_VOCAB);
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "sub", "tokenizer.json");
    await tk.save(path);
    const back = await WordPieceTokenizer.load(path);
    assert.deepEqual(back.toJSON(), tk.toJSON());
    for (const s of ["The cats sat on the mat.", "Unable CAFÉ!", "zzz qxj", "[MASK] sat"]) {
      assert.deepEqual(back.encode(s), tk.encode(s));
    }
    assert.deepEqual([...Deno.readDirSync(join(dir, "sub"))].map((e) => e.name), ["tokenizer.json"]); // no temp left
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizer: WordPiece pieces, specials, decode, pairs", () => {
  const tk = WordPieceTokenizer.fromVocab(SMALL_VOCAB);
  assert.deepEqual(tk.specialIds, { pad: 0, unk: 1, cls: 2, sep: 3, mask: 4 });
  assert.equal(tk.vocabSize, SMALL_VOCAB.length);
  assert.deepEqual(tk.tokenize("The cats sat."), ["the", "cat", "##s", "sat", "."]);
  assert.deepEqual(tk.tokenize("Unable café"), ["un", "##able", "cafe"]);
  assert.deepEqual(tk.tokenize("x9"), ["[UNK]"]); // "9" is not in the vocabulary
  assert.deepEqual(tk.tokenize("the [MASK] sat"), ["the", "[MASK]", "sat"]);
  assert.equal(tk.decode(tk.encode("The cats sat on the mat.")), "the cats sat on the mat.");
  assert.equal(tk.decode([2, tk.tokenToId("cat")!, 3, 0]), "[CLS] cat [SEP] [PAD]");
  assert.equal(tk.decode([2, tk.tokenToId("cat")!, 3, 0], { skipSpecial: true }), "cat");
  assert.equal(tk.decode([]), "");
  assert.ok(tk.isSpecial(0) && tk.isSpecial(4) && !tk.isSpecial(5));
  assert.equal(tk.idToToken(tk.tokenToId("##able")!), "##able");
  assert.equal(tk.tokenToId("dog"), undefined);
  assert.throws(() => tk.idToToken(9999), /outside the vocabulary/);
  assert.throws(() => tk.decode([9999]), /outside the vocabulary/);
  const { ids, tokenTypeIds } = tk.encodePair("the cat", "sat");
  assert.deepEqual(ids, [2, tk.tokenToId("the"), tk.tokenToId("cat"), 3, tk.tokenToId("sat"), 3]);
  assert.deepEqual(tokenTypeIds, [0, 0, 0, 0, 1, 1]);
  // tokenizers.js, running the same tokenizer.json with its TemplateProcessing, agrees.
  const hf = new HfTokenizer(tk.toJSON(), {});
  const e = hf.encode("the cat", { text_pair: "sat", return_token_type_ids: true });
  assert.deepEqual(e.ids, ids);
  assert.deepEqual(e.token_type_ids, tokenTypeIds);
});

Deno.test("tokenizer: fast normalizer equals tokenizers.js BertNormalizer", () => {
  const hf = new BertNormalizer({ ...BERT_UNCASED_NORMALIZER, strip_accents: undefined });
  const cases = [
    "Plain ASCII, with\ttabs\nand\r\nnewlines.",
    "Héllo\u0000 wörld\u200b\u00a0nbsp\u2028x\ufeffy \u4e2d\u6587 İstanbul ÆSIR ß ﬁ \uFFFD \u{1F600} \u000b\u000c\u007f",
    "Ça va? Naïve résumé — “quotes” ‘single’ … ½",
  ];
  for (const c of cases) assert.equal(bertNormalize(c), hf(c), JSON.stringify(c));
});

Deno.test("tokenizer: added tokens numbered after the vocabulary, as HuggingFace writes them", () => {
  const json = tokenizerJsonFromVocab(SMALL_VOCAB);
  const id = SMALL_VOCAB.length;
  json.added_tokens.push({ ...json.added_tokens[0], id, content: "<doc>", special: true });
  const tk = WordPieceTokenizer.fromJSON(json);
  assert.equal(tk.vocabSize, id + 1);
  assert.equal(tk.tokenToId("<doc>"), id);
  assert.ok(tk.isSpecial(id));
  assert.deepEqual(tk.tokenize("the<doc>cat"), ["the", "<doc>", "cat"]);
  assert.equal(tk.decode(tk.encode("the <doc> cat"), { skipSpecial: true }), "the cat");
  const hf = new HfTokenizer(tk.toJSON(), {});
  assert.deepEqual(
    tk.encode("the<doc>cat [SEP]"),
    hf.encode("the<doc>cat [SEP]", { add_special_tokens: false }).ids,
  );
  json.added_tokens.at(-1)!.id = id + 1;
  assert.throws(() => WordPieceTokenizer.fromJSON(json), /continue the vocabulary/);
});

Deno.test("tokenizer: rejects tokenizer.json that is not BERT-style WordPiece", () => {
  const json = tokenizerJsonFromVocab(SMALL_VOCAB) as unknown as Record<string, Record<string, unknown>>;
  assert.throws(
    () => WordPieceTokenizer.fromJSON({ ...json, model: { ...json.model, type: "BPE" } }),
    /WordPiece/,
  );
  const vocab = { ...(json.model.vocab as Record<string, number>) };
  delete vocab["[MASK]"];
  vocab["mask"] = 4;
  assert.throws(() => WordPieceTokenizer.fromJSON({ ...json, model: { ...json.model, vocab } }), /\[MASK\]/);
  assert.throws(() => WordPieceTokenizer.fromJSON([]), /JSON object/);
  assert.throws(() => tokenizerJsonFromVocab(["[PAD]", "a", "a"]), /appears twice/);
});

Deno.test("bertBaseUncased: vocab.json converts to bert-base-uncased ids", async () => {
  const tk = await bertBaseUncased();
  assert.equal(tk.vocabSize, 30522);
  assert.deepEqual(tk.specialIds, { pad: 0, unk: 100, cls: 101, sep: 102, mask: 103 });
  const ids: Record<string, number> = {
    "[unused0]": 1,
    "the": 1996,
    "##s": 2015,
    "!": 999,
    ",": 1010,
    "hello": 7592,
  };
  for (const [tok, id] of Object.entries(ids)) assert.equal(tk.tokenToId(tok), id, tok);
  assert.deepEqual(tk.encode("Hello, world!"), [7592, 1010, 2088, 999]);
  assert.deepEqual(tk.tokenize("unaffable"), ["una", "##ffa", "##ble"]);
  assert.deepEqual(tk.encodePair("Hello").ids, [101, 7592, 102]);
  // Same ids as tokenizers.js's own full pipeline on text with accents, specials and punctuation.
  const hf = new HfTokenizer(tk.toJSON(), {});
  const text = "The café's naïve [MASK] costs $3.50 -- isn't it?\nYes [SEP] no.";
  assert.deepEqual(tk.encode(text), hf.encode(text, { add_special_tokens: false }).ids);
});

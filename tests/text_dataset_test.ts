import assert from "node:assert/strict";
import { join } from "node:path";
import {
  defaultCacheDir,
  loadPacked,
  prepareCorpus,
  type PrepareCorpusOptions,
  savePacked,
} from "../lib/text/dataset.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rtdlab_dataset_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function writeCorpus(dir: string): Promise<string> {
  const corpus = join(dir, "corpus");
  await Deno.mkdir(corpus);
  const topics = ["whales and ships", "gardens and roses", "engines and gears"];
  for (let d = 0; d < 3; d++) {
    const sentences = Array.from(
      { length: 60 },
      (_, i) => `Sentence ${i} of document ${d} talks about ${topics[d]}${" again".repeat(i % 5)}.`,
    );
    await Deno.writeTextFile(join(corpus, `doc${d}.txt`), sentences.join(" "));
  }
  return corpus;
}

Deno.test("prepareCorpus: trains, packs, caches; a second call reads the cache", async () => {
  await withTempDir(async (dir) => {
    const corpus = await writeCorpus(dir);
    const cacheDir = join(dir, "cache");
    const opts = { corpus, tokenizer: "trained", vocabSize: 200, maxLength: 32, seed: 5, cacheDir };
    const msgs: string[] = [];
    const a = await prepareCorpus({ ...opts, onProgress: (m) => msgs.push(m) });
    assert.equal(a.fromCache, false);
    assert.ok(msgs.some((m) => m.includes("training")));
    assert.ok(a.tokenizer.vocabSize <= 200);
    assert.equal(a.data.length, 32);
    assert.ok(a.data.count > 10);
    const { cls, sep, pad } = a.tokenizer.specialIds;
    for (let r = 0; r < a.data.count; r++) {
      const row = a.data.inputIds.subarray(r * 32, (r + 1) * 32);
      assert.equal(row[0], cls);
      assert.ok(row.includes(sep));
    }
    assert.ok(a.data.inputIds.includes(pad));
    assert.equal(a.tokenizer.decode(a.data.inputIds.subarray(1, 4)), "sentence 0 of");

    const b = await prepareCorpus(opts);
    assert.equal(b.fromCache, true);
    assert.equal(b.cacheKey, a.cacheKey);
    assert.deepEqual(b.data.inputIds, a.data.inputIds);
    assert.deepEqual(b.data.tokenTypeIds, a.data.tokenTypeIds);
    assert.deepEqual(b.tokenizer.toJSON(), a.tokenizer.toJSON());

    // The vocabulary copied into a run folder (what --resume and --init-from read) finds the same rows.
    const copy = join(dir, "run-tokenizer.json");
    await a.tokenizer.save(copy);
    const resumed = await prepareCorpus({ ...opts, tokenizer: copy });
    assert.equal(resumed.fromCache, true);
    assert.equal(resumed.cacheKey, a.cacheKey);
    // With that fixed vocabulary, a character cap alone still packs again (a trained one would differ anyway).
    const capped = await prepareCorpus({ ...opts, tokenizer: copy, maxChars: 400 });
    assert.equal(capped.fromCache, false, "a capped corpus read the uncapped rows");
    assert.notEqual(capped.cacheKey, a.cacheKey);

    // Another seed re-packs (new key) but reuses the trained tokenizer.
    const msgs2: string[] = [];
    const c = await prepareCorpus({ ...opts, seed: 6, onProgress: (m) => msgs2.push(m) });
    assert.notEqual(c.cacheKey, a.cacheKey);
    assert.ok(!msgs2.some((m) => m.includes("training")));
    assert.deepEqual(c.tokenizer.toJSON(), a.tokenizer.toJSON());

    // Each setting the rows depend on names its own entry: a changed one never reads stale rows.
    for (
      const [what, change] of [
        ["maxLength", { maxLength: 16 }],
        ["maxChars", { maxChars: 400 }],
        ["longSentences", { longSentences: "split" }],
      ] as [string, Partial<PrepareCorpusOptions>][]
    ) {
      const other = await prepareCorpus({ ...opts, ...change });
      assert.equal(other.fromCache, false, `${what}: read the cache of another setting`);
      assert.notEqual(other.cacheKey, a.cacheKey, what);
    }
    // Another vocabulary size trains another tokenizer (its own cache entry) and packs again.
    const msgs3: string[] = [];
    const small = await prepareCorpus({ ...opts, vocabSize: 150, onProgress: (m) => msgs3.push(m) });
    assert.ok(msgs3.some((m) => m.includes("training")), "vocabSize 150 reused the 200-token vocabulary");
    assert.notEqual(small.cacheKey, a.cacheKey);
    // A corpus too small for the size asked says how many tokens it gave (200 and 150 fit here).
    assert.ok(!msgs3.some((m) => m.startsWith("note:")), msgs3.join("\n"));
    const msgs4: string[] = [];
    const big = await prepareCorpus({ ...opts, vocabSize: 5000, onProgress: (m) => msgs4.push(m) });
    assert.ok(big.tokenizer.vocabSize < 5000);
    assert.ok(
      msgs4.includes(
        `note: the vocabulary has ${big.tokenizer.vocabSize} tokens, not 5000: no pair of the corpus is left ` +
          "that occurs twice",
      ),
      msgs4.join("\n"),
    );

    // Changing a corpus file changes the key.
    await Deno.writeTextFile(join(corpus, "doc3.txt"), "A new document. With new words.");
    const d = await prepareCorpus(opts);
    assert.equal(d.fromCache, false);
    assert.notEqual(d.cacheKey, a.cacheKey);

    // A damaged cache file is rebuilt, not trusted.
    const packed = join(cacheDir, "packed", `${d.cacheKey}.bin`);
    await Deno.writeFile(packed, (await Deno.readFile(packed)).subarray(0, 100));
    const e = await prepareCorpus(opts);
    assert.equal(e.fromCache, false);
    assert.deepEqual(e.data.inputIds, d.data.inputIds);
    assert.ok(
      [...Deno.readDirSync(join(cacheDir, "packed"))].every((f) => f.name.endsWith(".bin")),
      "no temp files",
    );
  });
});

Deno.test("prepareCorpus: bert-base-uncased and a tokenizer.json path on a packaged corpus", async () => {
  await withTempDir(async (dir) => {
    const cacheDir = join(dir, "cache");
    const base = { corpus: "gutenberg", maxLength: 64, seed: 1, maxChars: 100_000, cacheDir };
    const bert = await prepareCorpus({ ...base, tokenizer: "bert-base-uncased" });
    assert.equal(bert.tokenizer.vocabSize, 30522);
    assert.equal(bert.data.inputIds[0], 101);
    assert.ok(bert.data.count > 300, `${bert.data.count} rows`);
    const path = join(dir, "tokenizer.json");
    await bert.tokenizer.save(path);
    const file = await prepareCorpus({ ...base, tokenizer: path });
    assert.notEqual(file.cacheKey, bert.cacheKey);
    assert.deepEqual(file.data.inputIds, bert.data.inputIds);
    await assert.rejects(
      () => prepareCorpus({ ...base, tokenizer: join(dir, "missing.json") }),
      /tokenizer must be "trained", "bert-base-uncased" or a tokenizer.json path/,
    );
  });
});

Deno.test("prepareCorpus: a combined corpus's mix is recorded when packed and read back from the cache", async () => {
  await withTempDir(async (dir) => {
    const cacheDir = join(dir, "cache");
    const corpus = "brown+sotu";
    const base = {
      corpus,
      tokenizer: "bert-base-uncased",
      maxLength: 64,
      seed: 1,
      maxChars: 50_000,
      cacheDir,
    };
    const packed = await prepareCorpus(base);
    assert.equal(packed.fromCache, false);
    const total = Object.values(packed.parts!).reduce((a, b) => a + b, 0);
    assert.deepEqual(Object.keys(packed.parts!), ["brown", "sotu"]);
    assert.ok(total > 49_000 && total <= 50_000, `${total} characters`);
    const hit = await prepareCorpus(base);
    assert.equal(hit.fromCache, true);
    assert.deepEqual(hit.parts, packed.parts);
    // One corpus: no mix to report.
    assert.equal((await prepareCorpus({ ...base, corpus: "brown" })).parts, undefined);
  });
});

Deno.test("prepareCorpus: errors name the problem", async () => {
  await withTempDir(async (dir) => {
    const corpus = join(dir, "punct");
    await Deno.mkdir(corpus);
    await Deno.writeTextFile(join(corpus, "a.txt"), "\u200b\u200b");
    const opts = { corpus, tokenizer: "bert-base-uncased", maxLength: 16, seed: 1, cacheDir: join(dir, "c") };
    await assert.rejects(() => prepareCorpus(opts), /empty corpus/);
    await assert.rejects(() => prepareCorpus({ ...opts, corpus: "nope" }), /unknown corpus "nope"/);
    await assert.rejects(() => prepareCorpus({ ...opts, maxLength: 2 }), /maxLength/);
  });
});

Deno.test("savePacked/loadPacked round trip", async () => {
  await withTempDir(async (dir) => {
    const data = {
      length: 3,
      count: 2,
      inputIds: new Int32Array([2, 7, 3, 2, -1, 2147483647]),
      tokenTypeIds: new Int32Array([0, 0, 0, 0, 1, 1]),
    };
    const path = join(dir, "x.bin");
    await savePacked(path, data, { note: "é" });
    const back = await loadPacked(path);
    assert.deepEqual(back.data, data);
    assert.deepEqual(back.meta, { note: "é" });
    await Deno.writeTextFile(path, "garbage");
    await assert.rejects(() => loadPacked(path), /not an rtdlab packed-corpus file/);
  });
});

Deno.test("defaultCacheDir: RTDLAB_CACHE, else .cache/rtdlab under the working directory", () => {
  const old = Deno.env.get("RTDLAB_CACHE");
  try {
    Deno.env.set("RTDLAB_CACHE", "/tmp/somewhere/rtd");
    assert.equal(defaultCacheDir(), "/tmp/somewhere/rtd");
    Deno.env.delete("RTDLAB_CACHE");
    assert.equal(defaultCacheDir(), join(Deno.cwd(), ".cache", "rtdlab"));
  } finally {
    if (old === undefined) Deno.env.delete("RTDLAB_CACHE");
    else Deno.env.set("RTDLAB_CACHE", old);
  }
});

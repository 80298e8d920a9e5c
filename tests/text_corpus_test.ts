import assert from "node:assert/strict";
import { join } from "node:path";
import {
  CORPORA,
  corpusFingerprint,
  corpusParts,
  describeParts,
  loadCorpus,
  partShares,
  stripGutenbergBoilerplate,
} from "../lib/text/corpus.ts";
import { applyOverrides, preset, validateConfig } from "../lib/config.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rtdlab_corpus_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadCorpus: unknown name lists the known corpora", async () => {
  await assert.rejects(() => loadCorpus("no-such-corpus"), (e: Error) => {
    assert.match(e.message, /unknown corpus "no-such-corpus"/);
    for (const name of Object.keys(CORPORA)) assert.ok(e.message.includes(name), name);
    return true;
  });
});

Deno.test("loadCorpus: folder errors (no .txt, only empty text, a file, invalid UTF-8)", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "notes.md"), "not a txt file");
    await assert.rejects(() => loadCorpus(dir), /empty corpus: folder .* holds no \.txt files/);
    await Deno.writeTextFile(join(dir, "a.txt"), "  \n\n ");
    await assert.rejects(() => loadCorpus(dir), /empty corpus: every \.txt file .* is empty/);
    await assert.rejects(() => loadCorpus(join(dir, "a.txt")), /is a file/);
    await Deno.mkdir(join(dir, "deep", "er"), { recursive: true });
    await Deno.writeFile(
      join(dir, "deep", "er", "latin1.txt"),
      new Uint8Array([0x43, 0x61, 0x66, 0xe9, 0x0a]),
    );
    await assert.rejects(() => loadCorpus(dir), (e: Error) => {
      assert.match(e.message, /not valid UTF-8/);
      assert.ok(e.message.includes(join("deep", "er", "latin1.txt")), e.message);
      return true;
    });
  });
});

Deno.test("loadCorpus: folder documents in path order, recursive, maxChars cap", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "b"));
    await Deno.writeTextFile(join(dir, "b", "x.TXT"), "Third doc here.");
    await Deno.writeTextFile(join(dir, "a.txt"), "\uFEFFFirst doc. It has two sentences.");
    await Deno.writeTextFile(join(dir, "a2.txt"), "");
    await Deno.writeTextFile(join(dir, "ab.txt"), "Second doc.");
    const docs = await loadCorpus(dir);
    assert.deepEqual(docs.map((d) => d.source), ["a.txt", "ab.txt", join("b", "x.TXT")]);
    assert.equal(docs[0].text.startsWith("First"), true, "BOM removed");
    const capped = await loadCorpus(dir, { maxChars: 45 });
    assert.deepEqual(capped.map((d) => d.text), ["First doc. It has two sentences.", "Second doc."]);
    const cut = await loadCorpus(dir, { maxChars: 20 });
    assert.deepEqual(cut.map((d) => d.text), ["First doc. It has"]);
    // What a cap leaves out, for judging a run on text it never saw: the cut document's rest, then the others.
    assert.deepEqual(
      (await loadCorpus(dir, { maxChars: 20, beyondCap: true })).map((d) => [d.source, d.text]),
      [
        ["a.txt", "two sentences."],
        ["ab.txt", "Second doc."],
        [join("b", "x.TXT"), "Third doc here."],
      ],
    );
    assert.deepEqual(
      (await loadCorpus(dir, { maxChars: 45, beyondCap: true })).map((d) => d.text),
      ["Third doc here."],
    );
    assert.deepEqual(await loadCorpus(dir, { maxChars: 10_000, beyondCap: true }), []);
    await assert.rejects(() => loadCorpus(dir, { beyondCap: true }), /beyondCap needs a maxChars cap/);
    // 0 is the config's corpusMaxChars "no cap"; a negative or fractional cap is an error.
    assert.deepEqual(await loadCorpus(dir, { maxChars: 0 }), docs);
    await assert.rejects(() => loadCorpus(dir, { maxChars: -1 }), /maxChars must be a non-negative integer/);
    await assert.rejects(() => loadCorpus(dir, { maxChars: 2.5 }), /maxChars/);
    const fp = await corpusFingerprint(dir);
    await Deno.writeTextFile(join(dir, "ab.txt"), "Second doc, changed.");
    assert.notEqual(await corpusFingerprint(dir), fp);
  });
});

Deno.test("corpora combine with +: documents in turn, every part's fingerprint, errors name the part", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "a.txt"), "Folder doc one.");
    await Deno.writeTextFile(join(dir, "b.txt"), "Folder doc two.");
    const syn = "synthetic:plain:tokens=300:sentences=4";
    const name = `${syn}+${dir}`;
    assert.deepEqual(corpusParts(name), [syn, dir]);
    const alone = await loadCorpus(syn);
    const docs = await loadCorpus(name);
    assert.equal(docs.length, alone.length + 2);
    // Taken in turn, so a cap mixes both parts.
    assert.deepEqual(docs.slice(0, 4).map((d) => d.source), [
      alone[0].source,
      "a.txt",
      alone[1].source,
      "b.txt",
    ]);
    const fp = await corpusFingerprint(name);
    await Deno.writeTextFile(join(dir, "b.txt"), "Folder doc two, changed.");
    assert.notEqual(await corpusFingerprint(name), fp);
    // A "+" in a number does not split; a folder whose name holds "+" is a folder.
    assert.equal(corpusParts("synthetic:plain:tokens=1e+3"), null);
    assert.deepEqual(corpusParts("synthetic:plain:tokens=1e+3+brown"), [
      "synthetic:plain:tokens=1e+3",
      "brown",
    ]);
    const plus = join(dir, "x+y");
    await Deno.mkdir(plus);
    assert.equal(corpusParts(plus), null);
  });
  assert.throws(() => corpusParts("brown++sotu"), /empty part/);
  assert.throws(() => corpusParts("brown+sotu+brown"), /names "brown" twice/);
  await assert.rejects(() => loadCorpus("brown+no-such-corpus"), /unknown corpus "no-such-corpus"/);
  assert.throws(
    () => validateConfig(applyOverrides(preset("tiny"), { corpus: "gutenberg+synthetic:nope" })),
    /unknown synthetic language "nope"/,
  );
});

Deno.test("stripGutenbergBoilerplate removes the licence header and footer", () => {
  const text =
    "The Project Gutenberg EBook of X\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\nStory text.\n\n" +
    "End of Project Gutenberg's X\n\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\nlicence...";
  assert.equal(stripGutenbergBoilerplate(text), "Story text.");
  assert.equal(stripGutenbergBoilerplate("No boilerplate at all."), "No boilerplate at all.");
});

// Sizes measured on the pinned package versions (documents, characters, whitespace words).
const EXPECTED: Record<
  string,
  { docs: number; minChars: number; minWords: number; first: string; has: RegExp }
> = {
  gutenberg: {
    docs: 18,
    minChars: 11e6,
    minWords: 2.0e6,
    first: "gutenberg/austen-emma",
    has: /Emma Woodhouse/,
  },
  brown: {
    docs: 500,
    minChars: 5.5e6,
    minWords: 1.0e6,
    first: "brown/ca01",
    has: /^The Fulton County Grand Jury/,
  },
  sotu: {
    docs: 233,
    minChars: 10e6,
    minWords: 1.7e6,
    first: "sotu/1790_george_washington_n",
    has: /^Fellow-Citizens/,
  },
  wordnet: { docs: 45, minChars: 10e6, minWords: 1.5e6, first: "wordnet/adj.all", has: /^able: / },
};

for (const name of Object.keys(CORPORA)) {
  Deno.test(`loadCorpus("${name}") loads the packaged corpus`, async () => {
    const exp = EXPECTED[name];
    const docs = await loadCorpus(name);
    assert.equal(docs.length, exp.docs);
    assert.equal(docs[0].source, exp.first);
    assert.match(docs[0].text, exp.has);
    const chars = docs.reduce((a, d) => a + d.text.length, 0);
    const words = docs.reduce((a, d) => a + (d.text.match(/\S+/g)?.length ?? 0), 0);
    assert.ok(chars > exp.minChars && chars < exp.minChars * 1.5, `${chars} chars`);
    assert.ok(words > exp.minWords && words < exp.minWords * 1.5, `${words} words`);
    assert.ok(docs.every((d) => d.text.trim().length > 0));
    assert.ok(
      !docs.some((d) => /PROJECT GUTENBERG EBOOK|\/(?:nn|vbd|at)\b/.test(d.text)),
      "no boilerplate or tags",
    );
    const capped = await loadCorpus(name, { maxChars: 50_000 });
    assert.ok(capped.reduce((a, d) => a + d.text.length, 0) <= 50_000);
    assert.equal(capped[0].source, exp.first);
  });
}

Deno.test("packaged corpora load from a script run in another folder", async () => {
  await withTempDir(async (dir) => {
    const root = new URL("..", import.meta.url);
    const code = `import { loadCorpus } from "${new URL("lib/text/corpus.ts", root)}";
      const d = await loadCorpus("brown", { maxChars: 1000 }); console.log(d[0].source);`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--config", new URL("deno.json", root).pathname, code],
      cwd: dir,
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.equal(new TextDecoder().decode(out.stdout).trim(), "brown/ca01");
  });
});

Deno.test("a combined corpus names each document's part; partShares and describeParts give the mix", async () => {
  await withTempDir(async (dir) => {
    const [a, b] = [join(dir, "a"), join(dir, "b")];
    await Deno.mkdir(a);
    await Deno.mkdir(b);
    await Deno.writeTextFile(join(a, "long.txt"), "word ".repeat(200).trim()); // 999 characters
    await Deno.writeTextFile(join(b, "one.txt"), "Short one.");
    await Deno.writeTextFile(join(b, "two.txt"), "Short two.");
    const docs = await loadCorpus(`${a}+${b}`);
    assert.deepEqual(docs.map((d) => d.part), [a, b, b]);
    assert.deepEqual(partShares(docs), { [a]: 999, [b]: 20 });
    // One corpus has no parts.
    assert.equal(partShares(await loadCorpus(b)), null);
    // A cap keeps whole documents in turn: the long one first, so the cut falls inside b's first document.
    const capped = await loadCorpus(`${a}+${b}`, { maxChars: 1005 });
    assert.deepEqual(partShares(capped), { [a]: 999, [b]: 5 });
    assert.equal(describeParts({ x: 980, y: 20 }), "x 98%, y 2.0% of 1,000 characters");
    // A part the cap left out entirely still shows, at 0%.
    assert.equal(
      describeParts({ x: 11_564_310, y: 435_686 }, ["x", "y", "z"]),
      "x 96%, y 3.6%, z 0% of 12.0 M characters",
    );
  });
});

Deno.test("12 M characters of gutenberg+brown+sotu are almost all Gutenberg (what README and notebook 06 say)", async () => {
  const shares = partShares(await loadCorpus("gutenberg+brown+sotu", { maxChars: 12_000_000 }))!;
  const total = Object.values(shares).reduce((a, b) => a + b, 0);
  assert.ok(shares.gutenberg / total > 0.95, describeParts(shares));
  assert.ok(shares.brown > 0 && shares.sotu > 0, describeParts(shares));
  // What the cap leaves out (`deno task evaluate --unseen`) is another mix: Brown and State of the Union.
  const rest = partShares(
    await loadCorpus("gutenberg+brown+sotu", { maxChars: 12_000_000, beyondCap: true }),
  )!;
  const restTotal = Object.values(rest).reduce((a, b) => a + b, 0);
  assert.ok(rest.gutenberg / restTotal < 0.05 && rest.sotu > rest.brown, describeParts(rest));
});

/**
 * The synthetic languages hold their rules in every generated sentence. Checked by a parser written
 * here from the documented grammar and the exported lexicon (not by the generator's own bookkeeping),
 * which is also shown to reject the replacements each rule makes detectable.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { applyOverrides, preset, validateConfig } from "../lib/config.ts";
import { corpusFingerprint, loadCorpus } from "../lib/text/corpus.ts";
import { sha256Hex } from "../lib/text/files.ts";
import { splitSentences } from "../lib/text/sentences.ts";
import {
  freshSentences,
  generateSynthetic,
  parseSyntheticName,
  SYNTHETIC_LANGUAGES,
  SYNTHETIC_VERSION,
  type SyntheticLexicon,
  syntheticLexicon,
  syntheticName,
  type SyntheticParams,
} from "../lib/text/synthetic.ts";
import { trainWordPiece } from "../lib/text/wordpiece_trainer.ts";
import { tempDir } from "./_helpers.ts";

// ---- an independent checker of the documented grammar and rules ----

interface NounInfo {
  plural: boolean;
  topic: number;
  cls: number;
}

interface Stats {
  sentences: number;
  agreeChecks: number;
  /** Main clauses with a noun of the other number between the subject and its verb. */
  attracted: number;
  maxModifiers: number;
  brackets: number;
  maxDepth: number;
  kinds: Set<string>;
  selectChecks: number;
  contentWords: number;
  offTopic: number;
  plurals: number;
  nouns: number;
  classesSeen: Set<number>;
}

class Checker {
  readonly stats: Stats = {
    sentences: 0,
    agreeChecks: 0,
    attracted: 0,
    maxModifiers: 0,
    brackets: 0,
    maxDepth: 0,
    kinds: new Set(),
    selectChecks: 0,
    contentWords: 0,
    offTopic: 0,
    plurals: 0,
    nouns: 0,
    classesSeen: new Set(),
  };
  readonly #p: SyntheticParams;
  readonly #noun = new Map<string, NounInfo>();
  readonly #verb = new Map<string, { plural: boolean; topic: number; selects: number }>();
  readonly #adj = new Map<string, number>();
  readonly #det = new Map<string, "any" | "singular" | "plural">();
  readonly #preps: Set<string>;
  readonly #closer: Map<string, string>;
  #toks: string[] = [];
  #i = 0;
  #topic = 0;
  #nounLog: boolean[] = [];

  constructor(lex: SyntheticLexicon, params: SyntheticParams) {
    this.#p = params;
    for (const n of lex.nouns) {
      this.#noun.set(n.singular, { plural: false, topic: n.topic, cls: n.cls });
      this.#noun.set(n.plural, { plural: true, topic: n.topic, cls: n.cls });
    }
    for (const v of lex.verbs) {
      this.#verb.set(v.singular, { plural: false, topic: v.topic, selects: v.selects });
      this.#verb.set(v.plural, { plural: true, topic: v.topic, selects: v.selects });
    }
    for (const a of lex.adjectives) this.#adj.set(a.word, a.topic);
    for (const k of ["any", "singular", "plural"] as const) {
      for (const d of lex.determiners[k]) this.#det.set(d, k);
    }
    this.#preps = new Set(lex.prepositions);
    this.#closer = new Map(lex.brackets);
  }

  /** Parses one sentence of a document of topic `topic`; throws on any violation. */
  sentence(text: string, topic: number): void {
    this.#toks = text.toLowerCase().match(/[a-z]+|[^\sa-z]/g) ?? [];
    this.#i = 0;
    this.#topic = topic;
    this.#nounLog = [];
    const subj = this.#np(0, false);
    const before = this.#nounLog.length;
    let mods = 0;
    for (;;) {
      const t = this.#peek();
      if (this.#preps.has(t)) {
        this.#i++;
        this.#np(0, false);
      } else if (t === "that") {
        this.#i++;
        if (this.#verb.has(this.#peek())) {
          const v = this.#verbAt();
          this.#agree(v.plural, subj.plural);
          this.#select(v.selects, this.#np(0, false).cls);
        } else {
          const inner = this.#np(0, false);
          const v = this.#verbAt();
          this.#agree(v.plural, inner.plural);
          this.#select(v.selects, subj.cls);
        }
      } else break;
      mods++;
    }
    if (mods > this.#p.distance) this.#fail(`${mods} modifiers, more than distance=${this.#p.distance}`);
    this.stats.maxModifiers = Math.max(this.stats.maxModifiers, mods);
    if (this.#nounLog.slice(before).some((pl) => pl !== subj.plural)) this.stats.attracted++;
    const v = this.#verbAt();
    this.#agree(v.plural, subj.plural);
    this.#select(v.selects, this.#np(0, false).cls);
    this.#expect(".");
    if (this.#i !== this.#toks.length) this.#fail("tokens after the final '.'");
    this.stats.sentences++;
  }

  #peek(): string {
    return this.#toks[this.#i] ?? "<end>";
  }

  #fail(msg: string): never {
    throw new Error(`${msg} at token ${this.#i} in: ${this.#toks.join(" ")}`);
  }

  #expect(t: string): void {
    if (this.#peek() !== t) this.#fail(`expected "${t}", got "${this.#peek()}"`);
    this.#i++;
  }

  #content(topic: number): void {
    this.stats.contentWords++;
    if (topic !== this.#topic) {
      if (this.#p.focus >= 1) this.#fail(`a word of topic ${topic} in a document of topic ${this.#topic}`);
      this.stats.offTopic++;
    }
  }

  #verbAt() {
    const v = this.#verb.get(this.#peek());
    if (!v) this.#fail(`expected a verb, got "${this.#peek()}"`);
    if (v.plural && !this.#p.agree) this.#fail("a plural verb form with agree=0");
    this.#content(v.topic);
    this.#i++;
    return v;
  }

  #agree(verbPlural: boolean, subjectPlural: boolean): void {
    if (verbPlural !== subjectPlural) this.#fail("the verb does not agree with its subject");
    this.stats.agreeChecks++;
  }

  #select(selects: number, cls: number): void {
    if (selects !== cls) this.#fail(`a verb selecting class ${selects} has an object of class ${cls}`);
    this.stats.selectChecks++;
  }

  #np(level: number, inQuote: boolean): NounInfo {
    const det = this.#det.get(this.#peek());
    if (!det) this.#fail(`expected a determiner, got "${this.#peek()}"`);
    this.#i++;
    while (this.#adj.has(this.#peek())) {
      this.#content(this.#adj.get(this.#peek())!);
      this.#i++;
    }
    const n = this.#noun.get(this.#peek());
    if (!n) this.#fail(`expected a noun, got "${this.#peek()}"`);
    this.#content(n.topic);
    this.#i++;
    if (n.plural && !this.#p.agree) this.#fail("a plural noun with agree=0");
    if ((det === "plural" && !n.plural) || (det === "singular" && n.plural)) {
      this.#fail("the determiner does not agree with its noun");
    }
    this.stats.nouns++;
    if (n.plural) this.stats.plurals++;
    this.stats.classesSeen.add(n.cls);
    this.#nounLog.push(n.plural);
    const open = this.#peek();
    if (this.#closer.has(open) && !(open === '"' && inQuote)) {
      if (level >= this.#p.depth) {
        this.#fail(`an aside nested ${level + 1} deep, past depth=${this.#p.depth}`);
      }
      this.#i++;
      this.stats.brackets++;
      this.stats.kinds.add(open);
      this.stats.maxDepth = Math.max(this.stats.maxDepth, level + 1);
      this.#np(level + 1, inQuote || open === '"');
      const close = this.#closer.get(open)!;
      if (this.#peek() !== close) this.#fail(`"${open}" closed by "${this.#peek()}"`);
      this.#i++;
    }
    return n;
  }
}

/** Generates `name`, checks every sentence of every document, and returns the statistics. */
function check(name: string): Stats {
  const spec = parseSyntheticName(name);
  const checker = new Checker(syntheticLexicon(spec), spec.params);
  for (const d of generateSynthetic(spec)) {
    for (const s of splitSentences(d.text)) checker.sentence(s, d.topic);
  }
  return checker.stats;
}

function tokenCount(text: string): number {
  return text.match(/[A-Za-z]+|[^\sA-Za-z]/g)?.length ?? 0;
}

// ---- the rules hold ----

Deno.test("synthetic:agreement: every verb and determiner agrees, across up to 3 modifiers with distractors", () => {
  const s = check("synthetic:agreement:tokens=40000");
  assert.ok(s.sentences > 2000, `${s.sentences} sentences`);
  assert.ok(s.agreeChecks > s.sentences * 1.5, `${s.agreeChecks} agreement checks`);
  assert.equal(s.maxModifiers, 3);
  // Distractors: a noun of the other number between subject and verb in a good share of clauses.
  assert.ok(s.attracted > 0.3 * s.sentences, `${s.attracted} of ${s.sentences} clauses have an attractor`);
  const pl = s.plurals / s.nouns;
  assert.ok(pl > 0.45 && pl < 0.55, `plural share ${pl}`);
  assert.equal(s.brackets, 0);
});

Deno.test("synthetic:brackets: asides nest to depth 3, every closer matches its opener, no quote in a quote", () => {
  const s = check("synthetic:brackets:tokens=40000");
  assert.equal(s.maxDepth, 3);
  assert.deepEqual([...s.kinds].sort(), ['"', "(", "[", "{"]);
  assert.ok(s.brackets > s.sentences / 2, `${s.brackets} asides in ${s.sentences} sentences`);
  assert.equal(s.plurals, 0, "no number in the brackets language");
  assert.equal(check("synthetic:brackets:tokens=20000:depth=1").maxDepth, 1);
});

Deno.test("synthetic:topic: every content word comes from the document's topic; focus dilutes it", () => {
  const s = check("synthetic:topic:tokens=40000");
  assert.ok(s.contentWords > 10000);
  assert.equal(s.offTopic, 0);
  const topics = new Set(generateSynthetic("synthetic:topic:tokens=40000").map((d) => d.topic));
  assert.equal(topics.size, 8);
  // focus=0.5: half the words from the document's topic, half from a random one (1/8 of them its own).
  const f = check("synthetic:topic:tokens=40000:focus=0.5");
  const off = f.offTopic / f.contentWords;
  assert.ok(Math.abs(off - 0.5 * 7 / 8) < 0.03, `off-topic share ${off}`);
});

Deno.test("synthetic:topic: a document's frequent words recur in it far more than in other documents of its topic", () => {
  const docs = generateSynthetic("synthetic:topic:tokens=100000");
  const counts = docs.map((d) => {
    const m = new Map<string, number>();
    for (const w of d.text.toLowerCase().match(/[a-z]+/g)!) m.set(w, (m.get(w) ?? 0) + 1);
    return m;
  });
  let ratios = 0;
  for (let i = 0; i < docs.length; i++) {
    const m = counts[i];
    const total = [...m.values()].reduce((a, b) => a + b, 0);
    // The document's most frequent noun-or-verb-or-adjective (function words are shared by every document).
    const fn = new Set([
      "the",
      "this",
      "each",
      "every",
      "that",
      ...syntheticLexicon("synthetic:topic").prepositions,
    ]);
    const [top, c] = [...m.entries()].filter(([w]) => !fn.has(w)).sort((a, b) => b[1] - a[1])[0];
    let otherC = 0, otherTotal = 0;
    for (let j = 0; j < docs.length; j++) {
      if (j === i || docs[j].topic !== docs[i].topic) continue;
      otherC += counts[j].get(top) ?? 0;
      otherTotal += [...counts[j].values()].reduce((a, b) => a + b, 0);
    }
    ratios += (c / total) / Math.max(otherC / otherTotal, 1e-9);
  }
  const mean = ratios / docs.length;
  assert.ok(mean > 3, `a document's top word is ${mean.toFixed(1)}× more frequent in it than in its topic`);
});

Deno.test("synthetic:selection: every object (and object-relative head) is of the class its verb selects", () => {
  const s = check("synthetic:selection:tokens=40000");
  assert.ok(s.selectChecks > s.sentences, `${s.selectChecks} checks`);
  assert.equal(s.classesSeen.size, 8);
  assert.equal(s.plurals, 0);
});

Deno.test("synthetic:recall: about recall × (n-1)/n of sentences restate one of the `window` before them", () => {
  const check = (name: string, recall: number, window: number) => {
    const docs = generateSynthetic(name);
    let sentences = 0, restated = 0, fresh = 0;
    for (const d of docs) {
      const ss = splitSentences(d.text);
      for (let i = 0; i < ss.length; i++) {
        sentences++;
        // A fresh sentence can equal an earlier one by chance (rare: about one in 10^4 here).
        if (ss.slice(Math.max(0, i - window), i).includes(ss[i])) restated++;
        else if (!ss.slice(0, i).includes(ss[i])) fresh++;
      }
      assert.equal(ss.slice(0, 1).length, 1);
    }
    const expected = recall * (1 - docs.length / sentences); // a document's first sentence is always fresh
    assert.ok(Math.abs(restated / sentences - expected) < 0.02, `${restated}/${sentences} vs ${expected}`);
    assert.ok(restated + fresh >= sentences - 2, "no sentence repeats one from further back than `window`");
    return docs;
  };
  check("synthetic:recall:tokens=40000", 0.75, 3);
  check("synthetic:recall:tokens=40000:recall=0.3:window=1", 0.3, 1);
  // Restated sentences still obey the grammar; recall=0 is the plain language, word for word.
  check("synthetic:plain:tokens=20000", 0, 3);
  assert.deepEqual(
    generateSynthetic("synthetic:recall:tokens=20000:recall=0"),
    generateSynthetic("synthetic:plain:tokens=20000").map((d) => ({
      ...d,
      source: d.source.replace("plain", "recall"),
    })),
  );
});

Deno.test("synthetic:echo: noun phrases come in identical pairs (DET NOUN DET NOUN) at the chance asked", () => {
  const pairs = (name: string) => {
    const lex = syntheticLexicon(name);
    const nouns = new Set(lex.nouns.flatMap((n) => [n.singular, n.plural]));
    let phrases = 0, echoed = 0;
    for (const d of generateSynthetic(name)) {
      for (const s of splitSentences(d.text)) {
        const w = s.toLowerCase().replace(/\.$/, "").split(" ");
        // With adjectives=0 a phrase is DET NOUN; an echo repeats both words at once.
        for (let i = 1; i < w.length; i++) {
          if (!nouns.has(w[i])) continue;
          if (i >= 3 && w[i - 2] === w[i] && w[i - 3] === w[i - 1]) {
            echoed++;
            continue;
          }
          phrases++;
          assert.ok(!(w[i + 2] === w[i] && w[i + 1] !== w[i - 1]), `half an echo in "${s}"`);
        }
      }
    }
    return echoed / phrases;
  };
  assert.ok(Math.abs(pairs("synthetic:echo:tokens=30000") - 1) < 0.01);
  assert.ok(Math.abs(pairs("synthetic:echo:tokens=30000:echo=0.4") - 0.4) < 0.03);
  assert.ok(pairs("synthetic:plain:tokens=20000:adjectives=0") < 0.01);
});

Deno.test("freshSentences: sentences of the language from a text seed no corpus uses by default", () => {
  const fresh = freshSentences("synthetic:agreement", 5);
  assert.equal(fresh.length, 5);
  assert.deepEqual(freshSentences("synthetic:agreement", 5), fresh);
  const spec = parseSyntheticName("synthetic:agreement");
  for (const s of fresh) {
    const c = new Checker(syntheticLexicon(spec), spec.params);
    c.sentence(s, 0); // throws on a sentence that breaks the grammar or a rule (one topic)
  }
  const corpus = splitSentences(
    generateSynthetic("synthetic:agreement:tokens=5000").map((d) => d.text).join(" "),
  );
  assert.notDeepEqual(corpus.slice(0, 5), fresh);
});

Deno.test("synthetic:mix and plain: all rules at once; the control has none", () => {
  const m = check("synthetic:mix:tokens=40000");
  assert.ok(m.agreeChecks > 0 && m.selectChecks > 0 && m.brackets > 0 && m.offTopic === 0);
  assert.equal(m.maxDepth, 2);
  assert.equal(m.maxModifiers, 2);
  const p = check("synthetic:plain:tokens=20000");
  assert.equal(p.plurals, 0);
  assert.equal(p.brackets, 0);
  assert.equal(p.classesSeen.size, 1);
  assert.ok(p.maxModifiers <= 1);
});

Deno.test("synthetic: the checker rejects the replacements each rule makes detectable", () => {
  const lang = (name: string) => {
    const spec = parseSyntheticName(name);
    const lex = syntheticLexicon(spec);
    const doc = generateSynthetic(spec)[0];
    return { spec, lex, doc, sentences: splitSentences(doc.text) };
  };
  const rejects = (
    name: string,
    edit: (s: string, lex: SyntheticLexicon, topic: number) => string | null,
  ) => {
    const { spec, lex, doc, sentences } = lang(name);
    let tried = 0;
    for (const s of sentences) {
      const c = new Checker(lex, spec.params);
      c.sentence(s, doc.topic); // the original passes
      const bad = edit(s, lex, doc.topic);
      if (bad === null) continue;
      assert.throws(() => c.sentence(bad, doc.topic), Error, `${name}: ${bad}`);
      tried++;
    }
    assert.ok(tried > 5, `${name}: ${tried} edits tried`);
  };
  const words = (s: string) => s.split(" ");
  // Agreement: a verb in the other number.
  rejects("synthetic:agreement:tokens=2000", (s, lex) => {
    const w = words(s);
    for (let i = 0; i < w.length; i++) {
      const v = lex.verbs.find((v) => v.singular === w[i] || v.plural === w[i]);
      if (v) {
        w[i] = w[i] === v.singular ? v.plural : v.singular;
        return w.join(" ");
      }
    }
    return null;
  });
  // Brackets: a closer of another kind.
  rejects("synthetic:brackets:tokens=2000", (s) => {
    const m = /[)\]}]/.exec(s);
    return m ? s.slice(0, m.index) + (m[0] === ")" ? "]" : ")") + s.slice(m.index + 1) : null;
  });
  // Selection: the sentence's last noun (the main object) from another class.
  rejects("synthetic:selection:tokens=2000", (s, lex) => {
    const w = words(s);
    const last = w[w.length - 1].replace(/\.$/, "");
    const n = lex.nouns.find((n) => n.singular === last)!;
    const other = lex.nouns.find((o) => o.cls !== n.cls)!;
    w[w.length - 1] = `${other.singular}.`;
    return w.join(" ");
  });
  // Topic: a noun from another topic.
  rejects("synthetic:topic:tokens=2000", (s, lex, topic) => {
    const w = words(s);
    const i = w.findIndex((x) => lex.nouns.some((n) => n.singular === x));
    if (i < 0) return null;
    w[i] = lex.nouns.find((n) => n.topic !== topic)!.singular;
    return w.join(" ");
  });
  // Control: in `plain` any noun may stand for any noun; the same swap passes.
  const { spec, lex, sentences } = lang("synthetic:plain:tokens=2000");
  const c = new Checker(lex, spec.params);
  for (const s of sentences) {
    const w = words(s);
    const i = w.findIndex((x) => lex.nouns.some((n) => n.singular === x));
    w[i] = lex.nouns[lex.nouns.length - 1].singular;
    c.sentence(w.join(" "), 0);
  }
});

// ---- size, determinism, vocabulary, tokenization ----

Deno.test("synthetic: ~1M tokens by default in ~40-sentence documents, fast enough to need no cache", () => {
  const docs = generateSynthetic("synthetic:agreement");
  const tokens = docs.reduce((a, d) => a + tokenCount(d.text), 0);
  const sentences = docs.reduce((a, d) => a + splitSentences(d.text).length, 0);
  const longest = Math.max(...docs.map((d) => tokenCount(d.text)));
  assert.ok(tokens >= 1_000_000 && tokens < 1_000_000 + longest, `${tokens} tokens`);
  const perDoc = sentences / docs.length;
  assert.ok(perDoc > 38 && perDoc < 42, `${perDoc} sentences per document`);
  // Every sentence ends in "." and the splitter finds exactly one sentence per "." (none merged, none cut).
  const dots = docs.reduce((a, d) => a + d.text.split(".").length - 1, 0);
  assert.equal(sentences, dots);
  assert.equal(docs[0].source, "synthetic/agreement/00000");
  // Vocabulary: a few hundred to a few thousand word types.
  const types = new Set(docs.flatMap((d) => d.text.toLowerCase().match(/[a-z]+/g)!));
  assert.ok(types.size > 1500 && types.size < 2500, `${types.size} word types`);
  const small = new Set(
    generateSynthetic("synthetic:plain:words=300:tokens=50000").flatMap((d) =>
      d.text.toLowerCase().match(/[a-z]+/g)!
    ),
  );
  assert.ok(small.size > 250 && small.size <= 300 + 20, `${small.size} word types with words=300`);
});

Deno.test("synthetic: deterministic per seed; the seed changes the text, not the words; tokens=N is a prefix", () => {
  const a = generateSynthetic("synthetic:mix:tokens=20000");
  assert.deepEqual(generateSynthetic("synthetic:mix:tokens=20000"), a);
  const b = generateSynthetic("synthetic:mix:tokens=20000:seed=1");
  assert.notEqual(b[0].text, a[0].text);
  assert.deepEqual(syntheticLexicon("synthetic:mix:seed=1"), syntheticLexicon("synthetic:mix"));
  const big = generateSynthetic("synthetic:mix:tokens=60000");
  assert.deepEqual(big.slice(0, a.length), a);
  const lex = syntheticLexicon("synthetic:mix");
  assert.equal(lex.nouns.length, 600);
  assert.equal(lex.verbs.length, 360);
  assert.equal(lex.adjectives.length, 240);
  const forms = [
    ...lex.nouns.flatMap((n) => [n.singular, n.plural]),
    ...lex.verbs.flatMap((v) => [v.singular, v.plural]),
    ...lex.adjectives.map((x) => x.word),
  ];
  assert.equal(new Set(forms).size, forms.length, "every word form is one word only");
  assert.ok(forms.every((f) => /^[a-z]{3,10}$/.test(f)), "lowercase letters, 3-10 long");
  // A larger lexicon extends the same word stream: its first nouns are the smaller one's.
  assert.deepEqual(
    syntheticLexicon("synthetic:plain:words=4000").nouns.slice(0, 10).map((n) => n.singular),
    lex.nouns.slice(0, 10).map((n) => n.singular),
  );
});

Deno.test("synthetic: a trained WordPiece vocabulary keeps every word whole", () => {
  const docs = generateSynthetic("synthetic:mix:tokens=100000");
  const tok = trainWordPiece(docs.map((d) => d.text), { vocabSize: 8192 });
  const text = docs[0].text;
  const words = text.toLowerCase().match(/[a-z]+|[^\sa-z]/g)!;
  const ids = tok.encode(text);
  assert.equal(ids.length, words.length, "one token per word or mark");
  assert.ok(!ids.includes(tok.specialIds.unk));
});

Deno.test("synthetic: generated text is pinned to SYNTHETIC_VERSION (bump it when this hash changes)", async () => {
  const text = generateSynthetic("synthetic:mix:tokens=5000").map((d) => `${d.source}|${d.topic}|${d.text}`);
  const hash = (await sha256Hex(text.join("\n"))).slice(0, 16);
  assert.deepEqual(
    { version: SYNTHETIC_VERSION, hash },
    { version: 1, hash: "9ce03c7aab2b405c" },
    "the generator's output changed: bump SYNTHETIC_VERSION (cached datasets key on it) and update this hash",
  );
});

// ---- names ----

Deno.test("synthetic names: languages, parameters, the shortest name, and errors that name the problem", () => {
  const spec = parseSyntheticName("synthetic:agreement:distance=5:seed=2:tokens=1e5:aside=0.25");
  assert.equal(spec.language, "agreement");
  assert.equal(spec.params.distance, 5);
  assert.equal(spec.params.seed, 2);
  assert.equal(spec.params.tokens, 100000);
  assert.equal(spec.params.agree, 1);
  assert.equal(syntheticName(spec), "synthetic:agreement:seed=2:tokens=100000:distance=5:aside=0.25");
  assert.equal(syntheticName(parseSyntheticName("synthetic:agreement:distance=3")), "synthetic:agreement");
  assert.deepEqual(Object.keys(SYNTHETIC_LANGUAGES), [
    "plain",
    "agreement",
    "brackets",
    "topic",
    "selection",
    "echo",
    "recall",
    "mix",
  ]);
  assert.throws(() => parseSyntheticName("synthetic:agreemnt"), (e: Error) => {
    assert.match(e.message, /unknown synthetic language "agreemnt"/);
    for (const n of Object.keys(SYNTHETIC_LANGUAGES)) assert.ok(e.message.includes(n), n);
    return true;
  });
  assert.throws(() => parseSyntheticName("synthetic:"), /names no language.*known languages: plain/);
  assert.throws(
    () => parseSyntheticName("synthetic:mix:dist=3"),
    /unknown synthetic parameter "dist" in "synthetic:mix:dist=3"; valid parameters: seed, tokens/,
  );
  assert.throws(() => parseSyntheticName("synthetic:mix:distance"), /"distance" .* is not key=value/);
  assert.throws(() => parseSyntheticName("synthetic:mix:seed=1:seed=2"), /"seed" given twice/);
  assert.throws(
    () => parseSyntheticName("synthetic:mix:distance=2.5"),
    /distance=2.5 .* needs an integer in \[0, 20\]/,
  );
  assert.throws(
    () => parseSyntheticName("synthetic:mix:focus=1.5"),
    /focus=1.5 .* needs a number in \[0, 1\]/,
  );
  assert.throws(() => parseSyntheticName("synthetic:mix:tokens=lots"), /tokens=lots/);
  assert.throws(
    () => parseSyntheticName("synthetic:mix:words=100"),
    /words=100 .* too few for topics=8 × classes=8.*words >= \d+/,
  );
  assert.throws(() => parseSyntheticName("synthetic:__proto__"), /unknown synthetic language/);
});

// ---- as a corpus ----

Deno.test("loadCorpus and corpusFingerprint accept synthetic names; configs reject bad ones early", async () => {
  const docs = await loadCorpus("synthetic:topic:tokens=3000");
  assert.deepEqual(
    docs.map((d) => d.text),
    generateSynthetic("synthetic:topic:tokens=3000").map((d) => d.text),
  );
  const capped = await loadCorpus("synthetic:topic:tokens=3000", { maxChars: 500 });
  assert.ok(capped.length === 1 && capped[0].text.length <= 500);
  const fp = await corpusFingerprint("synthetic:agreement");
  assert.equal(await corpusFingerprint("synthetic:agreement:distance=3:seed=0"), fp, "defaults spelled out");
  assert.notEqual(await corpusFingerprint("synthetic:agreement:seed=1"), fp);
  assert.match(fp, new RegExp(`v${SYNTHETIC_VERSION}$`));
  await assert.rejects(() => loadCorpus("synthetic:nope"), /unknown synthetic language "nope"/);
  await assert.rejects(() => loadCorpus("no-such-corpus"), /synthetic:NAME \(plain, agreement/);
  const config = applyOverrides(preset("tiny"), { corpus: "synthetic:mix:colour=red" });
  assert.throws(() => validateConfig(config), /unknown synthetic parameter "colour"/);
});

Deno.test("deno task pretrain --corpus synthetic:agreement trains end to end (2 steps)", async () => {
  const out = join(tempDir(), "run");
  const root = new URL("..", import.meta.url);
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "tasks/pretrain.ts",
      "--config",
      "tiny",
      "--corpus",
      "synthetic:agreement:tokens=30000",
    ]
      .concat(["--steps", "2", "--out", out]),
    cwd: root,
    env: { RTDLAB_CACHE: tempDir("rtdlab-cache-") },
  });
  const r = await cmd.output();
  const err = new TextDecoder().decode(r.stderr) + new TextDecoder().decode(r.stdout);
  assert.equal(r.code, 0, err);
  const config = JSON.parse(await Deno.readTextFile(join(out, "config.json")));
  assert.equal(config.corpus, "synthetic:agreement:tokens=30000");
  const metrics = (await Deno.readTextFile(join(out, "metrics.jsonl"))).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert.equal(metrics.at(-1).step, 2);
  assert.ok(Number.isFinite(metrics.at(-1).loss_rtd));
});

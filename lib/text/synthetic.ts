/**
 * Controlled synthetic languages: seeded text from a small probabilistic grammar whose long-range rules
 * are known, strong and switchable, so a replaced token can be made detectable only from context and
 * the difficulty dialled. Used as a corpus by name: `--corpus synthetic:NAME[:key=value...]`.
 *
 * **The grammar** (every language; the rules below switch parts of it on). One clause per sentence:
 *
 * ```
 * sentence  → NP_subj MODIFIER{0..distance} VERB NP_obj "."
 * NP        → DET ADJ{0..adjectives} NOUN [ASIDE]
 * MODIFIER  → PREP NP                 (½)   "near the skops"
 *           | "that" VERB NP          (¼)   subject relative: the verb agrees with the head noun
 *           | "that" NP VERB          (¼)   object relative: the verb agrees with the inner noun
 * ASIDE     → OPEN NP CLOSE                 "(each skop [the pram])", '"the clait"', nested to `depth`
 * ```
 *
 * Rendered as English-looking text: lowercase pseudo-words ("clitrom", "hairong", "likdruk") built from
 * English syllables, a capital at each sentence start and a closing "." so the sentence splitter
 * (lib/text/sentences.ts) recovers every sentence exactly; nouns and verbs inflect with "-s" (noun
 * plural "clitroms", verb singular "likdruks"), and every word form is a distinct string, so a WordPiece
 * vocabulary of a few thousand tokens keeps each word whole. Function words are real English:
 * determiners "the" (either number), "this each every" (singular), "these some many" (plural);
 * prepositions "near with behind under beside above without beyond"; the relativizer "that"; brackets
 * `( ) [ ] { }` and `"`. Content words follow a Zipf law (p ∝ 1/rank) within the list they are drawn
 * from. The vocabulary does not depend on `seed`: the same parameters give the same words.
 *
 * **The rules** (what makes a replacement detectable; everything else is drawn independently):
 * - `agree=1` (number agreement): each noun is singular or plural (½ each); its determiner agrees with
 *   it, and every verb agrees with its subject, which sits behind up to `distance` modifiers that hold
 *   distractor nouns of random number. Detectable replacement: "the clitrom near the skops **likdruk**"
 *   (the subject "clitrom" is singular). With `agree=0` every noun and verb is singular.
 * - `depth>0` (matched brackets): a noun phrase gets a bracketed or quoted aside with chance `aside`,
 *   nested up to `depth` deep, never a quote inside a quote. Each closer must match the innermost open
 *   bracket: "(the clitrom [each skop**)**" is detectable only by counting back to the opener.
 * - `topics>1` (topic persistence): each document draws one of `topics` topics; every noun, verb and
 *   adjective comes from that topic's words (chance `focus`, else from a random topic), and each
 *   document re-ranks its topic's words, so a few of them recur through the document. A word from
 *   another topic is detectable only against the rest of the document.
 * - `classes>1` (selectional restrictions): nouns fall into `classes` semantic classes and each verb
 *   accepts objects of one class only (in an object relative, the head noun is the verb's object).
 *   "likdruks the teang **pram**", with "pram" outside the class "likdruk" selects, is detectable
 *   only from the verb, up to `adjectives` words back (or, in an object relative, from the head noun).
 * - `echo>0` (echoed phrases): each noun phrase, with chance `echo`, is said twice in a row word for
 *   word ("the clitrom the clitrom likdruks every pram every pram"). A replaced word in an echoed phrase
 *   disagrees with its twin a phrase-length away: the shortest restatement, for the easy end of the dial.
 * - `recall>0` (restated facts): each sentence, with chance `recall`, repeats word for word one of the
 *   `window` sentences before it (a document restating what it said, as real documents repeat names
 *   and facts). A replaced word in a restated sentence is detectable by comparing it with the other
 *   statement, before or after it; a sentence stated once is as free as in the plain grammar.
 *
 * **The languages** are presets of these parameters ({@link SYNTHETIC_LANGUAGES}); any parameter can
 * be overridden, e.g. `synthetic:agreement:distance=5:seed=2`. Sizes: `tokens` (default 1M words and
 * punctuation marks, about the natural corpora's scale), `sentences` per document (mean 40),
 * `words` content lemmas (default 1200: 50% nouns, 30% verbs, 20% adjectives; up to ~2,200 word forms).
 *
 * @module
 */

import { Rng } from "../rng.ts";
import type { Document } from "./corpus.ts";
import { splitSentences } from "./sentences.ts";

/** Bump whenever the generated text for some name changes: it is part of the dataset cache key. */
export const SYNTHETIC_VERSION = 1;

/** The prefix that marks a synthetic corpus name. */
export const SYNTHETIC_PREFIX = "synthetic:";

/** Every parameter of a synthetic language (see the module documentation for the rules). */
export interface SyntheticParams {
  /** Seed of the text (the vocabulary does not depend on it). */
  seed: number;
  /** Corpus size in tokens (words and punctuation marks); generation stops after the document reaching it. */
  tokens: number;
  /** Mean sentences per document: each document draws uniformly from ⌈n/2⌉..⌊3n/2⌋. */
  sentences: number;
  /** Content lemmas: 50% nouns, 30% verbs, 20% adjectives. */
  words: number;
  /** 1: singular/plural nouns with agreeing determiners and verbs; 0: all singular. */
  agree: number;
  /** Most modifiers between a subject and its verb (each clause draws 0..distance). */
  distance: number;
  /** Deepest nesting of bracketed and quoted asides (0: none). */
  depth: number;
  /** Chance that a noun phrase gets an aside, while `depth` allows. */
  aside: number;
  /** Number of topics (1: no topic rule). */
  topics: number;
  /** Chance that a content word comes from the document's topic (else from a random topic). */
  focus: number;
  /** Semantic noun classes (1: no selectional restriction). */
  classes: number;
  /** Most adjectives before a noun (each noun phrase draws 0..adjectives). */
  adjectives: number;
  /** Chance that a sentence restates, word for word, one of the `window` sentences before it. */
  recall: number;
  /** How far back a restated sentence is taken from (sentences). */
  window: number;
  /** Chance that a noun phrase (determiner, adjectives, noun) is said twice in a row, word for word. */
  echo: number;
}

/** A resolved synthetic corpus name: language and every parameter. */
export interface SyntheticSpec {
  /** Language name (a key of {@link SYNTHETIC_LANGUAGES}). */
  language: string;
  /** All parameters, defaults filled in. */
  params: SyntheticParams;
}

interface ParamDef {
  kind: "int" | "prob";
  min: number;
  max: number;
}

const PARAMS: Record<keyof SyntheticParams, ParamDef> = {
  seed: { kind: "int", min: 0, max: 2 ** 32 - 1 },
  tokens: { kind: "int", min: 1, max: 200_000_000 },
  sentences: { kind: "int", min: 1, max: 100_000 },
  words: { kind: "int", min: 10, max: 50_000 },
  agree: { kind: "int", min: 0, max: 1 },
  distance: { kind: "int", min: 0, max: 20 },
  depth: { kind: "int", min: 0, max: 10 },
  aside: { kind: "prob", min: 0, max: 1 },
  topics: { kind: "int", min: 1, max: 1000 },
  focus: { kind: "prob", min: 0, max: 1 },
  classes: { kind: "int", min: 1, max: 1000 },
  adjectives: { kind: "int", min: 0, max: 10 },
  recall: { kind: "prob", min: 0, max: 1 },
  window: { kind: "int", min: 1, max: 100 },
  echo: { kind: "prob", min: 0, max: 1 },
};

const BASE: SyntheticParams = {
  seed: 0,
  tokens: 1_000_000,
  sentences: 40,
  words: 1200,
  agree: 0,
  distance: 1,
  depth: 0,
  aside: 0.4,
  topics: 1,
  focus: 1,
  classes: 1,
  adjectives: 1,
  recall: 0,
  window: 3,
  echo: 0,
};

const LANGUAGES: Record<string, { description: string; params: Partial<SyntheticParams> }> = {
  plain: {
    description: "the grammar with no long-range rule (all singular, no brackets, topics or classes): " +
      "the control, where only word order is learnable",
    params: {},
  },
  agreement: {
    description: "subject-verb and determiner-noun number agreement across 0-3 modifiers " +
      "(prepositional phrases, relative clauses) holding distractor nouns",
    params: { agree: 1, distance: 3 },
  },
  brackets: {
    description: '(), [], {} and "" asides after noun phrases, nested up to 3 deep; closers match openers',
    params: { depth: 3 },
  },
  topic: {
    description: "each document draws one of 8 topics and takes every content word from it, " +
      "with a few words recurring through the document",
    params: { topics: 8 },
  },
  selection: {
    description: "8 semantic noun classes; each verb accepts objects of one class, 0-2 adjectives away",
    params: { classes: 8, adjectives: 2 },
  },
  echo: {
    description: 'every noun phrase is said twice in a row, word for word ("the clitrom the clitrom ' +
      'likdruks every pram every pram"): a replaced word disagrees with its echo two words away (the easy ' +
      "end of the restatement dial; no modifiers or adjectives, so only the verb is free)",
    params: { echo: 1, adjectives: 0, distance: 0 },
  },
  recall: {
    description: "documents restate their facts: 3 sentences in 4 repeat, word for word, one of the 3 " +
      "before them, so most words are fixed by an earlier or later statement of the same fact",
    params: { recall: 0.75 },
  },
  mix: {
    description: "all four rules at once: agreement (distance 2), brackets (depth 2), 8 topics, 8 classes",
    params: { agree: 1, distance: 2, depth: 2, aside: 0.3, topics: 8, classes: 8 },
  },
};

/** The synthetic languages by name, with a one-line description each. */
export const SYNTHETIC_LANGUAGES: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(Object.entries(LANGUAGES).map(([k, v]) => [k, v.description])),
);

/** Whether a corpus name asks for a synthetic language (it may still be invalid). */
export function isSyntheticName(name: string): boolean {
  return name.startsWith(SYNTHETIC_PREFIX);
}

/** The parameters of a language before any override. */
export function syntheticDefaults(language: string): SyntheticParams {
  if (!Object.hasOwn(LANGUAGES, language)) {
    throw new Error(
      `unknown synthetic language "${language}"; known languages: ${Object.keys(LANGUAGES).join(", ")}`,
    );
  }
  return { ...BASE, ...LANGUAGES[language].params };
}

const NUMBER = /^(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i;
const USAGE = "synthetic:NAME[:key=value...], e.g. synthetic:agreement:distance=5:seed=1";

/**
 * Parses and validates `synthetic:NAME[:key=value...]`. Throws naming the problem: an unknown
 * language (listing the known ones), an unknown or repeated parameter (listing the valid ones), a
 * value of the wrong kind or out of range, or a lexicon too small for `topics` × `classes`.
 */
export function parseSyntheticName(name: string): SyntheticSpec {
  if (!isSyntheticName(name)) throw new Error(`"${name}" is not a synthetic corpus name: use ${USAGE}`);
  const [language, ...options] = name.slice(SYNTHETIC_PREFIX.length).split(":");
  if (language === "") {
    throw new Error(
      `"${name}" names no language: use ${USAGE}; known languages: ${Object.keys(LANGUAGES).join(", ")}`,
    );
  }
  if (!Object.hasOwn(LANGUAGES, language)) {
    throw new Error(
      `unknown synthetic language "${language}" in "${name}"; known languages: ${
        Object.keys(LANGUAGES).join(", ")
      }`,
    );
  }
  const params = syntheticDefaults(language);
  const seen = new Set<string>();
  for (const opt of options) {
    const eq = opt.indexOf("=");
    if (eq <= 0) throw new Error(`"${opt}" in "${name}" is not key=value: use ${USAGE}`);
    const key = opt.slice(0, eq);
    const raw = opt.slice(eq + 1);
    if (!Object.hasOwn(PARAMS, key)) {
      throw new Error(
        `unknown synthetic parameter "${key}" in "${name}"; valid parameters: ${
          Object.keys(PARAMS).join(", ")
        }`,
      );
    }
    if (seen.has(key)) throw new Error(`synthetic parameter "${key}" given twice in "${name}"`);
    seen.add(key);
    const def = PARAMS[key as keyof SyntheticParams];
    const v = NUMBER.test(raw) ? Number(raw) : NaN;
    const ok = Number.isFinite(v) && v >= def.min && v <= def.max &&
      (def.kind !== "int" || Number.isInteger(v));
    if (!ok) {
      const what = def.kind === "int" ? "an integer" : "a number";
      throw new Error(
        `synthetic parameter ${key}=${raw} in "${name}": needs ${what} in [${def.min}, ${def.max}]`,
      );
    }
    params[key as keyof SyntheticParams] = v;
  }
  const spec = { language, params };
  lexiconSizes(spec); // throws when the lexicon cannot fill every topic × class
  return spec;
}

/**
 * The shortest name of a spec: the language plus the parameters that differ from its defaults, in a
 * fixed order, so names that mean the same text read the same.
 */
export function syntheticName(spec: SyntheticSpec): string {
  const defaults = syntheticDefaults(spec.language);
  const opts = (Object.keys(PARAMS) as (keyof SyntheticParams)[])
    .filter((k) => spec.params[k] !== defaults[k])
    .map((k) => `:${k}=${spec.params[k]}`);
  return `${SYNTHETIC_PREFIX}${spec.language}${opts.join("")}`;
}

/** A cache-key string that changes exactly when the generated text may change (every parameter + version). */
export function syntheticFingerprint(name: string): string {
  const { language, params } = parseSyntheticName(name);
  const all = (Object.keys(PARAMS) as (keyof SyntheticParams)[]).map((k) => `${k}=${params[k]}`);
  return `synthetic:${language}|${all.join(",")}|v${SYNTHETIC_VERSION}`;
}

// ---- vocabulary ----

const DETERMINERS = { any: ["the"], singular: ["this", "each", "every"], plural: ["these", "some", "many"] };
const PREPOSITIONS = ["near", "with", "behind", "under", "beside", "above", "without", "beyond"];
const RELATIVIZER = "that";
const BRACKETS: [string, string][] = [["(", ")"], ["[", "]"], ["{", "}"], ['"', '"']];
const QUOTE = 3; // index of '"' in BRACKETS

/** A noun: its two forms, its topic and its semantic class. */
export interface SyntheticNoun {
  /** Singular form (the stem). */
  singular: string;
  /** Plural form (stem + "s"). */
  plural: string;
  /** Topic, 0..topics-1. */
  topic: number;
  /** Semantic class, 0..classes-1. */
  cls: number;
}

/** A verb: its two forms, its topic and the noun class it accepts as object. */
export interface SyntheticVerb {
  /** Form with a singular subject (stem + "s"). */
  singular: string;
  /** Form with a plural subject (the stem). */
  plural: string;
  /** Topic, 0..topics-1. */
  topic: number;
  /** The noun class of its objects, 0..classes-1. */
  selects: number;
}

/** The words of a synthetic language and what each one means to the rules. */
export interface SyntheticLexicon {
  /** Nouns, in lexicon order (the Zipf rank order outside topic documents). */
  nouns: SyntheticNoun[];
  /** Verbs, in lexicon order. */
  verbs: SyntheticVerb[];
  /** Adjectives with their topic. */
  adjectives: { word: string; topic: number }[];
  /** Determiners: `any` go with either number, `singular` / `plural` only with that number. */
  determiners: { any: string[]; singular: string[]; plural: string[] };
  /** Prepositions that open a prepositional modifier. */
  prepositions: string[];
  /** The word that opens a relative clause ("that"). */
  relativizer: string;
  /** Opening and closing marks of asides; the last pair is the quote `"`, which never nests in a quote. */
  brackets: [string, string][];
}

const ONSETS = ("b d f g h k l m n p r s t v w z br bl cr cl dr fr fl gr gl pr pl sk sl sm sn sp st tr " +
  "th sh ch").split(" ");
const VOWELS = "a e i o u a e i o u a e i o ai ea ee oa oo ou".split(" ");
const MID_CODAS = ["", "", "", ..."n r l m s t k".split(" ")];
const FINAL_CODAS = ["", ..."n r l m t k d p nd nt rk rt st mp ng lt".split(" ")];
// Syllable soup can spell real words nobody wants in a corpus.
const BLOCKED = /shit|fuck|cunt|dick|cock|piss|slut|whore|fag|nig|rape|porn|tit|nazi|kill|dead|die/;
// Function words of English stay function words: a pseudo-word never spells one.
const RESERVED = new Set([
  ...("a an and or but nor of to in on at by for from into onto as if so than then it its he she they " +
    "them we us you me his her their our not no yes is are was were be been am do did has had have").split(
      " ",
    ),
  ...DETERMINERS.any,
  ...DETERMINERS.singular,
  ...DETERMINERS.plural,
  ...PREPOSITIONS,
  RELATIVIZER,
]);
const LEXICON_SEED = 0x5eed_11; // the pseudo-word stream is fixed: words never depend on the text seed

// One fixed stream, grown on demand: the i-th stem is the same whoever asks first and for how many.
const stemCache: string[] = [];
const stemRng = new Rng(LEXICON_SEED);
const stemSeen = new Set<string>();

/** The first `n` pseudo-word stems of the fixed stream (each also valid with "-s" appended). */
function pseudoWords(n: number): string[] {
  const pick = (a: string[]) => a[stemRng.int(a.length)];
  while (stemCache.length < n) {
    const r = stemRng.next();
    const syllables = r < 0.35 ? 1 : r < 0.9 ? 2 : 3;
    let w = "";
    for (let i = 0; i < syllables; i++) {
      const onset = i === 0 && stemRng.next() < 0.15 ? "" : pick(ONSETS);
      w += onset + pick(VOWELS) + pick(i === syllables - 1 ? FINAL_CODAS : MID_CODAS);
    }
    if (w.length < 3 || w.length > 9 || stemSeen.has(w) || RESERVED.has(w) || BLOCKED.test(w)) continue;
    stemSeen.add(w);
    // Both forms must end a sentence for the splitter (not an abbreviation such as "mar." or "no.").
    if (splitSentences(`A ${w}. B ${w}s. C`).length !== 3) continue;
    stemCache.push(w);
  }
  return stemCache.slice(0, n);
}

/** Lemma counts for a spec; throws when some topic × class cell would get no noun or no verb. */
function lexiconSizes(spec: SyntheticSpec): { nouns: number; verbs: number; adjectives: number } {
  const { words, topics, classes } = spec.params;
  const split = (w: number) => {
    const nouns = Math.floor(w * 0.5), verbs = Math.floor(w * 0.3);
    return { nouns, verbs, adjectives: w - nouns - verbs };
  };
  const cells = topics * classes;
  const s = split(words);
  if (s.nouns < cells || s.verbs < cells || s.adjectives < topics) {
    let need = words;
    for (let ok = false; !ok; need++) {
      const t = split(need);
      ok = t.nouns >= cells && t.verbs >= cells && t.adjectives >= topics;
      if (ok) break;
    }
    throw new Error(
      `synthetic: words=${words} gives ${s.nouns} nouns and ${s.verbs} verbs, too few for topics=${topics} × ` +
        `classes=${classes} (every pair needs a noun and a verb): use words >= ${need}`,
    );
  }
  return s;
}

/**
 * The vocabulary of a synthetic corpus name or spec: every noun, verb and adjective with its topic and
 * class, and the function words. Nouns and verbs go round-robin over topics, then classes, so every
 * topic × class pair holds at least one noun and one verb.
 */
export function syntheticLexicon(nameOrSpec: string | SyntheticSpec): SyntheticLexicon {
  const spec = typeof nameOrSpec === "string" ? parseSyntheticName(nameOrSpec) : nameOrSpec;
  const { topics, classes } = spec.params;
  const sizes = lexiconSizes(spec);
  const stems = pseudoWords(sizes.nouns + sizes.verbs + sizes.adjectives);
  const nounStems = stems.slice(0, sizes.nouns);
  const verbStems = stems.slice(sizes.nouns, sizes.nouns + sizes.verbs);
  const adjStems = stems.slice(sizes.nouns + sizes.verbs);
  return {
    nouns: nounStems.map((s, i) => ({
      singular: s,
      plural: `${s}s`,
      topic: i % topics,
      cls: Math.floor(i / topics) % classes,
    })),
    verbs: verbStems.map((s, i) => ({
      singular: `${s}s`,
      plural: s,
      topic: i % topics,
      selects: Math.floor(i / topics) % classes,
    })),
    adjectives: adjStems.map((s, i) => ({ word: s, topic: i % topics })),
    determiners: structuredClone(DETERMINERS),
    prepositions: [...PREPOSITIONS],
    relativizer: RELATIVIZER,
    brackets: BRACKETS.map(([o, c]) => [o, c]),
  };
}

// ---- generation ----

/** A generated document: its text and the topic it was drawn from (0 when `topics` is 1). */
export interface SyntheticDocument extends Document {
  /** The document's topic. */
  topic: number;
}

/** Word lists of one topic, in Zipf rank order (index 0 most frequent). */
interface TopicLists {
  nouns: Int32Array;
  nounsBy: Int32Array[];
  verbs: Int32Array;
  verbsBy: Int32Array[];
  adjectives: Int32Array;
}

/** Appends tokens to a sentence, spacing them the way English prints punctuation. */
class SentenceWriter {
  text = "";
  tokens = 0;
  #glue = true; // no space before the next token (sentence start, after an opening mark)

  word(w: string): void {
    this.text += this.#glue ? w : ` ${w}`;
    this.#glue = false;
    this.tokens++;
  }

  open(mark: string): void {
    this.word(mark);
    this.#glue = true;
  }

  close(mark: string): void {
    this.text += mark;
    this.#glue = false;
    this.tokens++;
  }
}

/** Zipf (p ∝ 1/(rank+1)) cumulative weights, one array per list length. */
const zipfCdfs = new Map<number, Float64Array>();

function zipfCdf(n: number): Float64Array {
  let c = zipfCdfs.get(n);
  if (!c) {
    c = new Float64Array(n);
    let s = 0;
    for (let k = 0; k < n; k++) c[k] = s += 1 / (k + 1);
    zipfCdfs.set(n, c);
  }
  return c;
}

class Grammar {
  readonly #p: SyntheticParams;
  readonly #rng: Rng;
  readonly #nounSg: string[];
  readonly #nounPl: string[];
  readonly #nounCls: Int32Array;
  readonly #verbSg: string[];
  readonly #verbPl: string[];
  readonly #verbSelects: Int32Array;
  readonly #adj: string[];
  readonly #global: TopicLists[];
  #docTopic = 0;
  #doc: TopicLists;

  constructor(lex: SyntheticLexicon, p: SyntheticParams, rng: Rng) {
    this.#p = p;
    this.#rng = rng;
    this.#nounSg = lex.nouns.map((n) => n.singular);
    this.#nounPl = lex.nouns.map((n) => n.plural);
    this.#nounCls = Int32Array.from(lex.nouns, (n) => n.cls);
    this.#verbSg = lex.verbs.map((v) => v.singular);
    this.#verbPl = lex.verbs.map((v) => v.plural);
    this.#verbSelects = Int32Array.from(lex.verbs, (v) => v.selects);
    this.#adj = lex.adjectives.map((a) => a.word);
    const idx = (n: number, keep: (i: number) => boolean) =>
      Int32Array.from({ length: n }, (_, i) => i).filter(keep);
    this.#global = Array.from({ length: p.topics }, (_, t) => {
      const nouns = idx(lex.nouns.length, (i) => lex.nouns[i].topic === t);
      const verbs = idx(lex.verbs.length, (i) => lex.verbs[i].topic === t);
      return this.#byClass(nouns, verbs, idx(lex.adjectives.length, (i) => lex.adjectives[i].topic === t));
    });
    this.#doc = this.#global[0];
  }

  #byClass(nouns: Int32Array, verbs: Int32Array, adjectives: Int32Array): TopicLists {
    const { classes } = this.#p;
    return {
      nouns,
      nounsBy: Array.from({ length: classes }, (_, c) => nouns.filter((n) => this.#nounCls[n] === c)),
      verbs,
      verbsBy: Array.from({ length: classes }, (_, c) => verbs.filter((v) => this.#verbSelects[v] === c)),
      adjectives,
    };
  }

  /** Starts a document: draws its topic and, with topics, re-ranks that topic's words for it. */
  startDocument(): number {
    if (this.#p.topics === 1) return 0;
    this.#docTopic = this.#rng.int(this.#p.topics);
    const g = this.#global[this.#docTopic];
    // One permutation per word class, so a document's frequent nouns are frequent in every role.
    const shuffled = (a: Int32Array) => Int32Array.from(this.#rng.shuffle(Array.from(a)));
    this.#doc = this.#byClass(shuffled(g.nouns), shuffled(g.verbs), shuffled(g.adjectives));
    return this.#docTopic;
  }

  sentence(w: SentenceWriter): void {
    const subj = this.#np(w, 0, -1, false);
    const k = this.#p.distance > 0 ? this.#rng.int(this.#p.distance + 1) : 0;
    for (let i = 0; i < k; i++) this.#modifier(w, subj);
    const v = this.#pick(this.#lists().verbs);
    w.word((subj & 1) ? this.#verbPl[v] : this.#verbSg[v]);
    this.#np(w, 0, this.#verbSelects[v], false);
    w.close(".");
  }

  /** Lists of the topic the next content word comes from. */
  #lists(): TopicLists {
    const { topics, focus } = this.#p;
    if (topics === 1 || focus >= 1 || this.#rng.next() < focus) return this.#doc;
    return this.#global[this.#rng.int(topics)];
  }

  #pick(list: Int32Array): number {
    const cdf = zipfCdf(list.length);
    const u = this.#rng.next() * cdf[list.length - 1];
    let lo = 0, hi = list.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    return list[lo];
  }

  /** Writes a noun phrase (of class `cls`, or any when -1); returns (class << 1) | plural. */
  #np(w: SentenceWriter, level: number, cls: number, inQuote: boolean): number {
    const p = this.#p, rng = this.#rng;
    const plural = p.agree ? rng.int(2) : 0;
    const dets = rng.int(2) === 0 ? DETERMINERS.any : plural ? DETERMINERS.plural : DETERMINERS.singular;
    const phrase = [dets[rng.int(dets.length)]];
    const nAdj = p.adjectives > 0 ? rng.int(p.adjectives + 1) : 0;
    for (let i = 0; i < nAdj; i++) phrase.push(this.#adj[this.#pick(this.#lists().adjectives)]);
    const lists = this.#lists();
    const n = this.#pick(cls < 0 ? lists.nouns : lists.nounsBy[cls]);
    phrase.push(plural ? this.#nounPl[n] : this.#nounSg[n]);
    // Only a language with `echo` draws here, so the others keep their text.
    const times = p.echo > 0 && rng.next() < p.echo ? 2 : 1;
    for (let t = 0; t < times; t++) for (const word of phrase) w.word(word);
    if (level < p.depth && rng.next() < p.aside) {
      const kind = rng.int(inQuote ? QUOTE : BRACKETS.length);
      w.open(BRACKETS[kind][0]);
      this.#np(w, level + 1, -1, inQuote || kind === QUOTE);
      w.close(BRACKETS[kind][1]);
    }
    return (this.#nounCls[n] << 1) | plural;
  }

  /** Writes a modifier of the subject `head` ((class << 1) | plural). */
  #modifier(w: SentenceWriter, head: number): void {
    const rng = this.#rng;
    const r = rng.next();
    if (r < 0.5) {
      w.word(PREPOSITIONS[rng.int(PREPOSITIONS.length)]);
      this.#np(w, 0, -1, false);
    } else if (r < 0.75) {
      // Subject relative: the head is the verb's subject.
      w.word(RELATIVIZER);
      const v = this.#pick(this.#lists().verbs);
      w.word((head & 1) ? this.#verbPl[v] : this.#verbSg[v]);
      this.#np(w, 0, this.#verbSelects[v], false);
    } else {
      // Object relative: the inner noun is the subject, the head the object.
      w.word(RELATIVIZER);
      const inner = this.#np(w, 0, -1, false);
      const v = this.#pick(this.#lists().verbsBy[head >> 1]);
      w.word((inner & 1) ? this.#verbPl[v] : this.#verbSg[v]);
    }
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/**
 * Generates a synthetic corpus: documents of sentences until `tokens` words and punctuation marks are
 * written. Deterministic for a name; a smaller `tokens` gives a prefix of the same documents.
 * Each document's `source` is `synthetic/LANGUAGE/NNNNN`.
 */
export function generateSynthetic(nameOrSpec: string | SyntheticSpec): SyntheticDocument[] {
  const spec = typeof nameOrSpec === "string" ? parseSyntheticName(nameOrSpec) : nameOrSpec;
  const p = spec.params;
  const rng = new Rng(p.seed);
  const grammar = new Grammar(syntheticLexicon(spec), p, rng);
  const lo = Math.ceil(p.sentences / 2), hi = Math.max(lo, Math.floor((3 * p.sentences) / 2));
  const docs: SyntheticDocument[] = [];
  let tokens = 0;
  while (tokens < p.tokens) {
    const topic = grammar.startDocument();
    const n = lo + rng.int(hi - lo + 1);
    const sentences: string[] = new Array(n);
    const counts: number[] = new Array(n);
    for (let i = 0; i < n; i++) {
      // Only a language with `recall` draws here, so the others keep their text.
      if (p.recall > 0 && i > 0 && rng.next() < p.recall) {
        const j = i - 1 - rng.int(Math.min(i, p.window));
        sentences[i] = sentences[j];
        counts[i] = counts[j];
      } else {
        const w = new SentenceWriter();
        grammar.sentence(w);
        sentences[i] = capitalize(w.text);
        counts[i] = w.tokens;
      }
      tokens += counts[i];
    }
    docs.push({
      source: `synthetic/${spec.language}/${String(docs.length).padStart(5, "0")}`,
      text: sentences.join(" "),
      topic,
    });
  }
  return docs;
}

/** Text seed of {@link freshSentences}: no corpus uses it unless asked (`seed=` defaults to 0). */
export const FRESH_SEED = 0x5eed_de30;

/**
 * `count` sentences of a synthetic language drawn with a text seed no pre-training run uses by default
 * ({@link FRESH_SEED}): examples of the language a model has not trained on, e.g. for a discriminator view.
 */
export function freshSentences(name: string, count: number): string[] {
  const spec = parseSyntheticName(name);
  spec.params = { ...spec.params, seed: FRESH_SEED, tokens: 50 * count };
  const out = generateSynthetic(spec).flatMap((d) => splitSentences(d.text)).slice(0, count);
  if (out.length < count) throw new Error(`freshSentences: ${name} gave ${out.length} of ${count} sentences`);
  return out;
}

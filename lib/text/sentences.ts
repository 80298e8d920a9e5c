/**
 * A rule-based English sentence splitter, good enough to give packing sentence boundaries.
 *
 * @module
 */

/**
 * Words that end in a period without ending a sentence (compared lowercased, inner periods removed,
 * so "e.g." is "eg"). "etc." is left out: it ends sentences as often as not.
 */
const ABBREVIATIONS = new Set([
  "mr",
  "mrs",
  "ms",
  "messrs",
  "mme",
  "mlle",
  "dr",
  "prof",
  "rev",
  "hon",
  "st",
  "sr",
  "jr",
  "gen",
  "col",
  "capt",
  "cpt",
  "lt",
  "sgt",
  "maj",
  "adm",
  "gov",
  "sen",
  "rep",
  "pres",
  "supt",
  "esq",
  "eg",
  "ie",
  "cf",
  "vs",
  "viz",
  "al",
  "approx",
  "no",
  "nos",
  "vol",
  "vols",
  "pp",
  "fig",
  "figs",
  "ch",
  "sec",
  "art",
  "mt",
  "ft",
  "ave",
  "co",
  "corp",
  "inc",
  "ltd",
  "dept",
  "univ",
  "jan",
  "feb",
  "mar",
  "apr",
  "jun",
  "jul",
  "aug",
  "sep",
  "sept",
  "oct",
  "nov",
  "dec",
]);

// A candidate boundary: terminal punctuation, optional closing quotes/brackets, whitespace, then (after
// optional opening quotes/brackets) an uppercase letter or a digit.
const BOUNDARY = /([.!?]+)(["'\u201d\u2019)\]]*)\s+(?=["'\u201c\u2018(\[]*[\p{Lu}\p{Lt}0-9])/gu;

/**
 * Splits text into sentences. Blank lines (paragraph breaks) always end a sentence; single newlines
 * are line wrapping. Inside a paragraph a sentence ends at `.`, `!` or `?` (plus closing quotes) when
 * the next word starts with a capital or a digit, except after a known abbreviation ("Mr.", "e.g."),
 * a single-letter initial ("J. R. R. Tolkien") or dotted initials ("U.S."). Whitespace inside each
 * sentence is collapsed to single spaces; empty sentences are dropped.
 */
export function splitSentences(text: string): string[] {
  const out: string[] = [];
  for (const para of text.replace(/\r\n?/g, "\n").split(/\n[ \t\f\v\u00a0]*\n\s*/)) {
    const p = para.replace(/\s+/g, " ").trim();
    if (p.length > 0) splitParagraph(p, out);
  }
  return out;
}

function splitParagraph(p: string, out: string[]): void {
  let start = 0;
  BOUNDARY.lastIndex = 0;
  for (let m = BOUNDARY.exec(p); m !== null; m = BOUNDARY.exec(p)) {
    if (m[1] === "." && !endsSentence(p, m.index)) continue;
    const end = m.index + m[1].length + m[2].length;
    const s = p.slice(start, end).trim();
    if (s.length > 0) out.push(s);
    start = m.index + m[0].length;
  }
  const rest = p.slice(start).trim();
  if (rest.length > 0) out.push(rest);
}

/** Whether the single period at `dot` ends a sentence, judging by the word before it. */
function endsSentence(p: string, dot: number): boolean {
  const wordStart = p.lastIndexOf(" ", dot - 1) + 1;
  // Leading quotes/brackets are not part of the word: `("Dr. Who` -> "Dr".
  const word = p.slice(wordStart, dot).replace(/^["'\u201c\u2018(\[]+/, "");
  if (word.length === 0) return true;
  // An initial, except "I", which ends sentences far more often than it abbreviates a name.
  if (/^\p{L}$/u.test(word)) return word === "I";
  if (/^(?:\p{L}\.)+\p{L}$/u.test(word)) return false; // U.S, e.g, i.e, Ph.D
  return !ABBREVIATIONS.has(word.toLowerCase().replaceAll(".", ""));
}

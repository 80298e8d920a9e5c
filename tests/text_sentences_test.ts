import assert from "node:assert/strict";
import { splitSentences } from "../lib/text/sentences.ts";

Deno.test("splitSentences: abbreviations and initials do not end sentences", () => {
  assert.deepEqual(splitSentences("Mr. Smith went to Washington. He met Dr. Jones there."), [
    "Mr. Smith went to Washington.",
    "He met Dr. Jones there.",
  ]);
  assert.deepEqual(splitSentences("J. R. R. Tolkien wrote books. They sold well."), [
    "J. R. R. Tolkien wrote books.",
    "They sold well.",
  ]);
  assert.deepEqual(splitSentences("Bring tools, e.g. Hammers and nails. Then build."), [
    "Bring tools, e.g. Hammers and nails.",
    "Then build.",
  ]);
  assert.deepEqual(splitSentences("The U.S. Army came. It was 3 p.m. when they came."), [
    "The U.S. Army came.",
    "It was 3 p.m. when they came.",
  ]);
});

Deno.test("splitSentences: quotes, ! and ?", () => {
  assert.deepEqual(splitSentences('"Help!" she cried. "Is anyone there?" No one answered.'), [
    '"Help!" she cried.',
    '"Is anyone there?"',
    "No one answered.",
  ]);
  assert.deepEqual(splitSentences('He said "Stop." Then he left.'), ['He said "Stop."', "Then he left."]);
  assert.deepEqual(splitSentences("Prices rose 3.5 percent. 1999 was good! Was it? Yes...  Indeed."), [
    "Prices rose 3.5 percent.",
    "1999 was good!",
    "Was it?",
    "Yes...",
    "Indeed.",
  ]);
});

Deno.test("splitSentences: wrapped lines join, blank lines end sentences, whitespace collapses", () => {
  const text =
    "First line of a wrapped\r\nparagraph.   Second\tsentence.\n\nNo period here\n \n\nCHAPTER I\n\nIt began.";
  assert.deepEqual(splitSentences(text), [
    "First line of a wrapped paragraph.",
    "Second sentence.",
    "No period here",
    "CHAPTER I",
    "It began.",
  ]);
  assert.deepEqual(splitSentences(" \n\n \t "), []);
  assert.deepEqual(splitSentences("lowercase after a period. stays together"), [
    "lowercase after a period. stays together",
  ]);
});

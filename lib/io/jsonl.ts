/**
 * JSON Lines as rtdlab's logs write them (metrics.jsonl): one record a line, appended as a run goes.
 *
 * @module
 */

/**
 * The records of a JSON Lines file's `text` (`path` names it in errors). Blank lines are skipped, and so
 * is an unreadable last line: a kill mid-append tears that one only (a resume rewrites the file without
 * it). An unreadable line before it is damage, named rather than dropped.
 */
export function parseJsonLines(text: string, path: string): unknown[] {
  const out: unknown[] = [];
  const lines = text.split("\n");
  const last = lines.findLastIndex((l) => l.trim() !== "");
  for (const [i, line] of lines.entries()) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch (e) {
      if (i === last) continue;
      throw new Error(`${path} line ${i + 1} cannot be read (${(e as Error).message}): the file is damaged`);
    }
  }
  return out;
}

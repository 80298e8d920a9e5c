/**
 * The user's own labelled data: a JSONL, CSV or TSV file with a text column (or a pair of them) and a
 * label column, split with a seed, or separate train/dev/test files (or a folder holding them).
 *
 * Every problem is reported with the file and line: bad JSON, a missing column, an empty label or
 * text, a CSV row with the wrong number of fields, an unterminated quote, a dev/test label that the
 * training file never uses.
 *
 * @module
 */

import { basename, extname, join } from "node:path";
import { DEFAULT_FRACTIONS, stratifiedSplit } from "./split.ts";
import type { Example, MetricName, TaskData } from "./types.ts";

/** Column choices and split settings for a user dataset. */
export interface UserTaskOptions {
  /** Text column; default: `text`, else `text_a`, `sentence1` or `sentence` (the first one present). */
  textColumn?: string;
  /** Second text column (makes the task a pair task); default `text_b` / `sentence2` when present. */
  textBColumn?: string;
  /** Label column; default `label`. */
  labelColumn?: string;
  /** Separate development file (else split off the training file). */
  devFile?: string;
  /** Separate test file (else split off the training file). */
  testFile?: string;
  /** Seed of the split. Default 0. */
  splitSeed?: number;
  /** Metric for model selection. Default accuracy. */
  metric?: MetricName;
}

/** One parsed record: its fields and the line it starts on. */
interface Row {
  line: number;
  fields: Record<string, unknown>;
}

/** Which parser a file extension selects. */
function formatOf(path: string): "jsonl" | "csv" | "tsv" {
  const ext = extname(path).toLowerCase();
  if (ext === ".jsonl" || ext === ".ndjson" || ext === ".json") return "jsonl";
  if (ext === ".csv") return "csv";
  if (ext === ".tsv" || ext === ".tab") return "tsv";
  throw new Error(`${path}: unknown data format "${ext}"; use .jsonl (one JSON object a line), .csv or .tsv`);
}

/** Parses JSON Lines: one object per non-blank line. */
export function parseJsonl(text: string, path: string): Row[] {
  const rows: Row[] = [];
  const lines = text.replace(/^\uFEFF/, "").split("\n");
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    if (!line.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new Error(`${path}:${i + 1}: bad JSON on line ${i + 1}: ${(e as Error).message}`);
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      throw new Error(`${path}:${i + 1}: line ${i + 1} is not a JSON object`);
    }
    rows.push({ line: i + 1, fields: v as Record<string, unknown> });
  });
  return rows;
}

/**
 * Parses CSV/TSV (RFC 4180 quoting: `"a, b"`, `""` for a quote, newlines inside quotes) with a header
 * row. Blank lines are skipped; a row with a different number of fields than the header is an error.
 */
export function parseDelimited(text: string, path: string, delimiter: string): Row[] {
  const src = text.replace(/^\uFEFF/, "");
  const records: { line: number; cells: string[] }[] = [];
  let cells: string[] = [];
  let cell = "";
  let quoted = false;
  let line = 1, startLine = 1, quoteLine = 0;
  let any = false; // the current record has content
  const endRecord = () => {
    cells.push(cell);
    if (any || cells.length > 1 || cell.length > 0) records.push({ line: startLine, cells });
    cells = [];
    cell = "";
    any = false;
  };
  for (let i = 0; i < src.length; i++) {
    const ch = src[i];
    if (quoted) {
      if (ch === '"') {
        if (src[i + 1] === '"') {
          cell += '"';
          i++;
        } else quoted = false;
      } else {
        if (ch === "\n") line++;
        cell += ch;
      }
      continue;
    }
    if (ch === '"' && cell.length === 0) {
      quoted = true;
      quoteLine = line;
      any = true;
    } else if (ch === delimiter) {
      cells.push(cell);
      cell = "";
      any = true;
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && src[i + 1] === "\n") i++;
      endRecord();
      line++;
      startLine = line;
    } else {
      cell += ch;
      any = true;
    }
  }
  if (quoted) {
    throw new Error(`${path}:${quoteLine}: unterminated quoted field starting on line ${quoteLine}`);
  }
  endRecord();
  if (records.length === 0) throw new Error(`${path}: the file is empty (expected a header row)`);
  const header = records[0].cells.map((h) => h.trim());
  const dup = header.find((h, i) => header.indexOf(h) !== i);
  if (dup !== undefined) {
    throw new Error(`${path}:${records[0].line}: column "${dup}" appears twice in the header`);
  }
  return records.slice(1).map((r) => {
    if (r.cells.length !== header.length) {
      throw new Error(
        `${path}:${r.line}: line ${r.line} has ${r.cells.length} fields but the header has ${header.length} ` +
          `(${header.join(", ")}); quote fields that contain "${delimiter === "\t" ? "\\t" : delimiter}"`,
      );
    }
    return { line: r.line, fields: Object.fromEntries(header.map((h, i) => [h, r.cells[i]])) };
  });
}

/** Reads a data file into rows (format from the extension). */
export async function readRows(path: string): Promise<Row[]> {
  const format = formatOf(path);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`cannot read data file ${path}: ${(e as Error).message}`);
  }
  const rows = format === "jsonl"
    ? parseJsonl(text, path)
    : parseDelimited(text, path, format === "csv" ? "," : "\t");
  if (rows.length === 0) throw new Error(`${path}: no examples in the file`);
  return rows;
}

/** Resolved column names. */
interface Columns {
  text: string;
  textB?: string;
  label: string;
}

function chooseColumns(first: Row, path: string, opts: UserTaskOptions): Columns {
  const have = Object.keys(first.fields);
  const pick = (cands: string[]) => cands.find((c) => have.includes(c));
  const text = opts.textColumn ?? pick(["text", "text_a", "sentence1", "sentence"]);
  if (!text) {
    throw new Error(
      `${path}:${first.line}: no text column: expected "text" (or "text_a" + "text_b" for pairs), found ` +
        `${have.join(", ") || "no columns"}; choose one with --text-column`,
    );
  }
  const textB = opts.textBColumn ??
    (text === "text_a" ? pick(["text_b"]) : text === "sentence1" ? pick(["sentence2"]) : undefined);
  const label = opts.labelColumn ?? "label";
  // A column the first row lacks is a header's (CSV/TSV) or a first record's (JSONL) problem: name the flag.
  for (
    const [col, what, flag] of [[label, "label", "--label-column"], [textB, "second text", "--text-b-column"]]
  ) {
    if (col !== undefined && !have.includes(col)) {
      throw new Error(
        `${path}: no "${col}" column (the ${what}); found ${have.join(", ")}: choose one with ${flag}`,
      );
    }
  }
  return { text, textB, label };
}

/** Turns rows into raw (string-labelled) examples, checking every field. */
function toRaw(rows: Row[], path: string, cols: Columns): { ex: Omit<Example, "label">; label: string }[] {
  return rows.map((r) => {
    const get = (col: string, what: string) => {
      if (!Object.hasOwn(r.fields, col)) {
        throw new Error(
          `${path}:${r.line}: missing column "${col}" (the ${what}) on line ${r.line}; present: ${
            Object.keys(r.fields).join(", ")
          }`,
        );
      }
      const v = r.fields[col];
      if (v !== null && typeof v === "object") {
        throw new Error(`${path}:${r.line}: column "${col}" on line ${r.line} holds an object or array`);
      }
      return v === null || v === undefined ? "" : String(v);
    };
    const label = get(cols.label, "label").trim();
    if (!label) throw new Error(`${path}:${r.line}: empty label on line ${r.line} (column "${cols.label}")`);
    const text = get(cols.text, "text");
    if (!text.trim()) {
      throw new Error(`${path}:${r.line}: empty text on line ${r.line} (column "${cols.text}")`);
    }
    const ex: Omit<Example, "label"> = { id: `${basename(path)}:${r.line}`, text };
    if (cols.textB) {
      const b = get(cols.textB, "second text");
      if (!b.trim()) {
        throw new Error(`${path}:${r.line}: empty second text on line ${r.line} (column "${cols.textB}")`);
      }
      ex.textB = b;
    }
    return { ex, label };
  });
}

/** Sorted label names: numerically when every label is a number, else by code units. */
function sortLabels(labels: Iterable<string>): string[] {
  const list = [...new Set(labels)];
  const numeric = list.every((l) => /^-?\d+(\.\d+)?$/.test(l));
  return list.sort((a, b) => numeric ? Number(a) - Number(b) : a < b ? -1 : a > b ? 1 : 0);
}

/** Finds train/dev/test files in a folder (`train.*`, `dev.*` or `validation.*`, `test.*`). */
async function filesInFolder(dir: string): Promise<{ train: string; dev?: string; test?: string }> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile) names.push(e.name);
  const find = (stems: string[]) =>
    names.sort().find((n) => {
      const ext = extname(n).toLowerCase();
      return stems.includes(basename(n, extname(n)).toLowerCase()) &&
        [".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".tab"].includes(ext);
    });
  const train = find(["train"]);
  if (!train) throw new Error(`${dir}: no train.jsonl, train.csv or train.tsv in the folder`);
  const dev = find(["dev", "validation", "valid", "val"]);
  const test = find(["test"]);
  return { train: join(dir, train), dev: dev && join(dir, dev), test: test && join(dir, test) };
}

/**
 * Loads a user dataset: `path` is a data file (split here with `splitSeed` unless `devFile` /
 * `testFile` are given) or a folder with train/dev/test files.
 */
export async function loadUserTask(path: string, opts: UserTaskOptions = {}): Promise<TaskData> {
  let trainPath = path, devPath = opts.devFile, testPath = opts.testFile;
  let name = basename(path, extname(path));
  const st = await Deno.stat(path).catch(() => null);
  if (!st) throw new Error(`no such task or data file: ${path}`);
  if (st.isDirectory) {
    const f = await filesInFolder(path);
    trainPath = f.train;
    devPath ??= f.dev;
    testPath ??= f.test;
    name = basename(path);
  }
  const trainRows = await readRows(trainPath);
  const cols = chooseColumns(trainRows[0], trainPath, opts);
  const trainRaw = toRaw(trainRows, trainPath, cols);
  const labels = sortLabels(trainRaw.map((r) => r.label));
  // "1" and "1.0" would be two classes of one number: a slip in the file, not a label set.
  const byNumber = new Map<number, string>();
  for (const l of labels) {
    if (!/^-?\d+(\.\d+)?$/.test(l)) continue;
    const twin = byNumber.get(Number(l));
    if (twin !== undefined) {
      throw new Error(
        `${trainPath}: labels "${twin}" and "${l}" are one number written two ways; write them alike ` +
          `(they would be two classes)`,
      );
    }
    byNumber.set(Number(l), l);
  }
  const index = new Map(labels.map((l, i) => [l, i]));
  const finish = (raw: ReturnType<typeof toRaw>, file: string, rows: Row[]): Example[] =>
    raw.map((r, i) => {
      const label = index.get(r.label);
      if (label === undefined) {
        throw new Error(
          `${file}:${rows[i].line}: label "${r.label}" on line ${
            rows[i].line
          } never occurs in the training ` +
            `file ${trainPath} (labels there: ${labels.slice(0, 20).join(", ")})`,
        );
      }
      return { ...r.ex, label };
    });
  const pool = finish(trainRaw, trainPath, trainRows);
  const loadOther = async (file: string) => {
    const rows = await readRows(file);
    return finish(toRaw(rows, file, cols), file, rows);
  };
  const seed = opts.splitSeed ?? 0;
  let train: Example[], dev: Example[], test: Example[];
  let fractions: [number, number, number] | undefined;
  if (devPath && testPath) {
    [train, dev, test] = [pool, await loadOther(devPath), await loadOther(testPath)];
  } else {
    fractions = devPath ? [0.9, 0, 0.1] : testPath ? [0.9, 0.1, 0] : DEFAULT_FRACTIONS;
    [train, dev, test] = stratifiedSplit(pool, (e) => e.label, seed, fractions);
    if (devPath) dev = await loadOther(devPath);
    if (testPath) test = await loadOther(testPath);
  }
  if (labels.length < 2) {
    throw new Error(
      `${trainPath}: only one label ("${labels[0]}") in column "${cols.label}"; need at least two`,
    );
  }
  for (const [split, list] of [["train", train], ["dev", dev], ["test", test]] as const) {
    if (list.length === 0) throw new Error(`${trainPath}: the ${split} split is empty (too few examples)`);
  }
  const fileNote = [devPath && `dev ${devPath}`, testPath && `test ${testPath}`].filter(Boolean).join(", ");
  return {
    name,
    description: `user data ${trainPath}${fileNote ? ` (${fileNote})` : ""}: ${pool.length} training rows, ` +
      `${labels.length} labels, columns ${cols.text}${cols.textB ? `+${cols.textB}` : ""} → ${cols.label}`,
    labels,
    pair: cols.textB !== undefined,
    metric: opts.metric ?? "accuracy",
    train,
    dev,
    test,
    split: fractions ? { kind: "seeded", seed, fractions, unit: "example" } : { kind: "files" },
  };
}

/**
 * Metric logs as arquero tables: load one or many run folders (`metrics.jsonl` + `config.json`), smooth
 * curves per run, and compare runs and sharing modes (final / last-k values, mean ± std across seeds).
 *
 * Every loaded table has the columns `run`, `sharing`, `seed`, `preset`, `step`, then every metric key
 * seen in any run (missing keys are null: probe keys, `loss_rtd` of the MLM baseline).
 *
 * ```ts
 * const t = await loadRuns("runs/demo");
 * await show(compareModes(t, ["loss_mlm", "disc_acc"], { lastK: 5 }));
 * ```
 *
 * @module
 */

import * as aq from "arquero";
import { basename, dirname, join, relative, resolve } from "node:path";
import { SHARING_MODES } from "../config.ts";
import { parseJsonLines } from "../io/jsonl.ts";
import type { MetricsRecord } from "../train/run.ts";

/** An arquero column table (what every helper here takes and returns). */
export type Table = aq.ColumnTable;

/** The run-identity columns every loaded table starts with. */
export const RUN_COLUMNS = ["run", "sharing", "seed", "preset"] as const;

/** Metrics compared by default: the two losses and the two accuracies. */
export const DEFAULT_METRICS = ["loss_mlm", "loss_rtd", "disc_acc", "gen_acc"];

/** Options of {@link loadRun} and {@link loadRuns}. */
export interface LoadOptions {
  /** Name of the run in the `run` column (loadRun; default: the folder's name). */
  name?: string;
  /** Extra config.json keys to add as columns (dotted paths reach nested keys, e.g. `discriminator.hiddenSize`). */
  configKeys?: string[];
}

type Row = Record<string, unknown>;

/**
 * Reads a metrics.jsonl file ([] when it is missing): one record per line, skipping blank lines and a torn
 * last line (a crash mid-append, or a run still writing); an unreadable line before it is named as damage.
 */
export async function readMetricsFile(path: string): Promise<MetricsRecord[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return parseJsonLines(text, path).filter((r): r is MetricsRecord =>
    r !== null && typeof r === "object" && typeof (r as Row).step === "number"
  );
}

/** Reads a run folder's config.json ({} when it is missing). */
export async function readRunConfig(dir: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    throw new Error(`${join(dir, "config.json")}: ${(e as Error).message}`);
  }
}

function configValue(config: Record<string, unknown>, path: string): unknown {
  let v: unknown = config;
  for (const k of path.split(".")) v = v && typeof v === "object" ? (v as Row)[k] : undefined;
  return v === undefined ? null : v;
}

/** Builds a table from rows whose key sets differ: columns in first-seen order, missing values null. */
export function tableFromRows(rows: Row[], leading: readonly string[] = []): Table {
  const seen = new Set<string>(leading);
  for (const r of rows) {
    for (const k of Object.keys(r)) seen.add(k);
  }
  const names = [...seen];
  const cols: Record<string, unknown[]> = {};
  for (const n of names) cols[n] = rows.map((r) => (r[n] === undefined ? null : r[n]));
  return aq.table(cols);
}

async function runRows(dir: string, name: string, configKeys: string[]): Promise<Row[]> {
  const [records, config] = await Promise.all([
    readMetricsFile(join(dir, "metrics.jsonl")),
    readRunConfig(dir),
  ]);
  const id: Row = {
    run: name,
    sharing: typeof config.sharing === "string" ? config.sharing : null,
    seed: typeof config.seed === "number" ? config.seed : null,
    preset: typeof config.preset === "string" ? config.preset : null,
  };
  for (const k of configKeys) id[k] = configValue(config, k);
  return records.map((r) => ({ ...id, ...r }));
}

/** Loads one run folder: one row per logged step, with run/sharing/seed/preset columns from config.json. */
export async function loadRun(dir: string, opts: LoadOptions = {}): Promise<Table> {
  const keys = opts.configKeys ?? [];
  const rows = await runRows(dir, opts.name ?? basename(resolve(dir)), keys);
  return tableFromRows(rows, [...RUN_COLUMNS, ...keys, "step"]);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** Finds run folders (those holding metrics.jsonl) at or below `root`, `maxDepth` levels deep, sorted. */
export async function findRuns(root: string, maxDepth = 3): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string, depth: number): Promise<void> {
    if (await isFile(join(dir, "metrics.jsonl"))) out.push(dir);
    if (depth >= maxDepth) return;
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory && !e.name.startsWith(".") && e.name !== "checkpoints" && e.name !== "export") {
        await walk(join(dir, e.name), depth + 1);
      }
    }
  }
  await walk(root, 0);
  return out;
}

/** Short unique names: folder names, or paths relative to the folders' common parent when those clash. */
export function runNames(dirs: string[]): string[] {
  const abs = dirs.map((d) => resolve(d));
  const names = abs.map((d) => basename(d));
  if (new Set(names).size === names.length) return names;
  let common = dirname(abs[0]);
  while (!abs.every((d) => d.startsWith(common + "/"))) common = dirname(common);
  return abs.map((d) => relative(common, d));
}

/**
 * Loads many runs into one table. Each path is a run folder, or a folder searched with {@link findRuns}
 * (e.g. `runs/demo` holding `es/`, `gdes/`, ...).
 */
export async function loadRuns(paths: string | string[], opts: LoadOptions = {}): Promise<Table> {
  const dirs: string[] = [];
  for (const p of Array.isArray(paths) ? paths : [paths]) {
    const found = await findRuns(p);
    if (found.length === 0) throw new Error(`${p}: no run folder (one holding metrics.jsonl) found there`);
    for (const d of found) if (!dirs.includes(d)) dirs.push(d);
  }
  const keys = opts.configKeys ?? [];
  const names = runNames(dirs);
  const rows = (await Promise.all(dirs.map((d, i) => runRows(d, names[i], keys)))).flat();
  return tableFromRows(rows, [...RUN_COLUMNS, ...keys, "step"]);
}

/** Orders names with numbers by their value ("mask 0.15" before "mask 0.3", "λ = 50" before "λ = 200"). */
export function naturalCompare(a: string, b: string): number {
  const parts = (s: string) => s.split(/(\d+(?:\.\d+)?)/);
  const pa = parts(a), pb = parts(b);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] === pb[i]) continue;
    // Odd entries are the numbers the split captured.
    return i % 2 === 1
      ? Number(pa[i]) - Number(pb[i]) || pa[i].localeCompare(pb[i])
      : pa[i].localeCompare(pb[i]);
  }
  return pa.length - pb.length;
}

/** Sharing modes in report order: mlm, es, nes, gdes, then any others by name (numbers by value). */
export function modeOrder(modes: Iterable<string | null>): string[] {
  const set = new Set([...modes].map((m) => m ?? "?"));
  const known = SHARING_MODES.filter((m) => set.has(m)) as string[];
  return [...known, ...[...set].filter((m) => !known.includes(m)).sort(naturalCompare)];
}

/** Row indices of each run, each in step order (runs in first-seen order). */
export function runIndices(t: Table): Map<string, number[]> {
  const runs = t.array("run") as ArrayLike<string>;
  const steps = t.array("step") as ArrayLike<number>;
  const out = new Map<string, number[]>();
  for (let i = 0; i < t.numRows(); i++) {
    const list = out.get(runs[i]);
    if (list) list.push(i);
    else out.set(runs[i], [i]);
  }
  for (const list of out.values()) list.sort((a, b) => steps[a] - steps[b]);
  return out;
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** Options of {@link smooth}. */
export interface SmoothOptions {
  /** `ema` (default): exponential moving average; `rolling`: mean of the last `window` logged values. */
  method?: "ema" | "rolling";
  /** EMA weight of the past in [0, 1) (TensorBoard's "smoothing"; default 0.6). */
  weight?: number;
  /** Rolling window in logged rows (default 10). */
  window?: number;
  /** Suffix of the added columns (default `_smooth`; `""` replaces the columns). */
  suffix?: string;
}

/**
 * Smooths a series in order. EMA is debiased like TensorBoard's: s_n = Σ w^(n-i)(1-w)x_i / (1 - w^n), so the
 * first value is kept. Nulls stay null and do not enter the average.
 */
export function smoothSeries(values: (number | null)[], opts: SmoothOptions = {}): (number | null)[] {
  const method = opts.method ?? "ema";
  if (method === "ema") {
    const w = opts.weight ?? 0.6;
    if (!(w >= 0 && w < 1)) throw new Error(`EMA weight must be in [0, 1), got ${w}`);
    let acc = 0, norm = 0;
    return values.map((v) => {
      if (v === null) return null;
      acc = w * acc + (1 - w) * v;
      norm = w * norm + (1 - w);
      return acc / norm;
    });
  }
  const win = opts.window ?? 10;
  if (!(Number.isInteger(win) && win >= 1)) {
    throw new Error(`rolling window must be an integer >= 1, got ${win}`);
  }
  return values.map((v, i) => {
    if (v === null) return null;
    let sum = 0, n = 0;
    for (let j = Math.max(0, i - win + 1); j <= i; j++) {
      if (values[j] !== null) {
        sum += values[j] as number;
        n++;
      }
    }
    return sum / n;
  });
}

/** Adds smoothed copies of metric columns (`loss_mlm_smooth`, ...), smoothing each run separately in step order. */
export function smooth(t: Table, columns: string | string[], opts: SmoothOptions = {}): Table {
  const table = t.reify();
  const suffix = opts.suffix ?? "_smooth";
  const groups = runIndices(table);
  const added: Record<string, (number | null)[]> = {};
  for (const col of Array.isArray(columns) ? columns : [columns]) {
    if (!table.columnNames().includes(col)) throw new Error(`smooth: no column "${col}"`);
    const raw = Array.from(table.array(col) as ArrayLike<unknown>, num);
    const out = new Array<number | null>(raw.length).fill(null);
    for (const idx of groups.values()) {
      const s = smoothSeries(idx.map((i) => raw[i]), opts);
      idx.forEach((i, k) => (out[i] = s[k]));
    }
    added[col + suffix] = out;
  }
  return table.assign(added);
}

function mean(xs: number[]): number | null {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

/** Sample standard deviation (n − 1); null for fewer than two values. */
export function stdev(xs: number[]): number | null {
  if (xs.length < 2) return null;
  const m = mean(xs) as number;
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/** Options of {@link compareRuns} and {@link compareModes}. */
export interface CompareOptions {
  /** Average over the last k logged (non-null) values of each metric (default 5). */
  lastK?: number;
}

function present(t: Table, metrics: string[]): string[] {
  const cols = t.columnNames();
  return metrics.filter((m) => cols.includes(m));
}

/**
 * One row per run: identity columns, `steps` (last logged step), and for each metric `<m>_final` (the last
 * non-null value) and `<m>_lastk` (mean of the last k non-null values).
 */
export function compareRuns(t: Table, metrics: string[] = DEFAULT_METRICS, opts: CompareOptions = {}): Table {
  const k = opts.lastK ?? 5;
  if (!(Number.isInteger(k) && k >= 1)) throw new Error(`lastK must be an integer >= 1, got ${k}`);
  const table = t.reify();
  const ms = present(table, metrics);
  const colOf = (name: string) => table.array(name) as ArrayLike<unknown>;
  const rows: Row[] = [];
  for (const [run, idx] of runIndices(table)) {
    const first = idx[0];
    const row: Row = {};
    for (const c of RUN_COLUMNS) row[c] = colOf(c)[first];
    row.steps = colOf("step")[idx[idx.length - 1]];
    row.run = run;
    for (const m of ms) {
      const col = colOf(m);
      const vals = idx.map((i) => num(col[i])).filter((v): v is number => v !== null);
      row[`${m}_final`] = vals.length ? vals[vals.length - 1] : null;
      row[`${m}_lastk`] = mean(vals.slice(-k));
    }
    rows.push(row);
  }
  return tableFromRows(rows, [...RUN_COLUMNS, "steps"]);
}

/**
 * One row per sharing mode (report order): `runs` (how many), and for each metric the mean and sample std
 * across that mode's runs (seeds) of each run's last-k average: `<m>_mean`, `<m>_std` (null for one run).
 */
export function compareModes(
  t: Table,
  metrics: string[] = DEFAULT_METRICS,
  opts: CompareOptions = {},
): Table {
  const perRun = compareRuns(t, metrics, opts);
  const ms = present(t, metrics);
  const modes = Array.from(perRun.array("sharing") as ArrayLike<string | null>, (m) => m ?? "?");
  const rows: Row[] = [];
  for (const mode of modeOrder(modes)) {
    const idx = modes.flatMap((m, i) => (m === mode ? [i] : []));
    const row: Row = { sharing: mode, runs: idx.length };
    for (const m of ms) {
      const col = perRun.array(`${m}_lastk`) as ArrayLike<unknown>;
      const vals = idx.map((i) => num(col[i])).filter((v): v is number => v !== null);
      row[`${m}_mean`] = mean(vals);
      row[`${m}_std`] = stdev(vals);
    }
    rows.push(row);
  }
  return tableFromRows(rows, ["sharing", "runs"]);
}

/**
 * Mean curves: for each group (default: sharing mode) and step, `runs` (how many runs logged it) and each
 * metric's mean and std across those runs (`<m>_mean`, `<m>_std`). Groups in report order, then by step.
 */
export function groupCurves(t: Table, metrics: string[], by: string[] = ["sharing"]): Table {
  const table = t.reify();
  const ms = present(table, metrics);
  const keyCols = by.map((c) => table.array(c) as ArrayLike<unknown>);
  const steps = table.array("step") as ArrayLike<number>;
  const groups = new Map<string, { key: unknown[]; step: number; idx: number[] }>();
  for (let i = 0; i < table.numRows(); i++) {
    const key = keyCols.map((c) => c[i]);
    const id = JSON.stringify([...key, steps[i]]);
    const g = groups.get(id);
    if (g) g.idx.push(i);
    else groups.set(id, { key, step: steps[i], idx: [i] });
  }
  const order = by[0] === "sharing" ? modeOrder(Array.from(keyCols[0], (v) => v as string | null)) : [];
  const rank = (
    v: unknown,
  ) => (order.includes(String(v ?? "?")) ? order.indexOf(String(v ?? "?")) : order.length);
  const sorted = [...groups.values()].sort((a, b) => {
    for (let j = 0; j < by.length; j++) {
      if (j === 0 && order.length) {
        const d = rank(a.key[0]) - rank(b.key[0]);
        if (d) return d;
      }
      const d = String(a.key[j]).localeCompare(String(b.key[j]), undefined, { numeric: true });
      if (d) return d;
    }
    return a.step - b.step;
  });
  const rows = sorted.map((g) => {
    const row: Row = {};
    by.forEach((c, j) => (row[c] = g.key[j]));
    row.step = g.step;
    row.runs = g.idx.length;
    for (const m of ms) {
      const col = table.array(m) as ArrayLike<unknown>;
      const vals = g.idx.map((i) => num(col[i])).filter((v): v is number => v !== null);
      row[`${m}_mean`] = mean(vals);
      row[`${m}_std`] = stdev(vals);
    }
    return row;
  });
  return tableFromRows(rows, [...by, "step", "runs"]);
}

/**
 * Formats a {@link compareModes} / {@link groupCurves} table for reading: each `<m>_mean`/`<m>_std` pair
 * becomes one string column `<m>` ("0.1234 ± 0.0056"; the mean alone when there is no std).
 */
export function formatMeanStd(t: Table, digits = 4): Table {
  const names = t.columnNames();
  const cols: Record<string, unknown[]> = {};
  for (const n of names) {
    if (n.endsWith("_std") && names.includes(n.slice(0, -4) + "_mean")) continue;
    if (n.endsWith("_mean")) {
      const base = n.slice(0, -5);
      const m = Array.from(t.array(n) as ArrayLike<unknown>, num);
      const s = names.includes(base + "_std")
        ? Array.from(t.array(base + "_std") as ArrayLike<unknown>, num)
        : m.map(() => null);
      cols[base] = m.map((v, i) =>
        v === null
          ? "–"
          : s[i] === null
          ? v.toFixed(digits)
          : `${v.toFixed(digits)} ± ${s[i]!.toFixed(digits)}`
      );
    } else {
      cols[n] = Array.from(t.array(n) as ArrayLike<unknown>);
    }
  }
  return aq.table(cols);
}

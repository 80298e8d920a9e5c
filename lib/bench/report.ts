/**
 * Benchmark output: the side-by-side table, one `ratio ...` line per case, and the JSON record.
 *
 * @module
 */

import { dirname } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import type { BenchRow } from "./suite.ts";

/** Text table with a header rule (markdown-compatible): the first `left` columns left-aligned, the rest right. */
export function textTable(header: string[], rows: string[][], left = 3): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    "| " + cells.map((c, i) => (i < left ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(" | ") + " |";
  const rule = "|" +
    widths.map((w, i) => (i < left ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|") + "|";
  return [line(header), rule, ...rows.map(line)].join("\n");
}

const fmt = (x: number | undefined | null, digits: number) => x == null ? "—" : x.toFixed(digits);

/**
 * The results table: config, backend, batch, median step s, tokens/s, peak RSS, the peer's, the ratio
 * of medians, the ratio of each side's fastest timed step, and the CPU-time ratio.
 */
export function benchTable(rows: BenchRow[]): string {
  return textTable(
    [
      "config",
      "backend",
      "batch",
      "median step s",
      "tokens/s",
      "peak RSS MiB",
      "peer step s",
      "peer tokens/s",
      "peer RSS MiB",
      "ratio rtdlab/peer",
      "ratio, fastest steps",
      "cpu s/step",
      "peer cpu s/step",
      "cpu ratio",
    ],
    rows.map((r) => {
      const x = r.rtdlab.result, p = r.peer?.result;
      return [
        r.spec.config,
        r.spec.backend,
        String(r.spec.batch),
        x ? fmt(x.median_s, 3) : "FAILED",
        fmt(x?.tokens_per_s, 0),
        fmt(x?.peak_rss_mib, 0),
        p ? fmt(p.median_s, 3) : r.peer ? "FAILED" : "—",
        fmt(p?.tokens_per_s, 0),
        fmt(p?.peak_rss_mib, 0),
        fmt(r.ratio, 2),
        fmt(bestRatio(r), 2),
        fmt(x?.cpu_s_per_step, 3),
        fmt(peerCpu(r), 3),
        fmt(cpuRatio(r), 2),
      ];
    }),
  );
}

/**
 * The peer's fastest timed step ÷ rtdlab's: the ratio at each side's best. Where a side's steps fall in
 * two modes (the peer's at tiny b8: 0.08 s and 0.15–0.67 s on 2026-12-07), the median ratio depends on
 * which mode the median lands in, and this one does not.
 */
export function bestRatio(r: BenchRow): number | null {
  const x = r.rtdlab.result, p = r.peer?.result;
  return x && p && typeof p.min_s === "number" && x.min_s > 0 ? p.min_s / x.min_s : null;
}

/** The peer's CPU seconds (user + system, both threads) per timed step, from its JSON. */
export function peerCpu(r: BenchRow): number | null {
  const p = r.peer?.result;
  if (!p || typeof p.timed_user_s !== "number" || typeof p.timed_sys_s !== "number") return null;
  return (p.timed_user_s + p.timed_sys_s) / Number(p.timed);
}

/**
 * Peer CPU seconds per step ÷ rtdlab CPU seconds per step: the work ratio, which load from other
 * processes disturbs far less than wall time (OpenBLAS threads that spin while waiting inflate the
 * peer's side under contention).
 */
export function cpuRatio(r: BenchRow): number | null {
  const pc = peerCpu(r), x = r.rtdlab.result;
  return pc != null && x ? pc / x.cpu_s_per_step : null;
}

/** What the table's ratios are (each above 1 where rtdlab is the faster side). */
export const BENCH_LEGEND =
  "ratios above 1: rtdlab is faster. ratio rtdlab/peer = rtdlab's tokens/s ÷ the peer's " +
  "(medians of the timed steps); ratio, fastest steps = the peer's fastest step ÷ rtdlab's; cpu ratio = the " +
  "peer's CPU s/step ÷ rtdlab's (user + system time of all threads).";

/**
 * A note for each case whose median ratio and fastest-step ratio differ by more than `factor`: one side's
 * steps were uneven (two modes, or another process on the machine), so the median is not to be trusted alone.
 */
export function unevenNotes(rows: BenchRow[], factor = 1.5): string[] {
  return rows.flatMap((r) => {
    const best = bestRatio(r);
    if (r.ratio == null || best == null || Math.max(r.ratio / best, best / r.ratio) <= factor) return [];
    return [
      `note: ${r.spec.config} ${r.spec.backend} b${r.spec.batch}: the median ratio (${
        r.ratio.toFixed(2)
      }) and the ` +
      `fastest-step ratio (${
        best.toFixed(2)
      }) differ by more than ${factor}×: a side's steps were uneven (a busy ` +
      `machine, or steps in two modes); measure on an idle machine, with --repeat for the spread`,
    ];
  });
}

/** `ratio <config> <backend> b<batch>: <x.xx>` per case (`n/a` when a side is missing). */
export function ratioLines(rows: BenchRow[]): string[] {
  return rows.map((r) =>
    `ratio ${r.spec.config} ${r.spec.backend} b${r.spec.batch}: ${
      r.ratio == null ? "n/a" : r.ratio.toFixed(2)
    }`
  );
}

/** Default record path: runs/bench/bench-<UTC timestamp>.json. */
export function defaultOutPath(now = new Date()): string {
  return `runs/bench/bench-${now.toISOString().replace(/[:.]/g, "-").replace(/-\d+Z$/, "Z")}.json`;
}

/** Writes `record` as pretty JSON, creating the folder. */
export async function writeRecord(path: string, record: unknown): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  // Atomic: the bench rewrites its record after every case, and a time limit may kill it mid-write.
  await writeFileAtomic(path, JSON.stringify(record, null, 2) + "\n");
}

/** One case over the rounds of a repeated suite (--repeat): each round's numbers, in round order. */
export interface CaseSpread {
  config: string;
  backend: string;
  batch: number;
  /** Ratio of medians per round (null: a side failed that round). */
  ratios: (number | null)[];
  /** Ratio of each side's fastest step per round. */
  bestRatios: (number | null)[];
  /** rtdlab's and the peer's median step, seconds, per round. */
  rtdlabStepS: (number | null)[];
  peerStepS: (number | null)[];
}

/** Groups the rows of repeated rounds by case (rounds list the same cases in the same order). */
export function caseSpreads(rounds: BenchRow[][]): CaseSpread[] {
  return (rounds[0] ?? []).map((first, i) => {
    const rows = rounds.map((round) => round[i]);
    return {
      config: first.spec.config,
      backend: first.spec.backend,
      batch: first.spec.batch,
      ratios: rows.map((r) => r?.ratio ?? null),
      bestRatios: rows.map((r) => (r ? bestRatio(r) : null)),
      rtdlabStepS: rows.map((r) => r?.rtdlab.result?.median_s ?? null),
      peerStepS: rows.map((r) => r?.peer?.result?.median_s ?? null),
    };
  });
}

/** Median of the finite values (null when there are none). */
function medianOf(xs: (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x != null && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** "min–max" of the finite values to `digits`, or "—". */
function rangeOf(xs: (number | null)[], digits: number): string {
  const v = xs.filter((x): x is number => x != null && Number.isFinite(x));
  return v.length ? `${Math.min(...v).toFixed(digits)}–${Math.max(...v).toFixed(digits)}` : "—";
}

/** Rounds whose ratio reached 1.0, as "k/n" over the rounds with a ratio. */
function atLeastOne(xs: (number | null)[]): string {
  const v = xs.filter((x): x is number => x != null);
  return `${v.filter((x) => x >= 1).length}/${v.length}`;
}

/**
 * The spread table of a repeated suite: per case, the ratio of medians as median and range over the
 * rounds, the rounds at or above 1.0, the fastest-step ratio's range, and each side's median step range.
 */
export function spreadTable(spreads: CaseSpread[]): string {
  return textTable(
    [
      "config",
      "backend",
      "batch",
      "rounds",
      "ratio, median",
      "ratio, range",
      "rounds ≥ 1.0",
      "ratio, fastest steps, range",
      "rtdlab step s, range",
      "peer step s, range",
    ],
    spreads.map((s) => [
      s.config,
      s.backend,
      String(s.batch),
      String(s.ratios.length),
      fmt(medianOf(s.ratios), 2),
      rangeOf(s.ratios, 2),
      atLeastOne(s.ratios),
      rangeOf(s.bestRatios, 2),
      rangeOf(s.rtdlabStepS, 3),
      rangeOf(s.peerStepS, 3),
    ]),
  );
}

/** `ratio <config> <backend> b<batch>: median m (lo–hi), k/n rounds ≥ 1.0` per case of a repeated suite. */
export function spreadLines(spreads: CaseSpread[]): string[] {
  return spreads.map((s) => {
    const m = medianOf(s.ratios);
    return `ratio ${s.config} ${s.backend} b${s.batch}: ${
      m == null
        ? "n/a"
        : `median ${m.toFixed(2)} (${rangeOf(s.ratios, 2)}), ${atLeastOne(s.ratios)} rounds ≥ 1.0`
    }`;
  });
}

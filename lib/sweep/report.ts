/**
 * A sweep's results: one row per point (mean ± std over seeds), `results.md`, and the HTML report's
 * figures — RTD gain and D's AUC on T = 1 replacements against each swept key, and every run's
 * training curves from metrics.jsonl.
 *
 * @module
 */

import { formatDuration } from "../util/progress.ts";
import { METRIC_LABELS, RUN_COLORS } from "../report/figures.ts";
import { smoothSeries, stdev } from "../report/metrics.ts";
import { escapeHtml, type Figure, type Trace } from "../report/plotly.ts";
import { formatAgainst, formatSe, NOT_LEARNED } from "../train/rtd_metrics.ts";
import type { MetricsRecord } from "../train/run.ts";
import type { PointResult } from "./runs.ts";

/** A colour per run or series (plotly's default ten, then repeated with dashes). */
const PALETTE = RUN_COLORS;
const DASHES = ["solid", "dash", "dot", "dashdot"];

/** Mean and sample std of the finite numbers (std null below two values); null when there are none. */
export interface MeanStd {
  mean: number;
  std: number | null;
  n: number;
  /** One run only: its standard error over the evaluated sequences, where known (no spread over seeds). */
  se?: number | null;
}

function meanStd(xs: (number | null | undefined)[]): MeanStd | null {
  const v = xs.filter((x): x is number => typeof x === "number" && Number.isFinite(x));
  if (v.length === 0) return null;
  return { mean: v.reduce((a, b) => a + b, 0) / v.length, std: stdev(v), n: v.length };
}

/** One point of the sweep across its seeds. */
export interface GroupRow {
  group: string;
  label: string;
  values: Record<string, string>;
  /** Runs of this point (one per seed) and how many are finished and evaluated. */
  runs: number;
  done: number;
  auc: MeanStd | null;
  gain: MeanStd | null;
  baseRate: MeanStd | null;
  lossMlm: MeanStd | null;
  genAcc: MeanStd | null;
  /** D's AUC and RTD gain in training (last tenth of logged steps, at the run's own temperature). */
  trainAuc: MeanStd | null;
  trainGain: MeanStd | null;
  tokensPerS: MeanStd | null;
  wallS: MeanStd | null;
  tokens: number;
  samplingTemperature: number;
  /** Finished runs whose D has learned by the T = 1 numbers. */
  learned: number;
}

/** A one-run point's number with that run's standard error (several runs: their spread says more). */
function withSe(values: (number | null)[], ses: (number | null | undefined)[]): MeanStd | null {
  const x = meanStd(values);
  if (!x || x.n !== 1) return x;
  // The one run whose value counted, and its own standard error.
  const k = values.findIndex((v) => typeof v === "number" && Number.isFinite(v));
  return typeof ses[k] === "number" ? { ...x, se: ses[k] } : x;
}

/** Groups the runs of each point (its seeds) in sweep order. */
export function groupResults(results: PointResult[]): GroupRow[] {
  const groups = new Map<string, PointResult[]>();
  for (const r of results) groups.set(r.group, [...(groups.get(r.group) ?? []), r]);
  return [...groups.values()].map((rs) => {
    const done = rs.filter((r) => r.eval !== null);
    const ev = <K extends keyof NonNullable<PointResult["eval"]>>(k: K) =>
      done.map((r) => r.eval![k] as number | null);
    return {
      group: rs[0].group,
      label: rs[0].label,
      values: rs[0].values,
      runs: rs.length,
      done: done.length,
      auc: withSe(ev("disc_auc"), ev("disc_auc_se")),
      gain: withSe(ev("rtd_gain"), ev("rtd_gain_se")),
      baseRate: meanStd(ev("base_rate")),
      lossMlm: meanStd(ev("loss_mlm")),
      genAcc: meanStd(ev("gen_acc")),
      trainAuc: meanStd(done.map((r) => r.train.disc_auc)),
      trainGain: meanStd(done.map((r) => r.train.rtd_gain)),
      tokensPerS: meanStd(done.map((r) => r.tokens_per_s)),
      wallS: meanStd(done.map((r) => r.wall_s)),
      tokens: rs[0].tokens,
      samplingTemperature: rs[0].samplingTemperature,
      learned: done.filter((r) => r.learned === true).length,
    };
  });
}

/**
 * `0.612 ± 0.013` (std over seeds, two or more), `0.612 (SE 0.008)` (one run's standard error), or `—`.
 * With `threshold` the mean is never rounded across it (D's AUC and gain beside the "learned" column).
 */
export function formatMeanStd(x: MeanStd | null, digits = 3, threshold?: number): string {
  if (!x) return "—";
  const mean = threshold === undefined ? x.mean.toFixed(digits) : formatAgainst(x.mean, threshold, digits);
  if (x.std !== null) return `${mean} ± ${formatSe(x.std, digits)}`;
  return typeof x.se === "number" ? `${mean} (SE ${formatSe(x.se, digits)})` : mean;
}

function formatTokens(n: number): string {
  return n >= 1e6
    ? `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`
    : n >= 1e3
    ? `${Math.round(n / 1e3)}k`
    : String(n);
}

/** A table as header cells and body rows of text. */
export interface TableCells {
  head: string[];
  body: string[][];
}

/** The results table: one row per point, swept keys as columns, the T = 1 numbers first. */
export function resultsCells(rows: GroupRow[], swept: string[]): TableCells {
  const head = [
    "point",
    ...swept,
    "D AUC (T=1)",
    "RTD gain (T=1)",
    "base-rate entropy",
    "MLM loss",
    "G acc",
    "D AUC (train)",
    "RTD gain (train)",
    "tokens",
    "tokens/s",
    "wall",
    "learned",
  ];
  const body = rows.map((r) => [
    r.group,
    ...swept.map((k) => r.values[k] ?? "(base)"),
    formatMeanStd(r.auc, 3, NOT_LEARNED.auc),
    formatMeanStd(r.gain, 3, NOT_LEARNED.gain),
    formatMeanStd(r.baseRate),
    formatMeanStd(r.lossMlm),
    formatMeanStd(r.genAcc),
    formatMeanStd(r.trainAuc, 3, NOT_LEARNED.auc) +
    (r.samplingTemperature !== 1 ? ` (T=${r.samplingTemperature})` : ""),
    formatMeanStd(r.trainGain, 3, NOT_LEARNED.gain),
    formatTokens(r.tokens),
    r.tokensPerS ? String(Math.round(r.tokensPerS.mean)) : "—",
    r.wallS ? formatDuration(r.wallS.mean) : "—",
    r.done === 0
      ? `— (0/${r.runs} done)`
      : `${r.learned === 0 ? "no, " : r.learned === r.done ? "yes, " : ""}${r.learned}/${r.done}${
        r.done < r.runs ? ` (${r.done}/${r.runs} done)` : ""
      }`,
  ]);
  return { head, body };
}

/** A markdown table. */
export function markdownTable(t: TableCells): string {
  const line = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`;
  return [line(t.head), line(t.head.map(() => "---")), ...t.body.map(line)].join("\n");
}

/** An HTML table (text escaped); body cells past the first (the point) do not wrap: "0.878 ± 0.002" stays whole. */
export function htmlTable(t: TableCells): string {
  const row = (cells: string[], tag: string) =>
    `<tr>${
      cells.map((c, i) =>
        `<${tag}${tag === "td" && i > 0 ? ' style="white-space:nowrap"' : ""}>${escapeHtml(c)}</${tag}>`
      )
        .join("")
    }</tr>`;
  // A wide table scrolls in its own box instead of widening the page.
  return `<div style="overflow-x:auto"><table>\n${row(t.head, "th")}\n${
    t.body.map((r) => row(r, "td")).join("\n")
  }\n</table></div>`;
}

/** Whether every value parses as a finite number (then the axis is numeric). */
function numeric(values: string[]): boolean {
  return values.every((v) => v.trim() !== "" && Number.isFinite(Number(v)));
}

/**
 * RTD gain (left) and D's AUC (right), both on T = 1 replacements, against swept key `key`: one line
 * per combination of the other swept keys, through the mean over seeds, with every run as a faint dot.
 * Numeric keys get a numeric axis (logarithmic when the values span 10× or more), others one category
 * per value in the order given.
 */
export function versusKey(results: PointResult[], key: string, swept: string[]): Figure {
  const rs = results.filter((r) => r.eval !== null && key in r.values);
  const order = [...new Set(rs.map((r) => r.values[key]))];
  const isNum = numeric(order);
  if (isNum) order.sort((a, b) => Number(a) - Number(b));
  const others = swept.filter((k) => k !== key);
  const series = new Map<string, PointResult[]>();
  for (const r of rs) {
    const id = others.filter((k) => k in r.values).map((k) => `${k}=${r.values[k]}`).join(" · ") ||
      "all points";
    series.set(id, [...(series.get(id) ?? []), r]);
  }
  const metrics = [["rtd_gain", "RTD gain (nats), T = 1"], ["disc_auc", "D ROC-AUC, T = 1"]] as const;
  const data: Trace[] = [];
  let s = 0;
  for (const [id, runs] of series) {
    const color = PALETTE[s % PALETTE.length];
    const dash = DASHES[Math.floor(s / PALETTE.length) % DASHES.length];
    metrics.forEach(([m], mi) => {
      const axes = { xaxis: mi === 0 ? "x" : "x2", yaxis: mi === 0 ? "y" : "y2" };
      const xs = order.filter((v) => runs.some((r) => r.values[key] === v));
      const ys = xs.map((v) =>
        meanStd(runs.filter((r) => r.values[key] === v).map((r) => r.eval![m]))?.mean ?? null
      );
      const x = (v: string) => (isNum ? Number(v) : v);
      data.push({
        type: "scatter",
        mode: "lines+markers",
        name: id,
        legendgroup: id,
        showlegend: mi === 0,
        x: xs.map(x),
        y: ys,
        ...axes,
        line: { color, dash, width: 2 },
        marker: { color, size: 7 },
        hovertemplate: `${escapeHtml(id)}<br>${escapeHtml(key)} %{x}<br>${m} %{y:.4f}<extra></extra>`,
      });
      if (runs.length > xs.length) {
        data.push({
          type: "scatter",
          mode: "markers",
          name: `${id} (each seed)`,
          legendgroup: id,
          showlegend: false,
          x: runs.map((r) => x(r.values[key])),
          y: runs.map((r) => r.eval![m]),
          ...axes,
          marker: { color, size: 5, opacity: 0.45 },
          hovertemplate: `${escapeHtml(id)}<br>${escapeHtml(key)} %{x}<br>${m} %{y:.4f}<extra>seed</extra>`,
        });
      }
    });
    s++;
  }
  const span = isNum && order.length > 1 ? Number(order.at(-1)) / Number(order[0]) : 1;
  const xaxis = (domain: number[]) => ({
    domain,
    title: { text: key },
    ...(isNum
      ? (Number(order[0]) > 0 && span >= 10 ? { type: "log" } : {})
      : { type: "category", categoryorder: "array", categoryarray: order }),
  });
  const ref = (y: number, yref: string, xref: string) => ({
    type: "line",
    xref: `${xref} domain`,
    x0: 0,
    x1: 1,
    yref,
    y0: y,
    y1: y,
    line: { color: "#999", width: 1, dash: "dot" },
  });
  return {
    data,
    layout: {
      title: { text: `RTD gain and D's AUC (T = 1, held out) vs ${key}` },
      height: 400,
      margin: { t: 60, r: 20, b: 50, l: 60 },
      legend: { orientation: "h", x: 0, y: -0.22, yanchor: "top" },
      xaxis: xaxis([0, 0.45]),
      xaxis2: xaxis([0.55, 1]),
      yaxis: { title: { text: metrics[0][1] } },
      yaxis2: { title: { text: metrics[1][1] }, anchor: "x2" },
      // Dotted: a constant predictor (gain 0, AUC 0.5) and the "learned" thresholds.
      shapes: [
        ref(0, "y", "x"),
        ref(NOT_LEARNED.gain, "y", "x"),
        ref(0.5, "y2", "x2"),
        ref(NOT_LEARNED.auc, "y2", "x2"),
      ],
      hovermode: "closest",
    },
  };
}

/** One run's logged metrics, for {@link runCurves}. */
export interface RunSeries {
  name: string;
  /** Runs of one point (its seeds) share a colour and differ by dash. */
  group: string;
  metrics: MetricsRecord[];
}

/** Short axis titles for the curves (METRIC_LABELS' long ones collide side by side). */
const SHORT: Record<string, string> = {
  disc_auc: "D ROC-AUC (training batches)",
  rtd_gain: "RTD gain, nats (training batches)",
  loss_mlm: "generator MLM loss",
  gen_acc: "generator accuracy",
};

/**
 * Training curves of every run side by side, one subplot per metric (EMA-smoothed, weight 0.8: each
 * logged step is one batch), a colour per point and a dash per seed. These are at each run's own
 * sampling temperature.
 */
export function runCurves(runs: RunSeries[], keys: string[], title: string): Figure {
  const data: Trace[] = [];
  const groups = [...new Set(runs.map((r) => r.group))];
  const seen = new Map<string, number>();
  for (const run of runs) {
    const g = groups.indexOf(run.group);
    const k = seen.get(run.group) ?? 0;
    seen.set(run.group, k + 1);
    const color = PALETTE[g % PALETTE.length];
    const dash = DASHES[(k + Math.floor(g / PALETTE.length)) % DASHES.length];
    keys.forEach((key, ki) => {
      const rows = run.metrics.filter((r) => typeof r[key] === "number" && Number.isFinite(r[key] as number));
      if (rows.length === 0) return;
      const y = smoothSeries(rows.map((r) => r[key] as number), { weight: 0.8 });
      data.push({
        type: "scatter",
        mode: "lines",
        name: run.name,
        legendgroup: run.name,
        showlegend: !data.some((t) => t.legendgroup === run.name),
        x: rows.map((r) => r.step),
        y,
        xaxis: ki === 0 ? "x" : `x${ki + 1}`,
        yaxis: ki === 0 ? "y" : `y${ki + 1}`,
        line: { color, dash, width: 1.6 },
        hovertemplate: `${escapeHtml(run.name)}<br>step %{x}<br>${escapeHtml(key)} %{y:.4g}<extra></extra>`,
      });
    });
  }
  // The legend sits under the plots; the margin grows with its rows so the caption below stays clear.
  const legendRows = Math.ceil(runs.length / 3);
  const layout: Record<string, unknown> = {
    title: { text: `${title} (x: step)` },
    height: 360 + 24 * legendRows,
    margin: { t: 60, r: 20, b: 50 + 24 * legendRows, l: 60 },
    legend: { orientation: "h", x: 0, y: -0.08, yanchor: "top" },
    hovermode: "closest",
    grid: { rows: 1, columns: keys.length, pattern: "independent" },
  };
  keys.forEach((key, ki) => {
    layout[ki === 0 ? "yaxis" : `yaxis${ki + 1}`] = {
      title: { text: SHORT[key] ?? METRIC_LABELS[key] ?? key },
    };
  });
  // Where D counts as learned, dotted, on the AUC and gain panels (as in the pretrain, demo and run reports).
  const thresholds: Record<string, number> = { disc_auc: NOT_LEARNED.auc, rtd_gain: NOT_LEARNED.gain };
  layout.shapes = keys.flatMap((key, ki) =>
    key in thresholds
      ? [{
        type: "line",
        xref: `${ki === 0 ? "x" : `x${ki + 1}`} domain`,
        x0: 0,
        x1: 1,
        yref: ki === 0 ? "y" : `y${ki + 1}`,
        y0: thresholds[key],
        y1: thresholds[key],
        line: { color: "#333333", width: 1, dash: "dot" },
      }]
      : []
  );
  return { data, layout };
}

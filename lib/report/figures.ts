/**
 * Plotly figure builders over metric tables (lib/report/metrics.ts). Each returns a plain `{data, layout}`
 * object: display it with `show()` in a notebook, put it in a {@link Report}, or hand it to any plotly.
 *
 * Colours and line styles follow the sharing mode (MLM grey and wide, ES blue, NES orange dashed, GDES
 * green dotted), so curves that coincide stay visible; further seeds of one mode get the next dash pattern.
 *
 * @module
 */

import {
  compareRuns,
  groupCurves,
  modeOrder,
  naturalCompare,
  runIndices,
  type SmoothOptions,
  smoothSeries,
  type Table,
} from "./metrics.ts";
import { escapeHtml, type Figure, type Trace } from "./plotly.ts";
import { NOT_LEARNED } from "../train/rtd_metrics.ts";

/** Colour of each sharing mode. */
export const MODE_COLORS: Record<string, string> = {
  mlm: "#7f7f7f",
  es: "#1f77b4",
  nes: "#ff7f0e",
  gdes: "#2ca02c",
};

const EXTRA_COLORS = ["#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"];
/** Colours of the runs within one panel of {@link facetCurves} (the reference is grey). */
const REFERENCE_COLOR = "#7f7f7f";
/** The learned threshold in {@link facetCurves}' panels, whose runs are never green. */
const LEARNED_COLOR = "#2ca02c";
/** The learned thresholds in {@link metricCurves}: near-black, since GDES's own curves are green there. */
const THRESHOLD_COLOR = "#333333";
/** Chance (AUC 0.5), fainter than the learned line. */
const CHANCE_COLOR = "#aaaaaa";
/**
 * Lowest RTD gain an autoscaled axis shows. Every run starts near −0.27 nats (an uncalibrated D), and an
 * axis fitted to that start squeezes the region around the learned line into a sliver.
 */
export const GAIN_AXIS_FLOOR = -0.1;
const PANEL_COLORS = ["#1f77b4", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const DASHES = ["solid", "dot", "dash", "dashdot", "longdash", "longdashdot"];
/** Colours of runs told apart one by one ({@link CurveOptions.colorBy} `"run"`, sweeps): plotly's ten. */
export const RUN_COLORS: readonly string[] = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

/**
 * Line style of each sharing mode. Lines often coincide (NES's and GDES's generators train alike, and
 * the MLM baseline's loss runs close to theirs): the baseline is drawn first and widest so it shows on
 * both sides of the others, which are dashed or dotted so each shows through the one drawn above it.
 */
export const MODE_LINES: Record<string, { width: number; dash: string }> = {
  mlm: { width: 6, dash: "solid" },
  es: { width: 2.5, dash: "solid" },
  nes: { width: 2.5, dash: "dash" },
  gdes: { width: 2.5, dash: "dot" },
};

/** Line style of the `k`-th run (seed) of a sharing mode: the mode's own, then the next dash patterns. */
export function modeLine(mode: string | null, k = 0): { width: number; dash: string } {
  const own = MODE_LINES[mode ?? ""] ?? { width: 2, dash: "solid" };
  return { width: own.width, dash: DASHES[(DASHES.indexOf(own.dash) + k) % DASHES.length] };
}

/** Colour of a sharing mode (a fixed palette for unknown ones). */
export function modeColor(mode: string | null, i = 0): string {
  return MODE_COLORS[mode ?? ""] ?? EXTRA_COLORS[i % EXTRA_COLORS.length];
}

/** Axis labels and figure titles of well-known metric keys. */
export const METRIC_LABELS: Record<string, string> = {
  loss_mlm: "generator MLM loss",
  loss_rtd: "discriminator RTD loss",
  disc_auc: "discriminator ROC-AUC (replaced vs original)",
  rtd_gain: "RTD gain over a constant predictor (nats)",
  base_rate: "RTD base rate (nats)",
  disc_acc: "discriminator accuracy",
  disc_acc_replaced: "discriminator accuracy on replaced tokens",
  replaced_frac: "replaced fraction",
  gen_acc: "generator accuracy",
  lr: "learning rate",
  grad_norm_g: "generator gradient norm",
  grad_norm_d: "discriminator gradient norm",
  tokens_per_s: "tokens / s",
  // Short enough for a subplot's y axis; which tables each mode compares is said in captions.
  tow_cos: "cos(g_MLM, g_RTD) on the token table",
  tow_norm_mlm: "‖g_MLM‖ on the table G reads",
  tow_norm_rtd: "‖g_RTD‖ on the table D reads (GDES: E_Δ)",
  tow_ratio: "‖g_RTD‖ / ‖g_MLM‖ (λ included)",
  tow_opposed_rows: "share of rows pulled in opposite directions",
  tow_pos_cos: "cos of the position-table gradients",
  sim_gen: "avg cosine of E_G",
  sim_disc: "avg cosine of E_D",
  sim_delta: "avg cosine of E_Δ",
};

/**
 * Ticks of a log axis spanning `values`: 1, 2, 5 × 10^k written out in full ("0.5", "20", "2M"). Plotly's
 * own minor labels are bare digits, so a "2" may mean 20 or 200. Only the decades when 1-2-5 gives too many.
 */
export function logTicks(values: Iterable<number | null>): { tickvals: number[]; ticktext: string[] } | null {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (v !== null && Number.isFinite(v) && v > 0) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  }
  if (!Number.isFinite(lo)) return null;
  const candidates = (mantissas: number[]) => {
    const out: number[] = [];
    for (let k = Math.floor(Math.log10(lo)) - 1; k <= Math.ceil(Math.log10(hi)); k++) {
      for (const m of mantissas) {
        const v = Number((m * 10 ** k).toPrecision(3));
        if (v >= lo / 2.5 && v <= hi * 2.5) out.push(v);
      }
    }
    return out;
  };
  let tickvals = candidates([1, 2, 5]);
  if (tickvals.length > 12) tickvals = candidates([1]);
  const text = (v: number) => {
    for (const [size, unit] of [[1e9, "G"], [1e6, "M"], [1e3, "k"]] as const) {
      if (v >= size) return `${Number((v / size).toPrecision(3))}${unit}`;
    }
    return String(Number(v.toPrecision(3)));
  };
  return { tickvals, ticktext: tickvals.map(text) };
}

/** Splits text at spaces into lines of at most `width` characters (a longer word gets its own line). */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const word of text.split(" ")) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + 1 + word.length <= width) lines[last] += " " + word;
    else lines.push(word);
  }
  return lines;
}

/** The title with the smoothing said, unless it already says it. */
function smoothedTitle(title: string | undefined, smooth: CurveOptions["smooth"]): string | undefined {
  if (title === undefined || smooth === undefined || /EMA|smooth|rolling/i.test(title)) return title;
  const opts: SmoothOptions = typeof smooth === "number" ? { method: "ema", weight: smooth } : smooth;
  return `${title} (${opts.method === "ema" ? `EMA ${opts.weight}` : `rolling mean over ${opts.window}`})`;
}

/** Options of {@link metricCurves}. */
export interface CurveOptions {
  /** One line per run (default for losses) or the mean over each sharing mode's runs (seeds). */
  by?: "run" | "sharing";
  /** Smooth each run first: an EMA weight (e.g. 0.8) or full {@link SmoothOptions}. */
  smooth?: number | SmoothOptions;
  /** With `by: "sharing"`: draw a ± std band across seeds (default true when a mode has ≥ 2 runs). */
  band?: boolean;
  /** Figure title. */
  title?: string;
  /** Log-scale y axes. */
  logY?: boolean;
  /** Log-scale x axes (e.g. tokens seen by runs of very different lengths). */
  logX?: boolean;
  /** Figure height in pixels (default 380). */
  height?: number;
  /** Title of the x axes, when the table's `step` column holds something else (e.g. tokens seen). */
  xTitle?: string;
  /**
   * With `by: "run"`: `"mode"` (default) colours each run by its sharing mode, later seeds dashed;
   * `"run"` gives each run its own colour (many runs of one mode, e.g. a sweep's), drawn with its mode's
   * dash and named "run (mode)" in the legend.
   */
  colorBy?: "mode" | "run";
  /** With `by: "run"`: the runs in this order, in the legend and in the colours (default: by mode, then name). */
  runOrder?: string[];
  /**
   * Colours by sharing mode (or whatever the table's `sharing` column holds), over the modes' own: e.g. a
   * light-to-dark ramp when the "modes" are the values of an ordered setting such as λ.
   */
  colors?: Record<string, string>;
  /**
   * With `by: "run"` and `colorBy: "mode"`: a second factor (e.g. the backbone, from the run's name) drawn as
   * the dash, the same dash for the same value in every mode, so colour reads as the mode and dash as this.
   */
  dashBy?: (run: string) => string;
  /**
   * Reference lines where D's skill is drawn (default true): chance and the learned line on `disc_auc`, the
   * learned line on `rtd_gain` (whose axis also stops at {@link GAIN_AXIS_FLOOR}).
   */
  thresholds?: boolean;
}

function axisName(kind: "x" | "y", i: number): string {
  return i === 0 ? kind : `${kind}${i + 1}`;
}

function layoutAxis(kind: "x" | "y", i: number): string {
  return i === 0 ? `${kind}axis` : `${kind}axis${i + 1}`;
}

/** A note placed in panel `p`'s own coordinates (0..1 across and up the panel). */
function panelNote(
  p: number,
  at: { x: number; y: number; xanchor: string; yanchor: string },
  text: string,
  style: Record<string, unknown>,
): Record<string, unknown> {
  return {
    text,
    showarrow: false,
    xref: `${axisName("x", p)} domain`,
    yref: `${axisName("y", p)} domain`,
    ...at,
    ...style,
  };
}

/**
 * A note at the bottom left of panel `p` when its curves go below `floor`, where the axis stops (an RTD gain
 * axis at {@link GAIN_AXIS_FLOOR}): the lowest value, so a curve leaving the panel is not read as starting there.
 */
function offScaleNote(
  layout: Record<string, unknown>,
  p: number,
  values: (number | null)[],
  floor: number,
): void {
  // A loop, not Math.min(...values): a long run's curve can pass the engine's argument limit.
  let low = Infinity;
  for (const v of values) if (v !== null && Number.isFinite(v) && v < low) low = v;
  if (!(low < floor)) return;
  (layout.annotations as unknown[]).push(
    panelNote(
      p,
      { x: 0.01, y: 0.01, xanchor: "left", yanchor: "bottom" },
      `↓ off scale, down to ${low.toFixed(2)}`,
      {
        font: { size: 9, color: "#777777" },
        bgcolor: "rgba(255,255,255,0.7)",
      },
    ),
  );
}

/** A title above panel `p` (a figure's one title cannot say what each panel is). */
function panelTitle(p: number, html: string, size: number): Record<string, unknown> {
  return panelNote(p, { x: 0.5, y: 1.02, xanchor: "center", yanchor: "bottom" }, html, { font: { size } });
}

/**
 * A dotted horizontal line across panel `p` at `y` and its label, above the line at the right end: at the
 * left every curve's early spike and dip cross it, and the curves would be drawn over the label.
 */
function panelLine(
  layout: Record<string, unknown>,
  p: number,
  y: number,
  color: string,
  label?: string,
): void {
  const ref = { xref: `${axisName("x", p)} domain`, yref: axisName("y", p) };
  (layout.shapes as unknown[]).push({
    type: "line",
    ...ref,
    x0: 0,
    x1: 1,
    y0: y,
    y1: y,
    line: { color, width: 1, dash: "dot" },
  });
  if (label === undefined) return;
  (layout.annotations as unknown[]).push({
    ...ref,
    x: 0.99,
    y,
    xanchor: "right",
    yanchor: "bottom",
    showarrow: false,
    text: escapeHtml(label),
    font: { size: 9, color },
    bgcolor: "rgba(255,255,255,0.7)",
  });
}

function numOrNull(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function hexToRgba(hex: string, alpha: number): string {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

/** Applies per-run smoothing to the listed metrics in place of the raw values. */
function smoothed(t: Table, metrics: string[], smooth: CurveOptions["smooth"]): Table {
  if (smooth === undefined) return t;
  const opts: SmoothOptions = typeof smooth === "number" ? { method: "ema", weight: smooth } : smooth;
  const table = t.reify();
  const groups = runIndices(table);
  const cols: Record<string, (number | null)[]> = {};
  for (const m of metrics) {
    const raw = Array.from(table.array(m) as ArrayLike<unknown>, numOrNull);
    const out = raw.slice();
    for (const idx of groups.values()) {
      const s = smoothSeries(idx.map((i) => raw[i]), opts);
      idx.forEach((i, k) => (out[i] = s[k]));
    }
    cols[m] = out;
  }
  return table.assign(cols);
}

/**
 * Curves of one or more metrics over steps, one subplot per metric side by side: one line per run
 * (`by: "run"`) or the mean per sharing mode with a ± std band across seeds (`by: "sharing"`). Runs or
 * modes whose values of a metric are all null (the MLM baseline's `loss_rtd`) get no line there.
 */
export function metricCurves(t: Table, metrics: string | string[], opts: CurveOptions = {}): Figure {
  const ms = (Array.isArray(metrics) ? metrics : [metrics]).filter((m) => t.columnNames().includes(m));
  if (ms.length === 0) {
    throw new Error(`metricCurves: none of ${JSON.stringify(metrics)} is a column of the table`);
  }
  const table = smoothed(t, ms, opts.smooth);
  const data: Trace[] = [];
  const legendShown = new Set<string>();
  const modes = modeOrder(Array.from(table.array("sharing") as ArrayLike<string | null>));
  const colorOf = (mode: string | null) =>
    opts.colors?.[mode ?? "?"] ?? modeColor(mode, Math.max(0, modes.indexOf(mode ?? "?")));

  if ((opts.by ?? "run") === "run") {
    const sharing = table.array("sharing") as ArrayLike<string | null>;
    const steps = table.array("step") as ArrayLike<number>;
    // Runs in report order of their modes (mlm, es, nes, gdes), then by name.
    const rank = (idx: number[]) => modes.indexOf(sharing[idx[0]] ?? "?");
    const order = opts.runOrder;
    const runs = new Map(
      [...runIndices(table)].sort((a, b) =>
        order
          ? (order.indexOf(a[0]) + 1 || Infinity) - (order.indexOf(b[0]) + 1 || Infinity)
          : rank(a[1]) - rank(b[1]) || naturalCompare(a[0], b[0])
      ),
    );
    const perRun = opts.colorBy === "run";
    const runNumber = new Map([...runs.keys()].map((r, k) => [r, k]));
    const dashValues = opts.dashBy
      ? [...new Set([...runs.keys()].map(opts.dashBy))].sort(naturalCompare)
      : [];
    const seedIndex = new Map<string, number>();
    ms.forEach((m, mi) => {
      const col = table.array(m) as ArrayLike<unknown>;
      for (const [run, idx] of runs) {
        // Steps where this metric was not logged (e.g. probes every k steps) are left out, not drawn as
        // gaps: a line broken at every other point would not show at all.
        const logged = idx.filter((i) => numOrNull(col[i]) !== null);
        if (logged.length === 0) continue;
        const y = logged.map((i) => numOrNull(col[i]));
        const mode = sharing[idx[0]];
        if (!seedIndex.has(run)) {
          // The k-th run of a mode gets the k-th dash pattern.
          seedIndex.set(run, [...seedIndex.keys()].filter((r) => sharing[runs.get(r)![0]] === mode).length);
        }
        // Per run: a colour each (RUN_COLORS, then again with the next dash for every further round).
        const k = runNumber.get(run)!;
        const line = perRun
          ? {
            color: RUN_COLORS[k % RUN_COLORS.length],
            width: 2.5,
            dash: DASHES[
              (DASHES.indexOf(modeLine(mode).dash) + Math.floor(k / RUN_COLORS.length)) % DASHES.length
            ],
          }
          : opts.dashBy
          ? {
            color: colorOf(mode),
            width: modeLine(mode).width,
            dash: DASHES[dashValues.indexOf(opts.dashBy(run)) % DASHES.length],
          }
          : { color: colorOf(mode), ...modeLine(mode, seedIndex.get(run)!) };
        data.push({
          type: "scatter",
          mode: "lines",
          name: perRun && mode && mode !== run ? `${run} (${mode})` : run,
          legendgroup: run,
          showlegend: !legendShown.has(run),
          x: logged.map((i) => steps[i]),
          y,
          xaxis: axisName("x", mi),
          yaxis: axisName("y", mi),
          line,
          hovertemplate: `${escapeHtml(run)}<br>step %{x}<br>${escapeHtml(m)} %{y:.4g}<extra></extra>`,
        });
        legendShown.add(run);
      }
    });
  } else {
    const curves = groupCurves(table, ms, ["sharing"]);
    const sharing = curves.array("sharing") as ArrayLike<string | null>;
    const steps = curves.array("step") as ArrayLike<number>;
    const nRuns = curves.array("runs") as ArrayLike<number>;
    // "(2 runs)" tells means from single runs; with one run per mode it says nothing.
    const seeds = Array.from(nRuns).some((n) => n >= 2);
    ms.forEach((m, mi) => {
      const meanCol = curves.array(`${m}_mean`) as ArrayLike<unknown>;
      const stdCol = curves.array(`${m}_std`) as ArrayLike<unknown>;
      for (const mode of modes) {
        const idx: number[] = [];
        for (let i = 0; i < curves.numRows(); i++) {
          if ((sharing[i] ?? "?") === mode && numOrNull(meanCol[i]) !== null) idx.push(i);
        }
        if (idx.length === 0) continue;
        const y = idx.map((i) => numOrNull(meanCol[i]));
        const x = idx.map((i) => steps[i]);
        const color = colorOf(mode);
        const maxRuns = Math.max(...idx.map((i) => nRuns[i]));
        if (opts.band ?? maxRuns >= 2) {
          const sd = idx.map((i) => numOrNull(stdCol[i]) ?? 0);
          const upper = y.map((v, k) => (v === null ? null : v + sd[k]));
          const lower = y.map((v, k) => (v === null ? null : v - sd[k]));
          data.push({
            type: "scatter",
            mode: "lines",
            name: `${mode} ± std`,
            legendgroup: mode,
            showlegend: false,
            hoverinfo: "skip",
            x: [...x, ...x.slice().reverse()],
            y: [...upper, ...lower.slice().reverse()],
            fill: "toself",
            fillcolor: hexToRgba(color, 0.18),
            line: { width: 0, color },
            xaxis: axisName("x", mi),
            yaxis: axisName("y", mi),
          });
        }
        data.push({
          type: "scatter",
          mode: "lines",
          name: seeds ? `${mode} (${maxRuns} run${maxRuns === 1 ? "" : "s"})` : String(mode),
          legendgroup: mode,
          showlegend: !legendShown.has(mode),
          x,
          y,
          xaxis: axisName("x", mi),
          yaxis: axisName("y", mi),
          line: { color, ...modeLine(mode) },
          hovertemplate: `${escapeHtml(mode)}<br>step %{x}<br>${escapeHtml(m)} %{y:.4g}<extra></extra>`,
        });
        legendShown.add(mode);
      }
    });
  }

  const multi = ms.length > 1;
  const height = opts.height ?? 420;
  // Panel titles wrap to the panel's width (about 1,000 px shared by the panels).
  const panelTitles = ms.map((m) =>
    wrapText(METRIC_LABELS[m] ?? m, Math.max(24, Math.floor(112 / ms.length)))
  );
  const titleLines = Math.max(...panelTitles.map((t) => t.length));
  const top = multi ? 64 + 16 * titleLines : 60;
  // The legend goes under the x-axis titles: placed in pixels, since a fraction of a short plot lands on them.
  const legendRows = Math.ceil(data.filter((d) => d.showlegend !== false).length / 5);
  const bottom = 76 + 20 * legendRows;
  const plotHeight = Math.max(80, height - top - bottom);
  const layout: Record<string, unknown> = {
    height,
    margin: { t: top, r: 20, b: bottom, l: 60 },
    legend: { orientation: "h", x: 0, y: -66 / plotHeight, yanchor: "top" },
    hovermode: "closest",
    annotations: [] as unknown[],
    shapes: [] as unknown[],
  };
  const title = smoothedTitle(opts.title, opts.smooth);
  if (title) layout.title = { text: title };
  if (multi) layout.grid = { rows: 1, columns: ms.length, pattern: "independent" };
  const onAxis = (kind: "x" | "y", mi: number) =>
    data.filter((d) => d[`${kind}axis`] === axisName(kind, mi)).flatMap((d) => d[kind] as (number | null)[]);
  ms.forEach((m, mi) => {
    const label = METRIC_LABELS[m] ?? m;
    layout[layoutAxis("x", mi)] = {
      title: { text: opts.xTitle ?? "step" },
      ...(opts.logX ? { type: "log", ...logTicks(onAxis("x", mi)) } : {}),
    };
    layout[layoutAxis("y", mi)] = {
      // Side by side, the panel's title names the quantity; a y title would sit in the neighbour's plot.
      ...(multi ? {} : { title: { text: label } }),
      ...(opts.logY ? { type: "log", ...logTicks(onAxis("y", mi)) } : {}),
      ...(m === "rtd_gain" && (opts.thresholds ?? true)
        ? { autorangeoptions: { minallowed: GAIN_AXIS_FLOOR } }
        : {}),
    };
    if (multi) {
      // Side by side, each panel's full label goes above it.
      (layout.annotations as unknown[]).push(
        panelTitle(mi, panelTitles[mi].map(escapeHtml).join("<br>"), 12),
      );
    }
    if (opts.thresholds ?? true) {
      const lines = m === "disc_auc"
        ? [{ at: 0.5, text: "chance", color: CHANCE_COLOR }, {
          at: NOT_LEARNED.auc,
          text: `learned from ${NOT_LEARNED.auc}`,
          color: THRESHOLD_COLOR,
        }]
        : m === "rtd_gain"
        ? [{ at: NOT_LEARNED.gain, text: `learned from ${NOT_LEARNED.gain}`, color: THRESHOLD_COLOR }]
        : m === "tow_opposed_rows"
        ? [{ at: 0.5, text: "even split", color: CHANCE_COLOR }]
        : [];
      for (const { at, text, color } of lines) panelLine(layout, mi, at, color, text);
      if (m === "rtd_gain") offScaleNote(layout, mi, onAxis("y", mi), GAIN_AXIS_FLOOR);
    }
  });
  return { data, layout };
}

/** Options of {@link facetCurves}. */
export interface FacetCurveOptions extends Omit<CurveOptions, "by" | "band"> {
  /** The column that puts each run in its panel (one panel per distinct value, in order of first appearance). */
  facet: string;
  /** A run drawn, grey and dashed, in every panel to compare against (e.g. the preset a sweep changes). */
  reference?: string;
  /** Panels per row (default 3). */
  columns?: number;
  /** A dotted horizontal line in every panel, e.g. the value from which D counts as learned. */
  hline?: { y: number; label?: string };
}

/**
 * Small multiples: one metric over steps, one panel per value of `opts.facet` (e.g. the knob a sweep run
 * changed), each run labelled at its last point, and `opts.reference` repeated in every panel. The panels
 * share their y range, so a curve reads against its own panel's reference and against every other panel.
 * Where one chart of many runs would need a colour per run, each panel needs only a few.
 */
export function facetCurves(t: Table, metric: string, opts: FacetCurveOptions): Figure {
  for (const col of [metric, opts.facet]) {
    if (!t.columnNames().includes(col)) throw new Error(`facetCurves: no column "${col}" in the table`);
  }
  const table = smoothed(t, [metric], opts.smooth);
  const runs = runIndices(table);
  if (opts.reference !== undefined && !runs.has(opts.reference)) {
    throw new Error(`facetCurves: reference run "${opts.reference}" is not in the table`);
  }
  const facetOf = table.array(opts.facet) as ArrayLike<unknown>;
  const steps = table.array("step") as ArrayLike<number>;
  const col = table.array(metric) as ArrayLike<unknown>;
  const panels = new Map<string, string[]>();
  for (const [run, idx] of runs) {
    if (run === opts.reference) continue;
    const key = String(facetOf[idx[0]] ?? "");
    panels.set(key, [...(panels.get(key) ?? []), run]);
  }
  const columns = Math.max(1, Math.min(opts.columns ?? 3, panels.size));
  const rows = Math.ceil(panels.size / columns);
  const line = (run: string, p: number, style: { color: string; dash: string; width: number }): Trace => {
    const idx = runs.get(run)!.filter((i) => numOrNull(col[i]) !== null);
    return {
      type: "scatter",
      mode: "lines",
      name: run,
      showlegend: false,
      x: idx.map((i) => steps[i]),
      y: idx.map((i) => numOrNull(col[i])),
      xaxis: axisName("x", p),
      yaxis: axisName("y", p),
      line: style,
      hovertemplate: `${escapeHtml(run)}<br>step %{x}<br>${escapeHtml(metric)} %{y:.4g}<extra></extra>`,
    };
  };
  // Each panel's title carries its own colour key: one legend shared by every panel would repeat colours.
  const keyEntry = (run: string, color: string, mark: string) =>
    `<span style="color:${color}">${mark} ${escapeHtml(run)}</span>`;
  const keyLines = Math.max(
    ...[...panels.values()].map((m) => Math.ceil((m.length + (opts.reference ? 1 : 0)) / 2)),
  );
  const data: Trace[] = [];
  const layout: Record<string, unknown> = {
    height: opts.height ?? (200 + 16 * keyLines) * rows + 80,
    margin: { t: 86 + 16 * keyLines, r: 20, b: 50, l: 60 },
    grid: { rows, columns, pattern: "independent", ygap: 0.25 + 0.08 * keyLines },
    hovermode: "closest",
    annotations: [] as unknown[],
    shapes: [] as unknown[],
  };
  // The metric goes in the title: a panel a few hundred pixels high has no room for a long axis title. Held
  // at the top of the figure: plotly's default (the middle of the top margin) falls on the panels' keys.
  layout.title = {
    text: smoothedTitle(opts.title ?? METRIC_LABELS[metric] ?? metric, opts.smooth),
    yref: "container",
    y: 1,
    yanchor: "top",
    pad: { t: 12 },
  };
  const ticks = (kind: "x" | "y") => logTicks(data.flatMap((d) => d[kind] as (number | null)[]));
  [...panels].forEach(([name, members], p) => {
    const key: string[] = [];
    if (opts.reference !== undefined) {
      data.push(line(opts.reference, p, { color: REFERENCE_COLOR, dash: "dash", width: 2 }));
      key.push(keyEntry(opts.reference, REFERENCE_COLOR, "╌"));
    }
    members.forEach((run, k) => {
      const color = PANEL_COLORS[k % PANEL_COLORS.length];
      data.push(line(run, p, { color, dash: "solid", width: 2 }));
      key.push(keyEntry(run, color, "━"));
    });
    const keyRows = Array.from(
      { length: Math.ceil(key.length / 2) },
      (_, r) => key.slice(2 * r, 2 * r + 2).join("   "),
    );
    (layout.annotations as unknown[]).push(
      panelTitle(p, [`<b>${escapeHtml(name)}</b>`, ...keyRows].join("<br>"), 11),
    );
    if (opts.hline) panelLine(layout, p, opts.hline.y, LEARNED_COLOR, opts.hline.label);
    if (metric === "rtd_gain") {
      offScaleNote(
        layout,
        p,
        data.filter((d) => d.yaxis === axisName("y", p)).flatMap((d) => d.y as (number | null)[]),
        GAIN_AXIS_FLOOR,
      );
    }
    const last = p >= panels.size - columns;
    // Only y is shared: a run longer than the rest (a bigger token budget) would squeeze every other panel.
    layout[layoutAxis("x", p)] = {
      ...(last ? { title: { text: opts.xTitle ?? "step" } } : {}),
      ...(opts.logX ? { type: "log" } : {}),
    };
    layout[layoutAxis("y", p)] = {
      ...(p > 0 ? { matches: "y" } : {}),
      ...(opts.logY ? { type: "log" } : {}),
      ...(p === 0 && metric === "rtd_gain" ? { autorangeoptions: { minallowed: GAIN_AXIS_FLOOR } } : {}),
    };
  });
  // Ticks from every panel's data (the panels share y; x ticks the same everywhere read alike).
  [...panels.keys()].forEach((_, p) => {
    if (opts.logX) Object.assign(layout[layoutAxis("x", p)] as object, ticks("x"));
    if (opts.logY) Object.assign(layout[layoutAxis("y", p)] as object, ticks("y"));
  });
  return { data, layout };
}

/**
 * D's ROC-AUC and RTD gain side by side ({@link metricCurves} of `disc_auc` and `rtd_gain`), with chance and
 * the values from which D counts as learned ({@link NOT_LEARNED}) marked.
 */
export function skillCurves(t: Table, opts: CurveOptions = {}): Figure {
  return metricCurves(t, ["disc_auc", "rtd_gain"], {
    title: "Discriminator skill",
    ...opts,
    thresholds: true,
  });
}

/** Options of {@link lossCurves}. */
export interface LossCurveOptions extends CurveOptions {
  /** Metrics to draw side by side (default: `loss_mlm` and `loss_rtd`). */
  metrics?: string[];
}

/** Generator MLM and discriminator RTD losses side by side, one line per run (or per mode, `by: "sharing"`). */
export function lossCurves(t: Table, opts: LossCurveOptions = {}): Figure {
  return metricCurves(t, opts.metrics ?? ["loss_mlm", "loss_rtd"], { title: "Losses", ...opts });
}

/**
 * A probe metric (any metric key: `tow_cos`, `tow_ratio`, `sim_gen`, ...) over steps, by default the mean
 * per sharing mode with a ± std band across seeds.
 */
export function probeCurves(
  t: Table,
  metric: string | string[] = "tow_cos",
  opts: CurveOptions = {},
): Figure {
  const ms = Array.isArray(metric) ? metric : [metric];
  return metricCurves(t, ms, {
    by: "sharing",
    title: ms.length === 1 ? (METRIC_LABELS[ms[0]] ?? ms[0]) : "Probes",
    ...opts,
  });
}

/** Per-mode values of the embedding similarity bars. */
export interface SimilarityRow {
  sharing: string;
  /** Average pairwise cosine of the generator's token embeddings E_G. */
  sim_gen?: number | null;
  /** Same for the discriminator's E_D (GDES: E_G + E_Δ). */
  sim_disc?: number | null;
  /** Same for GDES's residual E_Δ. */
  sim_delta?: number | null;
  /** Std across seeds, per key (optional error bars). */
  std?: { sim_gen?: number | null; sim_disc?: number | null; sim_delta?: number | null };
}

const SIM_KEYS = [
  ["sim_gen", "E_G", "#9467bd"],
  ["sim_disc", "E_D", "#17becf"],
  ["sim_delta", "E_Δ", "#bcbd22"],
] as const;

/**
 * Grouped bars of the average cosine similarity of E_G, E_D and E_Δ per sharing mode (DeBERTaV3 §5: NES's
 * E_G is more self-similar than its E_D; GDES narrows the gap). From a metrics table it takes each run's
 * last logged value, then the mean (± std error bars) over each mode's runs; or pass rows directly.
 */
export function similarityBars(
  input: Table | SimilarityRow[],
  opts: { title?: string; height?: number } = {},
): Figure {
  let rows: SimilarityRow[];
  if (Array.isArray(input)) {
    rows = input;
  } else {
    const keys = SIM_KEYS.map(([k]) => k).filter((k) => input.columnNames().includes(k));
    if (keys.length === 0) {
      throw new Error("similarityBars: the table has no sim_gen / sim_disc / sim_delta column");
    }
    const perRun = compareRuns(input, keys, { lastK: 1 });
    const sharing = Array.from(perRun.array("sharing") as ArrayLike<string | null>, (s) => s ?? "?");
    rows = modeOrder(sharing).map((mode) => {
      const row: SimilarityRow = { sharing: mode, std: {} };
      const idx = sharing.flatMap((s, i) => (s === mode ? [i] : []));
      for (const k of keys) {
        const col = perRun.array(`${k}_final`) as ArrayLike<unknown>;
        const vals = idx.map((i) => numOrNull(col[i])).filter((v): v is number => v !== null);
        row[k] = vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : null;
        row.std![k] = vals.length >= 2
          ? Math.sqrt(vals.reduce((a, v) => a + (v - row[k]!) ** 2, 0) / (vals.length - 1))
          : null;
      }
      return row;
    }).filter((r) => keys.some((k) => r[k] !== null));
  }
  const x = rows.map((r) => r.sharing);
  const data: Trace[] = [];
  // The MLM baseline's one table is a D-sized encoder's, not a generator's E_G: it gets a bar of its own.
  const isMlm = (r: SimilarityRow) => r.sharing === "mlm";
  const columns = [
    ...SIM_KEYS.map(([key, label, color]) => ({ key, label, color, of: (r: SimilarityRow) => !isMlm(r) })),
    { key: "sim_gen" as const, label: "E (MLM encoder)", color: MODE_COLORS.mlm, of: isMlm },
  ];
  for (const { key, label, color, of } of columns) {
    const y = rows.map((r) => (of(r) ? numOrNull(r[key]) : null));
    if (y.every((v) => v === null)) continue;
    const sd = rows.map((r) => (of(r) ? numOrNull(r.std?.[key]) : null));
    const trace: Trace = {
      type: "bar",
      name: label,
      x,
      y,
      marker: { color },
      hovertemplate: `${label} %{x}: %{y:.4f}<extra></extra>`,
    };
    if (sd.some((v) => v !== null)) {
      trace.error_y = {
        type: "data",
        array: sd.map((v) => v ?? 0),
        visible: true,
      };
    }
    data.push(trace);
  }
  return {
    data,
    layout: {
      title: { text: opts.title ?? "Average cosine similarity of token embeddings" },
      barmode: "group",
      height: opts.height ?? 360,
      xaxis: { title: { text: "sharing mode" } },
      yaxis: { title: { text: "avg cosine" } },
      margin: { t: 60, r: 20, b: 50, l: 60 },
    },
  };
}

/** Options of {@link tokenHeatmap} and {@link tokenStrip}. */
export interface TokenOptions {
  /** Title (heat-map) or caption (strip). */
  title?: string;
  /** What the values are, for hover text and the colour bar (default "P(replaced)"). */
  valueLabel?: string;
  /** Colour range (default 0..1). */
  zmin?: number;
  zmax?: number;
  /** Plotly colour scale (default "Reds"). */
  colorscale?: string;
  /** Tokens to mark (e.g. those actually replaced): bold in the heat-map, underlined in the strip. */
  highlight?: boolean[] | boolean[][];
  /** Tokens per row when one flat sequence is given (default 16). */
  wrap?: number;
  /** What the highlighted tokens are, for the strip's key (default "marked"). */
  highlightLabel?: string;
  /** The strip's key shows the shade's scale (default true; false for a shade that only marks, not measures). */
  shadeKey?: boolean;
}

function rowsOf<T>(x: T[] | T[][], wrap: number): T[][] {
  if (x.length > 0 && Array.isArray(x[0])) return x as T[][];
  const flat = x as T[];
  const out: T[][] = [];
  for (let i = 0; i < flat.length; i += wrap) out.push(flat.slice(i, i + wrap));
  return out.length ? out : [[]];
}

/**
 * An annotated heat-map of tokens × a value (e.g. the discriminator's replaced probability): each cell shows
 * its token, coloured by the value. Pass one sequence (wrapped into rows of `wrap` tokens) or several
 * sequences (one row each).
 */
export function tokenHeatmap(
  tokens: string[] | string[][],
  values: number[] | number[][],
  opts: TokenOptions = {},
): Figure {
  const wrap = opts.wrap ?? 16;
  const tr = rowsOf(tokens, wrap);
  const vr = rowsOf(values, wrap);
  const hr = opts.highlight ? rowsOf(opts.highlight as boolean[] | boolean[][], wrap) : null;
  if (tr.length !== vr.length || tr.some((r, i) => r.length !== vr[i].length)) {
    throw new Error("tokenHeatmap: tokens and values differ in shape");
  }
  const width = Math.max(...tr.map((r) => r.length), 1);
  const pad = <T>(r: T[], fill: T) => [...r, ...new Array(width - r.length).fill(fill)];
  const label = opts.valueLabel ?? "P(replaced)";
  const z = vr.map((r) => pad<number | null>(r, null));
  const text = tr.map((r, i) =>
    pad(r.map((tok, j) => (hr?.[i]?.[j] ? `<b>${escapeHtml(tok)}</b>` : escapeHtml(tok))), "")
  );
  return {
    data: [{
      type: "heatmap",
      z,
      text,
      texttemplate: "%{text}",
      textfont: { size: 11 },
      hovertemplate: `%{text}<br>${escapeHtml(label)} %{z:.3f}<extra></extra>`,
      colorscale: opts.colorscale ?? "Reds",
      zmin: opts.zmin ?? 0,
      zmax: opts.zmax ?? 1,
      xgap: 2,
      ygap: 2,
      colorbar: { title: { text: label }, thickness: 12 },
    }],
    layout: {
      title: opts.title ? { text: opts.title } : undefined,
      height: Math.max(160, 90 + 34 * tr.length),
      xaxis: { visible: false },
      yaxis: { visible: false, autorange: "reversed" },
      margin: { t: opts.title ? 50 : 20, r: 20, b: 20, l: 20 },
    },
  };
}

/** A block of ready HTML (with a text fallback), displayed by `show()` and placed as is in reports. */
export interface HtmlBlock {
  kind: "html";
  html: string;
  text: string;
}

/** Whether `x` is an {@link HtmlBlock}. */
export function isHtmlBlock(x: unknown): x is HtmlBlock {
  return !!x && typeof x === "object" && (x as HtmlBlock).kind === "html" &&
    typeof (x as HtmlBlock).html === "string";
}

/**
 * A coloured token strip (plain HTML, no plotly): each token's background shows its value (white → red over
 * zmin..zmax), the value is in the tooltip, highlighted tokens are underlined. Text fallback: `tok(0.93)`.
 */
export function tokenStrip(tokens: string[], values: number[], opts: TokenOptions = {}): HtmlBlock {
  if (tokens.length !== values.length) throw new Error("tokenStrip: tokens and values differ in length");
  const lo = opts.zmin ?? 0, hi = opts.zmax ?? 1;
  const label = opts.valueLabel ?? "P(replaced)";
  const hl = (opts.highlight ?? []) as boolean[];
  const spans = tokens.map((tok, i) => {
    const a = Math.min(1, Math.max(0, (values[i] - lo) / (hi - lo || 1)));
    const style = `background:rgba(214,39,40,${a.toFixed(3)});color:${a > 0.6 ? "#fff" : "#000"};` +
      `padding:1px 3px;margin:1px;border-radius:3px;display:inline-block;` +
      (hl[i] ? "text-decoration:underline;font-weight:bold;" : "");
    return `<span style="${style}" title="${escapeHtml(`${label} ${values[i].toFixed(3)}`)}">${
      escapeHtml(tok)
    }</span>`;
  });
  const caption = opts.title
    ? `<div style="font-weight:bold;margin-bottom:4px">${escapeHtml(opts.title)}</div>`
    : "";
  // The key: what a shade means (a strip has no colour bar), and what the underline marks.
  const swatch = (v: number) => {
    const a = (v - lo) / (hi - lo || 1);
    return `<span style="background:rgba(214,39,40,${a.toFixed(2)});color:${a > 0.6 ? "#fff" : "#000"};` +
      `padding:0 6px;margin:0 2px;border-radius:3px">${Number(v.toPrecision(3))}</span>`;
  };
  const parts = [
    ...(opts.shadeKey ?? true)
      ? [`shade: ${escapeHtml(label)} ${swatch(lo)}${swatch((lo + hi) / 2)}${swatch(hi)}`]
      : [],
    ...hl.some(Boolean)
      ? [
        `<span style="text-decoration:underline;font-weight:bold">underlined bold</span>: ${
          escapeHtml(opts.highlightLabel ?? "marked")
        }`,
      ]
      : [],
  ];
  const key = parts.length
    ? `<div style="font:11px sans-serif;color:#555;margin-top:4px">${parts.join(" · ")}</div>`
    : "";
  return {
    kind: "html",
    html: `<div class="rtdlab-token-strip" style="font:13px monospace;line-height:1.9">${caption}${
      spans.join("")
    }${key}</div>`,
    text: (opts.title ? opts.title + "\n" : "") +
      tokens.map((tok, i) => `${hl[i] ? "*" : ""}${tok}(${values[i].toFixed(2)})`).join(" "),
  };
}

/** One cell of {@link ScoreSummary}: a mode's scores on a task (mean ± std over its runs, and each run). */
export interface ScoreCell {
  mean: number;
  std: number;
  n: number;
  values: { pretrainSeed: number; finetuneSeed: number; value: number }[];
}

/** Downstream test scores by mode and task (what `deno task compare` summarises: its ComparisonSummary). */
export interface ScoreSummary {
  modes: string[];
  tasks: string[];
  /** The metric scored on each task. */
  metricOf: Record<string, string>;
  /** mode → task → scores. */
  test: Record<string, Record<string, ScoreCell>>;
}

/** Options of {@link scoreDots}. */
export interface ScoreDotOptions {
  /** Per task, what a classifier predicting one class scores on its test split (a dashed segment). */
  constant?: Record<string, number>;
  /** Fine-tuning runs that predicted one class for (nearly) every example: drawn as ✕. */
  oneClass?: {
    mode: string;
    task: string;
    pretrain_seed: number;
    finetune_seed: number;
    flagged?: boolean;
  }[];
  title?: string;
  height?: number;
}

/**
 * Downstream scores on the tables' scale (×100): per task and mode the mean (a wide tick) ± one std, every
 * fine-tuning run as a dot, spread sideways so equal scores stay visible (✕: a run that predicted one
 * class), and a dashed segment at the constant classifier's score, the floor a score must clear. The y axis
 * starts near that floor, not at 0, where 53 would look half-way good.
 */
export function scoreDots(summary: ScoreSummary, opts: ScoreDotOptions = {}): Figure {
  const { modes, tasks } = summary;
  const constant = opts.constant ?? {};
  const key = (mode: string, task: string, pre: number, ft: number) => `${mode}|${task}|${pre}|${ft}`;
  const oneClass = new Set(
    (opts.oneClass ?? []).filter((r) => r.flagged !== false).map((r) =>
      key(r.mode, r.task, r.pretrain_seed, r.finetune_seed)
    ),
  );
  const slot = 0.8 / modes.length; // each task spans 1 on the x axis; its modes share 0.8 of it
  const xOf = (ti: number, mi: number) => ti + (mi - (modes.length - 1) / 2) * slot;
  const dots: { x: number; y: number; text: string; oneClass: boolean }[] = [];
  const means: Trace[] = modes.map((mode, mi) => {
    const color = modeColor(mode, mi);
    tasks.forEach((task, ti) => {
      const vs = summary.test[mode]?.[task]?.values ?? [];
      vs.forEach((v, j) => {
        const flagged = oneClass.has(key(mode, task, v.pretrainSeed, v.finetuneSeed));
        dots.push({
          x: xOf(ti, mi) + (j - (vs.length - 1) / 2) * (0.5 * slot / Math.max(1, vs.length - 1)),
          y: 100 * v.value,
          text:
            `${escapeHtml(mode)}, ${escapeHtml(task)}, pre-training seed ${v.pretrainSeed}, fine-tuning ` +
            `seed ${v.finetuneSeed}${flagged ? " (one class)" : ""}`,
          oneClass: flagged,
        });
      });
    });
    const cellOf = (task: string) => summary.test[mode]?.[task];
    return {
      type: "scatter",
      mode: "markers",
      name: mode,
      x: tasks.map((_, ti) => xOf(ti, mi)),
      y: tasks.map((task) => (cellOf(task)?.n ? 100 * cellOf(task)!.mean : null)),
      error_y: {
        type: "data",
        array: tasks.map((task) => 100 * (cellOf(task)?.std ?? 0)),
        visible: true,
        color,
        thickness: 2,
        width: 0,
      },
      marker: { symbol: "line-ew", size: 26, line: { color, width: 4 } },
      hovertemplate: `${escapeHtml(mode)} mean %{y:.1f}<extra></extra>`,
    };
  });
  const dotTrace = (flagged: boolean): Trace => {
    const ds = dots.filter((d) => d.oneClass === flagged);
    return {
      type: "scatter",
      mode: "markers",
      name: flagged ? "run predicting one class (⚠)" : "single fine-tuning run",
      x: ds.map((d) => d.x),
      y: ds.map((d) => d.y),
      text: ds.map((d) => d.text),
      marker: flagged
        ? { symbol: "x-thin-open", size: 10, line: { color: "#000000", width: 2 } }
        : { symbol: "circle", size: 7, color: "#333333", opacity: 0.7 },
      hovertemplate: "%{text}: %{y:.1f}<extra></extra>",
    };
  };
  const floors = tasks.filter((task) => typeof constant[task] === "number");
  const data: Trace[] = [];
  if (floors.length) {
    data.push({
      type: "scatter",
      mode: "lines",
      name: "constant classifier",
      x: floors.flatMap((task) => [tasks.indexOf(task) - 0.45, tasks.indexOf(task) + 0.45, null]),
      y: floors.flatMap((task) => [100 * constant[task], 100 * constant[task], null]),
      line: { color: "#555555", width: 1.5, dash: "dash" },
      hovertemplate: "constant classifier %{y:.1f}<extra></extra>",
    });
  }
  data.push(...means, dotTrace(false));
  if (dots.some((d) => d.oneClass)) data.push(dotTrace(true));
  const ys = [
    ...dots.map((d) => d.y),
    ...modes.flatMap((m) =>
      tasks.map((t) => summary.test[m]?.[t]).filter((c) => c?.n).map((c) => 100 * (c!.mean + c!.std))
    ),
  ];
  const lows = [...ys, ...floors.map((t) => 100 * constant[t])];
  // A task whose every fine-tune failed has no metric yet: "?" rather than no figure at all.
  const metricOf = (t: string) => summary.metricOf[t] ?? "?";
  const metrics = [...new Set(tasks.map(metricOf))].join(" / ");
  return {
    data,
    layout: {
      title: {
        text: opts.title ?? "Fine-tuned test scores per task (mean ± std, single runs, constant classifier)",
      },
      height: opts.height ?? 440,
      margin: { t: 60, r: 20, b: 40, l: 60 },
      xaxis: {
        tickvals: tasks.map((_, ti) => ti),
        ticktext: tasks.map((t) => `${escapeHtml(t)} (${escapeHtml(metricOf(t))})`),
        range: [-0.5, tasks.length - 0.5],
        showgrid: false,
        zeroline: false,
      },
      yaxis: {
        title: { text: `test ${metrics} ×100` },
        range: ys.length
          ? [Math.min(45, Math.floor(Math.min(...lows) - 3)), Math.ceil(Math.max(...ys) + 2)]
          : [45, 100],
      },
      legend: { orientation: "h", x: 0, y: -0.1, yanchor: "top" },
      hovermode: "closest",
    },
  };
}

/** One row of {@link differencePlot}: a paired difference A − B (as `pairedDifference` returns it). */
export interface DifferenceRow {
  a: string;
  b: string;
  mean: number;
  stderr: number;
  /** Independent values behind the mean (pre-training seeds, or one encoder's fine-tuning seeds). */
  n: number;
  /** Its 95 % interval (mean ± t · SE). */
  interval: [number, number];
  /** "a" or "b" when the interval excludes zero (n ≥ 3), else "noise". */
  verdict: "a" | "b" | "noise";
}

/**
 * Paired differences as a forest plot (×100, the tables' points): one row per A − B, the mean with its 95 %
 * interval (the verdict's rule), a line at zero; dark where the interval excludes zero, grey where it does
 * not. Rows with fewer than 3 independent values, where the rule calls nothing, are hollow.
 */
export function differencePlot(
  rows: DifferenceRow[],
  opts: { title?: string; height?: number } = {},
): Figure {
  const label = (r: DifferenceRow) => `${r.a} − ${r.b}`;
  const group = (clear: boolean, color: string, name: string): Trace => {
    const rs = rows.filter((r) => (r.verdict !== "noise") === clear);
    return {
      type: "scatter",
      mode: "markers",
      name,
      y: rs.map(label),
      x: rs.map((r) => 100 * r.mean),
      error_x: {
        type: "data",
        symmetric: false,
        array: rs.map((r) => 100 * (r.interval[1] - r.mean)),
        arrayminus: rs.map((r) => 100 * (r.mean - r.interval[0])),
        visible: true,
        color,
        thickness: 2,
      },
      marker: {
        size: 10,
        color: rs.map((r) => (r.n < 3 ? "#ffffff" : color)),
        line: { color, width: 2 },
      },
      text: rs.map((r) => `n = ${r.n}`),
      hovertemplate: "%{y}: %{x:.1f} points (95 % interval), %{text}<extra></extra>",
    };
  };
  return {
    data: [
      group(true, "#222222", "95 % interval excludes 0"),
      group(false, "#aaaaaa", "within noise"),
    ].filter((t) => (t.x as number[]).length > 0),
    layout: {
      title: { text: opts.title ?? "Paired differences A − B (mean and 95 % interval, points ×100)" },
      height: opts.height ?? Math.max(260, 90 + 32 * rows.length),
      margin: { t: 60, r: 20, b: 60, l: 110 },
      xaxis: {
        title: { text: "A − B (points)" },
        zeroline: true,
        zerolinewidth: 2,
        zerolinecolor: "#666666",
      },
      // Top to bottom in the order given, as in the table beside it.
      yaxis: { autorange: "reversed", categoryorder: "array", categoryarray: rows.map(label) },
      legend: { orientation: "h", x: 0, y: -0.25, yanchor: "top" },
      hovermode: "closest",
    },
  };
}

/**
 * Plotly figures as plain `{data, layout}` objects, and the HTML that draws them: plotly.js (npm
 * `plotly.js-dist-min`, read from disk and inlined, so pages work offline) is loaded once per page; every
 * figure's snippet draws at once when `window.Plotly` exists and otherwise queues itself until the
 * library's script runs (so figures above the library in a page still draw).
 *
 * @module
 */

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** One plotly trace (plain JSON). */
export type Trace = Record<string, unknown>;

/** A plotly figure: what `Plotly.newPlot(div, data, layout)` takes, as plain JSON. */
export interface Figure {
  data: Trace[];
  layout: Record<string, unknown>;
  config?: Record<string, unknown>;
}

/** The npm package and version the pages inline (kept in step with deno.json's import map). */
export const PLOTLY_PACKAGE = "plotly.js-dist-min";

/** Whether `x` looks like a plotly figure (`data` array and `layout` object). */
export function isFigure(x: unknown): x is Figure {
  return !!x && typeof x === "object" && Array.isArray((x as Figure).data) &&
    !!(x as Figure).layout && typeof (x as Figure).layout === "object";
}

function candidates(): string[] {
  const out: string[] = [];
  try {
    out.push(createRequire(import.meta.url).resolve(`${PLOTLY_PACKAGE}/plotly.min.js`));
  } catch { /* not resolvable through node_modules; walk up instead */ }
  if (import.meta.url.startsWith("file:")) {
    let dir = dirname(fileURLToPath(import.meta.url));
    for (;;) {
      out.push(join(dir, "node_modules", PLOTLY_PACKAGE, "plotly.min.js"));
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  return out;
}

let cached: string | null = null;

/** The plotly.js source (~4.8 MB), read once from the npm package. */
export async function plotlySource(): Promise<string> {
  if (cached !== null) return cached;
  for (const path of candidates()) {
    try {
      cached = await Deno.readTextFile(path);
      return cached;
    } catch { /* next */ }
  }
  throw new Error(
    `cannot find ${PLOTLY_PACKAGE}/plotly.min.js: add "${PLOTLY_PACKAGE}": "npm:${PLOTLY_PACKAGE}@…" to ` +
      `deno.json's imports and run with "nodeModulesDir": "auto" (deno install)`,
  );
}

/** JSON for embedding inside a `<script>` element (no `</script>`, `<!--` or line separators). */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** HTML that loads plotly.js once into `window.Plotly` and draws the figures queued before it. */
export async function plotlyLoaderHtml(): Promise<string> {
  const src = await plotlySource();
  return `<script>if (!window.Plotly) {\n${src}\n}</script>\n` +
    `<script>(window.__rtdlabPlotlyQueue || []).splice(0).forEach(function (f) { f(); });</script>`;
}

let counter = 0;

/** A fresh element id for a figure. */
export function figureId(): string {
  return `rtdlab-fig-${Date.now().toString(36)}-${(++counter).toString(36)}`;
}

/**
 * A `<div>` plus a script that draws `fig` into it with `window.Plotly`, or queues the drawing until
 * {@link plotlyLoaderHtml}'s script runs. Until drawn, the div says that plotly.js is not loaded yet.
 */
export function figureHtml(fig: Figure, id = figureId()): string {
  const height = typeof fig.layout.height === "number" ? fig.layout.height : 420;
  const config = { responsive: true, displaylogo: false, ...(fig.config ?? {}) };
  return `<div id="${id}" class="rtdlab-figure" style="width:100%;min-height:${height}px">` +
    `<p style="color:#999;font:12px sans-serif">plotly.js is not loaded in this page yet ` +
    `(figure: ${escapeHtml(figureTitle(fig) || "untitled")})</p></div>\n` +
    `<script>(function () {\n` +
    `  var fig = ${scriptJson({ data: fig.data, layout: fig.layout, config })};\n` +
    `  function draw() { var el = document.getElementById(${JSON.stringify(id)}); if (!el) return;` +
    ` el.innerHTML = ""; window.Plotly.newPlot(el, fig.data, fig.layout, fig.config); }\n` +
    `  if (window.Plotly) draw(); else (window.__rtdlabPlotlyQueue = window.__rtdlabPlotlyQueue || []).push(draw);\n` +
    `})();</script>`;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** The figure's title text ("" when it has none). */
export function figureTitle(fig: Figure): string {
  const t = fig.layout.title;
  if (typeof t === "string") return t;
  if (t && typeof t === "object" && typeof (t as { text?: unknown }).text === "string") {
    return (t as { text: string }).text;
  }
  return "";
}

/** One line describing a figure (what `show()` prints outside Jupyter). */
export function figureSummary(fig: Figure): string {
  const names = fig.data.map((t) => String(t.name ?? t.type ?? "trace"));
  const uniq = [...new Set(names)];
  const types = [...new Set(fig.data.map((t) => String(t.type ?? "scatter")))].join("/");
  let points = 0;
  for (const t of fig.data) {
    const y = (t.y ?? t.z) as unknown;
    if (Array.isArray(y)) points += y.flat().length;
  }
  const shown = uniq.length > 6 ? [...uniq.slice(0, 6), `… ${uniq.length - 6} more`] : uniq;
  return `[figure] ${
    figureTitle(fig) || "untitled"
  }: ${fig.data.length} ${types} trace(s), ${points} points` +
    (shown.length ? ` (${shown.join(", ")})` : "");
}

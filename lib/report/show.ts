/**
 * `show(x)`: one way to display figures, tables and text, in a notebook or a terminal.
 *
 * Inside the Deno Jupyter kernel it sends a MIME bundle: a plotly figure as
 * `application/vnd.plotly.v1+json` (JupyterLab, VS Code) plus a `text/html` fallback (classic notebook,
 * nbconvert'd HTML) — the first figure's fallback inlines plotly.js once for the page, later ones reuse
 * `window.Plotly`; an arquero table as HTML + markdown; a string as markdown; an {@link HtmlBlock} as HTML.
 * Outside Jupyter it prints a text rendering (tables as markdown, figures as one-line summaries) and never
 * throws.
 *
 * @module
 */

import { type HtmlBlock, isHtmlBlock } from "./figures.ts";
import type { Table } from "./metrics.ts";
import { figureHtml, figureSummary, isFigure, plotlyLoaderHtml } from "./plotly.ts";

/** Options of {@link show}. */
export interface ShowOptions {
  /** Table rows shown (default 50). */
  limit?: number;
  /** Maximum fraction digits of numbers in tables (default 4). */
  digits?: number;
  /** Inline plotly.js in this figure's HTML fallback even if an earlier figure did. */
  inlinePlotly?: boolean;
}

/** A MIME bundle (MIME type → data). */
export type MimeBundle = Record<string, string | object>;

type Jupyter = typeof Deno.jupyter;

/** The Deno kernel's `Deno.jupyter` namespace, or null outside Jupyter (where even reading it throws). */
export function jupyter(): Jupyter | null {
  try {
    const j = Deno.jupyter;
    return j && typeof j.display === "function" ? j : null;
  } catch {
    return null;
  }
}

/** Whether this code runs inside the Deno Jupyter kernel. */
export function inJupyter(): boolean {
  return jupyter() !== null;
}

/** Whether `x` is an arquero table. */
export function isTable(x: unknown): x is Table {
  return !!x && typeof x === "object" && typeof (x as Table).columnNames === "function" &&
    typeof (x as Table).toHTML === "function" && typeof (x as Table).numRows === "function";
}

let plotlyInlined = false;

/** Makes the next figure inline plotly.js again (after re-running cells out of order, or clearing outputs). */
export function resetPlotly(): void {
  plotlyInlined = false;
}

function tableNote(t: Table, limit: number): string {
  return t.numRows() > limit ? `(${limit} of ${t.numRows()} rows)` : "";
}

/** Text rendering of a value: what {@link show} prints outside Jupyter. */
export function toText(x: unknown, opts: ShowOptions = {}): string {
  if (typeof x === "string") return x;
  if (isFigure(x)) return figureSummary(x);
  if (isTable(x)) {
    const limit = opts.limit ?? 50;
    const note = tableNote(x, limit);
    return x.toMarkdown({ limit, maxdigits: opts.digits ?? 4 }).trimEnd() + (note ? `\n${note}` : "");
  }
  if (isHtmlBlock(x)) return x.text;
  return Deno.inspect(x, { colors: false, depth: 4 });
}

/**
 * The MIME bundle {@link show} sends for `x` (null for values it leaves to the kernel's own formatting).
 * A figure's `text/html` inlines plotly.js when `withPlotly` is true.
 */
export async function mimeBundle(
  x: unknown,
  opts: ShowOptions = {},
  withPlotly = false,
): Promise<MimeBundle | null> {
  if (typeof x === "string") return { "text/markdown": x, "text/plain": x };
  if (isFigure(x)) {
    return {
      "application/vnd.plotly.v1+json": {
        data: x.data,
        layout: x.layout,
        ...(x.config ? { config: x.config } : {}),
      },
      "text/html": (withPlotly ? await plotlyLoaderHtml() + "\n" : "") + figureHtml(x),
      "text/plain": figureSummary(x),
    };
  }
  if (isTable(x)) {
    const limit = opts.limit ?? 50;
    const maxdigits = opts.digits ?? 4;
    const note = tableNote(x, limit);
    const md = x.toMarkdown({ limit, maxdigits }).trimEnd() + (note ? `\n\n${note}` : "");
    return {
      "text/html": x.toHTML({ limit, maxdigits }) + (note ? `<p><small>${note}</small></p>` : ""),
      "text/markdown": md,
      "text/plain": md,
    };
  }
  if (isHtmlBlock(x)) return { "text/html": (x as HtmlBlock).html, "text/plain": (x as HtmlBlock).text };
  return null;
}

/**
 * Displays `x` (plotly figure, arquero table, markdown string, {@link HtmlBlock}, or anything else) in the
 * notebook, or prints it outside Jupyter. Always `await` it in cells, so the output lands in its cell.
 */
export async function show(x: unknown, opts: ShowOptions = {}): Promise<void> {
  const j = jupyter();
  if (!j) {
    try {
      console.log(toText(x, opts));
    } catch (e) {
      try {
        console.log(`[show: cannot render ${typeof x}: ${(e as Error)?.message ?? e}]`);
      } catch { /* stdout closed: nothing left to do */ }
    }
    return;
  }
  const inline = isFigure(x) && (opts.inlinePlotly || !plotlyInlined);
  const bundle = await mimeBundle(x, opts, inline);
  if (bundle === null) {
    await j.display(await j.format(x), { raw: true });
    return;
  }
  await j.display(bundle, { raw: true });
  if (inline) plotlyInlined = true;
}

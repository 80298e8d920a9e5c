/**
 * A standalone HTML report: headings, paragraphs, plotly figures and arquero tables in one file that opens
 * offline (plotly.js inlined once, at the end of the page; figures queue until it has loaded).
 *
 * ```ts
 * const t = await loadRuns("runs/demo");
 * await new Report("Demo")
 *   .text("Four sharing modes, `tiny`, 300 steps.")
 *   .figure(lossCurves(t))
 *   .table(formatMeanStd(compareModes(t)))
 *   .write("runs/demo/report.html");
 * ```
 *
 * @module
 */

import { writeFileAtomic } from "../io/atomic.ts";
import { type HtmlBlock, isHtmlBlock } from "./figures.ts";
import type { Table } from "./metrics.ts";
import { escapeHtml, type Figure, figureHtml, isFigure, plotlyLoaderHtml } from "./plotly.ts";
import { isTable } from "./show.ts";

/** Options of {@link Report.table}. */
export interface TableOptions {
  /** Rows shown (default 100). */
  limit?: number;
  /** Maximum fraction digits of numbers (default 4). */
  digits?: number;
  /** Caption under the table. */
  caption?: string;
}

/**
 * Minimal markdown for paragraphs: blank lines separate paragraphs; `code`, **bold**, *italic* and
 * [text](url) inline; everything else is escaped.
 */
export function markdownToHtml(md: string): string {
  return md.trim().split(/\n\s*\n/).map((para) => {
    let h = escapeHtml(para.trim());
    h = h.replace(/`([^`]+)`/g, "<code>$1</code>")
      .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
      .replace(/\*([^*\s][^*]*)\*/g, "<em>$1</em>")
      .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, '<a href="$2">$1</a>')
      .replace(/\n/g, "<br>\n");
    return `<p>${h}</p>`;
  }).join("\n");
}

const STYLE = `
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto;
  padding: 0 1em; color: #222; }
h1 { font-size: 1.8em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; } th { background: #f6f6f6; }
.caption { color: #666; font-size: 13px; margin: 0.4em 0 1em; }
figure.rtdlab-block { margin: 1.2em 0 1.6em; }
figure.rtdlab-block > .rtdlab-figure { position: relative; }
.rtdlab-meta { color: #888; font-size: 12px; }
`;

/** A report under construction: add sections in order, then {@link Report.render} or {@link Report.write}. */
export class Report {
  #parts: (string | Figure)[] = [];

  /** Starts a report whose page title and first heading is `title`. */
  constructor(readonly title: string) {}

  /** Adds a heading (level 2 by default). */
  heading(text: string, level = 2): this {
    const l = Math.min(6, Math.max(1, Math.round(level)));
    this.#parts.push(`<h${l}>${escapeHtml(text)}</h${l}>`);
    return this;
  }

  /** Adds paragraphs of minimal markdown (see {@link markdownToHtml}). */
  text(markdown: string): this {
    this.#parts.push(markdownToHtml(markdown));
    return this;
  }

  /**
   * Adds a plotly figure, with an optional caption below it. Figure and caption share a `<figure>`
   * block, and the caption keeps a positive margin: a negative one slid its first line under the chart.
   */
  figure(fig: Figure, caption?: string): this {
    this.#parts.push(`<figure class="rtdlab-block">`, fig);
    if (caption) this.#parts.push(`<figcaption class="caption">${escapeHtml(caption)}</figcaption>`);
    this.#parts.push(`</figure>`);
    return this;
  }

  /** Adds an arquero table. */
  table(t: Table, opts: TableOptions = {}): this {
    const limit = opts.limit ?? 100;
    let h = t.toHTML({ limit, maxdigits: opts.digits ?? 4 });
    if (t.numRows() > limit) h += `<p class="caption">(${limit} of ${t.numRows()} rows)</p>`;
    if (opts.caption) h += `<p class="caption">${escapeHtml(opts.caption)}</p>`;
    this.#parts.push(h);
    return this;
  }

  /** Adds raw HTML or an {@link HtmlBlock} (e.g. a token strip). */
  html(block: HtmlBlock | string): this {
    this.#parts.push(typeof block === "string" ? block : block.html);
    return this;
  }

  /** Adds anything `show()` displays: a figure, a table, an HTML block, or a markdown string. */
  add(x: unknown): this {
    if (isFigure(x)) return this.figure(x);
    if (isTable(x)) return this.table(x);
    if (isHtmlBlock(x)) return this.html(x);
    if (typeof x === "string") return this.text(x);
    throw new Error(`Report.add: cannot place a ${typeof x} (figures, tables, HTML blocks, strings)`);
  }

  /** Number of figures added so far. */
  get figureCount(): number {
    return this.#parts.filter((p) => typeof p !== "string").length;
  }

  /** The whole page. plotly.js is inlined once, only when the report has figures. */
  async render(): Promise<string> {
    const body = this.#parts.map((p) => (typeof p === "string" ? p : figureHtml(p))).join("\n");
    const loader = this.figureCount > 0 ? await plotlyLoaderHtml() : "";
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(this.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(this.title)}</h1>
<p class="rtdlab-meta">rtdlab report, ${new Date().toISOString().replace("T", " ").slice(0, 19)} UTC</p>
${body}
${loader}
</body>
</html>
`;
  }

  /** Writes the page to `path` atomically (temporary file + rename) and returns the path. */
  async write(path: string): Promise<string> {
    await writeFileAtomic(path, await this.render());
    return path;
  }
}

/** Writes a report of `items` (figures, tables, HTML blocks, markdown strings) to `path` in one call. */
export async function writeHtmlReport(path: string, title: string, items: unknown[]): Promise<string> {
  const r = new Report(title);
  for (const x of items) r.add(x);
  return await r.write(path);
}

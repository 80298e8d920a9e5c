/**
 * A terminal progress bar for long work (training, data preparation, benchmarks): redraws one line
 * on a TTY, prints a line every few percent otherwise (CI logs, pipes).
 *
 * @module
 */

/**
 * Width of the terminal stderr writes to, for status lines cut to one row: 120 when there is none, or when
 * it reports 0 columns (some terminals do, e.g. under `script`).
 */
export function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns || 120;
  } catch {
    return 120;
  }
}

/** Formats seconds as `1h02m`, `3m05s` or `12s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/** A progress bar written to stderr. */
export class ProgressBar {
  #tty: boolean;
  #lastPct = -1;
  #lastDraw = 0;
  #enc = new TextEncoder();

  /** A bar for `total` units of work, labelled `label`. */
  constructor(readonly total: number, readonly label = "", readonly width = 24) {
    this.#tty = Deno.stderr.isTerminal();
  }

  /** Shows progress `done`/total with a trailing status text (losses, speed, ETA). */
  update(done: number, status = ""): void {
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const pct = Math.floor(frac * 100);
    const now = performance.now();
    if (this.#tty) {
      if (now - this.#lastDraw < 100 && done < this.total) return;
      const filled = Math.round(frac * this.width);
      const bar = "█".repeat(filled) + "░".repeat(this.width - filled);
      const line = `${this.label} ${bar} ${String(pct).padStart(3)}% ${done}/${this.total} ${status}`;
      Deno.stderr.writeSync(this.#enc.encode(`\r\x1b[2K${line.slice(0, terminalColumns() - 1)}`));
      this.#lastDraw = now;
    } else if (pct >= this.#lastPct + 10 || done === this.total) {
      if (pct === this.#lastPct) return;
      Deno.stderr.writeSync(this.#enc.encode(`${this.label} ${pct}% ${done}/${this.total} ${status}\n`));
      this.#lastPct = pct;
    }
  }

  /** Ends the bar's line. */
  done(): void {
    if (this.#tty) Deno.stderr.writeSync(this.#enc.encode("\n"));
  }
}

/**
 * Notebook prose that quotes numbers, checked against the run the notebook loaded: each "Reading" section
 * is written from one run, and a rerun (another seed, a code change, a shorter fallback run) gives other
 * numbers. {@link proseCheck} puts each quoted number next to its recomputed value and says plainly when
 * the prose no longer describes this run.
 *
 * @module
 */

/** One number the prose quotes, and the same number recomputed from the run the notebook loaded. */
export interface QuotedNumber {
  /** What it is, as the prose says it ("ES's final RTD loss"). */
  what: string;
  /**
   * The value written in the prose. Give it as text where it ends in zeros ("0.030"): a number loses them
   * (0.030 is 0.03 to JavaScript), and with them a digit of the rounding it is checked to.
   */
  quoted: number | string;
  /** The value this run gives (null: not available in this run). */
  measured: number | null;
  /** Largest |measured − quoted| still called a match (default: half a unit of the quoted number's last digit). */
  tolerance?: number;
}

/** Half a unit in the last decimal place `x` was written with (0.37 → 0.005; "0.030" → 0.0005; 12 → 0.5). */
export function roundingTolerance(x: number | string): number {
  // JavaScript writes very small and very large numbers with an exponent (1e-7): its digits count too.
  const m = String(x).trim().match(/^[-+]?\d+(?:\.(\d+))?(?:e([-+]?\d+))?$/i);
  if (!m) {
    throw new Error(
      `a quoted number is written as ${JSON.stringify(String(x))}: give digits, e.g. 0.030 or 12`,
    );
  }
  const decimals = (m[1]?.length ?? 0) - Number(m[2] ?? 0);
  return 0.5 * 10 ** -decimals;
}

/** The check's outcome: which numbers differ, and a markdown paragraph saying so. */
export interface ProseCheck {
  matches: boolean;
  differing: QuotedNumber[];
  markdown: string;
}

/**
 * Compares the prose's numbers with this run's. `run` names the run the prose was written from; the
 * markdown either confirms the prose describes this run or warns, listing every number that differs.
 */
export function proseCheck(items: QuotedNumber[], run: string): ProseCheck {
  const differing = items.filter((q) => {
    const rounding = roundingTolerance(q.quoted); // also refuses a quote that is no number ("", "0,03")
    return q.measured === null || !(Math.abs(q.measured - Number(q.quoted)) <= (q.tolerance ?? rounding));
  });
  if (!differing.length) {
    return {
      matches: true,
      differing,
      markdown:
        `The ${items.length} numbers quoted in the reading above match this run (written from ${run}).`,
    };
  }
  const rows = differing.map((q) =>
    `| ${q.what} | ${q.quoted} | ${
      q.measured === null ? "— (not in this run)" : Number(q.measured.toPrecision(4))
    } |`
  );
  return {
    matches: false,
    differing,
    markdown:
      `**⚠ The reading above was written from ${run}; this notebook loaded another run, and ${differing.length} of its ${items.length} quoted numbers differ here.** Read the cells' outputs, not the prose:\n\n` +
      `| number | in the prose | in this run |\n|---|---:|---:|\n${rows.join("\n")}`,
  };
}

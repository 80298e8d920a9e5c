/**
 * The equal-compute comparison's bookkeeping: collect fine-tuning metrics of every (pre-training
 * mode, pre-training seed, task, fine-tuning seed), aggregate them to mean ± std per mode and task
 * plus the per-run average over tasks, and render the markdown table. `tasks/compare.ts` runs the
 * jobs; notebooks can call {@link summarizeComparison} on the same files.
 *
 * @module
 */

import type { FinetuneMetricsFile } from "./run.ts";
import { meanStd, studentT975 } from "./metrics.ts";

/** One finished fine-tuning job, as the comparison sees it. */
export interface ComparisonEntry {
  /** Row of the table: a sharing mode, or "scratch" (no pre-training). */
  mode: string;
  /** Seed of the pre-training run the encoder came from. */
  pretrainSeed: number;
  /** Task name. */
  task: string;
  /** Seed of the fine-tune (head init, example order, dropout). */
  finetuneSeed: number;
  /** The job's metrics.json. */
  metrics: FinetuneMetricsFile;
}

/** Mean ± std of one cell. */
export interface Cell {
  /** Mean over the scores. */
  mean: number;
  /** Sample standard deviation (0 for one score). */
  std: number;
  /** Number of scores. */
  n: number;
  /** The individual scores (pre-training seed, fine-tuning seed, value). */
  values: { pretrainSeed: number; finetuneSeed: number; value: number }[];
  /** How many of them predicted one class for (nearly) every example (FinetuneMetricsFile.one_class). */
  oneClass?: number;
}

/** The aggregated table. */
export interface ComparisonSummary {
  /** Rows, in table order. */
  modes: string[];
  /** Columns, in table order. */
  tasks: string[];
  /** Metric reported per task (its selection metric). */
  metricOf: Record<string, string>;
  /** Test scores: mode → task → cell. */
  test: Record<string, Record<string, Cell>>;
  /** Dev scores: mode → task → cell. */
  dev: Record<string, Record<string, Cell>>;
  /**
   * Average over tasks: per (pre-training seed, fine-tuning seed) the mean of the task scores (only
   * where every task finished), then mean ± std over those.
   */
  average: Record<string, Cell>;
  /** Number of entries summarised. */
  entries: number;
}

function cell(values: Cell["values"]): Cell {
  const s = meanStd(values.map((v) => v.value));
  return { mean: s.mean, std: s.std, n: s.n, values };
}

/** Aggregates entries into mean ± std of the test (and dev) selection metric per mode and task. */
export function summarizeComparison(
  entries: readonly ComparisonEntry[],
  modes: readonly string[],
  tasks: readonly string[],
): ComparisonSummary {
  const metricOf: Record<string, string> = {};
  const test: ComparisonSummary["test"] = {};
  const dev: ComparisonSummary["dev"] = {};
  const average: ComparisonSummary["average"] = {};
  for (const e of entries) metricOf[e.task] ??= e.metrics.metric;
  for (const mode of modes) {
    test[mode] = {};
    dev[mode] = {};
    const mine = entries.filter((e) => e.mode === mode);
    for (const task of tasks) {
      const list = mine.filter((e) => e.task === task);
      const pick = (split: "test" | "dev") =>
        cell(list.map((e) => ({
          pretrainSeed: e.pretrainSeed,
          finetuneSeed: e.finetuneSeed,
          value: (e.metrics[split] as unknown as Record<string, number>)[e.metrics.metric],
        })));
      test[mode][task] = pick("test");
      dev[mode][task] = pick("dev");
      const collapsed = list.filter((e) => e.metrics.one_class?.flagged).length;
      if (collapsed) test[mode][task].oneClass = dev[mode][task].oneClass = collapsed;
    }
    // Average over tasks per (pre-training seed, fine-tuning seed) where every task is present.
    const keys = new Set(mine.map((e) => `${e.pretrainSeed}/${e.finetuneSeed}`));
    const values: Cell["values"] = [];
    for (const k of [...keys].sort()) {
      const [ps, fs] = k.split("/").map(Number);
      const scores = tasks.map((t) =>
        test[mode][t].values.find((v) => v.pretrainSeed === ps && v.finetuneSeed === fs)?.value
      );
      if (scores.every((s) => s !== undefined)) {
        values.push({
          pretrainSeed: ps,
          finetuneSeed: fs,
          value: scores.reduce((a, b) => a + b!, 0)! / tasks.length,
        });
      }
    }
    average[mode] = cell(values);
  }
  return { modes: [...modes], tasks: [...tasks], metricOf, test, dev, average, entries: entries.length };
}

const SHORT: Record<string, string> = { accuracy: "acc", macro_f1: "macro-F1", mcc: "MCC" };

/** "0.812 ± 0.013" (×100 when `percent`), or "—" for an empty cell. */
export function formatCell(c: Cell | undefined, percent = true): string {
  if (!c || c.n === 0) return "—";
  const k = percent ? 100 : 1;
  const d = percent ? 1 : 3;
  const v = c.n > 1 ? `${(c.mean * k).toFixed(d)} ± ${(c.std * k).toFixed(d)}` : `${(c.mean * k).toFixed(d)}`;
  // ⚠k/n: k of the n fine-tunes predicted one class for (nearly) every example.
  return c.oneClass ? `${v} ⚠${c.oneClass}/${c.n}` : v;
}

/** Markdown table: a row per mode, a column per task (test score ×100, mean ± std) and the average. */
export function comparisonTable(s: ComparisonSummary, split: "test" | "dev" = "test"): string {
  // The task average is of test scores only (the summary keeps no dev average): the dev table has none.
  const average = split === "test";
  const head = [
    "mode",
    ...s.tasks.map((t) => `${t} (${SHORT[s.metricOf[t]] ?? s.metricOf[t] ?? "?"})`),
    ...(average ? ["average"] : []),
  ];
  const rows = s.modes.map((m) => [
    m,
    ...s.tasks.map((t) => formatCell(s[split][m][t])),
    ...(average ? [formatCell(s.average[m])] : []),
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(width[i])).join(" | ")} |`;
  return [line(head), `|${width.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

/** Paired difference of two rows of a comparison on one task (or the average over tasks). */
export interface PairedDifference {
  /** First row (mode). */
  a: string;
  /** Second row (mode). */
  b: string;
  /** The task, or "average" over tasks. */
  task: string;
  /**
   * Mean of (a − b): over the fine-tuning seeds for one encoder; with several, the mean of each encoder's mean
   * over its fine-tuning seeds (every encoder weighs the same, however many of its fine-tunes pair).
   */
  mean: number;
  /**
   * What the standard error counts as independent: the pre-training seeds when the pairs span several (each
   * encoder's fine-tunes averaged first, since a mode's fine-tunes of one encoder, and the scratch runs reused
   * for every encoder, are not independent replicates), else the fine-tuning seeds of the one encoder.
   */
  unit: "pretraining seed" | "fine-tuning seed";
  /** Standard deviation of the differences over `unit` (per pre-training seed: of each one's mean). */
  std: number;
  /** Number of independent values: pre-training seeds or fine-tuning seeds, per {@link PairedDifference.unit}. */
  n: number;
  /** Fine-tuning runs paired (n × the fine-tuning seeds when the unit is the pre-training seed). */
  pairs: number;
  /** Each encoder's mean difference over its fine-tuning seeds, by pre-training seed (one entry for one encoder). */
  encoders: { pretrainSeed: number; mean: number }[];
  /**
   * Standard error of the mean difference: std / √n for one encoder. With several, the spread over encoders
   * plus the spread over fine-tuning seeds, which every encoder shares (√(s²_enc / E + s²_seed / F)).
   */
  stderr: number;
  /**
   * The 95 % interval of the mean difference: mean ± t · stderr ({@link studentT975}), with n − 1 degrees of
   * freedom, or min(E, F) − 1 with several encoders.
   */
  interval: [number, number];
  /**
   * "a" or "b" when the 95 % interval excludes zero (with n ≥ 3), else "noise": the data cannot tell the two
   * apart.
   */
  verdict: "a" | "b" | "noise";
}

/**
 * Compares rows `a` and `b` on `task` ("average" for the per-run task average) seed by seed: both rows' runs
 * share fine-tuning seeds (and, for pre-trained modes, pre-training seeds), so the paired differences remove
 * the seed-to-seed variation both share. With several pre-training seeds the encoder is the replicate: each
 * one's differences are averaged over its fine-tuning seeds, and the standard error is over encoders. The
 * verdict asks that the 95 % t interval exclude zero, with at least 3 independent values.
 */
export function pairedDifference(
  summary: ComparisonSummary,
  a: string,
  b: string,
  task: string,
): PairedDifference {
  const cellOf = (m: string) => (task === "average" ? summary.average[m] : summary.test[m]?.[task]);
  const ca = cellOf(a), cb = cellOf(b);
  if (!ca || !cb) throw new Error(`pairedDifference: no cells for ${a} / ${b} on ${task}`);
  // scratch has no pre-training seed of its own: its runs pair on the fine-tuning seed with every encoder's
  // (so go over the pre-trained row's runs), other rows on both seeds; the pre-trained run names the encoder.
  const flip = a === "scratch";
  const [outer, inner] = flip ? [cb, ca] : [ca, cb];
  const byEncoder = new Map<number, number[]>();
  const bySeed = new Map<number, number[]>(); // the same differences by fine-tuning seed
  let pairs = 0;
  for (const vo of outer.values) {
    const vi = inner.values.find((v) =>
      v.finetuneSeed === vo.finetuneSeed &&
      (a === "scratch" || b === "scratch" || v.pretrainSeed === vo.pretrainSeed)
    );
    if (!vi) continue;
    const d = flip ? vi.value - vo.value : vo.value - vi.value;
    byEncoder.set(vo.pretrainSeed, [...(byEncoder.get(vo.pretrainSeed) ?? []), d]);
    bySeed.set(vo.finetuneSeed, [...(bySeed.get(vo.finetuneSeed) ?? []), d]);
    pairs++;
  }
  const average = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
  const encoders = [...byEncoder].sort(([x], [y]) => x - y)
    .map(([pretrainSeed, ds]) => ({ pretrainSeed, mean: average(ds) }));
  // The design has several encoders when the pre-trained row does, even where fewer of them pair.
  const perEncoder = new Set(outer.values.map((v) => v.pretrainSeed)).size > 1;
  const diffs = perEncoder ? encoders.map((e) => e.mean) : [...byEncoder.values()].flat();
  const s = meanStd(diffs);
  let stderr = s.n > 0 ? s.std / Math.sqrt(s.n) : NaN;
  let df = s.n - 1;
  if (perEncoder && bySeed.size > 1) {
    // What every encoder shares drops out of the spread between encoders: the fine-tuning seed's effect (its
    // head initialisation and example order, and the one scratch run reused for every encoder). Its own term,
    // the spread of the per-seed means over the seeds, is added: a conservative two-way standard error.
    const seeds = meanStd([...bySeed.values()].map(average));
    stderr = Math.sqrt(stderr ** 2 + seeds.std ** 2 / seeds.n);
    df = Math.min(s.n, seeds.n) - 1;
  }
  const half = studentT975(df) * stderr;
  const interval: [number, number] = [s.mean - half, s.mean + half];
  const clear = s.n >= 3 && (interval[0] > 0 || interval[1] < 0);
  return {
    a,
    b,
    task,
    mean: s.mean,
    unit: perEncoder ? "pretraining seed" : "fine-tuning seed",
    std: s.std,
    n: s.n,
    pairs,
    encoders,
    stderr,
    interval,
    verdict: clear ? (s.mean > 0 ? "a" : "b") : "noise",
  };
}

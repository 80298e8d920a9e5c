/**
 * Labelled text-classification data: examples, splits, and the task record the loaders return.
 *
 * @module
 */

/** One labelled example: a single text, or a pair (`text` + `textB`), with a class index. */
export interface Example {
  /** Where it came from (file and line, package file, ...): stable across loads. */
  id: string;
  /** The text (first segment of a pair). */
  text: string;
  /** Second segment of a pair, when the task has pairs. */
  textB?: string;
  /** Index into {@link TaskData.labels}. */
  label: number;
}

/** Metric a task is judged (and early-stopped) by. */
export type MetricName = "accuracy" | "macro_f1" | "mcc";

/** All metric names, in report order. */
export const METRIC_NAMES: readonly MetricName[] = ["accuracy", "macro_f1", "mcc"];

/** A classification task with fixed train/dev/test splits. */
export interface TaskData {
  /** Task name (`sentiment-imdb`, ..., or the user file's base name). */
  name: string;
  /** One line: source and size. */
  description: string;
  /** Class names; an example's `label` indexes this list. */
  labels: string[];
  /** True when examples are pairs (`[CLS] a [SEP] b [SEP]`). */
  pair: boolean;
  /** Metric that selects the best epoch and heads the comparison table. */
  metric: MetricName;
  /** Training split. */
  train: Example[];
  /** Development split (early stopping, model selection). */
  dev: Example[];
  /** Test split (reported; never used for a decision). */
  test: Example[];
  /** How the splits were made, for metrics.json. */
  split: SplitInfo;
}

/** Provenance of a task's splits. */
export interface SplitInfo {
  /** "seeded" (split here from one pool) or "files" (given by the user). */
  kind: "seeded" | "files";
  /** Seed of the split (seeded splits). */
  seed?: number;
  /** Fractions train/dev/test (seeded splits). */
  fractions?: [number, number, number];
  /** Unit kept whole across splits ("example", or "document" for Brown passages). */
  unit?: string;
  /** Caps applied after splitting (train, dev/test), if any. */
  caps?: { train?: number; eval?: number };
  /** Examples dropped as duplicates before splitting. */
  duplicatesDropped?: number;
}

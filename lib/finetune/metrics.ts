/**
 * Classification metrics from a confusion matrix: accuracy, macro-F1, and the multi-class Matthews
 * correlation coefficient (Gorodkin 2004, the R_K statistic; equals the usual MCC for two classes).
 *
 * @module
 */

/** Accuracy, macro-F1 and MCC of one evaluation. */
export interface ClassificationMetrics {
  /** Fraction of examples predicted right. */
  accuracy: number;
  /** Mean per-class F1 over the classes that occur in the truth or the predictions. */
  macro_f1: number;
  /** Multi-class Matthews correlation (Gorodkin's R_K), in [-1, 1]; 0 when undefined. */
  mcc: number;
  /** Number of examples. */
  n: number;
}

/** Confusion matrix `m[true][pred]` of `numClasses` classes. */
export function confusionMatrix(
  labels: ArrayLike<number>,
  preds: ArrayLike<number>,
  numClasses: number,
): number[][] {
  if (labels.length !== preds.length) {
    throw new Error(`confusionMatrix: ${labels.length} labels but ${preds.length} predictions`);
  }
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < labels.length; i++) {
    const t = labels[i], p = preds[i];
    if (!(t >= 0 && t < numClasses && p >= 0 && p < numClasses)) {
      throw new Error(`confusionMatrix: class out of range at ${i} (label ${t}, prediction ${p})`);
    }
    m[t][p]++;
  }
  return m;
}

/** Accuracy, macro-F1 and MCC of a confusion matrix `m[true][pred]`. */
export function metricsFromConfusion(m: number[][]): ClassificationMetrics {
  const k = m.length;
  const rows = m.map((r) => r.reduce((a, b) => a + b, 0)); // true counts t_k
  const cols = Array.from({ length: k }, (_, j) => m.reduce((a, r) => a + r[j], 0)); // predicted p_k
  const n = rows.reduce((a, b) => a + b, 0);
  let correct = 0;
  for (let i = 0; i < k; i++) correct += m[i][i];
  let f1Sum = 0, f1Count = 0;
  for (let i = 0; i < k; i++) {
    if (rows[i] === 0 && cols[i] === 0) continue; // class absent from both: not averaged
    const tp = m[i][i], fp = cols[i] - tp, fn = rows[i] - tp;
    f1Sum += (2 * tp) / (2 * tp + fp + fn);
    f1Count++;
  }
  // Gorodkin: (c·s − Σ p_k t_k) / √((s² − Σ p_k²)(s² − Σ t_k²)).
  let pt = 0, pp = 0, tt = 0;
  for (let i = 0; i < k; i++) {
    pt += cols[i] * rows[i];
    pp += cols[i] * cols[i];
    tt += rows[i] * rows[i];
  }
  const denom = Math.sqrt((n * n - pp) * (n * n - tt));
  return {
    accuracy: n ? correct / n : 0,
    macro_f1: f1Count ? f1Sum / f1Count : 0,
    mcc: denom > 0 ? (correct * n - pt) / denom : 0,
    n,
  };
}

/** Accuracy, macro-F1 and MCC of predictions against labels. */
export function classificationMetrics(
  labels: ArrayLike<number>,
  preds: ArrayLike<number>,
  numClasses: number,
): ClassificationMetrics {
  return metricsFromConfusion(confusionMatrix(labels, preds, numClasses));
}

/**
 * The best score a constant classifier gets on `labels` (the same class for every example, each class tried):
 * the floor a fine-tune must clear to have learned anything of the task. Accuracy: the majority share; MCC: 0.
 */
export function constantBaseline(labels: ArrayLike<number>, numClasses: number): ClassificationMetrics {
  const each = Array.from(
    { length: numClasses },
    (_, c) => classificationMetrics(labels, new Array<number>(labels.length).fill(c), numClasses),
  );
  // Each metric's own best class (accuracy's is the majority class; macro-F1's may differ).
  const best = (k: "accuracy" | "macro_f1" | "mcc") => Math.max(...each.map((m) => m[k]));
  return { accuracy: best("accuracy"), macro_f1: best("macro_f1"), mcc: best("mcc"), n: labels.length };
}

/** Mean and sample standard deviation (n − 1; 0 for a single value). */
export function meanStd(xs: readonly number[]): { mean: number; std: number; n: number } {
  const n = xs.length;
  if (n === 0) return { mean: NaN, std: NaN, n };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const v = n > 1 ? xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, std: Math.sqrt(v), n };
}

/** Student's t at 97.5 % for 1-30 degrees of freedom: a 95 % interval of a mean of n values is ± t(n − 1) · SE. */
const T975 = [
  12.706,
  4.303,
  3.182,
  2.776,
  2.571,
  2.447,
  2.365,
  2.306,
  2.262,
  2.228,
  2.201,
  2.179,
  2.16,
  2.145,
  2.131,
  2.12,
  2.11,
  2.101,
  2.093,
  2.086,
  2.08,
  2.074,
  2.069,
  2.064,
  2.06,
  2.056,
  2.052,
  2.048,
  2.045,
  2.042,
];

/**
 * Student's t quantile at 97.5 % for `df` degrees of freedom (NaN below 1): with few seeds a 95 % interval is
 * much wider than ± 2 standard errors (± 4.3 SE with 3 values). Past 30, interpolated in 1/df towards 1.960.
 */
export function studentT975(df: number): number {
  if (!(df >= 1)) return NaN;
  const k = Math.floor(df);
  return k <= 30 ? T975[k - 1] : 1.96 + (T975[29] - 1.96) * 30 / k;
}

/** Share of predictions at or above which a classifier counts as predicting one class for (nearly) everything. */
export const ONE_CLASS_SHARE = 0.95;

/**
 * The share of the most predicted class among `preds` (1 = one class for every example), its label
 * index, and whether it reaches {@link ONE_CLASS_SHARE}: a degenerate classifier whose accuracy is the
 * majority class's frequency and whose MCC is 0.
 */
export function predictionCollapse(
  preds: ArrayLike<number>,
): { share: number; cls: number; collapsed: boolean } {
  const counts = new Map<number, number>();
  for (let i = 0; i < preds.length; i++) counts.set(preds[i], (counts.get(preds[i]) ?? 0) + 1);
  let cls = -1, top = 0;
  for (const [c, n] of counts) if (n > top) [cls, top] = [c, n];
  const share = preds.length ? top / preds.length : 0;
  return { share, cls, collapsed: preds.length > 0 && share >= ONE_CLASS_SHARE };
}

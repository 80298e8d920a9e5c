/**
 * Downstream evaluation: fine-tune a pre-trained encoder with ELECTRA's classification head on a
 * labelled task and score it (accuracy, macro-F1, MCC).
 *
 * ```ts
 * import { initBackend } from "./lib/backend/mod.ts";
 * import { runFinetune } from "./lib/finetune/mod.ts";
 * await initBackend("wasm");
 * const m = await runFinetune({ runDir: "runs/gdes", task: "sentiment-yelp", seed: 0 });
 * console.log(m.test.accuracy);
 * ```
 *
 * @module
 */

export {
  type ClassifierForward,
  configFromHf,
  type EncoderSource,
  loadPretrainedEncoder,
  type PretrainedEncoder,
  SequenceClassifier,
} from "./classifier.ts";
export { disposeBatch, encodeExamples, type Feature, type FeatureBatch, makeBatch } from "./features.ts";
export {
  type ClassificationMetrics,
  classificationMetrics,
  confusionMatrix,
  constantBaseline,
  meanStd,
  metricsFromConfusion,
  ONE_CLASS_SHARE,
  predictionCollapse,
  studentT975,
} from "./metrics.ts";
export {
  DEFAULT_HYPERPARAMS,
  type EvalRecord,
  finetune,
  type FinetuneHyperparams,
  type FinetuneOptions,
  type FinetuneProgress,
  type FinetuneResult,
  improvesOn,
  predict,
  type Prediction,
  scorePredictions,
  validateHyperparams,
} from "./train.ts";
export {
  earlierResult,
  finetuneDir,
  finetuneFloors,
  type FinetuneMetricsFile,
  runFinetune,
  type RunFinetuneOptions,
  taskSlug,
} from "./run.ts";
export {
  type Cell,
  type ComparisonEntry,
  type ComparisonSummary,
  comparisonTable,
  formatCell,
  type PairedDifference,
  pairedDifference,
  summarizeComparison,
} from "./compare.ts";

/**
 * rtdlab: replaced token detection (ELECTRA) and gradient-disentangled embedding sharing
 * (DeBERTaV3) on TensorFlow.js. Notebooks and scripts import from here.
 *
 * ```ts
 * import { initBackend, pretrain, preset } from "./lib/mod.ts";
 * await initBackend("wasm");
 * const run = await pretrain({ config: { ...preset("tiny"), sharing: "gdes", steps: 50 }, outDir: "runs/x" });
 * ```
 *
 * @module
 */

export * as tf from "./tf.ts";
export { type BackendName, BACKENDS, describeBackend, initBackend, stopGradient } from "./backend/mod.ts";
export {
  applyOverrides,
  generatorSize,
  isJoint,
  preset,
  PRESETS,
  type RunConfig,
  SHARING_MODES,
  type SharingMode,
  validateConfig,
} from "./config.ts";
export { Rng } from "./rng.ts";
export { CORPORA, type Document, loadCorpus } from "./text/corpus.ts";
export { splitSentences } from "./text/sentences.ts";
export {
  FRESH_SEED,
  freshSentences,
  generateSynthetic,
  isSyntheticName,
  parseSyntheticName,
  SYNTHETIC_LANGUAGES,
  type SyntheticDocument,
  type SyntheticLexicon,
  syntheticLexicon,
  syntheticName,
  type SyntheticParams,
  type SyntheticSpec,
} from "./text/synthetic.ts";
export { bertBaseUncased, WordPieceTokenizer } from "./text/tokenizer.ts";
export { trainWordPiece } from "./text/wordpiece_trainer.ts";
export { packDocuments, type PackedCorpus } from "./text/packing.ts";
export { defaultCacheDir, prepareCorpus } from "./text/dataset.ts";
export {
  DEBERTA_V3_MASKING,
  ELECTRA_MASKING,
  maskBatch,
  type MaskedBatch,
  type MaskingRecipe,
  type MaskingVocab,
} from "./text/masking.ts";
export { ElectraModel } from "./model/electra.ts";
export { attentionSpan, DebertaModel, logBucketPosition, relativeIndex } from "./model/deberta.ts";
export {
  BACKBONES,
  createModel,
  type EncoderInputs,
  type ForwardOptions,
  type Role,
  type RtdModel,
} from "./model/mod.ts";
export { ParameterStore } from "./model/params.ts";
export { AdamW, learningRate } from "./train/optimizer.ts";
export { useEarlyRelease, variableGrads } from "./train/gradients.ts";
export { corrupt, sampleFromLogits, sampleOnDevice } from "./train/sampling.ts";
export {
  binaryEntropy,
  formatAgainst,
  formatSe,
  lastTenth,
  nearThreshold,
  NOT_LEARNED,
  notLearned,
  rocAuc,
  rtdSkill,
  tailMean,
  tailSe,
} from "./train/rtd_metrics.ts";
export {
  batchTensors,
  crossEntropy,
  microBatchRows,
  Pretrainer,
  type PretrainVocab,
  sigmoidBce,
  type StepGradients,
  type StepMetrics,
  stepRngs,
  type TokenBatch,
} from "./train/pretrain.ts";
export { BatchSampler } from "./train/batches.ts";
export {
  BOOTSTRAP_RESAMPLES,
  EVALUATE_BATCH_SIZE,
  type EvaluateOptions,
  evaluateRtd,
  type HeldOutSplit,
  holdOut,
  MIN_BOOTSTRAP_SEQUENCES,
  type RtdEvaluation,
  sequenceBatches,
} from "./train/evaluate.ts";
export { exportModels, latestCheckpoint, loadCheckpoint, saveCheckpoint } from "./train/checkpoint.ts";
// Is it the discriminator or its task? Every D of a sweep on every generator of its group.
export {
  type CrossGroup,
  crossGroups,
  crossKeys,
  crossMarkdown,
  type CrossMove,
  type CrossReading,
  crossSweep,
  type SweepCross,
  type SweepRun,
} from "./sweep/cross.ts";
export type { EvalSettings } from "./sweep/runs.ts";
export {
  type MetricsRecord,
  prepareRunData,
  pretrain,
  type PretrainOptions,
  readMetrics,
  savedRunConfig,
} from "./train/run.ts";
export {
  type CompleteRunOptions,
  evaluateRunDir,
  type EvaluateRunOptions,
  isCompleteRun,
  type OpenedRun,
  openRun,
  type RunEvaluation,
  type RunSpec,
  runTaskUnlessDone,
  trainRuns,
  type TrainRunsOptions,
  type UnseenOptions,
  unseenSequences,
  type UnseenText,
} from "./report/trained.ts";
export { loadSafetensors, saveSafetensors } from "./io/safetensors.ts";
export { RunLock } from "./io/run_lock.ts";
export { type HfModelFolder, isHfModelFolder, readHfModelFolder } from "./model/hf_folder.ts";
export { formatLoadReport, type LoadReport, loadStateDicts, type StateDicts } from "./model/hf_load.ts";
export { configFromHfPair } from "./model/hf_config.ts";
export { type InitFrom, loadInitWeights, readInitFolders } from "./train/init_from.ts";
export { readHfTokenizer, writeHfTokenizerFiles } from "./text/hf_files.ts";
export { formatDuration, ProgressBar } from "./util/progress.ts";
export {
  averageCosine,
  discriminatorView,
  type DiscriminatorViewRow,
  embeddingDrift,
  type EmbeddingSimilarity,
  embeddingSimilarity,
  embeddingTable,
  type GradientAgreement,
  measureTugOfWar,
  nearestNeighbours,
  probeRunDir,
  probeTugOfWar,
  readTableParam,
  type RunProbe,
  type RunProbeOptions,
  snapshotEmbeddings,
  stepGradients,
  tokenFrequencies,
  topTokens,
  TrainingProbe,
  TugOfWarMeasurement,
  tugOfWarMetrics,
  type TugOfWarReport,
  type TugOfWarRow,
} from "./probes/mod.ts";
export * from "./finetune/mod.ts";
export * from "./tasks/mod.ts";

// The option and result types the functions above take and return, for scripts that name them.
export type { BackendInfo } from "./backend/mod.ts";
export type { EncoderSize } from "./config.ts";
export type { RngState } from "./rng.ts";
export type { CorpusName, LoadCorpusOptions } from "./text/corpus.ts";
export type { PrepareCorpusOptions, PreparedCorpus } from "./text/dataset.ts";
export type { PackOptions } from "./text/packing.ts";
export type { DecodeOptions, SpecialIds, TokenizerJson } from "./text/tokenizer.ts";
export type { TrainWordPieceOptions } from "./text/wordpiece_trainer.ts";
export type { HfTokenizer, HfTokenizerFileOptions } from "./text/hf_files.ts";
export type { SyntheticNoun, SyntheticVerb } from "./text/synthetic.ts";
export type { ElectraModelOptions, EmbeddingTables } from "./model/electra.ts";
export type { DebertaForwardOptions, DebertaModelOptions, RelativePositionConfig } from "./model/deberta.ts";
export type { ModelOptions } from "./model/mod.ts";
export type { SharedEmbeddings, TableName } from "./model/embeddings.ts";
export { pairedInitKey } from "./model/embeddings.ts";
export type { Init } from "./model/params.ts";
export type { StateDict } from "./model/hf_load.ts";
export type { AdamWConfig } from "./train/optimizer.ts";
export type { Corruption } from "./train/sampling.ts";
export type { SkillVerdict } from "./train/rtd_metrics.ts";
export type { HostPhase } from "./train/pretrain.ts";
export type { PackedSequences } from "./train/batches.ts";
export type { CheckpointState } from "./train/checkpoint.ts";
export type { PretrainResult, Progress } from "./train/run.ts";
export type { InitFolders } from "./train/init_from.ts";
export type { HostTensor } from "./io/safetensors.ts";
export type { EmailTextOptions } from "./tasks/email.ts";
export type {
  DiscriminatorViewOptions,
  Drift,
  EmbeddingTableName,
  EmbeddingView,
  MeanSe,
  Neighbour,
  NeighbourList,
  NeighbourOptions,
  ProbeOptions,
  TableProbe,
  TokenNamer,
  TugOfWarOptions,
  ViewTokenizer,
} from "./probes/mod.ts";

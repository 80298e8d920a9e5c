/**
 * Run configuration: model sizes, embedding sharing, masking, optimiser and data, with the named
 * presets ({@link PRESETS}: `tiny`, `electra-small`, `deberta-tiny`, `deberta-mini`, `deberta-v3-xsmall`) and strict validation (an unknown key is an error, not a typo
 * that silently keeps the default).
 *
 * Numbers follow the papers (ELECTRA, Clark et al. 2020; DeBERTaV3, He et al. 2021).
 *
 * @module
 */

import { closest, distance } from "fastest-levenshtein";
import { corpusParts } from "./text/corpus.ts";
import { isSyntheticName, parseSyntheticName } from "./text/synthetic.ts";

/** How the generator and discriminator share token/position/type embeddings (DeBERTaV3 §3). */
export type SharingMode = "es" | "nes" | "gdes" | "mlm";

/** All sharing modes, in the order reports list them. */
export const SHARING_MODES: readonly SharingMode[] = ["mlm", "es", "nes", "gdes"];

/** Transformer sizes of one encoder. */
export interface EncoderSize {
  /** Hidden size H. */
  hiddenSize: number;
  /** Number of transformer layers. */
  numLayers: number;
  /** Number of attention heads (H must divide by it). */
  numHeads: number;
  /** Feed-forward inner size. */
  intermediateSize: number;
}

/** Everything a pre-training run needs to know. Serialised as DIR/config.json. */
export interface RunConfig {
  /** Preset the run started from (informational). */
  preset: string;
  /** Encoder family: ELECTRA's BERT-style encoder, or DeBERTa's disentangled attention (lib/model). */
  backbone: "electra" | "deberta";
  /**
   * Vocabulary size of the models: set from the tokenizer when {@link pretrain} prepares the data; a
   * Pretrainer built by hand needs it equal to its tokenizer's.
   */
  vocabSize: number;
  /** Size of the position table: the longest sequence the models accept. */
  maxPositions: number;
  /** Number of token types (segments A/B). */
  typeVocabSize: number;
  /** Embedding size E; when E != H each model projects E -> H with its own dense layer. */
  embeddingSize: number;
  /** Discriminator sizes (also the MLM baseline's). */
  discriminator: EncoderSize;
  /** Generator width as a fraction of the discriminator's hidden size (ELECTRA: 1/4; DeBERTaV3: 1). */
  generatorHiddenFraction: number;
  /** Generator depth; null = the discriminator's (ELECTRA). DeBERTaV3 uses half. */
  generatorLayers: number | null;
  /** LayerNorm epsilon (ELECTRA 1e-12). */
  layerNormEps: number;
  /** Dropout on embeddings, attention probabilities and residual branches. */
  dropout: number;
  /** Standard deviation of the normal initialiser. */
  initStd: number;
  /**
   * DeBERTa only (`position_buckets`): relative positions |r| ≤ buckets/2 keep their own embedding,
   * longer ones share log-spaced buckets; 0 = no log buckets (r clipped at ±maxRelativePositions).
   */
  positionBuckets: number;
  /** DeBERTa only (`max_relative_positions`): the distance the log buckets reach (bucket ±(buckets−1)). */
  maxRelativePositions: number;

  /** Embedding sharing mode. */
  sharing: SharingMode;
  /** Train NES/GDES with one joint loss L_MLM + λ·L_RTD instead of decoupled G then D steps. */
  joint: boolean;
  /**
   * Decoupled NES/GDES only: after G's update, run G again and let the *updated* G corrupt the batch D
   * trains on. Off (the papers' order): D trains on the corruption sampled in G's forward pass before
   * G's update (DeBERTaV3 §3; microsoft/DeBERTa samples inside the generator's loss), one G forward
   * per step. On: rtdlab's order before 2026-12 (one more G forward per step).
   */
  resampleAfterGeneratorUpdate: boolean;
  /** λ, the weight of the RTD loss. */
  rtdWeight: number;
  /** Fraction of maskable positions selected (15%). */
  maskSelectProb: number;
  /**
   * 0: select round(maskSelectProb · maskable tokens) positions per sequence (at least 1). > 0:
   * ELECTRA's count (pretrain_helpers.mask): k = max(1, min(maxPredictionsPerSeq,
   * round(maskSelectProb · non-padding tokens))), [CLS]/[SEP] counted, never selected; k distinct
   * positions (ELECTRA draws with replacement). ELECTRA's configure_pretraining sets 19 at length 128.
   */
  maxPredictionsPerSeq: number;
  /** Of the selected positions: fraction replaced by [MASK] (ELECTRA 0.85, DeBERTaV3 1.0). */
  maskTokenProb: number;
  /** Of the selected positions: fraction replaced by a random token (ELECTRA 0). The rest stay unchanged. */
  maskRandomProb: number;
  /** Sampling temperature T for the generator's replacements. */
  samplingTemperature: number;
  /** Never sample the original token (ELECTRA's optional variant). */
  disallowCorrect: boolean;

  /** Peak learning rate. */
  learningRate: number;
  /** Linear warmup steps. */
  warmupSteps: number;
  /** Adam β1. */
  beta1: number;
  /** Adam β2. */
  beta2: number;
  /** Adam ε. */
  epsilon: number;
  /** Decoupled weight decay (not applied to LayerNorm weights and biases). */
  weightDecay: number;
  /** Global gradient-norm clip (0 = off). */
  clipNorm: number;
  /** Adam bias correction; ELECTRA's optimizer has none. */
  biasCorrection: boolean;

  /** Sequences per step. */
  batchSize: number;
  /** Tokens per sequence (<= maxPositions). */
  seqLength: number;
  /** Length of the run: the LR schedule decays to 0 at this step. */
  steps: number;
  /** Seed of every random choice. */
  seed: number;
  /** Corpus name (see lib/text/corpus.ts) or a folder of .txt files. */
  corpus: string;
  /** Cap on corpus characters read (0 = all). */
  corpusMaxChars: number;
  /**
   * Packed sequences kept out of training for evaluation (lib/train/evaluate.ts `holdOut`: a seeded
   * choice from `seed`); 0 = train on every sequence.
   */
  heldOutSequences: number;
  /** "trained" (WordPiece trained on the corpus), "bert-base-uncased", or a tokenizer.json path. */
  tokenizer: string;
  /**
   * Target vocabulary size for a trained tokenizer (`tokenizer: "trained"`); the trained one may come out a
   * little smaller, and `vocabSize` is then set from it when the data is prepared.
   */
  tokenizerVocabSize: number;
  /** Log metrics every this many steps. */
  logEvery: number;
  /** Write a checkpoint every this many steps (0 = only at the end). */
  checkpointEvery: number;
  /** Run the tug-of-war and geometry probes every this many steps, logging their keys (0 = off; lib/probes). */
  probeEvery: number;
  /**
   * Sequences per forward/backward pass; a larger batch is split into micro-batches whose gradients are
   * summed into the batch's (the same update up to float summation order, with other dropout draws).
   * 0 = automatic: the whole batch, except on wasm when its activations would not fit the 4 GB wasm
   * heap (ELECTRA-Small at batch 32 did not).
   */
  microBatchSize: number;
}

const BASE: RunConfig = {
  preset: "base",
  backbone: "electra",
  vocabSize: 30522,
  maxPositions: 512,
  typeVocabSize: 2,
  embeddingSize: 128,
  discriminator: { hiddenSize: 256, numLayers: 12, numHeads: 4, intermediateSize: 1024 },
  generatorHiddenFraction: 0.25,
  generatorLayers: null,
  layerNormEps: 1e-12,
  dropout: 0.1,
  initStd: 0.02,
  positionBuckets: 256,
  maxRelativePositions: 512,
  sharing: "es",
  joint: false,
  resampleAfterGeneratorUpdate: false,
  rtdWeight: 50,
  maskSelectProb: 0.15,
  maxPredictionsPerSeq: 0,
  maskTokenProb: 0.85,
  maskRandomProb: 0,
  samplingTemperature: 1,
  disallowCorrect: false,
  learningRate: 5e-4,
  warmupSteps: 10000,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-6,
  weightDecay: 0.01,
  clipNorm: 1,
  biasCorrection: false,
  batchSize: 128,
  seqLength: 128,
  steps: 1_000_000,
  seed: 0,
  corpus: "gutenberg",
  corpusMaxChars: 0,
  heldOutSequences: 0,
  tokenizer: "bert-base-uncased",
  tokenizerVocabSize: 8192,
  logEvery: 10,
  checkpointEvery: 1000,
  probeEvery: 0,
  microBatchSize: 0,
};

/**
 * DeBERTaV3's architecture switches (HF DebertaV2Config of microsoft/deberta-v3-*): no token types,
 * LayerNorm eps 1e-7, generator of the discriminator's width (half its depth, set per preset), every
 * selected position masked, 256 log buckets reaching ±511.
 */
const DEBERTA_V3 = {
  backbone: "deberta",
  typeVocabSize: 0,
  layerNormEps: 1e-7,
  generatorHiddenFraction: 1,
  maskTokenProb: 1,
  positionBuckets: 256,
  maxRelativePositions: 512,
} as const satisfies Partial<RunConfig>;

/**
 * Named presets. `tiny` trains in CPU-minutes; `electra-small` is the paper's ELECTRA-Small;
 * `deberta-tiny` is `tiny`'s size on the DeBERTa backbone; `deberta-mini` is the demo's (D 2 × 64 on the
 * synthetic `echo` language, where D learns in minutes on two cores); `deberta-v3-xsmall` is DeBERTaV3-xsmall.
 */
export const PRESETS: Record<string, RunConfig> = {
  "tiny": {
    ...BASE,
    preset: "tiny",
    vocabSize: 8192,
    maxPositions: 128,
    embeddingSize: 128,
    discriminator: { hiddenSize: 128, numLayers: 4, numHeads: 2, intermediateSize: 512 },
    learningRate: 1e-3,
    warmupSteps: 30,
    // ELECTRA's Adam has no bias correction, which its 10k warmup steps hide. With tens of warmup
    // steps the uncorrected updates of steps ~10-300 are 3-6x larger (m/√v without the 1-β^t
    // factors); measured here, the discriminator then learns, diverges (loss spike) and collapses to
    // input-independent hidden states at the base rate. `electra-small` keeps the paper's optimizer.
    biasCorrection: true,
    batchSize: 16,
    seqLength: 128,
    steps: 300,
    corpusMaxChars: 4_000_000,
    tokenizer: "trained",
    tokenizerVocabSize: 8192,
    logEvery: 10,
    checkpointEvery: 100,
  },
  // ELECTRA's configure_pretraining: max_predictions_per_seq = (0.15 + 0.005) · 128 → 19.
  "electra-small": { ...BASE, preset: "electra-small", maxPredictionsPerSeq: 19 },
  // D 4×128 like `tiny`, G same width at half depth (DeBERTaV3). Buckets scaled with the sequence
  // (512 → 128, ÷4): exact up to ±32, log-spaced up to ±127, so the log path is exercised at seq 128.
  "deberta-tiny": {
    ...BASE,
    ...DEBERTA_V3,
    preset: "deberta-tiny",
    vocabSize: 8192,
    maxPositions: 128,
    embeddingSize: 128,
    discriminator: { hiddenSize: 128, numLayers: 4, numHeads: 2, intermediateSize: 512 },
    generatorLayers: 2,
    positionBuckets: 64,
    maxRelativePositions: 128,
    learningRate: 1e-3,
    warmupSteps: 30,
    biasCorrection: true, // see `tiny`
    batchSize: 16,
    seqLength: 128,
    steps: 300,
    corpusMaxChars: 4_000_000,
    tokenizer: "trained",
    tokenizerVocabSize: 8192,
    logEvery: 10,
    checkpointEvery: 100,
  },
  // The regime map's (notebook 06) small pair where D learns in minutes on two cores: DeBERTa's relative
  // positions let it compare a word with its echo a phrase away, which the absolute-position `tiny`
  // pair did not learn within 1.5M tokens. G: D's width at half depth; a 4M-character cap ≈ 1M tokens.
  "deberta-mini": {
    ...BASE,
    ...DEBERTA_V3,
    preset: "deberta-mini",
    corpus: "synthetic:echo",
    vocabSize: 8192,
    maxPositions: 128,
    embeddingSize: 64,
    discriminator: { hiddenSize: 64, numLayers: 2, numHeads: 2, intermediateSize: 256 },
    generatorLayers: 1,
    positionBuckets: 64,
    maxRelativePositions: 128,
    learningRate: 1e-3,
    warmupSteps: 80,
    biasCorrection: true, // see `tiny`
    batchSize: 8,
    seqLength: 128,
    steps: 800,
    corpusMaxChars: 4_000_000,
    tokenizer: "trained",
    tokenizerVocabSize: 8192,
    logEvery: 10,
    checkpointEvery: 100,
  },
  // DeBERTaV3-xsmall: 12×384, 6 heads, FFN 1536, E = H, G 6 layers. The released model uses a 128k
  // SentencePiece vocabulary; we use bert-base-uncased (30,522) since it ships here. Run settings
  // (batch, lr, steps, seq 128, λ = 50) are electra-small's; DeBERTaV3's reference script trains xsmall
  // at seq 512, batch 64, lr 3e-4 and λ = 10 (rtd_task.py's default).
  "deberta-v3-xsmall": {
    ...BASE,
    ...DEBERTA_V3,
    preset: "deberta-v3-xsmall",
    embeddingSize: 384,
    discriminator: { hiddenSize: 384, numLayers: 12, numHeads: 6, intermediateSize: 1536 },
    generatorLayers: 6,
  },
};

/**
 * Generator sizes derived from the discriminator's: ELECTRA heads = max(1, H/64), FFN = 4H; DeBERTa
 * keeps D's heads and FFN size (the reference's rule).
 */
export function generatorSize(c: RunConfig): EncoderSize {
  if (c.sharing === "mlm") return { ...c.discriminator };
  const hiddenSize = Math.max(1, Math.round(c.discriminator.hiddenSize * c.generatorHiddenFraction));
  if (c.backbone === "deberta") {
    // microsoft/DeBERTa builds the generator from the discriminator's config with fewer layers (and
    // an optional hidden size): it keeps D's heads and FFN size.
    return {
      hiddenSize,
      numLayers: c.generatorLayers ?? c.discriminator.numLayers,
      numHeads: c.discriminator.numHeads,
      intermediateSize: c.discriminator.intermediateSize,
    };
  }
  return {
    hiddenSize,
    numLayers: c.generatorLayers ?? c.discriminator.numLayers,
    numHeads: Math.max(1, Math.floor(hiddenSize / 64)),
    intermediateSize: 4 * hiddenSize,
  };
}

/** Parses a CLI/JSON value for key `key` into the type of `example`. */
function coerce(key: string, value: unknown, example: unknown): unknown {
  if (typeof example === "number" || (example === null && key === "generatorLayers")) {
    if (value === null || value === "null") return null;
    // Decimal notation only: Number("") is 0 and Number("0x40") is 64, neither what was meant.
    const decimal = typeof value === "string" && /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(value);
    const n = typeof value === "number" ? value : decimal ? Number(value) : NaN;
    if (!Number.isFinite(n)) {
      throw new Error(`config key "${key}" needs a number, got ${JSON.stringify(value)}`);
    }
    return n;
  }
  if (typeof example === "boolean") {
    if (typeof value === "boolean") return value;
    if (value === "true") return true;
    if (value === "false") return false;
    throw new Error(`config key "${key}" needs true or false, got ${JSON.stringify(value)}`);
  }
  if (typeof example === "string") return String(value);
  return value;
}

/**
 * Applies overrides (`{"discriminator.hiddenSize": 64, learningRate: "1e-3"}` or nested objects) to a
 * config. Unknown keys throw an error listing the valid ones.
 */
export function applyOverrides(base: RunConfig, overrides: Record<string, unknown>): RunConfig {
  const c: RunConfig = structuredClone(base);
  const set = (path: string[], value: unknown) => {
    // deno-lint-ignore no-explicit-any
    let obj: any = c;
    for (let i = 0; i < path.length - 1; i++) {
      if (typeof obj[path[i]] !== "object" || obj[path[i]] === null) throw unknownKey(path.join("."));
      obj = obj[path[i]];
    }
    const last = path[path.length - 1];
    if (!(last in obj)) throw unknownKey(path.join("."));
    if (typeof obj[last] === "object" && obj[last] !== null && typeof value === "object" && value !== null) {
      for (const [k, v] of Object.entries(value)) set([...path, k], v);
    } else obj[last] = coerce(path.join("."), value, obj[last]);
  };
  for (const [k, v] of Object.entries(overrides)) {
    // Setting it would relabel the run without changing it: the preset is the starting point, not a knob.
    if (k === "preset") {
      throw new Error(
        `"preset" cannot be set: it names the preset a config starts from; use --config NAME ` +
          `(or "preset": "NAME" in a --config JSON file)`,
      );
    }
    set(k.split("."), v);
  }
  return c;
}

function unknownKey(key: string): Error {
  const keys = Object.entries(BASE).flatMap(([k, v]) =>
    typeof v === "object" && v !== null ? Object.keys(v).map((s) => `${k}.${s}`) : [k]
  );
  // A near miss (a typo, a missing "discriminator.") gets named first; the whole list follows.
  const nested = keys.find((k) => k.endsWith(`.${key}`));
  const near = nested ?? closest(key, keys);
  const hint = nested || distance(key, near) <= Math.max(2, Math.floor(key.length / 4))
    ? ` (did you mean "${near}"?)`
    : "";
  return new Error(`unknown config key "${key}"${hint}; valid keys: ${keys.join(", ")}`);
}

/** Looks up a preset by name (error lists the known ones). */
export function preset(name: string): RunConfig {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown config "${name}"; known configs: ${Object.keys(PRESETS).join(", ")}`);
  return structuredClone(p);
}

/**
 * The config `--config` names: a preset, or a `.json` file of keys over a preset's — its `"preset"` key's,
 * else `tiny`'s (errors name the file).
 */
export function configFrom(name: string): RunConfig {
  if (!name.endsWith(".json")) return preset(name);
  try {
    const overrides = JSON.parse(Deno.readTextFileSync(name));
    if (typeof overrides !== "object" || overrides === null || Array.isArray(overrides)) {
      throw new Error("not a JSON object of config keys");
    }
    const { preset: base = "tiny", ...rest } = overrides as Record<string, unknown>;
    if (typeof base !== "string") {
      throw new Error(`"preset" must be a preset's name, not ${JSON.stringify(base)}`);
    }
    return applyOverrides(preset(base), rest);
  } catch (e) {
    throw new Error(`--config ${name}: ${(e as Error).message}`);
  }
}

/** Checks a config for values that cannot train; throws naming the first problem. */
export function validateConfig(c: RunConfig): RunConfig {
  // A config built by spreading a preset (`{ ...preset("tiny"), stepz: 20 }`) or read from JSON is not
  // type-checked when it runs: a misspelt key would silently keep the default, and a value of another type
  // be read otherwise (`joint: "false"` is true, a non-empty string; `dropout: "0.1"` stays a string).
  const checkType = (key: string, base: unknown, v: unknown) => {
    if (v === undefined || (base === null && v === null)) return; // a key run folders from before lack
    const want = base === null ? "number" : typeof base; // generatorLayers: a number, or null for the default
    const got = typeof v;
    if (got !== want) throw new Error(`config ${key} must be a ${want}, got ${JSON.stringify(v)} (a ${got})`);
  };
  for (const [k, v] of Object.entries(c)) {
    if (!(k in BASE)) throw unknownKey(k);
    const base = BASE[k as keyof RunConfig];
    if (typeof base === "object" && base !== null) {
      if (typeof v !== "object" || v === null) {
        throw new Error(`config ${k} must be an object, got ${JSON.stringify(v)}`);
      }
      for (const [sub, sv] of Object.entries(v)) {
        if (!(sub in base)) throw unknownKey(`${k}.${sub}`);
        checkType(`${k}.${sub}`, (base as unknown as Record<string, unknown>)[sub], sv);
      }
    } else checkType(k, base, v);
  }
  if (c.backbone !== "electra" && c.backbone !== "deberta") {
    throw new Error(`unknown backbone "${c.backbone}"; valid backbones: electra, deberta`);
  }
  if (c.backbone === "deberta") validateRelativePositions(c);
  if (!SHARING_MODES.includes(c.sharing)) {
    throw new Error(`unknown sharing mode "${c.sharing}"; valid modes: ${SHARING_MODES.join(", ")}`);
  }
  const ints: [string, number][] = [
    ["vocabSize", c.vocabSize],
    ["maxPositions", c.maxPositions],
    ["embeddingSize", c.embeddingSize],
    ["discriminator.hiddenSize", c.discriminator.hiddenSize],
    ["discriminator.numLayers", c.discriminator.numLayers],
    ["discriminator.numHeads", c.discriminator.numHeads],
    ["discriminator.intermediateSize", c.discriminator.intermediateSize],
    ["batchSize", c.batchSize],
    ["seqLength", c.seqLength],
    ["steps", c.steps],
  ];
  for (const [k, v] of ints) {
    if (!Number.isInteger(v) || v <= 0) {
      throw new Error(`config ${k} must be a positive integer, got ${JSON.stringify(v)}`);
    }
  }
  if (c.seqLength > c.maxPositions) {
    throw new Error(
      `sequence length ${c.seqLength} is longer than the position table (maxPositions ${c.maxPositions})`,
    );
  }
  if (c.seqLength < 4) throw new Error(`seqLength ${c.seqLength} is too short for [CLS] A [SEP] B [SEP]`);
  // A bad synthetic name fails here, before any work (alone or as a part of a combination).
  for (const part of corpusParts(c.corpus) ?? [c.corpus]) {
    if (isSyntheticName(part)) parseSyntheticName(part);
  }
  for (const m of [c.discriminator, generatorSize(c)]) {
    if (m.hiddenSize % m.numHeads !== 0) {
      throw new Error(`hidden size ${m.hiddenSize} is not divisible by ${m.numHeads} attention heads`);
    }
  }
  const probs: [string, number][] = [
    ["maskSelectProb", c.maskSelectProb],
    ["maskTokenProb", c.maskTokenProb],
    ["maskRandomProb", c.maskRandomProb],
    ["dropout", c.dropout],
  ];
  for (const [k, v] of probs) {
    if (!(v >= 0 && v <= 1)) throw new Error(`config ${k} must be in [0, 1], got ${v}`);
  }
  if (c.maskTokenProb + c.maskRandomProb > 1 + 1e-9) {
    throw new Error(`maskTokenProb + maskRandomProb must not exceed 1`);
  }
  c.microBatchSize ??= 0; // run folders from before micro-batching
  if (!(Number.isInteger(c.microBatchSize) && c.microBatchSize >= 0)) {
    throw new Error(
      `config microBatchSize must be a non-negative integer (0 = automatic), got ${c.microBatchSize}`,
    );
  }
  // Run folders from before these keys existed: today's defaults (the papers' decoupled order).
  c.resampleAfterGeneratorUpdate ??= false;
  c.maxPredictionsPerSeq ??= 0;
  if (!(Number.isInteger(c.maxPredictionsPerSeq) && c.maxPredictionsPerSeq >= 0)) {
    throw new Error(
      `config maxPredictionsPerSeq must be a non-negative integer, got ${c.maxPredictionsPerSeq}`,
    );
  }
  c.probeEvery ??= 0; // run folders from before the probes existed
  if (!(Number.isInteger(c.probeEvery) && c.probeEvery >= 0)) {
    throw new Error(`config probeEvery must be a non-negative integer, got ${c.probeEvery}`);
  }
  c.heldOutSequences ??= 0; // run folders from before held-out sets
  validateTrainingNumbers(c);
  if (!(c.samplingTemperature > 0)) throw new Error(`samplingTemperature must be > 0`);
  if (!(c.generatorHiddenFraction > 0 && c.generatorHiddenFraction <= 1)) {
    throw new Error(`generatorHiddenFraction must be in (0, 1], got ${c.generatorHiddenFraction}`);
  }
  if (c.joint && (c.sharing === "es" || c.sharing === "mlm")) {
    // ES is always joint, MLM has one loss; the switch only matters for NES/GDES.
    c.joint = c.sharing === "es";
  }
  return c;
}

/** Optimiser, schedule, data and bookkeeping numbers: each must be one a run can use (a sweep sets any). */
function validateTrainingNumbers(c: RunConfig): void {
  const check = (key: string, v: unknown, ok: (n: number) => boolean, what: string) => {
    if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) {
      throw new Error(`config ${key} must be ${what}, got ${JSON.stringify(v)}`);
    }
  };
  const int = Number.isInteger;
  check("learningRate", c.learningRate, (n) => n > 0, "a positive number");
  check("warmupSteps", c.warmupSteps, (n) => int(n) && n >= 0, "a non-negative integer");
  check("rtdWeight", c.rtdWeight, (n) => n >= 0, "a non-negative number");
  check("beta1", c.beta1, (n) => n >= 0 && n < 1, "in [0, 1)");
  check("beta2", c.beta2, (n) => n >= 0 && n < 1, "in [0, 1)");
  check("epsilon", c.epsilon, (n) => n > 0, "a positive number");
  check("weightDecay", c.weightDecay, (n) => n >= 0, "a non-negative number");
  check("clipNorm", c.clipNorm, (n) => n >= 0, "a non-negative number (0 = off)");
  check("initStd", c.initStd, (n) => n > 0, "a positive number");
  check("layerNormEps", c.layerNormEps, (n) => n > 0, "a positive number");
  check("seed", c.seed, (n) => int(n) && n >= 0, "a non-negative integer");
  check("logEvery", c.logEvery, (n) => int(n) && n >= 1, "a positive integer");
  check(
    "checkpointEvery",
    c.checkpointEvery,
    (n) => int(n) && n >= 0,
    "a non-negative integer (0 = at the end)",
  );
  check("corpusMaxChars", c.corpusMaxChars, (n) => int(n) && n >= 0, "a non-negative integer (0 = all)");
  check("heldOutSequences", c.heldOutSequences, (n) => int(n) && n >= 0, "a non-negative integer");
  if (c.tokenizer === "trained") {
    check("tokenizerVocabSize", c.tokenizerVocabSize, (n) => int(n) && n > 5, "an integer > 5");
  }
  if (c.generatorLayers !== null) {
    check("generatorLayers", c.generatorLayers, (n) => int(n) && n >= 1, "a positive integer or null");
  }
  if (c.backbone === "electra") {
    check("typeVocabSize", c.typeVocabSize, (n) => int(n) && n >= 1, "a positive integer");
  }
}

/** DeBERTa's relative-position settings must give a well-defined log-bucket function. */
function validateRelativePositions(c: RunConfig): void {
  const { positionBuckets: b, maxRelativePositions: m } = c;
  if (!Number.isInteger(b) || b < 0) {
    throw new Error(`config positionBuckets must be an integer >= 0, got ${b}`);
  }
  if (!Number.isInteger(m) || m <= 0) {
    throw new Error(`config maxRelativePositions must be a positive integer, got ${m}`);
  }
  // log((max − 1)/mid) must be positive: the buckets beyond ±mid need room to spread out.
  if (b > 0 && (b < 4 || m - 1 <= Math.floor(b / 2))) {
    throw new Error(
      `config positionBuckets ${b} needs 4 <= positionBuckets and maxRelativePositions > positionBuckets/2 + 1 ` +
        `(got maxRelativePositions ${m})`,
    );
  }
  if (!Number.isInteger(c.typeVocabSize) || c.typeVocabSize < 0) {
    throw new Error(`config typeVocabSize must be an integer >= 0, got ${c.typeVocabSize}`);
  }
}

/** True when the run trains G and D in one joint step (ES always; NES/GDES with --joint). */
export function isJoint(c: RunConfig): boolean {
  return c.sharing === "es" || (c.joint && (c.sharing === "nes" || c.sharing === "gdes"));
}

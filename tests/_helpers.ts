/**
 * Shared fixtures for the test suites: a micro config that trains in milliseconds, a fake
 * vocabulary, and random batches.
 *
 * @module
 */

import { applyOverrides, preset, type RunConfig, type SharingMode, validateConfig } from "../lib/config.ts";
import { Rng } from "../lib/rng.ts";
import * as tf from "../lib/tf.ts";
import type { RtdModel } from "../lib/model/mod.ts";
import {
  batchTensors,
  crossEntropy,
  type PretrainVocab,
  sigmoidBce,
  type TokenBatch,
} from "../lib/train/pretrain.ts";
import { type Example, stratifiedSplit, type TaskData } from "../lib/tasks/mod.ts";
import { WordPieceTokenizer } from "../lib/text/tokenizer.ts";

/** Ids 0..4 are [PAD] [UNK] [CLS] [SEP] [MASK], as in rtdlab's trained vocabularies. */
export const VOCAB: PretrainVocab = { padId: 0, maskId: 4, vocabSize: 64, isSpecial: (id) => id < 5 };

/** A 64-token WordPiece tokenizer matching {@link VOCAB}: the five specials, then the words w0 … w58. */
export const MICRO_TOKENIZER = WordPieceTokenizer.fromVocab([
  "[PAD]",
  "[UNK]",
  "[CLS]",
  "[SEP]",
  "[MASK]",
  ...Array.from({ length: 59 }, (_, i) => `w${i}`),
]);

/** The micro model's sizes — D 1 × 32 (2 heads, FFN 64), embeddings 16, G at half D's width — over `tiny`. */
export const MICRO_SIZES = {
  embeddingSize: 16,
  "discriminator.hiddenSize": 32,
  "discriminator.numLayers": 1,
  "discriminator.numHeads": 2,
  "discriminator.intermediateSize": 64,
  generatorHiddenFraction: 0.5,
} as const;

/** A micro ELECTRA (1 layer, hidden 32, vocab 64, seq 16) for behaviour tests. */
export function microConfig(sharing: SharingMode, overrides: Record<string, unknown> = {}): RunConfig {
  return validateConfig(applyOverrides(preset("tiny"), {
    sharing,
    vocabSize: 64,
    maxPositions: 16,
    seqLength: 16,
    ...MICRO_SIZES,
    batchSize: 2,
    warmupSteps: 0,
    steps: 50,
    learningRate: 1e-2,
    ...overrides,
  }));
}

/** A batch of `batch` sequences `[CLS] x… [SEP] [PAD]…` with `pad` trailing pads each. */
export function randomBatch(seed: number, batch = 2, length = 16, pad = 3): TokenBatch {
  const rng = new Rng(seed);
  const inputIds = new Int32Array(batch * length);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < length; t++) {
      const i = b * length + t;
      if (t === 0) inputIds[i] = 2;
      else if (t === length - pad - 1) inputIds[i] = 3;
      else if (t >= length - pad) inputIds[i] = 0;
      else inputIds[i] = 5 + rng.int(VOCAB.vocabSize - 5);
    }
  }
  return { inputIds, tokenTypeIds: new Int32Array(batch * length), batch, length };
}

/** Max |a − b| over two equal-length arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A fresh temporary folder (removed by the caller or left to the OS). */
export function tempDir(prefix = "rtdlab-test-"): string {
  return Deno.makeTempDirSync({ prefix });
}

/**
 * A two-class task a classifier learns in seconds: class 0 sentences use w0-w19, class 1 sentences
 * w20-w39 (filler w40-w58 in both); 240 examples split with seed 0.
 */
export function syntheticSeparableTask(): TaskData {
  // Class 0 sentences use w0-w19, class 1 sentences w20-w39 (filler w40-w58 in both).
  const rng = new Rng(11);
  const examples: Example[] = Array.from({ length: 240 }, (_, i) => {
    const label = i % 2;
    const words = Array.from(
      { length: 4 + rng.int(6) },
      () => rng.next() < 0.5 ? `w${label * 20 + rng.int(20)}` : `w${40 + rng.int(19)}`,
    );
    return { id: String(i), text: words.join(" "), label };
  });
  const [train, dev, test] = stratifiedSplit(examples, (e) => e.label, 0);
  return {
    name: "synthetic",
    description: "",
    labels: ["a", "b"],
    pair: false,
    metric: "accuracy",
    train,
    dev,
    test,
    split: { kind: "seeded" },
  };
}

/** A micro DeBERTa (D 2×32, G 1×32, vocab 64, seq 16; 8 buckets reaching ±15, so the log path is used). */
export function debertaMicroConfig(sharing: SharingMode, overrides: Record<string, unknown> = {}): RunConfig {
  return validateConfig(applyOverrides(preset("deberta-tiny"), {
    sharing,
    vocabSize: 64,
    maxPositions: 16,
    seqLength: 16,
    embeddingSize: 32,
    "discriminator.hiddenSize": 32,
    "discriminator.numLayers": 2,
    "discriminator.numHeads": 2,
    "discriminator.intermediateSize": 64,
    generatorLayers: 1,
    positionBuckets: 8,
    maxRelativePositions: 16,
    batchSize: 2,
    warmupSteps: 0,
    steps: 50,
    learningRate: 1e-2,
    ...overrides,
  }));
}

/** The tiny grammar's words: a sentence is a subject, a verb and an object. */
export const GRAMMAR = {
  subj: ["the cat", "a dog", "the old man", "my sister", "the bird", "a child"],
  verb: ["sat on", "looked at", "ran to", "jumped over", "slept near", "walked past"],
  obj: ["the mat", "a red house", "the green tree", "the river", "a small box", "the garden"],
};

/**
 * Writes a small corpus with learnable structure into `dir`: `documents` files of `sentences` sentences
 * from a tiny grammar (subject, verb, object), drawn from a fixed seed.
 */
export function writeGrammarCorpus(dir: string, documents: number, sentences: number): void {
  const rng = new Rng(42);
  const pick = <T>(xs: T[]) => xs[rng.int(xs.length)];
  const { subj, verb, obj } = GRAMMAR;
  for (let d = 0; d < documents; d++) {
    const text = Array.from({ length: sentences }, () => `${pick(subj)} ${pick(verb)} ${pick(obj)}.`);
    Deno.writeTextFileSync(`${dir}/doc${d}.txt`, text.join(" "));
  }
}

/**
 * The generator's and the discriminator's losses on one fixed batch of 4 × 16 ids as one scalar, MLM +
 * 50·RTD, so that shared embeddings get gradients from both. `loss` runs the forward passes (the same
 * dropout masks every call); `dispose` frees the batch's tensors.
 */
export function jointRtdLoss(model: RtdModel): { loss: () => tf.Scalar; dispose: () => void } {
  const batch = randomBatch(5, 4, 16, 2);
  const inputs = batchTensors(batch.inputIds, batch, VOCAB.padId);
  const selected = tf.tensor1d([1, 3, 17, 20, 40, 55], "int32");
  const targets = tf.tensor1d([7, 8, 9, 10, 11, 12], "int32");
  const labels = tf.tensor1d(Array.from({ length: 64 }, (_, i) => i % 5 === 0 ? 1 : 0), "float32");
  const weights = tf.reshape(inputs.attentionMask, [-1]) as tf.Tensor1D;
  const loss = () => {
    const rng = new Rng(3);
    const g = model.encode("generator", inputs, { training: true, rng });
    const mlm = crossEntropy(model.generatorLogits(g, selected, { training: true, rng }), targets);
    const d = model.encode("discriminator", inputs, { training: true, rng });
    const rtd = sigmoidBce(model.discriminatorLogits(d, { training: true, rng }), labels, weights);
    return tf.add(mlm, tf.mul(rtd, 50)) as tf.Scalar;
  };
  const tensors = [
    inputs.inputIds,
    inputs.tokenTypeIds,
    inputs.attentionMask,
    selected,
    targets,
    labels,
    weights,
  ];
  return { loss, dispose: () => tf.dispose(tensors) };
}

/**
 * Fine-tuning loop: AdamW with linear warmup and linear decay (lib/train/optimizer.ts), optional
 * layer-wise learning-rate decay (ELECTRA: lr·decay^(numLayers + 1 − depth)), global-norm clipping,
 * evaluation on dev after every epoch (or every `evalEvery` steps), early stopping, and the best dev
 * checkpoint restored before the test evaluation.
 *
 * Every random choice (head init, example order, dropout) comes from `seed`.
 *
 * @module
 */

import * as tf from "../tf.ts";
import { AdamW, globalNorm, learningRate } from "../train/optimizer.ts";
import { variableGrads } from "../train/gradients.ts";
import { crossEntropy } from "../train/pretrain.ts";
import { Rng } from "../rng.ts";
import { yieldToEventLoop } from "../util/signals.ts";
import type { HostTensor } from "../io/safetensors.ts";
import type { WordPieceTokenizer } from "../text/tokenizer.ts";
import type { MetricName, TaskData } from "../tasks/types.ts";
import type { SequenceClassifier } from "./classifier.ts";
import { disposeBatch, encodeExamples, type Feature, makeBatch } from "./features.ts";
import { type ClassificationMetrics, classificationMetrics } from "./metrics.ts";

/** Fine-tuning hyper-parameters. */
export interface FinetuneHyperparams {
  /** Passes over the training set (at most; early stopping may end sooner). */
  epochs: number;
  /** Examples per step. */
  batchSize: number;
  /** Peak learning rate. */
  learningRate: number;
  /** Fraction of the steps spent warming up linearly. */
  warmupFraction: number;
  /** Decoupled weight decay (not on LayerNorm and biases). */
  weightDecay: number;
  /** Layer-wise LR decay factor (1 = off; ELECTRA uses 0.8 for Small). */
  layerDecay: number;
  /** Tokens per sequence, [CLS]/[SEP] included. */
  maxLength: number;
  /** Global gradient-norm clip (0 = off). */
  clipNorm: number;
  /** Stop after this many evaluations without a better dev score (0 = never stop early). */
  patience: number;
  /** Evaluate on dev every this many steps (0 = at the end of each epoch). */
  evalEvery: number;
  /** Examples per evaluation batch. */
  evalBatchSize: number;
}

/**
 * Defaults for the workbench's tiny models, chosen by trying (sentiment-yelp on a 400-step `tiny` MLM run:
 * lr 1e-4 / 3e-4 / 1e-3 gave test accuracy 0.56 / 0.55 / 0.65). ELECTRA-Small used lr 3e-4, 3 epochs.
 */
export const DEFAULT_HYPERPARAMS: FinetuneHyperparams = {
  epochs: 3,
  batchSize: 32,
  learningRate: 1e-3,
  warmupFraction: 0.1,
  weightDecay: 0.01,
  layerDecay: 1,
  maxLength: 128,
  clipNorm: 1,
  patience: 2,
  evalEvery: 0,
  evalBatchSize: 64,
};

/** One dev evaluation during training. */
export interface EvalRecord {
  /** Optimiser steps taken when evaluated. */
  step: number;
  /** Epoch (1-based) the step is in. */
  epoch: number;
  /** Mean training loss since the previous evaluation. */
  train_loss: number;
  /** Dev metrics at this step. */
  dev: ClassificationMetrics;
  /** Learning rate of the last step. */
  lr: number;
  /** Seconds since the fine-tune started. */
  elapsed_s: number;
}

/** A prediction for one example. */
export interface Prediction {
  /** Index of the example in its split. */
  index: number;
  /** Gold class index. */
  label: number;
  /** Predicted class index (argmax of probs). */
  pred: number;
  /** Class probabilities. */
  probs: number[];
}

/** Progress of a fine-tuning run. */
export interface FinetuneProgress {
  /** Optimiser steps taken. */
  step: number;
  /** Steps the schedule plans. */
  totalSteps: number;
  /** Current epoch (1-based). */
  epoch: number;
  /** Training loss of the last step. */
  loss: number;
  /** Best dev score so far (null before the first evaluation). */
  bestDev: number | null;
  /** Training throughput. */
  examplesPerSecond: number;
  /** Estimated seconds left. */
  etaSeconds: number;
}

/** Options of {@link finetune}. */
export interface FinetuneOptions {
  /** Seed of head init, example order and dropout. */
  seed: number;
  /** Hyper-parameters (defaults: {@link DEFAULT_HYPERPARAMS}). */
  hyper?: Partial<FinetuneHyperparams>;
  /** Called after every step. */
  onProgress?: (p: FinetuneProgress) => void;
  /** Called after every dev evaluation. */
  onEval?: (r: EvalRecord) => void;
  /** Aborting stops training at the next step; the best dev weights are still restored and tested. */
  signal?: AbortSignal;
}

/** What {@link finetune} returns. */
export interface FinetuneResult {
  /** The hyper-parameters used (defaults filled in). */
  hyper: FinetuneHyperparams;
  /** Metric that chose the best evaluation. */
  metric: MetricName;
  /** The evaluation whose weights were kept. */
  best: EvalRecord;
  /** All dev evaluations. */
  history: EvalRecord[];
  /** Test metrics of the kept weights. */
  test: ClassificationMetrics;
  /** Dev metrics of the kept weights (= best.dev). */
  dev: ClassificationMetrics;
  /** Dev predictions of the kept weights. */
  devPredictions: Prediction[];
  /** Test predictions of the kept weights. */
  testPredictions: Prediction[];
  /** Optimiser steps taken. */
  steps: number;
  /** True when patience ran out before the last epoch. */
  stoppedEarly: boolean;
  /** True when `signal` stopped training: the kept weights are the best of an unfinished run. */
  interrupted: boolean;
  /** Training examples truncated to maxLength. */
  truncated: number;
  /** Wall-clock seconds spent training and evaluating. */
  seconds: { train: number; eval: number };
}

/** Class probabilities and predictions of `clf` on `features` (no dropout, no gradients). */
export async function predict(
  clf: SequenceClassifier,
  features: readonly Feature[],
  padId: number,
  maxLength: number,
  batchSize = 64,
): Promise<Prediction[]> {
  // Sorted by length, so each batch pads little.
  const order = features.map((_, i) => i).sort((a, b) => features[a].ids.length - features[b].ids.length);
  const out: Prediction[] = new Array(features.length);
  const c = clf.numLabels;
  for (let s = 0; s < order.length; s += batchSize) {
    const idx = order.slice(s, s + batchSize);
    const batch = makeBatch(features, idx, padId, maxLength);
    const probsT = tf.tidy(() => tf.softmax(clf.logits(batch.inputs, { training: false })));
    const probs = (await probsT.data()) as Float32Array;
    tf.dispose(probsT);
    disposeBatch(batch);
    idx.forEach((fi, r) => {
      const row = Array.from(probs.subarray(r * c, (r + 1) * c));
      let best = 0;
      for (let k = 1; k < c; k++) if (row[k] > row[best]) best = k;
      out[fi] = { index: fi, label: features[fi].label, pred: best, probs: row };
    });
  }
  return out;
}

/** Metrics of a prediction list. */
export function scorePredictions(preds: readonly Prediction[], numLabels: number): ClassificationMetrics {
  return classificationMetrics(preds.map((p) => p.label), preds.map((p) => p.pred), numLabels);
}

/** Fine-tunes `clf` on `task`, early-stopping on dev, and evaluates the best weights on test. */
export async function finetune(
  clf: SequenceClassifier,
  tokenizer: WordPieceTokenizer,
  task: TaskData,
  opts: FinetuneOptions,
): Promise<FinetuneResult> {
  const hp: FinetuneHyperparams = { ...DEFAULT_HYPERPARAMS, ...opts.hyper };
  validateHyperparams(hp, clf.encoder.config.maxPositions);
  if (task.labels.length !== clf.numLabels) {
    throw new Error(`task ${task.name} has ${task.labels.length} classes, the classifier ${clf.numLabels}`);
  }
  if (task.train.length === 0 || task.dev.length === 0) {
    throw new Error(`task ${task.name}: empty train or dev split`);
  }
  const padId = tokenizer.specialIds.pad;
  const train = encodeExamples(tokenizer, task.train, hp.maxLength);
  const dev = encodeExamples(tokenizer, task.dev, hp.maxLength);
  const test = encodeExamples(tokenizer, task.test, hp.maxLength);
  const truncated = train.filter((f) => f.ids.length >= hp.maxLength).length;

  const rng = new Rng(opts.seed ^ 0x7a1e);
  const stepsPerEpoch = Math.ceil(train.length / hp.batchSize);
  const totalSteps = stepsPerEpoch * hp.epochs;
  const warmup = Math.round(totalSteps * hp.warmupFraction);
  const optimizers = makeOptimizers(clf, hp);
  const names = clf.params.names();
  const vars = names.map((n) => clf.params.get(n));

  const history: EvalRecord[] = [];
  let best: EvalRecord | null = null;
  let bestWeights: Map<string, HostTensor> | null = null;
  let sinceBest = 0;
  let step = 0, lossSum = 0, lossCount = 0;
  let stoppedEarly = false;
  let interrupted = false;
  const t0 = performance.now();
  let evalSeconds = 0;

  const evaluate = async (epoch: number) => {
    const e0 = performance.now();
    const preds = await predict(clf, dev, padId, hp.maxLength, hp.evalBatchSize);
    evalSeconds += (performance.now() - e0) / 1000;
    const rec: EvalRecord = {
      step,
      epoch,
      train_loss: lossCount ? lossSum / lossCount : NaN,
      dev: scorePredictions(preds, clf.numLabels),
      lr: learningRate(Math.max(0, step - 1), hp.learningRate, warmup, totalSteps),
      elapsed_s: Math.round((performance.now() - t0) / 100) / 10,
    };
    lossSum = lossCount = 0;
    history.push(rec);
    opts.onEval?.(rec);
    if (improvesOn(rec, best, task.metric)) {
      best = rec;
      bestWeights = await clf.params.toHost();
      sinceBest = 0;
    } else sinceBest++;
    return hp.patience > 0 && sinceBest >= hp.patience;
  };

  let epochReached = 1; // the epoch an interruption happened in
  try {
    outer: for (let epoch = 1; epoch <= hp.epochs; epoch++) {
      epochReached = epoch;
      const order = rng.shuffle(train.map((_, i) => i));
      for (let s = 0; s < order.length; s += hp.batchSize) {
        await yieldToEventLoop(); // lets Ctrl-C reach opts.signal between steps
        if (opts.signal?.aborted) {
          interrupted = true;
          break outer;
        }
        const batch = makeBatch(train, order.slice(s, s + hp.batchSize), padId, hp.maxLength);
        const lr = learningRate(step, hp.learningRate, warmup, totalSteps);
        const dropoutRng = new Rng(rng.nextUint32());
        const { value, grads } = variableGrads(
          () => crossEntropy(clf.logits(batch.inputs, { training: true, rng: dropoutRng }), batch.labels),
          vars,
        );
        const byName = new Map<string, tf.Tensor>();
        names.forEach((n, i) => {
          const g = grads[vars[i].name];
          if (g) byName.set(n, g);
        });
        applyUpdate(optimizers, byName, lr, hp.clipNorm);
        const loss = (await value.data())[0];
        tf.dispose([value, ...Object.values(grads)]);
        disposeBatch(batch);
        if (!Number.isFinite(loss)) {
          throw new Error(`fine-tuning diverged at step ${step + 1} (loss ${loss}); try a lower --lr`);
        }
        lossSum += loss;
        lossCount++;
        step++;
        const elapsed = (performance.now() - t0) / 1000;
        opts.onProgress?.({
          step,
          totalSteps,
          epoch,
          loss,
          bestDev: best ? (best as EvalRecord).dev[task.metric] : null,
          examplesPerSecond: (step * hp.batchSize) / elapsed,
          etaSeconds: (elapsed / step) * (totalSteps - step),
        });
        if (hp.evalEvery > 0 && step % hp.evalEvery === 0 && step < totalSteps) {
          if (await evaluate(epoch)) {
            stoppedEarly = true;
            break outer;
          }
        }
      }
      if (hp.evalEvery === 0 || step === totalSteps) {
        if (await evaluate(epoch)) {
          stoppedEarly = epoch < hp.epochs;
          break;
        }
      }
    }
    if (!best) await evaluate(epochReached); // aborted before the first evaluation
    clf.params.assignFrom(bestWeights!, "best dev weights");
    const e0 = performance.now();
    const devPredictions = await predict(clf, dev, padId, hp.maxLength, hp.evalBatchSize);
    const testPredictions = test.length
      ? await predict(clf, test, padId, hp.maxLength, hp.evalBatchSize)
      : [];
    evalSeconds += (performance.now() - e0) / 1000;
    const b = best! as EvalRecord;
    return {
      hyper: hp,
      metric: task.metric,
      best: b,
      history,
      dev: scorePredictions(devPredictions, clf.numLabels),
      test: scorePredictions(testPredictions, clf.numLabels),
      devPredictions,
      testPredictions,
      steps: step,
      stoppedEarly,
      interrupted,
      truncated,
      seconds: {
        train: Math.round(((performance.now() - t0) / 1000 - evalSeconds) * 10) / 10,
        eval: Math.round(evalSeconds * 10) / 10,
      },
    };
  } finally {
    for (const g of optimizers) g.opt.dispose();
  }
}

/** One optimiser per learning-rate group (one group unless layer-wise decay is on). */
interface LrGroup {
  opt: AdamW;
  scale: number;
}

function makeOptimizers(clf: SequenceClassifier, hp: FinetuneHyperparams): LrGroup[] {
  const top = clf.encoder.config.discriminator.numLayers + 1;
  const groups = new Map<number, string[]>();
  for (const n of clf.params.names()) {
    const scale = hp.layerDecay === 1 ? 1 : hp.layerDecay ** (top - clf.depth(n));
    let list = groups.get(scale);
    if (!list) groups.set(scale, list = []);
    list.push(n);
  }
  // Clipping happens once over all gradients (applyUpdate), so each group's own clip is off.
  const cfg = {
    beta1: 0.9,
    beta2: 0.999,
    epsilon: 1e-6,
    weightDecay: hp.weightDecay,
    clipNorm: 0,
    biasCorrection: true,
  };
  return [...groups].map(([scale, names]) => ({ opt: new AdamW(clf.params, names, cfg), scale }));
}

/** Clips all gradients to one global norm, then lets each group's AdamW step at lr·scale. */
function applyUpdate(groups: LrGroup[], grads: Map<string, tf.Tensor>, lr: number, clipNorm: number): void {
  let scaled = grads;
  const extra: tf.Tensor[] = [];
  if (clipNorm > 0) {
    const factor = tf.tidy(() => {
      const norm = globalNorm([...grads.values()]);
      return tf.div(clipNorm, tf.maximum(norm, clipNorm));
    });
    scaled = new Map();
    for (const [n, g] of grads) {
      const s = tf.mul(g, factor);
      extra.push(s);
      scaled.set(n, s);
    }
    extra.push(factor);
  }
  for (const g of groups) tf.dispose(g.opt.apply(scaled, lr * g.scale));
  tf.dispose(extra);
}

/**
 * Whether a dev evaluation replaces the kept one: strictly better on the task's selection metric (a tie keeps
 * the earlier weights, trained for less); the first evaluation always does.
 */
export function improvesOn(rec: EvalRecord, best: EvalRecord | null, metric: MetricName): boolean {
  return best === null || rec.dev[metric] > best.dev[metric];
}

/**
 * Checks fine-tuning hyper-parameters (each message names the `deno task finetune` flag too); `maxPositions`
 * is the encoder's position table, when known.
 */
export function validateHyperparams(hp: FinetuneHyperparams, maxPositions = Infinity): void {
  const flags: Partial<Record<keyof FinetuneHyperparams, string>> = {
    epochs: "--epochs",
    batchSize: "--batch",
    maxLength: "--max-length",
  };
  const posInt: (keyof FinetuneHyperparams)[] = ["epochs", "batchSize", "maxLength", "evalBatchSize"];
  for (const k of posInt) {
    if (!(Number.isInteger(hp[k]) && hp[k] > 0)) {
      throw new Error(
        `fine-tuning ${k}${flags[k] ? ` (${flags[k]})` : ""} must be a positive integer, got ${hp[k]}`,
      );
    }
  }
  if (hp.maxLength > maxPositions) {
    throw new Error(`max length ${hp.maxLength} is longer than the model's position table (${maxPositions})`);
  }
  if (!(hp.learningRate > 0)) throw new Error(`learning rate (--lr) must be > 0, got ${hp.learningRate}`);
  if (!(hp.layerDecay > 0 && hp.layerDecay <= 1)) {
    throw new Error(`layer decay (--layer-decay) must be in (0, 1], got ${hp.layerDecay}`);
  }
  if (!(hp.weightDecay >= 0)) {
    throw new Error(`weight decay (--weight-decay) must be >= 0, got ${hp.weightDecay}`);
  }
  if (!(hp.warmupFraction >= 0 && hp.warmupFraction < 1)) {
    throw new Error(`warmup fraction (--warmup) must be in [0, 1), got ${hp.warmupFraction}`);
  }
}

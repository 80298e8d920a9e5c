/**
 * One pre-training step of replaced token detection, for every sharing mode (README, *The science, as implemented*).
 *
 * A step is two phases, each a gradient computation over its own variables:
 *
 * 1. **Generator phase**: mask, run G, L_MLM = mean cross-entropy at the selected positions,
 *    ∇L_MLM over G's variables (including the table(s) G reads).
 * 2. **Discriminator phase**: sample x̂ ~ softmax(logits/T) on the host, build D's input and labels,
 *    λ·L_RTD = λ · mean sigmoid BCE over non-padding tokens, ∇(λ·L_RTD) over D's variables.
 *
 * **Joint** (ES; NES/GDES with `joint`): the two gradients are added where the variables coincide (the
 * shared table under ES) and one optimiser applies ∇(L_MLM + λ·L_RTD) — the same update as
 * differentiating the summed loss, since no gradient flows through the sample. **Decoupled**
 * (NES/GDES), in the papers' order: G's forward pass masks, computes L_MLM and samples D's corruption;
 * G's optimiser applies ∇L_MLM; then D's step runs on *that* corruption and reads the updated E_G
 * (GDES: sg(E_G) + E_Δ), and D's optimiser applies ∇(λ·L_RTD). One generator forward per step.
 * (`resampleAfterGeneratorUpdate` restores rtdlab's older order: the updated G runs again and
 * re-samples.) Keeping the phases apart also hands the tug-of-war probes both gradients.
 *
 * Every random draw of step s comes from generators seeded by (seed, s), so a resumed run draws the
 * same numbers as an uninterrupted one.
 *
 * @module
 */

import * as tf from "../tf.ts";
import { generatorSize, isJoint, type RunConfig, validateConfig } from "../config.ts";
import { createModel, type EncoderInputs, type RtdModel } from "../model/mod.ts";
import { deriveSeed, Rng } from "../rng.ts";
import { maskBatch, type MaskedBatch, type MaskingVocab } from "../text/masking.ts";
import { AdamW, learningRate } from "./optimizer.ts";
import { variableGrads } from "./gradients.ts";
import {
  corrupt,
  type Corruption,
  sampleFromLogits,
  sampleOnDevice,
  sampleOnDeviceTensor,
} from "./sampling.ts";
import { CORRUPT } from "../backend/sample_rows.ts";
import { FUSED, fusedKernelsActive } from "../backend/fused_kernels.ts";
import { heapView } from "../backend/host_read.ts";
import { capabilities } from "../backend/capabilities.ts";
import { rocAuc, rtdSkill } from "./rtd_metrics.ts";

/** A batch of packed sequences: ids and token types, [batch, length] flat; padding is `padId`. */
export interface TokenBatch {
  /** Token ids, [batch × length] row-major. */
  inputIds: Int32Array;
  /** Token type ids, same layout. */
  tokenTypeIds: Int32Array;
  /** Sequences. */
  batch: number;
  /** Tokens per sequence (padded). */
  length: number;
}

/** What the trainer needs to know about the vocabulary. */
export interface PretrainVocab extends MaskingVocab {
  /** Id of [PAD]: positions holding it are never selected nor scored. */
  padId: number;
}

/** Numbers from one step (losses unscaled; `lossRtd` etc. are null for the MLM baseline). */
export interface StepMetrics {
  /** Optimiser steps taken (this step included). */
  step: number;
  /** G's MLM cross-entropy at the selected positions (nats). */
  lossMlm: number;
  /** D's RTD binary cross-entropy per non-padding token (nats), before λ. */
  lossRtd: number | null;
  /** Discriminator accuracy over non-padding tokens (threshold 0.5). */
  discAcc: number | null;
  /** Discriminator recall on replaced tokens. */
  discAccReplaced: number | null;
  /** ROC-AUC of D's logits, replaced vs original non-padding tokens (lib/train/rtd_metrics.ts). */
  discAuc: number | null;
  /** Binary entropy (nats) of the replaced fraction: the RTD loss of the best constant predictor. */
  baseRate: number | null;
  /** baseRate − lossRtd: what D knows beyond the replaced fraction. */
  rtdGain: number | null;
  /** Fraction of non-padding tokens whose label is "replaced". */
  replacedFrac: number | null;
  /** Fraction of selected positions where the generator's sample equals the original. */
  genAcc: number | null;
  /** The learning rate this step used. */
  lr: number;
  /** Global norm of G's gradient before clipping. */
  gradNormGenerator: number;
  /** Global norm of D's gradient before clipping; null for joint updates. */
  gradNormDiscriminator: number | null;
  /** Non-padding tokens in the batch. */
  tokens: number;
}

/** Both gradient sets of a step, before the optimiser consumes them (for probes). Disposed after the callback. */
export interface StepGradients {
  /** Gradients of L_MLM (ES: of the joint loss), by variable name. */
  generator: Map<string, tf.Tensor>;
  /** Gradients of λ·L_RTD, by variable name; null for joint updates (ES, MLM). */
  discriminator: Map<string, tf.Tensor> | null;
}

/** Host-side parts of a training step that {@link Pretrainer.hostTimer} reports. */
export type HostPhase = "mask" | "upload" | "read logits" | "sample" | "sample on device" | "read metrics";

/** Mixes integers into one 32-bit seed (re-exported from lib/rng.ts). */
export { deriveSeed };

/** Random streams of one step: masking + sampling, and dropout. */
export function stepRngs(seed: number, step: number): { data: Rng; dropout: Rng } {
  return { data: new Rng(deriveSeed(seed, step, 1)), dropout: new Rng(deriveSeed(seed, step, 2)) };
}

/**
 * Mean cross-entropy of `logits` [M, V] against `targets` [M]: mean(logSumExp(logits) − logits[target]).
 *
 * Its gradient is the closed form (softmax − one-hot) / M. Autodiff through logSumExp routes the max's
 * gradient through an Equal over all M·V logits, which wasm broadcasts so slowly that it alone took
 * ~1 s per ELECTRA-Small step (M·V = 152 × 30522 at batch 8). Where the backend has the fused kernel
 * (cuda: lib/backend/fused_kernels.ts) the loss and softmax are one launch over the logits and the
 * gradient another, instead of ~18 launches and five more [M, V] temporaries.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  if (fusedKernelsActive("softmaxCrossEntropy")) return fusedCrossEntropy(logits, targets);
  const [m, v] = logits.shape;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    const lse = tf.logSumExp(x, 1, true);
    save([tf.softmax(x)]); // one kernel (an exp over M·V logits alone costs ~30 ms at ELECTRA-Small b8)
    // logits[i, targets[i]] by a flat gather: exactly the value the one-hot product picked.
    const flat = tf.add(tf.mul(tf.range(0, m, 1, "int32"), tf.scalar(v, "int32")), targets);
    const picked = tf.gather(tf.reshape(x, [-1]), flat);
    return {
      value: tf.mean(tf.sub(tf.reshape(lse, [m]), picked)) as tf.Scalar,
      // int32 one-hot, then cast: wasm's OneHot writes int32 bits into a float32 output (1 → 1.4e-45).
      // On wasm one kernel computes the same (lib/backend/wasm_fused.ts), without the [m, v] temporaries.
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        fusedKernelsActive("softmaxCrossEntropyGrad")
          ? tf.engine().runKernel(FUSED.softmaxCrossEntropyGrad, {
            probs: saved[0],
            targets,
            dy: dy as tf.Tensor,
          })
          : tf.mul(tf.sub(saved[0], tf.cast(tf.oneHot(targets, v), "float32")), tf.div(dy as tf.Tensor, m)),
    };
  });
  return op(logits) as tf.Scalar;
}

/** {@link crossEntropy} on the fused kernels: one pass forward (loss rows and softmax), one backward. */
function fusedCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    const [rows, probs] = tf.engine().runKernel(FUSED.softmaxCrossEntropy, {
      logits: x,
      targets,
    }) as tf.Tensor[];
    save([probs]);
    return {
      value: tf.mean(rows) as tf.Scalar,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.engine().runKernel(FUSED.softmaxCrossEntropyGrad, {
          probs: saved[0],
          targets,
          dy: dy as tf.Tensor,
        }) as tf.Tensor,
    };
  });
  return op(logits) as tf.Scalar;
}

/** Mean sigmoid binary cross-entropy of `logits` against `labels`, weighted by `weights` (0 = ignore). */
export function sigmoidBce(logits: tf.Tensor1D, labels: tf.Tensor1D, weights: tf.Tensor1D): tf.Scalar {
  // max(x, 0) − x·y + log(1 + e^{−|x|}): stable for large |x|.
  const perToken = tf.add(
    tf.sub(tf.relu(logits), tf.mul(logits, labels)),
    tf.log1p(tf.exp(tf.neg(tf.abs(logits)))),
  );
  return tf.div(tf.sum(tf.mul(perToken, weights)), tf.maximum(tf.sum(weights), 1)) as tf.Scalar;
}

/** Builds the int32/float tensors of a batch (caller disposes). */
export function batchTensors(ids: Int32Array, batch: TokenBatch, padId: number): EncoderInputs {
  const mask = new Float32Array(ids.length);
  for (let i = 0; i < ids.length; i++) mask[i] = batch.inputIds[i] === padId ? 0 : 1;
  return {
    inputIds: tf.tensor2d(ids, [batch.batch, batch.length], "int32"),
    tokenTypeIds: tf.tensor2d(batch.tokenTypeIds, [batch.batch, batch.length], "int32"),
    attentionMask: tf.tensor2d(mask, [batch.batch, batch.length], "float32"),
  };
}

function disposeInputs(x: EncoderInputs): void {
  tf.dispose([x.inputIds, x.tokenTypeIds, x.attentionMask]);
}

/** The model, its optimiser(s) and the step counter of a pre-training run. */
export class Pretrainer {
  /** The generator and discriminator (ELECTRA or DeBERTa backbone) with their shared embeddings. */
  readonly model: RtdModel;
  /** The run's configuration (sharing mode, sizes, masking, optimiser settings). */
  readonly config: RunConfig;
  /** The special token ids masking and padding use. */
  readonly vocab: PretrainVocab;
  /** One optimiser in joint mode; a generator and a discriminator optimiser when decoupled. */
  readonly optimizers: { joint?: AdamW; generator?: AdamW; discriminator?: AdamW };
  /** Steps completed. */
  step = 0;
  /**
   * Called with both gradient sets each step, taken at the same parameters: before any update
   * (decoupled GDES computes D's gradient once more for it; see trainStep). Probes hook in here.
   */
  onGradients?: (grads: StepGradients, step: number) => void;
  /** Which steps (0-based) `onGradients` needs; unset: every step. Saves decoupled GDES the extra D pass. */
  gradientsWanted?: (step: number) => boolean;
  /** When set, `trainStep` reports the milliseconds of its host-side phases (lib/bench's profiler). */
  hostTimer?: (phase: HostPhase, ms: number) => void;

  /** A fresh run for `config` (weights from `config.seed`). */
  constructor(config: RunConfig, vocab: PretrainVocab) {
    // A config built by hand reaches here unchecked: a bad one should fail naming its problem, not deep in a
    // kernel (heads that do not divide the width fail in the backend with an unrelated message).
    validateConfig(config);
    if (vocab.vocabSize !== config.vocabSize) {
      throw new Error(
        `tokenizer has ${vocab.vocabSize} tokens but the config says vocabSize ${config.vocabSize} ` +
          `(set the config's vocabSize to the tokenizer's)`,
      );
    }
    this.config = config;
    this.vocab = vocab;
    this.model = createModel(config);
    const opt = {
      beta1: config.beta1,
      beta2: config.beta2,
      epsilon: config.epsilon,
      weightDecay: config.weightDecay,
      clipNorm: config.clipNorm,
      biasCorrection: config.biasCorrection,
    };
    const p = this.model.params;
    if (config.sharing === "mlm") {
      this.optimizers = { joint: new AdamW(p, this.model.generatorVariables(), opt) };
    } else if (isJoint(config)) {
      const names = [
        ...new Set([...this.model.generatorVariables(), ...this.model.discriminatorVariables()]),
      ];
      this.optimizers = { joint: new AdamW(p, names, opt) };
    } else {
      this.optimizers = {
        generator: new AdamW(p, this.model.generatorVariables(), opt),
        discriminator: new AdamW(p, this.model.discriminatorVariables(), opt),
      };
    }
  }

  /** Learning rate the next step uses. */
  currentLearningRate(): number {
    const c = this.config;
    return learningRate(this.step, c.learningRate, c.warmupSteps, c.steps);
  }

  /** Masks a batch with the step's data stream (exposed for notebooks). */
  mask(batch: TokenBatch, rng: Rng): MaskedBatch {
    const c = this.config;
    return maskBatch(batch.inputIds, batch.batch, batch.length, this.vocab, {
      selectProb: c.maskSelectProb,
      maskTokenProb: c.maskTokenProb,
      randomProb: c.maskRandomProb,
      maxPredictions: c.maxPredictionsPerSeq,
      padId: this.vocab.padId,
    }, rng);
  }

  /**
   * ∇L_MLM over G's variables; returns the loss, the gradients (by parameter name) and the logits [M, V].
   * `weight` scales the loss (a micro-batch's share of the batch's selected positions); `training` false
   * runs G without dropout (the tug-of-war probe's `dropout: false`).
   */
  generatorGradients(
    inputs: EncoderInputs,
    masked: Pick<MaskedBatch, "selected" | "targets">,
    dropoutRng: Rng,
    weight = 1,
    training = true,
  ): { loss: tf.Scalar; grads: Map<string, tf.Tensor>; logits: tf.Tensor2D } {
    const names = this.model.generatorVariables();
    const selected = tf.tensor1d(masked.selected, "int32");
    const targets = tf.tensor1d(masked.targets, "int32");
    let logits: tf.Tensor2D | undefined;
    const { value, grads } = variableGrads(() => {
      const hidden = this.model.encode("generator", inputs, { training, rng: dropoutRng });
      logits = tf.keep(this.model.generatorLogits(hidden, selected, { training, rng: dropoutRng }));
      const ce = crossEntropy(logits, targets);
      return weight === 1 ? ce : tf.mul(ce, weight) as tf.Scalar;
    }, names.map((n) => this.model.params.get(n)));
    tf.dispose([selected, targets]);
    return { loss: value, grads: this.#byName(names, grads), logits: logits! };
  }

  /**
   * ∇(λ·L_RTD) over D's variables; returns the loss without λ, gradients and D's logits [B·L]. `weight`
   * scales the loss (a micro-batch's share of the batch's non-padding tokens); `training` false runs D
   * without dropout.
   */
  discriminatorGradients(
    inputs: EncoderInputs,
    labels: Float32Array | tf.Tensor1D,
    dropoutRng: Rng,
    weight = 1,
    training = true,
  ): { loss: tf.Scalar; grads: Map<string, tf.Tensor>; logits: tf.Tensor1D } {
    const names = this.model.discriminatorVariables();
    const labelT = labels instanceof Float32Array ? tf.tensor1d(labels, "float32") : tf.clone(labels);
    const weights = tf.reshape(inputs.attentionMask, [-1]) as tf.Tensor1D;
    let logits: tf.Tensor1D | undefined;
    let loss: tf.Scalar | undefined;
    const { value, grads } = variableGrads(() => {
      const hidden = this.model.encode("discriminator", inputs, { training, rng: dropoutRng });
      logits = tf.keep(this.model.discriminatorLogits(hidden, { training, rng: dropoutRng }));
      const bce = sigmoidBce(logits, labelT, weights);
      loss = tf.keep(weight === 1 ? bce : tf.mul(bce, weight) as tf.Scalar);
      return tf.mul(loss, this.config.rtdWeight) as tf.Scalar;
    }, names.map((n) => this.model.params.get(n)));
    tf.dispose([labelT, weights, value]);
    return { loss: loss!, grads: this.#byName(names, grads), logits: logits! };
  }

  /** Sequences per forward/backward pass for a batch of `batchRows` × `length` ({@link microBatchRows}). */
  microBatchRows(batchRows: number, length: number): number {
    return microBatchRows(this.config, batchRows, length, tf.getBackend());
  }

  /**
   * Runs one training step on `batch` and returns its metrics, at {@link learningRate}'s rate for `this.step`:
   * from `config.steps` on that is 0 and the step changes no weight (raise `config.steps` to train further).
   */
  async trainStep(batch: TokenBatch): Promise<StepMetrics> {
    const c = this.config;
    const step = this.step;
    const lr = this.currentLearningRate();
    const rngs = stepRngs(c.seed, step);
    checkTokenIds(batch, c.vocabSize);
    const tokens = countTokens(batch, this.vocab.padId);
    const masked = this.#host("mask", () => this.mask(batch, rngs.data));
    if (masked.selected.length === 0) throw new Error(`step ${step}: the batch has no maskable tokens`);
    const micro = microBatches(
      batch,
      masked,
      this.microBatchRows(batch.batch, batch.length),
      this.vocab.padId,
    );
    const genInputs = this.#host(
      "upload",
      () => micro.map((m) => batchTensors(m.slice(masked.maskedIds), m.batch, this.vocab.padId)),
    );
    const selectedOf = (m: MicroBatch) => tf.tensor1d(m.selected, "int32");
    const disposeLater: tf.TensorContainer[] = [];
    try {
      // Micro-batches weigh their mean losses by their share of the batch: the summed gradients are the
      // batch's. One micro-batch (the usual case) runs exactly the whole-batch computation.
      const withSelected = micro.flatMap((m, k) => (m.selected.length ? [k] : []));
      const gen = sumParts(withSelected.map((k) => () =>
        this.generatorGradients(
          genInputs[k],
          micro[k],
          rngs.dropout,
          micro.length === 1 ? 1 : micro[k].selected.length / masked.selected.length,
        )
      ));
      disposeLater.push(gen.loss, gen.logits, [...gen.grads.values()]);

      if (c.sharing === "mlm") {
        this.onGradients?.({ generator: gen.grads, discriminator: null }, step);
        const norm = this.optimizers.joint!.apply(gen.grads, lr);
        disposeLater.push(norm);
        this.step++;
        return {
          step: this.step,
          lossMlm: (await gen.loss.data())[0],
          lossRtd: null,
          discAcc: null,
          discAccReplaced: null,
          discAuc: null,
          baseRate: null,
          rtdGain: null,
          replacedFrac: null,
          genAcc: null,
          lr,
          gradNormGenerator: (await norm.data())[0],
          gradNormDiscriminator: null,
          tokens,
        };
      }

      // Decoupled (the papers' order): D trains on the corruption sampled from this forward pass, before
      // G's update; D then reads the updated E_G (GDES: sg(E_G) + E_Δ). `resampleAfterGeneratorUpdate`
      // restores the older order: update G, run it again, sample from the updated G.
      const decoupled = !isJoint(c);
      let genNorm: tf.Scalar | undefined;
      let sampleLogits = gen.logits;
      if (decoupled && c.resampleAfterGeneratorUpdate) {
        genNorm = this.optimizers.generator!.apply(gen.grads, lr);
        disposeLater.push(genNorm);
        const parts = withSelected.map((k) =>
          tf.tidy(() => {
            const hidden = this.model.encode("generator", genInputs[k], {
              training: true,
              rng: rngs.dropout,
            });
            return this.model.generatorLogits(hidden, selectedOf(micro[k]), {
              training: true,
              rng: rngs.dropout,
            });
          })
        );
        sampleLogits = parts.length === 1 ? parts[0] : tf.concat(parts, 0);
        if (parts.length > 1) tf.dispose(parts);
        disposeLater.push(sampleLogits);
      }
      const t0 = performance.now();
      const disallow = c.disallowCorrect ? masked.targets : undefined;
      // GPU backends with one micro-batch sample and build D's input on the device: the samples come
      // back with the step's metrics, so the host never waits for the device mid-step.
      const onDevice = micro.length === 1 && tf.getKernel(CORRUPT, tf.getBackend()) != null
        ? this.#corruptOnDevice(sampleLogits as tf.Tensor2D, masked, genInputs[0], rngs.data, disallow)
        : null;
      if (onDevice) disposeLater.push(onDevice.picks, onDevice.labels, onDevice.inputs.inputIds);
      // The host's copy of the corruption, for D's input elsewhere and for the metrics (on the device
      // path it is built once the samples are read, with the metrics).
      let corruption: Corruption | undefined;
      if (onDevice) this.hostTimer?.("sample on device", performance.now() - t0);
      else {
        // Other GPU backends draw on the device (only the ids come back); the rest read the logits (on
        // wasm a view of the heap, not a copy: nothing allocates tensors until sampling is done).
        let samples = await sampleOnDevice(
          sampleLogits as tf.Tensor2D,
          c.samplingTemperature,
          rngs.data,
          disallow,
        );
        if (samples != null) this.hostTimer?.("sample on device", performance.now() - t0);
        else {
          const logitValues = heapView(sampleLogits) ?? (await sampleLogits.data()) as Float32Array;
          this.hostTimer?.("read logits", performance.now() - t0);
          samples = this.#host("sample", () =>
            sampleFromLogits(
              logitValues,
              masked.selected.length,
              c.vocabSize,
              c.samplingTemperature,
              rngs.data,
              disallow,
            ));
        }
        const picked = samples;
        corruption = this.#host("sample", () => corrupt(batch.inputIds, masked.selected, picked));
      }
      const discInputs = onDevice ? [onDevice.inputs] : this.#host(
        "upload",
        () => micro.map((m) => batchTensors(m.slice(corruption!.corruptedIds), m.batch, this.vocab.padId)),
      );
      if (!onDevice) {
        disposeLater.push(discInputs.flatMap((x) => [x.inputIds, x.tokenTypeIds, x.attentionMask]));
      }
      const discGradients = (dropoutRng: Rng) =>
        sumParts(micro.map((m, k) => () =>
          this.discriminatorGradients(
            discInputs[k],
            onDevice ? onDevice.labels : m.slice(corruption!.labels),
            dropoutRng,
            micro.length === 1 ? 1 : m.tokens / Math.max(1, tokens),
          )
        ));
      let reported = false;
      if (decoupled && !c.resampleAfterGeneratorUpdate) {
        // Probes compare both gradients at the same parameters. Under GDES, D reads E_G, so its
        // gradient after G's update differs: take it once more before the update, with a copy of the
        // dropout stream (the real D pass below draws the same masks). Under NES D never reads G's
        // parameters, so the step's own D gradient is already at the same parameters.
        if (this.onGradients && c.sharing === "gdes" && (this.gradientsWanted?.(step) ?? true)) {
          const pre = discGradients(Rng.fromState(rngs.dropout.state()));
          try {
            this.onGradients({ generator: gen.grads, discriminator: pre.grads }, step);
          } finally {
            tf.dispose([pre.loss, pre.logits, ...pre.grads.values()]);
          }
          reported = true;
        }
        genNorm = this.optimizers.generator!.apply(gen.grads, lr);
        disposeLater.push(genNorm);
      }
      const disc = discGradients(rngs.dropout);
      disposeLater.push(disc.loss, disc.logits, [...disc.grads.values()]);
      if (!reported) this.onGradients?.({ generator: gen.grads, discriminator: disc.grads }, step);

      let discNorm: tf.Scalar;
      if (isJoint(c)) {
        // ∇(L_MLM + λ·L_RTD): add the two gradients where both losses reach the same variable.
        const total = new Map(gen.grads);
        for (const [n, g] of disc.grads) {
          const prev = total.get(n);
          if (prev) {
            const sum = tf.add(prev, g);
            disposeLater.push(sum);
            total.set(n, sum);
          } else total.set(n, g);
        }
        discNorm = this.optimizers.joint!.apply(total, lr);
        genNorm = discNorm;
      } else discNorm = this.optimizers.discriminator!.apply(disc.grads, lr);
      disposeLater.push(discNorm);

      const t1 = performance.now();
      // One device read for the four scalars (each read is a round trip on webgpu), one for D's logits,
      // and on the device path one for the samples: all after the step's last kernel.
      const scalars = tf.tidy(() => tf.stack([gen.loss, disc.loss!, genNorm!, discNorm]));
      if (onDevice) {
        const picked = (await onDevice.picks.data()) as Int32Array;
        corruption = corrupt(batch.inputIds, masked.selected, picked);
      }
      const labels = corruption!.labels;
      const [lossMlm, lossRtd, gradNormGenerator, discNormValue] = await scalars.data();
      scalars.dispose();
      const dLogits = (await disc.logits.data()) as Float32Array;
      const [accAll, accReplaced] = discriminatorAccuracy(
        dLogits,
        labels,
        batch.inputIds,
        this.vocab.padId,
      );
      const gradNormDiscriminator = isJoint(c) ? null : discNormValue;
      let replaced = 0;
      for (const l of labels) replaced += l;
      const pad = this.vocab.padId;
      const skill = rtdSkill(
        lossRtd,
        replaced / tokens,
        rocAuc(dLogits, labels, (i) => batch.inputIds[i] !== pad),
      );
      this.hostTimer?.("read metrics", performance.now() - t1);
      this.step++;
      return {
        step: this.step,
        lossMlm,
        lossRtd,
        discAcc: accAll,
        discAccReplaced: accReplaced,
        discAuc: skill.auc,
        baseRate: skill.baseRate,
        rtdGain: skill.gain,
        replacedFrac: replaced / tokens,
        genAcc: corruption!.sampledCorrect / masked.selected.length,
        lr,
        gradNormGenerator,
        gradNormDiscriminator,
        tokens,
      };
    } finally {
      genInputs.forEach(disposeInputs);
      tf.dispose(disposeLater);
    }
  }

  /**
   * Samples the masked positions and builds D's input and labels on the device (one micro-batch):
   * the picks (read later, with the metrics), the labels [B·L] and D's inputs, whose token types and
   * attention mask are the generator's (the mask comes from the original ids).
   */
  #corruptOnDevice(
    logits: tf.Tensor2D,
    masked: MaskedBatch,
    genInputs: EncoderInputs,
    rng: Rng,
    disallow: Int32Array | undefined,
  ): { picks: tf.Tensor1D; labels: tf.Tensor1D; inputs: EncoderInputs } | null {
    const picks = sampleOnDeviceTensor(logits, this.config.samplingTemperature, rng, disallow);
    if (picks == null) return null;
    const [corruptedIds, labels] = tf.tidy(() => {
      const selected = tf.tensor1d(masked.selected, "int32");
      const targets = tf.tensor1d(masked.targets, "int32");
      const ids = tf.reshape(genInputs.inputIds, [-1]);
      return tf.engine().runKernel(CORRUPT, { ids, selected, picks, targets }) as tf.Tensor[];
    });
    const inputIds = tf.reshape(corruptedIds, genInputs.inputIds.shape) as tf.Tensor2D;
    corruptedIds.dispose();
    return {
      picks,
      labels: labels as tf.Tensor1D,
      inputs: { inputIds, tokenTypeIds: genInputs.tokenTypeIds, attentionMask: genInputs.attentionMask },
    };
  }

  #host<T>(phase: HostPhase, f: () => T): T {
    if (!this.hostTimer) return f();
    const t0 = performance.now();
    const out = f();
    this.hostTimer(phase, performance.now() - t0);
    return out;
  }

  #byName(names: string[], grads: tf.NamedTensorMap): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const n of names) {
      const g = grads[this.model.params.get(n).name];
      if (g) out.set(n, g);
    }
    return out;
  }

  /** Frees the model and optimiser state. */
  dispose(): void {
    for (const o of Object.values(this.optimizers)) o?.dispose();
    this.model.dispose();
  }
}

/** Throws, naming the id and where it is, when `batch` holds an id outside the vocabulary. */
function checkTokenIds(batch: TokenBatch, vocabSize: number): void {
  const ids = batch.inputIds;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] >= 0 && ids[i] < vocabSize) continue;
    // Caught here, the problem has a name; in the embedding gather it would be an index error.
    const [row, position] = [Math.floor(i / batch.length), i % batch.length];
    throw new Error(
      `token id ${
        ids[i]
      } (sequence ${row}, position ${position}) is outside the vocabulary of ${vocabSize} ` +
        `ids: was the batch made with another tokenizer?`,
    );
  }
}

function countTokens(batch: TokenBatch, padId: number): number {
  let n = 0;
  for (const id of batch.inputIds) if (id !== padId) n++;
  return n;
}

// The padding mask comes from the host ids (the attention mask is built from them), not a device read.
function discriminatorAccuracy(
  l: Float32Array,
  labels: Float32Array,
  ids: Int32Array,
  padId: number,
): [number, number] {
  let right = 0, total = 0, replacedRight = 0, replaced = 0;
  for (let i = 0; i < l.length; i++) {
    if (ids[i] === padId) continue;
    const pred = l[i] > 0 ? 1 : 0;
    total++;
    if (pred === labels[i]) right++;
    if (labels[i] === 1) {
      replaced++;
      if (pred === 1) replacedRight++;
    }
  }
  return [right / Math.max(1, total), replaced ? replacedRight / replaced : NaN];
}

/**
 * Sequences per forward/backward pass: `microBatchSize` when set, else the whole batch — except on
 * wasm, whose heap holds at most 4 GB, when the estimated activations of the step exceed 3 GB
 * ({@link estimateStepBytes}); then equal micro-batches that fit.
 */
export function microBatchRows(c: RunConfig, batchRows: number, length: number, backend: string): number {
  if (c.microBatchSize > 0) return Math.min(c.microBatchSize, batchRows);
  const budget = capabilities(backend).activationBudgetBytes;
  if (budget === null) return batchRows;
  const fit = Math.max(1, Math.floor(budget / estimateStepBytes(c, generatorSize(c), 1, length)));
  // Equal micro-batches rather than full ones and a remainder (ELECTRA-Small b64: 32 + 32).
  return Math.ceil(batchRows / Math.ceil(batchRows / fit));
}

/**
 * Rough bytes of activations of one training step on `rows` sequences of `length` tokens: per layer
 * ~12·H + 4·FFN + 3·heads·L floats per token for each network, and the generator's [selected, vocab]
 * logits three times, at 5 bytes a float (4 for the forward value kept for the backward, and about a
 * quarter of them again for the gradients alive at once: lib/train/gradients.ts frees the rest as the
 * backward pass goes). Calibrated on wasm: ELECTRA-Small 73–84 MB of heap per sequence (batch 8: 0.89 GB,
 * batch 32: 2.55 GB), `tiny` 13 MB (batch 32: 0.46 GB).
 */
export function estimateStepBytes(
  c: RunConfig,
  generator: { hiddenSize: number; numLayers: number; numHeads: number; intermediateSize: number },
  rows: number,
  length: number,
): number {
  const perLayer = (s: typeof generator) =>
    12 * s.hiddenSize + 4 * s.intermediateSize + 3 * s.numHeads * length;
  const perToken = c.discriminator.numLayers * perLayer(c.discriminator) +
    generator.numLayers * perLayer(generator);
  const tokens = rows * length;
  const selected = tokens * c.maskSelectProb;
  return 5 * (perToken * tokens + 3 * selected * c.vocabSize / 2);
}

/** Rows [start, end) of a batch trained in one forward/backward pass, with their share of the step. */
interface MicroBatch {
  start: number;
  end: number;
  /** The rows as a batch of their own (original ids: the padding mask comes from them). */
  batch: TokenBatch;
  /** Selected positions inside these rows, relative to the micro-batch, and their targets. */
  selected: Int32Array;
  targets: Int32Array;
  /** Non-padding tokens in these rows. */
  tokens: number;
  /** The same rows of any [B·L] array (ids, labels). */
  slice<T extends Int32Array | Float32Array>(a: T): T;
}

/** Splits `batch` into micro-batches of at most `rows` sequences (one micro-batch when it fits). */
function microBatches(batch: TokenBatch, masked: MaskedBatch, rows: number, padId: number): MicroBatch[] {
  const L = batch.length;
  const out: MicroBatch[] = [];
  let sel = 0;
  for (let start = 0; start < batch.batch; start += rows) {
    const end = Math.min(batch.batch, start + rows);
    const slice = <T extends Int32Array | Float32Array>(a: T) => a.subarray(start * L, end * L) as T;
    // `selected` ascends, so each micro-batch owns one contiguous run of it.
    const first = sel;
    while (sel < masked.selected.length && masked.selected[sel] < end * L) sel++;
    const sub: TokenBatch = {
      inputIds: slice(batch.inputIds),
      tokenTypeIds: slice(batch.tokenTypeIds),
      batch: end - start,
      length: L,
    };
    out.push({
      start,
      end,
      batch: sub,
      selected: masked.selected.subarray(first, sel).map((p) => p - start * L),
      targets: masked.targets.subarray(first, sel),
      tokens: countTokens(sub, padId),
      slice,
    });
  }
  return out;
}

/**
 * Runs gradient computations one after another and sums them: losses and same-named gradients added,
 * logits concatenated. A single part is returned as it is (no extra kernels).
 */
function sumParts<L extends tf.Tensor>(
  parts: (() => { loss: tf.Scalar; grads: Map<string, tf.Tensor>; logits: L })[],
): { loss: tf.Scalar; grads: Map<string, tf.Tensor>; logits: L } {
  if (parts.length === 1) return parts[0]();
  let loss: tf.Scalar | null = null;
  const grads = new Map<string, tf.Tensor>();
  const logits: L[] = [];
  for (const part of parts) {
    const r = part();
    if (loss === null) loss = r.loss;
    else {
      const next = tf.add(loss, r.loss) as tf.Scalar;
      tf.dispose([loss, r.loss]);
      loss = next;
    }
    for (const [n, g] of r.grads) {
      const acc = grads.get(n);
      if (acc) {
        grads.set(n, tf.add(acc, g));
        tf.dispose([acc, g]);
      } else grads.set(n, g);
    }
    logits.push(r.logits);
  }
  const all = tf.concat(logits, 0) as L;
  tf.dispose(logits);
  return { loss: loss ?? tf.scalar(0), grads, logits: all };
}

/**
 * A sequence classifier: a pre-trained ELECTRA encoder (the exported discriminator, or the MLM
 * baseline's encoder) plus ELECTRA's classification head on the [CLS] hidden state:
 * dropout → dense(H→H) → GELU → dropout → out(H→C). Head names follow HuggingFace
 * `ElectraForSequenceClassification` (`classifier.dense`, `classifier.out_proj`).
 *
 * The encoder is lib/model/electra.ts's {@link ElectraModel} built encoder-only, so fine-tuning runs
 * the very forward pass pre-training trained.
 *
 * @module
 */

import { join } from "node:path";
import * as tf from "../tf.ts";
import { applyOverrides, preset, type RunConfig, validateConfig } from "../config.ts";
import { ElectraModel } from "../model/electra.ts";
import { dense, dropout, gelu, type LayerContext } from "../model/layers.ts";
import type { EncoderInputs } from "../model/mod.ts";
import type { ParameterStore } from "../model/params.ts";
import { loadSafetensors } from "../io/safetensors.ts";
import type { HostTensor } from "../io/safetensors.ts";
import { WordPieceTokenizer } from "../text/tokenizer.ts";
import { Rng } from "../rng.ts";

/** Which exported network a classifier starts from. */
export type EncoderSource = "discriminator" | "mlm" | "scratch";

/** A pre-trained encoder on disk: where its weights are, its config and tokenizer. */
export interface PretrainedEncoder {
  /** The run folder. */
  runDir: string;
  /** Folder of the HF-layout export (`RUN/export/discriminator` or `RUN/export/mlm`). */
  modelDir: string;
  /** Which export it is. */
  source: EncoderSource;
  /** Model config (sizes from the export's config.json). */
  config: RunConfig;
  /** The run's tokenizer. */
  tokenizer: WordPieceTokenizer;
  /** Embedding-sharing mode of the pre-training run (from the export's config.json), if recorded. */
  sharing: string | null;
  /** Encoder weights by HF name (`electra.embeddings.word_embeddings.weight`, ...). */
  weights: Map<string, HostTensor>;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** RunConfig sizes from an HF ElectraConfig object (unknown fields ignored). */
export function configFromHf(hf: Record<string, unknown>, source: string): RunConfig {
  const type = hf.model_type;
  if (type !== "electra") {
    throw new Error(
      `${source}: model_type "${type}" — fine-tuning reads ELECTRA-layout exports (model_type "electra")`,
    );
  }
  const num = (k: string) => {
    const v = hf[k];
    if (typeof v !== "number") throw new Error(`${source}: "${k}" is missing or not a number`);
    return v;
  };
  const hidden = num("hidden_size");
  return validateConfig(applyOverrides(preset("tiny"), {
    vocabSize: num("vocab_size"),
    embeddingSize: typeof hf.embedding_size === "number" ? hf.embedding_size : hidden,
    maxPositions: num("max_position_embeddings"),
    seqLength: Math.min(128, num("max_position_embeddings")),
    typeVocabSize: num("type_vocab_size"),
    layerNormEps: typeof hf.layer_norm_eps === "number" ? hf.layer_norm_eps : 1e-12,
    dropout: typeof hf.hidden_dropout_prob === "number" ? hf.hidden_dropout_prob : 0.1,
    initStd: typeof hf.initializer_range === "number" ? hf.initializer_range : 0.02,
    sharing: "nes",
    discriminator: {
      hiddenSize: hidden,
      numLayers: num("num_hidden_layers"),
      numHeads: num("num_attention_heads"),
      intermediateSize: num("intermediate_size"),
    },
  }));
}

/**
 * Finds and reads a run's exported encoder: `RUN/export/discriminator` (RTD runs), else
 * `RUN/export/mlm` (the MLM baseline), plus `RUN/tokenizer.json`. `source: "scratch"` reads the
 * discriminator's (or MLM's) config and tokenizer but no weights: the no-pre-training control.
 */
export async function loadPretrainedEncoder(
  runDir: string,
  opts: { source?: EncoderSource } = {},
): Promise<PretrainedEncoder> {
  const tokPath = join(runDir, "tokenizer.json");
  if (!(await exists(runDir))) throw new Error(`no such run folder: ${runDir}`);
  if (!(await exists(tokPath))) {
    throw new Error(`${runDir} has no tokenizer.json (not an rtdlab run folder?)`);
  }
  const candidates: [Exclude<EncoderSource, "scratch">, string][] = [
    ["discriminator", join(runDir, "export", "discriminator")],
    ["mlm", join(runDir, "export", "mlm")],
  ];
  const wanted = opts.source && opts.source !== "scratch"
    ? candidates.filter(([s]) => s === opts.source)
    : candidates;
  let found: [Exclude<EncoderSource, "scratch">, string] | undefined;
  for (const c of wanted) if (await exists(join(c[1], "model.safetensors"))) found = found ?? c;
  if (!found) {
    throw new Error(
      `${runDir} has no exported ${wanted.map(([s]) => s).join(" or ")} model (${
        wanted.map(([, d]) => join(d, "model.safetensors")).join(", ")
      }); a run writes export/ when it reaches its last step — finish it with \`deno task pretrain --resume ${runDir}\``,
    );
  }
  const [kind, modelDir] = found;
  const runConfig = await Deno.readTextFile(join(runDir, "config.json")).then(JSON.parse, () => null);
  if (runConfig?.backbone && runConfig.backbone !== "electra") {
    throw new Error(
      `${runDir} was pre-trained with the ${runConfig.backbone} backbone; fine-tuning reads ELECTRA encoders only (so far)`,
    );
  }
  const cfgPath = join(modelDir, "config.json");
  let hf: Record<string, unknown>;
  try {
    hf = JSON.parse(await Deno.readTextFile(cfgPath));
  } catch (e) {
    throw new Error(`cannot read ${cfgPath}: ${(e as Error).message}`);
  }
  const config = configFromHf(hf, cfgPath);
  const tokenizer = await WordPieceTokenizer.load(tokPath);
  if (tokenizer.vocabSize !== config.vocabSize) {
    throw new Error(
      `${tokPath} has ${tokenizer.vocabSize} tokens but ${cfgPath} says vocab_size ${config.vocabSize}`,
    );
  }
  const weights = new Map<string, HostTensor>();
  if (opts.source !== "scratch") {
    const st = await loadSafetensors(join(modelDir, "model.safetensors"));
    for (const [name, t] of st.tensors) if (name.startsWith("electra.")) weights.set(name, t);
  }
  const sharing = (hf.rtdlab as { sharing?: string } | undefined)?.sharing ?? null;
  return {
    runDir,
    modelDir,
    source: opts.source === "scratch" ? "scratch" : kind,
    config,
    tokenizer,
    sharing,
    weights,
  };
}

/** Forward options of the classifier. */
export interface ClassifierForward {
  training: boolean;
  rng?: Rng;
}

/** ELECTRA encoder + classification head over named parameters. */
export class SequenceClassifier {
  /** The encoder-only ELECTRA model; the head's parameters live in the same store. */
  readonly encoder: ElectraModel;
  /** Number of classes. */
  readonly numLabels: number;

  /**
   * A classifier for `numLabels` classes: encoder weights from `weights` (HF names; empty = random
   * init from `seed`), head initialised normal(0, initStd) from `seed`.
   */
  constructor(config: RunConfig, numLabels: number, weights: Map<string, HostTensor>, seed: number) {
    if (!(Number.isInteger(numLabels) && numLabels >= 2)) {
      throw new Error(`need at least 2 classes, got ${numLabels}`);
    }
    this.encoder = new ElectraModel(config, seed, { encoderOnly: true });
    this.numLabels = numLabels;
    if (weights.size > 0) {
      const named = new Map<string, HostTensor>();
      for (const [n, t] of weights) named.set(`discriminator.${n}`, t);
      this.encoder.params.assignFrom(named, "pre-trained encoder");
    }
    const rng = new Rng(seed ^ 0x4ead);
    const h = config.discriminator.hiddenSize;
    const p = this.encoder.params;
    p.create("classifier.dense.weight", [h, h], "normal", rng, config.initStd);
    p.create("classifier.dense.bias", [h], "zeros", rng);
    p.create("classifier.out_proj.weight", [numLabels, h], "normal", rng, config.initStd);
    p.create("classifier.out_proj.bias", [numLabels], "zeros", rng);
  }

  /** Builds a classifier from a {@link loadPretrainedEncoder} result. */
  static fromPretrained(enc: PretrainedEncoder, numLabels: number, seed: number): SequenceClassifier {
    return new SequenceClassifier(enc.config, numLabels, enc.weights, seed);
  }

  /** All parameters (encoder and head). */
  get params(): ParameterStore {
    return this.encoder.params;
  }

  /** The [CLS] hidden state of each sequence: [B, H]. */
  pooled(inputs: EncoderInputs, opts: ClassifierForward): tf.Tensor2D {
    const [batch, length] = inputs.inputIds.shape;
    const hidden = this.encoder.encode("discriminator", inputs, opts); // [B·L, H]
    const h = hidden.shape[1];
    return tf.reshape(tf.slice(tf.reshape(hidden, [batch, length, h]), [0, 0, 0], [batch, 1, h]), [batch, h]);
  }

  /** Class logits [B, C]. */
  logits(inputs: EncoderInputs, opts: ClassifierForward): tf.Tensor2D {
    const c = this.encoder.config;
    const ctx: LayerContext = {
      params: this.params,
      training: opts.training,
      dropout: c.dropout,
      layerNormEps: c.layerNormEps,
      rng: opts.rng,
    };
    let x = dropout(ctx, this.pooled(inputs, opts));
    x = gelu(dense(ctx, "classifier.dense", x));
    x = dropout(ctx, x);
    return dense(ctx, "classifier.out_proj", x);
  }

  /**
   * Depth of a parameter for layer-wise LR decay: embeddings 0, layer i → i + 1, the head (and
   * anything above the encoder) numLayers + 1.
   */
  depth(name: string): number {
    const m = /\.encoder\.layer\.(\d+)\./.exec(name);
    if (m) return Number(m[1]) + 1;
    if (name.includes(".embeddings")) return 0;
    return this.encoder.config.discriminator.numLayers + 1;
  }

  /** Frees every variable. */
  dispose(): void {
    this.encoder.dispose();
  }
}

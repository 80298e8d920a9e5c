/**
 * A sequence classifier: a pre-trained encoder of either backbone — ELECTRA (export `model_type`
 * "electra", weights `electra.*`) or DeBERTaV3 (`model_type` "deberta-v2", weights `deberta.*`) — taken
 * from the exported discriminator or the MLM baseline's encoder, plus ELECTRA's classification head on
 * the [CLS] hidden state: dropout → dense(H→H) → GELU → dropout → out(H→C), for both backbones. Head
 * names follow HuggingFace `ElectraForSequenceClassification` (`classifier.dense`, `classifier.out_proj`).
 *
 * The encoder is the backbone's own model (lib/model/electra.ts's `ElectraModel` or
 * lib/model/deberta.ts's `DebertaModel`) built encoder-only through {@link createModel}, so fine-tuning
 * runs the very forward pass pre-training trained (for DeBERTa, the plain encoder: the generator-side
 * Enhanced Mask Decoder of the MLM baseline is a pre-training head and is not exported).
 *
 * @module
 */

import { join } from "node:path";
import * as tf from "../tf.ts";
import { applyOverrides, preset, type RunConfig, validateConfig } from "../config.ts";
import { dense, dropout, gelu, type LayerContext } from "../model/layers.ts";
import { createModel, type EncoderInputs, type RtdModel } from "../model/mod.ts";
import type { ParameterStore } from "../model/params.ts";
import { loadSafetensors } from "../io/safetensors.ts";
import type { HostTensor } from "../io/safetensors.ts";
import { WordPieceTokenizer } from "../text/tokenizer.ts";
import { taskCommand } from "../util/cli.ts";
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
  /**
   * Encoder weights by HF name: `electra.embeddings.word_embeddings.weight`, ... (ELECTRA) or
   * `deberta.embeddings.word_embeddings.weight`, `deberta.encoder.rel_embeddings.weight`, ... (DeBERTa).
   */
  weights: Map<string, HostTensor>;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** HF `model_type` → rtdlab backbone, for the exports fine-tuning reads. */
export const HF_MODEL_TYPES: Readonly<Record<string, RunConfig["backbone"]>> = {
  "electra": "electra",
  "deberta-v2": "deberta",
};

/** Weight-name prefix of a backbone's encoder in an HF export (`electra.` / `deberta.`). */
export function encoderWeightPrefix(backbone: RunConfig["backbone"]): string {
  return backbone === "deberta" ? "deberta." : "electra.";
}

/**
 * RunConfig sizes from an HF config object: ElectraConfig (`model_type` "electra") or DebertaV2Config
 * (`model_type` "deberta-v2", as rtdlab's DeBERTa backbone computes it: relative attention with c2p +
 * p2c, shared attention keys, LayerNorm'd relative embeddings, no absolute positions in the input).
 * Unknown fields are ignored; a DeBERTa setting rtdlab's encoder does not implement is refused by name.
 */
export function configFromHf(hf: Record<string, unknown>, source: string): RunConfig {
  const type = hf.model_type;
  const backbone = typeof type === "string" && Object.hasOwn(HF_MODEL_TYPES, type)
    ? HF_MODEL_TYPES[type]
    : null;
  if (!backbone) {
    throw new Error(
      `${source}: unknown model_type ${JSON.stringify(type)}; fine-tuning reads ${
        Object.keys(HF_MODEL_TYPES).map((t) => `"${t}"`).join(" and ")
      } exports`,
    );
  }
  const num = (k: string) => {
    const v = hf[k];
    if (typeof v !== "number") throw new Error(`${source}: "${k}" is missing or not a number`);
    return v;
  };
  const opt = (k: string, fallback: number) => {
    const v = hf[k];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "number") throw new Error(`${source}: "${k}" is not a number (${JSON.stringify(v)})`);
    return v;
  };
  const hidden = num("hidden_size");
  const maxPositions = num("max_position_embeddings");
  const common = {
    backbone,
    vocabSize: num("vocab_size"),
    embeddingSize: opt("embedding_size", hidden),
    maxPositions,
    seqLength: Math.min(128, maxPositions),
    dropout: opt("hidden_dropout_prob", 0.1),
    initStd: opt("initializer_range", 0.02),
    sharing: "nes",
    discriminator: {
      hiddenSize: hidden,
      numLayers: num("num_hidden_layers"),
      numHeads: num("num_attention_heads"),
      intermediateSize: num("intermediate_size"),
    },
  };
  if (backbone === "electra") {
    return validateConfig(applyOverrides(preset("tiny"), {
      ...common,
      typeVocabSize: num("type_vocab_size"),
      layerNormEps: opt("layer_norm_eps", 1e-12),
    }));
  }
  checkDebertaSettings(hf, source);
  // HF DebertaV2: position_buckets ≤ 0 means no log buckets; max_relative_positions < 1 means max_position_embeddings.
  const buckets = opt("position_buckets", -1);
  const maxRelative = opt("max_relative_positions", -1);
  return validateConfig(applyOverrides(preset("deberta-tiny"), {
    ...common,
    typeVocabSize: opt("type_vocab_size", 0),
    layerNormEps: opt("layer_norm_eps", 1e-7),
    positionBuckets: buckets > 0 ? buckets : 0,
    maxRelativePositions: maxRelative >= 1 ? maxRelative : maxPositions,
  }));
}

/**
 * Refuses a DebertaV2Config whose forward pass differs from rtdlab's DeBERTa encoder. Missing fields
 * take HuggingFace's defaults (e.g. `relative_attention` false, `position_biased_input` true), which
 * rtdlab does not implement either.
 */
function checkDebertaSettings(hf: Record<string, unknown>, source: string): void {
  const refuse = (key: string, want: string) => {
    throw new Error(
      `${source}: "${key}" is ${
        hf[key] === undefined ? "missing" : JSON.stringify(hf[key])
      }; rtdlab's DeBERTa encoder implements ${want} only`,
    );
  };
  if (hf.relative_attention !== true) refuse("relative_attention", "true");
  if (hf.position_biased_input !== false) refuse("position_biased_input", "false");
  if (hf.share_att_key !== true) refuse("share_att_key", "true");
  const norm = typeof hf.norm_rel_ebd === "string" ? hf.norm_rel_ebd.split("|").map((x) => x.trim()) : [];
  if (!norm.includes("layer_norm")) refuse("norm_rel_ebd", '"layer_norm"');
  const att = hf.pos_att_type;
  const attList = Array.isArray(att) ? att : typeof att === "string" ? att.toLowerCase().split("|") : [];
  if (attList.length !== 2 || !attList.includes("c2p") || !attList.includes("p2c")) {
    refuse("pos_att_type", '["p2c", "c2p"]');
  }
  if (typeof hf.conv_kernel_size === "number" && hf.conv_kernel_size > 0) refuse("conv_kernel_size", "0");
  if (hf.hidden_act !== undefined && hf.hidden_act !== "gelu") refuse("hidden_act", '"gelu"');
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
      }); a run writes export/ when it reaches its last step — finish it with \`${
        taskCommand(`pretrain --resume ${runDir}`)
      }\``,
    );
  }
  const [kind, modelDir] = found;
  const cfgPath = join(modelDir, "config.json");
  let hf: Record<string, unknown>;
  try {
    hf = JSON.parse(await Deno.readTextFile(cfgPath));
  } catch (e) {
    throw new Error(`cannot read ${cfgPath}: ${(e as Error).message}`);
  }
  const config = configFromHf(hf, cfgPath);
  const runConfigPath = join(runDir, "config.json");
  const runConfig = await Deno.readTextFile(runConfigPath).then(JSON.parse, () => null);
  if (runConfig?.backbone && runConfig.backbone !== config.backbone) {
    throw new Error(
      `${runConfigPath} says backbone "${runConfig.backbone}" but ${cfgPath} has model_type ` +
        `"${hf.model_type}" (backbone "${config.backbone}"); the export does not belong to this run`,
    );
  }
  const tokenizer = await WordPieceTokenizer.load(tokPath);
  if (tokenizer.vocabSize !== config.vocabSize) {
    throw new Error(
      `${tokPath} has ${tokenizer.vocabSize} tokens but ${cfgPath} says vocab_size ${config.vocabSize}`,
    );
  }
  const weights = new Map<string, HostTensor>();
  if (opts.source !== "scratch") {
    const stPath = join(modelDir, "model.safetensors");
    const st = await loadSafetensors(stPath);
    const prefix = encoderWeightPrefix(config.backbone);
    for (const [name, t] of st.tensors) if (name.startsWith(prefix)) weights.set(name, t);
    if (weights.size === 0) {
      throw new Error(
        `${stPath} holds no ${prefix}* tensors, the encoder weights of model_type "${hf.model_type}"`,
      );
    }
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

/** Pre-trained encoder (ELECTRA or DeBERTa) + classification head over named parameters. */
export class SequenceClassifier {
  /** The encoder-only model of `config.backbone`; the head's parameters live in the same store. */
  readonly encoder: RtdModel;
  /** Number of classes. */
  readonly numLabels: number;

  /**
   * A classifier for `numLabels` classes on a `config.backbone` encoder: encoder weights from `weights`
   * (HF names, `electra.*` or `deberta.*`; empty = random init from `seed`), head initialised
   * normal(0, initStd) from `seed`.
   */
  constructor(config: RunConfig, numLabels: number, weights: Map<string, HostTensor>, seed: number) {
    if (!(Number.isInteger(numLabels) && numLabels >= 2)) {
      throw new Error(`need at least 2 classes, got ${numLabels}`);
    }
    this.encoder = createModel(config, seed, { encoderOnly: true });
    this.numLabels = numLabels;
    if (weights.size > 0) {
      const named = new Map<string, HostTensor>();
      for (const [n, t] of weights) named.set(`discriminator.${n}`, t);
      this.encoder.params.assignFrom(named, `pre-trained ${config.backbone} encoder`);
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
   * Depth of a parameter for layer-wise LR decay: embeddings 0 (for DeBERTa also the relative
   * embeddings `encoder.rel_embeddings` and their LayerNorm `encoder.LayerNorm`, which every layer
   * reads), layer i → i + 1, the head (and anything above the encoder) numLayers + 1.
   */
  depth(name: string): number {
    const m = /\.encoder\.layer\.(\d+)\./.exec(name);
    if (m) return Number(m[1]) + 1;
    if (name.includes(".embeddings")) return 0;
    if (/\.encoder\.(rel_embeddings|LayerNorm)\./.test(name)) return 0;
    return this.encoder.config.discriminator.numLayers + 1;
  }

  /** Frees every variable. */
  dispose(): void {
    this.encoder.dispose();
  }
}

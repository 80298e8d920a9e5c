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
import type { RunConfig } from "../config.ts";
import { dense, dropout, gelu, type LayerContext } from "../model/layers.ts";
import { createModel, type EncoderInputs, type RtdModel } from "../model/mod.ts";
import type { ParameterStore } from "../model/params.ts";
import type { HostTensor } from "../io/safetensors.ts";
import { WordPieceTokenizer } from "../text/tokenizer.ts";
import { configFromHf } from "../model/hf_config.ts";
import { type HfModelFolder, isHfModelFolder, readHfModelFolder } from "../model/hf_folder.ts";
import { type LoadReport, loadStateDicts } from "../model/hf_load.ts";
import { jsonProblem, taskCommand } from "../util/cli.ts";
import { Rng } from "../rng.ts";
import { exists } from "../util/fs.ts";

export { configFromHf, encoderWeightPrefix, HF_MODEL_TYPES } from "../model/hf_config.ts";

/** Which exported network a classifier starts from. */
export type EncoderSource = "discriminator" | "mlm" | "scratch";

/** A pre-trained encoder on disk: where its weights are, its config and tokenizer. */
export interface PretrainedEncoder {
  /** The folder asked for: a run folder, or the model folder itself. */
  runDir: string;
  /** The HF model folder the encoder comes from (`RUN/export/discriminator`, `RUN/export/mlm`, or `runDir`). */
  modelDir: string;
  /** Its `model.safetensors`. */
  weightsPath: string;
  /** Which export it is. */
  source: EncoderSource;
  /** Model config (sizes from the export's config.json). */
  config: RunConfig;
  /** The tokenizer (the run's, else the model folder's). */
  tokenizer: WordPieceTokenizer;
  /** Embedding-sharing mode of the pre-training run (from an rtdlab export's config.json), if recorded. */
  sharing: string | null;
  /**
   * The checkpoint's tensors by HF name (empty for "scratch"): the encoder's `electra.*` (ELECTRA) or
   * `deberta.*` (DeBERTa) weights, plus any heads, which the classifier reports as not used.
   */
  weights: Map<string, HostTensor>;
}

/**
 * Finds and reads a pre-trained encoder. `dir` is either
 * - a HuggingFace model folder (config.json with model_type "electra" or "deberta-v2", model.safetensors,
 *   tokenizer.json or vocab.txt): an rtdlab export such as `RUN/export/discriminator`, or a checkpoint
 *   trained elsewhere (e.g. an ElectraForPreTraining discriminator);
 * - an rtdlab run folder: `RUN/export/discriminator` (RTD runs), else `RUN/export/mlm` (the MLM
 *   baseline), with `RUN/tokenizer.json`; or an export folder holding `discriminator/` or `mlm/`.
 * `source: "scratch"` reads the config and tokenizer but no weights: the no-pre-training control.
 */
export async function loadPretrainedEncoder(
  dir: string,
  opts: { source?: EncoderSource } = {},
): Promise<PretrainedEncoder> {
  if (!(await exists(dir))) throw new Error(`no such run or model folder: ${dir}`);
  const withWeights = opts.source !== "scratch";
  if (await isHfModelFolder(dir)) {
    if (opts.source === "discriminator" || opts.source === "mlm") {
      throw new Error(
        `--source ${opts.source} picks an export inside a run folder; ${dir} is a model folder itself ` +
          `(leave --source out, or use --source scratch)`,
      );
    }
    const folder = await readHfModelFolder(dir, { weights: withWeights });
    const arch = folder.config.architectures;
    const kind = Array.isArray(arch) && arch.some((a) => /ForMaskedLM$/.test(String(a)))
      ? "mlm"
      : "discriminator";
    return encoderFrom(dir, folder, withWeights ? kind : "scratch");
  }
  // A damaged config.json is named as such, not taken for a run folder without its export.
  const configText = await Deno.readTextFile(join(dir, "config.json")).catch(() => null);
  const damage = configText === null ? null : jsonProblem(configText);
  if (damage) throw new Error(`${join(dir, "config.json")} cannot be read (${damage})`);
  const runTokenizer = join(dir, "tokenizer.json");
  const candidates: [Exclude<EncoderSource, "scratch">, string][] = [
    ["discriminator", join(dir, "export", "discriminator")],
    ["mlm", join(dir, "export", "mlm")],
    ["discriminator", join(dir, "discriminator")],
    ["mlm", join(dir, "mlm")],
  ];
  const wanted = opts.source && opts.source !== "scratch"
    ? candidates.filter(([s]) => s === opts.source)
    : candidates;
  let found: [Exclude<EncoderSource, "scratch">, string] | undefined;
  for (const c of wanted) if (!found && await exists(join(c[1], "config.json"))) found = c;
  if (!found) {
    if (!(await exists(runTokenizer))) {
      throw new Error(
        `${dir} is neither a HuggingFace model folder (config.json + model.safetensors + tokenizer.json or ` +
          `vocab.txt) nor an rtdlab run folder (tokenizer.json + export/)`,
      );
    }
    const exports = wanted.filter(([, d]) => d.includes(join(dir, "export")));
    // A finished run of another kind: its export/ holds the other model, and resuming would change nothing.
    const other = candidates.filter(([s, d]) => d.includes(join(dir, "export")) && s !== opts.source);
    const there: string[] = [];
    for (const [s, d] of other) if (await exists(join(d, "config.json"))) there.push(s);
    if (opts.source && opts.source !== "scratch" && there.length) {
      throw new Error(
        `${dir}'s export/ holds ${there.join(" and ")}${
          there[0] === "discriminator" ? " and generator" : ""
        }, ` +
          `not ${opts.source}: it is ${
            there[0] === "mlm" ? "an MLM run (no discriminator)" : "an RTD run (no MLM model)"
          }; leave --source out, or give --source ${there[0]}`,
      );
    }
    throw new Error(
      `${dir} has no exported ${exports.map(([s]) => s).join(" or ")} model (${
        exports.map(([, d]) => join(d, "model.safetensors")).join(", ")
      }); a run writes export/ when it reaches its last step — finish it with \`${
        taskCommand(`pretrain --resume ${dir}`)
      }\``,
    );
  }
  const [kind, modelDir] = found;
  const folder = await readHfModelFolder(modelDir, { weights: withWeights });
  // A run folder's own tokenizer.json is the one its ids came from (exports made before rtdlab wrote
  // tokenizers into them have no other).
  if (await exists(runTokenizer)) {
    folder.tokenizer = { tokenizer: await WordPieceTokenizer.load(runTokenizer), path: runTokenizer };
  }
  const enc = encoderFrom(dir, folder, withWeights ? kind : "scratch");
  const runConfigPath = join(dir, "config.json");
  const runConfig = await Deno.readTextFile(runConfigPath).then(JSON.parse, () => null);
  if (runConfig?.backbone && runConfig.backbone !== enc.config.backbone) {
    throw new Error(
      `${runConfigPath} says backbone "${runConfig.backbone}" but ${folder.configPath} has model_type ` +
        `"${folder.config.model_type}" (backbone "${enc.config.backbone}"); the export does not belong to this run`,
    );
  }
  return enc;
}

/** The encoder of a model folder already read: config, tokenizer (required) and weights. */
function encoderFrom(runDir: string, folder: HfModelFolder, source: EncoderSource): PretrainedEncoder {
  const config = configFromHf(folder.config, folder.configPath);
  if (!folder.tokenizer) {
    throw new Error(`${folder.dir} has no tokenizer.json or vocab.txt (a model folder needs its tokenizer)`);
  }
  const { tokenizer, path: tokPath } = folder.tokenizer;
  if (tokenizer.vocabSize !== config.vocabSize) {
    throw new Error(
      `${tokPath} has ${tokenizer.vocabSize} tokens but ${folder.configPath} says vocab_size ${config.vocabSize}`,
    );
  }
  const rtdlab = folder.config.rtdlab as { sharing?: string } | undefined;
  return {
    runDir,
    modelDir: folder.dir,
    weightsPath: folder.weightsPath,
    source,
    config,
    tokenizer,
    sharing: rtdlab?.sharing ?? null,
    weights: source === "scratch" ? new Map() : folder.tensors,
  };
}

/** Forward options of the classifier. */
export interface ClassifierForward {
  /** Training mode: dropout on. */
  training: boolean;
  /** Dropout seeds come from here (required when training). */
  rng?: Rng;
}

/** Pre-trained encoder (ELECTRA or DeBERTa) + classification head over named parameters. */
export class SequenceClassifier {
  /** The encoder-only model of `config.backbone`; the head's parameters live in the same store. */
  readonly encoder: RtdModel;
  /** Number of classes. */
  readonly numLabels: number;
  /** What loading the pre-trained weights did (null for random init): tensors not used, by name. */
  readonly loadReport: LoadReport | null;

  /**
   * A classifier for `numLabels` classes on a `config.backbone` encoder: encoder weights from `weights`
   * (HF names, `electra.*` or `deberta.*`, from the file `source`; empty = random init from `seed`),
   * head initialised normal(0, initStd) from `seed`. A missing or mis-shaped encoder tensor is an
   * error naming it; tensors the encoder does not use (pre-training heads) are reported in `loadReport`.
   */
  constructor(
    config: RunConfig,
    numLabels: number,
    weights: Map<string, HostTensor>,
    seed: number,
    source = `pre-trained ${config.backbone} encoder`,
  ) {
    if (!(Number.isInteger(numLabels) && numLabels >= 2)) {
      throw new Error(`need at least 2 classes, got ${numLabels}`);
    }
    this.encoder = createModel(config, seed, { encoderOnly: true });
    this.numLabels = numLabels;
    try {
      this.loadReport = weights.size > 0
        ? loadStateDicts(this.encoder, { discriminator: { path: source, tensors: weights } })
        : null;
    } catch (e) {
      this.encoder.dispose();
      throw e;
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
    return new SequenceClassifier(enc.config, numLabels, enc.weights, seed, enc.weightsPath);
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

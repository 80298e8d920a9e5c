/**
 * HuggingFace `config.json` → rtdlab model sizes: ElectraConfig (`model_type` "electra") and
 * DebertaV2Config (`model_type` "deberta-v2", as rtdlab's DeBERTa backbone computes it). A setting
 * rtdlab's encoders do not implement is refused by name, so a checkpoint never runs through a forward
 * pass that differs from the one it was trained with.
 *
 * @module
 */

import { applyOverrides, generatorSize, preset, type RunConfig, validateConfig } from "../config.ts";

/** HF `model_type` → rtdlab backbone. */
export const HF_MODEL_TYPES: Readonly<Record<string, RunConfig["backbone"]>> = {
  "electra": "electra",
  "deberta-v2": "deberta",
};

/** Weight-name prefix of a backbone's encoder in an HF checkpoint (`electra.` / `deberta.`). */
export function encoderWeightPrefix(backbone: RunConfig["backbone"]): string {
  return backbone === "deberta" ? "deberta." : "electra.";
}

/** The architecture keys of a {@link RunConfig} that an HF config.json determines. */
export type Architecture = Pick<
  RunConfig,
  | "backbone"
  | "vocabSize"
  | "embeddingSize"
  | "maxPositions"
  | "typeVocabSize"
  | "layerNormEps"
  | "dropout"
  | "initStd"
  | "positionBuckets"
  | "maxRelativePositions"
  | "discriminator"
>;

/** The backbone an HF config names; unknown model types are refused naming the file. */
export function backboneOf(hf: Record<string, unknown>, source: string): RunConfig["backbone"] {
  const type = hf.model_type;
  if (typeof type === "string" && Object.hasOwn(HF_MODEL_TYPES, type)) return HF_MODEL_TYPES[type];
  throw new Error(
    `${source}: unknown model_type ${JSON.stringify(type)}; rtdlab reads ${
      Object.keys(HF_MODEL_TYPES).map((t) => `"${t}"`).join(" and ")
    } models`,
  );
}

/** The sizes a generator's and a discriminator's folders must agree on (the shared embeddings' shapes). */
export const SHARED_ARCHITECTURE_KEYS = [
  "backbone",
  "vocabSize",
  "embeddingSize",
  "maxPositions",
  "typeVocabSize",
  "layerNormEps",
  "positionBuckets",
  "maxRelativePositions",
] as const;

/** The architecture an HF config describes (one encoder's sizes, as the `discriminator` sizes). */
export function architectureFromHf(hf: Record<string, unknown>, source: string): Architecture {
  const backbone = backboneOf(hf, source);
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
    dropout: opt("hidden_dropout_prob", 0.1),
    initStd: opt("initializer_range", 0.02),
    discriminator: {
      hiddenSize: hidden,
      numLayers: num("num_hidden_layers"),
      numHeads: num("num_attention_heads"),
      intermediateSize: num("intermediate_size"),
    },
  };
  if (backbone === "electra") {
    checkElectraSettings(hf, source);
    const base = preset("tiny");
    return {
      ...common,
      typeVocabSize: num("type_vocab_size"),
      layerNormEps: opt("layer_norm_eps", 1e-12),
      positionBuckets: base.positionBuckets,
      maxRelativePositions: base.maxRelativePositions,
    };
  }
  checkDebertaSettings(hf, source);
  // HF DebertaV2: position_buckets ≤ 0 means no log buckets; max_relative_positions < 1 means max_position_embeddings.
  const buckets = opt("position_buckets", -1);
  const maxRelative = opt("max_relative_positions", -1);
  return {
    ...common,
    typeVocabSize: opt("type_vocab_size", 0),
    layerNormEps: opt("layer_norm_eps", 1e-7),
    positionBuckets: buckets > 0 ? buckets : 0,
    maxRelativePositions: maxRelative >= 1 ? maxRelative : maxPositions,
  };
}

/**
 * RunConfig sizes from an HF config object: ElectraConfig (`model_type` "electra") or DebertaV2Config
 * (`model_type` "deberta-v2", as rtdlab's DeBERTa backbone computes it: relative attention with c2p +
 * p2c, shared attention keys, LayerNorm'd relative embeddings, no absolute positions in the input).
 * Unknown fields are ignored; a setting rtdlab's encoder does not implement is refused by name.
 */
export function configFromHf(hf: Record<string, unknown>, source: string): RunConfig {
  const arch = architectureFromHf(hf, source);
  const base = preset(arch.backbone === "deberta" ? "deberta-tiny" : "tiny");
  return validateConfig(applyOverrides(base, {
    ...arch,
    seqLength: Math.min(128, arch.maxPositions),
    sharing: "nes",
  }));
}

/**
 * A pre-training config for a discriminator + generator pair of HF configs (or, for the MLM baseline,
 * one masked-LM config as `discriminator`): the sizes come from the folders, everything else (training
 * settings, sharing) from `base`. The two configs must agree on what the networks share (vocabulary,
 * embedding size, positions, token types, LayerNorm eps, relative positions), and the generator's
 * heads and FFN must be what rtdlab derives from its width (max(1, H/64) heads, FFN 4H).
 */
export function configFromHfPair(
  base: RunConfig,
  disc: { hf: Record<string, unknown>; source: string },
  gen?: { hf: Record<string, unknown>; source: string },
): RunConfig {
  const d = architectureFromHf(disc.hf, disc.source);
  const overrides: Record<string, unknown> = { ...d, seqLength: Math.min(base.seqLength, d.maxPositions) };
  if (gen) {
    const g = architectureFromHf(gen.hf, gen.source);
    for (const k of SHARED_ARCHITECTURE_KEYS) {
      if (g[k] !== d[k]) {
        throw new Error(
          `${gen.source} and ${disc.source} disagree on ${k} (${g[k]} vs ${d[k]}); ` +
            `the generator and the discriminator must share it`,
        );
      }
    }
    if (g.discriminator.hiddenSize > d.discriminator.hiddenSize) {
      throw new Error(
        `the generator (${gen.source}, hidden ${g.discriminator.hiddenSize}) is wider than the discriminator ` +
          `(${disc.source}, hidden ${d.discriminator.hiddenSize}); the generator is the smaller model: ` +
          `are the two folders swapped?`,
      );
    }
    overrides.generatorHiddenFraction = g.discriminator.hiddenSize / d.discriminator.hiddenSize;
    overrides.generatorLayers = g.discriminator.numLayers;
    const config = validateConfig(applyOverrides(base, overrides));
    const want = generatorSize(config);
    for (
      const [k, hfKey] of [["numHeads", "num_attention_heads"], [
        "intermediateSize",
        "intermediate_size",
      ]] as const
    ) {
      if (want[k] !== g.discriminator[k] || want.hiddenSize !== g.discriminator.hiddenSize) {
        throw new Error(
          `${gen.source}: "${hfKey}" is ${
            g.discriminator[k]
          }, but rtdlab derives the generator's ${k} from its ` +
            `hidden size ${g.discriminator.hiddenSize} (heads max(1, H/64) = ${want.numHeads}, FFN 4H = ` +
            `${want.intermediateSize})`,
        );
      }
    }
    return config;
  }
  return validateConfig(applyOverrides(base, overrides));
}

/** Refuses ElectraConfig settings rtdlab's ELECTRA encoder does not compute (exact GELU, absolute positions). */
function checkElectraSettings(hf: Record<string, unknown>, source: string): void {
  if (hf.hidden_act !== undefined && hf.hidden_act !== "gelu") {
    throw new Error(
      `${source}: "hidden_act" is ${
        JSON.stringify(hf.hidden_act)
      }; rtdlab's ELECTRA encoder implements "gelu" only`,
    );
  }
  const pos = hf.position_embedding_type;
  if (pos !== undefined && pos !== null && pos !== "absolute") {
    throw new Error(
      `${source}: "position_embedding_type" is ${
        JSON.stringify(pos)
      }; rtdlab's ELECTRA encoder implements "absolute" only`,
    );
  }
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

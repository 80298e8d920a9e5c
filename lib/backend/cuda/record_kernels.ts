/**
 * Records which tfjs kernels one rtdlab training step runs, by counting calls on the cpu backend,
 * and writes the list (lib/backend/cuda/KERNELS.md) the cuda backend must cover.
 *
 * ```sh
 * deno run -A lib/backend/cuda/record_kernels.ts            # prints the table
 * deno run -A lib/backend/cuda/record_kernels.ts --write    # rewrites KERNELS.md
 * ```
 *
 * Every kernel registered for "cpu" is re-registered with a counting wrapper, then one trainStep of
 * the micro configs of tests/_helpers.ts (ELECTRA ES, NES, GDES, MLM; DeBERTaV3 ES and GDES) runs.
 * The count includes the gradient kernels and AdamW's tensor path (the one non-host backends run;
 * `AdamW.hostUpdate` is switched off for the recording); model and optimiser construction is
 * counted separately ("setup").
 *
 * @module
 */
import * as tf from "../../tf.ts";
import { initBackend } from "../mod.ts";
import { applyOverrides, preset, type SharingMode, validateConfig } from "../../config.ts";
import { Pretrainer } from "../../train/pretrain.ts";
import { AdamW } from "../../train/optimizer.ts";
import { microConfig, randomBatch, VOCAB } from "../../../tests/_helpers.ts";

/** Calls of one kernel: total count, per-run counts and the input dtypes seen. */
export interface KernelUse {
  name: string;
  calls: number;
  runs: Record<string, number>;
  dtypes: Set<string>;
}

function debertaMicro(sharing: SharingMode) {
  return validateConfig(applyOverrides(preset("deberta-tiny"), {
    sharing,
    vocabSize: 64,
    maxPositions: 16,
    seqLength: 16,
    embeddingSize: sharing === "gdes" ? 16 : 32,
    "discriminator.hiddenSize": 32,
    "discriminator.numLayers": 1,
    "discriminator.numHeads": 2,
    "discriminator.intermediateSize": 64,
    generatorLayers: 1,
    positionBuckets: 8,
    maxRelativePositions: 16,
    batchSize: 2,
    warmupSteps: 0,
  }));
}

/** Runs one step of each micro config on cpu and returns the kernels it called. */
export async function recordKernels(): Promise<Map<string, KernelUse>> {
  await initBackend("cpu");
  // On cpu AdamW normally updates in host memory; the cuda backend runs the tensor path.
  AdamW.hostUpdate = false;
  const uses = new Map<string, KernelUse>();
  let run = "";
  for (const k of tf.getKernelsForBackend("cpu")) {
    const inner = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, "cpu");
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        const use = uses.get(k.kernelName) ??
          { name: k.kernelName, calls: 0, runs: {}, dtypes: new Set<string>() };
        use.calls++;
        use.runs[run] = (use.runs[run] ?? 0) + 1;
        for (const t of Object.values(args.inputs)) if (t) use.dtypes.add((t as tf.TensorInfo).dtype);
        uses.set(k.kernelName, use);
        return inner(args);
      },
    });
  }
  const configs: [string, ReturnType<typeof microConfig>][] = [
    ["electra-es", microConfig("es")],
    ["electra-nes", microConfig("nes")],
    ["electra-gdes", microConfig("gdes")],
    ["electra-mlm", microConfig("mlm")],
    ["deberta-es", debertaMicro("es")],
    ["deberta-gdes", debertaMicro("gdes")],
  ];
  for (const [name, cfg] of configs) {
    run = "setup";
    const t = new Pretrainer(cfg, VOCAB);
    run = name;
    await t.trainStep(randomBatch(1));
    run = "";
    t.dispose();
  }
  return uses;
}

/** KERNELS.md's text for recorded uses; `covered` marks the kernels the cuda backend registers. */
export function kernelsMarkdown(uses: Map<string, KernelUse>, covered: ReadonlySet<string>): string {
  const runs = [
    "setup",
    "electra-es",
    "electra-nes",
    "electra-gdes",
    "electra-mlm",
    "deberta-es",
    "deberta-gdes",
  ];
  const rows = [...uses.values()].sort((a, b) => b.calls - a.calls || a.name.localeCompare(b.name));
  const lines = [
    "# Kernels one rtdlab training step runs",
    "",
    "Recorded on the cpu backend by `deno run -A lib/backend/cuda/record_kernels.ts --write` (one",
    "`Pretrainer.trainStep` of each micro config from tests/_helpers.ts, forward, gradients and AdamW's",
    "tensor path, the one GPU backends run; do not edit by hand). `setup` counts the calls made while",
    "building the six models and their AdamW state (all runs together); the other columns count one",
    "step each. `cuda` says whether lib/backend/cuda/backend.ts registers the kernel.",
    "",
    `| kernel | calls | ${runs.join(" | ")} | input dtypes | cuda |`,
    `|---|---:|${runs.map(() => "---:").join("|")}|---|---|`,
  ];
  for (const u of rows) {
    const per = runs.map((r) => String(u.runs[r] ?? 0)).join(" | ");
    const dt = [...u.dtypes].sort().join(", ");
    lines.push(`| ${u.name} | ${u.calls} | ${per} | ${dt} | ${covered.has(u.name) ? "yes" : "**no**"} |`);
  }
  lines.push("", `${rows.length} kernels.`, "");
  return lines.join("\n");
}

if (import.meta.main) {
  const uses = await recordKernels();
  const { CUDA_KERNEL_NAMES } = await import("./backend.ts");
  const md = kernelsMarkdown(uses, new Set(CUDA_KERNEL_NAMES));
  if (Deno.args.includes("--write")) {
    const path = new URL("./KERNELS.md", import.meta.url).pathname;
    Deno.writeTextFileSync(path, md);
    // deno fmt pads the table; format now so `deno fmt --check` stays clean.
    new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", path] }).outputSync();
    console.log(`wrote lib/backend/cuda/KERNELS.md (${uses.size} kernels)`);
  } else console.log(md);
}

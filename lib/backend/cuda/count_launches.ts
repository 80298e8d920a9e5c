/**
 * Counts what one training step asks of a GPU — kernel launches, cuBLAS gemms, host waits — per tfjs
 * kernel, without a GPU: the cuda backend's host code drives the emulator (emulator.ts), which
 * counts exactly what a real device would be sent. Launch counts do not depend on the batch or the
 * sequence length, so a step of batch 2 × 16 tokens at the preset's real widths gives the same
 * counts as batch 128 × 128 on an H200 (tests/cuda_test.ts pins that).
 *
 * ```sh
 * deno run -A lib/backend/cuda/count_launches.ts                              # electra-small, gdes
 * deno run -A lib/backend/cuda/count_launches.ts --config tiny --sharing es
 * deno run -A lib/backend/cuda/count_launches.ts --unfused                    # without rtdlab's fused kernels
 * deno run -A lib/backend/cuda/count_launches.ts --time                       # host ms/step at b128 × 128
 * ```
 *
 * Why: at ELECTRA-Small sizes the cuda backend is host-bound (lib/backend/cuda/GPU_RUNS.md), so the
 * launches per step set its speed; this says where they go.
 *
 * @module
 */
import * as tf from "../../tf.ts";
import { initBackend } from "../mod.ts";
import { type CudaBackend, registerCudaBackend } from "./backend.ts";
import { emulatedCuda, nullCuda } from "./emulator.ts";
import { applyOverrides, preset, type SharingMode, validateConfig } from "../../config.ts";
import { Pretrainer, type PretrainVocab, type TokenBatch } from "../../train/pretrain.ts";
import { Rng } from "../../rng.ts";
import { useFusedKernels } from "../fused_kernels.ts";

/** What one step sent to the device: totals, and launches and gemms per tfjs kernel. */
export interface StepCounts {
  launches: number;
  gemms: number;
  syncs: number;
  copiesToHost: number;
  copiesToDevice: number;
  /** Host waits with launches still to come in the step: each stalls the pipeline mid-step. */
  midStepWaits: number;
  /** Per tfjs kernel: calls, and the launches and gemms they made. */
  byKernel: Map<string, { calls: number; launches: number; gemms: number }>;
}

// No underscore: tfjs-core's getKernelsForBackend splits its registry keys at the first "_".
const BACKEND = "cudacount";
let started = false;

/** A batch of `batch` sequences of `length` random ids ≥ 5, [CLS] first and [SEP] last. */
function randomBatch(vocabSize: number, batch: number, length: number, seed: number): TokenBatch {
  const rng = new Rng(seed);
  const inputIds = new Int32Array(batch * length);
  for (let i = 0; i < inputIds.length; i++) {
    const t = i % length;
    inputIds[i] = t === 0 ? 2 : t === length - 1 ? 3 : 5 + rng.int(vocabSize - 5);
  }
  return { inputIds, tokenTypeIds: new Int32Array(batch * length), batch, length };
}

/** A Pretrainer of preset `config` at batch × length on the active (counting) backend, and its counters. */
function trainerOnActiveBackend(
  config: string,
  sharing: SharingMode,
  batch: number,
  length: number,
  set: Record<string, unknown> = {},
) {
  const cfg = validateConfig(
    applyOverrides(preset(config), { sharing, seqLength: length, batchSize: batch, ...set }),
  );
  const vocab: PretrainVocab = { padId: 0, maskId: 4, vocabSize: cfg.vocabSize, isSpecial: (id) => id < 5 };
  const counters = (tf.backend() as unknown as { rt: { counters: Record<string, number> } }).rt.counters;
  return { cfg, counters, t: new Pretrainer(cfg, vocab) };
}

/**
 * Runs `steps` training steps of `config` (a preset name) with `sharing` on the emulated cuda
 * backend at batch × length tokens and returns the counts of the last one (the first allocates
 * optimiser state).
 */
export async function countStep(
  config: string,
  sharing: SharingMode,
  opts: { batch?: number; length?: number; steps?: number; set?: Record<string, unknown> } = {},
): Promise<StepCounts> {
  const batch = opts.batch ?? 2, length = opts.length ?? 16, steps = opts.steps ?? 2;
  if (!started) {
    await initBackend("cpu");
    const backend = registerCudaBackend(emulatedCuda(), BACKEND);
    const counters = backend.rt.counters;
    // Wrap every kernel to attribute launches to the tfjs kernel that made them.
    for (const k of tf.getKernelsForBackend(BACKEND)) {
      const inner = k.kernelFunc;
      tf.unregisterKernel(k.kernelName, BACKEND);
      tf.registerKernel({
        ...k,
        kernelFunc: (args) => {
          const l0 = counters.launches, g0 = counters.gemms;
          const out = inner(args);
          const use = current?.get(k.kernelName) ?? { calls: 0, launches: 0, gemms: 0 };
          use.calls++;
          use.launches += counters.launches - l0;
          use.gemms += counters.gemms - g0;
          current?.set(k.kernelName, use);
          return out;
        },
      });
    }
    started = true;
  }
  await tf.setBackend(BACKEND);
  const { cfg, counters, t } = trainerOnActiveBackend(config, sharing, batch, length, opts.set);
  let result: StepCounts | undefined;
  try {
    // The launch count at every host wait, to tell waits inside the step from those at its end.
    const rt = (tf.backend() as unknown as { rt: { synchronize(): void; wait(): Promise<void> } }).rt;
    const waitsAt: number[] = [];
    const [sync, wait] = [rt.synchronize.bind(rt), rt.wait.bind(rt)];
    rt.synchronize = () => (waitsAt.push(counters.launches + counters.gemms), sync());
    rt.wait = () => (waitsAt.push(counters.launches + counters.gemms), wait());
    for (let s = 0; s < steps; s++) {
      const before = { ...counters };
      current = new Map();
      waitsAt.length = 0;
      await t.trainStep(randomBatch(cfg.vocabSize, batch, length, s));
      const end = counters.launches + counters.gemms;
      result = {
        launches: counters.launches - before.launches,
        gemms: counters.gemms - before.gemms,
        syncs: counters.syncs - before.syncs,
        copiesToHost: counters.copiesToHost - before.copiesToHost,
        copiesToDevice: counters.copiesToDevice - before.copiesToDevice,
        midStepWaits: new Set(waitsAt.filter((at) => at < end)).size,
        byKernel: current,
      };
      current = undefined;
    }
  } finally {
    t.dispose();
  }
  return result!;
}

let current: Map<string, { calls: number; launches: number; gemms: number }> | undefined;

let nullStarted = false;

/**
 * The host's own time per training step of `config` at batch × length on the null device
 * (emulator.ts nullCuda: kernels compute nothing): tfjs's engine and autodiff, the backend's
 * bookkeeping and parameter packing, the trainer's host work. Median of `steps` after `warmup`
 * steps, in ms. On a GPU the step cannot be faster than this plus the driver's cost per call.
 * Also the device memory the run asks for: the allocator's peak bytes in use and the bytes it
 * reserved from the device (in use + cached), the same numbers a GPU would report.
 */
export async function hostTimePerStep(
  config: string,
  sharing: SharingMode,
  opts: { batch?: number; length?: number; steps?: number; warmup?: number; set?: Record<string, unknown> } =
    {},
): Promise<
  {
    ms: number;
    spread: [number, number];
    launches: number;
    gemms: number;
    peakBytes: number;
    reservedBytes: number;
  }
> {
  const batch = opts.batch ?? 128, length = opts.length ?? 128;
  const steps = opts.steps ?? 10, warmup = opts.warmup ?? 3;
  if (!nullStarted) {
    await initBackend("cpu");
    registerCudaBackend(nullCuda(), "cudanull");
    nullStarted = true;
  }
  await tf.setBackend("cudanull");
  const allocator = (tf.backend() as CudaBackend).allocator;
  allocator.emptyCache();
  allocator.resetPeak();
  const { cfg, counters, t } = trainerOnActiveBackend(config, sharing, batch, length, opts.set);
  const times: number[] = [];
  let launches = 0, gemms = 0, memory = allocator.stats();
  try {
    for (let s = 0; s < warmup + steps; s++) {
      const b = randomBatch(cfg.vocabSize, batch, length, s);
      const [l0, g0] = [counters.launches, counters.gemms];
      const t0 = performance.now();
      await t.trainStep(b);
      if (s >= warmup) times.push(performance.now() - t0);
      [launches, gemms] = [counters.launches - l0, counters.gemms - g0];
    }
    memory = allocator.stats();
  } finally {
    t.dispose();
  }
  times.sort((a, b) => a - b);
  return {
    ms: times[Math.floor(times.length / 2)],
    spread: [times[0], times[times.length - 1]],
    launches,
    gemms,
    peakBytes: memory.peakBytesInUse,
    reservedBytes: memory.bytesReserved,
  };
}

/** A markdown table of `counts`, kernels by launches + gemms, largest first. */
export function countsMarkdown(counts: StepCounts): string {
  const rows = [...counts.byKernel.entries()].sort((a, b) =>
    (b[1].launches + b[1].gemms) - (a[1].launches + a[1].gemms) || a[0].localeCompare(b[0])
  );
  const calls = [...counts.byKernel.values()].reduce((n, u) => n + u.calls, 0);
  const lines = [
    `tfjs kernel calls ${calls}, launches ${counts.launches}, gemms ${counts.gemms}, host waits ${counts.syncs} ` +
    `(${counts.midStepWaits} before the step's last launch), ` +
    `copies to host ${counts.copiesToHost}, to device ${counts.copiesToDevice}`,
    "",
    "| tfjs kernel | calls | launches | gemms |",
    "|---|---:|---:|---:|",
  ];
  for (const [name, u] of rows) lines.push(`| ${name} | ${u.calls} | ${u.launches} | ${u.gemms} |`);
  return lines.join("\n");
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      config: { type: "string", default: "electra-small" },
      sharing: { type: "string", default: "gdes" },
      unfused: { type: "boolean", default: false },
      time: { type: "boolean", default: false },
      batch: { type: "string", default: "128" },
      length: { type: "string", default: "128" },
    },
    strict: true,
  });
  if (values.unfused) useFusedKernels(false);
  if (values.time) {
    const [batch, length] = [Number(values.batch), Number(values.length)];
    const r = await hostTimePerStep(values.config!, values.sharing as SharingMode, { batch, length });
    console.log(
      `${values.config} ${values.sharing} b${batch}×${length}${
        values.unfused ? " (unfused)" : ""
      } on the null device: ` +
        `host ${r.ms.toFixed(1)} ms/step (range ${r.spread.map((v) => v.toFixed(1)).join("-")}), ` +
        `${r.launches} launches + ${r.gemms} gemms; device memory ${(r.peakBytes / 1e9).toFixed(2)} GB ` +
        `peak in use, ${(r.reservedBytes / 1e9).toFixed(2)} GB reserved (what a GPU must have free)`,
    );
    Deno.exit(0);
  }
  const counts = await countStep(values.config!, values.sharing as SharingMode);
  console.log(`${values.config} ${values.sharing}${values.unfused ? " (unfused)" : ""}: one training step`);
  console.log(countsMarkdown(counts));
}

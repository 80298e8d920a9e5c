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
import { applyOverrides, preset, type RunConfig, type SharingMode, validateConfig } from "../../config.ts";
import { Pretrainer, type TokenBatch } from "../../train/pretrain.ts";
import { benchVocab } from "../../bench/case.ts";
import { Rng } from "../../rng.ts";
import { useFusedKernels } from "../fused_kernels.ts";
import { type DevicePeak, REFERENCE_PEAKS } from "./driver.ts";

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

/**
 * Re-registers every kernel of `backend` through `around(kernelName, args, run)`, which must call
 * `run()` and return its result: a place to count what each tfjs kernel call asks of the device.
 */
function wrapKernels(
  backend: string,
  around: (
    name: string,
    args: Parameters<tf.KernelFunc>[0],
    run: () => ReturnType<tf.KernelFunc>,
  ) => ReturnType<tf.KernelFunc>,
): void {
  for (const k of tf.getKernelsForBackend(backend)) {
    const inner = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, backend);
    tf.registerKernel({ ...k, kernelFunc: (args) => around(k.kernelName, args, () => inner(args)) });
  }
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
  const counters = (tf.backend() as unknown as { rt: { counters: Record<string, number> } }).rt.counters;
  return { cfg, counters, t: new Pretrainer(cfg, benchVocab(cfg.vocabSize)) };
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
    // Attribute launches to the tfjs kernel that made them.
    wrapKernels(BACKEND, (name, _args, run) => {
      const l0 = counters.launches, g0 = counters.gemms;
      const out = run();
      const use = current?.get(name) ?? { calls: 0, launches: 0, gemms: 0 };
      use.calls++;
      use.launches += counters.launches - l0;
      use.gemms += counters.gemms - g0;
      current?.set(name, use);
      return out;
    });
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
  // V8's JIT and the garbage collector make short runs noisy: 10 warm-up steps, the median of 30.
  const steps = opts.steps ?? 30, warmup = opts.warmup ?? 10;
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

/** What one tfjs kernel's calls in a step must move and compute on the device, at the least. */
export interface KernelWork {
  calls: number;
  /** Bytes of the calls' inputs and outputs: each read or written once. */
  bytes: number;
  /** Operations of the calls' gemms (2·m·n·k each). */
  flops: number;
  /** Σ over calls of max(bytes / bandwidth, flops / FP32 rate) at `peak`, in ms. */
  floorMs: number;
}

/** The least device time of one training step: per tfjs kernel, and in all. */
export interface StepWork {
  peak: DevicePeak;
  floorMs: number;
  bytes: number;
  flops: number;
  byKernel: Map<string, KernelWork>;
}

let workStarted = false;
let work: { byKernel: Map<string, KernelWork>; flops: number; peak: DevicePeak } | undefined;

/**
 * The least time a device with `peak` rates could take for one training step of `cfg` (its batch
 * size and sequence length): every tfjs kernel call that reaches the device (a launch, a gemm) reads each input
 * and writes each output once at the memory's peak bandwidth, or does its gemms' operations at the
 * peak FP32 rate, whichever takes longer; summed over the step's calls. A floor, not a prediction:
 * real kernels read some inputs more than once, and no kernel reaches either peak. Against the
 * host's own time per step (`hostTimePerStep`) it says which side can bound the step on that GPU;
 * against a kernel's measured device time (`bench --profile`) it says how far that kernel is from
 * what its traffic allows. Runs on the null device (no GPU needed).
 */
export async function stepWork(cfg: RunConfig, peak: DevicePeak): Promise<StepWork> {
  if (!workStarted) {
    await initBackend("cpu");
    const rt = nullCuda();
    // Device work beside launches and gemms: fills and device-to-device copies.
    let fillsAndCopies = 0;
    const [sgemm, memset, copy] = [rt.sgemmBatched.bind(rt), rt.memsetD32.bind(rt), rt.copyDtoD.bind(rt)];
    rt.sgemmBatched = (ta, tb, m, n, k, a, sa, b, sb, c, count, beta) => {
      if (work) work.flops += 2 * m * n * k * count;
      return sgemm(ta, tb, m, n, k, a, sa, b, sb, c, count, beta);
    };
    rt.memsetD32 = (dst, word, count) => (fillsAndCopies++, memset(dst, word, count));
    rt.copyDtoD = (dst, src, bytes) => (fillsAndCopies++, copy(dst, src, bytes));
    const counters = registerCudaBackend(rt, "cudawork").rt.counters;
    const deviceOps = () => counters.launches + counters.gemms + fillsAndCopies;
    wrapKernels("cudawork", (name, args, run) => {
      const ops0 = deviceOps(), flops0 = work?.flops ?? 0;
      const out = run();
      if (!work || deviceOps() === ops0) return out; // an alias (Reshape, Identity): no device work
      // Every tensor is 4 bytes an element on the device (backend.ts).
      const tensors = [...Object.values(args.inputs), ...(Array.isArray(out) ? out : [out])];
      const bytes = tensors.reduce((n, t) => n + 4 * (t?.shape.reduce((a, b) => a * b, 1) ?? 0), 0);
      const flops = work.flops - flops0;
      const w = work.byKernel.get(name) ?? { calls: 0, bytes: 0, flops: 0, floorMs: 0 };
      w.calls++;
      w.bytes += bytes;
      w.flops += flops;
      w.floorMs += 1e3 * Math.max(bytes / work.peak.memoryBytesPerS, flops / work.peak.fp32FlopsPerS);
      work.byKernel.set(name, w);
      return out;
    });
    workStarted = true;
  }
  await tf.setBackend("cudawork");
  const t = new Pretrainer(cfg, benchVocab(cfg.vocabSize));
  try {
    // The second step: the first also makes the optimiser's state.
    for (let s = 0; s < 2; s++) {
      work = { byKernel: new Map(), flops: 0, peak };
      await t.trainStep(randomBatch(cfg.vocabSize, cfg.batchSize, cfg.seqLength, s));
    }
  } finally {
    t.dispose();
  }
  const byKernel = work!.byKernel;
  work = undefined;
  const sum = (f: (w: KernelWork) => number) => [...byKernel.values()].reduce((n, w) => n + f(w), 0);
  return {
    peak,
    floorMs: sum((w) => w.floorMs),
    bytes: sum((w) => w.bytes),
    flops: sum((w) => w.flops),
    byKernel,
  };
}

/** A markdown table of the `top` tfjs kernels by their floor in `w`. */
export function workMarkdown(w: StepWork, top = 12): string {
  const rows = [...w.byKernel.entries()].sort((a, b) => b[1].floorMs - a[1].floorMs).slice(0, top);
  const lines = ["| tfjs kernel | calls | GB moved | GFLOP | floor ms |", "|---|---:|---:|---:|---:|"];
  for (const [name, k] of rows) {
    lines.push(
      `| ${name} | ${k.calls} | ${(k.bytes / 1e9).toFixed(2)} | ${(k.flops / 1e9).toFixed(1)} | ${
        k.floorMs.toFixed(2)
      } |`,
    );
  }
  return lines.join("\n");
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
  const { intOption, parseArgsOrExit } = await import("../../util/cli.ts");
  const { values } = parseArgsOrExit({
    args: Deno.args,
    options: {
      config: { type: "string", default: "electra-small" },
      sharing: { type: "string", default: "gdes" },
      unfused: { type: "boolean", default: false },
      time: { type: "boolean", default: false },
      batch: { type: "string", default: "128" },
      length: { type: "string", default: "128" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(
      "count_launches.ts — what one cuda training step asks of a GPU (launches, gemms, host waits per tfjs\n" +
        "kernel), counted on the host emulator: no GPU needed\n\n" +
        "  --config NAME   model preset  [electra-small]\n  --sharing MODE  es|nes|gdes  [gdes]\n" +
        "  --unfused       without rtdlab's fused kernels\n" +
        "  --time          the host's own ms/step on the null device, its device memory, and the step's\n" +
        "                  least device time on reference GPUs, at --batch × --length  [128 × 128]",
    );
    Deno.exit(0);
  }
  let batch = 0, length = 0;
  try {
    [batch, length] = [intOption("batch", values.batch, 1)!, intOption("length", values.length, 1)!];
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
  if (values.unfused) useFusedKernels(false);
  if (values.time) {
    const r = await hostTimePerStep(values.config!, values.sharing as SharingMode, { batch, length });
    console.log(
      `${values.config} ${values.sharing} b${batch}×${length}${
        values.unfused ? " (unfused)" : ""
      } on the null device: ` +
        `host ${r.ms.toFixed(1)} ms/step (range ${r.spread.map((v) => v.toFixed(1)).join("-")}), ` +
        `${r.launches} launches + ${r.gemms} gemms; device memory ${(r.peakBytes / 1e9).toFixed(2)} GB ` +
        `peak in use, ${(r.reservedBytes / 1e9).toFixed(2)} GB reserved (what a GPU must have free)`,
    );
    const cfg = validateConfig(
      applyOverrides(preset(values.config!), {
        sharing: values.sharing,
        seqLength: length,
        batchSize: batch,
      }),
    );
    for (const [gpu, peak] of Object.entries(REFERENCE_PEAKS)) {
      const w = await stepWork(cfg, peak);
      console.log(
        `\nthe least device time of that step on an ${gpu} (${peak.memoryBytesPerS / 1e12} TB/s, ` +
          `${peak.fp32FlopsPerS / 1e12} FP32 TFLOPS): ${w.floorMs.toFixed(1)} ms ` +
          `(${(w.bytes / 1e9).toFixed(1)} GB moved, ${(w.flops / 1e12).toFixed(2)} TFLOP)`,
      );
      console.log(workMarkdown(w));
    }
    Deno.exit(0);
  }
  const counts = await countStep(values.config!, values.sharing as SharingMode);
  console.log(`${values.config} ${values.sharing}${values.unfused ? " (unfused)" : ""}: one training step`);
  console.log(countsMarkdown(counts));
}

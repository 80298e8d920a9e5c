/**
 * On a GPU: is a training step bound by the host or by the device? Measures, in one run,
 *
 * 1. the host's cost of one kernel launch and one cuBLAS call (20,000 tiny ones, enqueued back to
 *    back; the device finishes each in a few µs, so the host's enqueue rate is what shows),
 * 2. the host's own time per training step on the null device (emulator.ts nullCuda: same tfjs work,
 *    no driver, no device),
 * 3. the real step on the GPU (wall ms, launches and gemms),
 * 4. the least device time of that step at the GPU's peak rates (count_launches.ts `stepWork`).
 *
 * wall ≈ null-device host time + launches × launch cost → host-bound (fewer launches, a CUDA graph
 * help); wall well above it → device-bound: near the floor (4), the device is near its peaks; well
 * above it, faster kernels help (`deno task bench --profile --backends cuda` gives each kernel's
 * device time beside its floor).
 *
 * ```sh
 * deno run -A lib/backend/cuda/probe.ts [--config electra-small] [--batch 128]   # needs a GPU
 * ```
 *
 * @module
 */
import * as tf from "../../tf.ts";
import { initBackend } from "../mod.ts";
import type { CudaBackend } from "./backend.ts";
import { peakOf } from "./driver.ts";
import { hostTimePerStep, stepWork } from "./count_launches.ts";
import { applyOverrides, preset, type SharingMode, validateConfig } from "../../config.ts";
import { Pretrainer } from "../../train/pretrain.ts";
import { Rng } from "../../rng.ts";
import { intOption, parseArgsOrExit } from "../../util/cli.ts";

const { values } = parseArgsOrExit({
  args: Deno.args,
  options: {
    config: { type: "string", default: "electra-small" },
    sharing: { type: "string", default: "gdes" },
    batch: { type: "string", default: "128" },
    steps: { type: "string", default: "5" },
    help: { type: "boolean", default: false },
  },
  strict: true,
});
if (values.help) {
  console.log(
    "probe.ts — is a cuda training step host- or device-bound?\n\n" +
      "  --config NAME   model preset  [electra-small]\n  --sharing MODE  es|nes|gdes  [gdes]\n" +
      "  --batch N       sequences per step (128 tokens each)  [128]\n  --steps N       timed steps  [5]",
  );
  Deno.exit(0);
}
let batch = 0, steps = 0;
try {
  [batch, steps] = [intOption("batch", values.batch, 1)!, intOption("steps", values.steps, 1)!];
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(2);
}
const sharing = values.sharing as SharingMode;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// 2. Host time on the null device (first: it needs no GPU).
// V8's JIT and the garbage collector make short runs noisy: 10 warm-up steps, the median of 30 or more.
const host = await hostTimePerStep(values.config!, sharing, {
  batch,
  length: 128,
  steps: Math.max(30, steps),
  warmup: 10,
});

// 1. Launch and gemm cost.
console.log(
  `null device: host ${host.ms.toFixed(1)} ms per ${values.config} b${batch} step, ` +
    `${host.launches} launches + ${host.gemms} gemms`,
);
try {
  // RTDLAB_CUDA_EMULATE=simt runs the rest on kernels.cu on the host: its code, not its numbers.
  await initBackend("cuda");
} catch (e) {
  console.error(`probe: the rest needs a GPU: ${(e as Error).message}`);
  Deno.exit(1);
}
const backend = tf.backend() as CudaBackend;
const rt = backend.rt;
const x = tf.ones([1]), y = tf.ones([1]);
const N = Number(Deno.env.get("RTDLAB_PROBE_CALLS") ?? 20_000);
let t0 = performance.now();
for (let i = 0; i < N; i++) {
  backend.launch("unary_f32", 1, (p) => p.i32(0).i32(1).ptr(backend.ptr(x)).ptr(backend.ptr(y)).f32(0));
}
const launchEnqueueUs = (performance.now() - t0) * 1000 / N;
rt.synchronize();
const launchTotalUs = (performance.now() - t0) * 1000 / N;
t0 = performance.now();
for (let i = 0; i < N; i++) {
  rt.sgemmBatched(false, false, 1, 1, 1, backend.ptr(x), 0, backend.ptr(x), 0, backend.ptr(y), 1);
}
const gemmEnqueueUs = (performance.now() - t0) * 1000 / N;
rt.synchronize();
const gemmTotalUs = (performance.now() - t0) * 1000 / N;
tf.dispose([x, y]);

const cfg = validateConfig(
  applyOverrides(preset(values.config!), { sharing, batchSize: batch, seqLength: 128 }),
);
// 4. The least time this GPU's device could take for the step (on the null device, at its peak rates).
const { peak, source } = peakOf(rt.info);
const floor = await stepWork(cfg, peak);
await tf.setBackend("cuda");

// 3. The real step.
const trainer = new Pretrainer(cfg, {
  padId: 0,
  maskId: 4,
  vocabSize: cfg.vocabSize,
  isSpecial: (id) => id < 5,
});
const rng = new Rng(0);
const nextBatch = () => {
  const inputIds = new Int32Array(batch * 128);
  for (let i = 0; i < inputIds.length; i++) inputIds[i] = 5 + rng.int(cfg.vocabSize - 5);
  return { inputIds, tokenTypeIds: new Int32Array(batch * 128), batch, length: 128 };
};
for (let i = 0; i < 2; i++) await trainer.trainStep(nextBatch());
const wall: number[] = [], ops: number[] = [];
for (let i = 0; i < steps; i++) {
  const b = nextBatch();
  rt.synchronize();
  const c0 = rt.counters.launches + rt.counters.gemms;
  const t = performance.now();
  await trainer.trainStep(b);
  rt.synchronize();
  wall.push(performance.now() - t);
  ops.push(rt.counters.launches + rt.counters.gemms - c0);
}
trainer.dispose();
const report = {
  config: values.config,
  sharing,
  batch,
  launch_us: { enqueue: launchEnqueueUs, with_device: launchTotalUs },
  gemm_us: { enqueue: gemmEnqueueUs, with_device: gemmTotalUs },
  null_device_host_ms_per_step: host.ms,
  // Device memory: what the null device's allocator predicted, and what the GPU's reserved.
  null_device_peak_gb: host.peakBytes / 1e9,
  null_device_reserved_gb: host.reservedBytes / 1e9,
  device_reserved_gb: backend.allocator.stats().bytesReserved / 1e9,
  step_wall_ms: median(wall),
  launches_and_gemms_per_step: median(ops),
  // What the host alone needs per step: its own work plus one enqueue per launch and gemm. Near the
  // wall time: host-bound. Well below it: the device is the bound (bench --profile says which kernels).
  estimated_host_ms: host.ms + host.launches * launchEnqueueUs / 1000 + host.gemms * gemmEnqueueUs / 1000,
  // The least device time: every kernel's inputs and outputs moved once at peak bandwidth, or its gemms
  // at peak FP32. The wall time over the larger of this and estimated_host_ms: how far the step is from
  // what its bound allows.
  device_floor_ms: floor.floorMs,
  device_peak: source,
  step_gb_moved: floor.bytes / 1e9,
  step_tflop: floor.flops / 1e12,
};
console.log(JSON.stringify(report, null, 2));

/**
 * The least device time of a training step (lib/backend/cuda/count_launches.ts `stepWork`), which
 * `probe.ts` and `bench --profile --backends cuda` print beside what a GPU measures, and the peak
 * rates it divides by (driver.ts `peakFromAttributes`). Needs no GPU: the step runs on the null device.
 */
import assert from "node:assert/strict";
import { peakFromAttributes, REFERENCE_PEAKS } from "../lib/backend/cuda/driver.ts";
import { stepWork } from "../lib/backend/cuda/count_launches.ts";
import { microConfig } from "./_helpers.ts";

const near = (actual: number, expected: number, tol: number, what = "") =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what} ${actual} is not within ${tol} of ${expected}`);

Deno.test("device peaks from attributes match the datasheets (H100 SXM, A100 SXM)", () => {
  // Attributes as cuDeviceGetAttribute reports them: SM clock and memory clock in kHz, bus width in bits.
  const h100 = peakFromAttributes([9, 0], 132, 1_980_000, 2_619_000, 5120)!;
  near(h100.memoryBytesPerS / 1e12, REFERENCE_PEAKS["H100 SXM"].memoryBytesPerS / 1e12, 0.01);
  near(h100.fp32FlopsPerS / 1e12, REFERENCE_PEAKS["H100 SXM"].fp32FlopsPerS / 1e12, 0.1);
  // A100 SXM 40 GB: 1,555 GB/s, 19.5 FP32 TFLOPS (64 FP32 lanes per SM on compute capability 8.0).
  const a100 = peakFromAttributes([8, 0], 108, 1_410_000, 1_215_000, 5120)!;
  near(a100.memoryBytesPerS / 1e12, 1.555, 0.001);
  near(a100.fp32FlopsPerS / 1e12, 19.5, 0.05);
  assert.deepEqual(peakFromAttributes([9, 0], 132, 0, 2_619_000, 5120), undefined, "no SM clock: no peak");
});

Deno.test("a step's device floor: gemms carry its flops, aliases move nothing, faster peaks shrink it", async () => {
  const cfg = microConfig("gdes", { batchSize: 4, seqLength: 16 });
  const peak = REFERENCE_PEAKS["H100 SXM"];
  const w = await stepWork(cfg, peak);
  const k = (name: string) => w.byKernel.get(name);
  // Reshape and Identity are aliases on the cuda backend: no launch, no traffic.
  assert.deepEqual(k("Reshape"), undefined);
  assert.deepEqual(k("Identity"), undefined);
  // Every dense layer is a gemm: a forward pass alone is 2 · tokens · weights, the step is more.
  const tokens = cfg.batchSize * cfg.seqLength;
  const dWeights = cfg.discriminator.numLayers *
    (4 * cfg.discriminator.hiddenSize ** 2 +
      2 * cfg.discriminator.hiddenSize * cfg.discriminator.intermediateSize);
  assert.ok(k("BatchMatMul")!.flops > 3 * 2 * tokens * dWeights, `gemm flops ${k("BatchMatMul")!.flops}`);
  assert.deepEqual(k("RtdlabLayerNorm")?.flops, 0, "a LayerNorm is traffic, not gemms");
  assert.ok(k("RtdlabLayerNorm")!.bytes >= 2 * 4 * tokens * cfg.discriminator.hiddenSize);
  // The totals are the kernels' sums, and the floor is per call the slower of traffic and flops.
  const sum = (f: (x: { bytes: number; flops: number; floorMs: number }) => number) =>
    [...w.byKernel.values()].reduce((n, x) => n + f(x), 0);
  assert.deepEqual([w.bytes, w.flops], [sum((x) => x.bytes), sum((x) => x.flops)]);
  assert.ok(
    w.floorMs >= 1e3 * Math.max(w.bytes / peak.memoryBytesPerS, w.flops / peak.fp32FlopsPerS) * 0.999,
  );
  const faster = await stepWork(cfg, {
    memoryBytesPerS: 2 * peak.memoryBytesPerS,
    fp32FlopsPerS: 2 * peak.fp32FlopsPerS,
  });
  near(faster.floorMs, w.floorMs / 2, 1e-9);
  assert.deepEqual(faster.flops, w.flops, "the same seeds: the same step");
});

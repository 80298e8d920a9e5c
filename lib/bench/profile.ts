/**
 * Where a training step's time goes: `tf.profile` kernel times aggregated by kernel name (and by
 * kernel + input shapes), the host-side phases `Pretrainer.trainStep` reports (masking, uploads,
 * reading the logits back, sampling, metric reads), and the rest (tfjs engine, autodiff tape, JS).
 *
 * On wasm and cpu (synchronous backends) kernel times are the CPU time of this process around each
 * kernel (`process.cpuUsage`), and its wall time beside it: on a shared machine wall time also counts
 * the time other processes hold the core, which inflated single kernels 3-20× in our runs; CPU time
 * counts every thread of this process, and OpenBLAS's threads spin between products, so on an idle
 * machine every kernel's CPU time is about twice its wall time there (the wall column is the real
 * cost). On webgpu they are tfjs's own timings. Profiling itself costs time (bookkeeping per kernel),
 * so un-profiled steps are timed too and reported next to it. Custom-gradient ops (tf.customGrad)
 * appear in tf.profile as a wrapper entry *and* as the kernels they run; wrappers are listed apart and
 * left out of the kernel total.
 *
 * @module
 */

import process from "node:process";
import * as tf from "../tf.ts";
import { Rng } from "../rng.ts";
import { Pretrainer } from "../train/pretrain.ts";
import { benchVocab, caseConfig, type CaseSpec, median, randomTokenBatch } from "./case.ts";
import { textTable } from "./report.ts";

/** Aggregated time of one kernel (or kernel + shapes) per step. */
export interface KernelTime {
  name: string;
  /** Milliseconds on the profile's kernel clock (`kernelClock`). */
  ms: number;
  /** Wall milliseconds, where the clock is "cpu" (wasm, cpu). */
  wallMs?: number;
  calls: number;
}

/** A step profile (all times per step, averaged over the profiled steps). */
export interface StepProfile {
  config: string;
  backend: string;
  batch: number;
  profiledSteps: number;
  /** Median of un-profiled steps (the real speed). */
  stepMs: number;
  /** Median CPU milliseconds of the un-profiled steps (robust to load from other processes). */
  stepCpuMs: number;
  /** Mean wall time of the profiled steps. */
  profiledStepMs: number;
  /** Mean CPU time of the profiled steps (the denominator of the shares when kernelClock is "cpu"). */
  profiledStepCpuMs: number;
  kernelMs: number;
  /** Wall time of those kernels, where the clock is "cpu". */
  kernelWallMs?: number;
  /** "cpu" (process CPU time per kernel) or "wall" (the backend's own timer). */
  kernelClock: "cpu" | "wall";
  kernelsPerStep: number;
  /** Wrapper entries (custom-gradient ops), whose time the kernels inside them already count. */
  wrappers: KernelTime[];
  hostMs: Record<string, number>;
  byKernel: KernelTime[];
  byShape: KernelTime[];
  /**
   * On cuda: each tfjs kernel's least device time per step at the GPU's peak rates
   * (count_launches.ts `stepWork`), and which peaks those are.
   */
  floor?: { peak: string; totalMs: number; byKernel: Record<string, number> };
}

/** Profiles `spec` (backend already started): warm-up, un-profiled steps, then profiled steps. */
export async function profileSteps(spec: CaseSpec): Promise<StepProfile> {
  const config = caseConfig(spec);
  const trainer = new Pretrainer(config, benchVocab(config.vocabSize));
  const rng = new Rng(spec.seed);
  const next = () => randomTokenBatch(rng, spec.batch, config.seqLength, config.vocabSize);
  // Profiling reads every kernel's output back to check it for NaNs unless told not to.
  const check = tf.env().getBool("CHECK_COMPUTATION_FOR_ERRORS");
  tf.env().set("CHECK_COMPUTATION_FOR_ERRORS", false);
  try {
    for (let i = 0; i < spec.warmup; i++) await trainer.trainStep(next());
    const plain: number[] = [], plainCpu: number[] = [];
    for (let i = 0; i < spec.steps; i++) {
      const b = next();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await trainer.trainStep(b);
      plain.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      plainCpu.push((c.user + c.system) / 1000);
    }
    const host = new Map<string, number>();
    trainer.hostTimer = (phase, ms) => host.set(phase, (host.get(phase) ?? 0) + ms);
    const byKernel = new Map<string, KernelTime>();
    const byShape = new Map<string, KernelTime>();
    const wrappers = new Map<string, KernelTime>();
    const backendName = tf.getBackend();
    const restore = backendName === "wasm" || backendName === "cpu" ? useCpuClock() : null;
    let wall = 0, cpu = 0, kernelCount = 0;
    try {
      for (let i = 0; i < spec.steps; i++) {
        const b = next();
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const info = await tf.profile(async () => {
          await trainer.trainStep(b);
        });
        wall += performance.now() - t0;
        const c = process.cpuUsage(c0);
        cpu += (c.user + c.system) / 1000;
        for (const k of info.kernels) {
          const ms = Number(k.kernelTimeMs) || 0;
          // useCpuClock passes each kernel's wall time as tf.profile's "extra info".
          const wallMs = restore ? Number(k.extraInfo) || 0 : undefined;
          if (tf.getKernel(k.name, backendName) == null) {
            add(wrappers, k.name, ms, wallMs);
            continue;
          }
          add(byKernel, k.name, ms, wallMs);
          add(byShape, `${k.name} ${JSON.stringify(k.inputShapes)}`, ms, wallMs);
          kernelCount++;
        }
      }
    } finally {
      restore?.();
      trainer.hostTimer = undefined;
    }
    const n = spec.steps;
    const per = (m: Map<string, KernelTime>) =>
      [...m.values()].map((k) => ({
        name: k.name,
        ms: k.ms / n,
        ...(k.wallMs === undefined ? {} : { wallMs: k.wallMs / n }),
        calls: k.calls / n,
      })).sort((a, b) => b.ms - a.ms);
    const kernels = per(byKernel);
    return {
      config: spec.config,
      backend: tf.getBackend(),
      batch: spec.batch,
      profiledSteps: n,
      stepMs: median(plain),
      stepCpuMs: median(plainCpu),
      profiledStepMs: wall / n,
      profiledStepCpuMs: cpu / n,
      kernelMs: kernels.reduce((s, k) => s + k.ms, 0),
      ...(restore ? { kernelWallMs: kernels.reduce((s, k) => s + (k.wallMs ?? 0), 0) } : {}),
      kernelClock: restore ? "cpu" : "wall",
      kernelsPerStep: kernelCount / n,
      wrappers: per(wrappers),
      hostMs: Object.fromEntries([...host].map(([k, v]) => [k, v / n])),
      byKernel: kernels,
      byShape: per(byShape),
    };
  } finally {
    tf.env().set("CHECK_COMPUTATION_FOR_ERRORS", check);
    trainer.dispose();
  }
}

/**
 * Makes the active backend's `time()` (which tf.profile calls per kernel) measure process CPU time, and
 * pass the wall time as the timing's extra info (tf.profile's `extraInfo`).
 */
function useCpuClock(): () => void {
  type Timing = { kernelMs: number; getExtraProfileInfo: () => string };
  const backend = tf.backend() as unknown as { time: (f: () => void) => Promise<Timing> };
  const own = Object.prototype.hasOwnProperty.call(backend, "time");
  const original = backend.time;
  backend.time = (f: () => void) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    f();
    const wall = performance.now() - t0;
    const c = process.cpuUsage(c0);
    return Promise.resolve({ kernelMs: (c.user + c.system) / 1000, getExtraProfileInfo: () => String(wall) });
  };
  return () => {
    if (own) backend.time = original;
    else delete (backend as { time?: unknown }).time;
  };
}

function add(m: Map<string, KernelTime>, name: string, ms: number, wallMs?: number): void {
  const k = m.get(name) ?? { name, ms: 0, ...(wallMs === undefined ? {} : { wallMs: 0 }), calls: 0 };
  k.ms += ms;
  if (wallMs !== undefined) k.wallMs = (k.wallMs ?? 0) + wallMs;
  k.calls++;
  m.set(name, k);
}

/** Text report of a profile: totals, host phases, top kernels by name and by shape. */
export function formatProfile(p: StepProfile, top = 20): string {
  const hostTotal = Object.values(p.hostMs).reduce((a, b) => a + b, 0);
  const total = p.kernelClock === "cpu" ? p.profiledStepCpuMs : p.profiledStepMs;
  const other = total - p.kernelMs - hostTotal;
  const wrapped = p.wrappers.map((w) => `${w.name} ×${w.calls.toFixed(0)}`).join(", ");
  const pct = (ms: number) => `${(100 * ms / total).toFixed(1)}%`;
  // Where kernels ran on the CPU clock, their wall time too, as a share of the profiled step's wall time.
  const walls = p.kernelWallMs !== undefined;
  const wallCols = (k: KernelTime) =>
    walls ? [(k.wallMs ?? 0).toFixed(1), `${(100 * (k.wallMs ?? 0) / p.profiledStepMs).toFixed(1)}%`] : [];
  const lines: string[] = [
    `## ${p.config} ${p.backend} b${p.batch}: ${p.stepMs.toFixed(0)} ms/step un-profiled ` +
    `(${p.stepCpuMs.toFixed(0)} ms CPU), ` +
    `${p.profiledStepMs.toFixed(0)} ms profiled (${p.profiledStepCpuMs.toFixed(0)} ms CPU; ` +
    `${p.profiledSteps} steps), ${Math.round(p.kernelsPerStep)} kernels/step`,
    ...(wrapped ? [`custom-gradient wrappers (their kernels are counted below): ${wrapped}`] : []),
    "",
    textTable(["part", "ms/step", "share"], [
      [`kernels (tf.profile, ${p.kernelClock} time)`, p.kernelMs.toFixed(1), pct(p.kernelMs)],
      ...(walls
        ? [[
          `kernels, wall time (of ${p.profiledStepMs.toFixed(0)} ms)`,
          p.kernelWallMs!.toFixed(1),
          `${(100 * p.kernelWallMs! / p.profiledStepMs).toFixed(1)}%`,
        ]]
        : []),
      ...Object.entries(p.hostMs).map(([k, v]) => [`host: ${k}`, v.toFixed(1), pct(v)]),
      ["other (engine, tape, JS)", other.toFixed(1), pct(other)],
      ...(walls
        ? [[
          "other, wall time",
          (p.profiledStepMs - p.kernelWallMs! - hostTotal).toFixed(1),
          `${(100 * (p.profiledStepMs - p.kernelWallMs! - hostTotal) / p.profiledStepMs).toFixed(1)}%`,
        ]]
        : []),
    ], 1),
    "",
    ...(p.floor
      ? [
        `least device time of the step at ${p.floor.peak}: ${p.floor.totalMs.toFixed(1)} ms ` +
        `(each kernel's inputs and outputs moved once at peak bandwidth, or its gemms at peak FP32)`,
        "",
      ]
      : []),
    textTable(
      [
        "kernel",
        "ms/step",
        "share",
        ...(walls ? ["wall ms", "wall share"] : []),
        "calls/step",
        ...(p.floor ? ["floor ms", "× floor"] : []),
      ],
      p.byKernel.slice(0, top).map((k) => {
        const floor = p.floor?.byKernel[k.name];
        return [
          k.name,
          k.ms.toFixed(1),
          pct(k.ms),
          ...wallCols(k),
          k.calls.toFixed(0),
          ...(p.floor ? [floor?.toFixed(2) ?? "-", floor ? (k.ms / floor).toFixed(1) : "-"] : []),
        ];
      }),
      1,
    ),
    "",
    textTable(
      [
        "kernel [input shapes]",
        "ms/step",
        "share",
        ...(walls ? ["wall ms", "wall share"] : []),
        "calls/step",
      ],
      p.byShape.slice(0, top).map((
        k,
      ) => [k.name, k.ms.toFixed(1), pct(k.ms), ...wallCols(k), k.calls.toFixed(0)]),
      1,
    ),
  ];
  return lines.join("\n");
}

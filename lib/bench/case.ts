/**
 * One benchmark case: full RTD training steps (`Pretrainer.trainStep`: masking, G forward/backward,
 * host sampling, D forward/backward, AdamW) of one config on one backend, timed after warm-up.
 *
 * Batches are random tokens of the config's vocabulary with no padding and no special tokens, as the
 * PyTorch peer draws them, so both sides mask round(15% · L) positions per sequence. A case runs in
 * its own process (see {@link spawnCase}) so its peak RSS is its own.
 *
 * @module
 */

import process from "node:process";
import { fileURLToPath as fromFileUrl } from "node:url";
import * as tf from "../tf.ts";
import { type BackendName, BACKENDS, initBackend } from "../backend/mod.ts";
import { applyOverrides, preset, type RunConfig, validateConfig } from "../config.ts";
import { Rng } from "../rng.ts";
import { Pretrainer, type PretrainVocab, type TokenBatch } from "../train/pretrain.ts";

/** What a case runs. */
export interface CaseSpec {
  /** Preset name (tiny, electra-small). */
  config: string;
  /** Extra config overrides (`key=value`, as `deno task pretrain --set`); batchSize comes from `batch`. */
  overrides: Record<string, string>;
  backend: BackendName;
  batch: number;
  warmup: number;
  steps: number;
  seed: number;
}

/** A case's measurements (snake_case keys, like the peer's JSON line they sit next to). */
export interface CaseResult {
  config: string;
  overrides: Record<string, string>;
  backend: string;
  backend_info: string;
  batch: number;
  seq: number;
  vocab: number;
  params: number;
  masked_per_seq: number;
  warmup: number;
  timed: number;
  median_s: number;
  mean_s: number;
  min_s: number;
  max_s: number;
  tokens_per_s: number;
  /** Every step's seconds, warm-up first. */
  all_step_times: number[];
  /** Median CPU seconds (user + system, all threads of this process) per timed step: robust to load. */
  cpu_s_per_step: number;
  /** Every step's CPU seconds, warm-up first. */
  all_step_cpu: number[];
  first_step_s: number;
  peak_rss_mib: number;
  rss_after_build_mib: number;
  /** Live tfjs tensors after the last step (flat across steps when nothing leaks). */
  num_tensors: number;
  first_last_loss: [number, number];
  loadavg_1m: number;
  deno: string;
  tfjs: string;
  /** cuda backend only: host→GPU traffic per timed step (medians) and device memory after every step. */
  gpu?: GpuStepStats;
}

/** What the cuda backend's counters say about one training step. */
export interface GpuStepStats {
  launches_per_step: number;
  gemms_per_step: number;
  syncs_per_step: number;
  copies_to_host_per_step: number;
  copies_to_device_per_step: number;
  /** Device memory the caching allocator holds after each step, warm-up first (flat = no growth). */
  device_mib: number[];
}

type Counters = Record<"launches" | "gemms" | "syncs" | "copiesToHost" | "copiesToDevice", number>;

/** The active backend's CUDA counters, when it is the cuda backend. */
function cudaCounters(): Counters | undefined {
  return (tf.backend() as { rt?: { counters?: Counters } }).rt?.counters;
}

/** Ids 0..4 are special ([PAD] [UNK] [CLS] [SEP] [MASK], as rtdlab's trained vocabularies). */
export function benchVocab(vocabSize: number): PretrainVocab {
  return { padId: 0, maskId: 4, vocabSize, isSpecial: (id) => id < 5 };
}

/** First id random batches draw: the peer's 200 where the vocabulary has room, else the first non-special. */
export function firstRealId(vocabSize: number): number {
  return vocabSize > 400 ? 200 : 5;
}

/** A [batch, length] batch of uniform random non-special tokens (no padding), type ids 0. */
export function randomTokenBatch(rng: Rng, batch: number, length: number, vocabSize: number): TokenBatch {
  const lo = firstRealId(vocabSize);
  const inputIds = new Int32Array(batch * length);
  for (let i = 0; i < inputIds.length; i++) inputIds[i] = lo + rng.int(vocabSize - lo);
  return { inputIds, tokenTypeIds: new Int32Array(batch * length), batch, length };
}

/** The config a case trains: the preset, its overrides, and `batchSize = batch`, validated. */
export function caseConfig(spec: Pick<CaseSpec, "config" | "overrides" | "batch">): RunConfig {
  return validateConfig(applyOverrides(preset(spec.config), { ...spec.overrides, batchSize: spec.batch }));
}

/** Peak resident set (VmHWM) of this process in MiB; the current RSS where /proc is missing. */
export function peakRssMiB(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    if (m) return Number(m[1]) / 1024;
  } catch { /* not Linux */ }
  return Deno.memoryUsage().rss / 2 ** 20;
}

/** Median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs a case in this process (starts `spec.backend`). */
export async function runCase(spec: CaseSpec): Promise<CaseResult> {
  const { info } = await initBackend(spec.backend);
  const config = caseConfig(spec);
  const length = config.seqLength;
  const trainer = new Pretrainer(config, benchVocab(config.vocabSize));
  const rssAfterBuild = peakRssMiB();
  const rng = new Rng(spec.seed);
  const total = spec.warmup + spec.steps;
  // Drawn before timing, as the peer does.
  const batches = Array.from(
    { length: total },
    () => randomTokenBatch(rng, spec.batch, length, config.vocabSize),
  );
  const times: number[] = [];
  const cpu: number[] = [];
  const losses: number[] = [];
  const counters = cudaCounters();
  const perStep: Counters[] = [];
  const deviceMiB: number[] = [];
  for (let i = 0; i < total; i++) {
    const before = counters ? { ...counters } : undefined;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const m = await trainer.trainStep(batches[i]);
    times.push((performance.now() - t0) / 1000);
    const c1 = process.cpuUsage(c0);
    cpu.push((c1.user + c1.system) / 1e6);
    if (counters && before) {
      perStep.push(Object.fromEntries(
        Object.keys(before).map((k) => [k, counters[k as keyof Counters] - before[k as keyof Counters]]),
      ) as Counters);
      const mem = tf.memory() as { numBytesInGPUAllocated?: number };
      deviceMiB.push(Math.round((mem.numBytesInGPUAllocated ?? 0) / 2 ** 20));
    }
    losses.push(m.lossMlm + config.rtdWeight * (m.lossRtd ?? 0));
  }
  const timed = times.slice(spec.warmup);
  const med = median(timed);
  const result: CaseResult = {
    config: spec.config,
    overrides: spec.overrides,
    backend: spec.backend,
    backend_info: info,
    batch: spec.batch,
    seq: length,
    vocab: config.vocabSize,
    params: trainer.model.params.count(),
    // Every position is maskable (no specials, no padding): round(15% · L) per sequence.
    masked_per_seq: Math.max(1, Math.round(length * config.maskSelectProb)),
    warmup: spec.warmup,
    timed: timed.length,
    median_s: med,
    mean_s: timed.reduce((a, b) => a + b, 0) / timed.length,
    min_s: Math.min(...timed),
    max_s: Math.max(...timed),
    tokens_per_s: (spec.batch * length) / med,
    all_step_times: times.map((t) => Math.round(t * 1000) / 1000),
    cpu_s_per_step: median(cpu.slice(spec.warmup)),
    all_step_cpu: cpu.map((t) => Math.round(t * 1000) / 1000),
    first_step_s: times[0],
    peak_rss_mib: peakRssMiB(),
    rss_after_build_mib: rssAfterBuild,
    num_tensors: tf.memory().numTensors,
    first_last_loss: [round4(losses[0]), round4(losses[losses.length - 1])],
    loadavg_1m: Deno.loadavg()[0],
    deno: Deno.version.deno,
    tfjs: tf.version_core,
  };
  if (counters) {
    const timedSteps = perStep.slice(spec.warmup);
    const med = (k: keyof Counters) => median(timedSteps.map((c) => c[k]));
    result.gpu = {
      launches_per_step: med("launches"),
      gemms_per_step: med("gemms"),
      syncs_per_step: med("syncs"),
      copies_to_host_per_step: med("copiesToHost"),
      copies_to_device_per_step: med("copiesToDevice"),
      device_mib: deviceMiB,
    };
  }
  trainer.dispose();
  return result;
}

function round4(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

/** Checks a case spec; throws naming the first bad field. */
export function checkCaseSpec(spec: CaseSpec): CaseSpec {
  if (!BACKENDS.includes(spec.backend)) {
    throw new Error(`unknown backend "${spec.backend}"; valid backends: ${BACKENDS.join(", ")}`);
  }
  for (const k of ["batch", "steps"] as const) {
    if (!Number.isInteger(spec[k]) || spec[k] < 1) throw new Error(`--${k} must be a positive integer`);
  }
  if (!Number.isInteger(spec.warmup) || spec.warmup < 0) {
    throw new Error(`--warmup must be a non-negative integer`);
  }
  caseConfig(spec); // unknown preset / override keys / invalid sizes fail here, with config.ts's messages
  return spec;
}

/** Command-line arguments that make tasks/bench.ts run `spec` (`--case ...`). */
export function caseArgs(spec: CaseSpec): string[] {
  return [
    "--case",
    "--configs",
    spec.config,
    "--backends",
    spec.backend,
    "--batches",
    String(spec.batch),
    "--warmup",
    String(spec.warmup),
    "--steps",
    String(spec.steps),
    "--seed",
    String(spec.seed),
    ...Object.entries(spec.overrides).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
  ];
}

/** The project's deno.json (import map), passed explicitly so a child finds it from any cwd. */
export const DENO_CONFIG: string = fromFileUrl(new URL("../../deno.json", import.meta.url));

/** The benchmark entry point that understands `--case`. */
export const BENCH_SCRIPT: string = fromFileUrl(new URL("../../tasks/bench.ts", import.meta.url));

/** A case's outcome in the parent: its JSON, or why there is none. */
export interface SpawnedCase {
  ok: boolean;
  result?: CaseResult;
  error?: string;
  wall_s: number;
}

/**
 * Runs `spec` in a fresh Deno process (same executable, `tasks/bench.ts --case`, or a bundle of it
 * given as `script`, which needs no import map); never throws.
 */
export async function spawnCase(
  spec: CaseSpec,
  timeoutS = 3600,
  script = BENCH_SCRIPT,
): Promise<SpawnedCase> {
  const t0 = performance.now();
  const wall = () => (performance.now() - t0) / 1000;
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--unstable-webgpu",
        ...(script.endsWith(".ts") ? ["--config", DENO_CONFIG] : []),
        script,
        ...caseArgs(spec),
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(timeoutS * 1000),
    }).output();
    const stdout = new TextDecoder().decode(out.stdout).trim();
    const stderr = new TextDecoder().decode(out.stderr).trim();
    const line = stdout.split("\n").filter((l) => l.startsWith("{")).pop();
    if (!out.success || !line) {
      const why = (stderr || stdout).split("\n").filter((l) => l.trim()).slice(-4).join(" | ");
      // The time limit kills the case (SIGTERM, exit 143): say so rather than print an empty exit.
      const timedOut = !out.success && wall() >= timeoutS * 0.99;
      const error = timedOut
        ? `timed out after ${timeoutS} s${why ? ` (${why})` : ""}`
        : `exit ${out.code}: ${why}`;
      return { ok: false, error, wall_s: wall() };
    }
    return { ok: true, result: JSON.parse(line), wall_s: wall() };
  } catch (e) {
    const name = (e as Error).name;
    const msg = name === "AbortError" || name === "TimeoutError"
      ? `timed out after ${timeoutS} s`
      : (e as Error).message;
    return { ok: false, error: msg, wall_s: wall() };
  }
}

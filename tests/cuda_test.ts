/**
 * The cuda backend (lib/backend/cuda/). Everywhere: the clear error without a GPU, the caching
 * allocator on a fake device, the parameter packing and index math, and the PTX (fresh against
 * kernels.cu, one `.entry` per kernel the backend launches, every recorded kernel covered). With a
 * GPU (openCuda() succeeds): every kernel against the cpu backend on random inputs, TF32 matmuls,
 * and an ES and a GDES training step. Without one those cases are skipped with a message.
 *
 * @module
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import * as tf from "../lib/tf.ts";
import { BACKENDS, initBackend } from "../lib/backend/mod.ts";
import { CachingAllocator, type DeviceMemory, MIN_BLOCK, sizeClass } from "../lib/backend/cuda/allocator.ts";
import {
  cublasCandidates,
  CudaError,
  type CudaRuntime,
  DRIVER_SYMBOLS,
  openCuda,
  ParamBlock,
} from "../lib/backend/cuda/driver.ts";
import {
  broadcastStrides,
  choosePtx,
  CUDA_KERNEL_NAMES,
  CudaBackend,
  packIdx,
  PTX_ENTRIES,
  ptxArchs,
  registerCudaBackend,
  wordOf,
} from "../lib/backend/cuda/backend.ts";
import { emulatedCuda } from "../lib/backend/cuda/emulator.ts";
import { hostSimtCuda, hostSimtUnavailable } from "../lib/backend/cuda/host_simt.ts";
import { batchTensors, crossEntropy, Pretrainer } from "../lib/train/pretrain.ts";
import {
  debertaMicroConfig,
  MICRO_SIZES,
  microConfig,
  randomBatch,
  tempDir,
  VOCAB,
  writeGrammarCorpus,
} from "./_helpers.ts";
import { applyOverrides, preset, validateConfig } from "../lib/config.ts";
import { pretrain, readMetrics } from "../lib/train/run.ts";
import { SequenceClassifier } from "../lib/finetune/classifier.ts";

import { fillDropoutMask } from "../lib/backend/dropout_mask.ts";
import {
  addLayerNorm,
  addRowVector,
  attentionProbs,
  denseAddLayerNorm,
  denseGelu,
  dropout,
  dropoutMask,
  gelu,
  layerNormWith,
  selfAttentionContext,
} from "../lib/model/layers.ts";
import { fusedKernelsActive, useFusedKernels } from "../lib/backend/fused_kernels.ts";
import { countStep } from "../lib/backend/cuda/count_launches.ts";
import { corrupt, sampleFromLogits, sampleOnDevice } from "../lib/train/sampling.ts";
import { CORRUPT } from "../lib/backend/sample_rows.ts";
import { Rng } from "../lib/rng.ts";
import { ParameterStore } from "../lib/model/params.ts";
import { AdamW, globalNorm } from "../lib/train/optimizer.ts";
import { xSoftmaxDropout } from "../lib/model/deberta.ts";
import { createModel } from "../lib/model/mod.ts";

function assertStringIncludes(text: string, part: string, msg = ""): void {
  assert(text.includes(part), `${msg ? msg + ": " : ""}expected "${text}" to include "${part}"`);
}

function assertThrows(f: () => unknown, _type: typeof Error = Error, includes = ""): Error {
  try {
    f();
  } catch (e) {
    if (includes) assertStringIncludes((e as Error).message, includes);
    return e as Error;
  }
  throw new Error("expected a throw");
}

async function assertRejects(f: () => Promise<unknown>): Promise<Error> {
  try {
    await f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

const CUDA_DIR = new URL("../lib/backend/cuda/", import.meta.url).pathname;

// ---- Is there a GPU? --------------------------------------------------------------------------

let gpu: CudaRuntime | null = null;
let noGpuReason = "";
try {
  gpu = openCuda();
} catch (e) {
  noGpuReason = (e as Error).message;
}
if (gpu == null) {
  console.log(`cuda_test: no usable GPU here, GPU comparisons skipped: ${noGpuReason}`);
}

// ---- (a) the clear error without a GPU ----------------------------------------------------------

Deno.test("BACKENDS lists cuda", () => {
  assert(BACKENDS.includes("cuda"));
});

Deno.test({
  name: "initBackend('cuda') rejects with one clear message on a machine without a GPU",
  // RTDLAB_CUDA_EMULATE starts the backend on the host (a rehearsal of the GPU check): nothing to reject.
  ignore: gpu != null || Deno.env.get("RTDLAB_CUDA_EMULATE") !== undefined,
  fn: async () => {
    const err = await assertRejects(() => initBackend("cuda"));
    assertEquals(err.message, noGpuReason, "initBackend reports openCuda's error unchanged");
    assert(
      /^(no NVIDIA driver: libcuda\.so\.1 not found \(searched |cuInit failed: CUDA_ERROR_|cuDeviceGetCount failed: |cuBLAS not found \(searched )/
        .test(err.message),
      err.message,
    );
    if (!fileExists("/usr/lib/x86_64-linux-gnu/libcuda.so.1") && !fileExists("/usr/lib64/libcuda.so.1")) {
      assertStringIncludes(err.message, "no NVIDIA driver: libcuda.so.1 not found (searched libcuda.so.1, ");
    }
    assertEquals(tf.findBackend("cuda"), null);
  },
});

function fileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * Builds a fake libcuda.so.1 with `cc`: every bound symbol, cuInit returning `initResult`, the driver
 * reporting CUDA `driverVersion` (13000 = 13.0).
 */
function fakeDriver(initResult: number, driverVersion = 13000): string | null {
  const cc = ["cc", "gcc", "clang"].find((c) => {
    try {
      return new Deno.Command(c, { args: ["--version"], stdout: "null", stderr: "null" }).outputSync()
        .success;
    } catch {
      return false;
    }
  });
  if (!cc) return null;
  const dir = Deno.makeTempDirSync({ prefix: "rtdlab-fake-cuda-" });
  const special: Record<string, string> = {
    cuInit: `int cuInit(unsigned f) { return ${initResult}; }`,
    cuGetErrorName: `int cuGetErrorName(int e, const char** s) {
      *s = e == 100 ? "CUDA_ERROR_NO_DEVICE" : e == 999 ? "CUDA_ERROR_UNKNOWN" : "CUDA_ERROR_OTHER"; return 0; }`,
    cuDeviceGetCount: "int cuDeviceGetCount(int* n) { *n = 1; return 0; }",
    cuDriverGetVersion: `int cuDriverGetVersion(int* v) { *v = ${driverVersion}; return 0; }`,
  };
  const src = Object.keys(DRIVER_SYMBOLS).map((name) => special[name] ?? `int ${name}(void) { return 0; }`);
  Deno.writeTextFileSync(`${dir}/fake.c`, src.join("\n") + "\n");
  const out = new Deno.Command(cc, {
    args: ["-shared", "-fPIC", "-o", `${dir}/libcuda.so.1`, `${dir}/fake.c`],
    stderr: "piped",
  }).outputSync();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return `${dir}/libcuda.so.1`;
}

function withEnv<T>(vars: Record<string, string>, f: () => T): T {
  const old = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  for (const [k, v] of Object.entries(vars)) Deno.env.set(k, v);
  try {
    return f();
  } finally {
    for (const [k, v] of Object.entries(old)) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  }
}

Deno.test("openCuda names cuInit's error, and a missing cuBLAS, through a fake driver", () => {
  const noDevice = fakeDriver(100);
  if (noDevice == null) {
    console.log("cuda_test: no C compiler, fake-driver checks skipped");
    return;
  }
  withEnv({ RTDLAB_CUDA_DRIVER: noDevice }, () => {
    const err = assertThrows(() => openCuda());
    assertEquals(err.message, "cuInit failed: CUDA_ERROR_NO_DEVICE");
  });
  const working = fakeDriver(0)!;
  withEnv({ RTDLAB_CUDA_DRIVER: working, RTDLAB_CUBLAS: "/nonexistent/libcublas.so.12" }, () => {
    const err = assertThrows(() => openCuda());
    assertStringIncludes(err.message, "cuBLAS not found (searched /nonexistent/libcublas.so.12)");
  });
  // A cuBLAS newer than the driver's CUDA would load and fail later: it is named, or not a candidate at all.
  const cuda12 = fakeDriver(0, 12040)!;
  withEnv({ RTDLAB_CUDA_DRIVER: cuda12, RTDLAB_CUBLAS: "/nonexistent/libcublas.so.13" }, () => {
    const err = assertThrows(() => openCuda());
    assertStringIncludes(
      err.message,
      "is cuBLAS 13, which needs a CUDA 13 driver; this driver runs CUDA 12.4",
    );
  });
  withEnv({ RTDLAB_CUBLAS: "" }, () => {
    Deno.env.delete("RTDLAB_CUBLAS");
    assert(cublasCandidates(12040).every((p) => !p.endsWith(".so.13")), "no cuBLAS 13 for a CUDA 12 driver");
    assert(cublasCandidates(13000).some((p) => p.endsWith(".so.13")));
    assertEquals(cublasCandidates(13000)[0], "libcublas.so.13", "the newest the driver runs, first");
  });
  withEnv({ RTDLAB_CUDA_DRIVER: "/nonexistent/libcuda.so.1" }, () => {
    const err = assertThrows(() => openCuda());
    assertStringIncludes(
      err.message,
      "no NVIDIA driver: libcuda.so.1 not found (searched /nonexistent/libcuda.so.1)",
    );
  });
});

// ---- (b) the caching allocator on a fake device --------------------------------------------------

class FakeDevice implements DeviceMemory {
  next = 0x7f0000000000n;
  live = new Map<bigint, number>();
  allocs = 0;
  capacity = Infinity;
  /** Work queued on the stream (a kernel that may still use a block): cleared by synchronize. */
  busy = false;
  syncs = 0;
  alloc(bytes: number): bigint {
    const used = [...this.live.values()].reduce((a, b) => a + b, 0);
    if (used + bytes > this.capacity) throw new Error("cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY");
    const p = this.next;
    this.next += BigInt(Math.ceil(bytes / 256) * 256);
    this.live.set(p, bytes);
    this.allocs++;
    return p;
  }
  free(ptr: bigint): void {
    if (this.busy) throw new Error(`fake device: ${ptr} freed while queued work may still use it`);
    if (!this.live.delete(ptr)) throw new Error(`fake device: bad free ${ptr}`);
  }
  synchronize(): void {
    this.busy = false;
    this.syncs++;
  }
}

Deno.test("sizeClass: 256 B minimum, four classes per power of two, at most 25 % waste", () => {
  assertEquals(sizeClass(1), MIN_BLOCK);
  assertEquals(sizeClass(256), 256);
  assertEquals(sizeClass(257), 320);
  assertEquals(sizeClass(1024), 1024);
  assertEquals(sizeClass(1025), 1280);
  assertEquals(sizeClass(4 * 2 ** 20 + 1), 5 * 2 ** 20);
  for (let b = 1; b < 1e7; b = Math.ceil(b * 1.37) + 3) {
    const c = sizeClass(b);
    assert(c >= b && (b <= MIN_BLOCK || c <= b * 1.25 + 1), `${b} → ${c}`);
  }
  assertThrows(() => sizeClass(-1));
});

Deno.test("CachingAllocator reuses freed blocks of a size class without device calls", () => {
  const dev = new FakeDevice();
  const a = new CachingAllocator(dev);
  const x = a.alloc(1000); // class 1024
  const y = a.alloc(1000);
  assert(x.ptr !== y.ptr);
  assertEquals(x.size, 1024);
  assertEquals(dev.allocs, 2);
  a.free(x);
  const z = a.alloc(900); // same class: reused
  assertEquals(z.ptr, x.ptr);
  assertEquals(dev.allocs, 2);
  const w = a.alloc(5000); // another class: new device block
  assertEquals(dev.allocs, 3);
  let s = a.stats();
  assertEquals(s.blocksInUse, 3);
  assertEquals(s.bytesInUse, 1024 + 1024 + 5120);
  assertEquals(s.cacheHits, 1);
  assertEquals(s.deviceAllocs, 3);
  a.free(y);
  a.free(z);
  a.free(w);
  s = a.stats();
  assertEquals(s.bytesInUse, 0);
  assertEquals(s.bytesCached, 1024 + 1024 + 5120);
  assertEquals(s.bytesReserved, s.bytesCached);
  assertEquals(s.peakBytesInUse, 1024 + 1024 + 5120);
  // A training loop's worth of churn: no new device allocations once warm.
  for (let step = 0; step < 100; step++) {
    const blocks = [a.alloc(1000), a.alloc(1000), a.alloc(4500)];
    blocks.forEach((b) => a.free(b));
  }
  assertEquals(dev.allocs, 3);
  a.emptyCache();
  assertEquals(dev.live.size, 0, "no leak: every device block returned");
  assertEquals(a.stats().bytesReserved, 0);
});

Deno.test("CachingAllocator: zero bytes, double free, cache cap, out-of-memory retry, releaseAll", () => {
  const dev = new FakeDevice();
  const a = new CachingAllocator(dev, { maxCachedBytes: 2048 });
  const empty = a.alloc(0);
  assertEquals(empty.ptr, 0n);
  a.free(empty);
  assertEquals(dev.allocs, 0);
  const x = a.alloc(2048);
  a.free(x);
  assertThrows(() => a.free(x), Error, "did not hand out");
  const y = a.alloc(1024);
  a.free(y); // 2048 + 1024 > cap: goes back to the device
  assertEquals(a.stats().bytesCached, 2048);
  assertEquals(a.stats().deviceFrees, 1);
  // Out of memory: the cached 2048-byte block is released and the allocation retried.
  dev.capacity = 4096;
  const big = a.alloc(4000);
  assertEquals(big.size, 4096);
  assertEquals(a.stats().bytesCached, 0);
  assertThrows(() => a.alloc(4000), Error, "OUT_OF_MEMORY"); // nothing left to release
  dev.capacity = Infinity;
  a.alloc(100);
  a.releaseAll();
  assertEquals(dev.live.size, 0);
  const s = a.stats();
  assertEquals([s.bytesInUse, s.bytesCached, s.bytesReserved, s.blocksInUse, s.blocksCached], [
    0,
    0,
    0,
    0,
    0,
  ]);
});

Deno.test("cuda backend: after a kernel's fault, dispose still closes the runtime and reports the fault", () => {
  // A fault is sticky: every later call fails with it, the synchronize in dispose first.
  const rt = emulatedCuda();
  const fault = new CudaError("cuStreamSynchronize", 700, "CUDA_ERROR_ILLEGAL_ADDRESS");
  let closed = 0;
  const close = rt.close.bind(rt);
  const backend = new CudaBackend(rt);
  backend.write(new Float32Array(1000), [1000], "float32");
  const fail = () => {
    throw fault;
  };
  Object.assign(rt, {
    synchronize: fail,
    memFree: fail,
    close: () => (closed++, close()),
  });
  assert(assertThrows(() => backend.dispose()) === fault, "the fault itself is reported");
  assertEquals(closed, 1);
});

Deno.test("CachingAllocator waits for queued work before it gives a block back to the device", () => {
  // On a GPU a block freed by tfjs may still be used by a kernel queued before: reusing it on the same
  // stream is safe, handing it to cuMemFree is not unless the stream has drained.
  const dev = new FakeDevice();
  const a = new CachingAllocator(dev, { maxCachedBytes: 2048 });
  const x = a.alloc(2048);
  const y = a.alloc(1024);
  a.free(x);
  dev.busy = true;
  a.free(y); // past the cap: back to the device
  assertEquals(dev.syncs, 1);
  dev.busy = true;
  dev.capacity = 4096;
  a.alloc(4000); // out of memory: the cache is released, then the allocation retried
  assertEquals(dev.syncs, 2);
  dev.capacity = Infinity;
  a.free(a.alloc(100));
  dev.busy = true;
  a.emptyCache();
  assertEquals(dev.syncs, 3);
  a.emptyCache(); // nothing cached: no wait
  assertEquals(dev.syncs, 3);
});

// ---- host-side index math and parameter packing ---------------------------------------------------

Deno.test("packIdx collapses contiguous dims and keeps broadcast strides", () => {
  // Same-shape operands: one dim.
  let idx = packIdx([2, 3, 4], [[12, 4, 1], [12, 4, 1]]);
  assertEquals(idx[0], 1);
  assertEquals(idx[1], 24);
  assertEquals([idx[1 + 8], idx[1 + 16]], [1, 1]);
  // [2,3,4] + [4]: b repeats every 4 → dims [6, 4], b strides [0, 1].
  idx = packIdx([2, 3, 4], [[12, 4, 1], broadcastStrides([4], [2, 3, 4])]);
  assertEquals(Array.from(idx.slice(0, 3)), [2, 6, 4]);
  assertEquals(Array.from(idx.slice(9, 11)), [4, 1]);
  assertEquals(Array.from(idx.slice(17, 19)), [0, 1]);
  // Transpose [2,3] → [3,2]: input strides [1,3], output contiguous: no merge.
  idx = packIdx([3, 2], [[1, 3], [2, 1]]);
  assertEquals(Array.from(idx.slice(0, 3)), [2, 3, 2]);
  // Scalar.
  idx = packIdx([], [[], []]);
  assertEquals(Array.from(idx.slice(0, 2)), [1, 1]);
  assertThrows(
    () => packIdx([2, 2, 2, 2, 2, 2, 2, 2, 2], [[256, 1, 128, 2, 64, 4, 32, 8, 16]]),
    Error,
    "rank 9",
  );
});

Deno.test("broadcastStrides, wordOf and choosePtx", () => {
  assertEquals(broadcastStrides([3, 1], [2, 3, 4]), [0, 1, 0]);
  assertEquals(broadcastStrides([2, 3, 4], [2, 3, 4]), [12, 4, 1]);
  assertEquals(wordOf(1, "float32"), 0x3f800000);
  assertEquals(wordOf(-1, "int32"), 0xffffffff);
  assertEquals(wordOf(5, "bool"), 1);
  assertEquals(choosePtx([70, 75, 80], [9, 0]), 80);
  assertEquals(choosePtx([70, 75, 80], [7, 5]), 75);
  assertEquals(choosePtx([75, 80], [7, 0]), null);
});

Deno.test("ParamBlock packs 8-byte-aligned slots and a pointer array", () => {
  const p = new ParamBlock().reset("test");
  p.i32(-2).ptr(0x1122334455667788n).f32(1.5).ints([1, 2, 3]).i64(7);
  assertEquals(p.count, 5);
  assertEquals(new DataView(p.slotBytes(0, 4).slice().buffer).getInt32(0, true), -2);
  assertEquals(new DataView(p.slotBytes(1, 8).slice().buffer).getBigUint64(0, true), 0x1122334455667788n);
  assertEquals(new DataView(p.slotBytes(2, 4).slice().buffer).getFloat32(0, true), 1.5);
  assertEquals(Array.from(new Int32Array(p.slotBytes(3, 12).slice().buffer)), [1, 2, 3]);
  const ptrs = new BigUint64Array(p.pointers().slice().buffer);
  assertEquals(ptrs.length, 5);
  for (let i = 1; i < 5; i++) {
    assert(ptrs[i] > ptrs[i - 1] && (ptrs[i] - ptrs[0]) % 8n === 0n, "ascending, 8-byte aligned slots");
  }
});

// ---- (c) the PTX is fresh and complete ------------------------------------------------------------

async function sha256Hex(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", Deno.readFileSync(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("every kernels.sm_XX.ptx was built from the current kernels.cu and has every entry", async () => {
  const archs = ptxArchs(CUDA_DIR);
  assert(archs.length >= 2, `expected PTX for several architectures, found sm_${archs.join(", sm_")}`);
  assert(archs.includes(80), "sm_80 PTX (Ampere and newer, JIT-compiled forward to Hopper)");
  const hash = await sha256Hex(`${CUDA_DIR}kernels.cu`);
  for (const arch of archs) {
    const ptx = Deno.readTextFileSync(`${CUDA_DIR}kernels.sm_${arch}.ptx`);
    const first = ptx.split("\n", 1)[0];
    assertEquals(
      first,
      `// rtdlab kernels.cu sha256: ${hash}`,
      `kernels.sm_${arch}.ptx is stale: run lib/backend/cuda/build_ptx.sh`,
    );
    assertStringIncludes(ptx, `.target sm_${arch}`);
    const entries = new Set([...ptx.matchAll(/\.entry\s+(\w+)\s*\(/g)].map((m) => m[1]));
    for (const e of PTX_ENTRIES) assert(entries.has(e), `kernels.sm_${arch}.ptx lacks .entry ${e}`);
  }
});

Deno.test("the cuda backend registers every kernel a training step runs (KERNELS.md)", () => {
  const md = Deno.readTextFileSync(`${CUDA_DIR}KERNELS.md`);
  const recorded = [...md.matchAll(/^\|\s*(\w+)\s*\|\s*\d+\s*\|/gm)].map((m) => m[1]);
  assert(recorded.length >= 30, `KERNELS.md lists ${recorded.length} kernels`);
  const missing = recorded.filter((k) => !CUDA_KERNEL_NAMES.includes(k));
  assertEquals(missing, [], "recorded kernels without a cuda implementation");
});

Deno.test("kernels.cu compiles with nvcc when nvcc is installed", () => {
  let nvcc: string | null = null;
  for (const c of ["nvcc", "/usr/local/cuda/bin/nvcc"]) {
    try {
      if (new Deno.Command(c, { args: ["--version"], stdout: "null" }).outputSync().success) nvcc = c;
    } catch { /* not here */ }
    if (nvcc) break;
  }
  if (nvcc == null) {
    console.log("cuda_test: no nvcc, nvcc compile check skipped (the clang-built PTX is checked above)");
    return;
  }
  const out = `${Deno.makeTempDirSync({ prefix: "rtdlab-nvcc-" })}/k.ptx`;
  const r = new Deno.Command(nvcc, {
    args: ["-ptx", "-O3", "-std=c++17", "-arch=compute_80", "-o", out, `${CUDA_DIR}kernels.cu`],
    stderr: "piped",
  }).outputSync();
  assert(r.success, new TextDecoder().decode(r.stderr));
  const ptx = Deno.readTextFileSync(out);
  for (const e of PTX_ENTRIES) assertStringIncludes(ptx, `.entry ${e}(`);
});

// ---- (d) every kernel and a training step against the cpu backend --------------------------------
//
// The same suites run on three targets: on "cuda" when a GPU is here (the real check); everywhere on
// "cuda_emu", the backend's host code driving lib/backend/cuda/emulator.ts (checks shapes, strides,
// parameter packing and dtypes with kernels re-written in TypeScript); and, where no GPU is, on
// "cuda_simt": kernels.cu itself compiled for the host, every CUDA thread a fiber (host_simt.cpp), which
// checks the CUDA C's index math, shuffles, shared memory, barriers and launch shapes, and that every
// launch packs the parameters its kernel declares. What only the GPU checks: the PTX build, the driver,
// cuBLAS, concurrency between blocks, and CUDA's own math library.

/** Backend the comparisons run on (set by each suite's start). */
let target = "cuda";
let gpuStarted = false, emuStarted = false, simtStarted = false;

async function startGpu(): Promise<void> {
  target = "cuda";
  if (gpuStarted) return;
  gpuStarted = true;
  await initBackend("cpu");
  registerCudaBackend(gpu!);
  // A second backend with TF32 matmuls, for the 1e-3 check.
  Deno.env.set("RTDLAB_CUDA_TF32", "1");
  try {
    registerCudaBackend(openCuda(), "cuda_tf32");
  } finally {
    Deno.env.delete("RTDLAB_CUDA_TF32");
  }
}

async function startEmulator(): Promise<void> {
  target = "cuda_emu";
  if (emuStarted) return;
  emuStarted = true;
  await initBackend("cpu");
  registerCudaBackend(emulatedCuda(), "cuda_emu");
}

/** The host build of kernels.cu runs where no GPU is (the real one checks the CUDA C there) and it can be built. */
const simtIgnored = gpu != null || hostSimtUnavailable() != null;

async function startSimt(): Promise<void> {
  target = "cuda_simt";
  if (simtStarted) return;
  simtStarted = true;
  await initBackend("cpu");
  registerCudaBackend(await hostSimtCuda(), "cuda_simt");
}

let simtGridStarted = false;
async function startSimtGrid3(): Promise<void> {
  target = "cuda_simt_grid3";
  if (simtGridStarted) return;
  simtGridStarted = true;
  await initBackend("cpu");
  registerCudaBackend(await hostSimtCuda({ maxGrid: 3, descendingBlocks: true }), "cuda_simt_grid3");
}

type Out = Float32Array | Int32Array | Uint8Array;

/** Runs `f` on `backend` and returns its outputs' values, shapes and dtypes (inputs made from host arrays). */
async function runOn(
  backend: string,
  f: () => tf.Tensor | tf.Tensor[],
): Promise<{ v: Out; s: number[]; d: string }[]> {
  await tf.setBackend(backend);
  const outs = tf.tidy(f);
  const list = Array.isArray(outs) ? outs : [outs];
  const res = [];
  for (const t of list) res.push({ v: (await t.data()) as Out, s: t.shape, d: t.dtype });
  tf.dispose(list);
  return res;
}

/** Max error of `a` against the reference `b`: per element relative, or relative to max|b| (`norm`). */
/** Largest relative error of `a` against `b`, and where it is (NaN where exactly one side is NaN). */
function relError(a: ArrayLike<number>, b: ArrayLike<number>, norm: boolean): { e: number; at: number } {
  let scale = 0;
  for (let i = 0; i < b.length; i++) if (!Number.isNaN(b[i])) scale = Math.max(scale, Math.abs(b[i]));
  let err = 0, at = -1;
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(b[i]) && Number.isNaN(a[i])) continue;
    if (b[i] === a[i]) continue;
    const d = Math.abs(a[i] - b[i]);
    const e = norm ? d / Math.max(scale, 1e-30) : d / Math.max(Math.abs(b[i]), 1e-6 * scale, 1e-30);
    if (Number.isNaN(e)) return { e, at: i };
    if (e > err) [err, at] = [e, i];
  }
  return { e: err, at };
}

let seed = 1;
function rand(shape: number[], lo = -2, hi = 2, dtype: "float32" | "int32" = "float32"): tf.Tensor {
  return dtype === "int32"
    ? tf.randomUniform(shape, lo, hi, "int32", seed++)
    : tf.randomUniform(shape, lo, hi, "float32", seed++);
}

/**
 * Compares `op` on cuda with cpu: the inputs are made on the host once (values fixed), each backend
 * builds its tensors from them.
 */
async function compare(
  label: string,
  inputs: tf.Tensor[],
  op: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[],
  tol = 1e-5,
  norm = false,
  backend = target,
): Promise<void> {
  const host = await Promise.all(inputs.map(async (t) => ({ v: await t.data(), s: t.shape, d: t.dtype })));
  const build = () => host.map((h) => tf.tensor(h.v as Float32Array, h.s, h.d));
  const want = await runOn("cpu", () => op(...build()));
  const got = await runOn(backend, () => op(...build()));
  await tf.setBackend("cpu");
  assertEquals(got.length, want.length, label);
  for (let i = 0; i < want.length; i++) {
    assertEquals(got[i].s, want[i].s, `${label}: shape`);
    assertEquals(got[i].d, want[i].d, `${label}: dtype`);
    const { e, at } = relError(got[i].v, want[i].v, norm);
    const where = at < 0 ? "" : ` at [${at}]: got ${got[i].v[at]}, want ${want[i].v[at]}` +
      (host.length === 1 && host[0].v.length === want[i].v.length ? ` (input ${host[0].v[at]})` : "");
    assert(e <= tol, `${label}: relative error ${e.toExponential(2)} > ${tol}${where}`);
  }
}

const SHAPE_PAIRS: [number[], number[]][] = [
  [[5], [5]],
  [[3, 5], [3, 5]],
  [[2, 3, 4], [4]],
  [[2, 1, 4], [3, 1]],
  [[7, 13], [1, 13]],
  [[4, 1], [1, 9]],
  [[], [6, 5]],
  [[33, 65, 3], [33, 1, 3]],
];

// One ES / GDES training step ---------------------------------------------------

async function stepOn(backend: string, sharing: "es" | "gdes") {
  await tf.setBackend(backend);
  const t = new Pretrainer(microConfig(sharing), VOCAB);
  const grads = new Map<string, Float32Array>();
  t.onGradients = (g) => {
    for (const [n, v] of g.generator) grads.set(`g/${n}`, v.dataSync() as Float32Array);
    for (const [n, v] of g.discriminator ?? []) grads.set(`d/${n}`, v.dataSync() as Float32Array);
  };
  const m = await t.trainStep(randomBatch(7));
  t.dispose();
  return { m, grads };
}

/** One fine-tuning step's loss and gradients (classifier on a random-init micro encoder, dropout on). */
async function finetuneStepOn(backend: string, backbone: "electra" | "deberta") {
  await tf.setBackend(backend);
  const config = backbone === "electra" ? microConfig("gdes") : debertaMicroConfig("gdes");
  const clf = new SequenceClassifier(config, 3, new Map(), 5);
  const batch = randomBatch(11, 4, 16, 3);
  const names = clf.params.names();
  const vars = names.map((n) => clf.params.get(n));
  // Made outside variableGrads, as lib/finetune/train.ts does: its tidy would free them before the backward pass.
  const inputs = batchTensors(batch.inputIds, batch, VOCAB.padId);
  const labels = tf.tensor1d([0, 2, 1, 2], "int32");
  const { value, grads } = tf.variableGrads(
    () => crossEntropy(clf.logits(inputs, { training: true, rng: new Rng(3) }), labels),
    vars,
  );
  const loss = (await value.data())[0];
  const byName = new Map<string, Float32Array>();
  names.forEach((n, i) => {
    const g = grads[vars[i].name]; // none for a parameter the loss does not reach
    if (g) byName.set(n, g.dataSync() as Float32Array);
  });
  tf.dispose([value, labels, ...Object.values(inputs), ...Object.values(grads)]);
  clf.dispose();
  return { loss, grads: byName };
}

/** Largest gradient error relative to the tensor's own scale, floored at 1 % of the largest gradient. */
function worstGradientError(got: Map<string, Float32Array>, want: Map<string, Float32Array>): number {
  assertEquals([...got.keys()].sort(), [...want.keys()].sort());
  // The floor: some gradients are zero in exact arithmetic (attention key biases: softmax ignores a
  // per-row constant), so both backends return rounding noise there.
  let top = 0, worst = 0;
  for (const g of want.values()) for (const v of g) top = Math.max(top, Math.abs(v));
  for (const [name, g] of want) {
    const mine = got.get(name)!;
    let own = 0, diff = 0;
    for (let i = 0; i < g.length; i++) {
      own = Math.max(own, Math.abs(g[i]));
      diff = Math.max(diff, Math.abs(mine[i] - g[i]));
    }
    const e = diff / Math.max(own, 1e-2 * top);
    assert(e <= 1e-4, `gradient ${name}: relative error ${e.toExponential(2)}`);
    worst = Math.max(worst, e);
  }
  return worst;
}

/** Three AdamW updates (clipping active, bias correction, decayed and undecayed parameters, one across chunks) on `backend`. */
async function adamwOn(backend: string, fused: boolean): Promise<Map<string, Float32Array>> {
  await tf.setBackend(backend);
  const shapes: Record<string, number[]> = {
    "a.weight": [37, 8],
    "a.LayerNorm.weight": [8],
    "b.bias": [300],
    "c.weight": [300, 250], // more than one 65,536-element chunk of the fused kernel
  };
  const rng = new Rng(3);
  const params = new ParameterStore();
  for (const [n, sh] of Object.entries(shapes)) params.create(n, sh, "normal", rng, 0.5);
  const config = {
    beta1: 0.9,
    beta2: 0.999,
    epsilon: 1e-6,
    weightDecay: 0.01,
    clipNorm: 1,
    biasCorrection: true,
  };
  const opt = new AdamW(params, Object.keys(shapes), config);
  const [host, fusedBefore] = [AdamW.hostUpdate, AdamW.fusedUpdate];
  [AdamW.hostUpdate, AdamW.fusedUpdate] = [false, fused];
  // The global norm as the same ops on both sides (its fused kernel sums in another order, which
  // moves the clipping factor by an ulp); the fused sum of squares has its own test.
  useFusedKernels(false, ["sumSquares"]);
  const out = new Map<string, Float32Array>();
  try {
    for (let step = 0; step < 3; step++) {
      const grads = new Map(
        Object.entries(shapes).map(([n, sh]) => {
          const data = Float32Array.from({ length: tf.util.sizeFromShape(sh) }, () => rng.normal() * 3);
          return [n, tf.tensor(data, sh)];
        }),
      );
      const norm = opt.apply(grads, 0.01 * (step + 1));
      out.set(`norm${step}`, (await norm.data()) as Float32Array);
      tf.dispose([norm, ...grads.values()]);
    }
  } finally {
    [AdamW.hostUpdate, AdamW.fusedUpdate] = [host, fusedBefore];
    useFusedKernels(true, ["sumSquares"]);
  }
  for (const [n, t] of await params.toHost()) out.set(n, t.data as Float32Array);
  for (const [n, t] of await opt.toHost("")) out.set(n, t.data as Float32Array);
  opt.dispose();
  for (const v of params.vars.values()) v.dispose();
  return out;
}

/** Defines the comparison suites for one backend (`tf32`: a TF32 twin to check, or null). */
function defineSuites(label: string, start: () => Promise<void>, ignore: boolean, tf32: string | null): void {
  Deno.test({
    ignore,
    name: `${label} vs cpu: unary kernels`,
    fn: async () => {
      await start();
      const positive = new Set(["Log", "Sqrt", "Rsqrt", "Reciprocal"]);
      const ops: Record<string, (x: tf.Tensor) => tf.Tensor> = {
        Neg: tf.neg,
        Abs: tf.abs,
        Exp: tf.exp,
        Log: tf.log,
        Log1p: tf.log1p,
        Sqrt: tf.sqrt,
        Rsqrt: tf.rsqrt,
        Square: tf.square,
        Relu: tf.relu,
        Step: (x) => tf.step(x, 0.3),
        Erf: tf.erf,
        Sigmoid: tf.sigmoid,
        Tanh: tf.tanh,
        Reciprocal: tf.reciprocal,
        Expm1: tf.expm1,
        Sign: tf.sign,
        Floor: tf.floor,
        Ceil: tf.ceil,
        Round: tf.round,
        LeakyRelu: (x) => tf.leakyRelu(x, 0.1),
        Relu6: tf.relu6,
        Sin: tf.sin,
        Cos: tf.cos,
        Elu: tf.elu,
        Softplus: tf.softplus,
      };
      for (const [name, f] of Object.entries(ops)) {
        for (const shape of [[1], [7], [3, 5], [33, 257]]) {
          const x = positive.has(name) ? rand(shape, 0.05, 5) : rand(shape, -4, 4);
          // tfjs-backend-cpu's erf is Abramowitz & Stegun's 7.1.26 (absolute error ~1e-7), so near 0 its
          // relative error is large: Erf is compared relative to the tensor's scale.
          await compare(`${name} ${shape}`, [x], f, 1e-5, name === "Erf");
        }
      }
      for (
        const [name, f] of Object.entries({ Neg: tf.neg, Abs: tf.abs, Square: tf.square, Sign: tf.sign })
      ) {
        await compare(`${name} int32`, [rand([3, 7], -50, 50, "int32")], f);
      }
    },
  });

  Deno.test({
    ignore,
    name: `${label} vs cpu: binary kernels with broadcasting, comparisons, select, casts`,
    fn: async () => {
      await start();
      const ops: Record<string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor> = {
        Add: tf.add,
        Sub: tf.sub,
        Multiply: tf.mul,
        RealDiv: tf.div,
        Maximum: tf.maximum,
        Minimum: tf.minimum,
        SquaredDifference: tf.squaredDifference,
        Pow: (a, b) => tf.pow(tf.abs(a), b),
        FloorDiv: tf.floorDiv,
        Mod: tf.mod,
        Equal: (a, b) => tf.equal(tf.round(a), tf.round(b)),
        NotEqual: (a, b) => tf.notEqual(tf.round(a), tf.round(b)),
        Less: tf.less,
        LessEqual: tf.lessEqual,
        Greater: tf.greater,
        GreaterEqual: tf.greaterEqual,
      };
      for (const [name, f] of Object.entries(ops)) {
        for (const [sa, sb] of SHAPE_PAIRS) {
          await compare(`${name} ${JSON.stringify([sa, sb])}`, [rand(sa), rand(sb, 0.5, 3)], f);
        }
      }
      for (
        const name of ["Add", "Sub", "Multiply", "Maximum", "Minimum", "FloorDiv", "Mod", "Equal", "Less"]
      ) {
        const f = ops[name];
        await compare(`${name} int32`, [rand([4, 6], -20, 20, "int32"), rand([6], 1, 9, "int32")], f);
      }
      await compare("LogicalAnd/Or/Not", [rand([5, 4]), rand([4])], (a, b) => {
        const p = tf.greater(a, 0), q = tf.greater(b, 0);
        return [tf.logicalAnd(p, q), tf.logicalOr(p, q), tf.logicalNot(p)];
      });
      await compare(
        "Select same shape",
        [rand([6, 5]), rand([6, 5]), rand([6, 5])],
        (c, a, b) => tf.where(tf.greater(c, 0), a, b),
      );
      await compare(
        "Select broadcast condition",
        [rand([6, 1]), rand([6, 5]), rand([6, 5])],
        (c, a, b) => tf.where(tf.greater(c, 0), a, b),
      );
      await compare("Cast f32→i32→f32, bool", [rand([9, 7], -100, 100)], (x) => {
        const i = tf.cast(x, "int32");
        return [
          i,
          tf.cast(i, "float32"),
          tf.cast(tf.greater(x, 0), "float32"),
          tf.cast(tf.greater(x, 0), "int32"),
          tf.cast(x, "bool"),
        ];
      });
    },
  });

  Deno.test({
    ignore,
    name: `${label} vs cpu: reductions, softmax`,
    fn: async () => {
      await start();
      const shapes = [[7], [3, 5], [4, 6, 9], [2, 3, 4, 5], [3, 40000], [100000], [2000, 3]];
      for (const shape of shapes) {
        const rank = shape.length;
        const axesList: (number | number[] | undefined)[] = [undefined, -1, 0];
        if (rank >= 3) axesList.push([0, 2], 1);
        for (const axis of axesList) {
          for (const keepDims of [false, true]) {
            const tag = `${shape} axis ${JSON.stringify(axis)} keep ${keepDims}`;
            await compare(`Sum ${tag}`, [rand(shape)], (x) => tf.sum(x, axis, keepDims), 1e-5, true);
            await compare(`Mean ${tag}`, [rand(shape)], (x) => tf.mean(x, axis, keepDims), 1e-5, true);
            await compare(`Max ${tag}`, [rand(shape)], (x) => tf.max(x, axis, keepDims));
            await compare(`Min ${tag}`, [rand(shape)], (x) => tf.min(x, axis, keepDims));
          }
        }
      }
      await compare("Sum int32", [rand([5, 9], -100, 100, "int32")], (x) => tf.sum(x, 1));
      await compare("Prod", [rand([4, 5], 0.5, 1.5)], (x) => tf.prod(x, 1));
      for (const shape of [[1, 1], [4, 7], [2, 2, 3, 129], [5, 30522]]) {
        await compare(`Softmax ${shape}`, [rand(shape, -8, 8)], (x) => tf.softmax(x));
      }
    },
  });

  Deno.test({
    ignore,
    name: `${label} vs cpu: gather, unsortedSegmentSum, oneHot, data movement`,
    fn: async () => {
      await start();
      const idx = tf.tensor1d([0, 3, 3, 1, 4, 2, 0], "int32");
      await compare("GatherV2 axis 0", [rand([5, 6]), idx], (x, i) => tf.gather(x, i));
      await compare("GatherV2 axis 1", [rand([3, 5, 4]), idx], (x, i) => tf.gather(x, i, 1));
      await compare(
        "GatherV2 2-D indices",
        [rand([5, 3]), tf.tensor2d([[1, 2], [4, 0]], [2, 2], "int32")],
        (x, i) => tf.gather(x, i),
      );
      await compare("GatherV2 int32", [rand([5, 3], -9, 9, "int32"), idx], (x, i) => tf.gather(x, i));
      await compare(
        "UnsortedSegmentSum",
        [rand([7, 33]), idx],
        (x, i) => tf.unsortedSegmentSum(x, i as tf.Tensor1D, 6),
        1e-5,
        true,
      );
      await compare(
        "gather gradient",
        [rand([5, 8]), idx, rand([7, 8])],
        (x, i, dy) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, i), dy)))(x),
        1e-5,
        true,
      );
      // Non-finite addends and segment ids outside [0, numSegments) (dropped), against TensorFlow's
      // definition summed here: the cpu backend builds this op from masks (0·Inf is NaN), so an Inf in one
      // segment would make the whole column NaN there.
      const special = await rand([6, 4]).data() as Float32Array, ids = [0, 1, 9, 0, -1, 1];
      [special[1], special[6], special[13]] = [Infinity, -Infinity, NaN];
      const want = new Float64Array(3 * 4);
      ids.forEach((s, r) => {
        for (let c = 0; s >= 0 && s < 3 && c < 4; c++) want[s * 4 + c] += special[r * 4 + c];
      });
      const [got] = await runOn(
        target,
        () => tf.unsortedSegmentSum(tf.tensor2d(special, [6, 4]), tf.tensor1d(ids, "int32"), 3),
      );
      const { e, at } = relError(got.v, Float32Array.from(want), true);
      assert(
        e <= 1e-6,
        `UnsortedSegmentSum with Inf, NaN and dropped ids: error ${e} at ${at}: ${got.v} vs ${want}`,
      );
      await compare("OneHot", [idx], (i) => [tf.oneHot(i, 6), tf.oneHot(i, 5, 2.5, -1, "float32")]);
      for (
        const [shape, perm] of [
          [[3, 4], [1, 0]],
          [[2, 3, 4], [2, 0, 1]],
          [[2, 3, 4, 5], [0, 2, 1, 3]],
          [[33, 17, 5], [1, 2, 0]],
          // Permutations that keep the memory order (the backend aliases instead of copying).
          [[3, 4], [0, 1]],
          [[2, 1, 5, 3], [0, 2, 1, 3]],
          [[1, 4, 1, 3], [2, 1, 3, 0]],
          [[2, 3, 1, 1], [1, 0, 2, 3]],
        ] as [number[], number[]][]
      ) {
        // The transposed tensor is also used after its input is gone: an alias must hold its own reference.
        await compare(`Transpose ${shape} ${perm}`, [rand(shape)], (x) => {
          const y = tf.transpose(x, perm);
          x.dispose();
          return [y, tf.add(y, 1)];
        });
      }
      await compare(
        "Slice",
        [rand([5, 7, 3])],
        (x) => [tf.slice(x, [1, 2, 0], [3, -1, 2]), tf.slice(x, [4], [1])],
      );
      await compare(
        "Concat",
        [rand([2, 3]), rand([2, 5]), rand([2, 1])],
        (a, b, c) => [tf.concat([a, b, c], 1), tf.concat([a, a], 0)],
      );
      await compare("Pack", [rand([3, 4]), rand([3, 4])], (a, b) => [tf.stack([a, b]), tf.stack([a, b], 2)]);
      await compare("PadV2", [rand([3, 4])], (x) => tf.pad(x, [[1, 2], [0, 3]], 1.5));
      await compare("Tile", [rand([2, 3])], (x) => [tf.tile(x, [3, 1]), tf.tile(x, [2, 4])]);
      await compare("BroadcastTo", [rand([3, 1])], (x) => tf.broadcastTo(x, [2, 3, 4]));
      await compare(
        "Fill, ZerosLike, OnesLike, Range",
        [rand([3, 2])],
        (
          x,
        ) => [
          tf.fill([2, 3], 4.5),
          tf.zerosLike(x),
          tf.onesLike(x),
          tf.range(0, 10, 3, "int32"),
          tf.range(1, -2, -0.5),
        ],
      );
      await compare("Reshape, Identity", [rand([4, 6])], (x) => [tf.reshape(x, [2, 12]), tf.clone(x)]);
    },
  });

  Deno.test({
    ignore,
    name: `${label} vs host: D's input and labels built on the device equal corrupt() on the host`,
    fn: async () => {
      await start();
      const rng = new Rng(21);
      const original = Int32Array.from({ length: 300 }, () => rng.int(50));
      const selected = Int32Array.from([3, 17, 18, 40, 299, 0, 150]);
      const masked = original.slice();
      for (const p of selected) masked[p] = 4; // [MASK]
      const targets = Int32Array.from(selected, (p) => original[p]);
      const picks = Int32Array.from(selected, (p, i) => (i % 2 ? original[p] : (original[p] + 1) % 50));
      const want = corrupt(original, selected, picks);
      await tf.setBackend(target);
      try {
        const [ids, labels] = tf.engine().runKernel(CORRUPT, {
          ids: tf.tensor1d(masked, "int32"),
          selected: tf.tensor1d(selected, "int32"),
          picks: tf.tensor1d(picks, "int32"),
          targets: tf.tensor1d(targets, "int32"),
        }) as tf.Tensor[];
        assertEquals(await ids.data(), want.corruptedIds);
        assertEquals(await labels.data(), want.labels);
        tf.dispose([ids, labels]);
      } finally {
        await tf.setBackend("cpu");
      }
    },
  });

  Deno.test({
    ignore,
    name: `${label} vs host: dropout masks and the generator's samples (rtdlab's own kernels)`,
    fn: async () => {
      await start();
      await tf.setBackend(target);
      try {
        // Masks: bit-identical to the host loop, for odd sizes and large seeds.
        for (
          const [n, rate, seed] of [[1, 0.1, 0], [1000, 0.1, 7], [12345, 0.5, 2 ** 31 - 1], [
            70001,
            0.9,
            123456,
          ]]
        ) {
          const want = new Float32Array(n);
          fillDropoutMask(want, rate, seed);
          const got = dropoutMask([n], rate, seed);
          const v = (await got.data()) as Float32Array;
          got.dispose();
          assertEquals(v, want, `dropout mask n=${n} rate=${rate} seed=${seed}`);
        }
        // Samples: the host's picks with the same uniforms (T = 1, T = 2, a banned id per row), on
        // peaked and flat rows, vocabularies not a multiple of the kernel's 256 chunks.
        for (
          const [rows, vocab, temperature, ban] of [[37, 1000, 1, false], [64, 8192, 1, true], [
            9,
            30522,
            2,
            false,
          ]] as const
        ) {
          const r = new Rng(rows);
          const values = new Float32Array(rows * vocab);
          for (let i = 0; i < values.length; i++) values[i] = (i % vocab < 3 ? 6 : 0) + 3 * r.normal();
          const banned = ban ? Int32Array.from({ length: rows }, (_, i) => i % 5) : undefined;
          const want = sampleFromLogits(values, rows, vocab, temperature, new Rng(99), banned);
          const logits = tf.tensor2d(values, [rows, vocab]);
          const got = await sampleOnDevice(logits, temperature, new Rng(99), banned);
          logits.dispose();
          assert(got != null, "the backend registers the row sampler");
          assertEquals(got, want, `samples rows=${rows} vocab=${vocab} T=${temperature} banned=${ban}`);
        }
      } finally {
        await tf.setBackend("cpu");
      }
    },
  });

  Deno.test({
    ignore,
    name: `${label} vs cpu: the fused AdamW kernel equals the op-by-op update bit for bit`,
    fn: async () => {
      await start();
      const want = await adamwOn("cpu", false);
      const got = await adamwOn(target, true);
      await tf.setBackend("cpu");
      assertEquals([...got.keys()].sort(), [...want.keys()].sort());
      for (const [k, w] of want) {
        // The global norm is a reduction: the device sums in another order (float64 partials).
        if (k.startsWith("norm")) assert(Math.abs(got.get(k)![0] - w[0]) <= 1e-6 * w[0], k);
        else assertEquals(got.get(k), w, k);
      }
    },
  });

  Deno.test({
    ignore,
    name: `${label} vs cpu: matMul / batchMatMul through cuBLAS (fp32 1e-5, TF32 1e-3)`,
    fn: async () => {
      await start();
      const cases: [number[], number[], boolean, boolean][] = [
        [[3, 5], [5, 4], false, false],
        [[5, 3], [5, 4], true, false],
        [[3, 5], [4, 5], false, true],
        [[5, 3], [4, 5], true, true],
        [[4, 17, 33], [4, 33, 9], false, false],
        [[2, 3, 7, 8], [2, 3, 8, 5], false, false],
        [[6, 7, 8], [8, 5], false, false],
        [[7, 8], [6, 8, 5], false, false],
        [[128, 256], [256, 384], false, false],
      ];
      // Batch dims broadcast both ways: tfjs-backend-cpu gets this wrong (it returns 12 of 24
      // values for [2,1,2,2]·[1,3,2,2]), so the reference broadcasts explicitly first.
      await compare(
        "BatchMatMul [2,1,7,8]·[1,3,8,5]",
        [rand([2, 1, 7, 8]), rand([1, 3, 8, 5])],
        (a, b) =>
          tf.getBackend() === "cpu"
            ? tf.matMul(tf.broadcastTo(a, [2, 3, 7, 8]), tf.broadcastTo(b, [2, 3, 8, 5]))
            : tf.matMul(a, b),
        1e-5,
        true,
      );
      for (const [sa, sb, ta, tb] of cases) {
        const what = `BatchMatMul ${JSON.stringify([sa, sb, ta, tb])}`;
        await compare(what, [rand(sa), rand(sb)], (a, b) => tf.matMul(a, b, ta, tb), 1e-5, true);
        if (tf32) {
          await compare(
            `${what} TF32`,
            [rand(sa), rand(sb)],
            (a, b) => tf.matMul(a, b, ta, tb),
            1e-3,
            true,
            tf32,
          );
        }
      }
    },
  });

  Deno.test({
    ignore,
    name:
      `${label} vs cpu: fused GELU, LayerNorm, attention softmax, cross-entropy, dropout, column sums and sum of squares equal the unfused ops`,
    fn: async () => {
      await start();
      await tf.setBackend(target);
      for (
        const op of [
          "gelu",
          "layerNorm",
          "sumSquares",
          "dropout",
          "attentionSoftmax",
          "columnSums",
          "softmaxCrossEntropy",
          "qkvHeads",
          "disentangledSoftmax",
          "relativeBucketSum",
        ] as const
      ) {
        assert(fusedKernelsActive(op), `the fused ${op} should be active on ${target}`);
      }
      // cpu runs the plain ops of lib/model/layers.ts and lib/train/optimizer.ts, the target its kernels.
      await compare(
        "GELU and its gradient",
        [tf.concat([rand([997], -10, 10), tf.tensor([0, -0, 1e-8, -8, 8, 40, -40])])],
        (x) => [gelu(x), tf.grad((v: tf.Tensor) => gelu(v))(x)],
        1e-6,
        true,
      );
      for (const [shape, eps] of [[[3, 5, 256], 1e-12], [[7, 33], 1e-7], [[2, 64], 1e-12]] as const) {
        const cols = shape[shape.length - 1];
        await compare(
          `LayerNorm ${JSON.stringify(shape)} eps ${eps}: y and the gradients of Σ y·w for x, γ, β`,
          [rand([...shape], -3, 5), rand([cols], 0.5, 1.5), rand([cols]), rand([...shape])],
          (x, g, b, w) => {
            const f = (xv: tf.Tensor, gv: tf.Tensor, bv: tf.Tensor) =>
              tf.sum(tf.mul(layerNormWith(xv, gv, bv, eps), w));
            return [layerNormWith(x, g, b, eps), ...tf.grads(f)([x, g, b])];
          },
          1e-5,
          true,
        );
      }
      await compare(
        "attention softmax(scores·scale + mask) and the gradient of Σ probs·w for the scores",
        [
          rand([2, 3, 9, 9], -6, 6),
          rand([2, 9, 9]),
          tf.tensor([0, 0, 0, 0, 0, 0, -1e4, -1e4, -1e4], [1, 1, 1, 9]),
        ],
        (x, w, m) => {
          const bias = tf.concat([tf.zerosLike(m), m]) as tf.Tensor4D; // batch 0 unpadded, batch 1 padded
          const f = (v: tf.Tensor) =>
            tf.sum(tf.mul(attentionProbs(v as tf.Tensor4D, bias, 0.125), tf.reshape(w, [2, 1, 9, 9])));
          return [attentionProbs(x as tf.Tensor4D, bias, 0.125), tf.grad(f)(x)];
        },
        1e-5,
        true,
      );
      await compare(
        "softmax cross-entropy (the generator's loss) ×3 and its gradient for the logits",
        [rand([9, 1001], -8, 8), tf.tensor1d([0, 1000, 17, 5, 999, 42, 17, 3, 500], "int32")],
        (x, t) => {
          const f = (v: tf.Tensor) => tf.mul(crossEntropy(v as tf.Tensor2D, t as tf.Tensor1D), 3);
          return [f(x), tf.grad(f)(x)];
        },
        1e-6,
        true,
      );
      await compare(
        "x + v per row, and v's gradient (column sums)",
        [rand([300, 7]), rand([7]), rand([300, 7])],
        (
          x,
          v,
          w,
        ) => [
          tf.grad((u: tf.Tensor) => tf.sum(tf.mul(addRowVector(x as tf.Tensor2D, u as tf.Tensor1D), w)))(v),
        ],
        1e-6,
        true,
      );
      // Dropout through the layer (the same seed on both sides): the mask product on cpu, one kernel on
      // the target, and the same numbers bit for bit, forward and backward.
      const ctx = (rngSeed: number) => ({
        params: new ParameterStore(),
        training: true,
        dropout: 0.1,
        layerNormEps: 1e-12,
        rng: new Rng(rngSeed),
      });
      await compare(
        "dropout and its gradient",
        [rand([5, 7, 33]), rand([5, 7, 33])],
        (x, w) => [dropout(ctx(4), x), tf.grad((v: tf.Tensor) => tf.sum(tf.mul(dropout(ctx(4), v), w)))(x)],
        0,
      );
      // A post-LN block's LayerNorm(residual + dropout(h)), training (dropout on) and not: the dropout
      // and add kernels then LayerNorm on cpu, one kernel each way on the target.
      for (const training of [true, false]) {
        await compare(
          `LayerNorm(residual + dropout(h)), training ${training}: y and the gradients for residual, h, γ, β`,
          [rand([6, 5, 64]), rand([6, 5, 64]), rand([64], 0.5, 1.5), rand([64]), rand([6, 5, 64])],
          (x, h, g, b, w) => {
            const params = new ParameterStore();
            const run = (xv: tf.Tensor, hv: tf.Tensor, gv: tf.Tensor, bv: tf.Tensor) => {
              params.vars.clear();
              params.vars.set("ln.weight", gv as tf.Variable);
              params.vars.set("ln.bias", bv as tf.Variable);
              const ctx = { params, training, dropout: 0.1, layerNormEps: 1e-12, rng: new Rng(9) };
              return addLayerNorm(ctx, "ln", xv, hv);
            };
            const f = (xv: tf.Tensor, hv: tf.Tensor, gv: tf.Tensor, bv: tf.Tensor) =>
              tf.sum(tf.mul(run(xv, hv, gv, bv), w));
            return [run(x, h, g, b), ...tf.grads(f)([x, h, g, b])];
          },
          1e-5,
          true,
        );
      }
      // Dense layers with their bias folded into the next kernel (GELU; dropout + residual + LayerNorm).
      const layerCtx = (named: Record<string, tf.Tensor>, training: boolean) => {
        const params = new ParameterStore();
        for (const [n, t] of Object.entries(named)) params.vars.set(n, t as tf.Variable);
        return { params, training, dropout: 0.1, layerNormEps: 1e-12, rng: new Rng(11) };
      };
      await compare(
        "GELU(x·Wᵀ + b) and the gradients for x, W, b",
        [rand([40, 24]), rand([48, 24], -0.5, 0.5), rand([48]), rand([40, 48])],
        (x, wt, b, w) => {
          const f = (xv: tf.Tensor, wv: tf.Tensor, bv: tf.Tensor) =>
            denseGelu(layerCtx({ "d.weight": wv, "d.bias": bv }, true), "d", xv as tf.Tensor2D);
          return [f(x, wt, b), ...tf.grads((xv, wv, bv) => tf.sum(tf.mul(f(xv, wv, bv), w)))([x, wt, b])];
        },
        1e-5,
        true,
      );
      await compare(
        "LayerNorm(residual + dropout(x·Wᵀ + b)) and the gradients for residual, x, W, b, γ, β",
        [
          rand([40, 32]),
          rand([40, 24]),
          rand([32, 24], -0.5, 0.5),
          rand([32]),
          rand([32], 0.5, 1.5),
          rand([32]),
          rand([40, 32]),
        ],
        (r, x, wt, b, g, be, w) => {
          const f = (
            rv: tf.Tensor,
            xv: tf.Tensor,
            wv: tf.Tensor,
            bv: tf.Tensor,
            gv: tf.Tensor,
            bev: tf.Tensor,
          ) =>
            denseAddLayerNorm(
              layerCtx({ "d.weight": wv, "d.bias": bv, "ln.weight": gv, "ln.bias": bev }, true),
              "d",
              "ln",
              rv as tf.Tensor2D,
              xv as tf.Tensor2D,
            );
          const grads = tf.grads((rv, xv, wv, bv, gv, bev) => tf.sum(tf.mul(f(rv, xv, wv, bv, gv, bev), w)));
          return [f(r, x, wt, b, g, be), ...grads([r, x, wt, b, g, be])];
        },
        1e-5,
        true,
      );
      // Self-attention (query, key and value as one gemm, their biases and head splits as one launch),
      // training: its context and the gradients for x and every projection.
      const names = ["query", "key", "value"].flatMap((p) => [`a.self.${p}.weight`, `a.self.${p}.bias`]);
      await compare(
        "self-attention context and the gradients for x, W_q, b_q, W_k, W_v, b_v",
        [
          rand([2 * 7, 16]),
          ...names.map((n) => n.endsWith("weight") ? rand([16, 16], -0.5, 0.5) : rand([16])),
          rand([2 * 7, 16]),
          tf.tensor([0, 0, 0, 0, 0, -1e4, -1e4, 0, 0, 0, 0, 0, 0, 0], [2, 1, 1, 7]),
        ],
        (x, ...rest) => {
          const [w, m] = rest.slice(6);
          const f = (xv: tf.Tensor, ...ps: tf.Tensor[]) =>
            selfAttentionContext(
              layerCtx(Object.fromEntries(names.map((n, i) => [n, ps[i]])), true),
              "a",
              "a",
              xv as tf.Tensor2D,
              m as tf.Tensor4D,
              2,
              7,
              4,
            );
          const grads = tf.grads((...vs: tf.Tensor[]) => tf.sum(tf.mul(f(vs[0], ...vs.slice(1)), w)));
          // Not b_k's: zero in exact arithmetic (softmax ignores a per-row constant), rounding noise on both sides.
          const g = grads([x, ...rest.slice(0, 6)]);
          return [f(x, ...rest.slice(0, 6)), ...g.filter((_, i) => i !== 4)];
        },
        1e-5,
        true,
      );
      // The probes' hook sees the attention probabilities before dropout, also where dropout runs inside
      // the softmax kernel (training on cuda), and the context after it.
      await compare(
        "self-attention's hooked probabilities (before dropout) and its context, training",
        [
          rand([2 * 7, 16]),
          ...names.map((n) => n.endsWith("weight") ? rand([16, 16], -0.5, 0.5) : rand([16])),
          tf.tensor([0, 0, 0, 0, 0, -1e4, -1e4, 0, 0, 0, 0, 0, 0, 0], [2, 1, 1, 7]),
        ],
        (x, ...rest) => {
          const capture = new Map<string, tf.Tensor>();
          const ctx = { ...layerCtx(Object.fromEntries(names.map((n, i) => [n, rest[i]])), true), capture };
          const context = selfAttentionContext(
            ctx,
            "a",
            "a",
            x as tf.Tensor2D,
            rest[6] as tf.Tensor4D,
            2,
            7,
            4,
          );
          const probs = capture.get("a.attention.probs")!;
          assertEquals(probs.shape, [2, 4, 7, 7]);
          return [probs, context, tf.sum(probs, -1)];
        },
        1e-5,
        true,
      );
      // DeBERTa's XSoftmax of c2c, c2p and p2c with the attention dropout (training), one sequence padded:
      // one kernel each way on the target, the separate ops on cpu.
      const keep = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]; // B = 2, L = 9: the last 3 of batch 1 padded
      const pair = tf.tensor3d(
        Array.from(
          { length: 2 * 9 * 9 },
          (_, k) =>
            keep[Math.floor(k / 81) * 9 + Math.floor(k / 9) % 9] * keep[Math.floor(k / 81) * 9 + k % 9],
        ),
        [2, 9, 9],
      );
      await compare(
        "DeBERTa XSoftmax(c2c + c2p + p2c) with dropout and the gradients for the three terms",
        [
          rand([3, 2, 9, 9], -4, 4),
          rand([3, 2, 9, 9], -4, 4),
          rand([3, 2, 9, 9], -4, 4),
          pair,
          rand([3, 2, 9, 9]),
        ],
        (c2c, c2p, p2c, pr, w) => {
          const masks = { bias: tf.mul(tf.sub(1, pr), -1e9) as tf.Tensor3D, pair: pr as tf.Tensor3D };
          const ctx = layerCtx({}, true);
          const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
            xSoftmaxDropout(ctx, "x", a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, masks, 0.2);
          ctx.rng = new Rng(5);
          const y = f(c2c, c2p, p2c);
          ctx.rng = new Rng(5);
          return [y, ...tf.grads((a, b, c) => tf.sum(tf.mul(f(a, b, c), w)))([c2c, c2p, p2c])];
        },
        1e-5,
        true,
      );
      // A whole DeBERTa encoder, training (padding, dropout, relative positions): its hidden states and
      // each parameter's gradient, each compared at its own scale.
      await compare(
        "DeBERTa discriminator encoder, training: hidden states and every parameter's gradient",
        [rand([2 * 16, 32])],
        (w) => {
          const model = createModel(debertaMicroConfig("gdes"), 3);
          const batch = randomBatch(11, 2, 16, 3);
          const inputs = batchTensors(batch.inputIds, batch, VOCAB.padId);
          const names = model.params.names().filter((n) => n.startsWith("discriminator."));
          const vars = names.map((n) => model.params.get(n));
          const { value, grads } = tf.variableGrads(
            () =>
              tf.sum(tf.mul(model.encode("discriminator", inputs, { training: true, rng: new Rng(4) }), w)),
            vars,
          );
          const out = [value, ...vars.filter((v) => grads[v.name] != null).map((v) => grads[v.name])];
          model.dispose();
          return out;
        },
        1e-5,
        true,
      );
      // Tensors across the kernel's 65,536-element chunks, and an empty one.
      await compare(
        "global norm (sum of squares over many tensors)",
        [rand([70000]), rand([3, 4]), rand([1]), rand([0]), rand([131072], -0.01, 0.01)],
        (...xs) => globalNorm(xs),
        1e-6,
      );
    },
  });

  for (const sharing of ["es", "gdes"] as const) {
    Deno.test({
      ignore,
      name: `${label} vs cpu: one ${sharing.toUpperCase()} training step (loss and gradients)`,
      fn: async () => {
        await start();
        const want = await stepOn("cpu", sharing);
        const got = await stepOn(target, sharing);
        await tf.setBackend("cpu");
        for (const k of ["lossMlm", "lossRtd", "gradNormGenerator"] as const) {
          const a = got.m[k]!, b = want.m[k]!;
          assert(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)), `${k}: cuda ${a} vs cpu ${b}`);
        }
        const worst = worstGradientError(got.grads, want.grads);
        console.log(`${label} ${sharing}: largest relative gradient error ${worst.toExponential(2)}`);
      },
    });
  }

  Deno.test({
    ignore,
    name:
      `${label}: every gather's gradient (UnsortedSegmentSum) has the same bits in any row order; a step run twice gives the same gradients`,
    fn: async () => {
      await start();
      // Many rows to a segment, of sizes 1e-4 to 1e3: a float sum of them depends on the order of its
      // terms, which on a GPU is the order the blocks happen to run in.
      const rng = new Rng(3), rows = 96, inner = 5, perm = Array.from({ length: rows }, (_, r) => r);
      for (let r = rows - 1; r > 0; r--) {
        const j = rng.int(r + 1);
        [perm[r], perm[j]] = [perm[j], perm[r]];
      }
      const x = Float32Array.from(
        { length: rows * inner },
        () => (rng.next() - 0.5) * 10 ** rng.int(8) / 1e4,
      );
      const seg = Int32Array.from({ length: rows }, () => rng.int(4));
      const permuted = Float32Array.from(
        { length: rows * inner },
        (_, i) => x[perm[Math.floor(i / inner)] * inner + i % inner],
      );
      const sum = (v: Float32Array, ids: Int32Array) => () =>
        tf.unsortedSegmentSum(tf.tensor2d(v, [rows, inner]), tf.tensor1d(ids, "int32"), 4);
      const [a] = await runOn(target, sum(x, seg));
      const [b] = await runOn(target, sum(permuted, Int32Array.from(perm, (r) => seg[r])));
      assertEquals(Array.from(b.v), Array.from(a.v), "the same sums, bit for bit, with the rows shuffled");
      const want = await runOn("cpu", sum(x, seg));
      assert(relError(a.v, want[0].v, true).e <= 1e-6, "and they agree with the cpu backend");
      // So a whole training step (embedding gradients included) repeats exactly.
      const first = await stepOn(target, "gdes"), second = await stepOn(target, "gdes");
      await tf.setBackend("cpu");
      assertEquals(second.m.lossRtd, first.m.lossRtd);
      for (const [name, g] of first.grads) {
        assertEquals(Array.from(second.grads.get(name)!), Array.from(g), `gradient of ${name}`);
      }
    },
  });

  Deno.test({
    ignore,
    name:
      `${label}: resume reproduces exactly the losses and final parameters of an uninterrupted run (GDES)`,
    fn: async () => {
      await start();
      await tf.setBackend(target);
      const cache = Deno.env.get("RTDLAB_CACHE"), corpus = tempDir("rtdlab-corpus-");
      Deno.env.set("RTDLAB_CACHE", tempDir("rtdlab-cache-")); // the run's tokenizer, not the project's cache
      try {
        writeGrammarCorpus(corpus, 8, 40);
        const config = validateConfig(applyOverrides(preset("tiny"), {
          sharing: "gdes",
          corpus,
          tokenizerVocabSize: 100,
          maxPositions: 32,
          seqLength: 32,
          ...MICRO_SIZES,
          batchSize: 4,
          steps: 8,
          warmupSteps: 2,
          learningRate: 3e-3,
          logEvery: 1,
          checkpointEvery: 4,
        }));
        const whole = `${tempDir()}/whole`, split = `${tempDir()}/split`;
        const runs = [{ outDir: whole }, { outDir: split, until: 5 }, { outDir: split, resume: true }];
        const finalParams = new Map<string, Map<string, number[]>>();
        for (const opts of runs) {
          const { trainer } = await pretrain({ config, noExport: true, ...opts });
          const store = trainer.model.params;
          finalParams.set(
            opts.outDir,
            new Map(store.names().map((n) => [n, Array.from(store.get(n).dataSync())])),
          );
          trainer.dispose();
        }
        const losses = async (dir: string) =>
          (await readMetrics(`${dir}/metrics.jsonl`)).map((
            m,
          ) => [m.step, m.loss_mlm, m.loss_rtd, m.disc_acc]);
        assertEquals(await losses(split), await losses(whole));
        // The parameters after the last step, bit for bit: a last-bit difference in any gradient shows here.
        for (const [name, values] of finalParams.get(whole)!) {
          assertEquals(finalParams.get(split)!.get(name), values, `parameter ${name}`);
        }
      } finally {
        if (cache === undefined) Deno.env.delete("RTDLAB_CACHE");
        else Deno.env.set("RTDLAB_CACHE", cache);
        await tf.setBackend("cpu");
      }
    },
  });

  Deno.test({
    ignore,
    name:
      `${label} vs cpu: one fine-tuning step of the classifier, ELECTRA and DeBERTa encoders (loss and gradients)`,
    fn: async () => {
      await start();
      for (const backbone of ["electra", "deberta"] as const) {
        const want = await finetuneStepOn("cpu", backbone);
        const got = await finetuneStepOn(target, backbone);
        await tf.setBackend("cpu");
        assert(Math.abs(got.loss - want.loss) <= 1e-4 * Math.max(1, Math.abs(want.loss)), `${backbone} loss`);
        const worst = worstGradientError(got.grads, want.grads);
        console.log(
          `${label} fine-tuning ${backbone}: largest relative gradient error ${worst.toExponential(2)}`,
        );
      }
    },
  });
}

defineSuites("cuda", startGpu, gpu == null, "cuda_tf32");
defineSuites("cuda_emu (host emulator)", startEmulator, false, null);
// kernels.cu itself on the host, each CUDA thread a fiber (host_simt.cpp), where no GPU is: needs a C++ compiler.
defineSuites("cuda_simt (kernels.cu on the host)", startSimt, simtIgnored, null);
// The same with every launch on at most 3 blocks, run last to first: each block takes several turns of its
// grid-stride loop (the backend's grids only do that past 65,535 rows), which checks the barriers that end
// each turn, and a block that needs another block's output before that block has run reads garbage.
defineSuites(
  "cuda_simt_grid3 (kernels.cu on the host, 3 blocks, last first)",
  startSimtGrid3,
  simtIgnored,
  null,
);

Deno.test({
  ignore: simtIgnored,
  name:
    "cuda_simt: a training step and a fine-tuning step give the same bits whichever order their blocks run in",
  fn: async () => {
    // A GPU runs blocks in no fixed order: an output that depends on it (a float atomic sum, a block
    // reading another's result) would make two runs of one seed differ. Here the two extreme orders.
    await startSimt();
    registerCudaBackend(await hostSimtCuda({ descendingBlocks: true }), "cuda_simt_desc");
    try {
      const up = await stepOn("cuda_simt", "gdes"), down = await stepOn("cuda_simt_desc", "gdes");
      assertEquals(down.m.lossMlm, up.m.lossMlm);
      assertEquals(down.m.lossRtd, up.m.lossRtd);
      for (const [name, g] of up.grads) {
        assertEquals(Array.from(down.grads.get(name)!), Array.from(g), `gradient of ${name}`);
      }
      const [a, b] = [
        await finetuneStepOn("cuda_simt", "deberta"),
        await finetuneStepOn("cuda_simt_desc", "deberta"),
      ];
      assertEquals(b.loss, a.loss);
      for (const [name, g] of a.grads) {
        assertEquals(
          Array.from(b.grads.get(name)!),
          Array.from(g),
          `DeBERTa fine-tuning gradient of ${name}`,
        );
      }
    } finally {
      await tf.setBackend("cpu");
      tf.removeBackend("cuda_simt_desc");
    }
  },
});

Deno.test({
  ignore: simtIgnored,
  name:
    "cuda_simt: a launch with the wrong parameters, a partial warp at a shuffle, or a stray address is an error",
  fn: async () => {
    const rt = await hostSimtCuda();
    const fns = rt.loadModule("", PTX_ENTRIES);
    const x = rt.memAlloc(64 * 4), y = rt.memAlloc(64 * 4);
    rt.copyHtoD(x, new Float32Array(64).fill(2));
    // unary_f32(int op, int n, const float* x, float* y, float alpha): Square over 64 elements.
    const p = new ParamBlock();
    const unary = (n: number, params = p.reset("unary_f32").i32(7).i32(n).ptr(x).ptr(y).f32(0)) =>
      rt.launch(fns.get("unary_f32")!, 1, 256, params);
    unary(64);
    const out = new Float32Array(64);
    rt.copyDtoHAsync(out, y);
    rt.synchronize();
    assertEquals(out[63], 4);
    assertThrows(
      () => unary(64, p.reset("unary_f32").i32(7).i32(64).ptr(x).ptr(y)),
      Error,
      "declared with 5",
    );
    assertThrows(
      () => unary(64, p.reset("unary_f32").i32(7).i32(64).ptr(x).ptr(y).f64(0)),
      Error,
      "parameter 4",
    );
    // softmax_rows_f32 gives each row a warp: 48 threads leave half a warp at its shuffles.
    p.reset("softmax_rows_f32").i32(2).i32(32).ptr(x).ptr(y);
    assertThrows(() => rt.launch(fns.get("softmax_rows_f32")!, 1, 48, p), Error, "not a multiple of 32");
    // Reading 4096 elements from a 64-element allocation reaches the page after it.
    assertThrows(() => unary(4096), Error, "invalid address");
    unary(64); // and the runtime goes on working
    rt.close();
  },
});

Deno.test("cuda_emu: outputs made in one allocation read back at their own addresses, and the last one frees it", async () => {
  await startEmulator();
  await tf.setBackend("cuda_emu");
  const b = tf.backend() as CudaBackend;
  const before = b.allocator.stats();
  const infos = b.makeOutputs([[2, 3], [4], [5]]);
  infos.forEach((info, i) => b.fill(info, wordOf(i + 1, "float32")));
  const [a, v, c] = infos.map((info) => tf.engine().makeTensorFromTensorInfo(info));
  assertEquals(b.allocator.stats().blocksInUse, before.blocksInUse + 1, "one allocation for three tensors");
  assertEquals(Array.from(await c.data()), [3, 3, 3, 3, 3]);
  const r = tf.reshape(v, [2, 2]); // an alias holds its own reference
  a.dispose();
  v.dispose();
  assertEquals(Array.from(await r.data()), [2, 2, 2, 2]);
  assertEquals(b.allocator.stats().blocksInUse, before.blocksInUse + 1, "still held by the others");
  r.dispose();
  c.dispose();
  assertEquals(b.allocator.stats().blocksInUse, before.blocksInUse, "freed with the last of them");
  await tf.setBackend("cpu");
});

// ---- (e) what a step sends to the device, counted on the emulator --------------------------------

Deno.test("cuda launch counts: independent of batch and length; the fused kernels cut them by more than half; no wait mid-step", async () => {
  const small = await countStep("tiny", "gdes", { batch: 2, length: 16 });
  const large = await countStep("tiny", "gdes", { batch: 3, length: 24 });
  for (const k of ["launches", "gemms", "syncs", "copiesToHost"] as const) {
    assertEquals(large[k], small[k], `${k} at batch 3 × 24 vs 2 × 16`);
  }
  useFusedKernels(false);
  let unfused;
  try {
    unfused = await countStep("tiny", "gdes", { batch: 2, length: 16 });
  } finally {
    useFusedKernels(true);
  }
  assert(!small.byKernel.has("Rsqrt") && unfused.byKernel.has("Rsqrt"), "LayerNorm should run fused");
  // The samples come back with the metrics: the host never waits for the device mid-step.
  assertEquals(small.midStepWaits, 0, "host waits before the step's last launch");
  assert(
    small.launches < 0.5 * unfused.launches,
    `fused ${small.launches} launches per step vs unfused ${unfused.launches}`,
  );
  await tf.setBackend("cpu");
});

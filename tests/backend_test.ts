/**
 * lib/backend: backend start-up, rtdlab's wasm kernels against the cpu reference, cross-backend
 * agreement of a small training step, stopGradient, and tensor bookkeeping.
 *
 * Run: deno test -A --unstable-webgpu tests/backend_test.ts
 * (webgpu cases run when an adapter exists, e.g. Mesa lavapipe with XDG_RUNTIME_DIR set.)
 */
import * as tf from "@tensorflow/tfjs-core";
// node:assert rather than @std/assert: JSR is not reachable from these machines.
import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import {
  type BackendName,
  BACKENDS,
  describeBackend,
  findTfjsNode,
  initBackend,
  registerWasmKernels,
  requestWebgpuAdapter,
  stopGradient,
  useBlas,
} from "../lib/backend/mod.ts";
import { blasCalls } from "../lib/backend/wasm_matmul.ts";
import { blasStatus, loadBlas, openBlas, pinnedCoreType } from "../lib/backend/blas.ts";

// Deterministic data without touching tfjs's RNG, so every backend sees the same numbers.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function floats(n: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => r() * 2 - 1);
}

function ints(n: number, lo: number, hi: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => lo + Math.floor(r() * (hi - lo)));
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function assertStringIncludes(actual: string, expected: string) {
  assert(
    actual.includes(expected),
    `expected ${JSON.stringify(actual)} to include ${JSON.stringify(expected)}`,
  );
}

async function assertRejects(f: () => Promise<unknown>): Promise<Error> {
  let caught: unknown;
  await rejects(async () => {
    try {
      await f();
    } catch (e) {
      caught = e;
      throw e;
    }
  });
  assert(caught instanceof Error, "expected an Error");
  return caught;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  assertEquals(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= worst)) [worst, at] = [d, i]; // NaN-safe: a NaN difference always counts as worst
  }
  assert(worst <= tol, `${what}: max |diff| ${worst} > ${tol} at ${at} (${actual[at]} vs ${expected[at]})`);
}

// A DENO_WEBGPU_BACKEND the user set (read before rtdlab sets its default) turns the Vulkan-only case off.
const userWebgpuBackend = Deno.env.get("DENO_WEBGPU_BACKEND") ?? "vulkan";
const adapter = await requestWebgpuAdapter();
const noWebgpu = adapter == null;
if (noWebgpu) {
  console.warn(
    "backend_test: no WebGPU adapter (run with --unstable-webgpu; install mesa-vulkan-drivers for " +
      "lavapipe; set XDG_RUNTIME_DIR): webgpu cases are ignored.",
  );
}

/** Runs `f` on `backend` and returns its tensors' values as plain arrays. */
async function on(backend: BackendName, f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await initBackend(backend);
  const ts = f();
  const out = await Promise.all(ts.map(async (t) => new Float32Array(await t.data())));
  tf.dispose(ts);
  return out;
}

Deno.test("initBackend starts wasm and cpu, and describes them", async () => {
  const wasm = await initBackend();
  assertEquals(wasm.name, "wasm");
  assertStringIncludes(wasm.info, "SIMD");
  assertEquals(describeBackend(), `wasm: ${wasm.info}`);
  const cpu = await initBackend("cpu");
  assertEquals(cpu.name, "cpu");
  assertStringIncludes(describeBackend(), "cpu: tfjs-backend-cpu");
  assertEquals([...BACKENDS], ["wasm", "cpu", "webgpu", "tensorflow", "cuda"]);
});

Deno.test("initBackend rejects unknown names, listing the valid ones", async () => {
  const err = await assertRejects(() => initBackend("gpu" as BackendName));
  assertStringIncludes(err.message, 'Unknown backend "gpu"');
  assertStringIncludes(err.message, "wasm, cpu, webgpu, tensorflow");
});

Deno.test("initBackend('tensorflow') explains that tfjs-node is not installed", async () => {
  if (findTfjsNode().found != null) return; // a machine that has it: nothing to check here
  const err = await assertRejects(() => initBackend("tensorflow"));
  assertStringIncludes(err.message, "tfjs-node");
  assertStringIncludes(err.message, "downloads libtensorflow");
  assertStringIncludes(err.message, '"wasm"');
});

Deno.test("findTfjsNode finds a native binding in Deno's node_modules layout, preferring -gpu", () => {
  const root = Deno.makeTempDirSync({ prefix: "rtdlab-tfjs-node-" });
  try {
    const install = (name: string, version: string) => {
      const dir = `${root}/.deno/@tensorflow+${name}@${version}/node_modules/@tensorflow/${name}`;
      Deno.mkdirSync(`${dir}/lib/napi-v8`, { recursive: true });
      Deno.writeTextFileSync(`${dir}/package.json`, JSON.stringify({ version }));
      Deno.writeTextFileSync(`${dir}/lib/napi-v8/tfjs_binding.node`, "");
    };
    assertEquals(findTfjsNode([root]).found, null);
    install("tfjs-node", "4.22.0");
    assertEquals(findTfjsNode([root]).found?.pkg, "@tensorflow/tfjs-node");
    install("tfjs-node-gpu", "4.21.0");
    const { found } = findTfjsNode([root]);
    assertEquals(found?.pkg, "@tensorflow/tfjs-node-gpu");
    assertEquals(found?.version, "4.21.0");
    assertStringIncludes(found!.binding, "tfjs_binding.node");
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

const vulkanOnly = !noWebgpu && Deno.build.os === "linux" && userWebgpuBackend === "vulkan";
Deno.test({
  name:
    `WebGPU on Linux opens Vulkan only, never wgpu's EGL backend (its thread state can abort the process at exit)${
      vulkanOnly ? "" : " (ignored: no WebGPU adapter on Linux, or DENO_WEBGPU_BACKEND set)"
    }`,
  ignore: !vulkanOnly,
  fn: async () => {
    await initBackend("webgpu");
    assertEquals(Deno.env.get("DENO_WEBGPU_BACKEND"), "vulkan");
    const maps = Deno.readTextFileSync("/proc/self/maps");
    assert(!/libEGL/.test(maps), "libEGL is loaded: something asked navigator.gpu for an adapter directly");
  },
});

Deno.test({
  name: `initBackend('webgpu') starts on an adapter${noWebgpu ? " (ignored: no WebGPU adapter)" : ""}`,
  ignore: noWebgpu,
  fn: async () => {
    const { name, info } = await initBackend("webgpu");
    assertEquals(name, "webgpu");
    assertStringIncludes(info, "adapter");
    assertStringIncludes(info, "max tensor");
    // GPU-resident results: async reads work, sync reads fail with rtdlab's explanation.
    const y = tf.matMul(tf.ones([64, 64]), tf.ones([64, 64]));
    assertEquals((await y.data())[0], 64);
    const z = tf.matMul(y, y);
    let message = "";
    try {
      z.arraySync();
    } catch (e) {
      message = (e as Error).message;
    }
    // Deno without OffscreenCanvas cannot read synchronously; elsewhere arraySync just works.
    if (message) assertStringIncludes(message, "use await tensor.data()");
    tf.dispose([y, z]);
  },
});

// x shape, segment-id shape (a prefix of x's), numSegments, dtype
const SEGMENT_CASES: [number[], number[], number, "float32" | "int32"][] = [
  [[7], [7], 3, "float32"],
  [[13, 5], [13], 7, "float32"],
  [[1500, 24], [1500], 131, "float32"],
  [[9, 3, 4], [9], 11, "float32"],
  [[4, 6, 3], [4, 6], 5, "float32"],
  [[31, 17], [31], 31, "int32"],
  [[0, 3], [0], 4, "float32"],
  [[5, 2], [5], 0, "float32"],
];

// Plain-JS reference, in float64.
function segmentSumReference(xs: number[], ids: number[], n: number, inner: number): number[] {
  const out = new Array(n * inner).fill(0);
  ids.forEach((s, i) => {
    if (s < 0 || s >= n) return;
    for (let j = 0; j < inner; j++) out[s * inner + j] += xs[i * inner + j];
  });
  return out;
}

Deno.test("UnsortedSegmentSum on wasm matches cpu (duplicates, out-of-range ids, odd shapes)", async () => {
  for (const [i, [xShape, idShape, n, dtype]] of SEGMENT_CASES.entries()) {
    const xs = dtype === "int32" ? ints(size(xShape), -50, 50, i) : floats(size(xShape), i);
    // Ids run one past each end: TensorFlow drops -1 and n, and so must the kernel.
    const ids = ints(size(idShape), -1, n + 1, 100 + i);
    const inner = size(xShape.slice(idShape.length));
    const what = `case ${i} x[${xShape}] ids[${idShape}] n=${n}`;
    const run = (flat: boolean) => () => {
      // tfjs-backend-cpu mishandles multi-dimensional ids, so it gets the flattened problem.
      const shapeX = flat ? [size(idShape), ...xShape.slice(idShape.length)] : xShape;
      const segmentIds: tf.Tensor = tf.tensor(ids, flat ? [size(idShape)] : idShape, "int32");
      return [tf.unsortedSegmentSum(tf.tensor(xs, shapeX, dtype), segmentIds as tf.Tensor1D, n)];
    };
    const [got] = await on("wasm", run(false));
    assertClose(got, segmentSumReference(xs, ids, n, inner), 1e-5, `${what} vs reference`);
    if (n === 0) continue; // tfjs-backend-cpu crashes on numSegments = 0 (it packs an empty list)
    const [want] = await on("cpu", run(true));
    assertClose(got, want, 1e-5, `${what} vs cpu`);
  }
});

Deno.test("UnsortedSegmentSum on wasm rejects bad inputs clearly", async () => {
  await initBackend("wasm");
  const x = tf.ones([4, 2]);
  const ids = tf.tensor1d([0, 1, 2, 3], "int32");
  try {
    const e = (() => {
      try {
        tf.engine().runKernel("UnsortedSegmentSum", { x, segmentIds: tf.tensor1d([0, 1, 2], "int32") }, {
          numSegments: 4,
        });
      } catch (err) {
        return err as Error;
      }
    })();
    assertStringIncludes(e?.message ?? "", "must be a prefix of x shape");
    assertEquals(tf.unsortedSegmentSum(x, ids, 2).shape, [2, 2]);
  } finally {
    tf.dispose([x, ids]);
  }
});

Deno.test("gather's gradient on wasm matches cpu (axis 0 and 1, 2-D indices, duplicates)", async () => {
  const cases: [number[], number[], number][] = [
    [[50, 8], [20], 0],
    [[6, 40, 3], [5, 4], 1],
    [[1031, 16], [300], 0],
  ];
  for (const [i, [pShape, iShape, axis]] of cases.entries()) {
    const ps = floats(size(pShape), 10 + i);
    const idx = ints(size(iShape), 0, pShape[axis], 20 + i);
    const run = () => {
      const params = tf.tensor(ps, pShape);
      const indices = tf.tensor(idx, iShape, "int32");
      const outShape = [...pShape.slice(0, axis), ...iShape, ...pShape.slice(axis + 1)];
      const dy = tf.tensor(floats(size(outShape), 30 + i), outShape);
      const g = tf.grad((p: tf.Tensor) => tf.gather(p, indices, axis))(params, dy);
      return [g, tf.gather(params, indices, axis)];
    };
    const want = await on("cpu", run);
    const got = await on("wasm", run);
    assertClose(got[0], want[0], 1e-5, `gather grad case ${i}`);
    assertClose(got[1], want[1], 0, `gather case ${i}`);
  }
});

Deno.test("gather on wasm (rtdlab's GatherV2) matches cpu: axes, batchDims, dtypes, bad indices", async () => {
  // params shape, indices shape, axis, batchDims, dtype
  const cases: [number[], number[], number, number, "float32" | "int32" | "bool"][] = [
    [[1000], [77], 0, 0, "float32"], // one value per index: the log-probability pick
    [[6, 50], [40], 1, 0, "float32"], // one value per index in every row: DeBERTa's relative scores
    [[3, 4, 20], [3, 6], 2, 1, "int32"], // the same with batchDims
    [[30, 12], [9], 0, 0, "float32"], // rows wider than 8 values (copied with set())
    [[7, 5], [4], 0, 0, "bool"],
    [[40, 3], [6, 5], 0, 0, "int32"],
    [[5, 9, 4], [5, 7], 1, 1, "float32"],
    [[2, 3, 10, 2], [2, 3, 4], 2, 2, "float32"],
    [[8, 12], [0], 1, 0, "float32"],
  ];
  for (const [i, [pShape, iShape, axis, batchDims, dtype]] of cases.entries()) {
    const ps = dtype === "float32"
      ? floats(size(pShape), 200 + i)
      : ints(size(pShape), dtype === "bool" ? 0 : -9, dtype === "bool" ? 2 : 9, 200 + i);
    const idx = ints(size(iShape), 0, pShape[axis], 300 + i);
    const run =
      () => [tf.gather(tf.tensor(ps, pShape, dtype), tf.tensor(idx, iShape, "int32"), axis, batchDims)];
    const [want] = await on("cpu", run);
    const [got] = await on("wasm", run);
    assertClose(got, want, 0, `gather case ${i}`);
  }
  await initBackend("wasm");
  const err = (() => {
    try {
      tf.gather(tf.ones([4, 2]), tf.tensor1d([0, 4], "int32"));
    } catch (e) {
      return e as Error;
    }
  })();
  assertStringIncludes(err?.message ?? "", "index value 4 is not in [0, 3]");
});

// a shape, b shape, transposeA, transposeB
const MATMUL_CASES: [number[], number[], boolean, boolean][] = [
  [[33, 17], [17, 9], false, false],
  [[33, 17], [9, 17], false, true],
  [[17, 33], [17, 9], true, false],
  [[17, 33], [9, 17], true, true],
  [[3, 21, 11], [3, 11, 7], false, false],
  [[3, 21, 11], [3, 7, 11], false, true],
  [[3, 11, 21], [3, 11, 7], true, false],
  [[2, 3, 13, 8], [2, 3, 13, 8], false, true],
  [[4, 9, 5], [5, 6], false, false],
  [[4, 5, 9], [6, 5], true, true],
  [[9, 5], [4, 5, 6], false, false],
  [[1, 9, 5], [4, 6, 5], false, true],
  [[2, 1, 3, 4], [1, 2, 4, 5], false, false],
  [[1, 1], [1, 1], false, false],
];

Deno.test("matMul on wasm (rtdlab's BatchMatMul) matches cpu: transposes, batches, broadcasts", async () => {
  for (const [i, [aShape, bShape, ta, tb]] of MATMUL_CASES.entries()) {
    const as = floats(size(aShape), 40 + i);
    const bs = floats(size(bShape), 60 + i);
    const run = () => [tf.matMul(tf.tensor(as, aShape), tf.tensor(bs, bShape), ta, tb)];
    const [want] = await on("cpu", run);
    const [got] = await on("wasm", run);
    assertClose(got, want, 1e-5, `matMul case ${i} [${aShape}]${ta ? "ᵀ" : ""}·[${bShape}]${tb ? "ᵀ" : ""}`);
  }
});

Deno.test("matMul on wasm: the OpenBLAS path and the XNNPACK path each match cpu, gradients included", async () => {
  if (loadBlas() == null) {
    // CI installs libopenblas0-pthread, so there this runs; a bare machine keeps XNNPACK only.
    console.log(`  OpenBLAS part skipped: ${blasStatus()}`);
  }
  await initBackend("wasm");
  for (const blas of loadBlas() == null ? [false] : [true, false]) {
    useBlas(blas);
    try {
      const calls = blasCalls;
      for (const [i, [aShape, bShape, ta, tb]] of MATMUL_CASES.entries()) {
        const as = floats(size(aShape), 140 + i);
        const bs = floats(size(bShape), 160 + i);
        const run = () => {
          const a = tf.tensor(as, aShape), b = tf.tensor(bs, bShape);
          const y = tf.matMul(a, b, ta, tb);
          // tfjs's BatchMatMul gradient does not reduce over broadcast batch axes (on every backend),
          // so gradients are compared where the batch shapes agree.
          if (aShape.slice(0, -2).join() !== bShape.slice(0, -2).join()) return [y];
          const dy = tf.tensor(floats(y.size, 180 + i), y.shape);
          const [ga, gb] = tf.grads((x: tf.Tensor, z: tf.Tensor) => tf.matMul(x, z, ta, tb))([a, b], dy);
          return [y, ga, gb];
        };
        const want = await on("cpu", run);
        const got = await on("wasm", run);
        want.forEach((w, k) => assertClose(got[k], w, 1e-5, `blas=${blas} case ${i} output ${k}`));
      }
      // The BLAS path really ran (and only when enabled).
      if (blas) assert(blasCalls > calls + MATMUL_CASES.length, "OpenBLAS was not called");
      else assertEquals(blasCalls, calls);
    } finally {
      useBlas(true);
    }
  }
});

Deno.test("matMul on wasm over an empty inner axis gives zeros, not what the heap held", async () => {
  await initBackend("wasm");
  for (const blas of [true, false]) {
    useBlas(blas);
    try {
      for (
        const [aShape, bShape, ta, tb] of [[[3, 0], [0, 4], false, false], [[0, 4], [0, 3], true, false], [
          [2, 3, 0],
          [2, 5, 0],
          false,
          true,
        ]] as const
      ) {
        tf.dispose(tf.fill([64, 64], 7)); // leave junk where the output will be allocated
        const y = tf.matMul(tf.zeros([...aShape]), tf.zeros([...bShape]), ta, tb);
        const want = tf.matMul(tf.ones([...aShape]), tf.ones([...bShape]), ta, tb).shape;
        assertEquals(y.shape, want);
        assert([...y.dataSync()].every((v) => v === 0), `blas=${blas} ${aShape}·${bShape}: ${y.dataSync()}`);
        y.dispose();
      }
    } finally {
      useBlas(true);
    }
  }
});

Deno.test("openBlas names a library it cannot open", () => {
  let err: Error | undefined;
  try {
    openBlas("/nonexistent/libopenblas.so.0");
  } catch (e) {
    err = e as Error;
  }
  assertStringIncludes(err?.message ?? "", "BLAS library /nonexistent/libopenblas.so.0 could not be opened");
});

Deno.test("fused matMul (bias, relu, transposes) and matMul gradients on wasm match cpu", async () => {
  for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]]) {
    const aShape = ta ? [19, 37] : [37, 19];
    const bShape = tb ? [23, 19] : [19, 23];
    const as = floats(size(aShape), 1);
    const bs = floats(size(bShape), 2);
    const bias = floats(23, 3);
    const dy = floats(37 * 23, 4);
    const run = () => {
      const a = tf.tensor2d(as, aShape as [number, number]);
      const b = tf.tensor2d(bs, bShape as [number, number]);
      const fused = tf.fused.matMul({
        a,
        b,
        transposeA: ta,
        transposeB: tb,
        bias: tf.tensor1d(bias),
        activation: "relu",
      });
      const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, ta, tb))(
        [a, b],
        tf.tensor(dy, [37, 23]),
      );
      return [fused, ga, gb];
    };
    const want = await on("cpu", run);
    const got = await on("wasm", run);
    want.forEach((w, k) => assertClose(got[k], w, 1e-5, `ta=${ta} tb=${tb} output ${k}`));
  }
});

Deno.test("registerWasmKernels can restore the package's kernels and is idempotent", async () => {
  await initBackend("wasm");
  assertEquals(registerWasmKernels(), []);
  assertEquals(registerWasmKernels({ faster: false }).sort(), [
    "BatchMatMul",
    "GatherV2",
    "Sum",
    "_FusedMatMul",
  ]);
  const a = tf.tensor(floats(6 * 4, 7), [6, 4]);
  const b = tf.tensor(floats(5 * 4, 8), [5, 4]);
  const slow = await tf.matMul(a, b, false, true).data();
  assertEquals(registerWasmKernels().sort(), ["BatchMatMul", "GatherV2", "Sum", "_FusedMatMul"]);
  const fast = await tf.matMul(a, b, false, true).data();
  assertClose(fast, slow, 1e-6, "fast vs package matMul");
  tf.dispose([a, b]);
});

// A miniature RTD-style step: embedding lookup (gather) + position add, dense + exact GELU,
// tied-output logits (matMul transposeB), softmax cross-entropy picked with gather, and a sigmoid
// BCE head. Returns the loss and the gradient of every parameter.
const V = 61, H = 12, T = 10, B = 3;
const PARAMS = {
  emb: [V, H],
  pos: [T, H],
  w1: [H, H],
  b1: [H],
  wd: [H, 1],
};
const TOKENS = ints(B * T, 0, V, 5);
const LABELS = ints(B * T, 0, V, 6);
const RTD = ints(B * T, 0, 2, 7);

function step(): tf.Tensor[] {
  const vars = Object.entries(PARAMS).map(([name, shape], i) =>
    tf.variable(tf.tensor(floats(size(shape), 80 + i).map((x) => x * 0.3), shape), true, `p_${name}`)
  );
  const [emb, pos, w1, b1, wd] = vars;
  const tokens = tf.tensor(TOKENS, [B, T], "int32");
  const labels = tf.tensor(LABELS, [B * T], "int32");
  const rtd = tf.tensor(RTD, [B * T], "float32");
  const loss = () => {
    const x = tf.gather(emb, tokens).add(pos).reshape([B * T, H]);
    const h0 = tf.matMul(x, w1).add(b1);
    const h = h0.mul(tf.erf(h0.div(Math.SQRT2)).add(1)).mul(0.5);
    const logits = tf.matMul(h, emb, false, true);
    const logp = tf.logSoftmax(logits).reshape([-1]);
    const pick = tf.range(0, B * T, 1, "int32").mul(tf.scalar(V, "int32")).add(labels);
    const mlm = tf.gather(logp, pick).mean().neg();
    const z = tf.matMul(h, wd).reshape([-1]);
    const bce = tf.relu(z).sub(z.mul(rtd)).add(tf.log1p(tf.exp(z.abs().neg()))).mean();
    return mlm.add(bce.mul(50)) as tf.Scalar;
  };
  const { value, grads } = tf.variableGrads(loss, vars);
  const out = [value, ...vars.map((v) => grads[v.name])];
  tf.dispose([...vars, tokens, labels, rtd]);
  return out;
}

async function compareStep(backend: BackendName) {
  const want = await on("cpu", step);
  const got = await on(backend, step);
  const loss = got[0][0], ref = want[0][0];
  assert(Math.abs(loss - ref) <= 1e-5 * Math.abs(ref), `${backend} loss ${loss} vs cpu ${ref}`);
  Object.keys(PARAMS).forEach((name, k) =>
    assertClose(got[k + 1], want[k + 1], 1e-5, `${backend} grad ${name}`)
  );
}

Deno.test("a training step's loss and gradients agree: wasm vs cpu", () => compareStep("wasm"));

Deno.test({
  name: `a training step's loss and gradients agree: webgpu vs cpu${
    noWebgpu ? " (ignored: no WebGPU adapter)" : ""
  }`,
  ignore: noWebgpu,
  fn: () => compareStep("webgpu"),
});

Deno.test("stopGradient: identity forward, zero gradient (GDES: E_D = sg(E_G) + E_delta)", async () => {
  for (const backend of ["wasm", "cpu"] as const) {
    await initBackend(backend);
    const x = tf.tensor1d([1, -2, 3]);
    assertEquals(Array.from(await stopGradient(x).data()), [1, -2, 3]);
    // d/dx Σ sg(x)·x = sg(x) = x; d/dx Σ sg(x) = 0
    assertEquals(Array.from(await tf.grad((v: tf.Tensor) => stopGradient(v).mul(v).sum())(x).data()), [
      1,
      -2,
      3,
    ]);
    assertEquals(Array.from(await tf.grad((v: tf.Tensor) => stopGradient(v).sum())(x).data()), [0, 0, 0]);
    const eG = tf.variable(tf.tensor2d([[1, 2], [3, 4]]), true, `eG_${backend}`);
    const eDelta = tf.variable(tf.zeros([2, 2]), true, `eDelta_${backend}`);
    const ids = tf.tensor1d([1, 1, 0], "int32");
    const { grads } = tf.variableGrads(
      () => tf.gather(stopGradient(eG).add(eDelta), ids).square().sum() as tf.Scalar,
      [eG, eDelta],
    );
    assertEquals(Array.from(await grads[eG.name].data()), [0, 0, 0, 0]);
    assertEquals(Array.from(await grads[eDelta.name].data()), [2, 4, 12, 16]);
    tf.dispose([x, eG, eDelta, ids, ...Object.values(grads)]);
  }
});

Deno.test("tensor count stays flat across tidy'ed gradient steps on wasm", async () => {
  await initBackend("wasm");
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const emb = tf.variable(tf.randomNormal([97, 16], 0, 0.1, "float32", 1), true, "flat_emb");
  const w = tf.variable(tf.randomNormal([16, 16], 0, 0.1, "float32", 2), true, "flat_w");
  const ids = tf.tensor2d(ints(4 * 12, 0, 97, 3), [4, 12], "int32");
  const opt = tf.train.adam(1e-3);
  const stepOnce = () =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => {
        const x = tf.gather(emb, ids); // [4, 12, 16]
        const att = tf.matMul(x, x, false, true); // batched, transposed: the views path
        const h = tf.matMul(tf.softmax(att), x).reshape([48, 16]);
        return tf.matMul(h, w).matMul(emb, false, true).logSoftmax().mean().neg() as tf.Scalar;
      });
      opt.applyGradients(grads as unknown as Record<string, tf.Variable>); // typings want Variables
      return value;
    });
  stepOnce().dispose(); // the optimizer allocates its slots on the first step
  const tensors = tf.memory().numTensors;
  const dataIds = backend.numDataIds();
  for (let i = 0; i < 5; i++) stepOnce().dispose();
  assertEquals(tf.memory().numTensors, tensors);
  assertEquals(backend.numDataIds(), dataIds);
  opt.dispose();
  tf.dispose([emb, w, ids]);
});

Deno.test("OpenBLAS kernels are chosen from the CPU's features, the same on every machine that has them", async () => {
  const zen4 = "fma avx2 avx512f avx512cd avx512bw avx512dq avx512vl avx512_bf16 avx512vnni";
  assertEquals(pinnedCoreType(new Set(zen4.split(" "))), "Cooperlake");
  // AVX-512 without BF16 (Skylake-SP, Ice Lake) and AVX2 machines: Haswell's kernels; older ones: OpenBLAS's choice.
  assertEquals(pinnedCoreType(new Set(zen4.replace(" avx512_bf16", "").split(" "))), "Haswell");
  assertEquals(pinnedCoreType(new Set(["sse4_2", "avx", "fma", "avx2"])), "Haswell");
  assertEquals(pinnedCoreType(new Set(["sse4_2", "avx"])), null);
  if (loadBlas() == null || !loadBlas()!.version.startsWith("OpenBLAS")) return;
  // The kernels OpenBLAS runs are the ones asked for, and the backend line names them.
  const flags = (await Deno.readTextFile("/proc/cpuinfo")).split("\n").find((l) => l.startsWith("flags"))!;
  const asked = Deno.env.get("RTDLAB_BLAS_CORETYPE") ??
    pinnedCoreType(new Set(flags.split(":")[1].trim().split(/\s+/)));
  if (asked && asked !== "auto") {
    assert(loadBlas()!.version.includes(` ${asked} `), loadBlas()!.version);
    assert(blasStatus().includes(`${asked} kernels`), blasStatus());
  }
});

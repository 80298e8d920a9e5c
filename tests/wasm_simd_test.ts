/**
 * rtdlab's wasm SIMD kernels (lib/backend/wasm_simd.wat): the committed bytes are the source's, and
 * dropout, LayerNorm (with its residual, bias and dropout) and GELU give the same bits as the plain
 * ops and JS loops they replace, so switching them on changes no number of a run.
 *
 * Run: deno test -A tests/wasm_simd_test.ts
 */
import * as tf from "../lib/tf.ts";
import { deepStrictEqual as assertEquals, ok as assert, throws as assertThrows } from "node:assert/strict";
import { initBackend, useBlas } from "../lib/backend/mod.ts";
import { FUSED, fusedKernelsActive, useFusedKernels } from "../lib/backend/fused_kernels.ts";
import { useWasmSimd, wasmSimdAvailable, wasmSimdBytes } from "../lib/backend/wasm_simd.ts";
import {
  addLayerNorm,
  denseAddLayerNorm,
  dropout,
  dropoutMask,
  type LayerContext,
} from "../lib/model/layers.ts";
import { layerNormWith } from "../lib/model/layers.ts";
import { ParameterStore } from "../lib/model/params.ts";
import { crossEntropy, Pretrainer } from "../lib/train/pretrain.ts";
import { AdamW } from "../lib/train/optimizer.ts";
import { Rng } from "../lib/rng.ts";
import { simdSums, sumConfigs } from "../lib/backend/wasm_reduce.ts";
import { heapWeights, simdRowPairs } from "../lib/backend/wasm_sample.ts";
import { heapView } from "../lib/backend/host_read.ts";
import { rowWeights, sampleFromLogits, SAMPLER_CONSTANTS } from "../lib/train/sampling.ts";
import { microConfig, randomBatch, VOCAB } from "./_helpers.ts";

function floats(n: number, seed: number, scale = 1, offset = 0): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * scale + offset);
}

/** Index of the first element whose bits differ (NaNs count as equal), or −1. */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

function assertSameBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assertEquals(a.length, b.length, `${what}: lengths`);
  const i = firstDiff(a, b);
  assert(i < 0, `${what}: differs at ${i} (${a[i]} vs ${b[i]})`);
}

/** Runs f with the given fused kernels and SIMD switched off, restoring both. */
function without<T>(ops: Parameters<typeof useFusedKernels>[1], simd: boolean, f: () => T): T {
  useFusedKernels(false, ops);
  useWasmSimd(simd);
  try {
    return f();
  } finally {
    useFusedKernels(true);
    useWasmSimd(true);
  }
}

Deno.test("the committed wasm bytes are lib/backend/wasm_simd.wat assembled", async () => {
  // Imported here, so that the other tests need no npm package beyond tfjs.
  const { assembleWat, WAT_PATH } = await import("../lib/backend/wasm_simd_build.ts");
  const bytes = await assembleWat(await Deno.readTextFile(WAT_PATH));
  assertSameBits(
    wasmSimdBytes(),
    bytes,
    "wasm_simd_bytes.ts vs wasm_simd.wat (run lib/backend/wasm_simd_build.ts)",
  );
  assert(wasmSimdAvailable(), "this engine (Deno's V8) runs wasm SIMD");
});

Deno.test("fused dropout on wasm is x·mask bit for bit, NaN and infinities included, SIMD or not", async () => {
  await initBackend("wasm");
  assert(fusedKernelsActive("dropout"));
  const cases = [[[3], 0.5, 3], [[7], 0.5, 3], [[33, 5], 0.1, 12345], [
    [2, 3, 64, 64],
    0.1,
    2 ** 40 + 7,
  ]] as const;
  for (
    const [shape, rate, seed] of cases
  ) {
    const n = shape.reduce((a, b) => a * b, 1);
    const xs = floats(n, seed, 4);
    xs.set([NaN, Infinity, -Infinity, -0].slice(0, n));
    const x = tf.tensor(xs, [...shape]);
    const want = tf.mul(x, dropoutMask([...shape], rate, seed));
    for (const simd of [true, false]) {
      useWasmSimd(simd);
      const got = tf.engine().runKernel(FUSED.dropout, { x }, { rate, seed }) as tf.Tensor;
      assertSameBits(got.dataSync(), want.dataSync(), `dropout ${shape} simd ${simd}`);
      got.dispose();
    }
    useWasmSimd(true);
    tf.dispose([x, want]);
  }
  // In a layer: the same values and the same gradient (the mask) as the product with the mask tensor.
  const ctx = { training: true, dropout: 0.25, rng: new Rng(4) } as LayerContext;
  const x = tf.tensor(floats(300, 1), [3, 100]);
  const grad = (fused: boolean) => {
    useFusedKernels(fused, ["dropout"]);
    ctx.rng = new Rng(4);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(dropout(ctx, v), v)))(x);
    useFusedKernels(true);
    return g;
  };
  const [on, off] = [grad(true), grad(false)];
  assertSameBits(on.dataSync(), off.dataSync(), "gradient through dropout, fused vs mask tensor");
  assert(on.dataSync().some((v) => v === 0), "some elements dropped");
  tf.dispose([x, on, off]);
});

/** A LayerNorm case (37 columns: the scalar tails run, and OpenBLAS sums 96 rows in another order than a loop). */
function lnSetup(rows: number, cols: number) {
  const params = new ParameterStore();
  const rng = new Rng(9);
  params.create("ln.weight", [cols], "normal", rng, 0.5);
  params.create("ln.bias", [cols], "normal", rng, 0.5);
  params.create("out.weight", [cols, cols + 3], "normal", rng, 0.3);
  params.create("out.bias", [cols], "normal", rng, 0.3);
  const residual = tf.variable(tf.tensor2d(floats(rows * cols, 2, 3, 0.7), [rows, cols]));
  const h = tf.variable(tf.tensor2d(floats(rows * cols, 3, 2), [rows, cols]));
  const x = tf.variable(tf.tensor2d(floats(rows * (cols + 3), 4), [rows, cols + 3]));
  const dy = tf.tensor2d(floats(rows * cols, 5), [rows, cols]);
  return { params, residual, h, x, dy };
}

Deno.test("fused LayerNorm on wasm equals the plain ops bit for bit: values and every gradient", async () => {
  await initBackend("wasm");
  assert(fusedKernelsActive("layerNorm"), "wasm registers RtdlabLayerNorm");
  for (const blas of [true, false]) {
    useBlas(blas);
    for (const [rows, cols] of [[16, 64], [96, 37]]) {
      const { params, residual, h, x, dy } = lnSetup(rows, cols);
      const variables = [
        residual,
        h,
        x,
        ...["ln.weight", "ln.bias", "out.weight", "out.bias"].map((n) => params.get(n)),
      ];
      const cases: [string, (ctx: LayerContext) => tf.Tensor][] = [
        [
          "layerNorm",
          (ctx) => layerNormWith(residual, params.get("ln.weight"), params.get("ln.bias"), ctx.layerNormEps),
        ],
        ["addLayerNorm", (ctx) => addLayerNorm(ctx, "ln", residual, h)],
        ["denseAddLayerNorm", (ctx) => denseAddLayerNorm(ctx, "out", "ln", residual, x)],
      ];
      for (const [name, f] of cases) {
        for (const training of [true, false]) {
          const run = () =>
            tf.tidy(() => {
              const ctx: LayerContext = {
                params,
                training,
                dropout: 0.2,
                layerNormEps: 1e-12,
                rng: new Rng(6),
              };
              const { value, grads } = tf.variableGrads(
                () => tf.sum(tf.mul(f(ctx), dy)) as tf.Scalar,
                variables,
              );
              const ctx2: LayerContext = { ...ctx, rng: new Rng(6) };
              return [
                f(ctx2).dataSync(),
                value.dataSync(),
                ...variables.map((v) => grads[v.name]?.dataSync() ?? []),
              ];
            });
          const fused = run();
          const plain = without(["layerNorm", "dropout"], false, run);
          const what = `${name} ${rows}x${cols} training ${training} blas ${blas}`;
          assertSameBits(fused[0], plain[0], `${what}: y`);
          for (let i = 2; i < fused.length; i++) {
            assertSameBits(fused[i], plain[i], `${what}: gradient ${i - 2}`);
          }
          assert(
            fused.slice(2).some((g) => g.length > 0 && g.some((v) => v !== 0)),
            `${what}: gradients reached`,
          );
        }
      }
      tf.dispose([residual, h, x, dy]);
      params.dispose();
    }
  }
  useBlas(true);
});

Deno.test("fused LayerNorm on wasm: rank-3 inputs and rows narrower than four values, bit for bit", async () => {
  await initBackend("wasm");
  for (const shape of [[2, 3, 5], [3, 2, 3], [4, 1], [2, 2, 2]]) {
    const cols = shape[shape.length - 1], n = shape.reduce((a, b) => a * b, 1);
    const params = new ParameterStore();
    params.create("ln.weight", [cols], "normal", new Rng(1), 0.5);
    params.create("ln.bias", [cols], "normal", new Rng(2), 0.5);
    const x = tf.variable(tf.tensor(floats(n, 3, 2, 0.3), shape));
    const h = tf.variable(tf.tensor(floats(n, 4, 2), shape));
    const dy = tf.tensor(floats(n, 5), shape);
    const variables = [x, h, params.get("ln.weight"), params.get("ln.bias")];
    for (const training of [true, false]) {
      const run = () =>
        tf.tidy(() => {
          const ctx: LayerContext = { params, training, dropout: 0.3, layerNormEps: 1e-5, rng: new Rng(7) };
          const { grads } = tf.variableGrads(
            () => tf.sum(tf.mul(addLayerNorm(ctx, "ln", x, h), dy)) as tf.Scalar,
            variables,
          );
          const y = addLayerNorm({ ...ctx, rng: new Rng(7) }, "ln", x, h);
          return [y.dataSync(), ...variables.map((v) => grads[v.name].dataSync())];
        });
      const fused = run(), plain = without(["layerNorm", "dropout"], false, run);
      fused.forEach((f, i) =>
        assertSameBits(f, plain[i], `addLayerNorm [${shape}] training ${training}: output ${i}`)
      );
    }
    tf.dispose([x, h, dy]);
    params.dispose();
  }
});

Deno.test("fused LayerNorm on wasm: wrong shapes are refused; with SIMD off layers.ts runs the plain ops", async () => {
  await initBackend("wasm");
  const x = tf.ones([4, 8]), g = tf.ones([8]), b = tf.zeros([8]);
  const run = (inputs: tf.NamedTensorMap) => () =>
    tf.engine().runKernel(FUSED.layerNorm, inputs, { eps: 1e-5 });
  assertThrows(run({ x, gamma: tf.ones([4]), beta: b }), /gamma has shape \[4\], expected \[8\]/);
  assertThrows(run({ x, gamma: g, beta: b, h: tf.ones([2, 8]) }), /h has shape \[2,8\], x \[4,8\]/);
  const [, xhat, rstd] = tf.engine().runKernel(FUSED.layerNorm, { x, gamma: g, beta: b }, {
    eps: 1e-5,
  }) as tf.Tensor[];
  assertThrows(
    () => tf.engine().runKernel(FUSED.layerNormGrad, { dy: tf.ones([4, 7]), xhat, rstd, gamma: g }),
    /dy has shape \[4,7\], expected \[4,8\]/,
  );
  useWasmSimd(false);
  try {
    assert(!fusedKernelsActive("layerNorm"), "without the SIMD module LayerNorm falls back to the plain ops");
    assertEquals(fusedKernelsActive("dropout"), true, "dropout keeps its kernel (a JS loop)");
    const params = new ParameterStore();
    params.create("ln.weight", [8], "ones", new Rng(1));
    params.create("ln.bias", [8], "zeros", new Rng(1));
    const ctx: LayerContext = { params, training: false, dropout: 0, layerNormEps: 1e-5 };
    const y = addLayerNorm(ctx, "ln", tf.tensor2d(floats(32, 1), [4, 8]), tf.tensor2d(floats(32, 2), [4, 8]));
    assert(y.dataSync().every(Number.isFinite));
    params.dispose();
  } finally {
    useWasmSimd(true);
  }
  assert(fusedKernelsActive("layerNorm"));
});

Deno.test("GELU on wasm: the SIMD kernels give the JS loops' bits, edge values included", async () => {
  await initBackend("wasm");
  const n = 4099;
  const xs = floats(n, 7, 10);
  xs.set([NaN, Infinity, -Infinity, 8, -8, 7.9999995, -7.9999995, 0, -0, 1e-30, -1e-30, 8.000001, -8.000001]);
  const x = tf.tensor1d(xs), dy = tf.tensor1d(floats(n, 8));
  for (const [name, inputs] of [[FUSED.gelu, { x }], [FUSED.geluGrad, { dy, x }]] as const) {
    const simd = tf.engine().runKernel(name, inputs) as tf.Tensor;
    const js = without([], false, () => tf.engine().runKernel(name, inputs) as tf.Tensor);
    assertSameBits(simd.dataSync(), js.dataSync(), name);
    tf.dispose([simd, js]);
  }
  tf.dispose([x, dy]);
});

Deno.test("the cross-entropy's gradient on wasm: one kernel, the bits of one-hot, subtract and scale", async () => {
  await initBackend("wasm");
  assert(fusedKernelsActive("softmaxCrossEntropyGrad") && !fusedKernelsActive("softmaxCrossEntropy"));
  for (const [rows, cols] of [[5, 37], [8, 64]]) {
    const logits = tf.variable(tf.tensor2d(floats(rows * cols, rows, 6), [rows, cols]));
    // A target out of range (−1) gets no 1, as tf.oneHot gives it none.
    const targets = tf.tensor1d(
      Array.from({ length: rows }, (_, i) => i === 1 ? -1 : (i * 7) % cols),
      "int32",
    );
    const grad = () => tf.grad((x: tf.Tensor) => tf.mul(crossEntropy(x as tf.Tensor2D, targets), 3))(logits);
    const fused = grad();
    const plain = without(["softmaxCrossEntropyGrad"], true, grad);
    assertSameBits(fused.dataSync(), plain.dataSync(), `cross-entropy gradient ${rows}x${cols}`);
    const js = without([], false, grad);
    assertSameBits(js.dataSync(), plain.dataSync(), `cross-entropy gradient ${rows}x${cols}, JS loop`);
    tf.dispose([logits, targets, fused, plain, js]);
  }
});

Deno.test("embedding lookups and their gradient on wasm: SIMD rows give the JS loops' bits", async () => {
  await initBackend("wasm");
  for (const inner of [37, 128]) {
    const table = tf.tensor2d(floats(50 * inner, inner, 3), [50, inner]);
    const ids = tf.tensor1d([3, 0, 49, 3, 17, 3, 25, 0], "int32");
    // Out-of-range ids are dropped by the segment sum (TensorFlow's rule); repeated ones are summed.
    const segIds = tf.tensor1d([3, -1, 49, 3, 50, 3, 25, 0], "int32");
    const rows = tf.tensor2d(floats(8 * inner, 2 * inner, 2), [8, inner]);
    const run = () => [tf.gather(table, ids).dataSync(), tf.unsortedSegmentSum(rows, segIds, 50).dataSync()];
    const [simd, js] = [run(), without([], false, run)];
    assertSameBits(simd[0], js[0], `gather, rows of ${inner}`);
    assertSameBits(simd[1], js[1], `segment sum, rows of ${inner}`);
    assertEquals([...simd[0].slice(0, inner)], [...table.dataSync().slice(3 * inner, 4 * inner)]);
    tf.dispose([table, ids, segIds, rows]);
  }
});

Deno.test("AdamW on wasm: the SIMD loop gives the JS loop's bits, odd sizes, decay and clipping included", async () => {
  await initBackend("wasm");
  const shapes: [string, number[]][] = [["a.weight", [7, 5]], ["b.bias", [3]], ["c.weight", [1]], [
    "d.weight",
    [64],
  ]];
  const run = () => {
    const params = new ParameterStore();
    const rng = new Rng(2);
    for (const [name, shape] of shapes) params.create(name, shape, "normal", rng, 0.5);
    const config = {
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-6,
      weightDecay: 0.1,
      clipNorm: 1,
      biasCorrection: true,
    };
    const opt = new AdamW(params, shapes.map(([n]) => n), config);
    const norms: number[] = [];
    for (let step = 0; step < 3; step++) {
      const grads = new Map(shapes.map(([n, shape], i) => {
        const size = shape.reduce((a, b) => a * b, 1);
        return [n, tf.tensor(floats(size, 10 * step + i, 2), shape)];
      }));
      const norm = opt.apply(grads, 1e-2);
      norms.push(norm.dataSync()[0]);
      tf.dispose([norm, ...grads.values()]);
    }
    const weights = shapes.flatMap(([n]) => [...params.get(n).dataSync()]);
    params.dispose();
    return { norms, weights };
  };
  const before = AdamW.simdUpdates;
  const simd = run();
  assertEquals(AdamW.simdUpdates - before, 3 * shapes.length, "every update ran the SIMD loop");
  const js = without([], false, run);
  assertEquals(AdamW.simdUpdates - before, 3 * shapes.length, "and none with SIMD off");
  assert(simd.norms[0] > 1, "the gradient is clipped");
  assertSameBits(simd.norms, js.norms, "global norms");
  assertSameBits(simd.weights, js.weights, "weights after 3 updates");
});

Deno.test("training steps on wasm: the SIMD and fused kernels change no loss and no weight, bit for bit", async () => {
  await initBackend("wasm");
  const config = microConfig("gdes", { dropout: 0.1 });
  const run = async () => {
    const trainer = new Pretrainer(config, VOCAB);
    const losses: number[] = [];
    for (let s = 0; s < 4; s++) {
      const m = await trainer.trainStep(randomBatch(s, 2, config.seqLength));
      losses.push(m.lossMlm, m.lossRtd ?? NaN);
    }
    const params = trainer.model.params;
    const weights = params.names().flatMap((n) => [...params.get(n).dataSync()]);
    trainer.dispose();
    return { losses, weights };
  };
  const fast = await run();
  useFusedKernels(false, ["layerNorm", "dropout", "softmaxCrossEntropyGrad"]);
  useWasmSimd(false);
  const plain = await run().finally(() => {
    useFusedKernels(true);
    useWasmSimd(true);
  });
  assertEquals(fast.losses.length, 8);
  assertSameBits(fast.losses, plain.losses, "losses of 4 steps");
  assertSameBits(fast.weights, plain.weights, "every weight after 4 steps");
});

Deno.test("Sum on wasm: the SIMD sums give the package's bits over the innermost and the outermost axes", async () => {
  await initBackend("wasm");
  const { original, fast } = sumConfigs();
  const use = (config: tf.KernelConfig) => {
    tf.unregisterKernel(tf.Sum, "wasm");
    tf.registerKernel(config);
  };
  const cases: [number[], number | number[] | null][] = [
    [[152, 512], 1], // the cross-entropy's logSumExp: four rows a lane group
    [[151, 37], -1], // rows and columns not multiples of four
    [[3, 5], 1], // fewer rows than a lane group
    [[152, 512], 0], // a bias gradient: column sums
    [[4, 6, 10], [0, 1]],
    [[2, 3, 64, 64], 3],
    [[7, 5, 3], null], // everything: one row
    [[9, 6, 11], [1, 2]],
    [[5, 1, 8], -1], // size-1 axes and a negative axis
    [[1, 9], 0],
    [[6, 4], [-2]],
    [[9, 6, 11], [2, 1]], // the package sums axis 2 outside axis 1: its kernel
    [[9, 6, 11], 1], // a middle axis: its kernel
  ];
  const before = simdSums;
  try {
    for (const [i, [shape, axis]] of cases.entries()) {
      const size = shape.reduce((a, b) => a * b, 1);
      // Magnitudes over 12 decades, so a changed order of adds changes bits.
      const rng = new Rng(i);
      const x = tf.tensor(
        Float32Array.from({ length: size }, () => (rng.next() - 0.5) * 10 ** (rng.next() * 12 - 6)),
        shape,
      );
      for (const keepDims of [false, true]) {
        use(original[0]);
        const want = tf.sum(x, axis ?? undefined, keepDims);
        use(fast[0]);
        const got = tf.sum(x, axis ?? undefined, keepDims);
        assertEquals(got.shape, want.shape, `${shape} axis ${axis}`);
        assertSameBits(got.dataSync(), want.dataSync(), `sum of [${shape}] over ${axis}`);
        tf.dispose([want, got]);
      }
      x.dispose();
    }
    assertEquals(simdSums - before, 2 * (cases.length - 2), "every case but the last two ran in SIMD");
    // Rows of −0 sum to +0 (0 + −0), as the package's sum = 0 starts them.
    const zeros = tf.tensor(new Float32Array(4 * 9).fill(-0), [4, 9]);
    for (const config of [original[0], fast[0]]) {
      use(config);
      const z = tf.sum(zeros, 1);
      assert([...z.dataSync()].every((v) => Object.is(v, 0)), "+0 sums");
      z.dispose();
    }
    zeros.dispose();
    // An empty reduction is 0 (the package's kernel leaves such an output unwritten).
    const empty = tf.sum(tf.zeros([5, 0]), 1);
    assertEquals([...empty.dataSync()], [0, 0, 0, 0, 0]);
    empty.dispose();
  } finally {
    use(fast[0]);
  }
});

/** The SIMD weights of every row the kernel does not flag equal rowWeights' bits; returns the flags. */
function checkHeapWeights(
  logits: tf.Tensor2D,
  temperature: number,
  banned: Int32Array,
  what: string,
): number[] {
  const [rows, vocab] = logits.shape;
  const heap = heapWeights(heapView(logits)!, vocab, temperature, SAMPLER_CONSTANTS)!;
  const expected = new Float64Array(vocab);
  const flags: number[] = [];
  for (let r = 0; r < rows; r += 2) {
    const pair = r + 1 < rows;
    const redo = heap.weigh(r, banned[r], pair ? banned[r + 1] : -1, pair);
    for (const lane of pair ? [0, 1] : [0]) {
      const flagged = (redo & (1 << lane)) !== 0;
      flags.push(flagged ? 1 : 0);
      if (flagged) continue;
      // heap.logits, not an earlier view: the scratch allocation may have grown the heap.
      const row = heap.logits.subarray((r + lane) * vocab, (r + lane + 1) * vocab);
      rowWeights(row, temperature, banned[r + lane], expected);
      const got = Float64Array.from({ length: vocab }, (_, v) => heap.weights[2 * v + lane]);
      assertSameBits(got, expected, `${what}: row ${r + lane}`);
    }
  }
  return flags;
}

Deno.test("the host sampler on wasm: SIMD weights and picks equal the JS loop's, flagged rows included", async () => {
  await initBackend("wasm");
  const rng = new Rng(5);
  const before = simdRowPairs;
  for (const [rows, vocab] of [[6, 515], [5, 33], [1, 7]]) {
    for (const temperature of [1, 0.7]) {
      for (const spread of [8, 2000]) { // 2000: values below −700 send a row to the host loop
        const values = Float32Array.from({ length: rows * vocab }, () => (rng.next() - 0.5) * spread);
        if (rows > 2) values[2 * vocab + 3] = NaN; // a NaN row is redone on the host too
        const banned = Int32Array.from({ length: rows }, () => Math.floor(rng.next() * vocab));
        // The banned token as its row's maximum (ELECTRA's disallowed target often is), in the SIMD part
        // of the row and in its last values: the other values' maximum must be used.
        values[banned[0]] = spread;
        if (rows > 1) values[vocab + (banned[1] = vocab - 1)] = spread;
        const logits = tf.tensor2d(values, [rows, vocab]);
        checkHeapWeights(logits, temperature, banned, `${rows}×${vocab}, T ${temperature}, spread ${spread}`);
        for (const disallow of [undefined, banned]) {
          const got = sampleFromLogits(heapView(logits)!, rows, vocab, temperature, new Rng(11), disallow);
          const want = sampleFromLogits(values.slice(), rows, vocab, temperature, new Rng(11), disallow);
          assertEquals([...got], [...want], `picks, ${rows}×${vocab}, T ${temperature}, spread ${spread}`);
        }
        logits.dispose();
      }
    }
  }
  assert(simdRowPairs > before, "the SIMD path ran");
});

Deno.test("the host sampler on wasm: a row leaves the SIMD loop exactly where the JS loop leaves its fast exp", async () => {
  await initBackend("wasm");
  // x = row − max: the fast exp covers (−700, 0]; at −700 and below the JS loop takes Math.exp, and the
  // SIMD exp's exponent trick wraps below about −708, so those rows must be flagged and redone.
  const lows = [-699.99, -700, -715, -1e30, -5];
  const vocab = 37;
  const values = new Float32Array(lows.length * vocab);
  lows.forEach((low, r) => {
    for (let v = 0; v < vocab; v++) values[r * vocab + v] = Math.sin(r * 7 + v) * 3; // max ≈ 3
    values[r * vocab + 5] = 3 + low; // one value `low` below a maximum of 3 … exactly, where f32 allows
    values[r * vocab + 6] = 3;
  });
  const logits = tf.tensor2d(values, [lows.length, vocab]);
  const banned = new Int32Array(lows.length).fill(-1);
  const flags = checkHeapWeights(logits, 1, banned, "rows near −700");
  assertEquals(flags, lows.map((low) => (Math.fround(3 + low) - 3 > -700 ? 0 : 1)));
  assertEquals(flags, [0, 1, 1, 1, 0]);
  const heap = heapWeights(heapView(logits)!, vocab, 1, SAMPLER_CONSTANTS)!;
  assertThrows(() => heap.weigh(4, -1, -1, true), /row 4 and 5 not in 5 rows/);
  assertThrows(() => heap.weigh(-1, -1, -1, false), /row -1 not in 5 rows/);
  const got = sampleFromLogits(heapView(logits)!, lows.length, vocab, 1, new Rng(3), banned);
  const want = sampleFromLogits(values.slice(), lows.length, vocab, 1, new Rng(3), banned);
  assertEquals([...got], [...want]);
  logits.dispose();
});

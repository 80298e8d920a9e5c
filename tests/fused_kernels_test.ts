/**
 * rtdlab's fused wasm kernels (lib/backend/wasm_fused.ts, dropout_mask.ts, host_read.ts) against the
 * cpu backend's plain ops: GELU forward and gradient, dropout masks, the sharing Identity and Cast,
 * heap views, and a whole encoder with the fused kernels on and off.
 *
 * Run: deno test -A tests/fused_kernels_test.ts
 */
import * as tf from "../lib/tf.ts";
import { deepStrictEqual as assertEquals, ok as assert, throws as assertThrows } from "node:assert/strict";
import { type BackendName, initBackend } from "../lib/backend/mod.ts";
import { geluDerivative, normalCdf } from "../lib/backend/wasm_fused.ts";
import { FUSED, fusedKernelsActive, useFusedKernels } from "../lib/backend/fused_kernels.ts";
import { DROPOUT_MASK, fillDropoutMask } from "../lib/backend/dropout_mask.ts";
import { heapView } from "../lib/backend/host_read.ts";
import { dropoutMask, gelu } from "../lib/model/layers.ts";
import { createModel } from "../lib/model/mod.ts";
import { Rng } from "../lib/rng.ts";
import { batchTensors } from "../lib/train/pretrain.ts";
import { maxAbsDiff, microConfig, randomBatch, VOCAB } from "./_helpers.ts";

// Deterministic data without tfjs's RNG, so every backend sees the same numbers.
function floats(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * scale);
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

async function on(backend: BackendName, f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await initBackend(backend);
  const ts = f();
  const out = await Promise.all(ts.map(async (t) => new Float32Array(await t.data())));
  tf.dispose(ts);
  return out;
}

/** |a − b| ≤ abs + rel·|b| everywhere (NaN counts as a failure). */
function assertClose(a: Float32Array, b: Float32Array, abs: number, rel: number, what: string): void {
  assertEquals(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= abs + rel * Math.abs(b[i]))) {
      assert(false, `${what}: at ${i}, ${a[i]} vs ${b[i]} (|diff| ${d})`);
    }
  }
}

// Float64 references for the tables' accuracy.
function erfcRef(z: number): number {
  if (Math.abs(z) < 2) {
    let sum = 0, term = z;
    for (let n = 0; n < 300 && Math.abs(term) > 1e-20; n++) {
      sum += term / (2 * n + 1);
      term *= -z * z / (n + 1);
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (z < 0) return 2 - erfcRef(-z);
  let f = 0;
  for (let k = 120; k >= 1; k--) f = (k / 2) / (z + f);
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / (z + f);
}

Deno.test("normalCdf and geluDerivative are within 1e-8 of float64 references on [−12, 12]", () => {
  let worstCdf = 0, worstDer = 0;
  for (let x = -12; x <= 12; x += 0.000731) {
    const cdf = 0.5 * erfcRef(-x * Math.SQRT1_2);
    const pdf = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    worstCdf = Math.max(worstCdf, Math.abs(normalCdf(x) - cdf));
    worstDer = Math.max(worstDer, Math.abs(geluDerivative(x) - (cdf + x * pdf)));
  }
  assert(worstCdf < 1e-8, `Φ: max error ${worstCdf}`);
  assert(worstDer < 1e-8, `GELU': max error ${worstDer}`);
  assert(Number.isNaN(normalCdf(NaN)) && Number.isNaN(geluDerivative(NaN)));
  assertEquals([normalCdf(-Infinity), normalCdf(Infinity), geluDerivative(50)], [0, 1, 1]);
});

Deno.test("GELU on wasm (fused kernels) matches cpu: values and gradient, small and large inputs", async () => {
  for (
    const [shape, scale, seed] of [[[37, 53], 3, 1], [[4, 8, 130], 9, 2], [[2048, 16], 0.05, 3]] as const
  ) {
    const xs = floats(size([...shape]), seed, scale);
    const dys = floats(size([...shape]), seed + 10);
    const run = () => {
      const x = tf.tensor(xs, [...shape]);
      const dy = tf.tensor(dys, [...shape]);
      const y = gelu(x);
      const [dx] = tf.grads((a: tf.Tensor) => gelu(a))([x], dy);
      return [y, dx, x, dy];
    };
    const [yc, dxc] = await on("cpu", run);
    const [yw, dxw] = await on("wasm", () => {
      assert(fusedKernelsActive("gelu"), "the fused GELU should be active on wasm");
      return run();
    });
    // cpu's erf (Abramowitz–Stegun 7.1.26) is within 1.5e-7 of the exact one; ours within 1e-8.
    assertClose(yw, yc, 2e-7 * scale, 2e-6, `GELU ${shape}`);
    assertClose(dxw, dxc, 4e-7, 2e-6, `GELU' ${shape}`);
  }
});

Deno.test("GELU on wasm: fused and unfused agree to float32 rounding", async () => {
  await initBackend("wasm");
  const xs = floats(5000, 4, 6);
  const x = tf.tensor(xs, [50, 100]);
  const dy = tf.tensor(floats(5000, 5), [50, 100]);
  const both = (fused: boolean) => {
    useFusedKernels(fused, ["gelu"]);
    try {
      return tf.tidy(() => {
        const [dx] = tf.grads((a: tf.Tensor) => gelu(a))([x], dy);
        return [gelu(x).dataSync(), dx.dataSync()];
      });
    } finally {
      useFusedKernels(true);
    }
  };
  const [yf, df] = both(true);
  const [yu, du] = both(false);
  assertClose(yf as Float32Array, yu as Float32Array, 6e-7, 4e-7, "GELU fused vs unfused");
  assertClose(df as Float32Array, du as Float32Array, 6e-7, 4e-7, "GELU' fused vs unfused");
  tf.dispose([x, dy]);
});

Deno.test("the fused kernels reject non-float inputs", async () => {
  await initBackend("wasm");
  const x = tf.tensor([[1, 2, 3]], [1, 3], "int32");
  const f = tf.ones([2, 3]);
  assertThrows(() => tf.engine().runKernel(FUSED.gelu, { x }), /must be a float32 tensor/);
  assertThrows(() => tf.engine().runKernel(FUSED.geluGrad, { dy: x, x: f }), /must be a float32 tensor/);
  tf.dispose([x, f]);
});

/** fillDropoutMask(·, 0.5, seed 1), computed independently (Python, the hash of dropout_mask.ts's doc). */
const PINNED_MASK = [0, 0, 0, 2, 0, 0, 2, 0];

Deno.test("dropout masks on wasm (heap kernel) and on the host are identical, long masks included", async () => {
  const cases: [number, number, number[]][] = [[0.1, 12345, [64, 33]], [0.5, 2147483647, [3, 5, 7]], [
    0.9,
    0,
    [999],
  ], [0.1, 77, [1 << 20]]];
  const masks: Float32Array[][] = [];
  for (const backend of ["wasm", "cpu"] as const) {
    await initBackend(backend);
    assertEquals(fusedKernelsActive("dropoutMask"), backend === "wasm");
    masks.push(cases.map(([rate, seed, shape]) => dropoutMask(shape, rate, seed).dataSync() as Float32Array));
  }
  cases.forEach(([rate, seed], i) => {
    assert(maxAbsDiff(masks[0][i], masks[1][i]) === 0, `wasm vs host, rate ${rate} seed ${seed}`);
    const out = new Float32Array(masks[1][i].length);
    fillDropoutMask(out, rate, seed);
    assert(maxAbsDiff(out, masks[1][i]) === 0, `fillDropoutMask, rate ${rate} seed ${seed}`);
  });
  // A known value pins the hash itself (kernels.cu dropout_mask_f32 must draw the same).
  const pin = new Float32Array(8);
  fillDropoutMask(pin, 0.5, 1);
  assertEquals([...pin], PINNED_MASK);
  await initBackend("wasm");
  const t = tf.engine().runKernel(DROPOUT_MASK, {}, { shape: [2, 3], rate: 0.5, seed: 1 }) as tf.Tensor;
  assertEquals(t.shape, [2, 3]);
  t.dispose();
});

Deno.test("Identity and same-dtype Cast on wasm share memory: clones outlive their source, freed once", async () => {
  await initBackend("wasm");
  const before = tf.memory().numBytes;
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const ids = backend.numDataIds();
  const a = tf.tensor([1, 2, 3, 4], [2, 2]);
  const b = tf.clone(a);
  assertEquals(backend.numDataIds(), ids + 1, "a clone adds no buffer");
  a.dispose();
  assertEquals([...await b.data()], [1, 2, 3, 4]);
  // A gradient through a saved (cloned) tensor still sees the right values.
  const x = tf.tensor([0.5, -1, 2]);
  const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(v, v)))(x);
  assertEquals([...await g.data()], [1, -2, 4]);
  // Same-dtype casts share too; real casts still convert.
  const c = tf.cast(b, "float32");
  assertEquals(backend.numDataIds(), ids + 3);
  const f = tf.tensor([1.7, -2.2, 3.9]);
  const i = tf.cast(f, "int32");
  assertEquals([i.dtype, [...await i.data()]], ["int32", [1, -2, 3]]);
  tf.dispose([b, x, g, c, f, i]);
  assertEquals(backend.numDataIds(), ids);
  assertEquals(tf.memory().numBytes, before);
});

Deno.test("heapView reads wasm tensors in place and declines elsewhere", async () => {
  await initBackend("wasm");
  const t = tf.tensor(floats(40, 9), [4, 10]);
  const view = heapView(t);
  assert(view != null);
  assertEquals([...view], [...await t.data()]);
  t.dispose();
  await initBackend("cpu");
  const c = tf.ones([2]);
  assertEquals(heapView(c), null);
  c.dispose();
});

Deno.test("an encoder forward and its gradients on wasm: fused kernels on vs off agree", async () => {
  await initBackend("wasm");
  const config = microConfig("es");
  const model = createModel(config);
  const batch = randomBatch(3);
  const inputs = batchTensors(batch.inputIds, batch, VOCAB.padId);
  const names = model.discriminatorVariables();
  const run = (fused: boolean) => {
    useFusedKernels(fused);
    try {
      return tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => {
          const h = model.encode("discriminator", inputs, { training: true, rng: new Rng(11) });
          return tf.mean(tf.square(h)) as tf.Scalar;
        }, names.map((n) => model.params.get(n) as tf.Variable));
        // The RTD head gets no gradient from the encoder's output.
        const reached = names.filter((n) => grads[model.params.get(n).name] != null);
        assert(reached.length > 10, `gradients for ${reached.length} variables`);
        return [value.dataSync()[0], ...reached.map((n) => grads[model.params.get(n).name].dataSync())];
      });
    } finally {
      useFusedKernels(true);
    }
  };
  const on = run(true), off = run(false);
  assert(Math.abs((on[0] as number) - (off[0] as number)) < 1e-5, `loss ${on[0]} vs ${off[0]}`);
  for (let i = 1; i < on.length; i++) {
    const a = on[i] as Float32Array, b = off[i] as Float32Array;
    const scale = Math.max(1e-3, ...b.map(Math.abs));
    assert(maxAbsDiff(a, b) <= 1e-4 * scale, `gradient ${i}: ${maxAbsDiff(a, b)} (scale ${scale})`);
  }
  tf.dispose([inputs.inputIds, inputs.tokenTypeIds, inputs.attentionMask]);
  model.dispose();
});

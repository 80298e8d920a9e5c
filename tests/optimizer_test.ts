/**
 * lib/train/optimizer.ts: the host-side AdamW update (wasm, cpu) is the tensor-math update.
 *
 * Run: deno test -A tests/optimizer_test.ts
 */
import * as tf from "../lib/tf.ts";
import { ok as assert } from "node:assert/strict";
import { initBackend } from "../lib/backend/mod.ts";
import { ParameterStore } from "../lib/model/params.ts";
import { AdamW, type AdamWConfig } from "../lib/train/optimizer.ts";
import { Rng } from "../lib/rng.ts";
import { preset } from "../lib/config.ts";

const SHAPES: Record<string, number[]> = {
  "electra.embeddings.word_embeddings.weight": [37, 8],
  "electra.embeddings.LayerNorm.weight": [8],
  "electra.encoder.layer.0.output.dense.bias": [5],
  "discriminator_predictions.dense.weight": [3, 7],
};

/** Runs 3 AdamW updates with fixed gradients and returns parameters and moments afterwards. */
async function run(
  hostUpdate: boolean,
  config: AdamWConfig,
  gradScale: number,
): Promise<Map<string, Float32Array>> {
  const rng = new Rng(7);
  const params = new ParameterStore();
  for (const [n, s] of Object.entries(SHAPES)) params.create(n, s, "normal", rng, 0.5);
  const names = Object.keys(SHAPES);
  const opt = new AdamW(params, names, config);
  const before = AdamW.hostUpdate;
  AdamW.hostUpdate = hostUpdate;
  const norms: number[] = [];
  try {
    for (let step = 0; step < 3; step++) {
      const grads = new Map<string, tf.Tensor>();
      // One parameter gets no gradient at step 1: it must stay untouched (as in a decoupled phase).
      for (const n of names) {
        if (step === 1 && n.endsWith(".bias")) continue;
        const data = Float32Array.from(
          { length: tf.util.sizeFromShape(SHAPES[n]) },
          () => rng.normal() * gradScale,
        );
        grads.set(n, tf.tensor(data, SHAPES[n]));
      }
      const norm = opt.apply(grads, 0.01 * (step + 1));
      norms.push((await norm.data())[0]);
      tf.dispose([norm, ...grads.values()]);
    }
  } finally {
    AdamW.hostUpdate = before;
  }
  const out = new Map<string, Float32Array>();
  for (const [n, t] of await params.toHost()) out.set(n, t.data as Float32Array);
  for (const [n, t] of await opt.toHost("")) out.set(n, t.data as Float32Array);
  out.set("norms", Float32Array.from(norms));
  opt.dispose();
  for (const v of params.vars.values()) v.dispose();
  return out;
}

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test(`AdamW on ${backend}: the host update equals the tensor update, path for path (clip, decay, bias correction; ELECTRA's formula itself: science_test)`, async () => {
    await initBackend(backend);
    const cases: [AdamWConfig, number][] = [
      // ELECTRA: no bias correction, clipping active (gradients of norm ~ 20 > 1).
      [{ beta1: 0.9, beta2: 0.999, epsilon: 1e-6, weightDecay: 0.01, clipNorm: 1, biasCorrection: false }, 1],
      // Bias correction, no clipping, no decay.
      [{ beta1: 0.8, beta2: 0.98, epsilon: 1e-8, weightDecay: 0, clipNorm: 0, biasCorrection: true }, 0.1],
    ];
    for (const [i, [config, scale]] of cases.entries()) {
      const want = await run(false, config, scale);
      const got = await run(true, config, scale);
      for (const [name, w] of want) {
        const g = got.get(name)!;
        let worst = 0;
        for (let k = 0; k < w.length; k++) {
          worst = Math.max(worst, Math.abs(g[k] - w[k]) / (1e-3 + Math.abs(w[k])));
        }
        assert(
          worst < 1e-4,
          `case ${i} ${name}: host and tensor updates differ (rel ${worst.toExponential(2)})`,
        );
      }
      // The update moved every parameter (so the comparison above compares something).
      assert(want.get("norms")![0] > 0);
    }
  });
}

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test(`AdamW on ${backend}: updates in place, yet a tensor that shares a parameter's memory keeps its values`, async () => {
    await initBackend(backend);
    const params = new ParameterStore();
    params.create("w", [4, 3], "normal", new Rng(1), 0.5);
    params.create("v", [5], "normal", new Rng(2), 0.5);
    const opt = new AdamW(params, ["w", "v"], preset("electra-small")); // ELECTRA's AdamW settings
    // A reshape of w (as a probe that captured a weight holds) shares w's memory.
    const captured = tf.reshape(params.get("w"), [12]);
    const before = Array.from(await captured.data());
    const vBefore = Array.from(await params.get("v").data());
    const grads = new Map([["w", tf.ones([4, 3])], ["v", tf.ones([5])]]);
    tf.dispose(opt.apply(grads, 0.1));
    assert(Array.from(await captured.data()).every((x, i) => x === before[i]), "the captured tensor changed");
    assert(Array.from(await params.get("w").data()).every((x, i) => x !== before[i]), "w was not updated");
    assert(Array.from(await params.get("v").data()).every((x, i) => x !== vBefore[i]), "v was not updated");
    tf.dispose([captured, ...grads.values()]);
    opt.dispose();
    for (const t of params.vars.values()) t.dispose();
  });
}

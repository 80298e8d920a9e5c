/**
 * The whole RTD step computes the same losses and gradients on every backend: cpu (reference),
 * wasm (default; with rtdlab's UnsortedSegmentSum and matMul kernels) and webgpu when an adapter exists.
 */

import assert from "node:assert/strict";
import * as tf from "../lib/tf.ts";
import { type BackendName, initBackend, requestWebgpuAdapter } from "../lib/backend/mod.ts";
import { batchTensors, Pretrainer, stepRngs } from "../lib/train/pretrain.ts";
import { corrupt } from "../lib/train/sampling.ts";
import { microConfig, randomBatch, VOCAB } from "./_helpers.ts";

interface StepNumbers {
  lossMlm: number;
  lossRtd: number;
  grads: Map<string, Float32Array>;
}

/** Losses and every gradient of one generator + discriminator phase of a GDES micro model. */
async function stepNumbers(backend: BackendName): Promise<StepNumbers> {
  await initBackend(backend);
  const t = new Pretrainer(microConfig("gdes", { dropout: 0 }), VOCAB);
  const batch = randomBatch(11, 2, 16, 3);
  const rngs = stepRngs(0, 0);
  const masked = t.mask(batch, rngs.data);
  const genIn = batchTensors(masked.maskedIds, batch, VOCAB.padId);
  const g = t.generatorGradients(genIn, masked, rngs.dropout);
  // A fixed "sample" so both backends see the same discriminator input.
  const c = corrupt(batch.inputIds, masked.selected, masked.targets.map((x, i) => (i % 2 ? x : 7)));
  const discIn = batchTensors(c.corruptedIds, batch, VOCAB.padId);
  const d = t.discriminatorGradients(discIn, c.labels, rngs.dropout);
  const grads = new Map<string, Float32Array>();
  for (const [n, x] of [...g.grads, ...d.grads]) {
    grads.set(`${n}@${g.grads.has(n) ? "g" : "d"}`, await x.data() as Float32Array);
  }
  const out = { lossMlm: (await g.loss.data())[0], lossRtd: (await d.loss.data())[0], grads };
  tf.dispose([g.loss, g.logits, d.loss, d.logits, ...g.grads.values(), ...d.grads.values()]);
  tf.dispose([genIn.inputIds, genIn.tokenTypeIds, genIn.attentionMask]);
  tf.dispose([discIn.inputIds, discIn.tokenTypeIds, discIn.attentionMask]);
  t.dispose();
  return out;
}

function compare(name: string, a: StepNumbers, b: StepNumbers, tol: number): void {
  assert.ok(
    Math.abs(a.lossMlm - b.lossMlm) <= tol * Math.abs(a.lossMlm),
    `${name}: L_MLM ${a.lossMlm} vs ${b.lossMlm}`,
  );
  assert.ok(
    Math.abs(a.lossRtd - b.lossRtd) <= tol * Math.abs(a.lossRtd),
    `${name}: L_RTD ${a.lossRtd} vs ${b.lossRtd}`,
  );
  assert.deepEqual([...b.grads.keys()].sort(), [...a.grads.keys()].sort());
  for (const [k, ga] of a.grads) {
    const gb = b.grads.get(k)!;
    let scale = 0, diff = 0;
    for (let i = 0; i < ga.length; i++) {
      scale = Math.max(scale, Math.abs(ga[i]));
      diff = Math.max(diff, Math.abs(ga[i] - gb[i]));
    }
    assert.ok(
      diff <= tol * Math.max(scale, 1e-3),
      `${name}: gradient ${k} differs by ${diff} (scale ${scale})`,
    );
  }
}

const reference = await stepNumbers("cpu");

Deno.test("wasm and cpu agree on a full RTD forward/backward pass (losses and every gradient)", async () => {
  compare("wasm vs cpu", reference, await stepNumbers("wasm"), 1e-4);
});

const webgpu = (await requestWebgpuAdapter()) !== null;
Deno.test({
  name: "webgpu and cpu agree on a full RTD forward/backward pass" +
    (webgpu ? "" : " (skipped: no WebGPU adapter)"),
  ignore: !webgpu,
  fn: async () => {
    compare("webgpu vs cpu", reference, await stepNumbers("webgpu"), 1e-3);
    await initBackend("wasm");
  },
});

Deno.test({
  name: "globalNorm over many gradients agrees with the cpu backend on webgpu (no addN over >8 buffers)" +
    (webgpu ? "" : " (skipped: no WebGPU adapter)"),
  ignore: !webgpu,
  fn: async () => {
    const { globalNorm } = await import("../lib/train/optimizer.ts");
    const values = Array.from({ length: 150 }, (_, i) => new Float32Array([i % 7, 1, -2]));
    const expected = Math.sqrt(values.reduce((s, v) => s + v.reduce((a, b) => a + b * b, 0), 0));
    await initBackend("webgpu");
    const grads = values.map((v) => tf.tensor1d(v));
    const norm = globalNorm(grads);
    const got = (await norm.data())[0];
    tf.dispose([...grads, norm]);
    await initBackend("wasm");
    assert.ok(Math.abs(got - expected) < 1e-3 * expected, `webgpu norm ${got}, expected ${expected}`);
  },
});

/**
 * lib/backend/saved_tensors.ts: the tensors autodiff saves for the backward pass, made without an engine
 * run, change how many tfjs calls a step makes, never what the gradients are.
 *
 * Run: deno test -A tests/saved_tensors_test.ts
 */
import * as tf from "../lib/tf.ts";
import { deepEqual, ok as assert } from "node:assert/strict";
import { initBackend } from "../lib/backend/mod.ts";
import { useDirectSaves } from "../lib/backend/saved_tensors.ts";
import { createModel } from "../lib/model/mod.ts";
import { variableGrads } from "../lib/train/gradients.ts";
import { jointRtdLoss, microConfig } from "./_helpers.ts";

/** One GDES loss (generator and discriminator) and its gradients: values, tfjs calls, Identity calls. */
async function gdesStep(direct: boolean) {
  useDirectSaves(direct);
  try {
    const model = createModel(microConfig("gdes", { "discriminator.numLayers": 2, generatorLayers: 1 }), 0);
    const { loss, dispose } = jointRtdLoss(model);
    const vars = model.params.names().map((n) => model.params.get(n));
    const before = tf.memory().numTensors;
    const values = new Map<string, Float32Array>();
    const profile = await tf.profile(() => {
      const { value, grads } = variableGrads(loss, vars);
      values.set("loss", value.dataSync() as Float32Array);
      // By parameter name: tfjs keys `grads` by variable names it numbers itself, which differ per model.
      model.params.names().forEach((name, i) =>
        values.set(name, grads[vars[i].name].dataSync() as Float32Array)
      );
      tf.dispose([value, ...Object.values(grads)]);
    });
    const leftBehind = tf.memory().numTensors - before;
    dispose();
    model.dispose();
    const identities = profile.kernels.filter((k) => k.name === "Identity").length;
    return { values, calls: profile.kernels.length, identities, leftBehind };
  } finally {
    useDirectSaves(true);
  }
}

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test(`${backend}: a GDES step's gradients are the same bits with direct saves, in fewer tfjs calls`, async () => {
    await initBackend(backend);
    const tfjs = await gdesStep(false);
    const direct = await gdesStep(true);
    assert(
      tfjs.leftBehind === 0 && direct.leftBehind === 0,
      `left behind: ${tfjs.leftBehind}, ${direct.leftBehind}`,
    );
    assert(tfjs.values.size === direct.values.size && tfjs.values.size > 10, `${tfjs.values.size} values`);
    for (const [name, x] of tfjs.values) {
      const y = direct.values.get(name)!;
      assert(y != null && y.length === x.length, `${name}: present, same size`);
      for (let i = 0; i < x.length; i++) assert(Object.is(x[i], y[i]), `${name}[${i}]: ${x[i]} vs ${y[i]}`);
    }
    // Every saved tensor was an Identity call through the engine; now none is.
    const saves = tfjs.identities - direct.identities;
    assert(saves > 50, `${saves} fewer Identity calls (${tfjs.identities} → ${direct.identities})`);
    assert(direct.calls === tfjs.calls - saves, `${tfjs.calls} → ${direct.calls} tfjs calls`);
  });
}

Deno.test("a second-order gradient still flows through the saved tensors", async () => {
  await initBackend("cpu");
  useDirectSaves(true);
  // d²/dx² x³ = 6x: Square's gradient (2x·dy) reads its saved x, so the second derivative needs the
  // saved copy to stay connected to x on the tape.
  const x = tf.tensor1d([-1.5, 0.5, 2]);
  const second = tf.grad((v: tf.Tensor) => tf.grad((u: tf.Tensor) => tf.sum(tf.mul(tf.square(u), u)))(v));
  const y = second(x);
  assert(
    Array.from(y.dataSync()).every((v, i) => Math.abs(v - 6 * [-1.5, 0.5, 2][i]) < 1e-5),
    `${y.dataSync()}`,
  );
  tf.dispose([x, y]);
});

Deno.test("a gradient nested inside a taped function still flows through the copies saved before it", async () => {
  await initBackend("cpu");
  /** Each case's values with direct saves and through tfjs's own clone: they must be the same. */
  const both = (f: () => tf.Tensor) => {
    const out: number[][] = [];
    for (const direct of [true, false]) {
      useDirectSaves(direct);
      const before = tf.memory().numTensors;
      const y = f();
      out.push(Array.from(y.dataSync()));
      y.dispose();
      assert(
        tf.memory().numTensors === before,
        `direct ${direct}: ${tf.memory().numTensors - before} left behind`,
      );
    }
    useDirectSaves(true);
    return out;
  };
  const x = tf.tensor1d([1, 2, 3]);
  // Square saves v on the outer (first-order) tape; the inner gradient's backward reads that copy, and the
  // outer gradient must flow back through it to v: d/dv Σ 2v = 2.
  const [closure, closureTfjs] = both(() =>
    tf.grad((v: tf.Tensor) => {
      const z = tf.square(v);
      return tf.sum(tf.grad((_: tf.Tensor) => tf.sum(z))(v));
    })(x)
  );
  deepEqual(closure, closureTfjs);
  deepEqual(closure, [2, 2, 2]);
  // tf.variableGrads inside a differentiated function, through ops taped before it: z = w²·v, its gradient
  // for w is 2w·v, and the outer gradient of Σ 2w·v·v is 4w·v.
  const w = tf.variable(tf.tensor1d([1, 2, 3]), true, "saved_tensors_test_w");
  const [nested, nestedTfjs] = both(() =>
    tf.grad((v: tf.Tensor) => {
      const z = tf.mul(tf.square(w), v);
      const { value, grads } = tf.variableGrads(() => tf.sum(z) as tf.Scalar, [w]);
      value.dispose();
      return tf.sum(tf.mul(grads[w.name], v));
    })(x)
  );
  deepEqual(nested, nestedTfjs);
  deepEqual(nested, [4, 16, 36]);
  tf.dispose([x, w]);
});

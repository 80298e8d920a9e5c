/**
 * lib/train/gradients.ts: freeing as the backward pass goes changes when tensors die, never what
 * the gradients are.
 *
 * Run: deno test -A tests/gradients_test.ts
 */
import * as tf from "../lib/tf.ts";
import { ok as assert } from "node:assert/strict";
import { initBackend } from "../lib/backend/mod.ts";
import { createModel } from "../lib/model/mod.ts";
import { variableGrads } from "../lib/train/gradients.ts";
import { jointRtdLoss, microConfig } from "./_helpers.ts";

await initBackend("cpu");

type Grads = (f: () => tf.Scalar, vars: tf.Variable[]) => { value: tf.Scalar; grads: tf.NamedTensorMap };

/** Values of `grads` by name (copied out, then disposed), and the loss. */
function collect(r: { value: tf.Scalar; grads: tf.NamedTensorMap }) {
  const out = new Map<string, Float32Array>();
  for (const [name, g] of Object.entries(r.grads)) out.set(name, g.dataSync() as Float32Array);
  const loss = r.value.dataSync()[0];
  tf.dispose([r.value, ...Object.values(r.grads)]);
  return { loss, grads: out };
}

function assertBitIdentical(a: Map<string, Float32Array>, b: Map<string, Float32Array>) {
  assert(a.size === b.size && a.size > 0, `${a.size} vs ${b.size} gradients`);
  for (const [name, x] of a) {
    const y = b.get(name)!;
    assert(y != null && y.length === x.length, `${name}: present, same size`);
    for (let i = 0; i < x.length; i++) {
      assert(Object.is(x[i], y[i]), `${name}[${i}]: ${x[i]} vs ${y[i]}`);
    }
  }
}

Deno.test("an RTD step's gradients are bit-identical to tf.variableGrads', with a lower peak and no leak", async () => {
  for (const sharing of ["es", "gdes"] as const) {
    const cfg = microConfig(sharing, { "discriminator.numLayers": 3, generatorLayers: 2 });
    const model = createModel(cfg, 0);
    // Generator and discriminator losses together: shared embeddings get gradients from both.
    const { loss, dispose } = jointRtdLoss(model);
    const vars = model.params.names().map((n) => model.params.get(n));
    const run = async (grads: Grads) => {
      const before = tf.memory().numTensors;
      let out!: ReturnType<typeof collect>;
      const { peakBytes } = await tf.profile(() => {
        out = collect(grads(loss, vars));
      });
      assert(tf.memory().numTensors === before, `${sharing}: no tensor left behind`);
      return { ...out, peakBytes };
    };
    const standard = await run(tf.variableGrads);
    const lean = await run(variableGrads);
    assert(Object.is(standard.loss, lean.loss), `${sharing}: same loss`);
    assertBitIdentical(standard.grads, lean.grads);
    assert(
      lean.peakBytes < 0.8 * standard.peakBytes,
      `${sharing}: peak ${lean.peakBytes} B, tf.variableGrads' ${standard.peakBytes} B`,
    );
    dispose();
    model.dispose();
  }
});

Deno.test("gradient functions that hand out their dy, one object twice or an input twice stay correct", () => {
  // A custom gradient returning the very dy object for both inputs: freeing one must not free the other.
  const sameDy = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [a, b] = args as tf.Tensor[];
    return {
      value: tf.add(a, b),
      gradFunc: (dy: tf.Tensor | tf.Tensor[]) => [dy as tf.Tensor, dy as tf.Tensor],
    };
  });
  const w = tf.variable(tf.tensor2d([[0.5, -1, 2], [1.5, 0.25, -0.75]]), true, "grad_test_w");
  const v = tf.variable(tf.tensor1d([0.1, 0.2, 0.3]), true, "grad_test_v");
  const f = () => {
    const h = sameDy(tf.tanh(w), tf.mul(w, v)); // w reaches h twice
    const [p, q] = tf.split(h, [1, 1], 0); // a node with two outputs
    const r = tf.add(tf.mul(tf.sigmoid(p), q), tf.reshape(v, [1, 3])); // v used twice
    return tf.sum(tf.mul(r, tf.cast(r, "float32"))) as tf.Scalar;
  };
  const before = tf.memory().numTensors;
  const standard = collect(tf.variableGrads(f, [w, v]));
  const lean = collect(variableGrads(f, [w, v]));
  assert(tf.memory().numTensors === before, "no tensor left behind");
  assert(Object.is(standard.loss, lean.loss));
  assertBitIdentical(standard.grads, lean.grads);
  tf.dispose([w, v]);
});

/**
 * Side-effect module: makes `@tensorflow/tfjs-core` complete enough to train with.
 *
 * tfjs-core on its own registers neither the op gradients (tf.grad / tf.variableGrads fail with
 * "gradient function not found") nor the chained tensor methods (`x.add(y)`). The files in tfjs-core
 * that do (`dist/register_all_gradients.js`, `dist/public/chained_ops/...`) are ES modules with
 * extensionless relative imports, which Deno refuses to load. The `@tensorflow/tfjs` node bundle
 * inlines both and registers them against the same tfjs-core instance (same version, so Deno shares
 * one copy); it also loads tfjs-layers/-converter/-data (~0.3 s), which rtdlab does not use.
 *
 * Import this (lib/backend/mod.ts does) before taking any gradient. It also installs
 * lib/backend/saved_tensors.ts.
 *
 * @module
 */
import "@tensorflow/tfjs";
// Saved tensors for the backward pass without an engine run each (lib/backend/saved_tensors.ts).
import "./saved_tensors.ts";

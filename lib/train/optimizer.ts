/**
 * AdamW with ELECTRA's details, global-norm clipping, and the warmup × linear-decay schedule.
 *
 * tfjs's built-in Adam has neither decoupled weight decay nor a switch for ELECTRA's Adam without
 * bias correction, and its state is not addressable by parameter name; this one is a few lines of
 * tensor math with named moment tensors that checkpoints save and restore exactly.
 *
 * @module
 */

import * as tf from "../tf.ts";
import type { ParameterStore } from "../model/params.ts";
import type { HostTensor } from "../io/safetensors.ts";
import { ADAMW } from "../backend/adamw_kernel.ts";
import { capabilities } from "../backend/capabilities.ts";
import { FUSED, fusedKernelsActive } from "../backend/fused_kernels.ts";
import { wasmSimdKernels } from "../backend/wasm_simd.ts";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

/** Optimiser hyper-parameters. */
export interface AdamWConfig {
  /** First-moment decay (0.9). */
  beta1: number;
  /** Second-moment decay (0.999). */
  beta2: number;
  /** Added to √v (1e-6, as ELECTRA). */
  epsilon: number;
  /** Decoupled weight decay (0.01); not applied to biases and LayerNorm. */
  weightDecay: number;
  /** Global-norm clip threshold (0 = no clipping). */
  clipNorm: number;
  /** Adam bias correction (ELECTRA's optimizer has none). */
  biasCorrection: boolean;
}

/** True for parameters that get weight decay: not LayerNorm weights, not biases (ELECTRA/BERT convention). */
export function decays(name: string): boolean {
  return !name.includes("LayerNorm") && !name.endsWith(".bias");
}

/** AdamW over a fixed list of named parameters. */
export class AdamW {
  /** Update on the host on wasm/cpu (see #applyOnHost); false forces the tensor path everywhere. */
  static hostUpdate = true;
  /** Use a backend's fused AdamW kernel where it has one (cuda); false forces the op-by-op path. */
  static fusedUpdate = true;
  /** Parameter updates run by the wasm SIMD loop so far (tests check that path really ran). */
  static simdUpdates = 0;
  /** The parameters this optimiser updates, by name, in update order. */
  readonly names: string[];
  /** Updates applied so far. */
  step = 0;
  #m = new Map<string, tf.Variable>();
  #v = new Map<string, tf.Variable>();

  /** An optimiser for `names` in `params`, with zeroed moments. */
  constructor(readonly params: ParameterStore, names: string[], readonly config: AdamWConfig) {
    this.names = [...names];
    for (const n of this.names) {
      const p = params.get(n);
      // Inside tidy, so the zeros the variables copy are freed (a variable outlives tidy).
      this.#m.set(n, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
      this.#v.set(n, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
    }
  }

  /**
   * Clips `grads` to the global norm and applies one AdamW update at learning rate `lr`.
   * Returns the global norm before clipping (a scalar tensor the caller disposes).
   */
  apply(grads: Map<string, tf.Tensor>, lr: number): tf.Scalar {
    const c = this.config;
    this.step++;
    const t = this.step;
    const corr1 = c.biasCorrection ? 1 - c.beta1 ** t : 1;
    const corr2 = c.biasCorrection ? 1 - c.beta2 ** t : 1;
    if (AdamW.hostUpdate && capabilities().hostMemory) {
      return this.#applyOnHost(grads, lr, corr1, corr2);
    }
    // GPU backends with rtdlab's fused kernel (lib/backend/adamw_kernel.ts): one launch for all
    // parameters, the same numbers as the op-by-op path below.
    const fused = AdamW.fusedUpdate && tf.getKernel(ADAMW, tf.getBackend()) != null;
    return tf.tidy(() => {
      const present = this.names.filter((n) => grads.has(n));
      const norm = globalNorm(present.map((n) => grads.get(n)!));
      // scale = clip / max(norm, clip): 1 below the threshold, shrinks the whole gradient above it.
      const scale = c.clipNorm > 0 ? tf.div(c.clipNorm, tf.maximum(norm, c.clipNorm)) : tf.scalar(1);
      if (fused) {
        const inputs: tf.NamedTensorMap = { scale };
        present.forEach((n, i) => {
          inputs[`param${i}`] = this.params.get(n);
          inputs[`grad${i}`] = grads.get(n)!;
          inputs[`m${i}`] = this.#m.get(n)!;
          inputs[`v${i}`] = this.#v.get(n)!;
        });
        const out = tf.engine().runKernel(ADAMW, inputs, {
          lr,
          beta1: c.beta1,
          beta2: c.beta2,
          epsilon: c.epsilon,
          corr1,
          corr2,
          weightDecays: present.map((n) => c.weightDecay > 0 && decays(n) ? c.weightDecay : 0),
        }) as tf.Tensor[];
        present.forEach((n, i) => {
          this.params.get(n).assign(out[3 * i]);
          this.#m.get(n)!.assign(out[3 * i + 1]);
          this.#v.get(n)!.assign(out[3 * i + 2]);
        });
        return tf.keep(norm);
      }
      for (const n of present) {
        const p = this.params.get(n), m = this.#m.get(n)!, v = this.#v.get(n)!;
        const g = tf.mul(grads.get(n)!, scale);
        const m1 = tf.add(tf.mul(m, c.beta1), tf.mul(g, 1 - c.beta1));
        const v1 = tf.add(tf.mul(v, c.beta2), tf.mul(tf.square(g), 1 - c.beta2));
        m.assign(m1);
        v.assign(v1);
        let update = tf.div(tf.div(m1, corr1), tf.add(tf.sqrt(tf.div(v1, corr2)), c.epsilon));
        if (c.weightDecay > 0 && decays(n)) update = tf.add(update, tf.mul(p, c.weightDecay));
        p.assign(tf.sub(p, tf.mul(update, lr)));
      }
      return tf.keep(norm);
    });
  }

  /**
   * The same update as one loop per parameter over host memory, for backends whose tensors live in
   * this process (wasm, cpu). Op by op, AdamW costs ~12 kernel dispatches per parameter tensor: on
   * `tiny` that was ~1,200 of a step's ~4,500 kernels. Sums run in float64, so results differ from
   * the tensor path in the last bits (each path is deterministic).
   */
  #applyOnHost(grads: Map<string, tf.Tensor>, lr: number, corr1: number, corr2: number): tf.Scalar {
    const c = this.config;
    const present = this.names.filter((n) => grads.has(n));
    // wasm: the loops below as wasm over the heap (the same float64 operations in order, the same bits).
    const simd = tf.getBackend() === "wasm" ? wasmSimdKernels(tf.backend() as unknown as BackendWasm) : null;
    let sumSq = 0;
    for (const n of present) {
      const g = hostValues(grads.get(n)!);
      if (simd) sumSq = simd.sum_squares(g.byteOffset, g.length, sumSq);
      else for (let i = 0; i < g.length; i++) sumSq += g[i] * g[i];
    }
    const norm = Math.sqrt(sumSq);
    const scale = c.clipNorm > 0 ? c.clipNorm / Math.max(norm, c.clipNorm) : 1;
    const b1 = c.beta1, b2 = c.beta2, eps = c.epsilon;
    for (const n of present) {
      const p = this.params.get(n), m = this.#m.get(n)!, v = this.#v.get(n)!;
      // Views are taken afresh per parameter: the previous assign may have grown (and so detached)
      // the wasm heap.
      const g = hostValues(grads.get(n)!), pv = hostValues(p), mv = hostValues(m), vv = hostValues(v);
      const size = g.length;
      const wd = c.weightDecay > 0 && decays(n) ? c.weightDecay : 0;
      // In place where only this optimiser holds the memory: no new arrays, no copy back into the backend.
      const inPlace = [p, m, v].every(soleOwner);
      if (inPlace && simd) {
        // Heap views: their byte offsets are the tensors' heap addresses.
        const [pa, ga, ma, va] = [pv, g, mv, vv].map((x) => x.byteOffset);
        simd.adamw(pa, ga, ma, va, size, scale, b1, 1 - b1, b2, 1 - b2, lr, corr1, corr2, eps, wd);
        AdamW.simdUpdates++;
        continue;
      }
      const [p1, m1, v1] = inPlace ? [pv, mv, vv] : [pv, mv, vv].map(() => new Float32Array(size));
      for (let i = 0; i < size; i++) {
        const gi = g[i] * scale;
        const mi = b1 * mv[i] + (1 - b1) * gi;
        const vi = b2 * vv[i] + (1 - b2) * gi * gi;
        const pi = pv[i];
        m1[i] = mi;
        v1[i] = vi;
        p1[i] = pi - lr * ((mi / corr1) / (Math.sqrt(vi / corr2) + eps) + wd * pi);
      }
      if (inPlace) continue;
      tf.tidy(() => {
        m.assign(tf.tensor(m1, m.shape, "float32"));
        v.assign(tf.tensor(v1, v.shape, "float32"));
        p.assign(tf.tensor(p1, p.shape, "float32"));
      });
    }
    return tf.scalar(norm);
  }

  /** Moments as host tensors named `<param>.adam_m` / `<param>.adam_v`, prefixed with `prefix`. */
  async toHost(prefix: string): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const n of this.names) {
      for (const [kind, map] of [["adam_m", this.#m], ["adam_v", this.#v]] as const) {
        const t = map.get(n)!;
        out.set(`${prefix}${n}.${kind}`, {
          dtype: "F32",
          shape: t.shape,
          data: (await t.data()) as Float32Array,
        });
      }
    }
    return out;
  }

  /** Restores moments written by {@link toHost}; `step` comes from the checkpoint's state. */
  assignFrom(tensors: Map<string, HostTensor>, prefix: string, step: number, source: string): void {
    for (const n of this.names) {
      for (const [kind, map] of [["adam_m", this.#m], ["adam_v", this.#v]] as const) {
        const key = `${prefix}${n}.${kind}`;
        const t = tensors.get(key);
        const v = map.get(n)!;
        if (!t) throw new Error(`${source}: missing optimizer tensor ${key}`);
        if (t.shape.join(",") !== v.shape.join(",")) {
          throw new Error(`${source}: optimizer tensor ${key} has shape [${t.shape}], expected [${v.shape}]`);
        }
        tf.tidy(() => v.assign(tf.tensor(t.data, t.shape, "float32")));
      }
    }
    this.step = step;
  }

  /** Frees the moment tensors. */
  dispose(): void {
    for (const t of [...this.#m.values(), ...this.#v.values()]) t.dispose();
  }
}

/**
 * True when no other tensor shares `t`'s memory (no clone, reshape or saved copy of it is alive), so
 * that writing its host values in place changes `t` alone.
 */
function soleOwner(t: tf.Tensor): boolean {
  return tf.backend().refCount(t.dataId) === 1;
}

/** A float32 tensor's values without a copy where the backend allows (wasm heap view, cpu array). */
function hostValues(t: tf.Tensor): Float32Array {
  const backend = tf.backend() as unknown as {
    typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array;
    readSync: (id: object) => Float32Array;
  };
  if (t.dtype !== "float32") throw new Error(`AdamW: expected a float32 tensor, got ${t.dtype}`);
  return backend.typedArrayFromHeap ? backend.typedArrayFromHeap(t) : backend.readSync(t.dataId);
}

/**
 * √(Σ‖g‖²) over a list of gradients: one fused kernel where the backend has it (cuda: two launches
 * for all tensors; lib/backend/fused_kernels.ts), else a square and a sum per tensor.
 */
export function globalNorm(grads: tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => {
    if (grads.length === 0) return tf.scalar(0);
    if (fusedKernelsActive("sumSquares")) {
      const inputs = Object.fromEntries(grads.map((g, i) => [`x${i}`, g]));
      return tf.sqrt(tf.engine().runKernel(FUSED.sumSquares, inputs) as tf.Scalar) as tf.Scalar;
    }
    // Sum in groups of 4: one addN over ~150 tensors exceeds WebGPU's default limit of 8 storage
    // buffers per shader, and WebGPU then silently returns zeros (seen on lavapipe).
    let parts = grads.map((g) => tf.sum(tf.square(g)));
    while (parts.length > 1) {
      const next: tf.Tensor[] = [];
      for (let i = 0; i < parts.length; i += 4) {
        const group = parts.slice(i, i + 4);
        next.push(group.length === 1 ? group[0] : tf.addN(group));
      }
      parts = next;
    }
    return tf.sqrt(parts[0]) as tf.Scalar;
  });
}

/**
 * Learning rate at `step` (0-based, the update about to be applied), as ELECTRA's optimization.py:
 * peak · (1 − step/totalSteps) · min(1, step/warmupSteps) — linear decay to 0 at `totalSteps` times a
 * linear warmup. Step 0 gets 0 when there is a warmup (ELECTRA's first update only fills Adam's moments).
 */
export function learningRate(step: number, peak: number, warmupSteps: number, totalSteps: number): number {
  const warm = warmupSteps > 0 ? Math.min(1, step / warmupSteps) : 1;
  const decay = Math.max(0, 1 - step / totalSteps);
  return peak * warm * decay;
}

/**
 * Named parameters: plain `tf.Variable`s keyed by HuggingFace-style names, so checkpoints are
 * safetensors files PyTorch can read, and a notebook can address any weight by its paper-side name.
 *
 * @module
 */

import * as tf from "../tf.ts";
import { deriveSeed, hashString, Rng } from "../rng.ts";
import type { HostTensor } from "../io/safetensors.ts";

/**
 * How a parameter starts: `truncated` is ELECTRA's truncated normal (std `std`, redrawn beyond 2σ, as
 * tf.truncated_normal_initializer); `normal` the plain normal HuggingFace/DeBERTa use.
 */
export type Init = "normal" | "truncated" | "zeros" | "ones";

/**
 * The generator a parameter's initial values are drawn from: seeded by (run seed, `key`) alone, so a
 * parameter starts the same whatever else the model holds or the order it is built in. Models pass a
 * key shared across sharing modes (lib/model/embeddings.ts, pairedInitKey), which pairs mode comparisons.
 */
export function initRng(seed: number, key: string): Rng {
  return new Rng(deriveSeed(seed, hashString(key), 0x1417));
}

/** A registry of named variables. Variables get no tfjs-global name, so many models can coexist. */
export class ParameterStore {
  /** name → variable. */
  readonly vars = new Map<string, tf.Variable>();

  /** Creates (or returns the existing) parameter `name`. Normal init draws from `rng` on the host, so it is backend-independent. */
  create(name: string, shape: number[], init: Init, rng: Rng, std = 0.02): tf.Variable {
    const existing = this.vars.get(name);
    if (existing) return existing;
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (init === "ones") data.fill(1);
    else if (init === "normal") { for (let i = 0; i < n; i++) data[i] = rng.normal() * std; }
    else if (init === "truncated") {
      for (let i = 0; i < n; i++) {
        let z = rng.normal();
        while (Math.abs(z) > 2) z = rng.normal();
        data[i] = z * std;
      }
    }
    const v = tf.tidy(() => tf.variable(tf.tensor(data, shape, "float32"), true));
    this.vars.set(name, v);
    return v;
  }

  /** The variable called `name`; throws naming it when absent. */
  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`no parameter named ${name}`);
    return v;
  }

  /** True when `name` exists. */
  has(name: string): boolean {
    return this.vars.has(name);
  }

  /** Names, in creation order. */
  names(): string[] {
    return [...this.vars.keys()];
  }

  /** Total number of scalars. */
  count(names: string[] = this.names()): number {
    return names.reduce((s, n) => s + this.get(n).size, 0);
  }

  /** Copies every parameter to the host (for checkpoints and export). */
  async toHost(names: string[] = this.names()): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const name of names) {
      const v = this.get(name);
      out.set(name, { dtype: "F32", shape: v.shape, data: (await v.data()) as Float32Array });
    }
    return out;
  }

  /** Overwrites parameters from host tensors; every parameter must be present with the same shape. */
  assignFrom(tensors: Map<string, HostTensor>, source: string): void {
    for (const name of this.names()) {
      const t = tensors.get(name);
      const v = this.get(name);
      if (!t) throw new Error(`${source}: missing tensor ${name}`);
      if (t.shape.join(",") !== v.shape.join(",")) {
        throw new Error(`${source}: tensor ${name} has shape [${t.shape}], the model expects [${v.shape}]`);
      }
    }
    const extra = [...tensors.keys()].filter((n) => !this.has(n));
    if (extra.length) throw new Error(`${source}: unexpected tensors ${extra.slice(0, 5).join(", ")}`);
    for (const name of this.names()) {
      const t = tensors.get(name)!;
      tf.tidy(() => this.get(name).assign(tf.tensor(t.data, t.shape, "float32")));
    }
  }

  /** Frees every variable. */
  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

/**
 * The benchmark's plumbing (no timing assertions): the peer follows rtdlab's config, a `--case` run
 * prints the fields the report needs, and bad arguments are refused with a message naming them.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "../lib/tf.ts";
import { initBackend } from "../lib/backend/mod.ts";
import { addRowVector, dropoutMask, gelu, layerNormWith } from "../lib/model/layers.ts";
import { crossEntropy } from "../lib/train/pretrain.ts";
import { sampleFromLogits } from "../lib/train/sampling.ts";
import { Rng } from "../lib/rng.ts";
import { applyOverrides, preset, validateConfig } from "../lib/config.ts";
import { caseArgs, type CaseSpec, spawnCase } from "../lib/bench/case.ts";
import { parseBenchArgs } from "../lib/bench/cli.ts";
import { runSuite } from "../lib/bench/suite.ts";
import { PEER_GLIBC_TUNABLES, peerCommand, peerOverrides, peerSetArgs } from "../lib/bench/peer.ts";
import {
  benchTable,
  caseSpreads,
  ratioLines,
  spreadLines,
  spreadTable,
  unevenNotes,
} from "../lib/bench/report.ts";
import { formatProfile, profileSteps, type StepProfile } from "../lib/bench/profile.ts";
import { type BenchRow, planCases } from "../lib/bench/suite.ts";

await initBackend("wasm");

/** The micro model of tests/_helpers.ts, as `--set` overrides of the tiny preset. */
const MICRO: Record<string, string> = {
  vocabSize: "64",
  maxPositions: "16",
  seqLength: "16",
  embeddingSize: "16",
  "discriminator.hiddenSize": "32",
  "discriminator.numLayers": "1",
  "discriminator.numHeads": "2",
  "discriminator.intermediateSize": "64",
  generatorHiddenFraction: "0.5",
};

/** A short case of the micro model on wasm: one warm-up step and two timed ones. */
const MICRO_CASE: CaseSpec = {
  config: "tiny",
  overrides: MICRO,
  backend: "wasm",
  batch: 2,
  warmup: 1,
  steps: 2,
  seed: 0,
};

Deno.test("peer overrides come from rtdlab's config: tiny", () => {
  assert.deepEqual(peerOverrides(preset("tiny")), {
    vocab: 8192,
    max_len: 128,
    emb: 128,
    layers: 4,
    d_hidden: 128,
    d_heads: 2,
    d_ffn: 512,
    g_hidden: 32, // 1/4 of 128
    g_heads: 1, // max(1, 32/64)
    g_ffn: 128, // 4 × 32
  });
});

Deno.test("peer overrides come from rtdlab's config: electra-small", () => {
  assert.deepEqual(peerOverrides(preset("electra-small")), {
    vocab: 30522,
    max_len: 128,
    emb: 128,
    layers: 12,
    d_hidden: 256,
    d_heads: 4,
    d_ffn: 1024,
    g_hidden: 64,
    g_heads: 1,
    g_ffn: 256,
  });
  // Every key the peer's CONFIGS entries have, in --set form.
  const args = peerSetArgs(preset("electra-small"));
  assert.equal(args.length, 20);
  assert.ok(args.includes("vocab=30522") && args.includes("g_ffn=256"));
  assert.deepEqual(args.filter((_, i) => i % 2 === 0), Array(10).fill("--set"));
});

Deno.test("peer overrides follow config changes (sequence length, generator width)", () => {
  const c = validateConfig(applyOverrides(preset("tiny"), { seqLength: 64, generatorHiddenFraction: 1 }));
  const o = peerOverrides(c);
  assert.equal(o.max_len, 64);
  assert.deepEqual([o.g_hidden, o.g_heads, o.g_ffn], [128, 2, 512]);
});

Deno.test("configs the peer cannot express are refused, naming the difference", () => {
  assert.throws(() => peerOverrides({ ...preset("tiny"), sharing: "gdes" }), /sharing "gdes"/);
  assert.throws(
    () => peerOverrides({ ...preset("tiny"), generatorLayers: 2 }),
    /2 generator and 4 discriminator/,
  );
  assert.throws(
    () => peerOverrides({ ...preset("tiny"), vocabSize: 64 }),
    /vocabSize must exceed 200, got 64/,
  );
});

Deno.test("the peer's command unsets the OpenBLAS variables and tunes malloc in its own env only", () => {
  const cmd = peerCommand({ config: preset("tiny"), batch: 8, warmup: 1, steps: 3 });
  assert.deepEqual(cmd.slice(0, 6), [
    "env",
    "-u",
    "OPENBLAS_CORETYPE",
    "-u",
    "OPENBLAS_L2_SIZE",
    `GLIBC_TUNABLES=${PEER_GLIBC_TUNABLES}`,
  ]);
  assert.equal(cmd[6], "/usr/bin/python3");
  const at = (flag: string) => cmd[cmd.indexOf(flag) + 1];
  assert.equal(at("--batch"), "8");
  assert.equal(at("--seq"), "128");
  assert.equal(at("--threads"), "2");
  assert.ok(cmd.includes("d_hidden=128"));
});

Deno.test("--case prints one JSON line with the fields the report needs (micro config, wasm)", async () => {
  const spec = MICRO_CASE;
  assert.deepEqual(caseArgs(spec).slice(0, 3), ["--case", "--configs", "tiny"]);
  const run = await spawnCase(spec, 300);
  assert.ok(run.ok, run.error);
  const r = run.result!;
  for (
    const k of [
      "backend_info",
      "params",
      "median_s",
      "mean_s",
      "min_s",
      "max_s",
      "tokens_per_s",
      "cpu_s_per_step",
      "peak_rss_mib",
      "rss_after_build_mib",
      "num_tensors",
      "loadavg_1m",
      "deno",
      "tfjs",
    ]
  ) assert.ok(k in r, `case JSON has ${k}`);
  assert.equal(r.config, "tiny");
  assert.equal(r.backend, "wasm");
  assert.deepEqual([r.batch, r.seq, r.vocab, r.warmup, r.timed], [2, 16, 64, 1, 2]);
  assert.equal(r.masked_per_seq, 2); // round(0.15 · 16): every random token is maskable
  assert.equal(r.all_step_times.length, 3);
  assert.equal(r.all_step_cpu.length, 3);
  assert.ok(r.median_s > 0 && r.min_s <= r.median_s && r.median_s <= r.max_s);
  assert.ok(Math.abs(r.tokens_per_s - (2 * 16) / r.median_s) < 1e-6 * r.tokens_per_s);
  assert.ok(r.peak_rss_mib >= r.rss_after_build_mib && r.rss_after_build_mib > 0);
  assert.equal(r.first_last_loss.length, 2);
  assert.ok(r.first_last_loss.every(Number.isFinite));
});

Deno.test("a failing case reports why instead of throwing", async () => {
  const spec: CaseSpec = {
    config: "tiny",
    overrides: { ...MICRO, "discriminator.numHeads": "3" },
    backend: "wasm",
    batch: 2,
    warmup: 0,
    steps: 1,
    seed: 0,
  };
  const run = await spawnCase(spec, 300);
  assert.equal(run.ok, false);
  assert.match(run.error!, /not divisible by 3 attention heads/);
});

Deno.test("a case stopped by --case-timeout says it timed out; the task's record keeps the cases measured so far", async () => {
  const spec: CaseSpec = {
    config: "tiny",
    overrides: MICRO,
    backend: "wasm",
    batch: 2,
    warmup: 0,
    steps: 1,
    seed: 0,
  };
  const cut = await spawnCase(spec, 0.05); // no Deno process starts in 50 ms
  assert.equal(cut.ok, false);
  assert.match(cut.error!, /^timed out after 0\.05 s/);
  // The whole task, two cases: its record holds both rows and says when it finished; written after each case.
  const out = join(await Deno.makeTempDir(), "bench.json");
  const script = new URL("../tasks/bench.ts", import.meta.url).pathname;
  const sets = Object.entries(MICRO).flatMap(([k, v]) => ["--set", `${k}=${v}`]);
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      script,
      "--no-peer",
      "--backends",
      "wasm",
      "--configs",
      "tiny",
      "--batches",
      "1,2",
      ...sets,
      "--warmup",
      "0",
      "--steps",
      "1",
      "--out",
      out,
    ],
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  const record = JSON.parse(await Deno.readTextFile(out));
  assert.equal(record.cases, 2);
  assert.equal(record.rows.length, 2);
  assert.ok(typeof record.finished === "string");
  // The suite hands over its rows after every case (the task rewrites its record then): two cases, two calls.
  const failing: CaseSpec = { ...spec, overrides: { ...MICRO, "discriminator.numHeads": "3" } };
  const seen: number[] = [];
  await runSuite(parseBenchArgs(["--no-peer"]), [failing, failing], () => {}, undefined, (rows) => {
    seen.push(rows.length);
    return Promise.resolve();
  });
  assert.deepEqual(seen, [1, 2]);
});

Deno.test("argument errors name the problem", () => {
  const bad: [string[], RegExp][] = [
    [["--frobnicate"], /frobnicate.*see --help/],
    [["--configs", "huge"], /unknown config "huge"; known configs: tiny, electra-small/],
    [["--backends", "wasm,tpu"], /unknown backend "tpu"; valid backends: wasm, cpu, webgpu, tensorflow/],
    [["--batches", "8,zero"], /--batches needs an integer >= 1, got "zero"/],
    [["--batches", "0"], /--batches needs an integer >= 1, got "0"/],
    [["--steps=-1"], /--steps needs an integer >= 1, got "-1"/],
    [["--steps", "-1"], /--steps needs an integer >= 1, got "-1"/],
    [["--warmup", "x"], /--warmup needs an integer >= 0/],
    [["--configs", ","], /--configs needs a comma-separated list/],
    [["--set", "vocabSize"], /--set needs KEY=VALUE, got "vocabSize"/],
    [["--set", "batchSize=4"], /use --batches/],
    [["--micro", "--profile"], /--micro and --profile cannot be combined/],
    [["--case", "--batches", "8,32"], /--case runs one case/],
    [["--repeat", "0"], /--repeat needs an integer >= 1, got "0"/],
    [["--repeat", "3", "--micro"], /--repeat repeats the suite; it does not apply to --micro/],
    [["--repeat", "2", "--profile"], /it does not apply to --profile/],
  ];
  for (const [argv, msg] of bad) assert.throws(() => parseBenchArgs(argv), msg, argv.join(" "));
});

Deno.test("the task exits 2 with the message on bad arguments", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../tasks/bench.ts", import.meta.url).pathname, "--configs", "huge"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.match(new TextDecoder().decode(out.stderr), /bench: --configs: unknown config "huge"/);
});

Deno.test("--quick plans tiny plus electra-small at batch 8; the cpu backend's steps are capped", () => {
  const quick = parseBenchArgs(["--quick"]);
  assert.deepEqual([quick.warmup, quick.steps], [1, 3]);
  const q = planCases(quick, ["wasm"]).map((s) => `${s.config} b${s.batch}`);
  assert.deepEqual(q, ["tiny b8", "tiny b32", "electra-small b8"]);
  const full = planCases(parseBenchArgs(["--batches", "8", "--steps", "5"]), ["wasm", "cpu"]);
  const cpuSmall = full.find((s) => s.backend === "cpu" && s.config === "electra-small")!;
  const cpuTiny = full.find((s) => s.backend === "cpu" && s.config === "tiny")!;
  assert.deepEqual([cpuSmall.warmup, cpuSmall.steps], [1, 2]);
  assert.deepEqual([cpuTiny.warmup, cpuTiny.steps], [1, 2]);
  const wasmTiny = full.find((s) => s.backend === "wasm" && s.config === "tiny")!;
  assert.deepEqual([wasmTiny.warmup, wasmTiny.steps], [2, 5]);
});

/** A tiny wasm b8 case, for the report's tests. */
const TINY_B8: CaseSpec = {
  config: "tiny",
  overrides: {},
  backend: "wasm",
  batch: 8,
  warmup: 1,
  steps: 3,
  seed: 0,
};

Deno.test("the table and the ratio lines show both sides and the ratio", () => {
  const spec = TINY_B8;
  const rows: BenchRow[] = [{
    spec,
    rtdlab: {
      ok: true,
      wall_s: 1,
      result: {
        median_s: 0.5,
        min_s: 0.4,
        tokens_per_s: 2048,
        peak_rss_mib: 500,
        cpu_s_per_step: 0.5,
      } as never,
    },
    peer: {
      command: "x",
      ok: true,
      result: {
        median_s: 0.25,
        min_s: 0.1,
        tokens_per_s: 4096,
        peak_rss_mib: 400,
        timed_user_s: 1.2,
        timed_sys_s: 0.3,
        timed: 3,
      },
    },
    ratio: 0.5,
  }, {
    spec: { ...spec, backend: "cpu" },
    rtdlab: { ok: false, error: "boom", wall_s: 1 },
    peer: null,
    ratio: null,
  }];
  assert.deepEqual(ratioLines(rows), ["ratio tiny wasm b8: 0.50", "ratio tiny cpu b8: n/a"]);
  // Median ratio 0.50 against fastest-step ratio 0.1/0.4 = 0.25: uneven steps are said, not hidden.
  assert.deepEqual(unevenNotes(rows).map((n) => n.slice(0, 90)), [
    "note: tiny wasm b8: the median ratio (0.50) and the fastest-step ratio (0.25) differ by mo",
  ]);
  assert.deepEqual(unevenNotes(rows, 3), []);
  const table = benchTable(rows);
  assert.match(
    table,
    /\| tiny +\| wasm +\| 8 +\| +0\.500 \| +2048 \| +500 \| +0\.250 \| +4096 \| +400 \| +0\.50 \| +0\.25 \|/,
  );
  assert.match(table, /FAILED/);
});

Deno.test("--repeat: each case's spread over the rounds (median, range, rounds at or above 1.0)", () => {
  assert.equal(parseBenchArgs([]).repeat, 1);
  assert.equal(parseBenchArgs(["--repeat", "4"]).repeat, 4);
  const spec = TINY_B8;
  const row = (ratio: number | null, rtdlabS: number, peerS: number, round: number): BenchRow => ({
    spec,
    rtdlab: ratio == null ? { ok: false, error: "boom", wall_s: 1 } : {
      ok: true,
      wall_s: 1,
      result: { median_s: rtdlabS, min_s: rtdlabS * 0.9, tokens_per_s: 1 / rtdlabS } as never,
    },
    peer: {
      command: "x",
      ok: true,
      result: { median_s: peerS, min_s: peerS * 0.5, tokens_per_s: 1 / peerS, peak_rss_mib: 1 },
    },
    ratio,
    round,
  });
  const other = (r: BenchRow): BenchRow => ({ ...r, spec: { ...spec, batch: 32 } });
  // Four rounds of two cases: ratios 2.0, 0.8, 1.5 and a failed round for b8.
  const rounds = [
    [row(2.0, 0.1, 0.2, 1), other(row(1.2, 0.3, 0.36, 1))],
    [row(0.8, 0.125, 0.1, 2), other(row(1.1, 0.3, 0.33, 2))],
    [row(1.5, 0.1, 0.15, 3), other(row(1.3, 0.3, 0.39, 3))],
    [row(null, 0.1, 0.15, 4), other(row(1.0, 0.3, 0.3, 4))],
  ];
  const spreads = caseSpreads(rounds);
  assert.deepEqual(spreads.map((s) => s.batch), [8, 32]);
  assert.deepEqual(spreads[0].ratios, [2.0, 0.8, 1.5, null]);
  assert.deepEqual(spreads[0].rtdlabStepS, [0.1, 0.125, 0.1, null]);
  // The peer's fastest step over rtdlab's: (0.5·peer) / (0.9·rtdlab).
  assert.ok(Math.abs(spreads[0].bestRatios[0]! - (0.1 / 0.09)) < 1e-12);
  assert.deepEqual(spreadLines(spreads), [
    "ratio tiny wasm b8: median 1.50 (0.80–2.00), 2/3 rounds ≥ 1.0",
    "ratio tiny wasm b32: median 1.15 (1.00–1.30), 4/4 rounds ≥ 1.0",
  ]);
  const table = spreadTable(spreads);
  assert.match(
    table,
    /\| tiny +\| wasm +\| 8 +\| +4 \| +1\.50 \| +0\.80–2\.00 \| +2\/3 \| +0\.44–1\.11 \| +0\.100–0\.125 \| +0\.100–0\.200 \|/,
  );
});

// The performance rewrites the benchmark led to (lib/model/layers.ts, lib/train/pretrain.ts,
// lib/train/sampling.ts) must keep behaviour: same forward values, same random draws, gradients equal
// to autodiff's up to float rounding.

function relDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() =>
    tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / (tf.max(tf.abs(b)).dataSync()[0] + 1e-30)
  );
}

Deno.test("dropoutMask: keeps 1 − rate of the values (scaled by 1/keep), a new mask per seed, the same per seed", () => {
  for (const [rate, seed] of [[0.1, 12345], [0.5, 2147483647], [0.9, 0]]) {
    const n = 200_000;
    const a = dropoutMask([n], rate, seed).dataSync();
    const keep = Math.fround(1 - rate), scale = Math.fround(1 / keep);
    let kept = 0;
    for (const v of a) {
      assert.ok(v === 0 || v === scale, `values are 0 or 1/keep, got ${v}`);
      if (v !== 0) kept++;
    }
    // Binomial(n, keep): 5 standard deviations.
    const sd = Math.sqrt(n * keep * (1 - keep));
    assert.ok(Math.abs(kept - n * keep) < 5 * sd, `rate ${rate}: kept ${kept} of ${n}`);
    assert.deepEqual(dropoutMask([n], rate, seed).dataSync(), a, "same seed, same mask");
    const b = dropoutMask([n], rate, seed + 1).dataSync();
    let agree = 0;
    for (let i = 0; i < n; i++) if ((a[i] === 0) === (b[i] === 0)) agree++;
    // Independent masks agree on keep² + rate² of the positions.
    const expect = keep * keep + (1 - keep) * (1 - keep);
    assert.ok(
      Math.abs(agree / n - expect) < 0.01,
      `seed vs seed+1 agree on ${agree / n}, expected ${expect}`,
    );
  }
  assert.throws(() => dropoutMask([3], 1, 0), /rate must be in \[0, 1\)/);
});

Deno.test("LayerNorm, GELU, x + row vector and cross-entropy: plain forward values, autodiff's gradients", () => {
  tf.tidy(() => {
    const x = tf.randomNormal([48, 32], 0, 2, "float32", 2),
      w = tf.randomNormal([48, 32], 0, 1, "float32", 3);
    const g = tf.randomNormal([32], 1, 0.5, "float32", 4), b = tf.randomNormal([32], 0, 1, "float32", 5);
    const plainLn = (a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
      const { mean, variance } = tf.moments(a, 1, true);
      return tf.add(tf.mul(tf.mul(tf.sub(a, mean), tf.rsqrt(tf.add(variance, 1e-12))), gg), bb);
    };
    assert.deepEqual(layerNormWith(x, g, b, 1e-12).dataSync(), plainLn(x, g, b).dataSync());
    const lnNew = tf.grads((a, gg, bb) => tf.sum(tf.mul(layerNormWith(a, gg, bb, 1e-12), w)))([x, g, b]);
    const lnOld = tf.grads((a, gg, bb) => tf.sum(tf.mul(plainLn(a, gg, bb), w)))([x, g, b]);
    lnNew.forEach((t, i) => assert.ok(relDiff(t, lnOld[i]) < 1e-5, `LayerNorm grad ${i}`));

    const plainGelu = (a: tf.Tensor) => tf.mul(tf.mul(a, 0.5), tf.add(tf.erf(tf.mul(a, Math.SQRT1_2)), 1));
    // On wasm gelu() runs rtdlab's fused kernels (lib/backend/wasm_fused.ts), whose Φ comes from a
    // table, not wasm's erff: equal to float32 rounding (the plain ops round 1 + erf to ±6e-8).
    const [gy, py, xv] = [gelu(x).dataSync(), plainGelu(x).dataSync(), x.dataSync()];
    gy.forEach((v, i) =>
      assert.ok(Math.abs(v - py[i]) <= 1.2e-7 * (Math.abs(xv[i]) + Math.abs(py[i])), `GELU value ${i}`)
    );
    const gNew = tf.grad((a) => tf.sum(tf.mul(gelu(a), w)))(x);
    assert.ok(relDiff(gNew, tf.grad((a) => tf.sum(tf.mul(plainGelu(a), w)))(x)) < 1e-5, "GELU grad");

    const v = tf.randomNormal([32], 0, 1, "float32", 6);
    const rNew = tf.grads((a, vv) => tf.sum(tf.mul(addRowVector(a as tf.Tensor2D, vv as tf.Tensor1D), w)))([
      x,
      v,
    ]);
    const rOld = tf.grads((a, vv) => tf.sum(tf.mul(tf.add(a, vv), w)))([x, v]);
    rNew.forEach((t, i) => assert.ok(relDiff(t, rOld[i]) < 1e-5, `row-vector grad ${i}`));

    const logits = tf.randomNormal([16, 300], 0, 3, "float32", 7);
    const targets = tf.tensor1d(Array.from({ length: 16 }, (_, i) => (i * 37) % 300), "int32");
    const plainCe = (l: tf.Tensor) =>
      tf.mean(tf.sub(tf.logSumExp(l, 1), tf.sum(tf.mul(l, tf.oneHot(targets, 300)), 1)));
    const ceNew = tf.valueAndGrad((l) => tf.mul(crossEntropy(l as tf.Tensor2D, targets), 3))(logits);
    const ceOld = tf.valueAndGrad((l) => tf.mul(plainCe(l), 3))(logits);
    assert.equal(ceNew.value.dataSync()[0], ceOld.value.dataSync()[0]);
    assert.ok(relDiff(ceNew.grad, ceOld.grad) < 1e-5, "cross-entropy grad");
  });
});

Deno.test("inverse-CDF sampling picks what a linear scan picks (any temperature, with disallow)", () => {
  const scan = (row: Float32Array, t: number, u01: number, banned: number) => {
    let max = -Infinity;
    for (let v = 0; v < row.length; v++) if (v !== banned && row[v] > max) max = row[v];
    const w = new Float64Array(row.length);
    let total = 0;
    for (let v = 0; v < row.length; v++) w[v] = total += v === banned ? 0 : Math.exp((row[v] - max) / t);
    const u = u01 * total;
    for (let v = 0; v < row.length; v++) if (w[v] > u) return v === banned ? (banned === 0 ? 1 : 0) : v;
    return row.length - 1;
  };
  const r = new Rng(11);
  for (let trial = 0; trial < 60; trial++) {
    const rows = 1 + r.int(8), vocab = 2 + r.int(200), t = [1, 0.7, 2][trial % 3];
    const logits = Float32Array.from({ length: rows * vocab }, () => r.normal() * [0.5, 4, 40][trial % 3]);
    const banned = trial % 2 ? Int32Array.from({ length: rows }, () => r.int(vocab)) : undefined;
    const got = sampleFromLogits(logits, rows, vocab, t, new Rng(trial), banned);
    const us = new Rng(trial);
    for (let i = 0; i < rows; i++) {
      const want = scan(logits.subarray(i * vocab, (i + 1) * vocab), t, us.next(), banned ? banned[i] : -1);
      assert.equal(got[i], want, `trial ${trial} row ${i}`);
    }
  }
});

Deno.test("--profile on wasm reports each kernel's wall time beside its CPU time, summing to the step", async () => {
  await initBackend("wasm");
  const spec = MICRO_CASE;
  const p: StepProfile = await profileSteps(spec);
  assert.equal(p.kernelClock, "cpu");
  assert.ok(p.kernelWallMs !== undefined && p.kernelWallMs > 0);
  // Kernels run inside the profiled steps: their wall time cannot exceed the steps'.
  assert.ok(
    p.kernelWallMs! <= p.profiledStepMs,
    `${p.kernelWallMs} ms of kernels in a ${p.profiledStepMs} ms step`,
  );
  assert.ok(p.byKernel.every((k) => k.wallMs !== undefined && k.wallMs >= 0));
  const sum = p.byKernel.reduce((s, k) => s + k.wallMs!, 0);
  assert.ok(Math.abs(sum - p.kernelWallMs!) < 1e-6);
  const text = formatProfile(p);
  assert.match(text, /\| kernel +\| ms\/step \| share \| wall ms \| wall share \| calls\/step \|/);
  assert.match(text, /kernels, wall time \(of \d+ ms\)/);
  assert.match(text, /other, wall time/);
  // Without wall times (webgpu: the backend's own timer) the columns are left out.
  const plain = formatProfile({ ...p, kernelWallMs: undefined, kernelClock: "wall" });
  assert.doesNotMatch(plain, /wall ms|other, wall time/);
});

/**
 * The GPU check's plumbing (tasks/gpu_check.sh run), without a GPU: a stand-in `deno` records each call and
 * writes the metrics a pretrain run would. A lent GPU gives a session 15 minutes in all and a device call
 * returns at most 8 files, so the check must return its logs packed, a rerun must run only the stages it
 * names (and skip their summaries), and a misspelt stage must stop it before it starts.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tempDir } from "./_helpers.ts";

const SCRIPT = fileURLToPath(new URL("../tasks/gpu_check.sh", import.meta.url));
const VERDICT = fileURLToPath(new URL("../tasks/gpu_verdict.py", import.meta.url));

/**
 * Prints its arguments to calls.txt; for `pretrain.js … --out DIR` writes DIR/metrics.jsonl (two steps), or
 * with PRETRAIN_FAILS set fails as pretrain does without a driver.
 */
const STAND_IN = `#!/usr/bin/env bash
echo "$*" >> "$CALLS"
prev=; until=0
for a in "$@"; do
  [ "$a" = --until ] && until=1
  [ "$prev" = --out ] && out=$a
  prev=$a
done
if [[ "$*" == *pretrain.js* && -n "\${PRETRAIN_FAILS:-}" ]]; then
  echo "error: no NVIDIA driver" >&2
  exit 1
elif [[ "$*" == *pretrain.js* ]]; then
  mkdir -p "$out"
  loss=3.5; [ "$until" = 1 ] && loss=\${REPEAT_LOSS:-3.5}
  for s in 10 20; do
    echo "{\\"step\\":$s,\\"loss_mlm\\":$loss,\\"loss_rtd\\":0.5,\\"tokens_per_s\\":1000}" >> "$out/metrics.jsonl"
  done
  echo '{"steps":200,"batchSize":128}' > "$out/config.json"
fi
`;

/** A copy of the script in a fresh folder laid out like the repository (tasks/, .device/), with the stand-in. */
function checkout() {
  const root = tempDir("gpu-check-");
  Deno.mkdirSync(join(root, "tasks"));
  Deno.mkdirSync(join(root, ".device"));
  Deno.copyFileSync(SCRIPT, join(root, "tasks", "gpu_check.sh"));
  Deno.copyFileSync(VERDICT, join(root, "tasks", "gpu_verdict.py"));
  const bin = join(root, "bin");
  Deno.mkdirSync(bin);
  Deno.writeTextFileSync(join(bin, "deno"), STAND_IN, { mode: 0o755 });
  const work = join(root, "work");
  return {
    root,
    bin,
    work,
    logs: join(work, "logs"),
    out: join(root, "out"),
    calls: join(root, "calls.txt"),
  };
}

/** `bash tasks/gpu_check.sh run` in that copy, with `env` beside what points it at the copy's folders. */
async function run(c: ReturnType<typeof checkout>, env: Record<string, string>) {
  const { code, stderr } = await new Deno.Command("bash", {
    args: [join(c.root, "tasks", "gpu_check.sh"), "run"],
    cwd: c.root,
    env: {
      ...env,
      OUT: c.out,
      GPU_CHECK_WORK: c.work,
      GPU_CHECK_BIN: c.bin,
      CALLS: c.calls,
      RTDLAB_CUBLAS: "/nonexistent/libcublas.so.13",
    },
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code, stderr: new TextDecoder().decode(stderr) };
}

const exists = (p: string) => {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
};
const read = (...p: string[]) => Deno.readTextFileSync(join(...p));

Deno.test("gpu_check run: GPU_CHECK_ONLY runs the stages it names and no other stage or summary", async () => {
  const c = checkout();
  const { code } = await run(c, { GPU_CHECK_ONLY: "pretrain,repeat", GPU_CHECK_TOTAL_S: "120" });
  assert.equal(code, 0);
  const stages = read(c.logs, "stages.txt").trim().split("\n");
  assert.deepEqual(
    stages.map((l) => l.split(":")[0]),
    ["cuda_test", "bench", "probe", "profile", "pretrain", "repeat", "finetune", "deberta"].map((s) =>
      `stage ${s}`
    ),
  );
  for (const l of stages) {
    const ran = /^stage (pretrain|repeat):/.test(l);
    assert.match(l, ran ? /exit 0 in \d+ s/ : /skipped \(not in GPU_CHECK_ONLY=pretrain,repeat\)/);
  }
  // Skipped stages leave no log and no summary; only the two pretrain runs reached deno (besides --version).
  for (const f of ["cuda_test.log", "bench.log", "bench_summary.txt", "probe.log", "finetune_summary.txt"]) {
    assert.ok(!exists(join(c.logs, f)), `${f} written for a skipped stage`);
  }
  const calls = read(c.calls).trim().split("\n").filter((l) => l !== "--version");
  assert.equal(calls.length, 2);
  assert.ok(calls.every((l) => l.includes("pretrain.js --backend cuda")));
  assert.match(read(c.logs, "pretrain_summary.txt"), /2 logged steps, last 20; non-finite/);
  assert.match(read(c.logs, "repeat_summary.txt"), /steps \[10, 20\] of one seed twice: the same bits/);
  // What comes back from the device: two files, the tarball holding every log the run wrote.
  assert.deepEqual([...Deno.readDirSync(c.out)].map((e) => e.name).sort(), ["logs.tar.gz", "summary.txt"]);
  const tar = await new Deno.Command("tar", { args: ["-tzf", join(c.out, "logs.tar.gz")] }).output();
  const packed = new TextDecoder().decode(tar.stdout).split("\n").filter((l) => l && !l.endsWith("/"));
  const written = [...Deno.readDirSync(c.logs)].map((e) => `./${e.name}`);
  assert.deepEqual(packed.sort(), written.sort());
  assert.deepEqual(written.sort(), [
    "./machine.txt",
    "./pretrain.log",
    "./pretrain_config.json",
    "./pretrain_metrics.jsonl",
    "./pretrain_summary.txt",
    "./repeat.log",
    "./repeat_config.json",
    "./repeat_metrics.jsonl",
    "./repeat_summary.txt",
    "./stages.txt",
    "./verdict.txt",
  ]);
  assert.match(read(c.out, "summary.txt"), /== stages\n(.|\n)*stage repeat: exit 0/);
});

Deno.test("gpu_check run: a repeat that logs other bits is reported as differing", async () => {
  const c = checkout();
  const { code } = await run(c, { GPU_CHECK_ONLY: "pretrain,repeat", REPEAT_LOSS: "3.25" });
  assert.equal(code, 0);
  assert.match(read(c.logs, "repeat_summary.txt"), /DIFFER \[\(10, 'loss_mlm', 3\.5, 3\.25\)/);
});

Deno.test("gpu_check run: a pretrain run that fails early still gets its summaries and a FAILED verdict", async () => {
  const c = checkout();
  const { code } = await run(c, { GPU_CHECK_ONLY: "pretrain,repeat", PRETRAIN_FAILS: "1" });
  assert.equal(code, 0);
  assert.match(read(c.logs, "pretrain_summary.txt"), /^no .*pretrain_metrics\.jsonl/);
  assert.match(read(c.logs, "repeat_summary.txt"), /^repeat: no metrics/);
  const verdict = read(c.logs, "verdict.txt");
  assert.match(verdict, /^no NaN +FAILED +pretrain\.log: error: no NVIDIA driver$/m);
  assert.match(verdict, /^same seed +FAILED +repeat: no metrics/m);
});

Deno.test("gpu_check run: a name that is not a stage stops the run before anything runs", async () => {
  const c = checkout();
  const { code, stderr } = await run(c, { GPU_CHECK_ONLY: "bench,pretrian" });
  assert.equal(code, 2);
  assert.match(stderr, /GPU_CHECK_ONLY names 'pretrian', not a stage/);
  assert.ok(!exists(c.out) && !exists(c.work) && !exists(c.calls));
});

Deno.test("gpu_check run: a spent time budget skips every stage and says so", async () => {
  const c = checkout();
  const { code } = await run(c, { GPU_CHECK_TOTAL_S: "12" });
  assert.equal(code, 0);
  const stages = read(c.logs, "stages.txt").trim().split("\n");
  assert.equal(stages.length, 8);
  assert.ok(stages.every((l) => l.endsWith("skipped (the run's 12 s are spent)")), stages.join("\n"));
  assert.ok(!exists(join(c.logs, "pretrain_summary.txt")));
  assert.ok(exists(join(c.out, "logs.tar.gz")));
});

/** tasks/gpu_verdict.py on a logs folder: its lines by bar, [status, detail]. */
async function verdict(logs: string): Promise<Record<string, [string, string]>> {
  const { code, stdout } = await new Deno.Command("python3", { args: [VERDICT, logs] }).output();
  assert.equal(code, 0);
  const lines = new TextDecoder().decode(stdout).trim().split("\n").slice(1);
  // Fixed columns: the bar (12), its status (12), the detail.
  return Object.fromEntries(lines.map((l) => [l.slice(0, 12).trim(), [l.slice(13, 25).trim(), l.slice(26)]]));
}

Deno.test("gpu_verdict reads the first H200 run (2026-12-04) as GPU_RUNS.md does", async () => {
  const v = await verdict(
    fileURLToPath(new URL("../lib/backend/cuda/measured/2026-12-04-h200", import.meta.url)),
  );
  assert.equal(v["correctness"][0], "FAILED");
  assert.match(
    v["correctness"][1],
    /^28 passed, 1 failed, 1 ignored: cuda_emu \(host emulator\) vs cpu: unary kernels/,
  );
  assert.deepEqual(v["no NaN"], ["ok", "200 steps, every loss finite"]);
  assert.equal(v["memory flat"][0], "ok"); // 29,879.9 → 29,906.9 MiB: within 1 %; 1,221 tensors throughout
  assert.equal(v["speed"][0], "BELOW");
  assert.match(v["speed"][1], /electra-small b128 0\.41x \(167 ms, 3961\+847 launches\+gemms\)/);
  for (const bar of ["same seed", "bound", "cost"]) assert.equal(v[bar][0], "not run");
});

Deno.test("gpu_verdict: a cuda_test that found no usable GPU is no correctness pass, whatever its summary says", async () => {
  const logs = tempDir("gpu-verdict-");
  const log = (summary: string) =>
    Deno.writeTextFileSync(
      join(logs, "cuda_test.log"),
      "------- pre-test output -------\n" +
        "cuda_test: no usable GPU here, GPU comparisons skipped: cuBLAS not found (searched libcublas.so.13)\n" +
        `----- pre-test output end -----\nrunning 71 tests from ./.device/cuda_test.js\n${summary}\n`,
    );
  log("ok | 28 passed | 0 failed | 43 ignored (14s)");
  assert.deepEqual((await verdict(logs))["correctness"], [
    "NO GPU",
    "28 passed, 0 failed, 43 ignored; cuBLAS not found (searched libcublas.so.13)",
  ]);
  log("FAILED | 27 passed | 1 failed | 43 ignored (14s)");
  assert.equal((await verdict(logs))["correctness"][0], "FAILED");
});

Deno.test("gpu_verdict: the profile line names the kernels that take most of the device's time, against their floors", async () => {
  const logs = tempDir("gpu-verdict-");
  const profile = {
    config: "electra-small",
    batch: 128,
    stepMs: 41.2,
    kernelMs: 36,
    byKernel: [
      { name: "RtdlabLayerNorm", ms: 3, calls: 51 },
      { name: "BatchMatMul", ms: 24, calls: 378 },
      { name: "Identity", ms: 0, calls: 669 },
      { name: "RtdlabSoftmaxCrossEntropy", ms: 6, calls: 1 },
    ],
    floor: { peak: "H200", totalMs: 21, byKernel: { BatchMatMul: 16, RtdlabSoftmaxCrossEntropy: 0.5 } },
  };
  Deno.writeTextFileSync(
    join(logs, "profile.json"),
    JSON.stringify({ kind: "profile", profiles: [profile] }),
  );
  assert.deepEqual((await verdict(logs))["profile"], [
    "info",
    "electra-small b128: kernels 36.0 of 41.2 ms/step; top: BatchMatMul 24.0 ms 67%, 1.5x its floor; " +
    "RtdlabSoftmaxCrossEntropy 6.0 ms 17%, 12.0x its floor; RtdlabLayerNorm 3.0 ms 8%",
  ]);
  // A profile stage that ran and wrote no record says why.
  Deno.removeSync(join(logs, "profile.json"));
  Deno.writeTextFileSync(join(logs, "profile.log"), "error: out of memory\n");
  assert.deepEqual((await verdict(logs))["profile"], ["FAILED", "profile.log: error: out of memory"]);
});

Deno.test("gpu_verdict: a divergence, growing memory, a differing repeat, the speed goal, a device-bound step", async () => {
  const logs = tempDir("gpu-verdict-");
  const write = (name: string, text: string) => Deno.writeTextFileSync(join(logs, name), text);
  const row = (step: number, mib: number, tensors = 900) =>
    JSON.stringify({ step, loss_mlm: 3, loss_rtd: 0.4, tokens_per_s: 1, device_mib: mib, tensors });
  write(
    "pretrain_metrics.jsonl",
    [row(10, 900), row(20, 1000), row(30, 1005, 901), row(40, 1200)].join("\n"),
  );
  write(
    "pretrain.log",
    "step 40 ...\n\nerror: step 41: the generator's MLM loss is NaN: training diverged, so ...\n",
  );
  write(
    "repeat_summary.txt",
    "repeat: steps [10, 20] of one seed twice: DIFFER [(20, 'loss_mlm', 3.1, 3.2)]\n",
  );
  write("cuda_test.log", "...\nok | 29 passed | 0 failed (12s)\n");
  const spec = (config: string, batch: number) => ({ config, batch });
  const result = { median_s: 0.04, gpu: { launches_per_step: 471, gemms_per_step: 556 } };
  write(
    "bench.json",
    JSON.stringify({
      rows: [
        { spec: spec("tiny", 32), ratio: 0.8, rtdlab: { result } },
        { spec: spec("electra-small", 128), ratio: 1.7, rtdlab: { result } },
      ],
    }),
  );
  const report = {
    config: "electra-small",
    batch: 128,
    step_wall_ms: 40,
    estimated_host_ms: 20,
    device_floor_ms: 23.3,
    device_peak: "this device",
    launches_and_gemms_per_step: 1027,
    device_reserved_gb: 7.9,
  };
  write("probe.log", `null device: host 17 ms\n${JSON.stringify(report, null, 2)}\n`);
  const v = await verdict(logs);
  assert.deepEqual(v["correctness"], ["ok", "29 passed, 0 failed, 0 ignored"]);
  assert.equal(v["no NaN"][0], "FAILED");
  assert.match(v["no NaN"][1], /^step 41: the generator's MLM loss is NaN: training diverged/);
  assert.equal(v["memory flat"][0], "GROWS"); // 1,000 → 1,200 MiB after warm-up (and one tensor more)
  assert.match(
    v["memory flat"][1],
    /MiB on the device 1000 at step 20, at most 1200 by step 40; live tensors 900 .* 901/,
  );
  assert.equal(v["same seed"][0], "FAILED");
  assert.deepEqual(v["speed"][0], "GOAL");
  assert.match(v["speed"][1], /tiny b32 0\.80x .*; electra-small b128 1\.70x/);
  assert.equal(v["bound"][0], "device-bound");
  assert.match(
    v["bound"][1],
    /wall 40\.0 ms, host 20\.0 ms, device floor 23\.3 ms \(this device\): 1\.7x the floor/,
  );
  write(
    "finetune_summary.txt",
    "finetune: 120 steps, 35 ms/step training, 2.1 s evaluating; test accuracy 0.612\n",
  );
  write(
    "deberta_metrics.jsonl",
    [1, 2, 3].map((i) => JSON.stringify({ step: 10 * i, tokens_per_s: 1e4 * (4 + i), device_mib: 9000 }))
      .join("\n"),
  );
  assert.deepEqual((await verdict(logs))["cost"], [
    "info",
    "fine-tuning 120 steps, 35 ms/step training; deberta-v3-xsmall GDES b128: 70000 tokens/s, 9000 MiB (to step 30)",
  ]);
  // One tensor more per 10 steps is a leak even where the device's memory stays put.
  write("pretrain_metrics.jsonl", [row(20, 1000), row(30, 1000, 901), row(40, 1000, 902)].join("\n"));
  assert.deepEqual((await verdict(logs))["memory flat"][0], "GROWS");
  // A run without the divergence message but with a null loss (metrics written before runs stopped on it).
  write("pretrain.log", "");
  write(
    "pretrain_metrics.jsonl",
    [row(10, 900), JSON.stringify({ step: 20, loss_mlm: null, loss_rtd: null })].join("\n"),
  );
  assert.deepEqual((await verdict(logs))["no NaN"], ["FAILED", "non-finite losses at steps [20]"]);
});

Deno.test("gpu_verdict: a stage its time limit stopped says so; the run's own size labels its bars", async () => {
  const logs = tempDir("gpu-verdict-");
  const write = (name: string, text: string) => Deno.writeTextFileSync(join(logs, name), text);
  write(
    "stages.txt",
    "stage cuda_test: exit 124 in 105 s (limit 100 s)\nstage pretrain: exit 137 in 125 s (limit 120 s)\n" +
      "stage finetune: skipped (the run's 420 s are spent)\nstage deberta: exit 0 in 50 s (limit 60 s)\n",
  );
  write("cuda_test.log", "running 71 tests\ncuda vs cpu: unary kernels ... ok\n");
  write("pretrain.log", "data: 6844 sequences of 128 tokens\n");
  write("pretrain_config.json", JSON.stringify({ steps: 300 }));
  write("pretrain_metrics.jsonl", '{"step":10,"loss_mlm":9.1,"loss_rtd":0.6,"tokens_per_s":1000}\n');
  write("deberta.log", "done\n");
  write("deberta_config.json", JSON.stringify({ batchSize: 64 }));
  write(
    "deberta_metrics.jsonl",
    [10, 20, 30].map((s) => JSON.stringify({ step: s, loss_mlm: 9, loss_rtd: 0.6, tokens_per_s: 5000 })).join(
      "\n",
    ),
  );
  const v = await verdict(logs);
  assert.deepEqual(v["correctness"], [
    "TIMED OUT",
    "no test summary; cuda_test stopped at its 100 s limit; last: cuda vs cpu: unary kernels ... ok",
  ]);
  assert.deepEqual(v["no NaN"], ["SHORT", "stopped at step 10 of 300 (its 120 s limit)"]);
  assert.match(v["cost"][1], /^deberta-v3-xsmall GDES b64: 5000 tokens\/s/);
  assert.equal(v["same seed"][0], "not run");
  // A fine-tune and a DeBERTa run that hit their limits; a bench that measured 1 of its 4 cases before its own.
  write(
    "stages.txt",
    "stage bench: exit 124 in 175 s (limit 170 s)\nstage finetune: exit 124 in 65 s (limit 60 s)\n" +
      "stage deberta: exit 137 in 45 s (limit 40 s)\n",
  );
  Deno.removeSync(join(logs, "deberta_metrics.jsonl"));
  write("finetune.log", "loading\n");
  write("deberta.log", "step 5\n");
  write(
    "bench.json",
    JSON.stringify({
      finished: null,
      cases: 4,
      rows: [{
        spec: { config: "tiny", batch: 32 },
        ratio: 1.2,
        rtdlab: { result: { median_s: 0.06, gpu: {} } },
      }],
    }),
  );
  const cut = await verdict(logs);
  assert.equal(cut["cost"][0], "TIMED OUT");
  assert.match(
    cut["cost"][1],
    /finetune stopped at its 60 s limit; last: loading; deberta stopped at its 40 s limit/,
  );
  assert.equal(cut["speed"][0], "TIMED OUT");
  assert.match(
    cut["speed"][1],
    /^1 of 4 cases measured before its 170 s limit; rtdlab\/PyTorch tokens\/s: tiny b32 1\.20x/,
  );
});

Deno.test("gpu_check run: the bundles are unpacked from their .xz, and a rehearsal on the host says so", async () => {
  const c = checkout();
  const js = "// a bundle\n";
  const bundle = join(c.root, ".device", "pretrain.js.xz");
  const py = "import lzma, sys; open(sys.argv[1], 'wb').write(lzma.compress(sys.argv[2].encode()))";
  assert.ok((await new Deno.Command("python3", { args: ["-c", py, bundle, js] }).output()).success);
  const { code } = await run(c, { GPU_CHECK_ONLY: "cuda_test", RTDLAB_CUDA_EMULATE: "simt" });
  assert.equal(code, 0);
  assert.equal(read(c.root, ".device", "pretrain.js"), js);
  assert.match(
    read(c.logs, "machine.txt"),
    /^RTDLAB_CUDA_EMULATE=simt: a rehearsal on the host, no GPU is used$/m,
  );
});

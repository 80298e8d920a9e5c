/**
 * `deno task bench`: full RTD training steps on tfjs backends next to the PyTorch peer, as ratios.
 *
 *   deno task bench                                  # tiny + electra-small, b8 + b32, wasm (+ webgpu)
 *   deno task bench --quick --backends wasm,cpu      # short run
 *   deno task bench --micro --backends wasm          # hottest ops at the models' shapes
 *   deno task bench --profile                        # where a step's time goes (tf.profile + host)
 *   deno task bench --repeat 5                       # five rounds: each ratio's median, range, rounds ≥ 1
 *
 * Each case runs in a fresh subprocess (`--case`, one JSON line) so peak memory is per case.
 *
 * @module
 */

import { fileURLToPath as fromFileUrl } from "node:url";
import {
  adapterName,
  type BackendName,
  initBackend,
  isSoftwareAdapter,
  requestWebgpuAdapter,
} from "../lib/backend/mod.ts";
import { checkCaseSpec, runCase } from "../lib/bench/case.ts";
import { BENCH_HELP, type BenchOptions, parseBenchArgs } from "../lib/bench/cli.ts";
import { machineInfo } from "../lib/bench/machine.ts";
import { microOps, type MicroResult, timeOp } from "../lib/bench/micro.ts";
import {
  PEER_GLIBC_TUNABLES,
  PEER_PYTHON,
  PEER_SCRIPT,
  PEER_UNSET_ENV,
  peerCommand,
  shellWord,
  torchVersion,
} from "../lib/bench/peer.ts";
import { formatProfile, profileSteps, type StepProfile } from "../lib/bench/profile.ts";
import {
  BENCH_LEGEND,
  benchTable,
  caseSpreads,
  defaultOutPath,
  ratioLines,
  spreadLines,
  spreadTable,
  textTable,
  unevenNotes,
  writeRecord,
} from "../lib/bench/report.ts";
import { type BenchRow, planCases, runSuite } from "../lib/bench/suite.ts";
import { caseConfig } from "../lib/bench/case.ts";
import * as tf from "../lib/tf.ts";
import type { CudaBackend } from "../lib/backend/cuda/backend.ts";
import { missingDriver } from "../lib/backend/cuda/driver.ts";
import { wrapHelp } from "../lib/util/cli.ts";

const log = (line: string) => console.error(line);

/**
 * Run as a bundle (`../shared/device/pack tasks/bench.ts`, for a GPU machine) there is no node_modules
 * to read tfjs-backend-wasm's binaries from; they travel in a `wasm/` folder beside the bundle.
 */
async function locateWasmBinaries(): Promise<void> {
  if (!Deno.mainModule.endsWith(".js")) return;
  const dir = fromFileUrl(new URL("./wasm/", Deno.mainModule));
  try {
    Deno.statSync(`${dir}tfjs-backend-wasm-simd.wasm`);
  } catch {
    return;
  }
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  wasm.setWasmPaths(dir);
  // Emscripten's Node path also resolves the binary against __dirname, which a bundle lacks.
  (globalThis as Record<string, unknown>).__dirname = dir;
}

/** wasm, plus webgpu when this Deno has WebGPU and a GPU adapter (a software one only when named). */
async function defaultBackends(): Promise<BackendName[]> {
  const adapter = await requestWebgpuAdapter();
  if (adapter == null) return ["wasm"];
  if (isSoftwareAdapter(adapter)) {
    // lavapipe runs WebGPU on the CPU: steps of seconds, far slower than wasm; not worth a default run.
    log(`webgpu: only a software adapter here (${adapterName(adapter)}); --backends webgpu times it anyway`);
    return ["wasm"];
  }
  return ["wasm", "webgpu"];
}

async function bench(opts: BenchOptions): Promise<void> {
  const backends = opts.backends ?? await defaultBackends();
  const specs = planCases(opts, backends);
  for (const s of specs) checkCaseSpec(s);
  // Each case runs in a child: without a driver every cuda case would fail alike, one after another.
  const noDriver = backends.includes("cuda") && !Deno.env.get("RTDLAB_CUDA_EMULATE") ? missingDriver() : null;
  if (noDriver) throw new Error(`--backends cuda: ${noDriver}`);
  if (opts.peer && !(await Deno.stat(opts.peerScript ?? PEER_SCRIPT).then(() => true, () => false))) {
    if (opts.peerScript !== undefined) throw new Error(`--peer-script ${opts.peerScript}: no such file`);
    // The peer is an independent implementation kept beside the project, not in it: a clone alone
    // has no peer, and its timings stand without ratios.
    log(
      `peer: ${PEER_SCRIPT} is not on this machine (the PyTorch peer lives outside this repository); ` +
        `timing rtdlab alone (--peer-script PATH to compare)`,
    );
    opts = { ...opts, peer: false };
  }
  const torch = opts.peer ? await torchVersion(opts.peerPython) : null;
  if (opts.peer && torch == null) {
    throw new Error(
      `${
        opts.peerPython ?? PEER_PYTHON
      } cannot import torch: install python3-torch and libopenblas0-pthread ` +
        `(apt-get install -y python3-torch libopenblas0-pthread), or pass --no-peer`,
    );
  }
  const machine = machineInfo(torch);
  log(
    `bench: ${specs.length} case${specs.length === 1 ? "" : "s"} (${
      [...new Set(specs.map((s) => s.config))].join(", ")
    }; ` +
      `batches ${opts.batches.join(",")}; ${
        backends.join(", ")
      }), ${opts.warmup} warm-up + ${opts.steps} timed ` +
      `steps each${opts.repeat > 1 ? `, ${opts.repeat} rounds` : ""}; ${machine.cpu_model}, ` +
      `${machine.nproc} cores, load ${machine.loadavg.join(" ")}`,
  );
  if (opts.peer) {
    const example = peerCommand({
      config: caseConfig(specs[0]),
      batch: specs[0].batch,
      warmup: opts.warmup,
      steps: opts.steps,
      threads: opts.threads,
      script: opts.peerScript,
      python: opts.peerPython,
      device: opts.peerDevice,
    });
    log(
      `peer: torch ${torch}, run as \`${example.map(shellWord).join(" ")}\` ` +
        `(${
          PEER_UNSET_ENV.join(" and ")
        } unset and GLIBC_TUNABLES set in the peer's command only: lib/bench/peer.ts says why)`,
    );
  }
  const started = new Date();
  const out = opts.out ?? defaultOutPath(started);
  // The record is written after every case (`finished` null until the last), so a run stopped by a time limit
  // keeps the cases it measured.
  const record = (rounds: BenchRow[][], finished: Date | null) => {
    const spreads = opts.repeat > 1 ? caseSpreads(rounds) : null;
    return writeRecord(out, {
      kind: "rtdlab-bench",
      started: started.toISOString(),
      finished: finished?.toISOString() ?? null,
      cases: specs.length,
      argv: Deno.args,
      options: opts,
      machine,
      machine_end: { loadavg: Deno.loadavg() },
      peer: opts.peer
        ? {
          script: opts.peerScript ?? PEER_SCRIPT,
          python: opts.peerPython ?? PEER_PYTHON,
          device: opts.peerDevice,
          env: { unset: PEER_UNSET_ENV, GLIBC_TUNABLES: PEER_GLIBC_TUNABLES },
          threads: opts.threads,
        }
        : null,
      rounds: opts.repeat,
      rows: rounds.flat(),
      table: rounds.map((rows) => benchTable(rows)).join("\n\n"),
      ratios: rounds.flatMap((rows) => ratioLines(rows)),
      ...(spreads ? { spread: spreads, spread_lines: spreadLines(spreads) } : {}),
    });
  };
  const rounds: BenchRow[][] = [];
  for (let round = 1; round <= opts.repeat; round++) {
    const many = opts.repeat > 1;
    const roundLog = many ? (line: string) => log(`round ${round}/${opts.repeat} ${line}`) : log;
    const tagged = (rows: BenchRow[]) => many ? rows.map((r) => ({ ...r, round })) : rows;
    // Children re-run this entry point (tasks/bench.ts, or the bundle a GPU machine runs).
    const rows = await runSuite(
      opts,
      specs,
      roundLog,
      fromFileUrl(Deno.mainModule),
      (rows) => record([...rounds, tagged(rows)], null),
    );
    rounds.push(tagged(rows));
    if (many) console.log(`\n## round ${round} of ${opts.repeat}\n`);
    console.log(benchTable(rows));
    console.log(BENCH_LEGEND);
    for (const note of unevenNotes(rows)) console.log(note);
    console.log(ratioLines(rows).join("\n"));
  }
  if (opts.repeat > 1) {
    // Each side's medians move between rounds (the peer's tiny b8 steps have two modes): the spread.
    const spreads = caseSpreads(rounds);
    console.log(`\n## spread over ${opts.repeat} rounds\n`);
    console.log(spreadTable(spreads));
    console.log(spreadLines(spreads).join("\n"));
  }
  await record(rounds, new Date());
  console.log(`record: ${out}`);
  const rows = rounds.flat();
  const failed = rows.filter((r) => !r.rtdlab.result);
  if (failed.length) {
    throw new Error(
      `${failed.length} of ${rows.length} cases failed: ${
        failed.map((r) => `${r.spec.config} ${r.spec.backend} b${r.spec.batch}`).join(", ")
      } (their errors are above and in ${out})`,
    );
  }
}

async function micro(opts: BenchOptions): Promise<void> {
  const backends = opts.backends ?? await defaultBackends();
  const batches = opts.explicit.batches ? opts.batches : [8];
  const results: { backend: string; config: string; batch: number; ops: MicroResult[] }[] = [];
  for (const backend of backends) {
    const { info } = await initBackend(backend);
    log(`micro: ${backend} (${info})`);
    for (const config of opts.configs) {
      for (const batch of batches) {
        const c = caseConfig({ config, overrides: opts.overrides, batch });
        const ops: MicroResult[] = [];
        for (const op of microOps(c, batch)) {
          // The cpu backend runs ~1 GFLOP/s: keep its repetitions few.
          ops.push(await timeOp(op, backend === "cpu" ? 100 : 300, backend === "cpu" ? 5 : 30));
        }
        results.push({ backend, config, batch, ops });
        const clock = backend === "wasm" || backend === "cpu" ? "CPU time" : "wall time";
        console.log(
          `\n## micro ${config} b${batch} (${c.seqLength} tokens/seq) on ${backend}, ms = median ${clock}\n`,
        );
        console.log(textTable(
          ["op", "shapes", "ms", "GFLOP/s", "GB/s", "reps"],
          ops.map((r) => [
            r.name,
            r.shape,
            r.ms.toFixed(3),
            r.gflops == null ? "" : r.gflops.toFixed(1),
            r.gbps == null ? "" : r.gbps.toFixed(2),
            String(r.reps),
          ]),
          2,
        ));
      }
    }
  }
  const out = opts.out ?? defaultOutPath().replace("/bench-", "/micro-");
  await writeRecord(out, { kind: "rtdlab-micro", argv: Deno.args, machine: machineInfo(null), results });
  console.log(`record: ${out}`);
}

async function profile(opts: BenchOptions): Promise<void> {
  const backends = opts.backends ?? ["wasm"];
  // Default: the two cases the performance work looks at.
  const pairs: [string, number][] = opts.explicit.configs || opts.explicit.batches
    ? opts.configs.flatMap((c) => opts.batches.map((b) => [c, b] as [string, number]))
    : [["tiny", 16], ["electra-small", 8]];
  const profiles: StepProfile[] = [];
  for (const backend of backends) {
    await initBackend(backend);
    for (const [config, batch] of pairs) {
      const spec = checkCaseSpec({
        config,
        overrides: opts.overrides,
        backend,
        batch,
        warmup: opts.explicit.warmup ? opts.warmup : 2,
        steps: opts.explicit.steps ? opts.steps : 3,
        seed: opts.seed,
      });
      log(
        `profile: ${config} ${backend} b${batch}, ${spec.warmup} warm-up + ${spec.steps} plain + ${spec.steps} profiled steps`,
      );
      const p = await profileSteps(spec);
      if (backend === "cuda") {
        // Beside each kernel's device time, the least its traffic and flops allow on this GPU.
        const { stepWork } = await import("../lib/backend/cuda/count_launches.ts");
        const { peakOf } = await import("../lib/backend/cuda/driver.ts");
        const { peak, source } = peakOf((tf.backend() as CudaBackend).rt.info);
        const w = await stepWork(caseConfig(spec), peak);
        p.floor = {
          peak: source,
          totalMs: w.floorMs,
          byKernel: Object.fromEntries([...w.byKernel].map(([k, v]) => [k, v.floorMs])),
        };
        await initBackend(backend);
      }
      profiles.push(p);
      console.log("\n" + formatProfile(p) + "\n");
    }
  }
  const out = opts.out ?? defaultOutPath().replace("/bench-", "/profile-");
  await writeRecord(out, { kind: "rtdlab-profile", argv: Deno.args, machine: machineInfo(null), profiles });
  console.log(`record: ${out}`);
}

async function caseMode(opts: BenchOptions): Promise<void> {
  const backend = (opts.backends ?? ["wasm"])[0];
  const spec = checkCaseSpec({
    config: opts.configs[0],
    overrides: opts.overrides,
    backend,
    batch: opts.batches[0],
    warmup: opts.warmup,
    steps: opts.steps,
    seed: opts.seed,
  });
  console.log(JSON.stringify(await runCase(spec)));
}

if (import.meta.main) {
  try {
    const opts = parseBenchArgs(Deno.args);
    await locateWasmBinaries();
    if (opts.mode === "help") console.log(wrapHelp(BENCH_HELP));
    else if (opts.mode === "case") await caseMode(opts);
    else if (opts.mode === "micro") await micro(opts);
    else if (opts.mode === "profile") await profile(opts);
    else await bench(opts);
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    Deno.exit(2);
  }
}

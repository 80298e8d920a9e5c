/**
 * The benchmark suite: which cases run, and running each next to the PyTorch peer on the same model,
 * so every row carries a ratio measured minutes apart rather than across days.
 *
 * @module
 */

import type { BackendName } from "../backend/mod.ts";
import { caseConfig, type CaseSpec, spawnCase, type SpawnedCase } from "./case.ts";
import type { BenchOptions } from "./cli.ts";
import { type PeerResult, runPeer } from "./peer.ts";

/** One row of the results: an rtdlab case and the peer run next to it. */
export interface BenchRow {
  spec: CaseSpec;
  rtdlab: SpawnedCase;
  peer: PeerResult | null;
  /** rtdlab tokens/s ÷ peer tokens/s (null when either side failed or the peer was skipped). */
  ratio: number | null;
  /** The round of the suite it ran in (1, 2, …) when the suite ran more than once (--repeat). */
  round?: number;
}

/** Cases for `opts` on `backends`, in run order (config, then batch, then backend). */
export function planCases(opts: BenchOptions, backends: BackendName[]): CaseSpec[] {
  const specs: CaseSpec[] = [];
  for (const config of opts.configs) {
    for (const batch of opts.batches) {
      // --quick: electra-small only at its smallest requested batch, unless batches were given.
      if (opts.quick && config !== "tiny" && !opts.explicit.batches && batch !== Math.min(...opts.batches)) {
        continue;
      }
      for (const backend of backends) {
        let { warmup, steps } = opts;
        // The reference cpu backend runs ~1 GFLOP/s: a step takes minutes (tiny b8: ~4 min on a loaded
        // 2-core machine), so it gets one warm-up and --cpu-steps timed steps.
        if (backend === "cpu") {
          warmup = Math.min(warmup, 1);
          steps = Math.min(steps, opts.cpuSteps);
        }
        specs.push({ config, overrides: opts.overrides, backend, batch, warmup, steps, seed: opts.seed });
      }
    }
  }
  return specs;
}

/** Progress callback: one line per event (the task prints them on stderr). */
export type Log = (line: string) => void;

/**
 * Runs every case in a fresh process (`script --case ...`), each right after a peer run on the same
 * config and batch. `script` is the entry point to re-run: tasks/bench.ts, or a bundle of it. `onRow`
 * gets the rows so far after each case (the task writes its record then, so a run cut short keeps them).
 */
export async function runSuite(
  opts: BenchOptions,
  specs: CaseSpec[],
  log: Log,
  script?: string,
  onRow?: (rows: BenchRow[]) => Promise<void>,
): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const [i, spec] of specs.entries()) {
    const tag = `[${i + 1}/${specs.length}] ${spec.config} ${spec.backend} b${spec.batch}`;
    let peer: PeerResult | null = null;
    if (opts.peer) {
      // The peer always gets the full warm-up and step count (the cpu cap is rtdlab's only).
      log(`${tag}: peer (torch, ${opts.threads} threads), ${opts.warmup}+${opts.steps} steps ...`);
      peer = await runPeer({
        config: caseConfig(spec),
        batch: spec.batch,
        warmup: opts.warmup,
        steps: opts.steps,
        threads: opts.threads,
        script: opts.peerScript,
        python: opts.peerPython,
        device: opts.peerDevice,
      }, opts.caseTimeout);
      log(
        peer.ok
          ? `${tag}: peer ${peer.result!.median_s.toFixed(3)} s/step, ${
            Math.round(peer.result!.tokens_per_s)
          } tok/s`
          : `${tag}: peer FAILED: ${peer.error}`,
      );
    }
    log(`${tag}: rtdlab, ${spec.warmup}+${spec.steps} steps in a fresh process ...`);
    const rtdlab = await spawnCase(spec, opts.caseTimeout, script);
    const r = rtdlab.result;
    log(
      r
        ? `${tag}: rtdlab ${r.median_s.toFixed(3)} s/step, ${Math.round(r.tokens_per_s)} tok/s, ` +
          `peak ${Math.round(r.peak_rss_mib)} MiB (${rtdlab.wall_s.toFixed(0)} s)`
        : `${tag}: rtdlab FAILED: ${rtdlab.error}`,
    );
    const ratio = r && peer?.result ? r.tokens_per_s / peer.result.tokens_per_s : null;
    rows.push({ spec, rtdlab, peer, ratio });
    await onRow?.(rows);
  }
  return rows;
}

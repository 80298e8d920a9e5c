/**
 * The PyTorch peer: `../shared/peer/pytorch_electra_step.py`, an independent ELECTRA
 * training step. The benchmark runs it on the *same* model as the rtdlab case it sits next to: its
 * `--set` overrides are built from rtdlab's config, never the other way round.
 *
 * It runs as measured fastest on these machines: `/usr/bin/python3` (the Debian torch with libopenblas0-pthread), two
 * threads, `OPENBLAS_CORETYPE` and `OPENBLAS_L2_SIZE` unset in its own command only (they slow a
 * current OpenBLAS), and glibc malloc tuned so page faults do not dominate.
 *
 * @module
 */

import { fileURLToPath as fromFileUrl } from "node:url";
import { generatorSize, type RunConfig } from "../config.ts";

/** Default location of the peer script (`<project>/../shared/peer/`). */
export const PEER_SCRIPT: string = fromFileUrl(
  new URL("../../../shared/peer/pytorch_electra_step.py", import.meta.url),
);

/** The interpreter that has python3-torch (another `python3` may come first on PATH). */
export const PEER_PYTHON = "/usr/bin/python3";

/** GLIBC_TUNABLES for the peer: no mmap'd chunks, never trim (measured 30-40 % faster at batch 128). */
export const PEER_GLIBC_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736";

/** Environment variables unset in the peer's command (they slow a current OpenBLAS). */
export const PEER_UNSET_ENV: readonly string[] = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"];

/** The peer's model config keys (its `CONFIGS` entries), all integers. */
export type PeerKey =
  | "vocab"
  | "max_len"
  | "emb"
  | "layers"
  | "d_hidden"
  | "d_heads"
  | "d_ffn"
  | "g_hidden"
  | "g_heads"
  | "g_ffn";

/**
 * The peer's config for rtdlab config `c`: vocab, max_len = seqLength, emb, layers and the D sizes
 * from the config; the G sizes from {@link generatorSize}. Throws where the peer cannot express `c`
 * (it is ELECTRA with ES sharing and one depth for both networks).
 */
export function peerOverrides(c: RunConfig): Record<PeerKey, number> {
  if (c.backbone !== undefined && c.backbone !== "electra") {
    throw new Error(`the PyTorch peer implements the ELECTRA backbone only, not "${c.backbone}"`);
  }
  if (c.sharing !== "es") {
    throw new Error(
      `the PyTorch peer shares one embedding table between G and D (ES); config has sharing "${c.sharing}"`,
    );
  }
  if (c.vocabSize <= 200) {
    throw new Error(
      `the PyTorch peer draws tokens from [200, vocab): vocabSize must exceed 200, got ${c.vocabSize}`,
    );
  }
  const g = generatorSize(c);
  const d = c.discriminator;
  if (g.numLayers !== d.numLayers) {
    throw new Error(
      `the PyTorch peer gives G and D the same depth; config has ${g.numLayers} generator and ` +
        `${d.numLayers} discriminator layers`,
    );
  }
  return {
    vocab: c.vocabSize,
    max_len: c.seqLength,
    emb: c.embeddingSize,
    layers: d.numLayers,
    d_hidden: d.hiddenSize,
    d_heads: d.numHeads,
    d_ffn: d.intermediateSize,
    g_hidden: g.hiddenSize,
    g_heads: g.numHeads,
    g_ffn: g.intermediateSize,
  };
}

/** `--set key=value` arguments for {@link peerOverrides}. */
export function peerSetArgs(c: RunConfig): string[] {
  return Object.entries(peerOverrides(c)).flatMap(([k, v]) => ["--set", `${k}=${v}`]);
}

/** What one peer run needs. */
export interface PeerRun {
  config: RunConfig;
  batch: number;
  warmup: number;
  steps: number;
  /** Torch threads (two: the 2-core machines' cores). */
  threads?: number;
  script?: string;
  python?: string;
  /** "cpu" (default) or "cuda". */
  device?: "cpu" | "cuda";
}

/**
 * The full peer command line, `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE GLIBC_TUNABLES=...
 * /usr/bin/python3 pytorch_electra_step.py --config workbench --batch B --seq L ... --set ...`.
 * Every config entry is set explicitly, so the base config named by `--config` does not matter.
 */
export function peerCommand(run: PeerRun): string[] {
  return [
    "env",
    ...PEER_UNSET_ENV.flatMap((k) => ["-u", k]),
    `GLIBC_TUNABLES=${PEER_GLIBC_TUNABLES}`,
    run.python ?? PEER_PYTHON,
    run.script ?? PEER_SCRIPT,
    "--config",
    "workbench",
    "--batch",
    String(run.batch),
    "--seq",
    String(run.config.seqLength),
    "--warmup",
    String(run.warmup),
    "--steps",
    String(run.steps),
    "--threads",
    String(run.threads ?? 2),
    ...(run.device && run.device !== "cpu" ? ["--device", run.device] : []),
    ...peerSetArgs(run.config),
  ];
}

/** One peer result: its JSON line (snake_case, as the peer prints it) plus the command that made it. */
export interface PeerResult {
  command: string;
  ok: boolean;
  /** The peer's JSON (median_s, tokens_per_s, peak_rss_mib, torch, ...); absent when it failed. */
  result?: Record<string, unknown> & { median_s: number; tokens_per_s: number; peak_rss_mib: number };
  error?: string;
}

/** Quotes a word for a shell command line when needed (for the record only; nothing runs a shell). */
export function shellWord(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`;
}

/** Runs the peer once; never throws (a failed peer is reported, the rtdlab side still runs). */
export async function runPeer(run: PeerRun, timeoutS = 1800): Promise<PeerResult> {
  let cmd: string[];
  try {
    cmd = peerCommand(run);
  } catch (e) {
    return { command: "", ok: false, error: (e as Error).message };
  }
  const command = cmd.map(shellWord).join(" ");
  const script = run.script ?? PEER_SCRIPT;
  try {
    await Deno.stat(script);
  } catch {
    return {
      command,
      ok: false,
      error: `peer script not found: ${script} (pass --peer-script or --no-peer)`,
    };
  }
  const t0 = performance.now();
  try {
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(timeoutS * 1000),
    }).output();
    const stdout = new TextDecoder().decode(out.stdout).trim();
    const stderr = new TextDecoder().decode(out.stderr).trim();
    if (!out.success) {
      const why = lastLines(stderr || stdout, 6);
      // The time limit kills the peer (SIGTERM): say so rather than print an empty exit.
      if ((performance.now() - t0) / 1000 >= timeoutS * 0.99) {
        return { command, ok: false, error: `timed out after ${timeoutS} s${why ? ` (${why})` : ""}` };
      }
      return { command, ok: false, error: `exit ${out.code}: ${why}` };
    }
    const line = stdout.split("\n").filter((l) => l.startsWith("{")).pop();
    if (!line) {
      return { command, ok: false, error: `no JSON line in the peer's output: ${lastLines(stdout, 3)}` };
    }
    return { command, ok: true, result: JSON.parse(line) };
  } catch (e) {
    const msg = (e as Error).name === "AbortError" || (e as Error).name === "TimeoutError"
      ? `timed out after ${timeoutS} s`
      : (e as Error).message;
    return { command, ok: false, error: msg };
  }
}

function lastLines(s: string, n: number): string {
  return s.split("\n").slice(-n).join(" | ");
}

/** The torch version the peer's interpreter imports, or null when it cannot import torch. */
export async function torchVersion(python: string = PEER_PYTHON): Promise<string | null> {
  try {
    const out = await new Deno.Command(python, {
      args: ["-c", "import torch; print(torch.__version__)"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

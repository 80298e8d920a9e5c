/**
 * Command-line options of `deno task bench`, parsed and checked with messages that name the problem.
 *
 * @module
 */

import { intOption, parseCliArgs } from "../util/cli.ts";
import { type BackendName, BACKENDS } from "../backend/mod.ts";
import { PRESETS } from "../config.ts";

/** Help text of `deno task bench`. */
export const BENCH_HELP = `deno task bench — full RTD training steps vs the PyTorch peer, side by side

  --configs A,B       presets to time  [tiny,electra-small]
  --batches 8,32      batch sizes (sequence length is the config's, 128)  [8,32]
  --backends B,C      wasm | cpu | webgpu | tensorflow | cuda  [wasm, plus webgpu on a GPU adapter
                      (a software one, lavapipe, only when named)]
  --warmup N          untimed steps per case  [2]
  --steps N           timed steps per case (the median is reported)  [5]
  --cpu-steps N       cap on the cpu backend's timed steps (and one warm-up): its steps take minutes  [2]
  --quick             1 warm-up + 3 timed steps; tiny, and electra-small at batch 8 only
  --repeat N          run the whole suite N times (round by round) and report each case's spread:
                      the ratio's median, range and rounds at or above 1.0  [1]
  --no-peer           skip the PyTorch peer
  --peer-script PATH  the peer  [../shared/peer/pytorch_electra_step.py]
  --peer-python PATH  the interpreter with torch  [/usr/bin/python3]
  --peer-device D     cpu | cuda: where the peer runs (cuda on a GPU machine)  [cpu]
  --threads N         torch threads for the peer  [2]
  --set KEY=VALUE     override an rtdlab config key for every case (the peer follows the config)
  --seed S            seed of the model and the random batches  [0]
  --out FILE          JSON record  [runs/bench/bench-<timestamp>.json]
  --case-timeout S    kill a case (or peer run) after S seconds  [3600]
  --micro             micro-benchmark the hottest ops at the models' shapes (ms, GFLOP/s)
  --profile           per-kernel (tf.profile) and host-side time of whole steps  [tiny b16, electra-small b8, wasm]
  --help              this text

  Internal: --case runs one case (first config, batch and backend) in this process and prints one JSON line.
`;

/** What the command line asks for. */
export interface BenchOptions {
  mode: "bench" | "case" | "micro" | "profile" | "help";
  configs: string[];
  batches: number[];
  /** null: wasm, plus webgpu on a GPU adapter (decided at run time). */
  backends: BackendName[] | null;
  warmup: number;
  steps: number;
  cpuSteps: number;
  quick: boolean;
  peer: boolean;
  peerScript?: string;
  peerPython?: string;
  peerDevice: "cpu" | "cuda";
  threads: number;
  overrides: Record<string, string>;
  seed: number;
  out?: string;
  caseTimeout: number;
  /** Rounds of the whole suite (--repeat); over 1, the spread of each case's ratio is reported. */
  repeat: number;
  /** Which of configs/batches were given explicitly (quick and profile defaults apply to the others). */
  explicit: { configs: boolean; batches: boolean; warmup: boolean; steps: boolean };
}

const STRING_OPTS = [
  "configs",
  "batches",
  "backends",
  "warmup",
  "steps",
  "cpu-steps",
  "peer-script",
  "peer-python",
  "peer-device",
  "threads",
  "seed",
  "out",
  "case-timeout",
  "repeat",
] as const;

/** Parses `argv` into {@link BenchOptions}; throws an Error whose message says what is wrong. */
export function parseBenchArgs(argv: string[]): BenchOptions {
  const { values } = parseCliArgs(argv, {
    ...Object.fromEntries(STRING_OPTS.map((k) => [k, { type: "string" as const }])),
    set: { type: "string", multiple: true },
    quick: { type: "boolean" },
    "no-peer": { type: "boolean" },
    case: { type: "boolean" },
    micro: { type: "boolean" },
    profile: { type: "boolean" },
    help: { type: "boolean" },
  }) as { values: Record<string, string | boolean | string[] | undefined> };
  const str = (k: string) => values[k] as string | undefined;
  const modes = (["case", "micro", "profile"] as const).filter((m) => values[m]);
  if (modes.length > 1) throw new Error(`--${modes[0]} and --${modes[1]} cannot be combined`);
  const mode = values.help ? "help" : modes[0] ?? "bench";

  const quick = Boolean(values.quick);
  const configs = list(str("configs"), "configs") ?? ["tiny", "electra-small"];
  for (const c of configs) {
    if (!PRESETS[c]) {
      throw new Error(`--configs: unknown config "${c}"; known configs: ${Object.keys(PRESETS).join(", ")}`);
    }
  }
  const batches = (list(str("batches"), "batches") ?? ["8", "32"]).map((b) => int("batches", b, 1));
  let backends: BackendName[] | null = null;
  const be = list(str("backends"), "backends");
  if (be) {
    for (const b of be) {
      if (!BACKENDS.includes(b as BackendName)) {
        throw new Error(`--backends: unknown backend "${b}"; valid backends: ${BACKENDS.join(", ")}`);
      }
    }
    backends = be as BackendName[];
  }
  const overrides: Record<string, string> = {};
  for (const kv of (values.set as string[] | undefined) ?? []) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new Error(`--set needs KEY=VALUE, got "${kv}"`);
    overrides[kv.slice(0, i)] = kv.slice(i + 1);
  }
  if ("batchSize" in overrides) throw new Error(`--set batchSize: use --batches instead`);
  const num = (k: string, dflt: number, min: number) => str(k) === undefined ? dflt : int(k, str(k)!, min);
  const opts: BenchOptions = {
    mode,
    configs,
    batches,
    backends,
    warmup: num("warmup", quick ? 1 : 2, 0),
    steps: num("steps", quick ? 3 : 5, 1),
    cpuSteps: num("cpu-steps", 2, 1),
    quick,
    peer: !values["no-peer"],
    peerScript: str("peer-script"),
    peerPython: str("peer-python"),
    peerDevice: peerDevice(str("peer-device")),
    threads: num("threads", 2, 1),
    overrides,
    seed: num("seed", 0, 0),
    out: str("out"),
    caseTimeout: num("case-timeout", 3600, 1),
    repeat: num("repeat", 1, 1),
    explicit: {
      configs: str("configs") !== undefined,
      batches: str("batches") !== undefined,
      warmup: str("warmup") !== undefined,
      steps: str("steps") !== undefined,
    },
  };
  if (opts.repeat > 1 && (mode === "case" || mode === "micro" || mode === "profile")) {
    throw new Error(`--repeat repeats the suite; it does not apply to --${mode}`);
  }
  if (mode === "case" && (configs.length !== 1 || batches.length !== 1 || (backends?.length ?? 1) !== 1)) {
    throw new Error("--case runs one case: give exactly one --configs, one --batches and one --backends");
  }
  return opts;
}

function peerDevice(v: string | undefined): "cpu" | "cuda" {
  if (v === undefined || v === "cpu" || v === "cuda") return v ?? "cpu";
  throw new Error(`--peer-device must be cpu or cuda, got "${v}"`);
}

function list(v: string | undefined, name: string): string[] | undefined {
  if (v === undefined) return undefined;
  const items = v.split(",").map((s) => s.trim()).filter((s) => s);
  if (items.length === 0) throw new Error(`--${name} needs a comma-separated list, got "${v}"`);
  return items;
}

function int(name: string, v: string, min: number): number {
  return intOption(name, v, min)!;
}

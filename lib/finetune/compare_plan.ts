/**
 * The plan of `deno task compare` (tasks/compare.ts): its presets and its command line. Everything that
 * decides a comparison's numbers is in a {@link Plan}, stored as the run's plan.json.
 *
 * @module
 */

import { configFrom, SHARING_MODES } from "../config.ts";
import { PACKAGED_TASKS } from "../tasks/mod.ts";
import { taskSlug } from "./run.ts";
import { intOption, parseCliArgs } from "../util/cli.ts";

/** Per-task fine-tuning settings. */
export interface TaskPlan {
  task: string;
  maxTrain?: number;
  maxEval?: number;
  maxLength?: number;
  epochs?: number;
}

/** Everything that decides the comparison's numbers (stored as plan.json; a re-run must match it). */
export interface Plan {
  config: string;
  modes: string[];
  steps: number;
  batch: number;
  seqLength: number;
  corpus: string;
  pretrainSeeds: number[];
  finetuneSeeds: number[];
  tasks: TaskPlan[];
  scratch: boolean;
  backend: string;
  lr: number;
  batchFt: number;
  set: string[];
}

// The regime map (notebook 06): on `synthetic:echo` the `deberta-mini` discriminators learn in minutes
// under every mode, so the downstream comparison reads encoders that have the RTD skill. Its tasks are
// the echo language's own (an English task would be all [UNK] to its vocabulary).
const ECHO_TASKS: TaskPlan[] = [{ task: "echo-intact", maxLength: 16 }, {
  task: "echo-reflexive",
  maxLength: 16,
}];

/** `--quick`: deberta-mini on synthetic:echo, ~5 min on 2 cores. */
export const QUICK: Omit<Plan, "backend"> = {
  config: "deberta-mini",
  modes: [...SHARING_MODES],
  steps: 1200,
  batch: 8,
  seqLength: 128,
  corpus: "synthetic:echo",
  pretrainSeeds: [0],
  finetuneSeeds: [0, 1, 2],
  tasks: ECHO_TASKS,
  scratch: true,
  lr: 1e-3,
  batchFt: 32,
  set: [],
};

/** `--medium`: the quick preset with 3 pre-training seeds, ~30-50 min on 2 cores. */
export const MEDIUM: Omit<Plan, "backend"> = {
  ...QUICK,
  steps: 2400,
  pretrainSeeds: [0, 1, 2],
  finetuneSeeds: [0, 1, 2],
  tasks: structuredClone(ECHO_TASKS),
};

/** The default preset: tiny on Gutenberg, 6 English tasks, overnight on 2 cores. */
export const FULL: Omit<Plan, "backend"> = {
  config: "tiny",
  modes: [...SHARING_MODES],
  steps: 2000,
  batch: 16,
  seqLength: 128,
  corpus: "gutenberg",
  pretrainSeeds: [0, 1, 2],
  finetuneSeeds: [0, 1, 2],
  // Caps keep one (encoder, seed) pass over the six tasks near half an hour of one core.
  tasks: [
    { task: "sentiment-imdb", maxLength: 64 },
    { task: "sentiment-amazon", maxLength: 64 },
    { task: "sentiment-yelp", maxLength: 64 },
    { task: "spam", maxTrain: 1000, maxLength: 96 },
    { task: "brown-genre", maxTrain: 2000, maxEval: 800, maxLength: 96 },
    { task: "wordnet-supersense", maxTrain: 5000, maxEval: 1500, maxLength: 48 },
  ],
  scratch: true,
  lr: 1e-3,
  batchFt: 32,
  set: [],
};

/** `--gpu`: one GPU for about an hour. */
// One GPU for about an hour (`--gpu`, or `--backend cuda` without another preset): ELECTRA-Small at the
// paper's batch on all the natural text the packages ship (~28M characters, ~7M tokens). Sized from the
// H200's measured electra-small b128 step (0.15-0.17 s before the fused kernels; lib/backend/cuda/GPU_RUNS.md):
// 4 × 4,000 steps ≈ 40-45 min, fine-tuning electra-small ≈ 15 min more (an estimate: not yet timed on a GPU).
export const GPU: Omit<Plan, "backend"> = {
  ...FULL,
  config: "electra-small",
  steps: 4000,
  batch: 128,
  corpus: "gutenberg+brown+sotu",
  pretrainSeeds: [0],
  tasks: structuredClone(FULL.tasks),
  // ELECTRA-Small's fine-tuning learning rate.
  lr: 3e-4,
  // 400 warm-up steps, not the paper's 10,000: without bias correction Adam's first updates are several
  // times larger (see the `tiny` preset in lib/config.ts).
  set: ["biasCorrection=true"],
};

/** `deno task compare --help`. */
export const COMPARE_HELP =
  `deno task compare — equal-compute comparison of mlm / es / nes / gdes on downstream tasks

  --quick                 ~5 min on 2 cores: ${QUICK.config} on ${QUICK.corpus}, ${QUICK.steps} steps × batch ${QUICK.batch} × seq ${QUICK.seqLength},
                          1 pre-training seed, ${QUICK.finetuneSeeds.length} fine-tuning seeds, ${
    QUICK.tasks.map((t) => t.task).join(", ")
  }
  --medium                ~30-50 min on 2 cores: the same at ${MEDIUM.steps} steps, pre-training seeds ${
    MEDIUM.pretrainSeeds.join(",")
  }
  (default preset)        overnight (roughly 8-14 h on 2 cores): ${FULL.steps} steps × batch ${FULL.batch} × seq ${FULL.seqLength}, pre-training seeds ${
    FULL.pretrainSeeds.join(",")
  }, fine-tuning seeds ${FULL.finetuneSeeds.join(",")}, the ${FULL.tasks.length} English tasks
  --gpu                   ~1 h on one GPU (backend cuda): ${GPU.config}, ${GPU.steps} steps × batch ${GPU.batch} × seq ${GPU.seqLength} on ${GPU.corpus}, pre-training seed ${
    GPU.pretrainSeeds.join(",")
  }, fine-tuning seeds ${
    GPU.finetuneSeeds.join(",")
  }, the ${GPU.tasks.length} English tasks, one job at a time (also the preset of --backend cuda when no other is given)
  --name NAME             results go to runs/compare/NAME  [quick | medium | gpu | default]
  --modes LIST            sharing modes  [${SHARING_MODES.join(",")}]
  --steps N  --batch B  --seq-length L  --config NAME  --corpus NAME   pre-training (same for every mode;
                          a --config other than the preset's brings its own corpus unless --corpus is given)
  --pretrain-seeds LIST   e.g. 0,1,2          --finetune-seeds LIST   e.g. 0,1,2
  --tasks LIST            packaged names (${Object.keys(PACKAGED_TASKS).join(", ")}) or data files
  --max-train N  --max-eval N  --max-length N  --epochs N   caps/settings for every task
  --lr X  --ft-batch B    fine-tuning learning rate and batch
  --no-scratch            skip the no-pre-training control
  --set KEY=VALUE         extra pre-training config override (repeatable; same for every mode)
  --parallel N            subprocesses at a time  [cores; 1 on cuda: one GPU]
  --backend B             wasm | cpu | webgpu | tensorflow | cuda  [wasm; cuda with --gpu]
  --report-only           write results.{md,json} (and report.html) from the pieces finished so far; run nothing
  --force                 accept settings that differ from the folder's plan.json (finished pieces of the same settings are kept, the others run again)
  --help                  this text
`;

/** What compare's command line asks for: the plan and how to run it. */
export interface CompareArgs {
  plan: Plan;
  /** Preset the plan starts from: quick, medium, gpu or default. */
  preset: string;
  /** Results folder name (runs/compare/NAME). */
  name: string;
  /** Subprocesses at a time. */
  parallel: number;
  force: boolean;
  reportOnly: boolean;
  /** The settings flags given, which --report-only does not use (it reports the folder's plan.json). */
  settingsGiven: string[];
  help: boolean;
}

/** The flags that change a comparison's plan (the presets pick its --name as well, so they are not here). */
const SETTINGS_FLAGS = [
  "modes",
  "steps",
  "batch",
  "seq-length",
  "config",
  "corpus",
  "pretrain-seeds",
  "finetune-seeds",
  "tasks",
  "max-train",
  "max-eval",
  "max-length",
  "epochs",
  "lr",
  "ft-batch",
  "no-scratch",
  "set",
];

/** `--name`: one folder under runs/compare/ (not empty, no path separators, not `.` or `..`). */
function folderName(name: string): string {
  if (name.trim() === "" || /[\\/]/.test(name) || name === "." || name === "..") {
    throw new Error(
      `--name ${JSON.stringify(name)}: give one folder name (the results go to runs/compare/NAME)`,
    );
  }
  return name;
}

/** Parses compare's command line into a plan; throws an Error naming the bad option. */
export function parseCompareArgs(argv: string[], cores = navigator.hardwareConcurrency ?? 2): CompareArgs {
  const { values } = parseCliArgs(argv, {
    quick: { type: "boolean", default: false },
    medium: { type: "boolean", default: false },
    gpu: { type: "boolean", default: false },
    name: { type: "string" },
    modes: { type: "string" },
    steps: { type: "string" },
    batch: { type: "string" },
    "seq-length": { type: "string" },
    config: { type: "string" },
    corpus: { type: "string" },
    "pretrain-seeds": { type: "string" },
    "finetune-seeds": { type: "string" },
    tasks: { type: "string" },
    "max-train": { type: "string" },
    "max-eval": { type: "string" },
    "max-length": { type: "string" },
    epochs: { type: "string" },
    lr: { type: "string" },
    "ft-batch": { type: "string" },
    "no-scratch": { type: "boolean", default: false },
    set: { type: "string", multiple: true },
    parallel: { type: "string" },
    backend: { type: "string" },
    force: { type: "boolean", default: false },
    "report-only": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  });
  const intArg = (k: string, v: string | undefined, min = 1) => intOption(k, v, min);
  // An empty list would run nothing (or crash later); a repeat would train two jobs into one folder.
  const listArg = <T>(k: string, v: string | undefined, parse: (s: string) => T): T[] | undefined => {
    if (v === undefined) return undefined;
    const items = v.split(",").map((s) => s.trim()).filter(Boolean).map(parse);
    if (items.length === 0) throw new Error(`--${k} needs at least one value, got "${v}"`);
    const repeated = items.find((x, i) => items.indexOf(x) !== i);
    if (repeated !== undefined) throw new Error(`--${k}: "${repeated}" is repeated`);
    return items;
  };
  const seedsArg = (k: string, v: string | undefined) => listArg(k, v, (s) => intArg(k, s, 0)!);

  const named = (["quick", "medium", "gpu"] as const).filter((k) => values[k]);
  if (named.length > 1) throw new Error(`--${named.join(" and --")} are presets: give one`);
  if (values.gpu && values.backend !== undefined && values.backend !== "cuda") {
    throw new Error(`--gpu is the preset for --backend cuda, not ${values.backend}`);
  }
  const backend = values.backend ?? (values.gpu ? "cuda" : "wasm");
  const preset = values.quick ? "quick" : values.medium ? "medium" : values.gpu ||
      (backend === "cuda" && named.length === 0)
    ? "gpu"
    : "default";
  const base = { quick: QUICK, medium: MEDIUM, gpu: GPU, default: FULL }[preset];
  const plan: Plan = {
    ...structuredClone(base),
    backend,
    set: [...base.set, ...(values.set ?? [])],
  };
  plan.modes = listArg("modes", values.modes, String) ?? plan.modes;
  for (const m of plan.modes) {
    if (!(SHARING_MODES as readonly string[]).includes(m)) {
      throw new Error(`unknown mode "${m}" (${SHARING_MODES.join(", ")})`);
    }
  }
  plan.steps = intArg("steps", values.steps) ?? plan.steps;
  plan.batch = intArg("batch", values.batch) ?? plan.batch;
  plan.seqLength = intArg("seq-length", values["seq-length"], 4) ?? plan.seqLength;
  plan.config = values.config ?? plan.config;
  // Another config than the preset's brings its own corpus (deberta-mini's synthetic:echo), as
  // `deno task pretrain` does; restating the preset's own keeps the preset's corpus.
  plan.corpus = values.corpus ??
    (values.config && values.config !== base.config ? configFrom(values.config).corpus : plan.corpus);
  plan.pretrainSeeds = seedsArg("pretrain-seeds", values["pretrain-seeds"]) ?? plan.pretrainSeeds;
  plan.finetuneSeeds = seedsArg("finetune-seeds", values["finetune-seeds"]) ?? plan.finetuneSeeds;
  const taskList = listArg("tasks", values.tasks, String);
  if (taskList) plan.tasks = taskList.map((t) => plan.tasks.find((p) => p.task === t) ?? { task: t });
  for (const t of plan.tasks) {
    t.maxTrain = intArg("max-train", values["max-train"]) ?? t.maxTrain;
    t.maxEval = intArg("max-eval", values["max-eval"]) ?? t.maxEval;
    t.maxLength = intArg("max-length", values["max-length"], 4) ?? t.maxLength;
    t.epochs = intArg("epochs", values.epochs) ?? t.epochs;
  }
  if (values.lr !== undefined) {
    plan.lr = Number(values.lr);
    if (!(plan.lr > 0)) throw new Error(`--lr needs a positive number, got "${values.lr}"`);
  }
  plan.batchFt = intArg("ft-batch", values["ft-batch"]) ?? plan.batchFt;
  if (values["no-scratch"]) plan.scratch = false;
  if (new Set(plan.tasks.map((t) => taskSlug(t.task))).size !== plan.tasks.length) {
    throw new Error("two tasks share a name");
  }
  return {
    plan,
    preset,
    name: folderName(values.name ?? preset),
    // One GPU: its runs take turns (two pre-training runs at batch 128 would share its memory and time).
    parallel: intArg("parallel", values.parallel) ?? (backend === "cuda" ? 1 : Math.max(1, cores)),
    force: values.force!,
    reportOnly: values["report-only"]!,
    settingsGiven: SETTINGS_FLAGS.filter((k) => {
      const v = (values as Record<string, unknown>)[k];
      return Array.isArray(v) ? v.length > 0 : v !== undefined && v !== false;
    }).map((k) => `--${k}`),
    help: values.help!,
  };
}

/**
 * `deno task pretrain`'s flags for a new pre-training run of `mode` with seed `seed` into `out` under `plan`
 * (before `--steps`): what `deno task compare` starts, and what its finished runs are checked against.
 */
export function pretrainArgs(plan: Plan, mode: string, seed: number, out: string): string[] {
  return [
    "--config",
    plan.config,
    "--sharing",
    mode,
    "--out",
    out,
    "--seed",
    String(seed),
    "--corpus",
    plan.corpus,
    "--set",
    `batchSize=${plan.batch}`,
    "--set",
    `seqLength=${plan.seqLength}`,
    "--set",
    `warmupSteps=${Math.max(1, Math.round(plan.steps / 10))}`,
    "--set",
    `checkpointEvery=${Math.max(50, Math.round(plan.steps / 10))}`,
    "--set",
    // The demo's cadence (every 5 of 1,200 steps): a comparison at the demo's settings logs the same steps,
    // so its headline numbers (means over the last tenth of the logged steps) are the demo's.
    `logEvery=${Math.max(1, Math.round(plan.steps / 240))}`,
    ...plan.set.flatMap((kv) => ["--set", kv]),
  ];
}

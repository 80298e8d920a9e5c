/**
 * Compacts `deno task sweep` folders into the small JSON files notebook 06_regimes reads when the sweeps
 * themselves are not on this machine (each sweep takes minutes to hours on two cores):
 *
 *   deno run -A data/regimes/build.ts map1 map2 ...      # runs/sweep/NAME → data/regimes/NAME.json
 *   deno run -A data/regimes/build.ts --runs NAME DIR... # `deno task pretrain` runs, each evaluated with
 *                                                        # `deno task evaluate --run DIR --out DIR/eval.json`
 *                                                        # (and, where they exist, probed with
 *                                                        # `deno task probe --run DIR --out DIR/probe.json`
 *                                                        # and judged on unseen text with `deno task
 *                                                        # evaluate --run DIR --unseen --out
 *                                                        # DIR/eval-unseen.json`)
 *   deno run -A data/regimes/build.ts --add NAME DIR...  # the same, into the NAME.json built before: its
 *                                                        # points stay, a run replaces its own group's
 *   deno run -A data/regimes/build.ts --cross NAME       # runs/sweep/NAME → data/regimes/NAME-cross.json:
 *                                                        # every discriminator on every generator of the
 *                                                        # runs that differ only in `sharing`
 *   deno run -A data/regimes/build.ts --cross-runs NAME DIR... # runs of `deno task pretrain` crossed by sharing
 *                                                        # mode, seed by seed → data/regimes/NAME-cross.json
 *                                                        # (--unseen N [--part P]: on N sequences of the
 *                                                        # text their corpus cap left out, not held out;
 *                                                        # --replicates: each reading's bootstrap replicates
 *                                                        # kept, for contrasts' paired errors)
 *   deno run -A data/regimes/build.ts --cross NAME --by K1,K2 [--tag T]
 *                                                        # the same among runs that differ only in K1, K2
 *                                                        # → data/regimes/NAME-cross-T.json (T: K1)
 *
 * Per point: the swept values, the T = 1 evaluation (D's AUC, RTD gain, base rate, MLM loss, G accuracy)
 * and, per run, the logged training curve (step, D's AUC, RTD gain, MLM loss, G accuracy). With `--runs`
 * each run is a point of its own, its values the run's sharing mode, steps and seed.
 *
 * @module
 */
import { join } from "node:path";
import { type MetricsRecord, readMetrics, savedRunConfig } from "../../lib/train/run.ts";
import { writeJsonAtomic } from "../../lib/io/atomic.ts";
import { notLearned, tailMean } from "../../lib/train/rtd_metrics.ts";
import type { RunProbe } from "../../lib/probes/run_probe.ts";
import { aucText, crossKeys, crossSweep, type SweepCross, type SweepRun } from "../../lib/sweep/cross.ts";
import type { EvalSettings } from "../../lib/sweep/runs.ts";
import { EVALUATE_BATCH_SIZE, EVALUATE_TRAIN_SEQUENCES } from "../../lib/train/evaluate.ts";

const root = new URL("../../runs/sweep/", import.meta.url).pathname;
const here = new URL(".", import.meta.url).pathname;

/** A sweep's run folder: the sweep records them relative to the project root. */
function runFolder(dir: string): string {
  return dir.startsWith("/") ? dir : new URL(`../../${dir}`, import.meta.url).pathname;
}

/** A logged training curve as rows of `curve_columns`, rounded to 4 decimals. */
function curve(m: MetricsRecord[]): number[][] {
  return m.map((r) =>
    [
      r.step,
      r.disc_auc ?? NaN,
      r.rtd_gain ?? NaN,
      r.loss_mlm,
      r.gen_acc ?? NaN,
    ].map((x) => Math.round(x * 1e4) / 1e4)
  );
}

/**
 * About `n` of a run's logged rows (at least `n`), spread evenly over log(step), with the first and the last: these runs
 * are drawn against tokens on a log axis, where keeping every k-th row would leave a long run's first
 * thousand steps (the early peak and fall) a handful of points.
 */
export function logThinned<T extends { step: number }>(m: T[], n: number): T[] {
  if (m.length <= n) return m;
  const lo = Math.log(m[0].step), hi = Math.log(m[m.length - 1].step);
  // Early targets fall on the same logged row: more targets until n distinct rows are kept.
  for (let targets = n;; targets = Math.ceil(targets * 1.1)) {
    const keep = new Set([0, m.length - 1]);
    let j = 0;
    for (let k = 0; k < targets; k++) {
      const target = Math.exp(lo + (k / (targets - 1)) * (hi - lo));
      while (j < m.length - 1 && m[j + 1].step <= target) j++;
      keep.add(j);
    }
    // (Repeated steps could keep it under n for ever: past a bound, what is kept is what there is.)
    if (keep.size >= n || targets > 64 * m.length) return [...keep].sort((a, b) => a - b).map((i) => m[i]);
  }
}

/** A run's probe.json, compacted (null when it has none); it must be of the run's last step, as eval.json is. */
async function readProbe(dir: string, steps: number, evalAuc: number | null) {
  let p: RunProbe;
  try {
    p = JSON.parse(await Deno.readTextFile(join(dir, "probe.json")));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  if (p.step !== steps) throw new Error(`${dir}: probe.json is of step ${p.step}, not ${steps}`);
  // Both score D on the same sequences with the same seed: a mismatch means one of them is stale.
  if (p.evaluation.discAuc !== evalAuc) {
    throw new Error(`${dir}: probe.json's AUC ${p.evaluation.discAuc} is not eval.json's ${evalAuc}`);
  }
  const t = p.token;
  return {
    batches: p.batches,
    batchSize: p.batchSize,
    dropout: p.dropout,
    cos: t.cos.mean,
    cosSe: t.cos.se,
    opposedShare: t.opposedShare.mean,
    opposedShareSe: t.opposedShare.se,
    ratio: t.ratio.mean,
    ratioSe: t.ratio.se,
    similarity: p.similarity,
  };
}

/** The `deno task evaluate` flags, beyond its defaults, that reproduce a reading made with `st`. */
function evaluateFlags(st: Partial<EvalSettings>): string {
  const valued: [string, unknown, unknown][] = [
    ["--seed", st.seed, EVAL_DEFAULTS.seed],
    ["--temperature", st.temperature, EVAL_DEFAULTS.temperature],
    ["--batch", st.batchSize, EVAL_DEFAULTS.batchSize],
    ["--sequences", st.sequences, EVALUATE_TRAIN_SEQUENCES],
  ];
  return valued.filter(([, v, d]) => v !== undefined && v !== d).map(([f, v]) => ` ${f} ${v}`).join("") +
    (st.disallowCorrect ? " --disallow-correct" : "");
}

/**
 * A run's eval-unseen.json (`deno task evaluate --unseen`: text its corpus cap kept out), compacted; null when
 * it has none. It must be of the run's last step.
 */
async function readUnseen(dir: string, steps: number) {
  let u;
  try {
    u = JSON.parse(await Deno.readTextFile(join(dir, "eval-unseen.json")));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  if (u.step !== steps) throw new Error(`${dir}: eval-unseen.json is of step ${u.step}, not ${steps}`);
  if (!u.unseen) throw new Error(`${dir}: eval-unseen.json is not an --unseen evaluation`);
  const flags = evaluateFlags(u.settings ?? {});
  return {
    auc: u.discAuc,
    aucSe: u.discAucSe,
    gain: u.rtdGain,
    gainSe: u.rtdGainSe,
    baseRate: u.baseRate,
    lossMlm: u.lossMlm,
    genAcc: u.genAcc,
    sequences: u.sequences,
    available: u.unseen.available,
    part: u.unseen.part,
    parts: u.unseen.parts,
    flags,
  };
}

/** `deno task evaluate`'s own settings: T = 1, seed 0, its default batch. */
const EVAL_DEFAULTS: EvalSettings = { temperature: 1, seed: 0, batchSize: EVALUATE_BATCH_SIZE };

/**
 * The settings a run's held-out eval.json was made with (temperature, seed, batch, and `--disallow-correct` or,
 * for a run without a held-out set, `--sequences` where the file records them); null where the run has none.
 * An --unseen or --generator-from file there is refused. Files written before 2026-12-07 do not record the
 * last two: a reading made with them is taken for one with the defaults.
 */
export async function evalSettingsOf(dir: string): Promise<EvalSettings | null> {
  let ev;
  try {
    ev = JSON.parse(await Deno.readTextFile(join(dir, "eval.json")));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`${dir}: eval.json: ${(e as Error).message}`);
  }
  if (!ev || typeof ev !== "object") throw new Error(`${dir}: eval.json is not an evaluation`);
  const st = ev.settings ?? {};
  if (ev.unseen || st.unseen || st.generatorFrom) {
    throw new Error(`${dir}: eval.json is not the held-out evaluation of the run's own generator`);
  }
  // Files written before `settings` existed carry the temperature and seed at the top level.
  return {
    temperature: st.temperature ?? ev.temperature ?? EVAL_DEFAULTS.temperature,
    seed: st.seed ?? ev.seed ?? EVAL_DEFAULTS.seed,
    batchSize: st.batchSize ?? EVAL_DEFAULTS.batchSize,
    ...(st.disallowCorrect ? { disallowCorrect: true as const } : {}),
    ...(st.sequences !== undefined ? { sequences: st.sequences } : {}),
  };
}

/** How many sequences the text a run's corpus cap left out packs into (one part of it, if named). */
async function unseenAvailable(dir: string, part: string | undefined): Promise<number> {
  const { unseenSequences } = await import("../../lib/report/trained.ts");
  const { WordPieceTokenizer } = await import("../../lib/text/tokenizer.ts");
  const { config } = savedRunConfig(JSON.parse(await Deno.readTextFile(join(dir, "config.json"))));
  const tokenizer = await WordPieceTokenizer.load(join(dir, "tokenizer.json"));
  return (await unseenSequences(config, tokenizer, { sequences: 1, ...(part === undefined ? {} : { part }) }))
    .unseen.available;
}

/** What `--cross-runs` refuses before any reading (a bad command line, exit 2), unlike a reading that fails. */
export class RefusedRuns extends Error {}

/**
 * `deno task pretrain` runs (not a sweep) crossed by sharing mode, seed by seed (`--cross-runs`): every
 * discriminator on every generator of its seed's runs, with the settings the runs' eval.json files were made with
 * (`deno task evaluate`'s defaults, T = 1, seed 0, batch 16, for a run without one). Refused (RefusedRuns) when
 * the configs differ beyond sharing and seed, or the runs were evaluated with different settings: no one
 * setting would then reproduce every run's own eval.json. Readings run on wasm unless `evaluate` stands in.
 */
export async function crossPretrainRuns(
  name: string,
  dirs: string[],
  opts: Pick<NonNullable<Parameters<typeof crossSweep>[4]>, "evaluate" | "onReading" | "keepReplicates"> & {
    /** Read on this many sequences of the text the runs' corpus cap left out (one part of it), not held out. */
    unseen?: { sequences: number; part?: string };
    /**
     * How many sequences that unseen text packs into, for the first run (their data settings are alike): it
     * throws where there is none (no cap, no such part). Default: packs it (`unseenSequences`); tests stand in.
     */
    unseenAvailable?: (dir: string, part: string | undefined) => Promise<number>;
  } = {},
): Promise<SweepCross & { runs: string[] }> {
  const runs: SweepRun[] = [];
  const others: string[] = [];
  const settings = new Map<string, string[]>(); // each setting → the runs evaluated with it
  for (const dir of dirs) {
    let config;
    try {
      ({ config } = savedRunConfig(JSON.parse(await Deno.readTextFile(join(dir, "config.json")))));
    } catch (e) {
      throw new RefusedRuns(`${dir}: not a finished run's folder (config.json: ${(e as Error).message})`);
    }
    const { sharing, seed, ...rest } = config;
    others.push(JSON.stringify(rest));
    runs.push({ dir, seed, sharing, status: "done", values: { sharing } });
    let found;
    try {
      found = await evalSettingsOf(dir);
    } catch (e) {
      throw new RefusedRuns((e as Error).message);
    }
    // A run without a held-out set is scored on a seeded choice of training sequences: files written before
    // eval.json recorded how many (and a run without eval.json) had the default.
    const { sequences, ...read } = found ?? EVAL_DEFAULTS;
    const key = JSON.stringify(
      config.heldOutSequences > 0 ? read : { ...read, sequences: sequences ?? EVALUATE_TRAIN_SEQUENCES },
    );
    settings.set(key, [...settings.get(key) ?? [], found ? dir : `${dir} (no eval.json: the defaults)`]);
  }
  if (new Set(others).size > 1) {
    throw new RefusedRuns("the runs' configs differ in more than sharing and seed");
  }
  if (settings.size > 1) {
    const list = [...settings].map(([ev, ds]) => `${ds.join(", ")}: ${ev}`).join("; ");
    throw new RefusedRuns(`the runs were evaluated with different settings (${list})`);
  }
  if (opts.unseen) {
    // Once, before any reading: a part that is not there, or more sequences than the text holds, would
    // otherwise fail every reading, or be scored on fewer than the crossing says.
    const available = opts.unseenAvailable ?? unseenAvailable;
    let n;
    try {
      n = await available(dirs[0], opts.unseen.part);
    } catch (e) {
      throw new RefusedRuns(`--unseen: ${(e as Error).message}`);
    }
    if (opts.unseen.sequences > n) {
      throw new RefusedRuns(
        `--unseen ${opts.unseen.sequences}: the text the runs' cap left out${
          opts.unseen.part === undefined ? "" : ` (part ${opts.unseen.part})`
        } packs into ${n.toLocaleString("en")} sequences`,
      );
    }
  }
  const held: EvalSettings = JSON.parse([...settings.keys()][0]);
  // On unseen text the runs' own sampling settings stand; the held-out (or training) sequences do not.
  const { sequences: _, ...sampling } = held;
  const ev: EvalSettings = opts.unseen
    ? { ...sampling, unseen: { part: opts.unseen.part ?? null, sequences: opts.unseen.sequences } }
    : held;
  if (!opts.evaluate) {
    const { initBackend } = await import("../../lib/backend/mod.ts");
    await initBackend("wasm");
  }
  const cross = await crossSweep(name, runs, ["sharing"], ev, opts);
  return { ...cross, runs: dirs };
}

/** A `deno task pretrain` run folder as a regime point: its point, its curve's key and rows, the commands. */
async function runPoint(dir: string) {
  const one = (x: number | null) => ({ mean: x, std: null, n: x === null ? 0 : 1 });
  const { config } = savedRunConfig(JSON.parse(await Deno.readTextFile(join(dir, "config.json"))));
  const ev = JSON.parse(await Deno.readTextFile(join(dir, "eval.json")));
  if (ev.unseen) throw new Error(`${dir}: eval.json is an --unseen evaluation, not the held-out one`);
  if (ev.step !== config.steps) {
    throw new Error(`${dir}: eval.json is of step ${ev.step}, not ${config.steps}`);
  }
  const m = await readMetrics(join(dir, "metrics.jsonl"));
  // A second seed of the same run is a point of its own (seed 0 keeps the plain name).
  const seeded = config.seed === 0 ? "" : `_seed=${config.seed}`;
  const group = `sharing=${config.sharing}_steps=${config.steps}${seeded}`;
  // The tug-of-war at the last checkpoint, where `deno task probe --out DIR/probe.json` measured it.
  const probe = await readProbe(dir, config.steps, ev.discAuc);
  const unseen = await readUnseen(dir, config.steps);
  const point = {
    group,
    label: `sharing=${config.sharing} · steps=${config.steps}${seeded ? ` · seed=${config.seed}` : ""}`,
    values: { sharing: config.sharing, steps: String(config.steps), seed: String(config.seed) },
    runs: 1,
    done: 1,
    auc: one(ev.discAuc),
    gain: one(ev.rtdGain),
    aucSe: ev.discAucSe,
    gainSe: ev.rtdGainSe,
    sequences: ev.sequences,
    baseRate: one(ev.baseRate),
    lossMlm: one(ev.lossMlm),
    genAcc: one(ev.genAcc),
    trainAuc: one(tailMean(m, "disc_auc")),
    tokensPerS: one(tailMean(m, "tokens_per_s")),
    wallS: one(m.at(-1)!.elapsed_s as number),
    tokens: config.steps * config.batchSize * config.seqLength,
    samplingTemperature: config.samplingTemperature,
    learned: notLearned(ev.discAuc, ev.rtdGain).learned ? 1 : 0,
    ...(probe ? { probe } : {}),
    ...(unseen ? { unseen } : {}),
  };
  const command =
    `deno task pretrain --config ${config.preset} --sharing ${config.sharing} --corpus ${config.corpus} ` +
    `--set corpusMaxChars=${config.corpusMaxChars} --set heldOutSequences=${config.heldOutSequences} ` +
    `--steps ${config.steps} --seed ${config.seed} --out ${dir} && deno task evaluate --run ${dir}` +
    `${evaluateFlags(ev.settings ?? { seed: ev.seed, temperature: ev.temperature })} --out ${dir}/eval.json` +
    (probe ? ` && deno task probe --run ${dir} --out ${dir}/probe.json` : "") +
    (unseen
      ? ` && deno task evaluate --run ${dir} --unseen --sequences ${unseen.sequences}${
        unseen.part ? ` --part ${unseen.part}` : ""
      }${unseen.flags} --out ${dir}/eval-unseen.json`
      : "");
  return { point, curveKey: `${group}_s${config.seed}`, curve: curve(logThinned(m, 400)), command };
}

/** A regime file built from `deno task pretrain` runs: one point per run, `plan.commands` to re-run them. */
export interface RunsRegime {
  format: "rtdlab-regimes-1";
  name: string;
  built_at: string;
  plan: { commands: string[] };
  swept: string[];
  points: { group: string }[];
  curve_columns: string[];
  curves: Record<string, number[][]>;
}

/**
 * One point per `deno task pretrain` run folder, from its config.json, metrics.jsonl and eval.json. With a
 * `base` (a file built from runs before), its points stay and each run replaces the point of its own group
 * (same mode, steps and seed) or is added after them: runs whose folders are gone need not be re-run.
 */
export async function buildFromRuns(name: string, dirs: string[], base?: RunsRegime): Promise<RunsRegime> {
  if (base && !base.plan?.commands) {
    throw new Error(
      `data/regimes/${name}.json was built from a sweep, not from runs: --add needs a --runs file`,
    );
  }
  const points = [...(base?.points ?? [])], commands = [...(base?.plan.commands ?? [])];
  const curves: Record<string, number[][]> = { ...(base?.curves ?? {}) };
  for (const dir of dirs) {
    const run = await runPoint(dir);
    const at = points.findIndex((p) => p.group === run.point.group);
    if (at >= 0) {
      points[at] = run.point;
      commands[at] = run.command;
    } else {
      points.push(run.point);
      commands.push(run.command);
    }
    curves[run.curveKey] = run.curve;
  }
  return {
    format: "rtdlab-regimes-1",
    name,
    built_at: new Date().toISOString(),
    plan: { commands },
    swept: ["sharing", "steps", "seed"],
    points,
    curve_columns: ["step", "disc_auc", "rtd_gain", "loss_mlm", "gen_acc"],
    curves,
  };
}

// A script (the module can also be imported, for logThinned and buildFromRuns).
/**
 * Every discriminator of sweep NAME scored on the replacements of every generator among the runs that differ
 * from it only in the keys `by` (lib/sweep/cross.ts), with the sweep's own evaluation settings, on wasm.
 */
async function buildCross(name: string, by: string[]) {
  const { initBackend } = await import("../../lib/backend/mod.ts");
  await initBackend("wasm");
  const results = JSON.parse(await Deno.readTextFile(join(root, name, "results.json")));
  const cross = await crossSweep(name, results.runs as SweepRun[], by, results.plan.eval, {
    dirOf: runFolder,
    onReading: (grp, r, done, total) =>
      console.error(
        `${name} ${JSON.stringify(grp.values)} s${grp.seed}: D ${r.d} on G ${r.g}: ` +
          `${r.error ? `failed: ${r.error}` : `AUC ${aucText(r.auc)}`} (${done}/${total})`,
      ),
  });
  const failed = cross.groups.flatMap((g) => g.cross).filter((r) => r.error);
  if (failed.length) throw new Error(`${failed.length} reading(s) failed, e.g. ${failed[0].error}`);
  // The shipped files keep the sweep's plan beside the readings.
  return { ...cross, plan: results.plan };
}

if (import.meta.main) {
  if (Deno.args[0] === "--cross") {
    // --cross NAME... [--by KEY,KEY --tag TAG]: by sharing into NAME-cross.json, by other keys into
    // NAME-cross-TAG.json (TAG: the first key, unless given).
    const { parseArgsOrExit } = await import("../../lib/util/cli.ts");
    const a = parseArgsOrExit({
      args: Deno.args.slice(1),
      options: { by: { type: "string" }, tag: { type: "string" } },
      allowPositionals: true,
    });
    const by = crossKeys((a.values.by ?? "sharing").split(","));
    const tag = a.values.tag ?? (by.length === 1 && by[0] === "sharing" ? "" : by[0]);
    if (a.positionals.length === 0 || by.length === 0) {
      console.error("usage: build.ts --cross NAME... [--by KEY,KEY] [--tag TAG]");
      Deno.exit(2);
    }
    for (const name of a.positionals) {
      let out;
      try {
        out = await buildCross(name, by);
      } catch (e) {
        console.error(`error: ${name}: ${(e as Error).message}`);
        Deno.exit(1);
      }
      const file = `${name}-cross${tag ? `-${tag}` : ""}.json`;
      await writeJsonAtomic(join(here, file), out);
      console.error(`data/regimes/${file}: ${out.groups.length} groups`);
    }
    Deno.exit(0);
  }
  if (Deno.args[0] === "--cross-runs") {
    // --cross-runs NAME DIR...: → data/regimes/NAME-cross.json (crossPretrainRuns). On another machine's BLAS
    // kernels a run's own reading can differ from its eval.json in the 4th decimal.
    // With --unseen N [--part P]: on N sequences of the text the runs' corpus cap left out, not held out.
    const { parseArgsOrExit, intOption } = await import("../../lib/util/cli.ts");
    const a = parseArgsOrExit({
      args: Deno.args.slice(1),
      options: { unseen: { type: "string" }, part: { type: "string" }, replicates: { type: "boolean" } },
      allowPositionals: true,
    });
    const [name, ...dirs] = a.positionals;
    if (!name || dirs.length < 2 || (a.values.part !== undefined && a.values.unseen === undefined)) {
      console.error(
        "usage: build.ts --cross-runs NAME DIR DIR... [--unseen SEQUENCES [--part PART]] [--replicates]",
      );
      Deno.exit(2);
    }
    let unseen;
    try {
      unseen = a.values.unseen === undefined ? undefined : {
        sequences: intOption("unseen", a.values.unseen, 1)!,
        ...(a.values.part !== undefined ? { part: a.values.part } : {}),
      };
    } catch (e) {
      console.error(`error: --cross-runs: ${(e as Error).message}`);
      Deno.exit(2);
    }
    let cross;
    try {
      cross = await crossPretrainRuns(name, dirs, {
        unseen,
        keepReplicates: a.values.replicates,
        onReading: (_g, r, done, total) =>
          console.error(
            `${name}: D ${r.d} on G ${r.g}: ${r.error ?? `AUC ${aucText(r.auc)}`} (${done}/${total})`,
          ),
      });
    } catch (e) {
      if (!(e instanceof RefusedRuns)) throw e;
      console.error(`error: --cross-runs: ${e.message}`);
      Deno.exit(2);
    }
    if (cross.groups.some((g) => g.cross.some((r) => r.error))) Deno.exit(1);
    await writeJsonAtomic(join(here, `${name}-cross.json`), cross);
    console.error(`data/regimes/${name}-cross.json: ${cross.groups.length} groups`);
    Deno.exit(0);
  }
  if (Deno.args[0] === "--runs" || Deno.args[0] === "--add") {
    const [name, ...dirs] = Deno.args.slice(1);
    if (!name || dirs.length === 0) throw new Error(`usage: build.ts ${Deno.args[0]} NAME DIR...`);
    const file = join(here, `${name}.json`);
    const base = Deno.args[0] === "--add" ? JSON.parse(await Deno.readTextFile(file)) : undefined;
    const out = await buildFromRuns(name, dirs, base);
    await writeJsonAtomic(file, out);
    console.error(`data/regimes/${name}.json: ${out.points.length} runs`);
    Deno.exit(0);
  }

  for (const name of Deno.args) {
    const results = JSON.parse(await Deno.readTextFile(join(root, name, "results.json")));
    const curves: Record<string, number[][]> = {};
    for (const run of results.runs as { dir: string; group: string; seed: number }[]) {
      const dir = runFolder(run.dir);
      try {
        curves[`${run.group}_s${run.seed}`] = curve(await readMetrics(join(dir, "metrics.jsonl")));
      } catch { /* unfinished run */ }
    }
    const out = {
      format: "rtdlab-regimes-1",
      name,
      built_at: new Date().toISOString(),
      plan: results.plan,
      swept: results.swept,
      points: results.points,
      curve_columns: ["step", "disc_auc", "rtd_gain", "loss_mlm", "gen_acc"],
      curves,
    };
    await writeJsonAtomic(join(here, `${name}.json`), out);
    console.error(
      `data/regimes/${name}.json: ${results.points.length} points, ${Object.keys(curves).length} curves`,
    );
  }
}

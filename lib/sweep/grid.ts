/**
 * A sweep's points: `--grid key=v1,v2` (cartesian product), `--point k=v,k=v` (an explicit list) and
 * `--set key=value` (every point) over a base config, expanded into validated run configs and the
 * `deno task pretrain` flags that make each one.
 *
 * Every value is checked against the config before anything runs: an unknown key, a value of the
 * wrong type or one `validateConfig` refuses is an error that names the point and the problem.
 *
 * Order: the `--point` rows (one empty row when there are none) × the `--grid` product, the last
 * `--grid` varying fastest; seeds outermost, so a sweep cut short has every point at the first seed.
 *
 * @module
 */

import { resolve } from "node:path";
import { applyOverrides, configFrom, preset, PRESETS, type RunConfig, validateConfig } from "../config.ts";
import { corpusFingerprint } from "../text/corpus.ts";

/** What a sweep varies and fixes, as given on the command line. */
export interface SweepSpec {
  /** Base preset name, or a JSON file of overrides on `tiny` (as `deno task pretrain --config`). */
  config: string;
  /** `--set` pairs, for every point. */
  sets: [string, string][];
  /** `--grid` keys with their values, in order. */
  grid: { key: string; values: string[] }[];
  /** `--point` rows: key → value. */
  points: Record<string, string>[];
  /** Pre-training seeds; every point runs once per seed. */
  seeds: number[];
  /** Sequences each run keeps out of training for the T = 1 evaluation (`heldOutSequences`). */
  holdout: number;
}

/** One run of a sweep. */
export interface SweepPoint {
  /** Folder name, unique in the sweep: the swept values and the seed, e.g. `learningRate=3e-4_s0`. */
  name: string;
  /** {@link name} without the seed: the runs of one point across seeds share it. */
  group: string;
  /** For people: `learningRate=3e-4 · vocabSize=2048` ("base" when nothing is swept). */
  label: string;
  /** The swept keys and the values as spelled on the command line. */
  values: Record<string, string>;
  seed: number;
  /** The resolved, validated config the run will have (vocabSize: the requested one). */
  config: RunConfig;
  /** `deno task pretrain` flags that make this run (without `--out`). */
  args: string[];
}

/** Keys the sweep sets itself, with the flag to use instead. */
const RESERVED: Record<string, string> = {
  seed: "--seeds",
  heldOutSequences: "--holdout",
};

/** The key that picks the base preset in `--grid` and `--point` (not a config field to set). */
export const PRESET_KEY = "preset";

/** Splits `key=value` (the first `=`); throws naming the flag when there is no key. */
export function splitAssignment(flag: string, text: string): [string, string] {
  const i = text.indexOf("=");
  if (i <= 0) throw new Error(`${flag} needs KEY=VALUE, got "${text}"`);
  return [text.slice(0, i).trim(), text.slice(i + 1).trim()];
}

/** Parses `--grid key=v1,v2,...`: the key and its distinct, non-empty values. */
export function parseGrid(text: string): { key: string; values: string[] } {
  const [key, list] = splitAssignment("--grid", text);
  const values = list.split(",").map((v) => v.trim());
  if (values.length === 0 || values.some((v) => v === "")) {
    throw new Error(`--grid ${key}: empty value in "${list}" (give comma-separated values, e.g. ${key}=1,2)`);
  }
  // Numbers compare as numbers: 1e-3 and 0.001 would train the same point twice.
  const seen = new Map<string, string>();
  for (const v of values) {
    const id = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(v) ? String(Number(v)) : v;
    const earlier = seen.get(id);
    if (earlier !== undefined) {
      throw new Error(
        `--grid ${key}: value "${v}" is repeated${earlier === v ? "" : ` ("${earlier}" is the same number)`}`,
      );
    }
    seen.set(id, v);
  }
  return { key, values };
}

/** Parses `--point k=v,k2=v2`: one row of an explicit list. */
export function parsePoint(text: string): Record<string, string> {
  const row: Record<string, string> = {};
  for (const part of text.split(",")) {
    const [k, v] = splitAssignment("--point", part.trim());
    if (v === "") throw new Error(`--point "${text}": ${k} has no value`);
    if (k in row) throw new Error(`--point "${text}": ${k} is given twice`);
    row[k] = v;
  }
  return row;
}

/** A value as it may appear in a folder name: letters, digits and `.+=-`; anything else becomes `-`. */
function slug(value: string): string {
  return value.replace(/[^A-Za-z0-9.+=-]+/g, "-").replace(/^-+|-+$/g, "") || "x";
}

/** The bookkeeping keys a sweep derives from `steps` unless given: enough log lines and checkpoints. */
export function derivedSettings(steps: number): Record<string, number> {
  return {
    logEvery: Math.max(1, Math.round(steps / 100)),
    checkpointEvery: Math.max(1, Math.round(steps / 10)),
  };
}

/**
 * Expands a sweep into its runs, each with a validated config. Throws on any problem, naming it:
 * malformed flags, keys the sweep sets itself, a key swept twice or both swept and set, repeated
 * points, unknown keys or presets, bad values, warm-up as long as the run, folder-name clashes.
 */
export function expandSweep(spec: SweepSpec): SweepPoint[] {
  if (spec.seeds.length === 0) throw new Error("--seeds: give at least one seed");
  for (const s of spec.seeds) {
    if (!Number.isInteger(s) || s < 0) throw new Error(`--seeds: "${s}" is not a non-negative integer`);
  }
  if (new Set(spec.seeds).size !== spec.seeds.length) throw new Error("--seeds: a seed is repeated");
  if (!Number.isInteger(spec.holdout) || spec.holdout < 0) {
    throw new Error(`--holdout needs a non-negative integer, got ${spec.holdout}`);
  }
  const setKeys = new Set<string>();
  for (const [k] of spec.sets) {
    if (RESERVED[k]) throw new Error(`--set ${k}: the sweep sets ${k} itself; use ${RESERVED[k]}`);
    if (k === PRESET_KEY) throw new Error(`--set ${k}: use --config to choose the base preset`);
    if (setKeys.has(k)) throw new Error(`--set ${k} is given twice`);
    setKeys.add(k);
  }
  const gridKeys = new Set<string>();
  for (const { key } of spec.grid) {
    if (gridKeys.has(key)) throw new Error(`--grid ${key} is given twice: list all its values in one --grid`);
    gridKeys.add(key);
  }
  const pointKeys = new Set(spec.points.flatMap((p) => Object.keys(p)));
  for (const k of [...gridKeys, ...pointKeys]) {
    if (RESERVED[k]) throw new Error(`${k} cannot be swept with --grid/--point; use ${RESERVED[k]}`);
    if (setKeys.has(k)) throw new Error(`${k} is both swept and fixed with --set: drop one`);
    if (gridKeys.has(k) && pointKeys.has(k)) throw new Error(`${k} is in both --grid and --point: drop one`);
  }
  const rowKeys = new Set<string>();
  for (const p of spec.points) {
    const id = JSON.stringify(Object.entries(p).sort());
    if (rowKeys.has(id)) throw new Error(`--point ${JSON.stringify(p)} is repeated`);
    rowKeys.add(id);
  }

  // Swept keys in first-seen order: --point keys, then --grid keys.
  const swept = [...new Set([...spec.points.flatMap((p) => Object.keys(p)), ...spec.grid.map((g) => g.key)])];
  let combos: Record<string, string>[] = spec.points.length ? spec.points.map((p) => ({ ...p })) : [{}];
  for (const g of spec.grid) combos = combos.flatMap((c) => g.values.map((v) => ({ ...c, [g.key]: v })));

  const base0 = configFrom(spec.config);
  const configFlag = spec.config.endsWith(".json") ? resolve(spec.config) : spec.config;
  const out: SweepPoint[] = [];
  const names = new Map<string, string>();
  for (const seed of spec.seeds) {
    for (const values of combos) {
      const ordered = swept.filter((k) => k in values);
      const label = ordered.map((k) => `${k}=${values[k]}`).join(" · ") || "base";
      let group = ordered.map((k) => `${k}=${slug(values[k])}`).join("_") || "base";
      if (group.length > 120) group = `${group.slice(0, 100)}-${hash(group)}`;
      const name = `${group}_s${seed}`;
      const clash = names.get(name);
      if (clash !== undefined) {
        throw new Error(
          `points "${clash}" and "${label}" would share the folder name "${name}": spell them apart`,
        );
      }
      names.set(name, label);
      out.push(resolvePoint({ spec, base0, configFlag, values, seed, name, group, label }));
    }
  }
  return out;
}

function hash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(36);
}

function resolvePoint(p: {
  spec: SweepSpec;
  base0: RunConfig;
  configFlag: string;
  values: Record<string, string>;
  seed: number;
  name: string;
  group: string;
  label: string;
}): SweepPoint {
  const { spec, values, seed, label } = p;
  const where = `point "${label}"${spec.seeds.length > 1 ? ` (seed ${seed})` : ""}`;
  try {
    let base = p.base0;
    let configFlag = p.configFlag;
    if (PRESET_KEY in values) {
      const name = values[PRESET_KEY];
      if (!PRESETS[name]) {
        throw new Error(`unknown preset "${name}"; known presets: ${Object.keys(PRESETS).join(", ")}`);
      }
      base = preset(name);
      configFlag = name;
    }
    const pairs: [string, string][] = [
      ...spec.sets,
      ...Object.entries(values).filter(([k]) => k !== PRESET_KEY),
    ];
    // vocabSize is set from the tokenizer: with a trained one, sweeping it means the vocabulary trained.
    const vocab = pairs.find(([k]) => k === "vocabSize");
    if (vocab) {
      const tokenizer = pairs.find(([k]) => k === "tokenizer")?.[1] ?? base.tokenizer;
      if (tokenizer !== "trained") {
        throw new Error(
          `vocabSize comes from the tokenizer "${tokenizer}" and cannot be chosen; with tokenizer=trained it ` +
            `sets the vocabulary trained on the corpus (tokenizerVocabSize)`,
        );
      }
      if (pairs.some(([k]) => k === "tokenizerVocabSize")) {
        throw new Error("give vocabSize or tokenizerVocabSize, not both");
      }
      pairs.push(["tokenizerVocabSize", vocab[1]]);
    }
    const overrides: Record<string, unknown> = Object.fromEntries(pairs);
    const given = applyOverrides(base, overrides);
    for (const [k, v] of Object.entries(derivedSettings(given.steps))) {
      if (!(k in overrides)) pairs.push([k, String(v)]);
    }
    pairs.push(["seed", String(seed)], ["heldOutSequences", String(spec.holdout)]);
    const config = validateConfig(applyOverrides(base, Object.fromEntries(pairs)));
    if (config.warmupSteps >= config.steps) {
      throw new Error(
        `warmupSteps ${config.warmupSteps} >= steps ${config.steps}: the learning rate would never reach its ` +
          `peak (add --set warmupSteps=N with N < steps)`,
      );
    }
    const args = ["--config", configFlag, ...pairs.flatMap(([k, v]) => ["--set", `${k}=${v}`])];
    return { name: p.name, group: p.group, label, values: { ...values }, seed, config, args };
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
}

/**
 * Checks that every corpus and tokenizer file the points name exists (cheap: no text is read), so a
 * typo fails before any run starts. Throws naming the first point that has a problem.
 */
export async function checkData(points: SweepPoint[]): Promise<void> {
  const seen = new Set<string>();
  for (const p of points) {
    const c = p.config;
    const key = `${c.corpus}\n${c.tokenizer}`;
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      await corpusFingerprint(c.corpus);
      if (c.tokenizer !== "trained" && c.tokenizer !== "bert-base-uncased") {
        const st = await Deno.stat(c.tokenizer).catch(() => null);
        if (!st?.isFile) {
          throw new Error(`tokenizer "${c.tokenizer}" is not a file (nor "trained"/"bert-base-uncased")`);
        }
      }
    } catch (e) {
      throw new Error(`point "${p.label}": ${(e as Error).message}`);
    }
  }
}

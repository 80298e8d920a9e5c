/**
 * Command-line helpers shared by the tasks: one argument parser wrapper (so `--steps -5` and
 * `--steps=-5` reach the same check), one rule and one message for integer options, and hints that
 * print a `deno task …` command the user can actually run.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { basename, dirname, join, relative, resolve } from "node:path";

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * Joins `--name -5` into `--name=-5` for string options, so a negative number is a value (node's
 * parser would call it an ambiguous option) and the option's own check can refuse it.
 */
export function joinNegativeValues(argv: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const name = a.startsWith("--") && !a.includes("=") ? a.slice(2) : null;
    const next = argv[i + 1];
    if (name && options[name]?.type === "string" && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** Short messages for node's parser errors (its own name the option but run long). */
function parserMessage(e: Error & { code?: string }): string {
  const m = e.message;
  switch (e.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION": {
      const opt = m.match(/Unknown option '([^']+)'/)?.[1];
      return opt ? `unknown option ${opt}` : m;
    }
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE": {
      const opt = m.match(/Option '(--?[\w-]+)/)?.[1];
      if (opt && /argument missing/.test(m)) return `${opt} needs a value`;
      // `--sharing --steps 2` (a forgotten value) or `--out -x` (a value that looks like an option).
      if (opt && /argument is ambiguous/.test(m)) {
        return `${opt} needs a value (one that starts with "-" is written ${opt}=VALUE)`;
      }
      if (opt && /does not take an argument/.test(m)) return `${opt} takes no value`;
      return m;
    }
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL": {
      const arg = m.match(/Unexpected argument '([^']+)'/)?.[1];
      return arg ? `unexpected argument "${arg}"` : m;
    }
    default:
      return m;
  }
}

/**
 * `parseArgs` (strict) over `argv` with negative numbers accepted as option values; a parse error
 * becomes one short line naming the option, followed by "(see --help)".
 */
export function parseCliArgs<O extends Options>(
  argv: string[],
  options: O,
  allowPositionals = false,
): ReturnType<typeof parseArgs<{ options: O; strict: true; allowPositionals: boolean }>> {
  try {
    return parseArgs({ args: joinNegativeValues(argv, options), options, strict: true, allowPositionals });
  } catch (e) {
    throw new Error(`${parserMessage(e as Error)} (see --help)`);
  }
}

/**
 * The first word of `argv` that is neither an option nor a string option's value (`options` says which
 * options take one), or undefined: a run folder given without its flag (`deno task evaluate runs/x`, the
 * likeliest first try) is named back with the flag it needs. After an unknown option it stops (undefined):
 * the word may be that option's value, and the parser names the option.
 */
export function strayArgument(argv: readonly string[], options: Options): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("-")) return a;
    const name = a.startsWith("--") && !a.includes("=") ? a.slice(2) : null;
    if (name !== null && !(name in options)) return undefined;
    // Its value, unless the next word is an option (`--sharing --steps 2`: the parser says --sharing needs one).
    if (name && options[name]?.type === "string" && !argv[i + 1]?.startsWith("--")) i++;
  }
  return undefined;
}

/**
 * The value of integer option `--name`: undefined when absent, else a whole number >= `min` written
 * in decimal digits. Every other value ("-5", "0" when min is 1, "2.5", "1e3", "four", "") gets the
 * same message: `--name needs an integer >= min, got "value"`.
 */
export function intOption(name: string, raw: string | undefined, min: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new Error(`--${name} needs an integer >= ${min}, got "${raw}"`);
  }
  return n;
}

function envVar(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env (a notebook): assume `deno` on PATH
  }
}

/**
 * How the user runs `deno` here: `npx -y deno@VERSION` when this process came from npx (README's
 * set-up, where `deno` is not on the shell's PATH), else `deno`.
 */
export function denoCommand(): string {
  let exec = "";
  try {
    exec = Deno.execPath();
  } catch { /* no --allow-read of the executable: keep the default */ }
  // A deno from npx's cache can still be the one on PATH (a link to it): then plain `deno` works.
  const viaNpx = envVar("npm_command") === "exec" || (/[\\/]_npx[\\/]/.test(exec) && !denoOnPath());
  return viaNpx ? `npx -y deno@${Deno.version.deno}` : "deno";
}

/** Whether the shell's PATH has a `deno` (unknown without the permissions to look: false). */
function denoOnPath(): boolean {
  const dirs = (envVar("PATH") ?? "").split(Deno.build.os === "windows" ? ";" : ":").filter(Boolean);
  const name = Deno.build.os === "windows" ? "deno.exe" : "deno";
  return dirs.some((d) => {
    try {
      return Deno.statSync(`${d}/${name}`).isFile;
    } catch {
      return false;
    }
  });
}

/** A hint's command line, e.g. `taskCommand("pretrain --resume runs/x")` → `deno task pretrain --resume runs/x`. */
export function taskCommand(rest: string): string {
  return `${denoCommand()} task ${rest}`;
}

/**
 * node's `parseArgs(config)` for a task's main module, with negative numbers accepted as values; on a
 * parse error it prints one short line ("error: unknown option --x (see --help)") and exits with 2.
 */
export function parseArgsOrExit<T extends ParseArgsConfig & { options: Options }>(
  config: T,
): ReturnType<typeof parseArgs<T>> {
  try {
    // Same options, other args: the result has the type parseArgs gives `config`.
    return parseArgs({
      ...config,
      args: joinNegativeValues(config.args ?? Deno.args, config.options),
    }) as ReturnType<
      typeof parseArgs<T>
    >;
  } catch (e) {
    console.error(`error: ${parserMessage(e as Error)} (see --help)`);
    Deno.exit(2);
  }
}

/** A run folder's own files and folders, which an `--out` must never replace. */
const RUN_FILES = ["config.json", "tokenizer.json", "metrics.jsonl", "checkpoints", "export", "finetune"];

/** The readings a run folder keeps for `deno task report`, and the task that writes each. */
const RUN_READINGS: Record<string, string> = {
  "eval.json": "evaluate",
  "eval-unseen.json": "evaluate",
  "probe.json": "probe",
};

/**
 * What is wrong with `--out FILE` before any work starts, or null: it must end in `ext`, not be a folder,
 * and not be (or lie inside) one of a run folder's own files — `runDir`'s, or those of any run folder
 * (one with a config.json) it lies in: an answer written there would break that run. A run's readings
 * (eval.json, eval-unseen.json, probe.json) are written only by their own `task` about that run itself:
 * another task's, or another run's, would be reported as that run's.
 */
export function outFileProblem(out: string, ext: string, runDir?: string, task?: string): string | null {
  if (!out.endsWith(ext)) return `--out ${out}: give a file name ending in ${ext}`;
  if (statOrNull(out)?.isDirectory) return `--out ${out} is a folder: give a file name ending in ${ext}`;
  const target = resolve(out);
  const runs = runDir === undefined ? [] : [resolve(runDir)];
  for (const dir of foldersWithConfig(dirname(target))) if (!runs.includes(dir)) runs.push(dir);
  for (const dir of runs) {
    const inRun = relative(dir, target);
    if (inRun.startsWith("..")) continue;
    const first = inRun.split(/[\\/]/)[0];
    const whose = dir === runs[0] && runDir !== undefined ? "the run's" : `run ${shownPath(dir)}'s`;
    if (RUN_FILES.includes(first)) {
      return `--out ${out} would replace ${whose} own ${first}: give another file name`;
    }
    // A run's reading is its own: written by its task about that run, never by another task or of another run.
    const writer = RUN_READINGS[basename(target)];
    const ownRun = runDir !== undefined && dir === resolve(runDir);
    if (
      inRun === basename(target) && task !== undefined && writer !== undefined && (writer !== task || !ownRun)
    ) {
      return `--out ${out} would replace ${whose} ${inRun}, which deno task ${writer}${
        ownRun ? "" : ` --run ${shownPath(dir)}`
      } writes and report reads: give another file name`;
    }
  }
  return null;
}

/** `path` as a message shows it: relative to here when inside it, else absolute. */
function shownPath(path: string): string {
  const r = relative(".", path);
  return r === "" ? "." : r.startsWith("..") ? resolve(path) : r;
}

function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch {
    return null;
  }
}

/** `dir` and the folders above it that hold a config.json (run folders, or model folders), nearest first. */
function foldersWithConfig(dir: string): string[] {
  const found: string[] = [];
  for (let d = resolve(dir);; d = dirname(d)) {
    if (statOrNull(join(d, "config.json"))?.isFile) found.push(d);
    if (dirname(d) === d) return found;
  }
}

/**
 * What is wrong with `--out DIR`, a folder a task writes its files into, or null: not a file, not a run's or
 * a model's folder itself (one holding a config.json), and not among a run folder's own files (its
 * checkpoints/, export/ …) other than those named in `allowed` (a fine-tune's place: finetune/).
 */
export function outFolderProblem(out: string, allowed: readonly string[] = []): string | null {
  if (statOrNull(out)?.isFile) return `--out ${out} is a file: give a folder for the files`;
  const target = resolve(out);
  for (const dir of foldersWithConfig(target)) {
    const inside = relative(dir, target);
    if (inside === "") {
      return `--out ${out} holds a run or a model (config.json): give a folder of its own`;
    }
    const first = inside.split(/[\\/]/)[0];
    if (RUN_FILES.includes(first) && !allowed.includes(first)) {
      return `--out ${out} is inside ${shownPath(dir)}'s own ${first}: give a folder of its own`;
    }
  }
  return null;
}

/**
 * What is wrong with `flag DIR`, the folder a task writes its run (or runs) into, or null when `dir` is
 * undefined or names a folder of its own. An empty name or the folder the command runs in (`.`, the
 * repository root under `deno task`) is refused: the run's files would land among the project's own.
 */
export function outDirProblem(flag: string, dir: string | undefined): string | null {
  if (dir === undefined) return null;
  if (dir.trim() === "") return `${flag} needs a folder name, got ""`;
  if (resolve(dir) === resolve(".")) {
    return `${flag} ${dir} is the folder the command runs in: give the run a folder of its own, e.g. runs/NAME`;
  }
  return null;
}

/** The widest line a task's `--help` prints (a terminal's common width, with room). */
export const HELP_WIDTH = 110;

/**
 * A task's help text with every line longer than `width` wrapped at spaces: an option's description goes
 * on under its own column (`  --steps N   length…` continues under "length"), other lines under their indent.
 */
export function wrapHelp(text: string, width = HELP_WIDTH): string {
  return text.split("\n").flatMap((line) => {
    if (line.length <= width) return [line];
    const lead = /^\s*/.exec(line)![0].length;
    // "  --steps N   …", "  --a DIR, --b DIR   …" or "  (default preset)   …": the description's column.
    const option = /^\s*(?:-{1,2}\S+(?: [^\s-]\S*)?(?:, -{1,2}\S+(?: [^\s-]\S*)?)*|\([^)]*\))\s{2,}/
      .exec(line);
    // Under the description column, unless that leaves too narrow a column: then a little in.
    const column = option && option[0].length <= width - 40 ? option[0].length : option ? lead + 4 : lead;
    const indent = " ".repeat(column);
    const out: string[] = [];
    let rest = line;
    while (rest.length > width) {
      const cut = rest.lastIndexOf(" ", width);
      if (cut <= column) break; // one word wider than the line: leave it whole
      out.push(rest.slice(0, cut).trimEnd());
      rest = indent + rest.slice(cut + 1).trimStart();
    }
    return [...out, rest];
  }).join("\n");
}

/** Prints "error: MSG" and exits with 2: a task's answer to bad command-line input. */
export function failUsage(msg: string): never {
  console.error(`error: ${msg}`);
  Deno.exit(2);
}

/**
 * The command line of a task that reads one run folder (`--run DIR`, `--backend B`, `--help` among
 * `options`): a folder given without `--run`, a parse error, a missing `--run` and a backend not in
 * `backends` each end the process with one line and exit 2; `--help` prints `help` and exits 0.
 */
export function parseRunTaskArgs<O extends Options>(
  options: O,
  help: string,
  backends: readonly string[],
  task?: string,
) {
  // `deno task X runs/x` is the likeliest first try: say which flag takes the folder.
  const bare = strayArgument(Deno.args, options);
  if (bare !== undefined) failUsage(`unexpected argument "${bare}": give the run folder as --run ${bare}`);
  const { values } = parseArgsOrExit({ options, strict: true });
  const v = values as Record<string, unknown>;
  if (v.help) {
    console.log(wrapHelp(help));
    Deno.exit(0);
  }
  if (!v.run) failUsage("--run DIR is required (see --help)");
  if (!backends.includes(v.backend as string)) {
    failUsage(`unknown backend "${v.backend}"; valid backends: ${backends.join(", ")}`);
  }
  // Checked before the model loads: a bad --out would otherwise fail after the work, or replace a run file.
  const outProblem = typeof v.out === "string" ? outFileProblem(v.out, ".json", v.run as string, task) : null;
  if (outProblem) failUsage(outProblem);
  return values as typeof values & { run: string; backend: string };
}

/** What is wrong with `--run DIR` before a run-folder task opens it (not there, or a file), or null. */
export function runFolderProblem(run: string): string | null {
  const stat = statOrNull(run);
  if (!stat) return `--run ${run}: no such folder`;
  return stat.isDirectory
    ? null
    : `--run ${run} is a file: give the run folder that holds it (config.json, checkpoints/)`;
}

/** Why `text` is not JSON (the parser's message), or null when it parses. */
export function jsonProblem(text: string): string | null {
  try {
    JSON.parse(text);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

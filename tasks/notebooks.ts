/**
 * `deno task notebooks`: execute every `notebooks/*.ipynb` headless with the Deno kernel and write the
 * executed copies (and nbconvert HTML) to `runs/notebooks/`. Fails, naming the notebook and the cell, on any
 * cell error or timeout.
 *
 * Uses Debian's Jupyter (`/usr/bin/python3` with python3-nbclient) through tasks/nbrun.py, whose nbclient
 * subclass keeps reading outputs that the Deno kernel publishes after reporting idle (plotly figures, late). The
 * kernel spec it runs is written fresh under the output folder (the running deno, `--unstable-webgpu`, a
 * private XDG_RUNTIME_DIR), so a stale user-level spec cannot change what runs; a user-level `deno` spec is
 * installed too when none exists (for JupyterLab / VS Code), unless `--no-install-kernel`.
 *
 * @module
 */

import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runtimeDirSync } from "../lib/backend/runtime_dir.ts";
import { exists } from "../lib/util/fs.ts";
import { wrapHelp } from "../lib/util/cli.ts";

const USAGE = `deno task notebooks [options] [NOTEBOOK.ipynb ...]

Executes notebooks/*.ipynb (or the given files) headless with the Deno kernel.

  --only NAME          run only this notebook (file name with or without .ipynb; repeatable)
  --timeout S          per-cell timeout in seconds (default 600); a timeout stops that notebook.
                       A cell's metadata {"rtdlab": {"timeout": S}} overrides it for that cell
  --grace S            seconds of quiet awaited for late outputs after each cell (default 0.5)
  --out DIR            where the executed copies go (default runs/notebooks)
  --no-html            skip the nbconvert HTML copies
  --no-install-kernel  do not install a user-level "deno" kernel spec when none exists
  --help

Needs Debian's jupyter-nbconvert python3-nbclient jupyter-client jupyter-core python3-nbformat
(used through /usr/bin/python3; set RTDLAB_PYTHON to use another interpreter).`;

/** Parsed command line of the notebook runner. */
export interface NotebookArgs {
  only: string[];
  files: string[];
  timeout: number;
  grace: number;
  out: string;
  html: boolean;
  installKernel: boolean;
}

/** Parses the runner's command line (throws on unknown flags and bad numbers). */
export function parseArgs(argv: string[]): NotebookArgs | "help" {
  const a: NotebookArgs = {
    only: [],
    files: [],
    timeout: 600,
    grace: 0.5,
    out: "runs/notebooks",
    html: true,
    installKernel: true,
  };
  // `--out=DIR` as `--out DIR`, as every other task takes it (node's parseArgs).
  argv = argv.flatMap((
    x,
  ) => (/^--[a-z-]+=/.test(x) ? [x.slice(0, x.indexOf("=")), x.slice(x.indexOf("=") + 1)] : [x]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    const positive = (v: string) => {
      const n = Number(v);
      if (!(n > 0)) throw new Error(`${arg} needs a positive number of seconds, got "${v}"`);
      return n;
    };
    if (arg === "--help" || arg === "-h") return "help";
    else if (arg === "--only") a.only.push(value());
    else if (arg === "--timeout") a.timeout = positive(value());
    else if (arg === "--grace") a.grace = positive(value());
    else if (arg === "--out") a.out = value();
    else if (arg === "--no-html") a.html = false;
    else if (arg === "--no-install-kernel") a.installKernel = false;
    else if (arg.startsWith("-")) throw new Error(`unknown option ${arg} (see --help)`);
    else a.files.push(arg);
  }
  return a;
}

/** The project root (the folder holding deno.json and notebooks/). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Picks the notebooks to run: the given files, else notebooks/*.ipynb (sorted), filtered by `--only`. */
export async function selectNotebooks(args: NotebookArgs, dir = join(ROOT, "notebooks")): Promise<string[]> {
  let list = args.files.map((f) => resolve(f));
  // Every file checked before any runs (a missing one would fail after the others, in a Python traceback).
  for (const [i, f] of args.files.entries()) {
    if (await Deno.stat(list[i]).then((s) => s.isFile, () => false)) continue;
    const there = join(dir, basename(f));
    const hint = await Deno.stat(there).then(
      () => ` (did you mean ${relative(Deno.cwd(), there)}?)`,
      () => "",
    );
    throw new Error(`no notebook file ${f}${hint}`);
  }
  if (list.length === 0) {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(".ipynb") && !e.name.startsWith(".")) list.push(join(dir, e.name));
    }
    list.sort();
  }
  if (args.only.length) {
    const want = new Set(args.only.map((n) => n.replace(/\.ipynb$/, "")));
    const matched = list.filter((p) => want.has(p.split("/").pop()!.replace(/\.ipynb$/, "")));
    const missing = [...want].filter((n) => !matched.some((p) => p.endsWith(`/${n}.ipynb`)));
    if (missing.length) {
      const known = list.map((p) => p.split("/").pop()).join(", ") || "none";
      throw new Error(`--only: no notebook named ${missing.join(", ")} (known: ${known})`);
    }
    list = matched;
  }
  return list;
}

/** The kernel spec the runner uses: this very deno, with `--unstable-webgpu` and XDG_RUNTIME_DIR. */
export function kernelSpec(xdg: string): Record<string, unknown> {
  return {
    argv: [Deno.execPath(), "jupyter", "--kernel", "--conn", "{connection_file}", "--unstable-webgpu"],
    display_name: "Deno (rtdlab)",
    language: "typescript",
    env: { XDG_RUNTIME_DIR: xdg, NO_COLOR: "1" },
  };
}

/** Jupyter's data folders, searched in Jupyter's order (JUPYTER_PATH, user, system). */
export function jupyterDataDirs(): string[] {
  const env = (k: string) => Deno.env.get(k);
  const home = env("HOME") ?? "/root";
  return [
    ...(env("JUPYTER_PATH") ?? "").split(":").filter(Boolean),
    env("JUPYTER_DATA_DIR") ?? join(env("XDG_DATA_HOME") ?? join(home, ".local/share"), "jupyter"),
    "/usr/local/share/jupyter",
    "/usr/share/jupyter",
  ];
}

/**
 * Installs a user-level `deno` kernel spec when Jupyter has none (`deno jupyter --install` with this deno,
 * then `--unstable-webgpu` and XDG_RUNTIME_DIR added). Returns the kernel.json path it wrote, or null.
 */
export async function ensureUserKernel(xdg: string): Promise<string | null> {
  for (const d of jupyterDataDirs()) if (await exists(join(d, "kernels/deno/kernel.json"))) return null;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["jupyter", "--install"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno jupyter --install failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
  for (const d of jupyterDataDirs()) {
    const path = join(d, "kernels/deno/kernel.json");
    if (!(await exists(path))) continue;
    const spec = JSON.parse(await Deno.readTextFile(path));
    if (Array.isArray(spec.argv) && !spec.argv.includes("--unstable-webgpu")) {
      spec.argv.push("--unstable-webgpu");
    }
    spec.env = { ...(spec.env ?? {}), XDG_RUNTIME_DIR: xdg };
    await Deno.writeTextFile(path, JSON.stringify(spec, null, 2) + "\n");
    return path;
  }
  return null;
}

/** The Python that has nbclient: $RTDLAB_PYTHON or Debian's /usr/bin/python3. */
export function pythonPath(): string {
  return Deno.env.get("RTDLAB_PYTHON") || "/usr/bin/python3";
}

/** Null when `python` can import nbclient, nbformat and nbconvert; else what to install. */
export async function checkJupyter(python = pythonPath()): Promise<string | null> {
  try {
    const out = await new Deno.Command(python, {
      args: ["-c", "import nbclient, nbformat, jupyter_client"],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (out.success) return null;
    return `${python} cannot import the Jupyter packages: ${
      new TextDecoder().decode(out.stderr).trim().split("\n").pop()
    }`;
  } catch (e) {
    return `${python}: ${(e as Error).message}`;
  }
}

/** The install command for the Debian Jupyter packages. */
export const JUPYTER_APT =
  "apt-get install -y --no-install-recommends jupyter-nbconvert python3-nbclient jupyter-client jupyter-core python3-nbformat";

/** Runs the notebooks; returns the exit status (0 all ran clean, 1 a notebook failed, 2 setup error). */
export async function runNotebooks(args: NotebookArgs): Promise<number> {
  const notebooks = await selectNotebooks(args);
  if (notebooks.length === 0) {
    console.log("no notebooks to run");
    return 0;
  }
  const problem = await checkJupyter();
  if (problem) {
    console.error(`${problem}\ninstall them with: ${JUPYTER_APT}`);
    return 2;
  }
  const xdg = runtimeDirSync();
  const out = resolve(args.out);
  const jupyterPath = join(out, ".jupyter");
  await Deno.mkdir(join(jupyterPath, "kernels/rtdlab-deno"), { recursive: true });
  await Deno.writeTextFile(
    join(jupyterPath, "kernels/rtdlab-deno/kernel.json"),
    JSON.stringify(kernelSpec(xdg), null, 2) + "\n",
  );
  if (args.installKernel) {
    const installed = await ensureUserKernel(xdg).catch((e) => {
      console.error(`(could not install a user-level deno kernel spec: ${e.message})`);
      return null;
    });
    if (installed) console.log(`installed the Deno kernel spec: ${installed}`);
  }
  const script = join(ROOT, "tasks/nbrun.py");
  const pyArgs = [
    script,
    "--out",
    out,
    "--timeout",
    String(args.timeout),
    "--grace",
    String(args.grace),
    "--kernel",
    "rtdlab-deno",
    ...(args.html ? [] : ["--no-html"]),
    ...notebooks,
  ];
  const shown = relative(Deno.cwd(), out);
  console.log(
    `running ${notebooks.length} notebook(s) -> ${shown && !shown.startsWith("..") ? shown : out}/`,
  );
  const env = {
    JUPYTER_PATH: [jupyterPath, Deno.env.get("JUPYTER_PATH")].filter(Boolean).join(":"),
    // Kernel connection files and runtime state stay out of the user's home.
    JUPYTER_RUNTIME_DIR: join(out, ".jupyter/runtime"),
    PYDEVD_DISABLE_FILE_VALIDATION: "1",
  };
  const t0 = performance.now();
  const status = await new Deno.Command(pythonPath(), {
    args: pyArgs,
    env,
    stdout: "inherit",
    stderr: "inherit",
  })
    .spawn().status;
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  if (status.code === 0) console.log(`all ${notebooks.length} notebook(s) ran clean in ${secs} s`);
  else console.error(`notebook run failed (exit ${status.code}) after ${secs} s`);
  return status.code === 0 ? 0 : 1;
}

if (import.meta.main) {
  let code: number;
  try {
    const args = parseArgs(Deno.args);
    if (args === "help") {
      console.log(wrapHelp(USAGE));
      code = 0;
    } else {
      code = await runNotebooks(args);
    }
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    code = 2;
  }
  Deno.exit(code);
}

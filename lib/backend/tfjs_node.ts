/**
 * Finding a usable `@tensorflow/tfjs-node(-gpu)` without triggering an install.
 *
 * Measured under Deno 2.9: `await import("npm:@tensorflow/tfjs-node@4.22.0")` on a machine without it
 * downloads the package at run time (writing deno.lock), skips its install script (the one that
 * downloads libtensorflow), and then fails with "The Node.js native addon module (tfjs_binding.node)
 * can not be found". So rtdlab only imports it after finding the native binding on disk.
 *
 * @module
 */

/** The two TensorFlow-native npm packages, in the order rtdlab tries them. */
export const TFJS_NODE_PACKAGES = ["tfjs-node-gpu", "tfjs-node"] as const;

/** A tfjs-node install whose native binding exists on disk. */
export interface TfjsNodeInstall {
  /** npm package name, e.g. "@tensorflow/tfjs-node". */
  pkg: string;
  /** Its version, from its package.json. */
  version: string;
  /** Path of the native binding (lib/napi-v<N>/tfjs_binding.node). */
  binding: string;
}

/** Result of a search: the first install found, and whether a lack of --allow-read hid some places. */
export interface TfjsNodeSearch {
  found: TfjsNodeInstall | null;
  permissionDenied: boolean;
}

/** Default places to look: the project's and the working directory's node_modules, and Deno's npm cache. */
export function defaultSearchRoots(): string[] {
  const roots: string[] = [];
  const here = new URL("../../node_modules", import.meta.url);
  if (here.protocol === "file:") roots.push(decodeURIComponent(here.pathname));
  try {
    roots.push(`${Deno.cwd()}/node_modules`);
  } catch { /* no --allow-read: cwd unknown */ }
  try {
    const home = Deno.env.get("HOME");
    const cache = Deno.env.get("DENO_DIR") ??
      (Deno.env.get("XDG_CACHE_HOME") ?? (home ? `${home}/.cache` : undefined))?.concat("/deno");
    if (cache) roots.push(`${cache}/npm/registry.npmjs.org`);
  } catch { /* no --allow-env */ }
  return [...new Set(roots)];
}

/**
 * Looks for tfjs-node-gpu, then tfjs-node, under each root (a node_modules folder or Deno's
 * `npm/registry.npmjs.org` cache folder) and returns the first whose native binding exists.
 */
export function findTfjsNode(roots: string[] = defaultSearchRoots()): TfjsNodeSearch {
  const state = { permissionDenied: false };
  for (const name of TFJS_NODE_PACKAGES) {
    for (const root of roots) {
      for (const dir of packageDirs(root, name, state)) {
        const install = checkInstall(dir, name, state);
        if (install) return { found: install, permissionDenied: state.permissionDenied };
      }
    }
  }
  return { found: null, permissionDenied: state.permissionDenied };
}

// Candidate package folders: node_modules/@tensorflow/<name>, Deno's node_modules/.deno layout,
// and the global cache layout <root>/@tensorflow/<name>/<version>.
function packageDirs(root: string, name: string, state: { permissionDenied: boolean }): string[] {
  const dirs = [`${root}/@tensorflow/${name}`];
  for (const entry of listDir(`${root}/.deno`, state)) {
    if (entry.startsWith(`@tensorflow+${name}@`)) {
      dirs.push(`${root}/.deno/${entry}/node_modules/@tensorflow/${name}`);
    }
  }
  for (const entry of listDir(`${root}/@tensorflow/${name}`, state)) {
    if (/^\d+\.\d+\.\d+/.test(entry)) dirs.push(`${root}/@tensorflow/${name}/${entry}`);
  }
  return dirs;
}

function checkInstall(
  dir: string,
  name: string,
  state: { permissionDenied: boolean },
): TfjsNodeInstall | null {
  const napi = listDir(`${dir}/lib`, state).filter((e) => /^napi-v\d+$/.test(e));
  for (const sub of napi) {
    const binding = `${dir}/lib/${sub}/tfjs_binding.node`;
    if (!isFile(binding, state)) continue;
    try {
      const meta = JSON.parse(Deno.readTextFileSync(`${dir}/package.json`));
      return { pkg: `@tensorflow/${name}`, version: String(meta.version), binding };
    } catch (e) {
      note(e, state);
    }
  }
  return null;
}

function listDir(path: string, state: { permissionDenied: boolean }): string[] {
  try {
    return [...Deno.readDirSync(path)].map((e) => e.name);
  } catch (e) {
    note(e, state);
    return [];
  }
}

function isFile(path: string, state: { permissionDenied: boolean }): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch (e) {
    note(e, state);
    return false;
  }
}

function note(e: unknown, state: { permissionDenied: boolean }): void {
  if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
    state.permissionDenied = true;
  }
}

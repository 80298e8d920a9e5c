/**
 * Small file helpers for the text pipeline: atomic writes, hashing, locating the data files that npm
 * packages ship.
 *
 * @module
 */

import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { denoCommand } from "../util/cli.ts";
import { fileURLToPath } from "node:url";

export { writeFileAtomic } from "../io/atomic.ts";

/** SHA-256 of bytes or a UTF-8 string, as lowercase hex. */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** True when `path` exists (any kind of entry). */
export function pathExists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

const packageDirs = new Map<string, string>();

/**
 * The folder of an installed npm package (the one holding its package.json), for packages whose data
 * files rtdlab reads directly. Works from any importing script and any working directory: the import
 * map resolves the package first (Deno's node_modules with `nodeModulesDir: "auto"`), then Node-style
 * resolution from this file, then a walk up from the working directory.
 */
export function packageDir(name: string): string {
  const known = packageDirs.get(name);
  if (known) return known;
  const tried: string[] = [];
  const accept = (pkgJson: string): string | undefined => {
    if (!pathExists(pkgJson)) {
      tried.push(pkgJson);
      return undefined;
    }
    const dir = dirname(pkgJson);
    packageDirs.set(name, dir);
    return dir;
  };
  try {
    const url = import.meta.resolve(`${name}/package.json`);
    if (url.startsWith("file:")) {
      const dir = accept(fileURLToPath(url));
      if (dir) return dir;
    } else tried.push(url);
  } catch (e) {
    tried.push(`import.meta.resolve: ${(e as Error).message}`);
  }
  try {
    const dir = accept(createRequire(import.meta.url).resolve(`${name}/package.json`));
    if (dir) return dir;
  } catch (e) {
    tried.push(`require.resolve: ${(e as Error).message.split("\n")[0]}`);
  }
  for (let d = resolve(Deno.cwd());; d = dirname(d)) {
    const dir = accept(join(d, "node_modules", name, "package.json"));
    if (dir) return dir;
    if (dirname(d) === d) break;
  }
  throw new Error(
    `npm package "${name}" is not installed, and rtdlab reads its data files. It is pinned in deno.json: ` +
      `run \`${denoCommand()} install\` in the project root. Looked in: ${tried.slice(0, 4).join("; ")}`,
  );
}

/**
 * Atomic file writes: write a temporary file beside the target, then rename it over the target, so
 * a crash or Ctrl-C never leaves a half-written checkpoint, config or cache entry behind.
 *
 * @module
 */

import { dirname } from "node:path";

let counter = 0;

/** Writes `data` (bytes or text) to `path` atomically, creating the parent folder if needed. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  // pid + counter + time: concurrent writers (two processes, or two calls) never share a temp name.
  const tmp = `${path}.${Deno.pid}.${++counter}.${Date.now()}.tmp`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Writes a JSON value (pretty-printed) atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

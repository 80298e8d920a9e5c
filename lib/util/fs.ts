/**
 * Small file-system helpers shared by the tasks and the library.
 *
 * @module
 */

/** Whether `path` exists (a file, a folder, or anything else `Deno.stat` can see). */
export function exists(path: string): Promise<boolean> {
  return Deno.stat(path).then(() => true, () => false);
}

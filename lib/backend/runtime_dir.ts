/**
 * The XDG_RUNTIME_DIR WebGPU's drivers want. Mesa complains on every adapter it opens without one, and
 * a login shell sets it where containers, CI and Jupyter kernels often do not.
 *
 * @module
 */

/** A private, mode-700 XDG_RUNTIME_DIR (the caller's, when set), created if missing. */
export function runtimeDirSync(): string {
  const dir = Deno.env.get("XDG_RUNTIME_DIR") || `/tmp/rtdlab-xdg-${Deno.uid() ?? 0}`;
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

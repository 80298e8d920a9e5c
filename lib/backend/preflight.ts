/**
 * A backend checked before a long job starts. `compare` and `sweep` run their training in child
 * processes; without this check a missing GPU driver (or a misspelt backend) would surface only
 * in the first child, after the parent had written its plan. The check starts the backend in a
 * short-lived child of its own, so the parent never holds a GPU context while its jobs run.
 *
 * ```ts
 * const info = await checkBackend("cuda"); // "rtdlab cuda on NVIDIA H100 …", or throws the backend's error
 * ```
 *
 * @module
 */
import { type BackendName, BACKENDS } from "./mod.ts";

/**
 * Starts backend `name` in a child process and returns its one-line description; throws the
 * backend's own message ("no NVIDIA driver: …", "Unknown backend …") when it cannot run here.
 */
export async function checkBackend(name: string): Promise<string> {
  if (!BACKENDS.includes(name as BackendName)) {
    throw new Error(`unknown backend "${name}"; valid backends: ${BACKENDS.join(", ")}`);
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-webgpu", new URL(import.meta.url).pathname, name],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b).trim();
  if (!out.success) {
    // The child prints the message alone on its last stderr line (anything before is the backend's chatter).
    const message = text(out.stderr).split("\n").at(-1) || `exit code ${out.code}`;
    throw new Error(`backend ${name} cannot start here: ${message}`);
  }
  return text(out.stdout);
}

if (import.meta.main) {
  const { initBackend } = await import("./mod.ts");
  try {
    console.log((await initBackend(Deno.args[0] as BackendName)).info);
  } catch (e) {
    console.error((e as Error).message.replaceAll("\n", " "));
    Deno.exit(1);
  }
  // webgpu's device and a cuda context are released with the process.
  Deno.exit(0);
}

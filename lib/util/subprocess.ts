/**
 * Child Deno processes that report progress as JSON lines on stdout (`tasks/pretrain.ts
 * --progress-jsonl`, `tasks/finetune.ts --progress-jsonl`): the demo and the comparison run several
 * at a time and draw one progress line for all of them.
 *
 * @module
 */

import { SIGNAL_EXIT } from "./signals.ts";

/** The children running now: a SIGTERM to the parent is passed on to them (see {@link forwardTermination}). */
const running = new Set<Deno.ChildProcess>();
/** Set once the parent is terminating and will exit when its children have: no new child starts. */
let exiting = false;

/** How a child process ended. */
export interface ChildResult {
  success: boolean;
  /** Its exit code (null when it was not started); 130 and 143: stopped by Ctrl-C or `kill`. */
  code: number | null;
  /** Everything it wrote to stderr (its log and, on failure, the error). */
  stderr: string;
}

/**
 * Runs `deno <args>` with `env` added to this process's environment, calling `onProgress` with every
 * stdout line that parses as a JSON object; other stdout lines are ignored.
 */
export async function runWithProgress(
  args: string[],
  opts: { env?: Record<string, string>; onProgress?: (p: Record<string, unknown>) => void } = {},
): Promise<ChildResult> {
  if (exiting) {
    return { success: false, code: null, stderr: "not started: the parent process is terminating" };
  }
  const child = new Deno.Command(Deno.execPath(), { args, env: opts.env, stdout: "piped", stderr: "piped" })
    .spawn();
  running.add(child);
  child.status.finally(() => running.delete(child));
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    const lines = buf.split("\n");
    buf = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith("{")) continue;
      try {
        opts.onProgress?.(JSON.parse(line));
      } catch { /* not a progress line */ }
    }
  }
  const status = await child.status;
  return { success: status.success, code: status.code, stderr: await stderr };
}

/**
 * Passes a SIGTERM on to the running children (Ctrl-C needs no help: the terminal sends SIGINT to the whole
 * process group), which checkpoint and stop as on Ctrl-C. With `onTerminate`, the caller stops scheduling
 * and reports as it does on Ctrl-C; without, no new child starts and the process exits (143) once the
 * running ones have. A second SIGTERM exits at once.
 */
export function forwardTermination(onTerminate?: () => void): void {
  let terminating = false;
  Deno.addSignalListener("SIGTERM", async () => {
    if (terminating) Deno.exit(SIGNAL_EXIT.SIGTERM);
    terminating = true;
    if (running.size) {
      console.error(`\nterminated: ${running.size} running child process(es) checkpoint and stop`);
    }
    for (const child of running) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
    }
    if (onTerminate) return onTerminate();
    exiting = true;
    while (running.size) await Promise.race([...running].map((c) => c.status));
    Deno.exit(SIGNAL_EXIT.SIGTERM);
  });
}

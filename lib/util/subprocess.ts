/**
 * Child Deno processes that report progress as JSON lines on stdout (`tasks/pretrain.ts
 * --progress-jsonl`, `tasks/finetune.ts --progress-jsonl`): the demo and the comparison run several
 * at a time and draw one progress line for all of them.
 *
 * @module
 */

/** How a child process ended. */
export interface ChildResult {
  success: boolean;
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
  const child = new Deno.Command(Deno.execPath(), { args, env: opts.env, stdout: "piped", stderr: "piped" })
    .spawn();
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
  return { success: status.success, stderr: await stderr };
}

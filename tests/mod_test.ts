/**
 * lib/mod.ts, the library's public face: a script can name the option and result types of everything it
 * exports (`deno doc --lint`'s private-type-ref), apart from TensorFlow.js's own (reached as `tf.Tensor`).
 */

import assert from "node:assert/strict";

/** Types lib/mod.ts may reference without exporting: tfjs's (under `tf`) and implementation details. */
const ALLOWED = new Set([
  "Tensor",
  "Tensor1D",
  "Tensor2D",
  "Scalar",
  "Variable",
  "NamedTensorMap",
  "SPECS", // the packaged tasks' table, named through PackagedTaskName
  "Row", // the parsed line of a user's JSONL/CSV file, before it becomes an Example
  "AddedTokenJson", // inside TokenizerJson: HF tokenizer.json's own layout
  "BertNormalizerConfig",
]);

Deno.test("lib/mod.ts exports every type its functions take or return", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--lint", "lib/mod.ts"],
    cwd: new URL("..", import.meta.url).pathname,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const missing = new Set(
    [...text.matchAll(/public type '([^']+)' references private type '([^']+)'/g)]
      .filter((m) => !ALLOWED.has(m[2]))
      .map((m) => `${m[2]} (used by ${m[1]})`),
  );
  // It ran: clean, or with lint findings (not a module that failed to load).
  assert.ok(out.success || /error\[[a-z-]+\]/.test(text), text.slice(0, 500));
  assert.deepEqual([...missing], [], "types to export from lib/mod.ts");
});

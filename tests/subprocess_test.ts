/**
 * Parents of training runs (demo, compare, sweep) pass a `kill` on to their children, which checkpoint and
 * stop, instead of dying alone and leaving the children training.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { tempDir } from "./_helpers.ts";

const SUBPROCESS = new URL("../lib/util/subprocess.ts", import.meta.url).href;

Deno.test({
  name:
    "forwardTermination: a SIGTERM to the parent reaches its running child, no new child starts, and the " +
    "parent exits 143 once the child has",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = tempDir("rtdlab-term-");
    const marker = join(dir, "child-stopped");
    // The child stands in for a training run: on SIGTERM it "checkpoints" (writes the marker) and stops.
    const childCode = `Deno.addSignalListener("SIGTERM", () => { Deno.writeTextFileSync(${
      JSON.stringify(marker)
    }, "checkpointed"); Deno.exit(143); }); console.log(JSON.stringify({ step: 1 })); setTimeout(() => {}, 60_000);`;
    const parent = join(dir, "parent.ts");
    await Deno.writeTextFile(
      parent,
      `import { forwardTermination, runWithProgress } from ${JSON.stringify(SUBPROCESS)};
forwardTermination();
const first = await runWithProgress(["eval", ${JSON.stringify(childCode)}], {
  onProgress: () => console.log("child running"),
});
// The queue's next job, after the first stopped: refused while the parent terminates.
const next = await runWithProgress(["eval", "console.log('second child ran')"]);
console.log(first.success, next.stderr);
await new Promise((r) => setTimeout(r, 5_000)); // the listener's exit comes first
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", parent],
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
    const stderr = new Response(child.stderr).text();
    const stdout: string[] = [];
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      stdout.push(chunk);
      if (chunk.includes("child running")) child.kill("SIGTERM");
    }
    const status = await child.status;
    assert.equal(status.code, 143, stdout.join("") + (await stderr));
    assert.equal(await Deno.readTextFile(marker), "checkpointed");
    assert.doesNotMatch(stdout.join(""), /second child ran/);
  },
});

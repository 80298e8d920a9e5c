/**
 * The pretrain command line refuses bad input with a message that names the problem.
 */

import assert from "node:assert/strict";
import { parseCli } from "../tasks/pretrain.ts";

Deno.test("pretrain CLI: defaults, overrides and the run folder name", () => {
  const cli = parseCli([
    "--sharing",
    "gdes",
    "--steps",
    "20",
    "--seed",
    "3",
    "--set",
    "batchSize=4",
    "--joint",
  ]);
  assert.equal(cli.config.sharing, "gdes");
  assert.equal(cli.config.joint, true);
  assert.equal(cli.config.steps, 20);
  assert.equal(cli.config.batchSize, 4);
  assert.equal(cli.backend, "wasm");
  assert.equal(cli.out, "runs/tiny-gdes-s3");
  assert.equal(parseCli(["--config", "electra-small"]).config.discriminator.hiddenSize, 256);
});

Deno.test("pretrain CLI: unknown options, configs, keys and modes are named in the error", () => {
  assert.throws(() => parseCli(["--stepz", "3"]), /stepz/);
  assert.throws(() => parseCli(["--config", "gigantic"]), /unknown config "gigantic"/);
  assert.throws(() => parseCli(["--set", "hiddenSize=3"]), /unknown config key "hiddenSize"/);
  assert.throws(() => parseCli(["--set", "batchSize"]), /--set needs KEY=VALUE/);
  assert.throws(
    () => parseCli(["--sharing", "tied"]),
    /unknown sharing mode "tied"; valid modes: mlm, es, nes, gdes/,
  );
  assert.throws(() => parseCli(["--steps", "four"]), /--steps needs a non-negative integer/);
  assert.throws(() => parseCli(["--set", "seqLength=1024"]), /longer than the position table/);
});

Deno.test("pretrain CLI: --init-from or the two folder flags, never with --resume", () => {
  assert.deepEqual(parseCli(["--init-from", "runs/a/export"]).initFrom, {
    dir: "runs/a/export",
    discriminator: undefined,
    generator: undefined,
  });
  const two = parseCli(["--init-discriminator", "d", "--init-generator", "g"]).initFrom;
  assert.deepEqual([two?.discriminator, two?.generator], ["d", "g"]);
  assert.equal(parseCli([]).initFrom, undefined);
  assert.throws(() => parseCli(["--init-from", "x", "--resume", "runs/a"]), /--init-from starts a new run/);
  assert.throws(
    () => parseCli(["--init-from", "x", "--init-generator", "g"]),
    /give --init-from DIR, or --init-discriminator and --init-generator, not both/,
  );
});

/**
 * `deno task report` and lib/report/runs.ts: any run folders side by side, with what differs in their
 * settings and whether each discriminator has learned.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { reportedRuns, runsReport, settingsDiff } from "../lib/report/runs.ts";

/** A run folder: config.json and 20 logged steps whose last tenth has the given AUC and gain. */
async function writeRun(
  dir: string,
  config: Record<string, unknown>,
  end: { auc: number; gain: number } | null,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config));
  const lines: string[] = [];
  for (let i = 0; i < 20; i++) {
    const late = i >= 18; // the last tenth of 20 logged steps
    lines.push(JSON.stringify({
      step: 5 * (i + 1),
      loss_mlm: 8 - 0.1 * i,
      loss_rtd: end ? 0.5 : null,
      disc_auc: end ? (late ? end.auc : 0.55) : null,
      rtd_gain: end ? (late ? end.gain : 0.01) : null,
      replaced_frac: end ? 0.14 : null,
      disc_acc: end ? 0.86 : null,
      disc_acc_replaced: end ? 0.1 : null,
      gen_acc: end ? 0.3 : null,
    }));
  }
  await Deno.writeTextFile(join(dir, "metrics.jsonl"), lines.join("\n") + "\n");
}

const base = {
  preset: "tiny",
  sharing: "gdes",
  seed: 0,
  steps: 100,
  discriminator: { hiddenSize: 64, numLayers: 2 },
};

async function writeThree(root: string): Promise<void> {
  await writeRun(join(root, "lam10"), { ...base, rtdWeight: 10 }, { auc: 0.58, gain: 0.02 });
  await writeRun(
    join(root, "lam50"),
    { ...base, rtdWeight: 50, discriminator: { hiddenSize: 128, numLayers: 2 } },
    { auc: 0.8, gain: 0.1 },
  );
  await writeRun(join(root, "mlm"), { ...base, sharing: "mlm", rtdWeight: 50 }, null);
}

Deno.test("settingsDiff: nested keys by dotted path, a key one run lacks differs", () => {
  const runs = [
    { dir: "a", name: "a", config: { ...base, rtdWeight: 10, heldOutSequences: 8 } },
    {
      dir: "b",
      name: "b",
      config: { ...base, rtdWeight: 50, discriminator: { hiddenSize: 128, numLayers: 2 } },
    },
  ];
  const { shared, differing } = settingsDiff(runs);
  assert.deepEqual(differing, ["discriminator.hiddenSize", "rtdWeight", "heldOutSequences"]);
  assert.deepEqual(shared.find(([k]) => k === "discriminator.numLayers"), ["discriminator.numLayers", "2"]);
  assert.deepEqual(shared.find(([k]) => k === "preset"), ["preset", "tiny"]);
});

Deno.test("runs report: what differs, who learned (training and eval.json), runs of one mode in their own colours", async () => {
  const root = await Deno.makeTempDir();
  try {
    await writeThree(root);
    await Deno.writeTextFile(
      join(root, "lam50", "eval.json"),
      JSON.stringify({ step: 100, heldOut: true, temperature: 1, discAuc: 0.71, rtdGain: 0.06 }),
    );
    // A folder of runs is searched; runs come in natural order.
    assert.deepEqual((await reportedRuns([root])).map((r) => r.name), ["lam10", "lam50", "mlm"]);
    const html = await (await runsReport([root])).render();
    // The settings table names exactly the keys that differ.
    for (const k of ["rtdWeight", "discriminator.hiddenSize", "sharing"]) {
      assert.match(html, new RegExp(`<th[^>]*>${k}</th>`));
    }
    assert.doesNotMatch(html, /<th[^>]*>preset<\/th>/);
    // Verdicts read the last tenth of the logged steps, not the run's mean or its last step alone.
    assert.match(
      html,
      /lam10: in training, the discriminator has not learned yet \(AUC 0\.580, RTD gain 0\.020 nats/,
    );
    assert.match(
      html,
      /lam50: in training, the discriminator has learned: AUC 0\.800, RTD gain 0\.100 nats\./,
    );
    assert.match(
      html,
      /Evaluated at step 100 on held-out sequences at T = 1 \(eval\.json\): the discriminator has learned: AUC 0\.710/,
    );
    assert.match(html, /mlm: no discriminator/);
    // Two GDES runs must not share a colour: each run is its own line colour when modes repeat.
    const colour = (run: string) =>
      html.match(new RegExp(`"name":"${run}"[^}]*?"color":"(#[0-9a-fA-F]{6})"`))?.[1];
    assert.ok(colour("lam10") && colour("lam50"), "both runs drawn");
    assert.notEqual(colour("lam10"), colour("lam50"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("deno task report: bad input is named and writes nothing; one run's page goes beside its files", async () => {
  const root = await Deno.makeTempDir();
  const report = async (...args: string[]) => {
    const script = new URL("../tasks/report.ts", import.meta.url).pathname;
    const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", script, ...args] }).output();
    return {
      code: r.code,
      stdout: new TextDecoder().decode(r.stdout),
      stderr: new TextDecoder().decode(r.stderr),
    };
  };
  try {
    await writeThree(root);
    const none = await report();
    assert.equal(none.code, 2);
    assert.match(none.stderr, /give at least one run folder/);
    const missing = await report(join(root, "lam5"));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /lam5: no run folder \(one holding metrics\.jsonl\) at or below it/);
    const folder = await report(join(root, "lam10"), "--out", root);
    assert.equal(folder.code, 2);
    assert.match(folder.stderr, /is a folder; give a file name/);
    const smooth = await report(join(root, "lam10"), "--smooth", "1.5");
    assert.equal(smooth.code, 2);
    assert.match(smooth.stderr, /--smooth needs a number in \[0, 1\)/);
    assert.equal(await Deno.stat(join(root, "lam10", "report.html")).then(() => true, () => false), false);

    const one = await report(join(root, "lam10"));
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /lam10: the discriminator has not learned yet/);
    assert.match(
      await Deno.readTextFile(join(root, "lam10", "report.html")),
      /<title>rtdlab runs: lam10<\/title>/,
    );
    const out = join(root, "pages", "both.html");
    const two = await report(join(root, "lam10"), join(root, "lam50"), "--out", out, "--title", "λ");
    assert.equal(two.code, 0, two.stderr);
    assert.match(two.stdout, /wrote .*both\.html \(2 runs\)/);
    assert.match(await Deno.readTextFile(out), /<title>λ<\/title>/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/**
 * `deno task report` and lib/report/runs.ts: any run folders side by side, with what differs in their
 * settings and whether each discriminator has learned.
 */

import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { reportedRuns, runsReport, settingsDiff } from "../lib/report/runs.ts";
import { formatSummary } from "../lib/report/demo.ts";
import { defaultOut } from "../tasks/report.ts";

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
    { dir: "a", name: "a", logged: 1, config: { ...base, rtdWeight: 10, heldOutSequences: 8 } },
    {
      dir: "b",
      name: "b",
      logged: 1,
      config: { ...base, rtdWeight: 50, discriminator: { hiddenSize: 128, numLayers: 2 } },
    },
  ];
  const { shared, differing } = settingsDiff(runs);
  assert.deepEqual(differing, ["discriminator.hiddenSize", "rtdWeight", "heldOutSequences"]);
  assert.deepEqual(shared.find(([k]) => k === "discriminator.numLayers"), ["discriminator.numLayers", "2"]);
  assert.deepEqual(shared.find(([k]) => k === "preset"), ["preset", "tiny"]);
});

Deno.test("runs report: what differs, who learned (training and eval.json), in the order given", async () => {
  const root = await Deno.makeTempDir();
  try {
    await writeThree(root);
    await Deno.writeTextFile(
      join(root, "lam50", "eval.json"),
      JSON.stringify({ step: 100, heldOut: true, temperature: 1, discAuc: 0.71, rtdGain: 0.06 }),
    );
    // A folder of runs is searched; runs come in natural order; a run named twice is counted once.
    assert.deepEqual((await reportedRuns([root])).map((r) => r.name), ["lam10", "lam50", "mlm"]);
    assert.deepEqual(
      (await reportedRuns([relative(Deno.cwd(), join(root, "lam50")) + "/", root])).map((r) => r.name),
      ["lam50", "lam10", "mlm"],
    );
    const { report, summary, verdicts } = await runsReport([join(root, "lam50"), join(root, "mlm"), root]);
    const html = await report.render();
    // The settings table names exactly the keys that differ.
    for (const k of ["rtdWeight", "discriminator.hiddenSize", "sharing"]) {
      assert.match(html, new RegExp(`<th[^>]*>${k}</th>`));
    }
    assert.doesNotMatch(html, /<th[^>]*>preset<\/th>/);
    // Everything in the order given (runSummary alone would sort by mode: mlm, lam10, lam50).
    assert.deepEqual(summary.array("run"), ["lam50", "mlm", "lam10"]);
    assert.deepEqual(verdicts.map((v) => v.run), ["lam50", "mlm", "lam10"]);
    // Verdicts read the last tenth of the logged steps, not the run's mean or its last step alone.
    assert.equal(verdicts[1].text, "mlm: no discriminator (MLM baseline)");
    assert.equal(
      verdicts[2].text,
      "lam10: in training D has not learned yet: AUC 0.580, RTD gain 0.020 nats (last 2 of 20 logged steps)",
    );
    assert.equal(
      verdicts[0].text,
      "lam50: in training D has learned: AUC 0.800, RTD gain 0.100 nats (last 2 of 20 logged steps); evaluated " +
        "at step 100 on held-out sequences at T = 1 (eval.json): has learned: AUC 0.710, RTD gain 0.060 nats",
    );
    assert.match(html, /lam10: in training D has not learned yet/);
    // An evaluation that reads the other way is said to disagree, with its spread and sample size.
    await Deno.writeTextFile(
      join(root, "lam10", "eval.json"),
      JSON.stringify({
        step: 100,
        heldOut: true,
        sequences: 64,
        temperature: 1,
        settings: { temperature: 1, seed: 0, batchSize: 16, disallowCorrect: true },
        discAuc: 0.69,
        rtdGain: 0.052,
        discAucSe: 0.012,
        rtdGainSe: 0.004,
      }),
    );
    const again = (await runsReport([join(root, "lam10")])).verdicts[0].text;
    assert.match(
      again,
      /on 64 held-out sequences at T = 1, replacements never the original \(--disallow-correct\) \(eval\.json\): has learned: AUC 0\.690 ± 0\.012, RTD gain 0\.052 ± 0\.004 nats/,
    );
    assert.match(again, /could go either way: RTD gain 0\.0520 ± 0\.0040 \(threshold 0\.05\)/);
    assert.match(
      again,
      /the two readings disagree: training reads its last 2 logged batches, the evaluation held-out sequences; the evaluation is within two standard errors of a threshold, so D sits near it/,
    );
    // Far from the thresholds, and older than the run: no "near" claim, and a word that it is stale.
    await Deno.writeTextFile(
      join(root, "lam10", "eval.json"),
      JSON.stringify({
        step: 50,
        heldOut: true,
        sequences: 64,
        temperature: 1,
        discAuc: 0.93,
        rtdGain: 0.21,
        discAucSe: 0.004,
        rtdGainSe: 0.006,
      }),
    );
    const far = (await runsReport([join(root, "lam10")])).verdicts[0].text;
    assert.match(far, /eval\.json is of step 50, the run has trained to 100: re-run deno task evaluate/);
    assert.match(far, /the two readings disagree/);
    assert.doesNotMatch(far, /sits near|could go either way|T = 1, the evaluation/);
    await Deno.remove(join(root, "lam10", "eval.json"));
    // A probe.json (deno task probe --out) adds the tug-of-war at its step; an older one is called stale.
    const probe = (step: number) =>
      JSON.stringify({
        step,
        heldOut: true,
        token: {
          cos: { mean: -0.0123, se: 0.004, n: 8 },
          opposedShare: { mean: 0.52, se: 0.01, n: 8 },
          ratio: { mean: 2.5, se: 0.1, n: 8 },
        },
      });
    await Deno.writeTextFile(join(root, "lam10", "probe.json"), probe(100));
    const probed = (await runsReport([join(root, "lam10")])).verdicts[0].text;
    assert.match(
      probed,
      /; the tug-of-war at step 100 over 8 held-out batches \(probe\.json\): cos\(g_MLM, g_RTD\) -0\.012 ± 0\.004, opposed rows 0\.520 ± 0\.010, ‖g_RTD‖ \/ ‖g_MLM‖ 2\.50 ± 0\.10$/,
    );
    await Deno.writeTextFile(join(root, "lam10", "probe.json"), probe(50));
    assert.match(
      (await runsReport([join(root, "lam10")])).verdicts[0].text,
      /probe\.json is of step 50, the run has trained to 100: re-run deno task probe/,
    );
    await Deno.remove(join(root, "lam10", "probe.json"));
    // An eval-unseen.json (deno task evaluate --unseen) adds D's skill on text the run never saw.
    await Deno.writeTextFile(
      join(root, "lam10", "eval-unseen.json"),
      JSON.stringify({
        step: 100,
        sequences: 1024,
        discAuc: 0.632,
        discAucSe: 0.002,
        rtdGain: 0.02,
        rtdGainSe: 0.0006,
        unseen: { part: null },
      }),
    );
    assert.match(
      (await runsReport([join(root, "lam10")])).verdicts[0].text,
      /; on 1024 sequences of text its corpus cap kept out of training \(eval-unseen\.json\) D has not learned yet: AUC 0\.632 ± 0\.002, RTD gain 0\.020 ± 0\.001 nats/,
    );
    await Deno.remove(join(root, "lam10", "eval-unseen.json"));
    assert.doesNotMatch(html, /log at different intervals/);
    assert.doesNotMatch(html, /<h2>Fine-tuning<\/h2>/, "no fine-tunes, no section");
    // These fixtures log the same MLM losses: said to be a sanity check, not a finding.
    assert.match(html, /lam50 and mlm; lam50 and lam10; mlm and lam10 log bit-identical generator losses/);
    // A finished fine-tune (metrics.json) gets a row with the floor it must clear; an unfinished one none.
    const tune = join(root, "lam50", "finetune", "echo-intact-s1");
    await Deno.mkdir(tune, { recursive: true });
    await Deno.mkdir(join(root, "lam50", "finetune", "echo-intact-s2"));
    const score = (accuracy: number) => ({ accuracy, macro_f1: 0.5, mcc: 0.1, n: 40 });
    await Deno.writeTextFile(
      join(tune, "metrics.json"),
      JSON.stringify({
        task: "echo-intact",
        seed: 1,
        source: "discriminator",
        metric: "accuracy",
        dev: score(0.7),
        test: score(0.65),
        constant: { dev: score(0.5), test: score(0.55) },
        one_class: { dev: 0.97, test: 0.6, flagged: true },
        sizes: { train: 300, dev: 40, test: 40 },
        hyper: { epochs: 2, learningRate: 0.001 },
      }),
    );
    // A fine-tune of a D that has not learned says so beside its score; a scratch control has no D.
    for (
      const [dir, source] of [["echo-reflexive-s0", "discriminator"], [
        "echo-reflexive-s0-scratch",
        "scratch",
      ]]
    ) {
      await Deno.mkdir(join(root, "lam10", "finetune", dir), { recursive: true });
      await Deno.writeTextFile(
        join(root, "lam10", "finetune", dir, "metrics.json"),
        JSON.stringify({
          task: "echo-reflexive",
          seed: 0,
          source,
          metric: "accuracy",
          dev: score(0.5),
          test: score(0.5),
        }),
      );
    }
    const tuned = await (await runsReport([root])).report.render();
    const reflexive = [...tuned.matchAll(/<tr>(<td.*?)<\/tr>/g)]
      .map((m) => [...m[1].matchAll(/<td[^>]*>([^<]*)<\/td>/g)].map((c) => c[1]))
      .filter((c) => c[2] === "echo-reflexive").map((c) => [c[1], c[5]]);
    assert.deepEqual(reflexive, [
      ["echo-reflexive-s0", "0.580 / 0.020 (not learned)"],
      ["echo-reflexive-s0-scratch", "— (no pre-training)"],
    ]);
    assert.match(tuned, /<h2>Fine-tuning<\/h2>/);
    const cells = (row: string) => [...row.matchAll(/<td[^>]*>([^<]*)<\/td>/g)].map((m) => m[1]);
    const rows = [...tuned.matchAll(/<tr>(<td.*?)<\/tr>/g)].map((m) => cells(m[1]))
      .filter((c) => c[2] === "echo-intact");
    assert.deepEqual(rows, [[
      "lam50",
      "echo-intact-s1",
      "echo-intact",
      "1",
      "discriminator",
      "0.800 / 0.100", // lam50's D: learned, so no "(not learned)"
      "300",
      "2",
      "0.001",
      "accuracy",
      "0.700 ⚠", // 97 % of dev predicted as one class; test's 60 % is not flagged
      "0.500",
      "0.650",
      "0.550",
      "40",
    ]]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("runs report: many runs of one mode each get a line of their own; runs logged at other intervals are flagged", async () => {
  const root = await Deno.makeTempDir();
  try {
    for (let k = 1; k <= 12; k++) {
      await writeRun(join(root, `r${k}`), { ...base, logEvery: k === 12 ? 5 : 10 }, { auc: 0.7, gain: 0.06 });
    }
    const { report } = await runsReport([root]);
    const html = await report.render();
    const lines = [
      ...html.matchAll(
        /"name":"(r\d+) \(gdes\)"[^}]*?"line":\{"color":"(#[0-9a-f]{6})","width":[\d.]+,"dash":"(\w+)"/g,
      ),
    ]
      .map((m) => ({ run: m[1], style: `${m[2]} ${m[3]}` }));
    const firstPanel = lines.slice(0, 12);
    assert.deepEqual(firstPanel.map((l) => l.run), Array.from({ length: 12 }, (_, k) => `r${k + 1}`));
    assert.equal(new Set(firstPanel.map((l) => l.style)).size, 12, "no two runs drawn alike");
    assert.match(html, /log at different intervals<\/strong> \(logEvery 10, 5\)/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("runs report: the training reading carries its batches' standard error, and says when it could go either way", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = join(root, "near");
    await Deno.mkdir(dir);
    await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(base));
    // 40 logged steps: the last tenth is 4 batches, AUC 0.58–0.64 (mean 0.61), gain 0.06–0.09 (mean 0.075).
    const late = [[0.58, 0.06], [0.64, 0.09], [0.6, 0.07], [0.62, 0.08]];
    const lines = Array.from({ length: 40 }, (_, i) => {
      const [auc, gain] = i >= 36 ? late[i - 36] : [0.55, 0.01];
      return JSON.stringify({
        step: 5 * (i + 1),
        loss_mlm: 5,
        loss_rtd: 0.3,
        disc_auc: auc,
        rtd_gain: gain,
        replaced_frac: 0.14,
      });
    });
    await Deno.writeTextFile(join(dir, "metrics.jsonl"), lines.join("\n") + "\n");
    const text = (await runsReport([dir])).verdicts[0].text;
    // sd(0.58, 0.64, 0.60, 0.62) / √4 = 0.0129; the AUC is 0.61, within two of them of 0.6.
    assert.match(
      text,
      /in training D has learned: AUC 0\.610 ± 0\.013, RTD gain 0\.075 ± 0\.006 nats \(last 4 of 40/,
    );
    assert.match(
      text,
      /could go either way: AUC 0\.6100 ± 0\.0129 \(threshold 0\.6\).*the last tenth is 4 batches/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("summary table: D's numbers never round across the learned thresholds", async () => {
  const root = await Deno.makeTempDir();
  try {
    await writeRun(join(root, "edge"), base, { auc: 0.59996, gain: 0.049996 });
    const { summary } = await runsReport([root]);
    const row = formatSummary(summary).objects()[0] as Record<string, string>;
    assert.equal(row["D AUC"], "0.59996");
    assert.equal(row["RTD gain"], "+0.049996");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("runs report: a run that has not logged a step yet is listed as such; with no steps at all, an error", async () => {
  const root = await Deno.makeTempDir();
  try {
    await writeThree(root);
    await Deno.mkdir(join(root, "fresh"));
    await Deno.writeTextFile(join(root, "fresh", "config.json"), JSON.stringify(base));
    await Deno.writeTextFile(join(root, "fresh", "metrics.jsonl"), "");
    const { verdicts, summary } = await runsReport([root]);
    assert.equal(verdicts.find((v) => v.run === "fresh")?.text, "fresh: no logged steps yet");
    assert.equal(summary.numRows(), 3);
    await assert.rejects(
      runsReport([join(root, "fresh")]),
      /no logged steps yet in .*fresh \(metrics\.jsonl is empty\)/,
    );
    await assert.rejects(reportedRuns([join(root, "nope")]), /nope does not exist/);
    await assert.rejects(
      reportedRuns([join(root, "lam10", "metrics.jsonl")]),
      /metrics\.jsonl is a file; give the run folder/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("deno task report: where a page goes by default", () => {
  const run = (dir: string) => ({ dir, name: dir, config: {}, logged: 1 });
  assert.equal(defaultOut(["runs/a"], [run("runs/a")]), join("runs", "a", "report.html"));
  assert.equal(
    defaultOut(["runs/demo"], [run("runs/demo/es"), run("runs/demo/nes")]),
    join("runs", "demo", "runs-report.html"),
  );
  assert.equal(
    defaultOut(["runs/a", "runs/b/"], [run("runs/a"), run("runs/b")]),
    join("runs", "report-a+b.html"),
  );
  assert.equal(
    defaultOut(["/tmp/study/gdes", "/tmp/study/nes"], [run("/tmp/study/gdes"), run("/tmp/study/nes")]),
    "/tmp/study/report-gdes+nes.html",
  );
  // The same folder typed twice is one run, in the page's name too.
  assert.equal(defaultOut(["runs/a", "./runs/a/"], [run("runs/a")]), join("runs", "a", "report.html"));
  assert.equal(
    defaultOut(["runs/a", "./runs/a/", "runs/b"], [run("runs/a"), run("runs/b")]),
    join("runs", "report-a+b.html"),
  );
});

Deno.test("deno task report: bad input is named and writes nothing; pages go where no other report is", async () => {
  const root = await Deno.makeTempDir();
  const report = async (...args: string[]) => {
    const script = new URL("../tasks/report.ts", import.meta.url).pathname;
    // From the temporary folder: a default runs/report-… page lands there, not in the repository.
    const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", script, ...args], cwd: root })
      .output();
    return {
      code: r.code,
      stdout: new TextDecoder().decode(r.stdout),
      stderr: new TextDecoder().decode(r.stderr),
    };
  };
  const exists = (p: string) => Deno.stat(p).then(() => true, () => false);
  try {
    await writeThree(root);
    await Deno.writeTextFile(
      join(root, "lam50", "eval.json"),
      JSON.stringify({ step: 100, heldOut: false, temperature: 1, discAuc: 0.71, rtdGain: 0.06 }),
    );
    const metrics = await Deno.readTextFile(join(root, "lam10", "metrics.jsonl"));
    await Deno.mkdir(join(root, "pages.html"));
    const usage: [string[], RegExp][] = [
      [[], /give at least one run folder/],
      [["lam5"], /lam5 does not exist/],
      [["lam10", "--out", root], /give an \.html file name, e\.g\. .*\/report\.html/],
      [["lam10", "--out", "pages.html"], /--out pages\.html is a folder; give a file name/],
      [
        ["lam10", "--out", "lam10/metrics.jsonl"],
        /--out lam10\/metrics\.jsonl: give an \.html file name, e\.g\. lam10\/report\.html$/m,
      ],
      [["lam10", "--out", "lam10/config.json/r.html"], /cannot write lam10\/config\.json\/r\.html/],
      [["lam10", "--smooth", "1.5"], /--smooth needs a number in \[0, 1\)/],
      [["lam10", "--smooth", ""], /--smooth needs a number in \[0, 1\), got ""/],
    ];
    for (const [args, message] of usage) {
      const r = await report(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    assert.equal(
      await Deno.readTextFile(join(root, "lam10", "metrics.jsonl")),
      metrics,
      "a run's log is never replaced",
    );
    assert.equal(await exists(join(root, "lam10", "report.html")), false);

    const one = await report("lam10");
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /- lam10: in training D has not learned yet/);
    assert.match(
      await Deno.readTextFile(join(root, "lam10", "report.html")),
      /<title>rtdlab runs: lam10<\/title>/,
    );
    // Several runs: named after them under runs/; the terminal shows every verdict the page does.
    const tune = join(root, "lam50", "finetune", "echo-intact-s0");
    await Deno.mkdir(tune, { recursive: true });
    const score = (accuracy: number) => ({ accuracy, macro_f1: 0.5, mcc: 0, n: 40 });
    await Deno.writeTextFile(
      join(tune, "metrics.json"),
      JSON.stringify({
        task: "echo-intact",
        seed: 0,
        source: "discriminator",
        metric: "accuracy",
        dev: score(0.61),
        test: score(0.62),
        constant: { dev: score(0.5), test: score(0.52) },
        sizes: { train: 300, dev: 40, test: 40 },
        hyper: { epochs: 2, learningRate: 0.001 },
      }),
    );
    const two = await report("lam50", "mlm");
    assert.match(
      two.stdout,
      /- lam50\/echo-intact-s0: discriminator \(D AUC \/ gain 0\.800 \/ 0\.100\), 300 examples × 2 epochs, lr 0\.001; accuracy dev 0\.610 \(constant 0\.500\), test 0\.620 \(constant 0\.520\)/,
    );
    assert.equal(two.code, 0, two.stderr);
    assert.match(two.stdout, /- mlm: no discriminator \(MLM baseline\)/);
    assert.match(two.stdout, /on its training sequences \(an optimistic reading; no held-out set\)/);
    assert.match(two.stdout, /wrote report-lam50\+mlm\.html \(2 runs\)/, "in the runs' common folder");
    assert.ok(await exists(join(root, "report-lam50+mlm.html")));
    // A folder of runs: inside it, beside (never over) a report.html another command wrote there.
    await Deno.writeTextFile(join(root, "report.html"), "the demo's page");
    const folder = await report(".", "--title", "λ");
    assert.equal(folder.code, 0, folder.stderr);
    assert.equal(await Deno.readTextFile(join(root, "report.html")), "the demo's page");
    assert.match(await Deno.readTextFile(join(root, "runs-report.html")), /<title>λ<\/title>/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

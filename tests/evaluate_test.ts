/**
 * `deno task evaluate --unseen`: a run judged on text of its corpus that its `corpusMaxChars` cap kept out
 * of training — never its training text, a seeded choice, one part of a combined corpus on request.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../lib/backend/mod.ts";
import { applyOverrides, preset, validateConfig } from "../lib/config.ts";
import { pretrain } from "../lib/train/run.ts";
import { evaluateRunDir, openRun, unseenSequences } from "../lib/report/trained.ts";
import { MICRO_SIZES, tempDir } from "./_helpers.ts";

await initBackend("wasm");
Deno.env.set("RTDLAB_CACHE", tempDir("rtdlab-cache-"));

/** `n` sentences over `words`, each starting with "The" (so the splitter sees every one). */
const sentences = (words: string[], n: number) =>
  Array.from({ length: n }, (_, i) => `The ${words[i % words.length]} ${words[(i * 3 + 1) % words.length]}.`)
    .join(" ");

// Two corpus folders combined: documents taken in turn, a1, b1, a2, b2. A cap of a1's length trains on a1
// alone; b1, a2 and b2 are the unseen text. Each document has words of its own.
const [dirA, dirB] = [tempDir("rtdlab-a-"), tempDir("rtdlab-b-")];
const a1 = sentences(["cat", "sat", "mat", "hat"], 80);
Deno.writeTextFileSync(join(dirA, "a1.txt"), a1);
Deno.writeTextFileSync(join(dirA, "a2.txt"), sentences(["ran", "tree", "red", "old"], 80));
Deno.writeTextFileSync(join(dirB, "b1.txt"), sentences(["fish", "swam", "lake", "blue"], 80));
Deno.writeTextFileSync(join(dirB, "b2.txt"), sentences(["bird", "flew", "sky", "high"], 80));
const corpus = `${dirA}+${dirB}`;

const config = validateConfig(applyOverrides(preset("tiny"), {
  corpus,
  corpusMaxChars: a1.length,
  tokenizerVocabSize: 60,
  maxPositions: 16,
  seqLength: 16,
  ...MICRO_SIZES,
  batchSize: 4,
  steps: 2,
  warmupSteps: 1,
  checkpointEvery: 0,
  heldOutSequences: 4,
}));
const runDir = join(tempDir(), "run");
(await pretrain({ config, outDir: runDir, noExport: true })).trainer.dispose();
const run = await openRun(runDir);
run.trainer.dispose();
const ids = (s: { inputIds: Int32Array }) => new Set(s.inputIds);

Deno.test("unseen sequences: only text the cap kept out, a seeded choice, one part on request", async () => {
  const tok = run.tokenizer;
  // Words only a1 — the training text — holds appear in no unseen sequence.
  const trainedOnly = ["sat", "mat"].map((w) => tok.encode(w)[0]);
  assert.ok(trainedOnly.every((id) => !tok.isSpecial(id)), "the tokenizer knows a1's words");
  const all = await unseenSequences(run.config, tok, { sequences: 6, seed: 0 });
  assert.equal(all.sequences.count, 6);
  assert.ok(all.unseen.available > 6);
  assert.ok(trainedOnly.every((id) => !ids(all.sequences).has(id)), "no sequence of the training text");
  assert.deepEqual(Object.keys(all.unseen.parts!).sort(), [dirA, dirB].sort(), "both parts left text out");
  assert.equal(all.unseen.part, null);
  // The same seed chooses the same sequences; another seed others.
  assert.deepEqual(
    (await unseenSequences(run.config, tok, { sequences: 6, seed: 0 })).sequences,
    all.sequences,
  );
  const reseeded = await unseenSequences(run.config, tok, { sequences: 6, seed: 1 });
  assert.notDeepEqual(reseeded.sequences.inputIds, all.sequences.inputIds);
  // One part: b1 and b2, all of their text and none of a2's; asking for more than there are gives all.
  const b = await unseenSequences(run.config, tok, { sequences: 100_000, part: dirB });
  assert.equal(b.sequences.count, b.unseen.available);
  assert.equal(b.unseen.part, dirB);
  assert.equal(b.unseen.chars, all.unseen.parts![dirB]);
  assert.ok(b.unseen.available < all.unseen.available);
});

Deno.test("unseen sequences: a run without a cap, a cap that keeps everything and a wrong part are named", async () => {
  const tok = run.tokenizer;
  await assert.rejects(
    () => unseenSequences({ ...run.config, corpusMaxChars: 0 }, tok),
    /trained on all of .* \(corpusMaxChars 0\): none of it is unseen/,
  );
  await assert.rejects(
    () => unseenSequences({ ...run.config, corpusMaxChars: 10_000_000 }, tok),
    /keeps all of .*: no text of it is unseen/,
  );
  await assert.rejects(
    () => unseenSequences(run.config, tok, { part: "brown" }),
    /no part "brown" in .*its parts:/,
  );
  await assert.rejects(
    () => unseenSequences({ ...run.config, corpus: dirA, corpusMaxChars: a1.length }, tok, { part: "x" }),
    /--part needs a combined corpus/,
  );
});

Deno.test("evaluateRunDir --unseen scores the unseen sequences and says so", async () => {
  const r = await evaluateRunDir(runDir, { unseen: {}, sequences: 8 });
  assert.equal(r.sequences, 8);
  assert.equal(r.heldOut, true);
  assert.ok(r.unseen && r.unseen.available > 8 && r.unseen.part === null);
  assert.equal(typeof r.discAuc, "number");
  const held = await evaluateRunDir(runDir);
  assert.equal(held.sequences, 4, "without --unseen: the held-out set");
  assert.equal(held.unseen, undefined);
});

Deno.test("deno task evaluate --unseen: the file says it is an unseen reading, so nothing takes it for the held-out one", async () => {
  const out = join(tempDir(), "eval-unseen.json");
  const script = new URL("../tasks/evaluate.ts", import.meta.url).pathname;
  const args = [
    "run",
    "-A",
    script,
    "--run",
    runDir,
    "--unseen",
    "--part",
    dirB,
    "--sequences",
    "8",
    "--out",
    out,
  ];
  const r = await new Deno.Command(Deno.execPath(), { args }).output();
  const stdout = new TextDecoder().decode(r.stdout);
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  assert.match(stdout, /8 unseen sequences/);
  assert.match(stdout, /from text the corpusMaxChars cap kept out of training \(its .* part/);
  const file = JSON.parse(await Deno.readTextFile(out));
  assert.deepEqual(file.settings.unseen, { part: dirB, sequences: 8 });
  assert.equal(file.unseen.part, dirB);
});

Deno.test("deno task evaluate --out: the file records --disallow-correct and, for a run with no held-out set, --sequences", async () => {
  const script = new URL("../tasks/evaluate.ts", import.meta.url).pathname;
  const noneHeld = join(tempDir(), "none-held");
  const c = validateConfig(applyOverrides(config, { heldOutSequences: 0 }));
  (await pretrain({ config: c, outDir: noneHeld, noExport: true })).trainer.dispose();
  const settings = async (run: string, ...flags: string[]) => {
    const out = join(tempDir(), "eval.json");
    const args = ["run", "-A", script, "--run", run, "--out", out, ...flags];
    const r = await new Deno.Command(Deno.execPath(), { args }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    return JSON.parse(await Deno.readTextFile(out)).settings;
  };
  // The usual reading's file is as it always was: a sweep's settings compare equal to it.
  assert.deepEqual(await settings(runDir), { temperature: 1, seed: 0, batchSize: 16 });
  // A run with a held-out set scores all of it, whatever --sequences says: not a setting of its reading.
  assert.deepEqual(await settings(runDir, "--disallow-correct", "--sequences", "3"), {
    temperature: 1,
    seed: 0,
    batchSize: 16,
    disallowCorrect: true,
  });
  assert.deepEqual(await settings(noneHeld, "--sequences", "3"), {
    temperature: 1,
    seed: 0,
    batchSize: 16,
    sequences: 3,
  });
  // On unseen text the count is the unseen reading's own, recorded once.
  assert.deepEqual(await settings(noneHeld, "--unseen", "--sequences", "5"), {
    temperature: 1,
    seed: 0,
    batchSize: 16,
    unseen: { part: null, sequences: 5 },
  });
});

Deno.test("openRun on an exported model says so, instead of naming its HuggingFace keys as unknown", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const hf = { architectures: ["ElectraForPreTraining"], model_type: "electra", hidden_size: 64 };
    await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(hf));
    await assert.rejects(openRun(dir), /is an exported model \(HuggingFace config\.json\), not a run folder/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("evaluateRunDir --generator-from: another run's generator makes the replacements, D stays this run's", async () => {
  // Runs of one data setting: GDES, the MLM baseline, and a GDES run of another seed.
  const dirs: Record<string, string> = {};
  for (
    const [name, over] of Object.entries({
      gdes: { sharing: "gdes", steps: 3 },
      mlm: { sharing: "mlm" },
      seed1: { seed: 1 },
      wide: { maskSelectProb: 0.3 },
      held: { heldOutSequences: 6 },
      vocab: { tokenizerVocabSize: 50 },
    })
  ) {
    dirs[name] = join(tempDir(), name);
    const c = validateConfig(applyOverrides(config, over));
    (await pretrain({ config: c, outDir: dirs[name], noExport: true })).trainer.dispose();
  }
  const own = await evaluateRunDir(runDir);
  // Its own generator named as "another" is its own evaluation.
  const self = await evaluateRunDir(runDir, { generatorFrom: runDir });
  assert.deepEqual(self.generatorFrom, { dir: runDir, step: 2 });
  assert.deepEqual({ ...self, generatorFrom: undefined }, { ...own, generatorFrom: undefined });
  // GDES's generator: its samples (the generator's numbers and the replaced fraction are GDES's own), this D.
  const gdesOwn = await evaluateRunDir(dirs.gdes);
  const cross = await evaluateRunDir(runDir, { generatorFrom: dirs.gdes });
  assert.deepEqual(cross.generatorFrom, { dir: dirs.gdes, step: 3 }, "the generator's own step");
  for (const k of ["lossMlm", "genAcc", "replacedFrac", "baseRate", "selected"] as const) {
    assert.equal(cross[k], gdesOwn[k], k);
  }
  assert.notEqual(cross.lossRtd, gdesOwn.lossRtd, "scored by this run's D, not GDES's");
  assert.notEqual(cross.lossMlm, own.lossMlm, "not this run's generator");
  // The MLM baseline's model can corrupt too: its masked-LM head is the generator.
  const mlm = await evaluateRunDir(runDir, { generatorFrom: dirs.mlm });
  assert.equal(mlm.lossMlm, (await evaluateRunDir(dirs.mlm)).lossMlm);
  assert.ok(mlm.discAuc !== null);
  // The generator's run masks: a discriminator trained at another mask rate sees the same corrupted sequences.
  const wide = await evaluateRunDir(dirs.wide, { generatorFrom: dirs.gdes });
  for (const k of ["selected", "replacedFrac", "lossMlm", "genAcc"] as const) {
    assert.equal(wide[k], gdesOwn[k], k);
  }
  assert.notEqual((await evaluateRunDir(dirs.wide)).selected, gdesOwn.selected, "its own masks differ");
  // Refused: an MLM run has no D; another seed holds out other rows.
  await assert.rejects(
    () => evaluateRunDir(dirs.mlm, { generatorFrom: runDir }),
    /is an MLM run: it has no discriminator/,
  );
  await assert.rejects(
    () => evaluateRunDir(runDir, { generatorFrom: dirs.seed1 }),
    /the generator's run .*seed1: its data settings differ from .*\(seed 1 vs 0\)/,
  );
  await assert.rejects(
    () => evaluateRunDir(runDir, { generatorFrom: dirs.held }),
    /its data settings differ .*\(heldOutSequences 6 vs 4\)/,
  );
  await assert.rejects(
    () => evaluateRunDir(runDir, { generatorFrom: dirs.vocab }),
    /its data settings differ .*\(tokenizerVocabSize 50 vs 60\)/,
  );
  // One token spelt otherwise (same size, same settings): another vocabulary all the same.
  const respelt = join(tempDir(), "respelt");
  await Deno.mkdir(respelt);
  for (const e of Deno.readDirSync(dirs.gdes)) {
    if (e.isFile) Deno.copyFileSync(join(dirs.gdes, e.name), join(respelt, e.name));
  }
  await Deno.symlink(join(dirs.gdes, "checkpoints"), join(respelt, "checkpoints"));
  const tok = JSON.parse(Deno.readTextFileSync(join(respelt, "tokenizer.json")));
  const [word, id] = Object.entries(tok.model.vocab as Record<string, number>).find(([w]) =>
    /^[a-z]+$/.test(w)
  )!;
  delete tok.model.vocab[word];
  tok.model.vocab[`${word}x`] = id;
  Deno.writeTextFileSync(join(respelt, "tokenizer.json"), JSON.stringify(tok));
  await assert.rejects(() => evaluateRunDir(runDir, { generatorFrom: respelt }), /its tokenizer differs/);
});

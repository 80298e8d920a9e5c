/**
 * The demo report helpers (lib/report/demo.ts) on hand-made runs whose numbers are known, and
 * lib/report/trained.ts on a real micro run (open the checkpoint, look at a sentence through it).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../lib/backend/mod.ts";
import { applyOverrides, preset, validateConfig } from "../lib/config.ts";
import { discriminatorView } from "../lib/probes/discriminator_view.ts";
import {
  baseRate,
  demoReport,
  discriminatorSkill,
  findings,
  formatSummary,
  loadRuns,
  meanSe,
  metricCurves,
  probeCurves,
  runSummary,
  stepNoise,
  SUMMARY_KEY,
  summaryText,
  tableFromRows,
  viewStats,
  viewStrip,
} from "../lib/report/mod.ts";
import { isCompleteRun, openRun, runTaskUnlessDone } from "../lib/report/trained.ts";
import { pretrain } from "../lib/train/run.ts";
import type { DiscriminatorViewRow } from "../lib/probes/discriminator_view.ts";
import { MICRO_SIZES, tempDir } from "./_helpers.ts";

const close = (a: number | null | undefined, b: number, eps = 1e-9) =>
  assert.ok(a !== null && a !== undefined && Math.abs(a - b) < eps, `${a} != ${b}`);

type Rec = Record<string, number | null>;

/** A deterministic wiggle, so the series have batch noise of a known size. */
const wiggle = (i: number, amp: number) => (i % 2 === 0 ? amp : -amp);

/**
 * Four runs of 20 logged steps (every 5), probes every 10: NES's and GDES's MLM loss fall faster than
 * ES's, NES's E_G is more self-similar than its E_D, GDES narrows the gap, ES's tow_cos is negative.
 */
async function writeRuns(root: string, logged = 20, esRate = 0.05): Promise<void> {
  const spec: Record<string, { rate: number; simG: number; simD: number; cos: number | null }> = {
    mlm: { rate: 0.05, simG: 0.2, simD: NaN, cos: null },
    es: { rate: esRate, simG: 0.1, simD: 0.1, cos: -0.05 },
    nes: { rate: 0.1, simG: 0.3, simD: 0.05, cos: 0.01 },
    gdes: { rate: 0.1, simG: 0.3, simD: 0.25, cos: 0.02 },
  };
  for (const [mode, s] of Object.entries(spec)) {
    const dir = join(root, mode);
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(
      join(dir, "config.json"),
      JSON.stringify({ sharing: mode, seed: 0, preset: "tiny", steps: 100, batchSize: 8, seqLength: 128 }),
    );
    const recs: Rec[] = [];
    for (let i = 0; i < logged; i++) {
      const step = 5 * (i + 1);
      const r: Rec = {
        step,
        loss_mlm: 9 - s.rate * step + wiggle(i, 0.01),
        loss_rtd: mode === "mlm" ? null : 0.6 - 0.002 * step,
        disc_acc: mode === "mlm" ? null : 0.85 + 0.001 * i,
        disc_acc_replaced: mode === "mlm" ? null : 0.01 * i,
        replaced_frac: mode === "mlm" ? null : 0.14,
        gen_acc: mode === "mlm" ? null : 0.002 * i,
        tokens_per_s: 1000,
      };
      if (step % 10 === 0) {
        r.tow_cos = s.cos === null ? null : s.cos + wiggle(i / 2, 0.001);
        r.sim_gen = s.simG + wiggle(i / 2, 0.0005);
        r.sim_disc = Number.isNaN(s.simD) ? null : s.simD;
        r.sim_delta = mode === "gdes" ? 0.01 : null;
      }
      recs.push(r);
    }
    await Deno.writeTextFile(
      join(dir, "metrics.jsonl"),
      recs.map((r) => JSON.stringify(r)).join("\n") + "\n",
    );
  }
}

Deno.test("meanSe and stepNoise", () => {
  const m = meanSe([1, 2, 3, 4]);
  close(m.mean, 2.5);
  close(m.se, Math.sqrt(5 / 3) / 2);
  assert.equal(meanSe([1]).se, null);
  // A straight line has no step noise; an alternating ±a series around it has noise a·√2 per step.
  close(stepNoise([1, 2, 3, 4, 5]), 0);
  close(stepNoise([0, 1, 0, 1, 0, 1]), Math.sqrt(1.2) / Math.SQRT2);
  assert.equal(stepNoise([1, 2]), null);
});

Deno.test("runSummary: first/last means, accuracies, probes, mode order", async () => {
  const root = tempDir();
  await writeRuns(root);
  const t = await loadRuns(root);
  const s = runSummary(t);
  const rows = s.objects() as Record<string, number | string | null>[];
  assert.deepEqual(rows.map((r) => r.sharing), ["mlm", "es", "nes", "gdes"]);
  const es = rows[1];
  assert.equal(es.steps, 100);
  // First three logged MLM values: steps 5, 10, 15 with wiggles +,−,+ of 0.01.
  close(es.mlm_first as number, 9 - 0.05 * 10 + 0.01 / 3, 1e-9);
  // "Last" is the last tenth of the 20 logged steps, as in compare and sweep: steps 95 and 100 (wiggles +, −).
  close(es.mlm_last as number, 9 - 0.05 * 97.5, 1e-9);
  close(es.disc_acc_replaced as number, 0.185, 1e-9);
  // A window of one's own choosing still works: the last 3 logged values.
  const es3 = (runSummary(t, { tail: 3 }).objects() as Record<string, number>[])[1];
  close(es3.mlm_last, 9 - 0.05 * 95 - 0.01 / 3, 1e-9);
  close(es3.disc_acc_replaced, 0.18, 1e-9);
  close(es.sim_gen as number, 0.1 + wiggle(19 / 2, 0.0005));
  close(es.tow_neg as number, 1);
  assert.equal(rows[0].rtd_first, null, "the MLM baseline has no RTD loss");
  assert.equal(rows[0].tow_cos, null);
  const text = summaryText(s);
  assert.match(text, /^run +\| D AUC +\| RTD gain +\| MLM loss first→last/);
  // The table (head, rule, four runs), a blank line, then the key to its columns.
  assert.equal(text.split("\n").length, 6 + 1 + SUMMARY_KEY.length);
  assert.match(
    text,
    /\nD AUC: D's ROC-AUC, replaced vs original tokens; RTD gain: base-rate entropy − RTD loss/,
  );
  assert.equal(summaryText(s, { key: false }).split("\n").length, 6);
  assert.match(text.split("\n")[2], /^mlm +\| — +\| — +\| 8\.\d{3} → 4\.\d{3} +\| \d\.\d{3} +\| — /);
  const f = formatSummary(s).objects() as Record<string, string>[];
  assert.equal(f.length, 4);
  assert.equal(f[1].run, "es");
  assert.equal(f[1]["tow cos"], "-0.0510");
  assert.equal(f[0]["RTD loss first→last"], "—");
  close(es.rtd_base as number, -(0.14 * Math.log(0.14) + 0.86 * Math.log(0.86)), 1e-12);
  // The base rate is the entropy of the replaced fraction over the last tenth (here rising 0.10 → 0.29).
  const rising = tableFromRows(
    Array.from({ length: 20 }, (_, i) => ({
      run: "es",
      sharing: "es",
      step: i + 1,
      loss_mlm: 5,
      loss_rtd: 0.4,
      replaced_frac: 0.1 + 0.01 * i,
    })),
  );
  close((runSummary(rising).objects()[0] as Record<string, number>).rtd_base, baseRate(0.285)!, 1e-12);
  assert.equal(baseRate(0), null);
  assert.equal(baseRate(null), null);
});

Deno.test("findings from two logged steps: no noise estimate, so no difference is called one", async () => {
  const root = tempDir();
  await writeRuns(root, 2);
  const f = Object.fromEntries(findings(await loadRuns(root)).map((x) => [x.id, x]));
  // ES and NES differ, but two values per run give no batch-to-batch noise to judge the gap against.
  assert.equal(f["nes-converges-faster"].verdict, "not measured");
  assert.match(f["nes-converges-faster"].text, /too few logged steps/);
  // Identical curves need no noise estimate: the sanity check passes.
  assert.equal(f["gdes-follows-nes"].verdict, "agrees");
  assert.match(f["gdes-follows-nes"].text, /GDES − NES = \+0\.000.*exactly/);
  // All three generators alike (a run of two steps): still a pass, not "further from NES than ES is".
  const same = tempDir();
  await writeRuns(same, 2, 0.1);
  const g = Object.fromEntries(findings(await loadRuns(same)).map((x) => [x.id, x]));
  assert.equal(g["gdes-follows-nes"].verdict, "agrees");
  assert.equal(g["nes-converges-faster"].verdict, "not measured");
  // One probe each (step 10): no spread, so the similarity and tug-of-war readings are not measured either.
  for (const id of ["nes-similarity-gap", "gdes-narrows-gap", "es-tug-of-war"]) {
    assert.equal(f[id].verdict, "not measured", id);
  }
});

Deno.test("findings read the paper's claims off the numbers", async () => {
  const root = tempDir();
  await writeRuns(root);
  const f = Object.fromEntries(findings(await loadRuns(root)).map((x) => [x.id, x]));
  assert.equal(f["nes-converges-faster"].verdict, "agrees");
  assert.ok((f["nes-converges-faster"].values.diff as number) < 0);
  assert.match(f["nes-converges-faster"].text, /ES \d\.\d{3}, NES \d\.\d{3}/);
  assert.equal(f["gdes-follows-nes"].verdict, "agrees");
  assert.match(f["gdes-follows-nes"].text, /GDES's curve is NES's exactly/);
  assert.equal(f["nes-similarity-gap"].verdict, "agrees");
  close(f["nes-similarity-gap"].values.gap as number, 0.25, 1e-3);
  assert.equal(f["gdes-narrows-gap"].verdict, "agrees");
  assert.equal(f["es-tug-of-war"].verdict, "agrees");
  close(f["es-tug-of-war"].values.negative_share as number, 1);
  // GDES tracking NES is a sanity check (paired init + decoupled G), said as such.
  assert.match(f["gdes-follows-nes"].claim, /^Sanity check, not a finding/);
  // These discriminators end at RTD loss 0.56 against a base rate of 0.405 (no AUC logged): not learned,
  // and every finding that reads D says so with the numbers; the others do not.
  const skill = discriminatorSkill(await loadRuns(root));
  assert.deepEqual(skill.map((k) => k.mode), ["es", "nes", "gdes"]);
  assert.ok(skill.every((k) => !k.learned && k.text.includes("has not learned yet")));
  close(skill[0].gain!, baseRate(0.14)! - (0.6 - 0.002 * 97.5), 1e-9); // the last tenth: steps 95, 100
  for (const id of ["es-tug-of-war", "nes-similarity-gap", "gdes-narrows-gap"]) {
    assert.match(
      f[id].text,
      /Caveat: .*discriminator has not learned yet \(AUC —, gain -?\d\.\d{3} nats\)/,
      id,
    );
  }
  assert.doesNotMatch(f["nes-converges-faster"].text, /Caveat/);

  // Swap roles: ES's generator now converges faster, and ES's tug-of-war is positive.
  const t2 = await loadRuns(root);
  const flipped = t2.derive({
    loss_mlm: (
      d: Record<string, number>,
    ) => (d.sharing === ("es" as unknown as number) ? d.loss_mlm - 5 : d.loss_mlm),
    tow_cos: (d: Record<string, number>) => (d.tow_cos === null ? null : -d.tow_cos),
  });
  const g = Object.fromEntries(findings(flipped).map((x) => [x.id, x]));
  assert.equal(g["nes-converges-faster"].verdict, "disagrees");
  assert.equal(g["es-tug-of-war"].verdict, "disagrees");

  // Discriminators that have learned: the findings that read D still carry its numbers, without a caveat.
  const skilled = t2.derive({ disc_auc: () => 0.9, rtd_gain: () => 0.2 });
  const k = Object.fromEntries(findings(skilled).map((x) => [x.id, x]));
  assert.match(
    k["gdes-narrows-gap"].text,
    /\(NES's D has learned: AUC 0\.900, gain 0\.200 nats; GDES's D has/,
  );
  assert.match(k["es-tug-of-war"].text, /ES's D has learned: AUC 0\.900, gain 0\.200 nats/);
  assert.doesNotMatch(k["es-tug-of-war"].text, /Caveat/);
  // The tug-of-war verdict reads the probed steps at which ES's D had learned: here all ten; in the fixture
  // (no AUC logged) none, and the text says the verdict reads every probe.
  assert.equal(k["es-tug-of-war"].values.learned_probes, 10);
  assert.match(
    k["es-tug-of-war"].text,
    /Over the 10 probed steps at which ES's D had learned .*: -0\.05\d\d ±/,
  );
  assert.match(f["es-tug-of-war"].text, /Fewer than 10 probed steps at which ES's D had learned/);
  // Skill on some steps only: the 5 probes from step 60 on have learned, too few, so every probe is read.
  const late = t2.derive({
    disc_auc: (d: Record<string, number>) => (d.step >= 60 ? 0.9 : 0.5),
    rtd_gain: () => 0.2,
  });
  const lateTow = findings(late).find((x) => x.id === "es-tug-of-war")!;
  assert.equal(lateTow.values.learned_probes, 5);
  assert.equal(lateTow.values.learned_mean, null);
  assert.doesNotMatch(k["nes-converges-faster"].text, /has learned/);
  // The similarity noise: the spread over the last third of the probes. Here the last three probes agree
  // exactly (a decayed learning rate), the ten before them wiggle by ±0.01: the noise is theirs, not 0.
  const probes = (mode: string, g: number, d: number) =>
    Array.from({ length: 30 }, (_, i) => ({
      run: mode,
      sharing: mode,
      step: 10 * (i + 1),
      sim_gen: g + (i < 27 ? wiggle(i, 0.01) : 0),
      sim_disc: d,
    }));
  const sims = findings(tableFromRows([...probes("nes", 0.3, 0.05), ...probes("gdes", 0.3, 0.25)]));
  const gap = sims.find((x) => x.id === "nes-similarity-gap")!;
  // The last ten: +,−,+,−,+,−,+ (×0.01), then 0, 0, 0: mean 0.001, squared deviations summing to 6.9e-4.
  close(gap.values.noise as number, Math.sqrt(6.9e-4 / 9), 1e-9);
  assert.match(gap.text, /spread over the last third of the probes ±0\.0\d{3}\): agrees/);

  // Missing modes are "not measured", not errors.
  const onlyEs = t2.filter((d: Record<string, string>) => d.sharing === "es");
  const h = findings(onlyEs);
  assert.ok(h.filter((x) => x.id !== "es-tug-of-war").every((x) => x.verdict === "not measured"));

  // The noise band is two standard errors: NES 1.5 standard errors below ES is within noise, 2.5 agrees.
  const series = (mode: string, level: number) =>
    Array.from(
      { length: 20 },
      (_, i) => ({ run: mode, sharing: mode, step: i + 1, loss_mlm: level + wiggle(i, 0.1) }),
    );
  const se = Math.SQRT2 * stepNoise(series("es", 0).map((r) => r.loss_mlm))! / Math.sqrt(20);
  for (const [gap, verdict] of [[1.5, "within noise"], [2.5, "agrees"]] as const) {
    const rows = [...series("es", 5), ...series("nes", 5 - gap * se)];
    const nes = findings(tableFromRows(rows)).find((x) => x.id === "nes-converges-faster")!;
    close(nes.values.se as number, se, 1e-12);
    assert.equal(nes.verdict, verdict, `NES ${gap} standard errors below ES`);
  }
});

function viewRows(): DiscriminatorViewRow[] {
  const toks = ["[CLS]", "the", "cat", "sat", "[SEP]", "[PAD]"];
  return toks.map((tok, i) => ({
    position: i,
    originalId: i,
    original: tok,
    inputId: i === 2 ? 4 : i,
    input: i === 2 ? "[MASK]" : tok,
    sampleId: i === 2 ? 99 : i,
    sample: i === 2 ? "dog" : tok,
    selected: i === 2,
    label: i === 2 ? 1 : 0,
    pReplaced: i === 2 ? 0.9 : 0.1,
  }));
}

Deno.test("viewStrip marks replaced tokens and drops padding; viewStats", () => {
  const rows = viewRows();
  const strip = viewStrip(rows, { title: "es" });
  assert.match(strip.html, /dog⟵cat/);
  assert.doesNotMatch(strip.html, /\[PAD\]/);
  assert.match(strip.text, /\*dog⟵cat\(0\.90\)/);
  const s = viewStats(rows);
  assert.equal(s.replaced, 1);
  close(s.pReplaced, 0.9);
  close(s.pOriginal, 0.1);
  close(s.accuracy, 1);
});

Deno.test("curves skip the steps where a metric was not logged (probes every k steps)", async () => {
  const root = tempDir();
  await writeRuns(root);
  const t = await loadRuns(root);
  for (const fig of [probeCurves(t, ["tow_cos", "sim_gen"]), metricCurves(t, "tow_cos", { by: "run" })]) {
    const lines = fig.data.filter((d) => d.type === "scatter");
    assert.ok(lines.length >= 3);
    for (const d of lines) {
      assert.ok((d.y as unknown[]).every((v) => v !== null), `${d.name}: no gaps`);
      assert.deepEqual(d.x, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    }
  }
});

Deno.test("demoReport: a standalone page with the summary, findings, charts and strips", async () => {
  const root = tempDir();
  await writeRuns(root);
  const report = await demoReport(root, {
    views: [{ mode: "es", rows: viewRows() }],
    sentence: "the cat sat",
    note: "wall time 1 s",
  });
  const html = await report.render();
  for (
    const s of [
      "Summary",
      "DeBERTaV3",
      "Losses",
      "Tug-of-war probes",
      "Embedding similarity",
      "dog⟵cat",
      "wall time 1 s",
      "NES&#39;s generator MLM loss converges faster",
    ]
  ) assert.ok(html.includes(s) || html.includes(s.replace("&#39;", "'")), s);
  assert.ok(report.figureCount >= 5, `figures: ${report.figureCount}`);
  assert.ok(!/src="https?:/.test(html), "no network scripts: the page works offline");
});

Deno.test("openRun reopens a run at its checkpoint; isCompleteRun", async () => {
  await initBackend("wasm");
  const prev = Deno.env.get("RTDLAB_CACHE");
  Deno.env.set("RTDLAB_CACHE", tempDir("rtdlab-cache-"));
  try {
    const corpus = tempDir("rtdlab-corpus-");
    for (let d = 0; d < 4; d++) {
      await Deno.writeTextFile(
        join(corpus, `d${d}.txt`),
        Array.from({ length: 40 }, (_, i) => `the cat ${i % 2 ? "sat on" : "ran to"} the mat.`).join(" "),
      );
    }
    const config = validateConfig(applyOverrides(preset("tiny"), {
      sharing: "gdes",
      corpus,
      tokenizerVocabSize: 60,
      maxPositions: 16,
      seqLength: 16,
      ...MICRO_SIZES,
      batchSize: 2,
      steps: 4,
      warmupSteps: 1,
      logEvery: 2,
      checkpointEvery: 0,
      probeEvery: 2,
    }));
    const out = join(tempDir(), "run");
    const r = await pretrain({ config, outDir: out, noExport: true, until: 2 });
    r.trainer.dispose();
    assert.equal(await isCompleteRun(out), false, "stopped at step 2 of 4");
    const r2 = await pretrain({ config, outDir: out, resume: true, noExport: true });
    const expected = await discriminatorView(r2.trainer.model, "the cat sat on the mat.", {
      tokenizer: r2.tokenizer,
      seed: 3,
    });
    r2.trainer.dispose();
    assert.equal(await isCompleteRun(out, { probe: true }), true);
    assert.equal(await isCompleteRun(out, { minSteps: 5 }), false);
    const opened = await openRun(out);
    try {
      assert.equal(opened.step, 4);
      assert.equal(opened.config.sharing, "gdes");
      const rows = await discriminatorView(opened.trainer.model, "the cat sat on the mat.", {
        tokenizer: opened.tokenizer,
        seed: 3,
      });
      assert.deepEqual(rows.map((x) => x.pReplaced), expected.map((x) => x.pReplaced), "same weights");
    } finally {
      opened.trainer.dispose();
    }
    await assert.rejects(() => openRun(tempDir()), /config\.json/);
  } finally {
    if (prev === undefined) Deno.env.delete("RTDLAB_CACHE");
    else Deno.env.set("RTDLAB_CACHE", prev);
  }
});

Deno.test("runTaskUnlessDone: runs the task only when its result is missing, and a failure says why", async () => {
  const said: string[] = [];
  let asked = 0;
  const done = () => {
    asked++;
    return Promise.resolve(true);
  };
  await runTaskUnlessDone(done, "pretrain", ["--stepz", "1"], (m) => said.push(m));
  assert.equal(asked, 1);
  assert.equal(said.length, 0, "a finished result runs nothing");
  await assert.rejects(
    () => runTaskUnlessDone(() => Promise.resolve(false), "pretrain", ["--stepz", "1"], (m) => said.push(m)),
    /deno task pretrain failed:\n[\s\S]*unknown option --stepz/,
  );
  assert.match(said[0], /^running `deno task pretrain --stepz 1` \.\.\.$/);
  await runTaskUnlessDone(() => Promise.resolve(false), "pretrain", ["--help"], (m) => said.push(m));
  assert.match(said.at(-1)!, /^deno task pretrain: done in \d+ s$/);
});

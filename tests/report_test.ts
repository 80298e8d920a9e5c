/**
 * lib/report (tables, smoothing, comparisons, figures, show, HTML report) on hand-checked fixture runs, and
 * the notebook runner end to end (skipped, with a message, when Debian's Jupyter packages are missing).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  compareModes,
  compareRuns,
  differencePlot,
  facetCurves,
  findRuns,
  formatMeanStd,
  groupCurves,
  loadRun,
  loadRuns,
  logTicks,
  lossCurves,
  METRIC_LABELS,
  metricCurves,
  mimeBundle,
  modeOrder,
  naturalCompare,
  probeCurves,
  Report,
  runNames,
  scoreDots,
  show,
  similarityBars,
  skillCurves,
  smooth,
  smoothSeries,
  type Table,
  tableFromRows,
  tokenHeatmap,
  tokenStrip,
  toText,
  wrapText,
  writeHtmlReport,
} from "../lib/report/mod.ts";
import { checkJupyter, parseArgs, ROOT, selectNotebooks } from "../tasks/notebooks.ts";

const close = (a: number | null | undefined, b: number, eps = 1e-9) =>
  assert.ok(a !== null && a !== undefined && Math.abs(a - b) < eps, `${a} != ${b}`);

type Rec = Record<string, number | null>;
type R = Record<string, unknown>;

/** A table's rows as plain records. */
const objs = (t: Table): R[] => t.objects() as R[];

function records(
  lossMlm: number[],
  lossRtd: (number | null)[],
  extra: (i: number) => Rec = () => ({}),
): Rec[] {
  return lossMlm.map((l, i) => ({
    step: i * 10,
    loss_mlm: l,
    loss_rtd: lossRtd[i],
    disc_acc: lossRtd[i] === null ? null : 0.5 + i * 0.1,
    gen_acc: 0.1 * i,
    lr: 1e-3,
    ...extra(i),
  }));
}

async function writeRun(
  dir: string,
  config: Record<string, unknown>,
  recs: Rec[],
  torn = false,
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify({ preset: "tiny", ...config }));
  const lines = recs.map((r) => JSON.stringify(r) + "\n").join("");
  await Deno.writeTextFile(join(dir, "metrics.jsonl"), lines + (torn ? '{"step": 40, "loss_ml' : ""));
  return dir;
}

/** Four runs: ES with seeds 0 and 1, GDES seed 0 (with probe keys), the MLM baseline (no RTD loss). */
async function fixture(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "rtdlab-report-" });
  await writeRun(
    join(root, "es-s0"),
    { sharing: "es", seed: 0 },
    records([4, 3, 2, 1], [0.7, 0.6, 0.5, 0.4]),
    true,
  );
  await writeRun(
    join(root, "es-s1"),
    { sharing: "es", seed: 1 },
    records([5, 4, 3, 3], [0.8, 0.6, 0.4, 0.2], (i) => ({ sim_gen: 0.3, sim_disc: 0.2 + i * 0 })),
  );
  await writeRun(
    join(root, "gdes-s0"),
    { sharing: "gdes", seed: 0 },
    records(
      [4, 3.5, 3, 2.5],
      [0.7, 0.5, 0.3, 0.1],
      (i) => ({ tow_cos: -0.1 * i, sim_gen: 0.5, sim_disc: 0.25, sim_delta: 0.05 }),
    ),
  );
  await writeRun(
    join(root, "mlm-s0"),
    { sharing: "mlm", seed: 0 },
    records([6, 5, 4, 3], [null, null, null, null]),
  );
  return root;
}

Deno.test("report: load runs into one table with identity columns, nulls for missing keys, torn lines skipped", async () => {
  const root = await fixture();
  try {
    assert.deepEqual((await findRuns(root)).map((d) => d.split("/").pop()), [
      "es-s0",
      "es-s1",
      "gdes-s0",
      "mlm-s0",
    ]);
    const one = await loadRun(join(root, "es-s0"));
    assert.equal(one.numRows(), 4, "the torn last line is skipped");
    assert.deepEqual(one.columnNames().slice(0, 5), ["run", "sharing", "seed", "preset", "step"]);
    assert.deepEqual(one.objects()[0], {
      run: "es-s0",
      sharing: "es",
      seed: 0,
      preset: "tiny",
      step: 0,
      loss_mlm: 4,
      loss_rtd: 0.7,
      disc_acc: 0.5,
      gen_acc: 0,
      lr: 1e-3,
    });
    const t = await loadRuns(root, { configKeys: ["preset"] });
    assert.equal(t.numRows(), 16);
    for (const k of ["tow_cos", "sim_gen", "sim_delta"]) assert.ok(t.columnNames().includes(k), k);
    const mlm = objs(t.filter((d: R) => d.sharing === "mlm"));
    assert.ok(mlm.every((r) => r.loss_rtd === null && r.tow_cos === null));
    assert.deepEqual(modeOrder(["gdes", "zzz", "es", "mlm", "nes"]), ["mlm", "es", "nes", "gdes", "zzz"]);
    assert.deepEqual(runNames(["/x/a/es", "/x/b/es"]), ["a/es", "b/es"]);
    assert.deepEqual(runNames(["/x/a/es", "/x/b/nes"]), ["es", "nes"]);
    await assert.rejects(() => loadRuns(join(root, "nothing")), /no run folder/);
    // A bad line before the last is damage: named, not skipped (as the training loop's reader does).
    const file = join(root, "es-s1", "metrics.jsonl");
    const lines = (await Deno.readTextFile(file)).split("\n");
    lines[1] = lines[1].slice(0, 10);
    await Deno.writeTextFile(file, lines.join("\n"));
    await assert.rejects(
      () => loadRun(join(root, "es-s1")),
      /es-s1\/metrics\.jsonl line 2 cannot be read \(.*\): the file is damaged/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("report: smoothing (debiased EMA, rolling mean) per run, in step order, nulls kept", async () => {
  const ema = smoothSeries([4, 3, 2, 1], { weight: 0.5 });
  [4, 10 / 3, 2.25 / 0.875, 1.625 / 0.9375].forEach((v, i) => close(ema[i], v));
  assert.deepEqual(smoothSeries([4, 3, 2, 1], { method: "rolling", window: 2 }), [4, 3.5, 2.5, 1.5]);
  assert.deepEqual(smoothSeries([1, null, 3], { method: "rolling", window: 2 }), [1, null, 3]);
  assert.deepEqual(smoothSeries([2, null, 2], { weight: 0.9 }), [2, null, 2]);
  assert.throws(() => smoothSeries([1], { weight: 1 }), /EMA weight/);

  const root = await fixture();
  try {
    // Rows shuffled: smoothing must follow each run's steps, not row order.
    const t = (await loadRuns(root)).orderby((d: Record<string, number>) => -d.step);
    const s = smooth(t, ["loss_mlm", "loss_rtd"], { method: "rolling", window: 2 });
    const es0 = objs(s.filter((d: R) => d.run === "es-s0").orderby("step"));
    assert.deepEqual(es0.map((r) => r.loss_mlm_smooth), [4, 3.5, 2.5, 1.5]);
    const mlm = objs(s.filter((d: R) => d.run === "mlm-s0"));
    assert.ok(mlm.every((r) => r.loss_rtd_smooth === null));
    const replaced = smooth(t, "loss_mlm", { weight: 0.5, suffix: "" });
    assert.ok(!replaced.columnNames().includes("loss_mlm_smooth"));
    assert.throws(() => smooth(t, "nope"), /no column "nope"/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("report: compare runs (final, last-k) and modes (mean ± std across seeds), mean curves", async () => {
  const root = await fixture();
  try {
    const t = await loadRuns(root);
    const runs = objs(compareRuns(t, ["loss_mlm", "loss_rtd"], { lastK: 2 }));
    const byRun = Object.fromEntries(runs.map((r) => [r.run as string, r]));
    assert.equal(byRun["es-s0"].steps, 30);
    assert.equal(byRun["es-s0"].loss_mlm_final, 1);
    assert.equal(byRun["es-s0"].loss_mlm_lastk, 1.5);
    assert.equal(byRun["es-s1"].loss_mlm_lastk, 3);
    close(byRun["es-s1"].loss_rtd_lastk as number, 0.3);
    assert.equal(byRun["mlm-s0"].loss_rtd_final, null);

    const modes = compareModes(t, ["loss_mlm", "loss_rtd", "not_logged"], { lastK: 2 });
    assert.ok(!modes.columnNames().includes("not_logged_mean"));
    const m = Object.fromEntries(objs(modes).map((r) => [r.sharing as string, r]));
    assert.deepEqual(modes.array("sharing"), ["mlm", "es", "gdes"]);
    assert.equal(m.es.runs, 2);
    close(m.es.loss_mlm_mean as number, 2.25);
    close(m.es.loss_mlm_std as number, Math.sqrt(1.125));
    close(m.gdes.loss_mlm_mean as number, 2.75);
    assert.equal(m.gdes.loss_mlm_std, null, "one run: no std");
    assert.equal(m.mlm.loss_rtd_mean, null);

    const f = objs(formatMeanStd(modes, 2));
    assert.equal(f[1].loss_mlm, "2.25 ± 1.06");
    assert.equal(f[2].loss_mlm, "2.75");
    assert.equal(f[0].loss_rtd, "–");

    const curves = groupCurves(t, ["loss_mlm"]);
    const es30 = objs(curves).find((r) => r.sharing === "es" && r.step === 30)!;
    assert.equal(es30.runs, 2);
    assert.equal(es30.loss_mlm_mean, 2);
    close(es30.loss_mlm_std as number, Math.SQRT2);
    assert.deepEqual([...new Set(Array.from(curves.array("sharing") as ArrayLike<string>))], [
      "mlm",
      "es",
      "gdes",
    ]);
    const bySeed = groupCurves(t, ["loss_mlm"], ["sharing", "seed"]);
    assert.equal(bySeed.numRows(), 16, "one row per (mode, seed, step)");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("report: figure builders produce the expected traces", async () => {
  const root = await fixture();
  try {
    const t = await loadRuns(root);
    const byRun = lossCurves(t);
    // loss_mlm: 4 runs; loss_rtd: 3 (the MLM baseline has none).
    assert.equal(byRun.data.length, 7);
    assert.deepEqual(byRun.data.filter((d) => d.xaxis === "x2").map((d) => d.name), [
      "es-s0",
      "es-s1",
      "gdes-s0",
    ]);
    assert.deepEqual(byRun.layout.grid, { rows: 1, columns: 2, pattern: "independent" });
    const es1 = byRun.data.find((d) => d.name === "es-s1")!;
    assert.deepEqual(es1.x, [0, 10, 20, 30]);
    assert.deepEqual(es1.y, [5, 4, 3, 3]);
    assert.deepEqual(
      es1.line,
      { color: "#1f77b4", dash: "dot", width: 2.5 },
      "second ES seed: same colour, dotted",
    );
    assert.equal(byRun.data.filter((d) => d.showlegend).length, 4, "one legend entry per run");

    const byMode = lossCurves(t, { by: "sharing" });
    const names = byMode.data.map((d) => `${d.xaxis}:${d.name}`);
    assert.deepEqual(names, [
      "x:mlm (1 run)",
      "x:es ± std",
      "x:es (2 runs)",
      "x:gdes (1 run)",
      "x2:es ± std",
      "x2:es (2 runs)",
      "x2:gdes (1 run)",
    ]);
    assert.deepEqual(byMode.data[2].y, [4.5, 3.5, 2.5, 2]);
    const band = byMode.data[1];
    assert.equal((band.x as number[]).length, 8);
    close((band.y as number[])[3], 2 + Math.SQRT2);

    const smoothed = lossCurves(t, { smooth: { method: "rolling", window: 2 }, metrics: ["loss_mlm"] });
    assert.deepEqual(smoothed.data.find((d) => d.name === "es-s0")!.y, [4, 3.5, 2.5, 1.5]);
    assert.equal(smoothed.layout.grid, undefined);
    // The x axes say what the step column holds.
    assert.deepEqual(byRun.layout.xaxis2, { title: { text: "step" } });
    const tokens = lossCurves(t, { xTitle: "tokens seen" });
    assert.deepEqual([tokens.layout.xaxis, tokens.layout.xaxis2], [
      { title: { text: "tokens seen" } },
      { title: { text: "tokens seen" } },
    ]);

    const probe = probeCurves(t, "tow_cos");
    assert.equal(probe.data.length, 1, "only GDES logged tow_cos");
    assert.equal(probe.data[0].name, "gdes (1 run)");
    assert.throws(() => probeCurves(t, "not_a_metric"), /none of/);

    const sim = similarityBars(t);
    assert.deepEqual(sim.data.map((d) => d.name), ["E_G", "E_D", "E_Δ"]);
    assert.deepEqual(sim.data[0].x, ["es", "gdes"], "modes without similarity logs are left out");
    assert.deepEqual(sim.data[0].y, [0.3, 0.5]);
    assert.deepEqual(sim.data[2].y, [null, 0.05]);
    const simRows = similarityBars([{ sharing: "nes", sim_gen: 0.4, sim_disc: 0.2, std: { sim_gen: 0.01 } }]);
    assert.equal(simRows.data.length, 2);
    // The MLM baseline's table is its encoder's, not a generator's: its own bar, not E_G's.
    const withMlm = similarityBars([{ sharing: "mlm", sim_gen: 0.5 }, { sharing: "nes", sim_gen: 0.4 }]);
    assert.deepEqual(withMlm.data.map((d) => [d.name, d.y]), [["E_G", [null, 0.4]], ["E (MLM encoder)", [
      0.5,
      null,
    ]]]);
    assert.deepEqual((simRows.data[0].error_y as { array: number[] }).array, [0.01]);

    const toks = Array.from({ length: 20 }, (_, i) => `t${i}`);
    const probs = toks.map((_, i) => i / 20);
    const heat = tokenHeatmap(toks, probs, { highlight: toks.map((_, i) => i === 3) });
    const z = heat.data[0].z as (number | null)[][];
    assert.equal(z.length, 2);
    assert.equal(z[1].length, 16);
    assert.equal(z[1][3], 19 / 20);
    assert.equal(z[1][4], null, "the short last row is padded");
    assert.equal((heat.data[0].text as string[][])[0][3], "<b>t3</b>");
    assert.equal((heat.data[0].text as string[][])[1][0], "t16");
    assert.throws(() => tokenHeatmap(["a"], [1, 2]), /differ in shape/);
    const multi = tokenHeatmap([["a", "b"], ["c"]], [[0.1, 0.9], [0.5]]);
    assert.deepEqual(multi.data[0].z, [[0.1, 0.9], [0.5, null]]);

    const strip = tokenStrip(["the", "<cat>"], [0.1, 0.9], { highlight: [false, true], title: "P" });
    assert.match(strip.html, /&lt;cat&gt;/);
    assert.match(strip.html, /rgba\(214,39,40,0\.900\)/);
    assert.equal(strip.text, "P\nthe(0.10) *<cat>(0.90)");
    // A strip has no colour bar: its key says what the shade and the underline mean.
    assert.match(strip.html, /shade: P\(replaced\) .*>0<.*>0\.5<.*>1</);
    assert.match(strip.html, /underlined bold<\/span>: marked/);
    const plain = tokenStrip(["a"], [0.2], { highlightLabel: "replaced" });
    assert.doesNotMatch(plain.html, /underlined/, "no underline key when nothing is underlined");
    const marks = tokenStrip(["a", "b"], [0, 0.6], { highlight: [false, true], shadeKey: false });
    assert.doesNotMatch(marks.html, /shade:/, "a shade that only marks gets no scale");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("report: D's skill is drawn with chance and the learned lines, in a colour no mode uses", () => {
  const rows = [0, 1, 2].flatMap((i) => [
    {
      run: "gdes",
      sharing: "gdes",
      step: 10 * i,
      disc_auc: 0.5 + 0.1 * i,
      rtd_gain: -0.27 + 0.1 * i,
      loss_mlm: 3,
    },
    { run: "es", sharing: "es", step: 10 * i, disc_auc: 0.55 + 0.1 * i, rtd_gain: 0.02 * i, loss_mlm: 3 },
  ]);
  const fig = skillCurves(tableFromRows(rows));
  assert.equal(fig.data.length, 4, "two runs on two panels");
  const shapes = fig.layout.shapes as { yref: string; y0: number; line: { color: string } }[];
  assert.deepEqual(shapes.map((s) => [s.yref, s.y0]), [["y", 0.5], ["y", 0.6], ["y2", 0.05]]);
  const modeColours = fig.data.map((d) => (d.line as { color: string }).color);
  assert.ok(
    shapes.every((s) => !modeColours.includes(s.line.color)),
    "a threshold is not mistaken for a run",
  );
  const labels = (fig.layout.annotations as { text: string; yref: string }[])
    .filter((a) => !a.yref.endsWith("domain")).map((a) => a.text);
  assert.deepEqual(labels, ["chance", "learned from 0.6", "learned from 0.05"]);
  // The gain axis stops above the uncalibrated start (−0.27), so the learned line is not squeezed flat.
  assert.deepEqual((fig.layout.yaxis2 as { autorangeoptions: unknown }).autorangeoptions, {
    minallowed: -0.1,
  });
  // ... and says where the curve goes that leaves the panel.
  assert.ok(
    (fig.layout.annotations as { text: string }[]).some((a) => a.text === "↓ off scale, down to -0.27"),
  );
  // Any figure that draws them gets the lines; a loss panel gets none, and they can be turned off.
  const mixed = metricCurves(tableFromRows(rows), ["loss_mlm", "rtd_gain"]);
  assert.deepEqual((mixed.layout.shapes as { yref: string }[]).map((s) => s.yref), ["y2"]);
  const bare = metricCurves(tableFromRows(rows), ["disc_auc"], { thresholds: false });
  assert.deepEqual(bare.layout.shapes, []);
  // Side by side, the label goes above each panel, not along its y axis.
  assert.equal(
    (fig.layout.yaxis as { title?: unknown }).title,
    undefined,
    "no y title to run into the next panel",
  );
  const above = (fig.layout.annotations as { text: string }[]).map((a) => a.text.replaceAll("<br>", " "));
  assert.ok(above.includes(METRIC_LABELS.disc_auc), "the full label, wrapped to the panel");
  assert.deepEqual(wrapText("discriminator ROC-AUC (replaced vs original)", 28), [
    "discriminator ROC-AUC",
    "(replaced vs original)",
  ]);
});

Deno.test("report: a second factor keeps one dash in every mode; numbers in names sort by value", () => {
  const rows = ["es", "nes", "gdes"].flatMap((mode) =>
    ["deberta", "electra"].map((backbone) => ({
      run: `${backbone} ${mode}`,
      sharing: mode,
      step: 0,
      disc_auc: 0.5,
    }))
  );
  const fig = metricCurves(tableFromRows(rows), ["disc_auc"], { dashBy: (run) => run.split(" ")[0] });
  const dashOf = (run: string) => (fig.data.find((d) => d.name === run)!.line as { dash: string }).dash;
  for (const mode of ["es", "nes", "gdes"]) {
    assert.equal(dashOf(`deberta ${mode}`), "solid", mode);
    assert.equal(dashOf(`electra ${mode}`), "dot", mode);
  }
  // Without dashBy the k-th run of a mode continues from the mode's own dash (GDES: dot, then dash).
  const plain = metricCurves(tableFromRows(rows), ["disc_auc"]);
  assert.equal((plain.data.find((d) => d.name === "electra gdes")!.line as { dash: string }).dash, "dash");

  assert.deepEqual(
    ["es mask 0.3", "es mask 0.15", "es mask 0.45", "λ = 200", "λ = 10", "λ = 50"].sort(naturalCompare),
    ["es mask 0.15", "es mask 0.3", "es mask 0.45", "λ = 10", "λ = 50", "λ = 200"],
  );
  const lam = metricCurves(
    tableFromRows(
      [200, 10, 50].map((l) => ({ run: `λ = ${l}`, sharing: `λ = ${l}`, step: 0, tow_ratio: l / 10 })),
    ),
    ["tow_ratio"],
    { logY: true, smooth: 0.6, title: "ratio" },
  );
  assert.deepEqual(lam.data.map((d) => d.name), ["λ = 10", "λ = 50", "λ = 200"]);
  const ramp = { "λ = 10": "#9ecae1", "λ = 50": "#4292c6", "λ = 200": "#08306b" };
  const ramped = metricCurves(
    tableFromRows(
      [200, 10, 50].map((l) => ({ run: `λ = ${l}`, sharing: `λ = ${l}`, step: 0, tow_ratio: l })),
    ),
    ["tow_ratio"],
    { colors: ramp },
  );
  assert.deepEqual(ramped.data.map((d) => (d.line as { color: string }).color), Object.values(ramp));
  assert.equal((lam.layout.title as { text: string }).text, "ratio (EMA 0.6)", "the smoothing is said");
});

Deno.test("report: scoreDots draws every fine-tune, marks one-class runs, and the constant classifier's floor", () => {
  const cell = (values: number[]) => ({
    mean: values.reduce((a, b) => a + b, 0) / values.length,
    std: 0.01,
    n: values.length,
    values: values.map((value, i) => ({ pretrainSeed: 0, finetuneSeed: i, value })),
  });
  const summary = {
    modes: ["es", "scratch"],
    tasks: ["a", "b"],
    metricOf: { a: "accuracy", b: "accuracy" },
    test: {
      es: { a: cell([0.7, 0.72]), b: cell([0.6, 0.62]) },
      scratch: { a: cell([0.52, 0.52]), b: cell([0.55, 0.57]) },
    },
  };
  const fig = scoreDots(summary, {
    constant: { a: 0.516 },
    oneClass: [{ mode: "scratch", task: "a", pretrain_seed: 0, finetune_seed: 1 }],
  });
  const byName = (n: string) => fig.data.find((d) => d.name === n)!;
  assert.deepEqual(byName("constant classifier").y, [51.6, 51.6, null], "a segment over task a only");
  assert.deepEqual((byName("es").y as number[]).map(Math.round), [71, 61], "means on the ×100 scale");
  const ok = byName("single fine-tuning run"), flagged = byName("run predicting one class (⚠)");
  assert.equal((ok.y as number[]).length + (flagged.y as number[]).length, 8, "every fine-tune is drawn");
  assert.deepEqual(flagged.y, [52]);
  // Two equal scores (scratch on a: 52 and 52) sit side by side, not on top of each other.
  const xs = [ok, flagged].flatMap((d) => (d.y as number[]).map((y, i) => [y, (d.x as number[])[i]]))
    .filter(([y]) => y === 52).map(([, x]) => x);
  assert.equal(new Set(xs).size, 2);
  const range = (fig.layout.yaxis as { range: number[] }).range;
  assert.ok(range[0] <= 45 && range[0] > 0 && range[1] >= 72, `y range ${range} starts near the floor`);
  assert.equal(scoreDots(summary).data.some((d) => d.name === "constant classifier"), false);
  // A task whose every fine-tune failed (no metric, no scores) is still drawn, marked "?".
  const failed = scoreDots({ modes: ["es"], tasks: ["c"], metricOf: {}, test: { es: {} } });
  assert.deepEqual((failed.layout.xaxis as { ticktext: string[] }).ticktext, ["c (?)"]);
  assert.deepEqual((failed.layout.yaxis as { range: number[] }).range, [45, 100]);
});

Deno.test("report: differencePlot puts each A − B at its mean with its 95 % interval, split by the verdict", () => {
  const rows = [
    {
      a: "gdes",
      b: "nes",
      mean: 0.113,
      stderr: 0.021,
      n: 3,
      interval: [0.05, 0.2] as [number, number],
      verdict: "a" as const,
    },
    {
      a: "gdes",
      b: "es",
      mean: 0.018,
      stderr: 0.019,
      n: 3,
      interval: [-0.06, 0.1] as [number, number],
      verdict: "noise" as const,
    },
    {
      a: "es",
      b: "mlm",
      mean: -0.066,
      stderr: 0.001,
      n: 2,
      interval: [-0.08, -0.05] as [number, number],
      verdict: "noise" as const,
    },
  ];
  const fig = differencePlot(rows);
  const [clear, noise] = fig.data;
  assert.deepEqual(clear.y, ["gdes − nes"]);
  assert.ok(Math.abs((clear.x as number[])[0] - 11.3) < 1e-9);
  const bar = clear.error_x as { array: number[]; arrayminus: number[] };
  assert.ok(
    Math.abs(bar.array[0] - 8.7) < 1e-9 && Math.abs(bar.arrayminus[0] - 6.3) < 1e-9,
    "to the interval's ends",
  );
  assert.deepEqual(noise.y, ["gdes − es", "es − mlm"]);
  assert.deepEqual((noise.marker as { color: string[] }).color, ["#aaaaaa", "#ffffff"], "n < 3: hollow");
  assert.deepEqual((fig.layout.yaxis as { categoryarray: string[] }).categoryarray, [
    "gdes − nes",
    "gdes − es",
    "es − mlm",
  ]);
});

Deno.test("report: log axes are ticked 1-2-5 in full, never a bare minor digit", () => {
  assert.deepEqual(logTicks([0.41, 36]), {
    tickvals: [0.2, 0.5, 1, 2, 5, 10, 20, 50],
    ticktext: ["0.2", "0.5", "1", "2", "5", "10", "20", "50"],
  });
  assert.deepEqual(logTicks([8e5, 1.6e7])!.ticktext, ["500k", "1M", "2M", "5M", "10M", "20M"]);
  // Many decades: only the decades.
  assert.deepEqual(logTicks([1e-3, 1e4])!.tickvals, [0.001, 0.01, 0.1, 1, 10, 100, 1000, 10000]);
  assert.equal(logTicks([0, -1, null]), null);
});

Deno.test("report: facetCurves puts each knob's runs in their own panel beside the reference", () => {
  const row = (run: string, knob: string, step: number, auc: number | null) => ({
    run,
    knob,
    step,
    sharing: "gdes",
    disc_auc: auc,
  });
  const t = tableFromRows([
    row("preset", "preset", 0, 0.5),
    row("preset", "preset", 10, 0.8),
    row("λ=10", "λ", 0, 0.5),
    row("λ=10", "λ", 10, 0.6),
    row("λ=200", "λ", 10, 0.9),
    row("λ=200", "λ", 0, 0.5),
    row("L=64", "sequence", 0, 0.5),
    row("L=64", "sequence", 10, null),
    row("L=64", "sequence", 20, 0.7),
  ]);
  const fig = facetCurves(t, "disc_auc", { facet: "knob", reference: "preset", columns: 2 });
  // Panel 1 (λ): the reference, then its two runs; panel 2 (sequence): the reference and its one run.
  assert.deepEqual(fig.data.map((d) => `${d.xaxis}:${d.name}`), [
    "x:preset",
    "x:λ=10",
    "x:λ=200",
    "x2:preset",
    "x2:L=64",
  ]);
  const grid = fig.layout.grid as { rows: number; columns: number };
  assert.deepEqual([grid.rows, grid.columns], [1, 2]);
  const l200 = fig.data[2];
  assert.deepEqual([l200.x, l200.y], [[0, 10], [0.5, 0.9]], "in step order");
  assert.deepEqual(fig.data[4].x, [0, 20], "unlogged steps are left out, not drawn as gaps");
  assert.notEqual(
    (fig.data[1].line as { color: string }).color,
    (fig.data[2].line as { color: string }).color,
    "runs in one panel differ in colour",
  );
  assert.equal((fig.data[0].line as { color: string }).color, (fig.data[3].line as { color: string }).color);
  // Each panel's title is its facet value over a key of its own runs' colours, two to a line.
  const titles = (fig.layout.annotations as { text: string }[]).map((a) => a.text);
  const entry = (run: string, i: number) => {
    const line = fig.data[i].line as { color: string };
    return `<span style="color:${line.color}">${i === 0 || i === 3 ? "╌" : "━"} ${run}</span>`;
  };
  assert.deepEqual(titles, [
    `<b>λ</b><br>${entry("preset", 0)}   ${entry("λ=10", 1)}<br>${entry("λ=200", 2)}`,
    `<b>sequence</b><br>${entry("preset", 3)}   ${entry("L=64", 4)}`,
  ]);
  assert.deepEqual(fig.layout.yaxis2, { matches: "y" }, "panels share their y range");
  // The figure's title sits at the top of the figure, clear of the panels' keys below it.
  assert.deepEqual(fig.layout.title, {
    text: "discriminator ROC-AUC (replaced vs original)",
    yref: "container",
    y: 1,
    yanchor: "top",
    pad: { t: 12 },
  });
  const marked = facetCurves(t, "disc_auc", { facet: "knob", hline: { y: 0.6, label: "learned" } });
  const shapes = marked.layout.shapes as { y0: number; yref: string }[];
  assert.deepEqual(
    shapes.map((l) => `${l.yref}@${l.y0}`),
    ["y@0.6", "y2@0.6", "y3@0.6"],
    "one line per panel",
  );
  assert.equal(
    (marked.layout.annotations as unknown[]).length,
    6,
    "each panel: its title and the line's label",
  );
  // Runs of very different lengths: every panel's x axis on a log scale, the y axes untouched.
  const logX = facetCurves(t, "disc_auc", { facet: "knob", logX: true }).layout;
  assert.deepEqual(
    ["xaxis", "xaxis2", "xaxis3"].map((k) => (logX[k] as { type?: string }).type),
    ["log", "log", "log"],
  );
  assert.equal((logX.yaxis as { type?: string }).type, undefined);
  const logXLines = metricCurves(t, ["disc_auc"], { logX: true }).layout.xaxis as { type?: string };
  assert.equal(logXLines.type, "log");
  // Without a reference every run is a panel member; the reference's own facet gets a panel then.
  assert.equal(facetCurves(t, "disc_auc", { facet: "knob" }).data.length, 4);
  assert.throws(() => facetCurves(t, "disc_auc", { facet: "nope" }), /no column "nope"/);
  assert.throws(() => facetCurves(t, "disc_auc", { facet: "knob", reference: "x" }), /reference run "x"/);
});

Deno.test("report: show() outside Jupyter prints text and never throws", async () => {
  const root = await fixture();
  const printed: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => printed.push(a.map(String).join(" "));
  try {
    const t = await loadRuns(root);
    await show(compareModes(t, ["loss_mlm"]));
    await show(lossCurves(t, { title: "Losses here" }));
    await show("**markdown**");
    await show(tokenStrip(["a"], [0.5]));
    await show({ nested: { x: 1 } });
    const broken = {
      columnNames: () => [],
      toHTML: () => "",
      numRows: () => 1,
      toMarkdown: () => {
        throw new Error("boom");
      },
    };
    await show(broken);
    await show(t, { limit: 3 });
  } finally {
    console.log = log;
    await Deno.remove(root, { recursive: true });
  }
  assert.match(printed[0], /\|sharing\|runs\|loss_mlm_mean\|loss_mlm_std\|/);
  assert.match(
    printed[1],
    /^\[figure\] Losses here: 7 scatter trace\(s\), 28 points \(mlm-s0, es-s0, es-s1, gdes-s0\)$/,
  );
  assert.equal(printed[2], "**markdown**");
  assert.equal(printed[3], "a(0.50)");
  assert.match(printed[4], /nested/);
  assert.match(printed[5], /cannot render object: boom/);
  assert.match(printed[6], /\(3 of 16 rows\)$/);
  assert.equal(toText(42), "42");
});

Deno.test("report: MIME bundles; plotly.js inlined only when asked", async () => {
  const fig = {
    data: [{ type: "scatter", y: [1, 2], name: "</script><b>x" }],
    layout: { title: { text: "t" } },
  };
  const plain = (await mimeBundle(fig))!;
  assert.deepEqual(plain["application/vnd.plotly.v1+json"], { data: fig.data, layout: fig.layout });
  const html = plain["text/html"] as string;
  assert.ok(!html.includes("plotly.js v"), "no library without withPlotly");
  assert.ok(!html.includes("</script><b>"), "names cannot close the script element");
  assert.match(html, /window\.Plotly\) draw\(\); else/);
  const first = (await mimeBundle(fig, {}, true))!["text/html"] as string;
  assert.equal(first.split("* plotly.js v").length - 1, 1);
  assert.ok(first.length > 1_000_000);
  assert.deepEqual(Object.keys((await mimeBundle("# hi"))!), ["text/markdown", "text/plain"]);
  assert.equal(await mimeBundle(3), null);
});

Deno.test("report: standalone HTML report holds the figures' data, the tables, and plotly.js once", async () => {
  const root = await fixture();
  try {
    const t = await loadRuns(root);
    const path = join(root, "out", "report.html");
    const r = new Report("Fixture <report>")
      .text("Four runs, **two** seeds of `es`.\n\nSecond paragraph.")
      .figure(lossCurves(t, { by: "sharing" }), "mean over seeds")
      .heading("Probes")
      .figure(similarityBars(t))
      .table(formatMeanStd(compareModes(t, ["loss_mlm"], { lastK: 2 })))
      .add(tokenStrip(["a", "b"], [0.2, 0.8]));
    assert.equal(r.figureCount, 2);
    assert.equal(await r.write(path), path);
    const html = await Deno.readTextFile(path);
    assert.equal(html.split("* plotly.js v").length - 1, 1, "plotly.js inlined exactly once");
    assert.equal(html.split('class="rtdlab-figure"').length - 1, 2);
    assert.match(html, /<title>Fixture &lt;report&gt;<\/title>/);
    assert.match(
      html,
      /<p>Four runs, <strong>two<\/strong> seeds of <code>es<\/code>\.<\/p>\n<p>Second paragraph\.<\/p>/,
    );
    assert.match(html, /"name":"es \(2 runs\)"/);
    assert.match(html, /"y":\[4\.5,3\.5,2\.5,2\]/);
    assert.match(html, /"name":"E_Δ"/);
    assert.match(html, /2\.2500 ± 1\.0607/);
    assert.match(html, /rtdlab-token-strip/);
    assert.ok(
      html.indexOf("rtdlab-figure") < html.indexOf("* plotly.js v"),
      "library after the figures (queued)",
    );
    assert.deepEqual(
      [...Deno.readDirSync(join(root, "out"))].map((e) => e.name),
      ["report.html"],
      "no temp left",
    );

    const noFig = join(root, "out", "tables.html");
    await writeHtmlReport(noFig, "Tables", ["Just a table.", compareRuns(t)]);
    assert.ok(!(await Deno.readTextFile(noFig)).includes("plotly.js v"), "no figures: no library");
    assert.throws(() => new Report("x").add(42), /cannot place a number/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("notebook runner: options and notebook selection", async () => {
  assert.equal(parseArgs(["--help"]), "help");
  const a = parseArgs(["--only", "00_smoke", "--timeout", "30", "--no-html"]);
  assert.ok(a !== "help");
  assert.deepEqual([a.only, a.timeout, a.html, a.out], [["00_smoke"], 30, false, "runs/notebooks"]);
  const eq = parseArgs(["--only=00_smoke", "--timeout=30", "--out=/tmp/nb"]) as Exclude<
    ReturnType<typeof parseArgs>,
    "help"
  >;
  assert.deepEqual(
    [eq.only, eq.timeout, eq.out],
    [["00_smoke"], 30, "/tmp/nb"],
    "--flag=value as --flag value",
  );
  assert.throws(() => parseArgs(["--timeout", "soon"]), /positive number/);
  assert.throws(() => parseArgs(["--frobnicate"]), /unknown option/);
  const sel = await selectNotebooks(
    parseArgs(["--only", "00_smoke.ipynb"]) as Exclude<ReturnType<typeof parseArgs>, "help">,
  );
  assert.deepEqual(sel, [join(ROOT, "notebooks/00_smoke.ipynb")]);
  await assert.rejects(
    () => selectNotebooks(parseArgs(["--only", "nope"]) as Exclude<ReturnType<typeof parseArgs>, "help">),
    /no notebook named nope \(known: .*00_smoke\.ipynb/,
  );
  // A file named without its folder: refused before any notebook runs, with the path that exists.
  await assert.rejects(
    () => selectNotebooks(parseArgs(["00_smoke.ipynb"]) as Exclude<ReturnType<typeof parseArgs>, "help">),
    /no notebook file 00_smoke\.ipynb \(did you mean .*notebooks\/00_smoke\.ipynb\?\)/,
  );
});

interface Cell {
  cell_type: string;
  id?: string;
  source: string | string[];
  outputs?: { output_type: string; data?: Record<string, unknown> }[];
}

/** nbformat stores multi-line strings as lists of lines. */
const text = (x: unknown): string => (Array.isArray(x) ? x.join("") : String(x ?? ""));

/** A notebook of code cells; `[source, metadata]` pairs give cells metadata. */
function notebookJson(cells: (string | [string, Record<string, unknown>])[]): string {
  return JSON.stringify({
    cells: cells.map((c, i) => ({
      cell_type: "code",
      execution_count: null,
      id: `c${i}`,
      metadata: typeof c === "string" ? {} : c[1],
      outputs: [],
      source: typeof c === "string" ? c : c[0],
    })),
    metadata: { kernelspec: { name: "deno", display_name: "Deno", language: "typescript" } },
    nbformat: 4,
    nbformat_minor: 5,
  });
}

const jupyterProblem = await checkJupyter();
if (jupyterProblem) console.log(`notebook runner test skipped: ${jupyterProblem}`);

Deno.test({
  name:
    "notebook runner: 00_smoke.ipynb runs with its plotly output; an error or a timeout fails, naming the cell",
  ignore: jupyterProblem !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "rtdlab-nb-" });
    try {
      await Deno.writeTextFile(
        join(dir, "bad.ipynb"),
        notebookJson(["const x = 1;", 'throw new Error("deliberate failure");', "console.log('never');"]),
      );
      await Deno.writeTextFile(
        join(dir, "slow.ipynb"),
        notebookJson([["await new Promise((r) => setTimeout(r, 60000));", { rtdlab: { timeout: 2 } }]]),
      );
      // One runner process for all three (each notebook gets its own kernel), to keep the test quick.
      const run = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          join(ROOT, "tasks/notebooks.ts"),
          "--no-install-kernel",
          "--no-html",
          "--grace",
          "0.3",
          "--timeout",
          "120",
          "--out",
          join(dir, "out"),
          join(ROOT, "notebooks/00_smoke.ipynb"),
          join(dir, "bad.ipynb"),
          join(dir, "slow.ipynb"),
        ],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
      assert.equal(run.code, 1, out);

      // The smoke notebook: table as HTML, the figure as plotly JSON in the right cell, plotly.js loaded once.
      assert.match(out, /ok +\S*00_smoke\.ipynb/, out);
      const nb = JSON.parse(await Deno.readTextFile(join(dir, "out", "00_smoke.ipynb")));
      const cellData = (id: string) =>
        (nb.cells.find((c: Cell) => c.id === id) as Cell).outputs!.map((o) => o.data ?? {});
      assert.match(
        text(cellData("smoke-1")[0]?.["text/html"]),
        /<table>/,
        "the table cell shows an HTML table",
      );
      const plotly = cellData("smoke-2").find((d) => d["application/vnd.plotly.v1+json"]);
      assert.ok(
        plotly,
        `the figure cell has the plotly output: ${JSON.stringify(cellData("smoke-2")).slice(0, 300)}`,
      );
      const fig = plotly["application/vnd.plotly.v1+json"] as { data: { name: string }[] };
      assert.deepEqual(fig.data.map((d) => d.name).slice(0, 2), ["es-s0", "gdes-s0"]);
      assert.equal(
        text(plotly["text/html"]).split("* plotly.js v").length - 1,
        1,
        "the first figure loads plotly.js",
      );
      assert.equal(nb.metadata.rtdlab.executed.ok, true);

      // The failing ones: notebook, cell and reason named; the executed copy keeps the error.
      assert.match(out, /FAILED .*bad\.ipynb/);
      assert.match(
        out,
        /bad\.ipynb: cell 2\/3 \(id c1\): 'throw new Error\("deliberate failure"\);' failed: .*deliberate failure/,
      );
      assert.match(out, /slow\.ipynb: cell 1\/1 \(id c0\): .* timed out after 2 s \(a timeout stops/);
      assert.doesNotMatch(out, /Task was destroyed|is unstable/, "no asyncio or kernel banner noise");
      const bad = JSON.parse(await Deno.readTextFile(join(dir, "out", "bad.ipynb")));
      assert.equal(bad.metadata.rtdlab.executed.ok, false);
      assert.ok(bad.cells[1].outputs.some((o: { output_type: string }) => o.output_type === "error"));
      assert.deepEqual(bad.cells[2].outputs, [], "cells after the error do not run");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("every notebook cell ends with a newline (deno 2.9.6's fmt --check on a cold cache needs it) and has a unique id", async () => {
  for (const path of await selectNotebooks(parseArgs([]) as Exclude<ReturnType<typeof parseArgs>, "help">)) {
    const nb = JSON.parse(await Deno.readTextFile(path));
    nb.cells.forEach((c: { source: string | string[] }, i: number) => {
      const text = Array.isArray(c.source) ? c.source.join("") : c.source;
      assert.ok(
        text === "" || text.endsWith("\n"),
        `${path} cell ${i}: add a trailing "\\n" to its last line`,
      );
    });
    // nbformat 4.5 requires cell ids (a missing one is a validation warning now, an error in later versions).
    const ids = nb.cells.map((c: { id?: string }) => c.id);
    ids.forEach((id: string | undefined, i: number) => assert.ok(id, `${path} cell ${i}: give it an "id"`));
    assert.equal(new Set(ids).size, ids.length, `${path}: cell ids repeat`);
  }
});

Deno.test("proseCheck: quoted numbers within their rounding match; others are listed with a warning", async () => {
  const { proseCheck, roundingTolerance } = await import("../lib/report/mod.ts");
  assert.equal(roundingTolerance(0.37), 0.005);
  assert.equal(roundingTolerance(12), 0.5);
  // Written as text, a quoted number keeps its trailing zeros, and the check its last digit.
  assert.equal(roundingTolerance("0.030"), 0.0005);
  assert.ok(proseCheck([{ what: "gain", quoted: 0.030, measured: 0.0334 }], "r").matches, "0.03 ± 0.005");
  assert.deepEqual(
    proseCheck([{ what: "gain", quoted: "0.030", measured: 0.0334 }], "r").differing.map((q) => q.what),
    ["gain"],
  );
  assert.ok(proseCheck([{ what: "gain", quoted: "-0.030", measured: -0.0304 }], "r").matches);
  assert.throws(() => roundingTolerance("0,030"), /a quoted number is written as "0,030": give digits/);
  // Given its own tolerance, a quote still has to be a number; one JavaScript writes with an exponent is one.
  assert.throws(
    () => proseCheck([{ what: "x", quoted: "", measured: 0, tolerance: 1 }], "r"),
    /written as ""/,
  );
  assert.equal(roundingTolerance(1e-7), 0.5e-7);
  assert.equal(roundingTolerance(1.5e21), 0.5e20); // "1.5e+21": its last digit is the 1e20s
  const ok = proseCheck([{ what: "RTD loss", quoted: 0.37, measured: 0.3712 }], "runs/demo (seed 0)");
  assert.ok(ok.matches);
  assert.match(ok.markdown, /match this run/);
  const bad = proseCheck([
    { what: "RTD loss", quoted: 0.37, measured: 0.41 },
    { what: "AUC", quoted: 0.57, measured: null },
    { what: "steps", quoted: 300, measured: 300 },
  ], "runs/demo (seed 0)");
  assert.ok(!bad.matches);
  assert.deepEqual(bad.differing.map((q) => q.what), ["RTD loss", "AUC"]);
  assert.match(bad.markdown, /⚠ The reading above was written from runs\/demo \(seed 0\)/);
  assert.match(bad.markdown, /\| AUC \| 0\.57 \| — \(not in this run\) \|/);
});

/**
 * The equal-compute comparison's bookkeeping (lib/finetune/compare.ts): per mode and task the mean ± std
 * of the test and dev scores, the per-run task average, the tables, and the paired differences whose
 * verdicts notebook 04 and the README quote.
 */

import assert from "node:assert/strict";
import {
  type ComparisonEntry,
  comparisonTable,
  pairedDifference,
  summarizeComparison,
} from "../lib/finetune/compare.ts";
import { studentT975 } from "../lib/finetune/metrics.ts";
import type { FinetuneMetricsFile } from "../lib/finetune/run.ts";

/** A fine-tuning result scoring `test` (and `dev`) accuracy; `oneClass` marks a degenerate fine-tune. */
function entry(
  mode: string,
  task: string,
  pretrainSeed: number,
  finetuneSeed: number,
  test: number,
  dev = test,
  oneClass = false,
): ComparisonEntry {
  const metrics = {
    metric: "accuracy",
    test: { accuracy: test },
    dev: { accuracy: dev },
    ...(oneClass ? { one_class: { dev: 1, test: 1, label: "yes", flagged: true } } : {}),
  } as unknown as FinetuneMetricsFile;
  return { mode, task, pretrainSeed, finetuneSeed, metrics };
}

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

Deno.test("summary: mean ± std per mode and task, one-class fine-tunes counted, the average only over complete runs", () => {
  const entries = [
    entry("es", "a", 0, 0, 0.7, 0.72),
    entry("es", "a", 0, 1, 0.8, 0.78),
    entry("es", "b", 0, 0, 0.5),
    entry("es", "b", 0, 1, 0.6, 0.6, true),
    entry("scratch", "a", 0, 0, 0.55),
    // scratch's seed 1 has no result on task b: that run is left out of its average, not averaged over a.
    entry("scratch", "a", 0, 1, 0.65),
    entry("scratch", "b", 0, 0, 0.45),
  ];
  const s = summarizeComparison(entries, ["es", "scratch"], ["a", "b"]);
  close(s.test.es.a.mean, 0.75, "es on a");
  close(s.test.es.a.std, Math.sqrt(0.005), "sample std of 0.7 and 0.8");
  close(s.dev.es.a.mean, 0.75, "dev is kept apart");
  assert.equal(s.test.es.b.oneClass, 1);
  assert.equal(s.test.es.a.oneClass, undefined);
  assert.deepEqual(s.average.es.values.map((v) => v.value), [0.6, 0.7]);
  assert.deepEqual(s.average.scratch.values, [{ pretrainSeed: 0, finetuneSeed: 0, value: 0.5 }]);
  assert.equal(s.entries, 7);

  const test = comparisonTable(s, "test");
  assert.match(test, /\| mode +\| a \(acc\) +\| b \(acc\) +\| average/);
  assert.match(test, /\| es +\| 75\.0 ± 7\.1 +\| 55\.0 ± 7\.1 ⚠1\/2 +\| 65\.0 ± 7\.1 +\|/);
  // No dev average is computed, so the dev table has no such column (it used to be an empty one).
  const dev = comparisonTable(s, "dev");
  assert.doesNotMatch(dev, /average/);
  assert.equal(dev.split("\n")[0].split("|").length, test.split("\n")[0].split("|").length - 1);
});

Deno.test("paired differences: pairs share seeds (scratch on the fine-tuning seed); a 95 % t interval clear of zero and three pairs call a winner", () => {
  const es = [0.70, 0.72, 0.74], nes = [0.60, 0.63, 0.61], gdes = [0.71, 0.70, 0.76];
  const entries = [0, 1, 2].flatMap((ft) => [
    entry("es", "a", 0, ft, es[ft]),
    entry("nes", "a", 0, ft, nes[ft]),
    entry("gdes", "a", 0, ft, gdes[ft]),
    entry("scratch", "a", 0, ft, 0.5),
  ]);
  const s = summarizeComparison(entries, ["es", "nes", "gdes", "scratch"], ["a"]);
  const esNes = pairedDifference(s, "es", "nes", "a");
  close(esNes.mean, 0.64 / 6, "mean of 0.10, 0.09, 0.13");
  assert.equal(esNes.n, 3);
  assert.equal(esNes.verdict, "a");
  // gdes − es: differences +0.01, −0.02, +0.02: within noise.
  assert.equal(pairedDifference(s, "gdes", "es", "a").verdict, "noise");
  assert.equal(pairedDifference(s, "nes", "es", "average").verdict, "b");
  const scratch = pairedDifference(s, "scratch", "es", "a");
  assert.equal(scratch.n, 3, "scratch pairs on the fine-tuning seed");
  assert.equal(scratch.verdict, "b");
  assert.equal(esNes.unit, "fine-tuning seed", "one encoder: the fine-tuning seeds are the replicates");
  // The 95 % interval is mean ± t(2) · SE, t(2) = 4.303: far wider than ± 2 SE with three pairs.
  close(esNes.interval[1] - esNes.mean, 4.303 * esNes.stderr, "t interval");
  // Two pairs are too few for the rule, however clear the gap.
  const two = summarizeComparison(entries.filter((e) => e.finetuneSeed < 2), ["es", "nes"], ["a"]);
  assert.equal(pairedDifference(two, "es", "nes", "a").verdict, "noise");
  assert.throws(() => pairedDifference(s, "es", "mlm", "a"), /no cells for es \/ mlm/);
});

Deno.test("studentT975: Student's t at 97.5 % (the tables' values), towards 1.960 past 30 degrees of freedom", () => {
  for (const [df, t] of [[1, 12.706], [2, 4.303], [4, 2.776], [10, 2.228], [30, 2.042]]) {
    close(studentT975(df), t, `df ${df}`);
  }
  assert.ok(Math.abs(studentT975(60) - 2.0) < 0.002, `df 60: ${studentT975(60)}`);
  assert.ok(Math.abs(studentT975(1e6) - 1.96) < 1e-3);
  assert.ok(Number.isNaN(studentT975(0)));
});

Deno.test("paired differences: with several pre-training seeds the encoder is the replicate, not the fine-tune", () => {
  // Three encoders whose gains over scratch are +1, +1.4 and +13.5 points, each fine-tuned with three seeds
  // that barely move it, against three scratch runs reused for every encoder: nine fine-tunes, but three
  // independent encoders. Counted as nine pairs the gain would look clear (5.3 > 2 × 2.1); over encoders it
  // is +5.3 ± 4.1 and its 95 % interval spans zero.
  const gain = [0.01, 0.014, 0.135], scratch = [0.6, 0.62, 0.58];
  const comparison = (gains: number[]) =>
    summarizeComparison(
      [0, 1, 2].flatMap((ps) =>
        [0, 1, 2].flatMap((ft) => [
          entry("nes", "t", ps, ft, scratch[ft] + gains[ps] + 0.001 * ft),
          ...(ps === 0 ? [entry("scratch", "t", 0, ft, scratch[ft])] : []),
        ])
      ),
      ["nes", "scratch"],
      ["t"],
    );
  const s = comparison(gain);
  for (const [a, b, sign] of [["nes", "scratch", 1], ["scratch", "nes", -1]] as const) {
    const d = pairedDifference(s, a, b, "t");
    assert.equal(d.unit, "pretraining seed");
    assert.deepEqual([d.n, d.pairs], [3, 9]);
    assert.deepEqual(d.encoders.map((e) => e.pretrainSeed), [0, 1, 2]);
    d.encoders.forEach((e, i) => close(e.mean, sign * (gain[i] + 0.001), `encoder ${i}`));
    close(d.mean, sign * (0.053 + 0.001), "mean of the encoders' means");
    const perEncoder = gain.map((g) => g + 0.001);
    const sd = Math.sqrt(perEncoder.reduce((t, x) => t + (x - 0.054) ** 2, 0) / 2);
    // Plus the fine-tuning seeds' spread, which every encoder shares (here 0.001 per seed: sd 0.001).
    close(d.stderr, Math.sqrt(sd ** 2 / 3 + 0.001 ** 2 / 3), "SE over the encoders and the seeds");
    assert.ok(d.interval[0] < 0 && d.interval[1] > 0, JSON.stringify(d));
    assert.equal(d.verdict, "noise");
  }
  // Encoders that agree are a clear gain.
  const steady = comparison([0.05, 0.052, 0.049]);
  assert.equal(pairedDifference(steady, "nes", "scratch", "t").verdict, "a");
  // Encoders that agree only because the one scratch run of each seed is shared: each fine-tuning seed moves
  // every encoder alike (+0.11, −0.07, −0.01), so the encoders' means are equal and their spread is 0. The
  // seeds' spread is the error: +0.01 ± 0.053 is noise, not a gain known to ± 0.
  const shared = [0.11, -0.07, -0.01];
  const seedBound = summarizeComparison(
    [0, 1, 2].flatMap((ps) =>
      [0, 1, 2].flatMap((ft) => [
        entry("nes", "t", ps, ft, scratch[ft] + shared[ft]),
        ...(ps === 0 ? [entry("scratch", "t", 0, ft, scratch[ft])] : []),
      ])
    ),
    ["nes", "scratch"],
    ["t"],
  );
  const sb = pairedDifference(seedBound, "nes", "scratch", "t");
  close(sb.std, 0, "no spread between encoders");
  close(sb.stderr, 0.09165151389911681 / Math.sqrt(3), "the seeds' spread");
  assert.equal(sb.verdict, "noise");
  // A design of three encoders of which one pairs: no verdict, not one encoder's fine-tunes as replicates.
  const lone = summarizeComparison(
    [0, 1, 2].flatMap((ps) =>
      [0, 1, 2].flatMap((ft) => [
        entry("nes", "t", ps, ft, 0.7 + 0.001 * ft),
        ...(ps === 0 ? [entry("es", "t", 0, ft, 0.6)] : []),
      ])
    ),
    ["nes", "es"],
    ["t"],
  );
  const l = pairedDifference(lone, "nes", "es", "t");
  assert.deepEqual([l.unit, l.n, l.verdict], ["pretraining seed", 1, "noise"]);
});

Deno.test("paired differences: the error is the pairs' own (std/√n), 2.3 standard errors of three pairs is noise, pairs match both seeds, dev cells hold dev scores", () => {
  // b varies a lot seed to seed and a tracks it: the paired differences 0.02, −0.01, 0.05 (mean 0.02,
  // std 0.03): far tighter than either row's own spread, and only 1.15 standard errors from 0.
  const b = [0.50, 0.70, 0.60], d = [0.02, -0.01, 0.05];
  const tracked = [0, 1, 2].flatMap((
    ft,
  ) => [entry("a", "t", 0, ft, b[ft] + d[ft]), entry("b", "t", 0, ft, b[ft])]);
  const p = pairedDifference(summarizeComparison(tracked, ["a", "b"], ["t"]), "a", "b", "t");
  assert.ok(Math.abs(p.mean - 0.02) < 1e-9 && Math.abs(p.std - 0.03) < 1e-9, JSON.stringify(p));
  assert.ok(Math.abs(p.stderr - 0.03 / Math.sqrt(3)) < 1e-9, `stderr ${p.stderr}`);
  assert.equal(p.verdict, "noise", "1.15 standard errors is not a winner");
  // Nor is 2.3: with three pairs the 95 % interval reaches 4.3 standard errors (Student's t, 2 df).
  const wider = [0.02, 0.05, 0.11];
  const w = pairedDifference(
    summarizeComparison(
      [0, 1, 2].flatMap((ft) => [entry("a", "t", 0, ft, b[ft] + wider[ft]), entry("b", "t", 0, ft, b[ft])]),
      ["a", "b"],
      ["t"],
    ),
    "a",
    "b",
    "t",
  );
  assert.ok(w.mean > 2 * w.stderr && w.mean < 4.303 * w.stderr, JSON.stringify(w));
  assert.equal(w.verdict, "noise");
  // Pairs are (pre-training seed, fine-tuning seed): pre-training seed 1 scores 0.2 higher in both rows.
  const seeds = [0, 1].flatMap((ps) =>
    [0, 1].flatMap((ft) => [
      entry("es", "t", ps, ft, 0.6 + 0.2 * ps + 0.01 * ft),
      entry("nes", "t", ps, ft, 0.59 + 0.2 * ps + 0.01 * ft),
    ])
  );
  const q = pairedDifference(summarizeComparison(seeds, ["es", "nes"], ["t"]), "es", "nes", "t");
  assert.equal(q.n, 2, "two encoders");
  assert.equal(q.pairs, 4);
  assert.ok(Math.abs(q.mean - 0.01) < 1e-9 && q.std < 1e-9, JSON.stringify(q));
  assert.equal(q.verdict, "noise", "two encoders are too few for the rule, however consistent");
  // The dev cell is the dev scores, not the test scores.
  const s = summarizeComparison(
    [entry("es", "t", 0, 0, 0.7, 0.9), entry("es", "t", 0, 1, 0.8, 0.6)],
    ["es"],
    ["t"],
  );
  assert.deepEqual(s.dev.es.t.values.map((v) => v.value), [0.9, 0.6]);
  assert.deepEqual(s.test.es.t.values.map((v) => v.value), [0.7, 0.8]);
});

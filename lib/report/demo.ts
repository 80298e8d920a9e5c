/**
 * The demo's report: a per-run summary table, the readings of DeBERTaV3's findings computed from the
 * measured numbers, the discriminator's view of a sentence as a token strip, and {@link demoReport}, which
 * puts them together with the loss, accuracy, probe and similarity charts into one standalone page.
 *
 * Everything here reads metric tables ({@link loadRuns}); nothing trains or loads a model, so it runs
 * without a tfjs backend. `lib/report/trained.ts` opens a run's checkpoint for the token strips.
 *
 * ```ts
 * const t = await loadRuns("runs/demo");
 * console.log(summaryText(runSummary(t)));
 * for (const f of findings(t)) console.log(f.text);
 * await (await demoReport("runs/demo")).write("runs/demo/report.html");
 * ```
 *
 * @module
 */

import { generatorSize, type RunConfig } from "../config.ts";
import { binaryEntropy, formatAgainst, lastTenth, NOT_LEARNED, notLearned } from "../train/rtd_metrics.ts";
import type { DiscriminatorViewRow } from "../probes/discriminator_view.ts";
import {
  type HtmlBlock,
  lossCurves,
  metricCurves,
  probeCurves,
  similarityBars,
  skillCurves,
  tokenStrip,
} from "./figures.ts";
import { Report } from "./html.ts";
import { loadRuns, modeOrder, readRunConfig, runIndices, type Table, tableFromRows } from "./metrics.ts";

type Row = Record<string, unknown>;

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function mean(xs: number[]): number | null {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

/** Mean and standard error (sample std / √n; null for fewer than two values) of `xs`. */
export function meanSe(xs: number[]): { mean: number | null; se: number | null; n: number } {
  const m = mean(xs);
  if (m === null || xs.length < 2) return { mean: m, se: null, n: xs.length };
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
  return { mean: m, se: sd / Math.sqrt(xs.length), n: xs.length };
}

/**
 * Batch-to-batch noise of a logged series: the std of consecutive differences / √2 (the trend cancels, the
 * independent per-batch noise remains). Null for fewer than three values.
 */
export function stepNoise(xs: number[]): number | null {
  if (xs.length < 3) return null;
  const d = xs.slice(1).map((x, i) => x - xs[i]);
  const m = mean(d)!;
  return Math.sqrt(d.reduce((a, x) => a + (x - m) ** 2, 0) / (d.length - 1)) / Math.SQRT2;
}

/** The non-null values of `metric` of each run, in step order, with their steps. */
export function runSeries(
  t: Table,
  metric: string,
): Map<string, { sharing: string; steps: number[]; values: number[] }> {
  const out = new Map<string, { sharing: string; steps: number[]; values: number[] }>();
  if (!t.columnNames().includes(metric)) return out;
  const col = t.array(metric) as ArrayLike<unknown>;
  const steps = t.array("step") as ArrayLike<number>;
  const sharing = t.array("sharing") as ArrayLike<string | null>;
  for (const [run, idx] of runIndices(t)) {
    const s: number[] = [], v: number[] = [];
    for (const i of idx) {
      const x = num(col[i]);
      if (x !== null) {
        s.push(steps[i]);
        v.push(x);
      }
    }
    out.set(run, { sharing: sharing[idx[0]] ?? "?", steps: s, values: v });
  }
  return out;
}

/**
 * The RTD loss of a discriminator that knows only the replaced fraction q and predicts it everywhere: the
 * binary entropy −q ln q − (1 − q) ln(1 − q). An RTD loss below it means D has learned something about
 * which tokens were replaced, even while its accuracy at 0.5 is still the base rate's.
 */
export function baseRate(q: number | null): number | null {
  return q === null || !(q > 0 && q < 1) ? null : binaryEntropy(q);
}

/** Options of {@link runSummary}. */
export interface SummaryOptions {
  /** Logged values averaged for the "first" columns (default 3: the loss at the start). */
  head?: number;
  /**
   * Logged values averaged for the "last" columns, D's AUC and gain, and the accuracies (default: the last
   * tenth of each run's logged steps, {@link lastTenth}, the window compare and sweep read too).
   */
  tail?: number;
}

/**
 * One row per run, runs in report order (mlm, es, nes, gdes): `run`, `sharing`, `steps`; the MLM and RTD
 * losses averaged over the first `head` and last `tail` logged values (`mlm_first`, `mlm_last`,
 * `rtd_first`, `rtd_last`; by default the first 3 and the last tenth) and over the whole run (`mlm_mean`, a
 * convergence-speed proxy: the area under the curve per step); `rtd_base`, the {@link baseRate} RTD loss of
 * the last-`tail` replaced fraction; the last-`tail`
 * means of `disc_auc` (D's ROC-AUC) and `rtd_gain` (base rate − RTD loss) — the headline numbers — and
 * of `disc_acc`, `disc_acc_replaced` (recall on replaced
 * tokens), `replaced_frac` and `gen_acc`; the last probed `sim_gen`, `sim_disc`, `sim_delta`; the mean
 * `tow_cos` over all probed steps and its share of negative values (`tow_neg`); mean `tokens_per_s`.
 */
export function runSummary(t: Table, opts: SummaryOptions = {}): Table {
  const head = opts.head ?? 3;
  const table = t.reify();
  const cols = table.columnNames();
  const series = (m: string) => runSeries(table, m);
  const metrics = [
    "loss_mlm",
    "loss_rtd",
    "disc_auc",
    "rtd_gain",
    "disc_acc",
    "disc_acc_replaced",
    "replaced_frac",
    "gen_acc",
    "sim_gen",
    "sim_disc",
    "sim_delta",
    "tow_cos",
    "tokens_per_s",
  ].filter((m) => cols.includes(m));
  const s = Object.fromEntries(metrics.map((m) => [m, series(m)]));
  const steps = table.array("step") as ArrayLike<number>;
  const sharing = table.array("sharing") as ArrayLike<string | null>;
  const groups = [...runIndices(table)];
  const order = modeOrder(groups.map(([, idx]) => sharing[idx[0]]));
  groups.sort((a, b) =>
    order.indexOf(sharing[a[1][0]] ?? "?") - order.indexOf(sharing[b[1][0]] ?? "?") ||
    a[0].localeCompare(b[0], undefined, { numeric: true })
  );
  const rows: Row[] = groups.map(([run, idx]) => {
    const v = (m: string) => s[m]?.get(run)?.values ?? [];
    const tail = opts.tail ?? lastTenth(idx.length);
    const first = (m: string) => mean(v(m).slice(0, head));
    const last = (m: string) => mean(v(m).slice(-tail));
    const final = (m: string) => v(m).length ? v(m)[v(m).length - 1] : null;
    const tow = v("tow_cos");
    // Throughput: probed steps log a throughput that includes probe time; all logged rows are averaged.
    return {
      run,
      sharing: sharing[idx[0]] ?? "?",
      steps: steps[idx[idx.length - 1]],
      mlm_first: first("loss_mlm"),
      mlm_last: last("loss_mlm"),
      mlm_mean: mean(v("loss_mlm")),
      rtd_first: first("loss_rtd"),
      rtd_last: last("loss_rtd"),
      rtd_base: baseRate(last("replaced_frac")),
      disc_auc: last("disc_auc"),
      // Logged per step since 2026-12; older runs: the last base rate minus the last RTD loss.
      rtd_gain: v("rtd_gain").length
        ? last("rtd_gain")
        : gainFrom(baseRate(last("replaced_frac")), last("loss_rtd")),
      disc_acc: last("disc_acc"),
      disc_acc_replaced: last("disc_acc_replaced"),
      replaced_frac: last("replaced_frac"),
      gen_acc: last("gen_acc"),
      sim_gen: final("sim_gen"),
      sim_disc: final("sim_disc"),
      sim_delta: final("sim_delta"),
      tow_cos: mean(tow),
      tow_neg: tow.length ? tow.filter((x) => x < 0).length / tow.length : null,
      tokens_per_s: mean(v("tokens_per_s")),
    };
  });
  return tableFromRows(rows, ["run", "sharing", "steps"]);
}

function gainFrom(base: number | null, loss: number | null): number | null {
  return base === null || loss === null ? null : base - loss;
}

function fmt(x: unknown, digits = 3): string {
  const v = num(x);
  return v === null ? "—" : v.toFixed(digits);
}

const SUMMARY_HEAD = [
  "run",
  "D AUC",
  "RTD gain",
  "MLM loss first→last",
  "MLM mean",
  "RTD loss first→last",
  "RTD base",
  "disc acc",
  "recall(repl)",
  "replaced",
  "gen acc",
  "sim E_G",
  "sim E_D",
  "sim E_Δ",
  "tow cos",
  "tok/s",
];

function summaryCells(summary: Table): string[][] {
  return (summary.objects() as Row[]).map((r) => [
    String(r.run === r.sharing ? r.sharing : `${r.run} (${r.sharing})`),
    // Never rounded across the learned thresholds (0.5996 is not "0.600" beside "learned from 0.6").
    num(r.disc_auc) === null ? "—" : formatAgainst(num(r.disc_auc)!, NOT_LEARNED.auc),
    num(r.rtd_gain) === null
      ? "—"
      : (num(r.rtd_gain)! >= 0 ? "+" : "") + formatAgainst(num(r.rtd_gain)!, NOT_LEARNED.gain),
    `${fmt(r.mlm_first)} → ${fmt(r.mlm_last)}`,
    fmt(r.mlm_mean),
    r.rtd_first === null ? "—" : `${fmt(r.rtd_first)} → ${fmt(r.rtd_last)}`,
    fmt(r.rtd_base),
    fmt(r.disc_acc),
    fmt(r.disc_acc_replaced),
    fmt(r.replaced_frac),
    fmt(r.gen_acc),
    fmt(r.sim_gen, 4),
    fmt(r.sim_disc, 4),
    fmt(r.sim_delta, 4),
    r.tow_cos === null ? "—" : (num(r.tow_cos)! >= 0 ? "+" : "") + fmt(r.tow_cos, 4),
    num(r.tokens_per_s) === null ? "—" : String(Math.round(num(r.tokens_per_s)!)),
  ]);
}

/** {@link runSummary} as a table of formatted strings (the columns {@link summaryText} prints), for reports. */
export function formatSummary(summary: Table): Table {
  const cells = summaryCells(summary);
  return tableFromRows(cells.map((row) => Object.fromEntries(SUMMARY_HEAD.map((h, j) => [h, row[j]]))));
}

/** What each column of {@link summaryText} holds, one line per group of columns. */
export const SUMMARY_KEY: readonly string[] = [
  "D AUC: D's ROC-AUC, replaced vs original tokens; RTD gain: base-rate entropy − RTD loss, nats (0 = a " +
  `constant predictor; D counts as learned from AUC ${NOT_LEARNED.auc} and gain ${NOT_LEARNED.gain}); both ` +
  "averaged over the last tenth of the logged steps, as are disc acc, recall, replaced and gen acc.",
  "MLM / RTD loss first→last: the first 3 logged steps → the last tenth; MLM mean: the whole run (lower = faster " +
  "convergence); RTD base: a constant predictor's RTD loss at the replaced fraction.",
  "disc acc: D's accuracy over all tokens; recall(repl): over replaced tokens; replaced: the share of tokens " +
  "replaced; gen acc: G's samples equal to the original at masked positions.",
  "sim E_G / E_D / E_Δ: mean cosine among frequent tokens' rows of G's, D's and the delta table (last probe); " +
  "tow cos: cos(g_MLM, g_RTD) on the shared table (ES: E; NES: E_G vs E_D; GDES: E_G vs E_Δ), mean over " +
  "probes (— for runs without probes: pretrain --probe-every N fills them); tok/s: training tokens per " +
  "second, mean over the logged windows.",
];

/** A fixed-width text rendering of {@link runSummary} for terminals (the demo prints it). */
export function summaryText(summary: Table, opts: { key?: boolean } = {}): string {
  const rows = summaryCells(summary);
  const widths = SUMMARY_HEAD.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j].length)));
  const line = (cells: string[]) => cells.map((c, j) => c.padEnd(widths[j])).join(" | ").trimEnd();
  const table = [line(SUMMARY_HEAD), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.map(line)];
  return [...table, ...(opts.key ?? true ? ["", ...SUMMARY_KEY] : [])].join("\n");
}

/** How a measured number stands against one of DeBERTaV3's findings. */
export type Verdict = "agrees" | "disagrees" | "within noise" | "not measured";

/** One of DeBERTaV3's findings (README, *The science, as implemented*), read from the runs' numbers. */
export interface Finding {
  /** Short name: `nes-converges-faster`, `gdes-follows-nes`, `nes-similarity-gap`, `gdes-narrows-gap`, `es-tug-of-war`. */
  id: string;
  /** The paper's claim, in a sentence. */
  claim: string;
  verdict: Verdict;
  /** The sentence with the measured values. */
  text: string;
  /** The numbers behind it. */
  values: Record<string, number | null>;
}

/** Whether one mode's discriminator has learned, from its last logged AUC and RTD gain. */
export interface DiscriminatorSkill {
  mode: string;
  auc: number | null;
  gain: number | null;
  learned: boolean;
  /** A sentence with the numbers (lib/train/rtd_metrics.ts notLearned). */
  text: string;
}

/**
 * Per RTD mode (the first run of each), D's ROC-AUC and RTD gain averaged over the last `tail` logged
 * steps (default: the last tenth, as in {@link runSummary}) and whether they clear {@link NOT_LEARNED}:
 * every finding that depends on D is read next to this.
 */
export function discriminatorSkill(t: Table, tail?: number): DiscriminatorSkill[] {
  const auc = byMode(t, "disc_auc"), gain = byMode(t, "rtd_gain");
  const rtd = byMode(t, "loss_rtd"), q = byMode(t, "replaced_frac");
  const out: DiscriminatorSkill[] = [];
  for (const mode of modeOrder([...rtd.keys()])) {
    if (!rtd.get(mode)?.length) continue;
    const w = tail ?? lastTenth(rtd.get(mode)!.length);
    const a = mean((auc.get(mode) ?? []).slice(-w));
    const g = gain.get(mode)?.length
      ? mean(gain.get(mode)!.slice(-w))
      : gainFrom(baseRate(mean((q.get(mode) ?? []).slice(-w))), mean(rtd.get(mode)!.slice(-w)));
    const v = notLearned(a, g);
    out.push({ mode, auc: a, gain: g, learned: v.learned, text: `${mode.toUpperCase()}: ${v.text}` });
  }
  return out;
}

/**
 * What every D-dependent finding carries: the AUC and gain of each discriminator it reads, and a caveat when
 * one has not learned.
 */
function skillCaveat(skill: DiscriminatorSkill[], modes: string[]): string {
  const read = skill.filter((s) => modes.includes(s.mode));
  const weak = read.filter((s) => !s.learned);
  if (!weak.length) {
    return read.length
      ? ` (${
        read.map((s) => `${s.mode.toUpperCase()}'s D has learned: AUC ${f3(s.auc)}, gain ${f3(s.gain)} nats`)
          .join("; ")
      }.)`
      : "";
  }
  return ` Caveat: ${
    weak.map((s) =>
      `${s.mode.toUpperCase()}'s discriminator has not learned yet (AUC ${f3(s.auc)}, gain ${
        f3(s.gain)
      } nats)`
    ).join("; ")
  }, so this reading describes a discriminator without the skill.`;
}

/** Options of {@link findings}. */
export interface FindingsOptions {
  /** Differences smaller than `z` standard errors count as noise (default 2). */
  z?: number;
  /** Probed values averaged for the similarity numbers and their noise (default 3). */
  simTail?: number;
}

/** The first run of `mode`'s non-null `metric` values with their steps, or null. */
function firstRun(t: Table, metric: string, mode: string): { steps: number[]; values: number[] } | null {
  for (const [, s] of runSeries(t, metric)) if (s.sharing === mode) return s;
  return null;
}

/** Logged steps of `mode`'s first run at which D's AUC and RTD gain on that step's batch clear NOT_LEARNED. */
function learnedSteps(t: Table, mode: string): Set<number> {
  const auc = firstRun(t, "disc_auc", mode), gain = firstRun(t, "rtd_gain", mode);
  if (!auc || !gain) return new Set();
  const gainAt = new Map(gain.steps.map((s, i) => [s, gain.values[i]]));
  return new Set(
    auc.steps.filter((s, i) =>
      auc.values[i] >= NOT_LEARNED.auc && (gainAt.get(s) ?? -Infinity) >= NOT_LEARNED.gain
    ),
  );
}

function byMode(t: Table, metric: string): Map<string, number[]> {
  // The first run of each mode (the demo has one seed per mode).
  const out = new Map<string, number[]>();
  for (const [, s] of runSeries(t, metric)) if (!out.has(s.sharing)) out.set(s.sharing, s.values);
  return out;
}

const f4 = (x: number | null) => (x === null ? "—" : x.toFixed(4));
const f3 = (x: number | null) => (x === null ? "—" : x.toFixed(3));

/**
 * Reads DeBERTaV3's findings (README, *The science, as implemented*) off the runs in `t` (one run per mode), each as a sentence with
 * the measured numbers and a verdict:
 *
 * - **NES's generator converges faster than ES's**: the mean MLM loss over the whole run (the area under
 *   the curve per step: lower = faster), NES vs ES, against z × the standard error of the difference
 *   (from each run's batch-to-batch noise, {@link stepNoise});
 * - **GDES follows NES**: |GDES − NES| against |ES − NES| and the noise;
 * - **under NES, E_G is more self-similar than E_D**: the mean of the last `simTail` probed sim_gen vs
 *   sim_disc, against their probe-to-probe spread;
 * - **GDES narrows that gap**: GDES's sim_gen − sim_disc vs NES's;
 * - **the tug-of-war under ES**: the sign of the mean tow_cos over the probed steps (± standard error) —
 *   no published number; the claim is that the two losses pull the shared table apart (cos < 0).
 *
 * Only one seed per mode: the noise is within a run, not between seeds.
 */
export function findings(t: Table, opts: FindingsOptions = {}): Finding[] {
  const z = opts.z ?? 2, k = opts.simTail ?? 3;
  const mlm = byMode(t, "loss_mlm");
  const out: Finding[] = [];
  const auc = (m: string) => {
    const v = mlm.get(m);
    if (!v?.length) return null;
    const noise = stepNoise(v);
    return { mean: mean(v)!, se: noise === null ? null : noise / Math.sqrt(v.length) };
  };
  const es = auc("es"), nes = auc("nes"), gdes = auc("gdes");
  const seDiff = (a: typeof es, b: typeof es) =>
    a && b && a.se !== null && b.se !== null ? Math.sqrt(a.se ** 2 + b.se ** 2) : null;

  // 1. NES converges faster than ES.
  {
    const claim = "NES's generator MLM loss converges faster than ES's.";
    if (!es || !nes) {
      out.push({
        id: "nes-converges-faster",
        claim,
        verdict: "not measured",
        text: claim + " (no ES or NES run)",
        values: {},
      });
    } else {
      const d = nes.mean - es.mean, se = seDiff(es, nes);
      // Too few logged steps to estimate the noise: no difference can be called one.
      const verdict: Verdict = se === null
        ? "not measured"
        : Math.abs(d) < z * se
        ? "within noise"
        : d < 0
        ? "agrees"
        : "disagrees";
      out.push({
        id: "nes-converges-faster",
        claim,
        verdict,
        values: { es: es.mean, nes: nes.mean, diff: d, se },
        text:
          `Mean generator MLM loss over the run (lower = faster convergence): ES ${f3(es.mean)}, NES ${
            f3(nes.mean)
          } (NES − ES = ${d >= 0 ? "+" : ""}${f3(d)}, noise ±${f3(se)}): ${verdict}` +
          (verdict === "agrees"
            ? " — NES's generator learns faster."
            : verdict === "disagrees"
            ? " — here ES's generator is ahead."
            : verdict === "not measured"
            ? " — too few logged steps to estimate the noise."
            : " — no difference this run can resolve."),
      });
    }
  }
  // 2. GDES follows NES.
  {
    const claim =
      "Sanity check, not a finding: GDES's generator tracks NES's. In decoupled training G never " +
      "depends on D, and with paired initialisation both start from the same weights, so the curves are " +
      "identical (a difference means joint training, whose shared clip couples them, or a bug).";
    if (!es || !nes || !gdes) {
      out.push({
        id: "gdes-follows-nes",
        claim,
        verdict: "not measured",
        text: claim + " (a run is missing)",
        values: {},
      });
    } else {
      const dg = gdes.mean - nes.mean, de = es.mean - nes.mean, se = seDiff(gdes, nes);
      // Identical curves (the expected outcome) need no noise estimate.
      const close = dg === 0 || (se !== null && Math.abs(dg) < z * se);
      const verdict: Verdict = close
        ? "agrees"
        : se === null
        ? "not measured"
        : Math.abs(dg) < Math.abs(de)
        ? "agrees"
        : "disagrees";
      out.push({
        id: "gdes-follows-nes",
        claim,
        verdict,
        values: { gdes: gdes.mean, nes: nes.mean, es: es.mean, gdes_minus_nes: dg, es_minus_nes: de, se },
        text:
          `GDES ${f3(gdes.mean)} vs NES ${f3(nes.mean)}: GDES − NES = ${dg >= 0 ? "+" : ""}${
            f3(dg)
          } (noise ±${f3(se)}), against ES − NES = ${de >= 0 ? "+" : ""}${f3(de)}: ${verdict}` +
          (dg === 0
            ? " — GDES's curve is NES's exactly."
            : close
            ? " — GDES's curve is NES's within noise."
            : verdict === "not measured"
            ? " — too few logged steps to estimate the noise."
            : verdict === "agrees"
            ? " — GDES is closer to NES than ES is."
            : " — GDES is further from NES than ES is."),
      });
    }
  }
  // 3./4. Similarity.
  const simOf = (mode: string, key: string) => {
    const v = byMode(t, key).get(mode);
    if (!v?.length) return null;
    const last = v.slice(-k);
    // The spread over the last third of the probes, not the last k: as the learning rate decays to 0 the
    // last few probes agree to 4 decimals, a "noise" that says only that training has stopped.
    const window = v.slice(-Math.max(k, Math.round(v.length / 3)));
    const spread = window.length >= 2
      ? Math.sqrt(window.reduce((a, x) => a + (x - mean(window)!) ** 2, 0) / (window.length - 1))
      : null;
    return { value: mean(last)!, spread };
  };
  const nesG = simOf("nes", "sim_gen"), nesD = simOf("nes", "sim_disc");
  const gdG = simOf("gdes", "sim_gen"), gdD = simOf("gdes", "sim_disc");
  const noiseOf = (a: ReturnType<typeof simOf>, b: ReturnType<typeof simOf>) =>
    a?.spread != null && b?.spread != null ? Math.sqrt(a.spread ** 2 + b.spread ** 2) : null;
  let nesGap: number | null = null;
  {
    const claim =
      "Under NES the generator's token embeddings E_G are more similar to each other than the discriminator's E_D.";
    if (!nesG || !nesD) {
      out.push({
        id: "nes-similarity-gap",
        claim,
        verdict: "not measured",
        text: claim + " (no NES probes)",
        values: {},
      });
    } else {
      nesGap = nesG.value - nesD.value;
      const noise = noiseOf(nesG, nesD);
      const verdict: Verdict = noise === null
        ? "not measured" // one probe: no spread to judge the gap against
        : Math.abs(nesGap) < z * noise
        ? "within noise"
        : nesGap > 0
        ? "agrees"
        : "disagrees";
      out.push({
        id: "nes-similarity-gap",
        claim,
        verdict,
        values: { sim_gen: nesG.value, sim_disc: nesD.value, gap: nesGap, noise },
        text: `NES average cosine over the top tokens: E_G ${f4(nesG.value)}, E_D ${
          f4(nesD.value)
        } (gap E_G − E_D = ${nesGap >= 0 ? "+" : ""}${
          f4(nesGap)
        }, spread over the last third of the probes ±${f4(noise)}): ${verdict}.`,
      });
    }
  }
  {
    const claim = "GDES narrows the gap between E_G's and E_D's similarity.";
    if (!gdG || !gdD || nesGap === null) {
      out.push({
        id: "gdes-narrows-gap",
        claim,
        verdict: "not measured",
        text: claim +
          ` (no ${
            [!gdG || !gdD ? "GDES" : "", nesGap === null ? "NES" : ""].filter(Boolean).join(" or ")
          } probes)`,
        values: {},
      });
    } else {
      const gap = gdG.value - gdD.value;
      const gn = noiseOf(gdG, gdD), nn = noiseOf(nesG, nesD);
      const noise = gn !== null && nn !== null ? Math.sqrt(gn ** 2 + nn ** 2) : null;
      const verdict: Verdict = noise === null
        ? "not measured"
        : Math.abs(Math.abs(gap) - Math.abs(nesGap)) < z * noise
        ? "within noise"
        : Math.abs(gap) < Math.abs(nesGap)
        ? "agrees"
        : "disagrees";
      out.push({
        id: "gdes-narrows-gap",
        claim,
        verdict,
        values: { sim_gen: gdG.value, sim_disc: gdD.value, gap, nes_gap: nesGap, noise },
        text: `GDES: E_G ${f4(gdG.value)}, E_D = E_G + E_Δ ${f4(gdD.value)} (gap ${gap >= 0 ? "+" : ""}${
          f4(gap)
        } vs NES's ${nesGap >= 0 ? "+" : ""}${f4(nesGap)}, spread ±${f4(noise)}): ${verdict}.`,
      });
    }
  }
  // 5. The ES tug-of-war.
  {
    const claim =
      "Under ES the MLM and RTD losses pull the shared embeddings in conflicting directions (cos < 0).";
    const cos = byMode(t, "tow_cos").get("es");
    if (!cos?.length) {
      out.push({
        id: "es-tug-of-war",
        claim,
        verdict: "not measured",
        text: claim + " (no ES probes)",
        values: {},
      });
    } else {
      const { mean: m, se } = meanSe(cos);
      const neg = cos.filter((x) => x < 0).length / cos.length;
      const opposed = mean(byMode(t, "tow_opposed_rows").get("es") ?? []);
      const ratio = mean(byMode(t, "tow_ratio").get("es") ?? []);
      const context =
        ` Per row, ${opposed === null ? "—" : Math.round(100 * opposed) + "%"} of the touched rows are ` +
        `pulled in opposite directions on average; ‖∇λL_RTD‖/‖∇L_MLM‖ averages ${f3(ratio)}.`;
      const verdictOf = (mu: number, e: number | null): Verdict =>
        e === null ? "not measured" : Math.abs(mu) < z * e ? "within noise" : mu < 0 ? "agrees" : "disagrees";
      // The RTD gradient of a D without the skill is not the pull the claim is about: the verdict reads the
      // probed steps at which ES's D had learned (its AUC and gain on that step's batch), when there are 10.
      const learned = learnedSteps(t, "es");
      const esCos = firstRun(t, "tow_cos", "es")!;
      const skilled = esCos.values.filter((_, i) => learned.has(esCos.steps[i]));
      const sk = skilled.length >= 10 ? meanSe(skilled) : null;
      const verdict = sk ? verdictOf(sk.mean!, sk.se) : verdictOf(m!, se);
      const signed = (x: number | null) => `${x !== null && x >= 0 ? "+" : ""}${f4(x)}`;
      const skilledText = sk
        ? ` Over the ${skilled.length} probed steps at which ES's D had learned (AUC ≥ ${NOT_LEARNED.auc} and ` +
          `gain ≥ ${NOT_LEARNED.gain} on that step's batch), which the verdict reads: ${signed(sk.mean)} ± ${
            f4(sk.se)
          } (${Math.round((100 * skilled.filter((x) => x < 0).length) / skilled.length)}% negative).`
        : ` (Fewer than 10 probed steps at which ES's D had learned: the verdict reads every probe.)`;
      out.push({
        id: "es-tug-of-war",
        claim,
        verdict,
        values: {
          mean: m,
          se,
          negative_share: neg,
          probes: cos.length,
          opposed_rows: opposed,
          ratio,
          learned_mean: sk?.mean ?? null,
          learned_se: sk?.se ?? null,
          learned_probes: skilled.length,
        },
        text:
          `ES: cos(∇L_MLM, ∇λL_RTD) on the shared token table averages ${signed(m)} ± ${
            f4(se)
          } over ${cos.length} probed steps (${
            Math.round(100 * neg)
          }% of them negative).${skilledText} Verdict: ${verdict}` +
          (verdict === "within noise"
            ? " — the two pulls are close to orthogonal rather than opposed."
            : verdict === "agrees"
            ? " — the two losses pull against each other."
            : " — the two losses pull the table the same way on average.") +
          context,
      });
    }
  }
  // Findings that read D (its gradient, its table E_D) carry the skill of the discriminators they read.
  const skill = discriminatorSkill(t);
  const readsD: Record<string, string[]> = {
    "es-tug-of-war": ["es"],
    "nes-similarity-gap": ["nes"],
    "gdes-narrows-gap": ["nes", "gdes"],
  };
  for (const f of out) {
    if (readsD[f.id] && f.verdict !== "not measured") f.text += skillCaveat(skill, readsD[f.id]);
  }
  return out;
}

/** Options of {@link viewStrip}. */
export interface ViewStripOptions {
  /** Caption above the strip. */
  title?: string;
  /** Show "sample⟵original" for replaced tokens (default true). */
  showOriginal?: boolean;
  /** Leave out [PAD] tokens (default true). */
  dropPadding?: boolean;
  /** The P(replaced) at which the shading saturates (default 1). */
  zmax?: number;
}

/**
 * The discriminator's view ({@link DiscriminatorViewRow}s) as a token strip: each token D read, shaded by
 * D's P(replaced); tokens that really were replaced are underlined and bold, shown as `sample⟵original`.
 */
export function viewStrip(rows: DiscriminatorViewRow[], opts: ViewStripOptions = {}): HtmlBlock {
  const kept = (opts.dropPadding ?? true) ? rows.filter((r) => r.original !== "[PAD]") : rows;
  const name = (r: DiscriminatorViewRow) => {
    const s = r.sample ?? String(r.sampleId);
    return r.label && (opts.showOriginal ?? true) ? `${s}⟵${r.original ?? r.originalId}` : s;
  };
  return tokenStrip(kept.map(name), kept.map((r) => r.pReplaced), {
    title: opts.title,
    zmax: opts.zmax,
    highlight: kept.map((r) => r.label === 1),
    highlightLabel: "really replaced (sample⟵original)",
  });
}

/** Summary numbers of a view: mean P(replaced) on replaced vs original tokens and the accuracy at 0.5. */
export function viewStats(rows: DiscriminatorViewRow[]): {
  replaced: number;
  pReplaced: number | null;
  pOriginal: number | null;
  accuracy: number;
} {
  const real = rows.filter((r) => r.original !== "[PAD]");
  const rep = real.filter((r) => r.label === 1), orig = real.filter((r) => r.label === 0);
  const correct = real.filter((r) => (r.pReplaced > 0.5 ? 1 : 0) === r.label).length;
  return {
    replaced: rep.length,
    pReplaced: mean(rep.map((r) => r.pReplaced)),
    pOriginal: mean(orig.map((r) => r.pReplaced)),
    accuracy: real.length ? correct / real.length : NaN,
  };
}

/** One sentence as one mode's discriminator saw it (for {@link demoReport}). */
export interface ModeView {
  mode: string;
  rows: DiscriminatorViewRow[];
}

/** Options of {@link demoReport}. */
export interface DemoReportOptions {
  /** Page title (default "rtdlab demo: MLM vs ES vs NES vs GDES"). */
  title?: string;
  /** Discriminator views of a sample sentence, one per mode, shown as token strips. */
  views?: ModeView[];
  /** The sentence of the views (shown above the strips). */
  sentence?: string;
  /** Extra markdown after the introduction (e.g. the wall time). */
  note?: string;
  /** EMA weight for the curves (default 0.6). */
  smooth?: number;
  /** P(replaced) at which the token strips' shading saturates (default 0.5). */
  stripMax?: number;
}

/** The RTD modes' generator (the MLM baseline has none): layers × width. */
function generatorLine(c: Record<string, unknown>): string {
  const g = generatorSize({ ...(c as unknown as RunConfig), sharing: "es" });
  return `${g.numLayers}×${g.hiddenSize}`;
}

function configLine(c: Record<string, unknown>): string {
  const d = c.discriminator as Record<string, number> | undefined;
  const parts = [
    `preset \`${c.preset ?? "?"}\``,
    d ? `D ${d.numLayers}×${d.hiddenSize}` : null,
    d && c.generatorHiddenFraction !== undefined ? `G ${generatorLine(c)}` : null,
    `vocabulary ${c.vocabSize}`,
    `${c.steps} steps × batch ${c.batchSize} × ${c.seqLength} tokens`,
    `lr ${c.learningRate} (warmup ${c.warmupSteps})`,
    `Adam bias correction ${c.biasCorrection ? "on" : "off"}`,
    `λ = ${c.rtdWeight}`,
    `seed ${c.seed}`,
    `corpus ${c.corpus}`,
    c.probeEvery ? `probes every ${c.probeEvery} steps` : "no probes",
    c.backend ? `backend ${c.backend}` : null,
  ];
  return parts.filter(Boolean).join(", ");
}

/**
 * The demo's report over the runs in `runsDir` (one per sharing mode): configuration, summary table,
 * readings of DeBERTaV3's findings, loss curves, discriminator accuracy, tug-of-war probes, embedding
 * similarity (curves and bars), and token strips of the discriminator's view when `opts.views` is given.
 * Returns the {@link Report}; `.write(path)` it.
 */
export async function demoReport(runsDir: string, opts: DemoReportOptions = {}): Promise<Report> {
  const t = await loadRuns(runsDir);
  const summary = runSummary(t);
  const first = (summary.objects() as Row[])[0];
  const modes = (summary.objects() as Row[]).map((r) => String(r.sharing));
  const config = await readRunConfig(`${runsDir}/${first?.run ?? modes[0]}`);
  const cols = t.columnNames();
  const sm = opts.smooth ?? 0.6;
  // The headline window in this report's own terms, e.g. "24 of 240 logged steps here".
  const logged = [...runIndices(t.reify())].map(([, idx]) => idx.length);
  const tailNote = logged.length
    ? `${lastTenth(Math.max(...logged))} of ${Math.max(...logged)} logged steps here`
    : "none logged here";
  const r = new Report(opts.title ?? "rtdlab demo: MLM vs ES vs NES vs GDES");
  r.text(
    `Replaced token detection pre-training of the same small model under each embedding-sharing mode ` +
      `(${modes.join(", ")}), on the same data, seed and number of steps. Settings: ${configLine(config)}.`,
  );
  if (opts.note) r.text(opts.note);
  r.html(
    `<p class="caption">Terms: <b>G</b>, the generator, fills masked positions; <b>D</b>, the discriminator, ` +
      `labels each token original or replaced (replaced token detection, RTD). <b>MLM</b>: the baseline, a ` +
      `masked language model alone, no D. Sharing modes (DeBERTaV3 §3): <b>ES</b>, G and D share one token ` +
      `table E; <b>NES</b>, each has its own (E_G, E_D); <b>GDES</b>, D reads E_D = E_G + E_Δ with E_G behind ` +
      `a stop-gradient, so D's loss trains only the delta E_Δ. <b>λ</b>: the weight of the RTD loss. ` +
      `<b>Tug-of-war</b> (tow): the MLM and RTD gradients pulling one shared table in different directions. ` +
      `Curves are EMA-smoothed (weight ${sm}) where a caption says so.</p>`,
  );

  r.heading("Summary");
  r.table(formatSummary(summary), {
    caption:
      "D AUC: ROC-AUC of the discriminator's logits, replaced vs original tokens (0.5 = chance); RTD " +
      "gain: RTD base − RTD loss (nats; 0 = a constant predictor) — both means over the last tenth of the " +
      `logged steps (${tailNote}) and the headline numbers; first→last: mean of the first 3 logged values → ` +
      "mean of the last tenth; MLM mean: mean MLM loss over the run " +
      "(lower = faster convergence); RTD base: the RTD loss of predicting the replaced fraction everywhere " +
      `(D counts as learned from AUC ${NOT_LEARNED.auc} and gain ${NOT_LEARNED.gain}); accuracies and ` +
      "replaced fraction: the last tenth; recall(repl): the " +
      "discriminator's accuracy on replaced tokens; sim: average cosine over the top-1000 tokens at the last " +
      "probe; tow cos: mean cos(∇L_MLM, ∇λL_RTD) over the probed steps.",
  });

  r.heading("Has the discriminator learned?");
  const skill = discriminatorSkill(t);
  r.html(
    `<ul>${skill.map((k) => `<li>${escape(k.text)}</li>`).join("")}</ul><p class="caption">ROC-AUC of D's ` +
      `logits (replaced vs original tokens; 0.5 = no skill) and RTD gain = base rate − RTD loss (nats; 0 = ` +
      `a constant predictor), means over the last tenth of the logged steps (${tailNote}). Below AUC 0.6 or gain 0.05, readings that ` +
      `depend on D (its gradients, E_D, fine-tuning) describe a model that has not learned. Across modes ` +
      `the numbers compare only loosely: each D faces its own generator, and a weaker one (lower gen acc in ` +
      `the summary) leaves more, and easier, replacements to catch.</p>`,
  );
  if (cols.includes("disc_auc")) {
    r.figure(
      skillCurves(t, { smooth: sm, height: 380 }),
      `D's ROC-AUC (0.5 = chance) and its RTD gain over the constant predictor (0 = none), each on its step's ` +
        `own batch, EMA-smoothed (weight ${sm}); D counts as learned from AUC ${NOT_LEARNED.auc} and gain ` +
        `${NOT_LEARNED.gain} nats (the dotted black lines).`,
    );
  }

  r.heading("What the numbers say about DeBERTaV3's findings");
  r.html(
    `<ul>${
      findings(t).map((f) => `<li><strong>${escape(f.claim)}</strong><br>${escape(f.text)}</li>`).join("")
    }</ul><p class="caption">One seed per mode: "noise" is the within-run batch-to-batch (or probe-to-probe) ` +
      `noise, not the spread between seeds. Short runs of a tiny model: DeBERTaV3's numbers come from ` +
      `base-size models trained for 500k+ steps.</p>`,
  );

  r.heading("Losses");
  r.figure(
    lossCurves(t, { smooth: sm, title: `Losses (EMA ${sm})` }),
    "Generator MLM loss (left) and discriminator RTD loss (right, unscaled).",
  );
  const disc = ["disc_acc", "disc_acc_replaced", "gen_acc"].filter((m) => cols.includes(m));
  if (disc.length) {
    r.figure(
      metricCurves(t, disc, { smooth: sm, title: "Discriminator and generator accuracy", height: 380 }),
      "Discriminator accuracy over all tokens; its recall on the replaced ones (the base rate predicts 0 there); " +
        `the share of masked positions where the generator sampled the original token (EMA ${sm}). The modes ` +
        "replace different shares of tokens, so D's accuracy does not compare across them: its AUC does.",
    );
  }
  if (cols.includes("tow_cos")) {
    r.heading("Tug-of-war probes");
    r.figure(
      probeCurves(t, ["tow_cos", "tow_ratio", "tow_opposed_rows"], {
        title: "Embedding-gradient conflict",
        height: 380,
      }),
      "cos(g_MLM, g_RTD), the norm ratio ‖∇λL_RTD‖/‖∇L_MLM‖ (λ = the RTD weight) and the share of rows pulled in opposite directions, " +
        "both gradients taken at the same parameters before the step's update. What each mode measures: ES, " +
        "g_MLM and g_RTD on the one shared token table E; NES, g_MLM on E_G and g_RTD on E_D (nothing is " +
        "shared: the pulls a shared table would feel); GDES, g_MLM on E_G and g_RTD on E_Δ (= ∂/∂E_D, the pull " +
        "the stop-gradient keeps off E_G).",
    );
  }
  if (cols.includes("sim_gen")) {
    r.heading("Embedding similarity");
    r.figure(
      probeCurves(t, ["sim_gen", "sim_disc"], {
        title: "Average cosine of E_G and E_D over the top-1000 tokens",
        height: 380,
      }),
      "Average pairwise cosine of the 1000 most frequent tokens' rows, at every probe. Under ES, E_G and E_D " +
        "are its one shared table; NES's and GDES's E_G coincide (the same initial weights, and decoupled, G " +
        "never depends on D); the MLM baseline has only E_G.",
    );
    // E_Δ's self-similarity (GDES) is an order of magnitude above the tables': it gets a sentence, not a bar.
    const last = runSummary(t).objects() as Row[];
    const delta = last.find((x) => num(x.sim_delta) !== null);
    r.figure(
      similarityBars(
        last.map((x) => ({ sharing: String(x.sharing), sim_gen: num(x.sim_gen), sim_disc: num(x.sim_disc) })),
      ),
      "Average pairwise cosine of the 1000 most frequent tokens' embeddings E_G and E_D, at the last probe " +
        "(ES: both bars are its one shared table; the MLM baseline has no E_D)." +
        (delta ? ` GDES's E_Δ alone: ${fmt(delta.sim_delta, 4)} (its rows share a common direction).` : ""),
    );
  }
  if (opts.views?.length) {
    r.heading("The discriminator's view of a text pair");
    if (opts.sentence) r.text(`Sentence: *${opts.sentence}*`);
    r.text(
      "Each token is what the discriminator read, shaded by its P(replaced) (full colour at " +
        `${
          opts.stripMax ?? 0.5
        } or above; hover for the value); underlined bold tokens really were replaced ` +
        "(shown as sample⟵original). Same masked positions and sampling seed for every mode; the generators " +
        "differ, so a position one mode's generator filled with the original token (labelled real) may be " +
        "replaced in another's.",
    );
    for (const v of opts.views) {
      const s = viewStats(v.rows);
      r.html(viewStrip(v.rows, {
        zmax: opts.stripMax ?? 0.5,
        title: `${v.mode}: ${s.replaced} replaced; mean P(replaced) ${f3(s.pReplaced)} on replaced vs ${
          f3(s.pOriginal)
        } on original tokens`,
      }));
    }
  }
  return r;
}

function escape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

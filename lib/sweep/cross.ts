/**
 * Crossing a sweep's runs: every discriminator scored on the replacements of every generator among the runs
 * that differ from it only in some keys (by default the sharing mode). A point's own evaluation scores D on
 * its own generator's samples, and a weak generator is an easy task (as sampling at T > 1 is), so only these
 * readings compare discriminators on one task: `deno task sweep --cross KEYS`, and
 * `data/regimes/build.ts --cross` for the shipped sweeps.
 *
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { evaluateRunDir, type RunEvaluation } from "../report/trained.ts";
import { pairedSe } from "../train/evaluate.ts";
import type { EvalSettings } from "./runs.ts";
import { htmlTable, markdownTable, type TableCells } from "./report.ts";
import { Report } from "../report/html.ts";
import type { Figure, Trace } from "../report/plotly.ts";

/** One discriminator scored on one generator's replacements (held out, the sweep's evaluation settings). */
export interface CrossReading {
  /** The run whose discriminator is scored: its sharing mode, or its values of `by` ("k=v · k=v"). */
  d: string;
  /** The run whose generator made the replacements, named as `d` is. */
  g: string;
  /** D's ROC-AUC, replaced against original tokens (null: no position replaced, or the reading failed). */
  auc: number | null;
  /** Its standard error over the held-out sequences (bootstrap). */
  aucSe: number | null;
  /** D's RTD gain (nats): base-rate entropy − RTD loss (null: the reading failed). */
  gain: number | null;
  /** Its standard error over the held-out sequences. */
  gainSe: number | null;
  /** The generator's accuracy on these masks (the share of its samples equal to the original). */
  genAcc: number | null;
  /** Why the reading failed, when it did (the others are still made). */
  error?: string;
  /**
   * With `keepReplicates`: the bootstrap's resampled AUCs and gains (to 6 decimals) and what decided the
   * resamples. Readings with one key drew the same resamples (the same sequences and seed, in any group), so
   * any contrast of them gets its paired error over the sequences from these.
   */
  replicates?: { key: string; auc: (number | null)[]; gain: number[] };
  /**
   * Off the diagonal: this reading minus the generator's own discriminator's on the same replacements, each
   * with its paired bootstrap standard error (the same resampled sequences for both: their own difficulty
   * cancels, so it is below what an unpaired difference would carry). Null errors where the evaluations kept
   * no replicates or drew other resamples. None on an MLM generator (no own reading), nor where it repeats
   * another (two identical generators).
   */
  vsOwn?: { auc: number; aucSe: number | null; gain: number; gainSe: number | null };
}

/** One discriminator's reading on one generator's replacements minus its reading on another's (paired SE). */
export interface CrossMove {
  /** The discriminator. */
  d: string;
  /** The two generators: the reading on `g2`'s replacements minus that on `g1`'s. */
  g1: string;
  /** See `g1`. */
  g2: string;
  /** The AUC's difference. */
  auc: number;
  /** Its paired bootstrap standard error (null without replicates). */
  aucSe: number | null;
}

/** A finished run of a sweep, as results.json lists it. */
export interface SweepRun {
  /** The run's folder, as the sweep recorded it (relative to the directory the sweep ran in). */
  dir: string;
  /** Its pre-training seed. */
  seed: number;
  /** Its sharing mode (an MLM baseline is crossed as a generator only). */
  sharing: string;
  /** "done" once trained and evaluated; other runs are left out. */
  status: string;
  /** Its swept keys' values. */
  values: Record<string, string>;
}

/** One group of runs that differ only in the crossed keys, each named by its label. */
export interface CrossGroup {
  /** The values the group's runs share (the crossed keys left out). */
  values: Record<string, string>;
  /** The runs' pre-training seed (seeds are never crossed). */
  seed: number;
  /** The runs, each with the label its readings use. */
  members: { run: SweepRun; label: string }[];
}

/** A crossed sweep: what `cross*.json` holds. */
export interface SweepCross {
  /** The file format. */
  format: "rtdlab-regimes-cross-1";
  /** The sweep's name. */
  name: string;
  /** When the readings were made (ISO time). */
  built_at: string;
  /** The keys crossed. */
  by: string[];
  /** The sweep's evaluation settings, which every reading used. */
  eval: EvalSettings;
  /** Whether every reading was attempted (false: stopped; the groups hold those made). A reading may still
   * have failed: see each reading's `error`. */
  complete: boolean;
  /**
   * Per group, every reading; each discriminator's moves between generators; and the pairs of generators that
   * made identical replacements (their moves, and the repeated gap between them, are left out).
   */
  groups: {
    values: Record<string, string>;
    seed: number;
    cross: CrossReading[];
    moves?: CrossMove[];
    identical?: [string, string][];
  }[];
}

/** The keys to cross, sorted and without repeats (so `a,b` and `b,a` are one crossing). */
export function crossKeys(by: string[]): string[] {
  return [...new Set(by.map((k) => k.trim()).filter(Boolean))].sort();
}

/** Where a sweep's crossing by `by` is written, less the extension: `ROOT/cross-KEY1+KEY2`. */
export function crossBase(root: string, by: string[]): string {
  return join(root, `cross-${by.join("+")}`);
}

/**
 * The sweep's finished runs grouped by everything but the keys in `by` (and the seed apart): within a group
 * the runs differ only in those keys, so one's discriminator can be scored on another's generator. Each run
 * gets a label: its sharing mode when `by` is `["sharing"]`, else its values of `by` ("k=v · k=v", "k=(default)"
 * for a key its point does not set); two runs of one label are told apart by their folders' names. A group with
 * one run, or with no discriminator (MLM runs only), is dropped: there is nothing to cross.
 */
export function crossGroups(runs: SweepRun[], by: string[]): CrossGroup[] {
  if (by.length === 0) throw new Error("--cross needs at least one config key");
  const label = (r: SweepRun) =>
    by.length === 1 && by[0] === "sharing"
      ? r.sharing
      : by.map((k) => `${k}=${r.values[k] ?? "(default)"}`).join(" · ");
  const groups = new Map<string, { values: Record<string, string>; seed: number; members: SweepRun[] }>();
  for (const r of runs.filter((r) => r.status === "done")) {
    // Sorted, so that two points listing the same keys in another order fall in one group.
    const values = Object.fromEntries(
      Object.entries(r.values).filter(([k]) => !by.includes(k)).sort((
        [a],
        [b],
      ) => (a < b ? -1 : a > b ? 1 : 0)),
    );
    const key = JSON.stringify([values, r.seed]);
    if (!groups.has(key)) groups.set(key, { values, seed: r.seed, members: [] });
    groups.get(key)!.members.push(r);
  }
  const out = [...groups.values()].filter((g) =>
    g.members.length > 1 && g.members.some((r) => r.sharing !== "mlm")
  );
  if (out.length === 0) {
    throw new Error(`no two finished runs differ only in ${by.join(", ")}: nothing to cross`);
  }
  return out.map((g) => {
    const labels = g.members.map(label);
    const clash = (l: string) => labels.filter((x) => x === l).length > 1;
    return {
      ...g,
      members: g.members.map((r, i) => ({
        run: r,
        label: clash(labels[i]) ? `${labels[i]} [${r.dir.split(/[\\/]/).filter(Boolean).at(-1)}]` : labels[i],
      })),
    };
  });
}

/** Rounded to 6 decimals (null stays null): the files' readings. */
const round6 = (x: number | null | undefined) => (typeof x === "number" ? Math.round(x * 1e6) / 1e6 : null);

/** A standard error to 6 decimals, never rounded down to 0 unless it is 0 (a tiny error is not none). */
const roundSe = (x: number | null) => (x === null || x === 0 ? x : Math.max(1e-6, Math.round(x * 1e6) / 1e6));

/** The value of a dotted config key ("discriminator.hiddenSize") in a run's config.json, as text. */
async function configValue(dir: string, key: string): Promise<string | undefined> {
  try {
    let v: unknown = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
    for (const part of key.split(".")) v = (v as Record<string, unknown> | undefined)?.[part];
    return v === undefined || typeof v === "object" ? undefined : String(v);
  } catch {
    return undefined;
  }
}

/** An AUC for a message: "n/a" when there is none. */
export const aucText = (x: number | null): string => (x === null ? "n/a" : x.toFixed(3));

/**
 * Scores every discriminator of each group on every member's generator (an MLM baseline's model serves as a
 * generator only), on the backend already started. A crossed key a run's point does not set is read from its
 * config.json, so its label says the value it ran with. `dirOf` resolves a run's recorded folder; `onReading`
 * hears each reading as it is made, with how many are done of how many; a reading that fails is kept with
 * its error and the others go on; `shouldStop` is asked between readings (the result then says it is not
 * complete).
 */
export async function crossSweep(
  name: string,
  runs: SweepRun[],
  by: string[],
  ev: EvalSettings,
  opts: {
    dirOf?: (dir: string) => string;
    onReading?: (group: CrossGroup, r: CrossReading, done: number, total: number) => void;
    shouldStop?: () => boolean;
    /** Write each reading's bootstrap replicates into the crossing (`CrossReading.replicates`). */
    keepReplicates?: boolean;
    /** What scores one D on one G's replacements (tests stand in for it). */
    evaluate?: (
      dir: string,
      opts: {
        temperature: number;
        seed: number;
        batchSize: number;
        disallowCorrect?: true;
        sequences?: number;
        unseen?: { part?: string };
        generatorFrom: string;
        keepReplicates: true;
      },
    ) => Promise<
      Pick<RunEvaluation, "discAuc" | "discAucSe" | "rtdGain" | "rtdGainSe" | "genAcc" | "replicates">
    >;
  } = {},
): Promise<SweepCross> {
  const dirOf = opts.dirOf ?? ((d: string) => d);
  const evaluate = opts.evaluate ?? evaluateRunDir;
  const filled: SweepRun[] = [];
  for (const r of runs) {
    const values = { ...r.values };
    if (r.status === "done" && !(by.length === 1 && by[0] === "sharing")) {
      for (const k of by) values[k] ??= (await configValue(dirOf(r.dir), k)) ?? "(default)";
    }
    filled.push({ ...r, values });
  }
  const groups = crossGroups(filled, by);
  const total = groups.reduce(
    (s, g) => s + g.members.filter((m) => m.run.sharing !== "mlm").length * g.members.length,
    0,
  );
  let done = 0;
  let complete = true;
  const out: SweepCross["groups"] = [];
  for (const group of groups) {
    const cross: CrossReading[] = [];
    const replicates = new Map<CrossReading, RunEvaluation["replicates"]>();
    for (const d of group.members.filter((m) => m.run.sharing !== "mlm")) {
      for (const g of group.members) {
        if (opts.shouldStop?.()) {
          complete = false;
          break;
        }
        let reading: CrossReading;
        try {
          const e = await evaluate(dirOf(d.run.dir), {
            temperature: ev.temperature,
            seed: ev.seed,
            batchSize: ev.batchSize,
            ...(ev.disallowCorrect ? { disallowCorrect: true as const } : {}),
            // Unseen text (what the runs' corpus cap left out) is read in place of the held-out sequences.
            ...(ev.unseen
              ? {
                unseen: ev.unseen.part === null ? {} : { part: ev.unseen.part },
                sequences: ev.unseen.sequences,
              }
              : ev.sequences !== undefined
              ? { sequences: ev.sequences }
              : {}),
            generatorFrom: dirOf(g.run.dir),
            keepReplicates: true,
          });
          reading = {
            d: d.label,
            g: g.label,
            auc: round6(e.discAuc),
            aucSe: round6(e.discAucSe),
            gain: round6(e.rtdGain),
            gainSe: round6(e.rtdGainSe),
            genAcc: round6(e.genAcc),
          };
          replicates.set(reading, e.replicates);
          if (opts.keepReplicates && e.replicates) {
            reading.replicates = {
              key: e.replicates.key,
              auc: e.replicates.auc.map(round6),
              gain: e.replicates.gain.map((x) => round6(x)!),
            };
          }
        } catch (e) {
          const error = (e as Error).message;
          reading = {
            d: d.label,
            g: g.label,
            auc: null,
            aucSe: null,
            gain: null,
            gainSe: null,
            genAcc: null,
            error,
          };
        }
        cross.push(reading);
        opts.onReading?.(group, reading, ++done, total);
      }
    }
    const { moves, identical } = pairedDifferences(cross, replicates);
    if (cross.length) {
      out.push({
        values: group.values,
        seed: group.seed,
        cross,
        moves,
        ...(identical.length ? { identical } : {}),
      });
    }
    if (!complete) break;
  }
  return {
    format: "rtdlab-regimes-cross-1",
    name,
    built_at: new Date().toISOString(),
    by,
    eval: ev,
    complete,
    groups: out,
  };
}

/**
 * A group's paired differences, from its readings' bootstrap replicates: each reading's `vsOwn` (set in place:
 * another D against the G's own) and each D's moves between two Gs; generators that made identical
 * replacements are named, and the differences they repeat left out.
 */
function pairedDifferences(
  cross: CrossReading[],
  replicates: Map<CrossReading, RunEvaluation["replicates"]>,
): { moves: CrossMove[]; identical: [string, string][] } {
  // The paired differences: another D against the G's own, and one D between two Gs. Replicates pair up only
  // when they come from the same seed and sequences (their key); else the difference gets no error.
  const paired = (x: CrossReading, y: CrossReading, k: "auc" | "gain") => {
    const [a, b] = [replicates.get(x), replicates.get(y)];
    return a && b && a.key === b.key ? roundSe(pairedSe(a[k], b[k])) : null;
  };
  const at = (d: string, g: string) => cross.find((r) => r.d === d && r.g === g && r.auc !== null);
  // Two generators that made the same replacements (NES's and GDES's: GDES keeps D's gradient off E_G) give
  // every D the same readings: their moves are 0 and repeat, so they are named once and left out.
  const gens = [...new Set(cross.map((r) => r.g))];
  const identical: [string, string][] = [];
  for (const [i, g1] of gens.entries()) {
    for (const g2 of gens.slice(i + 1)) {
      const pairs = [...new Set(cross.map((r) => r.d))].map((d) => [at(d, g1), at(d, g2)]);
      const same = pairs.length > 0 &&
        pairs.every(([x, y]) =>
          x && y && x.auc === y.auc && x.gain === y.gain && x.genAcc === y.genAcc &&
          JSON.stringify(replicates.get(x)) === JSON.stringify(replicates.get(y))
        );
      if (same && !identical.some(([, b]) => b === g2)) identical.push([g1, g2]);
    }
  }
  const twin = new Set(identical.map(([, g2]) => g2)); // the second of each identical pair
  for (const r of cross) {
    const own = at(r.g, r.g);
    if (r.d === r.g || r.auc === null || r.gain === null || !own || own.gain === null) continue;
    // On identical generators, "D1 on G2 against G2's own" repeats "D2 on G1 against G1's own".
    if (identical.some(([g1, g2]) => r.d === g1 && r.g === g2)) continue;
    r.vsOwn = {
      auc: round6(r.auc - own.auc!)!,
      aucSe: paired(r, own, "auc"),
      gain: round6(r.gain - own.gain)!,
      gainSe: paired(r, own, "gain"),
    };
  }
  const moves: CrossMove[] = [];
  for (const [i, r1] of cross.entries()) {
    for (const r2 of cross.slice(i + 1)) {
      if (r1.d !== r2.d || r1.auc === null || r2.auc === null || twin.has(r1.g) || twin.has(r2.g)) continue;
      moves.push({
        d: r1.d,
        g1: r1.g,
        g2: r2.g,
        auc: round6(r2.auc - r1.auc)!,
        aucSe: paired(r1, r2, "auc"),
      });
    }
  }
  return { moves, identical };
}

/** The middle value (the mean of the two middle ones for an even count). */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** One group's table and the line that reads it, as {@link crossMarkdown} and {@link crossReport} show them. */
export interface CrossTable {
  /** The values the group's runs share, and its seed. */
  title: string;
  /** Rows the discriminators, columns the generators (with how often each is right), cells "AUC / gain". */
  cells: TableCells;
  /** How far another D lies from each G's own against how far one D moves between Gs (null: too few). */
  summary: string | null;
}

/** The crossed readings, group by group: a table and the line that reads it. */
export function crossTables(c: SweepCross): CrossTable[] {
  const f3 = (x: number | null) => (x === null ? "n/a" : x.toFixed(3));
  return c.groups.map((grp) => {
    const ds = [...new Set(grp.cross.map((r) => r.d))];
    const gs = [...new Set(grp.cross.map((r) => r.g))];
    const at = (d: string, g: string) => grp.cross.find((r) => r.d === d && r.g === g);
    const shared = Object.entries(grp.values).map(([k, v]) => `${k}=${v}`).join(" · ") || "(no other key)";
    const head = gs.map((g) => {
      const acc = grp.cross.find((r) => r.g === g && r.genAcc !== null)?.genAcc;
      return `on ${g}'s G (${acc === undefined || acc === null ? "n/a" : (100 * acc).toFixed(1)} % right)`;
    });
    const body = ds.map((d) => [
      d,
      ...gs.map((g) => {
        const r = at(d, g);
        if (!r) return "—";
        if (r.error) return `failed: ${r.error.replace(/\s*\n\s*/g, " ")}`;
        return `${f3(r.auc)} / ${f3(r.gain)}${d === g ? " (own)" : ""}`;
      }),
    ]);
    // Another D against the G's own, on one G; one D between two Gs; both beside the readings' errors.
    const gaps: number[] = [], moves: number[] = [], ses: number[] = [];
    for (const r of grp.cross) {
      if (r.auc === null) continue;
      if (r.aucSe !== null) ses.push(r.aucSe);
      const own = at(r.g, r.g);
      if (r.d !== r.g && own?.auc != null) gaps.push(Math.abs(r.auc - own.auc));
      for (const q of grp.cross) {
        if (q.d === r.d && q.g > r.g && q.auc !== null) moves.push(Math.abs(q.auc - r.auc));
      }
    }
    const spreads = gaps.length && moves.length
      ? `Another discriminator lies within ${f3(Math.max(...gaps))} AUC of the generator's own (median ` +
        `${f3(median(gaps))}); one discriminator's AUC moves by up to ${f3(Math.max(...moves))} between ` +
        `generators (median ${f3(median(moves))})`
      : null;
    // Beyond two standard errors of each difference itself where the readings kept their bootstrap
    // (paired: the same resampled sequences); else against two of a single reading's (median) error.
    const gapsP = grp.cross.flatMap((
      r,
    ) => (r.vsOwn ? [{ x: Math.abs(r.vsOwn.auc), se: r.vsOwn.aucSe }] : []));
    const movesP = (grp.moves ?? []).map((m) => ({ x: Math.abs(m.auc), se: m.aucSe }));
    const paired = gapsP.length > 0 && movesP.length > 0 && [...gapsP, ...movesP].every((p) => p.se !== null);
    let summary: string | null = null;
    if (spreads && paired) {
      const beyond = (xs: { x: number; se: number | null }[]) => xs.filter((p) => p.x > 2 * p.se!);
      const [bg, bm] = [beyond(gapsP), beyond(movesP)];
      summary =
        `${spreads}. Beyond two paired standard errors: ${bg.length} of ${gapsP.length} discriminator ` +
        `gaps, ${bm.length} of ${movesP.length} generator moves` +
        (bg.length === 0 && bm.length === 0
          ? "; at this precision neither decides."
          : bg.length === 0
          ? ": the generators move the AUC, the discriminators not beyond their errors."
          : bm.length === 0
          ? ": the discriminators move the AUC, the generators not beyond their errors."
          : `: both move it${
            Math.max(...bm.map((p) => p.x)) >= 2 * Math.max(...bg.map((p) => p.x))
              ? ", the generators at least twice as much"
              : Math.max(...bg.map((p) => p.x)) >= 2 * Math.max(...bm.map((p) => p.x))
              ? ", the discriminators at least twice as much"
              : ""
          }.`) +
        (grp.identical?.length
          ? ` (${grp.identical.map(([a, b]) => `${a}'s and ${b}'s`).join(", ")} generators made identical ` +
            "replacements: their repeated differences are left out.)"
          : "");
    } else if (spreads) {
      summary = spreads + (ses.length ? `; a reading's standard error is ~${f3(median(ses))}` : "") +
        (ses.length && Math.max(...gaps, ...moves) < 2 * median(ses)
          ? ". Both within two standard errors: at this precision neither decides."
          : Math.max(...moves) > Math.max(...gaps)
          ? ". The generators move the AUC more than the discriminators do."
          : ". The discriminators move the AUC as much as the generators do, or more.");
    }
    return {
      title: `${shared}, seed ${grp.seed}`,
      cells: { head: ["discriminator", ...head], body },
      summary,
    };
  });
}

/** What a crossing's page and markdown say first: the settings and how to read a cell. */
function crossIntro(c: SweepCross): string {
  const on = c.eval.unseen
    ? `${c.eval.unseen.sequences} sequences of text the runs never saw (what their corpusMaxChars cap left ` +
      `out${c.eval.unseen.part === null ? "" : `, part ${c.eval.unseen.part}`})`
    : c.eval.sequences !== undefined
    ? `${c.eval.sequences} of the training sequences (the runs hold none out)`
    : "Held out";
  const sampled = c.eval.disallowCorrect ? ", replacements never the original (--disallow-correct)" : "";
  return `${on}, T = ${c.eval.temperature}${sampled}, evaluation seed ${c.eval.seed}; each cell D's ROC-AUC / RTD gain ` +
    "(nats). A discriminator is judged on its own generator's replacements in its point's row (own); the other " +
    "cells put every discriminator on one task. The AUC ranks tokens and so transfers between tasks; the gain " +
    "also needs D's probabilities calibrated to how often, and how plausibly, the generator replaces." +
    (c.complete ? "" : "\n\n**Stopped before every reading was made**: the tables hold those made.");
}

/**
 * The crossed readings as markdown: per group a table, rows the discriminators, columns the generators (with
 * how often each is right), each cell "AUC / gain" ("—" where no reading was made, the error where it
 * failed), and per group how far another discriminator lies from each generator's own against how far one
 * discriminator moves between generators, beside the readings' standard error.
 */
export function crossMarkdown(c: SweepCross): string {
  const parts = [
    `## ${c.name}: every discriminator on every generator's replacements (crossed by ${c.by.join(", ")})`,
    "",
    crossIntro(c),
  ];
  for (const t of crossTables(c)) {
    parts.push("", `### ${t.title}`, "", markdownTable(t.cells));
    if (t.summary) parts.push("", t.summary);
  }
  return parts.join("\n") + "\n";
}

/**
 * Each reading of a discriminator on another run's replacements against that generator's own discriminator
 * (one colour per group, ± 1 SE over sequences): on the diagonal, the discriminator does not matter.
 */
export function crossFigure(c: SweepCross): Figure {
  const tables = crossTables(c);
  const xs: number[] = [];
  const data: Trace[] = c.groups.map((grp, i) => {
    const pts = grp.cross.flatMap((r) => {
      const own = grp.cross.find((o) => o.d === r.g && o.g === r.g);
      return r.d !== r.g && r.auc !== null && own?.auc != null ? [{ r, own: own.auc }] : [];
    });
    xs.push(...pts.flatMap((p) => [p.own, p.r.auc!]));
    return {
      type: "scatter",
      mode: "markers",
      name: tables[i].title,
      x: pts.map((p) => p.own),
      y: pts.map((p) => p.r.auc!),
      // The error of the distance from the diagonal: paired where the readings kept their bootstrap.
      error_y: {
        type: "data",
        array: pts.map((p) => p.r.vsOwn?.aucSe ?? p.r.aucSe ?? 0),
        visible: true,
        thickness: 1,
      },
      text: pts.map((p) =>
        `${p.r.d}'s D on ${p.r.g}'s G: ${p.r.auc!.toFixed(3)}<br>${p.r.g}'s own: ${p.own.toFixed(3)}`
      ),
      hovertemplate: "%{text}<extra>%{fullData.name}</extra>",
      marker: { size: 10, opacity: 0.8 },
    };
  });
  const lo = Math.min(0.5, ...xs) - 0.01, hi = Math.max(0.6, ...xs) + 0.02;
  data.push({
    type: "scatter",
    mode: "lines",
    name: "the same score",
    x: [lo, hi],
    y: [lo, hi],
    line: { dash: "dot", color: "#333333", width: 1 },
    hoverinfo: "skip",
  });
  return {
    data,
    layout: {
      title: {
        text:
          `${c.name}: one generator's replacements, two discriminators<br><sub>another run's D against the ` +
          `generator's own (crossed by ${c.by.join(", ")}); ± 1 SE of the difference (paired)</sub>`,
      },
      xaxis: { title: { text: "AUC of the generator's own discriminator" }, range: [lo, hi] },
      yaxis: { title: { text: "AUC of the other run's discriminator" }, range: [lo, hi] },
      height: 520,
      width: 700,
      legend: { orientation: "h", x: 0, y: -0.2, yanchor: "top" },
    },
  };
}

/** The crossing as a page: the figure, then each group's table and reading. */
export function crossReport(c: SweepCross): Report {
  const report = new Report(`rtdlab sweep ${c.name}: crossed by ${c.by.join(", ")}`).text(crossIntro(c));
  report.figure(crossFigure(c));
  for (const t of crossTables(c)) {
    report.heading(t.title, 3).html(htmlTable(t.cells));
    if (t.summary) report.text(t.summary);
  }
  return report;
}

/**
 * Writes a crossing as `cross-KEYS.{json,md,html}` under `root`, atomically. A stopped crossing, or one with
 * a failed reading, goes to `cross-KEYS.partial.*` beside the whole one, never over it; a whole one removes
 * any partial files left by an earlier attempt. Returns the base path written (no extension).
 */
export async function writeCross(root: string, cross: SweepCross): Promise<string> {
  const whole = cross.complete && cross.groups.every((g) => g.cross.every((r) => !r.error));
  const base = crossBase(root, cross.by) + (whole ? "" : ".partial");
  await writeJsonAtomic(`${base}.json`, cross);
  await writeFileAtomic(`${base}.md`, crossMarkdown(cross));
  await crossReport(cross).write(`${base}.html`);
  if (whole) {
    for (const ext of ["json", "md", "html"]) await Deno.remove(`${base}.partial.${ext}`).catch(() => {});
  }
  return base;
}

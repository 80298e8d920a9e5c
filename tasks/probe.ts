/**
 * `deno task probe`: the tug-of-war of a trained run at its latest checkpoint (lib/probes/run_probe.ts):
 * cos(g_MLM, g_RTD) on the embeddings, the share of opposed rows and the gradients' ratio, as means ± one
 * standard error over the batches of its held-out sequences, beside D's AUC and RTD gain on the same
 * sequences and the embeddings' average cosine. Reads the run folder; writes nothing there.
 *
 *   deno task probe --run runs/gdes [--batch 8] [--seed 0] [--no-dropout] [--out runs/gdes/probe.json]
 *
 * @module
 */

import { intOption, parseArgsOrExit } from "../lib/util/cli.ts";
import { type BackendName, BACKENDS, initBackend } from "../lib/backend/mod.ts";
import { type MeanSe, probeRunDir, type TableProbe } from "../lib/probes/run_probe.ts";
import { writeJsonAtomic } from "../lib/io/atomic.ts";
import { formatAgainst, formatSe, NOT_LEARNED, notLearned } from "../lib/train/rtd_metrics.ts";
import { ProgressBar } from "../lib/util/progress.ts";

const HELP = `deno task probe — the tug-of-war between L_MLM and λ·L_RTD at a run's latest checkpoint

  --run DIR            run folder (config.json, tokenizer.json, checkpoints/)
  --batch B            sequences per probed batch  [the run's batchSize]
  --seed S             seed of the masking, sampling and dropout draws  [0]
  --no-dropout         measure without dropout (less noise per batch; training-time probes keep it)
  --sequences N        runs without held-out sequences: how many training sequences to probe  [64]
  --tokens N           tokens the embeddings' average cosine is taken over (the most frequent)  [1000]
  --out FILE           also write the numbers as JSON (atomically)
  --backend B          wasm | cpu | webgpu | cuda  [wasm]
  --help               this text

What g_MLM and g_RTD are depends on the sharing mode: ES, both on the one shared table (the tug-of-war
itself); NES, each network's own table; GDES, E_G and E_Δ (the pull the stop-gradient keeps off E_G).
`;

/** What the two gradients are under each sharing mode, in one line. */
const MEANING: Record<string, string> = {
  es: "both gradients land on the one shared table E: a negative cosine is the tug-of-war itself",
  nes: "nothing is shared: g_MLM is on E_G, g_RTD on E_D (the pulls a shared table would feel)",
  gdes: "g_MLM is on E_G, g_RTD on E_Δ: the pull GDES's stop-gradient keeps away from E_G",
};

function fail(msg: string): never {
  console.error(`error: ${msg}`);
  Deno.exit(2);
}

if (import.meta.main) {
  const bare = Deno.args.find((a, i) =>
    !a.startsWith("-") && (i === 0 || !Deno.args[i - 1].startsWith("--"))
  );
  if (bare !== undefined) fail(`unexpected argument "${bare}": give the run folder as --run ${bare}`);
  const { values } = parseArgsOrExit({
    options: {
      run: { type: "string" },
      batch: { type: "string" },
      seed: { type: "string", default: "0" },
      "no-dropout": { type: "boolean", default: false },
      sequences: { type: "string" },
      tokens: { type: "string", default: "1000" },
      out: { type: "string" },
      backend: { type: "string", default: "wasm" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    Deno.exit(0);
  }
  if (!values.run) fail("--run DIR is required (see --help)");
  if (!(BACKENDS as readonly string[]).includes(values.backend!)) {
    fail(`unknown backend "${values.backend}"; valid backends: ${BACKENDS.join(", ")}`);
  }
  const int = (flag: string, v: string | undefined, min: number): number | undefined => {
    try {
      return intOption(flag, v, min);
    } catch (e) {
      fail((e as Error).message);
    }
  };
  try {
    await initBackend(values.backend as BackendName);
    let bar: ProgressBar | undefined;
    const r = await probeRunDir(values.run, {
      batchSize: int("batch", values.batch, 1),
      seed: int("seed", values.seed, 0),
      dropout: !values["no-dropout"],
      sequences: int("sequences", values.sequences, 1),
      similarityTokens: int("tokens", values.tokens, 2),
      onBatch: (done, total) => {
        bar ??= new ProgressBar(total, "probe");
        bar.update(done);
        if (done === total) bar.done();
      },
    });
    if (values.out) await writeJsonAtomic(values.out, { format: "rtdlab-probe-1", run: values.run, ...r });
    const e = r.evaluation;
    console.log(
      `${values.run} at step ${r.step} (${r.sharing.toUpperCase()}): ${r.sequences} ${
        r.heldOut ? "held-out" : "training (no held-out set)"
      } sequences in ${r.batches} batches of ${r.batchSize}; ${
        r.dropout ? "the run's dropout" : "no dropout"
      }; seed ${r.seed}`,
    );
    const pmSkill = (x: number | null, se: number | null | undefined, at: number) =>
      x === null ? "—" : `${formatAgainst(x, at)}${typeof se === "number" ? ` ± ${formatSe(se)}` : ""}`;
    console.log(
      `  D on these sequences (T = 1): AUC ${pmSkill(e.discAuc, e.discAucSe, NOT_LEARNED.auc)}, RTD gain ${
        pmSkill(e.rtdGain, e.rtdGainSe, NOT_LEARNED.gain)
      } nats — ${notLearned(e.discAuc, e.rtdGain).learned ? "learned" : "NOT learned"}`,
    );
    if (!notLearned(e.discAuc, e.rtdGain).learned) {
      console.log(
        "  (the readings below describe a discriminator that has not learned to spot replacements)",
      );
    }
    const pm = (m: MeanSe, digits = 3, signed = false) =>
      `${signed && m.mean >= 0 ? "+" : ""}${m.mean.toFixed(digits)}${
        m.se === null ? "" : ` ± ${m.se.toFixed(digits)}`
      }`;
    const table = (name: string, t: TableProbe | null) => {
      if (!t) {
        console.log(`  ${name}: — (D reads no such table)`);
        return;
      }
      console.log(`  ${name} (mean ± SE over ${t.cos.n} batches):`);
      console.log(`    cos(g_MLM, g_RTD)         ${pm(t.cos, 3, true)}`);
      console.log(`    opposed rows (cos < 0)    ${pm(t.opposedShare)}`);
      console.log(`    ‖g_RTD‖ / ‖g_MLM‖         ${pm(t.ratio, 2)}`);
    };
    table("token embeddings", r.token);
    table("position embeddings", r.position);
    console.log(`  ${MEANING[r.sharing]}`);
    const s = r.similarity;
    const f = (x: number | null) => (x === null ? "—" : x.toFixed(3));
    console.log(
      `  average cosine of the ${Number(values.tokens).toLocaleString("en")} most frequent tokens: E_G ${
        f(s.generator)
      }, E_D ${f(s.discriminator)}${s.delta === null ? "" : `, E_Δ ${f(s.delta)}`}`,
    );
    Deno.exit(0);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}

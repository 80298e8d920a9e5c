/**
 * Loading HuggingFace state dicts (ElectraForPreTraining / ElectraForMaskedLM, or the DeBERTa-v2
 * equivalents rtdlab exports) into an rtdlab model, in any sharing mode, with a report by name as
 * transformers gives one: tensors the model needs but the checkpoint lacks (an error, listing them
 * all), checkpoint tensors the model does not use (reported), shape mismatches (an error, naming
 * each).
 *
 * Where each parameter comes from (`<bb>` = `electra` / `deberta`):
 * - `discriminator.X` ← the discriminator folder's `X`; `generator.X` and `mlm.X` ← the generator
 *   (masked-LM) folder's `X`; an encoder-only model (fine-tuning) reads one folder as the discriminator.
 * - ES: the shared tables live under `discriminator.`, so they come from the discriminator folder; the
 *   generator folder's own copies are not used (the report says whether they were equal).
 * - GDES: E_G ← the generator folder's tables and E_Δ = E_D − E_G from the discriminator folder's, so
 *   the discriminator reads exactly its exported table: an rtdlab GDES export (E_D = E_G + E_Δ merged)
 *   gets its E_Δ back, folded in once, and a pair whose tables agree (e.g. ELECTRA's ES pair) starts
 *   GDES with E_Δ = 0 on top of the loaded table.
 * - The ELECTRA generator's `generator_lm_head.weight` is tied to its token table in rtdlab: the
 *   checkpoint's must equal that table (transformers' tied weights do), or loading is refused.
 *
 * @module
 */

import * as tf from "../tf.ts";
import type { HostTensor } from "../io/safetensors.ts";
import { encoderWeightPrefix } from "./hf_config.ts";
import type { RtdModel } from "./mod.ts";

/** One folder's tensors and the file they came from (for messages). */
export interface StateDict {
  /** The file, e.g. `DIR/model.safetensors`. */
  path: string;
  /** Tensors by HF name. */
  tensors: Map<string, HostTensor>;
}

/** The folders a model loads from: a discriminator (ElectraForPreTraining) and/or a generator (masked LM). */
export interface StateDicts {
  /** ElectraForPreTraining (or DeBERTa) weights. */
  discriminator?: StateDict;
  /** Masked-LM generator weights. */
  generator?: StateDict;
}

/** What loading did, by name. */
export interface LoadReport {
  /** Parameters set from a checkpoint. */
  loaded: number;
  /** Checkpoint tensors the model does not use, as `FILE: name`. */
  unused: string[];
  /** Parameters no checkpoint tensor reached, left as initialised (only those no forward pass reads). */
  initialised: string[];
  /** Remarks: ES's shared tables, GDES's E_Δ, names without the encoder prefix. */
  notes: string[];
}

const LIST_LIMIT = 12;

/** `a, b, c` (with "… and N more" past a dozen names). */
export function nameList(names: string[]): string {
  const shown = names.slice(0, LIST_LIMIT).join(", ");
  return names.length > LIST_LIMIT ? `${shown} … and ${names.length - LIST_LIMIT} more` : shown;
}

/** A plan entry: where one parameter's values come from. */
type Source =
  | { kind: "copy"; role: Role; name: string }
  | { kind: "delta"; table: string };

type Role = "discriminator" | "generator";

const DELTA_RE = /^(electra|deberta)\.embeddings\.(\w+)_delta\.weight$/;

/**
 * Loads `dicts` into `model`'s parameters (see the module doc for the mapping). Throws, before
 * changing any parameter, when a needed tensor is missing, has another shape or is not floating-point;
 * the error names every such tensor and the file.
 */
export function loadStateDicts(model: RtdModel, dicts: StateDicts): LoadReport {
  const c = model.config;
  const bb = encoderWeightPrefix(c.backbone); // "electra." | "deberta."
  const notes: string[] = [];
  const folders: Partial<Record<Role, StateDict>> = {};
  for (const role of ["discriminator", "generator"] as const) {
    const d = dicts[role];
    if (d) folders[role] = withEncoderPrefix(d, bb, notes);
  }
  const plan = new Map<string, Source>();
  const optional = new Set<string>();
  for (const param of model.params.names()) {
    const dot = param.indexOf(".");
    const head = param.slice(0, dot), rest = param.slice(dot + 1);
    if (head !== "discriminator" && head !== "generator" && head !== "mlm") {
      throw new Error(`cannot load ${param}: it belongs to neither network (load before adding heads)`);
    }
    const role: Role = head === "mlm" ? "generator" : head;
    const delta = DELTA_RE.exec(rest);
    plan.set(
      param,
      delta ? { kind: "delta", table: `${bb}embeddings.${delta[2]}.weight` } : {
        kind: "copy",
        role,
        name: rest,
      },
    );
    if (neverRead(model, param)) optional.add(param);
  }

  // Which tensor of which folder each parameter reads; what is missing or mis-shaped.
  const used: Record<Role, Set<string>> = { discriminator: new Set(), generator: new Set() };
  const missing: Record<Role, string[]> = { discriminator: [], generator: [] };
  const problems: string[] = [];
  const need = (role: Role, name: string, param: string): HostTensor | undefined => {
    const folder = folders[role];
    if (!folder) {
      throw new Error(
        `${param} comes from a ${role} checkpoint, but no ${role} folder was given` +
          (role === "generator" ? " (pre-training needs both the discriminator and the generator)" : ""),
      );
    }
    used[role].add(name);
    const t = folder.tensors.get(name);
    if (!t) {
      if (!optional.has(param)) missing[role].push(name);
      else if (neverRead(model, param)) {
        notes.push(
          `${param}: not in the checkpoint; never read (the discriminator has no absolute positions)`,
        );
      }
      return undefined;
    }
    const shape = model.params.get(param).shape;
    if (t.shape.join(",") !== shape.join(",")) {
      problems.push(
        `${folder.path}: size mismatch for ${name}: the checkpoint has shape [${t.shape}], the model needs [${shape}]`,
      );
    } else if (t.dtype !== "F32") {
      problems.push(`${folder.path}: ${name} holds integers; the model needs floating-point weights`);
    }
    return t;
  };
  const values = new Map<string, Float32Array>();
  let deltaTables = 0;
  for (const [param, src] of plan) {
    if (src.kind === "copy") {
      const t = need(src.role, src.name, param);
      if (t) values.set(param, t.data as Float32Array);
      continue;
    }
    const e = need("discriminator", src.table, param);
    const g = need("generator", src.table, param);
    if (e && g && e.shape.join(",") === g.shape.join(",")) {
      values.set(param, gdesDelta(e.data as Float32Array, g.data as Float32Array, src.table, notes));
      deltaTables++;
    }
  }
  if (deltaTables > 0) {
    notes.push(
      `GDES: E_G from the generator's tables, E_Δ = E_D − E_G from the discriminator's (${deltaTables} tables), ` +
        `so the discriminator reads exactly its own table`,
    );
  }

  const unusedByRole: Record<Role, string[]> = { discriminator: [], generator: [] };
  for (const role of ["discriminator", "generator"] as const) {
    const folder = folders[role];
    if (!folder) continue;
    for (const name of folder.tensors.keys()) if (!used[role].has(name)) unusedByRole[role].push(name);
  }
  tiedHead(folders.generator, bb, unusedByRole.generator, problems);
  if (c.sharing === "es" && !model.encoderOnly) {
    esTables(folders, bb, unusedByRole.generator, notes);
  }

  const errors: string[] = [];
  for (const role of ["discriminator", "generator"] as const) {
    const m = missing[role];
    if (!m.length) continue;
    const folder = folders[role]!;
    const unused = unusedByRole[role];
    const kind = `${bb === "electra." ? "an ELECTRA" : "a DeBERTa-v2"} ${role} checkpoint`;
    errors.push(
      m.length === used[role].size
        ? `${folder.path}: holds none of the ${m.length} tensors the model needs (is it ${kind}?): ${
          nameList(m)
        }`
        : `${folder.path}: missing ${m.length} tensor(s) the model needs: ${nameList(m)}` +
          (unused.length ? ` (tensors the model does not use: ${nameList(unused)})` : ""),
    );
  }
  errors.push(...problems);
  if (errors.length) throw new Error(errors.join("\n"));

  for (const [param, data] of values) {
    const v = model.params.get(param);
    tf.tidy(() => v.assign(tf.tensor(data, v.shape, "float32")));
  }
  return {
    loaded: values.size,
    unused: (["discriminator", "generator"] as const).flatMap((r) =>
      unusedByRole[r].map((n) => `${folders[r]!.path}: ${n}`)
    ),
    initialised: model.params.names().filter((p) => !values.has(p)),
    notes,
  };
}

/** Lines describing a load for the console: counts, then unused and newly initialised names. */
export function formatLoadReport(r: LoadReport, sources: string[]): string[] {
  const lines = [`loaded ${r.loaded} tensors from ${sources.join(" and ")}`];
  // Grouped by file: "FILE: a, b, c".
  const byFile = new Map<string, string[]>();
  for (const u of r.unused) {
    const i = u.lastIndexOf(": ");
    const file = u.slice(0, i);
    byFile.set(file, [...(byFile.get(file) ?? []), u.slice(i + 2)]);
  }
  for (const [file, names] of byFile) {
    lines.push(`  not used (in the checkpoint, not in the model): ${file}: ${nameList(names)}`);
  }
  if (r.initialised.length) {
    lines.push(`  newly initialised (not in the checkpoint): ${nameList(r.initialised)}`);
  }
  for (const n of r.notes) lines.push(`  ${n}`);
  return lines;
}

/**
 * A bare encoder checkpoint (transformers' ElectraModel / DebertaV2Model) names its weights without
 * the `electra.` / `deberta.` prefix; as transformers does, read it as if they had it.
 */
function withEncoderPrefix(d: StateDict, bb: string, notes: string[]): StateDict {
  d = withRtdlabMlmHead(d, bb);
  const names = [...d.tensors.keys()];
  if (names.some((n) => n.startsWith(bb)) || !names.some((n) => n.startsWith("embeddings."))) return d;
  notes.push(`${d.path}: a bare encoder checkpoint (names without "${bb}"): read as ${bb}*`);
  return { path: d.path, tensors: new Map(names.map((n) => [bb + n, d.tensors.get(n)!])) };
}

/**
 * transformers' DebertaV2ForMaskedLM names the MLM head BERT-style (`cls.predictions.transform.dense`,
 * `.transform.LayerNorm`, `.bias`, a tied `.decoder`), as rtdlab's exports do; the model reads it as
 * DeBERTa's own `lm_predictions.lm_head.*`. The tied decoder stays in the folder, checked by tiedHead.
 */
function withRtdlabMlmHead(d: StateDict, bb: string): StateDict {
  if (bb !== "deberta." || !d.tensors.has("cls.predictions.bias")) return d;
  const rename: Record<string, string> = {
    "cls.predictions.transform.dense.weight": "lm_predictions.lm_head.dense.weight",
    "cls.predictions.transform.dense.bias": "lm_predictions.lm_head.dense.bias",
    "cls.predictions.transform.LayerNorm.weight": "lm_predictions.lm_head.LayerNorm.weight",
    "cls.predictions.transform.LayerNorm.bias": "lm_predictions.lm_head.LayerNorm.bias",
    "cls.predictions.bias": "lm_predictions.lm_head.bias",
  };
  return {
    path: d.path,
    tensors: new Map([...d.tensors].map(([n, t]) => [rename[n] ?? n, t])),
  };
}

/**
 * Parameters no forward pass reads, so a checkpoint may lack them: the DeBERTa discriminator's position
 * table (and its GDES delta) — position_biased_input is false and only the generator's Enhanced Mask
 * Decoder reads positions — unless ES makes it the generator's table too.
 */
function neverRead(model: RtdModel, param: string): boolean {
  if (model.config.backbone !== "deberta") return false;
  if (!/^discriminator\.deberta\.embeddings\.position_embeddings(_delta)?\.weight$/.test(param)) return false;
  return model.encoderOnly || model.config.sharing !== "es";
}

/** E_Δ = E_D − E_G in float32, noting entries where E_G + E_Δ cannot give E_D back exactly. */
function gdesDelta(e: Float32Array, g: Float32Array, table: string, notes: string[]): Float32Array {
  const out = new Float32Array(e.length);
  let inexact = 0, worst = 0;
  for (let i = 0; i < e.length; i++) {
    out[i] = e[i] - g[i];
    const back = Math.fround(g[i] + out[i]);
    if (back !== e[i] && !(Number.isNaN(back) && Number.isNaN(e[i]))) {
      inexact++;
      worst = Math.max(worst, Math.abs(back - e[i]));
    }
  }
  if (inexact) {
    notes.push(
      `GDES: ${inexact} entries of ${table} cannot be written exactly as E_G + E_Δ in float32 (off by ≤ ${worst})`,
    );
  }
  return out;
}

/** The ELECTRA generator's output layer must be its token table (rtdlab ties them); consumes the name. */
function tiedHead(folder: StateDict | undefined, bb: string, unused: string[], problems: string[]): void {
  const head = bb === "electra." ? "generator_lm_head.weight" : "cls.predictions.decoder.weight";
  const i = unused.indexOf(head);
  if (!folder || i < 0) return;
  unused.splice(i, 1);
  // The decoder's bias is the head's bias again (transformers ties them).
  const bias = unused.indexOf("cls.predictions.decoder.bias");
  if (bb === "deberta." && bias >= 0) unused.splice(bias, 1);
  const w = folder.tensors.get(head)!, table = folder.tensors.get(`${bb}embeddings.word_embeddings.weight`);
  if (!table || !sameValues(w, table)) {
    problems.push(
      `${folder.path}: ${head} differs from ${bb}embeddings.word_embeddings.weight; rtdlab ties the generator's ` +
        `output layer to its token table, so an untied head cannot be loaded`,
    );
  }
}

/** ES reads the discriminator's tables; says whether the generator folder's own copies agreed. */
function esTables(
  folders: Partial<Record<Role, StateDict>>,
  bb: string,
  unused: string[],
  notes: string[],
): void {
  const d = folders.discriminator, g = folders.generator;
  if (!d || !g) return;
  const copies = unused.filter((n) => n.startsWith(`${bb}embeddings.`));
  if (!copies.length) return;
  const differ = copies.filter((n) => {
    const a = d.tensors.get(n);
    return !a || !sameValues(a, g.tensors.get(n)!);
  });
  if (!differ.length) {
    for (const n of copies) unused.splice(unused.indexOf(n), 1);
    notes.push(
      `ES: the generator's embedding tables equal the discriminator's (shared; read from ${d.path})`,
    );
  } else {
    notes.push(
      `ES: the generator folder's own ${nameList(differ)} differ from the discriminator's; ES shares the ` +
        `discriminator's tables, so the generator's are not used`,
    );
  }
}

function sameValues(a: HostTensor, b: HostTensor): boolean {
  if (a.shape.join(",") !== b.shape.join(",") || a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (!Object.is(a.data[i], b.data[i])) return false;
  return true;
}

/**
 * Probes of the RTD training dynamics: the tug-of-war between L_MLM and λ·L_RTD on the embeddings,
 * embedding geometry, and the discriminator's per-token view.
 *
 * metrics.jsonl keys written on probed steps (`--probe-every K`, config `probeEvery`):
 *
 * | key                    | meaning (token table; `tow_pos_*` the same for the position table)          |
 * | ---------------------- | --------------------------------------------------------------------------- |
 * | `tow_cos`              | cos(g_MLM, g_RTD), global over the table                                    |
 * | `tow_norm_mlm`         | ‖g_MLM‖ (Frobenius, raw: before clipping)                                   |
 * | `tow_norm_rtd`         | ‖g_RTD‖, λ included                                                         |
 * | `tow_ratio`            | ‖g_RTD‖ / ‖g_MLM‖                                                           |
 * | `tow_opposed_rows`     | share of the touched rows whose row cosine is < 0                           |
 * | `tow_touched_rows`     | rows with a nonzero gradient from both losses                               |
 * | `sim_gen`              | average pairwise cosine of E_G over the top-N tokens (after the update)     |
 * | `sim_disc`             | the same for E_D (ES: = sim_gen; GDES: E_G + E_Δ)                           |
 * | `sim_delta`            | the same for E_Δ (GDES only, else null)                                     |
 *
 * g_MLM / g_RTD are the gradients with respect to the table G / D reads — the shared table under ES,
 * each network's own under NES, E_G and E_D = sg(E_G) + E_Δ (= the gradient on E_Δ) under GDES; see
 * lib/probes/tug_of_war.ts. The MLM baseline logs null `tow_*` and `sim_disc`.
 *
 * @module
 */

export { embeddingTable, type EmbeddingTableName, type EmbeddingView, readTableParam } from "./tables.ts";
export {
  agreementTensors,
  type GradientAgreement,
  measureTugOfWar,
  type ProbeOptions,
  probeTugOfWar,
  stepGradients,
  type TokenNamer,
  TugOfWarMeasurement,
  tugOfWarMetrics,
  type TugOfWarOptions,
  type TugOfWarReport,
  type TugOfWarRow,
} from "./tug_of_war.ts";
export {
  averageCosine,
  averageCosineFromParts,
  averageCosineParts,
  type Drift,
  embeddingDrift,
  type EmbeddingSimilarity,
  embeddingSimilarity,
  nearestNeighbours,
  type Neighbour,
  type NeighbourList,
  type NeighbourOptions,
  snapshotEmbeddings,
  tokenFrequencies,
  topTokens,
} from "./geometry.ts";
export {
  discriminatorView,
  type DiscriminatorViewOptions,
  type DiscriminatorViewRow,
  type ViewTokenizer,
} from "./discriminator_view.ts";
export { TrainingProbe, type TrainingProbeOptions } from "./training_probe.ts";
export {
  type MeanSe,
  meanSe,
  PROBE_STREAM,
  probeRunDir,
  type RunProbe,
  type RunProbeOptions,
  type TableProbe,
} from "./run_probe.ts";

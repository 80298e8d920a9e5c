/**
 * Reports: metric logs as arquero tables, plotly figures, `show()` for notebooks and terminals, and
 * standalone HTML reports. Kept out of lib/mod.ts so that training code does not load arquero; notebooks
 * import it directly:
 *
 * ```ts
 * import { loadRuns, lossCurves, show } from "../lib/report/mod.ts";
 * const t = await loadRuns("../runs/demo");
 * await show(lossCurves(t));
 * ```
 *
 * @module
 */

export {
  compareModes,
  type CompareOptions,
  compareRuns,
  DEFAULT_METRICS,
  findRuns,
  formatMeanStd,
  groupCurves,
  type LoadOptions,
  loadRun,
  loadRuns,
  modeOrder,
  naturalCompare,
  readMetricsFile,
  readRunConfig,
  RUN_COLUMNS,
  runIndices,
  runNames,
  smooth,
  type SmoothOptions,
  smoothSeries,
  stdev,
  type Table,
  tableFromRows,
} from "./metrics.ts";
export {
  type CurveOptions,
  differencePlot,
  type DifferenceRow,
  type FacetCurveOptions,
  facetCurves,
  GAIN_AXIS_FLOOR,
  type HtmlBlock,
  isHtmlBlock,
  logTicks,
  type LossCurveOptions,
  lossCurves,
  METRIC_LABELS,
  metricCurves,
  MODE_COLORS,
  modeColor,
  probeCurves,
  RUN_COLORS,
  type ScoreCell,
  type ScoreDotOptions,
  scoreDots,
  type ScoreSummary,
  similarityBars,
  type SimilarityRow,
  skillCurves,
  tokenHeatmap,
  type TokenOptions,
  tokenStrip,
  wrapText,
} from "./figures.ts";
export { type Figure, figureHtml, figureSummary, isFigure, plotlySource, type Trace } from "./plotly.ts";
export {
  inJupyter,
  isTable,
  jupyter,
  type MimeBundle,
  mimeBundle,
  resetPlotly,
  show,
  type ShowOptions,
  toText,
} from "./show.ts";
export { markdownToHtml, Report, type TableOptions, writeHtmlReport } from "./html.ts";
export { type ProseCheck, proseCheck, type QuotedNumber, roundingTolerance } from "./prose.ts";
export {
  baseRate,
  demoReport,
  type DemoReportOptions,
  type DiscriminatorSkill,
  discriminatorSkill,
  type Finding,
  findings,
  type FindingsOptions,
  formatSummary,
  meanSe,
  type ModeView,
  runSeries,
  runSummary,
  stepNoise,
  SUMMARY_KEY,
  type SummaryOptions,
  summaryText,
  type Verdict,
  viewStats,
  viewStrip,
  type ViewStripOptions,
} from "./demo.ts";
export {
  type ReportedRun,
  reportedRuns,
  type RunsReport,
  runsReport,
  type RunsReportOptions,
  type RunVerdict,
  runVerdicts,
  settingsDiff,
} from "./runs.ts";

/**
 * The name and contract of rtdlab's fused AdamW kernel, which GPU backends register so one parameter's
 * update is one launch instead of ~17 (lib/train/optimizer.ts uses it when the active backend has it).
 *
 * Inputs: `param`, `grad`, `m`, `v` (float32, one shape) and `scale` (float32 scalar: the clipping
 * factor, computed on the device so the update needs no host read). Attrs: `lr`, `beta1`, `beta2`,
 * `epsilon`, `weightDecay` (0 for parameters without decay), `corr1`, `corr2` (bias corrections, 1
 * without). Outputs: the new `[param, m, v]`. Each step is one float32 operation in the order of the
 * optimiser's tensor path (no fused multiply-add), so results equal that path's bit for bit:
 *
 *   g = grad·scale;  m' = m·β1 + g·(1−β1);  v' = v·β2 + g²·(1−β2)
 *   u = (m'/corr1) / (√(v'/corr2) + ε) [+ param·wd];  param' = param − u·lr
 *
 * @module
 */

/** tfjs kernel name of the fused AdamW update. */
export const ADAMW = "RtdlabAdamW";

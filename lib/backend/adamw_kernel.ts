/**
 * The name and contract of rtdlab's fused AdamW kernel, which GPU backends register so the update of
 * all parameters is one launch instead of ~17 per parameter (lib/train/optimizer.ts uses it when the
 * active backend has it).
 *
 * Inputs, for parameters i = 0 … n−1: `param{i}`, `grad{i}`, `m{i}`, `v{i}` (float32, one shape per
 * i), and `scale` (float32 scalar: the clipping factor, computed on the device so the update needs
 * no host read). Attrs: `lr`, `beta1`, `beta2`, `epsilon`, `corr1`, `corr2` (bias corrections, 1
 * without) and `weightDecays` (one per parameter, 0 for those without decay). Outputs: the new
 * `[param0, m0, v0, param1, m1, v1, …]`. Each step is one float32 operation in the order of the
 * optimiser's tensor path (no fused multiply-add), so results equal that path's bit for bit:
 *
 *   g = grad·scale;  m' = m·β1 + g·(1−β1);  v' = v·β2 + g²·(1−β2)
 *   u = (m'/corr1) / (√(v'/corr2) + ε) [+ param·wd];  param' = param − u·lr
 *
 * @module
 */

/** tfjs kernel name of the fused AdamW update. */
export const ADAMW = "RtdlabAdamW";

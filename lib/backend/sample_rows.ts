/**
 * The name and contract of rtdlab's "draw one sample per row" kernel, which GPU backends register
 * so the generator's samples never travel to the host as logits (lib/train/sampling.ts uses it).
 *
 * Inputs: `logits` float32 [rows, vocab]; `uniforms` int32 [2·rows] holding the bytes of `rows` float64
 * values in [0, 1) (tfjs has no float64 tensors, and int32 words survive every copy bit for bit);
 * optional `banned` int32 [rows]. Attr
 * `temperature`. Output: int32 [rows], the same picks as sampleFromLogits with those uniforms.
 *
 * @module
 */

/** tfjs kernel name of the row sampler. */
export const SAMPLE_ROWS = "RtdlabSampleRows";

/**
 * tfjs kernel name of the discriminator's input built on the device, so the step needs no read of
 * the samples before D runs. Inputs (int32): `ids` [N] (the generator's input: the original ids
 * outside the selected positions), `selected` [M] (flat positions), `picks` [M] (the samples),
 * `targets` [M] (the original ids there). Outputs: the corrupted ids, int32 [N] (ids with picks[i]
 * at selected[i]), and the labels, float32 [N] (1 where picks[i] ≠ targets[i], else 0) — what
 * lib/train/sampling.ts `corrupt` computes on the host.
 */
export const CORRUPT = "RtdlabCorrupt";

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

/**
 * Reading and writing the safetensors format (https://huggingface.co/docs/safetensors), so rtdlab
 * checkpoints load in PyTorch (`safetensors.torch.load_file`) and back.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`, then the raw
 * little-endian tensor bytes. No npm package implements it for Deno, and it is ~100 lines.
 *
 * @module
 */

import { writeFileAtomic } from "./atomic.ts";

/** Data types rtdlab writes and reads. */
export type SafeDtype = "F32" | "I32" | "I64" | "F16" | "BF16" | "U8";

/** One tensor as host data. */
export interface HostTensor {
  dtype: "F32" | "I32";
  shape: number[];
  data: Float32Array | Int32Array;
}

const BYTES: Record<SafeDtype, number> = { F32: 4, I32: 4, I64: 8, F16: 2, BF16: 2, U8: 1 };

/** Serialises named tensors (and string metadata) into safetensors bytes. Names are sorted for stable files. */
export function encodeSafetensors(
  tensors: Map<string, HostTensor> | Record<string, HostTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const entries = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) {
      throw new Error(`safetensors: tensor ${name} has shape [${t.shape}] but ${t.data.length} values`);
    }
    const bytes = n * BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  // Pad the header with spaces to a multiple of 8 so the data starts aligned (as the reference writer does).
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = new TextEncoder().encode(JSON.stringify(header) + " ".repeat(pad));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const [, t] of entries) {
    const b = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    out.set(b, pos);
    pos += b.length;
  }
  return out;
}

/** Parses safetensors bytes. Throws a clear error naming `source` when the bytes are not a valid file. */
export function decodeSafetensors(
  bytes: Uint8Array,
  source = "safetensors data",
): { tensors: Map<string, HostTensor>; metadata: Record<string, string> } {
  const bad = (why: string) => new Error(`${source}: not a valid safetensors file (${why})`);
  if (bytes.length < 8) throw bad("shorter than its 8-byte header length");
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n <= 0 || 8 + n > bytes.length) throw bad(`header length ${n} exceeds the file size ${bytes.length}`);
  let header: Record<string, { dtype: SafeDtype; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw bad(`header is not JSON: ${(e as Error).message}`);
  }
  const dataStart = 8 + n;
  const tensors = new Map<string, HostTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = info as unknown as Record<string, string>;
      continue;
    }
    const [begin, end] = info.data_offsets ?? [];
    const count = (info.shape ?? []).reduce((a, b) => a * b, 1);
    if (!(info.dtype in BYTES)) throw bad(`tensor ${name} has unsupported dtype ${info.dtype}`);
    if (
      typeof begin !== "number" || typeof end !== "number" || end - begin !== count * BYTES[info.dtype] ||
      dataStart + end > bytes.length
    ) {
      throw bad(`tensor ${name} has inconsistent offsets or is truncated`);
    }
    const raw = bytes.slice(dataStart + begin, dataStart + end); // copy: aligned, owns its buffer
    let data: Float32Array | Int32Array;
    if (info.dtype === "F32") data = new Float32Array(raw.buffer);
    else if (info.dtype === "I32") data = new Int32Array(raw.buffer);
    else if (info.dtype === "I64") {
      const big = new BigInt64Array(raw.buffer);
      data = Int32Array.from(big, (x) => Number(x));
    } else if (info.dtype === "F16" || info.dtype === "BF16") {
      data = halfToFloat32(new Uint16Array(raw.buffer), info.dtype);
    } else data = Int32Array.from(raw);
    tensors.set(name, { dtype: data instanceof Float32Array ? "F32" : "I32", shape: info.shape, data });
  }
  return { tensors, metadata };
}

function halfToFloat32(h: Uint16Array, dtype: "F16" | "BF16"): Float32Array {
  const out = new Float32Array(h.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < h.length; i++) {
    if (dtype === "BF16") {
      u[i] = h[i] << 16;
      continue;
    }
    const s = (h[i] & 0x8000) << 16, e = (h[i] >> 10) & 0x1f, m = h[i] & 0x3ff;
    if (e === 0) out[i] = (s ? -1 : 1) * m * 2 ** -24;
    else if (e === 31) u[i] = s | 0x7f800000 | (m << 13);
    else u[i] = s | ((e + 112) << 23) | (m << 13);
  }
  return out;
}

/** Writes a safetensors file atomically. */
export async function saveSafetensors(
  path: string,
  tensors: Map<string, HostTensor> | Record<string, HostTensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** Reads a safetensors file; errors name the path. */
export async function loadSafetensors(
  path: string,
): Promise<{ tensors: Map<string, HostTensor>; metadata: Record<string, string> }> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  return decodeSafetensors(bytes, path);
}

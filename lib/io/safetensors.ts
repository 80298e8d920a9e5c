/**
 * Reading and writing the safetensors format (https://huggingface.co/docs/safetensors), so rtdlab
 * checkpoints load in PyTorch (`safetensors.torch.load_file`) and back.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`, then the raw
 * little-endian tensor bytes. No npm package implements it for Deno.
 *
 * The reader is as strict as the reference implementation (the Rust `safetensors` crate's
 * `SafeTensors::deserialize`): header ≤ 100 MB and a JSON object; every entry a known dtype, a shape of
 * non-negative integers, integer offsets with begin ≤ end; the offsets, taken in order, tile the byte
 * buffer from 0 to its end without holes or overlaps; each tensor's byte length = product(shape) × dtype
 * size; `__metadata__` maps strings to strings. A file that breaks a rule is refused with an error that
 * names the file, the tensor and the rule: a lenient reader would hand header bytes, or another
 * tensor's bytes, to a model as weights. Names live in a `Map` and metadata in a null-prototype object,
 * so a tensor called `__proto__` is an ordinary tensor.
 *
 * @module
 */

import { writeFileAtomic } from "./atomic.ts";

/** Data types rtdlab reads (integers become int32, floats float32) and the ones it writes (F32, I32). */
export type SafeDtype =
  | "BOOL"
  | "U8"
  | "I8"
  | "I16"
  | "U16"
  | "I32"
  | "U32"
  | "I64"
  | "U64"
  | "F16"
  | "BF16"
  | "F32"
  | "F64";

/** One tensor as host data. */
export interface HostTensor {
  /** Element type as safetensors names it. */
  dtype: "F32" | "I32";
  /** Dimensions, outermost first. */
  shape: number[];
  /** Elements in row-major order. */
  data: Float32Array | Int32Array;
}

/** The reference implementation's header limit (100 MB): a larger header is refused, not parsed. */
export const MAX_HEADER_BYTES = 100_000_000;

const BYTES: ReadonlyMap<SafeDtype, number> = new Map([
  ["BOOL", 1],
  ["U8", 1],
  ["I8", 1],
  ["I16", 2],
  ["U16", 2],
  ["F16", 2],
  ["BF16", 2],
  ["I32", 4],
  ["U32", 4],
  ["F32", 4],
  ["I64", 8],
  ["U64", 8],
  ["F64", 8],
]);

// Valid in the format (the reference knows them) but without a float32/int32 conversion here.
const UNREAD_DTYPES = new Set(["F8_E5M2", "F8_E4M3", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"]);

/** Serialises named tensors (and string metadata) into safetensors bytes. Names are sorted for stable files. */
export function encodeSafetensors(
  tensors: Map<string, HostTensor> | Record<string, HostTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const entries = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // Null prototype: a tensor named "__proto__" becomes an own key, not a prototype change.
  const header: Record<string, unknown> = Object.create(null);
  const meta = Object.entries(metadata);
  if (meta.length) {
    for (const [k, v] of meta) {
      if (typeof v !== "string") throw new Error(`safetensors: metadata "${k}" must be a string`);
    }
    header.__metadata__ = Object.fromEntries(meta);
  }
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === "__metadata__") throw new Error(`safetensors: "__metadata__" cannot name a tensor`);
    if (t.dtype !== "F32" && t.dtype !== "I32") {
      throw new Error(`safetensors: tensor ${name} has dtype ${t.dtype}; rtdlab writes F32 and I32`);
    }
    if (!t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new Error(`safetensors: tensor ${name} has shape [${t.shape}], not non-negative integers`);
    }
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) {
      throw new Error(`safetensors: tensor ${name} has shape [${t.shape}] but ${t.data.length} values`);
    }
    const bytes = n * BYTES.get(t.dtype)!;
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

/** One header entry after its fields were checked. */
interface Entry {
  name: string;
  dtype: SafeDtype;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parses safetensors bytes, refusing any file the reference implementation refuses. Errors read
 * `SOURCE: not a valid safetensors file: tensor "NAME": RULE` (or the header rule that failed).
 * Metadata comes back as a null-prototype object.
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  source = "safetensors data",
): { tensors: Map<string, HostTensor>; metadata: Record<string, string> } {
  const bad = (why: string) => new Error(`${source}: not a valid safetensors file: ${why}`);
  const badTensor = (name: string, why: string) => bad(`tensor ${JSON.stringify(name)}: ${why}`);
  if (bytes.length < 8) throw bad(`${bytes.length} bytes is shorter than the 8-byte header length`);
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    throw bad(`header length ${n64} exceeds the format's limit of ${MAX_HEADER_BYTES} bytes`);
  }
  const n = Number(n64);
  if (8 + n > bytes.length) {
    throw bad(`header length ${n} runs past the end of the file (${bytes.length} bytes)`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw bad(`header is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw bad(`header is not JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw bad(
      `header must be a JSON object, got ${Array.isArray(header) ? "an array" : JSON.stringify(header)}`,
    );
  }
  const fields = header as Record<string, unknown>;
  const metadata: Record<string, string> = Object.create(null);
  const entries: Entry[] = [];
  for (const name of Object.keys(fields)) {
    const info = fields[name];
    if (name === "__metadata__") {
      if (info === null) continue; // the reference's Option<HashMap>: null means none
      if (typeof info !== "object" || Array.isArray(info)) {
        throw bad(`__metadata__ must map strings to strings`);
      }
      for (const k of Object.keys(info)) {
        const v = (info as Record<string, unknown>)[k];
        if (typeof v !== "string") {
          throw bad(`__metadata__ must map strings to strings; "${k}" is ${JSON.stringify(v)}`);
        }
        metadata[k] = v;
      }
      continue;
    }
    entries.push(checkEntry(name, info, badTensor));
  }
  // The offsets, in order, must tile the data buffer: from 0, no holes, no overlaps, to its last byte.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  let at = 0;
  let prev: Entry | null = null;
  for (const e of entries) {
    if (e.begin > at) {
      throw badTensor(
        e.name,
        `data_offsets [${e.begin}, ${e.end}] leave a hole: bytes [${at}, ${e.begin}) belong to no tensor ` +
          `(offsets must be contiguous from 0)`,
      );
    }
    if (e.begin < at) {
      throw badTensor(
        e.name,
        `data_offsets [${e.begin}, ${e.end}] overlap tensor ${JSON.stringify(prev!.name)} ` +
          `(its bytes end at ${at}; offsets must be contiguous, without overlaps)`,
      );
    }
    const size = e.shape.reduce((a, b) => a * b, 1) * BYTES.get(e.dtype)!;
    if (e.end - e.begin !== size) {
      throw badTensor(
        e.name,
        `data_offsets [${e.begin}, ${e.end}] span ${e.end - e.begin} bytes, but shape [${e.shape}] of ` +
          `${e.dtype} needs ${size}`,
      );
    }
    if (e.end > dataLength) {
      throw badTensor(
        e.name,
        `data_offsets [${e.begin}, ${e.end}] run past the end of the file (${dataLength} data bytes): truncated`,
      );
    }
    at = e.end;
    prev = e;
  }
  if (at !== dataLength) {
    const after = prev ? `after tensor ${JSON.stringify(prev.name)}, ` : "";
    throw bad(
      `${after}bytes [${at}, ${dataLength}) belong to no tensor: the offsets must cover the data buffer exactly`,
    );
  }
  const tensors = new Map<string, HostTensor>();
  for (const e of entries) {
    const raw = bytes.slice(dataStart + e.begin, dataStart + e.end); // a copy: aligned, owns its buffer
    tensors.set(e.name, convert(e, raw.buffer, (why) => badTensor(e.name, why)));
  }
  return { tensors, metadata };
}

/** Checks one header entry's fields (dtype, shape, data_offsets) and returns them typed. */
function checkEntry(name: string, info: unknown, bad: (name: string, why: string) => Error): Entry {
  if (info === null || typeof info !== "object" || Array.isArray(info)) {
    throw bad(name, `entry must be an object with dtype, shape and data_offsets`);
  }
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (typeof dtype !== "string" || !BYTES.has(dtype as SafeDtype)) {
    if (typeof dtype === "string" && UNREAD_DTYPES.has(dtype)) {
      throw bad(
        name,
        `dtype ${dtype} is valid safetensors, but rtdlab reads only ${[...BYTES.keys()].join(", ")}`,
      );
    }
    throw bad(
      name,
      `unknown dtype ${JSON.stringify(dtype)} (known: ${[...BYTES.keys(), ...UNREAD_DTYPES].join(", ")})`,
    );
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(name, `shape ${JSON.stringify(shape)} must be a list of non-negative integers`);
  }
  if (
    shape.reduce((a: number, b: number) => a * b, BYTES.get(dtype as SafeDtype)!) > Number.MAX_SAFE_INTEGER
  ) {
    throw bad(name, `shape [${shape}] overflows`);
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
  ) {
    throw bad(name, `data_offsets ${JSON.stringify(offsets)} must be two non-negative integers [begin, end]`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw bad(name, `data_offsets [${begin}, ${end}] begin after they end`);
  return { name, dtype: dtype as SafeDtype, shape: shape as number[], begin, end };
}

/** Little-endian bytes of `e` as float32 (float dtypes) or int32 (integer dtypes, range-checked). */
function convert(e: Entry, buf: ArrayBuffer, bad: (why: string) => Error): HostTensor {
  const ints = (values: ArrayLike<number | bigint>): HostTensor => {
    const out = new Int32Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const v = Number(values[i]);
      if (v < -(2 ** 31) || v >= 2 ** 31) throw bad(`${e.dtype} value ${values[i]} does not fit int32`);
      out[i] = v;
    }
    return { dtype: "I32", shape: e.shape, data: out };
  };
  const floats = (data: Float32Array): HostTensor => ({ dtype: "F32", shape: e.shape, data });
  switch (e.dtype) {
    case "F32":
      return floats(new Float32Array(buf));
    case "F64":
      return floats(Float32Array.from(new Float64Array(buf)));
    case "F16":
    case "BF16":
      return floats(halfToFloat32(new Uint16Array(buf), e.dtype));
    case "I32":
      return { dtype: "I32", shape: e.shape, data: new Int32Array(buf) };
    case "I64":
      return ints(new BigInt64Array(buf));
    case "U64":
      return ints(new BigUint64Array(buf));
    case "U32":
      return ints(new Uint32Array(buf));
    case "I16":
      return ints(new Int16Array(buf));
    case "U16":
      return ints(new Uint16Array(buf));
    case "I8":
      return ints(new Int8Array(buf));
    case "U8":
    case "BOOL":
      return ints(new Uint8Array(buf));
  }
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

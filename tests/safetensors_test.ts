/**
 * The safetensors reader is as strict as the reference implementation: each malformed file is refused
 * with a message naming the file, the tensor and the rule; valid files (including awkward names and
 * every dtype rtdlab converts) round-trip.
 */

import assert from "node:assert/strict";
import { decodeSafetensors, encodeSafetensors, type HostTensor } from "../lib/io/safetensors.ts";

const SOURCE = "dir/model.safetensors";

/** A file from a header (an object, or raw header text/bytes) and `data` (bytes or a byte count). */
function file(header: unknown, data: Uint8Array | number = 0, headerLength?: bigint): Uint8Array {
  const json = header instanceof Uint8Array
    ? header
    : new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const body = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

const f32 = (shape: number[], begin: number, end: number) => ({
  dtype: "F32",
  shape,
  data_offsets: [begin, end],
});

/** [what is wrong, the file, the message after "SOURCE: not a valid safetensors file: "]. */
const MALFORMED: [string, Uint8Array, string | RegExp][] = [
  ["fewer than 8 bytes", new Uint8Array(5), "5 bytes is shorter than the 8-byte header length"],
  [
    "a header over 100 MB",
    file({}, 0, 100_000_001n),
    "header length 100000001 exceeds the format's limit of 100000000 bytes",
  ],
  [
    "a header longer than the file",
    file({}, 0, 64n),
    "header length 64 runs past the end of the file (10 bytes)",
  ],
  [
    "a header that is not UTF-8",
    file(new Uint8Array([0x7b, 0xff, 0x7d])),
    "header is not valid UTF-8",
  ],
  ["a header that is not JSON", file('{"w": '), /^header is not JSON \(.+\)$/],
  ["a header that is a JSON array", file([]), "header must be a JSON object, got an array"],
  ["a header that is a JSON number", file("42"), "header must be a JSON object, got 42"],
  [
    "an entry that is not an object",
    file({ w: 3 }),
    'tensor "w": entry must be an object with dtype, shape and data_offsets',
  ],
  [
    "an unknown dtype",
    file({ w: { dtype: "F33", shape: [1], data_offsets: [0, 4] } }, 4),
    'tensor "w": unknown dtype "F33" (known: BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64, ' +
    "F8_E5M2, F8_E4M3, F8_E8M0, F6_E2M3, F6_E3M2, F4, C64)",
  ],
  [
    "a dtype that is an Object.prototype key",
    file({ w: { dtype: "toString", shape: [1], data_offsets: [0, 4] } }, 4),
    'tensor "w": unknown dtype "toString" (known: BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, I64, U64, ' +
    "F64, F8_E5M2, F8_E4M3, F8_E8M0, F6_E2M3, F6_E3M2, F4, C64)",
  ],
  [
    "a valid dtype rtdlab does not convert",
    file({ w: { dtype: "F8_E4M3", shape: [4], data_offsets: [0, 4] } }, 4),
    'tensor "w": dtype F8_E4M3 is valid safetensors, but rtdlab reads only BOOL, U8, I8, I16, U16, F16, BF16, I32, ' +
    "U32, F32, I64, U64, F64",
  ],
  [
    "a negative dimension",
    file({ w: f32([-1], 0, 4) }, 4),
    'tensor "w": shape [-1] must be a list of non-negative integers',
  ],
  [
    "a fractional dimension",
    file({ w: f32([1.5], 0, 4) }, 4),
    'tensor "w": shape [1.5] must be a list of non-negative integers',
  ],
  [
    "a shape that is not a list",
    file({ w: f32(4 as unknown as number[], 0, 16) }, 16),
    'tensor "w": shape 4 must be a list of non-negative integers',
  ],
  [
    "no data_offsets",
    file({ w: { dtype: "F32", shape: [1] } }, 4),
    'tensor "w": data_offsets undefined must be two non-negative integers [begin, end]',
  ],
  [
    "negative offsets (would read header bytes as weights)",
    file({ w: f32([1], -4, 0) }, 4),
    'tensor "w": data_offsets [-4,0] must be two non-negative integers [begin, end]',
  ],
  [
    "fractional offsets",
    file({ w: f32([1], 0.5, 4.5) }, 4),
    'tensor "w": data_offsets [0.5,4.5] must be two non-negative integers [begin, end]',
  ],
  [
    "three offsets",
    file({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4, 8] } }, 4),
    'tensor "w": data_offsets [0,4,8] must be two non-negative integers [begin, end]',
  ],
  [
    "offsets that begin after they end",
    file({ w: f32([0], 4, 0) }, 4),
    'tensor "w": data_offsets [4, 0] begin after they end',
  ],
  [
    "two tensors sharing one byte range",
    file({ a: f32([1], 0, 4), b: f32([1], 0, 4) }, 4),
    'tensor "b": data_offsets [0, 4] overlap tensor "a" (its bytes end at 4; offsets must be contiguous, without overlaps)',
  ],
  [
    "overlapping ranges",
    file({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, 12),
    'tensor "b": data_offsets [4, 12] overlap tensor "a" (its bytes end at 8; offsets must be contiguous, without overlaps)',
  ],
  [
    "a hole before the first tensor",
    file({ w: f32([1], 1, 5) }, 5),
    'tensor "w": data_offsets [1, 5] leave a hole: bytes [0, 1) belong to no tensor (offsets must be contiguous from 0)',
  ],
  [
    "a hole between two tensors",
    file({ a: f32([1], 0, 4), b: f32([1], 8, 12) }, 12),
    'tensor "b": data_offsets [8, 12] leave a hole: bytes [4, 8) belong to no tensor (offsets must be contiguous from 0)',
  ],
  [
    "a name given twice (JSON keeps the last entry, leaving the first one's bytes a hole)",
    file(
      '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}',
      8,
    ),
    'tensor "a": data_offsets [4, 8] leave a hole: bytes [0, 4) belong to no tensor (offsets must be contiguous from 0)',
  ],
  [
    "a byte length that disagrees with the shape",
    file({ w: f32([2], 0, 4) }, 4),
    'tensor "w": data_offsets [0, 4] span 4 bytes, but shape [2] of F32 needs 8',
  ],
  [
    "a truncated file",
    file({ w: f32([2], 0, 8) }, 4),
    'tensor "w": data_offsets [0, 8] run past the end of the file (4 data bytes): truncated',
  ],
  [
    "bytes after the last tensor",
    file({ w: f32([1], 0, 4) }, 8),
    'after tensor "w", bytes [4, 8) belong to no tensor: the offsets must cover the data buffer exactly',
  ],
  [
    "data but no tensors",
    file({}, 4),
    "bytes [0, 4) belong to no tensor: the offsets must cover the data buffer exactly",
  ],
  [
    "metadata with a number value",
    file({ __metadata__: { step: 3 } }),
    '__metadata__ must map strings to strings; "step" is 3',
  ],
  ["metadata that is a list", file({ __metadata__: ["a"] }), "__metadata__ must map strings to strings"],
  [
    "an I64 value outside int32",
    file(
      { ids: { dtype: "I64", shape: [1], data_offsets: [0, 8] } },
      new Uint8Array(new BigInt64Array([2n ** 40n]).buffer),
    ),
    'tensor "ids": I64 value 1099511627776 does not fit int32',
  ],
];

Deno.test("malformed safetensors files are refused, each naming the file, the tensor and the rule", () => {
  for (const [what, bytes, message] of MALFORMED) {
    assert.throws(
      () => decodeSafetensors(bytes, SOURCE),
      (e: Error) => {
        const prefix = `${SOURCE}: not a valid safetensors file: `;
        assert.ok(e.message.startsWith(prefix), `${what}: ${e.message}`);
        const rest = e.message.slice(prefix.length);
        if (typeof message === "string") assert.equal(rest, message, what);
        else assert.match(rest, message, what); // the JSON parser's own words differ between engines
        return true;
      },
      what,
    );
  }
});

Deno.test("tensors named like Object.prototype keys round-trip; metadata has no prototype", () => {
  const t = (v: number[]): HostTensor => ({ dtype: "F32", shape: [v.length], data: new Float32Array(v) });
  const names = ["__proto__", "constructor", "hasOwnProperty", "toString", "w"];
  const tensors = new Map(names.map((n, i) => [n, t([i, i + 0.5])]));
  tensors.set("ids", { dtype: "I32", shape: [2, 1], data: new Int32Array([-7, 1 << 30]) });
  tensors.set("empty", { dtype: "F32", shape: [0, 3], data: new Float32Array(0) });
  const bytes = encodeSafetensors(tensors, { __proto__: "x", format: "pt" } as Record<string, string>);
  const back = decodeSafetensors(bytes, SOURCE);
  assert.deepEqual([...back.tensors.keys()].sort(), [...tensors.keys()].sort());
  for (const [n, want] of tensors) assert.deepEqual(back.tensors.get(n), want, n);
  assert.equal(Object.getPrototypeOf(back.metadata), null);
  assert.equal(back.metadata.format, "pt");
  assert.equal(Object.getPrototypeOf({}), Object.prototype, "no prototype was touched");
  // The data starts 8-byte aligned, as the reference writer pads it.
  assert.equal(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8, 0);
});

Deno.test("every dtype rtdlab reads converts to float32 or int32 values", () => {
  const cases: [string, ArrayBufferView, HostTensor["dtype"], number[]][] = [
    ["F64", new Float64Array([1.5, -2]), "F32", [1.5, -2]],
    ["F16", new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7c00]), "F32", [1, -2, 2 ** -24, Infinity]],
    ["BF16", new Uint16Array([0x3f80, 0xc040]), "F32", [1, -3]],
    ["I64", new BigInt64Array([-5n, 2n ** 31n - 1n]), "I32", [-5, 2 ** 31 - 1]],
    ["U64", new BigUint64Array([7n]), "I32", [7]],
    ["U32", new Uint32Array([9]), "I32", [9]],
    ["I16", new Int16Array([-300]), "I32", [-300]],
    ["U16", new Uint16Array([65535]), "I32", [65535]],
    ["I8", new Int8Array([-1]), "I32", [-1]],
    ["U8", new Uint8Array([255]), "I32", [255]],
    ["BOOL", new Uint8Array([0, 1]), "I32", [0, 1]],
  ];
  for (const [dtype, view, kind, values] of cases) {
    const data = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    const header = { x: { dtype, shape: [values.length], data_offsets: [0, data.length] } };
    const t = decodeSafetensors(file(header, data), SOURCE).tensors.get("x")!;
    assert.equal(t.dtype, kind, dtype);
    assert.deepEqual([...t.data], values, dtype);
  }
});

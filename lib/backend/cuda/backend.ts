/**
 * The "cuda" TensorFlow.js backend: tensors live in device memory (through the caching allocator),
 * kernels from kernels.cu (as PTX, loaded with cuModuleLoadDataEx) and cuBLAS's strided-batched
 * sgemm run asynchronously on one stream, and the host reads data only when tfjs asks for it.
 *
 * **Status:** ran on an NVIDIA H200 on 2026-12-04 (GPU_RUNS.md): every kernel agrees with the cpu
 * backend and a training step's gradients agree to 4e-7. Without a GPU, its host side (shapes,
 * strides, parameter packing, dtypes, reference counts) is tested against the cpu backend through
 * emulator.ts, which runs the kernels' logic in TypeScript.
 *
 * Storage: float32, int32 and bool tensors all take 4 bytes per element on the device (bool as int32
 * 0/1, converted to Uint8Array on read); string and complex64 tensors are not supported. The kernel
 * set covers what one rtdlab training step runs (lib/backend/cuda/KERNELS.md, recorded on cpu);
 * int32 reductions and matmuls go through float32 (exact below 2^24).
 *
 * ```ts
 * import { openCuda } from "./driver.ts";
 * import { registerCudaBackend } from "./backend.ts";
 * registerCudaBackend(openCuda());
 * await tf.setBackend("cuda");
 * ```
 *
 * Environment: `RTDLAB_CUDA_PTX_DIR`: folder holding kernels.sm_XX.ptx (default: this module's
 * folder; set it when running a bundle that moved this file).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type Block, CachingAllocator } from "./allocator.ts";
import { type CudaRuntime, type DevicePtr, type Handle, ParamBlock } from "./driver.ts";
import { DROPOUT_MASK, dropoutParams } from "../dropout_mask.ts";
import { CORRUPT, SAMPLE_ROWS } from "../sample_rows.ts";
import { ADAMW } from "../adamw_kernel.ts";
import { FUSED } from "../fused_kernels.ts";

type DataId = object;
type TensorInfo = tf.TensorInfo;
type DataType = tf.DataType;

/** The PTX entry points the backend launches (each must be an `.entry` in every kernels.sm_XX.ptx). */
export const PTX_ENTRIES = [
  "unary_f32",
  "unary_i32",
  "cast32",
  "binary_f32",
  "binary_i32",
  "compare32",
  "select32",
  "strided_copy32",
  "gather32",
  "segment_sum_prepare_f32",
  "segment_sum_fixed_f32",
  "segment_sum_finish_f32",
  "unsorted_segment_sum_i32",
  "one_hot32",
  "reduce_rows_f32",
  "reduce_partial_f32",
  "reduce_final_f32",
  "softmax_rows_f32",
  "softmax_xent_f32",
  "softmax_xent_grad_f32",
  "adamw_f32",
  "dropout_mask_f32",
  "sample_rows_f32",
  "gelu_f32",
  "gelu_grad_f32",
  "layer_norm_f32",
  "layer_norm_grad_f32",
  "sum_squares_partial_f32",
  "dropout_f32",
  "scaled_masked_softmax_f32",
  "scaled_masked_softmax_grad_f32",
  "bias_split_heads_f32",
  "qkv_heads_f32",
  "concat3_f32",
  "disentangled_softmax_f32",
  "disentangled_softmax_grad_f32",
  "relative_bucket_sum_f32",
  "corrupt_i32",
] as const;
type Entry = typeof PTX_ENTRIES[number];

/** Op codes of unary_f32 (kernels.cu, unary_op). */
export const UNARY_OPS: Record<string, number> = {
  Neg: 0,
  Abs: 1,
  Exp: 2,
  Log: 3,
  Log1p: 4,
  Sqrt: 5,
  Rsqrt: 6,
  Square: 7,
  Relu: 8,
  Step: 9,
  Erf: 10,
  Sigmoid: 11,
  Tanh: 12,
  Reciprocal: 13,
  Expm1: 14,
  Sign: 15,
  Floor: 16,
  Ceil: 17,
  Round: 18,
  LeakyRelu: 19,
  Relu6: 20,
  Sin: 21,
  Cos: 22,
  Elu: 23,
  Softplus: 24,
};
/** Op codes of unary_i32, for the unary kernels that keep int32. */
const UNARY_INT_OPS: Record<string, number> = { Neg: 0, Abs: 1, Square: 2, Sign: 3 };

/** Op codes of binary_f32 / binary_i32 (kernels.cu, binary_op); int32 supports those in BINARY_INT. */
export const BINARY_OPS: Record<string, number> = {
  Add: 0,
  Sub: 1,
  Multiply: 2,
  RealDiv: 3,
  Maximum: 4,
  Minimum: 5,
  Pow: 6,
  SquaredDifference: 7,
  FloorDiv: 8,
  Mod: 9,
  Prelu: 10,
};
const BINARY_INT = new Set(["Add", "Sub", "Multiply", "Maximum", "Minimum", "FloorDiv", "Mod"]);

/** Op codes of compare32 (output bool). */
export const COMPARE_OPS: Record<string, number> = {
  Equal: 0,
  NotEqual: 1,
  Less: 2,
  LessEqual: 3,
  Greater: 4,
  GreaterEqual: 5,
  LogicalAnd: 6,
  LogicalOr: 7,
};

/** Max rank of the strided index math (kernels.cu MAXR), after collapsing contiguous dims. */
const MAXR = 8;
const BLOCK = 256;
const REDUCE_SUM = 0, REDUCE_MAX = 1, REDUCE_MIN = 2, REDUCE_PROD = 3;

interface TensorData {
  block: Block;
  /** Bytes from the block's start: nonzero for the tensors of {@link CudaBackend.makeOutputs}. */
  offset: number;
  /** Tensors sharing the block (makeOutputs): the block is freed when the last of them is. */
  shared: { tensors: number } | null;
  dtype: DataType;
  size: number;
  refCount: number;
}

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function contiguousStrides(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/** Strides of a tensor of `shape` read broadcast to `out` (right-aligned; 0 where broadcast). */
export function broadcastStrides(shape: number[], out: number[]): number[] {
  const own = contiguousStrides(shape);
  const r = out.length - shape.length;
  return out.map((n, d) => {
    if (d < r) return 0;
    return shape[d - r] === 1 && n !== 1 ? 0 : own[d - r];
  });
}

/**
 * The iteration space of a strided kernel: drops size-1 dims and merges neighbours that every
 * operand walks contiguously, then packs `struct Idx { int rank; int dim[8]; int s[3][8]; }`.
 */
export function packIdx(dims: number[], strides: number[][]): Int32Array {
  const keep: number[] = [];
  for (let d = 0; d < dims.length; d++) if (dims[d] !== 1) keep.push(d);
  let cd = keep.map((d) => dims[d]);
  let cs = strides.map((s) => keep.map((d) => s[d]));
  for (let d = cd.length - 2; d >= 0; d--) {
    if (cs.every((s) => s[d] === s[d + 1] * cd[d + 1])) {
      cd = [...cd.slice(0, d), cd[d] * cd[d + 1], ...cd.slice(d + 2)];
      cs = cs.map((s) => [...s.slice(0, d), s[d + 1], ...s.slice(d + 2)]);
    }
  }
  if (cd.length === 0) {
    cd = [1];
    cs = strides.map(() => [0]);
  }
  if (cd.length > MAXR) throw new Error(`cuda backend: rank ${cd.length} iteration space (max ${MAXR})`);
  const out = new Int32Array(1 + MAXR * 4);
  out[0] = cd.length;
  cd.forEach((n, d) => out[1 + d] = n);
  cs.forEach((s, k) => s.forEach((v, d) => out[1 + MAXR * (k + 1) + d] = v));
  return out;
}

/** The bit pattern of `value` stored as `dtype` (float32 bits, or int32 / bool two's complement). */
export function wordOf(value: number, dtype: DataType): number {
  if (dtype === "float32") return new Uint32Array(new Float32Array([value]).buffer)[0];
  return (dtype === "bool" ? (value ? 1 : 0) : value | 0) >>> 0;
}

/** Picks the highest kernels.sm_XX.ptx at or below compute capability `cc` among `available` (XX values). */
export function choosePtx(available: number[], cc: [number, number]): number | null {
  const want = cc[0] * 10 + cc[1];
  const ok = available.filter((a) => a <= want).sort((a, b) => b - a);
  return ok[0] ?? null;
}

/** kernels.sm_XX.ptx files in `dir`, as their XX numbers. */
export function ptxArchs(dir: string): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const m = /^kernels\.sm_(\d+)\.ptx$/.exec(e.name);
    if (m) out.push(Number(m[1]));
  }
  return out.sort((a, b) => a - b);
}

/** Folder of the PTX files: RTDLAB_CUDA_PTX_DIR or this module's folder. */
export function ptxDir(): string {
  let forced: string | undefined;
  try {
    forced = Deno.env.get("RTDLAB_CUDA_PTX_DIR");
  } catch { /* no --allow-env */ }
  if (forced) return forced;
  return decodeURIComponent(new URL(".", import.meta.url).pathname);
}

/** The backend (see the module doc). */
export class CudaBackend extends tf.KernelBackend {
  readonly rt: CudaRuntime;
  readonly allocator: CachingAllocator;
  readonly ptxFile: string;
  readonly #data: tf.DataStorage<TensorData>;
  readonly #fns: Map<string, Handle>;
  readonly #params = new ParamBlock();
  readonly #maxBlocks: number;
  #ones: { block: Block; size: number } | null = null;
  #disposed = false;

  constructor(rt: CudaRuntime) {
    super();
    this.rt = rt;
    this.allocator = new CachingAllocator({
      alloc: (n) => rt.memAlloc(n),
      free: (p) => rt.memFree(p),
      synchronize: () => rt.synchronize(),
    });
    const dir = ptxDir();
    const archs = ptxArchs(dir);
    const arch = choosePtx(archs, rt.info.computeCapability);
    if (arch == null) {
      const cc = rt.info.computeCapability.join(".");
      throw new Error(
        archs.length === 0
          ? `cuda backend: no kernels.sm_XX.ptx in ${dir} (run lib/backend/cuda/build_ptx.sh, or set RTDLAB_CUDA_PTX_DIR)`
          : `cuda backend: ${rt.info.name} (compute capability ${cc}) is older than the oldest PTX (sm_${
            archs[0]
          })`,
      );
    }
    this.ptxFile = `${dir}/kernels.sm_${arch}.ptx`;
    this.#fns = rt.loadModule(Deno.readTextFileSync(this.ptxFile), PTX_ENTRIES);
    this.#maxBlocks = Math.max(1, rt.info.multiprocessors) * 32;
    this.#data = new tf.DataStorage(this, tf.engine());
  }

  // ---- storage -------------------------------------------------------------------------------

  override write(values: tf.BackendValues, shape: number[], dtype: DataType): DataId {
    const dataId = {};
    this.#store(dataId, values, shape, dtype, 1);
    return dataId;
  }

  override move(
    dataId: DataId,
    values: tf.BackendValues,
    shape: number[],
    dtype: DataType,
    refCount: number,
  ) {
    this.#store(dataId, values, shape, dtype, refCount);
  }

  #store(dataId: DataId, values: tf.BackendValues, shape: number[], dtype: DataType, refCount: number) {
    if (dtype === "string" || dtype === "complex64") {
      throw new Error(`cuda backend: ${dtype} tensors are not supported`);
    }
    const size = sizeOf(shape);
    const block = this.#allocate(size);
    if (values != null && size > 0) this.rt.copyHtoD(block.ptr, this.#toDevice(values, dtype, size));
    this.#data.set(dataId, { block, offset: 0, shared: null, dtype, size, refCount });
  }

  #toDevice(values: tf.BackendValues, dtype: DataType, size: number): Float32Array | Int32Array {
    if (dtype === "float32") {
      return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
    }
    if (values instanceof Int32Array) return values;
    const out = new Int32Array(size);
    const v = values as ArrayLike<number>;
    for (let i = 0; i < size; i++) out[i] = dtype === "bool" ? (v[i] ? 1 : 0) : v[i];
    return out;
  }

  #allocate(size: number): Block {
    if (size >= 2 ** 31) throw new Error(`cuda backend: tensors of 2^31 elements or more are not supported`);
    return this.allocator.alloc(size * 4);
  }

  #fromDevice(raw: Int32Array | Float32Array, dtype: DataType): tf.BackendValues {
    if (dtype !== "bool") return raw;
    return Uint8Array.from(raw as Int32Array, (v) => (v ? 1 : 0));
  }

  #hostBuffer(d: TensorData): Float32Array | Int32Array {
    return d.dtype === "float32" ? new Float32Array(d.size) : new Int32Array(d.size);
  }

  override readSync(dataId: DataId): tf.BackendValues {
    const d = this.#data.get(dataId);
    const host = this.#hostBuffer(d);
    this.rt.copyDtoHAsync(host, d.block.ptr + BigInt(d.offset));
    this.rt.synchronize();
    return this.#fromDevice(host, d.dtype);
  }

  override async read(dataId: DataId): Promise<tf.BackendValues> {
    const d = this.#data.get(dataId);
    // Let the queued kernels finish without blocking the event loop, then copy (the copy to pageable
    // memory is synchronous, but by then the stream is idle).
    await this.rt.wait();
    if (!this.#data.has(dataId)) throw new Error("cuda backend: tensor disposed while being read");
    const host = this.#hostBuffer(d);
    this.rt.copyDtoHAsync(host, d.block.ptr + BigInt(d.offset));
    this.rt.synchronize();
    return this.#fromDevice(host, d.dtype);
  }

  override disposeData(dataId: DataId, force = false): boolean {
    if (!this.#data.has(dataId)) return true;
    const d = this.#data.get(dataId);
    d.refCount--;
    if (!force && d.refCount > 0) return false;
    if (d.shared == null || --d.shared.tensors === 0) this.allocator.free(d.block);
    this.#data.delete(dataId);
    return true;
  }

  override refCount(dataId: DataId): number {
    return this.#data.has(dataId) ? this.#data.get(dataId).refCount : 0;
  }

  override incRef(dataId: DataId): void {
    this.#data.get(dataId).refCount++;
  }

  override numDataIds(): number {
    return this.#data.numDataIds();
  }

  override memory(): { unreliable: boolean; reasons?: string[] } & Record<string, unknown> {
    const s = this.allocator.stats();
    return {
      unreliable: false,
      numBytesInGPU: s.bytesInUse,
      numBytesInGPUAllocated: s.bytesReserved,
      numBytesInGPUFree: s.bytesCached,
      allocator: s,
    };
  }

  override timerAvailable(): boolean {
    return true;
  }

  override async time(f: () => void): Promise<tf.BackendTimingInfo> {
    const kernelMs = await this.rt.time(f);
    return { kernelMs };
  }

  override floatPrecision(): 16 | 32 {
    return 32;
  }

  override dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    // Each step runs even if one before it throws (after a kernel's fault every call fails), and the
    // first error is the one reported.
    const errors: unknown[] = [];
    for (
      const release of [() => this.rt.synchronize(), () => this.allocator.releaseAll(), () => this.rt.close()]
    ) {
      try {
        release();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length > 0) throw errors[0];
  }

  // ---- helpers for kernels -------------------------------------------------------------------

  /** A new output tensor of `shape` and `dtype` (contents undefined until a kernel writes it). */
  makeOutput(shape: number[], dtype: DataType): TensorInfo {
    const dataId = {};
    const size = sizeOf(shape);
    this.#data.set(dataId, {
      block: this.#allocate(size),
      offset: 0,
      shared: null,
      dtype,
      size,
      refCount: 1,
    });
    return { dataId, shape, dtype };
  }

  /**
   * New float32 output tensors of `shapes`, back to back in one allocation, so that one gemm can write
   * them all (e.g. the three projection gradients of a fused query/key/value layer). Each is an
   * ordinary tensor to tfjs; the allocation is freed with the last of them.
   */
  makeOutputs(shapes: number[][]): TensorInfo[] {
    const sizes = shapes.map(sizeOf);
    const block = this.#allocate(sizes.reduce((a, b) => a + b, 0));
    const shared = { tensors: shapes.length };
    let offset = 0;
    return shapes.map((shape, i) => {
      const dataId = {};
      this.#data.set(dataId, { block, offset, shared, dtype: "float32", size: sizes[i], refCount: 1 });
      offset += sizes[i] * 4;
      return { dataId, shape, dtype: "float32" };
    });
  }

  /** Device address of a tensor's data. */
  ptr(t: TensorInfo): DevicePtr {
    const d = this.#data.get(t.dataId);
    return d.block.ptr + BigInt(d.offset);
  }

  /** Same data, new shape (Reshape, Identity): no copy, one more reference. */
  alias(t: TensorInfo, shape: number[] = t.shape): TensorInfo {
    this.incRef(t.dataId);
    return { dataId: t.dataId, shape, dtype: t.dtype };
  }

  /** Disposes an intermediate result a kernel made. */
  release(t: TensorInfo): void {
    this.disposeData(t.dataId);
  }

  /** Fills a tensor with one 32-bit word. */
  fill(t: TensorInfo, word: number): void {
    this.rt.memsetD32(this.ptr(t), word, sizeOf(t.shape));
  }

  /** Packs parameters and launches `entry` over `n` elements (grid-stride, 256 threads). */
  launch(entry: Entry, n: number, pack: (p: ParamBlock) => void, blocks?: number): void {
    if (n === 0) return;
    const p = this.#params.reset(entry);
    pack(p);
    const grid = blocks ?? Math.min(Math.ceil(n / BLOCK), this.#maxBlocks);
    this.rt.launch(this.#fns.get(entry)!, grid, BLOCK, p);
  }

  /** Blocks for a one-warp-per-row kernel over `rows` rows. */
  warpRowBlocks(rows: number): number {
    return Math.min(Math.ceil(rows / (BLOCK / 32)), this.#maxBlocks);
  }

  /** y = strided copy of x over `dims` (see kernels.cu strided_copy32). */
  stridedCopy(
    x: TensorInfo,
    y: TensorInfo,
    dims: number[],
    inStrides: number[],
    outStrides: number[],
    inOffset = 0,
    outOffset = 0,
  ): void {
    const n = sizeOf(dims);
    const idx = packIdx(dims, [inStrides, outStrides]);
    this.launch(
      "strided_copy32",
      n,
      (p) => p.i32(n).ints(idx).ptr(this.ptr(x)).i32(inOffset).ptr(this.ptr(y)).i32(outOffset),
    );
  }

  /** Device address of ≥ n float32 ones (one cached buffer, grown on demand): the row of column-sum gemms. */
  ones(n: number): DevicePtr {
    if (this.#ones == null || this.#ones.size < n) {
      if (this.#ones != null) this.allocator.free(this.#ones.block);
      const size = Math.max(n, 1024);
      const block = this.#allocate(size);
      this.rt.memsetD32(block.ptr, wordOf(1, "float32"), size);
      this.#ones = { block, size };
    }
    return this.#ones.block.ptr;
  }

  /** out[c] = Σ_r x[r, c] for x [rows, cols] (one gemm with a row of ones; `cols` words from out's address). */
  columnSums(x: TensorInfo, rows: number, cols: number, out: TensorInfo): void {
    if (rows === 0) return this.rt.memsetD32(this.ptr(out), 0, cols);
    this.rt.sgemmBatched(false, false, 1, cols, rows, this.ones(rows), 0, this.ptr(x), 0, this.ptr(out), 1);
  }

  /** A device copy of a table of 64-bit words (addresses and ranges for the multi-tensor kernels). */
  upload(words: BigInt64Array): TensorInfo {
    const t = this.makeOutput([words.length * 2], "int32");
    this.rt.copyHtoD(this.ptr(t), words);
    return t;
  }

  /** A contiguous copy of x with another dtype label (bool ↔ int32). */
  copyAs(x: TensorInfo, dtype: DataType): TensorInfo {
    const y = this.makeOutput(x.shape, dtype);
    this.rt.copyDtoD(this.ptr(y), this.ptr(x), sizeOf(x.shape) * 4);
    return y;
  }
}

// ---- kernels --------------------------------------------------------------------------------------

/** Kernel inputs by name (tfjs passes every declared input). */
type Inputs = Record<string, TensorInfo>;
type Attrs = tf.NamedAttrMap;
type KernelImpl = (inputs: Inputs, b: CudaBackend, attrs: Attrs) => TensorInfo | TensorInfo[];

function cast(b: CudaBackend, x: TensorInfo, dtype: DataType): TensorInfo {
  if (x.dtype === dtype) return b.alias(x);
  if (x.dtype === "string" || dtype === "string" || dtype === "complex64") {
    throw new Error(`cuda backend: Cast ${x.dtype} → ${dtype} is not supported`);
  }
  if (dtype === "int32" && x.dtype === "bool") return b.copyAs(x, "int32");
  const mode = x.dtype === "float32" ? (dtype === "int32" ? 0 : 2) : (dtype === "float32" ? 1 : 3);
  const y = b.makeOutput(x.shape, dtype);
  const n = sizeOf(x.shape);
  b.launch("cast32", n, (p) => p.i32(mode).i32(n).ptr(b.ptr(x)).ptr(b.ptr(y)));
  return y;
}

function unary(name: string): KernelImpl {
  return ({ x }, b, attrs) => {
    const n = sizeOf(x.shape);
    if (x.dtype !== "float32" && name in UNARY_INT_OPS) {
      const y = b.makeOutput(x.shape, "int32");
      b.launch("unary_i32", n, (p) => p.i32(UNARY_INT_OPS[name]).i32(n).ptr(b.ptr(x)).ptr(b.ptr(y)));
      return y;
    }
    const xf = cast(b, x, "float32");
    const y = b.makeOutput(x.shape, "float32");
    const alpha = Number(attrs.alpha ?? (name === "Step" ? 0 : 0.2));
    b.launch("unary_f32", n, (p) => p.i32(UNARY_OPS[name]).i32(n).ptr(b.ptr(xf)).ptr(b.ptr(y)).f32(alpha));
    b.release(xf);
    return y;
  };
}

function broadcastOperands(shapes: number[][]): { out: number[]; strides: number[][] } {
  let out = shapes[0];
  for (const s of shapes.slice(1)) out = tf.backend_util.assertAndGetBroadcastShape(out, s);
  return { out, strides: shapes.map((s) => broadcastStrides(s, out)) };
}

function binary(name: string): KernelImpl {
  return ({ a, b: bIn }, be) => {
    const { out, strides } = broadcastOperands([a.shape, bIn.shape]);
    const n = sizeOf(out);
    const intOp = a.dtype !== "float32" && bIn.dtype !== "float32" && BINARY_INT.has(name);
    const dtype: DataType = intOp ? "int32" : "float32";
    const x = cast(be, a, dtype), z = cast(be, bIn, dtype);
    const y = be.makeOutput(out, dtype);
    const idx = packIdx(out, strides);
    be.launch(
      intOp ? "binary_i32" : "binary_f32",
      n,
      (p) => p.i32(BINARY_OPS[name]).i32(n).ints(idx).ptr(be.ptr(x)).ptr(be.ptr(z)).ptr(be.ptr(y)),
    );
    be.release(x);
    be.release(z);
    if (name !== "FloorDiv" || intOp) return y;
    // tfjs's FloorDiv returns int32 whatever its inputs.
    const asInt = cast(be, y, "int32");
    be.release(y);
    return asInt;
  };
}

/** AddN: a chain of Adds (the optimiser sums gradient norms four at a time). */
function addN(inputs: Inputs, b: CudaBackend): TensorInfo {
  const xs = Object.values(inputs);
  const add = binary("Add");
  let acc = b.alias(xs[0]);
  for (const x of xs.slice(1)) {
    const next = add({ a: acc, b: x }, b, {}) as TensorInfo;
    b.release(acc);
    acc = next;
  }
  return acc;
}

function compare(name: string): KernelImpl {
  return ({ a, b: bIn }, be) => {
    const { out, strides } = broadcastOperands([a.shape, bIn.shape]);
    const n = sizeOf(out);
    const isInt = a.dtype !== "float32" && bIn.dtype !== "float32";
    const dtype: DataType = isInt ? "int32" : "float32";
    const x = cast(be, a, dtype), z = cast(be, bIn, dtype);
    const y = be.makeOutput(out, "bool");
    const idx = packIdx(out, strides);
    be.launch(
      "compare32",
      n,
      (p) =>
        p.i32(COMPARE_OPS[name]).i32(isInt ? 1 : 0).i32(n).ints(idx).ptr(be.ptr(x)).ptr(be.ptr(z)).ptr(
          be.ptr(y),
        ),
    );
    be.release(x);
    be.release(z);
    return y;
  };
}

function logicalNot({ x }: Inputs, b: CudaBackend): TensorInfo {
  const zero = b.makeOutput([], "bool");
  b.fill(zero, 0);
  const y = compare("Equal")({ a: x, b: zero }, b, {}) as TensorInfo;
  b.release(zero);
  return y;
}

function select({ condition, t, e }: Inputs, b: CudaBackend): TensorInfo {
  const out = t.shape;
  let condStrides: number[];
  if (condition.shape.length === 1 && out.length > 1) {
    condStrides = out.map((_, d) => (d === 0 ? 1 : 0)); // one condition per row
  } else condStrides = broadcastStrides(condition.shape, out);
  const dtype = tf.upcastType(t.dtype, e.dtype);
  const tc = cast(b, t, dtype), ec = cast(b, e, dtype);
  const y = b.makeOutput(out, dtype);
  const n = sizeOf(out);
  const idx = packIdx(out, [condStrides, broadcastStrides(t.shape, out), broadcastStrides(e.shape, out)]);
  b.launch(
    "select32",
    n,
    (p) => p.i32(n).ints(idx).ptr(b.ptr(condition)).ptr(b.ptr(tc)).ptr(b.ptr(ec)).ptr(b.ptr(y)),
  );
  b.release(tc);
  b.release(ec);
  return y;
}

function transposeImpl(b: CudaBackend, x: TensorInfo, perm: number[]): TensorInfo {
  const own = contiguousStrides(x.shape);
  const outShape = perm.map((p) => x.shape[p]);
  // A permutation that keeps the order of the dims longer than 1 keeps the memory order: a reshape, no
  // copy (tfjs's gather gradient transposes by the identity; one attention head moves a dim of 1).
  const moved = perm.filter((p) => x.shape[p] !== 1);
  if (moved.every((p, i) => i === 0 || moved[i - 1] < p)) return b.alias(x, outShape);
  const y = b.makeOutput(outShape, x.dtype);
  b.stridedCopy(x, y, outShape, perm.map((p) => own[p]), contiguousStrides(outShape));
  return y;
}

function reduce(op: number, mean = false): KernelImpl {
  return ({ x }, b, attrs) => {
    const rank = x.shape.length;
    // Max names its axes `reductionIndices`; Sum, Mean, Min and Prod name them `axis`.
    const origAxes = tf.util.parseAxisParam(
      (attrs.axis ?? attrs.reductionIndices) as number | number[],
      x.shape,
    );
    let axes = origAxes;
    const perm = tf.backend_util.getAxesPermutation(axes, rank);
    // Through float32 (int32 sums are exact below 2^24).
    let src = cast(b, x, "float32");
    if (perm != null) {
      const t = transposeImpl(b, src, perm);
      b.release(src);
      src = t;
      axes = tf.backend_util.getInnerMostAxes(axes.length, rank);
    }
    const [outShape, reduceShape] = tf.backend_util.computeOutAndReduceShapes(src.shape, axes);
    const rows = sizeOf(outShape), cols = sizeOf(reduceShape);
    const shape = attrs.keepDims ? tf.backend_util.expandShapeToKeepDim(outShape, origAxes) : outShape;
    const outDtype: DataType = mean
      ? "float32"
      : (x.dtype === "bool" && op === REDUCE_SUM ? "int32" : x.dtype);
    const y = b.makeOutput(shape, "float32");
    const scale = mean ? 1 / cols : 1;
    if (cols === 0) {
      b.fill(
        y,
        wordOf(
          op === REDUCE_SUM
            ? (mean ? NaN : 0)
            : op === REDUCE_PROD
            ? 1
            : op === REDUCE_MAX
            ? -Infinity
            : Infinity,
          "float32",
        ),
      );
    } else if (cols > 8192 && rows < 256) {
      // Long rows: split each over many blocks, then reduce the partial results.
      const parts = Math.min(1024, Math.ceil(cols / 4096));
      const chunk = Math.ceil(cols / parts);
      const partial = b.makeOutput([rows * parts * 2], "float32"); // doubles
      b.launch(
        "reduce_partial_f32",
        rows * parts * BLOCK,
        (p) => p.i32(op).i32(rows).i32(cols).i32(parts).i32(chunk).ptr(b.ptr(src)).ptr(b.ptr(partial)),
        Math.min(rows * parts, 65535),
      );
      b.launch(
        "reduce_final_f32",
        rows * 32,
        (p) => p.i32(op).i32(rows).i32(parts).f32(scale).ptr(b.ptr(partial)).ptr(b.ptr(y)),
        b.warpRowBlocks(rows),
      );
      b.release(partial);
    } else {
      b.launch(
        "reduce_rows_f32",
        rows * 32,
        (p) => p.i32(op).i32(rows).i32(cols).f32(scale).ptr(b.ptr(src)).ptr(b.ptr(y)),
        b.warpRowBlocks(rows),
      );
    }
    b.release(src);
    if (outDtype === "float32") return y;
    const out = cast(b, y, outDtype);
    b.release(y);
    return out;
  };
}

function softmax({ logits }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  const rank = logits.shape.length;
  const dim = attrs.dim as number;
  if (dim !== -1 && dim !== rank - 1) {
    throw new Error(`cuda backend: Softmax over dim ${dim} (only the last)`);
  }
  const cols = logits.shape[rank - 1];
  const rows = sizeOf(logits.shape) / Math.max(1, cols);
  const y = b.makeOutput(logits.shape, "float32");
  b.launch(
    "softmax_rows_f32",
    rows * 32,
    (p) => p.i32(rows).i32(cols).ptr(b.ptr(logits)).ptr(b.ptr(y)),
    b.warpRowBlocks(rows),
  );
  return y;
}

function gatherV2({ x, indices }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  if (((attrs.batchDims as number) ?? 0) !== 0) throw new Error("cuda backend: GatherV2 with batchDims > 0");
  const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
  const outer = sizeOf(x.shape.slice(0, axis));
  const dim = x.shape[axis];
  const inner = sizeOf(x.shape.slice(axis + 1));
  const nIdx = sizeOf(indices.shape);
  const outShape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
  const idx = cast(b, indices, "int32");
  const y = b.makeOutput(outShape, x.dtype);
  const n = outer * nIdx * inner;
  b.launch(
    "gather32",
    n,
    (p) => p.i32(n).i32(nIdx).i32(dim).i32(inner).ptr(b.ptr(x)).ptr(b.ptr(idx)).ptr(b.ptr(y)),
  );
  b.release(idx);
  return y;
}

function unsortedSegmentSum({ x, segmentIds }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  const numSegments = attrs.numSegments as number;
  const rows = sizeOf(segmentIds.shape);
  const inner = rows === 0 ? 0 : sizeOf(x.shape) / rows;
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const dtype: DataType = x.dtype === "float32" ? "float32" : "int32";
  const src = cast(b, x, dtype);
  const seg = cast(b, segmentIds, "int32");
  const y = b.makeOutput(outShape, dtype);
  const n = sizeOf(x.shape), outN = sizeOf(outShape);
  if (n === 0) {
    b.fill(y, 0);
  } else if (dtype === "int32") {
    b.fill(y, 0);
    b.launch(
      "unsorted_segment_sum_i32",
      n,
      (p) => p.i32(n).i32(inner).i32(numSegments).ptr(b.ptr(src)).ptr(b.ptr(seg)).ptr(b.ptr(y)),
    );
  } else {
    // float32: summed in fixed point, the same bits whatever order the device runs in (kernels.cu).
    const maxBits = b.makeOutput([1], "int32");
    const acc = b.makeOutput([outN * 2], "int32"); // int64
    b.fill(maxBits, 0);
    const [xp, accp, yp, mp] = [b.ptr(src), b.ptr(acc), b.ptr(y), b.ptr(maxBits)];
    b.launch(
      "segment_sum_prepare_f32",
      Math.max(n, outN),
      (p) => p.i32(n).i32(outN).ptr(xp).ptr(mp).ptr(accp).ptr(yp),
    );
    b.launch(
      "segment_sum_fixed_f32",
      n,
      (p) => p.i32(n).i32(inner).i32(numSegments).ptr(xp).ptr(b.ptr(seg)).ptr(mp).ptr(accp).ptr(yp),
    );
    b.launch("segment_sum_finish_f32", outN, (p) => p.i32(outN).i32(rows).ptr(mp).ptr(accp).ptr(yp));
    b.release(maxBits);
    b.release(acc);
  }
  b.release(src);
  b.release(seg);
  return y;
}

function oneHot({ indices }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  const depth = attrs.depth as number;
  const dtype = (attrs.dtype as DataType) ?? "int32";
  const on = wordOf((attrs.onValue as number) ?? 1, dtype),
    off = wordOf((attrs.offValue as number) ?? 0, dtype);
  const idx = cast(b, indices, "int32");
  const y = b.makeOutput([...indices.shape, depth], dtype);
  const n = sizeOf(y.shape);
  b.launch("one_hot32", n, (p) => p.i32(n).i32(depth).ptr(b.ptr(idx)).i32(on | 0).i32(off | 0).ptr(b.ptr(y)));
  b.release(idx);
  return y;
}

function sliceImpl(b: CudaBackend, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  const own = contiguousStrides(x.shape);
  const y = b.makeOutput(size, x.dtype);
  const offset = begin.reduce((acc, v, d) => acc + v * own[d], 0);
  b.stridedCopy(x, y, size, own, contiguousStrides(size), offset);
  return y;
}

function slice({ x }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  const [begin, size] = tf.slice_util.parseSliceParams(x, attrs.begin as number[], attrs.size as number[]);
  return sliceImpl(b, x, begin, size);
}

function concatImpl(b: CudaBackend, xs: TensorInfo[], axis: number): TensorInfo {
  const outShape = tf.backend_util.computeOutShape(xs.map((t) => t.shape), axis);
  const dtype = xs.map((t) => t.dtype).reduce((a, c) => tf.upcastType(a, c));
  const y = b.makeOutput(outShape, dtype);
  const outStrides = contiguousStrides(outShape);
  let at = 0;
  for (const x of xs) {
    if (sizeOf(x.shape) > 0) {
      const xc = cast(b, x, dtype);
      b.stridedCopy(xc, y, x.shape, contiguousStrides(x.shape), outStrides, 0, at * outStrides[axis]);
      b.release(xc);
    }
    at += x.shape[axis];
  }
  return y;
}

function concat(inputs: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  const xs = Object.values(inputs) as TensorInfo[];
  const axis = tf.util.parseAxisParam(attrs.axis as number, xs[0].shape)[0];
  return concatImpl(b, xs, axis);
}

function pack(inputs: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  const xs = Object.values(inputs) as TensorInfo[];
  const rank = xs[0].shape.length;
  const axis = ((attrs.axis as number) ?? 0) < 0
    ? (attrs.axis as number) + rank + 1
    : (attrs.axis as number) ?? 0;
  const expanded = xs.map((x) => {
    const s = [...x.shape];
    s.splice(axis, 0, 1);
    return b.alias(x, s);
  });
  const y = concatImpl(b, expanded, axis);
  expanded.forEach((t) => b.release(t));
  return y;
}

function padV2({ x }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  const paddings = attrs.paddings as [number, number][];
  const outShape = x.shape.map((n, d) => paddings[d][0] + n + paddings[d][1]);
  const y = b.makeOutput(outShape, x.dtype);
  b.fill(y, wordOf((attrs.constantValue as number) ?? 0, x.dtype));
  const outStrides = contiguousStrides(outShape);
  const offset = paddings.reduce((acc, [lo], d) => acc + lo * outStrides[d], 0);
  b.stridedCopy(x, y, x.shape, contiguousStrides(x.shape), outStrides, 0, offset);
  return y;
}

function tile({ x }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  const reps = attrs.reps as number[];
  const own = contiguousStrides(x.shape);
  const outShape = x.shape.map((n, d) => n * reps[d]);
  const y = b.makeOutput(outShape, x.dtype);
  // Iterate over [r0, n0, r1, n1, …]: the repeat dims read with stride 0.
  const dims = x.shape.flatMap((n, d) => [reps[d], n]);
  const inStrides = own.flatMap((s) => [0, s]);
  b.stridedCopy(x, y, dims, inStrides, contiguousStrides(dims));
  return y;
}

function broadcastTo({ x }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  const shape = attrs.shape as number[];
  const y = b.makeOutput(shape, x.dtype);
  b.stridedCopy(x, y, shape, broadcastStrides(x.shape, shape), contiguousStrides(shape));
  return y;
}

function fillLike(value: number): KernelImpl {
  return ({ x }, b) => {
    const y = b.makeOutput(x.shape, x.dtype);
    b.fill(y, wordOf(value, x.dtype));
    return y;
  };
}

function fill(_: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  const dtype = (attrs.dtype as DataType) ?? "float32";
  const y = b.makeOutput(attrs.shape as number[], dtype);
  b.fill(y, wordOf(attrs.value as number, dtype));
  return y;
}

function range(_: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  const { start, stop, step } = attrs as { start: number; stop: number; step: number };
  const dtype = (attrs.dtype as DataType) ?? "float32";
  const n = start === stop || (start < stop && step < 0) || (stop < start && step > 0)
    ? 0
    : Math.abs(Math.ceil((stop - start) / step));
  const values = dtype === "int32" ? new Int32Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = start + i * step;
  const dataId = b.write(values, [n], dtype);
  return { dataId, shape: [n], dtype };
}

function batchMatMul({ a, b: bIn }: Inputs, be: CudaBackend, attrs: Attrs): TensorInfo {
  const transposeA = !!attrs.transposeA, transposeB = !!attrs.transposeB;
  const ra = a.shape.length, rb = bIn.shape.length;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const k2 = transposeB ? bIn.shape[rb - 1] : bIn.shape[rb - 2];
  const n = transposeB ? bIn.shape[rb - 2] : bIn.shape[rb - 1];
  if (k !== k2) throw new Error(`cuda backend: BatchMatMul inner dims ${k} and ${k2} differ`);
  const outerA = a.shape.slice(0, -2), outerB = bIn.shape.slice(0, -2);
  const outer = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
  const batch = sizeOf(outer), batchA = sizeOf(outerA), batchB = sizeOf(outerB);
  let x = cast(be, a, "float32"), z = cast(be, bIn, "float32");
  // Batch broadcasting beyond "one side has a single matrix": materialise both to the full batch.
  if (!(batchA === batch || batchA === 1) || !(batchB === batch || batchB === 1)) {
    const full = (t: TensorInfo, own: number[]) => {
      const shape = [...outer, ...own.slice(-2)];
      const y = be.makeOutput(shape, "float32");
      be.stridedCopy(t, y, shape, broadcastStrides(own, shape), contiguousStrides(shape));
      be.release(t);
      return y;
    };
    x = full(x, a.shape);
    z = full(z, bIn.shape);
  }
  const sa = sizeOf(x.shape) === m * k ? 0 : m * k;
  const sb = sizeOf(z.shape) === k * n ? 0 : k * n;
  const y = be.makeOutput([...outer, m, n], "float32");
  if (k === 0) be.fill(y, 0);
  else be.rt.sgemmBatched(transposeA, transposeB, m, n, k, be.ptr(x), sa, be.ptr(z), sb, be.ptr(y), batch);
  be.release(x);
  be.release(z);
  const dtype = tf.upcastType(a.dtype, bIn.dtype);
  if (dtype === "float32") return y;
  const out = cast(be, y, dtype);
  be.release(y);
  return out;
}

// rtdlab's own kernels (not tfjs ops): dropout masks drawn on the device (lib/backend/dropout_mask.ts)
// and the generator's samples (lib/train/sampling.ts), so neither needs the host.
function dropoutMaskKernel(_: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  const { k0, k1, threshold, scale } = dropoutParams(attrs.rate as number, attrs.seed as number);
  const y = b.makeOutput(attrs.shape as number[], "float32");
  const n = sizeOf(y.shape);
  b.launch(
    "dropout_mask_f32",
    n,
    (p) => p.i32(n).i32(k0 | 0).i32(k1 | 0).i32(threshold).f32(scale).ptr(b.ptr(y)),
  );
  return y;
}

function sampleRows({ logits, uniforms, banned }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  const [rows, vocab] = logits.shape;
  const y = b.makeOutput([rows], "int32");
  b.launch(
    "sample_rows_f32",
    rows * BLOCK,
    (p) =>
      p.i32(rows).i32(vocab).f64(attrs.temperature as number).ptr(b.ptr(logits)).ptr(b.ptr(uniforms))
        .ptr(banned ? b.ptr(banned) : 0n).ptr(b.ptr(y)),
    Math.min(rows, 65535),
  );
  return y;
}

function corruptKernel({ ids, selected, picks, targets }: Inputs, b: CudaBackend): TensorInfo[] {
  for (const [k, t] of Object.entries({ ids, selected, picks, targets })) {
    if (t == null || t.dtype !== "int32") throw new Error(`${CORRUPT} (cuda): input ${k} must be int32`);
  }
  const m = sizeOf(selected.shape);
  if (sizeOf(picks.shape) !== m || sizeOf(targets.shape) !== m) {
    throw new Error(`${CORRUPT} (cuda): selected, picks and targets need one length`);
  }
  const corrupted = b.makeOutput(ids.shape, "int32");
  const labels = b.makeOutput(ids.shape, "float32");
  b.rt.copyDtoD(b.ptr(corrupted), b.ptr(ids), sizeOf(ids.shape) * 4);
  b.fill(labels, 0);
  b.launch(
    "corrupt_i32",
    m,
    (p) =>
      p.i32(m).ptr(b.ptr(selected)).ptr(b.ptr(picks)).ptr(b.ptr(targets)).ptr(b.ptr(corrupted))
        .ptr(b.ptr(labels)),
  );
  return [corrupted, labels];
}

// The AdamW update of every parameter in one launch (lib/backend/adamw_kernel.ts) instead of ~17
// launches per parameter.
/** Elements per block of the multi-tensor kernels (AdamW, sum of squares). */
const CHUNK = 1 << 16;

function adamw(inputs: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo[] {
  const a = attrs as Record<string, number>;
  const decay = attrs.weightDecays as number[];
  const outs: TensorInfo[] = [];
  const table: bigint[] = [];
  const wdBits = new Int32Array(new Float32Array(decay).buffer);
  for (let i = 0; i < decay.length; i++) {
    const [param, grad, m, v] = [inputs[`param${i}`], inputs[`grad${i}`], inputs[`m${i}`], inputs[`v${i}`]];
    if (param == null || grad == null || m == null || v == null) {
      throw new Error(`${ADAMW} (cuda): parameter ${i} needs param${i}, grad${i}, m${i} and v${i}`);
    }
    checkF32(ADAMW, { param, grad, m, v });
    const n = sizeOf(param.shape);
    const [p1, m1, v1] = [param, m, v].map((t) => b.makeOutput(t.shape, "float32"));
    outs.push(p1, m1, v1);
    const ptrs = [param, grad, m, v, p1, m1, v1].map((t) => b.ptr(t));
    for (let lo = 0; lo < n; lo += CHUNK) {
      table.push(...ptrs, BigInt(lo), BigInt(Math.min(n, lo + CHUNK)), BigInt(wdBits[i]));
    }
  }
  const chunks = table.length / 10;
  if (chunks > 0) {
    const tableDev = b.upload(BigInt64Array.from(table));
    b.launch(
      "adamw_f32",
      chunks * BLOCK,
      (q) =>
        q.i32(chunks).ptr(b.ptr(tableDev)).ptr(b.ptr(inputs.scale))
          .f32(a.lr).f32(a.beta1).f32(1 - a.beta1).f32(a.beta2).f32(1 - a.beta2).f32(a.epsilon)
          .f32(a.corr1).f32(a.corr2),
      Math.min(chunks, 65535),
    );
    b.release(tableDev);
  }
  return outs;
}

// rtdlab's fused layers (contracts: lib/backend/fused_kernels.ts), one launch each where tfjs's ops
// take 5 to 20.
function checkF32(name: string, inputs: Inputs): void {
  for (const [k, t] of Object.entries(inputs)) {
    if (t != null && t.dtype !== "float32") throw new Error(`${name} (cuda): input ${k} must be float32`);
  }
}

function checkBias(name: string, x: TensorInfo, bias: TensorInfo | undefined): number {
  const cols = x.shape[x.shape.length - 1] ?? 1;
  if (bias != null && sizeOf(bias.shape) !== cols) {
    throw new Error(`${name} (cuda): the bias needs ${cols} values, got [${bias.shape}]`);
  }
  return cols;
}

// GELU of x, or of x + bias (the FFN's dense bias folded in: RtdlabBiasGelu).
function gelu({ x, bias }: Inputs, b: CudaBackend): TensorInfo {
  checkF32(FUSED.gelu, { x, bias });
  const cols = checkBias(FUSED.gelu, x, bias);
  const y = b.makeOutput(x.shape, "float32");
  const n = sizeOf(x.shape);
  b.launch("gelu_f32", n, (p) => p.i32(n).i32(cols).ptr(b.ptr(x)).ptr(bias ? b.ptr(bias) : 0n).ptr(b.ptr(y)));
  return y;
}

function geluGrad({ dy, x, bias }: Inputs, b: CudaBackend): TensorInfo {
  checkF32(FUSED.geluGrad, { dy, x, bias });
  const cols = checkBias(FUSED.geluGrad, x, bias);
  const dx = b.makeOutput(x.shape, "float32");
  const n = sizeOf(x.shape);
  b.launch(
    "gelu_grad_f32",
    n,
    (p) => p.i32(n).i32(cols).ptr(b.ptr(dy)).ptr(b.ptr(x)).ptr(bias ? b.ptr(bias) : 0n).ptr(b.ptr(dx)),
  );
  return dx;
}

/** Rows and columns of a LayerNorm over the last axis. */
function normRows(x: TensorInfo): [number, number] {
  const cols = x.shape[x.shape.length - 1] ?? 1;
  return [cols === 0 ? 0 : sizeOf(x.shape) / cols, cols];
}

/** Dropout's hash keys for a fused kernel's optional mask (LayerNorm, softmaxes; drop = 0: none). */
function fusedDropout(attrs: Attrs): { drop: boolean; pack: (p: ParamBlock) => ParamBlock } {
  const rate = (attrs.rate as number | undefined) ?? 0;
  const { k0, k1, threshold, scale } = rate > 0
    ? dropoutParams(rate, attrs.seed as number)
    : { k0: 0, k1: 0, threshold: 0, scale: 1 };
  // kernels.cu's argument order: int drop, unsigned k0, unsigned k1, unsigned threshold, float scale.
  return {
    drop: rate > 0,
    pack: (p) => p.i32(rate > 0 ? 1 : 0).i32(k0 | 0).i32(k1 | 0).i32(threshold).f32(scale),
  };
}

function layerNorm({ x, h, hBias, gamma, beta }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo[] {
  checkF32(FUSED.layerNorm, { x, h, hBias, gamma, beta });
  checkBias(FUSED.layerNorm, x, hBias);
  const [rows, cols] = normRows(x);
  if (sizeOf(gamma.shape) !== cols || sizeOf(beta.shape) !== cols) {
    throw new Error(`${FUSED.layerNorm} (cuda): gamma and beta need ${cols} values`);
  }
  if (h != null && h.shape.join() !== x.shape.join()) {
    throw new Error(`${FUSED.layerNorm} (cuda): h [${h.shape}] must have x's shape [${x.shape}]`);
  }
  const d = fusedDropout(attrs);
  const y = b.makeOutput(x.shape, "float32"), xhat = b.makeOutput(x.shape, "float32");
  const rstd = b.makeOutput([...x.shape.slice(0, -1), 1], "float32");
  b.launch(
    "layer_norm_f32",
    rows * 32,
    (p) =>
      d.pack(
        p.i32(rows).i32(cols).f32(attrs.eps as number).f32(1 / cols).ptr(b.ptr(x)).ptr(h ? b.ptr(h) : 0n)
          .ptr(h && hBias ? b.ptr(hBias) : 0n),
      )
        .ptr(b.ptr(gamma)).ptr(b.ptr(beta)).ptr(b.ptr(y)).ptr(b.ptr(xhat)).ptr(b.ptr(rstd)),
    b.warpRowBlocks(rows),
  );
  return [y, xhat, rstd];
}

// LayerNorm's gradients: one launch, then γ's and β's gradients (and with withHBias the sublayer's dense
// bias's) as the column sums of the kernel's planes, one batched gemm into adjacent outputs.
function layerNormGrad({ dy, xhat, rstd, gamma }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo[] {
  checkF32(FUSED.layerNormGrad, { dy, xhat, rstd, gamma });
  const [rows, cols] = normRows(xhat);
  const withH = !!attrs.withH || !!attrs.withHBias;
  const nPlanes = attrs.withHBias ? 3 : 2;
  const d = fusedDropout(attrs);
  const dx = b.makeOutput(xhat.shape, "float32"), planes = b.makeOutput([nPlanes, rows, cols], "float32");
  const dh = withH ? b.makeOutput(xhat.shape, "float32") : null;
  const sums = b.makeOutputs([gamma.shape, gamma.shape, ...(nPlanes === 3 ? [[cols]] : [])]);
  b.launch(
    "layer_norm_grad_f32",
    rows * 32,
    (p) =>
      d.pack(
        p.i32(rows).i32(cols).f32(1 / cols).ptr(b.ptr(dy)).ptr(b.ptr(xhat)).ptr(b.ptr(rstd)).ptr(b.ptr(gamma))
          .ptr(b.ptr(dx)).ptr(b.ptr(planes)).ptr(dh ? b.ptr(dh) : 0n),
      ).i32(nPlanes),
    b.warpRowBlocks(rows),
  );
  // sums[p][c] = Σ_r planes[p, r, c]: the outputs are back to back, cols apart (makeOutputs).
  if (rows === 0) { for (const t of sums) b.fill(t, 0); }
  else {
    b.rt.sgemmBatched(
      false,
      false,
      1,
      cols,
      rows,
      b.ones(rows),
      0,
      b.ptr(planes),
      rows * cols,
      b.ptr(sums[0]),
      nPlanes,
    );
  }
  b.release(planes);
  return dh ? [dx, dh, ...sums] : [dx, ...sums];
}

function sumSquares(inputs: Inputs, b: CudaBackend): TensorInfo {
  const xs = Object.values(inputs);
  checkF32(FUSED.sumSquares, inputs);
  const table: bigint[] = [];
  for (const x of xs) {
    const n = sizeOf(x.shape);
    for (let lo = 0; lo < n; lo += CHUNK) {
      table.push(b.ptr(x), BigInt(lo), BigInt(Math.min(n, lo + CHUNK)));
    }
  }
  const y = b.makeOutput([], "float32");
  const chunks = table.length / 3;
  if (chunks === 0) {
    b.fill(y, 0);
    return y;
  }
  const tableDev = b.upload(BigInt64Array.from(table));
  const partial = b.makeOutput([chunks * 2], "float32"); // doubles
  b.launch(
    "sum_squares_partial_f32",
    chunks * BLOCK,
    (p) => p.i32(chunks).ptr(b.ptr(tableDev)).ptr(b.ptr(partial)),
    Math.min(chunks, 65535),
  );
  b.launch(
    "reduce_final_f32",
    32,
    (p) => p.i32(REDUCE_SUM).i32(1).i32(chunks).f32(1).ptr(b.ptr(partial)).ptr(b.ptr(y)),
    1,
  );
  b.release(tableDev);
  b.release(partial);
  return y;
}

function dropoutKernel({ x }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  checkF32(FUSED.dropout, { x });
  const { k0, k1, threshold, scale } = dropoutParams(attrs.rate as number, attrs.seed as number);
  const y = b.makeOutput(x.shape, "float32");
  const n = sizeOf(x.shape);
  b.launch(
    "dropout_f32",
    n,
    (p) => p.i32(n).i32(k0 | 0).i32(k1 | 0).i32(threshold).f32(scale).ptr(b.ptr(x)).ptr(b.ptr(y)),
  );
  return y;
}

// softmax(x·scale + bias); with attrs rate > 0 and seed also its dropout: [probs, dropout(probs)].
function attentionSoftmax({ x, bias }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo | TensorInfo[] {
  checkF32(FUSED.attentionSoftmax, { x, bias });
  const [rows, cols] = normRows(x);
  const [batch] = x.shape;
  if (x.shape.length !== 4 || bias.shape.join() !== [batch, 1, 1, cols].join()) {
    throw new Error(
      `${FUSED.attentionSoftmax} (cuda): scores [B, heads, Lq, Lk] and bias [B, 1, 1, Lk], got [${x.shape}] and [${bias.shape}]`,
    );
  }
  const d = fusedDropout(attrs);
  const y = b.makeOutput(x.shape, "float32");
  const yd = d.drop ? b.makeOutput(x.shape, "float32") : null;
  b.launch(
    "scaled_masked_softmax_f32",
    rows * 32,
    (p) =>
      d.pack(
        p.i32(rows).i32(cols).i32(rows / batch).f32(attrs.scale as number).ptr(b.ptr(x)).ptr(b.ptr(bias))
          .ptr(b.ptr(y)),
      )
        .ptr(yd ? b.ptr(yd) : 0n),
    b.warpRowBlocks(rows),
  );
  return yd ? [y, yd] : y;
}

// The scores' gradient from dy (the gradient of the probabilities, or with rate > 0 of their dropout).
function attentionSoftmaxGrad({ dy, y }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  checkF32(FUSED.attentionSoftmaxGrad, { dy, y });
  const [rows, cols] = normRows(y);
  const d = fusedDropout(attrs);
  const dx = b.makeOutput(y.shape, "float32");
  b.launch(
    "scaled_masked_softmax_grad_f32",
    rows * 32,
    (p) =>
      d.pack(p.i32(rows).i32(cols).f32(attrs.scale as number).ptr(b.ptr(dy)).ptr(b.ptr(y)).ptr(b.ptr(dx))),
    b.warpRowBlocks(rows),
  );
  return dx;
}

/** Rows, columns and mask rows of DeBERTa's scores [heads, B, L, L] over a mask of [B, L, L]. */
function disentangledShapes(name: string, scores: TensorInfo, mask: TensorInfo): [number, number, number] {
  const [rows, cols] = normRows(scores);
  const maskRows = normRows(mask)[0];
  if (scores.shape.length !== 4 || mask.shape.join() !== scores.shape.slice(1).join()) {
    throw new Error(
      `${name} (cuda): scores [heads, B, L, L] and masks [B, L, L], got [${scores.shape}] and [${mask.shape}]`,
    );
  }
  return [rows, cols, maskRows];
}

// DeBERTa's attention probabilities from c2c, c2p and p2c: [y, dropout(y·pair)] (y: the softmax, saved).
// With c2pIndex and p2cIndex, c2p and p2c are the scores against every relative row (the gather fused).
function disentangledSoftmax(
  { c2c, c2p, p2c, bias, pair, c2pIndex, p2cIndex }: Inputs,
  b: CudaBackend,
  attrs: Attrs,
): TensorInfo[] {
  const name = FUSED.disentangledSoftmax;
  checkF32(name, { c2c, c2p, p2c, bias, pair });
  const [rows, cols, maskRows] = disentangledShapes(name, c2c, pair);
  disentangledShapes(name, c2c, bias);
  let relRows = 0;
  if (c2pIndex || p2cIndex) {
    const [heads, batch, length] = c2c.shape;
    relRows = c2p.shape[1] / length;
    const want = `[${heads * batch}, ${length}·R] and indices [${length * length}]`;
    for (const [t, index] of [[c2p, c2pIndex], [p2c, p2cIndex]]) {
      if (
        !index || index.dtype !== "int32" || sizeOf(index.shape) !== length * length ||
        t.shape.length !== 2 ||
        t.shape[0] !== heads * batch || t.shape[1] !== length * relRows || !Number.isInteger(relRows)
      ) throw new Error(`${name} (cuda): relative scores ${want}, got [${t.shape}] and [${index?.shape}]`);
    }
  } else {
    for (const t of [c2p, p2c]) disentangledShapes(name, t, pair);
  }
  const d = fusedDropout(attrs);
  const y = b.makeOutput(c2c.shape, "float32"), out = b.makeOutput(c2c.shape, "float32");
  const index = (t?: TensorInfo) => (t ? b.ptr(t) : 0n);
  b.launch(
    "disentangled_softmax_f32",
    rows * 32,
    (p) =>
      d.pack(
        p.i32(rows).i32(cols).i32(maskRows).f32(attrs.scale as number).ptr(b.ptr(c2c)).ptr(b.ptr(c2p))
          .ptr(b.ptr(p2c)).ptr(b.ptr(bias)).ptr(b.ptr(pair)).i32(relRows).ptr(index(c2pIndex))
          .ptr(index(p2cIndex)).ptr(b.ptr(y)).ptr(b.ptr(out)),
      ),
    b.warpRowBlocks(rows),
  );
  return [y, out];
}

// The gradient of the fused gather: d [heads, B, L, L] summed over each relative row's run of pairs.
function relativeBucketSum({ d, range }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  const name = FUSED.relativeBucketSum;
  checkF32(name, { d });
  const [heads, batch, length, keys] = d.shape;
  const relRows = sizeOf(range.shape) / (2 * length);
  if (d.shape.length !== 4 || keys !== length || range.dtype !== "int32" || !Number.isInteger(relRows)) {
    throw new Error(
      `${name} (cuda): d [heads, B, L, L] and range [L·R·2] int32, got [${d.shape}] and [${range.shape}]`,
    );
  }
  const out = b.makeOutput([heads * batch, length * relRows], "float32");
  const n = sizeOf(out.shape);
  b.launch(
    "relative_bucket_sum_f32",
    n,
    (p) =>
      p.i32(n).i32(length).i32(relRows).i32(attrs.transposed ? 1 : 0).ptr(b.ptr(d)).ptr(b.ptr(range)).ptr(
        b.ptr(out),
      ),
  );
  return out;
}

// The gradient of each of its three score terms (one tensor: they are equal).
function disentangledSoftmaxGrad({ dy, y, pair }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  checkF32(FUSED.disentangledSoftmaxGrad, { dy, y, pair });
  const [rows, cols, maskRows] = disentangledShapes(FUSED.disentangledSoftmaxGrad, y, pair);
  const d = fusedDropout(attrs);
  const dx = b.makeOutput(y.shape, "float32");
  b.launch(
    "disentangled_softmax_grad_f32",
    rows * 32,
    (p) =>
      d.pack(
        p.i32(rows).i32(cols).i32(maskRows).f32(attrs.scale as number).ptr(b.ptr(dy)).ptr(b.ptr(y))
          .ptr(b.ptr(pair)).ptr(b.ptr(dx)),
      ),
    b.warpRowBlocks(rows),
  );
  return dx;
}

/** Throws unless logits [M, V] float32 and targets [M] int32 fit together. */
function checkCrossEntropy(name: string, logits: TensorInfo, targets: TensorInfo): void {
  checkF32(name, { logits });
  if (
    logits.shape.length !== 2 || targets.dtype !== "int32" || targets.shape.join() !== String(logits.shape[0])
  ) {
    throw new Error(
      `${name} (cuda): logits [M, V] float32 and targets [M] int32, got [${logits.shape}] and ${targets.dtype} [${targets.shape}]`,
    );
  }
}

function softmaxCrossEntropy({ logits, targets }: Inputs, b: CudaBackend): TensorInfo[] {
  checkCrossEntropy(FUSED.softmaxCrossEntropy, logits, targets);
  const [rows, cols] = logits.shape;
  const loss = b.makeOutput([rows], "float32");
  const probs = b.makeOutput([rows, cols], "float32");
  b.launch(
    "softmax_xent_f32",
    rows * 32,
    (p) => p.i32(rows).i32(cols).ptr(b.ptr(logits)).ptr(b.ptr(targets)).ptr(b.ptr(loss)).ptr(b.ptr(probs)),
    b.warpRowBlocks(rows),
  );
  return [loss, probs];
}

function softmaxCrossEntropyGrad({ probs, targets, dy }: Inputs, b: CudaBackend): TensorInfo {
  checkCrossEntropy(FUSED.softmaxCrossEntropyGrad, probs, targets);
  checkF32(FUSED.softmaxCrossEntropyGrad, { dy });
  const [rows, cols] = probs.shape;
  const n = rows * cols;
  const dx = b.makeOutput([rows, cols], "float32");
  b.launch(
    "softmax_xent_grad_f32",
    n,
    (p) => p.i32(n).i32(cols).i32(rows).ptr(b.ptr(probs)).ptr(b.ptr(targets)).ptr(b.ptr(dy)).ptr(b.ptr(dx)),
  );
  return dx;
}

function biasSplitHeads({ x, bias }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo {
  checkF32(FUSED.biasSplitHeads, { x, bias });
  const { batch, length, heads } = attrs as Record<string, number>;
  const hidden = x.shape[1];
  if (x.shape.length !== 2 || x.shape[0] !== batch * length || hidden % heads !== 0) {
    throw new Error(`${FUSED.biasSplitHeads} (cuda): x [${x.shape}] is not [${batch}·${length}, heads·d]`);
  }
  checkBias(FUSED.biasSplitHeads, x, bias);
  const d = hidden / heads;
  const y = b.makeOutput([batch, heads, length, d], "float32");
  const n = sizeOf(y.shape);
  b.launch(
    "bias_split_heads_f32",
    n,
    (p) => p.i32(n).i32(length).i32(heads).i32(d).ptr(b.ptr(x)).ptr(b.ptr(bias)).ptr(b.ptr(y)),
  );
  return y;
}

/** The shapes of a fused query/key/value projection: x [B·L, H] and three weights [H, H]; d = H / heads. */
function qkvShapes(name: string, x: TensorInfo, ws: TensorInfo[], attrs: Attrs) {
  const { batch, length, heads } = attrs as Record<string, number>;
  const hidden = x.shape[1];
  if (x.shape.length !== 2 || x.shape[0] !== batch * length || hidden % heads !== 0) {
    throw new Error(`${name} (cuda): x [${x.shape}] is not [${batch}·${length}, heads·d]`);
  }
  for (const w of ws) {
    if (w.shape.length !== 2 || w.shape[0] !== hidden || w.shape[1] !== hidden) {
      throw new Error(`${name} (cuda): a projection weight is [${w.shape}], not [${hidden}, ${hidden}]`);
    }
  }
  return { batch, length, heads, hidden, d: hidden / heads, rows: batch * length };
}

/** [W_q; W_k; W_v] as one [3H, H] tensor (one launch). */
function concatWeights(
  b: CudaBackend,
  wq: TensorInfo,
  wk: TensorInfo,
  wv: TensorInfo,
  hidden: number,
): TensorInfo {
  const cat = b.makeOutput([3 * hidden, hidden], "float32");
  const n = hidden * hidden;
  b.launch(
    "concat3_f32",
    n,
    (p) => p.i32(1).i32(n).ptr(b.ptr(wq)).ptr(b.ptr(wk)).ptr(b.ptr(wv)).ptr(b.ptr(cat)),
  );
  return cat;
}

/**
 * One launch of qkv_heads_f32 (kernels.cu): with `biases`, splits cat [rows, 3H] into three heads tensors
 * plus their biases; without, merges three heads tensors into cat. A null part is skipped (or reads as 0).
 */
function qkvHeadsLaunch(
  b: CudaBackend,
  cat: TensorInfo,
  parts: (TensorInfo | null)[],
  biases: TensorInfo[] | null,
  shape: { n: number; length: number; heads: number; d: number; headMajor: boolean },
): void {
  const { n, length, heads, d, headMajor } = shape;
  const ptr = (t: TensorInfo | null) => t ? b.ptr(t) : 0n;
  b.launch("qkv_heads_f32", n, (p) => {
    p.i32(biases ? 1 : 0).i32(headMajor ? 1 : 0).i32(n).i32(length).i32(heads).i32(d).ptr(b.ptr(cat));
    for (let j = 0; j < 3; j++) p.ptr(biases ? b.ptr(biases[j]) : 0n);
    for (const t of parts) p.ptr(ptr(t));
  });
}

/** x [rows, H] · [W_q; W_k; W_v]ᵀ: the three projections as one gemm, [rows, 3H]. */
function projectQkv(b: CudaBackend, x: TensorInfo, wcat: TensorInfo, hidden: number): TensorInfo {
  const rows = x.shape[0];
  const cat = b.makeOutput([rows, 3 * hidden], "float32");
  b.rt.sgemmBatched(false, true, rows, 3 * hidden, hidden, b.ptr(x), 0, b.ptr(wcat), 0, b.ptr(cat), 1);
  return cat;
}

// Query, key and value heads of x in one gemm (x·[W_q; W_k; W_v]ᵀ) and one launch that adds the biases
// and splits the heads: three dense layers, three bias adds and three head splits in one pass.
function qkvHeads({ x, wq, wk, wv, bq, bk, bv }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo[] {
  checkF32(FUSED.qkvHeads, { x, wq, wk, wv, bq, bk, bv });
  const { length, heads, hidden, d, rows } = qkvShapes(FUSED.qkvHeads, x, [wq, wk, wv], attrs);
  for (const bias of [bq, bk, bv]) checkBias(FUSED.qkvHeads, wq, bias);
  const wcat = concatWeights(b, wq, wk, wv, hidden);
  const cat = projectQkv(b, x, wcat, hidden);
  b.release(wcat);
  const [q, k, v] = [0, 1, 2].map(() => b.makeOutput([rows / length, heads, length, d], "float32"));
  qkvHeadsLaunch(b, cat, [q, k, v], [bq, bk, bv], { n: rows * hidden, length, heads, d, headMajor: false });
  b.release(cat);
  return [q, k, v];
}

/**
 * The parameter gradients of fused projections, written into outputs allocated back to back:
 * d[W_q; W_k; W_v] = Σ dcatᵀ·x and d[b_q; b_k; b_v] = Σ column sums of dcat over the (dcat, x) pairs
 * (DeBERTa projects the relative embeddings with the same weights).
 */
function qkvParamGrads(b: CudaBackend, pairs: [TensorInfo, TensorInfo][], hidden: number): TensorInfo[] {
  const dw = b.makeOutputs([[hidden, hidden], [hidden, hidden], [hidden, hidden]]);
  const db = b.makeOutputs([[hidden], [hidden], [hidden]]);
  pairs.forEach(([dcat, x], i) => {
    const rows = x.shape[0], beta = i === 0 ? 0 : 1;
    b.rt.sgemmBatched(
      true,
      false,
      3 * hidden,
      hidden,
      rows,
      b.ptr(dcat),
      0,
      b.ptr(x),
      0,
      b.ptr(dw[0]),
      1,
      beta,
    );
    if (rows === 0 && beta === 0) b.rt.memsetD32(b.ptr(db[0]), 0, 3 * hidden);
    else if (rows > 0) {
      b.rt.sgemmBatched(
        false,
        false,
        1,
        3 * hidden,
        rows,
        b.ones(rows),
        0,
        b.ptr(dcat),
        0,
        b.ptr(db[0]),
        1,
        beta,
      );
    }
  });
  return [...dw, ...db];
}

// The gradients of qkvHeads: the heads' gradients merged into one [B·L, 3H] (one launch), then
// dx = dcat·[W_q; W_k; W_v], d[W_q; W_k; W_v] = dcatᵀ·x and the biases' column sums (three gemms,
// the last two straight into the six parameter gradients, allocated back to back).
function qkvHeadsGrad({ x, wq, wk, wv, dq, dk, dv }: Inputs, b: CudaBackend, attrs: Attrs): TensorInfo[] {
  checkF32(FUSED.qkvHeadsGrad, { x, wq, wk, wv, dq, dk, dv });
  const { length, heads, hidden, d, rows } = qkvShapes(FUSED.qkvHeadsGrad, x, [wq, wk, wv], attrs);
  const n = rows * hidden;
  for (const dy of [dq, dk, dv]) {
    if (sizeOf(dy.shape) !== n) {
      throw new Error(`${FUSED.qkvHeadsGrad} (cuda): a head gradient is [${dy.shape}]`);
    }
  }
  const dcat = b.makeOutput([rows, 3 * hidden], "float32");
  qkvHeadsLaunch(b, dcat, [dq, dk, dv], null, { n, length, heads, d, headMajor: false });
  const wcat = concatWeights(b, wq, wk, wv, hidden);
  const dx = b.makeOutput([rows, hidden], "float32");
  b.rt.sgemmBatched(false, false, rows, hidden, 3 * hidden, b.ptr(dcat), 0, b.ptr(wcat), 0, b.ptr(dx), 1);
  b.release(wcat);
  const grads = qkvParamGrads(b, [[dcat, x]], hidden);
  b.release(dcat);
  return [dx, ...grads];
}

// DeBERTa's projections of one layer (query = key/value input): q, k, v heads of x [B·L, H] and the
// relative rows rel [R, H] through the key and query projections (K_r, Q_r; biases included), all
// head-major, from two gemms with [W_q; W_k; W_v] and two launches.
function disentangledProjections(
  { x, rel, wq, wk, wv, bq, bk, bv }: Inputs,
  b: CudaBackend,
  attrs: Attrs,
): TensorInfo[] {
  checkF32(FUSED.disentangledProjections, { x, rel, wq, wk, wv, bq, bk, bv });
  const { length, heads, hidden, d, rows } = qkvShapes(FUSED.disentangledProjections, x, [wq, wk, wv], attrs);
  if (rel.shape.length !== 2 || rel.shape[1] !== hidden) {
    throw new Error(`${FUSED.disentangledProjections} (cuda): rel [${rel.shape}] is not [R, ${hidden}]`);
  }
  for (const bias of [bq, bk, bv]) checkBias(FUSED.disentangledProjections, wq, bias);
  const relRows = rel.shape[0];
  const wcat = concatWeights(b, wq, wk, wv, hidden);
  const cat = projectQkv(b, x, wcat, hidden), relCat = projectQkv(b, rel, wcat, hidden);
  b.release(wcat);
  const [q, k, v] = [0, 1, 2].map(() => b.makeOutput([heads, rows / length, length, d], "float32"));
  qkvHeadsLaunch(b, cat, [q, k, v], [bq, bk, bv], { n: rows * hidden, length, heads, d, headMajor: true });
  const [posQuery, posKey] = [0, 1].map(() => b.makeOutput([heads, relRows, d], "float32"));
  const relShape = { n: relRows * hidden, length: relRows, heads, d, headMajor: true };
  qkvHeadsLaunch(b, relCat, [posQuery, posKey, null], [bq, bk, bv], relShape);
  b.release(cat);
  b.release(relCat);
  return [q, k, v, posKey, posQuery];
}

// Its gradients: two merges (the relative rows' value part is zero), dx and drel (two gemms), and the
// parameters' gradients summed over both inputs (four gemms into outputs allocated back to back).
function disentangledProjectionsGrad(
  { x, rel, wq, wk, wv, dq, dk, dv, dPosKey, dPosQuery }: Inputs,
  b: CudaBackend,
  attrs: Attrs,
): TensorInfo[] {
  checkF32(FUSED.disentangledProjectionsGrad, { x, rel, wq, wk, wv, dq, dk, dv, dPosKey, dPosQuery });
  const name = FUSED.disentangledProjectionsGrad;
  const { length, heads, hidden, d, rows } = qkvShapes(name, x, [wq, wk, wv], attrs);
  const relRows = rel.shape[0];
  for (
    const [t, n] of [[dq, rows], [dk, rows], [dv, rows], [dPosKey, relRows], [dPosQuery, relRows]] as const
  ) {
    if (sizeOf(t.shape) !== n * hidden) throw new Error(`${name} (cuda): a gradient is [${t.shape}]`);
  }
  const dcat = b.makeOutput([rows, 3 * hidden], "float32");
  qkvHeadsLaunch(b, dcat, [dq, dk, dv], null, { n: rows * hidden, length, heads, d, headMajor: true });
  const dRelCat = b.makeOutput([relRows, 3 * hidden], "float32");
  const relShape = { n: relRows * hidden, length: relRows, heads, d, headMajor: true };
  qkvHeadsLaunch(b, dRelCat, [dPosQuery, dPosKey, null], null, relShape);
  const wcat = concatWeights(b, wq, wk, wv, hidden);
  const [dx, dRel] = [[dcat, rows], [dRelCat, relRows]].map(([g, r]) => {
    const out = b.makeOutput([r as number, hidden], "float32");
    b.rt.sgemmBatched(
      false,
      false,
      r as number,
      hidden,
      3 * hidden,
      b.ptr(g as TensorInfo),
      0,
      b.ptr(wcat),
      0,
      b.ptr(out),
      1,
    );
    return out;
  });
  b.release(wcat);
  const grads = qkvParamGrads(b, [[dcat, x], [dRelCat, rel]], hidden);
  b.release(dcat);
  b.release(dRelCat);
  return [dx, dRel, ...grads];
}

function columnSumsKernel({ x }: Inputs, b: CudaBackend): TensorInfo {
  checkF32(FUSED.columnSums, { x });
  const [rows, cols] = normRows(x);
  const y = b.makeOutput([cols], "float32");
  b.columnSums(x, rows, cols, y);
  return y;
}

/** The kernels the backend registers, by tfjs kernel name. */
export const CUDA_KERNELS: Record<string, KernelImpl> = {
  Identity: ({ x }, b) => b.alias(x),
  Reshape: ({ x }, b, attrs) =>
    b.alias(x, tf.util.inferFromImplicitShape(attrs.shape as number[], sizeOf(x.shape))),
  Cast: ({ x }, b, attrs) => cast(b, x, attrs.dtype as DataType),
  ...Object.fromEntries(Object.keys(UNARY_OPS).map((n) => [n, unary(n)])),
  ...Object.fromEntries(Object.keys(BINARY_OPS).map((n) => [n, binary(n)])),
  ...Object.fromEntries(Object.keys(COMPARE_OPS).map((n) => [n, compare(n)])),
  AddN: addN,
  LogicalNot: logicalNot,
  Select: select,
  Sum: reduce(REDUCE_SUM),
  Mean: reduce(REDUCE_SUM, true),
  Max: reduce(REDUCE_MAX),
  Min: reduce(REDUCE_MIN),
  Prod: reduce(REDUCE_PROD),
  Softmax: softmax,
  GatherV2: gatherV2,
  UnsortedSegmentSum: unsortedSegmentSum,
  OneHot: oneHot,
  Transpose: ({ x }, b, attrs) => transposeImpl(b, x, attrs.perm as number[]),
  Slice: slice,
  Concat: concat,
  Pack: pack,
  PadV2: padV2,
  Tile: tile,
  BroadcastTo: broadcastTo,
  ZerosLike: fillLike(0),
  OnesLike: fillLike(1),
  Fill: fill,
  Range: range,
  BatchMatMul: batchMatMul,
  [DROPOUT_MASK]: dropoutMaskKernel,
  [SAMPLE_ROWS]: sampleRows,
  [CORRUPT]: corruptKernel,
  [ADAMW]: adamw,
  [FUSED.gelu]: gelu,
  [FUSED.geluGrad]: geluGrad,
  [FUSED.biasGelu]: gelu,
  [FUSED.biasGeluGrad]: geluGrad,
  [FUSED.layerNorm]: layerNorm,
  [FUSED.layerNormGrad]: layerNormGrad,
  [FUSED.sumSquares]: sumSquares,
  [FUSED.dropout]: dropoutKernel,
  [FUSED.attentionSoftmax]: attentionSoftmax,
  [FUSED.attentionSoftmaxGrad]: attentionSoftmaxGrad,
  [FUSED.columnSums]: columnSumsKernel,
  [FUSED.biasSplitHeads]: biasSplitHeads,
  [FUSED.qkvHeads]: qkvHeads,
  [FUSED.disentangledSoftmax]: disentangledSoftmax,
  [FUSED.disentangledSoftmaxGrad]: disentangledSoftmaxGrad,
  [FUSED.relativeBucketSum]: relativeBucketSum,
  [FUSED.qkvHeadsGrad]: qkvHeadsGrad,
  [FUSED.disentangledProjections]: disentangledProjections,
  [FUSED.disentangledProjectionsGrad]: disentangledProjectionsGrad,
  [FUSED.softmaxCrossEntropy]: softmaxCrossEntropy,
  [FUSED.softmaxCrossEntropyGrad]: softmaxCrossEntropyGrad,
};

/** Names of the tfjs kernels the cuda backend registers. */
export const CUDA_KERNEL_NAMES: readonly string[] = Object.keys(CUDA_KERNELS).sort();

/**
 * Starts the backend on an opened runtime (loads the PTX; errors surface here, not as a tfjs
 * warning), registers it as "cuda" with its kernels, and returns it. `tf.setBackend("cuda")`
 * then selects it (tests register a second one, e.g. "cuda_tf32", under another name). Closes the runtime when the backend cannot start.
 */
export function registerCudaBackend(rt: CudaRuntime, name = "cuda", priority = 1): CudaBackend {
  let backend: CudaBackend;
  try {
    backend = new CudaBackend(rt);
  } catch (e) {
    rt.close();
    throw e;
  }
  tf.registerBackend(name, () => backend, priority);
  for (const [kernelName, impl] of Object.entries(CUDA_KERNELS)) {
    if (tf.getKernel(kernelName, name) != null) continue;
    tf.registerKernel({
      kernelName,
      backendName: name,
      kernelFunc: ({ inputs, backend, attrs }) => impl(inputs as Inputs, backend as CudaBackend, attrs ?? {}),
    });
  }
  return backend;
}

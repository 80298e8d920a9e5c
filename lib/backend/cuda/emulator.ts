/**
 * A {@link CudaRuntime} that runs kernels.cu's entry points in TypeScript on the host: device
 * memory is a map of ArrayBuffers, launches decode the packed parameter block and loop over the
 * elements, and sgemm is a plain triple loop.
 *
 * It exists to test the cuda backend's host side (shapes, strides, parameter packing, dtype
 * handling, reference counting) on machines without a GPU: `registerCudaBackend(emulatedCuda(),
 * "cuda_emu")` gives a tfjs backend that tests/cuda_test.ts compares with the cpu backend. The
 * kernels here mirror kernels.cu by hand; agreement says nothing about the CUDA code itself, which
 * only a GPU run checks.
 *
 * @module
 */
import type { CudaRuntime, DevicePtr, Handle, ParamBlock } from "./driver.ts";
import { PTX_ENTRIES } from "./backend.ts";
import { dropoutHash } from "../dropout_mask.ts";
import type { Blas } from "../blas.ts";

const MAXR = 8;
const f32 = Math.fround;
const INV_SQRT2 = f32(Math.SQRT1_2);
/** Dropout's multiplier for element i (kernels.cu drop_mult): scale where kept, 0 where dropped. */
const dropMult = (i: number, k0: number, k1: number, threshold: number, scale: number) =>
  (dropoutHash(i, k0, k1) >>> 8) >= threshold ? scale : 0;
const INV_SQRT_2PI = f32(1 / Math.sqrt(2 * Math.PI));

/**
 * Where an emulated device keeps its memory and how it runs kernels, for a runtime that replaces
 * the TypeScript kernels (host_simt.ts runs kernels.cu itself); the default is below.
 */
export interface EmulatedDevice {
  /** Shown as the device's name. */
  readonly name: string;
  /** Reported multiprocessors (the backend launches at most 32 blocks per multiprocessor). */
  readonly multiprocessors: number;
  /** New memory: its address and an ArrayBuffer over exactly those bytes. */
  alloc(bytes: number): { ptr: DevicePtr; buffer: ArrayBuffer };
  free(ptr: DevicePtr, bytes: number): void;
  /** Runs kernel `entry` (a name in PTX_ENTRIES) with its packed parameters. */
  launch(entry: string, grid: number, block: number, params: ParamBlock): void;
  /** A row-major C = op(A)·op(B) + beta·C for one batch item (lib/backend/blas.ts); default: a plain loop. */
  sgemm?: Blas["sgemm"];
}

/** An emulated device (see the module doc); `device` replaces its memory and kernels. */
export function emulatedCuda(device?: EmulatedDevice): CudaRuntime {
  const mem = new Map<bigint, ArrayBuffer>();
  /** Allocation addresses, ascending, to find the one an interior address is in. */
  const bases: bigint[] = [];
  let next = 0x10000n;
  /** The memory at device address p to the end of its allocation (p may point inside one, as views do). */
  const at = (p: DevicePtr): { buffer: ArrayBuffer; offset: number } => {
    const exact = mem.get(p);
    if (exact) return { buffer: exact, offset: 0 };
    let [lo, hi] = [0, bases.length - 1];
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (bases[mid] <= p) lo = mid;
      else hi = mid - 1;
    }
    const base = bases[lo];
    const buffer = base !== undefined && base < p ? mem.get(base) : undefined;
    if (!buffer || p - base >= BigInt(buffer.byteLength)) {
      throw new Error(`emulator: no allocation at ${p.toString(16)}`);
    }
    return { buffer, offset: Number(p - base) };
  };
  const bytes = (p: DevicePtr, length?: number) => {
    const { buffer, offset } = at(p);
    return new Uint8Array(buffer, offset, length);
  };
  const F = (p: bigint) => (({ buffer, offset }) => new Float32Array(buffer, offset))(at(p));
  const I = (p: bigint) => (({ buffer, offset }) => new Int32Array(buffer, offset))(at(p));
  const U = (p: bigint) => (({ buffer, offset }) => new Uint32Array(buffer, offset))(at(p));
  const D = (p: bigint) => (({ buffer, offset }) => new Float64Array(buffer, offset))(at(p));
  const L = (p: bigint) => (({ buffer, offset }) => new BigInt64Array(buffer, offset))(at(p));

  const counters = { launches: 0, gemms: 0, copiesToDevice: 0, copiesToHost: 0, syncs: 0 };
  const rt: CudaRuntime = {
    info: {
      ordinal: 0,
      name: device?.name ?? "host emulator (kernels in TypeScript)",
      computeCapability: [8, 0],
      multiprocessors: device?.multiprocessors ?? 4,
      totalBytes: 2 ** 32,
      driverVersion: 0,
      driverPath: "(emulated)",
      cublasPath: "(emulated)",
      cublasVersion: 0,
      tf32: false,
    },
    stream: null,
    counters,
    memAlloc(size) {
      let p = next, buffer;
      if (device) ({ ptr: p, buffer } = device.alloc(size));
      else {
        next += BigInt(Math.ceil(size / 256) * 256 + 256);
        buffer = new ArrayBuffer(size);
      }
      mem.set(p, buffer);
      let i = bases.length; // sorted insert (the default's addresses only grow: one step)
      while (i > 0 && bases[i - 1] > p) i--;
      bases.splice(i, 0, p);
      return p;
    },
    memFree(p) {
      const buffer = mem.get(p);
      if (!buffer || !mem.delete(p)) throw new Error(`emulator: bad free ${p.toString(16)}`);
      bases.splice(bases.indexOf(p), 1);
      device?.free(p, buffer.byteLength);
    },
    memInfo: () => ({ free: 2 ** 32, total: 2 ** 32 }),
    copyHtoD(dst, src) {
      counters.copiesToDevice++;
      bytes(dst).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
    },
    copyDtoHAsync(dst, src) {
      counters.copiesToHost++;
      new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength).set(
        bytes(src, dst.byteLength),
      );
    },
    copyDtoD(dst, src, n) {
      bytes(dst).set(bytes(src, n));
    },
    memsetD32(dst, word, count) {
      U(dst).fill(word >>> 0, 0, count);
    },
    synchronize() {
      counters.syncs++;
    },
    wait: () => {
      counters.syncs++;
      return Promise.resolve();
    },
    time: (f) => {
      f();
      return Promise.resolve(0);
    },
    loadModule(_ptx, names) {
      return new Map(names.map((n, i) => [n, Deno.UnsafePointer.create(BigInt(i + 1))]));
    },
    launch(fn: Handle, grid: number, block: number, params: ParamBlock) {
      counters.launches++;
      const entry = PTX_ENTRIES[Number(Deno.UnsafePointer.value(fn)) - 1];
      if (device) device.launch(entry, grid, block, params);
      else run(entry, new Args(params));
    },
    sgemmBatched(transA, transB, m, n, k, a, strideA, b, strideB, c, batch, beta = 0) {
      counters.gemms++;
      const A = F(a), B = F(b), C = F(c);
      if (device?.sgemm) {
        for (let q = 0; q < batch; q++) {
          const cq = C.subarray(q * m * n, (q + 1) * m * n);
          device.sgemm(transA, transB, m, n, k, A.subarray(q * strideA), B.subarray(q * strideB), cq, beta);
        }
        return;
      }
      for (let q = 0; q < batch; q++) {
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let t = 0; t < k; t++) {
              const av = transA ? A[q * strideA + t * m + i] : A[q * strideA + i * k + t];
              const bv = transB ? B[q * strideB + j * k + t] : B[q * strideB + t * n + j];
              s += av * bv;
            }
            const o = q * m * n + i * n + j;
            C[o] = beta === 0 ? s : s + beta * C[o]; // cuBLAS: with beta 0, C is not read (may hold NaN)
          }
        }
      }
    },
    close() {
      if (device) { for (const [p, buffer] of mem) device.free(p, buffer.byteLength); }
      mem.clear();
      bases.length = 0;
    },
  };

  function run(entry: string, p: Args): void {
    switch (entry) {
      case "adamw_f32": {
        const [chunks, table, scale] = [
          p.i32(),
          (({ buffer, offset }) => new BigInt64Array(buffer, offset))(at(p.ptr())),
          F(p.ptr()),
        ];
        const [lr, b1, omb1, b2, omb2, eps, corr1, corr2] = [0, 1, 2, 3, 4, 5, 6, 7].map(() => p.f32());
        const s = scale[0];
        for (let k = 0; k < chunks; k++) {
          const [pp, g, m, v, p1, m1, v1] = [0, 1, 2, 3, 4, 5, 6].map((j) => F(table[10 * k + j]));
          const wd = new Float32Array(new Int32Array([Number(table[10 * k + 9])]).buffer)[0];
          for (let i = Number(table[10 * k + 7]); i < Number(table[10 * k + 8]); i++) {
            const gi = f32(g[i] * s);
            const mi = f32(f32(m[i] * b1) + f32(gi * omb1));
            const vi = f32(f32(v[i] * b2) + f32(f32(gi * gi) * omb2));
            let u = f32(f32(mi / corr1) / f32(f32(Math.sqrt(f32(vi / corr2))) + eps));
            if (wd !== 0) u = f32(u + f32(pp[i] * wd));
            m1[i] = mi;
            v1[i] = vi;
            p1[i] = f32(pp[i] - f32(u * lr));
          }
        }
        return;
      }
      case "dropout_mask_f32": {
        const [n, k0, k1, threshold, scale, y] = [
          p.i32(),
          p.i32() >>> 0,
          p.i32() >>> 0,
          p.i32(),
          p.f32(),
          F(p.ptr()),
        ];
        for (let i = 0; i < n; i++) y[i] = dropMult(i, k0, k1, threshold, scale);
        return;
      }
      case "sample_rows_f32": {
        const [rows, vocab, temperature, logits] = [p.i32(), p.i32(), p.f64(), F(p.ptr())];
        const u = D(p.ptr());
        const bannedPtr = p.ptr();
        const banned = bannedPtr === 0n ? null : I(bannedPtr);
        const out = I(p.ptr());
        for (let r = 0; r < rows; r++) {
          out[r] = sampleRowChunked(
            logits.subarray(r * vocab, (r + 1) * vocab),
            temperature,
            u[r],
            banned ? banned[r] : -1,
          );
        }
        return;
      }
      case "unary_f32": {
        const [op, n, x, y, alpha] = [p.i32(), p.i32(), F(p.ptr()), F(p.ptr()), p.f32()];
        for (let i = 0; i < n; i++) y[i] = unary(op, x[i], alpha);
        return;
      }
      case "unary_i32": {
        const [op, n, x, y] = [p.i32(), p.i32(), I(p.ptr()), I(p.ptr())];
        for (let i = 0; i < n; i++) {
          const v = x[i];
          y[i] = op === 0 ? -v : op === 1 ? Math.abs(v) : op === 2 ? Math.imul(v, v) : Math.sign(v);
        }
        return;
      }
      case "cast32": {
        const [mode, n, xp, yp] = [p.i32(), p.i32(), p.ptr(), p.ptr()];
        const xf = F(xp), xi = I(xp), yf = F(yp), yi = I(yp);
        for (let i = 0; i < n; i++) {
          if (mode === 0) {
            const v = xf[i];
            yi[i] = Number.isNaN(v) ? 0 : Math.max(-2147483648, Math.min(2147483647, Math.trunc(v)));
          } else if (mode === 1) yf[i] = xi[i];
          else if (mode === 2) yi[i] = xf[i] !== 0 ? 1 : 0;
          else yi[i] = xi[i] !== 0 ? 1 : 0;
        }
        return;
      }
      case "binary_f32":
      case "binary_i32": {
        const [op, n, idx, ap, bp, yp] = [p.i32(), p.i32(), p.idx(), p.ptr(), p.ptr(), p.ptr()];
        const isInt = entry === "binary_i32";
        const a = isInt ? I(ap) : F(ap), b = isInt ? I(bp) : F(bp), y = isInt ? I(yp) : F(yp);
        for (let i = 0; i < n; i++) {
          const [oa, ob] = offsets(idx, i, 2);
          y[i] = isInt ? binaryInt(op, a[oa], b[ob]) : binary(op, a[oa], b[ob]);
        }
        return;
      }
      case "compare32": {
        const [op, isInt, n, idx, ap, bp, y] = [
          p.i32(),
          p.i32(),
          p.i32(),
          p.idx(),
          p.ptr(),
          p.ptr(),
          I(p.ptr()),
        ];
        const a = isInt ? I(ap) : F(ap), b = isInt ? I(bp) : F(bp);
        for (let i = 0; i < n; i++) {
          const [oa, ob] = offsets(idx, i, 2);
          const u = a[oa], v = b[ob];
          const r =
            [u === v, u !== v, u < v, u <= v, u > v, u >= v, u !== 0 && v !== 0, u !== 0 || v !== 0][op];
          y[i] = r ? 1 : 0;
        }
        return;
      }
      case "select32": {
        const [n, idx, c, a, b, y] = [p.i32(), p.idx(), I(p.ptr()), U(p.ptr()), U(p.ptr()), U(p.ptr())];
        for (let i = 0; i < n; i++) {
          const [oc, oa, ob] = offsets(idx, i, 3);
          y[i] = c[oc] ? a[oa] : b[ob];
        }
        return;
      }
      case "strided_copy32": {
        const [n, idx, x, inOff, y, outOff] = [p.i32(), p.idx(), U(p.ptr()), p.i32(), U(p.ptr()), p.i32()];
        for (let i = 0; i < n; i++) {
          const [ox, oy] = offsets(idx, i, 2);
          y[outOff + oy] = x[inOff + ox];
        }
        return;
      }
      case "gather32": {
        const [n, nIdx, dim, inner, x, ix, y] = [
          p.i32(),
          p.i32(),
          p.i32(),
          p.i32(),
          U(p.ptr()),
          I(p.ptr()),
          U(p.ptr()),
        ];
        for (let i = 0; i < n; i++) {
          const inn = i % inner, j = Math.floor(i / inner) % nIdx, o = Math.floor(i / (inner * nIdx));
          const k = ix[j];
          y[i] = k >= 0 && k < dim ? x[(o * dim + k) * inner + inn] : 0;
        }
        return;
      }
      case "unsorted_segment_sum_i32": {
        const [n, inner, numSeg, x, seg, y] = [p.i32(), p.i32(), p.i32(), I(p.ptr()), I(p.ptr()), I(p.ptr())];
        for (let i = 0; i < n; i++) {
          const s = seg[Math.floor(i / inner)];
          if (s >= 0 && s < numSeg) y[s * inner + (i % inner)] += x[i];
        }
        return;
      }
      case "segment_sum_prepare_f32": {
        const [n, outN, x, maxBits, acc, y] = [
          p.i32(),
          p.i32(),
          F(p.ptr()),
          U(p.ptr()),
          L(p.ptr()),
          F(p.ptr()),
        ];
        acc.fill(0n, 0, outN);
        y.fill(0, 0, outN);
        for (let i = 0; i < n; i++) {
          const b = bitsOf(x[i]) & 0x7fffffff;
          if (b < 0x7f800000 && b > maxBits[0]) maxBits[0] = b;
        }
        return;
      }
      case "segment_sum_fixed_f32": {
        const [n, inner, numSeg, x, seg, maxBits, acc, y] = [
          p.i32(),
          p.i32(),
          p.i32(),
          F(p.ptr()),
          I(p.ptr()),
          U(p.ptr()),
          L(p.ptr()),
          F(p.ptr()),
        ];
        const scale = 2 ** fixedExponent(maxBits[0], n / inner);
        for (let i = 0; i < n; i++) {
          const s = seg[Math.floor(i / inner)];
          if (s < 0 || s >= numSeg) continue;
          const o = s * inner + (i % inner);
          if ((bitsOf(x[i]) & 0x7fffffff) < 0x7f800000) {
            acc[o] = BigInt.asIntN(64, acc[o] + BigInt(rintEven(x[i] * scale)));
          } else y[o] = f32(y[o] + x[i]);
        }
        return;
      }
      case "segment_sum_finish_f32": {
        const [outN, rows, maxBits, acc, y] = [p.i32(), p.i32(), U(p.ptr()), L(p.ptr()), F(p.ptr())];
        const unscale = 2 ** -fixedExponent(maxBits[0], rows);
        for (let i = 0; i < outN; i++) y[i] = f32(f32(Number(acc[i]) * unscale) + y[i]);
        return;
      }
      case "one_hot32": {
        const [n, depth, ix, on, off, y] = [p.i32(), p.i32(), I(p.ptr()), p.i32(), p.i32(), I(p.ptr())];
        for (let i = 0; i < n; i++) y[i] = ix[Math.floor(i / depth)] === i % depth ? on : off;
        return;
      }
      case "reduce_rows_f32": {
        const [op, rows, cols, scale, x, y] = [p.i32(), p.i32(), p.i32(), p.f32(), F(p.ptr()), F(p.ptr())];
        for (let r = 0; r < rows; r++) y[r] = finish(op, reduce(op, x, r * cols, cols, 1), scale);
        return;
      }
      case "reduce_partial_f32": {
        const [op, rows, cols, parts, chunk, x, partial] = [
          p.i32(),
          p.i32(),
          p.i32(),
          p.i32(),
          p.i32(),
          F(p.ptr()),
          D(p.ptr()),
        ];
        for (let b = 0; b < rows * parts; b++) {
          const r = Math.floor(b / parts), q = b % parts;
          const lo = q * chunk, hi = Math.min(cols, lo + chunk);
          partial[b] = reduce(op, x, r * cols + lo, Math.max(0, hi - lo), 1);
        }
        return;
      }
      case "reduce_final_f32": {
        const [op, rows, parts, scale, partial, y] = [
          p.i32(),
          p.i32(),
          p.i32(),
          p.f32(),
          D(p.ptr()),
          F(p.ptr()),
        ];
        for (let r = 0; r < rows; r++) y[r] = finish(op, reduce(op, partial, r * parts, parts, 1), scale);
        return;
      }
      case "softmax_rows_f32": {
        const [rows, cols, x, y] = [p.i32(), p.i32(), F(p.ptr()), F(p.ptr())];
        for (let r = 0; r < rows; r++) softmaxRow(x, y, r * cols, cols);
        return;
      }
      case "softmax_xent_f32": {
        const [rows, cols, x, targets, loss, y] = [
          p.i32(),
          p.i32(),
          F(p.ptr()),
          I(p.ptr()),
          F(p.ptr()),
          F(p.ptr()),
        ];
        for (let r = 0; r < rows; r++) {
          const o = r * cols;
          const [m, s] = softmaxRow(x, y, o, cols);
          const t = targets[r];
          loss[r] = f32(f32(m + f32(Math.log(f32(s)))) - (t >= 0 && t < cols ? x[o + t] : NaN));
        }
        return;
      }
      case "softmax_xent_grad_f32": {
        const [n, cols, rows, probs, targets, dy, dx] = [
          p.i32(),
          p.i32(),
          p.i32(),
          F(p.ptr()),
          I(p.ptr()),
          F(p.ptr()),
          F(p.ptr()),
        ];
        const scale = f32(dy[0] / rows);
        for (let i = 0; i < n; i++) {
          dx[i] = f32(f32(probs[i] - (targets[Math.floor(i / cols)] === i % cols ? 1 : 0)) * scale);
        }
        return;
      }
      case "dropout_f32": {
        const [n, k0, k1, threshold, scale, x, y] = [
          p.i32(),
          p.i32() >>> 0,
          p.i32() >>> 0,
          p.i32(),
          p.f32(),
          F(p.ptr()),
          F(p.ptr()),
        ];
        for (let i = 0; i < n; i++) {
          y[i] = f32(x[i] * dropMult(i, k0, k1, threshold, scale));
        }
        return;
      }
      case "scaled_masked_softmax_f32": {
        const [rows, cols, rowsPerBias, scale, x, bias, y] = [
          p.i32(),
          p.i32(),
          p.i32(),
          p.f32(),
          F(p.ptr()),
          F(p.ptr()),
          F(p.ptr()),
        ];
        const [drop, k0, k1, threshold, dscale] = [p.i32(), p.i32() >>> 0, p.i32() >>> 0, p.i32(), p.f32()];
        const ydPtr = p.ptr();
        const yd = drop ? F(ydPtr) : null;
        const z = new Float32Array(cols);
        for (let r = 0; r < rows; r++) {
          const o = r * cols, bo = Math.floor(r / rowsPerBias) * cols;
          for (let c = 0; c < cols; c++) z[c] = f32(f32(x[o + c] * scale) + bias[bo + c]);
          softmaxRowInto(z, cols, y, o);
          if (yd) {
            for (let c = 0; c < cols; c++) {
              yd[o + c] = f32(y[o + c] * dropMult(o + c, k0, k1, threshold, dscale));
            }
          }
        }
        return;
      }
      case "disentangled_softmax_f32": {
        const [rows, cols, maskRows, scale] = [p.i32(), p.i32(), p.i32(), p.f32()];
        const [c2c, c2p, p2c, bias, pair] = [0, 1, 2, 3, 4].map(() => F(p.ptr()));
        const relRows = p.i32(), [c2pIdx, p2cIdx] = [p.ptr(), p.ptr()].map((q) => q === 0n ? null : I(q));
        const [y, out] = [F(p.ptr()), F(p.ptr())];
        const [drop, k0, k1, threshold, dscale] = [p.i32(), p.i32() >>> 0, p.i32() >>> 0, p.i32(), p.f32()];
        // kernels.cu pair_term: per pair, or picked from the scores against every relative row.
        const term = (t: Float32Array, idx: Int32Array | null, r: number, c: number) =>
          idx ? t[Math.floor(r / cols) * cols * relRows + idx[(r % cols) * cols + c]] : t[r * cols + c];
        const z = new Float32Array(cols);
        for (let r = 0; r < rows; r++) {
          const o = r * cols, mo = (r % maskRows) * cols;
          for (let c = 0; c < cols; c++) {
            const [a, b2] = [term(c2p, c2pIdx, r, c), term(p2c, p2cIdx, r, c)];
            z[c] = f32(f32(f32(f32(c2c[o + c] * scale) + f32(a * scale)) + f32(b2 * scale)) + bias[mo + c]);
          }
          softmaxRowInto(z, cols, y, o);
          for (let c = 0; c < cols; c++) {
            const q = f32(y[o + c] * pair[mo + c]);
            out[o + c] = drop ? f32(q * dropMult(o + c, k0, k1, threshold, dscale)) : q;
          }
        }
        return;
      }
      case "relative_bucket_sum_f32": {
        const [n, cols, relRows, transposed, d, range, out] = [
          p.i32(),
          p.i32(),
          p.i32(),
          p.i32(),
          F(p.ptr()),
          I(p.ptr()),
          F(p.ptr()),
        ];
        const per = cols * relRows;
        for (let i = 0; i < n; i++) {
          const hb = Math.floor(i / per), k = i % per, o = Math.floor(k / relRows), base = hb * cols * cols;
          let s = 0;
          for (let t = range[2 * k]; t < range[2 * k + 1]; t++) {
            s += d[base + (transposed ? t * cols + o : o * cols + t)];
          }
          out[i] = s;
        }
        return;
      }
      case "disentangled_softmax_grad_f32": {
        const [rows, cols, maskRows, scale] = [p.i32(), p.i32(), p.i32(), p.f32()];
        const [dOut, y, pair, dx] = [0, 1, 2, 3].map(() => F(p.ptr()));
        const [drop, k0, k1, threshold, dscale] = [p.i32(), p.i32() >>> 0, p.i32() >>> 0, p.i32(), p.f32()];
        for (let r = 0; r < rows; r++) {
          const o = r * cols, mo = (r % maskRows) * cols;
          const g = (c: number) =>
            f32(
              (drop ? f32(dOut[o + c] * dropMult(o + c, k0, k1, threshold, dscale)) : dOut[o + c]) *
                pair[mo + c],
            );
          let s = 0;
          for (let c = 0; c < cols; c++) s += f32(g(c) * y[o + c]);
          const sf = f32(s);
          for (let c = 0; c < cols; c++) {
            dx[o + c] = f32(f32(f32(g(c) * y[o + c]) - f32(sf * y[o + c])) * scale);
          }
        }
        return;
      }
      case "scaled_masked_softmax_grad_f32": {
        const [rows, cols, scale, dy, y, dx] = [
          p.i32(),
          p.i32(),
          p.f32(),
          F(p.ptr()),
          F(p.ptr()),
          F(p.ptr()),
        ];
        const [drop, k0, k1, threshold, dscale] = [p.i32(), p.i32() >>> 0, p.i32() >>> 0, p.i32(), p.f32()];
        const g = (i: number) => drop ? f32(dy[i] * dropMult(i, k0, k1, threshold, dscale)) : dy[i];
        for (let r = 0; r < rows; r++) {
          const o = r * cols;
          let s = 0;
          for (let c = 0; c < cols; c++) s += f32(g(o + c) * y[o + c]);
          const sf = f32(s);
          for (let c = 0; c < cols; c++) {
            dx[o + c] = f32(f32(f32(g(o + c) * y[o + c]) - f32(sf * y[o + c])) * scale);
          }
        }
        return;
      }
      case "corrupt_i32": {
        const [m, selected, picks, targets, corrupted, labels] = [
          p.i32(),
          I(p.ptr()),
          I(p.ptr()),
          I(p.ptr()),
          I(p.ptr()),
          F(p.ptr()),
        ];
        for (let i = 0; i < m; i++) {
          corrupted[selected[i]] = picks[i];
          labels[selected[i]] = picks[i] !== targets[i] ? 1 : 0;
        }
        return;
      }
      case "qkv_heads_f32": {
        const [toHeads, headMajor, n, length, heads, d] = [
          p.i32(),
          p.i32(),
          p.i32(),
          p.i32(),
          p.i32(),
          p.i32(),
        ];
        const cat = F(p.ptr());
        // Null pointers: no biases when merging; a q, k or v left out.
        const opt = (ptr: bigint) => ptr === 0n ? null : F(ptr);
        const [bq, bk, bv, q, k, v] = [p.ptr(), p.ptr(), p.ptr(), p.ptr(), p.ptr(), p.ptr()].map(opt);
        const hidden = heads * d, batch = n / (hidden * length);
        for (let i = 0; i < n; i++) {
          const e = i % d, l = Math.floor(i / d) % length;
          const [h, b] = headMajor
            ? [Math.floor(i / (d * length * batch)), Math.floor(i / (d * length)) % batch]
            : [Math.floor(i / (d * length)) % heads, Math.floor(i / (d * length * heads))];
          const col = h * d + e, row = (b * length + l) * 3 * hidden;
          if (toHeads) {
            if (q) q[i] = f32(cat[row + col] + bq![col]);
            if (k) k[i] = f32(cat[row + hidden + col] + bk![col]);
            if (v) v[i] = f32(cat[row + 2 * hidden + col] + bv![col]);
          } else {
            cat[row + col] = q ? q[i] : 0;
            cat[row + hidden + col] = k ? k[i] : 0;
            cat[row + 2 * hidden + col] = v ? v[i] : 0;
          }
        }
        return;
      }
      case "concat3_f32": {
        const [toCat, n, a, b, c, cat] = [p.i32(), p.i32(), F(p.ptr()), F(p.ptr()), F(p.ptr()), F(p.ptr())];
        if (toCat) {
          cat.set(a.subarray(0, n), 0);
          cat.set(b.subarray(0, n), n);
          cat.set(c.subarray(0, n), 2 * n);
        } else {
          a.set(cat.subarray(0, n));
          b.set(cat.subarray(n, 2 * n));
          c.set(cat.subarray(2 * n, 3 * n));
        }
        return;
      }
      case "bias_split_heads_f32": {
        const [n, length, heads, d, x, bias, y] = [
          p.i32(),
          p.i32(),
          p.i32(),
          p.i32(),
          F(p.ptr()),
          F(p.ptr()),
          F(p.ptr()),
        ];
        for (let i = 0; i < n; i++) {
          const e = i % d, l = Math.floor(i / d) % length, h = Math.floor(i / (d * length)) % heads;
          const b = Math.floor(i / (d * length * heads));
          const col = h * d + e;
          y[i] = f32(x[(b * length + l) * heads * d + col] + bias[col]);
        }
        return;
      }
      case "gelu_f32": {
        const [n, cols, x] = [p.i32(), p.i32(), F(p.ptr())];
        const bp = p.ptr();
        const [bias, y] = [bp === 0n ? null : F(bp), F(p.ptr())];
        for (let i = 0; i < n; i++) {
          const xi = bias ? f32(x[i] + bias[i % cols]) : x[i];
          y[i] = f32(f32(xi * 0.5) * f32(f32(erf(f32(xi * INV_SQRT2))) + 1));
        }
        return;
      }
      case "gelu_grad_f32": {
        const [n, cols, dy, x] = [p.i32(), p.i32(), F(p.ptr()), F(p.ptr())];
        const bp = p.ptr();
        const [bias, dx] = [bp === 0n ? null : F(bp), F(p.ptr())];
        for (let i = 0; i < n; i++) {
          const xi = bias ? f32(x[i] + bias[i % cols]) : x[i];
          const cdf2 = f32(f32(erf(f32(xi * INV_SQRT2))) + 1);
          const pdf = f32(f32(Math.exp(f32(f32(xi * xi) * -0.5))) * INV_SQRT_2PI);
          dx[i] = f32(dy[i] * f32(f32(cdf2 * 0.5) + f32(xi * pdf)));
        }
        return;
      }
      case "layer_norm_f32": {
        const [rows, cols, eps, invCols, x] = [p.i32(), p.i32(), p.f32(), p.f32(), F(p.ptr())];
        const [hp, hbp] = [p.ptr(), p.ptr()];
        const [h, hb] = [hp === 0n ? null : F(hp), hbp === 0n ? null : F(hbp)];
        const [drop, k0, k1, threshold, scale] = [p.i32(), p.i32() >>> 0, p.i32() >>> 0, p.i32(), p.f32()];
        const [gamma, beta, y, xhat, rstd] = [0, 1, 2, 3, 4].map(() => F(p.ptr()));
        const v = (i: number) => {
          if (h == null) return x[i];
          const hv = hb ? f32(h[i] + hb[i % cols]) : h[i];
          return f32(
            x[i] + (drop ? f32(hv * dropMult(i, k0, k1, threshold, scale)) : hv),
          );
        };
        for (let r = 0; r < rows; r++) {
          const o = r * cols;
          let s = 0;
          for (let c = 0; c < cols; c++) s += v(o + c);
          const mean = f32(s * invCols);
          let q = 0;
          for (let c = 0; c < cols; c++) q += f32(f32(v(o + c) - mean) ** 2);
          const rs = f32(1 / f32(Math.sqrt(f32(f32(q * invCols) + eps))));
          for (let c = 0; c < cols; c++) {
            const hh = f32(f32(v(o + c) - mean) * rs);
            xhat[o + c] = hh;
            y[o + c] = f32(f32(hh * gamma[c]) + beta[c]);
          }
          rstd[r] = rs;
        }
        return;
      }
      case "layer_norm_grad_f32": {
        const [rows, cols, invCols] = [p.i32(), p.i32(), p.f32()];
        const [dy, xhat, rstd, gamma, dx, planes] = [0, 1, 2, 3, 4, 5].map(() => F(p.ptr()));
        const dhp = p.ptr();
        const dh = dhp === 0n ? null : F(dhp);
        const [drop, k0, k1, threshold, scale] = [p.i32(), p.i32() >>> 0, p.i32() >>> 0, p.i32(), p.f32()];
        const [nPlanes, plane] = [p.i32(), rows * cols];
        for (let r = 0; r < rows; r++) {
          const o = r * cols;
          let a = 0, b = 0;
          for (let c = 0; c < cols; c++) {
            const g = f32(dy[o + c] * gamma[c]);
            a += g;
            b += f32(g * xhat[o + c]);
          }
          const ma = f32(a * invCols), mb = f32(b * invCols);
          for (let c = 0; c < cols; c++) {
            const i = o + c;
            const g = f32(dy[i] * gamma[c]);
            const d = f32(f32(f32(g - ma) - f32(xhat[i] * mb)) * rstd[r]);
            dx[i] = d;
            planes[i] = f32(dy[i] * xhat[i]);
            if (nPlanes > 1) planes[plane + i] = dy[i];
            const dhv = drop ? f32(d * dropMult(i, k0, k1, threshold, scale)) : d;
            if (dh) dh[i] = dhv;
            if (nPlanes > 2) planes[2 * plane + i] = dhv;
          }
        }
        return;
      }
      case "sum_squares_partial_f32": {
        const [chunks, table, partial] = [
          p.i32(),
          (({ buffer, offset }) => new BigInt64Array(buffer, offset))(at(p.ptr())),
          D(p.ptr()),
        ];
        for (let k = 0; k < chunks; k++) {
          const x = F(table[3 * k]);
          let acc = 0;
          for (let i = Number(table[3 * k + 1]); i < Number(table[3 * k + 2]); i++) acc += f32(x[i] * x[i]);
          partial[k] = acc;
        }
        return;
      }
      default:
        throw new Error(`emulator: kernel ${entry} is not emulated`);
    }
  }
  return rt;
}

/**
 * A {@link CudaRuntime} that does nothing but count: allocations are addresses without memory,
 * launches and gemms compute nothing, reads return zeros. What is left of a training step is the
 * host's own work (tfjs's engine and autodiff, the backend's bookkeeping and parameter packing),
 * which bounds a real GPU's speed when the step is host-bound: count_launches.ts --time measures it
 * at full batch sizes without a GPU (and without the driver's own cost per call).
 */
export function nullCuda(): CudaRuntime {
  let next = 0x10000n;
  const counters = { launches: 0, gemms: 0, copiesToDevice: 0, copiesToHost: 0, syncs: 0 };
  return {
    info: {
      ordinal: 0,
      name: "rtdlab null device",
      computeCapability: [8, 0],
      multiprocessors: 132,
      totalBytes: 2 ** 40,
      driverVersion: 0,
      driverPath: "(none)",
      cublasPath: "(none)",
      cublasVersion: 0,
      tf32: false,
    },
    stream: null,
    counters,
    memAlloc(bytes) {
      const p = next;
      next += BigInt(Math.ceil(bytes / 256) * 256 + 256);
      return p;
    },
    memFree() {},
    memInfo: () => ({ free: 2 ** 40, total: 2 ** 40 }),
    copyHtoD() {
      counters.copiesToDevice++;
    },
    copyDtoHAsync(dst) {
      counters.copiesToHost++;
      new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength).fill(0);
    },
    copyDtoD() {},
    memsetD32() {},
    synchronize() {
      counters.syncs++;
    },
    wait: () => {
      counters.syncs++;
      return Promise.resolve();
    },
    time: (f) => {
      f();
      return Promise.resolve(0);
    },
    loadModule(_ptx, names) {
      return new Map(names.map((n, i) => [n, Deno.UnsafePointer.create(BigInt(i + 1))]));
    },
    launch() {
      counters.launches++;
    },
    sgemmBatched() {
      counters.gemms++;
    },
    close() {},
  };
}

/** Reads a ParamBlock's slots in order, as the kernel's parameter list declares them. */
const bitsF32 = new Float32Array(1), bitsU32 = new Uint32Array(bitsF32.buffer);
/** The bits of float32 `x`. */
const bitsOf = (x: number) => (bitsF32[0] = x, bitsU32[0]);
/** kernels.cu fixed_exponent: k with rows·max|x|·2^k < 2^61, max|x| given as float bits. */
function fixedExponent(maxBits: number, rows: number): number {
  if (maxBits === 0) return 0;
  const e = ((maxBits >>> 23) & 0xff) - 126;
  let r = 0;
  while (r < 31 && 2 ** r < rows) r++;
  return 61 - r - e;
}
/** Round to the nearest integer, ties to even (the device's cvt.rni / __double2ll_rn). */
function rintEven(v: number): number {
  const r = Math.round(v); // ties toward +∞
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

class Args {
  #i = 0;
  constructor(readonly p: ParamBlock) {}
  #view(size: number): DataView {
    const b = this.p.slotBytes(this.#i++, size);
    return new DataView(b.buffer, b.byteOffset, size);
  }
  i32 = () => this.#view(4).getInt32(0, true);
  f32 = () => this.#view(4).getFloat32(0, true);
  f64 = () => this.#view(8).getFloat64(0, true);
  ptr = () => this.#view(8).getBigUint64(0, true);
  idx = (): Int32Array => {
    const v = this.#view(4 * (1 + 4 * MAXR));
    return Int32Array.from({ length: 1 + 4 * MAXR }, (_, j) => v.getInt32(4 * j, true));
  };
}

function offsets(idx: Int32Array, i: number, k: number): number[] {
  const off = new Array<number>(k).fill(0);
  let rem = i;
  for (let d = idx[0] - 1; d >= 0; d--) {
    const n = idx[1 + d];
    const c = rem % n;
    rem = Math.floor(rem / n);
    for (let q = 0; q < k; q++) off[q] += c * idx[1 + MAXR * (q + 1) + d];
  }
  return off;
}

function unary(op: number, x: number, alpha: number): number {
  const nan = Number.isNaN(x);
  switch (op) {
    case 0:
      return -x;
    case 1:
      return Math.abs(x);
    case 2:
      return Math.exp(x);
    case 3:
      return Math.log(x);
    case 4:
      return Math.log1p(x);
    case 5:
      return Math.sqrt(x);
    case 6:
      return 1 / f32(Math.sqrt(x));
    case 7:
      return x * x;
    case 8:
      return nan ? x : x < 0 ? 0 : x;
    case 9:
      return nan ? x : x > 0 ? 1 : alpha;
    case 10:
      return erf(x);
    case 11:
      return 1 / (1 + Math.exp(-x));
    case 12:
      return Math.tanh(x);
    case 13:
      return 1 / x;
    case 14:
      return Math.expm1(x);
    case 15:
      return x > 0 ? 1 : x < 0 ? -1 : 0;
    case 16:
      return Math.floor(x);
    case 17:
      return Math.ceil(x);
    case 18: {
      const r = Math.round(x);
      return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
    }
    case 19:
      return nan ? x : x < 0 ? alpha * x : x;
    case 20:
      return nan ? x : Math.min(Math.max(x, 0), 6);
    case 21:
      return Math.sin(x);
    case 22:
      return Math.cos(x);
    case 23:
      return x > 0 ? x : Math.expm1(x);
    case 24:
      return x > 20 ? x : x < -20 ? Math.exp(x) : Math.log1p(Math.exp(x));
    default:
      return NaN;
  }
}

// Abramowitz & Stegun 7.1.26 is too coarse; use the series / continued fraction to double precision.
function erf(x: number): number {
  const t = Math.abs(x);
  if (t < 2.5) {
    let sum = t, term = t;
    for (let n = 1; n < 80; n++) {
      term *= (-t * t) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz) for large |x|.
  let f = t, c = t, d = 0;
  for (let n = 1; n < 200; n++) {
    const an = n / 2;
    d = t + an * d;
    d = 1 / d;
    c = t + an / c;
    f *= c * d;
  }
  return Math.sign(x) * (1 - Math.exp(-t * t) / (f * Math.sqrt(Math.PI)));
}

function binary(op: number, a: number, b: number): number {
  switch (op) {
    case 0:
      return a + b;
    case 1:
      return a - b;
    case 2:
      return a * b;
    case 3:
      return a / b;
    case 4:
      return Math.max(a, b);
    case 5:
      return Math.min(a, b);
    case 6:
      return Math.pow(a, b);
    case 7:
      return (a - b) * (a - b);
    case 8:
      return Math.floor(a / b);
    case 9: {
      const r = a % b;
      return r !== 0 && (r < 0) !== (b < 0) ? r + b : r;
    }
    case 10:
      return a < 0 ? a * b : a;
    default:
      return NaN;
  }
}

function binaryInt(op: number, u: number, v: number): number {
  switch (op) {
    case 0:
      return (u + v) | 0;
    case 1:
      return (u - v) | 0;
    case 2:
      return Math.imul(u, v);
    case 4:
      return Math.max(u, v);
    case 5:
      return Math.min(u, v);
    case 8:
      return v === 0 ? 0 : Math.floor(u / v);
    case 9: {
      if (v === 0) return 0;
      const m = u % v;
      return m !== 0 && (m < 0) !== (v < 0) ? m + v : m;
    }
    default:
      return 0;
  }
}

/** y[o + c] = softmax(z)[c] for c < cols, in the fused softmax kernels' arithmetic (sum in double). */
function softmaxRowInto(z: Float32Array, cols: number, y: Float32Array, o: number): void {
  const m = f32(reduce(1, z, 0, cols, 1));
  let s = 0;
  for (let c = 0; c < cols; c++) s += f32(Math.exp(f32(z[c] - m)));
  const inv = f32(1 / s);
  for (let c = 0; c < cols; c++) y[o + c] = f32(f32(Math.exp(f32(z[c] - m))) * inv);
}

function reduce(op: number, x: ArrayLike<number>, start: number, count: number, step: number): number {
  let acc = op === 0 ? 0 : op === 1 ? -Infinity : op === 2 ? Infinity : 1;
  for (let c = 0; c < count; c++) {
    const v = x[start + c * step];
    if (op === 0) acc += v;
    else if (op === 1) acc = Number.isNaN(acc) || Number.isNaN(v) ? NaN : Math.max(acc, v);
    else if (op === 2) acc = Number.isNaN(acc) || Number.isNaN(v) ? NaN : Math.min(acc, v);
    else acc *= v;
  }
  return acc;
}

/**
 * kernels.cu softmax_row_warp: softmax of x[o, o + cols) into y[o, o + cols); returns the row's max
 * and Σ exp(x − max) (the cross-entropy's logSumExp is max + log Σ).
 */
function softmaxRow(x: Float32Array, y: Float32Array, o: number, cols: number): [number, number] {
  const m = f32(reduce(1, x, o, cols, 1));
  let s = 0;
  for (let c = 0; c < cols; c++) s += f32(Math.exp(f32(x[o + c] - m)));
  const inv = f32(1 / s);
  for (let c = 0; c < cols; c++) y[o + c] = f32(Math.exp(f32(x[o + c] - m))) * inv;
  return [m, s];
}

function finish(op: number, acc: number, scale: number): number {
  return op === 0 ? acc * scale : acc;
}

/** kernels.cu sample_rows_f32 for one row, with its 256 chunks (the order the GPU sums in). */
function sampleRowChunked(row: Float32Array, temperature: number, u: number, ban: number): number {
  const vocab = row.length, threads = 256;
  const chunk = Math.ceil(vocab / threads);
  let m = -Infinity;
  for (let v = 0; v < vocab; v++) if (v !== ban && row[v] > m) m = row[v];
  const w = (v: number) =>
    v === ban ? 0 : Math.exp(temperature === 1 ? row[v] - m : (row[v] - m) / temperature);
  const sums = new Float64Array(threads);
  for (let t = 0; t < threads; t++) {
    for (let v = Math.min(vocab, t * chunk); v < Math.min(vocab, t * chunk + chunk); v++) sums[t] += w(v);
  }
  let total = 0;
  for (const s of sums) total += s;
  const goal = u * total;
  let acc = 0;
  for (let t = 0; t < threads; t++) {
    if (acc + sums[t] > goal) {
      const lo = Math.min(vocab, t * chunk), hi = Math.min(vocab, lo + chunk);
      let pick = hi - 1;
      for (let v = lo; v < hi; v++) {
        acc += w(v);
        if (acc > goal) {
          pick = v;
          break;
        }
      }
      return pick === ban ? (ban === 0 ? 1 : 0) : pick;
    }
    acc += sums[t];
  }
  return vocab - 1 === ban ? (ban === 0 ? 1 : 0) : vocab - 1;
}

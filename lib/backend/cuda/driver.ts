/**
 * The CUDA driver API (`libcuda.so.1`) and cuBLAS, through `Deno.dlopen`.
 *
 * Only what the cuda backend needs: one device, its primary context, one stream, device memory,
 * PTX modules and kernel launches, and cuBLAS's strided-batched sgemm. Every `CUresult` and
 * `cublasStatus_t` is checked; a failure throws {@link CudaError} naming the function and the CUDA
 * error name (`cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY`).
 *
 * `openCuda()` throws one clear error naming what is missing when the machine cannot run CUDA:
 * - `no NVIDIA driver: libcuda.so.1 not found (searched …)`
 * - `cuInit failed: CUDA_ERROR_NO_DEVICE` (and the other cuInit codes)
 * - `cuBLAS not found (searched …)`
 *
 * Environment (all optional):
 * - `RTDLAB_CUDA_DRIVER`: path of libcuda.so.1 to load instead of searching.
 * - `RTDLAB_CUBLAS`: path of libcublas.so.* to load instead of searching.
 * - `RTDLAB_CUDA_DEVICE`: device ordinal (default 0).
 * - `RTDLAB_CUDA_TF32`: `1` lets cuBLAS use TF32 tensor cores for fp32 matmuls (default off: exact fp32).
 * - `RTDLAB_CUDA_SYNC`: `1` waits for the device after every launch and gemm, so a kernel that faults is
 *   named in the error (slow; for debugging: otherwise a fault surfaces at the next call that checks).
 *
 * Linux only (the library names are Linux's). Nothing is loaded until `openCuda()` is called.
 *
 * @module
 */

/** A CUDA handle (context, stream, module, function, cuBLAS handle): an opaque pointer. */
export type Handle = Deno.PointerValue;

/** A device address (CUdeviceptr). 0n is the null pointer. */
export type DevicePtr = bigint;

/** A CUDA call failed: `func` is the API function, `code` its result, `codeName` e.g. CUDA_ERROR_NO_DEVICE. */
export class CudaError extends Error {
  constructor(readonly func: string, readonly code: number, readonly codeName: string, detail = "") {
    super(`${func} failed: ${codeName}${detail ? ` (${detail})` : ""}`);
    this.name = "CudaError";
  }
}

/** CUresult values rtdlab looks at. */
export const CUDA_SUCCESS = 0;
export const CUDA_ERROR_NOT_READY = 600;
/** The errors a faulting kernel leaves behind (illegal address, trap, launch failure…): the context is lost. */
const STICKY_ERRORS = new Set([700, 702, 710, 714, 715, 716, 717, 718, 719]);

const P = "pointer", U64 = "u64", I32 = "i32", U32 = "u32", BUF = "buffer", USIZE = "usize";

/** The driver API symbols rtdlab binds (all return CUresult). */
export const DRIVER_SYMBOLS = {
  cuInit: { parameters: [U32], result: I32 },
  cuDriverGetVersion: { parameters: [BUF], result: I32 },
  cuGetErrorName: { parameters: [I32, BUF], result: I32 },
  cuDeviceGetCount: { parameters: [BUF], result: I32 },
  cuDeviceGet: { parameters: [BUF, I32], result: I32 },
  cuDeviceGetName: { parameters: [BUF, I32, I32], result: I32 },
  cuDeviceGetAttribute: { parameters: [BUF, I32, I32], result: I32 },
  cuDeviceTotalMem_v2: { parameters: [BUF, I32], result: I32 },
  cuDevicePrimaryCtxRetain: { parameters: [BUF, I32], result: I32 },
  cuDevicePrimaryCtxRelease_v2: { parameters: [I32], result: I32 },
  cuCtxSetCurrent: { parameters: [P], result: I32 },
  cuStreamCreate: { parameters: [BUF, U32], result: I32 },
  cuStreamDestroy_v2: { parameters: [P], result: I32 },
  cuStreamSynchronize: { parameters: [P], result: I32 },
  cuEventCreate: { parameters: [BUF, U32], result: I32 },
  cuEventRecord: { parameters: [P, P], result: I32 },
  cuEventQuery: { parameters: [P], result: I32 },
  cuEventSynchronize: { parameters: [P], result: I32 },
  cuEventElapsedTime: { parameters: [BUF, P, P], result: I32 },
  cuEventDestroy_v2: { parameters: [P], result: I32 },
  cuMemAlloc_v2: { parameters: [BUF, USIZE], result: I32 },
  cuMemFree_v2: { parameters: [U64], result: I32 },
  cuMemGetInfo_v2: { parameters: [BUF, BUF], result: I32 },
  cuMemcpyHtoDAsync_v2: { parameters: [U64, BUF, USIZE, P], result: I32 },
  cuMemcpyDtoHAsync_v2: { parameters: [BUF, U64, USIZE, P], result: I32 },
  cuMemcpyDtoDAsync_v2: { parameters: [U64, U64, USIZE, P], result: I32 },
  cuMemsetD32Async: { parameters: [U64, U32, USIZE, P], result: I32 },
  cuModuleLoadData: { parameters: [BUF, BUF], result: I32 },
  cuModuleLoadDataEx: { parameters: [BUF, BUF, U32, BUF, BUF], result: I32 },
  cuModuleGetFunction: { parameters: [BUF, P, BUF], result: I32 },
  cuModuleUnload: { parameters: [P], result: I32 },
  cuLaunchKernel: {
    parameters: [P, U32, U32, U32, U32, U32, U32, U32, P, BUF, P],
    result: I32,
  },
} as const;

/** The cuBLAS symbols rtdlab binds (all return cublasStatus_t). */
export const CUBLAS_SYMBOLS = {
  cublasCreate_v2: { parameters: [BUF], result: I32 },
  cublasDestroy_v2: { parameters: [P], result: I32 },
  cublasSetStream_v2: { parameters: [P, P], result: I32 },
  cublasSetMathMode: { parameters: [P, I32], result: I32 },
  cublasGetVersion_v2: { parameters: [P, BUF], result: I32 },
  cublasSgemmStridedBatched: {
    parameters: [
      P,
      I32,
      I32,
      I32,
      I32,
      I32,
      BUF,
      U64,
      I32,
      "i64",
      U64,
      I32,
      "i64",
      BUF,
      U64,
      I32,
      "i64",
      I32,
    ],
    result: I32,
  },
} as const;

type DriverLib = Deno.DynamicLibrary<typeof DRIVER_SYMBOLS>;
type CublasLib = Deno.DynamicLibrary<typeof CUBLAS_SYMBOLS>;

// CUdevice_attribute values (cuda.h).
const CU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13;
const CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
const CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE = 36;
const CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37;
const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
// cuModuleLoadDataEx options (CUjit_option).
const CU_JIT_ERROR_LOG_BUFFER = 5;
const CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;
const CU_STREAM_NON_BLOCKING = 1;
const CU_EVENT_DISABLE_TIMING = 2;
// cuBLAS enums (cublas_api.h).
const CUBLAS_OP_N = 0, CUBLAS_OP_T = 1;
const CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3;

/** cublasStatus_t names (cublas_api.h); cublasGetStatusName is missing from older cuBLAS. */
export const CUBLAS_STATUS_NAMES: Record<number, string> = {
  0: "CUBLAS_STATUS_SUCCESS",
  1: "CUBLAS_STATUS_NOT_INITIALIZED",
  3: "CUBLAS_STATUS_ALLOC_FAILED",
  7: "CUBLAS_STATUS_INVALID_VALUE",
  8: "CUBLAS_STATUS_ARCH_MISMATCH",
  11: "CUBLAS_STATUS_MAPPING_ERROR",
  13: "CUBLAS_STATUS_EXECUTION_FAILED",
  14: "CUBLAS_STATUS_INTERNAL_ERROR",
  15: "CUBLAS_STATUS_NOT_SUPPORTED",
  16: "CUBLAS_STATUS_LICENSE_ERROR",
};

/** What `openCuda()` found: the device and the loaded libraries. */
export interface CudaDeviceInfo {
  ordinal: number;
  name: string;
  /** Compute capability, e.g. [9, 0] for an H100. */
  computeCapability: [number, number];
  multiprocessors: number;
  totalBytes: number;
  /** Driver API version as CUDA encodes it (13000 = 13.0). */
  driverVersion: number;
  driverPath: string;
  cublasPath: string;
  cublasVersion: number;
  tf32: boolean;
  /**
   * The device's peak rates from its attributes (memory clock × bus width, SM clock × FP32 lanes):
   * what `stepWork` (count_launches.ts) divides by for the least time a step could take. Absent
   * where the driver does not report the clocks.
   */
  peak?: DevicePeak;
}

/** Peak rates of a device: bytes per second to and from its memory, FP32 operations per second. */
export interface DevicePeak {
  memoryBytesPerS: number;
  fp32FlopsPerS: number;
}

/** Reference peaks (vendor datasheets) for predictions made without the device: H100 SXM, H200. */
export const REFERENCE_PEAKS: Record<string, DevicePeak> = {
  "H100 SXM": { memoryBytesPerS: 3.35e12, fp32FlopsPerS: 66.9e12 },
  "H200": { memoryBytesPerS: 4.8e12, fp32FlopsPerS: 66.9e12 },
};

/**
 * The peaks a floor is computed at: the device's own, or an H100 SXM's where its driver reports no
 * clocks (or there is no device), with a line saying which.
 */
export function peakOf(info?: CudaDeviceInfo): { peak: DevicePeak; source: string } {
  const peak = info?.peak ?? REFERENCE_PEAKS["H100 SXM"];
  const rates = `${(peak.memoryBytesPerS / 1e12).toFixed(2)} TB/s, ${
    (peak.fp32FlopsPerS / 1e12).toFixed(1)
  } FP32 TFLOPS`;
  return {
    peak,
    source: info?.peak
      ? `${info.name}'s peak rates (${rates}, from its attributes)`
      : `an H100 SXM's peak rates (${rates}, datasheet: the device reports no clocks)`,
  };
}

/**
 * Peak rates from device attributes: memory clock (kHz, double data rate) × bus width (bits), and
 * SM clock (kHz) × multiprocessors × FP32 lanes per SM (64 on compute capability 6.0, 7.x, 8.0; 128
 * elsewhere from 6.1 on) × 2 (one fused multiply-add is two operations).
 */
export function peakFromAttributes(
  cc: [number, number],
  multiprocessors: number,
  smClockKhz: number,
  memoryClockKhz: number,
  busWidthBits: number,
): DevicePeak | undefined {
  if (!(smClockKhz > 0 && memoryClockKhz > 0 && busWidthBits > 0)) return undefined;
  const [major, minor] = cc;
  const lanes = major < 6
    ? 128
    : (major === 6 && minor === 0) || major === 7 || (major === 8 && minor === 0)
    ? 64
    : 128;
  return {
    memoryBytesPerS: 2 * memoryClockKhz * 1e3 * busWidthBits / 8,
    fp32FlopsPerS: 2 * lanes * multiprocessors * smClockKhz * 1e3,
  };
}

/** Running totals of what the host asked the GPU to do (launch overhead and sync points, for benchmarks). */
export interface CudaCounters {
  launches: number;
  gemms: number;
  copiesToDevice: number;
  copiesToHost: number;
  /** Host waits for the stream (synchronize and wait): each is a pipeline bubble. */
  syncs: number;
}

/** A started CUDA device: context current on this thread, one stream, one cuBLAS handle. */
export interface CudaRuntime {
  readonly info: CudaDeviceInfo;
  readonly stream: Handle;
  /** Work issued so far: kernel launches, cuBLAS calls, host↔device copies, host waits on the stream. */
  readonly counters: CudaCounters;
  /** Allocates `bytes` of device memory (cuMemAlloc_v2). */
  memAlloc(bytes: number): DevicePtr;
  memFree(ptr: DevicePtr): void;
  /** Free and total device memory in bytes. */
  memInfo(): { free: number; total: number };
  /**
   * Enqueues a host→device copy on the stream. The host buffer may be reused when it returns: it is
   * pageable JS memory, which the driver stages before returning (a pinned one would need an event).
   */
  copyHtoD(dst: DevicePtr, src: ArrayBufferView): void;
  /** Enqueues a device→host copy; the data is there after `synchronize()` (or an awaited `wait`). */
  copyDtoHAsync(dst: ArrayBufferView, src: DevicePtr): void;
  /** Enqueues a device→device copy of `bytes`. */
  copyDtoD(dst: DevicePtr, src: DevicePtr, bytes: number): void;
  /** Enqueues a fill of `count` 32-bit words with the bit pattern `word`. */
  memsetD32(dst: DevicePtr, word: number, count: number): void;
  /** Blocks until the stream is idle. */
  synchronize(): void;
  /** Resolves when the work enqueued so far has finished, without blocking the event loop. */
  wait(): Promise<void>;
  /** Times `f`'s enqueued work with two events; resolves to milliseconds. */
  time(f: () => void): Promise<number>;
  /** Loads a PTX module (JIT-compiled by the driver) and returns its functions by name. */
  loadModule(ptx: string, names: readonly string[]): Map<string, Handle>;
  /** Launches `fn` on the stream; `params` is the packed kernel-parameter block (see ParamBlock). */
  launch(fn: Handle, grid: number, block: number, params: ParamBlock): void;
  /**
   * Row-major batched C[b] = op(A[b])·op(B[b]) (+ beta·C[b]) with element strides between batch
   * items (0 broadcasts an operand): A is M×K after op, B is K×N after op, C is M×N.
   */
  sgemmBatched(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: DevicePtr,
    strideA: number,
    b: DevicePtr,
    strideB: number,
    c: DevicePtr,
    batch: number,
    beta?: number,
  ): void;
  /** Releases the stream, cuBLAS handle, modules and primary context. */
  close(): void;
}

/** An environment variable, or undefined (also without --allow-env: then the defaults apply). */
export function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: defaults
  }
}

/** Places libcuda.so.1 is looked for, in order (the loader's own path first). */
export function driverCandidates(): string[] {
  const forced = env("RTDLAB_CUDA_DRIVER");
  if (forced) return [forced];
  return [
    "libcuda.so.1",
    "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
    "/usr/lib/aarch64-linux-gnu/libcuda.so.1",
    "/usr/lib64/libcuda.so.1",
    "/usr/local/nvidia/lib64/libcuda.so.1", // NVIDIA container toolkit
    "/usr/lib/wsl/lib/libcuda.so.1", // WSL2
  ];
}

/**
 * Places cuBLAS is looked for, in order: the loader's path, CUDA_HOME / CUDA_PATH / /usr/local/cuda
 * lib64, then PyTorch's bundled NVIDIA wheels (site-packages/nvidia/{cublas,cu13,cu12}/lib) of the Python
 * installations found through VIRTUAL_ENV, CONDA_PREFIX, pyenv, the python3 on PATH and the usual prefixes.
 */
export function cublasCandidates(driverVersion?: number): string[] {
  const forced = env("RTDLAB_CUBLAS");
  if (forced) return [forced];
  // A cuBLAS newer than the driver's CUDA loads but fails at cublasCreate: with the driver's version
  // (cuDriverGetVersion: 12040 = CUDA 12.4) only the majors it runs are candidates.
  const driverMajor = driverVersion ? Math.floor(driverVersion / 1000) : Infinity;
  const names = ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11"]
    .filter((n) => Number(n.split(".").pop()) <= driverMajor);
  const dirs: string[] = [];
  for (const v of ["CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"]) {
    const root = env(v);
    if (root) dirs.push(`${root}/lib64`, `${root}/lib`, `${root}/targets/x86_64-linux/lib`);
  }
  dirs.push("/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib");
  // nvidia-cublas-cu12 wheels: nvidia/cublas/lib; the CUDA 13 wheels: nvidia/cu13/lib.
  for (const pkg of ["cublas", "cu13", "cu12"]) dirs.push(...pythonNvidiaDirs(pkg));
  const out = [...names];
  for (const d of [...new Set(dirs)]) for (const n of names) out.push(`${d}/${n}`);
  return out;
}

/** `site-packages/nvidia/<pkg>/lib` folders of the Python installations that can be found cheaply. */
export function pythonNvidiaDirs(pkg: string): string[] {
  const prefixes: string[] = [];
  for (const v of ["VIRTUAL_ENV", "CONDA_PREFIX"]) {
    const p = env(v);
    if (p) prefixes.push(p);
  }
  const home = env("HOME");
  const pyenvRoot = env("PYENV_ROOT") ?? (home ? `${home}/.pyenv` : undefined);
  if (pyenvRoot) {
    for (const v of listDir(`${pyenvRoot}/versions`)) prefixes.push(`${pyenvRoot}/versions/${v}`);
  }
  if (home) prefixes.push(`${home}/.local`);
  // The prefix of every python3 on PATH (a virtual environment such as /opt/torch/.venv holds PyTorch's
  // nvidia-cublas wheel without VIRTUAL_ENV being set).
  for (const dir of (env("PATH") ?? "").split(":")) {
    if (dir.endsWith("/bin") && listDir(dir).includes("python3")) prefixes.push(dir.slice(0, -4));
  }
  prefixes.push("/usr/local", "/usr", "/opt/conda");
  const dirs: string[] = [];
  for (const prefix of prefixes) {
    for (const py of listDir(`${prefix}/lib`).filter((e) => /^python3\.\d+$/.test(e))) {
      for (const sp of ["site-packages", "dist-packages"]) {
        const dir = `${prefix}/lib/${py}/${sp}/nvidia/${pkg}/lib`;
        if (listDir(dir).length > 0) dirs.push(dir);
      }
    }
  }
  return dirs;
}

function listDir(path: string): string[] {
  try {
    return [...Deno.readDirSync(path)].map((e) => e.name);
  } catch {
    return [];
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0];
}

/**
 * Opens the first library of `candidates` that loads with `symbols`. Returns it with its path, or
 * null and the reason each candidate failed (a missing file, or a library lacking a symbol).
 */
function openFirst<S extends Deno.ForeignLibraryInterface>(
  candidates: string[],
  symbols: S,
): { lib: Deno.DynamicLibrary<S>; path: string } | { lib: null; reasons: string[] } {
  const reasons: string[] = [];
  for (const path of candidates) {
    try {
      return { lib: Deno.dlopen(path, symbols), path };
    } catch (e) {
      const msg = firstLine(e);
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        throw new Error(`loading ${path} needs FFI permission: run Deno with --allow-ffi (or -A). ${msg}`);
      }
      // A library that exists but lacks a symbol is worth naming; "no such file" is the common case.
      if (!/No such file|cannot open shared object/i.test(msg)) reasons.push(`${path}: ${msg}`);
    }
  }
  return { lib: null, reasons };
}

function searched(candidates: string[], reasons: string[]): string {
  const tried = candidates.length > 8
    ? `${candidates.slice(0, 8).join(", ")}, … ${candidates.length - 8} more`
    : candidates.join(", ");
  return `searched ${tried}${reasons.length ? `; ${reasons.join("; ")}` : ""}`;
}

/** The error of a machine without a driver rtdlab can load (`candidates` searched; why some failed). */
function noDriver(candidates: string[], reasons: string[]): string {
  return `no NVIDIA driver: libcuda.so.1 not found (${searched(candidates, reasons)})`;
}

/**
 * Whether this machine has an NVIDIA driver rtdlab can load: null, or the message `openCuda` would throw
 * for a missing one. Loads and closes the library only (no device, no context): a parent process that
 * runs its GPU work in children checks with it before starting them.
 */
export function missingDriver(): string | null {
  const driverPaths = driverCandidates();
  const drv = openFirst(driverPaths, DRIVER_SYMBOLS);
  if (drv.lib == null) {
    return noDriver(driverPaths, drv.reasons);
  }
  drv.lib.close();
  return null;
}

/**
 * Starts CUDA on this machine: loads the driver and cuBLAS, initialises device RTDLAB_CUDA_DEVICE
 * (default 0), makes its primary context current, and creates one stream and one cuBLAS handle.
 * Throws one clear error naming what is missing (see the module doc); never crashes on a machine
 * without a GPU.
 */
export function openCuda(): CudaRuntime {
  const driverPaths = driverCandidates();
  const drv = openFirst(driverPaths, DRIVER_SYMBOLS);
  if (drv.lib == null) {
    throw new Error(noDriver(driverPaths, drv.reasons));
  }
  const lib = drv.lib;
  try {
    return startDevice(lib, drv.path);
  } catch (e) {
    lib.close();
    throw e;
  }
}

function startDevice(lib: DriverLib, driverPath: string): CudaRuntime {
  const d = lib.symbols;
  const errorName = (code: number): string => {
    const out = new BigUint64Array(1);
    if (d.cuGetErrorName(code, out) !== CUDA_SUCCESS || out[0] === 0n) return `CUresult ${code}`;
    return Deno.UnsafePointerView.getCString(Deno.UnsafePointer.create(out[0])!);
  };
  const check = (func: string, code: number, detail = ""): void => {
    if (code === CUDA_SUCCESS) return;
    // A kernel's fault is sticky and asynchronous: whichever call checks next reports it.
    const note = STICKY_ERRORS.has(code) && !syncEveryCall
      ? "raised by a kernel queued earlier, not necessarily this call; RTDLAB_CUDA_SYNC=1 names the one"
      : "";
    throw new CudaError(func, code, errorName(code), [detail, note].filter(Boolean).join("; "));
  };
  const syncEveryCall = env("RTDLAB_CUDA_SYNC") === "1";
  const i32 = new Int32Array(1);
  const u64 = new BigUint64Array(1);
  const u64b = new BigUint64Array(1);

  check("cuInit", d.cuInit(0));
  check("cuDriverGetVersion", d.cuDriverGetVersion(i32));
  const driverVersion = i32[0];
  check("cuDeviceGetCount", d.cuDeviceGetCount(i32));
  const count = i32[0];
  const ordinal = Number(env("RTDLAB_CUDA_DEVICE") ?? 0);
  if (count === 0) throw new CudaError("cuDeviceGetCount", 100, "CUDA_ERROR_NO_DEVICE", "0 devices");
  if (!Number.isInteger(ordinal) || ordinal < 0 || ordinal >= count) {
    throw new Error(
      `RTDLAB_CUDA_DEVICE=${env("RTDLAB_CUDA_DEVICE")}: this machine has ${count} CUDA device(s)`,
    );
  }
  check("cuDeviceGet", d.cuDeviceGet(i32, ordinal));
  const dev = i32[0];
  const nameBuf = new Uint8Array(256);
  check("cuDeviceGetName", d.cuDeviceGetName(nameBuf, nameBuf.length, dev));
  const name = new TextDecoder().decode(nameBuf.subarray(0, Math.max(0, nameBuf.indexOf(0))));
  const attr = (a: number, what: string): number => {
    check("cuDeviceGetAttribute", d.cuDeviceGetAttribute(i32, a, dev), what);
    return i32[0];
  };
  const cc: [number, number] = [
    attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, "compute capability major"),
    attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, "compute capability minor"),
  ];
  const multiprocessors = attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, "multiprocessor count");
  // Clocks only size a prediction: a driver that no longer reports one leaves the peak unknown.
  const optionalAttr = (a: number): number =>
    d.cuDeviceGetAttribute(i32, a, dev) === CUDA_SUCCESS ? i32[0] : 0;
  const peak = peakFromAttributes(
    cc,
    multiprocessors,
    optionalAttr(CU_DEVICE_ATTRIBUTE_CLOCK_RATE),
    optionalAttr(CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE),
    optionalAttr(CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH),
  );
  check("cuDeviceTotalMem_v2", d.cuDeviceTotalMem_v2(u64, dev));
  const totalBytes = Number(u64[0]);

  // cuBLAS before any context exists, so a missing library leaves nothing to clean up.
  const blasPaths = cublasCandidates(driverVersion);
  const forcedMajor = Number(env("RTDLAB_CUBLAS")?.match(/\.so\.(\d+)$/)?.[1]);
  if (forcedMajor > Math.floor(driverVersion / 1000)) {
    throw new Error(
      `RTDLAB_CUBLAS=${
        env("RTDLAB_CUBLAS")
      } is cuBLAS ${forcedMajor}, which needs a CUDA ${forcedMajor} driver; ` +
        `this driver runs CUDA ${Math.floor(driverVersion / 1000)}.${
          (driverVersion % 1000) / 10
        }: give an older cuBLAS`,
    );
  }
  const blas = openFirst(blasPaths, CUBLAS_SYMBOLS);
  if (blas.lib == null) {
    throw new Error(
      `cuBLAS not found (${searched(blasPaths, blas.reasons)}). Install the CUDA toolkit's cuBLAS ` +
        "(e.g. libcublas-12-x), pip's nvidia-cublas-cu12, or set RTDLAB_CUBLAS=/path/libcublas.so.N",
    );
  }
  const cublasLib: CublasLib = blas.lib;
  const b = cublasLib.symbols;
  const checkBlas = (func: string, status: number): void => {
    if (status !== 0) {
      throw new CudaError(func, status, CUBLAS_STATUS_NAMES[status] ?? `cublasStatus ${status}`);
    }
  };

  let ctx: Handle = null, stream: Handle = null, handle: Handle = null;
  const modules: Handle[] = [];
  const release = () => {
    if (handle) b.cublasDestroy_v2(handle);
    for (const m of modules) d.cuModuleUnload(m);
    if (stream) d.cuStreamDestroy_v2(stream);
    if (ctx) d.cuDevicePrimaryCtxRelease_v2(dev);
    handle = stream = ctx = null;
    modules.length = 0;
    cublasLib.close();
  };
  try {
    check("cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain(u64, dev));
    ctx = Deno.UnsafePointer.create(u64[0]);
    check("cuCtxSetCurrent", d.cuCtxSetCurrent(ctx));
    check("cuStreamCreate", d.cuStreamCreate(u64, CU_STREAM_NON_BLOCKING));
    stream = Deno.UnsafePointer.create(u64[0]);
    checkBlas("cublasCreate_v2", b.cublasCreate_v2(u64));
    handle = Deno.UnsafePointer.create(u64[0]);
    checkBlas("cublasSetStream_v2", b.cublasSetStream_v2(handle, stream));
  } catch (e) {
    release();
    throw e;
  }
  const tf32 = env("RTDLAB_CUDA_TF32") === "1";
  checkBlas(
    "cublasSetMathMode",
    b.cublasSetMathMode(handle, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
  );
  checkBlas("cublasGetVersion_v2", b.cublasGetVersion_v2(handle, i32));
  const info: CudaDeviceInfo = {
    ordinal,
    name,
    computeCapability: cc,
    multiprocessors,
    totalBytes,
    driverVersion,
    driverPath,
    cublasPath: blas.path,
    cublasVersion: i32[0],
    tf32,
    peak,
  };

  const alpha = new Float32Array([1]);
  const betaBuf = new Float32Array(1);
  const newEvent = (): Handle => {
    check("cuEventCreate", d.cuEventCreate(u64, CU_EVENT_DISABLE_TIMING));
    return Deno.UnsafePointer.create(u64[0]);
  };
  // Resolves when the stream passes event `ev`, polling so the event loop keeps running. `spinMs`
  // polls without yielding first: a Deno timer takes ~2 ms even at 0 ms, and at the end of a
  // host-bound step the device is usually that close behind.
  const passed = async (ev: Handle, spinMs: number): Promise<void> => {
    for (const until = performance.now() + spinMs; performance.now() < until;) {
      const r = d.cuEventQuery(ev);
      if (r === CUDA_SUCCESS) return;
      if (r !== CUDA_ERROR_NOT_READY) check("cuEventQuery", r);
    }
    for (let spins = 0;; spins++) {
      const r = d.cuEventQuery(ev);
      if (r === CUDA_SUCCESS) return;
      if (r !== CUDA_ERROR_NOT_READY) check("cuEventQuery", r);
      await new Promise((res) => setTimeout(res, spins < 64 ? 0 : 1));
    }
  };
  const wait = async (): Promise<void> => {
    const ev = newEvent();
    try {
      check("cuEventRecord", d.cuEventRecord(ev, stream));
      await passed(ev, 2);
    } finally {
      d.cuEventDestroy_v2(ev);
    }
  };
  const counters: CudaCounters = { launches: 0, gemms: 0, copiesToDevice: 0, copiesToHost: 0, syncs: 0 };
  const bytesOf = (v: ArrayBufferView) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

  return {
    info,
    counters,
    get stream() {
      return stream;
    },
    memAlloc(bytes) {
      check("cuMemAlloc_v2", d.cuMemAlloc_v2(u64, BigInt(bytes)), `${bytes} bytes`);
      return u64[0];
    },
    memFree(ptr) {
      check("cuMemFree_v2", d.cuMemFree_v2(ptr));
    },
    memInfo() {
      check("cuMemGetInfo_v2", d.cuMemGetInfo_v2(u64, u64b));
      return { free: Number(u64[0]), total: Number(u64b[0]) };
    },
    copyHtoD(dst, src) {
      if (src.byteLength === 0) return;
      counters.copiesToDevice++;
      check(
        "cuMemcpyHtoDAsync_v2",
        d.cuMemcpyHtoDAsync_v2(dst, bytesOf(src), BigInt(src.byteLength), stream),
      );
    },
    copyDtoHAsync(dst, src) {
      if (dst.byteLength === 0) return;
      counters.copiesToHost++;
      check(
        "cuMemcpyDtoHAsync_v2",
        d.cuMemcpyDtoHAsync_v2(bytesOf(dst), src, BigInt(dst.byteLength), stream),
      );
    },
    copyDtoD(dst, src, bytes) {
      if (bytes === 0) return;
      check("cuMemcpyDtoDAsync_v2", d.cuMemcpyDtoDAsync_v2(dst, src, BigInt(bytes), stream));
    },
    memsetD32(dst, word, count) {
      if (count === 0) return;
      check("cuMemsetD32Async", d.cuMemsetD32Async(dst, word >>> 0, BigInt(count), stream));
    },
    synchronize() {
      counters.syncs++;
      check("cuStreamSynchronize", d.cuStreamSynchronize(stream));
    },
    wait() {
      counters.syncs++;
      return wait();
    },
    async time(f) {
      const events: Handle[] = [];
      try {
        for (let i = 0; i < 2; i++) {
          check("cuEventCreate", d.cuEventCreate(u64, 0));
          events.push(Deno.UnsafePointer.create(u64[0]));
        }
        check("cuEventRecord", d.cuEventRecord(events[0], stream));
        f();
        check("cuEventRecord", d.cuEventRecord(events[1], stream));
        // No spin: tf.profile times every kernel, and a spin here would make the host wait for each
        // one before queueing the next (the profiled step's wall time would be the device's, serialized).
        await passed(events[1], 0);
        const ms = new Float32Array(1);
        check("cuEventElapsedTime", d.cuEventElapsedTime(ms, events[0], events[1]));
        return ms[0];
      } finally {
        for (const e of events) d.cuEventDestroy_v2(e);
      }
    },
    loadModule(ptx, names) {
      const image = new TextEncoder().encode(ptx + "\0");
      const log = new Uint8Array(16384);
      const options = new Int32Array([CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES]);
      const values = new BigUint64Array([
        Deno.UnsafePointer.value(Deno.UnsafePointer.of(log)) as bigint,
        BigInt(log.length),
      ]);
      const r = d.cuModuleLoadDataEx(u64, image, options.length, options, new Uint8Array(values.buffer));
      if (r !== CUDA_SUCCESS) {
        const text = new TextDecoder().decode(log.subarray(0, Math.max(0, log.indexOf(0)))).trim();
        const hint = errorName(r) === "CUDA_ERROR_UNSUPPORTED_PTX_VERSION"
          ? "the PTX was made by a newer compiler than this driver knows: rebuild it with " +
            "lib/backend/cuda/build_ptx.sh (PTX_COMPILER=clang makes PTX that older drivers accept)"
          : text;
        check("cuModuleLoadDataEx", r, hint);
      }
      const mod = Deno.UnsafePointer.create(u64[0]);
      modules.push(mod);
      const fns = new Map<string, Handle>();
      for (const n of names) {
        check("cuModuleGetFunction", d.cuModuleGetFunction(u64, mod, new TextEncoder().encode(n + "\0")), n);
        fns.set(n, Deno.UnsafePointer.create(u64[0]));
      }
      return fns;
    },
    launch(fn, grid, block, params) {
      if (grid === 0) return;
      counters.launches++;
      check(
        "cuLaunchKernel",
        d.cuLaunchKernel(fn, grid, 1, 1, block, 1, 1, 0, stream, params.pointers(), null),
        params.label,
      );
      if (syncEveryCall) check("cuStreamSynchronize", d.cuStreamSynchronize(stream), `after ${params.label}`);
    },
    sgemmBatched(transA, transB, m, n, k, a, strideA, bp, strideB, c, batch, beta = 0) {
      if (m === 0 || n === 0 || batch === 0) return;
      betaBuf[0] = beta;
      counters.gemms++;
      // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap the operands.
      checkBlas(
        "cublasSgemmStridedBatched",
        b.cublasSgemmStridedBatched(
          handle,
          transB ? CUBLAS_OP_T : CUBLAS_OP_N,
          transA ? CUBLAS_OP_T : CUBLAS_OP_N,
          n,
          m,
          k,
          alpha,
          bp,
          transB ? k : n,
          BigInt(strideB),
          a,
          transA ? m : k,
          BigInt(strideA),
          betaBuf,
          c,
          n,
          BigInt(m * n),
          batch,
        ),
      );
      if (syncEveryCall) {
        check("cuStreamSynchronize", d.cuStreamSynchronize(stream), `after sgemm ${m}×${n}×${k} ×${batch}`);
      }
    },
    close() {
      release();
      lib.close();
    },
  };
}

/**
 * A kernel's parameters packed the way cuLaunchKernel takes them: one 8-byte-aligned slot per
 * parameter (pointers and 64-bit integers as u64, ints and floats as 4 bytes, int-array structs
 * as their bytes), and the array of pointers to the slots.
 */
export class ParamBlock {
  readonly #bytes = new ArrayBuffer(4096);
  readonly #view = new DataView(this.#bytes);
  readonly #offsets: number[] = [];
  #end = 0;
  readonly #ptrs = new BigUint64Array(64);
  readonly #sizes = new Uint32Array(64);
  /** Kernel name, for error messages. */
  label = "";

  /** Starts a new parameter list for kernel `label`. */
  reset(label: string): this {
    this.#offsets.length = 0;
    this.#end = 0;
    this.label = label;
    return this;
  }

  #slot(size: number): number {
    const at = (this.#end + 7) & ~7;
    if (at + size > this.#bytes.byteLength || this.#offsets.length >= this.#ptrs.length) {
      throw new Error(`kernel ${this.label}: too many parameters`);
    }
    this.#sizes[this.#offsets.length] = size;
    this.#offsets.push(at);
    this.#end = at + size;
    return at;
  }

  /** A device pointer (or any 64-bit unsigned). */
  ptr(v: bigint): this {
    this.#view.setBigUint64(this.#slot(8), v, true);
    return this;
  }
  i32(v: number): this {
    this.#view.setInt32(this.#slot(4), v, true);
    return this;
  }
  i64(v: number): this {
    this.#view.setBigInt64(this.#slot(8), BigInt(v), true);
    return this;
  }
  f32(v: number): this {
    this.#view.setFloat32(this.#slot(4), v, true);
    return this;
  }
  f64(v: number): this {
    this.#view.setFloat64(this.#slot(8), v, true);
    return this;
  }
  /** A struct of int32 fields (e.g. `struct { int rank; int shape[6]; … }`), passed by value. */
  ints(values: ArrayLike<number>): this {
    const at = this.#slot(values.length * 4);
    for (let i = 0; i < values.length; i++) this.#view.setInt32(at + 4 * i, values[i], true);
    return this;
  }

  /** Number of parameters packed so far. */
  get count(): number {
    return this.#offsets.length;
  }

  /** Raw bytes of parameter `i` (tests use this to check the packing). */
  slotBytes(i: number, size: number): Uint8Array {
    return new Uint8Array(this.#bytes, this.#offsets[i], size);
  }

  /** Each parameter's size in bytes (the host build of the kernels checks them against the declarations). */
  sizes(): Uint32Array {
    return this.#sizes.subarray(0, this.#offsets.length);
  }

  /** The `void** kernelParams` array (valid until the next reset; cuLaunchKernel copies the values). */
  pointers(): Uint8Array {
    const base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(new Uint8Array(this.#bytes))) as bigint;
    for (let i = 0; i < this.#offsets.length; i++) this.#ptrs[i] = base + BigInt(this.#offsets[i]);
    return new Uint8Array(this.#ptrs.buffer, 0, this.#offsets.length * 8);
  }
}

/**
 * A native BLAS (OpenBLAS) for the wasm backend's matrix products, through `Deno.dlopen`.
 *
 * XNNPACK inside tfjs-backend-wasm runs one thread at 10-30 GFLOP/s; OpenBLAS's `cblas_sgemm` runs
 * the same products at ~90 GFLOP/s on one core of these machines and uses every core. The operands
 * stay where they are: FFI takes views of the wasm heap, so nothing is copied. When no OpenBLAS is
 * installed (Debian: `libopenblas0-pthread`), rtdlab keeps XNNPACK and says so in the backend line.
 *
 * Environment:
 * - `RTDLAB_BLAS`: `off` keeps XNNPACK; a path loads that library (it must export `cblas_sgemm`).
 * - `RTDLAB_BLAS_THREADS`: OpenBLAS threads (default: all cores). Tasks that run one process per core
 *   (demo, compare) give each child one thread.
 * - `RTDLAB_BLAS_CORETYPE`: the OpenBLAS kernels to use (an `OPENBLAS_CORETYPE` name), or `auto` for
 *   OpenBLAS's own choice. By default rtdlab picks them from the CPU's features ({@link pinnedCoreType}),
 *   so that one seed gives the same run on every machine that can run the same kernels.
 *
 * @module
 */

/** The loaded library: a row-major sgemm on Float32Array views, and its thread count. */
export interface Blas {
  /** Library file that was loaded. */
  path: string;
  /** OpenBLAS's config string (version, core type), or "" for another BLAS. */
  version: string;
  /** Threads the library uses. */
  threads: number;
  /**
   * C = alpha·op(A)·op(B) + beta·C, row-major, with op(X) = Xᵀ when transX. A is M×K after op,
   * B is K×N after op; C is M×N with leading dimension N.
   */
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    beta?: number,
  ): void;
}

const CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112;

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
} as const;

const OPENBLAS_SYMBOLS = {
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
} as const;

/** Library names tried in order when RTDLAB_BLAS names none (OpenBLAS only: reference BLAS is slower). */
export const BLAS_CANDIDATES: readonly string[] = [
  "libopenblas.so.0",
  "libopenblas.so",
  "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
  "libopenblas.dylib",
  "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
  "/usr/local/opt/openblas/lib/libopenblas.dylib",
];

let loaded: Blas | null | undefined;
let why = "";

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: defaults
  }
}

function tryOpen(path: string): Blas | null {
  try {
    return openBlas(path);
  } catch (e) {
    why = (e as Error).message;
    return null;
  }
}

/** AVX-512 features OpenBLAS's Cooperlake kernels may use (Zen 4 and later, Cooper Lake, Sapphire Rapids). */
const COOPERLAKE_FLAGS = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "avx512_bf16"];

/**
 * The OpenBLAS kernels rtdlab asks for on a CPU with these `/proc/cpuinfo` flags, or null to leave the
 * choice to OpenBLAS. OpenBLAS otherwise picks its kernels by CPU model (or by the environment's
 * `OPENBLAS_CORETYPE`), and each kind sums a product in its own order, so one seed trained another run
 * on another machine (the demo's ES discriminator: AUC 0.911 with Cooperlake's kernels, 0.918 with
 * Haswell's, 0.909 with SkylakeX's). Cooperlake's where the CPU runs them (the machines the notebooks'
 * readings were written on chose them), else Haswell's where it has AVX2 and FMA.
 */
export function pinnedCoreType(cpuFlags: ReadonlySet<string>): string | null {
  if (COOPERLAKE_FLAGS.every((f) => cpuFlags.has(f))) return "Cooperlake";
  if (cpuFlags.has("avx2") && cpuFlags.has("fma")) return "Haswell";
  return null;
}

/** This CPU's feature flags (Linux's /proc/cpuinfo), or null where they cannot be read. */
function cpuFlags(): Set<string> | null {
  try {
    const line = Deno.readTextFileSync("/proc/cpuinfo").split("\n").find((l) => l.startsWith("flags"));
    return line ? new Set(line.split(":")[1].trim().split(/\s+/)) : null;
  } catch {
    return null;
  }
}

/**
 * Sets `OPENBLAS_CORETYPE` for OpenBLAS to read when it loads (RTDLAB_BLAS_CORETYPE, or
 * {@link pinnedCoreType}; `auto` leaves the environment as it is). Child processes inherit it.
 */
function pinCoreType(): void {
  const asked = env("RTDLAB_BLAS_CORETYPE");
  if (asked === "auto") return;
  const flags = asked ? null : cpuFlags();
  const core = asked ?? (flags ? pinnedCoreType(flags) : null);
  if (!core) return;
  try {
    Deno.env.set("OPENBLAS_CORETYPE", core);
  } catch { /* no --allow-env: OpenBLAS's own choice */ }
}

/**
 * Opens the BLAS library at `path` (a file or a name the dynamic loader resolves). Throws an error
 * naming the path and the loader's reason when it is missing or lacks `cblas_sgemm`.
 */
export function openBlas(path: string): Blas {
  pinCoreType();
  let lib;
  try {
    lib = Deno.dlopen(path, { ...SYMBOLS, ...OPENBLAS_SYMBOLS });
  } catch (e) {
    throw new Error(`BLAS library ${path} could not be opened: ${(e as Error).message.split("\n")[0]}`);
  }
  const s = lib.symbols;
  const cores = navigator.hardwareConcurrency ?? 1;
  const wanted = Number(env("RTDLAB_BLAS_THREADS") ?? cores);
  if (!Number.isInteger(wanted) || wanted < 1) {
    throw new Error(`RTDLAB_BLAS_THREADS must be a positive integer, got "${env("RTDLAB_BLAS_THREADS")}"`);
  }
  s.openblas_set_num_threads?.(wanted);
  const threads = s.openblas_get_num_threads?.() ?? 1;
  const cfg = s.openblas_get_config?.();
  const version = cfg ? Deno.UnsafePointerView.getCString(cfg) : "";
  const sgemm = s.cblas_sgemm;
  return {
    path,
    version,
    threads,
    sgemm(transA, transB, m, n, k, a, b, c, beta = 0) {
      sgemm(
        CBLAS_ROW_MAJOR,
        transA ? CBLAS_TRANS : CBLAS_NO_TRANS,
        transB ? CBLAS_TRANS : CBLAS_NO_TRANS,
        m,
        n,
        k,
        1,
        a,
        transA ? m : k,
        b,
        transB ? k : n,
        beta,
        c,
        n,
      );
    },
  };
}

/**
 * The native BLAS, loaded on first call, or null (then `blasStatus()` says why). Honours
 * RTDLAB_BLAS and RTDLAB_BLAS_THREADS (see the module doc).
 */
export function loadBlas(): Blas | null {
  if (loaded !== undefined) return loaded;
  const choice = env("RTDLAB_BLAS");
  if (choice === "off" || choice === "0") {
    why = "RTDLAB_BLAS=off";
    return (loaded = null);
  }
  if (choice) {
    try {
      return (loaded = openBlas(choice));
    } catch (e) {
      throw new Error(`RTDLAB_BLAS=${choice}: ${(e as Error).message}`);
    }
  }
  for (const path of BLAS_CANDIDATES) {
    loaded = tryOpen(path);
    if (loaded != null) return loaded;
  }
  why = "no OpenBLAS found (Debian: apt-get install libopenblas0-pthread; or set RTDLAB_BLAS=/path/lib.so)";
  return (loaded = null);
}

/** One line for the backend description: which BLAS runs the matmuls, or why none does. */
export function blasStatus(): string {
  const blas = loadBlas();
  if (blas == null) return `matmuls on XNNPACK (${why})`;
  const name = blas.version.split(" ").slice(0, 2).join(" ") || blas.path;
  // OpenBLAS's config string names the kernels it runs just before MAX_THREADS.
  const core = blas.version.match(/ (\w+) MAX_THREADS/)?.[1];
  return `matmuls on ${name}${core ? `, ${core} kernels` : ""} (${blas.threads} thread${
    blas.threads === 1 ? "" : "s"
  })`;
}

/**
 * Environment for `processes` child processes sharing this machine: each gets an equal share of the
 * cores for its BLAS threads (unless RTDLAB_BLAS_THREADS is set), so they do not oversubscribe.
 */
export function blasEnvFor(processes: number): Record<string, string> {
  const set = env("RTDLAB_BLAS_THREADS");
  const cores = navigator.hardwareConcurrency ?? 1;
  return { RTDLAB_BLAS_THREADS: set ?? String(Math.max(1, Math.floor(cores / Math.max(1, processes)))) };
}

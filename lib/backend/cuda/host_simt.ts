/**
 * kernels.cu itself, run on the host: {@link hostSimtCuda} builds host_simt.cpp (which includes
 * kernels.cu, every CUDA thread a fiber) with the host's C++ compiler and returns a
 * {@link CudaRuntime} whose launches run that code. Memory and copies are the emulator's
 * (emulator.ts), sgemm is OpenBLAS's where installed (lib/backend/blas.ts); only the kernels differ. tests/cuda_test.ts runs its suites on it as "cuda_simt":
 * the CUDA C checked against the cpu backend without a GPU (what it cannot check: host_simt.cpp's
 * header).
 *
 * The library is built once per source version into `$RTDLAB_CACHE/simt` (default
 * `.cache/rtdlab/simt`); `$CXX` picks the compiler (default c++, then g++, then clang++).
 *
 * @module
 */
import { type CudaRuntime, env, type ParamBlock } from "./driver.ts";
import { emulatedCuda } from "./emulator.ts";
import { PTX_ENTRIES } from "./backend.ts";
import { loadBlas } from "../blas.ts";

const here = new URL(".", import.meta.url).pathname;

const symbols = {
  rtdlab_simt_launch: {
    parameters: ["buffer", "i32", "i32", "i32", "buffer", "buffer", "i32"],
    result: "i32",
  },
  rtdlab_simt_error: { parameters: [], result: "pointer" },
  rtdlab_simt_alloc: { parameters: ["usize"], result: "pointer" },
  rtdlab_simt_free: { parameters: ["pointer", "usize"], result: "void" },
} as const;

/** The first C++ compiler that runs: $CXX, c++, g++, clang++; null when there is none. */
export function hostCompiler(): string | null {
  const forced = env("CXX");
  for (const cxx of forced ? [forced] : ["c++", "g++", "clang++"]) {
    try {
      const r = new Deno.Command(cxx, { args: ["--version"], stdout: "piped", stderr: "null" }).outputSync();
      if (r.success) return cxx;
    } catch {
      // not installed: try the next
    }
  }
  return null;
}

/** Why the host build cannot be made here (no C++ compiler, or no kernels.cu beside this module, as in a bundle), or null. */
export function hostSimtUnavailable(): string | null {
  for (const f of ["host_simt.cpp", "kernels.cu"]) {
    try {
      Deno.statSync(here + f);
    } catch {
      return `host_simt: ${f} is not at ${here}`;
    }
  }
  return hostCompiler() == null ? "host_simt: no C++ compiler (set CXX, or apt-get install g++)" : null;
}

async function sha256(parts: string[]): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("\0")));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Builds (or finds, when its sources are unchanged) the host library of kernels.cu and returns its
 * path. Throws with the compiler's messages when the build fails.
 */
export async function buildHostSimt(cxx = hostCompiler()): Promise<string> {
  if (!cxx) throw new Error("host_simt: no C++ compiler (set CXX, or apt-get install g++)");
  const sources = ["host_simt.cpp", "kernels.cu"].map((f) => Deno.readTextFileSync(here + f));
  const version = new TextDecoder().decode(
    new Deno.Command(cxx, { args: ["--version"], stdout: "piped" }).outputSync().stdout,
  );
  const table = PTX_ENTRIES.map((e) => `KERNEL(${e})`).join("\n") + "\n";
  const key = (await sha256([...sources, table, version])).slice(0, 16);
  const dir = `${env("RTDLAB_CACHE") ?? ".cache/rtdlab"}/simt`;
  const lib = `${dir}/kernels-${key}.so`;
  try {
    Deno.statSync(lib);
    return lib;
  } catch {
    // not built yet
  }
  Deno.mkdirSync(dir, { recursive: true });
  const work = Deno.makeTempDirSync({ dir, prefix: "build-" });
  try {
    Deno.writeTextFileSync(`${work}/kernel_table.inc`, table);
    const args = [
      "-std=c++17",
      "-O1",
      "-g",
      "-fPIC",
      "-shared",
      "-ffp-contract=off", // as the PTX build: each float operation rounds on its own
      `-I${here}`,
      `-I${work}`,
      "-o",
      `${work}/kernels.so`,
      `${here}host_simt.cpp`,
    ];
    const r = new Deno.Command(cxx, { args, stdout: "piped", stderr: "piped" }).outputSync();
    if (!r.success) {
      const msg = new TextDecoder().decode(r.stderr).split("\n").slice(0, 40).join("\n");
      throw new Error(`host_simt: ${cxx} could not build host_simt.cpp:\n${msg}`);
    }
    Deno.renameSync(`${work}/kernels.so`, lib); // atomic: a half-written library is never found
  } finally {
    Deno.removeSync(work, { recursive: true });
  }
  return lib;
}

/** Options of {@link hostSimtCuda}. */
export interface HostSimtOptions {
  /**
   * Run every launch on at most this many blocks. The kernels are grid-stride loops, correct for any
   * grid; a small cap makes each block take several turns, which the backend's grids (a block per row,
   * up to 65,535) only do on huge tensors. Default: the backend's grid.
   */
  maxGrid?: number;
  /**
   * Run each launch's blocks in decreasing order (default: increasing). Blocks never run at once
   * here, so this is how a block that depends on another block of its launch shows up: in one of
   * the two orders it reads what the other has not written yet, or the result's bits change.
   */
  descendingBlocks?: boolean;
}

/**
 * A CudaRuntime whose kernels are kernels.cu compiled for the host (see the module doc). A kernel
 * that faults, diverges at a barrier or a shuffle, or is launched with the wrong parameters throws.
 */
export async function hostSimtCuda(options: HostSimtOptions = {}): Promise<CudaRuntime> {
  const maxGrid = options.maxGrid ?? Infinity;
  const lib = Deno.dlopen(await buildHostSimt(), symbols);
  const names = new Map<string, Uint8Array>();
  const cString = (s: string) => {
    let b = names.get(s);
    if (!b) names.set(s, b = new TextEncoder().encode(s + "\0"));
    return b;
  };
  // cuBLAS's stand-in: OpenBLAS where installed (what the wasm backend uses), else the emulator's loop.
  const blas = loadBlas();
  return emulatedCuda({
    sgemm: blas ? blas.sgemm : undefined,
    name: `kernels.cu on the host (host_simt${options.maxGrid ? `, at most ${options.maxGrid} blocks` : ""}${
      options.descendingBlocks ? ", blocks in decreasing order" : ""
    })`,
    // 32 blocks per launch at most: grid-stride loops take several turns on test-sized tensors.
    multiprocessors: 1,
    alloc(bytes) {
      const p = lib.symbols.rtdlab_simt_alloc(BigInt(bytes));
      if (p === null) throw new Error(`host_simt: out of memory allocating ${bytes} bytes`);
      return {
        ptr: BigInt(Deno.UnsafePointer.value(p)),
        buffer: Deno.UnsafePointerView.getArrayBuffer(p, bytes),
      };
    },
    free(ptr, bytes) {
      lib.symbols.rtdlab_simt_free(Deno.UnsafePointer.create(ptr), BigInt(bytes));
    },
    launch(entry: string, grid: number, block: number, params: ParamBlock) {
      grid = Math.min(grid, maxGrid);
      const sizes = params.sizes();
      const rc = lib.symbols.rtdlab_simt_launch(
        cString(entry),
        grid,
        block,
        options.descendingBlocks ? 1 : 0,
        params.pointers(),
        new Uint8Array(sizes.buffer, sizes.byteOffset, sizes.byteLength),
        sizes.length,
      );
      if (rc !== 0) {
        const msg = Deno.UnsafePointerView.getCString(lib.symbols.rtdlab_simt_error()!);
        throw new Error(`host_simt: ${msg} (grid ${grid} × ${block} threads)`);
      }
    },
  });
}

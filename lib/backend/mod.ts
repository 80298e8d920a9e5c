/**
 * Choose and start the tfjs backend.
 *
 * ```ts
 * import { initBackend } from "./lib/backend/mod.ts";
 * const { name, info } = await initBackend("wasm"); // or "cpu", "webgpu", "tensorflow", "cuda"
 * ```
 *
 * Backend packages are imported lazily, so importing this module loads none of them (webgpu in
 * particular; "cuda" opens no library until it is asked for). Importing it does register tfjs-core's
 * gradients and chained ops (see tfjs_full.ts).
 *
 * @module
 */
import "./tfjs_full.ts";
import * as tf from "@tensorflow/tfjs-core";
import { registerWasmKernels } from "./wasm_kernels.ts";
import { activeBlas } from "./wasm_matmul.ts";
import { blasStatus, loadBlas } from "./blas.ts";
import { findTfjsNode } from "./tfjs_node.ts";
import { runtimeDirSync } from "./runtime_dir.ts";
import { guardWebgpu, maxTensorBytes } from "./webgpu_guards.ts";

export { stopGradient } from "./stop_gradient.ts";
export { registerWasmKernels, WASM_EXTRA_KERNELS } from "./wasm_kernels.ts";
export { findTfjsNode } from "./tfjs_node.ts";
export { type Blas, blasStatus, loadBlas } from "./blas.ts";
export { activeBlas, useBlas } from "./wasm_matmul.ts";
export { useFusedKernels } from "./fused_kernels.ts";
export { useHeapViews } from "./host_read.ts";

/** Backends rtdlab can start. */
export type BackendName = "wasm" | "cpu" | "webgpu" | "tensorflow" | "cuda";

/** All backend names, in order of preference on a machine without a GPU. */
export const BACKENDS: readonly BackendName[] = ["wasm", "cpu", "webgpu", "tensorflow", "cuda"];

/** What initBackend started: the tfjs backend name and a one-line description. */
export interface BackendInfo {
  /** The tfjs backend name ("cpu", "wasm", "webgpu", "cuda"). */
  name: string;
  /** One line for logs: engine, threads, BLAS kernels or device. */
  info: string;
}

let current: BackendInfo | null = null;

/**
 * Starts a tfjs backend: imports its package, enables prod mode, sets and awaits it, registers
 * rtdlab's extra kernels for it, and returns a one-line description.
 * Throws with a how-to-fix message when the backend cannot run here.
 */
export async function initBackend(name: BackendName = "wasm"): Promise<BackendInfo> {
  if (!BACKENDS.includes(name)) {
    throw new Error(`Unknown backend "${name}". Valid backends: ${BACKENDS.join(", ")}.`);
  }
  // Also silences tfjs's "install the node backend" banner (Deno counts as Node).
  tf.enableProdMode();
  const info = await STARTERS[name]();
  current = { name: tf.getBackend(), info };
  return current;
}

/** One line describing the active backend, e.g. "wasm: tfjs-backend-wasm 4.22.0, SIMD, 1 thread". */
export function describeBackend(): string {
  const active = tf.getBackend();
  if (active == null) return "no tfjs backend started (call initBackend)";
  if (current?.name === active) return `${active}: ${current.info}`;
  return `${active}: started outside initBackend`;
}

const STARTERS: Record<BackendName, () => Promise<string>> = {
  wasm: startWasm,
  cpu: startCpu,
  webgpu: startWebgpu,
  tensorflow: startTensorflow,
  cuda: startCuda,
};

async function activate(name: string, hint = ""): Promise<void> {
  // setBackend resolves false (and only warns) when the backend's factory throws.
  if (!(await tf.setBackend(name))) {
    throw new Error(`tfjs could not initialise the "${name}" backend.${hint ? " " + hint : ""}`);
  }
  await tf.ready();
}

async function startWasm(): Promise<string> {
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  registerWasmKernels();
  await activate("wasm", "It reads its .wasm binary from node_modules: run with --allow-read (or -A).");
  const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
  const threads = wasm.getThreadsCount();
  // tfjs turns wasm threads off whenever it detects Node, which includes Deno.
  return `tfjs-backend-wasm ${wasm.version_wasm}, ${simd ? "SIMD" : "no SIMD"}, ` +
    `${threads} thread${threads === 1 ? "" : "s"}; ${
      activeBlas() || !loadBlas() ? blasStatus() : "matmuls on XNNPACK"
    }`;
}

async function startCpu(): Promise<string> {
  const cpu = await import("@tensorflow/tfjs-backend-cpu");
  await activate("cpu");
  return `tfjs-backend-cpu ${cpu.version_cpu}, plain JS (reference; slow)`;
}

const WEBGPU_HOWTO = "Run Deno with --unstable-webgpu (e.g. `deno run -A --unstable-webgpu ...`). " +
  "Without a GPU, install Mesa's lavapipe Vulkan driver (Debian: mesa-vulkan-drivers) and set " +
  "XDG_RUNTIME_DIR to a mode-700 directory.";

/**
 * On Linux, WebGPU asks wgpu for Vulkan only unless `DENO_WEBGPU_BACKEND` says otherwise. wgpu also opens
 * its OpenGL backend through libglvnd's EGL, whose per-thread state is freed twice when a thread that
 * touched it exits while the process is exiting: a rare abort ("free(): invalid pointer") after all work
 * is done. Every adapter rtdlab uses on Linux (NVIDIA, AMD, Intel, lavapipe) is a Vulkan one.
 */
function preferVulkanOnLinux(): void {
  try {
    if (Deno.build.os === "linux" && Deno.env.get("DENO_WEBGPU_BACKEND") === undefined) {
      Deno.env.set("DENO_WEBGPU_BACKEND", "vulkan");
    }
    // Mesa prints "XDG_RUNTIME_DIR is invalid or not set" for every adapter it opens without one
    // (a login shell sets it; containers and CI often do not).
    if (Deno.build.os === "linux" && !Deno.env.get("XDG_RUNTIME_DIR")) {
      Deno.env.set("XDG_RUNTIME_DIR", runtimeDirSync());
    }
  } catch {
    // no --allow-env or --allow-write: wgpu's and Mesa's defaults
  }
}

/**
 * A WebGPU adapter, or null when there is none (no `navigator.gpu`, no driver, or an error). On Linux,
 * Vulkan only unless `DENO_WEBGPU_BACKEND` is set (wgpu's EGL backend can abort the process at exit).
 */
export async function requestWebgpuAdapter(options?: GPURequestAdapterOptions): Promise<GPUAdapter | null> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (gpu == null) return null;
  preferVulkanOnLinux();
  return await gpu.requestAdapter(options).catch(() => null);
}

/** The adapter's name as its driver gives it, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
export function adapterName(adapter: GPUAdapter): string {
  const { description, vendor, architecture, device } = adapter.info;
  return description || [vendor, architecture, device].filter((s) => s).join(" ") || "unknown";
}

/** Whether the adapter renders in software on the CPU (Mesa's lavapipe/llvmpipe, SwiftShader). */
export function isSoftwareAdapter(adapter: GPUAdapter): boolean {
  return /llvmpipe|lavapipe|swiftshader/i.test(adapterName(adapter));
}

async function startWebgpu(): Promise<string> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (gpu == null) {
    throw new Error(`WebGPU is not available: navigator.gpu is undefined. ${WEBGPU_HOWTO}`);
  }
  // Ask for the adapter ourselves: tfjs's factory crashes on a null adapter with a TypeError.
  preferVulkanOnLinux();
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (adapter == null) {
    throw new Error(
      "WebGPU found no adapter (no Vulkan/Metal/D3D12 device). Install the GPU's driver, or on a " +
        `CPU-only machine Mesa's lavapipe. ${WEBGPU_HOWTO}`,
    );
  }
  await import("@tensorflow/tfjs-backend-webgpu");
  // The package registers "webgpu" at import time only if navigator.gpu existed then.
  if (tf.findBackendFactory("webgpu") == null) {
    throw new Error(`tfjs-backend-webgpu did not register itself. ${WEBGPU_HOWTO}`);
  }
  await activate("webgpu", WEBGPU_HOWTO);
  guardWebgpu(tf.backend());
  const maxMiB = Math.floor(maxTensorBytes(tf.backend()) / 2 ** 20);
  const what = adapterName(adapter);
  const software = isSoftwareAdapter(adapter) ? " (software renderer on the CPU)" : "";
  // The webgpu package exports no version of its own; the import map pins it to tfjs-core's.
  return `tfjs-backend-webgpu ${tf.version_core}, adapter ${what}${software}, max tensor ${maxMiB} MiB`;
}

const TFJS_NODE_HOWTO = "@tensorflow/tfjs-node(-gpu) is not installed: its install script downloads " +
  "libtensorflow from the internet, which machines without internet access cannot do (and tfjs-node-gpu needs " +
  "CUDA 11.2 + cuDNN 8.1). " +
  "Where it is possible, add it to deno.json's imports and run " +
  "`deno install --allow-scripts=npm:@tensorflow/tfjs-node`, then run with --allow-ffi. " +
  'Otherwise use "wasm" (fastest on CPU) or "webgpu" (GPU through Vulkan, or lavapipe on CPU).';

async function startTensorflow(): Promise<string> {
  const { found, permissionDenied } = findTfjsNode();
  if (found == null) {
    const perm = permissionDenied ? " (some places could not be searched: run with --allow-read)" : "";
    throw new Error(
      `The "tensorflow" backend needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node ` +
        `with its native binding (lib/napi-v*/tfjs_binding.node), and neither was found${perm}. ` +
        TFJS_NODE_HOWTO,
    );
  }
  // Non-literal specifier: keeps Deno's module graph (and deno.lock) from ever fetching it.
  const specifier = `npm:${found.pkg}@${found.version}`;
  try {
    await import(specifier);
  } catch (e) {
    throw new Error(
      `Found ${found.binding} but importing ${specifier} failed: ${(e as Error).message}. ` +
        "Native addons need --allow-ffi (or -A).",
    );
  }
  await activate("tensorflow", "Check that libtensorflow (and for -gpu, CUDA/cuDNN) load on this machine.");
  return `${found.pkg} ${found.version} (TensorFlow C library)`;
}

// CUDA driver API + cuBLAS through Deno.dlopen (lib/backend/cuda/). openCuda() throws one clear
// error naming what is missing ("no NVIDIA driver: …", "cuInit failed: …", "cuBLAS not found …").
// RTDLAB_CUDA_EMULATE=1 runs the same backend on the host emulator instead (no GPU, slow): every task's
// cuda path can then be checked end to end on a machine without one. RTDLAB_CUDA_EMULATE=simt runs
// kernels.cu itself on the host (host_simt.ts; needs a C++ compiler).
async function startCuda(): Promise<string> {
  const { openCuda } = await import("./cuda/driver.ts");
  const { CudaBackend, registerCudaBackend } = await import("./cuda/backend.ts");
  if (tf.findBackendFactory("cuda") == null) {
    const emulate = Deno.env.get("RTDLAB_CUDA_EMULATE");
    if (emulate !== undefined && emulate !== "" && emulate !== "0" && emulate !== "1" && emulate !== "simt") {
      throw new Error(
        `RTDLAB_CUDA_EMULATE must be 1 (TypeScript kernels) or simt (kernels.cu on the host), not "${emulate}"`,
      );
    }
    registerCudaBackend(
      emulate === "1"
        ? (await import("./cuda/emulator.ts")).emulatedCuda()
        : emulate === "simt"
        ? await (await import("./cuda/host_simt.ts")).hostSimtCuda()
        : openCuda(),
    );
  }
  await activate("cuda");
  const b = tf.backend() as InstanceType<typeof CudaBackend>;
  const i = b.rt.info;
  const cuda = `${Math.floor(i.driverVersion / 1000)}.${(i.driverVersion % 1000) / 10}`;
  const gib = Math.round(i.totalBytes / 2 ** 30);
  const ptx = b.ptxFile.split("/").pop();
  if (i.driverPath === "(emulated)") {
    return `rtdlab cuda without a GPU: ${i.name} (RTDLAB_CUDA_EMULATE; slow)`;
  }
  return `rtdlab cuda on ${i.name} (sm_${i.computeCapability.join("")}, ${gib} GiB), driver CUDA ${cuda}, ` +
    `cuBLAS ${i.cublasVersion}${i.tf32 ? " TF32" : ""}, ${ptx}`;
}

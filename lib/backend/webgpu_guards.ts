/**
 * Makes two silent or cryptic tfjs-backend-webgpu failures under Deno loud and explained.
 *
 * - Synchronous reads (dataSync, arraySync, bufferSync) of GPU-resident tensors go through
 *   OffscreenCanvas, which Deno lacks: they fail with "Cannot read properties of null (reading
 *   'clearRect')". Async reads (`await t.data()`, `await t.array()`) work.
 * - A tensor larger than the adapter's maxStorageBufferBindingSize (128 MiB on lavapipe, e.g.
 *   logits [2048, 30522]) makes wgpu reject the bind group; the error only reaches an
 *   "uncapturederror" event and the op silently returns zeros.
 *
 * @module
 */

interface WebgpuBackendLike {
  device: GPUDevice;
  readSync(dataId: object): unknown;
}

const guarded = new WeakSet<object>();

/** Largest tensor (bytes) the adapter can bind to one shader. */
export function maxTensorBytes(backend: object): number {
  return (backend as WebgpuBackendLike).device.limits.maxStorageBufferBindingSize;
}

/** Installs rtdlab's error reporting on a tfjs WebGPU backend (once per backend). */
export function guardWebgpu(backend: object): void {
  if (guarded.has(backend)) return;
  guarded.add(backend);
  const b = backend as WebgpuBackendLike;
  const readSync = b.readSync.bind(b);
  b.readSync = (dataId: object) => {
    try {
      return readSync(dataId);
    } catch (e) {
      throw new Error(
        "webgpu under Deno cannot read GPU tensors synchronously (dataSync/arraySync/bufferSync need " +
          `OffscreenCanvas): use await tensor.data() or await tensor.array(). Cause: ${(e as Error).message}`,
      );
    }
  };
  const mib = Math.floor(maxTensorBytes(b) / 2 ** 20);
  b.device.addEventListener("uncapturederror", (event) => {
    const message = (event as GPUUncapturedErrorEvent).error.message;
    console.error(
      `rtdlab webgpu: ${message}\n  The op's result is invalid (zeros). This adapter binds at most ` +
        `${mib} MiB per tensor; split the work (e.g. fewer rows per step) or use wasm.`,
    );
  });
}

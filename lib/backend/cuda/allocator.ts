/**
 * A caching device-memory allocator: tensors come and go every op, cuMemAlloc/cuMemFree do not.
 *
 * Requests are rounded up to a size class (256 B minimum, then four classes per power of two, so at
 * most 25 % is wasted); a freed block goes onto its class's free list and the next request of that
 * class takes it back without a driver call. When the device runs out of memory the cache is
 * released and the allocation retried once. All work runs on one stream, so a block freed while a
 * queued kernel still reads it can be handed out again at once: the next user's kernels queue
 * behind that one.
 *
 * Written against {@link DeviceMemory} so tests can run it with a fake device.
 *
 * @module
 */

/** What the allocator needs from a device: raw allocation and release of `bytes`. */
export interface DeviceMemory {
  alloc(bytes: number): bigint;
  free(ptr: bigint): void;
  /** Waits for the work queued on the device: a cached block may still be in use by a queued kernel. */
  synchronize?(): void;
}

/** A block handed out by the allocator. */
export interface Block {
  /** Device address (0n for a zero-byte request). */
  readonly ptr: bigint;
  /** Bytes reserved (the size class). */
  readonly size: number;
  /** Bytes asked for. */
  readonly requested: number;
}

/** Counters of a {@link CachingAllocator}. */
export interface AllocatorStats {
  /** Bytes (size classes) of the blocks handed out and not yet freed. */
  bytesInUse: number;
  /** Bytes held in the free lists. */
  bytesCached: number;
  /** Bytes the device has given this allocator (in use + cached). */
  bytesReserved: number;
  /** Highest bytesInUse seen. */
  peakBytesInUse: number;
  /** Blocks handed out and not yet freed. */
  blocksInUse: number;
  /** Blocks in the free lists. */
  blocksCached: number;
  /** alloc() calls (non-zero sizes). */
  requests: number;
  /** Requests served from a free list. */
  cacheHits: number;
  /** Device allocations made (cuMemAlloc calls). */
  deviceAllocs: number;
  /** Device frees made (cuMemFree calls). */
  deviceFrees: number;
}

/** Options of a {@link CachingAllocator}. */
export interface AllocatorOptions {
  /** Free lists never hold more than this many bytes; a block freed beyond it goes back (default ∞). */
  maxCachedBytes?: number;
}

/** Smallest block: 256 bytes, cuMemAlloc's own alignment. */
export const MIN_BLOCK = 256;

/** The size class of a `bytes` request: 256 B minimum, then 4 classes per power of two. */
export function sizeClass(bytes: number): number {
  if (!Number.isFinite(bytes) || bytes < 0) throw new Error(`invalid allocation size ${bytes}`);
  if (bytes <= MIN_BLOCK) return MIN_BLOCK;
  const pow = 2 ** Math.floor(Math.log2(bytes));
  const step = pow / 4;
  return Math.ceil(bytes / step) * step;
}

const EMPTY: Block = Object.freeze({ ptr: 0n, size: 0, requested: 0 });

/** The caching allocator (see the module doc). */
export class CachingAllocator {
  readonly #device: DeviceMemory;
  readonly #maxCached: number;
  readonly #free = new Map<number, bigint[]>();
  readonly #live = new Map<bigint, Block>();
  #stats: AllocatorStats = {
    bytesInUse: 0,
    bytesCached: 0,
    bytesReserved: 0,
    peakBytesInUse: 0,
    blocksInUse: 0,
    blocksCached: 0,
    requests: 0,
    cacheHits: 0,
    deviceAllocs: 0,
    deviceFrees: 0,
  };

  constructor(device: DeviceMemory, options: AllocatorOptions = {}) {
    this.#device = device;
    this.#maxCached = options.maxCachedBytes ?? Infinity;
  }

  /** A block of at least `bytes` bytes, from the free lists when one of its class is there. */
  alloc(bytes: number): Block {
    const size = sizeClass(bytes);
    if (bytes === 0) return EMPTY;
    const s = this.#stats;
    s.requests++;
    let ptr = this.#free.get(size)?.pop();
    if (ptr !== undefined) {
      s.cacheHits++;
      s.bytesCached -= size;
      s.blocksCached--;
    } else {
      ptr = this.#deviceAlloc(size);
    }
    const block: Block = { ptr, size, requested: bytes };
    this.#live.set(ptr, block);
    s.bytesInUse += size;
    s.blocksInUse++;
    s.peakBytesInUse = Math.max(s.peakBytesInUse, s.bytesInUse);
    return block;
  }

  /** Returns a block to its free list (or to the device beyond maxCachedBytes). */
  free(block: Block): void {
    if (block.size === 0) return;
    const live = this.#live.get(block.ptr);
    if (live !== block) throw new Error(`free of a block this allocator did not hand out (or freed twice)`);
    this.#live.delete(block.ptr);
    const s = this.#stats;
    s.bytesInUse -= block.size;
    s.blocksInUse--;
    if (s.bytesCached + block.size > this.#maxCached) {
      this.#device.synchronize?.();
      this.#deviceFree(block.ptr, block.size);
      return;
    }
    let list = this.#free.get(block.size);
    if (!list) this.#free.set(block.size, list = []);
    list.push(block.ptr);
    s.bytesCached += block.size;
    s.blocksCached++;
  }

  /** Gives every cached block back to the device, once the work queued on it is done. */
  emptyCache(): void {
    // A cached block may still be read or written by a queued kernel, and cuMemFree may not wait.
    if (this.#free.size > 0) this.#device.synchronize?.();
    for (const [size, list] of this.#free) {
      for (const ptr of list) this.#deviceFree(ptr, size);
    }
    this.#free.clear();
    this.#stats.bytesCached = 0;
    this.#stats.blocksCached = 0;
  }

  /** Frees everything, in use or cached (the backend's dispose). */
  releaseAll(): void {
    for (const block of [...this.#live.values()]) this.free(block);
    this.emptyCache();
  }

  /** Starts peakBytesInUse afresh from the bytes in use now (the start of a measurement). */
  resetPeak(): void {
    this.#stats.peakBytesInUse = this.#stats.bytesInUse;
  }

  /** A copy of the counters. */
  stats(): AllocatorStats {
    return { ...this.#stats };
  }

  #deviceAlloc(size: number): bigint {
    let ptr: bigint;
    try {
      ptr = this.#device.alloc(size);
    } catch (e) {
      if (this.#stats.blocksCached === 0) throw e;
      // Out of memory (or fragmented): release the cache and try once more.
      this.emptyCache();
      ptr = this.#device.alloc(size);
    }
    this.#stats.deviceAllocs++;
    this.#stats.bytesReserved += size;
    return ptr;
  }

  #deviceFree(ptr: bigint, size: number): void {
    this.#device.free(ptr);
    this.#stats.deviceFrees++;
    this.#stats.bytesReserved -= size;
  }
}

// kernels.cu compiled for the host CPU, each CUDA thread a fiber: the CUDA C itself, run without a GPU.
//
// lib/backend/cuda/host_simt.ts builds this file with the host's C++ compiler (g++ or clang++) into a
// shared library and drives it through Deno FFI as a CudaRuntime ("cuda_simt" in tests/cuda_test.ts).
// The TypeScript emulator (emulator.ts) re-implements every kernel by hand; this runs the real source,
// so it checks what only a GPU checked before: index math, grid-stride loops, warp shuffles, shared
// memory, barriers, the launch shapes the backend picks, and that each launch packs as many parameters,
// of the sizes, as the kernel declares.
//
// Execution model (one OS thread, deterministic): the blocks of a grid run one after another, in
// increasing order or, when the caller asks, decreasing (a block that reads what a later block of
// the same launch writes sees it in one order and not the other, and a sum whose bits depend on the
// order its blocks add in changes). The threads of a block are fibers. Between barriers the warps run
// one after another, each as far as it can go: its lanes run in turn until each finishes, waits at a
// barrier, or waits at a shuffle (which resolves when all 32 lanes are there).
// - __syncthreads(): a fiber stops there; when every live thread of the block waits at the same
//   barrier, all go on. Threads waiting at different barriers, or at a barrier while others of the
//   block wait at a shuffle, are an error (divergent barrier).
// - __shfl_*_sync(0xffffffff, ...): a warp-wide exchange; all 32 lanes must arrive (a partial warp, or
//   a lane that exited or waits elsewhere, is an error: the full mask promises all 32).
// - Because a warp runs until it waits at a barrier, a missing barrier shows up: one warp runs ahead and
//   reads shared memory the others have not written yet, or overwrites what they have not read (warps
//   and lanes run in increasing order in one block and phase, decreasing in the next, so both
//   directions of a race are exercised).
// - atomicAdd is a plain read-modify-write (one OS thread runs everything).
// Not modelled: the memory model across blocks (blocks never run at once: only the two orders), timing, and numerics
// of CUDA's math library (the host libm stands in; both are within a few ulp of the cpu backend).

#include <cmath>
#include <csetjmp>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

// Switching fibers: on x86-64 a hand-written switch (saves the callee-saved registers on the old stack
// and swaps stack pointers, ~10 ns); elsewhere ucontext's swapcontext, which also makes a system call
// for the signal mask at every switch (~50x slower, fine for small tests).
#if defined(__x86_64__)
extern "C" void rtdlab_simt_switch(void** saveSp, void* loadSp);
asm(R"(
  .text
  .globl rtdlab_simt_switch
  .hidden rtdlab_simt_switch
  .type rtdlab_simt_switch, @function
rtdlab_simt_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size rtdlab_simt_switch, .-rtdlab_simt_switch
)");
struct Context {
  void* sp = nullptr;
};
inline void switchTo(Context& from, Context& to) { rtdlab_simt_switch(&from.sp, to.sp); }
// A new fiber's stack, as if it had switched away just before calling start(): six zero registers, then
// start's address for `ret`, then a zero return address for start (which never returns).
inline void prepare(Context& c, char* stack, size_t bytes, void (*start)()) {
  void** top = (void**)(((uintptr_t)(stack + bytes)) & ~(uintptr_t)15);
  *--top = nullptr;
  *--top = (void*)start;
  for (int i = 0; i < 6; i++) *--top = nullptr;
  c.sp = top;
}
#else
struct Context {
  ucontext_t uc;
};
inline void switchTo(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
inline void prepare(Context& c, char* stack, size_t bytes, void (*start)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = bytes;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, start, 0);
}
#endif

namespace simt {

enum State { READY, AT_BARRIER, AT_SHUFFLE, DONE };

struct Fiber {
  Context ctx;
  State state;
  int line;        // the barrier's source line, while AT_BARRIER
  unsigned gen;    // shuffles done so far (selects one of two exchange buffers)
  char* stack;
};

constexpr int MAX_BLOCK = 1024;
constexpr size_t STACK_BYTES = 128 * 1024;

Fiber fibers[MAX_BLOCK];
Context scheduler;
int cur = 0, blockIdx = 0, blockDim = 0, gridDim = 0;
uint64_t exchange[2][MAX_BLOCK];  // each lane's shuffle operand, two buffers by shuffle parity
void (*body)(void*) = nullptr;    // the kernel call the fibers run
void* bodyArg = nullptr;
const char* kernelName = "";
std::string error;

inline void yield(State s) {
  fibers[cur].state = s;
  switchTo(fibers[cur].ctx, scheduler);
}

inline void syncthreads(int line) {
  fibers[cur].line = line;
  yield(AT_BARRIER);
}

// Lane `srcLane` of this warp's operands (own value where srcLane is outside the warp, as CUDA).
inline uint32_t shuffle(uint32_t v, int srcLane) {
  Fiber& f = fibers[cur];
  unsigned g = f.gen++ & 1;
  exchange[g][cur] = v;
  yield(AT_SHUFFLE);
  return srcLane >= 0 && srcLane < 32 ? (uint32_t)exchange[g][(cur & ~31) + srcLane] : v;
}
inline int shfl_down_i32(int v, int d) { return (int)shuffle((uint32_t)v, (cur & 31) + d); }
inline int shfl_idx_i32(int v, int lane) { return (int)shuffle((uint32_t)v, lane); }
inline float shfl_down_f32(float v, int d) {
  uint32_t u;
  memcpy(&u, &v, 4);
  u = shuffle(u, (cur & 31) + d);
  memcpy(&v, &u, 4);
  return v;
}
template <typename T>
inline T atomic_add(T* p, T v) {
  T old = *p;
  *p = (T)((std::make_unsigned_t<T>)old + (std::make_unsigned_t<T>)v);  // wraps, as the device's
  return old;
}
template <>
inline float atomic_add<float>(float* p, float v) {
  float old = *p;
  *p = old + v;
  return old;
}
template <typename T>
inline T atomic_max(T* p, T v) {
  T old = *p;
  if (v > old) *p = v;
  return old;
}

// Each fiber's first and only frame: runs the kernel, then hands back to the scheduler for good.
void entry() {
  body(bodyArg);
  yield(DONE);
  __builtin_unreachable();
}

void fail(const char* what) {
  if (error.empty()) error = std::string("kernel ") + kernelName + ": " + what;
}

// Runs one block to completion; false (with `error` set) on a divergent barrier or shuffle.
bool runBlock() {
  for (int t = 0; t < blockDim; t++) {
    Fiber& f = fibers[t];
    if (!f.stack) {
      // A guard page below each stack turns an overflow into a fault instead of silent corruption.
      void* m = mmap(nullptr, STACK_BYTES + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) return fail("cannot map a fiber stack"), false;
      mprotect(m, 4096, PROT_NONE);
      f.stack = (char*)m + 4096;
    }
    prepare(f.ctx, f.stack, STACK_BYTES, entry);
    f.state = READY;
    f.gen = 0;
  }
  for (int phase = 0;; phase++) {
    // Between two barriers each warp runs on its own as far as it can (its shuffles resolved among its
    // lanes), one warp after another: in increasing order of warp and lane in one block and phase and
    // decreasing in the next. So a missing barrier lets one warp read shared memory that another (either
    // way round) has not written yet, or has already overwritten in its next loop turn.
    bool reverse = (phase + blockIdx) & 1;
    int warps = (blockDim + 31) / 32;
    for (int k = 0; k < warps; k++) {
      int w = reverse ? warps - 1 - k : k, lanes = w * 32 + 32 <= blockDim ? 32 : blockDim - w * 32;
      for (;;) {
        int waiting = 0;
        for (int j = 0; j < lanes; j++) {
          int t = w * 32 + (reverse ? lanes - 1 - j : j);
          if (fibers[t].state == READY) {
            cur = t;
            switchTo(scheduler, fibers[t].ctx);
          }
          waiting += fibers[t].state == AT_SHUFFLE;
        }
        if (waiting == 0) break;  // the warp is done or waits at a barrier
        if (waiting < 32) {
          char msg[200];
          snprintf(msg, sizeof msg,
                   "block %d: %d of warp %d's lanes wait at a full-mask shuffle while the others %s", blockIdx,
                   waiting, w, lanes < 32 ? "do not exist (block size not a multiple of 32)"
                                          : "have exited or wait at __syncthreads (divergent shuffle)");
          return fail(msg), false;
        }
        for (int j = 0; j < 32; j++) fibers[w * 32 + j].state = READY;
      }
    }
    // Every thread is now done or waits at a barrier: the same one, or the block has diverged.
    int line = -1;
    for (int t = 0; t < blockDim; t++) {
      if (fibers[t].state == DONE) continue;
      if (line < 0) line = fibers[t].line;
      if (fibers[t].line != line) {
        char msg[200];
        snprintf(msg, sizeof msg, "block %d: threads wait at different __syncthreads (lines %d and %d)", blockIdx,
                 line, fibers[t].line);
        return fail(msg), false;
      }
    }
    if (line < 0) return true;  // all done
    for (int t = 0; t < blockDim; t++) {
      if (fibers[t].state == AT_BARRIER) fibers[t].state = READY;
    }
  }
}

// A fault inside a kernel (an address outside every allocation: host_simt.ts puts guard pages around
// each one) ends the launch with an error instead of the process.
sigjmp_buf faultJump;
volatile sig_atomic_t inLaunch = 0;
volatile uintptr_t faultAddress = 0;
struct sigaction previousSegv, previousBus;
char altStack[64 * 1024];

void onFault(int sig, siginfo_t* info, void* ctx) {
  if (!inLaunch) {  // not ours: hand it to whoever had the signal before
    struct sigaction& prev = sig == SIGSEGV ? previousSegv : previousBus;
    if (prev.sa_flags & SA_SIGINFO) return prev.sa_sigaction(sig, info, ctx);
    signal(sig, prev.sa_handler == SIG_IGN ? SIG_DFL : prev.sa_handler);
    raise(sig);
    return;
  }
  faultAddress = (uintptr_t)info->si_addr;
  siglongjmp(faultJump, 1);
}

// Runs `call(arg)` over the grid, its blocks in decreasing order when `descending`; 0, or 1 with `error` set.
int runGrid(const char* name, int grid, int block, int descending, void (*call)(void*), void* arg) {
  kernelName = name;
  error.clear();
  if (block < 1 || block > MAX_BLOCK) return fail("block size outside 1..1024"), 1;
  if (grid < 1) return fail("empty grid"), 1;
  body = call;
  bodyArg = arg;
  blockDim = block;
  gridDim = grid;
  // The fault handler runs on a stack of its own (the process's own alternate stack is put back after).
  stack_t ss = {}, previousStack = {};
  ss.ss_sp = altStack;
  ss.ss_size = sizeof altStack;
  sigaltstack(&ss, &previousStack);
  struct sigaction sa = {};
  sa.sa_sigaction = onFault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &previousSegv);
  sigaction(SIGBUS, &sa, &previousBus);
  int rc = 0;
  if (sigsetjmp(faultJump, 1) == 0) {
    inLaunch = 1;
    for (int b = 0; b < grid; b++) {
      blockIdx = descending ? grid - 1 - b : b;
      if (!runBlock()) {
        rc = 1;
        break;
      }
    }
  } else {
    char msg[200];
    snprintf(msg, sizeof msg, "block %d thread %d: invalid address 0x%lx (outside every allocation)", blockIdx,
             cur, (unsigned long)faultAddress);
    fail(msg);
    rc = 1;
  }
  inLaunch = 0;
  sigaction(SIGSEGV, &previousSegv, nullptr);
  sigaction(SIGBUS, &previousBus, nullptr);
  sigaltstack(&previousStack, nullptr);
  return rc;
}

}  // namespace simt

// ---- kernels.cu, with CUDA's names mapped onto the fibers above -------------------------------------
#define RTDLAB_HOST_SIMT 1
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static
#define THREAD_X simt::cur
#define BLOCK_X simt::blockIdx
#define BLOCK_DIM simt::blockDim
#define GRID_DIM simt::gridDim
#define SHFL_DOWN_F32(v, d) simt::shfl_down_f32(v, d)
#define SHFL_DOWN_I32(v, d) simt::shfl_down_i32(v, d)
#define SHFL_IDX_I32(v, l) simt::shfl_idx_i32(v, l)
#define ATOMIC_ADD_F32(p, v) simt::atomic_add<float>(p, v)
#define ATOMIC_ADD_I32(p, v) simt::atomic_add<int>(p, v)
#define ATOMIC_ADD_I64(p, v) simt::atomic_add<long long>(p, v)
#define ATOMIC_MAX_U32(p, v) simt::atomic_max<unsigned>(p, v)
#define D2LL_RN(v) std::llrint(v)  // the default rounding mode: to nearest, ties to even
#define SYNCTHREADS() simt::syncthreads(__LINE__)
#define __syncthreads() simt::syncthreads(__LINE__)
#define __fmul_rn(a, b) ((float)(a) * (float)(b))
#define __fadd_rn(a, b) ((float)(a) + (float)(b))
#define __fsub_rn(a, b) ((float)(a) - (float)(b))
#define __fdiv_rn(a, b) ((float)(a) / (float)(b))
using std::isnan;
static inline int min(int a, int b) { return a < b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }

#include "kernels.cu"

// ---- launching by name with a cuLaunchKernel-style parameter array -----------------------------------

namespace simt {

struct ParamError {
  int index;
  unsigned got, want;
};

template <typename T>
T param(void** params, const unsigned* sizes, int i) {
  if (sizes[i] != sizeof(T)) throw ParamError{i, sizes[i], (unsigned)sizeof(T)};
  T v;
  memcpy((void*)&v, params[i], sizeof(T));
  return v;
}

template <typename... A>
struct Call {
  void (*kernel)(A...);
  std::tuple<std::decay_t<A>...> args;
  static void run(void* self) {
    Call* c = (Call*)self;
    std::apply(c->kernel, c->args);
  }
};

template <typename... A, size_t... I>
int launchWith(const char* name, void (*kernel)(A...), int grid, int block, int descending, void** params,
               const unsigned* sizes, int count, std::index_sequence<I...>) {
  kernelName = name;
  error.clear();
  if (count != (int)sizeof...(A)) {
    char msg[120];
    snprintf(msg, sizeof msg, "launched with %d parameters, declared with %d", count, (int)sizeof...(A));
    return fail(msg), 1;
  }
  try {
    // A braced list evaluates left to right: parameter i comes from params[i].
    Call<A...> call{kernel, {param<std::decay_t<A>>(params, sizes, (int)I)...}};
    return runGrid(name, grid, block, descending, &Call<A...>::run, &call);
  } catch (const ParamError& e) {
    char msg[120];
    snprintf(msg, sizeof msg, "parameter %d packed as %u bytes, declared as %u", e.index, e.got, e.want);
    return fail(msg), 1;
  }
}

template <typename... A>
int launch(const char* name, void (*kernel)(A...), int grid, int block, int descending, void** params,
           const unsigned* sizes, int count) {
  return launchWith(name, kernel, grid, block, descending, params, sizes, count, std::index_sequence_for<A...>{});
}

}  // namespace simt

// host_simt.ts writes kernel_table.inc: one KERNEL(name) line per entry of backend.ts's PTX_ENTRIES.
#define KERNEL(name) \
  if (strcmp(entry, #name) == 0) return simt::launch(#name, name, grid, block, descending, params, sizes, count);

extern "C" {

/**
 * Launches kernel `entry` over `grid` blocks of `block` threads, run in decreasing block order when
 * `descending`; 0, else see rtdlab_simt_error.
 */
int rtdlab_simt_launch(const char* entry, int grid, int block, int descending, void** params, const unsigned* sizes,
                       int count) {
#include "kernel_table.inc"
  simt::kernelName = entry;
  simt::error = std::string("no kernel named ") + entry + " in kernels.cu";
  return 1;
}

/** The last launch's error message ("" after a good launch). */
const char* rtdlab_simt_error() { return simt::error.c_str(); }

/**
 * Device memory: `bytes` rounded up to 4, placed to end exactly where an inaccessible page starts
 * (one below too), and filled with 0xff bytes (float NaN, int -1) as stale device memory would be.
 */
void* rtdlab_simt_alloc(size_t bytes) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), used = (bytes + 3) & ~(size_t)3;
  size_t span = (used + page - 1) / page * page;
  char* m = (char*)mmap(nullptr, span + 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  mprotect(m, page, PROT_NONE);
  mprotect(m + page + span, page, PROT_NONE);
  char* p = m + page + span - used;
  memset(p, 0xff, used);
  return p;
}

/** Frees what rtdlab_simt_alloc(bytes) returned. */
void rtdlab_simt_free(void* p, size_t bytes) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), used = (bytes + 3) & ~(size_t)3;
  size_t span = (used + page - 1) / page * page;
  munmap((char*)p + used - span - page, span + 2 * page);
}
}

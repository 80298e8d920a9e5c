// rtdlab's CUDA kernels for the "cuda" TensorFlow.js backend (lib/backend/cuda/backend.ts).
//
// Build: lib/backend/cuda/build_ptx.sh (nvcc, or clang with libdevice) writes kernels.sm_XX.ptx,
// which the backend loads with cuModuleLoadDataEx; the driver JIT-compiles PTX for newer GPUs.
//
// Conventions shared with backend.ts (keep them in step):
// - Every entry point is extern "C" (unmangled); element counts are int (the backend refuses
//   tensors of 2^31 elements or more).
// - 32-bit words: float32, int32 and bool (stored as int32 0/1) tensors all use 4 bytes per
//   element, so data-movement kernels (copy, gather, select, one-hot) move uint32 words.
// - Strided index math: struct Idx describes an iteration space of `rank` dims (row-major,
//   outermost first) and, for up to three operands, the element stride of each dim (0 broadcasts).
//   The backend collapses contiguous dims first, so rank is usually 1-3.
// - No contraction into FMA (build_ptx.sh: -ffp-contract=off / --fmad=false): each float operation
//   rounds as the cpu backend's does. sqrtf is correctly rounded.
// - Math: CUDA's math library (expf, erff, log1pf, ...; ≤ 2 ulp, see the CUDA C Programming Guide,
//   "Mathematical Functions", single precision), from libdevice when built with clang. No fast-math.
// - Sums accumulate in double (as the tfjs cpu backend, which sums in JS numbers), so results agree
//   to ~1 ulp of float32 rather than drifting with the length of the reduction.

#if defined(RTDLAB_HOST_SIMT)
// The host build (host_simt.cpp) maps these names onto its fibers before including this file.
#elif defined(__clang__) && !defined(__NVCC__) && !defined(__CUDA_ARCH_COMPAT_INCLUDED)
// clang -nocudainc: no CUDA headers. Declare what the kernels use: attributes, thread indices,
// warp shuffles and atomics as clang's NVPTX builtins, and math from libdevice (__nv_*).
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __forceinline__ __attribute__((always_inline)) inline
#define __restrict__ __restrict
#define THREAD_X (int)__nvvm_read_ptx_sreg_tid_x()
#define BLOCK_X (int)__nvvm_read_ptx_sreg_ctaid_x()
#define BLOCK_DIM (int)__nvvm_read_ptx_sreg_ntid_x()
#define GRID_DIM (int)__nvvm_read_ptx_sreg_nctaid_x()
#define SHFL_DOWN_F32(v, d) __nvvm_shfl_sync_down_f32(0xffffffffu, v, d, 0x1f)
#define SHFL_DOWN_I32(v, d) __nvvm_shfl_sync_down_i32(0xffffffffu, v, d, 0x1f)
#define SHFL_IDX_I32(v, l) __nvvm_shfl_sync_idx_i32(0xffffffffu, v, l, 0x1f)
#define ATOMIC_ADD_F32(p, v) __nvvm_atom_add_gen_f(p, v)
#define ATOMIC_ADD_I32(p, v) __nvvm_atom_add_gen_i(p, v)
#define ATOMIC_ADD_I64(p, v) __nvvm_atom_add_gen_ll(p, v)
#define ATOMIC_MAX_U32(p, v) __nvvm_atom_max_gen_ui(p, v)
#define D2LL_RN(v) __nvvm_d2ll_rn(v)
#define __shared__ __attribute__((shared))
extern "C" {
__device__ float __nv_expf(float);
__device__ float __nv_expm1f(float);
__device__ float __nv_logf(float);
__device__ float __nv_log1pf(float);
__device__ float __nv_fsqrt_rn(float);
__device__ float __nv_rsqrtf(float);
__device__ float __nv_erff(float);
__device__ float __nv_tanhf(float);
__device__ float __nv_powf(float, float);
__device__ float __nv_floorf(float);
__device__ float __nv_ceilf(float);
__device__ float __nv_rintf(float);
__device__ float __nv_fabsf(float);
__device__ float __nv_sinf(float);
__device__ float __nv_cosf(float);
__device__ float __nv_fmodf(float, float);
__device__ int __nv_isnanf(float);
__device__ float __nv_fminf(float, float);
__device__ float __nv_fmaxf(float, float);
__device__ int __nv_min(int, int);
__device__ double __nv_exp(double);
__device__ float __nv_fmul_rn(float, float);
__device__ float __nv_fadd_rn(float, float);
__device__ float __nv_fsub_rn(float, float);
__device__ float __nv_fdiv_rn(float, float);
}
#define fminf __nv_fminf
#define fmaxf __nv_fmaxf
#define min __nv_min
#define expf __nv_expf
#define expm1f __nv_expm1f
#define logf __nv_logf
#define log1pf __nv_log1pf
#define sqrtf __nv_fsqrt_rn  // correctly rounded, as nvcc's default -prec-sqrt=true (__nv_sqrtf is approximate under clang)
#define rsqrtf __nv_rsqrtf
#define erff __nv_erff
#define tanhf __nv_tanhf
#define powf __nv_powf
#define floorf __nv_floorf
#define ceilf __nv_ceilf
#define rintf __nv_rintf
#define fabsf __nv_fabsf
#define sinf __nv_sinf
#define cosf __nv_cosf
#define fmodf __nv_fmodf
#define isnan(x) __nv_isnanf(x)
#define exp __nv_exp
#define __fmul_rn __nv_fmul_rn
#define __fadd_rn __nv_fadd_rn
#define __fsub_rn __nv_fsub_rn
#define __fdiv_rn __nv_fdiv_rn
#define SYNCTHREADS() __syncthreads()
#else
#define THREAD_X (int)threadIdx.x
#define BLOCK_X (int)blockIdx.x
#define BLOCK_DIM (int)blockDim.x
#define GRID_DIM (int)gridDim.x
#define SHFL_DOWN_F32(v, d) __shfl_down_sync(0xffffffffu, v, d)
#define SHFL_DOWN_I32(v, d) __shfl_down_sync(0xffffffffu, v, d)
#define SHFL_IDX_I32(v, l) __shfl_sync(0xffffffffu, v, l)
#define ATOMIC_ADD_F32(p, v) atomicAdd(p, v)
#define ATOMIC_ADD_I32(p, v) atomicAdd(p, v)
#define ATOMIC_ADD_I64(p, v) atomicAdd((unsigned long long*)(p), (unsigned long long)(v))
#define ATOMIC_MAX_U32(p, v) atomicMax(p, v)
#define D2LL_RN(v) __double2ll_rn(v)
#define SYNCTHREADS() __syncthreads()
#endif

#define MAXR 8
#define NAN_F (__int_as_float_(0x7fc00000))

struct Idx {
  int rank;
  int dim[MAXR];
  int s[3][MAXR];
};

__device__ __forceinline__ float __int_as_float_(unsigned u) {
  union { unsigned u; float f; } v;
  v.u = u;
  return v.f;
}

// Lane 0's value, in every lane of the warp.
__device__ __forceinline__ double shfl_bcast_f64(double v) {
  union { double f; int i[2]; } u;
  u.f = v;
  u.i[0] = SHFL_IDX_I32(u.i[0], 0);
  u.i[1] = SHFL_IDX_I32(u.i[1], 0);
  return u.f;
}

__device__ __forceinline__ int grid_start() { return BLOCK_X * BLOCK_DIM + THREAD_X; }
__device__ __forceinline__ int grid_stride() { return GRID_DIM * BLOCK_DIM; }

// Offsets of linear index i (row-major over ix.dim) into operands 0..k-1.
template <int K>
__device__ __forceinline__ void offsets(const Idx& ix, int i, int* off) {
  for (int k = 0; k < K; k++) off[k] = 0;
  unsigned rem = (unsigned)i;
  for (int d = ix.rank - 1; d >= 0; d--) {
    unsigned n = (unsigned)ix.dim[d];
    unsigned c = rem % n;
    rem /= n;
    for (int k = 0; k < K; k++) off[k] += (int)c * ix.s[k][d];
  }
}

__device__ __forceinline__ double shfl_down_f64(double v, int d) {
  union { double f; int i[2]; } u;
  u.f = v;
  u.i[0] = SHFL_DOWN_I32(u.i[0], d);
  u.i[1] = SHFL_DOWN_I32(u.i[1], d);
  return u.f;
}

// ---------------------------------------------------------------------------------------------
// Elementwise unary (contiguous). Op codes: see UNARY_OPS in backend.ts.

__device__ __forceinline__ float erf_f(float x) { return erff(x); }

__device__ float unary_op(int op, float x, float alpha) {
  switch (op) {
    case 0: return -x;                                     // Neg
    case 1: return fabsf(x);                               // Abs
    case 2: return expf(x);                                // Exp
    case 3: return logf(x);                                // Log
    case 4: return log1pf(x);                              // Log1p
    case 5: return sqrtf(x);                               // Sqrt
    case 6: return 1.0f / sqrtf(x);                        // Rsqrt (correctly rounded sqrt, then divide)
    case 7: return x * x;                                  // Square
    case 8: return isnan(x) ? x : (x < 0.0f ? 0.0f : x);   // Relu
    case 9: return isnan(x) ? x : (x > 0.0f ? 1.0f : alpha);  // Step
    case 10: return erf_f(x);                              // Erf
    case 11: return 1.0f / (1.0f + expf(-x));              // Sigmoid
    case 12: return tanhf(x);                              // Tanh
    case 13: return 1.0f / x;                              // Reciprocal
    case 14: return expm1f(x);                             // Expm1
    case 15: return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);  // Sign (NaN → 0, as tfjs-backend-cpu)
    case 16: return floorf(x);                             // Floor
    case 17: return ceilf(x);                              // Ceil
    case 18: return rintf(x);                              // Round (half to even, as tfjs)
    case 19: return isnan(x) ? x : (x < 0.0f ? alpha * x : x);  // LeakyRelu
    case 20: return isnan(x) ? x : fminf(fmaxf(x, 0.0f), 6.0f);  // Relu6
    case 21: return sinf(x);                               // Sin
    case 22: return cosf(x);                               // Cos
    case 23: return x > 0.0f ? x : expm1f(x);              // Elu
    case 24: return x > 20.0f ? x : (x < -20.0f ? expf(x) : log1pf(expf(x)));  // Softplus
    case 25: return isnan(x) ? 1.0f : 0.0f;                // IsNan (float 0/1; backend casts)
    default: return NAN_F;
  }
}

extern "C" __global__ void unary_f32(int op, int n, const float* __restrict__ x, float* __restrict__ y,
                                     float alpha) {
  for (int i = grid_start(); i < n; i += grid_stride()) y[i] = unary_op(op, x[i], alpha);
}

// Int32 unary: 0 Neg, 1 Abs, 2 Square, 3 Sign.
extern "C" __global__ void unary_i32(int op, int n, const int* __restrict__ x, int* __restrict__ y) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    int v = x[i];
    int r;
    switch (op) {
      case 0: r = -v; break;
      case 1: r = v < 0 ? -v : v; break;
      case 2: r = v * v; break;
      default: r = (v > 0) - (v < 0); break;
    }
    y[i] = r;
  }
}

// Casts: 0 float32→int32 (truncate; NaN→0, as Int32Array), 1 int32→float32,
// 2 float32→bool (x != 0, NaN → true), 3 int32→bool.
extern "C" __global__ void cast32(int mode, int n, const unsigned* __restrict__ x, unsigned* __restrict__ y) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    unsigned w = x[i];
    union { unsigned u; float f; int s; } a, b;
    a.u = w;
    switch (mode) {
      case 0: {
        float f = a.f;
        // Int32Array semantics (ToInt32: modulo 2^32) for in-range values; saturate beyond.
        b.s = isnan(f) ? 0 : (f >= 2147483647.0f ? 2147483647 : (f <= -2147483648.0f ? (-2147483647 - 1) : (int)f));
        break;
      }
      case 1: b.f = (float)a.s; break;
      case 2: b.s = a.f != 0.0f ? 1 : 0; break;
      default: b.s = a.s != 0 ? 1 : 0; break;
    }
    y[i] = b.u;
  }
}

// ---------------------------------------------------------------------------------------------
// Elementwise binary with broadcasting: operand 0 = a, 1 = b (strides in ix.s[0], ix.s[1]); the
// output is contiguous over ix.dim. Op codes: see BINARY_OPS in backend.ts.

__device__ float binary_op(int op, float a, float b) {
  switch (op) {
    case 0: return a + b;                          // Add
    case 1: return a - b;                          // Sub
    case 2: return a * b;                          // Multiply
    case 3: return a / b;                          // RealDiv
    case 4: return (isnan(a) || isnan(b)) ? NAN_F : fmaxf(a, b);  // Maximum (NaN-propagating)
    case 5: return (isnan(a) || isnan(b)) ? NAN_F : fminf(a, b);  // Minimum
    case 6: return powf(a, b);                     // Pow
    case 7: { float d = a - b; return d * d; }     // SquaredDifference
    case 8: return floorf(a / b);                  // FloorDiv
    case 9: {                                      // Mod (sign of the divisor, as tfjs)
      float r = fmodf(a, b);
      return (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) ? r + b : r;
    }
    case 10: return a < 0.0f ? a * b : a;          // Prelu (b = alpha)
    default: return NAN_F;
  }
}

extern "C" __global__ void binary_f32(int op, int n, Idx ix, const float* __restrict__ a,
                                      const float* __restrict__ b, float* __restrict__ y) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    int off[2];
    offsets<2>(ix, i, off);
    y[i] = binary_op(op, a[off[0]], b[off[1]]);
  }
}

// Int32: 0 Add, 1 Sub, 2 Multiply, 4 Maximum, 5 Minimum, 8 FloorDiv, 9 Mod (codes as float).
extern "C" __global__ void binary_i32(int op, int n, Idx ix, const int* __restrict__ a,
                                      const int* __restrict__ b, int* __restrict__ y) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    int off[2];
    offsets<2>(ix, i, off);
    int u = a[off[0]], v = b[off[1]];
    int r;
    switch (op) {
      case 0: r = u + v; break;
      case 1: r = u - v; break;
      case 2: r = u * v; break;
      case 4: r = u > v ? u : v; break;
      case 5: r = u < v ? u : v; break;
      case 8: {
        if (v == 0) { r = 0; break; }
        int q = u / v;
        r = (q * v != u && ((u < 0) != (v < 0))) ? q - 1 : q;
        break;
      }
      case 9: {
        if (v == 0) { r = 0; break; }
        int m = u % v;
        r = (m != 0 && ((m < 0) != (v < 0))) ? m + v : m;
        break;
      }
      default: r = 0; break;
    }
    y[i] = r;
  }
}

// Comparisons and logic, output bool (int32 0/1): 0 Equal, 1 NotEqual, 2 Less, 3 LessEqual,
// 4 Greater, 5 GreaterEqual, 6 LogicalAnd, 7 LogicalOr. isInt: operands are int32 (or bool).
extern "C" __global__ void compare32(int op, int isInt, int n, Idx ix, const unsigned* __restrict__ a,
                                     const unsigned* __restrict__ b, int* __restrict__ y) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    int off[2];
    offsets<2>(ix, i, off);
    union { unsigned u; float f; int s; } p, q;
    p.u = a[off[0]];
    q.u = b[off[1]];
    bool r;
    if (isInt) {
      int u = p.s, v = q.s;
      switch (op) {
        case 0: r = u == v; break;
        case 1: r = u != v; break;
        case 2: r = u < v; break;
        case 3: r = u <= v; break;
        case 4: r = u > v; break;
        case 5: r = u >= v; break;
        case 6: r = u != 0 && v != 0; break;
        default: r = u != 0 || v != 0; break;
      }
    } else {
      float u = p.f, v = q.f;
      switch (op) {
        case 0: r = u == v; break;
        case 1: r = u != v; break;
        case 2: r = u < v; break;
        case 3: r = u <= v; break;
        case 4: r = u > v; break;
        case 5: r = u >= v; break;
        case 6: r = u != 0.0f && v != 0.0f; break;
        default: r = u != 0.0f || v != 0.0f; break;
      }
    }
    y[i] = r ? 1 : 0;
  }
}

// Select (tf.where): y = cond ? a : b, with broadcasting: operand 0 = cond, 1 = a, 2 = b.
extern "C" __global__ void select32(int n, Idx ix, const int* __restrict__ cond, const unsigned* __restrict__ a,
                                    const unsigned* __restrict__ b, unsigned* __restrict__ y) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    int off[3];
    offsets<3>(ix, i, off);
    y[i] = cond[off[0]] ? a[off[1]] : b[off[2]];
  }
}

// ---------------------------------------------------------------------------------------------
// Data movement. y[outOffset + Σ c_d·s1_d] = x[inOffset + Σ c_d·s0_d] over the iteration space
// ix.dim: transpose (permuted input strides), slice (input offset), concat / pad (output region),
// tile and broadcastTo (zero input strides).

extern "C" __global__ void strided_copy32(int n, Idx ix, const unsigned* __restrict__ x, int inOffset,
                                          unsigned* __restrict__ y, int outOffset) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    int off[2];
    offsets<2>(ix, i, off);
    y[outOffset + off[1]] = x[inOffset + off[0]];
  }
}

// GatherV2 (batchDims 0): x viewed as [outer, dim, inner], y as [outer, nIdx, inner].
// Indices out of [0, dim) give 0 (tfjs cpu throws; the backend cannot check without a read).
extern "C" __global__ void gather32(int n, int nIdx, int dim, int inner, const unsigned* __restrict__ x,
                                    const int* __restrict__ idx, unsigned* __restrict__ y) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    int in = i % inner;
    int j = (i / inner) % nIdx;
    int o = i / (inner * nIdx);
    int k = idx[j];
    y[i] = (k >= 0 && k < dim) ? x[((long long)o * dim + k) * inner + in] : 0u;
  }
}

// UnsortedSegmentSum of float32: y[seg[r], :] += x[r, :] for x viewed as [rows, inner]; segment ids
// outside [0, numSegments) are dropped, as in TensorFlow. It is the gradient of every gather (the
// embeddings, DeBERTa's relative positions), so it must not depend on the order in which blocks run:
// float atomics would add each segment's rows in a different order on every run, and two runs of one
// seed would drift apart. Instead every addend becomes a 64-bit fixed-point integer, x·2^k with one
// power of two k for the whole call (from max |x|, so no sum of `rows` addends can overflow), integer
// atomics add them exactly (any order gives the same sum), and a last pass turns each sum back into
// float32. The only rounding is each addend's to a multiple of 2^-k (≤ max|x|·rows·2^-62) and the
// final one to float32. Non-finite addends go to y through float atomics (an Inf or NaN sum does not
// depend on the order). Three launches: prepare, fixed, finish; *maxBits is zeroed by the backend.

__device__ __forceinline__ unsigned float_bits(float f) {
  union { float f; unsigned u; } v;
  v.f = f;
  return v.u;
}

// The k of the fixed-point scale 2^k: with max|x| < 2^e and rows ≤ 2^r, rows·max|x|·2^k < 2^61.
__device__ __forceinline__ int fixed_exponent(unsigned maxBits, int rows) {
  if (maxBits == 0) return 0;
  int e = (int)((maxBits >> 23) & 0xff) - 126;  // a float with biased exponent E is < 2^(E-126)
  int r = 0;
  while (r < 31 && (1 << r) < rows) r++;
  return 61 - r - e;
}

// 2^k as a double (|k| < 1000 here: k lies in [-98, 187]).
__device__ __forceinline__ double pow2(int k) {
  union { long long i; double d; } v;
  v.i = (long long)(1023 + k) << 52;
  return v.d;
}

// acc = 0 and y = 0 (outN elements each); *maxBits = max over the finite |x| as float bits (for
// non-negative floats the bit patterns order as the values do).
extern "C" __global__ void segment_sum_prepare_f32(int n, int outN, const float* __restrict__ x,
                                                   unsigned* __restrict__ maxBits, long long* __restrict__ acc,
                                                   float* __restrict__ y) {
  for (int i = grid_start(); i < outN; i += grid_stride()) {
    acc[i] = 0;
    y[i] = 0.0f;
  }
  unsigned m = 0;
  for (int i = grid_start(); i < n; i += grid_stride()) {
    unsigned b = float_bits(x[i]) & 0x7fffffffu;
    if (b < 0x7f800000u && b > m) m = b;  // finite only
  }
  for (int d = 16; d > 0; d >>= 1) {
    unsigned o = (unsigned)SHFL_DOWN_I32((int)m, d);
    if (o > m) m = o;
  }
  if ((THREAD_X & 31) == 0 && m != 0) ATOMIC_MAX_U32(maxBits, m);
}

// acc[seg[r], c] += round(x[r, c]·2^k) for finite x; y[seg[r], c] += x[r, c] (float) for the others.
extern "C" __global__ void segment_sum_fixed_f32(int n, int inner, int numSegments, const float* __restrict__ x,
                                                 const int* __restrict__ seg, const unsigned* __restrict__ maxBits,
                                                 long long* __restrict__ acc, float* __restrict__ y) {
  double scale = pow2(fixed_exponent(*maxBits, n / inner));
  for (int i = grid_start(); i < n; i += grid_stride()) {
    int s = seg[i / inner];
    if (s < 0 || s >= numSegments) continue;
    long long o = (long long)s * inner + i % inner;
    float v = x[i];
    if ((float_bits(v) & 0x7fffffffu) < 0x7f800000u) ATOMIC_ADD_I64(&acc[o], D2LL_RN((double)v * scale));
    else ATOMIC_ADD_F32(&y[o], v);
  }
}

// y = acc·2^-k (+ y, where non-finite addends went).
extern "C" __global__ void segment_sum_finish_f32(int outN, int rows, const unsigned* __restrict__ maxBits,
                                                  const long long* __restrict__ acc, float* __restrict__ y) {
  double unscale = pow2(-fixed_exponent(*maxBits, rows));
  for (int i = grid_start(); i < outN; i += grid_stride()) y[i] = (float)((double)acc[i] * unscale) + y[i];
}

extern "C" __global__ void unsorted_segment_sum_i32(int n, int inner, int numSegments, const int* __restrict__ x,
                                                    const int* __restrict__ seg, int* __restrict__ y) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    int s = seg[i / inner];
    if (s >= 0 && s < numSegments) ATOMIC_ADD_I32(&y[(long long)s * inner + i % inner], x[i]);
  }
}

// OneHot: y[r, c] = (idx[r] == c) ? on : off, as 32-bit words (int32 or float32 output).
extern "C" __global__ void one_hot32(int n, int depth, const int* __restrict__ idx, unsigned on, unsigned off,
                                     unsigned* __restrict__ y) {
  for (int i = grid_start(); i < n; i += grid_stride()) y[i] = idx[i / depth] == i % depth ? on : off;
}

// ---------------------------------------------------------------------------------------------
// Reductions over the last axis of x viewed as [rows, cols] (the backend transposes other axes
// there first). One warp per row; ops: 0 sum (times `scale`: mean passes 1/count), 1 max, 2 min,
// 3 prod. NaN propagates through max/min as in tfjs-backend-cpu.

__device__ __forceinline__ double reduce_init(int op) {
  return op == 0 ? 0.0 : (op == 1 ? -__builtin_huge_val() : (op == 2 ? __builtin_huge_val() : 1.0));
}

__device__ __forceinline__ double reduce_combine(int op, double a, double b) {
  switch (op) {
    case 0: return a + b;
    case 1: return (a != a || b != b) ? (a != a ? a : b) : (a > b ? a : b);
    case 2: return (a != a || b != b) ? (a != a ? a : b) : (a < b ? a : b);
    default: return a * b;
  }
}

__device__ __forceinline__ double warp_reduce(int op, double v) {
  for (int d = 16; d > 0; d >>= 1) v = reduce_combine(op, v, shfl_down_f64(v, d));
  return v;
}

extern "C" __global__ void reduce_rows_f32(int op, int rows, int cols, float scale, const float* __restrict__ x,
                                           float* __restrict__ y) {
  int lane = THREAD_X & 31;
  int warpsPerBlock = BLOCK_DIM >> 5;
  for (int r = BLOCK_X * warpsPerBlock + (THREAD_X >> 5); r < rows; r += GRID_DIM * warpsPerBlock) {
    const float* row = x + (long long)r * cols;
    double acc = reduce_init(op);
    for (int c = lane; c < cols; c += 32) acc = reduce_combine(op, acc, (double)row[c]);
    acc = warp_reduce(op, acc);
    if (lane == 0) y[r] = (float)(op == 0 ? acc * (double)scale : acc);
  }
}

// First pass of a long-row reduction: block (p) of row r reduces cols [p·chunk, (p+1)·chunk) into
// partial[r·parts + p] (as double, so the second pass loses nothing). Blocks of 256 threads.
extern "C" __global__ void reduce_partial_f32(int op, int rows, int cols, int parts, int chunk,
                                              const float* __restrict__ x, double* __restrict__ partial) {
  __shared__ volatile double warpAcc[32];  // volatile: see sample_rows_f32
  int lane = THREAD_X & 31, warp = THREAD_X >> 5, nWarps = BLOCK_DIM >> 5;
  for (int b = BLOCK_X; b < rows * parts; b += GRID_DIM) {
    int r = b / parts, p = b % parts;
    const float* row = x + (long long)r * cols;
    int lo = p * chunk, hi = min(cols, lo + chunk);
    double acc = reduce_init(op);
    for (int c = lo + THREAD_X; c < hi; c += BLOCK_DIM) acc = reduce_combine(op, acc, (double)row[c]);
    acc = warp_reduce(op, acc);
    if (lane == 0) warpAcc[warp] = acc;
    __syncthreads();
    if (warp == 0) {
      acc = lane < nWarps ? warpAcc[lane] : reduce_init(op);
      acc = warp_reduce(op, acc);
      if (lane == 0) partial[b] = acc;
    }
    __syncthreads();
  }
}

// Second pass: y[r] = reduce(partial[r, :parts]) (× scale for sums). One warp per row.
extern "C" __global__ void reduce_final_f32(int op, int rows, int parts, float scale, const double* __restrict__ partial,
                                            float* __restrict__ y) {
  int lane = THREAD_X & 31;
  int warpsPerBlock = BLOCK_DIM >> 5;
  for (int r = BLOCK_X * warpsPerBlock + (THREAD_X >> 5); r < rows; r += GRID_DIM * warpsPerBlock) {
    double acc = reduce_init(op);
    for (int c = lane; c < parts; c += 32) acc = reduce_combine(op, acc, partial[(long long)r * parts + c]);
    acc = warp_reduce(op, acc);
    if (lane == 0) y[r] = (float)(op == 0 ? acc * (double)scale : acc);
  }
}

// Softmax of one row by one warp: max, Σ exp(x - max) in double, then exp(x - max) / Σ (as
// tfjs-backend-cpu). Every lane gets the row's max and Σ back (the cross-entropy's logSumExp).
__device__ __forceinline__ void softmax_row_warp(const float* __restrict__ row, float* __restrict__ out, int cols,
                                                 int lane, float* maxOut, double* sumOut) {
  double m = -__builtin_huge_val();
  for (int c = lane; c < cols; c += 32) m = reduce_combine(1, m, (double)row[c]);
  m = shfl_bcast_f64(warp_reduce(1, m));
  float mf = (float)m;
  double s = 0.0;
  for (int c = lane; c < cols; c += 32) s += (double)expf(row[c] - mf);
  s = shfl_bcast_f64(warp_reduce(0, s));
  float inv = (float)(1.0 / s);
  for (int c = lane; c < cols; c += 32) out[c] = expf(row[c] - mf) * inv;
  *maxOut = mf;
  *sumOut = s;
}

// Softmax over the last axis of [rows, cols]: one warp per row.
extern "C" __global__ void softmax_rows_f32(int rows, int cols, const float* __restrict__ x, float* __restrict__ y) {
  int lane = THREAD_X & 31;
  int warpsPerBlock = BLOCK_DIM >> 5;
  for (int r = BLOCK_X * warpsPerBlock + (THREAD_X >> 5); r < rows; r += GRID_DIM * warpsPerBlock) {
    float mf;
    double s;
    softmax_row_warp(x + (long long)r * cols, y + (long long)r * cols, cols, lane, &mf, &s);
  }
}

// The generator's softmax cross-entropy over [rows, cols] logits, one warp per row (the fused kernel
// RtdlabSoftmaxCrossEntropy): probs as softmax_rows_f32 writes them, and loss[r] = (max + log Σ) −
// x[r, targets[r]] (logSumExp minus the target's logit; NaN for a target outside [0, cols)).
extern "C" __global__ void softmax_xent_f32(int rows, int cols, const float* __restrict__ x,
                                            const int* __restrict__ targets, float* __restrict__ loss,
                                            float* __restrict__ probs) {
  int lane = THREAD_X & 31;
  int warpsPerBlock = BLOCK_DIM >> 5;
  for (int r = BLOCK_X * warpsPerBlock + (THREAD_X >> 5); r < rows; r += GRID_DIM * warpsPerBlock) {
    const float* row = x + (long long)r * cols;
    float mf;
    double s;
    softmax_row_warp(row, probs + (long long)r * cols, cols, lane, &mf, &s);
    if (lane == 0) {
      int t = targets[r];
      float picked = (t >= 0 && t < cols) ? row[t] : NAN_F;
      loss[r] = (mf + logf((float)s)) - picked;
    }
  }
}

// Its gradient: dx = (probs − oneHot(targets))·(dy[0] / rows), dy the loss's scalar gradient (read on
// the device: no host wait).
extern "C" __global__ void softmax_xent_grad_f32(int n, int cols, int rows, const float* __restrict__ probs,
                                                 const int* __restrict__ targets, const float* __restrict__ dy,
                                                 float* __restrict__ dx) {
  float scale = dy[0] / (float)rows;
  for (int i = grid_start(); i < n; i += grid_stride()) {
    int c = i % cols;
    float hot = targets[i / cols] == c ? 1.0f : 0.0f;
    dx[i] = (probs[i] - hot) * scale;
  }
}

// The "lowbias32" integer finaliser of dropout's counter-based hash (lib/backend/dropout_mask.ts).
__device__ __forceinline__ unsigned mix32(unsigned x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

// ---------------------------------------------------------------------------------------------
// Fused layers (contracts in lib/backend/fused_kernels.ts): exact GELU and LayerNorm, forward and
// backward, and the sum of squares of many tensors (the optimiser's global norm). Each is one
// launch where tfjs's ops take 5 to 20 (at ELECTRA-Small sizes the backend is host-bound, so
// launches set the speed). Every float operation is the one the unfused ops of lib/model/layers.ts
// perform, in their order, and sums run in double as reduce_rows_f32's do.

#define INV_SQRT2_F 0.70710678118654752f    // Math.SQRT1_2 as float32
#define INV_SQRT_2PI_F 0.39894228040143268f // 1/√(2π) as float32

// y = (v·0.5)·(erf(v/√2) + 1) with v = x, or v = x + bias[i % cols] (the FFN's dense bias, added here
// instead of in a kernel of its own).
extern "C" __global__ void gelu_f32(int n, int cols, const float* __restrict__ x, const float* __restrict__ bias,
                                    float* __restrict__ y) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    float xi = bias ? x[i] + bias[i % cols] : x[i];
    float cdf2 = erff(xi * INV_SQRT2_F) + 1.0f;
    y[i] = (xi * 0.5f) * cdf2;
  }
}

// dx = dy·(Φ(v) + x·φ(v)), as (erf(v/√2) + 1)·0.5 + v·(exp(v²·−0.5)·1/√(2π)), v as in gelu_f32
extern "C" __global__ void gelu_grad_f32(int n, int cols, const float* __restrict__ dy, const float* __restrict__ x,
                                         const float* __restrict__ bias, float* __restrict__ dx) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    float xi = bias ? x[i] + bias[i % cols] : x[i];
    float cdf2 = erff(xi * INV_SQRT2_F) + 1.0f;
    float pdf = expf((xi * xi) * -0.5f) * INV_SQRT_2PI_F;
    dx[i] = dy[i] * ((cdf2 * 0.5f) + (xi * pdf));
  }
}

// Dropout's multiplier for element i (dropout_mask_f32's: scale where kept, 0 where dropped).
__device__ __forceinline__ float drop_mult(int i, unsigned k0, unsigned k1, unsigned threshold, float scale) {
  unsigned hsh = mix32(mix32((unsigned)i ^ k0) + k1);
  return (hsh >> 8) >= threshold ? scale : 0.0f;
}

// Element i (column c) of a LayerNorm row's input: x, or with `h` a post-LN block's x + (h + hb)·mask
// (the residual plus the dropped-out sublayer output with its dense bias hb, when given; mask as
// dropout_mask_f32's when `drop`, else 1).
__device__ __forceinline__ float ln_input(const float* __restrict__ x, const float* __restrict__ h,
                                          const float* __restrict__ hb, int drop, long long i, int c, unsigned k0,
                                          unsigned k1, unsigned threshold, float scale) {
  if (!h) return x[i];
  float v = hb ? h[i] + hb[c] : h[i];
  return x[i] + (drop ? v * drop_mult((int)i, k0, k1, threshold, scale) : v);
}

// LayerNorm over the last axis of v [rows, cols] (v = ln_input), one warp per row: mean, v − mean,
// the mean of its squares, rstd = 1/√(var + eps), x̂ = (v − mean)·rstd, y = x̂·γ + β. Writes y, x̂ and
// rstd [rows] (the backward pass's inputs). v is recomputed per pass: cheaper than a buffer.
extern "C" __global__ void layer_norm_f32(int rows, int cols, float eps, float invCols, const float* __restrict__ x,
                                          const float* __restrict__ h, const float* __restrict__ hb, int drop,
                                          unsigned k0, unsigned k1, unsigned threshold, float scale,
                                          const float* __restrict__ gamma,
                                          const float* __restrict__ beta, float* __restrict__ y,
                                          float* __restrict__ xhat, float* __restrict__ rstd) {
  int lane = THREAD_X & 31;
  int warpsPerBlock = BLOCK_DIM >> 5;
  for (int r = BLOCK_X * warpsPerBlock + (THREAD_X >> 5); r < rows; r += GRID_DIM * warpsPerBlock) {
    long long o = (long long)r * cols;
    double s = 0.0;
    for (int c = lane; c < cols; c += 32) s += (double)ln_input(x, h, hb, drop, o + c, c, k0, k1, threshold, scale);
    s = shfl_bcast_f64(warp_reduce(0, s));
    float mean = (float)(s * (double)invCols);
    double q = 0.0;
    for (int c = lane; c < cols; c += 32) {
      float d = ln_input(x, h, hb, drop, o + c, c, k0, k1, threshold, scale) - mean;
      q += (double)(d * d);
    }
    q = shfl_bcast_f64(warp_reduce(0, q));
    float var = (float)(q * (double)invCols);
    float rs = 1.0f / sqrtf(var + eps);
    for (int c = lane; c < cols; c += 32) {
      float hh = (ln_input(x, h, hb, drop, o + c, c, k0, k1, threshold, scale) - mean) * rs;
      xhat[o + c] = hh;
      y[o + c] = (hh * gamma[c]) + beta[c];
    }
    if (lane == 0) rstd[r] = rs;
  }
}

// LayerNorm's backward pass for rows: with dx̂ = dy·γ, dx = ((dx̂ − mean(dx̂)) − x̂·mean(dx̂·x̂))·rstd;
// with `dh` the sublayer output's gradient dx·mask (layer_norm_f32's mask; dx itself when !drop). Also
// writes the planes [nPlanes, rows, cols] whose column sums (one batched gemm with a ones row, in the
// backend) are the parameter gradients: dy·x̂ (γ's), then dy (β's), then dh (the sublayer's dense bias's).
extern "C" __global__ void layer_norm_grad_f32(int rows, int cols, float invCols, const float* __restrict__ dy,
                                               const float* __restrict__ xhat, const float* __restrict__ rstd,
                                               const float* __restrict__ gamma, float* __restrict__ dx,
                                               float* __restrict__ planes, float* __restrict__ dh, int drop,
                                               unsigned k0, unsigned k1, unsigned threshold, float scale,
                                               int nPlanes) {
  const long long plane = (long long)rows * cols;
  int lane = THREAD_X & 31;
  int warpsPerBlock = BLOCK_DIM >> 5;
  for (int r = BLOCK_X * warpsPerBlock + (THREAD_X >> 5); r < rows; r += GRID_DIM * warpsPerBlock) {
    long long o = (long long)r * cols;
    double a = 0.0, b = 0.0;
    for (int c = lane; c < cols; c += 32) {
      float g = dy[o + c] * gamma[c];
      a += (double)g;
      b += (double)(g * xhat[o + c]);
    }
    a = shfl_bcast_f64(warp_reduce(0, a));
    b = shfl_bcast_f64(warp_reduce(0, b));
    float ma = (float)(a * (double)invCols), mb = (float)(b * (double)invCols);
    float rs = rstd[r];
    for (int c = lane; c < cols; c += 32) {
      float g = dy[o + c] * gamma[c];
      float hh = xhat[o + c];
      float d = ((g - ma) - (hh * mb)) * rs;
      dx[o + c] = d;
      planes[o + c] = dy[o + c] * hh;
      if (nPlanes > 1) planes[plane + o + c] = dy[o + c];
      float dhv = drop ? d * drop_mult((int)(o + c), k0, k1, threshold, scale) : d;
      if (dh) dh[o + c] = dhv;
      if (nPlanes > 2) planes[2 * plane + o + c] = dhv;
    }
  }
}

// Attention's heads from a dense output before its bias: y[b, h, l, e] = x[b·L + l, h·d + e] + bias[h·d + e]
// (tfjs's add, reshape and transpose to [B, heads, L, d] in one pass).
extern "C" __global__ void bias_split_heads_f32(int n, int length, int heads, int d, const float* __restrict__ x,
                                                const float* __restrict__ bias, float* __restrict__ y) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    int e = i % d, l = (i / d) % length, h = (i / (d * length)) % heads, b = i / (d * length * heads);
    int col = h * d + e;
    y[i] = x[((long long)b * length + l) * (heads * d) + col] + bias[col];
  }
}

// Query, key and value from one fused projection: cat [B·L, 3·heads·d] is x·[W_q; W_k; W_v]ᵀ (columns q | k | v).
// toHeads = 1: q/k/v[b, h, l, e] = cat[b·L + l, j·H + h·d + e] + bias_j[h·d + e] (j = 0, 1, 2; H = heads·d);
// toHeads = 0: the inverse without biases, cat = the three heads' gradients merged (the backward pass).
// headMajor = 1 lays the heads out [h, b, l, e] instead (DeBERTa's). n = B·heads·L·d, the size of one of
// q, k, v. A null q, k or v is skipped (toHeads) or reads as zeros (merging).
extern "C" __global__ void qkv_heads_f32(int toHeads, int headMajor, int n, int length, int heads, int d,
                                         float* __restrict__ cat, const float* __restrict__ bq,
                                         const float* __restrict__ bk, const float* __restrict__ bv,
                                         float* __restrict__ q, float* __restrict__ k, float* __restrict__ v) {
  const int hidden = heads * d;
  const int batch = n / (hidden * length);
  for (int i = grid_start(); i < n; i += grid_stride()) {
    int e = i % d, l = (i / d) % length, h, b;
    if (headMajor) {
      b = (i / (d * length)) % batch;
      h = i / (d * length * batch);
    } else {
      h = (i / (d * length)) % heads;
      b = i / (d * length * heads);
    }
    int col = h * d + e;
    long long row = ((long long)b * length + l) * (3 * hidden);
    if (toHeads) {
      if (q) q[i] = cat[row + col] + bq[col];
      if (k) k[i] = cat[row + hidden + col] + bk[col];
      if (v) v[i] = cat[row + 2 * hidden + col] + bv[col];
    } else {
      cat[row + col] = q ? q[i] : 0.0f;
      cat[row + hidden + col] = k ? k[i] : 0.0f;
      cat[row + 2 * hidden + col] = v ? v[i] : 0.0f;
    }
  }
}

// Three tensors of n elements each ↔ one of 3n (a, then b, then c): toCat = 1 concatenates (the
// fused projection's [W_q; W_k; W_v]), toCat = 0 splits (its weight and bias gradients).
extern "C" __global__ void concat3_f32(int toCat, int n, float* __restrict__ a, float* __restrict__ b,
                                       float* __restrict__ c, float* __restrict__ cat) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    if (toCat) {
      cat[i] = a[i];
      cat[n + i] = b[i];
      cat[2 * n + i] = c[i];
    } else {
      a[i] = cat[i];
      b[i] = cat[n + i];
      c[i] = cat[2 * n + i];
    }
  }
}

// Attention probabilities softmax(x·scale + bias) over the last axis of x [rows, cols], bias one row
// of `cols` per `rowsPerBias` rows (the mask [B, 1, 1, L] under scores [B, heads, L, L]); one warp
// per row: the ops of tf.add(tf.mul(x, scale), bias) and softmax_rows_f32, in their order. With
// `drop`, also yd = y·mask, the attention dropout (mask as dropout_f32's over y's flat index).
extern "C" __global__ void scaled_masked_softmax_f32(int rows, int cols, int rowsPerBias, float scale,
                                                     const float* __restrict__ x, const float* __restrict__ bias,
                                                     float* __restrict__ y, int drop, unsigned k0, unsigned k1,
                                                     unsigned threshold, float dscale, float* __restrict__ yd) {
  int lane = THREAD_X & 31;
  int warpsPerBlock = BLOCK_DIM >> 5;
  for (int r = BLOCK_X * warpsPerBlock + (THREAD_X >> 5); r < rows; r += GRID_DIM * warpsPerBlock) {
    long long o = (long long)r * cols;
    const float* row = x + o;
    const float* b = bias + (long long)(r / rowsPerBias) * cols;
    double m = -__builtin_huge_val();
    for (int c = lane; c < cols; c += 32) m = reduce_combine(1, m, (double)((row[c] * scale) + b[c]));
    m = shfl_bcast_f64(warp_reduce(1, m));
    float mf = (float)m;
    double s = 0.0;
    for (int c = lane; c < cols; c += 32) s += (double)expf(((row[c] * scale) + b[c]) - mf);
    s = shfl_bcast_f64(warp_reduce(0, s));
    float inv = (float)(1.0 / s);
    for (int c = lane; c < cols; c += 32) {
      float p = expf(((row[c] * scale) + b[c]) - mf) * inv;
      y[o + c] = p;
      if (drop) yd[o + c] = p * drop_mult((int)(o + c), k0, k1, threshold, dscale);
    }
  }
}

// Its gradient for the scores: dx = ((dy·y) − Σ(dy·y)·y)·scale (tfjs's softmax gradient, then the
// scale's), one warp per row. With `drop`, dy is first multiplied by the attention dropout's mask
// (the gradient through yd).
extern "C" __global__ void scaled_masked_softmax_grad_f32(int rows, int cols, float scale, const float* __restrict__ dy,
                                                          const float* __restrict__ y, float* __restrict__ dx,
                                                          int drop, unsigned k0, unsigned k1, unsigned threshold,
                                                          float dscale) {
  int lane = THREAD_X & 31;
  int warpsPerBlock = BLOCK_DIM >> 5;
  for (int r = BLOCK_X * warpsPerBlock + (THREAD_X >> 5); r < rows; r += GRID_DIM * warpsPerBlock) {
    long long o = (long long)r * cols;
    double s = 0.0;
    for (int c = lane; c < cols; c += 32) {
      float g = drop ? dy[o + c] * drop_mult((int)(o + c), k0, k1, threshold, dscale) : dy[o + c];
      s += (double)(g * y[o + c]);
    }
    float sf = (float)shfl_bcast_f64(warp_reduce(0, s));
    for (int c = lane; c < cols; c += 32) {
      float g = drop ? dy[o + c] * drop_mult((int)(o + c), k0, k1, threshold, dscale) : dy[o + c];
      dx[o + c] = ((g * y[o + c]) - (sf * y[o + c])) * scale;
    }
  }
}

// The score of pair (i, j) = element c of row r in [heads·B·L, L] (i = r mod L, j = c): DeBERTa's
// relative terms are either given per pair (idx null: t[r·L + c]) or as scores against every relative
// row, t [heads·B, L·relRows], picked by idx [L·L] (the gather fused: t[hb·L·relRows + idx[i·L + c]]).
__device__ __forceinline__ float pair_term(const float* __restrict__ t, const int* __restrict__ idx, int r, int c,
                                           int cols, int relRows) {
  if (!idx) return t[(long long)r * cols + c];
  return t[(long long)(r / cols) * cols * relRows + idx[(r % cols) * cols + c]];
}

// DeBERTa's attention probabilities (XSoftmax) from its three score terms, one warp per row of
// [heads·B·L, L]: y = softmax(((c2c·scale + c2p·scale) + p2c·scale) + bias) and out = y·pair, with
// `drop` also out·mask (the attention dropout, dropout_f32's mask over out's flat index). bias and pair
// are [B·L, L] rows shared by every head (row r uses r mod maskRows). c2p and p2c as pair_term's, with
// c2pIdx, p2cIdx (both null, or both given with relRows). tfjs's ops in their order.
extern "C" __global__ void disentangled_softmax_f32(int rows, int cols, int maskRows, float scale,
                                                    const float* __restrict__ c2c, const float* __restrict__ c2p,
                                                    const float* __restrict__ p2c, const float* __restrict__ bias,
                                                    const float* __restrict__ pair, int relRows,
                                                    const int* __restrict__ c2pIdx, const int* __restrict__ p2cIdx,
                                                    float* __restrict__ y, float* __restrict__ out, int drop,
                                                    unsigned k0, unsigned k1, unsigned threshold, float dscale) {
  int lane = THREAD_X & 31;
  int warpsPerBlock = BLOCK_DIM >> 5;
  for (int r = BLOCK_X * warpsPerBlock + (THREAD_X >> 5); r < rows; r += GRID_DIM * warpsPerBlock) {
    long long o = (long long)r * cols, mo = (long long)(r % maskRows) * cols;
#define DISENTANGLED_LOGIT(c)                                                                         \
  ((((c2c[o + (c)] * scale) + (pair_term(c2p, c2pIdx, r, (c), cols, relRows) * scale)) +              \
    (pair_term(p2c, p2cIdx, r, (c), cols, relRows) * scale)) +                                        \
   bias[mo + (c)])
    double m = -__builtin_huge_val();
    for (int c = lane; c < cols; c += 32) m = reduce_combine(1, m, (double)DISENTANGLED_LOGIT(c));
    m = shfl_bcast_f64(warp_reduce(1, m));
    float mf = (float)m;
    double s = 0.0;
    for (int c = lane; c < cols; c += 32) s += (double)expf(DISENTANGLED_LOGIT(c) - mf);
    s = shfl_bcast_f64(warp_reduce(0, s));
    float inv = (float)(1.0 / s);
    for (int c = lane; c < cols; c += 32) {
      float t = DISENTANGLED_LOGIT(c);
#undef DISENTANGLED_LOGIT
      float p = expf(t - mf) * inv;
      y[o + c] = p;
      float q = p * pair[mo + c];
      out[o + c] = drop ? q * drop_mult((int)(o + c), k0, k1, threshold, dscale) : q;
    }
  }
}

// Its gradient for each score term (the three are equal): with g = dOut·mask (when `drop`)·pair,
// d = (g·y − Σ(g·y)·y)·scale.
extern "C" __global__ void disentangled_softmax_grad_f32(int rows, int cols, int maskRows, float scale,
                                                         const float* __restrict__ dOut, const float* __restrict__ y,
                                                         const float* __restrict__ pair, float* __restrict__ dx,
                                                         int drop, unsigned k0, unsigned k1, unsigned threshold,
                                                         float dscale) {
  int lane = THREAD_X & 31;
  int warpsPerBlock = BLOCK_DIM >> 5;
  for (int r = BLOCK_X * warpsPerBlock + (THREAD_X >> 5); r < rows; r += GRID_DIM * warpsPerBlock) {
    long long o = (long long)r * cols, mo = (long long)(r % maskRows) * cols;
    double s = 0.0;
    for (int c = lane; c < cols; c += 32) {
      float g = drop ? dOut[o + c] * drop_mult((int)(o + c), k0, k1, threshold, dscale) : dOut[o + c];
      s += (double)((g * pair[mo + c]) * y[o + c]);
    }
    float sf = (float)shfl_bcast_f64(warp_reduce(0, s));
    for (int c = lane; c < cols; c += 32) {
      float g = drop ? dOut[o + c] * drop_mult((int)(o + c), k0, k1, threshold, dscale) : dOut[o + c];
      g = g * pair[mo + c];
      dx[o + c] = ((g * y[o + c]) - (sf * y[o + c])) * scale;
    }
  }
}

// The gradient of the fused gather of pair_term, for one relative term: out [heads·B, L·relRows],
// out[hb, o·relRows + q] = Σ_t d[hb, o, t] (transposed: d[hb, t, o]) over t in range[2k] .. range[2k+1]
// (k = o·relRows + q), d [heads·B, L, L]. Relative row q of query o is picked by a contiguous run of keys
// (c2p; for key o, of queries: p2c, transposed), so every output is one sum in a fixed order: no atomics,
// the same bits on every run. One thread per output.
extern "C" __global__ void relative_bucket_sum_f32(int n, int cols, int relRows, int transposed,
                                                   const float* __restrict__ d, const int* __restrict__ range,
                                                   float* __restrict__ out) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    int per = cols * relRows, hb = i / per, k = i % per, o = k / relRows;
    const float* dm = d + (long long)hb * cols * cols;
    double s = 0.0;
    for (int t = range[2 * k]; t < range[2 * k + 1]; t++) s += (double)(transposed ? dm[(long long)t * cols + o] : dm[(long long)o * cols + t]);
    out[i] = (float)s;
  }
}

// First pass of Σ x² over many tensors: chunk k = table[3k .. 3k+2] = (address, begin, end) of
// one float32 tensor's elements; block k writes the chunk's sum of squares (in double) to
// partial[k]. reduce_final_f32 then adds the partials. Fixed chunks and a fixed reduction order:
// the same sum on every run.
extern "C" __global__ void sum_squares_partial_f32(int chunks, const long long* __restrict__ table,
                                                   double* __restrict__ partial) {
  __shared__ volatile double warpAcc[32];  // volatile: see sample_rows_f32
  int lane = THREAD_X & 31, warp = THREAD_X >> 5, nWarps = BLOCK_DIM >> 5;
  for (int k = BLOCK_X; k < chunks; k += GRID_DIM) {
    const float* x = (const float*)table[3 * k];
    long long lo = table[3 * k + 1], hi = table[3 * k + 2];
    double acc = 0.0;
    for (long long i = lo + THREAD_X; i < hi; i += BLOCK_DIM) {
      float v = x[i];
      acc += (double)(v * v);
    }
    acc = warp_reduce(0, acc);
    if (lane == 0) warpAcc[warp] = acc;
    SYNCTHREADS();
    if (warp == 0) {
      acc = lane < nWarps ? warpAcc[lane] : 0.0;
      acc = warp_reduce(0, acc);
      if (lane == 0) partial[k] = acc;
    }
    SYNCTHREADS();
  }
}

// ---------------------------------------------------------------------------------------------
// The AdamW update of every parameter in one launch (decoupled weight decay, Loshchilov & Hutter
// 2019), written to new buffers, each step one correctly rounded float32 operation in the order of
// the optimiser's tensor path (lib/train/optimizer.ts; contract in lib/backend/adamw_kernel.ts), so
// the results are that path's bit for bit. The _rn intrinsics keep the compiler from contracting
// a·b + c into an FMA. Chunk k = table[10k .. 10k+9] = addresses of (param, grad, m, v, param', m',
// v'), then begin, end, and the parameter's weight decay (float32 bits; 0 = none); one block per chunk.
extern "C" __global__ void adamw_f32(int chunks, const long long* __restrict__ table, const float* __restrict__ scale,
                                     float lr, float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2,
                                     float eps, float corr1, float corr2) {
  float s = scale[0];
  for (int k = BLOCK_X; k < chunks; k += GRID_DIM) {
    const long long* t = table + 10 * k;
    const float* p = (const float*)t[0];
    const float* g = (const float*)t[1];
    const float* m = (const float*)t[2];
    const float* v = (const float*)t[3];
    float* p1 = (float*)t[4];
    float* m1 = (float*)t[5];
    float* v1 = (float*)t[6];
    int lo = (int)t[7], hi = (int)t[8];
    float wd = __int_as_float_((unsigned)t[9]);
    for (int i = lo + THREAD_X; i < hi; i += BLOCK_DIM) {
      float gi = __fmul_rn(g[i], s);
      float mi = __fadd_rn(__fmul_rn(m[i], beta1), __fmul_rn(gi, oneMinusBeta1));
      float vi = __fadd_rn(__fmul_rn(v[i], beta2), __fmul_rn(__fmul_rn(gi, gi), oneMinusBeta2));
      float u = __fdiv_rn(__fdiv_rn(mi, corr1), __fadd_rn(sqrtf(__fdiv_rn(vi, corr2)), eps));
      if (wd != 0.0f) u = __fadd_rn(u, __fmul_rn(p[i], wd));
      m1[i] = mi;
      v1[i] = vi;
      p1[i] = __fsub_rn(p[i], __fmul_rn(u, lr));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Dropout's keep/scale mask (lib/backend/dropout_mask.ts draws the same numbers on the host):
// element i is kept, y = scale, iff (h(i) >> 8) >= threshold, else y = 0, with the counter-based
// hash h(i) = mix(mix(i ^ k0) + k1) (mix: the "lowbias32" integer finaliser). The keys come from
// the seed on the host. Counter-based, so every element is drawn independently, in parallel.

extern "C" __global__ void dropout_mask_f32(int n, unsigned k0, unsigned k1, unsigned threshold, float scale,
                                            float* __restrict__ y) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    unsigned h = mix32(mix32((unsigned)i ^ k0) + k1);
    y[i] = (h >> 8) >= threshold ? scale : 0.0f;
  }
}

// Dropout applied in one pass: y = x·mask with dropout_mask_f32's mask (same hash, same keys), so
// x·scale where kept and x·0 where dropped, bit for bit the product with the mask tensor. The
// backward pass is the same kernel on dy (the mask is recomputed, never stored).
extern "C" __global__ void dropout_f32(int n, unsigned k0, unsigned k1, unsigned threshold, float scale,
                                       const float* __restrict__ x, float* __restrict__ y) {
  for (int i = grid_start(); i < n; i += grid_stride()) {
    unsigned h = mix32(mix32((unsigned)i ^ k0) + k1);
    y[i] = x[i] * ((h >> 8) >= threshold ? scale : 0.0f);
  }
}

// The discriminator's input from the samples (lib/backend/sample_rows.ts, CORRUPT): corrupted and
// labels come in as copies of ids and zeros; this writes the M selected positions.
extern "C" __global__ void corrupt_i32(int m, const int* __restrict__ selected, const int* __restrict__ picks,
                                       const int* __restrict__ targets, int* __restrict__ corrupted,
                                       float* __restrict__ labels) {
  for (int i = grid_start(); i < m; i += grid_stride()) {
    int pos = selected[i];
    corrupted[pos] = picks[i];
    labels[pos] = picks[i] != targets[i] ? 1.0f : 0.0f;
  }
}

// ---------------------------------------------------------------------------------------------
// One sample per row of logits [rows, vocab] by inverse CDF, as sampleFromLogits in
// lib/train/sampling.ts: weights w_v = exp((x_v − max) / T) in double (0 for the row's banned id),
// target = u_r · Σ w, the pick is the first v whose running sum exceeds the target (vocab − 1 if
// none), and a banned pick becomes 0 (1 if banned is 0). Only the summation order differs from
// the host (chunk sums, then their prefix): picks agree except within ~1e-16 of a boundary.
// One block of SAMPLE_THREADS threads per row; thread t owns a contiguous chunk of the vocabulary.
#define SAMPLE_THREADS 256
extern "C" __global__ void sample_rows_f32(int rows, int vocab, double temperature, const float* __restrict__ logits,
                                           const double* __restrict__ u, const int* __restrict__ banned,
                                           int* __restrict__ out) {
  // volatile: clang-14 treats these block-local shared variables as untouched by __syncthreads()
  // (they never escape) and hoisted the read of `owner` above the barrier that publishes it; seen on
  // an H200, where every pick outside thread 0's warp was lost.
  __shared__ volatile double chunkSum[SAMPLE_THREADS];
  __shared__ volatile float warpMax[SAMPLE_THREADS / 32];
  __shared__ volatile int owner;
  __shared__ volatile double ownerStart, target;
  int t = THREAD_X, lane = t & 31, warp = t >> 5;
  int chunk = (vocab + SAMPLE_THREADS - 1) / SAMPLE_THREADS;
  int lo = min(vocab, t * chunk), hi = min(vocab, lo + chunk);
  for (int r = BLOCK_X; r < rows; r += GRID_DIM) {
    const float* row = logits + (long long)r * vocab;
    int ban = banned ? banned[r] : -1;
    float m = -__builtin_huge_valf();
    for (int v = lo; v < hi; v++) if (v != ban && row[v] > m) m = row[v];
    for (int d = 16; d > 0; d >>= 1) {
      float o = SHFL_DOWN_F32(m, d);
      if (o > m) m = o;
    }
    if (lane == 0) warpMax[warp] = m;
    SYNCTHREADS();
    m = warpMax[0];
    for (int w = 1; w < SAMPLE_THREADS / 32; w++) if (warpMax[w] > m) m = warpMax[w];
    double s = 0.0;
    for (int v = lo; v < hi; v++) {
      if (v != ban) s += temperature == 1.0 ? exp((double)row[v] - (double)m) : exp(((double)row[v] - (double)m) / temperature);
    }
    chunkSum[t] = s;
    SYNCTHREADS();
    if (t == 0) {
      double total = 0.0;
      for (int k = 0; k < SAMPLE_THREADS; k++) total += chunkSum[k];
      double goal = u[r] * total, acc = 0.0;
      int who = -1;
      for (int k = 0; k < SAMPLE_THREADS && who < 0; k++) {
        if (acc + chunkSum[k] > goal) who = k;
        else acc += chunkSum[k];
      }
      owner = who;
      ownerStart = acc;
      target = goal;
      if (who < 0) out[r] = vocab - 1 == ban ? (ban == 0 ? 1 : 0) : vocab - 1;
    }
    SYNCTHREADS();
    if (t == owner) {
      double acc = ownerStart;
      int pick = hi - 1;
      for (int v = lo; v < hi; v++) {
        if (v != ban) acc += temperature == 1.0 ? exp((double)row[v] - (double)m) : exp(((double)row[v] - (double)m) / temperature);
        if (acc > target) {
          pick = v;
          break;
        }
      }
      out[r] = pick == ban ? (ban == 0 ? 1 : 0) : pick;
    }
    SYNCTHREADS();
  }
}

#!/usr/bin/env bash
# Regenerates the PTX of lib/backend/cuda/kernels.cu that the cuda backend loads at run time.
#
#   lib/backend/cuda/build_ptx.sh                      # clang-14 + libdevice when present, else nvcc
#   PTX_COMPILER=nvcc lib/backend/cuda/build_ptx.sh    # force nvcc
#   PTX_ARCHS="80 90" lib/backend/cuda/build_ptx.sh    # other architectures
#
# Writes kernels.sm_XX.ptx next to kernels.cu, each starting with the sha256 of kernels.cu
# (tests/cuda_test.ts fails on a stale PTX) and the compiler command. When ptxas is present each
# PTX is also assembled once, to catch errors the front end let through.
#
# Why clang first: the PTX ISA version decides which drivers can load the file. clang-14 writes
# ISA 7.0 (sm_70/75/80), which every driver since CUDA 11.0 loads, CUDA 12 and 13 included; nvcc 13
# writes ISA 9.0, which only CUDA 13 drivers (R580+) load, and builds sm_75 and newer only (CUDA 13
# dropped Volta). clang takes the math functions (expf, erff, log1pf, ...) from CUDA's libdevice
# (CUDA_HOME/nvvm/libdevice/libdevice.10.bc), the same bitcode nvcc links, so both give the same
# numbers. The driver JIT-compiles PTX forward to newer GPUs: the backend loads the highest sm_XX
# file at or below the GPU's compute capability.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/kernels.cu"
cuda_home="${CUDA_HOME:-${CUDA_PATH:-/usr/local/cuda}}"
compiler="${PTX_COMPILER:-}"
libdevice="${LIBDEVICE:-$cuda_home/nvvm/libdevice/libdevice.10.bc}"
if [[ -z "$compiler" ]]; then
  if { command -v clang-14 >/dev/null 2>&1 || command -v clang >/dev/null 2>&1; } && [[ -f "$libdevice" ]]; then
    compiler=clang
  elif command -v nvcc >/dev/null 2>&1 || [[ -x "$cuda_home/bin/nvcc" ]]; then
    compiler=nvcc
  else
    echo "build_ptx.sh: need clang-14 (apt-get install clang-14) plus CUDA's libdevice, or nvcc" >&2
    exit 1
  fi
fi
hash="$(sha256sum "$src" | cut -d' ' -f1)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

case "$compiler" in
  nvcc)
    nvcc="$(command -v nvcc || echo "$cuda_home/bin/nvcc")"
    archs="${PTX_ARCHS:-75 80 90}"
    version="$("$nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
    ;;
  clang)
    clang="$(command -v clang-14 || command -v clang || true)"
    [[ -n "$clang" ]] || { echo "build_ptx.sh: neither nvcc nor clang found (apt-get install clang-14)" >&2; exit 1; }
    [[ -f "$libdevice" ]] || {
      echo "build_ptx.sh: clang needs CUDA's libdevice for expf/erff/log1pf; not at $libdevice (set LIBDEVICE=...)" >&2
      exit 1
    }
    archs="${PTX_ARCHS:-70 75 80}"
    version="$("$clang" --version | head -1)"
    ;;
  *) echo "build_ptx.sh: PTX_COMPILER must be nvcc or clang, not '$compiler'" >&2; exit 1 ;;
esac

rm -f "$here"/kernels.sm_*.ptx
for arch in $archs; do
  out="$tmp/kernels.sm_$arch.ptx"
  if [[ "$compiler" == nvcc ]]; then
    cmd=("$nvcc" -ptx -O3 --fmad=false -std=c++17 -arch="compute_$arch" -o "$out" "$src")
  else
    cmd=("$clang" -Wno-unknown-cuda-version --cuda-device-only --cuda-gpu-arch="sm_$arch" -nocudainc -nocudalib -O3 -ffp-contract=off -S -std=c++17
      -Xclang -target-feature -Xclang +ptx70
      -Xclang -mlink-builtin-bitcode -Xclang "$libdevice" -o "$out" "$src")
  fi
  "${cmd[@]}"
  shown="$(printf '%s ' "${cmd[@]}" | sed -e "s#$tmp/##g" -e "s#$here/##g")"
  {
    echo "// rtdlab kernels.cu sha256: $hash"
    echo "// built by lib/backend/cuda/build_ptx.sh with $compiler $version: ${shown% }"
    cat "$out"
  } > "$here/kernels.sm_$arch.ptx"
  if command -v ptxas >/dev/null 2>&1; then
    target=$(( arch < 75 ? 75 : arch ))
    ptxas -arch="sm_$target" -o "$tmp/check.cubin" "$here/kernels.sm_$arch.ptx"
  fi
  echo "wrote lib/backend/cuda/kernels.sm_$arch.ptx ($(grep -c '^\.visible \.entry\|^\.entry' "$here/kernels.sm_$arch.ptx") entries)"
done

#!/usr/bin/env bash
# bench/gpu/build_direct.sh BUILD_DIR ARCH [-DNAME=VALUE…] — libmeditron with CUDA without CMake (for a GPU
# machine that lacks it): g++ for the C++ sources, nvcc for src/cuda/*.cu, one shared library. The -D values
# are those of runtime/cuda_toolchain.sh (CMAKE_CUDA_COMPILER, MEDITRON_CUDA_ROOT, MEDITRON_NCCL_ROOT) and,
# optionally, CBLAS_INCLUDE_DIR / OPENBLAS_OPENMP. No MPI (one process per GPU needs none).
set -euo pipefail
BUILD=$1 ARCH=$2
shift 2
declare -A D
for a in "$@"; do
  a=${a#-D}
  D[${a%%=*}]=${a#*=}
done
NVCC=${D[CMAKE_CUDA_COMPILER]}
CUDA=${D[MEDITRON_CUDA_ROOT]}
NCCL=${D[MEDITRON_NCCL_ROOT]}
NVROOT=$(dirname "$(dirname "$NVCC")")
CBLAS_INC=${D[CBLAS_INCLUDE_DIR]:-$(dirname "$(ls /usr/include/cblas.h /usr/include/*/cblas.h 2>/dev/null | head -1)")}
# The first existing path, in the order given (each glob expanded in place).
lib_of() {
  local f
  for f in "$@"; do
    if [ -e "$f" ]; then
      echo "$f"
      return 0
    fi
  done
  return 0
}
BLAS=${D[OPENBLAS_OPENMP]:-$(lib_of /usr/lib/*/openblas-openmp/libopenblas.so.0 /usr/lib/*/libopenblas.so.0)}
CUDART=$(lib_of "$NVROOT"/lib64/libcudart.so* "$NVROOT"/lib/libcudart.so* "$CUDA"/lib*/libcudart.so*)
CUBLAS=$(lib_of "$CUDA"/lib*/libcublas.so.* "$NVROOT"/lib64/libcublas.so.*)
CUBLASLT=$(lib_of "$CUDA"/lib*/libcublasLt.so.* "$NVROOT"/lib64/libcublasLt.so.*)
NCCLLIB=$(lib_of "$NCCL"/lib*/libnccl.so*)
echo "nvcc $NVCC; cudart $CUDART; cublas $CUBLAS; nccl $NCCLLIB; blas $BLAS ($CBLAS_INC)"
mkdir -p "$BUILD/obj"
INC=(-Iruntime/include -Iruntime/src -I"$CUDA/include" -I"$NCCL/include")
for f in api comm kernels model optim; do
  g++ -std=c++17 -O3 -fPIC -fopenmp -march=native -fno-trapping-math -fvisibility=hidden -DMEDITRON_CUDA \
    '-DMT_BUILD_FLAGS="direct cuda=ON"' "${INC[@]}" -I"$CBLAS_INC" -c "runtime/src/$f.cpp" -o "$BUILD/obj/$f.o" &
done
for f in kernels attention attention_mma nccl_comm backend; do
  "$NVCC" -std=c++17 -O3 --use_fast_math -lineinfo -arch="sm_$ARCH" -Xcompiler=-fPIC,-fvisibility=hidden \
    "${INC[@]}" -c "runtime/src/cuda/$f.cu" -o "$BUILD/obj/cuda_$f.o" &
done
wait
RP=$(for l in "$CUDART" "$CUBLAS" "$NCCLLIB" "$BLAS"; do dirname "$l"; done | sort -u | paste -sd:)
g++ -shared -fopenmp -o "$BUILD/libmeditron.so" "$BUILD"/obj/*.o "$BLAS" "$CUBLAS" "$CUBLASLT" "$NCCLLIB" "$CUDART" \
  -Wl,-rpath,"$RP"
echo "built $BUILD/libmeditron.so"

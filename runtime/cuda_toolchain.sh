#!/usr/bin/env bash
# Finds (or installs) a CUDA 13 toolchain for libmeditron's CUDA backend and prints the CMake definitions
# that point the build at it, one `-DNAME=VALUE` per line:
#   -DCMAKE_CUDA_COMPILER=…/nvcc  -DMEDITRON_CUDA_ROOT=…  -DMEDITRON_NCCL_ROOT=…
#
# Order: an nvcc of the machine ($CUDACXX, $CUDA_HOME/bin, PATH, /usr/local/cuda/bin) with cuBLAS and NCCL
# found next to it or in a Python environment's NVIDIA wheels (the GPU machines' torch venv); otherwise the
# PyPI wheels (nvidia-cuda-nvcc, -runtime, -crt, nvidia-nvvm, nvidia-cuda-cccl, nvidia-cublas,
# nvidia-nccl-cu13) installed with pip into $MEDITRON_CUDA_CACHE (default ~/.cache/meditron/cuda13), which
# is what CI does on its GPU-less machine: they compile and link, they cannot run a kernel.
#
# Usage: runtime/cuda_toolchain.sh [--install-only]
set -euo pipefail

CACHE="${MEDITRON_CUDA_CACHE:-$HOME/.cache/meditron/cuda13}"
WHEELS="nvidia-cuda-nvcc nvidia-cuda-runtime nvidia-cuda-crt nvidia-nvvm nvidia-cuda-cccl nvidia-cublas nvidia-nccl-cu13"
log() { echo "cuda_toolchain: $*" >&2; }

# First directory under the given roots that holds file $1 (a name glob), or nothing.
find_dir_of() {
  local pattern=$1
  shift
  local root hit
  for root in "$@"; do
    [ -d "$root" ] || continue
    hit=$(find -L "$root" -maxdepth 5 -name "$pattern" -print -quit 2>/dev/null || true)
    if [ -n "$hit" ]; then
      dirname "$hit"
      return 0
    fi
  done
  return 0
}

# site-packages/nvidia directories of the python3 on PATH (and of a virtualenv, when one is active).
python_nvidia_roots() {
  command -v python3 >/dev/null 2>&1 || return 0
  python3 - <<'PY' 2>/dev/null || true
import site, sys, os
paths = list(getattr(site, "getsitepackages", lambda: [])()) + [site.getusersitepackages()] + sys.path
seen = set()
for p in paths:
    d = os.path.join(p, "nvidia")
    if os.path.isdir(d) and d not in seen:
        seen.add(d)
        print(d)
PY
}

system_nvcc() {
  local c root
  for c in "${CUDACXX:-}" "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" "$(command -v nvcc 2>/dev/null || true)" \
    /usr/local/cuda/bin/nvcc; do
    if [ -n "$c" ] && [ -x "$c" ]; then
      echo "$c"
      return 0
    fi
  done
  # An nvidia-cuda-nvcc wheel in a Python environment (e.g. a torch venv on a machine without a toolkit).
  for root in $(python_nvidia_roots); do
    c=$(find -L "$root" -maxdepth 3 -path '*/bin/nvcc' -type f -print -quit 2>/dev/null || true)
    if [ -n "$c" ] && [ -x "$c" ]; then
      echo "$c"
      return 0
    fi
  done
  return 0
}

install_wheels() {
  if [ -x "$CACHE/nvidia/cu13/bin/nvcc" ] && [ -f "$CACHE/nvidia/nccl/include/nccl.h" ] &&
    [ -f "$CACHE/nvidia/cu13/include/cublas_v2.h" ]; then
    return 0
  fi
  command -v python3 >/dev/null 2>&1 || {
    log "no nvcc and no python3 to install the CUDA wheels with (apt-get install python3-pip)"
    exit 1
  }
  if ! python3 -m pip --version >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "installing python3-pip with apt-get…"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >&2 ||
        { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >&2; }
    fi
  fi
  log "installing $WHEELS into $CACHE (pip, ~1.4 GB)…"
  local t0=$SECONDS
  rm -rf "$CACHE.tmp"
  mkdir -p "$CACHE.tmp"
  local args=(install --quiet --disable-pip-version-check --no-warn-script-location --target "$CACHE.tmp" $WHEELS)
  # A Debian python refuses installs outside a venv (PEP 668) unless told: --target touches no system files.
  python3 -m pip "${args[@]}" >&2 || python3 -m pip "${args[@]}" --break-system-packages >&2
  rm -rf "$CACHE"
  mv "$CACHE.tmp" "$CACHE"
  log "wheels installed in $((SECONDS - t0)) s"
}

nvcc=$(system_nvcc)
cuda_root=""
nccl_root=""
if [ -n "$nvcc" ]; then
  cuda_root=$(cd "$(dirname "$nvcc")/.." && pwd)
  roots=("$cuda_root" $(python_nvidia_roots) /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr)
  cublas_inc=$(find_dir_of cublas_v2.h "${roots[@]}")
  nccl_inc=$(find_dir_of nccl.h "${roots[@]}" /usr/include)
  if [ -z "$cublas_inc" ] || [ -z "$nccl_inc" ]; then
    log "nvcc at $nvcc, but cuBLAS (${cublas_inc:-missing}) or NCCL (${nccl_inc:-missing}) headers are not found: using the wheels"
    nvcc=""
  else
    cuda_root=$(dirname "$cublas_inc")
    nccl_root=$(dirname "$nccl_inc")
  fi
fi
if [ -z "$nvcc" ]; then
  install_wheels
  nvcc="$CACHE/nvidia/cu13/bin/nvcc"
  cuda_root="$CACHE/nvidia/cu13"
  nccl_root="$CACHE/nvidia/nccl"
fi
[ "${1:-}" = "--install-only" ] && exit 0
log "nvcc $nvcc; cuBLAS/cudart under $cuda_root; NCCL under $nccl_root"
echo "-DCMAKE_CUDA_COMPILER=$nvcc"
echo "-DMEDITRON_CUDA_ROOT=$cuda_root"
echo "-DMEDITRON_NCCL_ROOT=$nccl_root"

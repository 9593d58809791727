#!/usr/bin/env bash
# The whole CUDA check on a lent GPU machine (one H200) in one call: builds
# patchwork for sm_90, runs the tests, trains the default config for one epoch
# on the GPU and times patchwork's GPU benchmarks next to PyTorch's. docs/gpu.md
# has the exact `run` call (carry .deps: the Debian packages, scripts/gpu_deps.sh).
#
#   scripts/gpu_check.sh          writes to $OUT (the run tool's), else ./gpu_check_out
#
# Stages, most important first; each runs under `timeout`, and a failing or hung
# stage is recorded (FAILED (exit N) / TIMEOUT) and the script goes on:
#   env        nvidia-smi, torch/nvcc/cmake/gcc versions          -> env.txt
#   pytorch    scripts/bench_gpu_pytorch.py (ViT-S/16 training, SDPA) -> pytorch.log
#   deps       scripts/gpu_deps.sh --extract (if .deps/debs is here)  -> build.log
#   configure  cmake, CUDA ON, archs $PW_CUDA_ARCHS (90)               -> build.log
#   build      ninja -j$PW_JOBS (16)                                  -> build.log
#   ctest-gpu  ctest -L gpu -V (counts "skipped" lines: must be 0 on a GPU) -> ctest.log
#   bench-vit  patchwork bench train configs/imagenet/vit_s16.yaml, bf16, batch 128, cuda -> bench.log
#   bench-attn patchwork bench attention (fused fwd+bwd, N=1024, HD=64, bf16)             -> bench.log
#   train      1 epoch of configs/fashion_mnist/simple_vit.yaml, train.device=cuda        -> train.log
#   ctest-cpu  the rest of ctest (-LE gpu)                            -> ctest.log
# then table.md (the results table, also printed last) and summary.log (this
# script's own output). Exactly 8 files: the run tool returns at most 8.
#
# Environment (defaults for the H200): PW_CHECK_BUDGET_S=450 (the whole script,
# seconds: later stages get what is left), PW_JOBS=16, BUILD_DIR=build-gpu,
# PW_CUDA_ARCHS=90, TORCH_PYTHON=python3, PW_DEPS_PREFIX=/tmp/pwdeps,
# PW_ATTN_ARGS (extra arguments for `patchwork bench attention`), PW_PYTORCH_ARGS
# (for scripts/bench_gpu_pytorch.py; "--device cpu --tiny" checks this script on a CPU),
# PW_STAGE_LIMIT_MAX (cap every stage; for checking this script on a CPU),
# PW_SKIP="stage ..." (stages to leave out).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu_check_out}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
BUDGET=${PW_CHECK_BUDGET_S:-450}
JOBS=${PW_JOBS:-16}
BUILD=${BUILD_DIR:-build-gpu}
ARCHS=${PW_CUDA_ARCHS:-90}
PY=${TORCH_PYTHON:-python3}
STAGE_MAX=${PW_STAGE_LIMIT_MAX:-}
SKIP=" ${PW_SKIP:-} "
T_START=$(date +%s)
DEADLINE=$((T_START + BUDGET))
RESERVE=10  # seconds kept for the table at the end
exec > >(tee -a "$OUT/summary.log") 2>&1
TEE_PID=$!
export PY

declare -A STATUS SECS
ORDER=()

# stage NAME LOG LIMIT CMD...: run CMD (a program, not a function) under timeout,
# its output appended to $OUT/LOG; records the status and the seconds taken.
stage() {
  local name=$1 log=$OUT/$2 limit=$3
  shift 3
  ORDER+=("$name")
  if [[ $SKIP == *" $name "* ]]; then
    STATUS[$name]="skipped (PW_SKIP)"; SECS[$name]=0
    echo "=== $name: skipped (PW_SKIP)"
    return 1
  fi
  local left=$((DEADLINE - $(date +%s) - RESERVE))
  [[ -n $STAGE_MAX ]] && ((limit > STAGE_MAX)) && limit=$STAGE_MAX
  ((limit > left)) && limit=$left
  if ((limit < 5)); then
    STATUS[$name]="SKIPPED (time budget spent)"; SECS[$name]=0
    echo "=== $name: SKIPPED (the ${BUDGET}s budget is spent)"
    return 1
  fi
  echo "=== $name (limit ${limit}s): $*" | tee -a "$log"
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  timeout -k 10 "$limit" "$@" >>"$log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  SECS[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  if ((rc == 0)); then STATUS[$name]=ok
  elif ((rc == 124 || rc == 137)); then STATUS[$name]="TIMEOUT (${limit}s)"
  else STATUS[$name]="FAILED (exit $rc)"
  fi
  echo "=== $name: ${STATUS[$name]} in ${SECS[$name]}s" | tee -a "$log"
  if ((rc != 0)); then section "$name" "$(basename "$log")" | tail -n 15 | sed 's/^/    | /'; fi
  return $rc
}

# section NAME LOG: the lines stage NAME wrote into $OUT/LOG
section() { sed -n "/^=== $1 (limit/,/^=== $1: /p" "$OUT/$2" 2>/dev/null; }
# field KEY FILE: the value of KEY=... on the last RESULT line of FILE that has it
field() { grep -a '^RESULT' "$2" 2>/dev/null | grep -o "[ ]$1=[^ ]*" | tail -1 | cut -d= -f2; }

echo "gpu_check: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), budget ${BUDGET}s, out $OUT"

# --- env -------------------------------------------------------------------
# shellcheck disable=SC2317  # run through bash -c "$(declare -f env_report)"
env_report() {
  set +e
  echo "## nvidia-smi"; nvidia-smi
  echo; echo "## nvidia-smi -q (clocks, power)"; nvidia-smi -q -d CLOCK,POWER,PERFORMANCE | head -80
  echo; echo "## torch"; "$PY" -c 'import torch, sys; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "python", sys.version.split()[0], "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")'
  echo; echo "## tools"; command -v nvcc cmake ninja g++ dpkg-deb ar; nvcc --version | tail -2; cmake --version | head -1
  echo "ninja $(ninja --version)"; g++ --version | head -1
  echo; echo "## system"; uname -a; cat /etc/os-release 2>/dev/null | head -4; ldd --version | head -1; nproc; free -g | head -2
  ldconfig -p | grep -E 'libstdc\+\+\.so\.6|libgomp|libOpenCL|libz\.so\.1|libyaml|libdnnl' | sed 's/^/  /'
}
ORDER+=(env); t0=$(date +%s)
timeout -k 5 40 bash -c "$(declare -f env_report); env_report" >"$OUT/env.txt" 2>&1
STATUS[env]=ok; SECS[env]=$(($(date +%s) - t0))
grep -E '^torch |NVIDIA H|Driver Version' "$OUT/env.txt" | head -3
TORCH_LINE=$(grep -m1 '^torch ' "$OUT/env.txt" || echo "torch: not found")

# --- PyTorch reference numbers (first: the GPU idle, no build running) ------
# shellcheck disable=SC2086
stage pytorch pytorch.log 120 env PYTHONUNBUFFERED=1 "$PY" scripts/bench_gpu_pytorch.py ${PW_PYTORCH_ARGS:-}

# --- dependencies, configure, build -------------------------------------------
if [[ -d .deps/debs ]]; then
  PW_DEPS_PREFIX=${PW_DEPS_PREFIX:-/tmp/pwdeps}
  if [[ -f $PW_DEPS_PREFIX/env.sh ]]; then
    echo "=== deps: already unpacked in $PW_DEPS_PREFIX"
  else
    stage deps build.log 60 scripts/gpu_deps.sh --extract "$PW_DEPS_PREFIX"
  fi
  # shellcheck disable=SC1091
  [[ -f $PW_DEPS_PREFIX/env.sh ]] && source "$PW_DEPS_PREFIX/env.sh"
else
  echo "=== deps: no .deps/debs here: using the system's packages"
fi
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
cmake_args=(-S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPW_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$ARCHS"
            "-DCMAKE_CUDA_COMPILER=$NVCC" -DCMAKE_POLICY_VERSION_MINIMUM=3.5)
[[ -n ${PW_DEPS_PREFIX:-} ]] && cmake_args+=("-DPW_DEPS_PREFIX=$PW_DEPS_PREFIX")
stage configure build.log 90 cmake "${cmake_args[@]}"
# Where each dependency was found (must be under the prefix when one is used).
grep -E '^(dnnl_DIR|yaml-cpp_DIR|doctest_DIR|STB_LIB|STB_INCLUDE_DIR|ZLIB_LIBRARY_RELEASE|OpenCL_LIBRARY|CMAKE_CUDA_COMPILER):' \
  "$BUILD/CMakeCache.txt" 2>/dev/null | tee -a "$OUT/build.log" | sed 's/^/    /'
stage build build.log 240 ninja -C "$BUILD" -j "$JOBS"
PW=$BUILD/patchwork
[[ -x $PW ]] && LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-} ldd "$PW" | grep -E 'dnnl|yaml|stb|libz|OpenCL|cuda|cublas|not found' \
  | tee -a "$OUT/build.log" | sed 's/^/    /'

# --- tests ------------------------------------------------------------------------
stage ctest-gpu ctest.log 90 ctest --test-dir "$BUILD" -L gpu -j 4 --timeout 80 --no-tests=error -V
GPU_TESTS=$(ctest --test-dir "$BUILD" -N -L gpu 2>/dev/null | sed -n 's/^Total Tests: //p')
# tests/cuda_parity.h prints "skipped: <reason>" when a GPU test cannot run.
GPU_SKIPS=$(section ctest-gpu ctest.log | grep -ci 'skipped:')

# --- patchwork GPU benchmarks ---------------------------------------------------------
stage bench-vit bench.log 90 "$PW" bench train configs/imagenet/vit_s16.yaml --steps 20 --warmup 5 --repeat 3 \
  --profile-steps 0 --set train.device=cuda --set train.precision=bf16 --set train.batch_size=128
# shellcheck disable=SC2086
stage bench-attn bench.log 60 "$PW" bench attention ${PW_ATTN_ARGS:-}

# --- one epoch of the default config on the GPU ---------------------------------------
RUN=/tmp/pw-gpu-check-run
rm -rf "$RUN"
train_args=(train configs/fashion_mnist/simple_vit.yaml --out "$RUN" --set train.epochs=1 --set train.device=cuda)
[[ -n ${PW_FASHION_MNIST:-} ]] && train_args+=(--set "data.root=$PW_FASHION_MNIST")
stage train train.log 120 "$PW" "${train_args[@]}"
[[ -f $RUN/metrics.jsonl ]] && { echo "--- $RUN/metrics.jsonl"; cat "$RUN/metrics.jsonl"; } >>"$OUT/train.log"

stage ctest-cpu ctest.log 120 ctest --test-dir "$BUILD" -LE gpu -j "$JOBS" --timeout 100 --no-tests=error --output-on-failure

# --- the table ---------------------------------------------------------------------------
num_or_status() {  # VALUE STAGE: the number, else the stage's status
  if [[ -n $1 ]]; then echo "$1"
  elif [[ ${STATUS[$2]:-} == ok ]]; then echo "ran, no number parsed (see ${3:-its log})"
  else echo "${STATUS[$2]:-not run}"
  fi
}
P=$OUT/pytorch.log
vit_pw=$(section bench-vit bench.log | grep -a '^RESULT' | grep -o ' images_per_s=[^ ]*' | tail -1 | cut -d= -f2)
vit_pt=$(field images_per_s "$P")
# patchwork bench attention: a RESULT line with tflops=, else the last "<x> TFLOP/s" it printed.
attn_log=$(section bench-attn bench.log)
attn_pw=$(grep -a '^RESULT' <<<"$attn_log" | grep -o ' tflops=[^ ]*' | tail -1 | cut -d= -f2)
[[ -z $attn_pw ]] && attn_pw=$(grep -aoE '[0-9]+(\.[0-9]+)? *TFLOP/s' <<<"$attn_log" | tail -1 | grep -oE '^[0-9.]+')
attn_pw_shape=$(grep -a '^RESULT' <<<"$attn_log" | tail -1 | grep -oE ' (B|NH|N|HD)=[^ ]*' | tr -d '\n')
attn_pt() {  # NH BACKEND -> TFLOP/s
  grep -a '^RESULT name=attn' "$P" 2>/dev/null | grep " backend=$2 " | grep " NH=$1 " | grep -o ' tflops=[^ ]*' | cut -d= -f2
}
attn_cell() {  # NH: "default X (flash Y, cudnn Z, efficient W)"
  local d others="" b v
  d=$(attn_pt "$1" default)
  for b in flash cudnn efficient; do
    v=$(attn_pt "$1" "$b")
    [[ -n $v ]] && others+="${others:+, }$b $v"
  done
  if [[ -n $d ]]; then echo "$d${others:+ ($others)}"; else num_or_status "" pytorch pytorch.log; fi
}
ips=$(grep -a '"images_per_s"' "$RUN/metrics.jsonl" 2>/dev/null | sed 's/.*"images_per_s": \([0-9.eE+-]*\).*/\1/' \
      | awk '{ s += $1; n++ } END { if (n) printf "%.0f", s / n }')
top1=$(grep -a '"test_top1"' "$RUN/metrics.jsonl" 2>/dev/null | tail -1 | sed 's/.*"test_top1": \([0-9.eE+-]*\).*/\1/')
train_cell="${STATUS[train]:-not run}, ${SECS[train]:-0} s wall"
[[ -n $ips ]] && train_cell+=", mean $ips images/s"
[[ -n $top1 ]] && train_cell+=", test top-1 $(awk -v t="$top1" 'BEGIN { printf "%.2f%%", 100 * t }')"
ctest_cell() {  # STAGE: "N/M passed" from ctest's summary line, else the status
  local line
  line=$(section "$1" ctest.log | grep -E 'tests passed' | tail -1)
  echo "${line:-${STATUS[$1]:-not run}}"
}
{
  echo "# patchwork GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo
  echo "driver $(grep -m1 -oE 'Driver Version: [0-9.]+' "$OUT/env.txt" | cut -d' ' -f3); $TORCH_LINE"
  echo
  echo "| benchmark | patchwork | PyTorch eager + SDPA | unit |"
  echo "|---|---|---|---|"
  echo "| ViT-S/16 224 training step, bf16, batch 128 | $(num_or_status "$vit_pw" bench-vit bench.log) | $(num_or_status "$vit_pt" pytorch pytorch.log) | images/s |"
  # One row per PyTorch attention shape measured (B=8, NH=6 and 12 by default); patchwork's
  # number goes in the first, with the shape its RESULT line names.
  shapes=$(grep -a '^RESULT name=attn' "$P" 2>/dev/null | grep -oE ' B=[0-9]+ NH=[0-9]+ N=[0-9]+ HD=[0-9]+' | sort -u -t= -k3 -n)
  [[ -z $shapes ]] && shapes=$' B=8 NH=6 N=1024 HD=64\n B=8 NH=12 N=1024 HD=64'
  first=1
  while read -r shape; do
    nh=$(grep -oE 'NH=[0-9]+' <<<"$shape" | cut -d= -f2)
    if ((first)); then
      echo "| attention fwd+bwd, bf16, $shape (patchwork:${attn_pw_shape:- its default shape}) | $(num_or_status "$attn_pw" bench-attn bench.log) | $(attn_cell "$nh") | TFLOP/s, FA2 count 14·B·NH·N²·HD |"
    else
      echo "| attention fwd+bwd, bf16, $shape | | $(attn_cell "$nh") | TFLOP/s, FA2 count |"
    fi
    first=0
  done <<<"$shapes"
  echo "| Fashion-MNIST simple_vit, 1 epoch, train.device=cuda | $train_cell | | |"
  echo "| ctest -L gpu ($GPU_TESTS tests) | $(ctest_cell ctest-gpu); 'skipped' lines: ${GPU_SKIPS:-?} (0 expected on a GPU) | | |"
  echo "| ctest -LE gpu | $(ctest_cell ctest-cpu) | | |"
  echo
  echo "| stage | status | seconds |"
  echo "|---|---|---|"
  for s in "${ORDER[@]}"; do echo "| $s | ${STATUS[$s]:-?} | ${SECS[$s]:-?} |"; done
  echo "| total | | $(($(date +%s) - T_START)) |"
} >"$OUT/table.md"
# Logs larger than the run tool returns (16 MiB a file) keep their last 15 MiB.
for f in "$OUT"/*.log "$OUT"/env.txt; do
  [[ -f $f && $(stat -c %s "$f") -gt 15000000 ]] && { tail -c 15000000 "$f" >"$f.t" && mv "$f.t" "$f"; }
done
echo
cat "$OUT/table.md"
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null
exit 0

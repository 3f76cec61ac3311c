#!/usr/bin/env bash
# The one script for the GPU machine: builds the runtime without MLIR, runs
# its tests, makes the golden data with transformers, and leaves a summary
# and logs under $OUT. Usage (from the repo root, .deps carried):
#   bash scripts/gpu/run.sh [golden|runtime|kernels|all]
# (run scripts/gpu/prepare.sh here first: it compiles the PTX the kernel
# checks launch, since the GPU machine has no MLIR)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/out}"
mkdir -p "$OUT"
what="${1:-all}"
summary="$OUT/summary.txt"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }

note "date: $(date -u +%Y-%m-%dT%H:%MZ)"
note "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo none)"

if [[ "$what" == all || "$what" == runtime ]]; then
  start=$SECONDS
  if cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DM2C_BUILD_COMPILER=OFF \
       -DM2C_DEPS_DIR="$PWD/.deps" > "$OUT/runtime-build.log" 2>&1 &&
     ninja -C build-gpu -j 16 >> "$OUT/runtime-build.log" 2>&1; then
    note "runtime build without MLIR: ok ($((SECONDS - start)) s)"
    # M2C_PTX_DIR: every PTX module m2c compiled must load on this driver.
    M2C_PTX_DIR="$PWD/.deps/ptx" ctest --test-dir build-gpu -j 8 --output-on-failure \
      > "$OUT/runtime-ctest.log" 2>&1
    note "runtime ctest: $(grep -E 'tests passed|tests failed' "$OUT/runtime-ctest.log" | tail -1)"
  else
    note "runtime build without MLIR: FAILED (see runtime-build.log)"
    tail -30 "$OUT/runtime-build.log"
  fi
fi

if [[ "$what" == all || "$what" == kernels ]]; then
  # Every unique PTX kernel against a float64 PyTorch model of the CPU
  # backend, with bandwidth next to the ceilings measured in the same run.
  for dir in .deps/ptx/*/; do
    [[ -f "$dir/plan.json" ]] || continue
    name=$(basename "$dir")
    if PYTHONUNBUFFERED=1 python3 tools/m2c-ptx/gpu_check.py "$dir/plan.json" "$dir" --bench \
         > "$OUT/kernels-$name.log" 2>&1; then
      note "kernels $name: ok ($(grep -c -i 'pass\|ok' "$OUT/kernels-$name.log") lines ok)"
    else
      note "kernels $name: FAILED (see kernels-$name.log)"
      tail -20 "$OUT/kernels-$name.log"
    fi
  done
fi

if [[ "$what" == all || "$what" == golden ]]; then
  start=$SECONDS
  rm -rf "$OUT/golden"
  if PYTHONUNBUFFERED=1 python3 scripts/gpu/make_golden.py --out "$OUT/golden" > "$OUT/golden.log" 2>&1; then
    note "golden data: ok ($((SECONDS - start)) s)"
    tar czf "$OUT/golden.tgz" -C "$OUT" golden && rm -rf "$OUT/golden"
  else
    note "golden data: FAILED (see golden.log)"
    tail -40 "$OUT/golden.log"
  fi
fi
cat "$summary"

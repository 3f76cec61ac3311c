#!/usr/bin/env bash
# Run here (not on the GPU machine), after a build: copies the build
# dependencies the GPU machine lacks, and compiles the plans and PTX the GPU
# checks launch, into .deps/ (git-ignored), for `carry`.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .deps && mkdir -p .deps/include .deps/ptx
cp -r /usr/include/nlohmann .deps/include/
cp -r /usr/src/googletest .deps/googletest
build="${M2C_BUILD_DIR:-build}"
if [[ -x "$build/bin/m2c" && -x "$build/bin/m2c-ptx" ]]; then
  for model in tiny minimax-m2-card; do
    out=".deps/ptx/$model"
    mkdir -p "$out"
    "$build/bin/m2c" compile "$model" --target sm_90 --weights none --kv-cache-dtype bf16 \
      --emit=plan -o "$out/plan.json" 2>/dev/null
    "$build/bin/m2c-ptx" "$out/plan.json" --target sm_90 --output-dir "$out" >/dev/null
    "$build/bin/m2c-ptx" "$out/plan.json" --target sm_90 --emit=manifest --output-dir "$out" >/dev/null
  done
else
  echo "prepare: no $build/bin/m2c or m2c-ptx; the GPU kernel checks will be skipped"
fi
du -sh .deps

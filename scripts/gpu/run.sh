#!/usr/bin/env bash
# The one script for the GPU machine: builds the runtime without MLIR, runs
# its tests, makes the golden data with transformers, and leaves a summary
# and logs under $OUT. Usage (from the repo root, .deps carried):
#   bash scripts/gpu/run.sh [all | a comma list of runtime,engine,bench,tune,peers,plot,kernels,golden,quantstudy]
# bench: m2c-bench; peers: transformers eager and torch.compile on the card;
# plot: bench.png (scripts/gpu/plot.py) from the bench and peer JSONs.
# tune: m2c-tune over the search spaces prepare.sh compiled; writes the
#       tuning files (copy them to scripts/gpu/tuning/ and prepare again).
# BENCH_MODELS="card-sm90 ..." limits bench to those artifacts.
# build: the runtime alone; runtime: build + every GoogleTest (the CUDA backend against the CPU one and
#          transformers, the scheduler with 64 requests); engine: sanitizers
#          and full-size runs through m2c-run.
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
# Sections: a comma list, e.g. runtime,engine; "all" is every one.
want() { [[ "$what" == all || ",$what," == *",$1,"* ]]; }

note "date: $(date -u +%Y-%m-%dT%H:%MZ)"
note "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo none)"

if want runtime || want build; then
  start=$SECONDS
  if cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DM2C_BUILD_COMPILER=OFF \
       -DM2C_DEPS_DIR="$PWD/.deps" > "$OUT/runtime-build.log" 2>&1 &&
     ninja -C build-gpu -j 16 >> "$OUT/runtime-build.log" 2>&1; then
    note "runtime build without MLIR: ok ($((SECONDS - start)) s)"
  else
    note "runtime build without MLIR: FAILED (see runtime-build.log)"
    tail -30 "$OUT/runtime-build.log"
  fi
fi

# M2C_PTX_DIR: every PTX module m2c compiled must load on this driver;
# M2C_TEST_ARTIFACTS: what the CUDA backend and scheduler tests (and the
# engine section's sanitizer runs, which skip every case without it) run.
export M2C_PTX_DIR="$PWD/.deps/ptx" M2C_TEST_ARTIFACTS="$PWD/.deps/artifacts"

if want runtime && [[ -x build-gpu/bin/EngineTest ]]; then
  ctest --test-dir build-gpu -j 4 --output-on-failure > "$OUT/runtime-ctest.log" 2>&1
  note "runtime ctest: $(grep -E 'tests passed|tests failed' "$OUT/runtime-ctest.log" | tail -1)"
  grep -E "Failed|\*\*\*" "$OUT/runtime-ctest.log" | head -20 | tee -a "$summary"
  # The GPU figures the tests print, and what skipped (should be nothing).
  M2C_TEST_DATA="$PWD/test/data" build-gpu/bin/EngineTest > "$OUT/engine-test.log" 2>&1
  grep -E "^\[ (gpu vs cpu|golden gpu|scheduler|random fill) \]|PASSED|FAILED|SKIPPED \]" \
    "$OUT/engine-test.log" | tee -a "$summary"
fi

if want engine; then
  art="$PWD/.deps/artifacts"
  # compute-sanitizer on the tiny model's prefill and decode (graphs included).
  for tool in memcheck racecheck; do
    if compute-sanitizer --tool "$tool" --error-exitcode 3 build-gpu/bin/EngineTest \
         --gtest_filter='*SanitizerPrefillAndDecode*' > "$OUT/sanitizer-$tool.log" 2>&1; then
      note "compute-sanitizer $tool: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitizer-$tool.log" | tail -1), $(grep -c '^\[       OK \]' "$OUT/sanitizer-$tool.log") cases run, $(grep -c '^\[  SKIPPED \]' "$OUT/sanitizer-$tool.log") skipped"
    else
      note "compute-sanitizer $tool: FAILED (see sanitizer-$tool.log)"
      grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Invalid|Race|Error" "$OUT/sanitizer-$tool.log" | head -10 | tee -a "$summary"
    fi
  done
  # Full-size variants with random weights: a 1024-token prefill, then 256
  # decode steps; plus 32 concurrent requests on the card.
  prompt=$(python3 -c "print(','.join(str((i * 7919) % 200000) for i in range(1024)))")
  mem=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
  models="card-sm90 m2-4layers-sm90"
  # minimax-m2 with int4 experts holds ~128 GB of weights: H200 only.
  if [[ "${mem:-0}" -gt 120000 ]]; then models="$models m2-int4-sm90"
  else note "m2-int4-sm90: skipped, needs ~128 GB (this GPU has ${mem:-?} MiB)"; fi
  for model in $models; do
    if build-gpu/bin/m2c-run "$art/$model.m2a" --device cuda --random-weights \
         --prompt-ids "$prompt" --max-new-tokens 257 --stats > "$OUT/run-$model.jsonl" \
         2> "$OUT/run-$model.log"; then
      note "$model, prefill 1024 + 256 decode steps: $(grep 'm2c-run:' "$OUT/run-$model.log" | tail -1)"
    else
      note "$model: FAILED"; tail -5 "$OUT/run-$model.log" | tee -a "$summary"
    fi
  done
  python3 - "$OUT/batch32.jsonl" <<'PY'
import json, random, sys
rng = random.Random(1)
with open(sys.argv[1], "w") as f:
    for i in range(32):
        n = rng.randint(1, 2000)
        req = {"id": i, "prompt_ids": [rng.randrange(200000) for _ in range(n)], "max_new_tokens": 64}
        if i % 2:
            req.update(temperature=0.8, top_p=0.9, seed=i)
        f.write(json.dumps(req) + "\n")
PY
  if build-gpu/bin/m2c-run "$art/card-sm90.m2a" --device cuda --random-weights \
       --batch-file "$OUT/batch32.jsonl" --stats --output "$OUT/batch32-replies.jsonl" \
       2> "$OUT/run-batch32.log"; then
    note "card, 32 requests (1-2000 prompt tokens, 64 new): $(grep 'm2c-run:' "$OUT/run-batch32.log" | tail -1)"
  else
    note "card batch: FAILED"; tail -5 "$OUT/run-batch32.log" | tee -a "$summary"
  fi
  # The same 32 requests, the sampled half with MiniMax's recommended
  # top-k 40 (temperature 1, top-p 0.95): drawn from the 64 candidates on
  # the card, from whole rows of logits without them. Same replies.
  python3 - "$OUT/batch32.jsonl" "$OUT/batch32-topk.jsonl" <<'PY'
import json, sys
with open(sys.argv[1]) as src, open(sys.argv[2], "w") as dst:
    for line in src:
        req = json.loads(line)
        if "temperature" in req:
            req.update(temperature=1.0, top_p=0.95, top_k=40)
        dst.write(json.dumps(req) + "\n")
PY
  for model in card-sm90 card-nocand-sm90; do
    if build-gpu/bin/m2c-run "$art/$model.m2a" --device cuda --random-weights \
         --batch-file "$OUT/batch32-topk.jsonl" --stats --output "$OUT/topk-replies-$model.jsonl" \
         2> "$OUT/run-topk-$model.log"; then
      note "$model, 32 requests, sampled half top-k 40: $(grep 'm2c-run:' "$OUT/run-topk-$model.log" | tail -1)"
    else
      note "$model top-k batch: FAILED"; tail -5 "$OUT/run-topk-$model.log" | tee -a "$summary"
    fi
  done
  if cmp -s "$OUT/topk-replies-card-sm90.jsonl" "$OUT/topk-replies-card-nocand-sm90.jsonl"; then
    note "top-k replies from candidates and from whole rows: identical"
  else
    note "top-k replies from candidates and from whole rows: DIFFER"
  fi
  nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader >> "$summary" 2>/dev/null
fi

if want bench; then
  # m2c-bench: decode and prefill against the copy ceiling measured in the
  # same run.
  art="$PWD/.deps/artifacts"
  mem=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
  batches="1,8,32,64"
  [[ "${mem:-0}" -lt 100000 ]] && batches="1,8,32"  # 64 x 8K of card KV needs 64 GB
  models="card-sm90 card-tuned-sm90 m2-4layers-sm90"
  [[ "${mem:-0}" -gt 120000 ]] && models="$models m2-int4-sm90 m2-int4-tuned-sm90"
  models="${BENCH_MODELS:-$models}"
  for model in $models; do
    [[ -f "$art/$model.m2a" ]] || { note "m2c-bench $model: no artifact (prepare.sh)"; continue; }
    flags=(--batches "$batches" --profile-batches 1,32)
    # int4 minimax-m2 leaves ~12 GB for the KV cache: 1K contexts, batch <= 32.
    [[ "$model" == m2-int4* ]] && flags=(--batches 1,8,32 --contexts 1024 --prefill 1024 --profile-batches 1,32)
    if build-gpu/bin/m2c-bench "$art/$model.m2a" --random-weights "${flags[@]}" \
         --json "$OUT/bench-$model.json" > "$OUT/bench-$model.txt" 2> "$OUT/bench-$model.log"; then
      note "m2c-bench $model (${flags[*]}):"
      cat "$OUT/bench-$model.txt" | tee -a "$summary"
    else
      note "m2c-bench $model: FAILED"; tail -5 "$OUT/bench-$model.log" | tee -a "$summary"
    fi
  done
  # The fixed cost that CUDA graphs and programmatic dependent launch
  # remove: the card's decode step without each.
  for off in no-cuda-graphs no-pdl; do
    if [[ -f "$art/card-sm90.m2a" ]] &&
       build-gpu/bin/m2c-bench "$art/card-sm90.m2a" --random-weights "--$off" \
         --batches 1,32 --contexts 1024 --prefill 64 --json "$OUT/bench-card-$off.json" \
         > "$OUT/bench-card-$off.txt" 2> "$OUT/bench-card-$off.log"; then
      note "m2c-bench card-sm90 --$off:"
      grep -E "^(launches|batch|1 |32 )" "$OUT/bench-card-$off.txt" | tee -a "$summary"
    fi
  done
fi

if want tune; then
  # m2c-tune: every candidate of each space timed at decode batches 1 and
  # 32 (1K and 8K contexts) and a 1K prefill, its logits checked against
  # the cost model's; writes tuning-<space>.json.
  for space in .deps/tune/*/; do
    name=$(basename "$space")
    if build-gpu/bin/m2c-tune "$space" --random-weights --batches 1,32 --contexts 1024,8192 \
         --prefill 1024 --output "$OUT/tuning-$name.json" --json "$OUT/tune-$name.json" \
         > "$OUT/tune-$name.txt" 2> "$OUT/tune-$name.log"; then
      note "m2c-tune $name:"
      cat "$OUT/tune-$name.txt" | tee -a "$summary"
    else
      note "m2c-tune $name: FAILED"; tail -5 "$OUT/tune-$name.log" | tee -a "$summary"
    fi
  done
fi

if want peers; then
  # transformers eager and torch.compile on the card (scripts/gpu/peers.py).
  if PYTHONUNBUFFERED=1 timeout 540 python3 scripts/gpu/peers.py .deps/ptx/minimax-m2-card/plan.json \
       "$OUT/peers-card.json" --batches 1,32 --compile > "$OUT/peers-card.log" 2>&1; then
    note "transformers eager and torch.compile, card:"
    grep -E "transformers|torch.compile|cuBLAS" "$OUT/peers-card.log" | tee -a "$summary"
  else
    note "peers: FAILED"; tail -8 "$OUT/peers-card.log" | tee -a "$summary"
  fi
fi

if want plot; then
  # bench.png from this run's (or carried, .deps/results) bench and peer JSONs.
  jsons=$(ls "$OUT"/bench-*.json 2>/dev/null || ls .deps/results/bench-*.json 2>/dev/null)
  peers=$(ls "$OUT/peers-card.json" .deps/results/peers-card.json 2>/dev/null | head -1)
  # shellcheck disable=SC2086
  if [[ -n "$jsons" ]] && python3 scripts/gpu/plot.py "$OUT/bench.png" $jsons \
       ${peers:+--peers "$peers"} >> "$summary" 2>&1; then :; else note "plot: FAILED or no data"; fi
fi

if want kernels; then
  # Every unique PTX kernel against a float64 PyTorch model of the CPU
  # backend, with bandwidth next to the ceilings measured in the same run.
  for dir in .deps/ptx/*/; do
    [[ -f "$dir/plan.json" ]] || continue
    name=$(basename "$dir")
    if PYTHONUNBUFFERED=1 python3 scripts/gpu/gpu_check.py "$dir/plan.json" "$dir" --bench \
         > "$OUT/kernels-$name.log" 2>&1; then
      note "kernels $name: ok ($(grep -c -i 'pass\|ok' "$OUT/kernels-$name.log") lines ok)"
    else
      note "kernels $name: FAILED (see kernels-$name.log)"
      tail -20 "$OUT/kernels-$name.log"
    fi
  done
fi

if want golden; then
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
# quantstudy: m2c's weight formats on a tiny model, random and trained
# (scripts/gpu/quant_study.py; figures in docs/quantization.md).
if want quantstudy; then
  start=$SECONDS
  if PYTHONUNBUFFERED=1 python3 scripts/gpu/quant_study.py --golden test/data/golden/bf16 \
       --train 2000:3e-3:32 --train 4000:1e-3:64 --json "$OUT/quant-study.json" \
       > "$OUT/quant-study.log" 2>&1; then
    note "quant study: ok ($((SECONDS - start)) s)"
    grep -E "golden|  (int8|fp8|int4|gptq int8|gptq fp8|gptq int4|int4 pinned|fp8 pinned) " "$OUT/quant-study.log" | head -16 | tee -a "$summary"
  else
    note "quant study: FAILED (see quant-study.log)"
    tail -20 "$OUT/quant-study.log"
  fi
fi
cat "$summary"

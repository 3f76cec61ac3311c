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
  # name:model:flags for the kernel checks (gpu_check.py).
  # tiny-e64: more than 32 experts, so the router takes its two-launch form
  # (minimax-m2's, whose full plan is too big for the checks); tiny-e12: 3
  # groups of 4 experts, so 6 of the router's 8 warps split K, and a prime
  # vocabulary, so the lm_head's last row block is ragged.
  for item in "tiny:tiny:--kv-cache-dtype bf16" "minimax-m2-card:minimax-m2-card:--kv-cache-dtype bf16" \
              "golden-fp8:test/data/golden/fp8:--kv-cache-dtype f32 --kv-block-size 4 --max-tokens 64" \
              "tiny-e64:tiny:--kv-cache-dtype bf16 --set num_local_experts=64 --set num_experts_per_tok=4" \
              "tiny-e12:tiny:--kv-cache-dtype bf16 --set num_local_experts=12 --set vocab_size=509"; do
    IFS=: read -r name model flags <<< "$item"
    out=".deps/ptx/$name"
    mkdir -p "$out"
    # shellcheck disable=SC2086
    "$build/bin/m2c" compile "$model" --target sm_90 --weights none $flags \
      --emit=plan -o "$out/plan.json" 2>/dev/null
    "$build/bin/m2c-ptx" "$out/plan.json" --target sm_90 --output-dir "$out" >/dev/null
    "$build/bin/m2c-ptx" "$out/plan.json" --target sm_90 --emit=manifest --output-dir "$out" >/dev/null
  done
  # sm_90a plans: their prefill GEMMs and grouped experts are the wgmma +
  # TMA kernels (tiny's experts need an intermediate size of 64k for them).
  for item in "tiny-sm90a:tiny:--set intermediate_size=128" "card-sm90a:minimax-m2-card:"; do
    IFS=: read -r name model flags <<< "$item"
    out=".deps/ptx/$name"
    mkdir -p "$out"
    # shellcheck disable=SC2086
    "$build/bin/m2c" compile "$model" --target sm_90a --weights none --kv-cache-dtype bf16 $flags \
      --emit=plan -o "$out/plan.json" 2>/dev/null
    "$build/bin/m2c-ptx" "$out/plan.json" --target sm_90a --output-dir "$out" >/dev/null
    "$build/bin/m2c-ptx" "$out/plan.json" --target sm_90a --emit=manifest --output-dir "$out" >/dev/null
  done
  # Artifacts the GPU tests and runs execute (tiny ones embed their weights;
  # the full-size ones generate them at load with --random-weights).
  art=.deps/artifacts
  mkdir -p "$art"
  m2c() { "$build/bin/m2c" "$@" 2>>.deps/artifacts/compile.log; }
  m2c compile tiny --target cpu --random-weights --weights embed -o "$art/tiny-cpu.m2a"
  m2c compile tiny --target sm_90 --kv-cache-dtype f32 --random-weights --weights embed \
    -o "$art/tiny-sm90.m2a"
  m2c compile tiny --target sm_90 --kv-cache-dtype bf16 --random-weights --weights embed \
    -o "$art/tiny-sm90-bf16kv.m2a"
  m2c compile tiny --target sm_90a --set intermediate_size=128 --kv-cache-dtype bf16 \
    --random-weights --weights embed -o "$art/tiny-sm90a.m2a"
  # The fp8 checkpoint's rotary_dim (24) is not a multiple of the 8 bf16
  # elements the attention kernel moves at once; its cache stays f32.
  for golden in bf16:bf16 fp8:f32; do
    m2c compile "test/data/golden/${golden%:*}" --target sm_90 --kv-cache-dtype "${golden#*:}" \
      --kv-block-size 4 --max-tokens 64 --weights embed -o "$art/golden-${golden%:*}-sm90.m2a"
  done
  # Every packed format, on experts, attention and lm_head (f32 KV, so the
  # GPU-vs-CPU comparison sees the weights' kernels alone).
  for q in int8 int4 fp8; do
    m2c compile tiny --target sm_90 --kv-cache-dtype f32 --quant "experts=$q,attn=$q,lm_head=$q" \
      --random-weights --weights embed -o "$art/tiny-sm90-$q.m2a"
  done
  # int4 packed by GPTQ (--quant-calibration): same layout, other bytes.
  python3 -c "import random; r = random.Random(3); print('\n'.join(','.join(str(r.randrange(512)) for _ in range(64)) for _ in range(16)))" \
    > "$art/calibration-tiny.ids"
  m2c compile tiny --target sm_90 --kv-cache-dtype f32 --quant "experts=int4,attn=int4,lm_head=int4" \
    --quant-calibration "$art/calibration-tiny.ids" --random-weights --weights embed \
    -o "$art/tiny-sm90-int4-gptq.m2a"
  m2c compile minimax-m2-card --target sm_90 --weights none -o "$art/card-sm90.m2a"
  # sm_90a: the prefill GEMMs on wgmma + TMA (the rest as on sm_90).
  m2c compile minimax-m2-card --target sm_90a --weights none -o "$art/card-sm90a.m2a"
  # The card with the lm_head as a plain GEMV after its own norm kernel, and
  # the argmax on the host: the baseline of the fused decode tail.
  m2c compile minimax-m2-card --target sm_90 --weights none --disable-pass=m2c-fuse-decode-tail \
    -o "$art/card-notail-sm90.m2a"
  # The card without sampling candidates: the baseline of their launch.
  m2c compile minimax-m2-card --target sm_90 --weights none --sampling-candidates=0 \
    -o "$art/card-nocand-sm90.m2a"
  # minimax-m2, all 62 layers, int4 experts (bf16 attention and lm_head):
  # ~128 GB of weights, for an H200.
  m2c compile minimax-m2 --set quantization_config=null --quant experts=int4 --target sm_90 \
    --weights none -o "$art/m2-int4-sm90.m2a"
  # minimax-m2 at 4 of its 62 layers in bf16 (the preset's FP8 format is
  # for checkpoints): the same layers, unquantized, for an H100.
  m2c compile minimax-m2 --set num_hidden_layers=4 --set 'attn_type_list=[1,1,1,1]' \
    --set quantization_config=null --target sm_90 --weights none -o "$art/m2-4layers-sm90.m2a"
  # The same for sm_90a: 256 experts' grouped prefill GEMMs on wgmma + TMA.
  m2c compile minimax-m2 --set num_hidden_layers=4 --set 'attn_type_list=[1,1,1,1]' \
    --set quantization_config=null --target sm_90a --weights none -o "$art/m2-4layers-sm90a.m2a"
  # Tiling search spaces for m2c-tune (run.sh tune): the card, and int4
  # minimax-m2 at 4 layers, whose kernels have the 62-layer model's shapes,
  # so its tuning file serves the full model.
  m2_int4=(--set quantization_config=null --quant experts=int4)
  m2_4layers=(--set num_hidden_layers=4 --set 'attn_type_list=[1,1,1,1]')
  m2c tune minimax-m2-card --target sm_90 --out-dir .deps/tune/card >/dev/null
  m2c tune minimax-m2 "${m2_4layers[@]}" "${m2_int4[@]}" --target sm_90 \
    --out-dir .deps/tune/m2-int4 >/dev/null
  # Artifacts compiled with the tuning files m2c-tune wrote on the GPU
  # (scripts/gpu/tuning/, committed with the run that made them).
  if [[ -f scripts/gpu/tuning/card-sm90.json ]]; then
    m2c compile minimax-m2-card --target sm_90 --weights none \
      --tuning scripts/gpu/tuning/card-sm90.json -o "$art/card-tuned-sm90.m2a"
  fi
  if [[ -f scripts/gpu/tuning/m2-int4-sm90.json ]]; then
    m2c compile minimax-m2 "${m2_int4[@]}" --target sm_90 --weights none \
      --tuning scripts/gpu/tuning/m2-int4-sm90.json -o "$art/m2-int4-tuned-sm90.m2a"
  fi
else
  echo "prepare: no $build/bin/m2c or m2c-ptx; the GPU kernel checks will be skipped"
fi
du -sh .deps

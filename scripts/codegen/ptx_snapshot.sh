#!/usr/bin/env bash
# Writes the PTX and launch manifests of every preset, weight format and
# target into one folder, so that a refactor can show its codegen unchanged:
#   scripts/codegen/ptx_snapshot.sh /tmp/before      # on the old build
#   scripts/codegen/ptx_snapshot.sh /tmp/after       # on the new build
#   scripts/codegen/ptx_snapshot.sh --compare /tmp/before /tmp/after
# --compare exits 1 when any file differs once register numbers are masked
# (%r12 -> %r), and says how many differ byte for byte.
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${M2C_BUILD_DIR:-build}"

if [[ "${1:-}" == "--compare" ]]; then
  a="$2" b="$3"
  masked() { sed -E 's/%(r|rd|f|fd|h|hh|p|rs)[0-9]+/%\1/g' "$1"; }
  raw=0 differ=0 files=0
  while IFS= read -r rel; do
    files=$((files + 1))
    if [[ ! -f "$b/$rel" ]]; then
      echo "missing in $b: $rel"; differ=$((differ + 1)); continue
    fi
    cmp -s "$a/$rel" "$b/$rel" && continue
    raw=$((raw + 1))
    if ! diff -q <(masked "$a/$rel") <(masked "$b/$rel") >/dev/null; then
      echo "differs: $rel"; differ=$((differ + 1))
    fi
  done < <(cd "$a" && find . -type f | sort)
  extra=$(comm -13 <(cd "$a" && find . -type f | sort) <(cd "$b" && find . -type f | sort) | wc -l)
  echo "ptx_snapshot: $files files; $raw differ byte for byte, $differ beyond register numbering; $extra only in $b"
  [[ $differ -eq 0 && $extra -eq 0 ]]
  exit
fi

out="${1:?usage: ptx_snapshot.sh OUT | --compare A B}"
rm -rf "$out" && mkdir -p "$out"
m2c="$build/bin/m2c" ptx="$build/bin/m2c-ptx"
# name|model|flags: every preset, the golden checkpoints, and each weight
# format on attention, experts and lm_head.
plans=(
  "tiny|tiny|"
  "tiny-bf16kv|tiny|--kv-cache-dtype bf16"
  "card|minimax-m2-card|--kv-cache-dtype bf16"
  "m2|minimax-m2|"
  "m2-int4|minimax-m2|--set quantization_config=null --quant experts=int4"
  "golden-bf16|test/data/golden/bf16|--kv-block-size 4 --max-tokens 64"
  "golden-fp8|test/data/golden/fp8|--kv-block-size 4 --max-tokens 64 --kv-cache-dtype f32"
)
for q in int8 int4 fp8; do
  plans+=("tiny-$q|tiny|--quant experts=$q,attn=$q,lm_head=$q")
done
for target in sm_80 sm_90 sm_90a; do
  for item in "${plans[@]}"; do
    IFS='|' read -r name model flags <<< "$item"
    dir="$out/$target/$name"
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    "$m2c" compile "$model" --target "$target" --weights none $flags --emit=plan \
      -o "$dir/plan.json" 2>"$dir/compile.log" || { cat "$dir/compile.log"; exit 1; }
    rm "$dir/compile.log"
    "$ptx" "$dir/plan.json" --target "$target" --output-dir "$dir" >/dev/null
    "$ptx" "$dir/plan.json" --target "$target" --emit=manifest --output-dir "$dir" >/dev/null
  done
done
echo "ptx_snapshot: $(find "$out" -name '*.ptx' | wc -l) PTX files in $out"

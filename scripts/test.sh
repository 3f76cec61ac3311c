#!/usr/bin/env bash
# Sets up, builds and runs every test (lit suite and GoogleTest units).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ctest --test-dir "${M2C_BUILD_DIR:-build}" --output-on-failure -j 2

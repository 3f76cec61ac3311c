#!/usr/bin/env bash
# Run here (not on the GPU machine): copies the build dependencies the GPU
# machine lacks into .deps/ (git-ignored), for `carry`.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .deps && mkdir -p .deps/include
cp -r /usr/include/nlohmann .deps/include/
cp -r /usr/src/googletest .deps/googletest
du -sh .deps

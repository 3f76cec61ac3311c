//===- TokenizerBench.cpp - Encode/decode throughput of a tokenizer.json --===//
//
// Usage: m2c-tokenizer-bench TOKENIZER.json TEXT_FILE [PASSES]
// Encodes the file line-block by line-block (64 KiB chunks cut at newlines,
// as a server would see requests) and reports MB/s for the first pass (cold
// word cache) and the best later pass, then decode MB/s. Invalid UTF-8
// chunks are skipped and counted.
//
//===----------------------------------------------------------------------===//

#include "runtime/tokenizer/Tokenizer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace m2c;

int main(int argc, char **argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER.json TEXT_FILE [PASSES]\n", argv[0]);
    return 1;
  }
  int passes = argc > 3 ? std::max(1, std::atoi(argv[3])) : 3;
  auto loadStart = std::chrono::steady_clock::now();
  StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::fromFile(argv[1]);
  if (!tok) {
    std::fprintf(stderr, "m2c: error: %s\n", tok.status().message().c_str());
    return 1;
  }
  double loadSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - loadStart).count();
  std::ifstream in(argv[2], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "m2c: error: %s: cannot open file\n", argv[2]);
    return 1;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  std::vector<std::string> chunks;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = std::min(text.size(), pos + 65536);
    size_t nl = text.rfind('\n', end);
    if (end < text.size() && nl != std::string::npos && nl > pos)
      end = nl + 1;
    chunks.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  size_t bytes = 0, tokens = 0, skipped = 0;
  std::vector<std::vector<int32_t>> encoded(chunks.size());
  double first = 0, best = 1e30;
  for (int pass = 0; pass < passes; ++pass) {
    bytes = tokens = skipped = 0;
    auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < chunks.size(); ++i) {
      StatusOr<std::vector<int32_t>> ids = (*tok)->encode(chunks[i]);
      if (!ids) {
        ++skipped;
        continue;
      }
      bytes += chunks[i].size();
      tokens += ids->size();
      encoded[i] = ids.take();
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (pass == 0)
      first = s;
    best = std::min(best, s);
  }
  auto start = std::chrono::steady_clock::now();
  size_t decodedBytes = 0;
  for (const std::vector<int32_t> &ids : encoded)
    decodedBytes += (*tok)->decode(ids).size();
  double decodeSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double mb = bytes / 1e6;
  std::printf("tokenizer load: %.2f s\n", loadSeconds);
  std::printf("text: %.2f MB in %zu chunks (%zu skipped: invalid UTF-8), %zu tokens "
              "(%.2f bytes/token)\n",
              mb, chunks.size(), skipped, tokens, tokens ? double(bytes) / tokens : 0.0);
  std::printf("encode, first pass (cold cache): %.1f MB/s\n", mb / first);
  std::printf("encode, best of %d passes: %.1f MB/s\n", passes, mb / best);
  std::printf("decode: %.1f MB/s\n", decodedBytes / 1e6 / decodeSeconds);
  return 0;
}

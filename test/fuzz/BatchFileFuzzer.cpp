//===- BatchFileFuzzer.cpp - libFuzzer target for batch-file requests ------===//
//
// Feeds arbitrary text to parseBatchFile (the JSON-lines requests of m2c run
// and m2c-run --batch-file), and writes a reply for every accepted request,
// as the tools do. Built with -fno-exceptions: a nlohmann exception on any
// path (a type mismatch, invalid UTF-8 in a dump) is a crash here.
//
//===----------------------------------------------------------------------===//

#include "runtime/serve/BatchFile.h"

#include <cstdlib>
#include <string>

using namespace m2c;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  GenerationRequest defaults;
  StatusOr<std::vector<BatchEntry>> entries = parseBatchFile(text, "fuzz", defaults, nullptr);
  if (!entries) {
    if (entries.status().message().rfind("fuzz", 0) != 0)
      std::abort(); // every error names its origin
    return 0;
  }
  for (size_t i = 0; i < entries->size(); ++i) {
    const BatchEntry &entry = (*entries)[i];
    if (entry.request.promptIds.empty() || !validateSamplingParams(entry.request.sampling))
      std::abort(); // accepted requests are runnable
    GenerationResult result;
    result.generatedIds = entry.request.promptIds;
    if (i % 2)
      result.status = Status::error(std::string(reinterpret_cast<const char *>(data), size));
    std::string reply = batchReply(entry, i, result, nullptr);
    if (reply.empty() || reply.front() != '{')
      std::abort();
  }
  return 0;
}

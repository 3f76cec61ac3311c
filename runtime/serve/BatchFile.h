//===- BatchFile.h - Many requests in, one JSON reply per request out -----===//
//
// A batch file is JSON lines, one request each:
//   {"id": "a", "prompt_ids": [1, 2, 3], "max_new_tokens": 64,
//    "temperature": 0.7, "top_k": 40, "top_p": 0.9, "seed": 1, "stop_ids": [2]}
// or "prompt": "text" instead of "prompt_ids" (needs a tokenizer). Every
// key but the prompt is optional and defaults to the command line's value;
// an unknown key is an error (a typo must not silently change sampling).
// Blank lines are skipped. Replies keep the requests' order:
//   {"id": "a", "index": 0, "prompt_tokens": 3, "generated_ids": [...],
//    "text": "...", "finish_reason": "stop" | "length" | "error", "error": "..."}
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_SERVE_BATCHFILE_H
#define M2C_RUNTIME_SERVE_BATCHFILE_H

#include "runtime/engine/Engine.h"

#include <string>
#include <vector>

namespace m2c {

class Tokenizer;

struct BatchEntry {
  /// The request's "id" as JSON text ("null" when absent), echoed back.
  std::string idJson = "null";
  GenerationRequest request;
};

/// Parses batch-file text; `defaults` supplies every optional key. Errors
/// read "<origin>:<line>: <why>".
StatusOr<std::vector<BatchEntry>> parseBatchFile(const std::string &text, const std::string &origin,
                                                 const GenerationRequest &defaults,
                                                 const Tokenizer *tokenizer);
StatusOr<std::vector<BatchEntry>> readBatchFile(const std::string &path,
                                                const GenerationRequest &defaults,
                                                const Tokenizer *tokenizer);

/// One reply line (no newline). `tokenizer` may be null (no "text").
std::string batchReply(const BatchEntry &entry, size_t index, const GenerationResult &result,
                       const Tokenizer *tokenizer);

} // namespace m2c

#endif // M2C_RUNTIME_SERVE_BATCHFILE_H

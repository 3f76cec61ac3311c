//===- Checkpoint.h - A model directory of one or many safetensors shards -===//
//
// Resolves tensor names to shards the way transformers does: a single
// model.safetensors, or model.safetensors.index.json whose "weight_map"
// names the shard of every tensor. The index is untrusted too: every shard
// it names must exist inside the directory and really hold the tensors the
// index assigns to it.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_CHECKPOINT_CHECKPOINT_H
#define M2C_RUNTIME_CHECKPOINT_CHECKPOINT_H

#include "runtime/checkpoint/SafeTensors.h"
#include "runtime/support/Status.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace m2c {

struct CheckpointOptions {
  /// Map every shard and cross-check the whole index at open time. With
  /// false, a shard is mapped on the first get() of one of its tensors and
  /// index/shard mismatches surface there. Mapping only parses headers, so
  /// eager opening of even the 230 GB checkpoint is cheap.
  bool eager = true;
};

class Checkpoint {
public:
  /// `path` is a directory (index preferred only when there is no
  /// model.safetensors, as in transformers), a .safetensors file, or a
  /// *.index.json file.
  static StatusOr<Checkpoint> open(const std::string &path,
                                   const CheckpointOptions &options = {});

  Checkpoint(Checkpoint &&) = default;
  Checkpoint &operator=(Checkpoint &&) = default;

  /// The file that describes the checkpoint (index or single shard);
  /// errors about missing tensors are reported against it.
  const std::string &origin() const { return origin_; }
  bool isSharded() const { return sharded_; }

  bool has(const std::string &name) const;
  /// Fails with "<origin>: no tensor named '<name>'" when absent, or with
  /// the shard's error when its file is bad.
  StatusOr<TensorView> get(const std::string &name) const;
  /// All tensor names, sorted.
  std::vector<std::string> names() const;
  /// The shard path holding `name`, or origin() when unknown; for messages.
  std::string fileOf(const std::string &name) const;
  /// Maps every shard not yet mapped and checks the index against it.
  Status openAllShards() const;

private:
  Checkpoint() = default;
  StatusOr<const SafeTensorsFile *> shard(size_t index) const;

  struct Shard {
    std::string path;
    /// Tensors the index assigns to this shard.
    std::vector<std::string> expected;
    std::unique_ptr<SafeTensorsFile> file;
  };

  std::string origin_;
  bool sharded_ = false;
  /// name -> index into shards_.
  std::map<std::string, size_t> tensorShard_;
  // Behind unique_ptrs so that Checkpoint stays movable and pointers into
  // a mapped shard stay stable while other shards are opened lazily.
  std::vector<std::unique_ptr<Shard>> shards_;
  std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();
};

} // namespace m2c

#endif // M2C_RUNTIME_CHECKPOINT_CHECKPOINT_H

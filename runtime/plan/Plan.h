//===- Plan.h - The executable plan: the compiler/runtime contract --------===//
//
// A plan is what both backends execute: per entry point, a list of kernel
// invocations over buffers laid out in one arena by a compile-time memory
// plan, plus weight bindings. It has no MLIR in it; codegen/ builds it from
// the IR and the artifact serializes it as JSON.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_PLAN_PLAN_H
#define M2C_RUNTIME_PLAN_PLAN_H

#include "runtime/plan/GpuProgram.h"
#include "runtime/plan/KernelAttrs.h"
#include "runtime/plan/Quantization.h"
#include "runtime/support/Status.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace m2c::plan {

constexpr int64_t kPlanVersion = 1;

const char *elementTypeName(ElementType type);
StatusOr<ElementType> parseElementType(const std::string &name);
int64_t elementSize(ElementType type);

/// Kernel kinds (KernelKinds.def lists each with its operands and typed
/// attributes). Each has a reference implementation in the CPU backend.
enum class KernelKind : uint8_t {
#define M2C_KERNEL_KIND(Enum, ...) Enum,
#include "runtime/plan/KernelKinds.def"
};
const char *kernelKindName(KernelKind kind);
StatusOr<KernelKind> parseKernelKind(const std::string &name);
/// The kind's operands, as KernelKinds.def states them.
const char *kernelKindOperands(KernelKind kind);

/// The runtime inputs of every entry point, in order.
enum class EntryInput : uint8_t { TokenIds, Positions, TokenSeqs, BlockTables };
constexpr int kNumEntryInputs = 4;
const char *entryInputName(EntryInput input);

/// A 2-D activation [rows, cols]; rows is the step's token count unless
/// `staticRows` is set. The memory plan sized it for plan.maxTokens rows.
struct Buffer {
  std::string name;
  ElementType type = ElementType::F32;
  int64_t cols = 0;
  int64_t staticRows = 0; // 0: rows = tokens of the step
  int64_t offset = 0;     // bytes into the arena

  int64_t rows(int64_t tokens) const { return staticRows ? staticRows : tokens; }
  int64_t bytesFor(int64_t tokens) const { return rows(tokens) * cols * elementSize(type); }
};

struct Operand {
  enum class Kind : uint8_t { Input, Buffer, Weight };
  Kind kind = Kind::Buffer;
  int64_t index = 0; // EntryInput, buffer id or weight id

  static Operand input(EntryInput in) { return {Kind::Input, static_cast<int64_t>(in)}; }
  static Operand buffer(int64_t id) { return {Kind::Buffer, id}; }
  static Operand weight(int64_t id) { return {Kind::Weight, id}; }
};

struct Kernel {
  KernelKind kind = KernelKind::Add;
  /// Readable in traces and reports: "layer3.attention".
  std::string name;
  std::vector<Operand> inputs;
  std::vector<int64_t> outputs; // buffer ids
  /// Numeric attributes (bools as 0/1), read and written through the
  /// kind's struct in KernelAttrs.h; "tile.*" ones hold the tiling.
  AttrMap attrs;
  /// GPU plans: the tiling key ("decode/linear/3072x6144") whose parameters
  /// the kernel's "tile.*" attributes hold; `m2c-tune` times by it.
  std::string tileKey;

  /// The kind's typed attributes (A is its struct in KernelKinds.def).
  template <class A> A typedAttrs() const { return readAttrs<A>(attrs); }
};

struct Entry {
  std::string name; // "prefill" | "decode"
  /// True when the logits cover only the last token (prefill).
  bool lastTokenLogits = false;
  std::vector<Buffer> buffers;
  std::vector<Kernel> kernels;
  int64_t output = 0; // buffer holding the logits
  /// The buffer holding each logits row's greedy argmax (i32 [rows, 1]),
  /// or -1 when the entry computes none (m2c-fuse-decode-tail).
  int64_t greedyIds = -1;
  /// Each logits row's best K logits, best first (sampling::candidateKey):
  /// ids i32 [rows, K] and values f32 [rows, K], or -1 when the entry
  /// computes none (m2c-fuse-decode-tail{candidates=K}).
  int64_t candidateIds = -1;
  int64_t candidateLogits = -1;
  int64_t arenaBytes = 0;
};

/// How a weight's bytes are stored in the artifact.
struct WeightStorage {
  ElementType type = ElementType::BF16;
  uint64_t offset = 0; // into the artifact's weight section
  uint64_t bytes = 0;
};

/// One checkpoint tensor of a weight fused by concatenating rows.
struct WeightPart {
  std::string binding; // checkpoint tensor name
  int64_t rows = 0;
};

struct Weight {
  std::string symbol;  // the IR symbol
  std::string binding; // checkpoint tensor name; "{e}" stands for an expert
  std::vector<int64_t> shape;
  ElementType type = ElementType::BF16; // logical element type
  Quantization quantization = Quantization::None;
  WeightStorage storage;                // valid when weights are embedded
  /// Non-empty for a matrix fused from several checkpoint tensors (q/k/v):
  /// their rows, in order. Each part is read, generated and named as its
  /// own tensor; `binding` is then only a label.
  std::vector<WeightPart> parts;

  int64_t numElements() const;
  /// Bytes of the packed form in the artifact (data then scales).
  uint64_t storageBytes() const;
};

/// The tensors a weight is made of: itself, or one unquantized [rows, K]
/// weight per part (symbol and binding the part's checkpoint name), with
/// the row each starts at.
std::vector<std::pair<Weight, int64_t>> weightParts(const Weight &w);

/// The element types a KV cache may have ("f32", "bf16", "f16"); the
/// error lists them.
StatusOr<ElementType> parseKvCacheType(const std::string &name);

/// The paged KV cache: [layers][blocks][blockSize][K, V][kvHeads][headDim].
/// Its sizes are computed here and nowhere else.
struct KvCacheSpec {
  int64_t layers = 0, kvHeads = 0, headDim = 0, blockSize = 0;
  ElementType type = ElementType::BF16;

  /// Blocks that hold `tokens` tokens.
  int64_t blocksFor(int64_t tokens) const { return (tokens + blockSize - 1) / blockSize; }
  /// K and V of one token in one layer.
  int64_t tokenBytes() const { return 2 * kvHeads * headDim * elementSize(type); }
  /// One block of one layer.
  int64_t blockBytes() const { return blockSize * tokenBytes(); }
  /// `blocks` blocks in every layer: the whole cache.
  double bytes(int64_t blocks) const {
    return static_cast<double>(layers) * static_cast<double>(blocks) * blockBytes();
  }
};

struct Plan {
  int64_t version = kPlanVersion;
  std::string target = "cpu";
  int64_t maxTokens = 0; // per step; buffers are sized for it
  int64_t vocabSize = 0;
  int64_t hiddenSize = 0;
  KvCacheSpec kvCache;
  std::vector<Weight> weights;
  std::vector<Entry> entries;
  /// "embed" | "external" | "none".
  std::string weightsMode = "none";
  /// For external weights: the checkpoint directory and its fingerprint.
  std::string checkpointPath;
  std::string checkpointFingerprint;
  /// The model's config.json, kept so the runtime can bind a checkpoint.
  std::string configJson;
  /// GPU targets: the compiled kernels and which one runs each plan kernel.
  GpuProgram gpu;

  const Entry *findEntry(const std::string &name) const;
  int64_t arenaBytes() const;
};

/// Checks every index, shape and attribute a backend relies on, so that a
/// plan read from an untrusted artifact can never index out of bounds.
Status verifyPlan(const Plan &plan);
/// The same checks for one kernel of `entry`: its operands in range, its
/// arity, shapes and attributes as its kind requires.
Status verifyKernel(const Plan &plan, const Entry &entry, const Kernel &kernel);

std::string planToJson(const Plan &plan);
StatusOr<Plan> planFromJson(const std::string &text);

/// Assigns Buffer::offset for every buffer of `entry` by liveness: two
/// buffers share bytes only when their lifetimes (first write to last read
/// in kernel order) do not overlap. Sizes use `maxTokens` rows.
void planMemory(Entry &entry, int64_t maxTokens);

} // namespace m2c::plan

#endif // M2C_RUNTIME_PLAN_PLAN_H

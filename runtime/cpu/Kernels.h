//===- Kernels.h - fp32 CPU reference kernels for MiniMax-M2 -- -*- C++ -*-===//
//
// The numerical reference for every later GPU kernel: each kernel follows the
// float32 arithmetic of Hugging Face transformers' MiniMaxM2 where that is
// observable (see docs/cpu-backend.md for each choice). All tensors are
// row-major f32 given as pointer + shape; outputs come last. Every kernel
// that takes a ThreadPool gives bitwise-identical results for any thread
// count. Kernels that can see bad data (token ids, positions, block tables,
// expert ids) validate it before writing anything and return a Status;
// shapes are the caller's contract and are only asserted.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_CPU_KERNELS_H
#define M2C_RUNTIME_CPU_KERNELS_H

#include "runtime/cpu/ThreadPool.h"
#include "runtime/support/Status.h"

#include <cstdint>

namespace m2c::cpu {

//===----------------------------------------------------------------------===//
// Dense kernels (Kernels.cpp)
//===----------------------------------------------------------------------===//

/// out[t, :] = table[ids[t], :]. Fails with "token id 600 out of range
/// [0, 512)" before writing anything if any id is outside [0, vocab).
Status embedding(const float *table, int64_t vocab, int64_t hidden,
                 const int32_t *ids, int64_t tokens, float *out);

/// out[r, :] = x[r, :] * s_r * weight, s_r = (float)(1 / sqrt(mean(x[r]^2) +
/// eps)) with the mean accumulated in double; no +1 offset on the weight.
/// QK-norm is this kernel with cols = heads * headDim. out may alias x.
void rmsNorm(const float *x, const float *weight, int64_t rows, int64_t cols,
             double eps, float *out, ThreadPool &pool);

/// out[rows, n] = x[rows, k] * w^T with w [n, k] row-major (the nn.Linear
/// layout), accumulated in float. out must not alias x or w.
void linear(const float *x, int64_t rows, int64_t k, const float *w, int64_t n,
            float *out, ThreadPool &pool);

/// out = a + b elementwise; out may alias a or b.
void add(const float *a, const float *b, int64_t n, float *out);

/// out[cols] = x[rows - 1, :] (the row whose logits a prefill samples).
void takeLastRow(const float *x, int64_t rows, int64_t cols, float *out);

//===----------------------------------------------------------------------===//
// Attention over a paged KV cache (Attention.cpp)
//===----------------------------------------------------------------------===//

/// bf16 <-> f32. floatToBf16 rounds to nearest even and keeps NaN a (quiet)
/// NaN, like torch's .to(torch.bfloat16).
uint16_t floatToBf16(float x);
float bf16ToFloat(uint16_t bits);

/// A view of KV storage laid out
/// [layers][numBlocks][blockSize][2 (K, V)][kvHeads][headDim], elements f32
/// or bf16 (uint16 bits). Block 0 of every layer is the null block: block
/// tables pad with it and nothing may be written to or read from it.
struct KvCacheView {
  void *data = nullptr;
  bool bf16 = false;
  int64_t layers = 0, numBlocks = 0, blockSize = 0, kvHeads = 0, headDim = 0;
};

/// Number of elements (not bytes) the storage of `cache` holds.
int64_t kvCacheNumElements(const KvCacheView &cache);

struct AttentionParams {
  int64_t layer = 0;
  int64_t numHeads = 0, numKvHeads = 0, headDim = 0;
  int64_t rotaryDim = 0; ///< leading dims of each head that RoPE rotates
  double ropeTheta = 10000.0;
  bool causal = true;
};

/// In-place partial NeoX RoPE on x [tokens, heads * headDim]: for each head
/// and i < rotaryDim / 2 the pair (i, i + rotaryDim / 2) rotates by
/// positions[t] * invFreq[i]; dims >= rotaryDim are untouched. invFreq[i] =
/// (float)(1 / theta^(2i / rotaryDim)) computed in double; the angle, cos and
/// sin are float, as transformers computes them.
void applyRope(float *x, const int32_t *positions, int64_t tokens,
               int64_t heads, int64_t headDim, int64_t rotaryDim, double theta,
               ThreadPool &pool);

/// One attention layer step for a batch of tokens from several sequences.
///  1. RoPE on q [T, H*D] and k [T, KV*D] at positions[t] (inputs unchanged).
///  2. Writes rotated k and v of every token into `cache` at layer
///     params.layer, block blockTables[tokenSeqs[t] * maxBlocks +
///     positions[t] / blockSize], slot positions[t] % blockSize, in token
///     order (a later duplicate wins).
///  3. out[t, h*D:(h+1)*D] = softmax(q_h . K^T / sqrt(D)) V over cached
///     positions 0..positions[t] of sequence tokenSeqs[t] (or 0..the
///     sequence's largest position in this batch when !causal), with KV head
///     h / (H / KV).
/// Everything is validated before the first write, so an error leaves the
/// cache unchanged: sequence index in [0, numSeqs), position >= 0, the block
/// table entry within maxBlocks, and every block written or read in
/// [1, numBlocks).
Status attention(const float *q, const float *k, const float *v,
                 const int32_t *positions, const int32_t *tokenSeqs,
                 int64_t tokens, const int32_t *blockTables, int64_t numSeqs,
                 int64_t maxBlocks, const AttentionParams &params,
                 KvCacheView &cache, float *out, ThreadPool &pool);

//===----------------------------------------------------------------------===//
// Mixture of experts (Moe.cpp)
//===----------------------------------------------------------------------===//

/// Router: logits = hidden [T, Hd] * gate^T ([E, Hd]) in float; scores =
/// sigmoid(logits), or softmax over experts when softmaxScoring; the top-k of
/// choice = scores + bias (bias may be null; it only selects) in descending
/// choice order, ties to the lower expert id; weights = scores of the chosen
/// experts, divided by their sum when renormalize. ids and weights are
/// [T, topK]. Fails if topK is not in [1, experts].
Status moeRoute(const float *hidden, int64_t tokens, int64_t hiddenSize,
                const float *gate, const float *bias, int64_t experts,
                int64_t topK, bool softmaxScoring, bool renormalize,
                int32_t *ids, float *weights, ThreadPool &pool);

/// out[t] = sum_{j = 0..topK-1} weights[t, j] * W2[e] (silu(W1[e] x_t) *
/// (W3[e] x_t)) with e = ids[t, j]; w1, w3 are [E, I, Hd] and w2 is
/// [E, Hd, I]. Work is grouped by expert so each expert's weights stream
/// once per call (per chunk of tokens for long prefills), while each token's
/// sum keeps the fixed j order. Fails before computing anything if an id is
/// outside [0, experts). out must not alias hidden.
Status moeExperts(const float *hidden, int64_t tokens, int64_t hiddenSize,
                  const int32_t *ids, const float *weights, int64_t topK,
                  const float *w1, const float *w3, const float *w2,
                  int64_t experts, int64_t intermediate, float *out,
                  ThreadPool &pool);

} // namespace m2c::cpu

#endif // M2C_RUNTIME_CPU_KERNELS_H

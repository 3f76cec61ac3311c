//===- KernelAttrs.h - Typed attributes of each plan kernel kind ----------===//
//
// A plan kernel carries its attributes as name -> number (that is how the
// artifact stores them); each kind reads and writes them only through its
// struct here, so every attribute name is spelled once. `fields` lists a
// struct's members with their names: `required` ones are always written,
// `optional` ones only when set (non-zero), which keeps older plans and
// kernel signatures as they were. The plan builder writes them, the plan
// verifier, both backends, the PTX families, the fusion report and
// m2c-bench read them.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_PLAN_KERNELATTRS_H
#define M2C_RUNTIME_PLAN_KERNELATTRS_H

#include <cstdint>
#include <map>
#include <string>

namespace m2c::plan {

using AttrMap = std::map<std::string, double>;

/// Kinds without attributes.
struct NoAttrs {
  template <class F> void fields(F &&) {}
};

/// rms_norm, add_rms_norm and lm_head.
struct NormAttrs {
  double eps = 0;
  template <class F> void fields(F &&f) { f.required("eps", eps); }
};

struct AttentionAttrs {
  int64_t layer = 0;
  int64_t numHeads = 0, numKvHeads = 0, headDim = 0;
  int64_t rotaryDim = 0;
  double ropeTheta = 0;
  bool causal = true;
  /// Non-zero when the QK-norm is fused in (inputs 6 and 7 its weights).
  double qkNormEps = 0;
  template <class F> void fields(F &&f) {
    f.required("layer", layer);
    f.required("num_heads", numHeads);
    f.required("num_kv_heads", numKvHeads);
    f.required("head_dim", headDim);
    f.required("rotary_dim", rotaryDim);
    f.required("rope_theta", ropeTheta);
    f.required("causal", causal);
    f.optional("qk_norm_eps", qkNormEps);
  }
};

struct MoeRouteAttrs {
  /// The add + RMSNorm prologue: two more inputs and outputs in front.
  bool addRmsNorm = false;
  double eps = 0; ///< the prologue's
  int64_t topK = 0, numExperts = 0;
  bool softmax = false; ///< softmax scoring, else sigmoid
  bool renormalize = false;
  template <class F> void fields(F &&f) {
    f.optional("add_rms_norm", addRmsNorm);
    f.optional("eps", eps);
    f.required("top_k", topK);
    f.required("num_experts", numExperts);
    f.required("softmax", softmax);
    f.required("renormalize", renormalize);
  }
};

/// An attribute's number as an integer. An artifact's number may be
/// anything: one no int64 holds (or NaN) reads as -1, which every verifier
/// check of a count, index or tile size rejects.
inline int64_t attrToInt(double x) {
  return x >= -9.2e18 && x <= 9.2e18 ? static_cast<int64_t>(x) : -1;
}

namespace detail {
struct AttrWriter {
  AttrMap &map;
  void required(const char *key, double v) { map[key] = v; }
  void required(const char *key, int64_t v) { map[key] = static_cast<double>(v); }
  void required(const char *key, bool v) { map[key] = v ? 1.0 : 0.0; }
  template <class T> void optional(const char *key, T v) {
    if (v)
      required(key, v);
  }
};
struct AttrReader {
  const AttrMap &map;
  /// The first required attribute that is missing, or null.
  const char *missing = nullptr;
  template <class T> void required(const char *key, T &v) {
    auto it = map.find(key);
    if (it == map.end()) {
      if (!missing)
        missing = key;
      return;
    }
    assign(it->second, v);
  }
  template <class T> void optional(const char *key, T &v) {
    if (auto it = map.find(key); it != map.end())
      assign(it->second, v);
  }
  static void assign(double x, double &v) { v = x; }
  static void assign(double x, int64_t &v) { v = attrToInt(x); }
  static void assign(double x, bool &v) { v = x != 0; }
};
} // namespace detail

/// Writes `attrs` into a kernel's attribute map (other keys stay).
template <class A> void writeAttrs(const A &attrs, AttrMap &map) {
  A copy = attrs;
  copy.fields(detail::AttrWriter{map});
}

/// Reads a kind's attributes; absent ones keep their defaults. `missing`,
/// when given, receives the first required attribute that is absent.
template <class A> A readAttrs(const AttrMap &map, const char **missing = nullptr) {
  A attrs;
  detail::AttrReader reader{map};
  attrs.fields(reader);
  if (missing)
    *missing = reader.missing;
  return attrs;
}

} // namespace m2c::plan

#endif // M2C_RUNTIME_PLAN_KERNELATTRS_H

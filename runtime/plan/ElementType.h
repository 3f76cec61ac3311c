//===- ElementType.h - Element types of activations and weights -----------===//

#ifndef M2C_RUNTIME_PLAN_ELEMENTTYPE_H
#define M2C_RUNTIME_PLAN_ELEMENTTYPE_H

#include <cstdint>

namespace m2c::plan {

/// Element types of activations and of stored weights.
enum class ElementType : uint8_t { F32, I32, BF16, F16 };

} // namespace m2c::plan

#endif // M2C_RUNTIME_PLAN_ELEMENTTYPE_H

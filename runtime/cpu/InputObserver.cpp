//===- InputObserver.cpp --------------------------------------------------===//

#include "runtime/cpu/InputObserver.h"

#include <atomic>

namespace m2c::cpu {
namespace {
std::atomic<InputObserver *> installed{nullptr};
} // namespace

InputObserver::~InputObserver() = default;

InputObserver *inputObserver() { return installed.load(std::memory_order_acquire); }

ScopedInputObserver::ScopedInputObserver(InputObserver &observer) {
  installed.store(&observer, std::memory_order_release);
}

ScopedInputObserver::~ScopedInputObserver() {
  installed.store(nullptr, std::memory_order_release);
}

} // namespace m2c::cpu

#pragma once
// A cheap clock for per-message stage timing. clock_gettime costs ~20-50 ns
// on VMs (it was 23% of a no-op pipeline's profile); the invariant TSC costs a
// few. Cycles convert to nanoseconds with a factor calibrated once against
// steady_clock. Elsewhere (or without an invariant TSC) it is steady_clock.
#include <chrono>
#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace esflow::graph {

class cycle_clock {
 public:
  static std::uint64_t now() noexcept {
#if defined(__x86_64__)
    return __rdtsc();
#else
    return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
#endif
  }
  // Nanoseconds between two now() readings.
  static std::uint64_t to_ns(std::uint64_t cycles) noexcept {
    return static_cast<std::uint64_t>(static_cast<double>(cycles) * ns_per_cycle());
  }
  // Calibrates on first call (~2 ms); call it before the hot path starts.
  static double ns_per_cycle() noexcept;
};

}  // namespace esflow::graph

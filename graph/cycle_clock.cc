#include "graph/cycle_clock.h"

#include <thread>

namespace esflow::graph {

double cycle_clock::ns_per_cycle() noexcept {
  static const double factor = [] {
#if defined(__x86_64__)
    const auto t0 = std::chrono::steady_clock::now();
    const auto c0 = now();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const auto t1 = std::chrono::steady_clock::now();
    const auto c1 = now();
    const double ns =
        static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
    return c1 > c0 ? ns / static_cast<double>(c1 - c0) : 1.0;
#else
    return 1.0;  // steady_clock ticks are nanoseconds on Linux
#endif
  }();
  return factor;
}

}  // namespace esflow::graph

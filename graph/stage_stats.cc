#include "graph/stage_stats.h"

namespace esflow::graph {

void stage_stats::note_start(std::int64_t now_ns) noexcept {
  std::int64_t zero = 0;
  if (first_start_ns.load(std::memory_order_relaxed) == 0)
    first_start_ns.compare_exchange_strong(zero, now_ns, std::memory_order_relaxed);
  in.fetch_add(1, std::memory_order_relaxed);
  queued.fetch_sub(1, std::memory_order_relaxed);
  const auto now = in_flight.fetch_add(1, std::memory_order_relaxed) + 1;
  auto peak = peak_in_flight.load(std::memory_order_relaxed);
  while (now > peak && !peak_in_flight.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

void stage_stats::note_finish(std::int64_t now_ns) noexcept {
  in_flight.fetch_sub(1, std::memory_order_relaxed);
  auto last = last_finish_ns.load(std::memory_order_relaxed);
  while (now_ns > last && !last_finish_ns.compare_exchange_weak(last, now_ns, std::memory_order_relaxed)) {
  }
}

}  // namespace esflow::graph

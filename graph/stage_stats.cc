#include "graph/stage_stats.h"

#include <algorithm>

namespace esflow::graph {

std::size_t stage_stats::thread_slot() noexcept {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t index = std::min(next.fetch_add(1, std::memory_order_relaxed), k_slots - 1);
  return index;
}

stage_stats::totals stage_stats::read() const noexcept {
  totals t;
  // Counters are read in flow order — every slot's deliveries, then starts,
  // then finishes — so a message that moves on while we read is counted in
  // an earlier state, never a later one: queued() and in_flight() can only
  // be under the truth, never over a bound the engine keeps.
  for (const auto& s : _slots) t.delivered += s.delivered.load(std::memory_order_acquire);
  for (const auto& s : _slots) t.in += s.started.load(std::memory_order_acquire);
  for (const auto& s : _slots) {
    t.out += s.out.load(std::memory_order_relaxed);
    t.errors += s.errors.load(std::memory_order_relaxed);
    const auto h = s.latency.read();
    for (std::size_t i = 0; i < h.counts.size(); ++i) t.latency.counts[i] += h.counts[i];
    t.latency.count += h.count;
    t.latency.sum_ns += h.sum_ns;
  }
  // A start can land in the count before its delivery (other slots): clamp.
  if (t.in > t.delivered) t.delivered = t.in;
  if (t.finished = t.latency.count; t.finished > t.in) t.in = t.finished;
  return t;
}

}  // namespace esflow::graph

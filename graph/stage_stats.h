#pragma once
// Per-stage figures kept by the engine around every stage body, so stage code
// does nothing to be measured. Read by /metrics, /admin/graph and `esflow bench`.
//
// Writers touch only their thread's slot (one cache line of counters plus its
// histogram), so unlimited stages on every worker do not contend; readers sum
// the slots. The first k_slots-1 threads of the process own a slot each and
// update it without locked instructions; later threads share the last slot
// with atomic adds. Gauges are derived: in_flight = started - finished,
// queued = delivered - started.
#include "graph/latency_histogram.h"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace esflow::graph {

class stage_stats {
 public:
  struct totals {
    std::uint64_t delivered = 0, in = 0, out = 0, errors = 0, finished = 0;
    std::int64_t in_flight() const { return static_cast<std::int64_t>(in - finished); }
    std::int64_t queued() const { return static_cast<std::int64_t>(delivered - in); }
    latency_histogram::snapshot latency;
  };

  void on_deliver() noexcept { bump(&slot::delivered); }
  void on_start() noexcept { bump(&slot::started); }
  void on_out() noexcept { bump(&slot::out); }
  void on_error() noexcept { bump(&slot::errors); }
  void on_finish(std::uint64_t latency_ns) noexcept {
    const auto i = thread_slot();
    if (i + 1 < k_slots)
      _slots[i].latency.record_exclusive(latency_ns);
    else
      _slots[i].latency.record(latency_ns);
  }

  totals read() const noexcept;

 private:
  struct alignas(64) slot {
    std::atomic<std::uint64_t> delivered{0}, started{0}, out{0}, errors{0};
    latency_histogram latency;  // its count is "finished"
  };
  static constexpr std::size_t k_slots = 32;
  static std::size_t thread_slot() noexcept;

  void bump(std::atomic<std::uint64_t> slot::*counter) noexcept {
    const auto i = thread_slot();
    auto& c = _slots[i].*counter;
    if (i + 1 < k_slots)
      c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    else
      c.fetch_add(1, std::memory_order_relaxed);
  }

  std::array<slot, k_slots> _slots;
};

inline std::int64_t monotonic_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace esflow::graph

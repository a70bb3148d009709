#pragma once
// Per-stage figures kept by the engine around every stage body, so stage code
// does nothing to be measured. Read by /metrics, /admin/graph and `esflow bench`.
#include <atomic>
#include <chrono>
#include <cstdint>

#include "graph/latency_histogram.h"

namespace esflow::graph {

struct stage_stats {
  // Counters sit on their own cache lines: unlimited stages update them from
  // every worker at once.
  alignas(64) std::atomic<std::uint64_t> in{0};         // messages that started processing
  alignas(64) std::atomic<std::uint64_t> out{0};        // messages emitted on non-error ports
  alignas(64) std::atomic<std::uint64_t> errors{0};     // messages emitted on the error port
  alignas(64) std::atomic<std::int64_t> in_flight{0};   // started, not yet finished
  alignas(64) std::atomic<std::int64_t> queued{0};      // delivered, not yet started
  alignas(64) std::atomic<std::int64_t> peak_in_flight{0};
  latency_histogram latency;  // start -> finish (async stages: until completion)
  // First start and last finish, for rates over the stage's active window.
  std::atomic<std::int64_t> first_start_ns{0};
  std::atomic<std::int64_t> last_finish_ns{0};

  void note_start(std::int64_t now_ns) noexcept;
  void note_finish(std::int64_t now_ns) noexcept;
};

inline std::int64_t monotonic_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace esflow::graph

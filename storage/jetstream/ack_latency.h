#pragma once
// Publish -> ack latency of the JetStream log, as fixed Prometheus buckets.
// record() runs on the log's submit thread only; read() from any thread
// (relaxed atomics: a scrape may see a record half-counted, never a torn value).
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace esflow::storage::jetstream {

// Upper bounds in seconds; the last bucket is +Inf.
inline constexpr std::array<double, 12> ack_latency_bounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                              0.01,   0.025,   0.05,   0.1,   0.5,    2.5};

struct ack_latency_snapshot {
  std::array<std::uint64_t, ack_latency_bounds.size() + 1> buckets{};  // non-cumulative
  std::uint64_t count = 0;
  double sum_seconds = 0;
};

class ack_latency_histogram {
 public:
  void record(std::chrono::steady_clock::duration d) {
    const double s = std::chrono::duration<double>(d).count();
    std::size_t i = 0;
    while (i < ack_latency_bounds.size() && s > ack_latency_bounds[i]) ++i;
    _buckets[i].fetch_add(1, std::memory_order_relaxed);
    _count.fetch_add(1, std::memory_order_relaxed);
    _sum_ns.fetch_add(
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()),
        std::memory_order_relaxed);
  }
  ack_latency_snapshot read() const {
    ack_latency_snapshot out;
    for (std::size_t i = 0; i < _buckets.size(); ++i)
      out.buckets[i] = _buckets[i].load(std::memory_order_relaxed);
    out.count = _count.load(std::memory_order_relaxed);
    out.sum_seconds = static_cast<double>(_sum_ns.load(std::memory_order_relaxed)) / 1e9;
    return out;
  }

 private:
  std::array<std::atomic<std::uint64_t>, ack_latency_bounds.size() + 1> _buckets{};
  std::atomic<std::uint64_t> _count{0};
  std::atomic<std::uint64_t> _sum_ns{0};
};

}  // namespace esflow::storage::jetstream

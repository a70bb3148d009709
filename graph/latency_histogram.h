#pragma once
// A lock-free latency histogram: 4 sub-buckets per power of two of
// nanoseconds (<= 19% relative error), from 256 ns to ~69 s. Recording is one
// relaxed atomic increment; percentiles and Prometheus buckets are derived at
// read time.
#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

namespace esflow::graph {

class latency_histogram {
 public:
  static constexpr int k_sub_buckets = 4;
  static constexpr int k_min_shift = 8;                                // first bucket: [0, 256 ns)
  static constexpr int k_octaves = 28;                                 // up to 2^36 ns ~ 69 s
  static constexpr int k_buckets = 1 + k_octaves * k_sub_buckets + 1;  // + overflow

  void record(std::uint64_t ns) noexcept;
  // For a histogram only one thread writes: plain load/store, no locked add.
  void record_exclusive(std::uint64_t ns) noexcept;

  struct snapshot {
    std::array<std::uint64_t, k_buckets> counts{};
    std::uint64_t count = 0;
    std::uint64_t sum_ns = 0;
    // Upper bound in ns of bucket i (the overflow bucket reports UINT64_MAX).
    static std::uint64_t upper_bound_ns(int i) noexcept;
    // Interpolated quantile in ns (0 when empty).
    double quantile_ns(double q) const noexcept;
  };
  snapshot read() const noexcept;

  static int bucket_of(std::uint64_t ns) noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, k_buckets> _counts{};
  std::atomic<std::uint64_t> _sum_ns{0};
};

}  // namespace esflow::graph

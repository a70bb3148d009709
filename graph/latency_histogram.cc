#include "graph/latency_histogram.h"

#include <bit>
#include <limits>

namespace esflow::graph {

int latency_histogram::bucket_of(std::uint64_t ns) noexcept {
  if (ns < (1ULL << k_min_shift)) return 0;
  const int msb = 63 - std::countl_zero(ns);  // ns in [2^msb, 2^(msb+1))
  const int octave = msb - k_min_shift;
  if (octave >= k_octaves) return k_buckets - 1;
  const int sub = static_cast<int>((ns >> (msb - 2)) & 0x3);  // next two bits
  return 1 + octave * k_sub_buckets + sub;
}

std::uint64_t latency_histogram::snapshot::upper_bound_ns(int i) noexcept {
  if (i == 0) return 1ULL << k_min_shift;
  if (i >= k_buckets - 1) return std::numeric_limits<std::uint64_t>::max();
  const int octave = (i - 1) / k_sub_buckets;
  const int sub = (i - 1) % k_sub_buckets;
  const std::uint64_t base = 1ULL << (octave + k_min_shift);
  return base + (base / k_sub_buckets) * static_cast<std::uint64_t>(sub + 1);
}

void latency_histogram::record(std::uint64_t ns) noexcept {
  _counts[static_cast<std::size_t>(bucket_of(ns))].fetch_add(1, std::memory_order_relaxed);
  _sum_ns.fetch_add(ns, std::memory_order_relaxed);
}

void latency_histogram::record_exclusive(std::uint64_t ns) noexcept {
  auto& c = _counts[static_cast<std::size_t>(bucket_of(ns))];
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  _sum_ns.store(_sum_ns.load(std::memory_order_relaxed) + ns, std::memory_order_relaxed);
}

latency_histogram::snapshot latency_histogram::read() const noexcept {
  snapshot s;
  for (int i = 0; i < k_buckets; ++i) {
    s.counts[static_cast<std::size_t>(i)] =
        _counts[static_cast<std::size_t>(i)].load(std::memory_order_relaxed);
    s.count += s.counts[static_cast<std::size_t>(i)];
  }
  s.sum_ns = _sum_ns.load(std::memory_order_relaxed);
  return s;
}

double latency_histogram::snapshot::quantile_ns(double q) const noexcept {
  if (count == 0) return 0.0;
  const double target = q * static_cast<double>(count);
  double seen = 0;
  for (int i = 0; i < k_buckets; ++i) {
    const auto c = static_cast<double>(counts[static_cast<std::size_t>(i)]);
    if (c == 0) continue;
    if (seen + c >= target) {
      const double lo = i == 0 ? 0.0 : static_cast<double>(upper_bound_ns(i - 1));
      const double hi = i == k_buckets - 1 ? lo * 2 : static_cast<double>(upper_bound_ns(i));
      return lo + (hi - lo) * ((target - seen) / c);
    }
    seen += c;
  }
  return static_cast<double>(upper_bound_ns(k_buckets - 2));
}

}  // namespace esflow::graph

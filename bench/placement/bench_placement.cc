// bench_placement: the data plane of tenant placement (placement/README.md),
// owner lookups per second beside their ceiling. Items/s = lookups/s; the
// time column is ns per lookup.
//   raw_sha256              : sha256_digest::of(tenant id), the hash every lookup pays (the ceiling)
//   ring_owner/N            : hash_ring::owner(tenant) over N nodes x 128 vnodes (SHA-256 + binary search)
//   ring_owner_of_point/N   : the binary search alone (point already hashed)
//   map_owner/N             : placement_map::owner with 1,000 listed tenants (explicit lookup, then the ring)
// Tenants cycle through 4,096 ids "tenant-<i>" so neither the hash nor the
// search sees one key only.
#include "common/sha256.h"
#include "placement/hash_ring.h"
#include "placement/placement_map.h"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using namespace esflow::placement;

constexpr std::size_t k_tenants = 4096;  // a power of two: the index wraps with a mask

const std::vector<std::string>& tenant_ids() {
  static const std::vector<std::string> ids = [] {
    std::vector<std::string> v;
    for (std::size_t i = 0; i < k_tenants; ++i) v.push_back("tenant-" + std::to_string(i));
    return v;
  }();
  return ids;
}

std::vector<std::string> node_ids(int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back("agg-" + std::to_string(i + 1));
  return v;
}

hash_ring ring_of(int nodes) {
  auto r = hash_ring::build(node_ids(nodes), k_default_vnodes);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.err().to_string().c_str());
    std::abort();
  }
  return std::move(r).value();
}

void raw_sha256(benchmark::State& st) {
  const auto& ids = tenant_ids();
  std::size_t i = 0;
  for (auto _ : st) {
    auto d = esflow::sha256_digest::of(ids[i++ & (k_tenants - 1)]);
    benchmark::DoNotOptimize(d);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(raw_sha256);

void ring_owner(benchmark::State& st) {
  const auto ring = ring_of(static_cast<int>(st.range(0)));
  const auto& ids = tenant_ids();
  std::size_t i = 0;
  for (auto _ : st) {
    auto o = ring.owner(ids[i++ & (k_tenants - 1)]);
    benchmark::DoNotOptimize(o);
  }
  st.SetItemsProcessed(st.iterations());
  st.counters["points"] = static_cast<double>(ring.points());
}
BENCHMARK(ring_owner)->Arg(3)->Arg(16)->Arg(64);

void ring_owner_of_point(benchmark::State& st) {
  const auto ring = ring_of(static_cast<int>(st.range(0)));
  std::vector<std::uint64_t> points;
  for (const auto& t : tenant_ids()) points.push_back(tenant_point(t));
  std::size_t i = 0;
  for (auto _ : st) {
    auto o = ring.owner_of_point(points[i++ & (k_tenants - 1)]);
    benchmark::DoNotOptimize(o);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(ring_owner_of_point)->Arg(3)->Arg(16)->Arg(64);

void map_owner(benchmark::State& st) {
  placement_map::node_table nodes;
  for (const auto& id : node_ids(static_cast<int>(st.range(0))))
    nodes.emplace(id, node_registration{id, {"aggregate"}, "", "", ""});
  placement_map::tenant_table tenants;
  const auto& ids = tenant_ids();
  for (std::size_t i = 0; i < 1000; ++i) tenants.emplace(ids[i * 4], i % 2 == 0 ? "agg-1" : "");
  auto m = placement_map::make(std::move(nodes), std::move(tenants));
  if (!m.ok()) {
    st.SkipWithError(m.err().to_string().c_str());
    return;
  }
  std::size_t i = 0;
  for (auto _ : st) {
    auto o = m->owner(ids[i++ & (k_tenants - 1)]);
    benchmark::DoNotOptimize(o);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(map_owner)->Arg(3)->Arg(16)->Arg(64);

}  // namespace

BENCHMARK_MAIN();

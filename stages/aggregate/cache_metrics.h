#pragma once
// The state cache's figures, read at scrape time (no per-command cost):
//
//   esflow_aggregate_cache_entries          gauge: aggregates cached
//   esflow_aggregate_cache_bytes            gauge: their charge (keys + states + per-entry overhead)
//   esflow_aggregate_cache_capacity_bytes   gauge: the bound (aggregate.rehydrate's cache_mb)
//   esflow_aggregate_cache_hits_total       counter
//   esflow_aggregate_cache_misses_total     counter
//   esflow_aggregate_cache_evictions_total  counter
//
// bytes / entries is the memory one cached aggregate costs; hits / (hits +
// misses) the hit rate under the node's traffic.
#include "stages/aggregate/state_cache.h"

#include <prometheus/collectable.h>

#include <functional>
#include <memory>

namespace esflow::aggregate {

// `read` returns the cache's stats, or nullopt once the cache is gone (the
// collector outlives a stopped node in the host's registry).
std::shared_ptr<prometheus::Collectable> make_cache_metrics(std::function<std::optional<cache_stats>()> read,
                                                            std::size_t capacity_bytes);

}  // namespace esflow::aggregate

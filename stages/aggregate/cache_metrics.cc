#include "stages/aggregate/cache_metrics.h"

#include <prometheus/metric_family.h>

#include <string>
#include <utility>
#include <vector>

namespace esflow::aggregate {
namespace {

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter)
    m.counter.value = value;
  else
    m.gauge.value = value;
  return prometheus::MetricFamily{std::move(name), std::move(help), type, {m}};
}

class cache_metrics final : public prometheus::Collectable {
 public:
  cache_metrics(std::function<std::optional<cache_stats>()> read, std::size_t capacity)
      : _read(std::move(read)), _capacity(static_cast<double>(capacity)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    const auto s = _read();
    if (!s) return {};
    using prometheus::MetricType;
    return {
        family("esflow_aggregate_cache_entries", "Aggregates whose state is cached", MetricType::Gauge,
               static_cast<double>(s->entries)),
        family("esflow_aggregate_cache_bytes",
               "Charge of the cached states (keys, states, per-entry overhead)", MetricType::Gauge,
               static_cast<double>(s->bytes)),
        family("esflow_aggregate_cache_capacity_bytes", "Bound of the state cache (cache_mb)",
               MetricType::Gauge, _capacity),
        family("esflow_aggregate_cache_hits_total", "State lookups answered by the cache",
               MetricType::Counter, static_cast<double>(s->hits)),
        family("esflow_aggregate_cache_misses_total", "State lookups that went to storage",
               MetricType::Counter, static_cast<double>(s->misses)),
        family("esflow_aggregate_cache_evictions_total", "States evicted to stay within the bound",
               MetricType::Counter, static_cast<double>(s->evictions)),
    };
  }

 private:
  std::function<std::optional<cache_stats>()> _read;
  double _capacity;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> make_cache_metrics(std::function<std::optional<cache_stats>()> read,
                                                            std::size_t capacity_bytes) {
  return std::make_shared<cache_metrics>(std::move(read), capacity_bytes);
}

}  // namespace esflow::aggregate

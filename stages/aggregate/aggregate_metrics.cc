#include "stages/aggregate/aggregate_metrics.h"

namespace esflow::aggregate {

namespace {
const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries b = {
      1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5};
  return b;
}
const prometheus::Histogram::BucketBoundaries& count_buckets() {
  static const prometheus::Histogram::BucketBoundaries b = {0, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000};
  return b;
}
}  // namespace

aggregate_metrics::aggregate_metrics(prometheus::Registry* registry, std::size_t tenant_cap)
    : _registry(registry), _tenant_cap(tenant_cap) {
  if (!_registry) {
    _private = std::make_shared<prometheus::Registry>();
    _registry = _private.get();
  }
  auto& r = *_registry;
  _commands = &prometheus::BuildCounter()
                   .Name("esflow_aggregate_commands_total")
                   .Help("Commands answered by aggregate nodes, by outcome")
                   .Register(r);
  _duration = &prometheus::BuildHistogram()
                   .Name("esflow_aggregate_command_duration_seconds")
                   .Help("Time from ingest to the answer of a command")
                   .Register(r);
  _conflicts = &prometheus::BuildCounter()
                    .Name("esflow_aggregate_version_conflicts_total")
                    .Help("Appends refused because the aggregate moved on (each is retried, bounded)")
                    .Register(r);
  _rehydration = &prometheus::BuildHistogram()
                      .Name("esflow_aggregate_rehydration_duration_seconds")
                      .Help("Time to load an aggregate's state (cache, else snapshot + events)")
                      .Register(r);
  _snapshots = &prometheus::BuildCounter()
                    .Name("esflow_aggregate_snapshots_total")
                    .Help("Snapshots written")
                    .Register(r);
  _replayed = &prometheus::BuildHistogram()
                   .Name("esflow_aggregate_replayed_events")
                   .Help("Events applied to rebuild a state on a cache miss")
                   .Register(r);
  _tenant_errors = &prometheus::BuildCounter()
                        .Name("esflow_aggregate_tenant_errors_total")
                        .Help("Commands refused for tenant reasons (invalid, denied, not hosted)")
                        .Register(r);
  _rehydration_hit = &_rehydration->Add({{"cache", "hit"}}, latency_buckets());
  _rehydration_miss = &_rehydration->Add({{"cache", "miss"}}, latency_buckets());
  _replayed_all = &_replayed->Add({}, count_buckets());
  for (const char* code : {"invalid_tenant", "tenant_access_denied", "tenant_not_hosted"})
    _tenant_errors->Add({{"code", code}});
}

void aggregate_metrics::declare_type(const std::string& type) {
  _conflicts->Add({{"aggregate_type", type}});
  _snapshots->Add({{"aggregate_type", type}});
}

std::string aggregate_metrics::tenant_label(const std::string& tenant) {
  const std::string& t = tenant.empty() ? std::string("_") : tenant;
  {
    std::shared_lock lock(_mu);
    if (_tenants.count(t)) return t;
    if (_tenants.size() >= _tenant_cap) return "other";
  }
  std::unique_lock lock(_mu);
  if (_tenants.count(t)) return t;
  if (_tenants.size() >= _tenant_cap) return "other";
  _tenants.insert(t);
  return t;
}

void aggregate_metrics::command(const std::string& type, const std::string& tenant,
                                const std::string& outcome, double seconds) {
  const auto label = tenant_label(tenant);
  std::string series_key = type;
  series_key += '\x1f';
  series_key += label;
  series_key += '\x1f';
  series_key += outcome;
  prometheus::Counter* counter = nullptr;
  prometheus::Histogram* hist = nullptr;
  {
    std::shared_lock lock(_mu);
    if (auto it = _command_series.find(series_key); it != _command_series.end()) counter = it->second;
    if (auto it = _duration_series.find(type); it != _duration_series.end()) hist = it->second;
  }
  if (!counter || !hist) {
    std::unique_lock lock(_mu);
    auto& c = _command_series[series_key];
    if (!c) c = &_commands->Add({{"aggregate_type", type}, {"tenant_id", label}, {"outcome", outcome}});
    auto& h = _duration_series[type];
    if (!h) h = &_duration->Add({{"aggregate_type", type}}, latency_buckets());
    counter = c;
    hist = h;
  }
  counter->Increment();
  hist->Observe(seconds);
}

void aggregate_metrics::command_unattributed(const std::string& outcome, double seconds) {
  const std::string series_key = std::string("\x1f\x1f") + outcome;
  prometheus::Counter* counter = nullptr;
  {
    std::shared_lock lock(_mu);
    if (auto it = _command_series.find(series_key); it != _command_series.end()) counter = it->second;
  }
  if (!counter) {
    std::unique_lock lock(_mu);
    auto& c = _command_series[series_key];
    if (!c)
      c = &_commands->Add({{"aggregate_type", "unknown"}, {"tenant_id", "unknown"}, {"outcome", outcome}});
    counter = c;
  }
  counter->Increment();
  _duration->Add({{"aggregate_type", "unknown"}}, latency_buckets()).Observe(seconds);
}

void aggregate_metrics::version_conflict(const std::string& type) {
  _conflicts->Add({{"aggregate_type", type}}).Increment();
}

void aggregate_metrics::rehydration(bool cache_hit, double seconds, std::size_t replayed) {
  (cache_hit ? _rehydration_hit : _rehydration_miss)->Observe(seconds);
  if (!cache_hit) _replayed_all->Observe(static_cast<double>(replayed));
}

void aggregate_metrics::snapshot(const std::string& type) {
  _snapshots->Add({{"aggregate_type", type}}).Increment();
}

void aggregate_metrics::tenant_error(const std::string& code) {
  _tenant_errors->Add({{"code", code}}).Increment();
}

}  // namespace esflow::aggregate

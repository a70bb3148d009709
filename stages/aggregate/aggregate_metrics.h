#pragma once
// Domain metrics of an aggregate node (the probe of this module), registered
// once into the node host's Prometheus registry (or a private one):
//
//   esflow_aggregate_commands_total{aggregate_type,tenant_id,outcome}
//   esflow_aggregate_command_duration_seconds{aggregate_type}      histogram, ingest -> publish
//   esflow_aggregate_version_conflicts_total{aggregate_type}
//   esflow_aggregate_rehydration_duration_seconds{cache=hit|miss}  histogram
//   esflow_aggregate_snapshots_total{aggregate_type}
//   esflow_aggregate_replayed_events                               histogram (events applied per miss)
//   esflow_aggregate_tenant_errors_total{code}
//
// outcome: accepted | duplicate | rejected (a program's rejection) | the
// rejection code otherwise (a fixed set: docs/contract.md "Rejection codes").
// tenant_id is capped: the first `tenant_cap` distinct tenants get their own
// label, later ones `other` (bounded cardinality whatever clients send).
//
// The counters of a known label set (each aggregate type, the three tenant
// codes) are exported at 0 before their first increment.
//
// NOTE: thread-safe. Series are looked up once per (labels) and cached.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace esflow::aggregate {

class aggregate_metrics {
 public:
  // registry null: a private registry (not exported).
  aggregate_metrics(prometheus::Registry* registry, std::size_t tenant_cap);

  // Exports the per-type counters (conflicts, snapshots) at 0 from the start,
  // so dashboards and rate() see the series before the first event.
  void declare_type(const std::string& type);

  void command(const std::string& type, const std::string& tenant, const std::string& outcome,
               double seconds);
  // A command refused before its type and tenant were known (labels "unknown").
  void command_unattributed(const std::string& outcome, double seconds);
  void version_conflict(const std::string& type);
  void rehydration(bool cache_hit, double seconds, std::size_t replayed);
  void snapshot(const std::string& type);
  void tenant_error(const std::string& code);

  // The label a tenant is counted under ("" spells "_", like subjects).
  std::string tenant_label(const std::string& tenant);
  prometheus::Registry& registry() { return *_registry; }

 private:
  std::shared_ptr<prometheus::Registry> _private;
  prometheus::Registry* _registry;
  std::size_t _tenant_cap;

  prometheus::Family<prometheus::Counter>* _commands;
  prometheus::Family<prometheus::Histogram>* _duration;
  prometheus::Family<prometheus::Counter>* _conflicts;
  prometheus::Family<prometheus::Histogram>* _rehydration;
  prometheus::Family<prometheus::Counter>* _snapshots;
  prometheus::Family<prometheus::Histogram>* _replayed;
  prometheus::Family<prometheus::Counter>* _tenant_errors;
  prometheus::Histogram* _rehydration_hit;
  prometheus::Histogram* _rehydration_miss;
  prometheus::Histogram* _replayed_all;

  std::shared_mutex _mu;
  std::unordered_set<std::string> _tenants;  // labelled tenants (<= cap)
  std::unordered_map<std::string, prometheus::Counter*> _command_series;
  std::unordered_map<std::string, prometheus::Histogram*> _duration_series;
};

}  // namespace esflow::aggregate

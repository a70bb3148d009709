#pragma once
// Metrics of a projection node, registered once into the node host's registry:
//   esflow_projection_events_total{view}             events folded into rows
//   esflow_projection_failures_total{view}           commits a view's program failed on (quarantined)
//   esflow_projection_lag_events{view}               log head position - the view's position
//   esflow_projection_position{view}                 the view's processed position
//   esflow_projection_query_duration_seconds{view}   histogram
//   esflow_projection_query_rows_scanned_total{view} rows read to answer queries
//   esflow_projection_watchers                       open watch streams (server-sent events)
//   esflow_projection_watch_dropped_total            streams closed because the client fell behind
//   esflow_projection_published_total{outcome}       row changes published on NATS (ok | failed)
// The view label is bounded by the pipeline files.
// NOTE: thread-safe.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace esflow::projection {

class projection_metrics {
 public:
  // registry null: a private one (not exported).
  projection_metrics(prometheus::Registry* registry, const std::vector<std::string>& views);

  void projected(const std::string& view, std::size_t events);
  void failed(const std::string& view);
  void position(const std::string& view, double position, double lag);
  void query(const std::string& view, double seconds, std::size_t rows_scanned);
  void watchers(int delta);
  void watch_dropped();
  void published(bool ok);

 private:
  struct series {
    prometheus::Counter* events;
    prometheus::Counter* failures;
    prometheus::Gauge* lag;
    prometheus::Gauge* position;
    prometheus::Histogram* query;
    prometheus::Counter* scanned;
  };
  series* find(const std::string& view);

  std::shared_ptr<prometheus::Registry> _private;
  prometheus::Gauge* _watchers = nullptr;
  prometheus::Counter* _watch_dropped = nullptr;
  prometheus::Counter* _published_ok = nullptr;
  prometheus::Counter* _published_failed = nullptr;
  std::unordered_map<std::string, series> _by_view;  // fixed after construction
};

}  // namespace esflow::projection

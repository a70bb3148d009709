#include "stages/projection/projection_metrics.h"

namespace esflow::projection {

projection_metrics::projection_metrics(prometheus::Registry* registry,
                                       const std::vector<std::string>& views) {
  if (registry == nullptr) {
    _private = std::make_shared<prometheus::Registry>();
    registry = _private.get();
  }
  auto& events = prometheus::BuildCounter()
                     .Name("esflow_projection_events_total")
                     .Help("Events folded into view rows")
                     .Register(*registry);
  auto& failures = prometheus::BuildCounter()
                       .Name("esflow_projection_failures_total")
                       .Help("Commits a view's program failed on (quarantined, skipped by the view)")
                       .Register(*registry);
  auto& lag = prometheus::BuildGauge()
                  .Name("esflow_projection_lag_events")
                  .Help("Log head position minus the view's processed position")
                  .Register(*registry);
  auto& position = prometheus::BuildGauge()
                       .Name("esflow_projection_position")
                       .Help("The log position up to which the view has processed every commit")
                       .Register(*registry);
  auto& query = prometheus::BuildHistogram()
                    .Name("esflow_projection_query_duration_seconds")
                    .Help("Time to answer a view query (waiting for min_position included)")
                    .Register(*registry);
  auto& scanned = prometheus::BuildCounter()
                      .Name("esflow_projection_query_rows_scanned_total")
                      .Help("Rows and index entries read to answer view queries")
                      .Register(*registry);
  _watchers = &prometheus::BuildGauge()
                   .Name("esflow_projection_watchers")
                   .Help("Open view watch streams (server-sent events)")
                   .Register(*registry)
                   .Add({});
  _watch_dropped = &prometheus::BuildCounter()
                        .Name("esflow_projection_watch_dropped_total")
                        .Help("Watch streams closed because the client fell behind (slow_consumer)")
                        .Register(*registry)
                        .Add({});
  auto& published = prometheus::BuildCounter()
                        .Name("esflow_projection_published_total")
                        .Help("Row changes published on NATS tenant.<t>.view.<view>.<key>")
                        .Register(*registry);
  _published_ok = &published.Add({{"outcome", "ok"}});
  _published_failed = &published.Add({{"outcome", "failed"}});
  const prometheus::Histogram::BucketBoundaries buckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                        0.025,  0.05,    0.1,    0.25,  1,      5};
  for (const auto& v : views) {
    const prometheus::Labels l{{"view", v}};
    _by_view.emplace(v, series{&events.Add(l), &failures.Add(l), &lag.Add(l), &position.Add(l),
                               &query.Add(l, buckets), &scanned.Add(l)});
  }
}

projection_metrics::series* projection_metrics::find(const std::string& view) {
  auto it = _by_view.find(view);
  return it == _by_view.end() ? nullptr : &it->second;
}

void projection_metrics::projected(const std::string& view, std::size_t events) {
  if (auto* s = find(view)) s->events->Increment(static_cast<double>(events));
}

void projection_metrics::failed(const std::string& view) {
  if (auto* s = find(view)) s->failures->Increment();
}

void projection_metrics::position(const std::string& view, double position, double lag) {
  if (auto* s = find(view)) {
    s->position->Set(position);
    s->lag->Set(lag);
  }
}

void projection_metrics::query(const std::string& view, double seconds, std::size_t rows_scanned) {
  if (auto* s = find(view)) {
    s->query->Observe(seconds);
    s->scanned->Increment(static_cast<double>(rows_scanned));
  }
}

}  // namespace esflow::projection

namespace esflow::projection {

void projection_metrics::watchers(int delta) { _watchers->Increment(delta); }
void projection_metrics::watch_dropped() { _watch_dropped->Increment(); }
void projection_metrics::published(bool ok) { (ok ? _published_ok : _published_failed)->Increment(); }

}  // namespace esflow::projection

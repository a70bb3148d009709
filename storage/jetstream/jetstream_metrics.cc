#include "storage/jetstream/jetstream_metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_type.h>

#include <limits>

namespace esflow::storage::jetstream {
namespace {

prometheus::MetricFamily counter(std::string name, std::string help, double value) {
  prometheus::ClientMetric m;
  m.counter.value = value;
  return {std::move(name), std::move(help), prometheus::MetricType::Counter, {m}};
}

prometheus::MetricFamily gauge(std::string name, std::string help, double value) {
  prometheus::ClientMetric m;
  m.gauge.value = value;
  return {std::move(name), std::move(help), prometheus::MetricType::Gauge, {m}};
}

}  // namespace

std::vector<prometheus::MetricFamily> jetstream_metrics::Collect() const {
  std::vector<prometheus::MetricFamily> out;
  auto log = _log.lock();
  auto* js = dynamic_cast<jetstream_event_log*>(log.get());
  if (js == nullptr) return out;
  const auto s = js->stats();
  const auto d = [](std::uint64_t v) { return static_cast<double>(v); };
  out.push_back(
      counter("esflow_jetstream_appends_total", "Appends taken by the JetStream log", d(s.appends)));
  out.push_back(
      counter("esflow_jetstream_commits_total", "Commits acknowledged as new messages", d(s.commits)));
  out.push_back(counter("esflow_jetstream_conflicts_total",
                        "Appends refused because the aggregate moved (version_conflict)", d(s.conflicts)));
  out.push_back(counter("esflow_jetstream_duplicates_total",
                        "Appends answered as duplicates (local dedupe or the server's Nats-Msg-Id)",
                        d(s.local_duplicates + s.server_duplicates)));
  out.push_back(counter("esflow_jetstream_direct_gets_total",
                        "Direct gets against the stream (cold reads, version loads, originals of duplicates)",
                        d(s.direct_gets)));
  out.push_back(counter("esflow_jetstream_unavailable_total",
                        "Appends answered unavailable (breaker open, publish failed or timed out)",
                        d(s.unavailable)));
  out.push_back(gauge("esflow_jetstream_in_flight", "Publishes awaiting their ack", d(s.in_flight)));

  prometheus::ClientMetric h;
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < ack_latency_bounds.size(); ++i) {
    cumulative += s.ack_latency.buckets[i];
    h.histogram.bucket.push_back({cumulative, ack_latency_bounds[i]});
  }
  cumulative += s.ack_latency.buckets.back();
  h.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
  h.histogram.sample_count = s.ack_latency.count;
  h.histogram.sample_sum = s.ack_latency.sum_seconds;
  out.push_back({"esflow_jetstream_ack_latency_seconds",
                 "Time from a commit's publish to its ack",
                 prometheus::MetricType::Histogram,
                 {h}});

  if (auto conn = _conn.lock()) {
    const auto st = conn->link_status();
    out.push_back(gauge("esflow_jetstream_breaker_open",
                        "1 while the NATS circuit breaker is open (appends fail at once)",
                        st.breaker_open ? 1.0 : 0.0));
    out.push_back(gauge("esflow_jetstream_connected", "1 while the NATS connection is up",
                        st.state == nats::link_state::connected ? 1.0 : 0.0));
  }
  return out;
}

}  // namespace esflow::storage::jetstream

#include "graph/stage_metrics.h"

#include "graph/stage_descriptor.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_type.h>

#include <limits>

namespace esflow::graph {

void stage_metrics::add(const std::shared_ptr<node>& n) {
  std::lock_guard lock(_mu);
  _nodes.emplace_back(n);
}

std::vector<prometheus::MetricFamily> stage_metrics::Collect() const {
  using prometheus::MetricType;
  prometheus::MetricFamily in{
      "esflow_stage_messages_in_total", "Messages a stage started processing", MetricType::Counter, {}};
  prometheus::MetricFamily out{"esflow_stage_messages_out_total",
                               "Messages a stage emitted on its output ports",
                               MetricType::Counter,
                               {}};
  prometheus::MetricFamily errors{
      "esflow_stage_errors_total", "Messages a stage sent to its error port", MetricType::Counter, {}};
  prometheus::MetricFamily in_flight{
      "esflow_stage_in_flight", "Messages a stage is processing now", MetricType::Gauge, {}};
  prometheus::MetricFamily queued{
      "esflow_stage_queue_depth", "Messages waiting in front of a stage", MetricType::Gauge, {}};
  prometheus::MetricFamily latency{
      "esflow_stage_latency_seconds", "Time from a stage's start to its finish", MetricType::Histogram, {}};
  prometheus::MetricFamily pipeline_in_flight{"esflow_pipeline_in_flight",
                                              "Messages admitted into a pipeline and not yet finished",
                                              MetricType::Gauge,
                                              {}};
  // Exported bucket bounds (seconds); the finer internal buckets fold into them.
  static const std::vector<double> bounds = {1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3,
                                             5e-3, 1e-2, 5e-2, 0.1,  0.5,  1.0,  5.0};
  std::lock_guard lock(_mu);
  for (const auto& weak : _nodes) {
    auto n = weak.lock();
    if (!n) continue;
    prometheus::ClientMetric pm;
    pm.label = {{"pipeline", n->spec().name}};
    pm.gauge.value = static_cast<double>(n->gate().in_flight());
    pipeline_in_flight.metric.push_back(pm);
    for (const auto& rt : n->stages()) {
      const auto t = rt->stats().read();
      std::vector<prometheus::ClientMetric::Label> labels = {
          {"kind", rt->spec().kind}, {"pipeline", n->spec().name}, {"stage", rt->name()}};
      auto counter = [&](prometheus::MetricFamily& f, double v) {
        prometheus::ClientMetric m;
        m.label = labels;
        m.counter.value = v;
        f.metric.push_back(m);
      };
      auto gauge = [&](prometheus::MetricFamily& f, double v) {
        prometheus::ClientMetric m;
        m.label = labels;
        m.gauge.value = v;
        f.metric.push_back(m);
      };
      counter(in, static_cast<double>(t.in));
      counter(out, static_cast<double>(t.out));
      counter(errors, static_cast<double>(t.errors));
      gauge(in_flight, static_cast<double>(std::max<std::int64_t>(0, t.in_flight())));
      gauge(queued, static_cast<double>(std::max<std::int64_t>(0, t.queued())));

      const auto& h = t.latency;
      prometheus::ClientMetric m;
      m.label = labels;
      m.histogram.sample_count = h.count;
      m.histogram.sample_sum = static_cast<double>(h.sum_ns) / 1e9;
      std::size_t i = 0;
      std::uint64_t cumulative = 0;
      for (double bound : bounds) {
        const auto bound_ns = static_cast<std::uint64_t>(bound * 1e9);
        while (i < static_cast<std::size_t>(latency_histogram::k_buckets) &&
               latency_histogram::snapshot::upper_bound_ns(static_cast<int>(i)) <= bound_ns)
          cumulative += h.counts[i++];
        m.histogram.bucket.push_back({cumulative, bound});
      }
      m.histogram.bucket.push_back({h.count, std::numeric_limits<double>::infinity()});
      latency.metric.push_back(m);
    }
  }
  return {in, out, errors, in_flight, queued, latency, pipeline_in_flight};
}

}  // namespace esflow::graph

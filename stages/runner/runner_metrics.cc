#include "stages/runner/runner_metrics.h"

namespace esflow::runner {
namespace {

const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                         0.025,  0.05,    0.1,    0.25,  1,      5,     30};
  return b;
}

}  // namespace

runner_metrics::runner_metrics(prometheus::Registry* registry, const std::string& pipeline,
                               const std::vector<std::string>& effects) {
  if (registry == nullptr) {
    _private = std::make_shared<prometheus::Registry>();
    registry = _private.get();
  }
  const prometheus::Labels p{{"pipeline", pipeline}};
  auto with = [&](std::initializer_list<std::pair<const std::string, std::string>> more) {
    prometheus::Labels l = p;
    for (const auto& kv : more) l.insert(kv);
    return l;
  };
  auto counter = [&](const char* name, const char* help) -> prometheus::Family<prometheus::Counter>& {
    return prometheus::BuildCounter().Name(name).Help(help).Register(*registry);
  };
  auto gauge = [&](const char* name, const char* help) -> prometheus::Family<prometheus::Gauge>& {
    return prometheus::BuildGauge().Name(name).Help(help).Register(*registry);
  };
  auto histogram = [&](const char* name, const char* help) -> prometheus::Family<prometheus::Histogram>& {
    return prometheus::BuildHistogram().Name(name).Help(help).Register(*registry);
  };
  auto& inputs = counter("esflow_runner_inputs_total", "Saga inputs processed, by input kind and outcome");
  for (const char* kind : {"event", "command_result", "effect_result", "reminder", "other"})
    for (const char* outcome : {"committed", "skipped_seen", "skipped_done", "quarantined"})
      _inputs.emplace(std::string(kind) + "/" + outcome,
                      &inputs.Add(with({{"kind", kind}, {"outcome", outcome}})));
  _commit = &histogram("esflow_runner_saga_commit_duration_seconds",
                       "Time to store one saga commit (state, outbox, schedules, markers, checkpoint)")
                 .Add(p, latency_buckets());
  auto& lag = gauge("esflow_runner_input_lag",
                    "Source head position minus the runner's watermark (source log | events)");
  _lag_log = &lag.Add(with({{"source", "log"}}));
  _lag_events = &lag.Add(with({{"source", "events"}}));
  _outbox_depth = &gauge("esflow_runner_outbox_depth",
                         "Outbox items seen by the last scan pass (a bounded pass: a lower bound)")
                       .Add(p);
  _hints_dropped = &counter("esflow_runner_outbox_hints_dropped_total",
                            "New outbox items over outbox.scan's max_hints, left for a pass to find")
                        .Add(p);
  auto& dispatched =
      counter("esflow_runner_outbox_dispatched_total", "Outbox dispatches by outcome (confirmed | retried)");
  _confirmed = &dispatched.Add(with({{"outcome", "confirmed"}}));
  _retried_dispatch = &dispatched.Add(with({{"outcome", "retried"}}));
  _dispatch = &histogram("esflow_runner_outbox_dispatch_duration_seconds",
                         "Time from an outbox item's creation to its confirmed dispatch")
                   .Add(p, latency_buckets());
  auto& effect_outcomes =
      counter("esflow_runner_effects_total", "Effect calls by outcome (succeeded | failed)");
  auto& effect_duration =
      histogram("esflow_runner_effect_duration_seconds", "Duration of one effect call, its retries included");
  for (const auto& e : effects)
    _effects.emplace(e, effect_series{&effect_outcomes.Add(with({{"effect", e}, {"outcome", "succeeded"}})),
                                      &effect_outcomes.Add(with({{"effect", e}, {"outcome", "failed"}})),
                                      &effect_duration.Add(with({{"effect", e}}), latency_buckets())});
  _schedule_lag =
      &histogram("esflow_runner_schedule_lag_seconds", "Now minus the reminder's due time, at its publish")
           .Add(p, latency_buckets());
  _retried_inputs = &counter("esflow_runner_retried_inputs_total",
                             "Saga inputs handed back to the saga path by quarantine retry or replay")
                         .Add(p);
}

void runner_metrics::input(std::string_view kind, std::string_view outcome) {
  auto it = _inputs.find(std::string(kind) + "/" + std::string(outcome));
  if (it == _inputs.end()) it = _inputs.find("other/" + std::string(outcome));
  if (it != _inputs.end()) it->second->Increment();
}

void runner_metrics::saga_commit(double seconds) { _commit->Observe(seconds); }

void runner_metrics::input_lag(std::string_view source, double lag) {
  (source == "events" ? _lag_events : _lag_log)->Set(lag);
}

void runner_metrics::outbox_depth(double items) { _outbox_depth->Set(items); }

void runner_metrics::outbox_hints_dropped(std::size_t items) {
  _hints_dropped->Increment(static_cast<double>(items));
}

void runner_metrics::dispatched(bool confirmed, double seconds) {
  if (!confirmed) {
    _retried_dispatch->Increment();
    return;
  }
  _confirmed->Increment();
  if (seconds >= 0) _dispatch->Observe(seconds);
}

void runner_metrics::effect(const std::string& effect, bool succeeded, double seconds) {
  auto it = _effects.find(effect);
  if (it == _effects.end()) return;
  (succeeded ? it->second.succeeded : it->second.failed)->Increment();
  it->second.duration->Observe(seconds);
}

void runner_metrics::schedule_lag(double seconds) { _schedule_lag->Observe(seconds < 0 ? 0 : seconds); }

void runner_metrics::retried(std::size_t inputs) { _retried_inputs->Increment(static_cast<double>(inputs)); }

}  // namespace esflow::runner

#pragma once
// Metrics of a runner pipeline, registered into the node host's registry
// (one object per pipeline; the families are shared by name):
//   esflow_runner_inputs_total{pipeline,kind,outcome}          saga inputs: kind event | command_result |
//                                                              effect_result | reminder; outcome committed |
//                                                              skipped_seen | skipped_done | quarantined
//   esflow_runner_saga_commit_duration_seconds{pipeline}       histogram: one saga commit (group commit)
//   esflow_runner_input_lag{pipeline,source}                   source head - watermark (source log | events)
//   esflow_runner_outbox_depth{pipeline}                       items seen by the last outbox scan pass
//   esflow_runner_outbox_hints_dropped_total{pipeline}         new items over outbox.scan's max_hints (a pass
//   finds them) esflow_runner_outbox_dispatched_total{pipeline,outcome}    confirmed | retried
//   esflow_runner_outbox_dispatch_duration_seconds{pipeline}   histogram: item created -> confirmed
//   esflow_runner_effects_total{pipeline,effect,outcome}       succeeded | failed
//   esflow_runner_effect_duration_seconds{pipeline,effect}     histogram: one effect call (its attempts)
//   esflow_runner_schedule_lag_seconds{pipeline}               histogram: now - due, at the reminder's
//   publish esflow_runner_retried_inputs_total{pipeline}               inputs handed back by quarantine retry
//   / replay
// Labels are bounded by the pipeline files (pipeline, effect) and fixed sets;
// no tenant label.
// NOTE: thread-safe.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace esflow::runner {

class runner_metrics {
 public:
  // registry null: a private one (not exported).
  runner_metrics(prometheus::Registry* registry, const std::string& pipeline,
                 const std::vector<std::string>& effects);

  void input(std::string_view kind, std::string_view outcome);
  void saga_commit(double seconds);
  void input_lag(std::string_view source, double lag);
  void outbox_depth(double items);
  void outbox_hints_dropped(std::size_t items);
  void dispatched(bool confirmed, double seconds);
  void effect(const std::string& effect, bool succeeded, double seconds);
  void schedule_lag(double seconds);
  void retried(std::size_t inputs);

 private:
  std::shared_ptr<prometheus::Registry> _private;
  std::map<std::string, prometheus::Counter*, std::less<>> _inputs;  // kind/outcome, fixed
  prometheus::Histogram* _commit = nullptr;
  prometheus::Gauge* _lag_log = nullptr;
  prometheus::Gauge* _lag_events = nullptr;
  prometheus::Gauge* _outbox_depth = nullptr;
  prometheus::Counter* _hints_dropped = nullptr;
  prometheus::Counter* _confirmed = nullptr;
  prometheus::Counter* _retried_dispatch = nullptr;
  prometheus::Histogram* _dispatch = nullptr;
  struct effect_series {
    prometheus::Counter* succeeded;
    prometheus::Counter* failed;
    prometheus::Histogram* duration;
  };
  std::map<std::string, effect_series, std::less<>> _effects;  // fixed after construction
  prometheus::Histogram* _schedule_lag = nullptr;
  prometheus::Counter* _retried_inputs = nullptr;
};

}  // namespace esflow::runner

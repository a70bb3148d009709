// saga.follow: the saga path's ingest on one machine. Tails the data
// directory's event log (committed aggregate events) and its WORKFLOW_EVENTS
// stream (command results, effect results, reminders) from the pipeline's
// checkpoints, turns each into saga inputs (saga_input.h) and admits one
// message per instance touched, keyed by (tenant, saga, correlation id).
// A position is acked to its tracker when every message made of it is;
// a nak rewinds that source to its watermark (markers skip what is stored).
//
// Concurrency: run() on the source thread; log and stream reads block there,
// never on a TBB worker. Bounded batches; polls every `poll` once caught up.
#include "common/log.h"
#include "graph/pipeline_spec.h"
#include "stages/runner/runner_metrics.h"
#include "stages/runner/runner_service.h"
#include "stages/runner/stages.h"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>

namespace esflow::runner {
namespace {

struct position_done {
  stages::position_tracker* tracker = nullptr;
  schemas::position_t position = 0;
  std::atomic<int> remaining{0};
  std::atomic<bool> failed{false};
};

class part_ack final : public stages::ingest_ack {
 public:
  explicit part_ack(std::shared_ptr<position_done> d) : _d(std::move(d)) {}
  void ack() override { settle(); }
  void nak() override {
    _d->failed = true;
    settle();
  }

 private:
  void settle() {
    if (_settled.exchange(true)) return;
    if (_d->remaining.fetch_sub(1) != 1) return;
    if (_d->failed)
      _d->tracker->failed(_d->position);
    else
      _d->tracker->done(_d->position);
  }
  std::shared_ptr<position_done> _d;
  std::atomic<bool> _settled{false};
};

class saga_follow final : public graph::stage {
 public:
  saga_follow(std::shared_ptr<runner_service> service, stages::context_factory make_context,
              std::size_t batch, std::chrono::milliseconds poll)
      : _service(std::move(service)), _make_context(std::move(make_context)), _batch(batch), _poll(poll) {}

  void run(graph::source_output& out) override {
    source log_src{"log", &_service->log_tracker()};
    source events_src{"events", &_service->events_tracker()};
    for (auto* s : {&log_src, &events_src}) {
      for (;;) {
        auto cp = _service->store().checkpoints().get({}, _service->checkpoint_name(s->name));
        if (cp.ok()) {
          s->after = cp.value().value_or(0);
          break;
        }
        ESFLOW_WARN("runner", "{}: reading checkpoint {}: {}", _service->pipeline(), s->name,
                    cp.err().to_string());
        if (idle(out)) return;
      }
      s->checkpointed = s->after;
      s->tracker->reset(s->after);
    }
    ESFLOW_INFO("runner", "{}: following the log after {} and WORKFLOW_EVENTS after {}", _service->pipeline(),
                log_src.after, events_src.after);
    while (!out.stopping()) {
      if (!admit_retries(out)) return;
      const auto log_read = follow_log(out, log_src);
      report_lag(log_src, events_src);
      if (out.stopping()) return;
      const auto events_read = follow_events(out, events_src);
      if (log_read == _batch || events_read == _batch) continue;
      for (auto* s : {&log_src, &events_src})
        _service->checkpoint_when_idle(*s->tracker, s->name, s->checkpointed);
      if (idle(out)) return;
    }
  }

 private:
  struct source {
    std::string name;
    stages::position_tracker* tracker;
    schemas::position_t after = 0;
    schemas::position_t checkpointed = 0;
  };

  void rewind_if_asked(source& s) {
    if (auto from = s.tracker->take_rewind()) {
      ESFLOW_WARN("runner", "{}: re-reading {} after {} (an input failed to commit)", _service->pipeline(),
                  s.name, *from);
      s.after = *from;
    }
  }

  // Admits the inputs of one position (grouped per instance, in order).
  bool admit(graph::source_output& out, source& s, schemas::position_t p, std::vector<saga_input> inputs) {
    std::map<std::string, std::vector<saga_input>> groups;
    std::vector<std::string> order;
    for (auto& in : inputs) {
      auto key = instance_key(in.tenant, in.saga, in.correlation_id);
      // A finished instance takes no more inputs, and they need no marker: dropped here when
      // memory knows it is done and stored, before they cost a message (saga.commit skips the
      // ones memory does not know about; docs/runner.md "The commit").
      if (_service->stored_done(key)) {
        if (auto* metrics = _service->metrics()) metrics->input(in.kind, "skipped_done");
        continue;
      }
      if (!groups.count(key)) order.push_back(key);
      groups[key].push_back(std::move(in));
    }
    if (order.empty()) {
      s.tracker->passed(p);
      s.after = p;
      return true;
    }
    auto done = std::make_shared<position_done>();
    done->tracker = s.tracker;
    done->position = p;
    done->remaining = static_cast<int>(order.size());
    s.tracker->begin(p);
    for (std::size_t i = 0; i < order.size(); ++i) {
      const auto& key = order[i];
      auto m = graph::make_message();
      auto ctx = std::dynamic_pointer_cast<runner_context>(stages::new_ingest_context(_make_context));
      if (!ctx) ctx = std::make_shared<runner_context>();
      auto& group = groups[key];
      ctx->transport = "log";
      ctx->tenant_given = true;
      ctx->transport_tenant = group.front().tenant;
      ctx->incoming_correlation_id = group.front().correlation_id;
      ctx->source = s.name;
      ctx->position = p;
      ctx->inputs = std::move(group);
      ctx->ack = std::make_shared<part_ack>(done);
      m->key = key;
      m->context = std::move(ctx);
      if (!out.put(std::move(m))) {
        // Stopping: what was not admitted is re-read after the restart.
        done->failed = true;
        const auto never = static_cast<int>(order.size() - i);
        if (done->remaining.fetch_sub(never) == never) s.tracker->failed(p);
        return false;
      }
    }
    s.tracker->passed(p);
    s.after = p;
    return true;
  }

  std::size_t follow_log(graph::source_output& out, source& s) {
    rewind_if_asked(s);
    auto page = _service->log().read_from(s.after, _batch);
    if (!page.ok()) {
      ESFLOW_WARN("runner", "{}: reading the log after {}: {}", _service->pipeline(), s.after,
                  page.err().to_string());
      return 0;
    }
    for (auto& pc : page.value())
      if (!admit(out, s, pc.position, inputs_of_commit(_service->sagas(), pc.commit))) return 0;
    return page->size();
  }

  std::size_t follow_events(graph::source_output& out, source& s) {
    rewind_if_asked(s);
    auto page = _service->events().read_from(s.after, _batch);
    if (!page.ok()) {
      ESFLOW_WARN("runner", "{}: reading WORKFLOW_EVENTS after {}: {}", _service->pipeline(), s.after,
                  page.err().to_string());
      return 0;
    }
    for (auto& msg : page.value()) {
      std::vector<saga_input> inputs;
      auto in = input_of_workflow_message(_service->sagas(), msg.subject, msg.body);
      if (!in.ok()) {
        ESFLOW_WARN("runner", "{}: WORKFLOW_EVENTS {} ({}) skipped: {}", _service->pipeline(), msg.position,
                    msg.subject, in.err().to_string());
      } else if (in.value()) {
        inputs.push_back(std::move(*in.value()));
      }
      if (!admit(out, s, msg.position, std::move(inputs))) return 0;
    }
    return page->size();
  }

  // Inputs handed back by a quarantine retry or a replay (runner_admin.cc): one
  // fresh message each, its ack a no-op except a nak, which hands it back again
  // (at most 3 times). False when stopping.
  bool admit_retries(graph::source_output& out) {
    for (auto& item : _service->take_retries(_batch)) {
      if (item.inputs.empty()) continue;
      auto m = graph::make_message();
      auto ctx = std::dynamic_pointer_cast<runner_context>(stages::new_ingest_context(_make_context));
      if (!ctx) ctx = std::make_shared<runner_context>();
      ctx->transport = "log";
      ctx->tenant_given = true;
      ctx->transport_tenant = item.inputs.front().tenant;
      ctx->incoming_correlation_id = item.inputs.front().correlation_id;
      ctx->source = item.source == "events" ? "events" : "log";
      ctx->position = item.position;
      ctx->attempts = item.attempts;
      ctx->inputs = item.inputs;
      ctx->ack = std::make_shared<retry_ack>(_service, std::move(item));
      m->key = instance_key(ctx->inputs.front().tenant, ctx->inputs.front().saga,
                            ctx->inputs.front().correlation_id);
      m->context = std::move(ctx);
      if (!out.put(std::move(m))) return false;
    }
    return true;
  }

  class retry_ack final : public stages::ingest_ack {
   public:
    retry_ack(std::weak_ptr<runner_service> service, runner_service::retry_item item)
        : _service(std::move(service)), _item(std::move(item)) {}
    void ack() override {}
    void nak() override {
      auto s = _service.lock();
      if (!s || _settled.exchange(true) || _item.requeued >= 3) return;
      ++_item.requeued;
      s->enqueue_retries({_item});
    }

   private:
    std::weak_ptr<runner_service> _service;
    runner_service::retry_item _item;
    std::atomic<bool> _settled{false};
  };

  void report_lag(const source& log_src, const source& events_src) {
    auto* m = _service->metrics();
    const auto now = std::chrono::steady_clock::now();
    if (m == nullptr || now < _next_lag_report) return;
    _next_lag_report = now + std::chrono::milliseconds(500);
    if (auto head = _service->log().last_position(); head.ok()) {
      const auto w = log_src.tracker->watermark();
      m->input_lag("log", head.value() > w ? static_cast<double>(head.value() - w) : 0.0);
    }
    if (auto head = _service->events().last_position(); head.ok()) {
      const auto w = events_src.tracker->watermark();
      m->input_lag("events", head.value() > w ? static_cast<double>(head.value() - w) : 0.0);
    }
  }

  // True when stopping.
  bool idle(graph::source_output& out) {
    std::unique_lock lock(_mu);
    _cv.wait_for(lock, out.stop_token(), _poll, [] { return false; });
    return out.stopping();
  }

  std::shared_ptr<runner_service> _service;
  stages::context_factory _make_context;
  std::size_t _batch;
  std::chrono::milliseconds _poll;
  std::mutex _mu;
  std::condition_variable_any _cv;
  std::chrono::steady_clock::time_point _next_lag_report{};
};

}  // namespace

graph::stage_descriptor saga_follow_descriptor() {
  graph::stage_descriptor d;
  d.kind = "saga.follow";
  d.provides_context = {"runner"};
  d.node_kind = "runner";
  d.description =
      "tails the event log and WORKFLOW_EVENTS from the runner's checkpoints: one message per saga instance "
      "touched";
  d.role = graph::stage_role::source;
  d.default_concurrency = graph::concurrency::serial();
  d.params = {
      graph::int_param("batch", 256, "positions read per call, per source", 1, 65536),
      graph::duration_param("poll", 20, "wait between reads once caught up"),
  };
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto service = stage_service(init);
    if (!service.ok()) return std::move(service).err();
    return std::unique_ptr<graph::stage>(
        new saga_follow(std::move(service).value(), init.make_context,
                        static_cast<std::size_t>(init.spec.params.integer("batch")),
                        std::chrono::milliseconds(init.spec.params.integer("poll"))));
  };
  return d;
}

}  // namespace esflow::runner

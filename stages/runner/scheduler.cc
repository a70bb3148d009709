// The scheduler: schedule.scan -> schedule.publish -> schedule.delete
// (docs/contract.md "Runner node", reminders). Schedules sort by due time
// (storage/runner_stores.h), so the due ones are a prefix of the family.
// A due item is published to WORKFLOW_EVENTS as a reminder
// (tenant.<t>.reminder.<saga>, Nats-Msg-Id `<t>:<schedule key>`), then
// deleted; a crash between the two publishes it again after the restart,
// which the stream's msg id and the saga's input marker make harmless.
// A cancelled schedule was deleted by its saga commit and never fires.
//
// Concurrency: scan on its source thread (local reads); publish completes
// on the stream's thread, delete on a committer thread.
#include "common/log.h"
#include "graph/pipeline_spec.h"
#include "schemas/ids.h"
#include "stages/runner/runner_metrics.h"
#include "stages/runner/runner_service.h"
#include "stages/runner/stages.h"
#include "transport/nats/subjects.h"

#include <nlohmann/json.hpp>

namespace esflow::runner {
namespace {

using nlohmann::json;

std::string claim_key(const storage::schedule_key& k) {
  return std::string(k_schedule_claim_prefix) + k.tenant + "\x1f" + schedule_key_text(k);
}

class schedule_scan final : public graph::stage {
 public:
  schedule_scan(std::shared_ptr<runner_service> service, stages::context_factory make_context,
                std::size_t batch, std::chrono::milliseconds poll, std::chrono::milliseconds full_every)
      : _service(std::move(service)),
        _make_context(std::move(make_context)),
        _batch(batch),
        _poll(poll),
        _full_every(full_every) {}

  void run(graph::source_output& out) override {
    // Scans start at a floor a little before the last complete scan's time, so
    // the deleted items of the past are not walked on every poll. Every
    // full_every (and at start) a scan starts at the beginning: it finds what
    // the floor skips — an item whose publish failed after the floor passed
    // it, or one committed more than k_floor_grace after its due time.
    std::uint64_t floor_ms = 0;
    auto last_full = std::chrono::steady_clock::time_point{};
    while (!out.stopping()) {
      const auto now_ms = _service->now_ms();
      const auto now = std::chrono::steady_clock::now();
      const bool full = floor_ms == 0 || now - last_full >= _full_every;
      if (full) last_full = now;
      auto due = _service->store().schedules().due(now_ms, _batch, full ? 0 : floor_ms);
      // Everything due is in hand only when the batch did not fill.
      if (due.ok() && due->size() < _batch)
        floor_ms = now_ms > k_floor_grace_ms ? now_ms - k_floor_grace_ms : 0;
      if (!due.ok()) {
        ESFLOW_WARN("runner", "{}: reading schedules: {}", _service->pipeline(), due.err().to_string());
      } else {
        for (auto& item : due.value()) {
          if (!_service->claim(claim_key(item.key), now)) continue;
          auto m = graph::make_message();
          auto ctx = std::dynamic_pointer_cast<runner_context>(stages::new_ingest_context(_make_context));
          if (!ctx) ctx = std::make_shared<runner_context>();
          ctx->transport = "schedule";
          ctx->tenant_given = true;
          ctx->transport_tenant = item.key.tenant;
          ctx->tenant = item.key.tenant;
          ctx->source = "schedule";
          ctx->due = std::move(item);
          m->key = claim_key(ctx->due.key);
          m->context = std::move(ctx);
          if (!out.put(std::move(m))) return;
        }
      }
      _service->wait_for_schedules(_poll, out.stop_token());
    }
  }

 private:
  std::shared_ptr<runner_service> _service;
  stages::context_factory _make_context;
  static constexpr std::uint64_t k_floor_grace_ms = 2000;
  std::size_t _batch;
  std::chrono::milliseconds _poll;
  std::chrono::milliseconds _full_every;
};

class schedule_publish final : public graph::stage {
 public:
  explicit schedule_publish(std::shared_ptr<runner_service> service) : _service(std::move(service)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    const auto& k = ctx.due.key;
    auto body = json::parse(ctx.due.payload, nullptr, false);
    if (!body.is_object()) body = json::object();
    body["tenant_id"] = k.tenant;
    body["saga"] = k.saga;
    body["correlation_id"] = k.correlation_id;
    body["name"] = k.name;
    body["due_ms"] = k.due_ms;
    body["schedule_key"] = schedule_key_text(k);
    body["due_at"] =
        schemas::format_timestamp(std::chrono::system_clock::time_point(std::chrono::milliseconds(k.due_ms)));
    storage::publish_request req;
    req.subject = nats::reminder_subject(k.tenant, k.saga);
    req.msg_id = nats::tenant_token(k.tenant) + ":" + schedule_key_text(k);
    req.headers = _service->headers_for(k.tenant, k.correlation_id, body.value("trace_id", ""));
    req.body = body.dump();
    if (auto* metrics = _service->metrics())
      metrics->schedule_lag((static_cast<double>(_service->now_ms()) - static_cast<double>(k.due_ms)) /
                            1000.0);
    publish_and_end(std::move(m), out, _service->events(), std::move(req));
  }

 private:
  std::shared_ptr<runner_service> _service;
};

class schedule_delete final : public graph::stage {
 public:
  explicit schedule_delete(std::shared_ptr<runner_service> service) : _service(std::move(service)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    if (m->error) {
      ESFLOW_WARN("runner", "{}: reminder {} not published (retried later): {}", _service->pipeline(),
                  schedule_key_text(ctx.due.key), m->error->to_string());
      _service->release(claim_key(ctx.due.key), true);
      out.finish();
      return;
    }
    auto ws = _service->store().begin();
    _service->store().schedules().erase(ws, ctx.due.key);
    auto* raw = m.release();
    _service->committer().submit(std::move(ws), [this, raw, out](status st) {
      graph::run_guarded(out, graph::message_ptr(raw), [&](graph::message_ptr& msg) {
        _service->release(claim_key(context_of(*msg).due.key), !st.ok());
        if (!st.ok()) out.fail(std::move(msg), std::move(st).err());
        out.finish();
      });
    });
  }

 private:
  std::shared_ptr<runner_service> _service;
};

}  // namespace

graph::stage_descriptor schedule_scan_descriptor() {
  graph::stage_descriptor d;
  d.kind = "schedule.scan";
  d.provides_context = {"runner"};
  d.node_kind = "runner";
  d.description = "the scheduler's source: schedule items due now, earliest first";
  d.role = graph::stage_role::source;
  d.default_concurrency = graph::concurrency::serial();
  d.params = {
      graph::int_param("batch", 256, "due items read per scan", 1, 65536),
      graph::duration_param("poll", 100, "wait between scans (the reminders' lateness at most)"),
      graph::duration_param("full_every", 10000,
                            "a scan from the first item at least this often (others start near the last "
                            "scan's time, skipping the deleted past)"),
  };
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto service = stage_service(init);
    if (!service.ok()) return std::move(service).err();
    return std::unique_ptr<graph::stage>(
        new schedule_scan(std::move(service).value(), init.make_context,
                          static_cast<std::size_t>(init.spec.params.integer("batch")),
                          std::chrono::milliseconds(init.spec.params.integer("poll")),
                          std::chrono::milliseconds(init.spec.params.integer("full_every"))));
  };
  return d;
}

graph::stage_descriptor schedule_publish_descriptor() {
  return runner_stage<schedule_publish>(
      "schedule.publish", "publishes a due schedule item as a reminder to WORKFLOW_EVENTS", true, false);
}

graph::stage_descriptor schedule_delete_descriptor() {
  auto d = runner_stage<schedule_delete>(
      "schedule.delete", "deletes a published reminder's schedule item; a failed publish is retried", true,
      false);
  d.role = graph::stage_role::sink;
  return d;
}

}  // namespace esflow::runner

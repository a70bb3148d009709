// The effect path (docs/contract.md "Runner node", effects):
//   effect.follow  -> tenant.gate -> effect.gate -> effect.execute -> effect.publish -> effect.done -> ack
//   effect.follow   source: tails WORKFLOW_COMMANDS from the pipeline's
//                   checkpoint; one message per effect command, keyed by
//                   (tenant, command id).
//   effect.gate     the idempotency gate: a result stored for (tenant,
//                   command id) is re-published, the effect is not run again.
//   effect.execute  async: the effect's provider on the executor's own
//                   threads (timeouts, retries with backoff, a breaker per
//                   effect); never on a TBB worker.
//   effect.publish  async: the result to WORKFLOW_EVENTS
//                   (tenant.<t>.effect_result.<effect>, `<t>:result:<id>`).
//   effect.done     async: the result is stored (the effect's dedupe
//                   record) only after the publish ack, with the checkpoint;
//                   on the embedded stream both were written with the
//                   published result already, in the same write.
// A crash between the provider's call and effect.done runs the call again
// after the restart, with the same Idempotency-Key.
#include "common/log.h"
#include "graph/pipeline_spec.h"
#include "schemas/ids.h"
#include "schemas/json_encode.h"
#include "stages/runner/crash_point.h"
#include "stages/runner/json_read.h"
#include "stages/runner/runner_metrics.h"
#include "stages/runner/runner_service.h"
#include "stages/runner/stages.h"
#include "transport/nats/subjects.h"

#include <simdjson.h>

#include <condition_variable>
#include <mutex>

namespace esflow::runner {
namespace {

class position_ack final : public stages::ingest_ack {
 public:
  position_ack(stages::position_tracker& t, schemas::position_t p) : _t(t), _p(p) {}
  void ack() override { _t.done(_p); }
  void nak() override { _t.failed(_p); }

 private:
  stages::position_tracker& _t;
  schemas::position_t _p;
};

// An effect command body (docs/contract.md "Runner node") into the context.
status decode_effect_command(std::string_view text_body, runner_context& ctx) {
  // One validating simdjson pass (a malformed value anywhere refuses the command).
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object body;
  const auto refused = [] {
    return error::make(errc::invalid_command,
                       "not an effect command (a JSON object with command_id and effect)");
  };
  if (parser.parse(text_body.data(), text_body.size()).get_object().get(body)) return refused();
  auto text = [&](std::string_view f) { return text_field(body, f); };
  ctx.call.command_id = text("command_id");
  ctx.call.effect = text("effect");
  if (ctx.call.command_id.empty() || ctx.call.effect.empty()) return refused();
  ctx.tenant_given = true;
  ctx.transport_tenant = text("tenant_id");
  ctx.incoming_correlation_id = text("correlation_id");
  ctx.call.tenant = ctx.transport_tenant;
  simdjson::dom::element payload;
  ctx.call.payload_json = body["payload"].get(payload) ? std::string("{}") : simdjson::minify(payload);
  ctx.call.correlation_id = ctx.incoming_correlation_id;
  ctx.call.trace_id = text("trace_id");
  std::string_view saga;
  if (!body.at_pointer("/metadata/saga").get_string().get(saga)) ctx.saga_name = std::string(saga);
  return {};
}

// The effect result (docs/contract.md "Runner node"); `payload` is used when it is a JSON object.
std::string effect_result_body(const runner_context& c, const effect_outcome& outcome, int attempts) {
  std::string payload = "{}";
  if (outcome.succeeded()) {
    thread_local simdjson::dom::parser parser;
    simdjson::dom::object o;
    if (!parser.parse(outcome.payload_json.data(), outcome.payload_json.size()).get_object().get(o))
      payload = simdjson::minify(o);
  }
  std::string out;
  out.reserve(320 + payload.size() + outcome.error.size());
  schemas::json_writer w(out);
  w.begin_object();
  w.key("tenant_id").value(c.call.tenant);
  w.key("command_id").value(c.call.command_id);
  w.key("effect").value(c.call.effect);
  w.key("saga").value(c.saga_name);
  w.key("result_type").value(to_string(outcome.result));
  w.key("payload").raw(payload);
  if (outcome.succeeded())
    w.key("error").null();
  else
    w.key("error").value(outcome.error);
  w.key("attempts").value(static_cast<std::int64_t>(attempts));
  w.key("timestamp").value(schemas::now_timestamp());
  w.key("correlation_id").value(c.call.correlation_id);
  w.key("trace_id").value(c.call.trace_id);
  w.end_object();
  return out;
}

class effect_follow final : public graph::stage {
 public:
  effect_follow(std::shared_ptr<runner_service> service, stages::context_factory make_context,
                std::size_t batch, std::chrono::milliseconds poll)
      : _service(std::move(service)), _make_context(std::move(make_context)), _batch(batch), _poll(poll) {}

  void run(graph::source_output& out) override {
    auto& tracker = _service->commands_tracker();
    schemas::position_t after = 0;
    for (;;) {
      auto cp = _service->store().checkpoints().get({}, _service->checkpoint_name("commands"));
      if (cp.ok()) {
        after = cp.value().value_or(0);
        break;
      }
      ESFLOW_WARN("runner", "{}: reading checkpoint commands: {}", _service->pipeline(),
                  cp.err().to_string());
      if (idle(out)) return;
    }
    tracker.reset(after);
    auto checkpointed = after;
    while (!out.stopping()) {
      if (auto from = tracker.take_rewind()) after = *from;
      auto page = _service->commands().read_from(after, _batch);
      if (!page.ok()) {
        ESFLOW_WARN("runner", "{}: reading WORKFLOW_COMMANDS after {}: {}", _service->pipeline(), after,
                    page.err().to_string());
        if (idle(out)) return;
        continue;
      }
      for (auto& msg : page.value()) {
        auto m = decode(msg);
        if (m) {
          tracker.begin(msg.position);
          if (!out.put(std::move(m))) {
            tracker.failed(msg.position);
            return;
          }
        }
        tracker.passed(msg.position);
        after = msg.position;
      }
      if (page->size() == _batch) continue;
      // effect.done writes its checkpoint WITHOUT the committing command: without this the last
      // commands were re-read after every restart.
      _service->checkpoint_when_idle(tracker, "commands", checkpointed);
      if (idle(out)) return;
    }
  }

 private:
  graph::message_ptr decode(const storage::stream_message& msg) {
    auto m = graph::make_message();
    auto ctx = std::dynamic_pointer_cast<runner_context>(stages::new_ingest_context(_make_context));
    if (!ctx) ctx = std::make_shared<runner_context>();
    ctx->transport = "workflow";
    if (auto st = decode_effect_command(msg.body, *ctx); !st.ok()) {
      ESFLOW_WARN("runner", "{}: WORKFLOW_COMMANDS {} ({}) skipped: {}", _service->pipeline(), msg.position,
                  msg.subject, st.err().to_string());
      return nullptr;
    }
    ctx->source = "commands";
    ctx->position = msg.position;
    ctx->ack = std::make_shared<position_ack>(_service->commands_tracker(), msg.position);
    m->key = ctx->call.tenant + '\x1f' + ctx->call.command_id;
    m->context = std::move(ctx);
    return m;
  }

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
};

// effect.decode: behind a jetstream.consumer on WORKFLOW_COMMANDS (the
// runner on JetStream): the body into the effect call, keyed by (tenant,
// command id); the consumer's acks stand for the checkpoint.
class effect_decode final : public graph::stage {
 public:
  explicit effect_decode(std::shared_ptr<runner_service> service) : _service(std::move(service)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    if (auto st = decode_effect_command(m->body, ctx); !st.ok()) {
      out.fail(std::move(m), std::move(st).err());
      return;
    }
    ctx.source = "jetstream";
    ctx.position = ctx.stream_sequence;
    m->key = ctx.call.tenant + '\x1f' + ctx.call.command_id;
    out.emit(std::move(m));
  }

 private:
  std::shared_ptr<runner_service> _service;
};

class effect_gate final : public graph::stage {
 public:
  explicit effect_gate(std::shared_ptr<runner_service> service) : _service(std::move(service)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    if (ctx.call.tenant != ctx.tenant) {
      out.fail(std::move(m), error::make(errc::tenant_access_denied, "the effect command's tenant differs"));
      return;
    }
    auto stored = _service->stored_result(ctx.call.tenant, ctx.call.command_id);
    if (!stored.ok()) {
      out.fail(std::move(m), std::move(stored).err());
      return;
    }
    if (stored.value()) {
      ctx.replay = true;
      ctx.result_body = std::move(*stored.value());
    }
    out.emit(std::move(m));
  }

 private:
  std::shared_ptr<runner_service> _service;
};

class effect_execute final : public graph::stage {
 public:
  explicit effect_execute(std::shared_ptr<runner_service> service) : _service(std::move(service)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    if (ctx.replay) {
      out.emit(std::move(m));
      out.finish();
      return;
    }
    auto call = ctx.call;
    auto* raw = m.release();
    const auto started = std::chrono::steady_clock::now();
    auto* metrics = _service->metrics();  // lives as long as the service, which outlives its executor
    _service->executor().execute(std::move(call), [raw, out, started, metrics](effect_outcome outcome,
                                                                               int attempts) {
      graph::run_guarded(out, graph::message_ptr(raw), [&](graph::message_ptr& msg) {
        auto& c = context_of(*msg);
        const bool stopping =
            !outcome.succeeded() && outcome.retryable && outcome.error.rfind("unavailable", 0) == 0;
        if (metrics != nullptr && !stopping)
          metrics->effect(c.call.effect, outcome.succeeded(),
                          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        if (stopping) {
          // The executor is stopping or full: not an outcome of the effect; the command is read again.
          out.fail(std::move(msg), error::make(errc::unavailable, outcome.error));
          out.finish();
          return;
        }
        crash_point("effect.executed");  // test hook (crash_point.h)
        c.result_body = effect_result_body(c, outcome, attempts);
        out.emit(std::move(msg));
        out.finish();
      });
    });
  }

 private:
  std::shared_ptr<runner_service> _service;
};

class effect_publish final : public graph::stage {
 public:
  explicit effect_publish(std::shared_ptr<runner_service> service) : _service(std::move(service)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    storage::publish_request req;
    req.subject = nats::effect_result_subject(ctx.call.tenant, ctx.call.effect);
    req.msg_id = nats::tenant_token(ctx.call.tenant) + ":result:" + ctx.call.command_id;
    req.headers = _service->headers_for(ctx.call.tenant, ctx.call.correlation_id, ctx.call.trace_id);
    req.body = ctx.result_body;
    // The done writes ride with the message where the stream can store them in
    // the same write (embedded): published and done become one durable step.
    if (auto done = _service->effect_done_writes(ctx); done.empty())
      ctx.result_stored = true;
    else
      req.with = std::make_shared<storage::write_set>(std::move(done));
    publish_and_end(std::move(m), out, _service->events(), std::move(req), &runner_context::result_stored);
  }

 private:
  std::shared_ptr<runner_service> _service;
};

class effect_done final : public graph::stage {
 public:
  explicit effect_done(std::shared_ptr<runner_service> service) : _service(std::move(service)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    auto* raw = m.release();
    if (ctx.result_stored) return end_async(out, raw, {});
    _service->commit_effect(ctx, [raw, out](status st) { end_async(out, raw, std::move(st)); });
  }

 private:
  std::shared_ptr<runner_service> _service;
};

}  // namespace

graph::stage_descriptor effect_follow_descriptor() {
  graph::stage_descriptor d;
  d.kind = "effect.follow";
  d.provides_context = {"runner"};
  d.node_kind = "runner";
  d.description = "tails WORKFLOW_COMMANDS from the pipeline's checkpoint: one message per effect command";
  d.role = graph::stage_role::source;
  d.default_concurrency = graph::concurrency::serial();
  d.params = {
      graph::int_param("batch", 256, "messages read per call", 1, 65536),
      graph::duration_param("poll", 20, "wait between reads once caught up"),
  };
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto service = stage_service(init);
    if (!service.ok()) return std::move(service).err();
    return std::unique_ptr<graph::stage>(
        new effect_follow(std::move(service).value(), init.make_context,
                          static_cast<std::size_t>(init.spec.params.integer("batch")),
                          std::chrono::milliseconds(init.spec.params.integer("poll"))));
  };
  return d;
}

graph::stage_descriptor effect_decode_descriptor() {
  graph::stage_descriptor d;
  d.kind = "effect.decode";
  d.node_kind = "runner";
  d.description =
      "effect commands from a jetstream.consumer -> the effect call, keyed by (tenant, command id)";
  // Behind a jetstream.consumer (whose messages carry the kind's context, declared by none).
  d.provides_context = {"runner"};
  d.mutates_context = true;
  d.default_concurrency = graph::concurrency::serial();
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto service = stage_service(init);
    if (!service.ok()) return std::move(service).err();
    return std::unique_ptr<graph::stage>(new effect_decode(std::move(service).value()));
  };
  return d;
}

graph::stage_descriptor effect_gate_descriptor() {
  return runner_stage<effect_gate>(
      "effect.gate", "the idempotency gate: a stored result is re-published, not re-run", false, true);
}
graph::stage_descriptor effect_execute_descriptor() {
  return runner_stage<effect_execute>(
      "effect.execute", "runs the effect's provider on the executor's threads (timeout, retries, breaker)",
      true, true);
}
graph::stage_descriptor effect_publish_descriptor() {
  return runner_stage<effect_publish>("effect.publish", "publishes the effect result to WORKFLOW_EVENTS",
                                      true, true);
}
graph::stage_descriptor effect_done_descriptor() {
  return runner_stage<effect_done>(
      "effect.done", "stores the result after its publish ack (exactly once per id)", true, true);
}

}  // namespace esflow::runner

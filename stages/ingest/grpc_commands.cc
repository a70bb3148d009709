// grpc.commands: see grpc_commands.h.
#include "stages/ingest/grpc_commands.h"

#include "common/log.h"
#include "common/service_registry.h"
#include "graph/pipeline_spec.h"
#include "schemas/json_decode.h"
#include "schemas/json_encode.h"
#include "schemas/proto/command_service.grpc.pb.h"
#include "stages/ingest/source_door.h"
#include "stages/ingest_context.h"
#include "transport/grpc_server.h"
#include "transport/grpc_status.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>

namespace esflow::stages {
namespace {

// One JSON object and nothing else: what may be embedded in the body as is.
bool is_json_object(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  return first != std::string::npos && text[first] == '{' && nlohmann::json::accept(text);
}

result<std::string> command_body(const esflow::v1::Command& in, std::size_t max_body) {
  // The same bound and words as http.commands: the body a command arrives as.
  if (in.ByteSizeLong() > max_body)
    return error::make(errc::payload_too_large,
                       "request body over the limit of " + std::to_string(max_body) + " bytes");
  if (!is_json_object(in.payload_json()))
    return error::make(errc::invalid_command, "field 'payload_json' must be a JSON object");
  if (!in.metadata_json().empty() && !is_json_object(in.metadata_json()))
    return error::make(errc::invalid_command, "field 'metadata_json' must be a JSON object (or empty)");
  std::string body;
  body.reserve(in.payload_json().size() + in.metadata_json().size() + 256);
  schemas::json_writer w(body);
  w.begin_object();
  if (!in.tenant_id().empty()) w.key("tenant_id").value(in.tenant_id());
  if (!in.command_id().empty()) w.key("command_id").value(in.command_id());
  w.key("aggregate_type").value(in.aggregate_type());
  if (!in.aggregate_id().empty()) w.key("aggregate_id").value(in.aggregate_id());
  w.key("payload").raw(in.payload_json());
  if (!in.metadata_json().empty()) w.key("metadata").raw(in.metadata_json());
  w.end_object();
  return body;
}

void fill_result(const schemas::command_result& r, esflow::v1::CommandResult& out) {
  out.set_status("accepted");
  out.set_aggregate_id(r.aggregate_id);
  out.set_version(r.version);
  out.set_duplicate(r.duplicate);
  out.set_position(r.position);
  for (const auto& e : r.events) {
    auto* ev = out.add_events();
    ev->set_tenant_id(e.tenant_id);
    ev->set_event_id(e.event_id);
    ev->set_aggregate_type(e.aggregate_type);
    ev->set_aggregate_id(e.aggregate_id);
    ev->set_version(e.version);
    ev->set_event_type(e.event_type);
    ev->set_payload_json(e.payload_json);
    ev->set_command_id(e.command_id);
    ev->set_correlation_id(e.correlation_id);
    ev->set_trace_id(e.trace_id);
    ev->set_timestamp(e.timestamp);
  }
}

// The tenant of the answer's metadata: validated when the pipeline got that far.
std::string answer_tenant(const ingest_context* ctx) { return ctx ? ctx->tenant : std::string(); }

struct call_limits {
  std::size_t max_in_flight = 1024;
  std::size_t max_body = 1 << 20;
  std::atomic<std::size_t> in_flight{0};
};

// Finishes one call exactly once: from the answering stage, or when the
// message dies unanswered.
class grpc_reply final : public graph::reply_handle {
 public:
  grpc_reply(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
             esflow::v1::CommandResult* out, std::shared_ptr<call_limits> limits)
      : _ctx(ctx), _reactor(reactor), _out(out), _limits(std::move(limits)) {}

  ~grpc_reply() override {
    finish(nullptr, error::make(errc::internal, "the command was dropped without an answer"));
  }

  void complete(const graph::message& m) override {
    const auto* ctx = m.context_as<ingest_context>();
    if (m.error) return finish(ctx, *m.error);
    if (!ctx || ctx->answer.empty())
      return finish(ctx, error::make(errc::internal, "the pipeline answered without a result"));
    auto r = schemas::decode_command_result(ctx->answer);
    if (!r.ok()) return finish(ctx, r.err());
    if (_done.exchange(true)) return;
    fill_result(r.value(), *_out);
    echo(ctx);
    _limits->in_flight.fetch_sub(1);
    _reactor->Finish(grpc::Status::OK);
  }

  // Not admitted, or rejected before the pipeline: answers now.
  void finish(const ingest_context* ctx, const error& e) {
    if (_done.exchange(true)) return;
    echo(ctx);
    auto st = transport::grpc_rejection(*_ctx, e);
    _limits->in_flight.fetch_sub(1);
    _reactor->Finish(st);
  }

 private:
  void echo(const ingest_context* ctx) {
    // The pipeline's trace when it made one, so the answer names the same trace as the events.
    if (ctx && !ctx->trace.traceparent.empty()) {
      _ctx->AddInitialMetadata("x-correlation-id", ctx->trace.correlation_id);
      _ctx->AddInitialMetadata("traceparent", ctx->trace.traceparent);
      _ctx->AddInitialMetadata("tenant-id", ctx->tenant.empty() ? "_" : ctx->tenant);
      if (!ctx->request_id.empty()) _ctx->AddInitialMetadata("x-request-id", ctx->request_id);
      return;
    }
    transport::grpc_echo_metadata(*_ctx, answer_tenant(ctx));
  }

  grpc::CallbackServerContext* _ctx;
  grpc::ServerUnaryReactor* _reactor;
  esflow::v1::CommandResult* _out;
  std::shared_ptr<call_limits> _limits;
  std::atomic<bool> _done{false};
};

class command_service final : public esflow::v1::CommandService::CallbackService {
 public:
  command_service(std::shared_ptr<source_door> door, context_factory make,
                  std::shared_ptr<call_limits> limits)
      : _door(std::move(door)), _make(std::move(make)), _limits(std::move(limits)) {}

  grpc::ServerUnaryReactor* SubmitCommand(grpc::CallbackServerContext* ctx, const esflow::v1::Command* in,
                                          esflow::v1::CommandResult* out) override {
    auto* reactor = ctx->DefaultReactor();
    _limits->in_flight.fetch_add(1);
    auto reply = std::make_shared<grpc_reply>(ctx, reactor, out, _limits);
    if (_limits->in_flight.load() > _limits->max_in_flight) {
      reply->finish(nullptr, error::make(errc::unavailable, "too many gRPC commands waiting for answers (" +
                                                                std::to_string(_limits->max_in_flight) +
                                                                "); retry later"));
      return reactor;
    }
    auto body = command_body(*in, _limits->max_body);
    if (!body.ok()) {
      reply->finish(nullptr, body.err());
      return reactor;
    }
    auto c = new_ingest_context(_make);
    c->transport = "grpc";
    if (auto t = transport::grpc_metadata(*ctx, "x-tenant-id")) {
      c->tenant_given = true;
      c->transport_tenant = std::move(*t);
    }
    c->idempotency_key = transport::grpc_metadata(*ctx, "idempotency-key").value_or("");
    c->request_id = transport::grpc_metadata(*ctx, "x-request-id").value_or("");
    c->incoming_traceparent = transport::grpc_metadata(*ctx, "traceparent").value_or("");
    c->incoming_correlation_id = transport::grpc_metadata(*ctx, "x-correlation-id").value_or("");
    auto m = graph::make_message();
    m->body = std::move(body).value();
    m->context = std::move(c);
    m->reply = reply;
    if (const auto a = _door->try_put(m); a != admission::admitted) {
      m->reply.reset();
      reply->finish(nullptr, a == admission::full
                                 ? error::make(errc::unavailable, "the pipeline is full; retry later")
                                 : error::make(errc::unavailable,
                                               "the node is not serving commands (starting or draining)"));
    }
    return reactor;
  }

 private:
  std::shared_ptr<source_door> _door;
  context_factory _make;
  std::shared_ptr<call_limits> _limits;
};

class grpc_commands final : public graph::stage {
 public:
  explicit grpc_commands(std::shared_ptr<source_door> door) : _door(std::move(door)) {}
  ~grpc_commands() override { _door->close(); }

  void run(graph::source_output& out) override {
    _door->open(&out);
    wait_for_stop(out);
    _door->close();
  }

 private:
  std::shared_ptr<source_door> _door;
};

result<std::unique_ptr<graph::stage>> make_grpc_commands(const graph::stage_init& init) {
  auto grpc = init.services.find<transport::grpc_server>();
  auto door = std::make_shared<source_door>();
  // No gRPC server in this process (`grpc` unset): the stage stays idle, so
  // one pipeline file serves with and without gRPC.
  if (!grpc) return std::unique_ptr<graph::stage>(new grpc_commands(std::move(door)));
  // One CommandService per server: gRPC routes by method name.
  if (init.services.find<command_service>("grpc.commands"))
    return error::make(errc::invalid_config,
                       "stage '" + init.spec.name +
                           "': another grpc.commands stage already serves CommandService in this process",
                       init.spec.at.to_string());
  auto limits = std::make_shared<call_limits>();
  limits->max_in_flight = static_cast<std::size_t>(init.spec.params.integer("max_in_flight"));
  limits->max_body = static_cast<std::size_t>(init.spec.params.integer("max_body"));
  auto service = std::make_shared<command_service>(door, init.make_context, limits);
  grpc->add_service(service);
  init.services.put<command_service>("grpc.commands", service);
  return std::unique_ptr<graph::stage>(new grpc_commands(std::move(door)));
}

}  // namespace

graph::stage_descriptor grpc_commands_descriptor() {
  graph::stage_descriptor d;
  d.kind = "grpc.commands";
  d.description =
      "CommandService.SubmitCommand on the node's gRPC server into the pipeline (answered by its "
      "answering stage)";
  d.role = graph::stage_role::source;
  d.default_concurrency = graph::concurrency::serial();
  d.params = {
      graph::int_param("max_in_flight", 1024,
                       "gRPC commands waiting for answers at once; beyond: unavailable", 1, 1 << 20),
      graph::size_param("max_body", 1 << 20,
                        "largest Command message; larger is payload_too_large (gRPC itself refuses "
                        "messages over 4 MiB with RESOURCE_EXHAUSTED)"),
  };
  d.make = make_grpc_commands;
  return d;
}

}  // namespace esflow::stages

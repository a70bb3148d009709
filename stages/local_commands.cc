#include "stages/local_commands.h"

#include "graph/pipeline_spec.h"
#include "stages/builtin.h"
#include "stages/ingest/source_door.h"
#include "stages/node_env.h"

#include <atomic>
#include <condition_variable>
#include <mutex>

namespace esflow::stages {
namespace {

class local_reply final : public graph::reply_handle {
 public:
  explicit local_reply(local_command_port::answer_callback done) : _done(std::move(done)) {}
  ~local_reply() override {
    if (_completed.exchange(true)) return;
    _done(error::make(errc::internal, "the command was dropped without an answer"));
  }
  void complete(const graph::message& m) override {
    if (_completed.exchange(true)) return;
    const auto* ctx = m.context_as<ingest_context>();
    if (m.error) {
      _done(*m.error);
    } else if (ctx != nullptr && !ctx->answer.empty()) {
      _done(ctx->answer);
    } else {
      _done(error::make(errc::internal, "the pipeline answered without a result"));
    }
  }

 private:
  local_command_port::answer_callback _done;
  std::atomic<bool> _completed{false};
};

class local_commands final : public graph::stage {
 public:
  explicit local_commands(std::shared_ptr<local_command_port> port, context_factory make_context)
      : _port(std::move(port)), _make_context(std::move(make_context)) {}
  ~local_commands() override { _port->close(); }

  void run(graph::source_output& out) override {
    _port->open(&out, _make_context);
    wait_for_stop(out);
    _port->close();
  }

 private:
  std::shared_ptr<local_command_port> _port;
  context_factory _make_context;
};

}  // namespace

void local_command_port::open(graph::source_output* out, context_factory make_context) {
  std::unique_lock lock(_mu);
  _out = out;
  _make_context = std::move(make_context);
}

void local_command_port::close() {
  std::unique_lock lock(_mu);
  _out = nullptr;
}

bool local_command_port::is_open() const {
  std::shared_lock lock(_mu);
  return _out != nullptr && !_out->stopping();
}

void local_command_port::submit(local_command c, answer_callback done) {
  auto m = graph::make_message();
  {
    std::shared_lock lock(_mu);
    if (_out != nullptr && !_out->stopping()) {
      auto ctx = new_ingest_context(_make_context);
      ctx->transport = "local";
      ctx->tenant_given = !c.tenant.empty();
      ctx->transport_tenant = c.tenant;
      ctx->incoming_correlation_id = std::move(c.correlation_id);
      ctx->incoming_traceparent = std::move(c.traceparent);
      m->body = std::move(c.body);
      m->context = std::move(ctx);
      auto reply = std::make_shared<local_reply>(done);
      m->reply = reply;
      if (_out->try_put(m)) return;
      // Refused: the message (and its reply) stays here; answer without the drop's `internal`.
      m->reply.reset();
      reply->complete([] {
        graph::message refused;
        refused.error = error::make(errc::unavailable, "the aggregate pipeline is full");
        return refused;
      }());
      return;
    }
  }
  done(error::make(errc::unavailable, "no aggregate pipeline of this process takes local commands (yet)"));
}

std::shared_ptr<local_command_port> local_command_port_for(esflow::service_registry& services,
                                                           const std::string& data_dir) {
  auto made = services.get_or_create<local_command_port>("local_commands:" + data_dir, [] {
    return result<std::shared_ptr<local_command_port>>(std::make_shared<local_command_port>());
  });
  return made.ok() ? made.value() : nullptr;
}

graph::stage_descriptor local_commands_descriptor() {
  graph::stage_descriptor d;
  d.kind = "local.commands";
  d.description = "in-process command ingest: a runner of the same process sends its commands through it";
  d.role = graph::stage_role::source;
  d.default_concurrency = graph::concurrency::serial();
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto port = local_command_port_for(init.services, data_dir_of(init.pipeline));
    if (!port) return error::make(errc::internal, "local command port");
    return std::unique_ptr<graph::stage>(new local_commands(std::move(port), init.make_context));
  };
  return d;
}

}  // namespace esflow::stages

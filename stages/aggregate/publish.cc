// publish: the command's answer. Builds the CommandResult into ctx.result —
// accepted from commit's result, rejected from message.error (code =
// error.code_text, a non-empty message, retryable = esflow::retryable(code))
// — counts it (esflow_aggregate_commands_total, ..._command_duration_seconds,
// ..._tenant_errors_total), completes message.reply when there is one, and
// passes the message on `out` (to ack). Without a reply (file ingest) the
// CommandResult JSON replaces message.body, so a sink.file records results.
//
// Concurrency: unlimited; pure apart from the metrics (thread-safe).
#include "graph/pipeline_spec.h"
#include "schemas/json_encode.h"
#include "stages/aggregate/aggregate_service.h"
#include "stages/aggregate/stages.h"

namespace esflow::aggregate {
namespace {

class publish final : public graph::stage {
 public:
  explicit publish(std::shared_ptr<aggregate_service> service) : _service(std::move(service)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    if (m->error) {
      ctx.result = schemas::make_rejection(*m->error);
    } else if (!ctx.result.accepted) {
      // Reached publish without an answer: a wiring mistake, answered as a bug.
      m->error = error::make(errc::internal, "the command reached publish without a result (stage wiring)");
      ctx.result = schemas::make_rejection(*m->error);
    }
    count(*m, ctx);
    if (m->reply) {
      m->reply->complete(*m);
    } else {
      m->body.clear();
      schemas::append_command_result(m->body, ctx.result);
    }
    out.emit(std::move(m));
  }

 private:
  void count(const graph::message& m, const command_context& ctx) {
    auto& metrics = _service->metrics();
    std::string outcome;
    if (!m.error) {
      outcome = ctx.result.duplicate ? "duplicate" : "accepted";
    } else if (m.error->code == errc::domain_rejection) {
      outcome = "rejected";
    } else {
      outcome = std::string(esflow::to_string(m.error->code));
      if (m.error->code == errc::invalid_tenant || m.error->code == errc::tenant_access_denied ||
          m.error->code == errc::tenant_not_hosted)
        metrics.tenant_error(outcome);
    }
    const double seconds =
        m.ingest_time == std::chrono::steady_clock::time_point{}
            ? 0.0
            : std::chrono::duration<double>(std::chrono::steady_clock::now() - m.ingest_time).count();
    // Type and tenant are labels only once decode vouched for them.
    if (ctx.type)
      metrics.command(ctx.type->name, ctx.tenant, outcome, seconds);
    else
      metrics.command_unattributed(outcome, seconds);
  }

  std::shared_ptr<aggregate_service> _service;
};

}  // namespace

graph::stage_descriptor publish_descriptor() {
  graph::stage_descriptor d;
  d.kind = "publish";
  d.description =
      "answers the command (CommandResult to its reply; into the body without one), then passes it on";
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto service = aggregate_service::for_stage(init);
    if (!service.ok()) return std::move(service).err();
    return std::unique_ptr<graph::stage>(new publish(std::move(service).value()));
  };
  return d;
}

}  // namespace esflow::aggregate

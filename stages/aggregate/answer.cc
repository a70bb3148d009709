// aggregate.answer (formerly `publish`, still accepted as an alias): the
// command's answer. Builds the CommandResult into ctx.result —
// accepted from commit's result, rejected from message.error (code =
// error.code_text, a non-empty message, retryable = esflow::retryable(code))
// — counts it (esflow_aggregate_commands_total, ..._command_duration_seconds,
// ..._tenant_errors_total), leaves an accepted one's JSON in
// ingest_context::answer for the transport, completes message.reply when
// there is one, and
// passes the message on `out` (to ack). Without a reply (file ingest) the
// CommandResult JSON replaces message.body, so a sink.file records results.
//
// Concurrency: unlimited, inline by default (on the commit's completion
// thread); pure apart from the metrics (thread-safe).
#include "graph/pipeline_spec.h"
#include "schemas/json_encode.h"
#include "stages/aggregate/aggregate_service.h"
#include "stages/aggregate/stages.h"

namespace esflow::aggregate {
namespace {

class answer final : public graph::stage {
 public:
  explicit answer(std::shared_ptr<aggregate_service> service) : _service(std::move(service)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    if (m->error) {
      ctx.result = schemas::make_rejection(*m->error);
    } else if (!ctx.result.accepted) {
      // Reached the answer without a result: a wiring mistake, answered as a bug.
      m->error =
          error::make(errc::internal, "the command reached aggregate.answer without a result (stage wiring)");
      ctx.result = schemas::make_rejection(*m->error);
    }
    count(*m, ctx);
    if (!m->error) {
      ctx.answer.clear();
      schemas::append_command_result(ctx.answer, ctx.result);
    }
    if (m->reply) {
      m->reply->complete(*m);
    } else {
      m->body.clear();
      schemas::append_command_result(m->body, ctx.result);
    }
    out.emit(std::move(m));
  }

 private:
  void count(const graph::message& m, const aggregate_context& ctx) {
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

graph::stage_descriptor answer_descriptor() {
  graph::stage_descriptor d;
  d.kind = "aggregate.answer";
  d.node_kind = "aggregate";
  d.mutates_context = true;
  // On the thread that finished the commit: no task and worker wake per command.
  d.runs_inline = true;
  d.description =
      "answers the command (CommandResult to its reply; into the body without one), then passes it on";
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    return std::unique_ptr<graph::stage>(new answer(init.service_as<aggregate_service>()));
  };
  return d;
}

graph::stage_descriptor publish_alias_descriptor() {
  auto d = answer_descriptor();
  d.kind = "publish";
  d.description = "alias of aggregate.answer (the name before 0.2; accepted until 0.3)";
  return d;
}

}  // namespace esflow::aggregate

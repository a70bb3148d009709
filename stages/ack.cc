// ack: acknowledges the ingest message (ingest_context::ack) once it is
// answered. Shared by every node kind: it runs downstream of the kind's
// answering stage (aggregate.answer after aggregate.commit), so an accepted
// message is acked only after its durable commit. Rejections are final answers and are acked too,
// except `unavailable`, which is nak'ed so the transport may redeliver it.
// Messages without an ack handle (HTTP, file) pass through silently.
//
// Concurrency: unlimited, inline by default; the ack handles are the
// transport's (thread-safe, non-blocking).
#include "graph/pipeline_spec.h"
#include "stages/builtin.h"
#include "stages/ingest_context.h"

namespace esflow::stages {
namespace {

class ack final : public graph::stage {
 public:
  void process(graph::message_ptr m, const graph::emitter&) override {
    auto* ctx = m->context_as<ingest_context>();
    if (!ctx || !ctx->ack) return;
    if (m->error && m->error->code == errc::unavailable)
      ctx->ack->nak();
    else
      ctx->ack->ack();
  }
};

}  // namespace

graph::stage_descriptor ack_descriptor() {
  graph::stage_descriptor d;
  d.kind = "ack";
  d.description = "acknowledges the ingest message after the answer (nak for unavailable: redelivery)";
  d.role = graph::stage_role::sink;
  d.runs_inline = true;  // a non-blocking call into the transport: not worth a task
  d.make = [](const graph::stage_init&) -> result<std::unique_ptr<graph::stage>> {
    return std::unique_ptr<graph::stage>(new ack());
  };
  return d;
}

}  // namespace esflow::stages

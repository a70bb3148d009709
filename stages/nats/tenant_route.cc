// tenant.route: behind the consumers of a pipeline whose replicas share
// durable consumers but keep node-local state (docs/runner.md "Saga
// replicas"): a stream message of a tenant this node owns goes on (`out`);
// one another replica owns is forwarded to it (stages/nats/forwarder.h) and
// leaves the graph on `forwarded` (normally unconnected: dropped), its ack
// held by the forward until the owner has committed it. Without a node id
// (or without NATS) every message goes on.
//
// Concurrency: unlimited and inline on the source's thread (keeps its
// order); a map snapshot and a non-blocking publish per message.
#include "graph/pipeline_spec.h"
#include "stages/ingest_context.h"
#include "stages/nats/stages.h"
#include "stages/nats/tenant_router.h"

namespace esflow::stages {
namespace {

class tenant_route final : public graph::stage {
 public:
  explicit tenant_route(std::shared_ptr<tenant_router> router) : _router(std::move(router)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto* ctx = m->context_as<ingest_context>();
    if (!_router || !ctx || !ctx->ack) {
      out.emit(std::move(m));
      return;
    }
    // A subject without a (valid) tenant is left to this node: tenant.gate answers it.
    const auto tenant = tenant_of_subject(ctx->subject);
    const auto target = tenant ? _router->owner_elsewhere(*tenant) : std::nullopt;
    if (!target) {
      _router->count_local();
      out.emit(std::move(m));
      return;
    }
    forward_item item;
    item.tenant = *tenant;
    item.subject = ctx->subject;
    item.stream_sequence = ctx->stream_sequence;
    item.body = std::move(m->body);
    item.traceparent = ctx->incoming_traceparent;
    item.correlation_id = ctx->incoming_correlation_id;
    item.ack = std::move(ctx->ack);
    _router->forward(std::move(item));
    out.emit(std::move(m), 1);
  }

  void drain() override {
    if (_router) _router->finish(std::chrono::seconds(10));
  }

 private:
  std::shared_ptr<tenant_router> _router;
};

}  // namespace

graph::stage_descriptor tenant_route_descriptor() {
  graph::stage_descriptor d;
  d.kind = "tenant.route";
  d.description =
      "stream messages of tenants another replica owns (ring + pins in <PIPELINE>_PLACEMENT) are forwarded "
      "to it and acked after its commit; the rest go on";
  d.output_ports = {"out", "forwarded"};
  d.runs_inline = true;
  d.mutates_context = true;
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto router = tenant_router::of(init.pipeline, init.services);
    if (!router.ok()) return std::move(router).err();
    return std::unique_ptr<graph::stage>(new tenant_route(std::move(router).value()));
  };
  return d;
}

}  // namespace esflow::stages

// tenant.gate: the first check of an ingest message, for every node kind
// (docs/contract.md 10.1 "Tenancy"; validation order: tenant, then body, then
// aggregate type). Validates the transport's
// tenant for the pipeline's `tenancy` (multi: required, [A-Za-z0-9_-]{1,64},
// not "_"; single: empty), refuses tenants this node does not host (param
// `hosted`; empty = all) with tenant_not_hosted, and every command while the
// node drains with unavailable; for commands, asks the node's
// tenant_admission (placement: tenant_not_hosted naming the owner; a drained
// tenant: unavailable) and keeps its lease in the context until the message
// is gone (transport/tenant_admission.h). Sets ingest_context::tenant and ::trace (the incoming
// traceparent / correlation id when valid, else fresh ones).
//
// Transport "file" (source.file: no ingest context, the raw body only): the
// tenant is the body's `tenant_id` (missing = not given).
//
// Concurrency: inline by default (graph/README.md "Inline stages"): it runs on
// the thread that took the message, in that thread's order, which keeps each
// source's arrival order until decode sets the aggregate key; stateless, so a
// `concurrency` in the pipeline (TBB tasks then) is safe where order does not
// matter.
#include "common/service_registry.h"
#include "graph/json_field.h"
#include "graph/pipeline_spec.h"
#include "schemas/ids.h"
#include "stages/builtin.h"
#include "stages/ingest_context.h"
#include "transport/node_host.h"

#include <set>

namespace esflow::stages {
namespace {

class tenant_gate final : public graph::stage {
 public:
  tenant_gate(bool single, std::vector<std::string> hosted, std::shared_ptr<transport::node_host> host,
              std::string node_name)
      : _single(single),
        _hosted(hosted.begin(), hosted.end()),
        _host(std::move(host)),
        _node_name(std::move(node_name)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_for<ingest_context>(*m, "tenant.gate");
    if (ctx.transport.empty()) {
      ctx.transport = "file";
      auto t = graph::json_field(m->body, "tenant_id");
      ctx.tenant_given = t.has_value();
      ctx.transport_tenant = t.value_or("");
    }
    ctx.trace = schemas::make_trace_context(ctx.incoming_traceparent, ctx.incoming_correlation_id);
    if (_host && _host->drain_requested()) {
      out.fail(std::move(m),
               error::make(errc::unavailable, "the node is draining; retry (another node takes over)"));
      return;
    }
    if (!_single && !ctx.tenant_given) {
      out.fail(std::move(m), error::make(errc::invalid_tenant,
                                         ctx.transport == "file" ? "tenant id is required (field 'tenant_id')"
                                                                 : "tenant id is required (x-tenant-id)"));
      return;
    }
    if (auto ok = schemas::validate_tenant(ctx.transport_tenant, _single); !ok.ok()) {
      out.fail(std::move(m), std::move(ok).err());
      return;
    }
    if (!_hosted.empty() && !_hosted.count(ctx.transport_tenant)) {
      out.fail(std::move(m),
               error::make(errc::tenant_not_hosted, "tenant '" + ctx.transport_tenant +
                                                        "' is not hosted by this node (" + _node_name + ")"));
      return;
    }
    // Commands only: placement and per-tenant drains are about command
    // subjects; projections and runners follow every tenant's events.
    if (_host && dynamic_cast<command_context*>(&ctx) != nullptr) {
      auto lease = _host->admission().admit(ctx.transport_tenant);
      if (!lease.ok()) {
        out.fail(std::move(m), std::move(lease).err());
        return;
      }
      ctx.admission = std::move(lease).value();
    }
    ctx.tenant = ctx.transport_tenant;
    out.emit(std::move(m));
  }

 private:
  bool _single;
  std::set<std::string> _hosted;
  std::shared_ptr<transport::node_host> _host;
  std::string _node_name;
};

}  // namespace

graph::stage_descriptor tenant_gate_descriptor() {
  graph::stage_descriptor d;
  // Serial by default: the key that orders an aggregate's commands is only
  // known after decode, so the stages before it must keep arrival order
  // (file and JetStream ingest are ordered; `unlimited` is fine for HTTP).
  d.default_concurrency = graph::concurrency::unlimited();
  d.runs_inline = true;
  d.kind = "tenant.gate";
  d.mutates_context = true;
  d.provides_context = {"ingest"};
  d.description =
      "validates the command's tenant (format, tenancy mode, hosted here, not draining); sets trace";
  d.params = {
      graph::list_param("hosted", std::vector<std::string>{},
                        "tenants this node serves (empty: every tenant); others get tenant_not_hosted")};
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    const bool single = init.pipeline.settings.str("tenancy") == "single";
    for (const auto& t : init.spec.params.list("hosted")) {
      if (auto ok = schemas::validate_tenant(t, single); !ok.ok())
        return error::config(init.spec.at.to_string() + ": stage '" + init.spec.name + "': hosted tenant '" +
                             t + "': " + ok.err().message);
    }
    return std::unique_ptr<graph::stage>(
        new tenant_gate(single, init.spec.params.list("hosted"), init.services.find<transport::node_host>(""),
                        "pipeline '" + init.pipeline.name + "' at " + init.pipeline.settings.str("http")));
  };
  return d;
}

}  // namespace esflow::stages

// projection.decode: the Commit JSON of a followed commit -> the context's
// commit (schemas/json_decode.h). A commit whose tenant differs from the
// one it was admitted under, or that does not decode, is a wiring or log
// corruption problem: invalid_command on the error port (logged, acked, skipped).
//
// Concurrency: keyed (`key: message`, required): a row's commits must reach
// project in log order, and only keyed lanes keep the order of one key.
#include "graph/pipeline_spec.h"
#include "schemas/json_decode.h"
#include "stages/projection/projection_context.h"
#include "stages/projection/stages.h"

namespace esflow::projection {

namespace {

class decode final : public graph::stage {
 public:
  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    auto c = schemas::decode_commit(m->body);
    if (!c.ok()) {
      out.fail(std::move(m), std::move(c).err());
      return;
    }
    if (c->tenant_id != ctx.transport_tenant) {
      out.fail(std::move(m),
               error::make(errc::tenant_access_denied, "the commit's tenant differs from its message's",
                           "position=" + std::to_string(ctx.position)));
      return;
    }
    ctx.commit = std::move(c).value();
    ctx.decoded = true;
    out.emit(std::move(m));
  }
};

}  // namespace

graph::stage_descriptor decode_descriptor() {
  graph::stage_descriptor d;
  d.kind = "projection.decode";
  d.node_kind = "projection";
  d.description = "decodes a followed commit (Commit JSON) into the projection context";
  d.mutates_context = true;
  d.provides_context = {"projection"};
  d.default_concurrency = graph::concurrency::bounded(4);
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    if (auto service = keyed_stage_service(init); !service.ok()) return std::move(service).err();
    return std::unique_ptr<graph::stage>(new decode());
  };
  return d;
}

}  // namespace esflow::projection

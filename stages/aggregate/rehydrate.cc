// aggregate.rehydrate: the first aggregate stage. The command's aggregate
// type must be one of `aggregates:` (else invalid_command: the contract's
// last validation step), then its committed state
// (ctx.version, ctx.state_json, ctx.base_token): state cache -> snapshot ->
// events after it, applied with the type's program (aggregate_service::
// rehydrate). A snapshot or event of another tenant met on the way is
// tenant_access_denied (defensive: storage keys already separate tenants).
//
// Concurrency: keyed (`key: message`), one serial lane per unit of
// concurrency; a key always runs on the same lane, in arrival order. Each lane
// owns its Lua sandboxes (one per aggregate type): lanes are serial, so no
// lock. The state cache is shared (sharded mutexes). On the embedded log every
// read is local RocksDB. On JetStream a miss without a snapshot is guessed
// new (no read); a miss WITH a snapshot still reads the events after it from
// the stream on this worker (a known limit, tracked by the hardening issue).
#include "graph/pipeline_spec.h"
#include "stages/aggregate/aggregate_service.h"
#include "stages/aggregate/stages.h"

namespace esflow::aggregate {
namespace {

class rehydrate final : public graph::stage {
 public:
  rehydrate(std::shared_ptr<aggregate_service> service, std::size_t lanes)
      : _service(std::move(service)), _lanes(lanes) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    // Decode vouched for the body; whether this node serves its type is asked here.
    ctx.type = _service->find_type(ctx.cmd.aggregate_type);
    if (ctx.type == nullptr) {
      out.fail(std::move(m), error::make(errc::invalid_command,
                                         "unknown aggregate type '" + ctx.cmd.aggregate_type +
                                             "' (this node serves: " + _service->type_names() + ")"));
      return;
    }
    // guess_new: a miss does not read the log here (no network round trip on
    // a TBB worker); decide/commit verify the guess (aggregate_service.h).
    auto r = _service->rehydrate(ctx.tenant, *ctx.type, ctx.cmd.aggregate_id,
                                 _lanes[out.lane()].get(*ctx.type), /*guess_new=*/true);
    if (!r.ok()) {
      out.fail(std::move(m), std::move(r).err());
      return;
    }
    auto& h = r.value();
    ctx.version = h.head.version;
    ctx.state_json = std::move(h.head.state_json);
    ctx.base_token = h.head.token;
    ctx.cache_hit = h.cache_hit;
    ctx.guessed_new = h.guessed;
    out.emit(std::move(m));
  }

 private:
  std::shared_ptr<aggregate_service> _service;
  std::vector<sandbox_set> _lanes;  // by lane index
};

}  // namespace

graph::stage_descriptor rehydrate_descriptor() {
  graph::stage_descriptor d;
  d.kind = "aggregate.rehydrate";
  d.node_kind = "aggregate";
  d.mutates_context = true;
  d.needs_context = "command";
  d.provides_context = {"aggregate"};
  d.description =
      "loads the aggregate's state: cache -> snapshot -> events (keyed lanes, a sandbox per lane)";
  d.default_concurrency = graph::concurrency::bounded(8);
  d.params = {graph::int_param("cache_mb", 256, "memory bound of the node's state cache, MiB", 1, 1 << 20)};
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    if (auto ok = require_message_key(init); !ok.ok()) return std::move(ok).err();
    auto service = init.service_as<aggregate_service>();
    if (!service) return error::make(errc::internal, "the aggregate node kind made no service");
    return std::unique_ptr<graph::stage>(
        new rehydrate(std::move(service), std::max<std::size_t>(1, init.spec.conc.limit)));
  };
  return d;
}

}  // namespace esflow::aggregate

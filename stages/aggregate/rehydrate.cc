// aggregate.rehydrate: the first aggregate stage. The command's aggregate
// type must be one of `aggregates:` (else invalid_command: the contract's
// last validation step), then its committed state
// (ctx.version, ctx.state_json, ctx.base_token): state cache -> snapshot ->
// events after it, applied with the type's program (aggregate_service::
// rehydrate). A snapshot or event of another tenant met on the way is
// tenant_access_denied (defensive: storage keys already separate tenants).
//
// Concurrency: async, keyed (`key: message`): one command per aggregate at a
// time, in arrival order; any number of aggregates at once. A cache hit, a
// read of the embedded log (local RocksDB) and JetStream's guess for an
// aggregate without a snapshot finish in process() on the TBB worker; a cold
// read of JetStream (the events after the snapshot) runs on the service's
// reader threads and finishes there: no TBB worker waits on the network.
// Lua runs in the running thread's own sandboxes (thread_sandboxes()).
#include "graph/pipeline_spec.h"
#include "stages/aggregate/aggregate_service.h"
#include "stages/aggregate/stages.h"

namespace esflow::aggregate {
namespace {

class rehydrate final : public graph::stage {
 public:
  explicit rehydrate(std::shared_ptr<aggregate_service> service) : _service(std::move(service)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    // Decode vouched for the body; whether this node serves its type is asked here.
    ctx.type = _service->find_type(ctx.cmd.aggregate_type);
    if (ctx.type == nullptr) {
      out.fail(std::move(m), error::make(errc::invalid_command,
                                         "unknown aggregate type '" + ctx.cmd.aggregate_type +
                                             "' (this node serves: " + _service->type_names() + ")"));
      out.finish();
      return;
    }
    auto& sb = thread_sandboxes().get(*ctx.type);
    if (!_service->remote_log())
      return done(m, out, _service->rehydrate(ctx.tenant, *ctx.type, ctx.cmd.aggregate_id, sb));
    // guess_new: a miss without a snapshot is taken as a new aggregate;
    // decide/commit verify the guess (aggregate_service.h).
    auto local =
        _service->rehydrate_local(ctx.tenant, *ctx.type, ctx.cmd.aggregate_id, sb, /*guess_new=*/true);
    if (!local.ok()) return done(m, out, std::move(local).err());
    if (local.value()) return done(m, out, std::move(*local.value()));
    auto* raw = m.release();  // owned by the job, which runs exactly once
    const bool queued = _service->read_async([this, raw, out] {
      // On a reader thread: nothing may escape into it.
      graph::run_guarded(out, graph::message_ptr(raw), [&](graph::message_ptr& msg) {
        auto& c = context_of(*msg);
        done(msg, out,
             _service->rehydrate(c.tenant, *c.type, c.cmd.aggregate_id, thread_sandboxes().get(*c.type)));
      });
    });
    if (!queued) {
      graph::message_ptr back(raw);
      done(back, out,
           error::make(
               errc::unavailable, "too many cold aggregate reads waiting; retry",
               "tenant=" + ctx.tenant + " aggregate=" + ctx.cmd.aggregate_type + "/" + ctx.cmd.aggregate_id));
    }
  }

 private:
  static void done(graph::message_ptr& m, const graph::emitter& out, result<rehydrated> r) {
    if (!r.ok()) {
      out.fail(std::move(m), std::move(r).err());
      out.finish();
      return;
    }
    auto& ctx = context_of(*m);
    auto& h = r.value();
    ctx.version = h.head.version;
    ctx.state_json = std::move(h.head.state_json);
    ctx.base_token = h.head.token;
    ctx.cache_hit = h.cache_hit;
    ctx.guessed_new = h.guessed;
    out.emit(std::move(m));
    out.finish();
  }

  std::shared_ptr<aggregate_service> _service;
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
      "loads the aggregate's state: cache -> snapshot -> events after it (async: cold JetStream reads on "
      "reader threads)";
  d.async = true;
  d.default_concurrency = graph::concurrency::bounded(8);
  d.params = {graph::int_param("cache_mb", 256, "memory bound of the node's state cache, MiB", 1, 1 << 20)};
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    if (auto ok = require_message_key(init); !ok.ok()) return std::move(ok).err();
    auto service = init.service_as<aggregate_service>();
    if (!service) return error::make(errc::internal, "the aggregate node kind made no service");
    return std::unique_ptr<graph::stage>(new rehydrate(std::move(service)));
  };
  return d;
}

}  // namespace esflow::aggregate

// aggregate.decide: runs the type's program on the command: decide(state,
// command) -> events, apply -> the new state; stamps event ids (UUID v7),
// versions, timestamp, command/correlation/trace ids.
//
// In order:
//  1. The command id is looked up first (event_log::knows_command: this
//     node's local record, never a network read): a known one is not
//     decided again (ctx.known_command); commit's append answers it with the
//     original result (duplicate) or command_id_reused.
//  2. The state decided on is the aggregate's newest head in the state cache:
//     the *pending* head of the previous command of this key when that one is
//     still on its way to commit (so a burst of commands to one aggregate sees
//     each other in order), else the committed one. Each head has a token;
//     ctx.base_token records it and commit checks it (README.md, "Speculative
//     heads").
//  3. A rejection (the program's code, program_error) is not final yet: it is
//     kept in ctx.rejection and travels on `out` to commit, which answers it
//     in the key's turn once it knows the state it was decided on was the
//     latest (else it re-decides). So decide's error port only carries
//     failures of the lookup in 1 (unavailable).
//  A decision with no events leaves the state (and token) unchanged.
//
// Concurrency: keyed (`key: message`), one serial lane per unit of
// concurrency; a lane owns its sandboxes (one per aggregate type), so no lock.
#include "graph/pipeline_spec.h"
#include "stages/aggregate/aggregate_service.h"
#include "stages/aggregate/stages.h"

namespace esflow::aggregate {
namespace {

class decide final : public graph::stage {
 public:
  decide(std::shared_ptr<aggregate_service> service, std::size_t lanes)
      : _service(std::move(service)), _lanes(lanes) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    // Local state only (no network on a TBB worker); append() confirms it.
    auto known = _service->log().knows_command(ctx.tenant, ctx.cmd.command_id);
    if (!known.ok()) {
      out.fail(std::move(m), std::move(known).err());
      return;
    }
    if (known.value()) {
      ctx.known_command = true;
      ctx.events.clear();
      out.emit(std::move(m));
      return;
    }
    auto& cache = _service->cache();
    if (auto head = cache.latest(m->key); head && head->version >= ctx.version) {
      ctx.version = head->version;
      ctx.state_json = std::move(head->state_json);
      ctx.base_token = head->token;
      ctx.guessed_new = false;  // decided on a cached head, not on a guess
    }
    if (auto ok = _service->decide_command(*ctx.type, _lanes[out.lane()].get(*ctx.type), ctx); !ok.ok()) {
      ctx.rejection = std::move(ok).err();
      ctx.events.clear();
      out.emit(std::move(m));
      return;
    }
    if (ctx.events.empty()) {
      ctx.decided_token = ctx.base_token;
    } else {
      ctx.decided_token = cache.next_token();
      cache.set_pending(
          m->key, ctx.base_token,
          state_head{ctx.version + ctx.events.size(), ctx.new_state_json, 0, ctx.decided_token});
    }
    out.emit(std::move(m));
  }

 private:
  std::shared_ptr<aggregate_service> _service;
  std::vector<sandbox_set> _lanes;  // by lane index
};

}  // namespace

graph::stage_descriptor decide_descriptor() {
  graph::stage_descriptor d;
  d.kind = "aggregate.decide";
  d.node_kind = "aggregate";
  d.mutates_context = true;
  d.needs_context = "aggregate";
  d.description = "runs decide/apply of the aggregate's program (keyed lanes, a Lua sandbox per lane)";
  d.default_concurrency = graph::concurrency::bounded(8);
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    if (auto ok = require_message_key(init); !ok.ok()) return std::move(ok).err();
    auto service = init.service_as<aggregate_service>();
    if (!service) return error::make(errc::internal, "the aggregate node kind made no service");
    return std::unique_ptr<graph::stage>(
        new decide(std::move(service), std::max<std::size_t>(1, init.spec.conc.limit)));
  };
  return d;
}

}  // namespace esflow::aggregate

// saga.load: the instance's record (state, done, schedules): a transition
// still on its way to the store first, else the stored one; none for a new
// instance. A storage error surfaces here, before any program runs; saga.run
// reads the record once more in the instance's turn (another input of the
// instance may have moved it in between), usually from the block cache.
//
// Concurrency: keyed by instance (one instance's inputs in order); reads the
// local node store.
#include "graph/pipeline_spec.h"
#include "stages/runner/runner_service.h"
#include "stages/runner/stages.h"

namespace esflow::runner {
namespace {

class saga_load final : public graph::stage {
 public:
  explicit saga_load(std::shared_ptr<runner_service> service) : _service(std::move(service)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    if (load_record(*_service, m, out)) out.emit(std::move(m));
  }

 private:
  std::shared_ptr<runner_service> _service;
};

}  // namespace

bool load_record(runner_service& service, graph::message_ptr& m, const graph::emitter& out) {
  auto& ctx = context_of(*m);
  if (ctx.inputs.empty()) return true;
  auto record = service.load(ctx.inputs.front());
  if (!record.ok()) {
    out.fail(std::move(m), std::move(record).err());
    return false;
  }
  ctx.record = std::move(record).value();
  return true;
}

graph::stage_descriptor saga_load_descriptor() {
  graph::stage_descriptor d;
  d.kind = "saga.load";
  d.node_kind = "runner";
  d.description = "loads the saga instance's record (a transition not yet stored first)";
  d.needs_context = "runner";
  d.mutates_context = true;
  d.default_concurrency = graph::concurrency::bounded(4);
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto service = keyed_stage_service(init);
    if (!service.ok()) return std::move(service).err();
    return std::unique_ptr<graph::stage>(new saga_load(std::move(service).value()));
  };
  return d;
}

}  // namespace esflow::runner

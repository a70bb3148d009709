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
  bool pending = false;
  auto record = service.load(ctx.inputs.front(), &pending);
  if (!record.ok()) {
    out.fail(std::move(m), std::move(record).err());
    return false;
  }
  ctx.record = std::move(record).value();
  ctx.record_pending = pending;
  return true;
}

graph::stage_descriptor saga_load_descriptor() {
  return runner_stage<saga_load>(
      "saga.load", "loads the saga instance's record (a transition not yet stored first)", false, true);
}

}  // namespace esflow::runner

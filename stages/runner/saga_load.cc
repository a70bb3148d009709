// saga.load: the instance's record (state, done, schedules): from memory (a
// transition still on its way to the store, or one of the last `cache`
// stored records), else from the store; none for a new instance. A storage
// error surfaces here, before any program runs; saga.run looks the record up
// once more in the instance's turn (another input of the instance may have
// moved it in between), which memory answers unless the instance is new or
// was evicted.
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
  auto loaded = service.load(ctx.inputs.front(), ctx.record_mark);
  if (!loaded.ok()) {
    out.fail(std::move(m), std::move(loaded).err());
    return false;
  }
  ctx.record_mark = loaded->mark;
  if (loaded->unchanged) return true;
  ctx.record = std::move(loaded->record);
  ctx.record_pending = loaded->pending;
  return true;
}

graph::stage_descriptor saga_load_descriptor() {
  auto d = runner_stage<saga_load>(
      "saga.load", "loads the saga instance's record (a transition not yet stored first)", false, true);
  d.params = {graph::int_param("cache", 4096,
                               "stored instance records kept in memory, least recently used first out "
                               "(0: only transitions not yet stored)",
                               0, 1 << 22)};
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto service = keyed_stage_service(init);
    if (!service.ok()) return std::move(service).err();
    service.value()->set_record_cache(static_cast<std::size_t>(init.spec.params.integer("cache")));
    return std::unique_ptr<graph::stage>(new saga_load(std::move(service).value()));
  };
  return d;
}

}  // namespace esflow::runner

// saga.run: on_event(state, input) of the saga's program for each input of
// the message, in order, in the lane's sandbox (saga_step.h): the new
// record, outbox items with derived command ids, schedules added and
// cancelled. A program error (program_error, or an input it cannot read)
// would fail again: the message goes on with `poison` set, and saga.commit
// quarantines the inputs instead of changing the instance).
//
// Concurrency: keyed by instance; a sandbox per lane and saga; CPU only.
#include "graph/pipeline_spec.h"
#include "stages/runner/runner_service.h"
#include "stages/runner/stages.h"

namespace esflow::runner {
namespace {

class saga_run final : public graph::stage {
 public:
  saga_run(std::shared_ptr<runner_service> service, std::size_t lanes)
      : _service(std::move(service)), _lanes(lanes) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    // The record again, here: stages are keyed one by one, so saga.load may have read it while the
    // instance's previous message was still between load and run (its transition not yet in the
    // pending map): running on that older record lost the previous transition.
    if (!load_record(*_service, m, out)) return;
    if (auto st = _service->run(_lanes[out.lane() % _lanes.size()], ctx); !st.ok()) {
      if (st.err().code != errc::program_error && st.err().code != errc::invalid_command) {
        _service->release_running(ctx);
        out.fail(std::move(m), std::move(st).err());
        return;
      }
      ctx.steps.clear();
      ctx.poison = std::move(st).err();
    }
    out.emit(std::move(m));
  }

 private:
  std::shared_ptr<runner_service> _service;
  std::vector<lane_sandboxes> _lanes;
};

}  // namespace

graph::stage_descriptor saga_run_descriptor() {
  graph::stage_descriptor d;
  d.kind = "saga.run";
  d.node_kind = "runner";
  d.description = "runs the saga program's on_event for each input: new state, work, schedules";
  d.needs_context = "runner";
  d.mutates_context = true;
  d.default_concurrency = graph::concurrency::bounded(4);
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto service = keyed_stage_service(init);
    if (!service.ok()) return std::move(service).err();
    const auto lanes = std::max<std::size_t>(1, init.spec.conc.limit);
    return std::unique_ptr<graph::stage>(new saga_run(std::move(service).value(), lanes));
  };
  return d;
}

}  // namespace esflow::runner

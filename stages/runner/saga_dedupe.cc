// saga.dedupe: the inputs' dedupe gate. An input whose marker is stored was
// fully committed before (a redelivery, a re-read after a restart): it is
// dropped here, and a message left with no input goes straight through to
// the ack. Every input still gets its marker written by saga.commit.
//
// Concurrency: keyed by instance; reads the local node store.
#include "graph/pipeline_spec.h"
#include "stages/runner/runner_metrics.h"
#include "stages/runner/runner_service.h"
#include "stages/runner/stages.h"

namespace esflow::runner {
namespace {

class saga_dedupe final : public graph::stage {
 public:
  explicit saga_dedupe(std::shared_ptr<runner_service> service) : _service(std::move(service)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    std::vector<saga_input> fresh;
    for (auto& in : ctx.inputs) {
      if (!ctx.tenant.empty() && in.tenant != ctx.tenant) {
        out.fail(std::move(m), error::make(errc::tenant_access_denied, "a saga input of another tenant",
                                           "tenant=" + ctx.tenant + " input_tenant=" + in.tenant));
        return;
      }
      auto seen = _service->seen(in);
      if (!seen.ok()) {
        out.fail(std::move(m), std::move(seen).err());
        return;
      }
      if (!seen.value())
        fresh.push_back(std::move(in));
      else if (auto* metrics = _service->metrics())
        metrics->input(in.kind, "skipped_seen");
    }
    ctx.inputs = std::move(fresh);
    for (const auto& in : ctx.inputs) ctx.seen.push_back(_service->marker_id(in));
    out.emit(std::move(m));
  }

 private:
  std::shared_ptr<runner_service> _service;
};

}  // namespace

graph::stage_descriptor saga_dedupe_descriptor() {
  return runner_stage<saga_dedupe>(
      "saga.dedupe", "drops inputs whose dedupe marker is stored (seen before: skipped, still acked)", false,
      true);
}

}  // namespace esflow::runner

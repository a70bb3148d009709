// saga.commit: ONE write_set per message — the instance record, its outbox
// items, schedules added and cancelled, the inputs' dedupe markers and the
// source's checkpoint — through the service's commit pool (group commit with
// the store's durability), so the input is acked only after all of it is
// stored, and a crash at any point leaves all or none of it.
// A failed write fails the message `unavailable` (nak: re-read later).
//
// Concurrency: async and keyed by instance; the write runs on a committer
// thread, never on a TBB worker; the completion emits from there.
#include "graph/pipeline_spec.h"
#include "stages/runner/crash_point.h"
#include "stages/runner/runner_service.h"
#include "stages/runner/stages.h"

namespace esflow::runner {
namespace {

class saga_commit final : public graph::stage {
 public:
  explicit saga_commit(std::shared_ptr<runner_service> service) : _service(std::move(service)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    auto* raw = m.release();  // owned by the completion, which runs exactly once
    _service->commit(ctx, [raw, out](status st) {
      if (st.ok()) crash_point("saga.committed");  // test hook (crash_point.h): stored, not yet acked
      end_async(out, raw, std::move(st));
    });
  }

 private:
  std::shared_ptr<runner_service> _service;
};

}  // namespace

graph::stage_descriptor saga_commit_descriptor() {
  graph::stage_descriptor d;
  d.kind = "saga.commit";
  d.node_kind = "runner";
  d.description =
      "state + outbox + schedules + markers + checkpoint of an input in ONE write_set (group commit)";
  d.needs_context = "runner";
  d.mutates_context = true;
  d.async = true;
  d.default_concurrency = graph::concurrency::bounded(64);
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto service = keyed_stage_service(init);
    if (!service.ok()) return std::move(service).err();
    return std::unique_ptr<graph::stage>(new saga_commit(std::move(service).value()));
  };
  return d;
}

}  // namespace esflow::runner

// projection.store: writes what project made of a commit — rows, secondary
// index entries, quarantined view failures and every view's checkpoint (the
// watermark counting this commit as done) — in ONE write_set, so a restart
// at any moment resumes from a checkpoint whose rows are all there. Unsynced:
// read models are rebuilt from the log, and RocksDB recovers a prefix of its
// write-ahead log, so rows and checkpoint stay together after any crash.
// A failed write fails the message `unavailable` (nak: the source re-reads
// the log from the watermark; the row's later commits wait for it).
//
// Concurrency: keyed like projection.project (one row's commits in order).
// Writes the local node store (RocksDB), never the network.
#include "graph/pipeline_spec.h"
#include "stages/projection/projection_service.h"
#include "stages/projection/stages.h"

namespace esflow::projection {

namespace {

class store final : public graph::stage {
 public:
  explicit store(std::shared_ptr<projection_service> service) : _service(std::move(service)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    if (auto st = _service->store_commit(ctx); !st.ok()) {
      _service->forget_pending(ctx);
      out.fail(std::move(m), std::move(st).err());
      return;
    }
    out.emit(std::move(m));
  }

 private:
  std::shared_ptr<projection_service> _service;
};

}  // namespace

graph::stage_descriptor store_descriptor() {
  graph::stage_descriptor d;
  d.kind = "projection.store";
  d.node_kind = "projection";
  d.description = "rows + index entries + checkpoints (+ quarantined failures) of a commit in one write_set";
  d.needs_context = "projection";
  d.default_concurrency = graph::concurrency::bounded(4);
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto service = keyed_stage_service(init);
    if (!service.ok()) return std::move(service).err();
    return std::unique_ptr<graph::stage>(new store(std::move(service).value()));
  };
  return d;
}

}  // namespace esflow::projection

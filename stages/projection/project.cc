// projection.project: each view that follows the commit's aggregate type
// folds the commit's events into its row (projection_service::project_commit):
// the view's project(row, event) or the aggregate's apply, in this lane's own
// sandbox. A row that already holds the commit (a replay after a restart)
// is left alone. A program failure skips the commit for that view only (it
// is quarantined by store, atomically with the other views' rows); a
// storage failure fails the message `unavailable` (nak: the source re-reads).
//
// Concurrency: keyed (`key: message` = tenant + aggregate id, set by
// projection.follow): one row's commits in log order, rows in parallel; a
// lane owns its sandboxes, so no lock. Reads the row from the local node
// store (RocksDB), never the network.
#include "graph/pipeline_spec.h"
#include "stages/projection/projection_service.h"
#include "stages/projection/stages.h"

namespace esflow::projection {
namespace {

class project final : public graph::stage {
 public:
  project(std::shared_ptr<projection_service> service, std::size_t lanes)
      : _service(std::move(service)), _lanes(lanes) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    ctx.changes.clear();
    ctx.failures.clear();
    ctx.storage_error.reset();
    if (auto st = _service->project_commit(_lanes[out.lane()], ctx); !st.ok()) {
      out.fail(std::move(m), std::move(st).err());
      return;
    }
    out.emit(std::move(m));
  }

 private:
  std::shared_ptr<projection_service> _service;
  std::vector<lane_sandboxes> _lanes;
};

}  // namespace

result<std::shared_ptr<projection_service>> keyed_stage_service(const graph::stage_init& init) {
  if (init.spec.key == "message") {
    auto service = init.service_as<projection_service>();
    if (!service) return error::make(errc::internal, "the projection node kind made no service");
    return service;
  }
  return error::config(
      init.spec.at.to_string() + ": stage '" + init.spec.name + "' (" + init.spec.kind +
      ") needs 'key: message' (projection.follow keys messages by tenant and row; every stage "
      "between it and projection.store must keep one row's commits in log order, and only keyed "
      "lanes do)");
}

graph::stage_descriptor project_descriptor() {
  graph::stage_descriptor d;
  d.kind = "projection.project";
  d.node_kind = "projection";
  d.description =
      "folds a commit into each following view's row (Lua project/apply; keyed lanes, a sandbox per lane)";
  d.mutates_context = true;
  d.needs_context = "projection";
  d.default_concurrency = graph::concurrency::bounded(4);
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto service = keyed_stage_service(init);
    if (!service.ok()) return std::move(service).err();
    return std::unique_ptr<graph::stage>(
        new project(std::move(service).value(), std::max<std::size_t>(1, init.spec.conc.limit)));
  };
  return d;
}

}  // namespace esflow::projection

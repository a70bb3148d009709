// projection.notify: hands each stored row change to the view's subscribers
// (projection_service::subscribe: the watch streams), which copy it into
// their own bounded buffers; it never waits for a subscriber.
//
// Concurrency: keyed (`key: message`, required) so that a row's changes
// reach subscribers in order; subscribers are called under the service's
// lock and only copy.
#include "graph/pipeline_spec.h"
#include "stages/projection/projection_service.h"
#include "stages/projection/stages.h"

namespace esflow::projection {

namespace {

class notify final : public graph::stage {
 public:
  explicit notify(std::shared_ptr<projection_service> service) : _service(std::move(service)) {}
  void process(graph::message_ptr m, const graph::emitter& out) override {
    _service->notify(context_of(*m));
    out.emit(std::move(m));
  }

 private:
  std::shared_ptr<projection_service> _service;
};

}  // namespace

graph::stage_descriptor notify_descriptor() {
  graph::stage_descriptor d;
  d.kind = "projection.notify";
  d.node_kind = "projection";
  d.description = "hands stored row changes to the view's subscribers (bounded buffers, never waits)";
  d.needs_context = "projection";
  d.default_concurrency = graph::concurrency::bounded(4);
  d.params = {
      graph::int_param("max_watches", 16, "watch streams (server-sent events) this pipeline serves at once",
                       0, 1024),
      graph::int_param("watch_buffer", 1024,
                       "row changes a watch stream may hold before it is closed as a slow consumer", 1,
                       1 << 20),
  };
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto service = keyed_stage_service(init);
    if (!service.ok()) return std::move(service).err();
    return std::unique_ptr<graph::stage>(new notify(std::move(service).value()));
  };
  return d;
}

}  // namespace esflow::projection

#pragma once
// The projection node kind and its stage kinds (README.md in this folder).
#include "graph/kind_registry.h"

#include <memory>

namespace esflow::projection {

class projection_service;

// A projection stage's service, refusing a stage without `key: message`
// (one row's commits must stay in log order from the source to notify).
result<std::shared_ptr<projection_service>> keyed_stage_service(const graph::stage_init& init);

graph::node_kind_descriptor projection_kind_descriptor();
graph::stage_descriptor follow_descriptor();   // projection.follow
graph::stage_descriptor decode_descriptor();   // projection.decode
graph::stage_descriptor project_descriptor();  // projection.project
graph::stage_descriptor store_descriptor();    // projection.store
graph::stage_descriptor notify_descriptor();   // projection.notify

}  // namespace esflow::projection

namespace esflow::stages {
void register_projection_stages(graph::kind_registry& registry);
}

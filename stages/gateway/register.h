#pragma once
// The gateway node kind and its stage kinds (stages/gateway/README.md);
// stages/stage_list.cc calls register_gateway_stages once.
#include "graph/kind_registry.h"
#include "graph/node_kind_descriptor.h"
#include "graph/stage_descriptor.h"

namespace esflow::gateway {

graph::node_kind_descriptor gateway_kind_descriptor();
graph::stage_descriptor http_descriptor();    // gateway.http
graph::stage_descriptor auth_descriptor();    // gateway.auth
graph::stage_descriptor route_descriptor();   // gateway.route
graph::stage_descriptor call_descriptor();    // gateway.call
graph::stage_descriptor answer_descriptor();  // gateway.answer

}  // namespace esflow::gateway

namespace esflow::stages {
void register_gateway_stages(graph::kind_registry& registry);
}

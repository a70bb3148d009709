#pragma once
// The gateway node kind and its stage kinds (stages/gateway/README.md);
// stages/stage_list.cc calls register_gateway_stages once.
#include "graph/kind_registry.h"
#include "graph/node_kind_descriptor.h"
#include "graph/stage_descriptor.h"
#include "stages/gateway/local_upstreams.h"

namespace esflow::gateway {

// `local`: the in-process upstreams of a gateway without nats_url (esflow
// dev); empty: such a gateway does not start (it needs NATS).
graph::node_kind_descriptor gateway_kind_descriptor(local_upstreams_factory local = {});
graph::stage_descriptor http_descriptor();    // gateway.http
graph::stage_descriptor auth_descriptor();    // gateway.auth
graph::stage_descriptor route_descriptor();   // gateway.route
graph::stage_descriptor call_descriptor();    // gateway.call
graph::stage_descriptor answer_descriptor();  // gateway.answer

}  // namespace esflow::gateway

namespace esflow::stages {
void register_gateway_stages(graph::kind_registry& registry, gateway::local_upstreams_factory local = {});
// The process's nodes as a gateway's upstreams (stages/gateway/local_upstreams.cc,
// in esflow_stages: it needs the aggregate and projection parts).
std::shared_ptr<gateway::local_upstreams> make_local_upstreams(esflow::service_registry& services,
                                                               const graph::pipeline_spec& pipeline);
}  // namespace esflow::stages

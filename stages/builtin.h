#pragma once
// Descriptors of the stage kinds in this folder; stage_list.cc names each once.
#include "graph/kind_registry.h"
#include "graph/pipeline_spec.h"
#include "graph/stage_descriptor.h"

namespace esflow::stages {

graph::stage_descriptor source_file_descriptor();
graph::stage_descriptor source_generator_descriptor();
graph::stage_descriptor source_workload_descriptor();
graph::stage_descriptor sink_file_descriptor();
graph::stage_descriptor sink_null_descriptor();
graph::stage_descriptor sink_error_log_descriptor();
graph::stage_descriptor route_descriptor();
graph::stage_descriptor noop_descriptor();
graph::stage_descriptor json_set_descriptor();
graph::stage_descriptor json_require_descriptor();
graph::stage_descriptor delay_descriptor();
graph::stage_descriptor tenant_gate_descriptor();
graph::stage_descriptor decode_command_descriptor();
graph::stage_descriptor ack_descriptor();

// Every stage kind and node kind this binary knows, registered explicitly
// (no static initialisers): stage_list.cc is the one list.
void register_builtin_stages(graph::kind_registry& registry);

}  // namespace esflow::stages

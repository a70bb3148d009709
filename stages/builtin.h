#pragma once
// Descriptors of the stage kinds in this folder; stage_list.cc names each once.
#include "graph/pipeline_spec.h"
#include "graph/stage_descriptor.h"
#include "graph/stage_registry.h"

namespace esflow::stages {

graph::stage_descriptor source_file_descriptor();
graph::stage_descriptor source_generator_descriptor();
graph::stage_descriptor sink_file_descriptor();
graph::stage_descriptor sink_null_descriptor();
graph::stage_descriptor sink_error_log_descriptor();
graph::stage_descriptor route_descriptor();
graph::stage_descriptor noop_descriptor();
graph::stage_descriptor json_set_descriptor();
graph::stage_descriptor json_require_descriptor();
graph::stage_descriptor delay_descriptor();

// Every stage kind this binary knows, registered explicitly (no static initialisers).
void register_builtin_stages(graph::stage_registry& registry);

}  // namespace esflow::stages

#pragma once
// The engine's keys of a pipeline file's `settings:` block, declared once.
// Other layers add theirs through kind_registry (the node's storage and
// tenancy settings, a node kind's own).
#include "graph/params.h"

#include <vector>

namespace esflow::graph {

const std::vector<param_spec>& engine_settings_schema();

}  // namespace esflow::graph

#pragma once
// Every key of a pipeline file's `settings:` block, declared once.
#include "graph/params.h"

#include <vector>

namespace esflow::graph {

const std::vector<param_spec>& pipeline_settings_schema();

}  // namespace esflow::graph
